//! Many concurrent claims against a limited-stock reward: the stock never oversells and each
//! player holds at most one claim slot, whether the reservation comes with the insert or with
//! a later commit. And the test server's transactions, through the driver alone: a write
//! conflict is answered as a replica set answers it (code 112, labelled
//! `TransientTransactionError`, the transaction aborted), and a failed commit does not leave
//! its pooled session inside a dead transaction that swallows later acknowledged writes.

use crate::support;

use std::collections::HashMap;
use std::sync::Arc;

use bestow_events::catalog::store::EventStore;
use bestow_events::claims::store::{ClaimStore, Inserted, StockChange};
use bestow_events::domain::event::Event;
use bestow_events::domain::lifecycle::EventStatus;
use bestow_events::domain::saga::{ClaimRequest, Validation};
use bestow_kernel::ids::{RequestId, UserId};
use bestow_kernel::store::{Conflict, StoreError};
use bestow_store_contract::claims::step;
use bestow_store_mongo::MongoEventStore;
use bson::{Document, doc};
use mongodb::error::ErrorKind;
use mongodb::{Client, ClientSession, Collection};

const STOCK: i64 = 5;
const PLAYERS: usize = 12;
/// Requests per player: the extra ones must lose the claim slot.
const REQUESTS_PER_PLAYER: usize = 2;

/// An ACTIVE event with one reward of `STOCK` units, stored.
async fn limited_event(store: &MongoEventStore) -> Event {
    let mut event = bestow_store_contract::events::event(Some(STOCK));
    event.status = EventStatus::Active;
    store.insert_event(&event, &bestow_store_contract::events::audit("event.create", &event.id)).await.unwrap();
    event
}

fn request(event: &Event, player: usize, attempt: usize) -> ClaimRequest {
    ClaimRequest::new(
        bestow_kernel::ids::new_object_id(),
        RequestId::parse(&format!("00000000-0000-4000-8000-{player:06}{attempt:06}")).unwrap(),
        UserId::parse(&format!("player-{player}")).unwrap(),
        event,
        bestow_kernel::time::now(),
    )
}

/// The request validated (taking the claim slot) and allocated, as the saga commits it.
fn reserved(current: &ClaimRequest) -> ClaimRequest {
    let now = bestow_kernel::time::now();
    ClaimRequest {
        version: current.version + 1,
        ..current.after_validation(Validation::Passed, now).after_allocation("a1", now)
    }
}

/// A named reservation of one unit, as the driver makes them: on MongoDB a commit takes it as
/// a hold on the event.
fn reserve(event: &Event) -> Vec<StockChange> {
    let reward_id = event.rewards[0].reward_id().as_str();
    vec![StockChange::reserve(reward_id, 1, Some(&format!("{}:{reward_id}", bestow_kernel::ids::new_object_id())))]
}

/// Checks the outcome of every attempt and the stored state.
async fn check(store: &MongoEventStore, event: &Event, outcomes: Vec<(usize, Result<(), StoreError>)>) {
    let mut won_by_player: HashMap<usize, usize> = HashMap::new();
    for (player, outcome) in &outcomes {
        match outcome {
            Ok(()) => *won_by_player.entry(*player).or_default() += 1,
            Err(StoreError::Conflict(Conflict::Stock | Conflict::ClaimSlot)) => {}
            Err(other) => panic!("a claim failed with neither a stock nor a slot conflict: {other:?}"),
        }
    }
    let won: usize = won_by_player.values().sum();
    assert!(won_by_player.values().all(|&n| n == 1), "a player won twice: {won_by_player:?}");
    assert_eq!(won, usize::try_from(STOCK).unwrap(), "every unit is claimed once the rush is over");
    let remaining = store.event(&event.id).await.unwrap().unwrap().rewards[0].remaining_stock();
    assert_eq!(remaining, Some(0), "stock never goes negative and every reservation is counted");
}

