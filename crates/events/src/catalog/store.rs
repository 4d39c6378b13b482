//! The storage port of the event catalog (`event_db`), defined with the domain:
//! [`bestow_events_domain::ports::catalog`].

pub use crate::domain::ports::catalog::*;
