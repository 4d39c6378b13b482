//! The built-in ledger: wallets of points, currencies, items and coupons that players read
//! at `GET /api/v1/wallet/me`. A grant is one ledger row keyed by `requestId:rewardId`; the
//! wallet, their sum, is the domain's ([`Wallet`]).

use std::sync::Arc;

use async_trait::async_trait;
use bestow_core::time::Clock;

use super::{Grant, GrantError, GrantFailure, RewardGranter};

pub use crate::domain::ports::ledger::{LedgerEntry, LedgerGrant, LedgerStore};
pub use crate::domain::wallet::{Wallet, WalletCoupon, WalletItem};

/// The ledger as a [`RewardGranter`].
pub struct LedgerGranter {
    store: Arc<dyn LedgerStore>,
    /// Stamps grants and revocations, on the claims' clock.
    clock: Clock,
}

impl LedgerGranter {
    pub fn new(store: Arc<dyn LedgerStore>, clock: Clock) -> Self {
        Self { store, clock }
    }
}

#[async_trait]
impl RewardGranter for LedgerGranter {
    async fn grant(&self, grant: &Grant) -> Result<(), GrantError> {
        let reward = grant.reward.reward();
        let entry = LedgerEntry {
            grant_key: grant.key.clone(),
            request_id: grant.request_id,
            user_id: grant.user_id.clone(),
            event_id: grant.event_id.clone(),
            reward_id: grant.reward.reward_id().as_str().to_owned(),
            reward_name: reward.reward_name().to_owned(),
            details: reward.details().clone(),
            quantity: reward.stock().quantity_per_user(),
            granted_at: self.clock.now(),
        };
        match self.store.record_grant(&entry).await {
            Ok(LedgerGrant::Granted | LedgerGrant::AlreadyGranted) => Ok(()),
            Ok(LedgerGrant::Revoked) => Err(GrantError::Permanent(GrantFailure::AlreadyRevoked)),
            // The ledger is this service's own database: whatever failed may work next time.
            Err(error) => Err(GrantError::Transient(GrantFailure::Ledger(error))),
        }
    }

    async fn revoke(&self, grant: &Grant) -> Result<(), GrantError> {
        let revoked = self.store.record_revoke(&grant.key, &grant.user_id, self.clock.now()).await;
        revoked.map_err(|error| GrantError::Transient(GrantFailure::Ledger(error)))
    }
}
