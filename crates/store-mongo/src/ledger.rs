//! `event_db`: the MongoDB adapter of [`LedgerStore`], the built-in wallet ledger
//! (`reward_ledger`): one document per grant key, revokes as tombstones.

use async_trait::async_trait;
use bestow_events_domain::ports::ledger::{LedgerEntry, LedgerGrant, LedgerStore};
use bestow_events_domain::reward::{RewardType, parse_details};
use bestow_kernel::store::StoreError;
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};

use crate::common::{
    bson_to_json, collect, corrupt, date, id_bson, is_duplicate_key, json_to_bson, map_error, read_date, text,
};
use crate::event_db::MongoEventStore;

fn ledger_document(entry: &LedgerEntry) -> Result<Document, StoreError> {
    let details = serde_json::to_value(&entry.details).map_err(|e| corrupt("ledger", e))?;
    Ok(doc! {
        "grantKey": &entry.grant_key,
        "userId": &entry.user_id,
        "requestId": &entry.request_id,
        "eventId": id_bson(&entry.event_id),
        "rewardId": id_bson(&entry.reward_id),
        "rewardName": &entry.reward_name,
        "rewardType": entry.details.reward_type().as_str(),
        "details": json_to_bson(&details),
        "quantity": entry.quantity,
        "grantedAt": date(entry.granted_at),
        "revokedAt": Bson::Null,
    })
}

fn ledger_from_document(document: &Document) -> Result<LedgerEntry, StoreError> {
    const WHAT: &str = "ledger";
    let id = |key: &str| document.get(key).and_then(crate::common::id_text).ok_or_else(|| corrupt(WHAT, key));
    let reward_type = text(document, "rewardType", WHAT)?.parse::<RewardType>().map_err(|e| corrupt(WHAT, e))?;
    let details = bson_to_json(document.get("details").unwrap_or(&Bson::Null));
    let details = parse_details(reward_type, &details, "").map_err(|_| corrupt(WHAT, "bad reward details"))?;
    Ok(LedgerEntry {
        grant_key: text(document, "grantKey", WHAT)?,
        request_id: text(document, "requestId", WHAT)?,
        user_id: text(document, "userId", WHAT)?,
        event_id: id("eventId")?,
        reward_id: id("rewardId")?,
        reward_name: text(document, "rewardName", WHAT)?,
        details,
        quantity: match document.get("quantity") {
            Some(Bson::Int64(quantity)) => *quantity,
            Some(Bson::Int32(quantity)) => i64::from(*quantity),
            _ => return Err(corrupt(WHAT, "quantity")),
        },
        granted_at: read_date(document, "grantedAt", WHAT)?,
    })
}

#[async_trait]
impl LedgerStore for MongoEventStore {
    async fn record_grant(&self, entry: &LedgerEntry) -> Result<LedgerGrant, StoreError> {
        self.ready().await?;
        match self.ledger.insert_one(ledger_document(entry)?).await {
            Ok(_) => return Ok(LedgerGrant::Granted),
            Err(error) if is_duplicate_key(&error) => {}
            Err(error) => return Err(map_error(error)),
        }
        let stored = self.ledger.find_one(doc! { "grantKey": &entry.grant_key }).await.map_err(map_error)?;
        let revoked = stored.is_some_and(|document| !matches!(document.get("revokedAt"), None | Some(Bson::Null)));
        Ok(if revoked { LedgerGrant::Revoked } else { LedgerGrant::AlreadyGranted })
    }

    async fn record_revoke(&self, grant_key: &str, user_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.ready().await?;
        // Marks a live grant revoked, or inserts a tombstone if the grant never arrived. When
        // the key is revoked already the filter matches nothing and the upsert's insert hits
        // the unique key: nothing to do.
        let written = self
            .ledger
            .update_one(
                doc! { "grantKey": grant_key, "revokedAt": Bson::Null },
                doc! { "$set": { "revokedAt": date(at) }, "$setOnInsert": { "userId": user_id } },
            )
            .upsert(true)
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(error) if is_duplicate_key(&error) => Ok(()),
            Err(error) => Err(map_error(error)),
        }
    }

    async fn entries(&self, user_id: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        self.ready().await?;
        let cursor = self
            .ledger
            .find(doc! { "userId": user_id, "revokedAt": Bson::Null, "grantedAt": { "$ne": Bson::Null } })
            .sort(doc! { "grantedAt": 1 })
            .await
            .map_err(map_error)?;
        collect(cursor).await?.iter().map(ledger_from_document).collect()
    }
}
