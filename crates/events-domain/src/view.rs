//! How events, rewards and claims look to clients and in audit snapshots: the seed's
//! documents with `id` for `_id`, as their [`Audience`] may read them.

use bestow_kernel::identity::{Permission, Principal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::event::{Event, GrantPolicy};
use crate::lifecycle::EventStatus;
use crate::recurrence::Recurrence;
use crate::reward::{RewardDefinition, RewardType};
use crate::saga::{
    ClaimRequest, ClaimStatus, CompensatingAction, EventSnapshot, FailureCode, GrantStatus, HistoryEntry,
    RewardToProcess, SagaStep,
};

/// Who reads a view. Staff read rewards whole; a player never reads a reward's secret details
/// ([`RewardType::secret_details`]) except where the reward was granted to them (their wallet,
/// and a claim of theirs that granted it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Staff,
    Player,
}

impl Audience {
    /// Staff are those who may read every event (OPERATOR, AUDITOR, ADMIN).
    pub fn of(caller: &Principal) -> Self {
        if caller.can(Permission::ReadAllEvents) { Self::Staff } else { Self::Player }
    }
}

/// Removes the secret members of a reward's `details`.
fn hide_secret_details(reward_type: RewardType, details: &mut Value) {
    if let Value::Object(members) = details {
        for secret in reward_type.secret_details() {
            members.remove(*secret);
        }
    }
}

/// An event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    /// `events._id`.
    pub id: String,
    /// Display name.
    pub event_name: String,
    /// Longer text shown to players.
    pub description: String,
    /// When claims open.
    pub start_date: DateTime<Utc>,
    /// When claims close.
    pub end_date: DateTime<Utc>,
    /// The condition tree in the seed's JSON shape, or null for none.
    #[schema(value_type = Option<crate::schemas::ConditionTree>)]
    pub conditions: Option<Value>,
    /// Where the event is in its lifecycle.
    pub status: EventStatus,
    /// What a claim receives; empty when the event pays by `tiers`.
    pub rewards: Vec<RewardView>,
    /// When the event pays again; null for a one-time event.
    pub recurrence: Option<Recurrence>,
    /// The reward tiers, each paid once per player (and period); null for an event whose
    /// `rewards` are its only tier.
    pub tiers: Option<Vec<TierView>>,
    /// User id of the operator who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// IANA time zone of the event's calendar days.
    pub timezone: String,
    /// What happens when some rewards of a claim fail for good.
    pub grant_policy: GrantPolicy,
    /// Changes with every write; also sent as the `ETag` header.
    pub version: i64,
    /// Who the event is shown to; null for every player (and always null to players).
    #[serde(default)]
    #[schema(value_type = Option<crate::schemas::AudienceTargetSpec>)]
    pub audience: Option<crate::audience::AudienceTarget>,
}

/// A reward of an event, in the seed's `rewards[]` shape.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardView {
    /// Identifier of the reward within its event.
    pub reward_id: String,
    /// `POINT`, `ITEM`, `COUPON` or `VIRTUAL_CURRENCY`.
    pub reward_type: String,
    /// Display name.
    pub reward_name: String,
    /// What one unit of the reward is; the members of its type.
    #[schema(value_type = Object)]
    pub details: Value,
    /// Units one claim receives.
    pub quantity_per_user: i64,
    /// Null when unlimited.
    pub total_stock: Option<i64>,
    /// Null when unlimited.
    pub remaining_stock: Option<i64>,
}

impl RewardView {
    /// The reward as `audience` may read it.
    pub fn new(reward: &RewardDefinition, audience: Audience) -> Self {
        let mut view = Self::from(reward);
        if audience == Audience::Player {
            hide_secret_details(reward.reward().reward_type(), &mut view.details);
        }
        view
    }
}

/// The whole reward, as staff read it and the stores keep it.
impl From<&RewardDefinition> for RewardView {
    fn from(reward: &RewardDefinition) -> Self {
        let stock = reward.reward().stock();
        Self {
            reward_id: reward.reward_id().as_str().to_owned(),
            reward_type: reward.reward().reward_type().as_str().to_owned(),
            reward_name: reward.reward().reward_name().to_owned(),
            details: serde_json::to_value(reward.reward().details()).unwrap_or(Value::Null),
            quantity_per_user: stock.quantity_per_user(),
            total_stock: stock.total_stock(),
            remaining_stock: reward.remaining_stock(),
        }
    }
}