/// Inserts that reserve in the same transaction at once. The test server makes any two
/// concurrent transactions conflict (see the crate README), so a few are in flight at a time,
/// enough to race, and not so many that retries starve one past its time budget.
const INSERTS_IN_FLIGHT: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_never_oversell_nor_double_claim() {
    let (store, _db) = support::fresh_event_store().await;
    let store = Arc::new(store);
    let event = Arc::new(limited_event(&store).await);
    let slots = Arc::new(tokio::sync::Semaphore::new(INSERTS_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for player in 0..PLAYERS {
        for attempt in 0..REQUESTS_PER_PLAYER {
            let (store, event, slots) = (store.clone(), event.clone(), slots.clone());
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await.unwrap();
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
        tasks.spawn(async move {
            (player, store.commit(&current, &step(&reserved(&current), &reserve(&event)), None).await)
        });
    }
    let outcomes = tasks.join_all().await;
    check(&store, &event, outcomes).await;
}

const WRITE_CONFLICT: i32 = 112;
const TRANSIENT: &str = "TransientTransactionError";

fn command_code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(command) => Some(command.code),
        _ => None,
    }
}

/// A client of its own (its own session pool) and a fresh collection holding `{_id: "hot", n: 0}`.
async fn raw_collection() -> (Client, Collection<Document>) {
    let client = Client::with_uri_str(support::uri()).await.unwrap();
    let collection = client.database(&format!("{}_raw", support::unique_prefix())).collection::<Document>("docs");
    collection.insert_one(doc! { "_id": "hot", "n": 0_i64 }).await.unwrap();
    (client, collection)
}

async fn hot_counter(collection: &Collection<Document>) -> i64 {
    let document = collection.find_one(doc! { "_id": "hot" }).await.unwrap().unwrap();
    // mongoeco stores the result of `$inc` as int32; mongod keeps int64.
    match document.get("n") {
        Some(bson::Bson::Int64(n)) => *n,
        Some(bson::Bson::Int32(n)) => i64::from(*n),
        other => panic!("n is {other:?}"),
    }
}

/// One transaction that increments the hot counter: read (the snapshot starts here), wait for
/// the other party, write, wait again, commit. The waits put both transactions' writes after
/// both snapshots, so that one of them must conflict. On mongod the second writer fails at its
/// write; on mongoeco both writes succeed and the second commit fails; either way the failure
/// is returned.
async fn increment(
    collection: &Collection<Document>,
    session: &mut ClientSession,
    barrier: &tokio::sync::Barrier,
) -> Result<(), mongodb::error::Error> {
    session.start_transaction().await?;
    let read = collection.find_one(doc! { "_id": "hot" }).session(&mut *session).await;
    barrier.wait().await;
    let written = match read {
        Ok(_) => {
            collection.update_one(doc! { "_id": "hot" }, doc! { "$inc": { "n": 1_i64 } }).session(&mut *session).await
        }
        Err(error) => Err(error),
    };
    barrier.wait().await;
    match written {
        Ok(_) => session.commit_transaction().await,
        Err(error) => {
            let _ = session.abort_transaction().await;
            Err(error)
        }
    }
}

fn assert_write_conflict(error: &mongodb::error::Error) {
    assert_eq!(command_code(error), Some(WRITE_CONFLICT), "a write conflict is code 112: {error:?}");
    assert!(error.contains_label(TRANSIENT), "a write conflict is labelled {TRANSIENT}: {error:?}");
}

/// Two [`increment`]s at once, each on its own session of `client`: their outcomes with their
/// sessions.
async fn race(
    client: &Client,
    collection: &Collection<Document>,
) -> [(Result<(), mongodb::error::Error>, ClientSession); 2] {
    let barrier = tokio::sync::Barrier::new(2);
    let (mut first, mut second) = (client.start_session().await.unwrap(), client.start_session().await.unwrap());
    let (a, b) =
        tokio::join!(increment(collection, &mut first, &barrier), increment(collection, &mut second, &barrier));
    [(a, first), (b, second)]
}

/// Rounds of [`race`] until one ends in one commit and one conflict. A round where both
/// conflict can happen on mongoeco only (a commit of a parallel test conflicts with both, see
/// the crate README); a round where both commit is a lost update and fails the test.
const ROUNDS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_transactions_on_one_document_end_in_one_commit_and_one_labelled_conflict() {
    let (client, collection) = raw_collection().await;
    let mut committed = 0;
    for _ in 0..ROUNDS {
        let [(a, first), (b, second)] = race(&client, &collection).await;
        let (error, winner, mut loser) = match (a, b) {
            (Ok(()), Ok(())) => panic!("two transactions incrementing one document both committed"),
            (Err(a), Err(b)) => {
                assert_write_conflict(&a);
                assert_write_conflict(&b);
                assert_eq!(hot_counter(&collection).await, committed, "a conflicting transaction left nothing behind");
                continue;
            }
            (Ok(()), Err(error)) => (error, first, second),
            (Err(error), Ok(())) => (error, second, first),
        };
        assert_write_conflict(&error);
        committed += 1;
        assert_eq!(hot_counter(&collection).await, committed, "one increment, the committed one");
        drop(winner);
        // The driver's answer to the label: the whole transaction again, on the same session.
        // It must read the committed counter, not the aborted snapshot, and commit.
        let alone = tokio::sync::Barrier::new(1);
        for _ in 0..ROUNDS {
            match increment(&collection, &mut loser, &alone).await {
                Ok(()) => {
                    committed += 1;
                    break;
                }
                Err(error) => assert_write_conflict(&error),
            }
        }
        assert_eq!(hot_counter(&collection).await, committed, "the retried transaction commits");
        assert_eq!(committed, 2);
        return;
    }
    panic!("{ROUNDS} rounds of two conflicting transactions never ended in one commit and one conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_a_failed_commit_on_a_pooled_session() {
    let (client, collection) = raw_collection().await;
    let [(a, first), (b, second)] = race(&client, &collection).await;
    let committed = i64::from(a.is_ok()) + i64::from(b.is_ok());
    assert!(committed < 2, "two transactions incrementing one document both committed");
    for error in [&a, &b].into_iter().filter_map(|outcome| outcome.as_ref().err()) {
        assert_write_conflict(error);
    }
    let (other, loser) = if a.is_err() { (second, first) } else { (first, second) };

    // Both server sessions go back to the client's pool (checked in by a spawned task; the pool
    // hands out the most recently returned first): a failed one last, so that the plain writes
    // below run on its session id first.
    drop(other);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    drop(loser);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // Sequential writes reuse the loser's session; concurrent ones spread over the pool.
    const WRITES: i64 = 20;
    for i in 0..WRITES {
        collection.insert_one(doc! { "_id": format!("seq-{i}"), "i": i }).await.unwrap();
    }
    collection.update_one(doc! { "_id": "hot" }, doc! { "$set": { "plain": true } }).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..WRITES {
        let collection = collection.clone();
        tasks.spawn(async move { collection.insert_one(doc! { "_id": format!("par-{i}"), "i": i }).await.map(drop) });
    }
    for outcome in tasks.join_all().await {
        outcome.unwrap();
    }

    // Read back through another client (another pool, other session ids).
    let reader = Client::with_uri_str(support::uri()).await.unwrap();
    let stored = reader.database(collection.namespace().db.as_str()).collection::<Document>("docs");
    let count = stored.count_documents(doc! { "i": { "$exists": true } }).await.unwrap();
    assert_eq!(count, u64::try_from(2 * WRITES).unwrap(), "every acknowledged insert is stored");
    assert_eq!(hot_counter(&stored).await, committed, "only the committed increment is stored");
    let hot = stored.find_one(doc! { "_id": "hot" }).await.unwrap().unwrap();
    assert_eq!(hot.get_bool("plain").ok(), Some(true), "the acknowledged update is stored");
}

#[tokio::test]
async fn a_failed_statement_aborts_its_transaction() {
    const NO_SUCH_TRANSACTION: i32 = 251;
    let (client, collection) = raw_collection().await;
    let mut session = client.start_session().await.unwrap();
    session.start_transaction().await.unwrap();
    collection.insert_one(doc! { "_id": "early" }).session(&mut session).await.unwrap();
    let duplicate = collection.insert_one(doc! { "_id": "hot" }).session(&mut session).await.unwrap_err();
    assert!(matches!(duplicate.kind.as_ref(), ErrorKind::Write(_)), "a duplicate key: {duplicate:?}");
    // As on mongod, the failure ended the transaction: the next statement and the commit
    // find none, and nothing of it is stored.
    let late = collection.insert_one(doc! { "_id": "late" }).session(&mut session).await.unwrap_err();
    assert_eq!(command_code(&late), Some(NO_SUCH_TRANSACTION), "{late:?}");
    assert!(late.contains_label(TRANSIENT), "{late:?}");
    let commit = session.commit_transaction().await.unwrap_err();
    assert_eq!(command_code(&commit), Some(NO_SUCH_TRANSACTION), "{commit:?}");
    drop(session);
    let ids = collection.distinct("_id", doc! {}).await.unwrap();
    assert_eq!(ids, vec![bson::Bson::String("hot".into())]);
}

/// A hold as a writer takes it (see the adapter's `stock_holds`): `units` of the first reward
/// for `request`, whose compare-and-set expects its current version.
fn hold(event: &Event, hold_id: &str, request: &ClaimRequest) -> Document {
    doc! {
        "holdId": hold_id,
        "requestId": request.request_id.to_string(),
        "rewardId": bson::oid::ObjectId::parse_str(event.rewards[0].reward_id().as_str()).unwrap(),
        "units": 1_i64,
        "heldBy": request.version,
        "heldAt": bson::DateTime::now(),
    }
}

/// Two writers took a hold and died, one after its request recorded the reservation and one
/// before. Recovery keeps the first's unit, gives the second's back, and fences the second
/// writer off: were it to come back, its record of the reservation would be refused.
#[tokio::test]
async fn stray_holds_are_kept_or_given_back_by_what_their_request_recorded() {
    let (store, db_name) = support::fresh_event_store().await;
    let event = limited_event(&store).await;
    let (recorded, orphan) = (request(&event, 1, 0), request(&event, 2, 0));
    for current in [&recorded, &orphan] {
        store.insert_request(current, &[]).await.unwrap();
    }
    let recorded_next = reserved(&recorded);
    let recorded_hold = recorded_next.rewards_to_process[0].stock_reservation_id.clone().unwrap();
    let raw = Client::with_uri_str(support::uri()).await.unwrap().database(&db_name);
    let events = raw.collection::<Document>("events");
    let taken = events
        .update_one(
            doc! { "_id": bson::oid::ObjectId::parse_str(event.id.as_str()).unwrap() },
            doc! {
                "$inc": { "rewards.0.remainingStock": -2_i64 },
                "$push": { "stockHolds": { "$each": [
                    hold(&event, &recorded_hold, &recorded),
                    hold(&event, "lost:hold", &orphan),
                ] } },
            },
        )
        .await
        .unwrap();
    assert_eq!(taken.modified_count, 1);
    store.commit(&recorded, &step(&recorded_next, &[]), None).await.unwrap();

    let now = bestow_kernel::time::now();
    assert_eq!(store.settle_stray_reservations(now - chrono::TimeDelta::hours(1)).await.unwrap(), 0, "too young");
    assert_eq!(store.event(&event.id).await.unwrap().unwrap().rewards[0].remaining_stock(), Some(STOCK - 2));
    assert_eq!(store.settle_stray_reservations(now + chrono::TimeDelta::seconds(1)).await.unwrap(), 2);
    let stored = events.find_one(doc! {}).await.unwrap().unwrap();
    assert!(stored.get_array("stockHolds").unwrap().is_empty(), "both holds settled: {stored:?}");
    assert_eq!(
        store.event(&event.id).await.unwrap().unwrap().rewards[0].remaining_stock(),
        Some(STOCK - 1),
        "the recorded unit stays reserved, the other one is back"
    );
    let late = store.commit(&orphan, &step(&reserved(&orphan), &[]), None).await;
    assert!(matches!(late, Err(StoreError::Conflict(Conflict::Version))), "the dead writer is fenced off: {late:?}");
    assert_eq!(store.settle_stray_reservations(now + chrono::TimeDelta::seconds(1)).await.unwrap(), 0);
}

/// A commit whose compare-and-set loses gives its hold back at once.
#[tokio::test]
async fn a_hold_whose_commit_lost_is_given_back_at_once() {
    let (store, db_name) = support::fresh_event_store().await;
    let event = limited_event(&store).await;
    let current = request(&event, 1, 0);
    store.insert_request(&current, &[]).await.unwrap();
    let moved_on = ClaimRequest {
        version: current.version + 1,
        ..current.after_validation(Validation::Passed, bestow_kernel::time::now())
    };
    store.commit(&current, &step(&moved_on, &[]), None).await.unwrap();
    let stale = store.commit(&current, &step(&reserved(&current), &reserve(&event)), None).await;
    assert!(matches!(stale, Err(StoreError::Conflict(Conflict::Version))), "{stale:?}");
    let raw = Client::with_uri_str(support::uri()).await.unwrap().database(&db_name);
    let stored = raw.collection::<Document>("events").find_one(doc! {}).await.unwrap().unwrap();
    assert!(stored.get_array("stockHolds").unwrap().is_empty(), "{stored:?}");
    assert_eq!(store.event(&event.id).await.unwrap().unwrap().rewards[0].remaining_stock(), Some(STOCK));
}
