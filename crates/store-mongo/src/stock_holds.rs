//! Stock reservations of a hot reward without a multi-document transaction.
//!
//! Reserving in a transaction with the request makes every claim on a reward write the event
//! document inside its transaction: a crowd on one reward serialises on that document and
//! retries write conflicts. Here a reservation is instead one conditional single-document
//! update of the event that takes the units from the reward's `remainingStock` and appends a
//! hold `{holdId, requestId, rewardId, units, heldBy, heldAt}` to the event's `stockHolds`, in
//! one atomic write. The request then records the reservation (its reward's
//! `stockReservationId` is the `holdId`) with its usual compare-and-set, and the hold is
//! dropped. At every instant
//!
//! `totalStock = remainingStock + Σ units reserved by requests + Σ units of stockHolds`
//!
//! where a hold counts until it is dropped (recorded) or given back (not recorded), so the
//! list holds only the reservations in flight, a few per claim being processed.
//!
//! A writer whose compare-and-set lost gives its holds back at once: no request records them.
//! A hold left behind by a crash is settled by recovery ([`settle_stray`]): it first fences
//! the request, bumping its `version` if it is still `heldBy`, the version the writer's
//! compare-and-set expects, so that writer can never record it afterwards; then it drops the
//! hold if the request recorded it and gives its units back otherwise. Every step is one
//! atomic single-document write, conditional on the hold still being there, so two settlers
//! (or a settler and the writer) never give the same units back twice.

use bestow_events_domain::ports::claims::{ClaimStore, StockChange};
use bestow_kernel::ids::RequestId;
use bestow_kernel::store::StoreError;
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use mongodb::Collection;

use serde::{Deserialize, Serialize};

use crate::common::{collect, date, id_bson, id_text, map_error, read_date};
use crate::event_db::MongoEventStore;
use crate::fields::{datetime, from_document, object_id, to_document};

const WHAT: &str = "stock hold";

/// One reservation in flight: who made it and what it took; stored as it is, an element of
/// the event's `stockHolds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Hold {
    pub(crate) hold_id: String,
    pub(crate) request_id: RequestId,
    #[serde(with = "object_id")]
    pub(crate) reward_id: String,
    pub(crate) units: i64,
    /// The request version the writer's compare-and-set expects.
    pub(crate) held_by: i64,
    /// When the saga took it: the instant of the step that reserves, on the saga's clock, which
    /// recovery's "older than a lease" is also measured on (the store reads no clock of its own).
    #[serde(with = "datetime")]
    pub(crate) held_at: DateTime<Utc>,
}

impl Hold {
    /// The hold of reservation `change` for `request_id` at version `held_by`, taken at
    /// `held_at`; `None` when the change is not a named reservation.
    pub(crate) fn of(
        change: &StockChange,
        request_id: &RequestId,
        held_by: i64,
        held_at: DateTime<Utc>,
    ) -> Option<Self> {
        let hold_id = change.reservation_id.clone()?;
        (change.delta < 0).then(|| Self {
            hold_id,
            request_id: *request_id,
            reward_id: change.reward_id.clone(),
            units: -change.delta,
            held_by,
            held_at,
        })
    }

    fn from_document(document: &Document) -> Result<Self, StoreError> {
        from_document(document.clone(), WHAT)
    }
}

/// The `arrayFilters` entry naming the reward a hold moves (`rewards.$[held]`).
fn the_reward(reward_id: &str) -> Vec<Document> {
    vec![doc! { "held.rewardId": id_bson(reward_id) }]
}

/// Takes the hold's units from its reward if that much remains, recording the hold in the
/// same write. `false` when too little remains (or the event or reward is gone).
pub(crate) async fn take(events: &Collection<Document>, event_id: &str, hold: &Hold) -> Result<bool, StoreError> {
    let filter = doc! {
        "_id": id_bson(event_id),
        "stockHolds.holdId": { "$ne": &hold.hold_id },
        "rewards": { "$elemMatch": { "rewardId": id_bson(&hold.reward_id), "remainingStock": { "$gte": hold.units } } },
    };
    let update = doc! {
        "$inc": { "rewards.$[held].remainingStock": -hold.units },
        "$push": { "stockHolds": to_document(hold, WHAT)? },
    };
    let written =
        events.update_one(filter, update).array_filters(the_reward(&hold.reward_id)).await.map_err(map_error)?;
    Ok(written.matched_count == 1)
}

/// Gives the hold's units back and drops it, if it is still there.
pub(crate) async fn give_back(events: &Collection<Document>, event_id: &str, hold: &Hold) -> Result<bool, StoreError> {
    let filter = doc! { "_id": id_bson(event_id), "stockHolds.holdId": &hold.hold_id };
    let update = doc! {
        "$inc": { "rewards.$[held].remainingStock": hold.units },
        "$pull": { "stockHolds": { "holdId": &hold.hold_id } },
    };
    let written =
        events.update_one(filter, update).array_filters(the_reward(&hold.reward_id)).await.map_err(map_error)?;
    Ok(written.modified_count == 1)
}

/// Drops a hold its request recorded: the units stay reserved, now by the request.
pub(crate) async fn drop_recorded(
    events: &Collection<Document>,
    event_id: &str,
    hold: &Hold,
) -> Result<(), StoreError> {
    let filter = doc! { "_id": id_bson(event_id), "stockHolds.holdId": &hold.hold_id };
    events
        .update_one(filter, doc! { "$pull": { "stockHolds": { "holdId": &hold.hold_id } } })
        .await
        .map(drop)
        .map_err(map_error)
}

