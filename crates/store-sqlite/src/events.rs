//! `event.db`: the SQLite adapter of [`EventStore`]: events in `events`, their rewards in
//! `event_rewards` (schema in `migrations/event/`).

use std::sync::LazyLock;

use async_trait::async_trait;
use bestow_events_domain::condition::Condition;
use bestow_events_domain::event::{Event, GrantPolicy};
use bestow_events_domain::lifecycle::EventStatus;
use bestow_events_domain::ports::catalog::{EventFilter, EventSortKey, EventStore, TopUp};
use bestow_events_domain::reward::RewardDefinition;
use bestow_events_domain::view::RewardView;
use bestow_kernel::audit::{AuditEntry, AuditQuery};
use bestow_kernel::ids::EventId;
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde_json::{Value, json};

use crate::audit::{insert_audit, list_audit};
use crate::columns::{NamedColumns, corrupt};
use crate::database::{map_error, to_text};
use crate::event_db::SqliteEventStore;
use crate::filters::Filters;

const EVENT_COLUMNS: &str = "_id, eventName, description, startDate, endDate, conditions, status, createdBy, \
                             createdAt, updatedAt, timezone, grantPolicy, version, recurrence, tiers, audience";

/// An event row without its rewards.
fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    let grant_policy = Value::String(row.get("grantPolicy")?);
    Ok(Event {
        id: row.parsed("_id")?,
        event_name: row.get("eventName")?,
        description: row.get("description")?,
        start_date: row.time("startDate")?,
        end_date: row.time("endDate")?,
        conditions: row.optional_json::<Condition>("conditions")?,
        status: row.parsed::<EventStatus>("status")?,
        rewards: Vec::new(),
        created_by: row.get("createdBy")?,
        created_at: row.time("createdAt")?,
        updated_at: row.time("updatedAt")?,
        timezone: row.parsed("timezone")?,
        grant_policy: serde_json::from_value::<GrantPolicy>(grant_policy)
            .map_err(|e| corrupt(row, "grantPolicy", e))?,
        version: row.get("version")?,
        recurrence: row.optional_json("recurrence")?,
        tiers: row.optional_json("tiers")?.unwrap_or_default(),
        audience: row.optional_json("audience")?,
    })
}

fn reward_from_row(row: &Row<'_>) -> rusqlite::Result<RewardDefinition> {
    let document = json!({
        "rewardId": row.get::<_, String>("rewardId")?,
        "rewardType": row.get::<_, String>("rewardType")?,
        "rewardName": row.get::<_, String>("rewardName")?,
        "details": row.json::<Value>("details")?,
        "quantityPerUser": row.get::<_, i64>("quantityPerUser")?,
        "totalStock": row.get::<_, Option<i64>>("totalStock")?,
        "remainingStock": row.get::<_, Option<i64>>("remainingStock")?,
    });
    serde_json::from_value(document).map_err(|e| corrupt(row, "rewardId", e))
}

fn load_rewards(connection: &Connection, event: &mut Event) -> Result<(), StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT rewardId, rewardType, rewardName, details, quantityPerUser, totalStock, remainingStock
             FROM event_rewards WHERE eventId = ?1 ORDER BY position",
        )
        .map_err(map_error)?;
    event.rewards = statement
        .query_map([event.id.as_str()], reward_from_row)
        .map_err(map_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_error)?;
    Ok(())
}

/// The most frequent read of all, so its text is built once.
static SELECT_EVENT: LazyLock<String> = LazyLock::new(|| format!("SELECT {EVENT_COLUMNS} FROM events WHERE _id = ?1"));

pub(crate) fn select_event(connection: &Connection, id: &EventId) -> Result<Option<Event>, StoreError> {
    let event = connection
        .prepare_cached(&SELECT_EVENT)
        .and_then(|mut statement| statement.query_row([id.as_str()], event_from_row).optional())
        .map_err(map_error)?;
    match event {
        Some(mut event) => {
            load_rewards(connection, &mut event)?;
            Ok(Some(event))
        }
        None => Ok(None),
    }
}

fn conditions_text(event: &Event) -> Option<String> {
    event.conditions.as_ref().and_then(|c| serde_json::to_string(c).ok())
}

fn recurrence_text(event: &Event) -> Option<String> {
    event.recurrence.as_ref().and_then(|r| serde_json::to_string(r).ok())
}

fn audience_text(event: &Event) -> Option<String> {
    event.audience.as_ref().and_then(|target| serde_json::to_string(target).ok())
}

fn tiers_text(event: &Event) -> Option<String> {
    (!event.tiers.is_empty()).then(|| serde_json::to_string(&event.tiers).ok()).flatten()
}

