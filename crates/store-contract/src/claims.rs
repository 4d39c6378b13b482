//! Contract of [`ClaimStore`] and [`LedgerStore`].

use bestow_events::catalog::store::EventStore;
use bestow_events::claims::store::{ClaimStore, Inserted, StockChange};
use bestow_events::domain::event::Event;
use bestow_events::domain::lifecycle::EventStatus;
use bestow_events::domain::saga::{ClaimRequest, ClaimStatus, ClaimTarget, FailureCode, Lease, Transition, Validation};
use bestow_events::domain::stats::{FailureCount, MinuteCount, minute_of, series_start};
use bestow_events::grants::ledger::{LedgerEntry, LedgerGrant, LedgerStore};
use bestow_kernel::ids::{EventId, RequestId, UserId};
use bestow_kernel::store::{Conflict, StoreError};

use crate::events::{audit, event, event_with_stocks, tiered_daily_event};

/// An active event with `stock` units, stored.
async fn active_event(store: &impl EventStore, stock: Option<i64>) -> Event {
    let mut event = event(stock);
    event.status = EventStatus::Active;
    store.insert_event(&event, &audit("event.create", &event.id)).await.unwrap();
    event
}

/// The request id `text` names.
fn key(text: &str) -> RequestId {
    RequestId::parse(text).unwrap()
}

/// The player `text` names.
fn user(text: &str) -> UserId {
    UserId::parse(text).unwrap()
}

fn request(event: &Event, user_id: &str, request_id: &str) -> ClaimRequest {
    ClaimRequest::new(
        bestow_kernel::ids::new_object_id(),
        key(request_id),
        user(user_id),
        event,
        bestow_kernel::time::now(),
    )
}

/// `next` as the driver would commit it after `current`.
fn advanced(current: &ClaimRequest, next: ClaimRequest) -> ClaimRequest {
    ClaimRequest { version: current.version + 1, ..next }
}

/// A named reservation of `units` of the event's first reward, as the driver makes them.
fn reserve(event: &Event, units: i64) -> Vec<StockChange> {
    let reward_id = event.rewards[0].reward_id().as_str();
    vec![StockChange::reserve(reward_id, units, Some(&format!("{}:{reward_id}", bestow_kernel::ids::new_object_id())))]
}

async fn remaining(store: &impl EventStore, event: &Event) -> Option<i64> {
    store.event(&event.id).await.unwrap().unwrap().rewards[0].remaining_stock()
}

/// `requestId` is unique: a second insert returns the stored request and writes nothing.
pub async fn request_ids_are_unique_and_replays_return_the_stored<S: EventStore + ClaimStore>(store: &S) {
    let event = active_event(store, Some(5)).await;
    let first = request(&event, "u1", "11111111-1111-4111-8111-111111111111");
    assert_eq!(store.insert_request(&first, &[]).await.unwrap(), Inserted::Created);
    let again = request(&event, "u2", "11111111-1111-4111-8111-111111111111");
    match store.insert_request(&again, &reserve(&event, 1)).await.unwrap() {
        Inserted::Existing(stored) => assert_eq!(stored.user_id, "u1"),
        Inserted::Created => panic!("a duplicate requestId was inserted"),
    }
    assert_eq!(remaining(store, &event).await, Some(5), "a replay reserves nothing");
}

/// One claim slot per player and event: a second request taking it conflicts, with nothing
/// written; a released slot can be taken again.
pub async fn the_claim_slot_is_unique<S: EventStore + ClaimStore>(store: &S) {
    let event = active_event(store, None).await;
    let now = bestow_kernel::time::now();
    let first = request(&event, "u1", "22222222-2222-4222-8222-222222222221");
    let first_validated = advanced(&first, first.after_validation(Validation::Passed, now));
    assert_eq!(store.insert_request(&first_validated, &[]).await.unwrap(), Inserted::Created);
    let second = request(&event, "u1", "22222222-2222-4222-8222-222222222222");
    store.insert_request(&second, &[]).await.unwrap();
    let taken = store
        .commit(&second, &step(&advanced(&second, second.after_validation(Validation::Passed, now)), &[]), None)
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(Conflict::ClaimSlot))), "{taken:?}");
    assert_eq!(store.request(&second.request_id).await.unwrap().unwrap().status, ClaimStatus::PendingValidation);
    let released = advanced(&first_validated, first_validated.after_condition_check(Ok(false), &retry(), now, 0.0));
    store.commit(&first_validated, &step(&released, &[]), None).await.unwrap();
    store
        .commit(&second, &step(&advanced(&second, second.after_validation(Validation::Passed, now)), &[]), None)
        .await
        .unwrap();
}

