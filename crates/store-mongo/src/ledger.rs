//! `event_db`: the MongoDB adapter of [`LedgerStore`], the built-in wallet ledger
//! (`reward_ledger`): one document per grant key, revokes as tombstones.

use async_trait::async_trait;
use bestow_events_domain::ports::ledger::{LedgerEntry, LedgerGrant, LedgerStore};
use bestow_events_domain::reward::{RewardType, parse_details};
use bestow_kernel::ids::{EventId, RequestId, UserId};
use bestow_kernel::store::StoreError;
use bson::{Bson, doc};
use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::{collect, corrupt, date, is_duplicate_key, map_error};
use crate::event_db::MongoEventStore;
use crate::fields::{from_document, json, object_id, to_document};

/// A grant (or a revoke's tombstone, which has only `grantKey`, `userId` and `revokedAt`) as
/// stored in `reward_ledger`; the ledger reads only grants.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LedgerDocument {
    grant_key: String,
    user_id: UserId,
    request_id: RequestId,
    #[serde(with = "object_id")]
    event_id: String,
    #[serde(with = "object_id")]
    reward_id: String,
    reward_name: String,
    reward_type: String,
    #[serde(with = "json")]
    details: Value,
    quantity: i64,
    granted_at: bson::DateTime,
    revoked_at: Option<bson::DateTime>,
}

const WHAT: &str = "ledger";

impl TryFrom<&LedgerEntry> for LedgerDocument {
    type Error = StoreError;

    fn try_from(entry: &LedgerEntry) -> Result<Self, StoreError> {
        Ok(Self {
            grant_key: entry.grant_key.clone(),
            user_id: entry.user_id.clone(),
            request_id: entry.request_id,
            event_id: entry.event_id.to_string(),
            reward_id: entry.reward_id.clone(),
            reward_name: entry.reward_name.clone(),
            reward_type: entry.details.reward_type().as_str().to_owned(),
            details: serde_json::to_value(&entry.details).map_err(|e| corrupt(WHAT, e))?,
            quantity: entry.quantity,
            granted_at: bson::DateTime::from_chrono(entry.granted_at),
            revoked_at: None,
        })
    }
}

impl TryFrom<LedgerDocument> for LedgerEntry {
    type Error = StoreError;

    fn try_from(document: LedgerDocument) -> Result<Self, StoreError> {
        let reward_type = document.reward_type.parse::<RewardType>().map_err(|e| corrupt(WHAT, e))?;
        let details =
            parse_details(reward_type, &document.details, "").map_err(|_| corrupt(WHAT, "bad reward details"))?;
        Ok(Self {
            grant_key: document.grant_key,
            request_id: document.request_id,
            user_id: document.user_id,
            event_id: EventId::parse(&document.event_id).map_err(|e| corrupt(WHAT, e))?,
            reward_id: document.reward_id,
            reward_name: document.reward_name,
            details,
            quantity: document.quantity,
            granted_at: document.granted_at.to_chrono(),
        })
    }
}

#[async_trait]
impl LedgerStore for MongoEventStore {
    async fn record_grant(&self, entry: &LedgerEntry) -> Result<LedgerGrant, StoreError> {
        self.ready().await?;
        let document = to_document(&LedgerDocument::try_from(entry)?, WHAT)?;
        match self.ledger.insert_one(document).await {
            Ok(_) => return Ok(LedgerGrant::Granted),
            Err(error) if is_duplicate_key(&error) => {}
            Err(error) => return Err(map_error(error)),
        }
        let stored = self.ledger.find_one(doc! { "grantKey": &entry.grant_key }).await.map_err(map_error)?;
        let revoked = stored.is_some_and(|document| !matches!(document.get("revokedAt"), None | Some(Bson::Null)));
        Ok(if revoked { LedgerGrant::Revoked } else { LedgerGrant::AlreadyGranted })
    }

    async fn record_revoke(&self, grant_key: &str, user_id: &UserId, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.ready().await?;
        // Marks a live grant revoked, or inserts a tombstone if the grant never arrived. When
        // the key is revoked already the filter matches nothing and the upsert's insert hits
        // the unique key: nothing to do.
        let written = self
            .ledger
            .update_one(
                doc! { "grantKey": grant_key, "revokedAt": Bson::Null },
                doc! { "$set": { "revokedAt": date(at) }, "$setOnInsert": { "userId": user_id.as_str() } },
            )
            .upsert(true)
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(error) if is_duplicate_key(&error) => Ok(()),
            Err(error) => Err(map_error(error)),
        }
    }

    async fn entries(&self, user_id: &UserId) -> Result<Vec<LedgerEntry>, StoreError> {
        self.ready().await?;
        let cursor = self
            .ledger
            .find(doc! { "userId": user_id.as_str(), "revokedAt": Bson::Null, "grantedAt": { "$ne": Bson::Null } })
            .sort(doc! { "grantedAt": 1 })
            .await
            .map_err(map_error)?;
        collect(cursor)
            .await?
            .into_iter()
            .map(|document| from_document::<LedgerDocument>(document, WHAT)?.try_into())
            .collect()
    }
}
