//! Contract of [`ActivityStore`] and [`ServiceKeyStore`].

use std::collections::BTreeSet;

use bestow_events::catalog::store::EventStore;
use bestow_events::conditions::activities::{Activity, ActivityStore, NewActivity};
use bestow_events::domain::evaluate::{ActivityFact, FactQuery};
use bestow_events::service_keys::{Scope, ServiceKey, ServiceKeyStore};
use bestow_kernel::audit::{AuditActor, AuditQuery};
use bestow_kernel::ids::{ServiceKeyId, UserId};
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// The player `text` names.
fn user(text: &str) -> UserId {
    UserId::parse(text).unwrap()
}

fn activity(id: &str, user: &str, kind: &str, occurred: &str, attributes: Value) -> NewActivity {
    let Value::Object(attributes) = attributes else { panic!("attributes must be an object") };
    NewActivity {
        activity_id: id.to_owned(),
        user_id: UserId::parse(user).unwrap(),
        activity_type: kind.parse().unwrap(),
        occurred_at: at(occurred),
        attributes,
        received_at: at("2026-03-20T00:00:00Z"),
    }
}

fn query(types: &[&str], from: Option<&str>, to: &str) -> FactQuery {
    FactQuery { types: types.iter().map(|t| (*t).to_owned()).collect::<BTreeSet<_>>(), from: from.map(at), to: at(to) }
}

/// Ingestion is idempotent by `activityId`: repeats within a batch and re-sent batches store
/// nothing, and the first send wins.
pub async fn batches_are_idempotent_by_activity_id(store: &impl ActivityStore) {
    let batch = vec![
        activity("a1", "u1", "LOGIN", "2026-03-01T00:00:00Z", json!({})),
        activity("a2", "u1", "LOGIN", "2026-03-02T00:00:00Z", json!({})),
        activity("a1", "u1", "LOGIN", "2026-03-03T00:00:00Z", json!({})),
    ];
    assert_eq!(store.insert_batch(batch.clone()).await.unwrap(), 2, "a repeat within the batch is skipped");
    assert_eq!(store.insert_batch(batch).await.unwrap(), 0, "a re-sent batch stores nothing");
    let facts = store.facts(&user("u1"), &query(&["LOGIN"], None, "2027-01-01T00:00:00Z")).await.unwrap();
    let mut days: Vec<_> = facts.iter().map(|f| f.occurred_at).collect();
    days.sort();
    assert_eq!(days, [at("2026-03-01T00:00:00Z"), at("2026-03-02T00:00:00Z")], "the first send wins");
}

/// Facts are one user's, of the asked types, in the half-open window `[from, to)`, with
/// sub-second times and attributes intact.
pub async fn facts_match_user_types_and_a_half_open_window(store: &impl ActivityStore) {
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
        .facts(&user("u1"), &query(&["LOGIN", "PURCHASE"], Some("2026-03-01T00:00:00Z"), "2026-03-10T00:00:00Z"))
        .await
        .unwrap();
    facts.sort_by_key(|f| f.occurred_at);
    let purchase = json!({"amount": 9.5}).as_object().cloned().unwrap();
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
                attributes: purchase
            },
        ]
    );
    assert_eq!(store.facts(&user("u1"), &query(&["LOGIN"], None, "2026-03-10T00:00:00Z")).await.unwrap().len(), 2);
    assert!(store.facts(&user("u1"), &query(&[], None, "2027-01-01T00:00:00Z")).await.unwrap().is_empty());
    assert!(store.facts(&user("nobody"), &query(&["LOGIN"], None, "2027-01-01T00:00:00Z")).await.unwrap().is_empty());
}

