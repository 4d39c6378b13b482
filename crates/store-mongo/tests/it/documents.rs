//! What the adapters write, read back RAW from the collections: the seed's collection and field
//! names with the seed's BSON types (`data-model.ko.md`).

use std::collections::BTreeMap;

use crate::support;

use bestow_auth::domain::{User, Username};
use bestow_auth::store::AuthStore;
use bestow_events::catalog::store::EventStore;
use bestow_events::claims::store::{ClaimStore, StockChange};
use bestow_events::domain::audience::properties::{PlayerProperties, PropertyValue};
use bestow_events::domain::audience::rule::parse_rule;
use bestow_events::domain::audience::{Audience, AudienceEstimate, AudienceKind, EstimateStatus, Rule};
use bestow_events::domain::event::{Event, EventInput, Provenance};
use bestow_events::domain::lifecycle::EventStatus;
use bestow_events::domain::ports::audiences::AudienceStore;
use bestow_events::domain::reward::RewardId;
use bestow_events::domain::saga::{ClaimRequest, ClaimStatus, FailureCode, Validation};
use bestow_kernel::audit::{AuditActor, AuditEntry};
use bestow_kernel::identity::Role;
use bestow_kernel::ids::{AudienceId, EventId, RequestId, UserId};
use bestow_store_contract::claims::step;
use bestow_store_mongo::MongoEventStore;
use bson::oid::ObjectId;
use bson::spec::ElementType;
use bson::{Bson, Document, doc};
use serde_json::json;

/// A raw view of database `db` on the test server.
async fn raw(db: &str) -> mongodb::Database {
    mongodb::Client::with_uri_str(support::uri()).await.expect("client").database(db)
}

async fn only(db: &mongodb::Database, collection: &str, filter: Document) -> Document {
    db.collection::<Document>(collection).find_one(filter).await.expect("read").expect("document present")
}

#[track_caller]
fn assert_type(document: &Document, key: &str, expected: ElementType) {
    let value = document.get(key).unwrap_or_else(|| panic!("missing field `{key}` in {document}"));
    assert_eq!(value.element_type(), expected, "field `{key}` of {document}");
}

#[track_caller]
fn assert_number(document: &Document, key: &str) {
    let value = document.get(key).unwrap_or_else(|| panic!("missing field `{key}` in {document}"));
    assert!(matches!(value, Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_)), "`{key}` is a Number: {value:?}");
}

#[tokio::test]
async fn users_have_the_seed_fields_and_types() {
    let (store, db_name) = support::fresh_auth_store().await;
    let user = User::new(&Username::parse("Carol", "/username").unwrap(), "$2b$hash".into(), vec![Role::Admin]);
    store.insert_user(&user, None).await.unwrap();

    let stored = only(&raw(&db_name).await, "users", doc! {}).await;
    assert_type(&stored, "_id", ElementType::ObjectId);
    assert_eq!(stored.get_object_id("_id").unwrap().to_hex(), user.id);
    assert_eq!(stored.get_str("username").unwrap(), "Carol", "the spelling is kept");
    assert_eq!(stored.get_str("password").unwrap(), "$2b$hash");
    assert_eq!(stored.get_array("roles").unwrap(), &vec![Bson::String("ADMIN".into())]);
    assert_type(&stored, "createdAt", ElementType::DateTime);
    assert_type(&stored, "updatedAt", ElementType::DateTime);
    assert!(stored.get_bool("isActive").unwrap());
}

fn event_with_conditions() -> Event {
    let input: EventInput = serde_json::from_value(json!({
        "eventName": "raw", "description": "documents", "startDate": "2026-01-01T00:00:00Z",
        "endDate": "2030-01-01T00:00:00Z", "conditions": {"type": "LOGIN_STREAK", "days": 7},
        "rewards": [
            { "rewardType": "POINT", "rewardName": "1000 points", "details": { "points": 1000 },
              "quantityPerUser": 1, "totalStock": 10 },
            { "rewardType": "COUPON", "rewardName": "coupon", "details":
                { "couponCode": "WELCOME2025", "discountRate": 0.1, "description": "10%" },
              "quantityPerUser": 1, "totalStock": -1 },
        ],
    }))
    .unwrap();
    let provenance =
        Provenance { event_id: EventId::generate(), created_by: "operator-1".into(), now: bestow_kernel::time::now() };
    let mut event = input.into_event(provenance, RewardId::generate).unwrap();
    event.status = EventStatus::Active;
    event
}

