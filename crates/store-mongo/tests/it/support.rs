//! Fresh stores on the test server named by `BESTOW_TEST_MONGODB_URI`, each in its own
//! uniquely named database pair.

#![allow(dead_code, clippy::expect_used, clippy::panic)]

use bestow_store_mongo::{MongoAuthStore, MongoEventStore};

pub const URI_VARIABLE: &str = "BESTOW_TEST_MONGODB_URI";

/// The test server's URI. Unset, the test fails: these tests never skip silently.
pub fn uri() -> String {
    std::env::var(URI_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{URI_VARIABLE} is not set. Run the tests with `scripts/test`, which starts a MongoDB-wire test \
             server; or run `scripts/mongo/server start` and export {URI_VARIABLE} with the URI it prints."
        )
    })
}

/// A database name prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("t{:016x}", rand::random::<u64>())
}

pub async fn fresh_auth_store() -> (MongoAuthStore, String) {
    let name = format!("{}_auth_db", unique_prefix());
    (MongoAuthStore::connect(&uri(), &name).await.expect("auth store"), name)
}

pub async fn fresh_event_store() -> (MongoEventStore, String) {
    let name = format!("{}_event_db", unique_prefix());
    (MongoEventStore::connect(&uri(), &name).await.expect("event store"), name)
}
