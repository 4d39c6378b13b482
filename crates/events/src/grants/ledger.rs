//! The built-in ledger: wallets of points, currencies, items and coupons that players read
//! at `GET /api/v1/wallet/me`. A grant is one ledger row keyed by `requestId:rewardId`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bestow_core::time::Clock;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Grant, GrantError, GrantFailure, RewardGranter};
use crate::domain::reward::RewardDetails;

pub use crate::domain::ports::ledger::{LedgerEntry, LedgerGrant, LedgerStore};

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
            request_id: grant.request_id.clone(),
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

/// A player's wallet: the sum of the ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Wallet {
    /// The player.
    pub user_id: String,
    /// Points granted, in total.
    pub points: i64,
    /// Balance per virtual currency, e.g. `{"GEM": 50}`.
    pub currencies: BTreeMap<String, i64>,
    /// Items granted.
    pub items: Vec<WalletItem>,
    /// Coupons granted.
    pub coupons: Vec<WalletCoupon>,
    /// Number of grants behind these balances.
    pub grants: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletItem {
    /// The game's identifier of the item.
    pub item_id: String,
    /// Display name of the item.
    pub item_name: String,
    /// Grade, e.g. `RARE`, if the reward has one.
    pub item_grade: Option<String>,
    /// Units held.
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletCoupon {
    /// The code to redeem.
    pub coupon_code: String,
    /// Fraction taken off, in (0, 1].
    pub discount_rate: f64,
    /// Text shown with the coupon, if any.
    pub description: Option<String>,
    /// Units held.
    pub quantity: i64,
    /// When it was granted.
    pub granted_at: DateTime<Utc>,
}

/// `balance + per_unit × units`, checked: a sum past `i64::MAX` (possible only with extreme
/// rewards granted many times) stays at `i64::MAX` and is logged, never wraps.
fn add_units(balance: i64, per_unit: i64, units: i64) -> i64 {
    per_unit.checked_mul(units).and_then(|added| balance.checked_add(added)).unwrap_or_else(|| {
        tracing::error!(balance, per_unit, units, "wallet balance overflows; shown as the largest value");
        i64::MAX
    })
}

impl Wallet {
    /// Sums a player's ledger entries.
    pub fn of(user_id: &str, entries: &[LedgerEntry]) -> Self {
        let mut wallet = Wallet { user_id: user_id.to_owned(), grants: entries.len(), ..Wallet::default() };
        let mut items: BTreeMap<String, WalletItem> = BTreeMap::new();
        for entry in entries {
            match &entry.details {
                RewardDetails::Point { points } => wallet.points = add_units(wallet.points, *points, entry.quantity),
                RewardDetails::VirtualCurrency { currency, amount } => {
                    let balance = wallet.currencies.entry(currency.clone()).or_default();
                    *balance = add_units(*balance, *amount, entry.quantity);
                }
                RewardDetails::Item { item_id, item_name, item_grade } => {
                    let item = items.entry(item_id.clone()).or_insert_with(|| WalletItem {
                        item_id: item_id.clone(),
                        item_name: item_name.clone(),
                        item_grade: item_grade.clone(),
                        quantity: 0,
                    });
                    item.quantity = add_units(item.quantity, 1, entry.quantity);
                }
                RewardDetails::Coupon { coupon_code, discount_rate, description } => {
                    wallet.coupons.push(WalletCoupon {
                        coupon_code: coupon_code.clone(),
                        discount_rate: *discount_rate,
                        description: description.clone(),
                        quantity: entry.quantity,
                        granted_at: entry.granted_at,
                    })
                }
            }
        }
        wallet.items = items.into_values().collect();
        wallet
    }
}