/// Gives back every hold of `holds` a failed commit leaves unrecorded. A failure here is only
/// logged: recovery settles whatever is left.
pub(crate) async fn give_back_all(events: &Collection<Document>, event_id: &str, holds: &[Hold]) {
    for hold in holds {
        if let Err(error) = give_back(events, event_id, hold).await {
            tracing::warn!(%error, hold = %hold.hold_id, "could not give a stock hold back; recovery will");
        }
    }
}

/// Why a hold found too little stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shortage {
    /// Holds an earlier writer of the same request left behind were given back: try again.
    Recovered,
    /// Other claims' holds in flight may yet be given back: try again shortly.
    InFlight,
    /// Every unit is reserved for good.
    Exhausted,
}

/// Looks at the event after `hold` was refused. The holds an earlier writer of the same
/// request left behind (their `heldBy` is older, so the version has moved past what their
/// writers expect and they can no longer be recorded) are settled: dropped if `recorded`
/// names them, given back otherwise. This way a request resumed after a crash is not refused
/// the unit its own dead writer still holds.
pub(crate) async fn shortage(
    events: &Collection<Document>,
    event_id: &str,
    hold: &Hold,
    recorded: &[&str],
) -> Result<Shortage, StoreError> {
    let Some(stored) = events.find_one(doc! { "_id": id_bson(event_id) }).await.map_err(map_error)? else {
        return Ok(Shortage::Exhausted);
    };
    let mut in_flight = 0;
    let mut recovered = false;
    for entry in stored.get_array("stockHolds").into_iter().flatten() {
        let Bson::Document(entry) = entry else { continue };
        let other = Hold::from_document(entry)?;
        if other.request_id != hold.request_id {
            in_flight += if other.reward_id == hold.reward_id { other.units } else { 0 };
        } else if other.held_by < hold.held_by {
            if recorded.contains(&other.hold_id.as_str()) {
                drop_recorded(events, event_id, &other).await?;
            } else {
                recovered |= give_back(events, event_id, &other).await?;
            }
        }
    }
    let remaining = crate::events::event_from_document(stored)?
        .reward(&hold.reward_id)
        .and_then(|reward| reward.remaining_stock())
        .unwrap_or(0);
    Ok(if recovered {
        Shortage::Recovered
    } else if remaining + in_flight >= hold.units {
        Shortage::InFlight
    } else {
        Shortage::Exhausted
    })
}

/// Settles every hold taken at or before `older_than` (see the module docs); returns how many.
pub(crate) async fn settle_stray(store: &MongoEventStore, older_than: DateTime<Utc>) -> Result<usize, StoreError> {
    let stale = doc! { "stockHolds.heldAt": { "$lte": date(older_than) } };
    let cursor = store.events.find(stale).projection(doc! { "stockHolds": 1 }).await.map_err(map_error)?;
    let mut settled = 0;
    for event in collect(cursor).await? {
        let event_id = event.get("_id").and_then(id_text).ok_or_else(|| crate::common::corrupt(WHAT, "_id"))?;
        for entry in event.get_array("stockHolds").into_iter().flatten() {
            let Bson::Document(entry) = entry else { continue };
            if read_date(entry, "heldAt", WHAT)? > older_than {
                continue;
            }
            let hold = Hold::from_document(entry)?;
            settle(store, &event_id, &hold).await?;
            settled += 1;
        }
    }
    Ok(settled)
}

async fn settle(store: &MongoEventStore, event_id: &str, hold: &Hold) -> Result<(), StoreError> {
    // The fence: if the request is still at the version the writer expects, move it on.
    store
        .requests
        .update_one(
            doc! { "requestId": hold.request_id.to_string(), "version": hold.held_by },
            doc! { "$inc": { "version": 1_i64 } },
        )
        .await
        .map_err(map_error)?;
    let request = store.request(&hold.request_id).await?;
    let recorded = request.is_some_and(|request| {
        request.rewards_to_process.iter().any(|reward| reward.stock_reservation_id.as_deref() == Some(&hold.hold_id))
    });
    if recorded {
        drop_recorded(&store.events, event_id, hold).await
    } else {
        let given = give_back(&store.events, event_id, hold).await?;
        if given {
            tracing::warn!(hold = %hold.hold_id, request_id = %hold.request_id, units = hold.units, "gave back a stock reservation its claim never recorded");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bson::spec::ElementType;

    use super::*;

    /// A hold is stored `{holdId, requestId, rewardId, units, heldBy, heldAt}` with the reward
    /// an ObjectId, the numbers int64 and the time a date, and reads back.
    #[test]
    fn a_hold_is_stored_in_its_shape_and_reads_back() {
        let hold = Hold {
            hold_id: "a1:r".into(),
            request_id: RequestId::generate(),
            reward_id: bestow_kernel::ids::new_object_id(),
            units: 2,
            held_by: 3,
            held_at: bestow_kernel::time::now(),
        };
        let document = to_document(&hold, WHAT).unwrap();
        let shape: Vec<(&str, ElementType)> =
            document.iter().map(|(key, value)| (key.as_str(), value.element_type())).collect();
        assert_eq!(
            shape,
            [
                ("holdId", ElementType::String),
                ("requestId", ElementType::String),
                ("rewardId", ElementType::ObjectId),
                ("units", ElementType::Int64),
                ("heldBy", ElementType::Int64),
                ("heldAt", ElementType::DateTime)
            ]
        );
        assert_eq!(Hold::from_document(&document).unwrap(), hold);
    }
}
