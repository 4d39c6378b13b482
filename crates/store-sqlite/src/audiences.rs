//! `event.db`: the SQLite adapter of [`AudienceStore`]: player properties in
//! `player_properties`, audiences in `audiences`, LIST members per generation in
//! `audience_members` and sticky memberships in `audience_sticky` (schema in
//! `migrations/event/0010_audiences.sql`).
//!
//! An upload's ids arrive in the CSV's order, which is no order: inserted straight into the
//! key-ordered `audience_members`, each batch of a million-member upload would rewrite most of
//! that table's pages (a minute and more on this machine's disk). So a generation the audience
//! does not count yet is staged in `audience_staging`, appended batch by batch (one transaction
//! each), with [`Staging`] telling which ids of a batch are new; when
//! [`AudienceStore::replace_audience`] switches the audience to it, it moves into
//! `audience_members` in user-id order, [`PUBLISH_BATCH`] rows per transaction, before the
//! compare-and-set. Ids staged into the generation the audience counts go straight in.
//!
//! Big member sets are removed in bounded transactions too ([`DISCARD_BATCH`] rows each), so a
//! million-member list never holds the write lock for long.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bestow_events_domain::audience::properties::{PlayerProperties, PropertyValue};
use bestow_events_domain::audience::{Audience, AudienceEstimate, AudienceUsers};
use bestow_events_domain::ports::audiences::{AudienceStore, PlayerSnapshot};
use bestow_kernel::audit::AuditEntry;
use bestow_kernel::ids::{AudienceId, EventId, UserId};
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use crate::audit::insert_audit;
use crate::columns::NamedColumns;
use crate::database::{map_error, to_text};
use crate::event_db::SqliteEventStore;

const AUDIENCE_COLUMNS: &str = "_id, name, description, kind, rule, \"references\", memberCount, memberGeneration, \
                                estimate, createdBy, createdAt, updatedAt, version";

/// Members deleted per transaction by a discard.
const DISCARD_BATCH: i64 = 10_000;
/// Staged members moved into `audience_members` per transaction by a switch.
const PUBLISH_BATCH: usize = 10_000;
/// How long an upload's fingerprints are kept without a batch (then rebuilt if needed).
const STAGING_IDLE: Duration = Duration::from_secs(30 * 60);

/// The ids each upload in progress has staged, by (audience, generation): 128-bit fingerprints
/// of the ids in `audience_staging`, so a batch learns which of its ids are new without an
/// index on the staging rows (whose scattered inserts are the cost staging avoids). A cache:
/// an entry missing (idle, a restart, another process) is rebuilt from the table. One upload
/// stages a generation, one batch at a time.
#[derive(Clone, Default)]
pub(crate) struct Staging {
    keys: RandomState,
    uploads: Arc<Mutex<HashMap<(String, String), StagedIds>>>,
}

struct StagedIds {
    fingerprints: HashSet<u128>,
    touched: Instant,
}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let uploads = self.uploads.lock().map(|uploads| uploads.len()).unwrap_or_default();
        f.debug_struct("Staging").field("uploads", &uploads).finish_non_exhaustive()
    }
}

impl Staging {
    /// Two keyed 64-bit hashes of the id: distinct ids of one upload collide with odds of about
    /// 2^-88 for a million of them.
    fn fingerprint(&self, user_id: &str) -> u128 {
        let half = |salt: u8| {
            let mut hasher = self.keys.build_hasher();
            hasher.write_u8(salt);
            hasher.write(user_id.as_bytes());
            hasher.finish()
        };
        (u128::from(half(0)) << 64) | u128::from(half(1))
    }

    /// Takes the fingerprints of `key` out (the caller puts them back after its batch), and
    /// drops those of uploads idle too long.
    fn take(&self, key: &(String, String)) -> Option<StagedIds> {
        let mut uploads = self.uploads.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        uploads.retain(|_, staged| staged.touched.elapsed() < STAGING_IDLE);
        uploads.remove(key)
    }

    fn put(&self, key: (String, String), mut staged: StagedIds) {
        staged.touched = Instant::now();
        self.uploads.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(key, staged);
    }

    /// Forgets the audience's generation `generation`, or all of its generations.
    fn forget(&self, audience_id: &str, generation: Option<&str>) {
        let mut uploads = self.uploads.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        uploads.retain(|(audience, staged), _| audience != audience_id || generation.is_some_and(|g| g != staged));
    }
}

/// The fingerprints of what `audience_staging` holds for the generation.
fn staged_ids(
    tx: &Transaction<'_>,
    staging: &Staging,
    audience_id: &str,
    generation: &str,
) -> Result<StagedIds, StoreError> {
    let mut statement = tx
        .prepare_cached("SELECT userId FROM audience_staging WHERE audienceId = ?1 AND generation = ?2")
        .map_err(map_error)?;
    let mut rows = statement.query(params![audience_id, generation]).map_err(map_error)?;
    let mut fingerprints = HashSet::new();
    while let Some(row) = rows.next().map_err(map_error)? {
        let user_id: String = row.get(0).map_err(map_error)?;
        fingerprints.insert(staging.fingerprint(&user_id));
    }
    Ok(StagedIds { fingerprints, touched: Instant::now() })
}

