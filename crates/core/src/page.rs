//! Pagination: `?page=1&limit=20` in, `{items, page, limit, total}` out.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::json::ValidQuery;
use crate::problem::ApiError;

/// The largest page a client may ask for.
pub const MAX_LIMIT: u32 = 100;
const DEFAULT_LIMIT: u32 = 20;
/// Pages past this are refused: nobody pages a hundred million items.
const MAX_PAGE: u32 = 1_000_000;

/// Raw pagination parameters, flattened into each list's query type.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub limit: u32,
}

impl PageRequest {
    /// Rows to skip.
    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.limit)
    }
}

impl TryFrom<&PageParams> for PageRequest {
    type Error = ApiError;

    fn try_from(params: &PageParams) -> Result<Self, Self::Error> {
        let page = params.page.unwrap_or(1);
        let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
        if page == 0 || page > MAX_PAGE {
            return Err(ApiError::field("?page", "out_of_range", format!("page must be 1 to {MAX_PAGE}")));
        }
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::field("?limit", "out_of_range", format!("limit must be 1 to {MAX_LIMIT}")));
        }
        Ok(Self { page, limit })
    }
}

/// A list handler takes the page it is asked for as an extractor: `?page` and `?limit`, checked.
impl<S: Send + Sync> FromRequestParts<S> for PageRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ValidQuery(params) = ValidQuery::<PageParams>::from_request_parts(parts, state).await?;
        Self::try_from(&params)
    }
}

/// One page of a list.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// This page's number, from 1.
    pub page: u32,
    /// Items per page.
    pub limit: u32,
    /// Items matching the filters, over all pages.
    pub total: u64,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, request: PageRequest, total: u64) -> Self {
        Self { items, page: request.page, limit: request.limit, total }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), page: self.page, limit: self.limit, total: self.total }
    }

    /// The page with each item converted by `f`, or the first conversion's error.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        let items = self.items.into_iter().map(f).collect::<Result<_, _>>()?;
        Ok(Page { items, page: self.page, limit: self.limit, total: self.total })
    }

    /// Whether no item matching the filters lies past this page.
    pub fn is_last(&self) -> bool {
        u64::from(self.page) * u64::from(self.limit) >= self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded() {
        let ok = PageRequest::try_from(&PageParams { page: Some(3), limit: Some(100) }).ok();
        assert_eq!(ok.map(|p| p.offset()), Some(200));
        assert!(PageRequest::try_from(&PageParams { page: Some(1), limit: Some(101) }).is_err());
        assert!(PageRequest::try_from(&PageParams { page: Some(0), limit: None }).is_err());
    }
}
