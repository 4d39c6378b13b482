//! A player's wallet: the sum of their ledger entries, as `GET /api/v1/wallet/me` answers it
//! and the operator console reads it back.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ports::ledger::LedgerEntry;
use crate::reward::RewardDetails;

/// A player's wallet: the sum of the ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn a_wallet_reads_back_as_it_was_sent() {
        let sent = json!({
            "userId": "u1", "points": 300, "currencies": { "GEM": 50, "GOLD": 7 },
            "items": [{ "itemId": "potion_red", "itemName": "Red potion", "itemGrade": "RARE", "quantity": 2 }],
            "coupons": [{ "couponCode": "WINTER", "discountRate": 0.1, "description": null, "quantity": 1,
                          "grantedAt": "2026-12-07T11:01:02.123Z" }],
            "grants": 4,
        });
        let read: Wallet = serde_json::from_value(sent.clone()).unwrap();
        let first: Value = serde_json::to_value(&read).unwrap();
        let again = serde_json::to_value(serde_json::from_value::<Wallet>(first.clone()).unwrap()).unwrap();
        assert_eq!((&first, &again), (&sent, &sent));
    }
}
