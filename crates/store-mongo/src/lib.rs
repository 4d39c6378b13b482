//! MongoDB adapters for the Bestow store ports.
//!
//! Databases `auth_db` and `event_db` (names are parameters), collections as the seed names
//! them (`users`, `events` with embedded `rewards`, `user_reward_requests`) plus the ones the
//! design adds (`audit_logs`, `refresh_tokens`, `activities`, `reward_ledger`,
//! `service_keys`, `audiences`, `audience_members`, `player_properties`, `audience_sticky`, and
//! `backup_runs`, which `bestow admin backup` writes: see [`backup`]).
//! Documents use the seed's field names and BSON types (ObjectId ids, Date timestamps), each
//! one serde type beside its adapter (`fields` holds their shared encodings). Uniqueness lives
//! in unique indexes created at connect time; writes that touch more than one document commit
//! in one transaction, so the server must be a replica set (a single-node one is fine). Stock
//! moves by single conditional updates matching the reward with `$elemMatch`; a claim's
//! reservation is one such update that also records a hold on the event, outside any
//! transaction (see `stock_holds`), so a crowd on one reward does not serialise on it.

mod activities;
mod audiences;
mod audit;
mod auth;
pub mod backup;
mod claims;
mod common;
mod event_db;
mod events;
mod fields;
mod ledger;
mod service_keys;
mod stock_holds;

pub use auth::{AUTH_DB, MongoAuthStore};
pub use backup::MongoBackup;
pub use event_db::{EVENT_DB, MongoEventStore};
