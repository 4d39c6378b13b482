//! `event_db`: the MongoDB adapter of [`EventStore`].
//!
//! Rewards are embedded in the event document as the seed has them. Stock counters move only
//! by conditional updates that match the reward with `$elemMatch` (two dotted conditions could
//! match different elements) and `$inc` it through the positional operator; an operator's edit
//! rewrites the rewards array only if the counters it carries over are still the stored ones.

use async_trait::async_trait;
use bestow_events_domain::audience::AudienceTarget;
use bestow_events_domain::condition::Condition;
use bestow_events_domain::event::{Event, GrantPolicy};
use bestow_events_domain::lifecycle::EventStatus;
use bestow_events_domain::ports::catalog::{EventFilter, EventSortKey, EventStore, TopUp};
use bestow_events_domain::recurrence::Recurrence;
use bestow_events_domain::reward::{RewardDefinition, RewardId};
use bestow_events_domain::tier::Tier;
use bestow_events_domain::view::RewardView;
use bestow_kernel::audit::{AuditEntry, AuditQuery};
use bestow_kernel::ids::EventId;
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use mongodb::options::ReturnDocument;
use mongodb::{ClientSession, Collection};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{audit_document, list_audit};
use crate::common::{
    TxResult, collect, corrupt, date, escape_regex, find_page, id_bson, in_transaction, insert_audited, map_error,
};
use crate::event_db::MongoEventStore;
use crate::fields::{from_document, json, object_id, object_ids, to_document};

/// How often an edit is retried when a claim moved a counter between its read and its write.
const EDIT_ATTEMPTS: usize = 10;

/// A reward as embedded in `events.rewards` (and copied into claims): the seed's fields,
/// `rewardId` an ObjectId, `totalStock`/`remainingStock` null when unlimited.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RewardDocument {
    #[serde(with = "object_id")]
    reward_id: String,
    reward_type: String,
    reward_name: String,
    #[serde(with = "json")]
    details: Value,
    quantity_per_user: i64,
    total_stock: Option<i64>,
    remaining_stock: Option<i64>,
}

impl From<&RewardDefinition> for RewardDocument {
    fn from(reward: &RewardDefinition) -> Self {
        let view = RewardView::from(reward);
        Self {
            reward_id: view.reward_id,
            reward_type: view.reward_type,
            reward_name: view.reward_name,
            details: view.details,
            quantity_per_user: view.quantity_per_user,
            total_stock: view.total_stock,
            remaining_stock: view.remaining_stock,
        }
    }
}

impl TryFrom<RewardDocument> for RewardDefinition {
    type Error = StoreError;

    /// Read with the domain's own checks (stock within bounds, details of the type).
    fn try_from(document: RewardDocument) -> Result<Self, StoreError> {
        let record = json!({
            "rewardId": document.reward_id,
            "rewardType": document.reward_type,
            "rewardName": document.reward_name,
            "details": document.details,
            "quantityPerUser": document.quantity_per_user,
            "totalStock": document.total_stock,
            "remainingStock": document.remaining_stock,
        });
        serde_json::from_value(record).map_err(|e| corrupt("reward", e))
    }
}

/// The stored document of a reward.
pub(crate) fn reward_document(reward: &RewardDefinition) -> Result<Document, StoreError> {
    to_document(&RewardDocument::from(reward), "reward")
}

/// A tier as embedded in `events.tiers`: it names its rewards (kept, with their stock, in the
/// event's `rewards`) by `rewardIds`, ObjectIds like `rewards[].rewardId`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TierDocument {
    tier_id: String,
    tier_name: String,
    #[serde(default, with = "json")]
    conditions: Option<Condition>,
    #[serde(with = "object_ids")]
    reward_ids: Vec<String>,
}

impl From<&Tier> for TierDocument {
    fn from(tier: &Tier) -> Self {
        Self {
            tier_id: tier.tier_id.clone(),
            tier_name: tier.tier_name.clone(),
            conditions: tier.conditions.clone(),
            reward_ids: tier.reward_ids.iter().map(|id| id.as_str().to_owned()).collect(),
        }
    }
}

impl TryFrom<TierDocument> for Tier {
    type Error = StoreError;

    fn try_from(document: TierDocument) -> Result<Self, StoreError> {
        Ok(Self {
            reward_ids: document
                .reward_ids
                .into_iter()
                .map(|id| RewardId::try_from(id).map_err(|e| corrupt(WHAT, e)))
                .collect::<Result<_, _>>()?,
            tier_id: document.tier_id,
            tier_name: document.tier_name,
            conditions: document.conditions,
        })
    }
}

