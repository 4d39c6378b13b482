//! Pagination at the HTTP edge: `?page=1&limit=20` in, checked into a [`PageRequest`]; the
//! page types themselves are the kernel's.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Deserialize;
use utoipa::IntoParams;

pub use bestow_kernel::page::{MAX_LIMIT, Page, PageRequest};

use crate::json::ValidQuery;
use crate::problem::ApiError;

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

/// The page a list handler is asked for, as an extractor: `?page` and `?limit`, checked.
#[derive(Debug, Clone, Copy)]
pub struct ValidPage(pub PageRequest);

impl<S: Send + Sync> FromRequestParts<S> for ValidPage {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ValidQuery(params) = ValidQuery::<PageParams>::from_request_parts(parts, state).await?;
        PageRequest::try_from(&params).map(ValidPage)
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
