//! The events service: event catalog, conditions and activities, and the claim saga.
//!
//! Layout: [`domain`] is pure (lifecycle, rewards, conditions, evaluation, the event
//! aggregate); [`store`] is the storage port; [`catalog`] holds the use cases; [`expiry`] the
//! background task that ends events; [`claims`] the claim saga (driver, recovery, API use
//! cases); [`grants`] the granters; [`directory`] the port to the auth service; [`http`] maps
//! it all to the routes of `API.md`.

pub mod catalog;
pub mod claims;
pub mod directory;
pub mod domain;
pub mod expiry;
pub mod grants;
pub mod http;
pub mod store;
pub mod view;

pub use catalog::EventCatalog;
pub use store::EventStore;
