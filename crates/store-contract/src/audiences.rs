//! Contract of [`AudienceStore`]: player properties, audiences, LIST members per generation,
//! memberships, sticky memberships, estimates and who uses an audience.

use std::collections::BTreeMap;

use bestow_events::catalog::store::EventStore;
use bestow_events::domain::audience::properties::{PlayerProperties, PropertyValue};
use bestow_events::domain::audience::rule::parse_rule;
use bestow_events::domain::audience::{
    Audience, AudienceEstimate, AudienceKind, AudienceTarget, AudienceUsers, EstimateStatus,
};
use bestow_events::domain::ports::audiences::AudienceStore;
use bestow_kernel::audit::{AuditActor, AuditEntry};
use bestow_kernel::ids::{AudienceId, EventId, UserId};
use bestow_kernel::page::PageRequest;
use bestow_kernel::store::{Conflict, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use crate::events::audit;

fn now() -> DateTime<Utc> {
    bestow_kernel::time::now()
}

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn users(ids: &[&str]) -> Vec<UserId> {
    ids.iter().map(|id| user(id)).collect()
}

fn audience_audit(action: &str, id: &AudienceId) -> AuditEntry {
    AuditActor::system("contract").entry(action, ("audience", id.as_str()), None, None)
}

/// A LIST audience with no members, counting generation `generation`, created `at`.
fn list_audience(name: &str, generation: &str, at: DateTime<Utc>) -> Audience {
    Audience {
        id: AudienceId::generate(),
        name: name.into(),
        description: format!("{name}, by hand"),
        kind: AudienceKind::List,
        rule: None,
        references: Vec::new(),
        member_count: 0,
        member_generation: generation.into(),
        estimate: None,
        created_by: "operator".into(),
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

/// A RULE audience: players in `country`, and in `inside` when given.
fn rule_audience(country: &str, inside: Option<&AudienceId>) -> Audience {
    let property = json!({ "type": "PROPERTY", "name": "country", "op": "EQ", "value": country });
    let tree = match inside {
        Some(id) => json!({ "type": "AND", "subConditions": [property, { "type": "IN_AUDIENCE", "audienceId": id }] }),
        None => property,
    };
    let rule = parse_rule(&tree, "").unwrap();
    Audience {
        kind: AudienceKind::Rule,
        references: rule.references(),
        rule: Some(rule),
        member_generation: String::new(),
        ..list_audience(&format!("in {country}"), "", now())
    }
}

async fn insert(store: &impl AudienceStore, audience: &Audience) {
    store.insert_audience(audience, &audience_audit("audience.create", &audience.id)).await.unwrap();
}

async fn stored(store: &impl AudienceStore, id: &AudienceId) -> Audience {
    store.audience(id).await.unwrap().expect("the audience is stored")
}

fn estimate(job_id: &str, started_at: DateTime<Utc>, scanned: u64, status: EstimateStatus) -> AudienceEstimate {
    AudienceEstimate {
        job_id: job_id.into(),
        status,
        members: scanned / 2,
        scanned,
        total: 100,
        started_at,
        finished_at: (status != EstimateStatus::Running).then_some(started_at),
        error: None,
    }
}

fn page(page: u32, limit: u32) -> PageRequest {
    PageRequest { page, limit }
}

/// Player properties are compare-and-set on `version`: version 0 inserts (once), a stale
/// version is refused and writes nothing, and what was written reads back as written.
pub async fn player_properties_are_compare_and_set_on_version(store: &impl AudienceStore) {
    let player = user("player-1");
    assert_eq!(store.player_properties(&player).await.unwrap(), None, "nothing stored before a first write");
    let mut first = PlayerProperties::empty(player.clone(), now());
    first.properties = BTreeMap::from([
        ("country".to_owned(), PropertyValue::Text("KR".into())),
        ("vipLevel".to_owned(), PropertyValue::Number(3.0)),
        ("payer".to_owned(), PropertyValue::Bool(true)),
    ]);
    first.version = 1;
    let audit = || audit("player.properties", "player-1");
    store.write_player_properties(&first, 0, &audit()).await.unwrap();
    assert_eq!(store.player_properties(&player).await.unwrap().as_ref(), Some(&first));

    let twice = store.write_player_properties(&first, 0, &audit()).await;
    assert!(matches!(twice, Err(StoreError::Conflict(Conflict::Version))), "a second insert conflicts: {twice:?}");

    let mut second = first.clone();
    second.properties.insert("vipLevel".into(), PropertyValue::Number(4.5));
    second.properties.remove("payer");
    second.version = 2;
    store.write_player_properties(&second, 1, &audit()).await.unwrap();
    let mut stale = first.clone();
    stale.properties.insert("country".into(), PropertyValue::Text("JP".into()));
    stale.version = 2;
    let lost = store.write_player_properties(&stale, 1, &audit()).await;
    assert!(matches!(lost, Err(StoreError::Conflict(Conflict::Version))), "a stale version conflicts: {lost:?}");
    assert_eq!(store.player_properties(&player).await.unwrap(), Some(second), "the stale write changed nothing");

    let mut ghost = PlayerProperties::empty(user("never-written"), now());
    ghost.version = 3;
    let missing = store.write_player_properties(&ghost, 2, &audit()).await;
    assert!(matches!(missing, Err(StoreError::Conflict(Conflict::Version))), "no stored version 2: {missing:?}");
    assert_eq!(store.player_properties(&user("never-written")).await.unwrap(), None);
}

/// The known players are paged by user id (`after` excluded) and counted.
pub async fn player_properties_page_by_user_id(store: &impl AudienceStore) {
    assert_eq!(store.count_player_properties().await.unwrap(), 0);
    for id in ["p-c", "p-a", "p-e", "p-b", "p-d"] {
        let mut properties = PlayerProperties::empty(user(id), now());
        properties.properties.insert("tag".into(), PropertyValue::Text(id.into()));
        properties.version = 1;
        store.write_player_properties(&properties, 0, &audit("player.properties", id)).await.unwrap();
    }
    assert_eq!(store.count_player_properties().await.unwrap(), 5);
    let ids = |page: Vec<PlayerProperties>| page.into_iter().map(|p| p.user_id.to_string()).collect::<Vec<_>>();
    assert_eq!(ids(store.player_properties_after(None, 2).await.unwrap()), ["p-a", "p-b"]);
    assert_eq!(ids(store.player_properties_after(Some(&user("p-b")), 2).await.unwrap()), ["p-c", "p-d"]);
    assert_eq!(ids(store.player_properties_after(Some(&user("p-d")), 2).await.unwrap()), ["p-e"]);
    assert!(store.player_properties_after(Some(&user("p-e")), 2).await.unwrap().is_empty());
}

/// Audiences read back as written (by id and in bulk), list newest first with their total,
/// and a duplicate id is refused.
pub async fn audiences_read_back_and_list_newest_first(store: &impl AudienceStore) {
    let start = now() - TimeDelta::hours(1);
    let oldest = list_audience("oldest", "g1", start);
    let middle = list_audience("middle", "g1", start + TimeDelta::minutes(1));
    let mut newest = rule_audience("KR", Some(&oldest.id));
    newest.created_at = start + TimeDelta::minutes(2);
    newest.estimate = Some(estimate("job-0", start, 10, EstimateStatus::Done));
    for audience in [&middle, &newest, &oldest] {
        insert(store, audience).await;
    }
    assert_eq!(stored(store, &newest.id).await, newest, "a RULE audience with references and an estimate");
    assert_eq!(stored(store, &oldest.id).await, oldest);
    assert_eq!(store.audience(&AudienceId::generate()).await.unwrap(), None);
    let duplicate = store.insert_audience(&oldest, &audience_audit("audience.create", &oldest.id)).await;
    assert!(matches!(duplicate, Err(StoreError::Conflict(_))), "an id is inserted once: {duplicate:?}");

    let mut some = store.audiences(&[oldest.id.clone(), AudienceId::generate(), newest.id.clone()]).await.unwrap();
    some.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(some, [newest.clone(), oldest.clone()], "the ids that exist, the others skipped");
    assert!(store.audiences(&[]).await.unwrap().is_empty());

    let first = store.list_audiences(page(1, 2)).await.unwrap();
    let names: Vec<&str> = first.items.iter().map(|a| a.name.as_str()).collect();
    assert_eq!((names, first.total), (vec!["in KR", "middle"], 3), "newest first");
    let second = store.list_audiences(page(2, 2)).await.unwrap();
    assert_eq!(second.items, [oldest]);
}

/// Replacing an audience is compare-and-set on `version` (`Conflict` when stale, `NotFound`
/// when absent) and keeps the stored estimate, which only `record_estimate` writes.
pub async fn audience_replace_is_compare_and_set_and_keeps_the_estimate(store: &impl AudienceStore) {
    let original = list_audience("players", "g1", now());
    insert(store, &original).await;
    let running = estimate("job-1", now(), 40, EstimateStatus::Running);
    assert!(store.record_estimate(&original.id, &running).await.unwrap());
    let after_estimate = stored(store, &original.id).await;
    assert_eq!((after_estimate.version, after_estimate.estimate.as_ref()), (1, Some(&running)), "no version move");

    let mut renamed = original.clone();
    renamed.name = "renamed".into();
    renamed.member_generation = "g2".into();
    renamed.member_count = 7;
    renamed.version = 2;
    renamed.updated_at = now() + TimeDelta::seconds(1);
    let audit = || audience_audit("audience.update", &original.id);
    store.replace_audience(&renamed, 1, Some(&audit())).await.unwrap();
    let read = stored(store, &original.id).await;
    assert_eq!(read, Audience { estimate: Some(running.clone()), ..renamed.clone() }, "the estimate is kept");

    let mut stale = original.clone();
    stale.name = "stale".into();
    stale.version = 2;
    let lost = store.replace_audience(&stale, 1, None).await;
    assert!(matches!(lost, Err(StoreError::Conflict(Conflict::Version))), "a stale version conflicts: {lost:?}");
    assert_eq!(stored(store, &original.id).await.name, "renamed");
    let ghost = list_audience("ghost", "g1", now());
    assert!(matches!(store.replace_audience(&ghost, 1, None).await, Err(StoreError::NotFound)));
}

/// Deleting an audience is compare-and-set on `version` and takes its members of every
/// generation with it.
pub async fn deleting_an_audience_removes_it_and_all_its_members(store: &impl AudienceStore) {
    let audience = list_audience("doomed", "g1", now());
    let neighbour = list_audience("neighbour", "g1", now());
    insert(store, &audience).await;
    insert(store, &neighbour).await;
    store.stage_members(&audience.id, "g1", &users(&["a", "b"]), now()).await.unwrap();
    store.stage_members(&audience.id, "g2", &users(&["c"]), now()).await.unwrap();
    store.stage_members(&neighbour.id, "g1", &users(&["a"]), now()).await.unwrap();

    let audit = || audience_audit("audience.delete", &audience.id);
    let stale = store.delete_audience(&audience.id, 2, &audit()).await;
    assert!(matches!(stale, Err(StoreError::Conflict(Conflict::Version))), "a stale version conflicts: {stale:?}");
    assert!(store.audience(&audience.id).await.unwrap().is_some(), "nothing deleted by a stale delete");
    store.delete_audience(&audience.id, 1, &audit()).await.unwrap();
    assert_eq!(store.audience(&audience.id).await.unwrap(), None);
    for generation in ["g1", "g2"] {
        let left = store.members_after(&audience.id, generation, None, 10).await.unwrap();
        assert!(left.is_empty(), "generation {generation} deleted with the audience: {left:?}");
    }
    let kept = store.members_after(&neighbour.id, "g1", None, 10).await.unwrap();
    assert_eq!(kept, users(&["a"]), "another audience's members stay");
    let again = store.delete_audience(&audience.id, 1, &audit()).await;
    assert!(matches!(again, Err(StoreError::NotFound)), "an absent audience is not found: {again:?}");
}

/// Members live per generation: staging skips ids already there (counting only new ones); the
/// generation the audience counts is read at once, another one once the audience switches to
/// it (a store may hold an upload back until then), and the one switched from stays readable
/// until discarded; discarding one generation touches no other, and discarding all but one
/// keeps exactly that one.
pub async fn members_are_per_generation_and_a_discard_keeps_the_named_one(store: &impl AudienceStore) {
    let audience = list_audience("list", "g1", now());
    insert(store, &audience).await;
    let id = &audience.id;
    assert_eq!(store.stage_members(id, "g1", &users(&["u3", "u1", "u2"]), now()).await.unwrap(), 3);
    assert_eq!(store.stage_members(id, "g1", &users(&["u2", "u4", "u4"]), now()).await.unwrap(), 1, "u2, u4 again");
    assert_eq!(store.members_after(id, "g1", None, 10).await.unwrap(), users(&["u1", "u2", "u3", "u4"]));
    assert_eq!(store.stage_members(id, "g2", &users(&["u9", "u1"]), now()).await.unwrap(), 2);
    assert_eq!(store.stage_members(id, "g2", &users(&["u1", "u8", "u9"]), now()).await.unwrap(), 1, "across batches");
    assert_eq!(store.stage_members(id, "g3", &users(&["u7"]), now()).await.unwrap(), 1);
    assert_eq!(store.stage_members(id, "g3", &[], now()).await.unwrap(), 0);

    let mut switched = audience.clone();
    (switched.member_generation, switched.member_count, switched.version) = ("g2".into(), 3, 2);
    store.replace_audience(&switched, 1, None).await.unwrap();
    assert_eq!(stored(store, id).await.member_count, 3, "the count of the generation switched to");
    assert_eq!(store.members_after(id, "g2", None, 10).await.unwrap(), users(&["u1", "u8", "u9"]));
    assert_eq!(store.members_after(id, "g2", Some(&user("u1")), 1).await.unwrap(), users(&["u8"]));
    assert_eq!(store.members_after(id, "g1", None, 10).await.unwrap(), users(&["u1", "u2", "u3", "u4"]));
    let listed = store.list_members(id, "g1", page(2, 3)).await.unwrap();
    assert_eq!((listed.items, listed.total), (users(&["u4"]), 4), "a page of one generation, its total");
    let lists = [(id.clone(), "g2".to_owned())];
    assert!(store.memberships(&user("u2"), &lists).await.unwrap().is_empty(), "u2 is only in g1");
    assert_eq!(store.memberships(&user("u9"), &lists).await.unwrap(), std::slice::from_ref(id));
    assert_eq!(store.stage_members(id, "g2", &users(&["u9", "u6"]), now()).await.unwrap(), 1, "the counted one");
    assert_eq!(store.members_after(id, "g2", None, 10).await.unwrap(), users(&["u1", "u6", "u8", "u9"]));

    assert_eq!(store.discard_generation(id, "g3").await.unwrap(), 1, "a refused upload's generation");
    assert_eq!(store.members_after(id, "g1", None, 10).await.unwrap().len(), 4, "no other generation touched");
    assert_eq!(store.members_after(id, "g2", None, 10).await.unwrap().len(), 4);
    store.stage_members(id, "g4", &users(&["u5"]), now()).await.unwrap();
    assert_eq!(store.discard_members(id, Some("g2")).await.unwrap(), 5, "g1's four and g4's one");
    assert!(store.members_after(id, "g1", None, 10).await.unwrap().is_empty());
    assert_eq!(store.members_after(id, "g2", None, 10).await.unwrap(), users(&["u1", "u6", "u8", "u9"]), "kept");
    let mut again = switched.clone();
    (again.member_generation, again.version) = ("g4".into(), 3);
    store.replace_audience(&again, 2, None).await.unwrap();
    assert!(store.members_after(id, "g4", None, 10).await.unwrap().is_empty(), "g4 was discarded before the switch");
    assert_eq!(store.discard_members(id, None).await.unwrap(), 4);
    assert!(store.members_after(id, "g2", None, 10).await.unwrap().is_empty());
}

/// Adding and removing one member moves `memberCount` with it (never the version), only once
/// per member, and only while the audience still counts the generation given; a replace within
/// the generation keeps the count.
pub async fn adding_and_removing_a_member_moves_the_count_on_the_current_generation(store: &impl AudienceStore) {
    let audience = list_audience("list", "g1", now());
    insert(store, &audience).await;
    let id = &audience.id;
    let audit = |action: &str| audience_audit(action, id);
    assert!(store.add_member(id, "g1", &user("u1"), now(), &audit("audience.member.add")).await.unwrap());
    assert!(store.add_member(id, "g1", &user("u2"), now(), &audit("audience.member.add")).await.unwrap());
    assert!(!store.add_member(id, "g1", &user("u1"), now(), &audit("audience.member.add")).await.unwrap());
    let read = stored(store, id).await;
    assert_eq!((read.member_count, read.version), (2, 1), "two new members, the version unchanged");
    assert_eq!(store.members_after(id, "g1", None, 10).await.unwrap(), users(&["u1", "u2"]));

    let mut renamed = audience.clone();
    renamed.name = "renamed".into();
    renamed.version = 2;
    store.replace_audience(&renamed, 1, None).await.unwrap();
    let read = stored(store, id).await;
    assert_eq!((read.name.as_str(), read.member_count), ("renamed", 2), "a copy read before the adds keeps the count");

    assert!(store.remove_member(id, "g1", &user("u1"), &audit("audience.member.remove")).await.unwrap());
    assert!(!store.remove_member(id, "g1", &user("u1"), &audit("audience.member.remove")).await.unwrap());
    assert_eq!(stored(store, id).await.member_count, 1);

    let stale_add = store.add_member(id, "g0", &user("u3"), now(), &audit("audience.member.add")).await;
    assert!(matches!(stale_add, Err(StoreError::Conflict(Conflict::Version))), "a stale generation: {stale_add:?}");
    let stale_remove = store.remove_member(id, "g0", &user("u2"), &audit("audience.member.remove")).await;
    assert!(matches!(stale_remove, Err(StoreError::Conflict(Conflict::Version))), "{stale_remove:?}");
    assert!(store.members_after(id, "g0", None, 10).await.unwrap().is_empty(), "nothing written to g0");
    assert_eq!(stored(store, id).await.member_count, 1, "nor counted");
    let ghost = AudienceId::generate();
    let missing = store.add_member(&ghost, "g1", &user("u3"), now(), &audit("audience.member.add")).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "an absent audience: {missing:?}");
}

/// `memberships` answers for several lists at once, each with the generation it counts.
pub async fn memberships_answer_several_lists_in_one_read(store: &impl AudienceStore) {
    let [first, second, third] = ["first", "second", "third"].map(|name| list_audience(name, "g1", now()));
    for audience in [&first, &second, &third] {
        insert(store, audience).await;
        store
            .stage_members(&audience.id, "g1", &users(&["both", &format!("only-{}", audience.name)]), now())
            .await
            .unwrap();
    }
    store.stage_members(&third.id, "g2", &users(&["later"]), now()).await.unwrap();
    let lists: Vec<(AudienceId, String)> =
        [&first, &second, &third].iter().map(|a| (a.id.clone(), "g1".to_owned())).collect();
    let mut found = store.memberships(&user("both"), &lists).await.unwrap();
    found.sort();
    let mut expected = vec![first.id.clone(), second.id.clone(), third.id.clone()];
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(store.memberships(&user("only-second"), &lists).await.unwrap(), std::slice::from_ref(&second.id));
    assert!(store.memberships(&user("later"), &lists).await.unwrap().is_empty(), "g2 is not asked about");
    assert!(store.memberships(&user("nobody"), &lists).await.unwrap().is_empty());
    assert!(store.memberships(&user("both"), &[]).await.unwrap().is_empty());
    let unlisted = [(first.id.clone(), "g1".to_owned())];
    assert_eq!(store.memberships(&user("both"), &unlisted).await.unwrap(), [first.id], "only the lists asked");
}

/// `player_snapshot` answers what `player_properties` and `memberships` answer, together, and
/// reads properties only when asked to.
pub async fn a_player_snapshot_is_the_properties_and_memberships_at_once(store: &impl AudienceStore) {
    let list = list_audience("snapshot", "g1", now());
    insert(store, &list).await;
    store.stage_members(&list.id, "g1", &users(&["described"]), now()).await.unwrap();
    let player = user("described");
    let mut properties = PlayerProperties::empty(player.clone(), now());
    properties.properties.insert("country".to_owned(), PropertyValue::Text("KR".into()));
    properties.version = 1;
    store.write_player_properties(&properties, 0, &audit("player.properties", "described")).await.unwrap();
    let lists = [(list.id.clone(), "g1".to_owned())];

    let both = store.player_snapshot(&player, true, &lists).await.unwrap();
    assert_eq!(both.properties.as_ref(), Some(&properties));
    assert_eq!(both.lists, std::slice::from_ref(&list.id));
    let without_properties = store.player_snapshot(&player, false, &lists).await.unwrap();
    assert_eq!((without_properties.properties, without_properties.lists), (None, vec![list.id.clone()]));
    let stranger = store.player_snapshot(&user("stranger"), true, &lists).await.unwrap();
    assert_eq!((stranger.properties, stranger.lists), (None, Vec::new()));
    let no_lists = store.player_snapshot(&player, true, &[]).await.unwrap();
    assert_eq!((no_lists.properties.is_some(), no_lists.lists.len()), (true, 0));
}

/// Sticking a player to an event is idempotent and recorded per (player, event).
pub async fn sticky_membership_is_per_player_and_event_and_idempotent(store: &impl AudienceStore) {
    let (welcome, launch, other) = (EventId::generate(), EventId::generate(), EventId::generate());
    store.stick(&user("p1"), &welcome, now()).await.unwrap();
    store.stick(&user("p1"), &welcome, now()).await.unwrap();
    store.stick(&user("p1"), &launch, now()).await.unwrap();
    store.stick(&user("p2"), &other, now()).await.unwrap();
    let mut stuck = store.sticky_events(&user("p1"), &[welcome.clone(), launch.clone(), other.clone()]).await.unwrap();
    stuck.sort();
    let mut expected = vec![welcome.clone(), launch.clone()];
    expected.sort();
    assert_eq!(stuck, expected);
    assert_eq!(store.sticky_events(&user("p1"), std::slice::from_ref(&launch)).await.unwrap(), [launch]);
    assert!(store.sticky_events(&user("p2"), &[welcome]).await.unwrap().is_empty(), "per player");
    assert!(store.sticky_events(&user("p3"), &[]).await.unwrap().is_empty());
}

/// An estimate is written while no newer run has written one: the same run updates its
/// progress, a newer run (later `startedAt`) replaces it, an older run's late write is refused;
/// an absent audience is `false`.
pub async fn a_newer_estimate_run_replaces_an_older_one_never_the_reverse(store: &impl AudienceStore) {
    let audience = list_audience("estimated", "g1", now());
    insert(store, &audience).await;
    let id = &audience.id;
    let started = now();
    let first = estimate("job-a", started, 10, EstimateStatus::Running);
    assert!(store.record_estimate(id, &first).await.unwrap(), "no estimate stored yet");
    let progress = estimate("job-a", started, 60, EstimateStatus::Running);
    assert!(store.record_estimate(id, &progress).await.unwrap(), "the same run's progress");
    let newer = estimate("job-b", started + TimeDelta::seconds(5), 5, EstimateStatus::Running);
    assert!(store.record_estimate(id, &newer).await.unwrap(), "a newer run replaces an older one");
    let late = estimate("job-a", started, 100, EstimateStatus::Done);
    assert!(!store.record_estimate(id, &late).await.unwrap(), "the older run's late write is refused");
    let read = stored(store, id).await;
    assert_eq!((read.estimate.as_ref(), read.version), (Some(&newer), 1), "the newer run's, no version move");
    let done = estimate("job-b", newer.started_at, 100, EstimateStatus::Done);
    assert!(store.record_estimate(id, &done).await.unwrap());
    assert_eq!(stored(store, id).await.estimate, Some(done));
    assert!(!store.record_estimate(&AudienceId::generate(), &first).await.unwrap(), "an absent audience");
}

/// Who uses an audience: the events whose target names it (include or exclude), the RULE
/// audiences whose rule names it through `IN_AUDIENCE`; nothing else.
pub async fn audience_users_are_the_events_and_rules_naming_it(store: &(impl AudienceStore + EventStore)) {
    let used = list_audience("used", "g1", now());
    let unused = list_audience("unused", "g1", now());
    insert(store, &used).await;
    insert(store, &unused).await;
    assert_eq!(store.audience_users(&used.id).await.unwrap(), AudienceUsers::default());

    let mut including = crate::events::event(Some(5));
    including.audience = Some(AudienceTarget { include: vec![used.id.clone()], exclude: Vec::new(), sticky: true });
    let mut excluding = crate::events::event(None);
    excluding.audience =
        Some(AudienceTarget { include: vec![unused.id.clone()], exclude: vec![used.id.clone()], sticky: false });
    let everyone = crate::events::event(None);
    for event in [&including, &excluding, &everyone] {
        store.insert_event(event, &audit("event.create", &event.id)).await.unwrap();
    }
    let nested = rule_audience("KR", Some(&used.id));
    let plain = rule_audience("JP", None);
    insert(store, &nested).await;
    insert(store, &plain).await;
    assert_eq!(store.event(&including.id).await.unwrap().unwrap().audience, including.audience, "read back");

    let users = store.audience_users(&used.id).await.unwrap();
    let mut events = users.events.clone();
    events.sort();
    let mut expected = vec![including.id.clone(), excluding.id.clone()];
    expected.sort();
    assert_eq!((events, users.audiences), (expected, vec![nested.id.clone()]));
    let others = store.audience_users(&unused.id).await.unwrap();
    assert_eq!(others, AudienceUsers { events: vec![excluding.id.clone()], audiences: Vec::new() });
    assert_eq!(store.audience_users(&nested.id).await.unwrap(), AudienceUsers::default());
}
