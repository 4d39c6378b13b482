//! Contract of [`EventStore`].

use bestow_events::catalog::store::{EventFilter, EventSortKey, EventStore, TopUp};
use bestow_events::domain::event::{Event, EventInput, Provenance};
use bestow_events::domain::lifecycle::EventStatus;
use bestow_events::domain::reward::RewardId;
use bestow_kernel::audit::{AuditActor, AuditEntry};
use bestow_kernel::ids::EventId;
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::StoreError;
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
    draft(json!({
        "eventName": "contract", "startDate": "2026-01-01T00:00:00Z", "endDate": "2030-01-01T00:00:00Z",
        "rewards": rewards,
    }))
}

/// The DRAFT event an operator's `input` creates.
fn draft(input: serde_json::Value) -> Event {
    let input: EventInput = serde_json::from_value(input).unwrap();
    let provenance =
        Provenance { event_id: EventId::generate(), created_by: "operator".into(), now: bestow_kernel::time::now() };
    input.into_event(provenance, RewardId::generate).unwrap()
}

/// A DRAFT daily event (Seoul, 05:00) with two tiers: the first gated by a streak counted over
/// the whole event, each with its own limited reward.
pub fn tiered_daily_event() -> Event {
    let reward = |name: &str| {
        json!({ "rewardType": "POINT", "rewardName": name, "details": { "points": 10 },
                "quantityPerUser": 1, "totalStock": 5 })
    };
    draft(json!({
        "eventName": "tiers", "startDate": "2026-01-01T00:00:00Z", "endDate": "2030-01-01T00:00:00Z",
        "timezone": "Asia/Seoul", "recurrence": { "period": "DAILY", "resetTime": "05:00" },
        "tiers": [
            { "tierId": "t1", "tierName": "One", "rewards": [reward("one")],
              "conditions": { "type": "LOGIN_STREAK", "days": 3, "scope": "EVENT" } },
            { "tierId": "t2", "tierName": "Two", "rewards": [reward("two")] },
        ],
    }))
}

/// Recurrence and tiers (with their conditions and the rewards they name) read back as
/// written, and a tier's reward stock is topped up like any other.
pub async fn recurrence_and_tiers_round_trip(store: &impl EventStore) {
    let event = tiered_daily_event();
    store.insert_event(&event, &audit("event.create", &event.id)).await.unwrap();
    assert_eq!(store.event(&event.id).await.unwrap().unwrap(), event);
    let second_reward = event.tiers[1].reward_ids[0].as_str().to_owned();
    let topped = store.top_up(&top_up(&event.id, &second_reward, 3)).await.unwrap();
    let stored = store.event(&event.id).await.unwrap().unwrap();
    assert_eq!(stored, topped);
    assert_eq!((stored.tiers.clone(), stored.recurrence), (event.tiers.clone(), event.recurrence));
    let stocks: Vec<_> = stored.rewards.iter().map(|r| r.remaining_stock()).collect();
    assert_eq!(stocks, [Some(5), Some(8)]);
    let mut one_time = stored.clone();
    one_time.recurrence = None;
    one_time.version += 1;
    store.replace_event(&one_time, stored.version, &audit("event.update", &event.id)).await.unwrap();
    assert_eq!(store.event(&event.id).await.unwrap().unwrap().recurrence, None);
}

pub fn audit(action: &str, target: impl AsRef<str>) -> AuditEntry {
    AuditActor::system("contract").entry(action, ("event", target.as_ref()), None, None)
}