/// A fresh store (and its database's name) holding [`event_with_conditions`].
async fn store_with_an_event() -> (MongoEventStore, String, Event) {
    let (store, db_name) = support::fresh_event_store().await;
    let event = event_with_conditions();
    let audit = AuditActor::system("test").entry("event.create", ("event", event.id.as_str()), None, None);
    store.insert_event(&event, &audit).await.unwrap();
    (store, db_name, event)
}

#[tokio::test]
async fn events_and_requests_have_the_seed_fields_and_types() {
    let (store, db_name, event) = store_with_an_event().await;
    let now = bestow_kernel::time::now();
    let request = ClaimRequest::new(
        bestow_kernel::ids::new_object_id(),
        RequestId::parse("55555555-5555-4555-8555-555555555555").unwrap(),
        UserId::parse("player-1").unwrap(),
        &event,
        now,
    );
    store.insert_request(&request, &[]).await.unwrap();
    let next = ClaimRequest {
        version: request.version + 1,
        ..request.after_validation(Validation::Passed, now).after_allocation("a1", now)
    };
    let reward_id = event.rewards[0].reward_id().as_str();
    let reserve = StockChange::reserve(reward_id, 1, Some(&format!("a1:{reward_id}")));
    store.commit(&request, &step(&next, &[reserve]), None).await.unwrap();
    let db = raw(&db_name).await;

    let stored = only(&db, "events", doc! {}).await;
    assert_eq!(stored.get_object_id("_id").unwrap().to_hex(), event.id.as_str());
    assert_eq!(stored.get_str("eventName").unwrap(), "raw");
    assert_eq!(stored.get_str("description").unwrap(), "documents");
    assert_type(&stored, "startDate", ElementType::DateTime);
    assert_type(&stored, "endDate", ElementType::DateTime);
    assert_eq!(stored.get_document("conditions").unwrap().get_str("type").unwrap(), "LOGIN_STREAK");
    assert_eq!(stored.get_str("status").unwrap(), "ACTIVE");
    assert_eq!(stored.get_str("createdBy").unwrap(), "operator-1");
    assert_type(&stored, "createdAt", ElementType::DateTime);
    assert_type(&stored, "updatedAt", ElementType::DateTime);
    let rewards = stored.get_array("rewards").unwrap();
    assert_eq!(rewards.len(), 2, "rewards are embedded");
    let point = rewards[0].as_document().unwrap();
    assert_type(point, "rewardId", ElementType::ObjectId);
    assert_eq!(point.get_object_id("rewardId").unwrap().to_hex(), event.rewards[0].reward_id().as_str());
    assert_eq!(point.get_str("rewardType").unwrap(), "POINT");
    assert_eq!(point.get_str("rewardName").unwrap(), "1000 points");
    assert_number(point.get_document("details").unwrap(), "points");
    for key in ["quantityPerUser", "totalStock", "remainingStock"] {
        assert_number(point, key);
    }
    let remaining = match point.get("remainingStock") {
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Int32(n)) => i64::from(*n),
        other => panic!("remainingStock: {other:?}"),
    };
    assert_eq!(remaining, 9, "the reservation moved the embedded counter");
    assert_eq!(stored.get_array("stockHolds").map(Vec::len).unwrap_or(0), 0, "the recorded hold is dropped");
    let coupon = rewards[1].as_document().unwrap();
    assert_eq!(coupon.get_document("details").unwrap().get_f64("discountRate").unwrap(), 0.1);
    assert_eq!(coupon.get("totalStock"), Some(&Bson::Null), "unlimited stock is null");

    let stored = only(&db, "user_reward_requests", doc! {}).await;
    assert_eq!(stored.get_object_id("_id").unwrap().to_hex(), request.id);
    assert_eq!(stored.get_str("requestId").unwrap(), request.request_id.to_string());
    assert_eq!(stored.get_str("userId").unwrap(), "player-1");
    assert_eq!(stored.get_object_id("eventId").unwrap().to_hex(), event.id.as_str());
    let snapshot = stored.get_document("eventSnapshot").unwrap();
    assert_eq!(snapshot.get_str("eventName").unwrap(), "raw");
    assert_type(snapshot, "startDate", ElementType::DateTime);
    assert_eq!(stored.get_str("status").unwrap(), next.status.as_str());
    assert_type(&stored, "currentSagaStep", ElementType::String);
    let to_process = stored.get_array("rewardsToProcess").unwrap();
    assert_eq!(to_process.len(), 2);
    let first = to_process[0].as_document().unwrap();
    assert_type(first.get_document("rewardDefinition").unwrap(), "rewardId", ElementType::ObjectId);
    assert_eq!(first.get_str("grantStatus").unwrap(), "PENDING_GRANT");
    assert_number(first, "attemptCount");
    assert_number(&stored, "retryCount");
    assert_type(&stored, "compensatingActionsLog", ElementType::Array);
    assert_type(&stored, "failureReason", ElementType::Null);
    assert_type(&stored, "failureCode", ElementType::Null);
    assert_type(&stored, "claimedAt", ElementType::Null);
    assert_type(&stored, "createdAt", ElementType::DateTime);
    assert_type(&stored, "updatedAt", ElementType::DateTime);
    assert_type(&stored, "claimSlot", ElementType::String);
    let history = stored.get_array("history").unwrap();
    assert_type(history[0].as_document().unwrap(), "at", ElementType::DateTime);

    // And the adapter reads back exactly what it wrote.
    assert_eq!(store.request(&request.request_id).await.unwrap(), Some(next));
    let mut expected = event.clone();
    expected.rewards = store.event(&event.id).await.unwrap().unwrap().rewards;
    assert_eq!(store.event(&event.id).await.unwrap(), Some(expected));
}