fn audience_from_row(row: &Row<'_>) -> rusqlite::Result<Audience> {
    Ok(Audience {
        id: row.parsed("_id")?,
        name: row.get("name")?,
        description: row.get("description")?,
        kind: row.parsed("kind")?,
        rule: row.optional_json("rule")?,
        references: row.json("references")?,
        member_count: u64::try_from(row.get::<_, i64>("memberCount")?).unwrap_or(0),
        member_generation: row.get("memberGeneration")?,
        estimate: row.optional_json("estimate")?,
        created_by: row.get("createdBy")?,
        created_at: row.time("createdAt")?,
        updated_at: row.time("updatedAt")?,
        version: row.get("version")?,
    })
}

fn properties_from_row(row: &Row<'_>) -> rusqlite::Result<PlayerProperties> {
    Ok(PlayerProperties {
        user_id: row.parsed("_id")?,
        properties: row.json("properties")?,
        updated_at: row.time("updatedAt")?,
        version: row.get("version")?,
    })
}

fn json_text(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Unavailable(format!("cannot encode: {e}")))
}

/// Ids as a JSON array, for `IN (SELECT value FROM json_each(?))`: one statement whatever
/// their number.
fn id_list<T: AsRef<str>>(ids: &[T]) -> Result<String, StoreError> {
    json_text(&ids.iter().map(AsRef::as_ref).collect::<Vec<&str>>())
}

fn count_of(total: i64) -> u64 {
    u64::try_from(total).unwrap_or(0)
}

fn limit_of(limit: u32) -> i64 {
    i64::from(limit)
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> Result<Vec<T>, StoreError> {
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(map_error)
}

fn select_audience(connection: &Connection, id: &str) -> Result<Option<Audience>, StoreError> {
    connection
        .prepare_cached(&format!("SELECT {AUDIENCE_COLUMNS} FROM audiences WHERE _id = ?1"))
        .and_then(|mut statement| statement.query_row([id], audience_from_row).optional())
        .map_err(map_error)
}

/// Why a compare-and-set on the audience `id` changed nothing: it is gone, or it moved on.
fn lost_race(tx: &Transaction<'_>, id: &str) -> StoreError {
    match tx.query_row("SELECT EXISTS (SELECT 1 FROM audiences WHERE _id = ?1)", [id], |row| row.get::<_, bool>(0)) {
        Ok(true) => StoreError::Conflict(Conflict::Version),
        Ok(false) => StoreError::NotFound,
        Err(error) => map_error(error),
    }
}

/// Refuses a member change unless the audience still counts generation `generation`.
fn require_generation(tx: &Transaction<'_>, audience_id: &str, generation: &str) -> Result<(), StoreError> {
    let current: Option<String> = tx
        .prepare_cached("SELECT memberGeneration FROM audiences WHERE _id = ?1")
        .and_then(|mut statement| statement.query_row([audience_id], |row| row.get(0)).optional())
        .map_err(map_error)?;
    match current {
        Some(current) if current == generation => Ok(()),
        Some(_) => Err(StoreError::Conflict(Conflict::Version)),
        None => Err(StoreError::NotFound),
    }
}

/// The first generation of the audience in `table` (`audience_members` or `audience_staging`)
/// after `after` (from the first when `None`), skipping `keep`: each a seek on an index led by
/// (audienceId, generation), never a scan of the members.
fn next_generation(
    connection: &Connection,
    table: &str,
    audience_id: &str,
    after: Option<&str>,
    keep: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let mut cursor = after.map(str::to_owned);
    loop {
        let found: Option<String> = match &cursor {
            None => connection
                .prepare_cached(&format!(
                    "SELECT generation FROM {table} WHERE audienceId = ?1 ORDER BY generation LIMIT 1"
                ))
                .and_then(|mut statement| statement.query_row([audience_id], |row| row.get(0)).optional()),
            Some(after) => connection
                .prepare_cached(&format!(
                    "SELECT generation FROM {table} WHERE audienceId = ?1 AND generation > ?2
                     ORDER BY generation LIMIT 1"
                ))
                .and_then(|mut statement| statement.query_row([audience_id, after], |row| row.get(0)).optional()),
        }
        .map_err(map_error)?;
        match found {
            Some(generation) if Some(generation.as_str()) == keep => cursor = Some(generation),
            other => return Ok(other),
        }
    }
}

/// Deletes up to [`DISCARD_BATCH`] members of one generation, lowest user ids first; returns
/// how many.
fn discard_batch(tx: &Transaction<'_>, audience_id: &str, generation: &str) -> Result<u64, StoreError> {
    // The batch is a key range (up to its last user id), so the delete is a range of the
    // primary key rather than a probe per member.
    let last: Option<String> = tx
        .prepare_cached(
            "SELECT userId FROM audience_members WHERE audienceId = ?1 AND generation = ?2
             ORDER BY userId LIMIT 1 OFFSET ?3",
        )
        .and_then(|mut statement| {
            statement.query_row(params![audience_id, generation, DISCARD_BATCH - 1], |row| row.get(0)).optional()
        })
        .map_err(map_error)?;
    let deleted = match last {
        Some(last) => tx
            .prepare_cached("DELETE FROM audience_members WHERE audienceId = ?1 AND generation = ?2 AND userId <= ?3")
            .and_then(|mut statement| statement.execute(params![audience_id, generation, last])),
        None => tx
            .prepare_cached("DELETE FROM audience_members WHERE audienceId = ?1 AND generation = ?2")
            .and_then(|mut statement| statement.execute(params![audience_id, generation])),
    }
    .map_err(map_error)?;
    Ok(u64::try_from(deleted).unwrap_or(0))
}

/// Deletes up to [`DISCARD_BATCH`] staged ids of one generation; returns how many.
fn discard_staged_batch(tx: &Transaction<'_>, audience_id: &str, generation: &str) -> Result<u64, StoreError> {
    let deleted = tx
        .prepare_cached(
            "DELETE FROM audience_staging WHERE rowid IN (
                 SELECT rowid FROM audience_staging WHERE audienceId = ?1 AND generation = ?2 LIMIT ?3)",
        )
        .and_then(|mut statement| statement.execute(params![audience_id, generation, DISCARD_BATCH]))
        .map_err(map_error)?;
    Ok(u64::try_from(deleted).unwrap_or(0))
}

