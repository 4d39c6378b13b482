//! The event dashboard (`GET /api/v1/events/{eventId}/stats`): the claims of one event as the
//! store counted them ([`ClaimStats`]), shaped by the domain (`domain::stats`), beside the
//! stock left of each of its rewards.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::event::Event;
use crate::domain::saga::ClaimStatus;
use crate::domain::stats::{ClaimStats, MinuteCount, ReasonCount};

/// An event's dashboard figures.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventStats {
    /// `events._id`.
    pub event_id: String,
    /// When the figures were counted.
    pub generated_at: DateTime<Utc>,
    /// Claims of the event per status: every status of `user_reward_requests.status`, in the
    /// saga's order, zeros included.
    #[schema(example = json!({ "PENDING_VALIDATION": 0, "SUCCESS_ALL_GRANTED": 42, "INVENTORY_ALLOCATION_FAILED_OUT_OF_STOCK": 3 }))]
    pub claims_by_status: BTreeMap<ClaimStatus, u64>,
    /// Claims created in each minute of the last hour: exactly 60 entries, oldest first, the
    /// last one the current minute so far.
    pub claims_per_minute: Vec<MinuteCount>,
    /// Failed claims (a final status other than `SUCCESS_ALL_GRANTED` and
    /// `REWARD_PARTIALLY_GRANTED`) per `failureReason`, most frequent first.
    pub failures_by_reason: Vec<ReasonCount>,
    /// Every reward of the event with its stock, in the event's order.
    pub stock: Vec<RewardStock>,
}

/// The stock of one reward.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardStock {
    /// Identifier of the reward within its event.
    pub reward_id: String,
    /// Display name.
    pub reward_name: String,
    /// `POINT`, `ITEM`, `COUPON` or `VIRTUAL_CURRENCY`.
    pub reward_type: String,
    /// Units that exist in total; null when unlimited.
    #[schema(required = true)]
    pub total_stock: Option<i64>,
    /// Units not yet reserved by claims; null when unlimited.
    #[schema(required = true)]
    pub remaining_stock: Option<i64>,
    /// The tier that pays the reward; absent for an event without tiers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier_id: Option<String>,
}

impl EventStats {
    /// The dashboard of `event` from the counts of its claims, made at `now`.
    pub fn new(event: &Event, claims: &ClaimStats, now: DateTime<Utc>) -> Self {
        let stock = event
            .rewards
            .iter()
            .map(|reward| {
                let tier = event.tiers.iter().find(|tier| tier.reward_ids.contains(reward.reward_id()));
                RewardStock {
                    reward_id: reward.reward_id().as_str().to_owned(),
                    reward_name: reward.reward().reward_name().to_owned(),
                    reward_type: reward.reward().reward_type().as_str().to_owned(),
                    total_stock: reward.reward().stock().total_stock(),
                    remaining_stock: reward.remaining_stock(),
                    tier_id: tier.map(|tier| tier.tier_id.clone()),
                }
            })
            .collect();
        Self {
            event_id: event.id.clone(),
            generated_at: now,
            claims_by_status: claims.status_totals(),
            claims_per_minute: claims.minute_series(now),
            failures_by_reason: claims.failure_reasons(),
            stock,
        }
    }
}