/// A player holds one claim slot per tier and period: other tiers and the next period are
/// free, the same tier in the same period is taken; `tierId` and `periodStart` read back.
pub async fn the_claim_slot_is_one_per_tier_and_period<S: EventStore + ClaimStore>(store: &S) {
    let mut event = tiered_daily_event();
    event.status = EventStatus::Active;
    store.insert_event(&event, &audit("event.create", &event.id)).await.unwrap();
    let now = bestow_kernel::time::now();
    let recurrence = event.recurrence.unwrap();
    let today = recurrence.period_at(now, event.timezone);
    let tomorrow = recurrence.period_at(today.end, event.timezone);
    let claims = [
        ("t1", today, "44444444-4444-4444-8444-444444444441", true),
        ("t2", today, "44444444-4444-4444-8444-444444444442", true),
        ("t1", tomorrow, "44444444-4444-4444-8444-444444444443", true),
        ("t1", today, "44444444-4444-4444-8444-444444444444", false),
    ];
    for (tier, period, request_id, free) in claims {
        let target = ClaimTarget { tier: event.tier(tier).cloned(), period: Some(period) };
        let id = bestow_kernel::ids::new_object_id();
        let request = ClaimRequest::for_target(id, key(request_id), user("u1"), &event, &target, now);
        let validated = advanced(&request, request.after_validation(Validation::Passed, now));
        let inserted = store.insert_request(&validated, &[]).await;
        assert_eq!(inserted.is_ok(), free, "{tier} from {}: {inserted:?}", period.start);
        if free {
            let stored = store.request(&key(request_id)).await.unwrap().unwrap();
            assert_eq!((stored.tier_id.as_deref(), stored.period_start), (Some(tier), Some(period.start)));
            assert_eq!(stored.rewards_to_process.len(), 1, "only the tier's rewards");
            assert_eq!(stored, validated);
        }
    }
}

fn retry() -> bestow_events::domain::saga::RetryPolicy {
    bestow_events::domain::saga::RetryPolicy {
        max_attempts: 1,
        base_delay: chrono::TimeDelta::milliseconds(1),
        max_delay: chrono::TimeDelta::milliseconds(1),
    }
}

/// A reservation that finds too little stock fails the whole commit: no stock moves, the
/// request keeps its status.
pub async fn a_refused_reservation_writes_nothing<S: EventStore + ClaimStore>(store: &S) {
    let event = active_event(store, Some(1)).await;
    let now = bestow_kernel::time::now();
    let one = request(&event, "u1", "33333333-3333-4333-8333-333333333331");
    let one_reserved = advanced(&one, one.after_validation(Validation::Passed, now).after_allocation("a1", now));
    assert_eq!(store.insert_request(&one_reserved, &reserve(&event, 1)).await.unwrap(), Inserted::Created);
    assert_eq!(remaining(store, &event).await, Some(0));
    let two = request(&event, "u2", "33333333-3333-4333-8333-333333333332");
    let refused =
        store.insert_request(&advanced(&two, two.after_validation(Validation::Passed, now)), &reserve(&event, 1)).await;
    assert!(matches!(refused, Err(StoreError::Conflict(Conflict::Stock))), "{refused:?}");
    assert!(store.request(&two.request_id).await.unwrap().is_none(), "the refused insert wrote nothing");
    store.insert_request(&two, &[]).await.unwrap();
    let refused =
        store.commit(&two, &step(&advanced(&two, two.after_allocation("a1", now)), &reserve(&event, 1)), None).await;
    assert!(matches!(refused, Err(StoreError::Conflict(Conflict::Stock))), "{refused:?}");
    assert_eq!(store.request(&two.request_id).await.unwrap().unwrap().status, ClaimStatus::PendingValidation);
    assert_eq!(remaining(store, &event).await, Some(0), "stock never goes negative");
}

