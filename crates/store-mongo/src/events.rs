//! `event_db`: the MongoDB adapter of [`EventStore`].
//!
//! Rewards are embedded in the event document as the seed has them. Stock counters move only
//! by conditional updates that match the reward with `$elemMatch` (two dotted conditions could
//! match different elements) and `$inc` it through the positional operator; an operator's edit
//! rewrites the rewards array only if the counters it carries over are still the stored ones.

use async_trait::async_trait;
use bestow_events_domain::condition::Condition;
use bestow_events_domain::event::{Event, GrantPolicy};
use bestow_events_domain::lifecycle::EventStatus;
use bestow_events_domain::ports::catalog::{EventFilter, EventSortKey, EventStore, TopUp};
use bestow_events_domain::reward::RewardDefinition;
use bestow_events_domain::view::RewardView;
use bestow_kernel::audit::{AuditEntry, AuditQuery};
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use mongodb::options::ReturnDocument;
use mongodb::{ClientSession, Collection};
use serde_json::Value;

use crate::audit::{audit_document, list_audit};
use crate::common::{
    TxResult, bson_to_json, collect, corrupt, date, escape_regex, find_page, id_bson, in_transaction, insert_audited,
    json_to_bson, json_to_document, map_error, read_date, read_id, text,
};
use crate::event_db::MongoEventStore;

/// How often an edit is retried when a claim moved a counter between its read and its write.
const EDIT_ATTEMPTS: usize = 10;

/// A reward as embedded in `events.rewards` (and copied into claims): the seed's fields,
/// `rewardId` an ObjectId, `totalStock`/`remainingStock` null when unlimited.
pub(crate) fn reward_document(reward: &RewardDefinition) -> Document {
    let view = RewardView::from(reward);
    let details = match &view.details {
        Value::Object(members) => Bson::Document(json_to_document(members)),
        other => json_to_bson(other),
    };
    doc! {
        "rewardId": id_bson(&view.reward_id),
        "rewardType": view.reward_type,
        "rewardName": view.reward_name,
        "details": details,
        "quantityPerUser": view.quantity_per_user,
        "totalStock": view.total_stock.map_or(Bson::Null, Bson::Int64),
        "remainingStock": view.remaining_stock.map_or(Bson::Null, Bson::Int64),
    }
}

pub(crate) fn reward_from_bson(value: &Bson) -> Result<RewardDefinition, StoreError> {
    serde_json::from_value(bson_to_json(value)).map_err(|e| corrupt("reward", e))
}

