//! `event_db`: the MongoDB adapter of [`ActivityStore`] (`activities`), implemented by
//! [`MongoEventStore`].
//!
//! `activities` is append-only and unique on `activityId`; the index on
//! (`userId`, `type`, `occurredAt`) serves every fact query, and the one on
//! (`userId`, `occurredAt` descending, `_id` descending) a player's history, newest first.

use std::collections::HashSet;

use async_trait::async_trait;
use bestow_events_domain::condition::ActivityType;
use bestow_events_domain::evaluate::{ActivityFact, FactQuery};
use bestow_events_domain::ports::activities::{Activity, ActivityStore, NewActivity};
use bestow_kernel::ids::UserId;
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use bson::{Document, doc};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::common::{
    TxResult, collect, collect_session, corrupt, date, find_page, in_transaction, map_error, tx_error,
};
use crate::event_db::MongoEventStore;
use crate::fields::{from_document, json, object_id, to_document};

/// How often a batch is retried when a concurrent batch stored one of its ids first.
const BATCH_ATTEMPTS: usize = 5;

/// An activity as stored in `activities`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActivityDocument {
    #[serde(rename = "_id", with = "object_id")]
    id: String,
    activity_id: String,
    user_id: UserId,
    #[serde(rename = "type")]
    activity_type: String,
    occurred_at: bson::DateTime,
    /// Always written as a document, empty when the activity has none.
    #[serde(default, with = "json")]
    attributes: Option<Map<String, Value>>,
    received_at: bson::DateTime,
}

/// What a fact query reads of an activity (its projection).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FactDocument {
    #[serde(rename = "type")]
    activity_type: String,
    occurred_at: bson::DateTime,
    #[serde(default, with = "json")]
    attributes: Option<Map<String, Value>>,
}

const WHAT: &str = "activity";

fn activity_document(activity: &NewActivity) -> Result<Document, StoreError> {
    let document = ActivityDocument {
        id: bestow_kernel::ids::new_object_id(),
        activity_id: activity.activity_id.clone(),
        user_id: activity.user_id.clone(),
        activity_type: activity.activity_type.as_str().to_owned(),
        occurred_at: bson::DateTime::from_chrono(activity.occurred_at),
        attributes: Some(activity.attributes.clone()),
        received_at: bson::DateTime::from_chrono(activity.received_at),
    };
    to_document(&document, WHAT)
}

impl From<FactDocument> for ActivityFact {
    fn from(document: FactDocument) -> Self {
        Self {
            activity_type: document.activity_type,
            occurred_at: document.occurred_at.to_chrono(),
            attributes: document.attributes.unwrap_or_default(),
        }
    }
}

impl TryFrom<ActivityDocument> for Activity {
    type Error = StoreError;

    fn try_from(document: ActivityDocument) -> Result<Self, StoreError> {
        Ok(Self {
            id: document.id,
            activity_id: document.activity_id,
            user_id: document.user_id,
            activity_type: document.activity_type.parse().map_err(|e| corrupt(WHAT, e))?,
            occurred_at: document.occurred_at.to_chrono(),
            attributes: document.attributes.unwrap_or_default(),
            received_at: document.received_at.to_chrono(),
        })
    }
}

#[async_trait]
impl ActivityStore for MongoEventStore {
    async fn insert_batch(&self, activities: Vec<NewActivity>) -> Result<u64, StoreError> {
        self.ready().await?;
        // The first of repeated ids within the batch wins.
        let mut seen = HashSet::new();
        let unique: Vec<Document> = activities
            .iter()
            .filter(|activity| seen.insert(activity.activity_id.clone()))
            .map(activity_document)
            .collect::<Result<_, _>>()?;
        if unique.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = seen.into_iter().collect();
        for _ in 0..BATCH_ATTEMPTS {
            // Inside the transaction: skip the ids stored already, insert the rest. A batch
            // stored concurrently with the same ids makes the insert hit the unique index;
            // the whole attempt is then repeated and skips them.
            let outcome = in_transaction(&self.client, |session| {
                let (collection, unique, ids) = (self.activities.clone(), unique.clone(), ids.clone());
                Box::pin(async move {
                    let cursor = collection
                        .find(doc! { "activityId": { "$in": ids } })
                        .projection(doc! { "activityId": 1 })
                        .session(&mut *session)
                        .await?;
                    let stored: HashSet<String> = collect_session(cursor, &mut *session)
                        .await?
                        .iter()
                        .filter_map(|document| document.get_str("activityId").ok().map(str::to_owned))
                        .collect();
                    let new: Vec<Document> = unique
                        .into_iter()
                        .filter(|document| document.get_str("activityId").is_ok_and(|id| !stored.contains(id)))
                        .collect();
                    let count = u64::try_from(new.len()).unwrap_or(u64::MAX);
                    if !new.is_empty() {
                        collection
                            .insert_many(new)
                            .session(&mut *session)
                            .await
                            .map_err(tx_error(Conflict::ActivityId))?;
                    }
                    TxResult::Ok(count)
                })
            })
            .await;
            match outcome {
                Err(StoreError::Conflict(Conflict::ActivityId)) => continue,
                other => return other,
            }
        }
        Err(StoreError::Unavailable("concurrent batches kept storing the same activities".into()))
    }

    async fn facts(&self, user_id: &UserId, query: &FactQuery) -> Result<Vec<ActivityFact>, StoreError> {
        self.ready().await?;
        if query.types.is_empty() {
            return Ok(Vec::new());
        }
        let types: Vec<&str> = query.types.iter().map(String::as_str).collect();
        let mut occurred = doc! { "$lt": date(query.to) };
        if let Some(from) = query.from {
            occurred.insert("$gte", date(from));
        }
        let cursor = self
            .activities
            .find(doc! { "userId": user_id.as_str(), "type": { "$in": types }, "occurredAt": occurred })
            .projection(doc! { "_id": 0, "type": 1, "occurredAt": 1, "attributes": 1 })
            .await
            .map_err(map_error)?;
        collect(cursor)
            .await?
            .into_iter()
            .map(|document| from_document::<FactDocument>(document, WHAT).map(ActivityFact::from))
            .collect()
    }

    async fn recent(
        &self,
        user_id: &UserId,
        activity_type: Option<&ActivityType>,
        page: PageRequest,
    ) -> Result<Page<Activity>, StoreError> {
        self.ready().await?;
        let mut filter = doc! { "userId": user_id.as_str() };
        if let Some(activity_type) = activity_type {
            filter.insert("type", activity_type.as_str());
        }
        let newest_first = doc! { "occurredAt": -1, "_id": -1 };
        find_page(&self.activities, filter, newest_first, page)
            .await?
            .try_map(|activity| from_document::<ActivityDocument>(activity, WHAT)?.try_into())
    }
}
