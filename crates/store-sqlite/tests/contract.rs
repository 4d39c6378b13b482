//! The storage contract (`bestow-store-contract`) run against the SQLite adapters, each check
//! on fresh database files.

#![allow(clippy::expect_used)]

use bestow_store_contract::contract_suite;
use bestow_store_sqlite::{SqliteAuthStore, SqliteEventStore};

use tempfile::TempDir;

async fn fresh_auth_store() -> (SqliteAuthStore, TempDir) {
    let dir = TempDir::new().expect("temp dir");
    (SqliteAuthStore::open(&dir.path().join("auth.db")).expect("auth store"), dir)
}

async fn fresh_event_store() -> (SqliteEventStore, TempDir) {
    let dir = TempDir::new().expect("temp dir");
    (SqliteEventStore::open(&dir.path().join("event.db")).expect("event store"), dir)
}

contract_suite!(auth: fresh_auth_store(), events: fresh_event_store());
