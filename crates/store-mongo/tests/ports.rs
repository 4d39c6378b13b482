//! The ports the contract suite does not cover, on the MongoDB adapter: activities, service
//! keys, list queries, expiry, and readiness against an unreachable server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bestow_auth::store::AuthStore;
use bestow_core::audit::{AuditActor, AuditBuilder, AuditQuery};
use bestow_core::page::PageRequest;
use bestow_core::store::StoreError;
use bestow_events::activities::{ActivityStore, NewActivity};
use bestow_events::domain::evaluate::{ActivityFact, FactQuery};
use bestow_events::domain::event::{Event, EventInput, Provenance};
use bestow_events::domain::lifecycle::EventStatus;
use bestow_events::domain::reward::RewardId;
use bestow_events::service_keys::{Scope, ServiceKey, ServiceKeyStore};
use bestow_events::store::{EventFilter, EventSortKey, EventStore};
use bestow_store_mongo::{MongoAuthStore, MongoEventStore};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn page() -> PageRequest {
    PageRequest { page: 1, limit: 10 }
}

fn activity(id: &str, user: &str, kind: &str, occurred: &str, attributes: Value) -> NewActivity {
    let Value::Object(attributes) = attributes else { panic!("attributes must be an object") };
    NewActivity {
        activity_id: id.to_owned(),
        user_id: user.to_owned(),
        activity_type: kind.parse().unwrap(),
        occurred_at: at(occurred),
        attributes,
        received_at: at("2026-03-20T00:00:00Z"),
    }
}

fn query(types: &[&str], from: Option<&str>, to: &str) -> FactQuery {
    FactQuery { types: types.iter().map(|t| (*t).to_owned()).collect::<BTreeSet<_>>(), from: from.map(at), to: at(to) }
}

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
    assert!(matches!(events.event("ffffffffffffffffffffffff").await, Err(StoreError::Unavailable(_))));
}

#[tokio::test]
async fn ping_succeeds_on_the_test_server() {
    let (auth, _) = support::fresh_auth_store().await;
    auth.ping().await.unwrap();
    let (events, _) = support::fresh_event_store().await;
    EventStore::ping(&events).await.unwrap();
}

#[tokio::test]
async fn batches_are_idempotent_by_activity_id() {
    let (store, _) = support::fresh_event_store().await;
    let batch = vec![
        activity("a1", "u1", "LOGIN", "2026-03-01T00:00:00Z", json!({})),
        activity("a2", "u1", "LOGIN", "2026-03-02T00:00:00Z", json!({})),
        activity("a1", "u1", "LOGIN", "2026-03-03T00:00:00Z", json!({})),
    ];
    assert_eq!(store.insert_batch(batch.clone()).await.unwrap(), 2, "a repeat within the batch is skipped");
    assert_eq!(store.insert_batch(batch.clone()).await.unwrap(), 0, "a re-sent batch stores nothing");
    let facts = store.facts("u1", &query(&["LOGIN"], None, "2027-01-01T00:00:00Z")).await.unwrap();
    let mut days: Vec<_> = facts.iter().map(|f| f.occurred_at).collect();
    days.sort();
    assert_eq!(days, [at("2026-03-01T00:00:00Z"), at("2026-03-02T00:00:00Z")], "the first send wins");
}