/// `add` units for `reward_id` of `event_id`, now, by the platform.
fn top_up(event_id: &EventId, reward_id: &str, add: i64) -> TopUp {
    let audit = audit("reward.topup", event_id);
    let (event_id, reward_id) = (event_id.clone(), reward_id.to_owned());
    TopUp { event_id, reward_id, add, at: bestow_kernel::time::now(), audit }
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
    store.top_up(&top_up(&draft.id, &reward, 3)).await.unwrap();
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
    let after = store.top_up(&top_up(&limited.id, &reward, 10)).await.unwrap();
    assert_eq!(after.rewards[0].reward().stock().total_stock(), Some(15));
    assert_eq!(after.rewards[0].remaining_stock(), Some(15));
    assert_eq!(after.version, limited.version + 1);
    let unlimited = event(None);
    store.insert_event(&unlimited, &audit("event.create", &unlimited.id)).await.unwrap();
    let reward = unlimited.rewards[0].reward_id().as_str().to_owned();
    let refused = store.top_up(&top_up(&unlimited.id, &reward, 10)).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    let unknown = store.top_up(&top_up(&limited.id, "ffffffffffffffffffffffff", 1)).await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

fn named(name: &str, start: &str, end: &str, status: EventStatus) -> Event {
    let mut event = event(Some(5));
    event.event_name = name.into();
    event.start_date = start.parse().unwrap();
    event.end_date = end.parse().unwrap();
    event.status = status;
    event
}

/// Lists filter by status, activity at an instant and name (case and metacharacters taken
/// literally), sort and page; the expiry sweep moves exactly the events past their end.
pub async fn event_lists_filter_sort_and_page_and_due_events_expire(store: &impl EventStore) {
    let events = [
        named("Spring Login", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", EventStatus::Active),
        named("summer (50%+) sale", "2026-06-01T00:00:00Z", "2030-07-01T00:00:00Z", EventStatus::Active),
        named("Autumn draft", "2026-09-01T00:00:00Z", "2030-10-01T00:00:00Z", EventStatus::Draft),
    ];
    for event in &events {
        store.insert_event(event, &audit("event.create", &event.id)).await.unwrap();
    }
    let page = PageRequest { page: 1, limit: 10 };
    let by_start = EventFilter { sort: EventSortKey::StartDate, descending: true, ..Default::default() };
    let Page { items: listed, total, .. } =
        store.list_events(&by_start, PageRequest { page: 1, limit: 2 }).await.unwrap();
    assert_eq!(total, 3);
    let names: Vec<_> = listed.iter().map(|e| e.event_name.as_str()).collect();
    assert_eq!(names, ["Autumn draft", "summer (50%+) sale"]);
    let Page { items: listed, .. } = store.list_events(&by_start, PageRequest { page: 2, limit: 2 }).await.unwrap();
    assert_eq!(listed[0].event_name, "Spring Login");

    let literal = EventFilter { name_contains: Some("(50%+)".into()), ..Default::default() };
    assert_eq!(store.list_events(&literal, page).await.unwrap().total, 1, "metacharacters match literally");
    let any_case = EventFilter { name_contains: Some("SPRING".into()), ..Default::default() };
    assert_eq!(store.list_events(&any_case, page).await.unwrap().total, 1, "case is ignored");
    let active = EventFilter {
        statuses: Some(vec![EventStatus::Active]),
        active_at: Some("2026-06-15T00:00:00Z".parse().unwrap()),
        ..Default::default()
    };
    let Page { items: listed, total, .. } = store.list_events(&active, page).await.unwrap();
    assert_eq!((listed[0].id.as_str(), total), (events[1].id.as_str(), 1));
    let none = EventFilter { statuses: Some(vec![]), ..Default::default() };
    assert_eq!(store.list_events(&none, page).await.unwrap().total, 0);

    let due = store.due_to_expire("2026-05-01T00:00:00Z".parse().unwrap()).await.unwrap();
    assert_eq!(due, [events[0].id.clone()]);
    let expired = events[0].expired("2026-05-01T00:00:00Z".parse().unwrap()).unwrap();
    store.replace_event(&expired, events[0].version, &audit("event.expire", &expired.id)).await.unwrap();
    let stored = store.event(&events[0].id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.version), (EventStatus::Expired, events[0].version + 1));
    assert!(store.due_to_expire("2026-05-01T00:00:00Z".parse().unwrap()).await.unwrap().is_empty());
}
