//! Reading a stored row by column name, with the conversions every table needs: timestamps
//! stored as RFC 3339 text, JSON text in the seed's shape, names of enums.
//!
//! A value that does not convert is a corrupt row: the error names its column.

use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::Row;
use serde::de::DeserializeOwned;

use crate::database::from_text;

/// The error for the value of `column` in `row` that cannot be what the store wrote.
pub(crate) fn corrupt(row: &Row<'_>, column: &str, reason: impl Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        row.as_ref().column_index(column).unwrap_or_default(),
        rusqlite::types::Type::Text,
        Box::<dyn std::error::Error + Send + Sync>::from(format!("{column}: {reason}")),
    )
}

/// Typed reads of a row's columns by name.
pub(crate) trait NamedColumns {
    /// The timestamp in `column` (written by [`to_text`](crate::database::to_text)).
    fn time(&self, column: &str) -> rusqlite::Result<DateTime<Utc>>;
    /// The timestamp in `column`, or `None` where it is NULL.
    fn optional_time(&self, column: &str) -> rusqlite::Result<Option<DateTime<Utc>>>;
    /// The JSON text in `column`, read as a `T`.
    fn json<T: DeserializeOwned>(&self, column: &str) -> rusqlite::Result<T>;
    /// The JSON text in `column` read as a `T`, or `None` where it is NULL.
    fn optional_json<T: DeserializeOwned>(&self, column: &str) -> rusqlite::Result<Option<T>>;
    /// The text in `column` parsed as a `T` (an enum stored by its name).
    fn parsed<T>(&self, column: &str) -> rusqlite::Result<T>
    where
        T: FromStr,
        T::Err: Display;
}

impl NamedColumns for Row<'_> {
    fn time(&self, column: &str) -> rusqlite::Result<DateTime<Utc>> {
        from_text(self.get_ref(column)?.as_str()?).map_err(|e| corrupt(self, column, e))
    }

    fn optional_time(&self, column: &str) -> rusqlite::Result<Option<DateTime<Utc>>> {
        let text = self.get_ref(column)?.as_str_or_null()?;
        text.map(from_text).transpose().map_err(|e| corrupt(self, column, e))
    }

    fn json<T: DeserializeOwned>(&self, column: &str) -> rusqlite::Result<T> {
        serde_json::from_str(self.get_ref(column)?.as_str()?).map_err(|e| corrupt(self, column, e))
    }

    fn optional_json<T: DeserializeOwned>(&self, column: &str) -> rusqlite::Result<Option<T>> {
        let text = self.get_ref(column)?.as_str_or_null()?;
        text.map(serde_json::from_str).transpose().map_err(|e| corrupt(self, column, e))
    }

    fn parsed<T>(&self, column: &str) -> rusqlite::Result<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get_ref(column)?.as_str()?.parse().map_err(|e| corrupt(self, column, e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rusqlite::Connection;

    use super::*;

    #[test]
    fn columns_are_read_by_name_and_a_bad_value_names_its_column() {
        let connection = Connection::open_in_memory().unwrap();
        let select = "SELECT '2026-01-02T03:04:05.000Z' AS createdAt, NULL AS revokedAt, '[1, 2]' AS numbers, \
                      'soon' AS endDate";
        connection
            .query_row(select, [], |row| {
                assert_eq!(row.time("createdAt")?.to_rfc3339(), "2026-01-02T03:04:05+00:00");
                assert_eq!(row.optional_time("revokedAt")?, None);
                assert_eq!(row.json::<Vec<i64>>("numbers")?, vec![1, 2]);
                assert_eq!(row.optional_json::<Vec<i64>>("revokedAt")?, None);
                assert!(row.parsed::<i64>("numbers").unwrap_err().to_string().contains("numbers"));
                let error = row.time("endDate").unwrap_err();
                assert!(matches!(error, rusqlite::Error::FromSqlConversionFailure(3, ..)), "{error:?}");
                assert!(error.to_string().contains("endDate"), "{error}");
                Ok(())
            })
            .unwrap();
    }
}
