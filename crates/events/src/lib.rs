//! The events service: event catalog, conditions and activities, and the claim saga.

pub mod domain;
