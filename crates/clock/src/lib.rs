//! The platform's notion of "now", and the range of instants clients may send. A crate of
//! its own so that the pure domain can bound client dates without depending on the HTTP
//! kernel (`bestow-core` re-exports it as `bestow_core::time`).

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// How far [`travel`] moved this process's clock, in milliseconds.
static TRAVELLED_MS: AtomicI64 = AtomicI64::new(0);

/// Now, truncated to milliseconds: the precision of a MongoDB `Date`, so a value reads back
/// from either store exactly as it was written.
pub fn now() -> DateTime<Utc> {
    let travelled = TimeDelta::milliseconds(TRAVELLED_MS.load(Ordering::Relaxed));
    truncate(Utc::now().checked_add_signed(travelled).unwrap_or_else(Utc::now))
}

/// Moves this process's clock (as [`now`] reads it) by `by`: for tests of daily resets and
/// expiries, which cannot wait for hours. Tests run one per process, so the move is theirs
/// alone. Nothing in the product calls it, and no setting or route reaches it.
#[doc(hidden)]
pub fn travel(by: TimeDelta) {
    TRAVELLED_MS.fetch_add(by.num_milliseconds(), Ordering::Relaxed);
}

/// The `to` (exclusive) an export runs with: the client's, but never past the export's own
/// start. The lists are newest first and paged by offset, so a row recorded while the export
/// runs would push an already-written row onto the next page and write it twice; with `to`
/// pinned, rows recorded later do not match. (A row that stops matching mid-export, e.g. a
/// claim leaving the filtered `status`, can still move the pages under it: an export reads a
/// live table, not a snapshot.) Instants are whole milliseconds, so "up to now" is "before
/// the next millisecond".
pub fn up_to_now(to: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    let next_millisecond = now() + TimeDelta::milliseconds(1);
    Some(to.map_or(next_millisecond, |to| to.min(next_millisecond)))
}

/// `at` truncated to milliseconds.
pub fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(at)
}

/// The earliest instant a client may send: 1970-01-01T00:00:00Z.
pub fn earliest() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

/// The first instant past the latest one a client may send: year 10000. Every accepted
/// instant has a four-digit year, so its stored RFC 3339 text has a fixed width and sorts as
/// it compares, and it fits a MongoDB `Date`.
pub fn end_of_range() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_800, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at`, truncated to milliseconds, if it lies in the years 1970 to 9999.
pub fn in_range(at: DateTime<Utc>) -> Result<DateTime<Utc>, OutOfRange> {
    if at < earliest() || at >= end_of_range() {
        return Err(OutOfRange);
    }
    Ok(truncate(at))
}

/// An instant outside the years 1970 to 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z")]
pub struct OutOfRange;

/// Serde `deserialize_with` for an RFC 3339 instant a client sends: refused outside the years
/// 1970 to 9999 (with the field's pointer, through the JSON and query extractors).
pub fn bounded<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let at = <DateTime<Utc> as serde::Deserialize>::deserialize(deserializer)?;
    in_range(at).map_err(serde::de::Error::custom)
}

/// [`bounded`] for an optional instant.
pub fn bounded_option<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let at = <Option<DateTime<Utc>> as serde::Deserialize>::deserialize(deserializer)?;
    at.map(in_range).transpose().map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_instants_are_bounded_to_four_digit_years() {
        let parse = |text: &str| serde_json::from_value::<Wrapped>(serde_json::json!({ "at": text })).map(|w| w.at);
        assert!(parse("1970-01-01T00:00:00Z").is_ok());
        assert!(parse("9999-12-31T23:59:59.999Z").is_ok());
        assert!(parse("1969-12-31T23:59:59Z").is_err());
        assert!(parse("+10000-01-01T00:00:00Z").is_err());
        assert!(parse("-0001-01-01T00:00:00Z").is_err());
    }

    #[derive(serde::Deserialize)]
    struct Wrapped {
        #[serde(deserialize_with = "bounded")]
        at: DateTime<Utc>,
    }
}