#[tokio::test]
async fn a_free_claim_slot_is_absent_and_indexes_exist() {
    let (store, db_name, event) = store_with_an_event().await;
    let request = ClaimRequest::new(
        bestow_kernel::ids::new_object_id(),
        RequestId::parse("66666666-6666-4666-8666-666666666666").unwrap(),
        UserId::parse("player-2").unwrap(),
        &event,
        bestow_kernel::time::now(),
    );
    store.insert_request(&request, &[]).await.unwrap();
    let db = raw(&db_name).await;
    let stored = only(&db, "user_reward_requests", doc! {}).await;
    assert!(stored.get("claimSlot").is_none(), "no slot held: the field is absent, {stored}");

    let names = db.collection::<Document>("user_reward_requests").list_index_names().await.unwrap();
    for name in ["user_reward_requests_requestId", "user_reward_requests_claimSlot", "user_reward_requests_user"] {
        assert!(names.iter().any(|n| n == name), "index {name} in {names:?}");
    }
    let names = db.collection::<Document>("activities").list_index_names().await.unwrap();
    for name in ["activities_user_type_occurredAt", "activities_user_occurredAt"] {
        assert!(names.iter().any(|n| n == name), "index {name} in {names:?}");
    }
}

/// A request written before failure codes were recorded has no `failureCode` field at all: it
/// reads back without a code and counts, with the requests whose code is null, under its status.
#[tokio::test]
async fn a_request_written_before_failure_codes_reads_back_and_counts_under_its_status() {
    let (store, db_name, event) = store_with_an_event().await;
    let now = bestow_kernel::time::now();
    let mut ids = Vec::new();
    for n in 0..2 {
        let mut request = ClaimRequest::new(
            bestow_kernel::ids::new_object_id(),
            RequestId::parse(&format!("77777777-7777-4777-8777-{n:012}")).unwrap(),
            UserId::parse(&format!("player-{n}")).unwrap(),
            &event,
            now,
        );
        (request.status, request.failure_reason) = (ClaimStatus::FailedRolledBack, Some("refused".into()));
        store.insert_request(&request, &[]).await.unwrap();
        ids.push(request.request_id);
    }
    let requests = raw(&db_name).await.collection::<Document>("user_reward_requests");
    let unset = doc! { "$unset": { "failureCode": "" } };
    requests.update_one(doc! { "requestId": ids[0].to_string() }, unset).await.unwrap();
    let legacy = only(&raw(&db_name).await, "user_reward_requests", doc! { "requestId": ids[0].to_string() }).await;
    assert!(legacy.get("failureCode").is_none(), "{legacy}");

    let read = store.request(&ids[0]).await.unwrap().unwrap();
    assert_eq!((read.failure_reason.as_deref(), read.failure_code), (Some("refused"), None));
    let stats = store.event_claim_stats(&event.id, now).await.unwrap();
    assert_eq!(stats.failures.len(), 1, "one group, absent and null codes alike: {:?}", stats.failures);
    let codes: Vec<(Option<FailureCode>, Option<ClaimStatus>, u64)> =
        stats.failure_codes().into_iter().map(|group| (group.failure_code, group.status, group.count)).collect();
    assert_eq!(codes, [(None, Some(ClaimStatus::FailedRolledBack), 2)]);
}