/// Whether `estimate` may replace `stored`: none stored, the same run, or an older run.
fn supersedes(estimate: &AudienceEstimate, stored: Option<&AudienceEstimate>) -> bool {
    let Some(stored) = stored else { return true };
    estimate.job_id == stored.job_id
        || (estimate.started_at, estimate.job_id.as_str()) > (stored.started_at, stored.job_id.as_str())
}

impl SqliteEventStore {
    /// Deletes the members and staged ids of every generation of the audience but `keep`, one
    /// transaction per batch so other writers get the lock between them; returns how many
    /// members (staged or counted) went. The staged ids of `keep` go too once the audience
    /// counts it: they were moved into `audience_members` when it switched.
    async fn discard_all_but(&self, audience_id: &AudienceId, keep: Option<&str>) -> Result<u64, StoreError> {
        let audience_id = audience_id.to_string();
        let id = audience_id.clone();
        let current: Option<String> = self
            .db
            .read(move |connection| {
                connection
                    .query_row("SELECT memberGeneration FROM audiences WHERE _id = ?1", [id], |row| row.get(0))
                    .optional()
                    .map_err(map_error)
            })
            .await?;
        let mut discarded = 0;
        for table in ["audience_members", "audience_staging"] {
            let published_keep = table == "audience_staging" && keep.is_some() && current.as_deref() == keep;
            let skip = if published_keep { None } else { keep.map(str::to_owned) };
            let mut after: Option<String> = None;
            loop {
                let (id, skipped, from) = (audience_id.clone(), skip.clone(), after.clone());
                let next =
                    self.db.read(move |c| next_generation(c, table, &id, from.as_deref(), skipped.as_deref())).await?;
                let Some(generation) = next else { break };
                let deleted = self.discard_in(table, &audience_id, &generation).await?;
                if Some(generation.as_str()) != keep {
                    discarded += deleted;
                }
                after = Some(generation);
            }
        }
        match keep {
            Some(keep) if current.as_deref() != Some(keep) => {
                let kept = self.staging.take(&(audience_id.clone(), keep.to_owned()));
                self.staging.forget(&audience_id, None);
                if let Some(kept) = kept {
                    self.staging.put((audience_id, keep.to_owned()), kept);
                }
            }
            _ => self.staging.forget(&audience_id, None),
        }
        Ok(discarded)
    }

    /// Deletes one generation of the audience from `table`, one transaction per batch.
    async fn discard_in(&self, table: &'static str, audience_id: &str, generation: &str) -> Result<u64, StoreError> {
        let mut discarded = 0;
        loop {
            let (id, name) = (audience_id.to_owned(), generation.to_owned());
            let deleted = self
                .db
                .transaction(move |tx| match table {
                    "audience_staging" => discard_staged_batch(tx, &id, &name),
                    _ => discard_batch(tx, &id, &name),
                })
                .await?;
            discarded += deleted;
            if deleted < DISCARD_BATCH.unsigned_abs() {
                return Ok(discarded);
            }
        }
    }

