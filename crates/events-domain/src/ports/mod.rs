//! The storage ports of the events service: what the service asks of a store, in domain
//! terms. The SQLite and MongoDB adapters implement them and depend on this crate, not on the
//! HTTP service.
//!
//! - [`catalog`]: events (`EventStore`), written compare-and-set on `version`.
//! - [`claims`]: claim requests and the stock they reserve (`ClaimStore`).
//! - [`activities`]: game activities (`ActivityStore`).
//! - [`audiences`]: audiences, their members, player properties and sticky memberships
//!   (`AudienceStore`).
//! - [`service_keys`]: the keys game servers push with (`ServiceKeyStore`).
//! - [`ledger`]: the built-in ledger's grants (`LedgerStore`).

pub mod activities;
pub mod audiences;
pub mod catalog;
pub mod claims;
pub mod ledger;
pub mod service_keys;
