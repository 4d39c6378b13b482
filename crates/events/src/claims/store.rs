//! The storage port of claims and stock reservations, defined with the domain:
//! [`bestow_events_domain::ports::claims`].

pub use crate::domain::ports::claims::*;