/// Commits are compare-and-set: a writer holding a stale copy conflicts and writes nothing.
pub async fn commit_is_compare_and_set<S: EventStore + ClaimStore>(store: &S) {
    let event = active_event(store, Some(5)).await;
    let now = bestow_kernel::time::now();
    let current = request(&event, "u1", "44444444-4444-4444-8444-444444444444");
    store.insert_request(&current, &[]).await.unwrap();
    let next = advanced(&current, current.after_validation(Validation::Passed, now));
    store.commit(&current, &step(&next, &[]), None).await.unwrap();
    let stale = store
        .commit(
            &current,
            &step(&advanced(&current, current.after_validation(Validation::UserInactive, now)), &reserve(&event, 1)),
            None,
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(Conflict::Version))), "{stale:?}");
    assert_eq!(store.request(&current.request_id).await.unwrap().unwrap().status, ClaimStatus::PendingConditionCheck);
    assert_eq!(remaining(store, &event).await, Some(5));
}

/// A lease goes to one worker at a time: a fresh claim is leased (one version on), a second
/// worker is refused until the lease runs out and then takes it over; a final claim, a claim
/// whose next attempt is not due and an unknown request are never leased.
pub async fn a_lease_goes_to_one_worker_at_a_time<S: EventStore + ClaimStore>(store: &S) {
    let event = active_event(store, Some(5)).await;
    let now = bestow_kernel::time::now();
    let lease = |owner, from| Lease { owner, from, until: from + chrono::TimeDelta::seconds(30) };
    let claim = request(&event, "u1", "55555555-5555-4555-8555-555555555555");
    store.insert_request(&claim, &[]).await.unwrap();

    let taken = store.acquire_lease(&claim.request_id, lease("w1", now)).await.unwrap().expect("leased");
    assert_eq!((taken.lease_owner.as_deref(), taken.version), (Some("w1"), claim.version + 1));
    let stored = store.request(&claim.request_id).await.unwrap().unwrap();
    assert_eq!(
        (stored.lease_owner, stored.lease_expires_at, stored.version),
        (taken.lease_owner, taken.lease_expires_at, taken.version)
    );
    let early = lease("w2", now + chrono::TimeDelta::seconds(29));
    assert_eq!(store.acquire_lease(&claim.request_id, early).await.unwrap(), None, "the lease is live");
    let late = lease("w2", now + chrono::TimeDelta::seconds(30));
    let over = store.acquire_lease(&claim.request_id, late).await.unwrap().expect("an expired lease is taken over");
    assert_eq!(over.lease_owner.as_deref(), Some("w2"));

    let finished = request(&event, "u2", "66666666-6666-4666-8666-666666666666");
    store.insert_request(&finished, &[]).await.unwrap();
    let failed = advanced(&finished, finished.after_validation(Validation::UserInactive, now));
    assert!(failed.status.is_final());
    store.commit(&finished, &step(&failed, &[]), None).await.unwrap();
    assert_eq!(store.acquire_lease(&finished.request_id, lease("w1", now)).await.unwrap(), None, "final");

    let waiting = request(&event, "u3", "77777777-7777-4777-8777-777777777777");
    store.insert_request(&waiting, &[]).await.unwrap();
    let later = advanced(&waiting, waiting.postponed(now + chrono::TimeDelta::minutes(1)));
    store.commit(&waiting, &step(&later, &[]), None).await.unwrap();
    assert_eq!(store.acquire_lease(&waiting.request_id, lease("w1", now)).await.unwrap(), None, "not due");
    assert_eq!(
        store.acquire_lease(&key("88888888-8888-4888-8888-888888888888"), lease("w1", now)).await.unwrap(),
        None
    );
}