#[tokio::test]
async fn facts_match_user_types_and_a_half_open_window() {
    let (store, _) = support::fresh_event_store().await;
    store
        .insert_batch(vec![
            activity("1", "u1", "LOGIN", "2026-02-28T23:59:59.999Z", json!({})),
            activity("2", "u1", "LOGIN", "2026-03-01T00:00:00Z", json!({})),
            activity("3", "u1", "PURCHASE", "2026-03-05T00:00:00.5Z", json!({"amount": 9.5})),
            activity("4", "u1", "BOSS_KILLED", "2026-03-05T00:00:00Z", json!({})),
            activity("5", "u1", "LOGIN", "2026-03-10T00:00:00Z", json!({})),
            activity("6", "u2", "LOGIN", "2026-03-05T00:00:00Z", json!({})),
        ])
        .await
        .unwrap();
    let mut facts = store
        .facts("u1", &query(&["LOGIN", "PURCHASE"], Some("2026-03-01T00:00:00Z"), "2026-03-10T00:00:00Z"))
        .await
        .unwrap();
    facts.sort_by_key(|f| f.occurred_at);
    assert_eq!(
        facts,
        [
            ActivityFact {
                activity_type: "LOGIN".into(),
                occurred_at: at("2026-03-01T00:00:00Z"),
                attributes: Map::new()
            },
            ActivityFact {
                activity_type: "PURCHASE".into(),
                occurred_at: at("2026-03-05T00:00:00.5Z"),
                attributes: json!({"amount": 9.5}).as_object().cloned().unwrap(),
            },
        ]
    );
    assert_eq!(store.facts("u1", &query(&["LOGIN"], None, "2026-03-10T00:00:00Z")).await.unwrap().len(), 2);
    assert!(store.facts("u1", &query(&[], None, "2027-01-01T00:00:00Z")).await.unwrap().is_empty());
    assert!(store.facts("nobody", &query(&["LOGIN"], None, "2027-01-01T00:00:00Z")).await.unwrap().is_empty());
}

#[tokio::test]
async fn service_keys_are_found_by_digest_and_revoked_once() {
    let (store, _) = support::fresh_event_store().await;
    let actor = AuditActor::system("test");
    let key = ServiceKey {
        id: bestow_core::ids::new_object_id(),
        name: "game-1".into(),
        scopes: vec![Scope::ActivitiesWrite],
        secret_digest: "d1".into(),
        created_at: at("2026-03-01T00:00:00Z"),
        created_by: "admin".into(),
        revoked_at: None,
    };
    let audit = actor.entry("service_key.create", ("service_key", &key.id), None, None);
    store.insert_service_key(&key, &audit).await.unwrap();
    let same_digest = ServiceKey { id: bestow_core::ids::new_object_id(), ..key.clone() };
    assert!(matches!(store.insert_service_key(&same_digest, &audit).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.service_key_by_digest("d1").await.unwrap(), Some(key.clone()));
    assert_eq!(store.service_key_by_digest("d2").await.unwrap(), None);

    let builder: AuditBuilder<ServiceKey> =
        Arc::new(move |_, after| actor.entry("service_key.revoke", ("service_key", &after.id), None, None));
    let revoked = store.revoke_service_key(&key.id, at("2026-03-02T00:00:00Z"), builder.clone()).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(at("2026-03-02T00:00:00Z")));
    let again = store.revoke_service_key(&key.id, at("2026-03-03T00:00:00Z"), builder.clone()).await.unwrap();
    assert_eq!(again.revoked_at, Some(at("2026-03-02T00:00:00Z")), "the first revocation stands");
    assert!(matches!(
        store.revoke_service_key("nope", at("2026-03-03T00:00:00Z"), builder).await,
        Err(StoreError::NotFound)
    ));

    let (keys, total) = store.list_service_keys(page()).await.unwrap();
    assert_eq!((keys, total), (vec![revoked], 1));
    let query = AuditQuery { target_id: Some(key.id.clone()), ..Default::default() };
    let (entries, _) = EventStore::list_audit(&store, &query, page()).await.unwrap();
    let actions: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["service_key.revoke", "service_key.create"], "one entry per change");
}

fn event(name: &str, start: &str, end: &str, status: EventStatus) -> Event {
    let input: EventInput = serde_json::from_value(json!({
        "eventName": name, "startDate": start, "endDate": end,
        "rewards": [{ "rewardType": "POINT", "rewardName": "p", "details": { "points": 1 }, "quantityPerUser": 1 }],
    }))
    .unwrap();
    let provenance = Provenance {
        event_id: bestow_core::ids::new_object_id(),
        created_by: "operator".into(),
        now: bestow_core::time::now(),
    };
    let mut event = input.into_event(provenance, || RewardId::generated(bestow_core::ids::new_object_id())).unwrap();
    event.status = status;
    event
}

