//! What the contract suite cannot show for MongoDB: readiness against a live server and
//! against an unreachable one.

use crate::support;

use std::time::{Duration, Instant};

use bestow_auth::store::AuthStore;
use bestow_events::catalog::store::EventStore;
use bestow_kernel::store::StoreError;
use bestow_store_mongo::{MongoAuthStore, MongoEventStore};

#[tokio::test]
async fn ping_is_unavailable_quickly_when_the_server_is_unreachable() {
    // Nothing listens on port 1: connecting is lazy and succeeds, the first round trip fails.
    let uri = "mongodb://127.0.0.1:1/?directConnection=true";
    let auth = MongoAuthStore::connect(uri, "auth_db").await.expect("a lazy connect does not fail");
    let events = MongoEventStore::connect(uri, "event_db").await.expect("a lazy connect does not fail");
    let started = Instant::now();
    assert!(matches!(auth.ping().await, Err(StoreError::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_secs(5), "ping took {:?}", started.elapsed());
    let started = Instant::now();
    assert!(matches!(EventStore::ping(&events).await, Err(StoreError::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_secs(5), "ping took {:?}", started.elapsed());
    assert!(matches!(
        events.event(&bestow_kernel::ids::EventId::parse("ffffffffffffffffffffffff").unwrap()).await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn ping_succeeds_on_the_test_server() {
    let (auth, _) = support::fresh_auth_store().await;
    auth.ping().await.unwrap();
    let (events, _) = support::fresh_event_store().await;
    EventStore::ping(&events).await.unwrap();
}