/// Stock moves reward by reward, all or nothing across a request's rewards: an exhausted
/// reward refuses its reservation even when another reward of the event has stock, and a
/// return never lifts a reward above its total.
pub async fn stock_moves_per_reward_all_or_nothing<S: EventStore + ClaimStore>(store: &S) {
    let mut event = event_with_stocks(&[3, 1]);
    event.status = EventStatus::Active;
    store.insert_event(&event, &audit("event.create", &event.id)).await.unwrap();
    let ids: Vec<String> = event.rewards.iter().map(|r| r.reward_id().as_str().to_owned()).collect();
    let change = |index: usize, delta: i64| StockChange { reward_id: ids[index].clone(), delta, reservation_id: None };
    let stocks = || async {
        let stored = store.event(&event.id).await.unwrap().unwrap();
        stored.rewards.iter().map(|r| r.remaining_stock().unwrap()).collect::<Vec<_>>()
    };
    let now = bestow_kernel::time::now();

    let one = request(&event, "u1", "55555555-5555-4555-8555-555555555551");
    assert_eq!(store.insert_request(&one, &[change(0, -1), change(1, -1)]).await.unwrap(), Inserted::Created);
    assert_eq!(stocks().await, [2, 0]);

    let two = request(&event, "u2", "55555555-5555-4555-8555-555555555552");
    for refused in [vec![change(0, -1), change(1, -1)], vec![change(1, -1)]] {
        let outcome = store.insert_request(&two, &refused).await;
        assert!(matches!(outcome, Err(StoreError::Conflict(Conflict::Stock))), "{outcome:?}");
        assert_eq!(stocks().await, [2, 0], "an exhausted reward moved, or the other one did");
    }
    assert_eq!(store.insert_request(&two, &[change(0, -1)]).await.unwrap(), Inserted::Created);
    assert_eq!(stocks().await, [1, 0]);

    let returned = advanced(&one, one.after_validation(Validation::Passed, now));
    store.commit(&one, &step(&returned, &[change(1, 1)]), None).await.unwrap();
    assert_eq!(stocks().await, [1, 1]);
    let again = store
        .commit(&returned, &step(&advanced(&returned, returned.after_allocation("a1", now)), &[change(1, 1)]), None)
        .await;
    assert!(again.is_err(), "a return above the total was accepted");
    assert_eq!(stocks().await, [1, 1]);
    assert_eq!(store.request(&one.request_id).await.unwrap().unwrap().status, returned.status);
}