/// An event as stored in `events`: the seed's fields with its rewards embedded, plus
/// `timezone`, `grantPolicy`, `version`, `recurrence` and `tiers` (null when there are none).
/// The claim path's `stockHolds` (see `stock_holds`) is written and read there, never here.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventDocument {
    #[serde(rename = "_id", with = "object_id")]
    id: String,
    event_name: String,
    description: String,
    start_date: bson::DateTime,
    end_date: bson::DateTime,
    #[serde(default, with = "json")]
    conditions: Option<Condition>,
    status: String,
    updated_at: bson::DateTime,
    timezone: String,
    grant_policy: GrantPolicy,
    version: i64,
    #[serde(default, with = "json")]
    recurrence: Option<Recurrence>,
    #[serde(default)]
    tiers: Option<Vec<TierDocument>>,
    /// Who the event is shown to; null for every player.
    #[serde(default, with = "json")]
    audience: Option<AudienceTarget>,
    rewards: Vec<RewardDocument>,
    created_by: String,
    created_at: bson::DateTime,
}

const WHAT: &str = "event";

/// The fields an edit leaves alone; the rewards it rewrites on conditions of its own.
const NOT_EDITED: [&str; 4] = ["_id", "rewards", "createdBy", "createdAt"];

impl From<&Event> for EventDocument {
    fn from(event: &Event) -> Self {
        Self {
            id: event.id.to_string(),
            event_name: event.event_name.clone(),
            description: event.description.clone(),
            start_date: bson::DateTime::from_chrono(event.start_date),
            end_date: bson::DateTime::from_chrono(event.end_date),
            conditions: event.conditions.clone(),
            status: event.status.as_str().to_owned(),
            updated_at: bson::DateTime::from_chrono(event.updated_at),
            timezone: event.timezone.name().to_owned(),
            grant_policy: event.grant_policy,
            version: event.version,
            recurrence: event.recurrence,
            tiers: (!event.tiers.is_empty()).then(|| event.tiers.iter().map(TierDocument::from).collect()),
            audience: event.audience.clone(),
            rewards: event.rewards.iter().map(RewardDocument::from).collect(),
            created_by: event.created_by.clone(),
            created_at: bson::DateTime::from_chrono(event.created_at),
        }
    }
}

impl TryFrom<EventDocument> for Event {
    type Error = StoreError;

    fn try_from(document: EventDocument) -> Result<Self, StoreError> {
        Ok(Self {
            id: EventId::parse(&document.id).map_err(|e| corrupt(WHAT, e))?,
            event_name: document.event_name,
            description: document.description,
            start_date: document.start_date.to_chrono(),
            end_date: document.end_date.to_chrono(),
            conditions: document.conditions,
            status: document.status.parse::<EventStatus>().map_err(|e| corrupt(WHAT, e))?,
            rewards: document.rewards.into_iter().map(RewardDefinition::try_from).collect::<Result<_, _>>()?,
            created_by: document.created_by,
            created_at: document.created_at.to_chrono(),
            updated_at: document.updated_at.to_chrono(),
            timezone: document.timezone.parse().map_err(|e| corrupt(WHAT, e))?,
            grant_policy: document.grant_policy,
            version: document.version,
            recurrence: document.recurrence,
            tiers: document.tiers.unwrap_or_default().into_iter().map(Tier::try_from).collect::<Result<_, _>>()?,
            audience: document.audience,
        })
    }
}

fn event_document(event: &Event) -> Result<Document, StoreError> {
    to_document(&EventDocument::from(event), WHAT)
}

/// The fields an edit writes (everything but [`NOT_EDITED`]).
fn editable_fields(event: &Event) -> Result<Document, StoreError> {
    let mut fields = event_document(event)?;
    for key in NOT_EDITED {
        fields.remove(key);
    }
    Ok(fields)
}

pub(crate) fn event_from_document(document: Document) -> Result<Event, StoreError> {
    from_document::<EventDocument>(document, WHAT)?.try_into()
}

/// Reads an event inside `session`.
pub(crate) async fn event_in(
    events: &Collection<Document>,
    session: &mut ClientSession,
    id: &EventId,
) -> TxResult<Option<Event>> {
    let found = events.find_one(doc! { "_id": id_bson(id.as_str()) }).session(session).await?;
    Ok(found.map(event_from_document).transpose()?)
}

