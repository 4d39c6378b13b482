//! `event_db`: the MongoDB adapter of [`ClaimStore`].
//!
//! A request is one `user_reward_requests` document with the seed's field names and types
//! (`_id` and `eventId` ObjectIds, dates as Dates, `rewardsToProcess[].rewardDefinition` the
//! event's reward as embedded in `events`), plus the saga's bookkeeping (`claimSlot`, lease,
//! retry schedule, `history`, `version`). `claimSlot` is present only while the request holds
//! the slot, and a partial unique index on it decides "one claim per player and event".
//! Commits are compare-and-set on `version`, `status` and `leaseOwner`, in one transaction
//! with their stock changes and audit entry.

use async_trait::async_trait;
use bestow_events_domain::ports::claims::{ClaimFilter, ClaimStats, ClaimStore, Inserted, StockChange};
use bestow_events_domain::saga::{ClaimRequest, ClaimStatus, Lease, Transition};
use bestow_events_domain::stats::{FailureCount, MinuteCount, StatusCount};
use bestow_kernel::audit::AuditEntry;
use bestow_kernel::ids::{EventId, RequestId};
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use mongodb::options::ReturnDocument;
use mongodb::{ClientSession, Collection};
use serde_json::Value;

use crate::audit::audit_document;
use crate::common::{
    TxResult, collect, corrupt, date, document_to_json, each_in_array, find_page, id_bson, in_transaction,
    is_duplicate_key, json_to_bson, map_error, text, text_to_date, text_to_id, tx_error,
};
use crate::event_db::MongoEventStore;
use crate::events::event_in;
use crate::stock_holds::{self, Hold, Shortage};

const WHAT: &str = "claim";

/// How long a reservation waits for units held by other claims in flight.
const SHORTAGE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// Statuses the saga still works on.
fn non_final() -> Vec<&'static str> {
    ClaimStatus::ALL.iter().filter(|s| !s.is_final()).map(|s| s.as_str()).collect()
}