/// An event's claims are counted per status, per minute of creation from `since` on, and, for
/// the failed ones, per status, `failureCode` and `failureReason` as the last commit left them
/// (a document without a code, as written before codes were recorded, counts under its
/// status); another event's claims and an in-flight claim's retry reason are not counted.
pub async fn event_claim_stats_count_per_status_minute_and_failure_reason<S: EventStore + ClaimStore>(store: &S) {
    use ClaimStatus as S;
    let (event, other) = (active_event(store, None).await, active_event(store, None).await);
    let now = bestow_kernel::time::now();
    let ten_minutes_ago = now - chrono::TimeDelta::minutes(10);
    let before_the_hour = series_start(now) - chrono::TimeDelta::minutes(5);
    use FailureCode as F;
    let out_of_stock = Some(("out of stock", F::OutOfStock));
    let claims = [
        (&event, S::SuccessAllGranted, None, now),
        (&event, S::SuccessAllGranted, None, ten_minutes_ago),
        (&event, S::InventoryAllocationFailedOutOfStock, out_of_stock, now),
        (&event, S::InventoryAllocationFailedOutOfStock, out_of_stock, before_the_hour),
        (&event, S::FailedRolledBack, None, now),
        (
            &event,
            S::PendingRewardGrant,
            Some(("the granter timed out; retrying", F::GrantFailedExternal)),
            ten_minutes_ago,
        ),
        (&other, S::SuccessAllGranted, None, now),
    ];
    for (n, (target, status, failure, created_at)) in claims.into_iter().enumerate() {
        let mut claim = request(target, &format!("u{n}"), &format!("66666666-6666-4666-8666-{n:012}"));
        (claim.status, claim.created_at) = (status, created_at);
        (claim.failure_reason, claim.failure_code) =
            (failure.map(|(reason, _)| reason.into()), failure.map(|(_, code)| code));
        store.insert_request(&claim, &[]).await.unwrap();
    }
    // A failure written by a commit, not by the insert.
    let pending = request(&event, "u9", "66666666-6666-4666-8666-000000000009");
    let pending = ClaimRequest { created_at: ten_minutes_ago, ..pending };
    store.insert_request(&pending, &[]).await.unwrap();
    let not_met = advanced(&pending, pending.after_condition_check(Ok(false), &retry(), now, 0.0));
    store.commit(&pending, &step(&not_met, &[]), None).await.unwrap();

    let stats = store.event_claim_stats(&event.id, series_start(now)).await.unwrap();
    let mut statuses: Vec<(S, u64)> = stats.statuses.iter().map(|group| (group.status, group.count)).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [
            (S::ConditionNotMet, 1),
            (S::InventoryAllocationFailedOutOfStock, 2),
            (S::PendingRewardGrant, 1),
            (S::SuccessAllGranted, 2),
            (S::FailedRolledBack, 1),
        ],
        "claims per status"
    );
    let mut minutes = stats.minutes.clone();
    minutes.sort_by_key(|group| group.minute);
    assert_eq!(
        minutes,
        [
            MinuteCount { minute: minute_of(ten_minutes_ago), count: 3 },
            MinuteCount { minute: minute_of(now), count: 3 },
        ],
        "claims per minute of creation, from `since` on"
    );
    let mut failures = stats.failures.clone();
    failures.sort_by_key(|group| group.status);
    let failure = |status, code, reason: Option<&str>, count| FailureCount {
        status,
        code,
        reason: reason.map(Into::into),
        count,
    };
    assert_eq!(
        failures,
        [
            failure(S::ConditionNotMet, Some(F::ConditionNotMet), not_met.failure_reason.as_deref(), 1),
            failure(S::InventoryAllocationFailedOutOfStock, Some(F::OutOfStock), Some("out of stock"), 2),
            failure(S::FailedRolledBack, None, None, 1),
        ],
        "failed claims per status, code and reason"
    );
    let codes: Vec<_> =
        stats.failure_codes().into_iter().map(|group| (group.failure_code, group.status, group.count)).collect();
    assert_eq!(
        codes,
        [(Some(F::OutOfStock), None, 2), (Some(F::ConditionNotMet), None, 1), (None, Some(S::FailedRolledBack), 1)],
        "the dashboard's groups: per code, and per status for a document without a code"
    );
    let unknown = store.event_claim_stats(&EventId::generate(), series_start(now)).await.unwrap();
    assert_eq!(unknown, Default::default(), "an event without claims has no groups");
}

/// Grants are idempotent by key; a revoke is a tombstone that refuses a later grant.
pub async fn ledger_grants_are_idempotent_and_revokes_are_tombstones(store: &impl LedgerStore) {
    let event = event(None);
    let entry = |grant_key: &str| LedgerEntry {
        grant_key: grant_key.into(),
        request_id: key("00000000-0000-4000-8000-000000000001"),
        user_id: user("u1"),
        event_id: event.id.clone(),
        reward_id: event.rewards[0].reward_id().as_str().into(),
        reward_name: "points".into(),
        details: event.rewards[0].reward().details().clone(),
        quantity: 1,
        granted_at: bestow_kernel::time::now(),
    };
    assert_eq!(store.record_grant(&entry("k1")).await.unwrap(), LedgerGrant::Granted);
    assert_eq!(store.record_grant(&entry("k1")).await.unwrap(), LedgerGrant::AlreadyGranted);
    assert_eq!(store.entries(&user("u1")).await.unwrap().len(), 1);
    store.record_revoke("k1", &user("u1"), bestow_kernel::time::now()).await.unwrap();
    store.record_revoke("k1", &user("u1"), bestow_kernel::time::now()).await.unwrap();
    assert!(store.entries(&user("u1")).await.unwrap().is_empty());
    store.record_revoke("k2", &user("u1"), bestow_kernel::time::now()).await.unwrap();
    assert_eq!(store.record_grant(&entry("k2")).await.unwrap(), LedgerGrant::Revoked, "a late grant is refused");
    assert!(store.entries(&user("u1")).await.unwrap().is_empty());
}

/// The step to `next` moving `stock`.
pub fn step(next: &ClaimRequest, stock: &[StockChange]) -> Transition {
    Transition { next: next.clone(), stock: stock.to_vec() }
}
