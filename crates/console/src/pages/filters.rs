//! The filters of a list page: read from its query string, sent on to the API, shown back in
//! the filter form, and carried by the pager's links.

use bestow_core::page::Page;
use maud::{Markup, html};

use super::with_query;
use crate::api::Read;
use crate::layout;

/// Items per page of the console's lists.
pub const PAGE_SIZE: u32 = 20;

/// The named filters of one list, with the page asked for.
pub struct Filters {
    values: Vec<(&'static str, String)>,
    pub page: u32,
}

impl Filters {
    /// Keeps `names` (in that order) out of the query string; anything else is ignored.
    pub fn read(query: &[(String, String)], names: &[&'static str]) -> Self {
        let value = |name: &str| query.iter().find(|(key, _)| key == name).map(|(_, value)| value.trim().to_owned());
        let page = value("page").and_then(|page| page.parse().ok()).filter(|page| *page >= 1).unwrap_or(1);
        Self { values: names.iter().map(|name| (*name, value(name).unwrap_or_default())).collect(), page }
    }

    pub fn get(&self, name: &str) -> &str {
        self.values.iter().find(|(key, _)| *key == name).map_or("", |(_, value)| value.as_str())
    }

    pub fn set(&mut self, name: &'static str, value: &str) {
        match self.values.iter_mut().find(|(key, _)| *key == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.values.push((name, value.to_owned())),
        }
    }

    fn pairs(&self) -> Vec<(&str, &str)> {
        self.values.iter().map(|(key, value)| (*key, value.as_str())).collect()
    }

    /// `path` with these filters (exports, links between lists).
    pub fn on(&self, path: &str) -> String {
        with_query(path, &self.pairs())
    }

    /// The API list `path` for this page of `limit` items.
    pub fn api_page(&self, path: &str, limit: u32) -> String {
        let (page, limit) = (self.page.to_string(), limit.to_string());
        let mut pairs = self.pairs();
        pairs.extend([("page", page.as_str()), ("limit", limit.as_str())]);
        with_query(path, &pairs)
    }

    /// The API list `read` for this page of `limit` items.
    pub fn page_of<T>(&self, read: Read<Page<T>>, limit: u32) -> Read<Page<T>> {
        read.rewritten(|path| self.api_page(path, limit))
    }

    /// A labelled text filter.
    pub fn text_input(&self, name: &str, label: &str, placeholder: &str) -> Markup {
        html! {
            label for=(name) { (label) }
            input id=(name) name=(name) placeholder=(placeholder) value=(self.get(name));
        }
    }

    /// A labelled choice among `options`, with "Any" first.
    pub fn select(&self, name: &str, label: &str, options: impl IntoIterator<Item = &'static str>) -> Markup {
        html! {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                option value="" { "Any" }
                @for option in options {
                    option value=(option) selected[self.get(name) == option] { (option) }
                }
            }
        }
    }

    /// The pager of an API `Page` answer, its links keeping these filters.
    pub fn pager<T>(&self, base: &str, found: &Page<T>) -> Markup {
        layout::pager(&self.on(base), found.page, found.limit, found.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::submitted;

    #[test]
    fn only_the_named_filters_are_kept_and_sent_on() {
        let filters = Filters::read(
            &submitted(&[("status", "ACTIVE"), ("evil", "x"), ("page", "3"), ("q", " a ")]),
            &["status", "q"],
        );
        assert_eq!(filters.page, 3);
        assert_eq!(filters.on("/x"), "/x?status=ACTIVE&q=a");
        assert_eq!(filters.api_page("/api", 20), "/api?status=ACTIVE&q=a&page=3&limit=20");
    }

    #[test]
    fn a_bad_page_number_is_the_first_page() {
        assert_eq!(Filters::read(&submitted(&[("page", "0")]), &[]).page, 1);
        assert_eq!(Filters::read(&submitted(&[("page", "x")]), &[]).page, 1);
    }
}