fn grant_policy_text(policy: GrantPolicy) -> String {
    serde_json::to_value(policy).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn conditions_bson(event: &Event) -> Bson {
    event.conditions.as_ref().and_then(|c| serde_json::to_value(c).ok()).map_or(Bson::Null, |v| json_to_bson(&v))
}

fn recurrence_bson(event: &Event) -> Bson {
    event.recurrence.as_ref().and_then(|r| serde_json::to_value(r).ok()).map_or(Bson::Null, |v| json_to_bson(&v))
}

/// `tiers`: null without tiers; each tier names its rewards (kept, with their stock, in the
/// event's `rewards`) by `rewardIds`, ObjectIds like `rewards[].rewardId`.
fn tiers_bson(event: &Event) -> Bson {
    if event.tiers.is_empty() {
        return Bson::Null;
    }
    let tiers = event
        .tiers
        .iter()
        .map(|tier| {
            let conditions = tier
                .conditions
                .as_ref()
                .and_then(|c| serde_json::to_value(c).ok())
                .map_or(Bson::Null, |v| json_to_bson(&v));
            Bson::Document(doc! {
                "tierId": &tier.tier_id,
                "tierName": &tier.tier_name,
                "conditions": conditions,
                "rewardIds": tier.reward_ids.iter().map(|id| id_bson(id.as_str())).collect::<Vec<_>>(),
            })
        })
        .collect::<Vec<_>>();
    Bson::Array(tiers)
}

/// The fields an edit writes (everything but `_id`, `rewards`, `createdBy`, `createdAt`).
fn editable_fields(event: &Event) -> Document {
    doc! {
        "eventName": &event.event_name,
        "description": &event.description,
        "startDate": date(event.start_date),
        "endDate": date(event.end_date),
        "conditions": conditions_bson(event),
        "status": event.status.as_str(),
        "updatedAt": date(event.updated_at),
        "timezone": event.timezone.name(),
        "grantPolicy": grant_policy_text(event.grant_policy),
        "version": event.version,
        "recurrence": recurrence_bson(event),
        "tiers": tiers_bson(event),
    }
}

fn event_document(event: &Event) -> Document {
    let mut document = doc! { "_id": id_bson(&event.id) };
    document.extend(editable_fields(event));
    document.insert("rewards", event.rewards.iter().map(|r| Bson::Document(reward_document(r))).collect::<Vec<_>>());
    document.insert("createdBy", &event.created_by);
    document.insert("createdAt", date(event.created_at));
    document
}

pub(crate) fn event_from_document(document: &Document) -> Result<Event, StoreError> {
    const WHAT: &str = "event";
    let conditions = match document.get("conditions") {
        None | Some(Bson::Null) => None,
        Some(value) => Some(serde_json::from_value::<Condition>(bson_to_json(value)).map_err(|e| corrupt(WHAT, e))?),
    };
    let rewards = document
        .get_array("rewards")
        .map_err(|e| corrupt(WHAT, e))?
        .iter()
        .map(reward_from_bson)
        .collect::<Result<Vec<_>, _>>()?;
    let status = text(document, "status", WHAT)?;
    let grant_policy = text(document, "grantPolicy", WHAT)?;
    Ok(Event {
        id: read_id(document, WHAT)?,
        event_name: text(document, "eventName", WHAT)?,
        description: text(document, "description", WHAT)?,
        start_date: read_date(document, "startDate", WHAT)?,
        end_date: read_date(document, "endDate", WHAT)?,
        conditions,
        status: status.parse::<EventStatus>().map_err(|e| corrupt(WHAT, e))?,
        rewards,
        created_by: text(document, "createdBy", WHAT)?,
        created_at: read_date(document, "createdAt", WHAT)?,
        updated_at: read_date(document, "updatedAt", WHAT)?,
        timezone: text(document, "timezone", WHAT)?.parse().map_err(|e| corrupt(WHAT, e))?,
        grant_policy: serde_json::from_value::<GrantPolicy>(Value::String(grant_policy))
            .map_err(|e| corrupt(WHAT, e))?,
        version: match document.get("version") {
            Some(Bson::Int64(version)) => *version,
            Some(Bson::Int32(version)) => i64::from(*version),
            _ => return Err(corrupt(WHAT, "missing `version`")),
        },
        recurrence: match document.get("recurrence") {
            None | Some(Bson::Null) => None,
            Some(value) => Some(serde_json::from_value(bson_to_json(value)).map_err(|e| corrupt(WHAT, e))?),
        },
        tiers: match document.get("tiers") {
            None | Some(Bson::Null) => Vec::new(),
            Some(value) => serde_json::from_value(bson_to_json(value)).map_err(|e| corrupt(WHAT, e))?,
        },
    })
}

/// Reads an event inside `session`.
pub(crate) async fn event_in(
    events: &Collection<Document>,
    session: &mut ClientSession,
    id: &str,
) -> TxResult<Option<Event>> {
    let found = events.find_one(doc! { "_id": id_bson(id) }).session(session).await?;
    Ok(found.as_ref().map(event_from_document).transpose()?)
}

/// The rewards array an edit writes: `event`'s rewards, with the stored counters of the
/// rewards that already exist unless the stored event is still DRAFT; and the `$elemMatch`
/// conditions that those carried-over counters are still the stored ones.
fn edited_rewards(stored: &Event, event: &Event) -> (Vec<Bson>, Vec<Document>) {
    let was_draft = stored.status == EventStatus::Draft;
    let mut rewards = Vec::with_capacity(event.rewards.len());
    let mut unchanged = Vec::new();
    for reward in &event.rewards {
        let mut document = reward_document(reward);
        if let Some(kept) = stored.reward(reward.reward_id().as_str()).filter(|_| !was_draft) {
            let kept = reward_document(kept);
            for key in ["totalStock", "remainingStock"] {
                document.insert(key, kept.get(key).cloned().unwrap_or(Bson::Null));
            }
            unchanged.push(doc! { "rewards": { "$elemMatch": {
                "rewardId": kept.get("rewardId").cloned().unwrap_or(Bson::Null),
                "totalStock": kept.get("totalStock").cloned().unwrap_or(Bson::Null),
                "remainingStock": kept.get("remainingStock").cloned().unwrap_or(Bson::Null),
            } } });
        }
        rewards.push(Bson::Document(document));
    }
    (rewards, unchanged)
}

/// Why an edit matched nothing.
enum EditLost {
    Version,
    Counters,
}

#[async_trait]
impl EventStore for MongoEventStore {
    async fn ping(&self) -> Result<(), StoreError> {
        crate::common::ping(&self.db).await
    }

    async fn insert_event(&self, event: &Event, audit: &AuditEntry) -> Result<(), StoreError> {
        self.ready().await?;
        let (event, audit) = (event_document(event), audit_document(audit));
        insert_audited(&self.client, (&self.events, event), (&self.audit, audit), Conflict::Duplicate).await
    }

    async fn event(&self, id: &str) -> Result<Option<Event>, StoreError> {
        self.ready().await?;
        let found = self.events.find_one(doc! { "_id": id_bson(id) }).await.map_err(map_error)?;
        found.as_ref().map(event_from_document).transpose()
    }

    async fn list_events(&self, filter: &EventFilter, page: PageRequest) -> Result<Page<Event>, StoreError> {
        self.ready().await?;
        let mut query = Document::new();
        if let Some(statuses) = &filter.statuses {
            if statuses.is_empty() {
                return Ok(Page::new(Vec::new(), page, 0));
            }
            let list: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
            query.insert("status", doc! { "$in": list });
        }
        if let Some(at) = filter.active_at {
            query.insert("startDate", doc! { "$lte": date(at) });
            query.insert("endDate", doc! { "$gt": date(at) });
        }
        if let Some(text) = &filter.name_contains {
            query.insert("eventName", doc! { "$regex": escape_regex(text), "$options": "i" });
        }
        let column = match filter.sort {
            EventSortKey::CreatedAt => "createdAt",
            EventSortKey::StartDate => "startDate",
        };
        let direction = if filter.descending { -1 } else { 1 };
        let mut sort = Document::new();
        sort.insert(column, direction);
        sort.insert("_id", direction);
        find_page(&self.events, query, sort, page).await?.try_map(|event| event_from_document(&event))
    }

    async fn replace_event(&self, event: &Event, expected_version: i64, audit: &AuditEntry) -> Result<(), StoreError> {
        self.ready().await?;
        let (event, audit) = (event.clone(), audit_document(audit));
        for _ in 0..EDIT_ATTEMPTS {
            let outcome = in_transaction(&self.client, |session| {
                let (events, logs, event, audit) =
                    (self.events.clone(), self.audit.clone(), event.clone(), audit.clone());
                Box::pin(async move {
                    let Some(stored) = event_in(&events, &mut *session, &event.id).await? else {
                        return Err(StoreError::NotFound.into());
                    };
                    if stored.version != expected_version {
                        return Ok(Err(EditLost::Version));
                    }
                    let (rewards, unchanged) = edited_rewards(&stored, &event);
                    let mut filter = doc! { "_id": id_bson(&event.id), "version": expected_version };
                    if !unchanged.is_empty() {
                        filter.insert("$and", unchanged);
                    }
                    let mut fields = editable_fields(&event);
                    fields.insert("rewards", rewards);
                    let written = events.update_one(filter, doc! { "$set": fields }).session(&mut *session).await?;
                    if written.matched_count == 0 {
                        return Ok(Err(EditLost::Counters));
                    }
                    logs.insert_one(audit).session(&mut *session).await?;
                    TxResult::Ok(Ok(()))
                })
            })
            .await?;
            match outcome {
                Ok(()) => return Ok(()),
                Err(EditLost::Version) => return Err(StoreError::Conflict(Conflict::Version)),
                // A claim moved a counter since the read: read again and carry the new value.
                Err(EditLost::Counters) => continue,
            }
        }
        Err(StoreError::Unavailable("stock counters kept moving during an event edit".into()))
    }

    async fn delete_event(&self, id: &str, expected_version: i64, audit: &AuditEntry) -> Result<(), StoreError> {
        self.ready().await?;
        let (filter, audit) = (doc! { "_id": id_bson(id), "version": expected_version }, audit_document(audit));
        in_transaction(&self.client, |session| {
            let (events, logs, filter, audit) =
                (self.events.clone(), self.audit.clone(), filter.clone(), audit.clone());
            Box::pin(async move {
                let deleted = events.delete_one(filter).session(&mut *session).await?;
                if deleted.deleted_count == 0 {
                    return Err(StoreError::Conflict(Conflict::Version).into());
                }
                logs.insert_one(audit).session(&mut *session).await?;
                TxResult::Ok(())
            })
        })
        .await
    }

    async fn top_up(&self, top_up: &TopUp) -> Result<Event, StoreError> {
        self.ready().await?;
        in_transaction(&self.client, |session| {
            let (events, logs, top_up) = (self.events.clone(), self.audit.clone(), top_up.clone());
            Box::pin(async move {
                let before = event_in(&events, &mut *session, &top_up.event_id).await?.ok_or(StoreError::NotFound)?;
                // Relative to whatever the counters are now, so concurrent reservations are kept.
                let limited = doc! { "rewardId": id_bson(&top_up.reward_id), "totalStock": { "$ne": Bson::Null } };
                let filter = doc! { "_id": id_bson(&top_up.event_id), "rewards": { "$elemMatch": limited } };
                let add = top_up.add;
                let update = doc! {
                    "$inc": { "rewards.$.totalStock": add, "rewards.$.remainingStock": add, "version": 1_i64 },
                    "$set": { "updatedAt": date(top_up.at) },
                };
                let after = events
                    .find_one_and_update(filter, update)
                    .return_document(ReturnDocument::After)
                    .session(&mut *session)
                    .await?;
                let Some(after) = after else { return Err(top_up.refusal(&before).into()) };
                let after = event_from_document(&after)?;
                logs.insert_one(audit_document(&top_up.audit_entry(&before, &after))).session(&mut *session).await?;
                TxResult::Ok(after)
            })
        })
        .await
    }

    async fn due_to_expire(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.ready().await?;
        let due = doc! {
            "status": { "$in": [EventStatus::Active.as_str(), EventStatus::Inactive.as_str()] },
            "endDate": { "$lte": date(now) },
        };
        let cursor = self.events.find(due).projection(doc! { "_id": 1 }).await.map_err(map_error)?;
        let documents = collect(cursor).await?;
        Ok(documents.iter().filter_map(|document| document.get_object_id("_id").ok()).map(|id| id.to_hex()).collect())
    }

    async fn list_audit(&self, query: &AuditQuery, page: PageRequest) -> Result<Page<AuditEntry>, StoreError> {
        self.ready().await?;
        list_audit(&self.audit, query, page).await
    }
}
