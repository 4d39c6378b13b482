//! The claim figures of the event dashboard: what a claim store counts for one event
//! ([`ClaimStats`]) and how those counts are shaped for the console — every status with its
//! count, zeros included; the last hour minute by minute; the failures ranked by code (and, as
//! before codes existed, by reason).
//!
//! The store counts (in the database, without reading the requests); these functions only fill
//! in what it had no rows for, and order. [`EventStats`] is the dashboard as
//! `GET /api/v1/events/{eventId}/stats` answers it and the console reads it back.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::event::Event;
use super::saga::{ClaimStatus, FailureCode};

/// Minutes in the per-minute series: the last hour, the current minute included.
pub const SERIES_MINUTES: i64 = 60;

/// Claims of one event in one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    pub status: ClaimStatus,
    pub count: u64,
}

/// Claims created within one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MinuteCount {
    /// Start of the minute (UTC).
    pub minute: DateTime<Utc>,
    /// Claims created in that minute.
    pub count: u64,
}

/// Failed claims in one status that record one `failureCode` and one `failureReason` (or
/// none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    pub status: ClaimStatus,
    pub code: Option<FailureCode>,
    pub reason: Option<String>,
    pub count: u64,
}

/// Failed claims that give one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReasonCount {
    /// The `failureReason` the claims recorded, or, for claims that recorded none, their status.
    pub reason: String,
    /// Failed claims giving it.
    pub count: u64,
}

/// Failed claims that record one `failureCode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureCodeCount {
    /// The `failureCode` the claims recorded; null for claims that recorded none (written
    /// before codes were recorded), which are counted per `status` instead.
    pub failure_code: Option<FailureCode>,
    /// The status of the claims counted, for claims without a code; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ClaimStatus>,
    /// Failed claims in the group.
    pub count: u64,
}

/// What a claim store counts for one event. A group without claims may be absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimStats {
    /// Claims per status.
    pub statuses: Vec<StatusCount>,
    /// Claims created from the series start on, per minute of creation.
    pub minutes: Vec<MinuteCount>,
    /// Claims in a failure status ([`ClaimStatus::is_failure`]), per status, code and reason.
    pub failures: Vec<FailureCount>,
}

/// Start of the minute holding `at`.
pub fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at)
}

/// Start of the per-minute series that ends with the minute of `now`: the claims created from
/// then on are the ones counted per minute.
pub fn series_start(now: DateTime<Utc>) -> DateTime<Utc> {
    minute_of(now) - TimeDelta::minutes(SERIES_MINUTES - 1)
}

impl ClaimStats {
    /// Every status, in the seed's order, with its count: zero when no claim has it.
    pub fn status_totals(&self) -> BTreeMap<ClaimStatus, u64> {
        let mut totals: BTreeMap<ClaimStatus, u64> = ClaimStatus::ALL.into_iter().map(|status| (status, 0)).collect();
        for group in &self.statuses {
            *totals.entry(group.status).or_default() += group.count;
        }
        totals
    }

    /// One entry per minute of the hour that ends with the minute of `now`, oldest first, zero
    /// for a minute without claims. Counts outside that hour are left out.
    pub fn minute_series(&self, now: DateTime<Utc>) -> Vec<MinuteCount> {
        let start = series_start(now);
        let mut series: Vec<MinuteCount> = (0..SERIES_MINUTES)
            .map(|offset| MinuteCount { minute: start + TimeDelta::minutes(offset), count: 0 })
            .collect();
        for group in &self.minutes {
            let offset = (minute_of(group.minute) - start).num_minutes();
            if let Some(slot) = usize::try_from(offset).ok().and_then(|index| series.get_mut(index)) {
                slot.count += group.count;
            }
        }
        series
    }

