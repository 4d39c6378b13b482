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
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use bson::{Bson, Document, doc};

use crate::common::{
    TxResult, collect, collect_session, corrupt, date, document_to_json, find_page, id_bson, in_transaction,
    json_to_document, map_error, read_date, read_id, text, tx_error,
};
use crate::event_db::MongoEventStore;

/// How often a batch is retried when a concurrent batch stored one of its ids first.
const BATCH_ATTEMPTS: usize = 5;

fn activity_document(activity: &NewActivity) -> Document {
    doc! {
        "_id": id_bson(&bestow_kernel::ids::new_object_id()),
        "activityId": &activity.activity_id,
        "userId": &activity.user_id,
        "type": activity.activity_type.as_str(),
        "occurredAt": date(activity.occurred_at),
        "attributes": json_to_document(&activity.attributes),
        "receivedAt": date(activity.received_at),
    }
}

const WHAT: &str = "activity";

fn attributes_of(document: &Document) -> serde_json::Map<String, serde_json::Value> {
    match document.get("attributes") {
        Some(Bson::Document(attributes)) => document_to_json(attributes),
        _ => serde_json::Map::new(),
    }
}

fn fact_from_document(document: &Document) -> Result<ActivityFact, StoreError> {
    Ok(ActivityFact {
        activity_type: text(document, "type", WHAT)?,
        occurred_at: read_date(document, "occurredAt", WHAT)?,
        attributes: attributes_of(document),
    })
}

fn activity_from_document(document: &Document) -> Result<Activity, StoreError> {
    Ok(Activity {
        id: read_id(document, WHAT)?,
        activity_id: text(document, "activityId", WHAT)?,
        user_id: text(document, "userId", WHAT)?,
        activity_type: text(document, "type", WHAT)?.parse().map_err(|e| corrupt(WHAT, e))?,
        occurred_at: read_date(document, "occurredAt", WHAT)?,
        attributes: attributes_of(document),
        received_at: read_date(document, "receivedAt", WHAT)?,
    })
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
            .collect();
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

    async fn facts(&self, user_id: &str, query: &FactQuery) -> Result<Vec<ActivityFact>, StoreError> {
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
            .find(doc! { "userId": user_id, "type": { "$in": types }, "occurredAt": occurred })
            .projection(doc! { "_id": 0, "type": 1, "occurredAt": 1, "attributes": 1 })
            .await
            .map_err(map_error)?;
        collect(cursor).await?.iter().map(fact_from_document).collect()
    }

    async fn recent(
        &self,
        user_id: &str,
        activity_type: Option<&ActivityType>,
        page: PageRequest,
    ) -> Result<Page<Activity>, StoreError> {
        self.ready().await?;
        let mut filter = doc! { "userId": user_id };
        if let Some(activity_type) = activity_type {
            filter.insert("type", activity_type.as_str());
        }
        let newest_first = doc! { "occurredAt": -1, "_id": -1 };
        find_page(&self.activities, filter, newest_first, page)
            .await?
            .try_map(|activity| activity_from_document(&activity))
    }
}
