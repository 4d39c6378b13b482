//! The `user_reward_requests` document: the request, the rewards it processes, the trail of
//! statuses it went through and the compensations it made; how a request is created for an
//! event and what it tells about itself (its claim slot, period and snapshot event).

use bestow_kernel::ids::{EventId, RequestId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use std::fmt::Write as _;

use super::snapshot::{EventSnapshot, TierSnapshot};
use super::status::{ClaimStatus, FailureCode, GrantStatus, SagaStep};
use super::transition::ClaimTarget;
use crate::event::Event;
use crate::recurrence::Period;
use crate::reward::RewardDefinition;

/// One reward of a claim: what was promised and how far its grant got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RewardToProcess {
    /// A copy of the event's reward at claim time.
    pub reward_definition: RewardDefinition,
    /// How far the grant of this reward got.
    pub grant_status: GrantStatus,
    /// Grant or revoke attempts made so far.
    pub attempt_count: u32,
    /// Why the last attempt failed, if it did.
    pub last_failure_reason: Option<String>,
    /// Stock of this reward is reserved for this claim (and not yet returned).
    #[serde(default)]
    pub stock_reserved: bool,
    /// The identity of this reward's stock reservation, set when it is made and kept after a
    /// return: a store that reserves and records in two writes uses it to tell whether a
    /// reservation it finds in flight belongs to this claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock_reservation_id: Option<String>,
    /// A grant attempt ended without an answer (timeout, 5xx): the granter may have applied
    /// it, so a compensation must revoke it even though it is not marked `SUCCESS`.
    #[serde(default)]
    pub grant_uncertain: bool,
}

impl RewardToProcess {
    pub fn reward_id(&self) -> &str {
        self.reward_definition.reward_id().as_str()
    }

    /// Units reserved per claim, or `None` for unlimited stock (nothing to reserve).
    pub fn reservation(&self) -> Option<i64> {
        let stock = self.reward_definition.reward().stock();
        (!stock.is_unlimited()).then(|| stock.quantity_per_user())
    }

    /// The idempotency key of this reward's grant and revoke: `requestId:rewardId`.
    pub fn grant_key(&self, request_id: &RequestId) -> String {
        format!("{request_id}:{}", self.reward_id())
    }
}

/// One entry of `compensatingActionsLog`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompensatingAction {
    /// The step whose effect is undone, e.g. `ALLOCATE_INVENTORY`.
    // Documented as a string, as it was before it was typed: the published schema stays as is.
    #[schema(value_type = String)]
    pub step: SagaStep,
    /// `INCREMENT_STOCK`, `REVOKE_GRANT` or `MANUAL_REVOKE`.
    #[schema(value_type = String)]
    pub action: CompensationKind,
    /// The reward the action undid.
    pub reward_id: String,
    /// When it was done.
    pub timestamp: DateTime<Utc>,
}

/// `compensatingActionsLog[].action`: how a compensation undid one reward's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompensationKind {
    /// The reward's reserved stock was given back.
    IncrementStock,
    /// The granter took the reward's grant back.
    RevokeGrant,
    /// An admin took the grant back outside the platform and resolved the claim.
    ManualRevoke,
}

impl CompensationKind {
    /// The seed's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IncrementStock => "INCREMENT_STOCK",
            Self::RevokeGrant => "REVOKE_GRANT",
            Self::ManualRevoke => "MANUAL_REVOKE",
        }
    }
}

/// One status the request went through (an addition to the seed: the full trail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The status the request entered.
    pub status: ClaimStatus,
    /// The saga step that moved it.
    pub step: SagaStep,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, when there is more to say (a failure reason, an admin note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A `user_reward_requests` document: the seed's fields plus the saga's bookkeeping
/// (`claimSlot`, lease, retry schedule, history, version). Clients read it as a
/// `bestow_events::view::ClaimView`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimRequest {
    /// `_id`, ObjectId hex.
    pub id: String,
    /// UUID; the saga id and the idempotency key.
    pub request_id: RequestId,
    /// The claiming player (`users._id`).
    pub user_id: UserId,
    /// The claimed event.
    pub event_id: EventId,
    /// The event as it was when the claim was made.
    pub event_snapshot: EventSnapshot,
    /// Where the claim stands; the final statuses are its business outcome.
    pub status: ClaimStatus,
    /// The saga step the claim is at.
    pub current_saga_step: SagaStep,
    /// Each reward of the event and how far its grant got.
    pub rewards_to_process: Vec<RewardToProcess>,
    /// Why the claim failed, if it did.
    pub failure_reason: Option<String>,
    /// `failureReason` as a stable code (an addition to the seed), set and cleared with it.
    /// Absent from documents written before codes were recorded.
    #[serde(default)]
    pub failure_code: Option<FailureCode>,
    /// Retries of external calls so far.
    pub retry_count: u32,
    /// Grants revoked and stock returned while compensating, in order.
    pub compensating_actions_log: Vec<CompensatingAction>,
    /// When the claim became final with every reward granted.
    pub claimed_at: Option<DateTime<Utc>>,
    /// When the claim was recorded.
    pub created_at: DateTime<Utc>,
    /// When the claim last changed.
    pub updated_at: DateTime<Utc>,
    /// `userId:eventId` while this request holds the player's one claim on the event.
    pub claim_slot: Option<String>,
    /// The worker driving the claim now, if any.
    pub lease_owner: Option<String>,
    /// Until when that worker owns it.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Earliest time of the next attempt after a transient failure.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Every status the claim went through, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Incremented by every write: the compare-and-set token.
    pub version: i64,
    /// Set when a failed claim keeps its successful grants (`PARTIAL_ALLOWED`): compensation
    /// then undoes only what failed and the claim ends `REWARD_PARTIALLY_GRANTED`.
    #[serde(default)]
    pub keep_grants: bool,
    /// The claimed tier; null for an event without tiers.
    #[serde(default)]
    pub tier_id: Option<String>,
    /// Start of the period claimed in (UTC); null for a one-time event.
    #[serde(default)]
    pub period_start: Option<DateTime<Utc>>,
}