/// The stored document of a request.
fn request_document(request: &ClaimRequest) -> Result<Document, StoreError> {
    let Value::Object(members) = serde_json::to_value(request).map_err(|e| corrupt(WHAT, e))? else {
        return Err(corrupt(WHAT, "a request is not a JSON object"));
    };
    let mut document = doc! { "_id": id_bson(&request.id) };
    for (key, value) in &members {
        match key.as_str() {
            "id" => {}
            // Absent while the slot is free: the partial unique index only sees held slots.
            "claimSlot" if value.is_null() => {}
            "rewardsToProcess" => {
                let rewards = request
                    .rewards_to_process
                    .iter()
                    .zip(value.as_array().into_iter().flatten())
                    .map(|(reward, json)| {
                        let mut item = match json_to_bson(json) {
                            Bson::Document(item) => item,
                            _ => Document::new(),
                        };
                        item.insert("rewardDefinition", crate::events::reward_document(&reward.reward_definition)?);
                        Ok(Bson::Document(item))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                document.insert(key, rewards);
            }
            _ => {
                document.insert(key, json_to_bson(value));
            }
        }
    }
    text_to_id(&mut document, "eventId");
    for key in ["createdAt", "updatedAt", "claimedAt", "leaseExpiresAt", "nextAttemptAt", "periodStart"] {
        text_to_date(&mut document, key);
    }
    if let Some(Bson::Document(snapshot)) = document.get_mut("eventSnapshot") {
        text_to_date(snapshot, "startDate");
        text_to_date(snapshot, "endDate");
    }
    each_in_array(&mut document, "compensatingActionsLog", |action| text_to_date(action, "timestamp"));
    each_in_array(&mut document, "history", |entry| text_to_date(entry, "at"));
    Ok(document)
}

fn request_from_document(document: &Document) -> Result<ClaimRequest, StoreError> {
    let mut json = document_to_json(document);
    if let Some(id) = json.remove("_id") {
        json.insert("id".to_owned(), id);
    }
    serde_json::from_value(Value::Object(json)).map_err(|e| corrupt(WHAT, e))
}

/// The status a `$group` stage grouped by.
fn group_status(value: Option<&Bson>) -> Result<ClaimStatus, StoreError> {
    match value {
        Some(Bson::String(status)) => status.parse().map_err(|e: String| corrupt(WHAT, e)),
        other => Err(corrupt(WHAT, format!("a claim status that is not a string: {other:?}"))),
    }
}

/// The `count` of a `$group` stage (an int32 or an int64 by the server's choice).
fn group_count(group: &Document) -> u64 {
    match group.get("count") {
        Some(Bson::Int32(count)) => u64::try_from(*count).unwrap_or(0),
        Some(Bson::Int64(count)) => u64::try_from(*count).unwrap_or(0),
        _ => 0,
    }
}

/// Compare-and-set filter: the stored request is still `expected`.
fn unchanged(expected: &ClaimRequest) -> Document {
    doc! {
        "requestId": expected.request_id.to_string(),
        "version": expected.version,
        "status": expected.status.as_str(),
        "leaseOwner": expected.lease_owner.as_ref().map_or(Bson::Null, |owner| Bson::String(owner.clone())),
    }
}

/// Applies stock changes inside `session`: each one conditional update of the reward matched
/// with `$elemMatch`. A reservation that finds too little stock fails the whole transaction.
async fn apply_stock(
    events: &Collection<Document>,
    session: &mut ClientSession,
    event_id: &EventId,
    changes: &[StockChange],
) -> TxResult<()> {
    for change in changes {
        let reward_id = id_bson(&change.reward_id);
        let matched = if change.delta < 0 {
            let units = -change.delta;
            let filter = doc! {
                "_id": id_bson(event_id.as_str()),
                "rewards": { "$elemMatch": { "rewardId": reward_id, "remainingStock": { "$gte": units } } },
            };
            let update = doc! { "$inc": { "rewards.$.remainingStock": change.delta } };
            events.update_one(filter, update).session(&mut *session).await?.matched_count
        } else {
            // A return never lifts `remainingStock` above `totalStock`: the update is
            // conditional on the total read in this transaction.
            let event = event_in(events, &mut *session, event_id).await?;
            let total =
                event.as_ref().and_then(|e| e.reward(&change.reward_id)).and_then(|r| r.reward().stock().total_stock());
            match total {
                None => 0,
                Some(total) => {
                    let filter = doc! {
                        "_id": id_bson(event_id.as_str()),
                        "rewards": { "$elemMatch": {
                            "rewardId": reward_id,
                            "totalStock": total,
                            "remainingStock": { "$lte": total - change.delta },
                        } },
                    };
                    let update = doc! { "$inc": { "rewards.$.remainingStock": change.delta } };
                    events.update_one(filter, update).session(&mut *session).await?.matched_count
                }
            }
        };
        if matched == 0 {
            return Err(if change.delta < 0 {
                StoreError::Conflict(Conflict::Stock)
            } else {
                // Returning more than was taken would break the stock invariant: refuse loudly.
                StoreError::Unavailable(format!("stock return of {} exceeds totalStock", change.reward_id))
            }
            .into());
        }
    }
    Ok(())
}

#[async_trait]
impl ClaimStore for MongoEventStore {
    async fn insert_request(&self, request: &ClaimRequest, stock: &[StockChange]) -> Result<Inserted, StoreError> {
        self.ready().await?;
        let document = request_document(request)?;
        let (event_id, stock) = (request.event_id.clone(), stock.to_vec());
        // Without stock to move, the insert is one document: atomic without a transaction.
        let outcome = if stock.is_empty() {
            self.requests.insert_one(document).await.map(drop).map_err(|error| {
                if is_duplicate_key(&error) { StoreError::Conflict(Conflict::RequestOrSlot) } else { map_error(error) }
            })
        } else {
            in_transaction(&self.client, |session| {
                let (requests, events, document, event_id, stock) =
                    (self.requests.clone(), self.events.clone(), document.clone(), event_id.clone(), stock.clone());
                Box::pin(async move {
                    requests
                        .insert_one(document)
                        .session(&mut *session)
                        .await
                        .map_err(tx_error(Conflict::RequestOrSlot))?;
                    apply_stock(&events, &mut *session, &event_id, &stock).await?;
                    TxResult::Ok(())
                })
            })
            .await
        };
        match outcome {
            Ok(()) => Ok(Inserted::Created),
            // Either the request id (a replay) or the claim slot is taken: read which after
            // the aborted attempt.
            Err(StoreError::Conflict(Conflict::RequestOrSlot)) => match self.request(&request.request_id).await? {
                Some(stored) => Ok(Inserted::Existing(Box::new(stored))),
                None => Err(StoreError::Conflict(Conflict::ClaimSlot)),
            },
            Err(other) => Err(other),
        }
    }

    async fn request(&self, request_id: &RequestId) -> Result<Option<ClaimRequest>, StoreError> {
        self.ready().await?;
        let found = self.requests.find_one(doc! { "requestId": request_id.to_string() }).await.map_err(map_error)?;
        found.as_ref().map(request_from_document).transpose()
    }

    async fn list_requests(&self, filter: &ClaimFilter, page: PageRequest) -> Result<Page<ClaimRequest>, StoreError> {
        self.ready().await?;
        let mut query = Document::new();
        if let Some(user) = &filter.user_id {
            query.insert("userId", user.as_str());
        }
        if let Some(event) = &filter.event_id {
            query.insert("eventId", id_bson(event.as_str()));
        }
        if let Some(status) = filter.status {
            query.insert("status", status.as_str());
        }
        let mut created = Document::new();
        if let Some(from) = filter.from {
            created.insert("$gte", date(from));
        }
        if let Some(to) = filter.to {
            created.insert("$lt", date(to));
        }
        if !created.is_empty() {
            query.insert("createdAt", created);
        }
        let newest_first = doc! { "createdAt": -1, "_id": -1 };
        find_page(&self.requests, query, newest_first, page).await?.try_map(|request| request_from_document(&request))
    }

    async fn acquire_lease(
        &self,
        request_id: &RequestId,
        lease: Lease<'_>,
    ) -> Result<Option<ClaimRequest>, StoreError> {
        self.ready().await?;
        let now = lease.from;
        // One conditional update: non-final, lease free or expired, next attempt due.
        let filter = doc! {
            "requestId": request_id.to_string(),
            "status": { "$in": non_final() },
            "$and": [
                { "$or": [ { "leaseExpiresAt": Bson::Null }, { "leaseExpiresAt": { "$lte": date(now) } } ] },
                { "$or": [ { "nextAttemptAt": Bson::Null }, { "nextAttemptAt": { "$lte": date(now) } } ] },
            ],
        };
        let update = doc! {
            "$set": { "leaseOwner": lease.owner, "leaseExpiresAt": date(lease.until), "nextAttemptAt": Bson::Null },
            "$inc": { "version": 1_i64 },
        };
        let before = self
            .requests
            .find_one_and_update(filter, update)
            .return_document(ReturnDocument::Before)
            .await
            .map_err(map_error)?;
        let Some(before) = before else { return Ok(None) };
        let mut request = request_from_document(&before)?;
        if let Some(previous) = &request.lease_owner {
            tracing::warn!(%request_id, previous, "taking over a claim whose lease expired");
        }
        request.take_lease(&lease);
        Ok(Some(request))
    }

    async fn commit(&self, from: &ClaimRequest, to: &Transition, audit: Option<&AuditEntry>) -> Result<(), StoreError> {
        self.ready().await?;
        let (current, next, stock) = (from, &to.next, to.stock.as_slice());
        let (filter, document) = (unchanged(current), request_document(next)?);
        if stock.is_empty() && audit.is_none() {
            // Most saga steps change the request alone: one compare-and-set on one document,
            // atomic without a transaction (and without its commit-time conflicts).
            return self.replace_request(filter, document).await;
        }
        let holds: Option<Vec<Hold>> = stock
            .iter()
            .map(|change| Hold::of(change, &current.request_id, current.version, next.updated_at))
            .collect();
        if let (Some(holds), None) = (holds, audit) {
            return self.commit_with_holds(current, filter, document, &holds).await;
        }
        let (event_id, stock, audit) = (next.event_id.clone(), stock.to_vec(), audit.map(audit_document).transpose()?);
        in_transaction(&self.client, |session| {
            let (requests, events, logs) = (self.requests.clone(), self.events.clone(), self.audit.clone());
            let (filter, document, event_id, stock, audit) =
                (filter.clone(), document.clone(), event_id.clone(), stock.clone(), audit.clone());
            Box::pin(async move {
                // The request first: a taken claim slot is reported before a lack of stock.
                let replaced = requests
                    .replace_one(filter, document)
                    .session(&mut *session)
                    .await
                    .map_err(tx_error(Conflict::ClaimSlot))?;
                if replaced.matched_count == 0 {
                    return Err(StoreError::Conflict(Conflict::Version).into());
                }
                apply_stock(&events, &mut *session, &event_id, &stock).await?;
                if let Some(entry) = audit {
                    logs.insert_one(entry).session(&mut *session).await?;
                }
                TxResult::Ok(())
            })
        })
        .await
    }

    async fn due_requests(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RequestId>, StoreError> {
        self.ready().await?;
        let filter = doc! {
            "status": { "$in": non_final() },
            "$and": [
                { "$or": [ { "leaseExpiresAt": Bson::Null }, { "leaseExpiresAt": { "$lte": date(now) } } ] },
                { "$or": [ { "nextAttemptAt": Bson::Null }, { "nextAttemptAt": { "$lte": date(now) } } ] },
            ],
        };
        let cursor = self
            .requests
            .find(filter)
            .sort(doc! { "updatedAt": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .projection(doc! { "requestId": 1 })
            .await
            .map_err(map_error)?;
        collect(cursor)
            .await?
            .iter()
            .map(|document| text(document, "requestId", WHAT)?.parse().map_err(|e| corrupt(WHAT, e)))
            .collect()
    }

    async fn count_by_status(&self, status: ClaimStatus) -> Result<u64, StoreError> {
        self.ready().await?;
        self.requests.count_documents(doc! { "status": status.as_str() }).await.map_err(map_error)
    }

    async fn event_claim_stats(&self, event_id: &EventId, since: DateTime<Utc>) -> Result<ClaimStats, StoreError> {
        self.ready().await?;
        let failures: Vec<&str> = ClaimStatus::ALL.iter().filter(|s| s.is_failure()).map(|s| s.as_str()).collect();
        // One pass over the event's requests (found by the `(eventId, createdAt)` index), cut
        // down to the four fields counted, then grouped three ways on the server. A document
        // written before codes were recorded has no `failureCode`: it groups with the null ones.
        let pipeline = vec![
            doc! { "$match": { "eventId": id_bson(event_id.as_str()) } },
            doc! { "$project": {
                "_id": 0, "status": 1, "createdAt": 1, "failureReason": 1,
                "failureCode": { "$ifNull": ["$failureCode", Bson::Null] },
            } },
            doc! { "$facet": {
                "statuses": [ { "$group": { "_id": "$status", "count": { "$sum": 1 } } } ],
                "minutes": [
                    { "$match": { "createdAt": { "$gte": date(since) } } },
                    { "$group": {
                        "_id": { "$dateTrunc": { "date": "$createdAt", "unit": "minute" } },
                        "count": { "$sum": 1 },
                    } },
                ],
                "failures": [
                    { "$match": { "status": { "$in": failures } } },
                    { "$group": {
                        "_id": { "status": "$status", "code": "$failureCode", "reason": "$failureReason" },
                        "count": { "$sum": 1 },
                    } },
                ],
            } },
        ];
        let cursor = self.requests.aggregate(pipeline).await.map_err(map_error)?;
        let facets = collect(cursor).await?.into_iter().next().unwrap_or_default();
        let groups = |name: &str| -> Vec<Document> {
            facets.get_array(name).into_iter().flatten().filter_map(|group| group.as_document().cloned()).collect()
        };
        let statuses = groups("statuses")
            .iter()
            .map(|group| Ok(StatusCount { status: group_status(group.get("_id"))?, count: group_count(group) }))
            .collect::<Result<_, StoreError>>()?;
        let minutes = groups("minutes")
            .iter()
            .map(|group| {
                let minute = group.get_datetime("_id").map_err(|e| corrupt(WHAT, e))?.to_chrono();
                Ok(MinuteCount { minute, count: group_count(group) })
            })
            .collect::<Result<_, StoreError>>()?;
        let failures = groups("failures")
            .iter()
            .map(|group| {
                let key = group.get_document("_id").map_err(|e| corrupt(WHAT, e))?;
                let reason = key.get_str("reason").ok().map(str::to_owned);
                let code = match key.get("code") {
                    Some(Bson::String(code)) => Some(code.parse().map_err(|e: String| corrupt(WHAT, e))?),
                    _ => None,
                };
                let status = group_status(key.get("status"))?;
                Ok(FailureCount { status, code, reason, count: group_count(group) })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(ClaimStats { statuses, minutes, failures })
    }

    /// Reservations go through [`Self::commit`]'s holds, for requests already stored.
    fn reserves_with_insert(&self) -> bool {
        false
    }

    async fn settle_stray_reservations(&self, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        self.ready().await?;
        stock_holds::settle_stray(self, older_than).await
    }
}

impl MongoEventStore {
    /// Releases the lease of every claim under way and returns how many it released: for
    /// databases restored from a dump, whose leases name workers of another server that will
    /// never renew nor release them. The recovery sweeper of a server started on them then
    /// resumes those claims at its first sweep instead of when the leases would have run out;
    /// a retry scheduled for later (`nextAttemptAt`) is kept. Each claim moves one `version`
    /// on, as a driver's commit does (a writer still holding the old copy cannot commit it).
    ///
    /// Stock holds in flight (`stockHolds`) are left to recovery, which settles those older
    /// than a lease: a restore comes long after the dump's instant. Nothing else may be using
    /// the database.
    pub async fn release_leases(&self) -> Result<u64, StoreError> {
        let leased = doc! {
            "status": { "$in": non_final() },
            "$or": [ { "leaseOwner": { "$ne": Bson::Null } }, { "leaseExpiresAt": { "$ne": Bson::Null } } ],
        };
        let release = doc! {
            "$set": { "leaseOwner": Bson::Null, "leaseExpiresAt": Bson::Null },
            "$inc": { "version": 1_i64 },
        };
        let released = self.requests.update_many(leased, release).await.map_err(map_error)?;
        Ok(released.modified_count)
    }

    /// Takes `hold`; `Ok(false)` when the stock is gone for good. While units the reward lacks
    /// are held by other claims in flight, which may yet give them back, it tries again
    /// shortly, for [`SHORTAGE_PATIENCE`] at most: "out of stock" means reserved for good.
    async fn take_hold(&self, event_id: &str, hold: &Hold, recorded: &[&str]) -> Result<bool, StoreError> {
        let started = std::time::Instant::now();
        loop {
            if stock_holds::take(&self.events, event_id, hold).await? {
                return Ok(true);
            }
            match stock_holds::shortage(&self.events, event_id, hold, recorded).await? {
                Shortage::Recovered => {}
                Shortage::InFlight if started.elapsed() < SHORTAGE_PATIENCE => {
                    tokio::time::sleep(std::time::Duration::from_millis(rand::random_range(5..=25))).await;
                }
                Shortage::InFlight | Shortage::Exhausted => return Ok(false),
            }
        }
    }

    /// A commit whose only stock changes are named reservations: each taken as a hold on the
    /// event (one atomic write each), then the request's compare-and-set, then the holds
    /// dropped, or given back if the compare-and-set lost. No transaction: see `stock_holds`.
    async fn commit_with_holds(
        &self,
        current: &ClaimRequest,
        filter: Document,
        document: Document,
        holds: &[Hold],
    ) -> Result<(), StoreError> {
        let event_id = current.event_id.as_str();
        let recorded: Vec<&str> =
            current.rewards_to_process.iter().filter_map(|r| r.stock_reservation_id.as_deref()).collect();
        for (taken, hold) in holds.iter().enumerate() {
            let outcome = self.take_hold(event_id, hold, &recorded).await;
            if !matches!(outcome, Ok(true)) {
                // This hold may have been written even if the answer was lost: give it back too.
                let written = if outcome.is_err() { taken + 1 } else { taken };
                stock_holds::give_back_all(&self.events, event_id, &holds[..written]).await;
                return Err(outcome.err().unwrap_or(StoreError::Conflict(Conflict::Stock)));
            }
        }
        match self.replace_request(filter, document).await {
            Ok(()) => {
                for hold in holds {
                    if let Err(error) = stock_holds::drop_recorded(&self.events, event_id, hold).await {
                        tracing::warn!(%error, hold = %hold.hold_id, "could not drop a recorded stock hold; recovery will");
                    }
                }
                Ok(())
            }
            Err(conflict @ StoreError::Conflict(_)) => {
                stock_holds::give_back_all(&self.events, event_id, holds).await;
                Err(conflict)
            }
            // Whether the request was written is unknown: recovery settles the holds.
            Err(unknown) => Err(unknown),
        }
    }

    /// The compare-and-set of one request document, outside any transaction:
    /// `Conflict(Conflict::Version)` when it moved on, `Conflict(Conflict::ClaimSlot)` when the
    /// new document takes a slot another request holds.
    async fn replace_request(&self, filter: Document, document: Document) -> Result<(), StoreError> {
        let replaced = self.requests.replace_one(filter, document).await.map_err(|error| {
            if is_duplicate_key(&error) { StoreError::Conflict(Conflict::ClaimSlot) } else { map_error(error) }
        })?;
        if replaced.matched_count == 0 { Err(StoreError::Conflict(Conflict::Version)) } else { Ok(()) }
    }
}