    /// Moves the staged ids of the generation into `audience_members`, in user-id order (so
    /// each batch fills pages one after the other), [`PUBLISH_BATCH`] per transaction. A reader
    /// streams them sorted while the writer takes each batch in turn.
    async fn publish(&self, audience_id: &str, generation: &str) -> Result<(), StoreError> {
        let (db, audience_id, generation) = (self.db.clone(), audience_id.to_owned(), generation.to_owned());
        self.db
            .read(move |reader| {
                let mut statement = reader
                    .prepare_cached(
                        "SELECT userId, addedAt FROM audience_staging WHERE audienceId = ?1 AND generation = ?2
                         ORDER BY userId",
                    )
                    .map_err(map_error)?;
                let mut rows = statement.query(params![audience_id, generation]).map_err(map_error)?;
                let mut batch: Vec<(String, String)> = Vec::with_capacity(PUBLISH_BATCH);
                let mut done = false;
                while !done {
                    match rows.next().map_err(map_error)? {
                        Some(row) => batch.push((row.get(0).map_err(map_error)?, row.get(1).map_err(map_error)?)),
                        None => done = true,
                    }
                    if batch.len() == PUBLISH_BATCH || (done && !batch.is_empty()) {
                        db.transaction_blocking(|tx| {
                            let mut insert = tx
                                .prepare_cached(
                                    "INSERT INTO audience_members (audienceId, generation, userId, addedAt)
                                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                                )
                                .map_err(map_error)?;
                            for (user_id, added_at) in &batch {
                                insert
                                    .execute(params![audience_id, generation, user_id, added_at])
                                    .map_err(map_error)?;
                            }
                            Ok(())
                        })?;
                        batch.clear();
                    }
                }
                Ok(())
            })
            .await
    }
}

/// A player's stored properties.
fn select_properties(connection: &Connection, user_id: &str) -> Result<Option<PlayerProperties>, StoreError> {
    connection
        .prepare_cached("SELECT _id, properties, updatedAt, version FROM player_properties WHERE _id = ?1")
        .and_then(|mut statement| statement.query_row([user_id], properties_from_row).optional())
        .map_err(map_error)
}

/// `(audienceId, generation)` pairs as the JSON array [`select_memberships`] reads.
fn lists_text(lists: &[(AudienceId, String)]) -> Result<String, StoreError> {
    let lists: Vec<(&str, &str)> = lists.iter().map(|(id, generation)| (id.as_str(), generation.as_str())).collect();
    json_text(&lists)
}

/// The lists of `lists` (see [`lists_text`]) that have the player as a member: one point read
/// of the primary key per list asked about.
fn select_memberships(connection: &Connection, user_id: &str, lists: &str) -> Result<Vec<AudienceId>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT member.audienceId FROM json_each(?2) AS list
             JOIN audience_members AS member
                 ON member.audienceId = json_extract(list.value, '$[0]')
                 AND member.generation = json_extract(list.value, '$[1]')
                 AND member.userId = ?1
             ORDER BY member.audienceId",
        )
        .map_err(map_error)?;
    collect(statement.query_map(params![user_id, lists], |row| row.parsed("audienceId")).map_err(map_error)?)
}

#[async_trait]
impl AudienceStore for SqliteEventStore {
    async fn player_properties(&self, user_id: &UserId) -> Result<Option<PlayerProperties>, StoreError> {
        let user_id = user_id.to_string();
        self.db.read(move |connection| select_properties(connection, &user_id)).await
    }

    async fn player_snapshot(
        &self,
        user_id: &UserId,
        properties: bool,
        lists: &[(AudienceId, String)],
    ) -> Result<PlayerSnapshot, StoreError> {
        let user_id = user_id.to_string();
        let lists = (!lists.is_empty()).then(|| lists_text(lists)).transpose()?;
        // One trip to the reader pool for both: on a player's path the trip costs more than
        // the two point reads.
        self.db
            .read(move |connection| {
                let properties = if properties { select_properties(connection, &user_id)? } else { None };
                let lists = match &lists {
                    Some(lists) => select_memberships(connection, &user_id, lists)?,
                    None => Vec::new(),
                };
                Ok(PlayerSnapshot { properties, lists })
            })
            .await
    }

    async fn write_player_properties(
        &self,
        properties: &PlayerProperties,
        expected_version: i64,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let stored: serde_json::Map<String, serde_json::Value> =
            properties.properties.iter().map(|(name, value)| (name.clone(), PropertyValue::to_json(value))).collect();
        let stored = json_text(&stored)?;
        let (user_id, updated_at, version) =
            (properties.user_id.to_string(), to_text(properties.updated_at), properties.version);
        let audit = audit.clone();
        self.db
            .transaction(move |tx| {
                let written = if expected_version == 0 {
                    tx.prepare_cached(
                        "INSERT INTO player_properties (_id, properties, updatedAt, version) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (_id) DO NOTHING",
                    )
                    .and_then(|mut statement| statement.execute(params![user_id, stored, updated_at, version]))
                } else {
                    tx.prepare_cached(
                        "UPDATE player_properties SET properties = ?3, updatedAt = ?4, version = ?5
                         WHERE _id = ?1 AND version = ?2",
                    )
                    .and_then(|mut statement| {
                        statement.execute(params![user_id, expected_version, stored, updated_at, version])
                    })
                }
                .map_err(map_error)?;
                if written == 0 {
                    return Err(StoreError::Conflict(Conflict::Version));
                }
                insert_audit(tx, &audit)
            })
            .await
    }

