//! Many concurrent claims against a limited-stock reward: the stock never oversells and each
//! player holds at most one claim slot, whether the reservation comes with the insert or with
//! a later commit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use bestow_core::audit::AuditActor;
use bestow_core::store::StoreError;
use bestow_events::claims::store::{CONFLICT_CLAIM_SLOT, CONFLICT_STOCK, ClaimStore, Inserted, StockChange};
use bestow_events::domain::event::{Event, EventInput, Provenance};
use bestow_events::domain::lifecycle::EventStatus;
use bestow_events::domain::reward::RewardId;
use bestow_events::domain::saga::{ClaimRequest, Validation};
use bestow_events::store::EventStore;
use bestow_store_mongo::MongoEventStore;
use serde_json::json;

const STOCK: i64 = 5;
const PLAYERS: usize = 12;
/// Requests per player: the extra ones must lose the claim slot.
const REQUESTS_PER_PLAYER: usize = 2;

async fn limited_event(store: &MongoEventStore) -> Event {
    let input: EventInput = serde_json::from_value(json!({
        "eventName": "rush", "startDate": "2026-01-01T00:00:00Z", "endDate": "2030-01-01T00:00:00Z",
        "rewards": [{ "rewardType": "POINT", "rewardName": "p", "details": { "points": 1 },
                      "quantityPerUser": 1, "totalStock": STOCK }],
    }))
    .unwrap();
    let provenance = Provenance {
        event_id: bestow_core::ids::new_object_id(),
        created_by: "operator".into(),
        now: bestow_core::time::now(),
    };
    let mut event = input.into_event(provenance, || RewardId::generated(bestow_core::ids::new_object_id())).unwrap();
    event.status = EventStatus::Active;
    let audit = AuditActor::system("test").entry("event.create", ("event", &event.id), None, None);
    store.insert_event(&event, &audit).await.unwrap();
    event
}

fn request(event: &Event, player: usize, attempt: usize) -> ClaimRequest {
    ClaimRequest::new(
        bestow_core::ids::new_object_id(),
        format!("00000000-0000-4000-8000-{player:06}{attempt:06}"),
        format!("player-{player}"),
        event,
        bestow_core::time::now(),
    )
}

/// The request validated (taking the claim slot) and allocated, as the saga commits it.
fn reserved(current: &ClaimRequest) -> ClaimRequest {
    let now = bestow_core::time::now();
    ClaimRequest {
        version: current.version + 1,
        ..current.after_validation(Validation::Passed, now).after_allocation(now)
    }
}

fn reserve(event: &Event) -> Vec<StockChange> {
    vec![StockChange { reward_id: event.rewards[0].reward_id().as_str().into(), delta: -1 }]
}

/// Checks the outcome of every attempt and the stored state.
async fn check(store: &MongoEventStore, event: &Event, outcomes: Vec<(usize, Result<(), StoreError>)>) {
    let mut won_by_player: HashMap<usize, usize> = HashMap::new();
    for (player, outcome) in &outcomes {
        match outcome {
            Ok(()) => *won_by_player.entry(*player).or_default() += 1,
            Err(StoreError::Conflict(CONFLICT_STOCK | CONFLICT_CLAIM_SLOT)) => {}
            Err(other) => panic!("a claim failed with neither a stock nor a slot conflict: {other:?}"),
        }
    }
    let won: usize = won_by_player.values().sum();
    assert!(won_by_player.values().all(|&n| n == 1), "a player won twice: {won_by_player:?}");
    assert_eq!(won, usize::try_from(STOCK).unwrap(), "every unit is claimed once the rush is over");
    let remaining = store.event(&event.id).await.unwrap().unwrap().rewards[0].remaining_stock();
    assert_eq!(remaining, Some(0), "stock never goes negative and every reservation is counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_never_oversell_nor_double_claim() {
    let (store, _db) = support::fresh_event_store().await;
    let store = Arc::new(store);
    let event = Arc::new(limited_event(&store).await);
    let mut tasks = tokio::task::JoinSet::new();
    for player in 0..PLAYERS {
        for attempt in 0..REQUESTS_PER_PLAYER {
            let (store, event) = (store.clone(), event.clone());
            tasks.spawn(async move {
                let next = reserved(&request(&event, player, attempt));
                let outcome = store.insert_request(&next, &reserve(&event)).await.map(|inserted| {
                    assert_eq!(inserted, Inserted::Created);
                });
                (player, outcome)
            });
        }
    }
    let outcomes = tasks.join_all().await;
    check(&store, &event, outcomes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_never_oversell_nor_double_claim() {
    let (store, _db) = support::fresh_event_store().await;
    let store = Arc::new(store);
    let event = Arc::new(limited_event(&store).await);
    let mut pending = Vec::new();
    for player in 0..PLAYERS {
        for attempt in 0..REQUESTS_PER_PLAYER {
            let current = request(&event, player, attempt);
            store.insert_request(&current, &[]).await.unwrap();
            pending.push((player, current));
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (player, current) in pending {
        let (store, event) = (store.clone(), event.clone());
        tasks.spawn(async move { (player, store.commit(&current, &reserved(&current), &reserve(&event), None).await) });
    }
    let outcomes = tasks.join_all().await;
    check(&store, &event, outcomes).await;
}
