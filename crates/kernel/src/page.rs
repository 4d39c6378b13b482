//! One page of a list: what a store returns and what a list route answers
//! (`{items, page, limit, total}`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The largest page a client may ask for.
pub const MAX_LIMIT: u32 = 100;

/// A validated page request: `page` from 1, `limit` from 1 to [`MAX_LIMIT`].
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

/// One page of a list.
#[derive(Debug, PartialEq, Serialize, Deserialize, ToSchema)]
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
    fn the_last_page_is_the_one_that_reaches_the_total() {
        let page = |number, total| Page::new(vec![(); 0], PageRequest { page: number, limit: 10 }, total);
        assert!(!page(1, 11).is_last());
        assert!(page(2, 11).is_last());
        assert!(page(1, 10).is_last());
        assert!(page(1, 0).is_last());
        assert_eq!(PageRequest { page: 3, limit: 10 }.offset(), 20);
    }
}
