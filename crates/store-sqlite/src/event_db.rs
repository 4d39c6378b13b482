//! `event.db`: [`SqliteEventStore`], one handle on the database that implements every port of
//! the events service (each in the file named after it: `events.rs`, `claims.rs`,
//! `ledger.rs`, `activities.rs`, `service_keys.rs`, `audiences.rs`); its schema is
//! `migrations/event/`.
//!
//! The seed embeds rewards in the event document; here they live in `event_rewards`, one row
//! per reward with the seed's field names, so that a stock change is a single conditional
//! `UPDATE` of one row. A `CHECK` keeps `remainingStock` from ever going below zero.

use bestow_kernel::store::StoreError;

use crate::database::Database;
use crate::migrations::EVENT_MIGRATIONS;

/// The event store on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteEventStore {
    pub(crate) db: Database,
    /// Which ids each upload in progress has staged (see `audiences.rs`).
    pub(crate) staging: crate::audiences::Staging,
}

impl SqliteEventStore {
    /// Opens `event.db` at `path`, creating or migrating its schema.
    pub fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        Ok(Self { db: Database::open(path, EVENT_MIGRATIONS)?, staging: crate::audiences::Staging::default() })
    }
}