#[tokio::test]
async fn event_lists_filter_sort_and_page_and_due_events_expire() {
    let (store, _) = support::fresh_event_store().await;
    let actor = AuditActor::system("test");
    let events = [
        event("Spring Login", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", EventStatus::Active),
        event("summer (50%+) sale", "2026-06-01T00:00:00Z", "2030-07-01T00:00:00Z", EventStatus::Active),
        event("Autumn draft", "2026-09-01T00:00:00Z", "2030-10-01T00:00:00Z", EventStatus::Draft),
    ];
    for event in &events {
        store.insert_event(event, &actor.entry("event.create", ("event", &event.id), None, None)).await.unwrap();
    }
    let by_start = EventFilter { sort: EventSortKey::StartDate, descending: true, ..Default::default() };
    let (listed, total) = store.list_events(&by_start, PageRequest { page: 1, limit: 2 }).await.unwrap();
    assert_eq!(total, 3);
    let names: Vec<_> = listed.iter().map(|e| e.event_name.as_str()).collect();
    assert_eq!(names, ["Autumn draft", "summer (50%+) sale"]);
    let (listed, _) = store.list_events(&by_start, PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!(listed[0].event_name, "Spring Login");

    let named = EventFilter { name_contains: Some("(50%+)".into()), ..Default::default() };
    assert_eq!(store.list_events(&named, page()).await.unwrap().1, 1, "metacharacters match literally");
    let named = EventFilter { name_contains: Some("SPRING".into()), ..Default::default() };
    assert_eq!(store.list_events(&named, page()).await.unwrap().1, 1, "case is ignored");
    let active = EventFilter {
        statuses: Some(vec![EventStatus::Active]),
        active_at: Some(at("2026-06-15T00:00:00Z")),
        ..Default::default()
    };
    let (listed, total) = store.list_events(&active, page()).await.unwrap();
    assert_eq!((listed[0].id.as_str(), total), (events[1].id.as_str(), 1));
    let none = EventFilter { statuses: Some(vec![]), ..Default::default() };
    assert_eq!(store.list_events(&none, page()).await.unwrap().1, 0);

    let builder: AuditBuilder<Event> = Arc::new(move |_, after: &Event| {
        AuditActor::system("expiry").entry("event.expire", ("event", &after.id), None, None)
    });
    let expired = store.expire_due(at("2026-05-01T00:00:00Z"), builder).await.unwrap();
    assert_eq!(expired.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), [events[0].id.as_str()]);
    let stored = store.event(&events[0].id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.version), (EventStatus::Expired, events[0].version + 1));
}

#[tokio::test]
async fn user_lists_filter_by_role_activity_and_prefix() {
    use bestow_auth::domain::{User, UserChange, Username};
    use bestow_auth::store::UserFilter;
    use bestow_core::identity::Role;

    let (store, _) = support::fresh_auth_store().await;
    for (name, roles) in [("Alice", vec![Role::Admin]), ("alfred", vec![Role::User]), ("Bob", vec![Role::User])] {
        let user = User::new(&Username::parse(name, "/username").unwrap(), "hash".into(), roles);
        store.insert_user(&user, None).await.unwrap();
    }
    let prefix = UserFilter { username_prefix: Some("AL".into()), ..Default::default() };
    let (users, total) = store.list_users(&prefix, page()).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(users.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), ["Alice", "alfred"], "creation order");
    let admins = UserFilter { role: Some(Role::Admin), ..Default::default() };
    assert_eq!(store.list_users(&admins, page()).await.unwrap().1, 1);
    let bob = store.user_by_username("BOB").await.unwrap().unwrap();
    store.change_user(&bob.id, &UserChange::Active(false), None).await.unwrap();
    let inactive = UserFilter { is_active: Some(false), ..Default::default() };
    let (users, total) = store.list_users(&inactive, page()).await.unwrap();
    assert_eq!((users[0].username.as_str(), total), ("Bob", 1));
    assert_eq!(store.count_users().await.unwrap(), 3);
}