/// A player's history: only that player's activities, of the asked type when one is given,
/// newest `occurredAt` first, paged with the total over all pages, every stored field intact;
/// ties of `occurredAt` come in one fixed order, so paging neither repeats nor skips one.
pub async fn recent_activities_are_a_players_newest_first_and_paged(store: &impl ActivityStore) {
    store
        .insert_batch(vec![
            activity("first-login", "u1", "LOGIN", "2026-03-01T00:00:00Z", json!({})),
            activity("order-1", "u1", "PURCHASE", "2026-03-05T00:00:00.5Z", json!({"amount": 9.5})),
            activity("third-login", "u1", "LOGIN", "2026-03-03T00:00:00Z", json!({})),
            activity("boss", "u1", "BOSS_KILLED", "2026-03-04T00:00:00Z", json!({"boss": "ifrit"})),
            activity("second-login", "u1", "LOGIN", "2026-03-02T00:00:00Z", json!({})),
            activity("other", "u2", "LOGIN", "2026-03-06T00:00:00Z", json!({})),
        ])
        .await
        .unwrap();
    let ids = |activities: &[Activity]| activities.iter().map(|a| a.activity_id.clone()).collect::<Vec<_>>();
    let page = |page, limit| PageRequest { page, limit };

    let Page { items: first, total, .. } = store.recent(&user("u1"), None, page(1, 2)).await.unwrap();
    assert_eq!((ids(&first), total), (vec!["order-1".to_owned(), "boss".to_owned()], 5), "newest first");
    let Page { items: second, total, .. } = store.recent(&user("u1"), None, page(2, 2)).await.unwrap();
    assert_eq!((ids(&second), total), (vec!["third-login".to_owned(), "second-login".to_owned()], 5));
    let Page { items: third, .. } = store.recent(&user("u1"), None, page(3, 2)).await.unwrap();
    assert_eq!(ids(&third), ["first-login"]);
    assert_eq!(page_of(store.recent(&user("u1"), None, page(4, 2)).await.unwrap()), (vec![], 5), "past the end");

    let order = &first[0];
    assert!(!order.id.is_empty());
    assert_eq!(
        (order.user_id.as_str(), order.activity_type.as_str(), order.occurred_at, order.received_at),
        ("u1", "PURCHASE", at("2026-03-05T00:00:00.5Z"), at("2026-03-20T00:00:00Z"))
    );
    assert_eq!(order.attributes, json!({"amount": 9.5}).as_object().cloned().unwrap());
    assert!(second[0].attributes.is_empty(), "no attributes read back as an empty object");

    let login = "LOGIN".parse().unwrap();
    let Page { items: logins, total, .. } = store.recent(&user("u1"), Some(&login), page(1, 10)).await.unwrap();
    assert_eq!((ids(&logins), total), (vec!["third-login".into(), "second-login".into(), "first-login".into()], 3));
    let quest = "QUEST_COMPLETED".parse().unwrap();
    assert_eq!(page_of(store.recent(&user("u1"), Some(&quest), page(1, 10)).await.unwrap()), (vec![], 0));
    assert_eq!(page_of(store.recent(&user("nobody"), None, page(1, 10)).await.unwrap()), (vec![], 0));

    let same_instant: Vec<NewActivity> =
        (0..5).map(|i| activity(&format!("tie-{i}"), "u3", "LOGIN", "2026-03-07T00:00:00Z", json!({}))).collect();
    store.insert_batch(same_instant).await.unwrap();
    let mut paged = Vec::new();
    for number in 1..=5 {
        paged.extend(ids(&store.recent(&user("u3"), Some(&login), page(number, 1)).await.unwrap().items));
    }
    let Page { items: whole, .. } = store.recent(&user("u3"), None, page(1, 5)).await.unwrap();
    assert_eq!(paged, ids(&whole), "one order for ties, page after page");
    assert_eq!(paged.iter().collect::<BTreeSet<_>>().len(), 5, "each tie exactly once");
}

/// Service keys have unique digests, are found by digest, and are revoked once (a second
/// revocation keeps the first time); each change writes one audit entry.
pub async fn service_keys_are_found_by_digest_and_revoked_once(store: &(impl ServiceKeyStore + EventStore)) {
    let actor = AuditActor::system("contract");
    let key = ServiceKey {
        id: ServiceKeyId::generate(),
        name: "game-1".into(),
        scopes: vec![Scope::ActivitiesWrite],
        secret_digest: "d1".into(),
        created_at: at("2026-03-01T00:00:00Z"),
        created_by: user("admin"),
        revoked_at: None,
    };
    let audit = actor.entry("service_key.create", ("service_key", key.id.as_str()), None, None);
    store.insert_service_key(&key, &audit).await.unwrap();
    let same_digest = ServiceKey { id: ServiceKeyId::generate(), ..key.clone() };
    assert!(matches!(store.insert_service_key(&same_digest, &audit).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.service_key_by_digest("d1").await.unwrap(), Some(key.clone()));
    assert_eq!(store.service_key_by_digest("d2").await.unwrap(), None);

    let revoke = actor.entry("service_key.revoke", ("service_key", key.id.as_str()), None, None);
    store.revoke_service_key(&key.id, at("2026-03-02T00:00:00Z"), &revoke).await.unwrap();
    let revoked = store.service_key(&key.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(at("2026-03-02T00:00:00Z")));
    let again = store.revoke_service_key(&key.id, at("2026-03-03T00:00:00Z"), &revoke).await;
    assert!(matches!(again, Err(StoreError::Conflict(Conflict::AlreadyRevoked))), "{again:?}");
    assert_eq!(store.service_key(&key.id).await.unwrap(), Some(revoked.clone()), "the first revocation stands");
    let nope = ServiceKeyId::generate();
    let unknown = store.revoke_service_key(&nope, at("2026-03-03T00:00:00Z"), &revoke).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    assert_eq!(store.service_key(&nope).await.unwrap(), None);

    let page = PageRequest { page: 1, limit: 10 };
    assert_eq!(page_of(store.list_service_keys(page).await.unwrap()), (vec![revoked], 1));
    let query = AuditQuery { target_id: Some(key.id.to_string()), ..Default::default() };
    let Page { items: entries, .. } = EventStore::list_audit(store, &query, page).await.unwrap();
    let actions: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["service_key.revoke", "service_key.create"], "one entry per change");
}

/// A page's items and total, to compare with expected ones.
fn page_of<T>(page: Page<T>) -> (Vec<T>, u64) {
    (page.items, page.total)
}
