//! The platform's notion of "now", and the range of instants clients may send. A crate of
//! its own so that the pure domain can bound client dates without depending on the HTTP
//! kernel (`bestow-core` re-exports it as `bestow_core::time`).
//!
//! Two clocks, chosen per use:
//! - a [`Clock`] handle for business time: what the events service stamps and judges by
//!   (event windows and expiry, recurring periods, claims and their leases and retries,
//!   activities, grants, service keys). The wiring makes one per application and hands it to
//!   every service that reads it, so a test moves its own application's time and nothing else
//!   ([`Clock::travel`], built only with the `travel` feature that tests enable);
//! - the wall clock ([`now`]) for what must never move with a test's clock: tokens and
//!   sessions (verifiers check `exp` against the system clock), the auth service's
//!   throttles and key rotation, the audit trail (when a person acted), backups and the
//!   gauges compared with Prometheus' own time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// A handle on business time: the wall clock, plus how far tests moved this clock. Clones
/// share the clock; every [`Clock::system`] is a clock of its own, so two applications in one
/// process (parallel tests) never move each other's time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// How far [`Clock::travel`] moved this clock, in milliseconds; zero in the product,
    /// where nothing can move it.
    travelled_ms: Arc<AtomicI64>,
}

impl Clock {
    /// A clock that reads the wall clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// Now on this clock, truncated to milliseconds (see [`now`]).
    pub fn now(&self) -> DateTime<Utc> {
        let travelled = TimeDelta::milliseconds(self.travelled_ms.load(Ordering::Relaxed));
        let wall = now();
        wall.checked_add_signed(travelled).unwrap_or(wall)
    }

    /// [`up_to_now`] on this clock: for exports of what this clock stamped.
    pub fn up_to_now(&self, to: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        pinned_to(self.now(), to)
    }

    /// Moves this clock (and its clones) by `by`: for tests of daily resets and expiries,
    /// which cannot wait for hours. Only built with the `travel` feature, which the test
    /// builds enable: no product build can move its clock, and no setting or route reaches it.
    #[cfg(feature = "travel")]
    #[doc(hidden)]
    pub fn travel(&self, by: TimeDelta) {
        self.travelled_ms.fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }
}

/// The wall clock now, truncated to milliseconds: the precision of a MongoDB `Date`, so a
/// value reads back from either store exactly as it was written. Business time reads a
/// [`Clock`] instead; this is for what never moves with it (see the module docs).
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// The `to` (exclusive) an export runs with: the client's, but never past the export's own
/// start. The lists are newest first and paged by offset, so a row recorded while the export
/// runs would push an already-written row onto the next page and write it twice; with `to`
/// pinned, rows recorded later do not match. (A row that stops matching mid-export, e.g. a
/// claim leaving the filtered `status`, can still move the pages under it: an export reads a
/// live table, not a snapshot.) Instants are whole milliseconds, so "up to now" is "before
/// the next millisecond". On the wall clock: [`Clock::up_to_now`] pins exports of business
/// records.
pub fn up_to_now(to: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    pinned_to(now(), to)
}

/// `to`, never past the millisecond after `now`.
fn pinned_to(now: DateTime<Utc>, to: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    let next_millisecond = now + TimeDelta::milliseconds(1);
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

    #[cfg(feature = "travel")]
    #[test]
    fn a_clock_moves_with_its_clones_and_alone() {
        let (moved, other) = (Clock::system(), Clock::system());
        let clone = moved.clone();
        moved.travel(TimeDelta::days(2));
        assert!(clone.now() - now() > TimeDelta::days(2) - TimeDelta::minutes(1), "clones share the move");
        assert!(other.now() - now() < TimeDelta::minutes(1), "another clock stays on the wall clock");
        assert_eq!(clone.up_to_now(None).map(|to| to - clone.now() <= TimeDelta::milliseconds(1)), Some(true));
    }

    #[derive(serde::Deserialize)]
    struct Wrapped {
        #[serde(deserialize_with = "bounded")]
        at: DateTime<Utc>,
    }
}
