//! Building `WHERE` clauses from optional filters, and paging.

use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::StoreError;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row, params_from_iter};

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

    /// `SELECT {columns} FROM {table}` of the matching rows, ordered by `order`, in pages.
    pub(crate) fn page_sql(&self, columns: &str, table: &str, order: &str) -> String {
        format!("SELECT {columns} FROM {table} {} ORDER BY {order} LIMIT ? OFFSET ?", self.where_clause())
    }

    /// One `page` of `table`'s matching rows, selected by `sql` (from [`Self::page_sql`]) and
    /// read by `from_row`, with how many rows match in all.
    pub(crate) fn select_page<T>(
        &self,
        connection: &Connection,
        table: &str,
        sql: &str,
        page: PageRequest,
        from_row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Page<T>, StoreError> {
        let total = count(connection, table, self)?;
        let mut statement = connection.prepare_cached(sql).map_err(map_error)?;
        let rows = statement
            .query_map(params_from_iter(page_values(&self.values, page).iter()), from_row)
            .map_err(map_error)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(map_error)?;
        Ok(Page::new(rows, page, total))
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
