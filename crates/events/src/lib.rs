//! The events service: event catalog, conditions and activities, and the claim saga.
//!
//! Layout: [`domain`] is pure (lifecycle, rewards, conditions, evaluation, the event
//! aggregate); [`store`] is the storage port; [`catalog`] holds the use cases; [`expiry`] the
//! background task that ends events; [`claims`] the claim saga (driver, recovery, API use
//! cases); [`grants`] the granters; [`directory`] the port to the auth service; [`activities`]
//! the ingestion of game activities and the fact providers ([`external_facts`] for an
//! operator's HTTP endpoint); [`eligibility`] evaluates conditions on those facts;
//! [`event_screen`] draws the player's event screen from all of the above;
//! [`service_keys`] the API keys of game servers; [`http`] maps it all to the routes of `API.md`.

pub mod activities;
pub mod catalog;
pub mod claims;
pub mod directory;
pub mod domain;
pub mod eligibility;
pub mod event_screen;
pub mod expiry;
pub mod external_facts;
pub mod grants;
pub mod http;
pub mod service_keys;
pub mod store;
pub mod view;

pub use catalog::EventCatalog;
pub use store::EventStore;