fn grant_policy_text(policy: GrantPolicy) -> String {
    serde_json::to_value(policy).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// Inserts or updates every reward of `event` and removes the ones it no longer has.
/// Counters of existing rows are written only when `write_counters` is set.
fn write_rewards(tx: &Transaction<'_>, event: &Event, write_counters: bool) -> Result<(), StoreError> {
    let ids: Vec<String> = event.rewards.iter().map(|r| r.reward_id().as_str().to_owned()).collect();
    let mut existing = tx.prepare_cached("SELECT rewardId FROM event_rewards WHERE eventId = ?1").map_err(map_error)?;
    let stored: Vec<String> = existing
        .query_map([event.id.as_str()], |row| row.get("rewardId"))
        .map_err(map_error)?
        .collect::<rusqlite::Result<_>>()
        .map_err(map_error)?;
    for gone in stored.iter().filter(|id| !ids.contains(id)) {
        tx.execute("DELETE FROM event_rewards WHERE eventId = ?1 AND rewardId = ?2", params![event.id.as_str(), gone])
            .map_err(map_error)?;
    }
    for (position, reward) in event.rewards.iter().enumerate() {
        let view = RewardView::from(reward);
        let details = view.details.to_string();
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        if stored.contains(&view.reward_id) {
            tx.execute(
                "UPDATE event_rewards SET position = ?3, rewardType = ?4, rewardName = ?5, details = ?6,
                     quantityPerUser = ?7
                 WHERE eventId = ?1 AND rewardId = ?2",
                params![
                    event.id.as_str(),
                    view.reward_id,
                    position,
                    view.reward_type,
                    view.reward_name,
                    details,
                    view.quantity_per_user
                ],
            )
            .map_err(map_error)?;
            if write_counters {
                tx.execute(
                    "UPDATE event_rewards SET totalStock = ?3, remainingStock = ?4 WHERE eventId = ?1 AND rewardId = ?2",
                    params![event.id.as_str(), view.reward_id, view.total_stock, view.remaining_stock],
                )
                .map_err(map_error)?;
            }
        } else {
            tx.execute(
                "INSERT INTO event_rewards (eventId, rewardId, position, rewardType, rewardName, details,
                     quantityPerUser, totalStock, remainingStock)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    event.id.as_str(),
                    view.reward_id,
                    position,
                    view.reward_type,
                    view.reward_name,
                    details,
                    view.quantity_per_user,
                    view.total_stock,
                    view.remaining_stock
                ],
            )
            .map_err(map_error)?;
        }
    }
    Ok(())
}