/// The rewards array an edit writes: `event`'s rewards, with the stored counters of the
/// rewards that already exist unless the stored event is still DRAFT; and the `$elemMatch`
/// conditions that those carried-over counters are still the stored ones.
fn edited_rewards(stored: &Event, event: &Event) -> Result<(Vec<Bson>, Vec<Document>), StoreError> {
    let was_draft = stored.status == EventStatus::Draft;
    let mut rewards = Vec::with_capacity(event.rewards.len());
    let mut unchanged = Vec::new();
    for reward in &event.rewards {
        let mut document = reward_document(reward)?;
        if let Some(kept) = stored.reward(reward.reward_id().as_str()).filter(|_| !was_draft) {
            let kept = reward_document(kept)?;
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
    Ok((rewards, unchanged))
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
        let (event, audit) = (event_document(event)?, audit_document(audit)?);
        insert_audited(&self.client, (&self.events, event), (&self.audit, audit), Conflict::Duplicate).await
    }

    async fn event(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        self.ready().await?;
        let found = self.events.find_one(doc! { "_id": id_bson(id.as_str()) }).await.map_err(map_error)?;
        found.map(event_from_document).transpose()
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
        find_page(&self.events, query, sort, page).await?.try_map(event_from_document)
    }

    async fn replace_event(&self, event: &Event, expected_version: i64, audit: &AuditEntry) -> Result<(), StoreError> {
        self.ready().await?;
        let (event, audit) = (event.clone(), audit_document(audit)?);
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
                    let (rewards, unchanged) = edited_rewards(&stored, &event)?;
                    let mut filter = doc! { "_id": id_bson(event.id.as_str()), "version": expected_version };
                    if !unchanged.is_empty() {
                        filter.insert("$and", unchanged);
                    }
                    let mut fields = editable_fields(&event)?;
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

    async fn delete_event(&self, id: &EventId, expected_version: i64, audit: &AuditEntry) -> Result<(), StoreError> {
        self.ready().await?;
        let (filter, audit) =
            (doc! { "_id": id_bson(id.as_str()), "version": expected_version }, audit_document(audit)?);
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
                let filter = doc! { "_id": id_bson(top_up.event_id.as_str()), "rewards": { "$elemMatch": limited } };
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
                let after = event_from_document(after)?;
                logs.insert_one(audit_document(&top_up.audit_entry(&before, &after))?).session(&mut *session).await?;
                TxResult::Ok(after)
            })
        })
        .await
    }

    async fn due_to_expire(&self, now: DateTime<Utc>) -> Result<Vec<EventId>, StoreError> {
        self.ready().await?;
        let due = doc! {
            "status": { "$in": [EventStatus::Active.as_str(), EventStatus::Inactive.as_str()] },
            "endDate": { "$lte": date(now) },
        };
        let cursor = self.events.find(due).projection(doc! { "_id": 1 }).await.map_err(map_error)?;
        let documents = collect(cursor).await?;
        documents
            .iter()
            .filter_map(|document| document.get_object_id("_id").ok())
            .map(|id| EventId::parse(&id.to_hex()).map_err(|e| corrupt(WHAT, e)))
            .collect()
    }

    async fn list_audit(&self, query: &AuditQuery, page: PageRequest) -> Result<Page<AuditEntry>, StoreError> {
        self.ready().await?;
        list_audit(&self.audit, query, page).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bestow_store_contract::events::{event, tiered_daily_event};
    use bson::spec::ElementType;

    use super::*;

    /// The field order and BSON types every version has written, and the event read back.
    #[test]
    fn an_event_is_stored_in_the_seed_shape_and_reads_back() {
        let event = tiered_daily_event();
        let document = event_document(&event).unwrap();
        let keys: Vec<&str> = document.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "_id",
                "eventName",
                "description",
                "startDate",
                "endDate",
                "conditions",
                "status",
                "updatedAt",
                "timezone",
                "grantPolicy",
                "version",
                "recurrence",
                "tiers",
                "audience",
                "rewards",
                "createdBy",
                "createdAt"
            ]
        );
        let types = |document: &Document, keys: &[&str]| -> Vec<ElementType> {
            keys.iter().map(|key| document.get(*key).unwrap().element_type()).collect()
        };
        assert_eq!(
            types(&document, &["_id", "startDate", "version", "conditions", "recurrence", "tiers"]),
            [
                ElementType::ObjectId,
                ElementType::DateTime,
                ElementType::Int64,
                ElementType::Null,
                ElementType::EmbeddedDocument,
                ElementType::Array
            ]
        );
        let tier = document.get_array("tiers").unwrap()[0].as_document().unwrap();
        assert_eq!(tier.get_array("rewardIds").unwrap()[0].element_type(), ElementType::ObjectId);
        assert_eq!(tier.get_document("conditions").unwrap().get("days"), Some(&Bson::Int64(3)));
        let reward = document.get_array("rewards").unwrap()[0].as_document().unwrap();
        assert_eq!(
            types(reward, &["rewardId", "details", "quantityPerUser", "totalStock", "remainingStock"]),
            [
                ElementType::ObjectId,
                ElementType::EmbeddedDocument,
                ElementType::Int64,
                ElementType::Int64,
                ElementType::Int64
            ]
        );
        assert_eq!(document.get("audience"), Some(&Bson::Null), "shown to every player");
        assert_eq!(event_from_document(document).unwrap(), event);
    }

    /// A one-time event without tiers, its counters int32 (as a server may leave them after
    /// `$inc`) and without the fields later versions added as null (`audience` included),
    /// reads back.
    #[test]
    fn an_older_event_document_reads_back() {
        let event = event(Some(5));
        let mut document = event_document(&event).unwrap();
        assert_eq!(document.get("tiers"), Some(&Bson::Null), "no tiers are stored as null");
        document.remove("recurrence");
        document.remove("tiers");
        document.remove("audience");
        document.insert("stockHolds", Vec::<Bson>::new());
        if let Some(Bson::Array(rewards)) = document.get_mut("rewards") {
            for reward in rewards.iter_mut().filter_map(Bson::as_document_mut) {
                reward.insert("remainingStock", Bson::Int32(5));
                reward.insert("quantityPerUser", Bson::Int32(1));
            }
        }
        assert_eq!(event_from_document(document).unwrap(), event);
    }
}
