//! The storage port of the built-in ledger: one row per grant, keyed by `requestId:rewardId`.

use async_trait::async_trait;
use bestow_kernel::ids::{EventId, RequestId, UserId};
use bestow_kernel::store::StoreError;
use chrono::{DateTime, Utc};

use crate::reward::RewardDetails;

/// One grant in the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    pub grant_key: String,
    pub request_id: RequestId,
    pub user_id: UserId,
    pub event_id: EventId,
    pub reward_id: String,
    pub reward_name: String,
    /// The reward's typed details.
    pub details: RewardDetails,
    /// Units granted (`quantityPerUser`).
    pub quantity: i64,
    pub granted_at: DateTime<Utc>,
}

/// What a grant did to the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerGrant {
    Granted,
    /// The key was granted before: nothing changed.
    AlreadyGranted,
    /// The key was revoked before it was granted: refused, nothing changed.
    Revoked,
}

/// Storage of the ledger.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// Records `entry` unless its key was granted or revoked before.
    async fn record_grant(&self, entry: &LedgerEntry) -> Result<LedgerGrant, StoreError>;

    /// Marks the key revoked; a key never granted gets a tombstone so that a late grant is
    /// refused. Idempotent.
    async fn record_revoke(&self, grant_key: &str, user_id: &UserId, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Every granted, unrevoked entry of a player.
    async fn entries(&self, user_id: &UserId) -> Result<Vec<LedgerEntry>, StoreError>;
}