    /// Failed claims per reason, most frequent first (ties in the order of the reason). Claims
    /// that recorded no reason count under their status.
    pub fn failure_reasons(&self) -> Vec<ReasonCount> {
        let mut per_reason: BTreeMap<&str, u64> = BTreeMap::new();
        for group in &self.failures {
            let reason = group.reason.as_deref().filter(|reason| !reason.trim().is_empty());
            *per_reason.entry(reason.unwrap_or(group.status.as_str())).or_default() += group.count;
        }
        let mut reasons: Vec<ReasonCount> =
            per_reason.into_iter().map(|(reason, count)| ReasonCount { reason: reason.to_owned(), count }).collect();
        // Stable: equal counts keep the reasons' order.
        reasons.sort_by_key(|reason| std::cmp::Reverse(reason.count));
        reasons
    }

    /// Failed claims per code, most frequent first (ties in the codes' declaration order, then
    /// the groups without a code). Claims that recorded no code, written before codes were
    /// recorded, count per status: their status still tells the step that failed, where their
    /// prose reason would split them by the ids it names.
    pub fn failure_codes(&self) -> Vec<FailureCodeCount> {
        let mut per_code: BTreeMap<(bool, Option<FailureCode>, Option<ClaimStatus>), u64> = BTreeMap::new();
        for group in &self.failures {
            let status = group.code.is_none().then_some(group.status);
            *per_code.entry((group.code.is_none(), group.code, status)).or_default() += group.count;
        }
        let mut codes: Vec<FailureCodeCount> = per_code
            .into_iter()
            .map(|((_, failure_code, status), count)| FailureCodeCount { failure_code, status, count })
            .collect();
        // Stable: equal counts keep the codes' order.
        codes.sort_by_key(|code| std::cmp::Reverse(code.count));
        codes
    }
}

/// An event's dashboard figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
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
    /// The same failed claims per `failureCode`, most frequent first: stable groups, where a
    /// reason's prose may name rewards or quote other systems. Claims recorded before codes
    /// existed count per status, with a null code.
    pub failures_by_code: Vec<FailureCodeCount>,
    /// Every reward of the event with its stock, in the event's order.
    pub stock: Vec<RewardStock>,
}

