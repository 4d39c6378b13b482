//! Contract of [`EventStore`].

use std::sync::Arc;

use bestow_core::audit::{AuditActor, AuditBuilder, AuditEntry};
use bestow_core::store::StoreError;
use bestow_events::domain::event::{Event, EventInput, Provenance};
use bestow_events::domain::lifecycle::EventStatus;
use bestow_events::domain::reward::RewardId;
use bestow_events::store::EventStore;
use serde_json::json;

/// A DRAFT event with one POINT reward of `stock` units (`None`: unlimited).
pub fn event(stock: Option<i64>) -> Event {
    event_with_stocks(&[stock.unwrap_or(-1)])
}

/// A DRAFT event with one POINT reward per entry of `stocks` (`-1`: unlimited).
pub fn event_with_stocks(stocks: &[i64]) -> Event {
    let rewards: Vec<_> = stocks
        .iter()
        .enumerate()
        .map(|(i, stock)| {
            json!({ "rewardType": "POINT", "rewardName": format!("points {i}"), "details": { "points": 10 },
                    "quantityPerUser": 1, "totalStock": stock })
        })
        .collect();
    let input: EventInput = serde_json::from_value(json!({
        "eventName": "contract", "startDate": "2026-01-01T00:00:00Z", "endDate": "2030-01-01T00:00:00Z",
        "rewards": rewards,
    }))
    .unwrap();
    let provenance = Provenance {
        event_id: bestow_core::ids::new_object_id(),
        created_by: "operator".into(),
        now: bestow_core::time::now(),
    };
    input.into_event(provenance, || RewardId::generated(bestow_core::ids::new_object_id())).unwrap()
}

pub fn audit(action: &str, target: &str) -> AuditEntry {
    AuditActor::system("contract").entry(action, ("event", target), None, None)
}

fn builder() -> AuditBuilder<Event> {
    Arc::new(|_: &Event, after: &Event| audit("event.test", &after.id))
}

/// Writes are compare-and-set on `version`: a stale writer gets `Conflict`, a missing event
/// `NotFound`, and nothing is written.
pub async fn replace_is_compare_and_set_on_version(store: &impl EventStore) {
    let original = event(Some(5));
    store.insert_event(&original, &audit("event.create", &original.id)).await.unwrap();
    let mut renamed = original.clone();
    renamed.event_name = "renamed".into();
    renamed.version = 2;
    store.replace_event(&renamed, 1, &audit("event.update", &original.id)).await.unwrap();
    let mut stale = original.clone();
    stale.event_name = "stale".into();
    stale.version = 2;
    let lost = store.replace_event(&stale, 1, &audit("event.update", &original.id)).await;
    assert!(matches!(lost, Err(StoreError::Conflict(_))), "a stale version must conflict: {lost:?}");
    let stored = store.event(&original.id).await.unwrap().unwrap();
    assert_eq!((stored.event_name.as_str(), stored.version), ("renamed", 2));
    let mut ghost = event(None);
    ghost.version = 2;
    assert!(matches!(
        store.replace_event(&ghost, 1, &audit("event.update", &ghost.id)).await,
        Err(StoreError::NotFound)
    ));
}

/// Once an event has left DRAFT, rewriting it never rewrites its stock counters: claims own
/// them, and a stale copy must not undo a reservation.
pub async fn counters_of_a_live_event_are_not_rewritten(store: &impl EventStore) {
    let draft = event(Some(5));
    store.insert_event(&draft, &audit("event.create", &draft.id)).await.unwrap();
    let mut active = draft.clone();
    active.status = EventStatus::Active;
    active.version = 2;
    store.replace_event(&active, 1, &audit("event.status", &draft.id)).await.unwrap();
    let reward = draft.rewards[0].reward_id().as_str().to_owned();
    store.top_up(&draft.id, &reward, 3, bestow_core::time::now(), builder()).await.unwrap();
    // `active` still says 5 of 5: writing it back must keep the topped-up 8 of 8.
    let mut renamed = active.clone();
    renamed.event_name = "renamed".into();
    renamed.version = 4;
    store.replace_event(&renamed, 3, &audit("event.update", &draft.id)).await.unwrap();
    let stored = store.event(&draft.id).await.unwrap().unwrap();
    assert_eq!(stored.rewards[0].reward().stock().total_stock(), Some(8));
    assert_eq!(stored.rewards[0].remaining_stock(), Some(8));
}

/// A top-up moves `totalStock` and `remainingStock` together and bumps the version; an
/// unlimited reward cannot be topped up.
pub async fn top_up_moves_both_counters(store: &impl EventStore) {
    let limited = event(Some(5));
    store.insert_event(&limited, &audit("event.create", &limited.id)).await.unwrap();
    let reward = limited.rewards[0].reward_id().as_str().to_owned();
    let after = store.top_up(&limited.id, &reward, 10, bestow_core::time::now(), builder()).await.unwrap();
    assert_eq!(after.rewards[0].reward().stock().total_stock(), Some(15));
    assert_eq!(after.rewards[0].remaining_stock(), Some(15));
    assert_eq!(after.version, limited.version + 1);
    let unlimited = event(None);
    store.insert_event(&unlimited, &audit("event.create", &unlimited.id)).await.unwrap();
    let reward = unlimited.rewards[0].reward_id().as_str().to_owned();
    let refused = store.top_up(&unlimited.id, &reward, 10, bestow_core::time::now(), builder()).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    let unknown = store.top_up(&limited.id, "ffffffffffffffffffffffff", 1, bestow_core::time::now(), builder()).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}