/// A reward tier of an event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TierView {
    /// Unique within the event; what a claim names in its body.
    pub tier_id: String,
    /// Display name.
    pub tier_name: String,
    /// What the tier requires on top of the event's conditions, or null.
    #[schema(value_type = Option<crate::schemas::ConditionTree>)]
    pub conditions: Option<Value>,
    /// What a claim of this tier receives.
    pub rewards: Vec<RewardView>,
}

impl EventView {
    /// The event as `audience` may read it.
    pub fn new(event: &Event, audience: Audience) -> Self {
        // Who an event targets is the studio's business, not the player's.
        let target = if audience == Audience::Player { None } else { event.audience.clone() };
        Self::shown(event, |reward| RewardView::new(reward, audience), target)
    }

    fn with(event: &Event, view_of: impl Fn(&RewardDefinition) -> RewardView) -> Self {
        Self::shown(event, view_of, event.audience.clone())
    }

    fn shown(
        event: &Event,
        view_of: impl Fn(&RewardDefinition) -> RewardView,
        audience: Option<crate::audience::AudienceTarget>,
    ) -> Self {
        let tiers = (!event.tiers.is_empty()).then(|| {
            event
                .tiers
                .iter()
                .map(|tier| TierView {
                    tier_id: tier.tier_id.clone(),
                    tier_name: tier.tier_name.clone(),
                    conditions: tier.conditions.as_ref().and_then(|c| serde_json::to_value(c).ok()),
                    rewards: event.rewards_of(Some(tier)).iter().map(&view_of).collect(),
                })
                .collect()
        });
        let rewards = if tiers.is_some() { Vec::new() } else { event.rewards.iter().map(&view_of).collect() };
        Self {
            id: event.id.to_string(),
            event_name: event.event_name.clone(),
            description: event.description.clone(),
            start_date: event.start_date,
            end_date: event.end_date,
            conditions: event.conditions.as_ref().and_then(|c| serde_json::to_value(c).ok()),
            status: event.status,
            rewards,
            recurrence: event.recurrence,
            tiers,
            created_by: event.created_by.clone(),
            created_at: event.created_at,
            updated_at: event.updated_at,
            timezone: event.timezone.name().to_owned(),
            grant_policy: event.grant_policy,
            version: event.version,
            audience,
        }
    }
}

/// The whole event, as staff read it and the audit log records it.
impl From<&Event> for EventView {
    fn from(event: &Event) -> Self {
        Self::with(event, |reward| RewardView::from(reward))
    }
}

/// The audit snapshot of an event.
pub fn event_snapshot(event: &Event) -> Value {
    serde_json::to_value(EventView::from(event)).unwrap_or(Value::Null)
}

/// An audit snapshot as a row of an export: every reward in it, wherever it sits (an event's
/// rewards, a tier's, a claim's), without its secret details. For the reason of
/// [`ClaimView::exported`]: a file travels further than a screen.
pub fn exported_snapshot(snapshot: &mut Value) {
    match snapshot {
        Value::Object(members) => {
            let reward_type = members.get("rewardType").and_then(Value::as_str).and_then(|text| text.parse().ok());
            if let (Some(reward_type), Some(details)) = (reward_type, members.get_mut("details")) {
                hide_secret_details(reward_type, details);
            }
            members.values_mut().for_each(exported_snapshot);
        }
        Value::Array(items) => items.iter_mut().for_each(exported_snapshot),
        _ => {}
    }
}

/// A claim as a client reads it: the seed's `user_reward_requests` fields and the additions
/// that mean something to a client (`history`, `nextAttemptAt`, `tierId`, `periodStart`). The
/// saga's bookkeeping (lease, claim slot, `keepGrants`, compare-and-set `version`) stays in
/// storage.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimView {
    /// `_id`, ObjectId hex.
    pub id: String,
    /// UUID; the saga id and the idempotency key.
    pub request_id: String,
    /// The claiming player (`users._id`).
    pub user_id: String,
    /// The claimed event.
    pub event_id: String,
    /// The event as it was when the claim was made.
    pub event_snapshot: EventSnapshot,
    /// Where the claim stands; the final statuses are its business outcome.
    pub status: ClaimStatus,
    /// The saga step the claim is at.
    pub current_saga_step: SagaStep,
    /// Each reward of the claim and how far its grant got.
    pub rewards_to_process: Vec<ProcessedRewardView>,
    /// Why the claim failed, if it did.
    pub failure_reason: Option<String>,
    /// `failureReason` as a stable code, for grouping and automation; null when the claim
    /// recorded no reason, or recorded it before codes existed.
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
    /// When the next attempt is due after a transient failure, if one is scheduled.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Every status the claim went through, oldest first.
    pub history: Vec<HistoryEntry>,
    /// The claimed tier; null for an event without tiers.
    pub tier_id: Option<String>,
    /// Start of the period claimed in (UTC); null for a one-time event.
    pub period_start: Option<DateTime<Utc>>,
}

