//! Building `WHERE` clauses from optional filters, and paging.

use bestow_core::page::PageRequest;
use bestow_core::store::StoreError;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

use crate::database::map_error;

/// `LIKE` pattern matching values that start with `prefix` literally.
pub(crate) fn prefix_pattern(prefix: &str) -> String {
    let escaped = prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("{escaped}%")
}

/// `WHERE …` text and its parameters, built from optional filters.
#[derive(Default)]
pub(crate) struct Filters {
    pub(crate) clauses: Vec<&'static str>,
    pub(crate) values: Vec<SqlValue>,
}

impl Filters {
    pub(crate) fn add(&mut self, clause: &'static str, value: impl Into<SqlValue>) {
        self.clauses.push(clause);
        self.values.push(value.into());
    }

    pub(crate) fn where_clause(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!("WHERE {}", self.clauses.join(" AND ")) }
    }
}

pub(crate) fn page_values(values: &[SqlValue], page: PageRequest) -> Vec<SqlValue> {
    let mut all = values.to_vec();
    all.push(SqlValue::Integer(i64::from(page.limit)));
    all.push(SqlValue::Integer(i64::try_from(page.offset()).unwrap_or(i64::MAX)));
    all
}

pub(crate) fn count(connection: &Connection, table: &str, filters: &Filters) -> Result<u64, StoreError> {
    let sql = format!("SELECT COUNT(*) FROM {table} {}", filters.where_clause());
    let total: i64 =
        connection.query_row(&sql, params_from_iter(filters.values.iter()), |row| row.get(0)).map_err(map_error)?;
    Ok(u64::try_from(total).unwrap_or(0))
}
