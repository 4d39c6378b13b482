//! The audience adapter on the test server, beyond the contract: staging a batch of a LIST
//! upload as one unordered insert that skips duplicates, and a replace that does not put back a
//! member count moved since its copy was read.

use std::time::Instant;

use crate::support;

use bestow_events::domain::audience::{Audience, AudienceKind};
use bestow_events::domain::ports::audiences::AudienceStore;
use bestow_kernel::audit::{AuditActor, AuditEntry};
use bestow_kernel::ids::{AudienceId, UserId};
use bestow_kernel::page::PageRequest;

/// Ids per staged batch here. The service stages 5,000 per call, which takes the test server
/// seconds (minutes before the launcher's insert patch; README, "Tests"), long enough for a
/// loaded machine to miss the driver's heartbeat.
const BATCH: usize = 400;

fn audit(action: &str, id: &AudienceId) -> AuditEntry {
    AuditActor::system("test").entry(action, ("audience", id.as_str()), None, None)
}

fn list_audience(generation: &str) -> Audience {
    let now = bestow_kernel::time::now();
    Audience {
        id: AudienceId::generate(),
        name: "uploaded".into(),
        description: String::new(),
        kind: AudienceKind::List,
        rule: None,
        references: Vec::new(),
        member_count: 0,
        member_generation: generation.into(),
        estimate: None,
        created_by: "operator-1".into(),
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

fn players(range: std::ops::Range<usize>) -> Vec<UserId> {
    range.map(|n| UserId::parse(&format!("player-{n:07}")).unwrap()).collect()
}

#[tokio::test]
async fn a_mongo_batch_of_members_is_one_unordered_insert_that_skips_duplicates() {
    let (store, _) = support::fresh_event_store().await;
    let audience = list_audience("g1");
    store.insert_audience(&audience, &audit("audience.create", &audience.id)).await.unwrap();
    let now = bestow_kernel::time::now();

    let started = Instant::now();
    assert_eq!(store.stage_members(&audience.id, "g2", &players(0..BATCH), now).await.unwrap(), BATCH as u64);
    eprintln!("staged a batch of {BATCH} new members in {} ms", started.elapsed().as_millis());
    let started = Instant::now();
    assert_eq!(store.stage_members(&audience.id, "g2", &players(0..BATCH), now).await.unwrap(), 0, "all known");
    eprintln!("staged a batch of {BATCH} known members in {} ms", started.elapsed().as_millis());

    // Half known, half new, and the new half sent twice within the batch.
    let mut overlapping = players(BATCH / 2..BATCH + BATCH / 4);
    overlapping.extend(players(BATCH..BATCH + BATCH / 4));
    assert_eq!(overlapping.len(), BATCH);
    assert_eq!(store.stage_members(&audience.id, "g2", &overlapping, now).await.unwrap(), (BATCH / 4) as u64);

    let page = store.list_members(&audience.id, "g2", PageRequest { page: 1, limit: 3 }).await.unwrap();
    assert_eq!(page.total, (BATCH + BATCH / 4) as u64);
    assert_eq!(page.items, players(0..3), "by user id");
    assert_eq!(store.list_members(&audience.id, "g1", PageRequest { page: 1, limit: 3 }).await.unwrap().total, 0);
}

#[tokio::test]
async fn a_mongo_replace_keeps_the_member_count_within_a_generation_and_writes_it_with_a_new_one() {
    let (store, _) = support::fresh_event_store().await;
    let audience = list_audience("g1");
    store.insert_audience(&audience, &audit("audience.create", &audience.id)).await.unwrap();
    let read = store.audience(&audience.id).await.unwrap().unwrap();
    let (now, player) = (bestow_kernel::time::now(), UserId::parse("player-1").unwrap());
    assert!(
        store.add_member(&audience.id, "g1", &player, now, &audit("audience.member.add", &audience.id)).await.unwrap()
    );

    // An edit of the name from a copy read before the add: the count stays 1.
    let renamed = Audience { name: "renamed".into(), version: 2, ..read.clone() };
    store.replace_audience(&renamed, 1, Some(&audit("audience.update", &audience.id))).await.unwrap();
    let stored = store.audience(&audience.id).await.unwrap().unwrap();
    assert_eq!((stored.name.as_str(), stored.member_count, stored.version), ("renamed", 1, 2));

    // An upload's switch to a new generation writes the count it staged.
    assert_eq!(store.stage_members(&audience.id, "g2", &players(0..3), now).await.unwrap(), 3);
    let switched = Audience { member_generation: "g2".into(), member_count: 3, version: 3, ..stored.clone() };
    store.replace_audience(&switched, 2, None).await.unwrap();
    let stored = store.audience(&audience.id).await.unwrap().unwrap();
    assert_eq!((stored.member_generation.as_str(), stored.member_count, stored.version), ("g2", 3, 3));
    assert_eq!(store.discard_members(&audience.id, Some("g2")).await.unwrap(), 1, "the old generation's member");
}
