//! The events service: event catalog, conditions and activities, and the claim saga.
//!
//! Layout: [`domain`] is pure (lifecycle, rewards, conditions, evaluation, the event
//! aggregate); [`store`] is the storage port; [`catalog`] holds the use cases; [`expiry`] the
//! background task that ends events; [`http`] maps it all to the routes of `API.md`.

pub mod catalog;
pub mod domain;
pub mod expiry;
pub mod http;
pub mod store;
pub mod view;

pub use catalog::EventCatalog;
pub use store::EventStore;