/// One reward of a claim.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessedRewardView {
    /// A copy of the event's reward at claim time.
    pub reward_definition: RewardView,
    /// How far the grant of this reward got.
    pub grant_status: GrantStatus,
    /// Grant or revoke attempts made so far.
    pub attempt_count: u32,
    /// Why the last attempt failed, if it did.
    pub last_failure_reason: Option<String>,
    /// Stock of this reward is reserved for this claim (and not yet returned).
    pub stock_reserved: bool,
    /// A grant attempt ended without an answer, so a compensation revokes it too.
    pub grant_uncertain: bool,
}

impl ClaimView {
    /// The claim as `audience` may read it: a player sees the secret details of a reward only
    /// when this claim granted it (`grantStatus` `SUCCESS`).
    pub fn new(request: ClaimRequest, audience: Audience) -> Self {
        Self::read_by(
            request,
            |reward| if reward.grant_status == GrantStatus::Success { Audience::Staff } else { audience },
        )
    }

    /// The claim as a row of an export: no secret details at all, whoever asks. A file is
    /// copied, mailed and kept far longer than a screen is looked at, and a coupon's code in it
    /// would be the coupon itself.
    pub fn exported(request: ClaimRequest) -> Self {
        Self::read_by(request, |_| Audience::Player)
    }