    async fn player_properties_after(
        &self,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<PlayerProperties>, StoreError> {
        // Every user id is at least one character, so "" is before all of them.
        let after = after.map(ToString::to_string).unwrap_or_default();
        self.db
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT _id, properties, updatedAt, version FROM player_properties WHERE _id > ?1
                         ORDER BY _id LIMIT ?2",
                    )
                    .map_err(map_error)?;
                collect(statement.query_map(params![after, limit_of(limit)], properties_from_row).map_err(map_error)?)
            })
            .await
    }

    async fn count_player_properties(&self) -> Result<u64, StoreError> {
        self.db
            .read(|connection| {
                connection
                    .query_row("SELECT COUNT(*) FROM player_properties", [], |row| row.get(0))
                    .map(count_of)
                    .map_err(map_error)
            })
            .await
    }

    async fn insert_audience(&self, audience: &Audience, audit: &AuditEntry) -> Result<(), StoreError> {
        let rule = audience.rule.as_ref().map(json_text).transpose()?;
        let references = id_list(&audience.references)?;
        let estimate = audience.estimate.as_ref().map(json_text).transpose()?;
        let (audience, audit) = (audience.clone(), audit.clone());
        self.db
            .transaction(move |tx| {
                tx.execute(
                    &format!(
                        "INSERT INTO audiences ({AUDIENCE_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                    ),
                    params![
                        audience.id.as_str(),
                        audience.name,
                        audience.description,
                        audience.kind.as_str(),
                        rule,
                        references,
                        i64::try_from(audience.member_count).unwrap_or(i64::MAX),
                        audience.member_generation,
                        estimate,
                        audience.created_by,
                        to_text(audience.created_at),
                        to_text(audience.updated_at),
                        audience.version,
                    ],
                )
                .map_err(map_error)?;
                insert_audit(tx, &audit)
            })
            .await
    }

    async fn audience(&self, id: &AudienceId) -> Result<Option<Audience>, StoreError> {
        let id = id.to_string();
        self.db.read(move |connection| select_audience(connection, &id)).await
    }

    async fn audiences(&self, ids: &[AudienceId]) -> Result<Vec<Audience>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = id_list(ids)?;
        self.db
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(&format!(
                        "SELECT {AUDIENCE_COLUMNS} FROM audiences WHERE _id IN (SELECT value FROM json_each(?1))"
                    ))
                    .map_err(map_error)?;
                collect(statement.query_map([ids], audience_from_row).map_err(map_error)?)
            })
            .await
    }

    async fn list_audiences(&self, page: PageRequest) -> Result<Page<Audience>, StoreError> {
        self.db
            .read(move |connection| {
                let total: i64 =
                    connection.query_row("SELECT COUNT(*) FROM audiences", [], |row| row.get(0)).map_err(map_error)?;
                let mut statement = connection
                    .prepare_cached(&format!(
                        "SELECT {AUDIENCE_COLUMNS} FROM audiences ORDER BY createdAt DESC, _id DESC LIMIT ?1 OFFSET ?2"
                    ))
                    .map_err(map_error)?;
                let offset = i64::try_from(page.offset()).unwrap_or(i64::MAX);
                let audiences = collect(
                    statement.query_map(params![limit_of(page.limit), offset], audience_from_row).map_err(map_error)?,
                )?;
                Ok(Page::new(audiences, page, count_of(total)))
            })
            .await
    }

    async fn replace_audience(
        &self,
        audience: &Audience,
        expected_version: i64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let rule = audience.rule.as_ref().map(json_text).transpose()?;
        let references = id_list(&audience.references)?;
        let id = audience.id.to_string();
        let stored: Option<(i64, String)> = self
            .db
            .read(move |connection| {
                connection
                    .query_row("SELECT version, memberGeneration FROM audiences WHERE _id = ?1", [id], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()
                    .map_err(map_error)
            })
            .await?;
        match stored {
            None => return Err(StoreError::NotFound),
            Some((version, _)) if version != expected_version => return Err(StoreError::Conflict(Conflict::Version)),
            Some((_, generation)) if generation != audience.member_generation => {
                // A switch: the new generation's members must all be in place before anyone reads
                // it. Lost to a concurrent change after this, they are discarded like a refused
                // upload's.
                self.publish(audience.id.as_str(), &audience.member_generation).await?;
                self.staging.forget(audience.id.as_str(), Some(&audience.member_generation));
            }
            Some(_) => {}
        }
        let (audience, audit) = (audience.clone(), audit.cloned());
        self.db
            .transaction(move |tx| {
                // `kind`, `createdBy`, `createdAt` never change; `estimate` is record_estimate's.
                // `memberCount` is written only with a new generation (an upload's switch): within
                // one, add_member and remove_member move it without moving `version`, so a copy
                // read before them (an edit of the name) must not put the older count back.
                let changed = tx
                    .execute(
                        "UPDATE audiences SET name = ?3, description = ?4, rule = ?5, \"references\" = ?6,
                             memberCount = CASE WHEN memberGeneration = ?8 THEN memberCount ELSE ?7 END,
                             memberGeneration = ?8, updatedAt = ?9, version = ?10
                         WHERE _id = ?1 AND version = ?2",
                        params![
                            audience.id.as_str(),
                            expected_version,
                            audience.name,
                            audience.description,
                            rule,
                            references,
                            i64::try_from(audience.member_count).unwrap_or(i64::MAX),
                            audience.member_generation,
                            to_text(audience.updated_at),
                            audience.version,
                        ],
                    )
                    .map_err(map_error)?;
                if changed == 0 {
                    return Err(lost_race(tx, audience.id.as_str()));
                }
                match &audit {
                    Some(audit) => insert_audit(tx, audit),
                    None => Ok(()),
                }
            })
            .await
    }

    async fn delete_audience(
        &self,
        id: &AudienceId,
        expected_version: i64,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let (audience_id, audit) = (id.to_string(), audit.clone());
        // The row first, so no reader finds the audience with half its members; then the
        // members, in batches (a crash between leaves members of no audience, never the reverse).
        self.db
            .transaction(move |tx| {
                let deleted = tx
                    .execute(
                        "DELETE FROM audiences WHERE _id = ?1 AND version = ?2",
                        params![audience_id, expected_version],
                    )
                    .map_err(map_error)?;
                if deleted == 0 {
                    return Err(lost_race(tx, &audience_id));
                }
                insert_audit(tx, &audit)
            })
            .await?;
        // The delete is committed: members left by a failure here belong to no audience (ids
        // are never reused), so nobody can read them; the caller is not told the delete failed.
        if let Err(error) = self.discard_all_but(id, None).await {
            tracing::warn!(audience_id = %id, %error, "members of a deleted audience were left behind");
        }
        Ok(())
    }

    async fn audience_users(&self, id: &AudienceId) -> Result<AudienceUsers, StoreError> {
        let id = id.to_string();
        self.db
            .read(move |connection| {
                let mut events = connection
                    .prepare_cached(
                        "SELECT _id FROM events WHERE audience IS NOT NULL AND (
                             EXISTS (SELECT 1 FROM json_each(audience, '$.include') WHERE value = ?1)
                             OR EXISTS (SELECT 1 FROM json_each(audience, '$.exclude') WHERE value = ?1))
                         ORDER BY _id",
                    )
                    .map_err(map_error)?;
                let events: Vec<EventId> =
                    collect(events.query_map([&id], |row| row.parsed("_id")).map_err(map_error)?)?;
                let mut audiences = connection
                    .prepare_cached(
                        "SELECT _id FROM audiences
                         WHERE EXISTS (SELECT 1 FROM json_each(\"references\") WHERE value = ?1)
                         ORDER BY _id",
                    )
                    .map_err(map_error)?;
                let audiences: Vec<AudienceId> =
                    collect(audiences.query_map([&id], |row| row.parsed("_id")).map_err(map_error)?)?;
                Ok(AudienceUsers { events, audiences })
            })
            .await
    }

    async fn stage_members(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        user_ids: &[UserId],
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        if user_ids.is_empty() {
            return Ok(0);
        }
        let key = (audience_id.to_string(), generation.to_owned());
        let (staging, taken, user_ids) = (self.staging.clone(), self.staging.take(&key), user_ids.to_vec());
        let (audience_id, generation, added_at) = (key.0.clone(), key.1.clone(), to_text(at));
        let (added, staged) = self
            .db
            .transaction(move |tx| {
                let current: Option<String> = tx
                    .prepare_cached("SELECT memberGeneration FROM audiences WHERE _id = ?1")
                    .and_then(|mut statement| statement.query_row([&audience_id], |row| row.get(0)).optional())
                    .map_err(map_error)?;
                if current.as_deref() == Some(generation.as_str()) {
                    // The generation readers use: straight in, like one member added.
                    let mut insert = tx
                        .prepare_cached(
                            "INSERT INTO audience_members (audienceId, generation, userId, addedAt)
                             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                        )
                        .map_err(map_error)?;
                    let mut added = 0;
                    for user_id in &user_ids {
                        added +=
                            insert.execute(params![audience_id, generation, user_id.as_str(), added_at]).map_err(map_error)?;
                    }
                    return Ok((u64::try_from(added).unwrap_or(0), None));
                }
                let mut staged = match taken {
                    Some(staged) => staged,
                    None => staged_ids(tx, &staging, &audience_id, &generation)?,
                };
                let mut append = tx
                    .prepare_cached(
                        "INSERT INTO audience_staging (audienceId, generation, userId, addedAt) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(map_error)?;
                let mut added = 0;
                for user_id in &user_ids {
                    if staged.fingerprints.insert(staging.fingerprint(user_id.as_str())) {
                        append.execute(params![audience_id, generation, user_id.as_str(), added_at]).map_err(map_error)?;
                        added += 1;
                    }
                }
                // Returned only once committed: a rolled-back batch leaves no fingerprint behind.
                Ok((added, Some(staged)))
            })
            .await?;
        if let Some(staged) = staged {
            self.staging.put(key, staged);
        }
        Ok(added)
    }

    async fn discard_members(&self, audience_id: &AudienceId, keep: Option<&str>) -> Result<u64, StoreError> {
        self.discard_all_but(audience_id, keep).await
    }

    async fn discard_generation(&self, audience_id: &AudienceId, generation: &str) -> Result<u64, StoreError> {
        let members = self.discard_in("audience_members", audience_id.as_str(), generation).await?;
        let staged = self.discard_in("audience_staging", audience_id.as_str(), generation).await?;
        self.staging.forget(audience_id.as_str(), Some(generation));
        // A generation switched to and then lost its race is in both tables: count it once.
        Ok(if members > 0 { members } else { staged })
    }

    async fn add_member(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        user_id: &UserId,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let (audience_id, generation, user_id) = (audience_id.to_string(), generation.to_owned(), user_id.to_string());
        let audit = audit.clone();
        self.db
            .transaction(move |tx| {
                require_generation(tx, &audience_id, &generation)?;
                let added = tx
                    .prepare_cached(
                        "INSERT INTO audience_members (audienceId, generation, userId, addedAt) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT DO NOTHING",
                    )
                    .and_then(|mut statement| statement.execute(params![audience_id, generation, user_id, to_text(at)]))
                    .map_err(map_error)?;
                if added == 0 {
                    return Ok(false);
                }
                tx.execute("UPDATE audiences SET memberCount = memberCount + 1 WHERE _id = ?1", [&audience_id])
                    .map_err(map_error)?;
                insert_audit(tx, &audit)?;
                Ok(true)
            })
            .await
    }

    async fn remove_member(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        user_id: &UserId,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let (audience_id, generation, user_id) = (audience_id.to_string(), generation.to_owned(), user_id.to_string());
        let audit = audit.clone();
        self.db
            .transaction(move |tx| {
                require_generation(tx, &audience_id, &generation)?;
                let removed = tx
                    .prepare_cached(
                        "DELETE FROM audience_members WHERE audienceId = ?1 AND generation = ?2 AND userId = ?3",
                    )
                    .and_then(|mut statement| statement.execute(params![audience_id, generation, user_id]))
                    .map_err(map_error)?;
                if removed == 0 {
                    return Ok(false);
                }
                tx.execute("UPDATE audiences SET memberCount = max(memberCount - 1, 0) WHERE _id = ?1", [&audience_id])
                    .map_err(map_error)?;
                insert_audit(tx, &audit)?;
                Ok(true)
            })
            .await
    }

    async fn members_after(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError> {
        let (audience_id, generation) = (audience_id.to_string(), generation.to_owned());
        // Every user id is at least one character, so "" is before all of them.
        let after = after.map(ToString::to_string).unwrap_or_default();
        self.db
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT userId FROM audience_members WHERE audienceId = ?1 AND generation = ?2 AND userId > ?3
                         ORDER BY userId LIMIT ?4",
                    )
                    .map_err(map_error)?;
                let rows = statement
                    .query_map(params![audience_id, generation, after, limit_of(limit)], |row| row.parsed("userId"))
                    .map_err(map_error)?;
                collect(rows)
            })
            .await
    }

    async fn list_members(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        page: PageRequest,
    ) -> Result<Page<UserId>, StoreError> {
        let (audience_id, generation) = (audience_id.to_string(), generation.to_owned());
        self.db
            .read(move |connection| {
                let total: i64 = connection
                    .prepare_cached("SELECT COUNT(*) FROM audience_members WHERE audienceId = ?1 AND generation = ?2")
                    .and_then(|mut statement| statement.query_row([&audience_id, &generation], |row| row.get(0)))
                    .map_err(map_error)?;
                let mut statement = connection
                    .prepare_cached(
                        "SELECT userId FROM audience_members WHERE audienceId = ?1 AND generation = ?2
                         ORDER BY userId LIMIT ?3 OFFSET ?4",
                    )
                    .map_err(map_error)?;
                let offset = i64::try_from(page.offset()).unwrap_or(i64::MAX);
                let rows = statement
                    .query_map(params![audience_id, generation, limit_of(page.limit), offset], |row| {
                        row.parsed("userId")
                    })
                    .map_err(map_error)?;
                Ok(Page::new(collect(rows)?, page, count_of(total)))
            })
            .await
    }

    async fn memberships(
        &self,
        user_id: &UserId,
        lists: &[(AudienceId, String)],
    ) -> Result<Vec<AudienceId>, StoreError> {
        if lists.is_empty() {
            return Ok(Vec::new());
        }
        let (user_id, lists) = (user_id.to_string(), lists_text(lists)?);
        self.db.read(move |connection| select_memberships(connection, &user_id, &lists)).await
    }

    async fn sticky_events(&self, user_id: &UserId, events: &[EventId]) -> Result<Vec<EventId>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (user_id, events) = (user_id.to_string(), id_list(events)?);
        self.db
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT eventId FROM audience_sticky
                         WHERE userId = ?1 AND eventId IN (SELECT value FROM json_each(?2))
                         ORDER BY eventId",
                    )
                    .map_err(map_error)?;
                collect(statement.query_map(params![user_id, events], |row| row.parsed("eventId")).map_err(map_error)?)
            })
            .await
    }

    async fn stick(&self, user_id: &UserId, event_id: &EventId, at: DateTime<Utc>) -> Result<(), StoreError> {
        let (user_id, event_id) = (user_id.to_string(), event_id.to_string());
        self.db
            .write(move |connection| {
                connection
                    .prepare_cached(
                        "INSERT INTO audience_sticky (userId, eventId, stuckAt) VALUES (?1, ?2, ?3)
                         ON CONFLICT DO NOTHING",
                    )
                    .and_then(|mut statement| statement.execute(params![user_id, event_id, to_text(at)]))
                    .map(|_| ())
                    .map_err(map_error)
            })
            .await
    }

    async fn record_estimate(&self, id: &AudienceId, estimate: &AudienceEstimate) -> Result<bool, StoreError> {
        let (id, estimate) = (id.to_string(), estimate.clone());
        let text = json_text(&estimate)?;
        self.db
            .transaction(move |tx| {
                let stored: Option<Option<String>> = tx
                    .query_row("SELECT estimate FROM audiences WHERE _id = ?1", [&id], |row| row.get(0))
                    .optional()
                    .map_err(map_error)?;
                let Some(stored) = stored else { return Ok(false) };
                let stored: Option<AudienceEstimate> =
                    stored.as_deref().and_then(|text| serde_json::from_str(text).ok());
                if !supersedes(&estimate, stored.as_ref()) {
                    return Ok(false);
                }
                tx.execute("UPDATE audiences SET estimate = ?2 WHERE _id = ?1", params![id, text])
                    .map_err(map_error)?;
                Ok(true)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bestow_events_domain::audience::AudienceKind;
    use bestow_kernel::audit::AuditActor;

    use super::*;

    /// An upload in many batches, its ids in no order and some repeated, is staged, moved into
    /// place at the switch and counted once each; the switched-from generation is discarded.
    /// (Its speed is the `audience-upload` benchmark's to measure, not a test's.)
    #[tokio::test(flavor = "multi_thread")]
    async fn a_staged_upload_is_switched_whole_and_the_old_generation_discarded() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = SqliteEventStore::open(&dir.path().join("event.db")).unwrap();
        let now = bestow_kernel::time::now();
        let audience = Audience {
            id: AudienceId::generate(),
            name: "everyone".into(),
            description: String::new(),
            kind: AudienceKind::List,
            rule: None,
            references: Vec::new(),
            member_count: 0,
            member_generation: "first".into(),
            estimate: None,
            created_by: "operator".into(),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let audit = || AuditActor::system("test").entry("audience.members.replace", ("audience", "x"), None, None);
        store.insert_audience(&audience, &audit()).await.unwrap();
        // Ids scattered over the key space, as a CSV's are; the last batch repeats earlier ones.
        let id = |n: u64| UserId::parse(&format!("{:016x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15))).unwrap();
        store.stage_members(&audience.id, "first", &[id(1), id(2)], now).await.unwrap();

        let mut members = 0;
        for batch in 0..21_u64 {
            let ids: Vec<UserId> = (0..1_000).map(|n| id((batch * 1_000 + n) % 20_000)).collect();
            members += store.stage_members(&audience.id, "second", &ids, now).await.unwrap();
        }
        assert_eq!(members, 20_000, "the last batch repeats ids staged already");
        let switch = Audience { member_generation: "second".into(), member_count: members, version: 2, ..audience };
        store.replace_audience(&switch, 1, Some(&audit())).await.unwrap();

        let page = store.list_members(&switch.id, "second", PageRequest { page: 1, limit: 3 }).await.unwrap();
        assert_eq!(page.total, 20_000);
        let lists = [(switch.id.clone(), "second".to_owned())];
        assert_eq!(store.memberships(&id(19_999), &lists).await.unwrap(), std::slice::from_ref(&switch.id));
        assert!(store.memberships(&id(20_000), &lists).await.unwrap().is_empty(), "never uploaded");
        assert_eq!(store.discard_members(&switch.id, Some("second")).await.unwrap(), 2, "the first generation");
        let all = store.members_after(&switch.id, "second", None, 30_000).await.unwrap();
        assert_eq!(all.len(), 20_000);
        assert!(all.windows(2).all(|pair| pair[0] < pair[1]), "by user id, each once");
    }
}
