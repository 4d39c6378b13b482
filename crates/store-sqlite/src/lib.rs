//! Embedded SQLite adapters for the Bestow store ports.
//!
//! One database file per service (`auth.db`, `event.db`) in WAL mode. Documents of the
//! seed map to tables column for column (camelCase JSON values such as `roles` are stored as
//! JSON text); uniqueness lives in unique indexes, never in look-ups before inserts.

mod activities;
mod audiences;
mod audit;
mod auth;
mod backup_runs;
mod claims;
mod columns;
mod database;
mod event_db;
mod events;
mod filters;
mod ledger;
mod migrations;
mod service_keys;

pub use auth::SqliteAuthStore;
pub use backup_runs::record_backup;
pub use claims::release_leases;
pub use database::{Database, backup_database, check_integrity};
pub use event_db::SqliteEventStore;