    /// The claim with each reward's details as `reader` of that reward may read them.
    fn read_by(request: ClaimRequest, reader: impl Fn(&RewardToProcess) -> Audience) -> Self {
        let rewards_to_process = request
            .rewards_to_process
            .iter()
            .map(|reward| {
                let reader = reader(reward);
                ProcessedRewardView {
                    reward_definition: RewardView::new(&reward.reward_definition, reader),
                    grant_status: reward.grant_status,
                    attempt_count: reward.attempt_count,
                    last_failure_reason: reward.last_failure_reason.clone(),
                    stock_reserved: reward.stock_reserved,
                    grant_uncertain: reward.grant_uncertain,
                }
            })
            .collect();
        Self {
            id: request.id,
            request_id: request.request_id.to_string(),
            user_id: request.user_id.into(),
            event_id: request.event_id.into(),
            event_snapshot: request.event_snapshot,
            status: request.status,
            current_saga_step: request.current_saga_step,
            rewards_to_process,
            failure_reason: request.failure_reason,
            failure_code: request.failure_code,
            retry_count: request.retry_count,
            compensating_actions_log: request.compensating_actions_log,
            claimed_at: request.claimed_at,
            created_at: request.created_at,
            updated_at: request.updated_at,
            next_attempt_at: request.next_attempt_at,
            history: request.history,
            tier_id: request.tier_id,
            period_start: request.period_start,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_exported_snapshot_keeps_no_secret_detail_wherever_the_reward_sits() {
        let coupon = || json!({ "rewardType": "COUPON", "details": { "couponCode": "C", "discountRate": 0.5 } });
        let mut snapshot = json!({
            "rewards": [coupon()],
            "tiers": [{ "tierId": "t", "rewards": [coupon()] }],
            "rewardsToProcess": [{ "rewardDefinition": coupon() }],
            "note": { "rewardType": "NOT_A_TYPE", "details": { "couponCode": "kept" } },
        });
        exported_snapshot(&mut snapshot);
        let public = json!({ "discountRate": 0.5 });
        assert_eq!(snapshot["rewards"][0]["details"], public);
        assert_eq!(snapshot["tiers"][0]["rewards"][0]["details"], public);
        assert_eq!(snapshot["rewardsToProcess"][0]["rewardDefinition"]["details"], public);
        assert_eq!(snapshot["note"]["details"]["couponCode"], "kept", "only rewards are read as rewards");
    }

    /// Serializes `view` read back from `sent` twice over: what a client reads back must be
    /// what the server sent, member for member.
    fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(sent: Value) -> Value {
        let first = serde_json::to_value(serde_json::from_value::<T>(sent).expect("readable")).expect("writable");
        let again =
            serde_json::to_value(serde_json::from_value::<T>(first.clone()).expect("readable")).expect("writable");
        assert_eq!(again, first);
        first
    }

    fn coupon_reward() -> Value {
        json!({
            "rewardId": "r1", "rewardType": "COUPON", "rewardName": "Winter coupon",
            "details": { "couponCode": "WINTER", "discountRate": 0.1 },
            "quantityPerUser": 1, "totalStock": 50, "remainingStock": 49,
        })
    }

    fn event_view() -> Value {
        json!({
            "id": "e".repeat(24), "eventName": "Winter", "description": "Log in", "status": "ACTIVE",
            "startDate": "2026-12-01T00:00:00Z", "endDate": "2027-01-01T00:00:00.250Z",
            "conditions": { "type": "AND", "subConditions": [{ "type": "LOGIN_STREAK", "days": 7 }] },
            "rewards": [],
            "recurrence": { "period": "WEEKLY", "resetTime": "05:00", "resetWeekday": "MONDAY" },
            "tiers": [{ "tierId": "gold", "tierName": "Gold", "conditions": null, "rewards": [coupon_reward()] }],
            "createdBy": "op", "createdAt": "2026-11-30T10:00:00Z", "updatedAt": "2026-11-30T10:05:00Z",
            "timezone": "Asia/Seoul", "grantPolicy": "PARTIAL_ALLOWED", "version": 3,
            "audience": { "include": ["a".repeat(24)], "exclude": [], "sticky": true },
        })
    }

    #[test]
    fn an_event_view_reads_back_as_it_was_sent() {
        let sent = event_view();
        let read = round_trip::<EventView>(sent.clone());
        assert_eq!(read, sent);
        let one_time = json!({
            "recurrence": null, "tiers": null, "conditions": null, "rewards": [coupon_reward()], "audience": null,
        });
        let mut sent = sent;
        sent.as_object_mut().expect("an object").extend(one_time.as_object().expect("an object").clone());
        assert_eq!(round_trip::<EventView>(sent.clone()), sent);
    }

    #[test]
    fn a_claim_view_reads_back_as_it_was_sent() {
        let at = "2026-12-07T11:01:02.123Z";
        let sent = json!({
            "id": "c".repeat(24), "requestId": "5f0c6a56-3c36-4b9f-9d55-1d5b1c2b8a3e", "userId": "u1",
            "eventId": "e".repeat(24),
            "eventSnapshot": {
                "eventName": "Winter", "description": "Log in", "startDate": "2026-12-01T00:00:00Z",
                "endDate": "2027-01-01T00:00:00Z", "conditions": { "type": "LOGIN_STREAK", "days": 7 },
                "status": "ACTIVE", "timezone": "Asia/Seoul", "grantPolicy": "ALL_OR_NOTHING", "createdBy": "op",
                "version": 3, "recurrence": null,
                "tier": { "tierId": "gold", "tierName": "Gold", "conditions": null },
            },
            "status": "FAILED_ROLLED_BACK", "currentSagaStep": "COMPLETED",
            "rewardsToProcess": [{
                "rewardDefinition": coupon_reward(), "grantStatus": "REVOKED", "attemptCount": 2,
                "lastFailureReason": "granter timed out", "stockReserved": false, "grantUncertain": true,
            }],
            "failureReason": "granter refused", "failureCode": "GRANT_FAILED_EXTERNAL", "retryCount": 1,
            "compensatingActionsLog": [{
                "step": "ALLOCATE_INVENTORY", "action": "INCREMENT_STOCK", "rewardId": "r1", "timestamp": at,
            }],
            "claimedAt": null, "createdAt": at, "updatedAt": at, "nextAttemptAt": null,
            "history": [
                { "status": "PENDING_VALIDATION", "step": "VALIDATE_USER_AND_EVENT", "at": at },
                { "status": "FAILED_ROLLED_BACK", "step": "COMPLETED", "at": at, "note": "granter refused" },
            ],
            "tierId": "gold", "periodStart": "2026-12-07T00:00:00Z",
        });
        let read = round_trip::<ClaimView>(sent.clone());
        for member in
            ["eventSnapshot", "rewardsToProcess", "failureCode", "compensatingActionsLog", "history", "periodStart"]
        {
            assert_eq!(read[member], sent[member], "{member}");
        }
    }

    #[test]
    fn a_page_of_views_reads_back_as_it_was_sent() {
        let sent = json!({ "items": [event_view()], "page": 2, "limit": 1, "total": 5 });
        assert_eq!(round_trip::<bestow_kernel::page::Page<EventView>>(sent.clone()), sent);
    }
}