/// Compare-and-set of the event row on `expected_version`; `Conflict` or `NotFound` when lost.
fn update_event_row(tx: &Transaction<'_>, event: &Event, expected_version: i64) -> Result<(), StoreError> {
    let changed = tx
        .execute(
            "UPDATE events SET eventName = ?3, description = ?4, startDate = ?5, endDate = ?6, conditions = ?7,
                 status = ?8, updatedAt = ?9, timezone = ?10, grantPolicy = ?11, version = ?12,
                 recurrence = ?13, tiers = ?14, audience = ?15
             WHERE _id = ?1 AND version = ?2",
            params![
                event.id.as_str(),
                expected_version,
                event.event_name,
                event.description,
                to_text(event.start_date),
                to_text(event.end_date),
                conditions_text(event),
                event.status.as_str(),
                to_text(event.updated_at),
                event.timezone.name(),
                grant_policy_text(event.grant_policy),
                event.version,
                recurrence_text(event),
                tiers_text(event),
                audience_text(event),
            ],
        )
        .map_err(map_error)?;
    if changed == 1 {
        return Ok(());
    }
    let exists: bool = tx
        .query_row("SELECT EXISTS (SELECT 1 FROM events WHERE _id = ?1)", [event.id.as_str()], |row| row.get(0))
        .map_err(map_error)?;
    Err(if exists { StoreError::Conflict(Conflict::Version) } else { StoreError::NotFound })
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.db.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(map_error)).await
    }

    async fn insert_event(&self, event: &Event, audit: &AuditEntry) -> Result<(), StoreError> {
        let (event, audit) = (event.clone(), audit.clone());
        self.db
            .transaction(move |tx| {
                tx.execute(
                    &format!("INSERT INTO events ({EVENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"),
                    params![
                        event.id.as_str(),
                        event.event_name,
                        event.description,
                        to_text(event.start_date),
                        to_text(event.end_date),
                        conditions_text(&event),
                        event.status.as_str(),
                        event.created_by,
                        to_text(event.created_at),
                        to_text(event.updated_at),
                        event.timezone.name(),
                        grant_policy_text(event.grant_policy),
                        event.version,
                        recurrence_text(&event),
                        tiers_text(&event),
                        audience_text(&event),
                    ],
                )
                .map_err(map_error)?;
                write_rewards(tx, &event, true)?;
                insert_audit(tx, &audit)?;
                Ok(())
            })
            .await
    }

    async fn event(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        let id = id.clone();
        self.db.read(move |c| select_event(c, &id)).await
    }

    async fn list_events(&self, filter: &EventFilter, page: PageRequest) -> Result<Page<Event>, StoreError> {
        let mut filters = Filters::default();
        if let Some(statuses) = &filter.statuses {
            if statuses.is_empty() {
                return Ok(Page::new(Vec::new(), page, 0));
            }
            let list: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
            filters.add("status IN (SELECT value FROM json_each(?))", serde_json::to_string(&list).unwrap_or_default());
        }
        if let Some(at) = filter.active_at {
            filters.add("startDate <= ?", to_text(at));
            filters.add("endDate > ?", to_text(at));
        }
        if let Some(text) = &filter.name_contains {
            filters.add("instr(lower(eventName), lower(?)) > 0", text.clone());
        }
        let column = match filter.sort {
            EventSortKey::CreatedAt => "createdAt",
            EventSortKey::StartDate => "startDate",
        };
        let direction = if filter.descending { "DESC" } else { "ASC" };
        self.db
            .read(move |connection| {
                let order = format!("{column} {direction}, _id {direction}");
                let sql = filters.page_sql(EVENT_COLUMNS, "events", &order);
                let mut events = filters.select_page(connection, "events", &sql, page, event_from_row)?;
                for event in &mut events.items {
                    load_rewards(connection, event)?;
                }
                Ok(events)
            })
            .await
    }

    async fn replace_event(&self, event: &Event, expected_version: i64, audit: &AuditEntry) -> Result<(), StoreError> {
        let (event, audit) = (event.clone(), audit.clone());
        self.db
            .transaction(move |tx| {
                let stored_status: Option<String> = tx
                    .query_row("SELECT status FROM events WHERE _id = ?1", [event.id.as_str()], |row| row.get("status"))
                    .optional()
                    .map_err(map_error)?;
                let was_draft = stored_status.as_deref() == Some(EventStatus::Draft.as_str());
                update_event_row(tx, &event, expected_version)?;
                write_rewards(tx, &event, was_draft)?;
                insert_audit(tx, &audit)?;
                Ok(())
            })
            .await
    }

    async fn delete_event(&self, id: &EventId, expected_version: i64, audit: &AuditEntry) -> Result<(), StoreError> {
        let (id, audit) = (id.to_string(), audit.clone());
        self.db
            .transaction(move |tx| {
                let deleted = tx
                    .execute("DELETE FROM events WHERE _id = ?1 AND version = ?2", params![id, expected_version])
                    .map_err(map_error)?;
                if deleted == 0 {
                    return Err(StoreError::Conflict(Conflict::Version));
                }
                insert_audit(tx, &audit)?;
                Ok(())
            })
            .await
    }

    async fn top_up(&self, top_up: &TopUp) -> Result<Event, StoreError> {
        let top_up = top_up.clone();
        self.db
            .transaction(move |tx| {
                let TopUp { event_id, reward_id, add, at, .. } = &top_up;
                let before = select_event(tx, event_id)?.ok_or(StoreError::NotFound)?;
                // Relative to whatever the counters are now, so concurrent reservations are kept.
                let changed = tx
                    .execute(
                        "UPDATE event_rewards SET totalStock = totalStock + ?3, remainingStock = remainingStock + ?3
                         WHERE eventId = ?1 AND rewardId = ?2 AND totalStock IS NOT NULL",
                        params![event_id.as_str(), reward_id, add],
                    )
                    .map_err(map_error)?;
                if changed == 0 {
                    return Err(top_up.refusal(&before));
                }
                tx.execute(
                    "UPDATE events SET version = version + 1, updatedAt = ?2 WHERE _id = ?1",
                    params![event_id.as_str(), to_text(*at)],
                )
                .map_err(map_error)?;
                let after = select_event(tx, event_id)?.ok_or(StoreError::NotFound)?;
                insert_audit(tx, &top_up.audit_entry(&before, &after))?;
                Ok(after)
            })
            .await
    }

    async fn due_to_expire(&self, now: DateTime<Utc>) -> Result<Vec<EventId>, StoreError> {
        self.db
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached("SELECT _id FROM events WHERE status IN ('ACTIVE', 'INACTIVE') AND endDate <= ?1")
                    .map_err(map_error)?;
                statement
                    .query_map([to_text(now)], |row| row.parsed("_id"))
                    .map_err(map_error)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(map_error)
            })
            .await
    }

    async fn list_audit(&self, query: &AuditQuery, page: PageRequest) -> Result<Page<AuditEntry>, StoreError> {
        let query = query.clone();
        self.db.read(move |c| list_audit(c, "audit_logs", &query, page)).await
    }
}