impl ClaimRequest {
    /// A new request in `PENDING_VALIDATION` for the event's only tier, once ever.
    pub fn new(id: String, request_id: RequestId, user_id: UserId, event: &Event, now: DateTime<Utc>) -> Self {
        Self::for_target(id, request_id, user_id, event, &ClaimTarget::default(), now)
    }

    /// A new request in `PENDING_VALIDATION` for `target` (a tier, a period) of `event`.
    pub fn for_target(
        id: String,
        request_id: RequestId,
        user_id: UserId,
        event: &Event,
        target: &ClaimTarget,
        now: DateTime<Utc>,
    ) -> Self {
        let rewards_to_process = event
            .rewards_of(target.tier.as_ref())
            .into_iter()
            .map(|definition| RewardToProcess {
                reward_definition: definition,
                grant_status: GrantStatus::PendingGrant,
                attempt_count: 0,
                last_failure_reason: None,
                stock_reserved: false,
                stock_reservation_id: None,
                grant_uncertain: false,
            })
            .collect();
        Self {
            id,
            request_id,
            user_id,
            event_id: event.id.clone(),
            event_snapshot: EventSnapshot {
                tier: target.tier.as_ref().map(|tier| TierSnapshot {
                    tier_id: tier.tier_id.clone(),
                    tier_name: tier.tier_name.clone(),
                    conditions: tier.conditions.clone(),
                }),
                ..EventSnapshot::of(event)
            },
            status: ClaimStatus::PendingValidation,
            current_saga_step: SagaStep::ValidateUserAndEvent,
            rewards_to_process,
            failure_reason: None,
            failure_code: None,
            retry_count: 0,
            compensating_actions_log: Vec::new(),
            claimed_at: None,
            created_at: now,
            updated_at: now,
            claim_slot: None,
            lease_owner: None,
            lease_expires_at: None,
            next_attempt_at: None,
            history: vec![HistoryEntry {
                status: ClaimStatus::PendingValidation,
                step: SagaStep::ValidateUserAndEvent,
                at: now,
                note: None,
            }],
            version: 1,
            keep_grants: false,
            tier_id: target.tier.as_ref().map(|tier| tier.tier_id.clone()),
            period_start: target.period.map(|period| period.start),
        }
    }

    /// The slot a successful claim holds: one per player and event, and per tier and period
    /// when the event has them (`userId:eventId[:tierId][@periodStartMillis]`; tier ids hold
    /// no `:` or `@`).
    pub fn slot(&self) -> String {
        let mut slot = format!("{}:{}", self.user_id, self.event_id);
        if let Some(tier_id) = &self.tier_id {
            let _ = write!(slot, ":{tier_id}");
        }
        if let Some(start) = self.period_start {
            let _ = write!(slot, "@{}", start.timestamp_millis());
        }
        slot
    }

    /// The period this request was made in, for a recurring event.
    pub fn period(&self) -> Option<Period> {
        let recurrence = self.event_snapshot.recurrence?;
        let timezone = self.event_snapshot.timezone.parse().unwrap_or(chrono_tz::Tz::UTC);
        Some(recurrence.period_at(self.period_start?, timezone))
    }

    /// The snapshot as an event, for condition evaluation.
    pub fn snapshot_event(&self) -> Event {
        let rewards = self.rewards_to_process.iter().map(|r| r.reward_definition.clone()).collect();
        self.event_snapshot.to_event(&self.event_id, rewards)
    }

    /// Whether the claim is judged by some condition: the event's or its tier's.
    pub fn has_conditions(&self) -> bool {
        self.event_snapshot.conditions.is_some()
            || self.event_snapshot.tier.as_ref().is_some_and(|tier| tier.conditions.is_some())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_compensating_action_is_stored_as_the_seed_spells_it() {
        let at = "2026-05-01T12:00:00Z".parse().unwrap();
        for (action, spelling) in [
            (CompensationKind::IncrementStock, "INCREMENT_STOCK"),
            (CompensationKind::RevokeGrant, "REVOKE_GRANT"),
            (CompensationKind::ManualRevoke, "MANUAL_REVOKE"),
        ] {
            assert_eq!(action.as_str(), spelling);
            let entry =
                CompensatingAction { step: SagaStep::GrantRewards, action, reward_id: "r1".into(), timestamp: at };
            let stored = json!({ "step": "GRANT_REWARDS", "action": spelling, "rewardId": "r1",
                                 "timestamp": "2026-05-01T12:00:00Z" });
            assert_eq!(serde_json::to_value(&entry).unwrap(), stored);
            assert_eq!(serde_json::from_value::<CompensatingAction>(stored).unwrap(), entry);
        }
    }
}
