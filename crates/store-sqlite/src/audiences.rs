//! `event.db`: the SQLite adapter of [`AudienceStore`]: player properties in
//! `player_properties`, audiences in `audiences`, LIST members per generation in
//! `audience_members` and sticky memberships in `audience_sticky` (schema in
//! `migrations/event/0010_audiences.sql`).
//!
//! Big member sets are written and removed in bounded transactions: a staged batch is one
//! transaction, a discard deletes [`DISCARD_BATCH`] rows per transaction, so a million-member
//! list never holds the write lock for long.

use async_trait::async_trait;
use bestow_events_domain::audience::properties::{PlayerProperties, PropertyValue};
use bestow_events_domain::audience::{Audience, AudienceEstimate, AudienceUsers};
use bestow_events_domain::ports::audiences::AudienceStore;
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

/// The first generation of the audience's members after `after` (from the first when `None`),
/// skipping `keep`: each a seek on the primary key, never a scan of the members.
fn next_generation(
    connection: &Connection,
    audience_id: &str,
    after: Option<&str>,
    keep: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let mut cursor = after.map(str::to_owned);
    loop {
        let found: Option<String> = match &cursor {
            None => connection
                .prepare_cached(
                    "SELECT generation FROM audience_members WHERE audienceId = ?1 ORDER BY generation LIMIT 1",
                )
                .and_then(|mut statement| statement.query_row([audience_id], |row| row.get(0)).optional()),
            Some(after) => connection
                .prepare_cached(
                    "SELECT generation FROM audience_members WHERE audienceId = ?1 AND generation > ?2
                     ORDER BY generation LIMIT 1",
                )
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

/// Whether `estimate` may replace `stored`: none stored, the same run, or an older run.
fn supersedes(estimate: &AudienceEstimate, stored: Option<&AudienceEstimate>) -> bool {
    let Some(stored) = stored else { return true };
    estimate.job_id == stored.job_id
        || (estimate.started_at, estimate.job_id.as_str()) > (stored.started_at, stored.job_id.as_str())
}

impl SqliteEventStore {
    /// Deletes the members of every generation of the audience but `keep`, one transaction per
    /// batch so other writers get the lock between them.
    async fn discard_all_but(&self, audience_id: &AudienceId, keep: Option<&str>) -> Result<u64, StoreError> {
        let (audience_id, keep) = (audience_id.to_string(), keep.map(str::to_owned));
        let mut discarded = 0;
        let mut after: Option<String> = None;
        loop {
            let (id, kept, from) = (audience_id.clone(), keep.clone(), after.clone());
            let next = self.db.read(move |c| next_generation(c, &id, from.as_deref(), kept.as_deref())).await?;
            let Some(generation) = next else { return Ok(discarded) };
            discarded += self.discard_one(&audience_id, &generation).await?;
            after = Some(generation);
        }
    }

    /// Deletes the members of one generation, one transaction per batch.
    async fn discard_one(&self, audience_id: &str, generation: &str) -> Result<u64, StoreError> {
        let mut discarded = 0;
        loop {
            let (id, name) = (audience_id.to_owned(), generation.to_owned());
            let deleted = self.db.transaction(move |tx| discard_batch(tx, &id, &name)).await?;
            discarded += deleted;
            if deleted < DISCARD_BATCH.unsigned_abs() {
                return Ok(discarded);
            }
        }
    }
}

#[async_trait]
impl AudienceStore for SqliteEventStore {
    async fn player_properties(&self, user_id: &UserId) -> Result<Option<PlayerProperties>, StoreError> {
        let user_id = user_id.to_string();
        self.db
            .read(move |connection| {
                connection
                    .prepare_cached("SELECT _id, properties, updatedAt, version FROM player_properties WHERE _id = ?1")
                    .and_then(|mut statement| statement.query_row([user_id], properties_from_row).optional())
                    .map_err(map_error)
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
        let (audience_id, generation, user_ids) = (audience_id.to_string(), generation.to_owned(), user_ids.to_vec());
        let added_at = to_text(at);
        self.db
            .transaction(move |tx| {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO audience_members (audienceId, generation, userId, addedAt) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT DO NOTHING",
                    )
                    .map_err(map_error)?;
                let mut added = 0;
                for user_id in &user_ids {
                    added += insert
                        .execute(params![audience_id, generation, user_id.as_str(), added_at])
                        .map_err(map_error)?;
                }
                Ok(u64::try_from(added).unwrap_or(0))
            })
            .await
    }

    async fn discard_members(&self, audience_id: &AudienceId, keep: Option<&str>) -> Result<u64, StoreError> {
        self.discard_all_but(audience_id, keep).await
    }

    async fn discard_generation(&self, audience_id: &AudienceId, generation: &str) -> Result<u64, StoreError> {
        self.discard_one(audience_id.as_str(), generation).await
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
        let user_id = user_id.to_string();
        let lists: Vec<(&str, &str)> =
            lists.iter().map(|(id, generation)| (id.as_str(), generation.as_str())).collect();
        let lists = json_text(&lists)?;
        self.db
            .read(move |connection| {
                // The player's rows of `audience_members_user`, kept where (audience, generation)
                // is one of the lists asked about.
                let mut statement = connection
                    .prepare_cached(
                        "SELECT audienceId FROM audience_members
                         WHERE userId = ?1 AND (audienceId, generation) IN (
                             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?2))
                         ORDER BY audienceId",
                    )
                    .map_err(map_error)?;
                collect(
                    statement.query_map(params![user_id, lists], |row| row.parsed("audienceId")).map_err(map_error)?,
                )
            })
            .await
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