/// The stock of one reward.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
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
            event_id: event.id.to_string(),
            generated_at: now,
            claims_by_status: claims.status_totals(),
            claims_per_minute: claims.minute_series(now),
            failures_by_reason: claims.failure_reasons(),
            failures_by_code: claims.failure_codes(),
            stock,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn every_status_is_listed_in_the_seeds_order_with_zeros() {
        let stats = ClaimStats {
            statuses: vec![
                StatusCount { status: ClaimStatus::SuccessAllGranted, count: 7 },
                StatusCount { status: ClaimStatus::ConditionNotMet, count: 2 },
            ],
            ..ClaimStats::default()
        };
        let totals = stats.status_totals();
        assert_eq!(totals.len(), ClaimStatus::ALL.len());
        assert_eq!(totals.keys().copied().collect::<Vec<_>>(), ClaimStatus::ALL.to_vec());
        assert_eq!(totals[&ClaimStatus::SuccessAllGranted], 7);
        assert_eq!(totals[&ClaimStatus::ConditionNotMet], 2);
        assert_eq!(totals.values().sum::<u64>(), 9);
        let json = serde_json::to_string(&totals).unwrap();
        assert!(json.starts_with(r#"{"PENDING_VALIDATION":0,"VALIDATION_FAILED_USER_INACTIVE":0,"#), "{json}");
        assert!(json.contains(r#""SUCCESS_ALL_GRANTED":7"#), "{json}");
    }

    #[test]
    fn the_series_is_the_sixty_minutes_up_to_now_oldest_first() {
        let now = at("2025-05-01T12:30:45.500Z");
        assert_eq!(series_start(now), at("2025-05-01T11:31:00Z"));
        let stats = ClaimStats {
            minutes: vec![
                MinuteCount { minute: at("2025-05-01T12:30:00Z"), count: 3 },
                MinuteCount { minute: at("2025-05-01T11:31:00Z"), count: 1 },
                MinuteCount { minute: at("2025-05-01T12:00:00Z"), count: 5 },
                // Outside the hour: left out.
                MinuteCount { minute: at("2025-05-01T11:30:00Z"), count: 100 },
                MinuteCount { minute: at("2025-05-01T12:31:00Z"), count: 100 },
            ],
            ..ClaimStats::default()
        };
        let series = stats.minute_series(now);
        assert_eq!(series.len(), 60);
        assert_eq!(series[0], MinuteCount { minute: at("2025-05-01T11:31:00Z"), count: 1 });
        assert_eq!(series[29], MinuteCount { minute: at("2025-05-01T12:00:00Z"), count: 5 });
        assert_eq!(series[59], MinuteCount { minute: at("2025-05-01T12:30:00Z"), count: 3 });
        assert!(series.windows(2).all(|pair| pair[1].minute - pair[0].minute == TimeDelta::minutes(1)));
        assert_eq!(series.iter().map(|m| m.count).sum::<u64>(), 9);
    }

    #[test]
    fn failures_are_ranked_by_reason_with_the_status_standing_in_for_a_missing_one() {
        let failure = |status, reason: Option<&str>, count| FailureCount {
            status,
            code: None,
            reason: reason.map(Into::into),
            count,
        };
        let stats = ClaimStats {
            failures: vec![
                failure(ClaimStatus::ConditionNotMet, Some("the event's conditions are not met"), 2),
                failure(ClaimStatus::InventoryAllocationFailedOutOfStock, Some("out of stock"), 5),
                failure(ClaimStatus::FailedRolledBack, None, 2),
                failure(ClaimStatus::RewardGrantFailedExternal, Some("out of stock"), 1),
            ],
            ..ClaimStats::default()
        };
        let reasons: Vec<(String, u64)> = stats.failure_reasons().into_iter().map(|r| (r.reason, r.count)).collect();
        assert_eq!(
            reasons,
            [
                ("out of stock".to_owned(), 6),
                ("FAILED_ROLLED_BACK".to_owned(), 2),
                ("the event's conditions are not met".to_owned(), 2),
            ]
        );
    }

    #[test]
    fn failures_are_grouped_by_code_and_claims_without_one_by_status() {
        let failure =
            |status, code, reason: &str, count| FailureCount { status, code, reason: Some(reason.to_owned()), count };
        use ClaimStatus as S;
        use FailureCode as F;
        let stats = ClaimStats {
            failures: vec![
                failure(S::FailedRolledBack, Some(F::GrantFailedExternal), "reward 1 refused: 400", 1),
                failure(S::FailedRolledBack, Some(F::GrantFailedExternal), "reward 2 refused: 400", 2),
                failure(S::CompensationFailedManualInterventionRequired, Some(F::RevokeFailedExternal), "r1", 1),
                failure(S::ConditionNotMet, Some(F::ConditionNotMet), "the event's conditions are not met", 3),
                failure(S::InventoryAllocationFailedOutOfStock, Some(F::OutOfStock), "not enough stock", 3),
                failure(S::FailedRolledBack, None, "written before codes", 4),
                failure(S::FailedRolledBack, None, "another prose", 1),
                failure(S::ConditionNotMet, None, "the event's conditions are not met", 1),
            ],
            ..ClaimStats::default()
        };
        let codes: Vec<(Option<F>, Option<S>, u64)> =
            stats.failure_codes().into_iter().map(|group| (group.failure_code, group.status, group.count)).collect();
        assert_eq!(
            codes,
            [
                (None, Some(S::FailedRolledBack), 5),
                (Some(F::ConditionNotMet), None, 3),
                (Some(F::OutOfStock), None, 3),
                (Some(F::GrantFailedExternal), None, 3),
                (Some(F::RevokeFailedExternal), None, 1),
                (None, Some(S::ConditionNotMet), 1),
            ]
        );
        let json = serde_json::to_value(stats.failure_codes()).unwrap();
        assert_eq!(json[0], serde_json::json!({ "failureCode": null, "status": "FAILED_ROLLED_BACK", "count": 5 }));
        assert_eq!(json[1], serde_json::json!({ "failureCode": "CONDITION_NOT_MET", "count": 3 }));
    }
}
