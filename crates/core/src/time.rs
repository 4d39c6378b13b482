//! The platform's notion of "now".

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// Now, truncated to milliseconds: the precision of a MongoDB `Date`, so a value reads back
/// from either store exactly as it was written.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// `at` truncated to milliseconds.
pub fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(at)
}