fn audience_audit(id: &AudienceId) -> AuditEntry {
    AuditActor::system("test").entry("audience.create", ("audience", id.as_str()), None, None)
}

/// An audience of `kind` with `rule`, counting generation `generation`.
fn audience(kind: AudienceKind, rule: Option<Rule>, generation: &str) -> Audience {
    let now = bestow_kernel::time::now();
    Audience {
        id: AudienceId::generate(),
        name: "Korea".into(),
        description: "players in Korea".into(),
        kind,
        references: rule.as_ref().map(Rule::references).unwrap_or_default(),
        rule,
        member_count: 0,
        member_generation: generation.into(),
        estimate: None,
        created_by: "operator-1".into(),
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

/// What the audience adapter writes, read raw: `audiences` with the rule as a subdocument and
/// its references and id as ObjectIds, the estimate as a subdocument of int64 counts and dates;
/// `audience_members` one document per member and generation, keyed by
/// `audienceId:generation:userId`; `player_properties` keyed by the player's id as text, values typed;
/// `audience_sticky` keyed by `userId:eventId`; and the collections and indexes exist from the
/// store's start.
#[tokio::test]
async fn audiences_members_properties_and_sticky_memberships_have_their_fields_and_types() {
    let (store, db_name) = support::fresh_event_store().await;
    let db = raw(&db_name).await;
    let collections = db.list_collection_names().await.unwrap();
    for name in ["audiences", "audience_members", "player_properties", "audience_sticky"] {
        assert!(collections.iter().any(|c| c == name), "{name} exists before any write: {collections:?}");
    }

    let list = audience(AudienceKind::List, None, "g1");
    store.insert_audience(&list, &audience_audit(&list.id)).await.unwrap();
    let tree = json!({ "type": "AND", "subConditions": [
        { "type": "PROPERTY", "name": "country", "op": "IN", "value": ["KR"] },
        { "type": "IN_AUDIENCE", "audienceId": list.id.as_str() },
    ] });
    let rule = audience(AudienceKind::Rule, Some(parse_rule(&tree, "").unwrap()), "");
    store.insert_audience(&rule, &audience_audit(&rule.id)).await.unwrap();

    let stored = only(&db, "audiences", doc! { "_id": ObjectId::parse_str(rule.id.as_str()).unwrap() }).await;
    let keys: Vec<&str> = stored.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "_id",
            "name",
            "description",
            "kind",
            "rule",
            "references",
            "memberCount",
            "memberGeneration",
            "estimate",
            "createdBy",
            "createdAt",
            "updatedAt",
            "version"
        ]
    );
    assert_eq!(stored.get_str("kind").unwrap(), "RULE");
    let stored_rule = stored.get_document("rule").unwrap();
    assert_eq!(stored_rule.get_str("type").unwrap(), "AND");
    let leaf = stored_rule.get_array("subConditions").unwrap()[1].as_document().unwrap();
    assert_eq!(leaf.get_str("audienceId").unwrap(), list.id.as_str(), "the rule is its JSON");
    assert_eq!(
        stored.get_array("references").unwrap(),
        &vec![Bson::ObjectId(ObjectId::parse_str(list.id.as_str()).unwrap())]
    );
    for (key, expected) in [
        ("name", ElementType::String),
        ("description", ElementType::String),
        ("memberCount", ElementType::Int64),
        ("memberGeneration", ElementType::String),
        ("estimate", ElementType::Null),
        ("createdBy", ElementType::String),
        ("createdAt", ElementType::DateTime),
        ("updatedAt", ElementType::DateTime),
        ("version", ElementType::Int64),
    ] {
        assert_type(&stored, key, expected);
    }
    let listed = only(&db, "audiences", doc! { "_id": ObjectId::parse_str(list.id.as_str()).unwrap() }).await;
    assert_eq!((listed.get_str("kind").unwrap(), listed.get("rule")), ("LIST", Some(&Bson::Null)));

    let started = bestow_kernel::time::now();
    let estimate = AudienceEstimate {
        job_id: "job-1".into(),
        status: EstimateStatus::Running,
        members: 3,
        scanned: 10,
        total: 40,
        started_at: started,
        finished_at: None,
        error: None,
    };
    assert!(store.record_estimate(&rule.id, &estimate).await.unwrap());
    let stored = only(&db, "audiences", doc! { "_id": ObjectId::parse_str(rule.id.as_str()).unwrap() }).await;
    let stored_estimate = stored.get_document("estimate").unwrap();
    assert_eq!(stored_estimate.get_str("jobId").unwrap(), "job-1");
    assert_eq!(stored_estimate.get_str("status").unwrap(), "RUNNING");
    for key in ["members", "scanned", "total"] {
        assert_type(stored_estimate, key, ElementType::Int64);
    }
    assert_type(stored_estimate, "startedAt", ElementType::DateTime);
    assert_type(stored_estimate, "finishedAt", ElementType::Null);
    assert_eq!(store.audience(&rule.id).await.unwrap().unwrap().estimate, Some(estimate));

    let members = [UserId::parse("player-1").unwrap(), UserId::parse("player-2").unwrap()];
    assert_eq!(store.stage_members(&list.id, "g1", &members, started).await.unwrap(), 2);
    let audit = AuditActor::system("test").entry("audience.member.add", ("audience", list.id.as_str()), None, None);
    let added = UserId::parse("player-3").unwrap();
    assert!(store.add_member(&list.id, "g1", &added, started, &audit).await.unwrap());
    let member = only(&db, "audience_members", doc! { "userId": "player-1" }).await;
    assert_eq!(member.get_str("_id").unwrap(), format!("{}:g1:player-1", list.id), "the member's key is its _id");
    assert_eq!(member.get_object_id("audienceId").unwrap().to_hex(), list.id.as_str());
    assert_eq!(member.get_str("generation").unwrap(), "g1");
    assert_type(&member, "addedAt", ElementType::DateTime);
    let listed = only(&db, "audiences", doc! { "_id": ObjectId::parse_str(list.id.as_str()).unwrap() }).await;
    assert_number(&listed, "memberCount");

    let mut properties = PlayerProperties::empty(UserId::parse("player-1").unwrap(), started);
    properties.properties = BTreeMap::from([
        ("country".to_owned(), PropertyValue::Text("KR".into())),
        ("vipLevel".to_owned(), PropertyValue::Number(3.0)),
        ("ratio".to_owned(), PropertyValue::Number(0.5)),
        ("payer".to_owned(), PropertyValue::Bool(true)),
    ]);
    properties.version = 1;
    let audit = AuditActor::system("test").entry("player.properties", ("player", "player-1"), None, None);
    store.write_player_properties(&properties, 0, &audit).await.unwrap();
    let stored = only(&db, "player_properties", doc! {}).await;
    assert_eq!(stored.get_str("_id").unwrap(), "player-1", "the player's id as text");
    let values = stored.get_document("properties").unwrap();
    assert_eq!(values.get_str("country").unwrap(), "KR");
    assert_eq!(values.get("vipLevel"), Some(&Bson::Int64(3)), "a whole number is an int64");
    assert_eq!(values.get("ratio"), Some(&Bson::Double(0.5)));
    assert_eq!(values.get("payer"), Some(&Bson::Boolean(true)));
    assert_type(&stored, "updatedAt", ElementType::DateTime);
    assert_type(&stored, "version", ElementType::Int64);
    assert_eq!(store.player_properties(&properties.user_id).await.unwrap(), Some(properties));

    let event_id = EventId::generate();
    store.stick(&UserId::parse("player-1").unwrap(), &event_id, started).await.unwrap();
    let stuck = only(&db, "audience_sticky", doc! {}).await;
    assert_eq!(stuck.get_str("_id").unwrap(), format!("player-1:{event_id}"));
    assert_eq!(stuck.get_str("userId").unwrap(), "player-1");
    assert_eq!(stuck.get_object_id("eventId").unwrap().to_hex(), event_id.as_str());
    assert_type(&stuck, "stuckAt", ElementType::DateTime);

    for (collection, expected) in [
        ("audiences", &["audiences_createdAt", "audiences_references"][..]),
        ("audience_members", &["audience_members_member"][..]),
    ] {
        let names = db.collection::<Document>(collection).list_index_names().await.unwrap();
        for name in expected {
            assert!(names.iter().any(|n| n == name), "index {name} in {names:?}");
        }
    }
}
