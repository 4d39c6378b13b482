//! The claim saga as a pure state machine over the `user_reward_requests` document.
//!
//! [`next_step`] reads a request and says what must happen next; the `ClaimRequest::after_*`
//! methods apply the outcome of that step and return the new document, and the steps that move
//! stock (`allocate`, `begin_compensation`, `return_held_stock`, `resolve_by_admin`) return a
//! [`Transition`]: the document and the stock changes that commit with it. The driver
//! (`crate::claims::driver`) performs the I/O and commits each transition whole with a
//! compare-and-set, so a crash between any two steps resumes from the stored status alone.
//!
//! ```text
//! PENDING_VALIDATION ─► VALIDATION_FAILED_{USER_INACTIVE, EVENT_NOT_ACTIVE, ALREADY_CLAIMED}
//!   └► PENDING_CONDITION_CHECK ─► CONDITION_NOT_MET | CONDITION_CHECK_FAILED_EXTERNAL
//!        └► PENDING_INVENTORY_ALLOCATION ─► INVENTORY_ALLOCATION_FAILED_{OUT_OF_STOCK, CONCURRENCY} | _ERROR
//!             └► INVENTORY_ALLOCATED ─► PENDING_REWARD_GRANT ─► SUCCESS_ALL_GRANTED
//!                  └► REWARD_GRANT_FAILED_{EXTERNAL, USER_INACTIVE}
//!                       ├► PENDING_COMPENSATION_REWARD ─► COMPENSATED_REWARD
//!                       │    ─► PENDING_COMPENSATION_INVENTORY ─► COMPENSATED_INVENTORY ─► FAILED_ROLLED_BACK
//!                       └► REWARD_PARTIALLY_GRANTED (PARTIAL_ALLOWED, something granted)
//! a compensation that keeps failing ─► COMPENSATION_FAILED_MANUAL_INTERVENTION_REQUIRED
//! ```

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use std::fmt::Write as _;

use super::condition::Condition;
use super::event::{Event, GrantPolicy};
use super::lifecycle::EventStatus;
use super::recurrence::{Period, Recurrence};
use super::reward::RewardDefinition;
use super::tier::Tier;

/// `user_reward_requests.status`, exactly the seed's values.
// `Ord` follows the declaration, which is the seed's order: lists of statuses keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClaimStatus {
    PendingValidation,
    ValidationFailedUserInactive,
    ValidationFailedEventNotActive,
    ValidationFailedAlreadyClaimed,
    PendingConditionCheck,
    ConditionCheckFailedExternal,
    ConditionNotMet,
    PendingInventoryAllocation,
    InventoryAllocationFailedOutOfStock,
    InventoryAllocationFailedConcurrency,
    InventoryAllocationError,
    InventoryAllocated,
    PendingRewardGrant,
    RewardGrantFailedExternal,
    RewardGrantFailedUserInactive,
    RewardPartiallyGranted,
    SuccessAllGranted,
    PendingCompensationInventory,
    CompensatedInventory,
    PendingCompensationReward,
    CompensatedReward,
    FailedRolledBack,
    CompensationFailedManualInterventionRequired,
}

impl ClaimStatus {
    pub const ALL: [ClaimStatus; 23] = [
        Self::PendingValidation,
        Self::ValidationFailedUserInactive,
        Self::ValidationFailedEventNotActive,
        Self::ValidationFailedAlreadyClaimed,
        Self::PendingConditionCheck,
        Self::ConditionCheckFailedExternal,
        Self::ConditionNotMet,
        Self::PendingInventoryAllocation,
        Self::InventoryAllocationFailedOutOfStock,
        Self::InventoryAllocationFailedConcurrency,
        Self::InventoryAllocationError,
        Self::InventoryAllocated,
        Self::PendingRewardGrant,
        Self::RewardGrantFailedExternal,
        Self::RewardGrantFailedUserInactive,
        Self::RewardPartiallyGranted,
        Self::SuccessAllGranted,
        Self::PendingCompensationInventory,
        Self::CompensatedInventory,
        Self::PendingCompensationReward,
        Self::CompensatedReward,
        Self::FailedRolledBack,
        Self::CompensationFailedManualInterventionRequired,
    ];

    /// The seed's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingValidation => "PENDING_VALIDATION",
            Self::ValidationFailedUserInactive => "VALIDATION_FAILED_USER_INACTIVE",
            Self::ValidationFailedEventNotActive => "VALIDATION_FAILED_EVENT_NOT_ACTIVE",
            Self::ValidationFailedAlreadyClaimed => "VALIDATION_FAILED_ALREADY_CLAIMED",
            Self::PendingConditionCheck => "PENDING_CONDITION_CHECK",
            Self::ConditionCheckFailedExternal => "CONDITION_CHECK_FAILED_EXTERNAL",
            Self::ConditionNotMet => "CONDITION_NOT_MET",
            Self::PendingInventoryAllocation => "PENDING_INVENTORY_ALLOCATION",
            Self::InventoryAllocationFailedOutOfStock => "INVENTORY_ALLOCATION_FAILED_OUT_OF_STOCK",
            Self::InventoryAllocationFailedConcurrency => "INVENTORY_ALLOCATION_FAILED_CONCURRENCY",
            Self::InventoryAllocationError => "INVENTORY_ALLOCATION_ERROR",
            Self::InventoryAllocated => "INVENTORY_ALLOCATED",
            Self::PendingRewardGrant => "PENDING_REWARD_GRANT",
            Self::RewardGrantFailedExternal => "REWARD_GRANT_FAILED_EXTERNAL",
            Self::RewardGrantFailedUserInactive => "REWARD_GRANT_FAILED_USER_INACTIVE",
            Self::RewardPartiallyGranted => "REWARD_PARTIALLY_GRANTED",
            Self::SuccessAllGranted => "SUCCESS_ALL_GRANTED",
            Self::PendingCompensationInventory => "PENDING_COMPENSATION_INVENTORY",
            Self::CompensatedInventory => "COMPENSATED_INVENTORY",
            Self::PendingCompensationReward => "PENDING_COMPENSATION_REWARD",
            Self::CompensatedReward => "COMPENSATED_REWARD",
            Self::FailedRolledBack => "FAILED_ROLLED_BACK",
            Self::CompensationFailedManualInterventionRequired => "COMPENSATION_FAILED_MANUAL_INTERVENTION_REQUIRED",
        }
    }

    /// Statuses the saga never leaves by itself. A request needing manual intervention is parked
    /// here until an admin retries or resolves it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::ValidationFailedUserInactive
                | Self::ValidationFailedEventNotActive
                | Self::ValidationFailedAlreadyClaimed
                | Self::ConditionCheckFailedExternal
                | Self::ConditionNotMet
                | Self::InventoryAllocationFailedOutOfStock
                | Self::InventoryAllocationFailedConcurrency
                | Self::InventoryAllocationError
                | Self::RewardPartiallyGranted
                | Self::SuccessAllGranted
                | Self::FailedRolledBack
                | Self::CompensationFailedManualInterventionRequired
        )
    }

    /// Final statuses in which the claim failed: it paid nothing (or awaits a human to settle
    /// what it paid). Every final status but `SUCCESS_ALL_GRANTED` and
    /// `REWARD_PARTIALLY_GRANTED`.
    pub fn is_failure(self) -> bool {
        self.is_final() && !matches!(self, Self::SuccessAllGranted | Self::RewardPartiallyGranted)
    }
}

impl std::fmt::Display for ClaimStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ClaimStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| format!("unknown claim status `{s}`"))
    }
}

/// `currentSagaStep`: the step a request is in, for recovery and for humans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SagaStep {
    ValidateUserAndEvent,
    CheckConditions,
    AllocateInventory,
    GrantRewards,
    CompensateRewards,
    CompensateInventory,
    Completed,
}

/// `rewardsToProcess[].grantStatus`: the seed's values plus `REVOKED` for a grant that a
/// compensation took back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GrantStatus {
    PendingGrant,
    Success,
    FailedExternal,
    Revoked,
}

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
    pub fn grant_key(&self, request_id: &str) -> String {
        format!("{request_id}:{}", self.reward_id())
    }
}

/// One entry of `compensatingActionsLog`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompensatingAction {
    /// The step whose effect is undone, e.g. `ALLOCATE_INVENTORY`.
    pub step: String,
    /// `INCREMENT_STOCK`, `REVOKE_GRANT` or `MANUAL_REVOKE`.
    pub action: String,
    /// The reward the action undid.
    pub reward_id: String,
    /// When it was done.
    pub timestamp: DateTime<Utc>,
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

/// `eventSnapshot`: the event as the player saw it when claiming. Conditions and rewards are
/// judged by this copy, so later edits do not change an in-flight claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventSnapshot {
    /// The event name at claim time.
    pub event_name: String,
    /// The event description at claim time.
    pub description: String,
    /// Start of the event at claim time.
    pub start_date: DateTime<Utc>,
    /// End of the event at claim time.
    pub end_date: DateTime<Utc>,
    /// The condition tree the claim is judged by.
    #[schema(value_type = Option<crate::schemas::ConditionTree>)]
    pub conditions: Option<Condition>,
    /// The event status at claim time.
    pub status: EventStatus,
    /// The event time zone at claim time.
    pub timezone: String,
    /// The grant policy the claim follows.
    pub grant_policy: GrantPolicy,
    /// Who created the event.
    pub created_by: String,
    /// The event version copied.
    pub version: i64,
    /// The event's recurrence at claim time; null for a one-time event.
    #[serde(default)]
    pub recurrence: Option<Recurrence>,
    /// The claimed tier at claim time; null for an event without tiers.
    #[serde(default)]
    pub tier: Option<TierSnapshot>,
}

/// The claimed tier as it was when the claim was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TierSnapshot {
    /// The tier's id.
    pub tier_id: String,
    /// The tier's name at claim time.
    pub tier_name: String,
    /// The tier's own conditions (judged together with the event's).
    #[schema(value_type = Option<crate::schemas::ConditionTree>)]
    pub conditions: Option<Condition>,
}

/// What one claim is for: a tier of an event with tiers, in a period of a recurring event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimTarget {
    pub tier: Option<Tier>,
    pub period: Option<Period>,
}

/// A change of one reward's `remainingStock` that must commit with a claim's next document:
/// negative reserves (only if that much remains), positive returns (only up to `totalStock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockChange {
    pub reward_id: String,
    pub delta: i64,
    /// The reservation's `stockReservationId`, which the committed document records.
    pub reservation_id: Option<String>,
}

impl StockChange {
    /// Reserves `units` of `reward_id` as reservation `reservation_id`.
    pub fn reserve(reward_id: &str, units: i64, reservation_id: Option<&str>) -> Self {
        Self { reward_id: reward_id.to_owned(), delta: -units, reservation_id: reservation_id.map(str::to_owned) }
    }

    /// Gives `units` of `reward_id` back.
    pub fn give_back(reward_id: &str, units: i64) -> Self {
        Self { reward_id: reward_id.to_owned(), delta: units, reservation_id: None }
    }
}

/// One step of the machine: the next document and the stock changes that commit with it.
/// The driver performs the step's calls, then commits exactly this.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub next: ClaimRequest,
    pub stock: Vec<StockChange>,
}

impl From<ClaimRequest> for Transition {
    /// A step that moves no stock.
    fn from(next: ClaimRequest) -> Self {
        Self { next, stock: Vec::new() }
    }
}

impl EventSnapshot {
    pub fn of(event: &Event) -> Self {
        Self {
            event_name: event.event_name.clone(),
            description: event.description.clone(),
            start_date: event.start_date,
            end_date: event.end_date,
            conditions: event.conditions.clone(),
            status: event.status,
            timezone: event.timezone.name().to_owned(),
            grant_policy: event.grant_policy,
            created_by: event.created_by.clone(),
            version: event.version,
            recurrence: event.recurrence,
            tier: None,
        }
    }

    /// The snapshot as an event (with the rewards of the claim), for condition evaluation.
    pub fn to_event(&self, event_id: &str, rewards: Vec<RewardDefinition>) -> Event {
        let reward_ids: Vec<_> = rewards.iter().map(|reward| reward.reward_id().clone()).collect();
        Event {
            id: event_id.to_owned(),
            event_name: self.event_name.clone(),
            description: self.description.clone(),
            start_date: self.start_date,
            end_date: self.end_date,
            conditions: self.conditions.clone(),
            status: self.status,
            rewards,
            created_by: self.created_by.clone(),
            created_at: self.start_date,
            updated_at: self.start_date,
            timezone: self.timezone.parse().unwrap_or(chrono_tz::Tz::UTC),
            grant_policy: self.grant_policy,
            version: self.version,
            recurrence: self.recurrence,
            tiers: self
                .tier
                .iter()
                .map(|tier| Tier {
                    tier_id: tier.tier_id.clone(),
                    tier_name: tier.tier_name.clone(),
                    conditions: tier.conditions.clone(),
                    reward_ids: reward_ids.clone(),
                })
                .collect(),
        }
    }
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
    /// Each reward of the event and how far its grant got.
    pub rewards_to_process: Vec<RewardToProcess>,
    /// Why the claim failed, if it did.
    pub failure_reason: Option<String>,
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

/// How one counted attempt of an external call ended.
enum Attempt {
    Succeeded,
    /// A transient failure with attempts left: the request is rescheduled.
    Retrying,
    /// No attempts left, or a permanent refusal.
    GaveUp {
        reason: String,
        transient: bool,
    },
}

/// What the driver must do next with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Check the player is active and the event accepts claims, then take the claim slot.
    Validate,
    /// Evaluate the snapshot's conditions.
    CheckConditions,
    /// Reserve stock of every limited reward, all or nothing.
    Allocate,
    /// Reserved: move on to granting.
    StartGranting,
    /// Grant reward `index`.
    Grant(usize),
    /// Every reward is granted or failed for good: conclude.
    ConcludeGrants,
    /// A grant failed: choose the compensation path.
    StartCompensation,
    /// Revoke the granted reward `index` (newest first).
    Revoke(usize),
    /// Every grant is revoked.
    RewardsCompensated,
    /// Return the reserved stock.
    StartInventoryCompensation,
    /// Return every reservation still held, in reverse order.
    ReturnStock,
    /// Everything is undone.
    RollBack,
    /// Final: nothing to do.
    Done,
}

/// What the saga does next with `request`.
pub fn next_step(request: &ClaimRequest) -> NextStep {
    use ClaimStatus as S;
    let rewards = &request.rewards_to_process;
    match request.status {
        S::PendingValidation => NextStep::Validate,
        S::PendingConditionCheck => NextStep::CheckConditions,
        S::PendingInventoryAllocation => NextStep::Allocate,
        S::InventoryAllocated => NextStep::StartGranting,
        S::PendingRewardGrant => match rewards.iter().position(|r| r.grant_status == GrantStatus::PendingGrant) {
            Some(index) => NextStep::Grant(index),
            None => NextStep::ConcludeGrants,
        },
        S::RewardGrantFailedExternal | S::RewardGrantFailedUserInactive => NextStep::StartCompensation,
        S::PendingCompensationReward => match request.revoke_target() {
            Some(index) => NextStep::Revoke(index),
            None => NextStep::RewardsCompensated,
        },
        S::CompensatedReward => NextStep::StartInventoryCompensation,
        S::PendingCompensationInventory => NextStep::ReturnStock,
        S::CompensatedInventory => NextStep::RollBack,
        _ => NextStep::Done,
    }
}

/// Outcome of the validation step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    Passed,
    UserInactive,
    EventNotActive,
    /// The claim slot is held by another request of the same player (found by the store).
    AlreadyClaimed,
}

/// Outcome of an external call (condition facts, grant, revoke).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    Succeeded,
    /// Timeout, connection error, 5xx: worth another attempt.
    Transient(String),
    /// 4xx or a business refusal: another attempt would fail the same way.
    Permanent(String),
}

/// Retry policy of transient failures: exponential backoff with jitter, bounded attempts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: TimeDelta,
    pub max_delay: TimeDelta,
}

impl RetryPolicy {
    /// Delay before attempt `attempt + 1` (1-based `attempt` just failed); `jitter` in [0, 1)
    /// spreads retries of many requests over the second half of the backoff window.
    pub fn delay(&self, attempt: u32, jitter: f64) -> TimeDelta {
        let exponent = attempt.saturating_sub(1).min(20);
        let full =
            self.base_delay.num_milliseconds().saturating_mul(1_i64 << exponent).min(self.max_delay.num_milliseconds());
        let jittered = (full as f64) * (0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        TimeDelta::milliseconds(jittered as i64)
    }

    /// Whether another attempt is allowed after `attempts` attempts.
    pub fn allows_another(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }
}

const MANUAL_NOTE: &str = "compensation kept failing; an admin must retry or resolve";

/// A worker's exclusive hold on driving a claim, taken at `from` until `until`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lease<'a> {
    pub owner: &'a str,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl ClaimRequest {
    /// Whether `lease` may be taken: the claim is not final, nobody holds a live lease and its
    /// next attempt is due.
    pub fn can_lease(&self, lease: &Lease<'_>) -> bool {
        let lease_free = self.lease_expires_at.is_none_or(|expires| expires <= lease.from);
        let due = self.next_attempt_at.is_none_or(|at| at <= lease.from);
        !self.status.is_final() && lease_free && due
    }

    /// The request with `lease` taken: attempted now, one version on.
    pub fn take_lease(&mut self, lease: &Lease<'_>) {
        self.lease_owner = Some(lease.owner.to_owned());
        self.lease_expires_at = Some(lease.until);
        self.next_attempt_at = None;
        self.version += 1;
    }

    /// A new request in `PENDING_VALIDATION` for the event's only tier, once ever.
    pub fn new(id: String, request_id: String, user_id: String, event: &Event, now: DateTime<Utc>) -> Self {
        Self::for_target(id, request_id, user_id, event, &ClaimTarget::default(), now)
    }

    /// A new request in `PENDING_VALIDATION` for `target` (a tier, a period) of `event`.
    pub fn for_target(
        id: String,
        request_id: String,
        user_id: String,
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

    fn moved(&self, status: ClaimStatus, step: SagaStep, at: DateTime<Utc>, note: Option<String>) -> Self {
        let mut next = self.clone();
        next.status = status;
        next.current_saga_step = step;
        next.updated_at = at;
        next.next_attempt_at = None;
        next.history.push(HistoryEntry { status, step, at, note });
        next
    }

    /// A final failure: the reason is kept and the claim slot released, so the player can try
    /// again later.
    fn failed(&self, status: ClaimStatus, reason: String, at: DateTime<Utc>) -> Self {
        let mut next = self.moved(status, SagaStep::Completed, at, Some(reason.clone()));
        next.failure_reason = Some(reason);
        next.claim_slot = None;
        next
    }

    /// The request rescheduled after a transient failure.
    fn rescheduled(&self, reason: String, at: DateTime<Utc>, retry_at: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        next.retry_count = next.retry_count.saturating_add(1);
        next.updated_at = at;
        next.next_attempt_at = Some(retry_at);
        next.failure_reason = Some(reason);
        next
    }

    pub fn after_validation(&self, outcome: Validation, at: DateTime<Utc>) -> Self {
        match outcome {
            Validation::Passed => {
                let mut next = self.moved(ClaimStatus::PendingConditionCheck, SagaStep::CheckConditions, at, None);
                next.claim_slot = Some(self.slot());
                next
            }
            Validation::UserInactive => {
                self.failed(ClaimStatus::ValidationFailedUserInactive, "the player's account is inactive".into(), at)
            }
            Validation::EventNotActive => self.failed(
                ClaimStatus::ValidationFailedEventNotActive,
                "the event is not active or outside its dates".into(),
                at,
            ),
            Validation::AlreadyClaimed => self.failed(
                ClaimStatus::ValidationFailedAlreadyClaimed,
                "the player already holds a claim on this event".into(),
                at,
            ),
        }
    }

    /// After evaluating conditions: `met` is the verdict when the facts could be read.
    pub fn after_condition_check(
        &self,
        outcome: Result<bool, CallOutcome>,
        policy: &RetryPolicy,
        at: DateTime<Utc>,
        jitter: f64,
    ) -> Self {
        match outcome {
            Ok(true) => self.moved(ClaimStatus::PendingInventoryAllocation, SagaStep::AllocateInventory, at, None),
            Ok(false) => self.failed(ClaimStatus::ConditionNotMet, "the event's conditions are not met".into(), at),
            Err(CallOutcome::Transient(reason)) if policy.allows_another(self.retry_count + 1) => {
                let retry_at = at + policy.delay(self.retry_count + 1, jitter);
                self.rescheduled(reason, at, retry_at)
            }
            Err(CallOutcome::Transient(reason) | CallOutcome::Permanent(reason)) => {
                self.failed(ClaimStatus::ConditionCheckFailedExternal, reason, at)
            }
            Err(CallOutcome::Succeeded) => self.clone(),
        }
    }

    /// Stock reserved for every limited reward (committed together with this document); each
    /// reservation is named `{allocation}:{rewardId}`.
    pub fn after_allocation(&self, allocation: &str, at: DateTime<Utc>) -> Self {
        let mut next = self.moved(ClaimStatus::InventoryAllocated, SagaStep::AllocateInventory, at, None);
        for reward in &mut next.rewards_to_process {
            reward.stock_reserved = reward.reservation().is_some();
            if reward.stock_reserved {
                reward.stock_reservation_id = Some(format!("{allocation}:{}", reward.reward_id()));
            }
        }
        next
    }

    /// [`Self::after_allocation`] with the reservation of every limited reward.
    pub fn allocate(&self, allocation: &str, at: DateTime<Utc>) -> Transition {
        let next = self.after_allocation(allocation, at);
        let stock = next
            .rewards_to_process
            .iter()
            .filter_map(|reward| {
                let units = reward.reservation()?;
                Some(StockChange::reserve(reward.reward_id(), units, reward.stock_reservation_id.as_deref()))
            })
            .collect();
        Transition { next, stock }
    }

    /// [`Self::start_compensation`] with the stock a partial grant returns at once.
    pub fn begin_compensation(&self, at: DateTime<Utc>) -> Transition {
        self.ending_partially(self.start_compensation(at))
    }

    /// [`Self::after_stock_returned`] with the return of every held reservation.
    pub fn return_held_stock(&self, at: DateTime<Utc>) -> Transition {
        Transition { next: self.after_stock_returned(at), stock: self.returns_of(&self.held_reservations()) }
    }

    /// [`Self::admin_resolve`] with the stock a resolution that keeps the grants returns.
    pub fn resolve_by_admin(&self, rolled_back: bool, at: DateTime<Utc>, note: &str) -> Option<Transition> {
        Some(self.ending_partially(self.admin_resolve(rolled_back, at, note)?))
    }

    /// `next` with the stock it returns when it ends the claim partially granted: that of
    /// every reward reserved and not granted.
    fn ending_partially(&self, next: ClaimRequest) -> Transition {
        let stock = if next.status == ClaimStatus::RewardPartiallyGranted {
            self.returns_of(&self.partial_returns())
        } else {
            Vec::new()
        };
        Transition { next, stock }
    }

    /// Returns of the rewards at `indices` that hold a reservation.
    fn returns_of(&self, indices: &[usize]) -> Vec<StockChange> {
        indices
            .iter()
            .filter_map(|&i| self.rewards_to_process.get(i))
            .filter(|reward| reward.stock_reserved)
            .filter_map(|reward| reward.reservation().map(|units| StockChange::give_back(reward.reward_id(), units)))
            .collect()
    }

    /// Whether the claim is judged by some condition: the event's or its tier's.
    pub fn has_conditions(&self) -> bool {
        self.event_snapshot.conditions.is_some()
            || self.event_snapshot.tier.as_ref().is_some_and(|tier| tier.conditions.is_some())
    }

    /// The same state, to be attempted again from `until`: its last commit could not be made.
    pub fn postponed(&self, until: DateTime<Utc>) -> Self {
        Self { next_attempt_at: Some(until), ..self.clone() }
    }

    /// No stock was reserved: `status` is one of the INVENTORY_ALLOCATION failures.
    pub fn after_failed_allocation(&self, status: ClaimStatus, reason: String, at: DateTime<Utc>) -> Self {
        self.failed(status, reason, at)
    }

    pub fn start_granting(&self, at: DateTime<Utc>) -> Self {
        self.moved(ClaimStatus::PendingRewardGrant, SagaStep::GrantRewards, at, None)
    }

    /// Counts one attempt of an external call for reward `index` and classifies its outcome
    /// under `policy`: done, to be retried (the request is rescheduled), or given up. `None`
    /// when there is no such reward.
    fn attempt(
        &self,
        index: usize,
        outcome: CallOutcome,
        policy: &RetryPolicy,
        at: DateTime<Utc>,
        jitter: f64,
    ) -> Option<(Self, Attempt)> {
        let mut next = self.clone();
        next.updated_at = at;
        let reward = next.rewards_to_process.get_mut(index)?;
        reward.attempt_count = reward.attempt_count.saturating_add(1);
        let attempts = reward.attempt_count;
        let verdict = match outcome {
            CallOutcome::Succeeded => {
                reward.last_failure_reason = None;
                next.next_attempt_at = None;
                Attempt::Succeeded
            }
            CallOutcome::Transient(reason) if policy.allows_another(attempts) => {
                reward.last_failure_reason = Some(reason.clone());
                let retry_at = at + policy.delay(attempts, jitter);
                return Some((next.rescheduled(reason, at, retry_at), Attempt::Retrying));
            }
            CallOutcome::Transient(reason) => {
                reward.last_failure_reason = Some(reason.clone());
                Attempt::GaveUp { reason, transient: true }
            }
            CallOutcome::Permanent(reason) => {
                reward.last_failure_reason = Some(reason.clone());
                Attempt::GaveUp { reason, transient: false }
            }
        };
        Some((next, verdict))
    }

    /// After one grant attempt of reward `index`. A grant that failed without an answer may
    /// have been applied: it is marked uncertain so that a compensation revokes it.
    pub fn after_grant(
        &self,
        index: usize,
        outcome: CallOutcome,
        policy: &RetryPolicy,
        at: DateTime<Utc>,
        jitter: f64,
    ) -> Self {
        let Some((mut next, verdict)) = self.attempt(index, outcome, policy, at, jitter) else {
            return self.clone();
        };
        let reward = &mut next.rewards_to_process[index];
        match verdict {
            Attempt::Succeeded => reward.grant_status = GrantStatus::Success,
            Attempt::Retrying => reward.grant_uncertain = true,
            Attempt::GaveUp { reason, transient } => {
                reward.grant_status = GrantStatus::FailedExternal;
                reward.grant_uncertain |= transient;
                next.failure_reason = Some(reason);
            }
        }
        next
    }

    /// The next grant a compensation must take back, newest first: every grant that may have
    /// been applied (succeeded, or failed without an answer), or only the uncertain failures
    /// when the claim keeps its successful grants.
    pub fn revoke_target(&self) -> Option<usize> {
        self.rewards_to_process.iter().rposition(|r| {
            let uncertain_failure = r.grant_status == GrantStatus::FailedExternal && r.grant_uncertain;
            uncertain_failure || (!self.keep_grants && r.grant_status == GrantStatus::Success)
        })
    }

    /// The player was deactivated before the grants finished.
    pub fn after_user_deactivated(&self, at: DateTime<Utc>) -> Self {
        let mut next = self.moved(
            ClaimStatus::RewardGrantFailedUserInactive,
            SagaStep::GrantRewards,
            at,
            Some("the player's account was deactivated".into()),
        );
        next.failure_reason = Some("the player's account was deactivated before the grant".into());
        for reward in &mut next.rewards_to_process {
            if reward.grant_status == GrantStatus::PendingGrant {
                reward.grant_status = GrantStatus::FailedExternal;
            }
        }
        next
    }

    /// Every reward is granted or failed: success, or the failure that starts compensation.
    pub fn conclude_grants(&self, at: DateTime<Utc>) -> Self {
        if self.rewards_to_process.iter().all(|r| r.grant_status == GrantStatus::Success) {
            let mut next = self.moved(ClaimStatus::SuccessAllGranted, SagaStep::Completed, at, None);
            next.claimed_at = Some(at);
            next.failure_reason = None;
            return next;
        }
        self.moved(ClaimStatus::RewardGrantFailedExternal, SagaStep::GrantRewards, at, self.failure_reason.clone())
    }

    /// After a grant failure: under PARTIAL_ALLOWED, when something was granted, keep it and
    /// return the rest of the stock (the returned set is what `partial_returns` lists);
    /// otherwise revoke everything.
    pub fn start_compensation(&self, at: DateTime<Utc>) -> Self {
        let granted = self.rewards_to_process.iter().any(|r| r.grant_status == GrantStatus::Success);
        let keep_partial = self.status == ClaimStatus::RewardGrantFailedExternal
            && self.event_snapshot.grant_policy == GrantPolicy::PartialAllowed
            && granted;
        let uncertain =
            self.rewards_to_process.iter().any(|r| r.grant_status == GrantStatus::FailedExternal && r.grant_uncertain);
        if keep_partial && !uncertain {
            let mut next = self.moved(ClaimStatus::RewardPartiallyGranted, SagaStep::Completed, at, None);
            next.claimed_at = Some(at);
            for index in self.partial_returns() {
                next.return_stock_of(index, SagaStep::AllocateInventory, at);
            }
            return next;
        }
        let mut next = self.moved(ClaimStatus::PendingCompensationReward, SagaStep::CompensateRewards, at, None);
        next.keep_grants = keep_partial;
        next
    }

    /// Rewards whose stock a partial grant returns: reserved and not granted.
    pub fn partial_returns(&self) -> Vec<usize> {
        (0..self.rewards_to_process.len())
            .rev()
            .filter(|&i| {
                let reward = &self.rewards_to_process[i];
                reward.stock_reserved && reward.grant_status != GrantStatus::Success
            })
            .collect()
    }

    /// After one revoke attempt of reward `index`; a revoke that is given up parks the request
    /// for an admin.
    pub fn after_revoke(
        &self,
        index: usize,
        outcome: CallOutcome,
        policy: &RetryPolicy,
        at: DateTime<Utc>,
        jitter: f64,
    ) -> Self {
        let Some((mut next, verdict)) = self.attempt(index, outcome, policy, at, jitter) else {
            return self.clone();
        };
        match verdict {
            Attempt::Succeeded => {
                let reward = &mut next.rewards_to_process[index];
                reward.grant_status = GrantStatus::Revoked;
                let reward_id = reward.reward_id().to_owned();
                next.compensating_actions_log.push(CompensatingAction {
                    step: "GRANT_REWARDS".into(),
                    action: "REVOKE_GRANT".into(),
                    reward_id,
                    timestamp: at,
                });
                next
            }
            Attempt::Retrying => next,
            Attempt::GaveUp { reason, .. } => {
                next.needs_human(format!("revoking reward {} failed: {reason}", reward_id_of(&next, index)), at)
            }
        }
    }

    /// Parks the request for an admin.
    pub fn needs_human(&self, reason: String, at: DateTime<Utc>) -> Self {
        let step = self.current_saga_step;
        let mut next =
            self.moved(ClaimStatus::CompensationFailedManualInterventionRequired, step, at, Some(MANUAL_NOTE.into()));
        next.failure_reason = Some(reason);
        next
    }

    pub fn rewards_compensated(&self, at: DateTime<Utc>) -> Self {
        self.moved(ClaimStatus::CompensatedReward, SagaStep::CompensateRewards, at, None)
    }

    pub fn start_inventory_compensation(&self, at: DateTime<Utc>) -> Self {
        self.moved(ClaimStatus::PendingCompensationInventory, SagaStep::CompensateInventory, at, None)
    }

    /// Reservations a compensation gives back, newest first: all of them, or those of the
    /// rewards not granted when the claim keeps its successful grants.
    pub fn held_reservations(&self) -> Vec<usize> {
        if self.keep_grants {
            return self.partial_returns();
        }
        (0..self.rewards_to_process.len()).rev().filter(|&i| self.rewards_to_process[i].stock_reserved).collect()
    }

    /// Every held reservation returned (committed together with the stock increments).
    pub fn after_stock_returned(&self, at: DateTime<Utc>) -> Self {
        let mut next = self.moved(ClaimStatus::CompensatedInventory, SagaStep::CompensateInventory, at, None);
        for index in self.held_reservations() {
            next.return_stock_of(index, SagaStep::AllocateInventory, at);
        }
        next
    }

    fn return_stock_of(&mut self, index: usize, step: SagaStep, at: DateTime<Utc>) {
        if let Some(reward) = self.rewards_to_process.get_mut(index) {
            reward.stock_reserved = false;
            let reward_id = reward.reward_id().to_owned();
            self.compensating_actions_log.push(CompensatingAction {
                step: step_name(step).into(),
                action: "INCREMENT_STOCK".into(),
                reward_id,
                timestamp: at,
            });
        }
    }

    /// The end of a compensation: rolled back, or partially granted when the claim keeps its
    /// successful grants.
    pub fn roll_back(&self, at: DateTime<Utc>) -> Self {
        if self.keep_grants {
            let mut next = self.moved(ClaimStatus::RewardPartiallyGranted, SagaStep::Completed, at, None);
            next.claimed_at = Some(at);
            return next;
        }
        let mut next = self.moved(ClaimStatus::FailedRolledBack, SagaStep::Completed, at, None);
        next.claim_slot = None;
        next
    }

    /// An admin's retry of a parked request: the failed compensation starts over with fresh
    /// attempt counts. `None` unless the request is parked.
    pub fn admin_retry(&self, at: DateTime<Utc>, note: &str) -> Option<Self> {
        if self.status != ClaimStatus::CompensationFailedManualInterventionRequired {
            return None;
        }
        let status = match self.current_saga_step {
            SagaStep::CompensateInventory => ClaimStatus::PendingCompensationInventory,
            _ => ClaimStatus::PendingCompensationReward,
        };
        let mut next = self.moved(status, self.current_saga_step, at, Some(note.to_owned()));
        for reward in &mut next.rewards_to_process {
            reward.attempt_count = 0;
        }
        next.retry_count = 0;
        Some(next)
    }

    /// An admin's resolution of a parked request after fixing it by hand: `rolled_back` means
    /// the grants were taken back outside the platform (the stock is then returned here);
    /// otherwise the player keeps what was granted and the rest of the stock is returned.
    pub fn admin_resolve(&self, rolled_back: bool, at: DateTime<Utc>, note: &str) -> Option<Self> {
        if self.status != ClaimStatus::CompensationFailedManualInterventionRequired {
            return None;
        }
        let mut next = self.clone();
        if rolled_back {
            next.keep_grants = false;
            for reward in &mut next.rewards_to_process {
                let uncertain = reward.grant_status == GrantStatus::FailedExternal && reward.grant_uncertain;
                if reward.grant_status == GrantStatus::Success || uncertain {
                    reward.grant_status = GrantStatus::Revoked;
                    let reward_id = reward.reward_id().to_owned();
                    next.compensating_actions_log.push(CompensatingAction {
                        step: "GRANT_REWARDS".into(),
                        action: "MANUAL_REVOKE".into(),
                        reward_id,
                        timestamp: at,
                    });
                }
            }
            return Some(next.moved(
                ClaimStatus::PendingCompensationInventory,
                SagaStep::CompensateInventory,
                at,
                Some(note.to_owned()),
            ));
        }
        let mut next = next.moved(ClaimStatus::RewardPartiallyGranted, SagaStep::Completed, at, Some(note.to_owned()));
        for index in self.partial_returns() {
            next.return_stock_of(index, SagaStep::AllocateInventory, at);
        }
        Some(next)
    }
}

fn reward_id_of(request: &ClaimRequest, index: usize) -> String {
    request.rewards_to_process.get(index).map(|r| r.reward_id().to_owned()).unwrap_or_default()
}

/// The seed's spelling of a step.
pub fn step_name(step: SagaStep) -> &'static str {
    match step {
        SagaStep::ValidateUserAndEvent => "VALIDATE_USER_AND_EVENT",
        SagaStep::CheckConditions => "CHECK_CONDITIONS",
        SagaStep::AllocateInventory => "ALLOCATE_INVENTORY",
        SagaStep::GrantRewards => "GRANT_REWARDS",
        SagaStep::CompensateRewards => "COMPENSATE_REWARDS",
        SagaStep::CompensateInventory => "COMPENSATE_INVENTORY",
        SagaStep::Completed => "COMPLETED",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::event::{EventInput, Provenance};
    use crate::reward::RewardId;
    use proptest::prelude::*;
    use serde_json::json;

    fn event(stocks: &[Option<i64>], policy: GrantPolicy) -> Event {
        let rewards: Vec<_> = stocks
            .iter()
            .map(|stock| {
                json!({ "rewardType": "POINT", "rewardName": "p", "details": { "points": 10 },
                        "quantityPerUser": 1, "totalStock": stock.unwrap_or(-1) })
            })
            .collect();
        let input: EventInput = serde_json::from_value(json!({
            "eventName": "e", "startDate": "2026-01-01T00:00:00Z", "endDate": "2027-01-01T00:00:00Z",
            "rewards": rewards, "grantPolicy": policy,
        }))
        .unwrap();
        let mut n = 0;
        let provenance = Provenance { event_id: "e".repeat(24), created_by: "op".into(), now: Utc::now() };
        input
            .into_event(provenance, || {
                n += 1;
                RewardId::generated(format!("{n:024x}"))
            })
            .unwrap()
    }

    fn policy() -> RetryPolicy {
        RetryPolicy { max_attempts: 3, base_delay: TimeDelta::milliseconds(100), max_delay: TimeDelta::seconds(5) }
    }

    fn request(stocks: &[Option<i64>], policy: GrantPolicy) -> ClaimRequest {
        ClaimRequest::new("r".into(), "req".into(), "u".into(), &event(stocks, policy), Utc::now())
    }

    #[test]
    fn a_lease_is_taken_only_on_a_due_unfinished_claim_nobody_holds() {
        let now = Utc::now();
        let lease = |owner, from| Lease { owner, from, until: from + TimeDelta::seconds(30) };
        let mut claim = request(&[Some(5)], GrantPolicy::AllOrNothing);
        assert!(claim.can_lease(&lease("w1", now)));
        claim.take_lease(&lease("w1", now));
        assert_eq!((claim.lease_owner.as_deref(), claim.version), (Some("w1"), 2));
        assert!(!claim.can_lease(&lease("w2", now + TimeDelta::seconds(29))), "the lease is live");
        assert!(claim.can_lease(&lease("w2", now + TimeDelta::seconds(30))), "the lease ran out");

        claim.lease_expires_at = None;
        claim.next_attempt_at = Some(now + TimeDelta::seconds(5));
        assert!(!claim.can_lease(&lease("w2", now)), "the next attempt is not due");
        claim.next_attempt_at = None;
        claim.status = ClaimStatus::SuccessAllGranted;
        assert!(!claim.can_lease(&lease("w2", now)), "a final claim is never driven again");
    }

    fn outcome(choice: u8) -> CallOutcome {
        match choice % 4 {
            0 | 1 => CallOutcome::Succeeded,
            2 => CallOutcome::Transient("timeout".into()),
            _ => CallOutcome::Permanent("refused".into()),
        }
    }

    /// Drives a request with outcomes drawn from `choices`, as the driver does: each step's
    /// transition is committed whole, its stock changes applied to the rewards' counters. An
    /// admin steps in (retry twice, then resolve) when the saga parks. After every commit,
    /// `totalStock = remainingStock + Σ reserved` for every limited reward. Returns the final
    /// request and the steps taken.
    fn simulate(mut request: ClaimRequest, choices: &[u8]) -> (ClaimRequest, usize) {
        let now = Utc::now();
        let mut draws = choices.iter().copied().cycle();
        let mut admin_retries = 0;
        let mut counters = StockCounters::of(&request);
        for steps in 0..500 {
            let c = draws.next().unwrap_or(0);
            let transition: Transition = match next_step(&request) {
                NextStep::Validate => request
                    .after_validation(
                        [Validation::Passed, Validation::Passed, Validation::UserInactive, Validation::AlreadyClaimed]
                            [usize::from(c % 4)],
                        now,
                    )
                    .into(),
                NextStep::CheckConditions => {
                    let result = match c % 4 {
                        0 | 1 => Ok(true),
                        2 => Ok(false),
                        _ => Err(outcome(c / 4)),
                    };
                    request.after_condition_check(result, &policy(), now, 0.5).into()
                }
                NextStep::Allocate if c % 3 == 0 => request
                    .after_failed_allocation(
                        ClaimStatus::InventoryAllocationFailedOutOfStock,
                        "out of stock".into(),
                        now,
                    )
                    .into(),
                NextStep::Allocate => request.allocate("a1", now),
                NextStep::StartGranting => request.start_granting(now).into(),
                NextStep::Grant(_) if c == 255 => request.after_user_deactivated(now).into(),
                NextStep::Grant(i) => request.after_grant(i, outcome(c), &policy(), now, 0.5).into(),
                NextStep::ConcludeGrants => request.conclude_grants(now).into(),
                NextStep::StartCompensation => request.begin_compensation(now),
                NextStep::Revoke(i) => request.after_revoke(i, outcome(c), &policy(), now, 0.5).into(),
                NextStep::RewardsCompensated => request.rewards_compensated(now).into(),
                NextStep::StartInventoryCompensation => request.start_inventory_compensation(now).into(),
                NextStep::ReturnStock => request.return_held_stock(now),
                NextStep::RollBack => request.roll_back(now).into(),
                NextStep::Done if request.status == ClaimStatus::CompensationFailedManualInterventionRequired => {
                    admin_retries += 1;
                    if admin_retries <= 2 {
                        request.admin_retry(now, "retry").unwrap().into()
                    } else {
                        request.resolve_by_admin(c % 2 == 0, now, "resolved by hand").unwrap()
                    }
                }
                NextStep::Done => return (request, steps),
            };
            counters.commit(&transition);
            request = transition.next;
        }
        (request, 500)
    }

    /// The stock counters of a claim's limited rewards, as a store holds them for it alone.
    struct StockCounters {
        /// `(rewardId, totalStock, remainingStock)`.
        rewards: Vec<(String, i64, i64)>,
    }

    impl StockCounters {
        fn of(request: &ClaimRequest) -> Self {
            let rewards = request
                .rewards_to_process
                .iter()
                .filter_map(|r| {
                    let total = r.reward_definition.reward().stock().total_stock()?;
                    Some((r.reward_id().to_owned(), total, total))
                })
                .collect();
            Self { rewards }
        }

        /// Applies `transition`'s stock changes as a store commits them with its document, and
        /// checks the invariant against the committed document.
        fn commit(&mut self, transition: &Transition) {
            for change in &transition.stock {
                let (_, total, remaining) = self
                    .rewards
                    .iter_mut()
                    .find(|(id, ..)| *id == change.reward_id)
                    .unwrap_or_else(|| panic!("a stock change of an unlimited or unknown reward: {change:?}"));
                *remaining += change.delta;
                assert!((0..=*total).contains(remaining), "{change:?} takes the counter out of 0..=total");
            }
            for (id, total, remaining) in &self.rewards {
                let reward = transition.next.rewards_to_process.iter().find(|r| r.reward_id() == id).unwrap();
                let reserved = if reward.stock_reserved { reward.reservation().unwrap_or(0) } else { 0 };
                assert_eq!(*total, remaining + reserved, "{id} at {}", transition.next.status);
            }
        }
    }

    fn check_invariants(request: &ClaimRequest) {
        use ClaimStatus as S;
        let rewards = &request.rewards_to_process;
        let held = |r: &RewardToProcess| r.stock_reserved;
        match request.status {
            S::SuccessAllGranted => {
                assert!(rewards.iter().all(|r| r.grant_status == GrantStatus::Success));
                assert!(rewards.iter().all(|r| held(r) == r.reservation().is_some()), "success keeps its stock");
                assert!(request.claim_slot.is_some() && request.claimed_at.is_some());
            }
            S::RewardPartiallyGranted => {
                for r in rewards {
                    let kept = r.grant_status == GrantStatus::Success;
                    assert_eq!(held(r), kept && r.reservation().is_some(), "only granted rewards keep stock");
                }
                assert!(request.claim_slot.is_some());
            }
            status => {
                assert!(status.is_final(), "{status} is final");
                assert!(rewards.iter().all(|r| !held(r)), "a failed claim holds no stock: {status}");
                assert!(rewards.iter().all(|r| r.grant_status != GrantStatus::Success), "nothing stays granted");
                assert!(request.claim_slot.is_none(), "a failed claim releases its slot");
                assert!(request.failure_reason.is_some() || status == S::FailedRolledBack);
            }
        }
        assert!(
            rewards.iter().all(|r| !(r.grant_status == GrantStatus::FailedExternal && r.grant_uncertain))
                || request.status == S::RewardPartiallyGranted
                    && request.history.iter().any(|h| h.note.as_deref().is_some_and(|n| n.starts_with("resolved"))),
            "every grant that may have been applied is revoked or kept: {:?}",
            request.status
        );
        let returned = request.compensating_actions_log.iter().filter(|a| a.action == "INCREMENT_STOCK").count();
        let reserved_ever = request.history.iter().any(|h| h.status == S::InventoryAllocated) as usize
            * rewards.iter().filter(|r| r.reservation().is_some()).count();
        let still_held = rewards.iter().filter(|r| held(r)).count();
        assert_eq!(reserved_ever, returned + still_held, "every reservation is either held or returned once");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Every path ends in a final status, and stock and slots are consistent there.
        #[test]
        fn every_path_ends_final_with_consistent_stock(
            stocks in proptest::collection::vec(proptest::option::of(1i64..100), 1..4),
            partial in any::<bool>(),
            choices in proptest::collection::vec(any::<u8>(), 1..64),
        ) {
            let policy = if partial { GrantPolicy::PartialAllowed } else { GrantPolicy::AllOrNothing };
            let (request, steps) = simulate(request(&stocks, policy), &choices);
            prop_assert!(steps < 500, "terminates");
            prop_assert!(request.status.is_final());
            prop_assert_ne!(request.status, ClaimStatus::CompensationFailedManualInterventionRequired);
            check_invariants(&request);
        }
    }

    #[test]
    fn statuses_round_trip_through_the_seed_spelling() {
        for status in ClaimStatus::ALL {
            assert_eq!(status.as_str().parse::<ClaimStatus>().unwrap(), status);
            assert_eq!(serde_json::to_value(status).unwrap(), json!(status.as_str()));
        }
    }

    #[test]
    fn the_happy_path_walks_every_seed_status_in_order() {
        let (request, _) = simulate(request(&[Some(5), None], GrantPolicy::AllOrNothing), &[1]);
        let trail: Vec<&str> = request.history.iter().map(|h| h.status.as_str()).collect();
        assert_eq!(
            trail,
            [
                "PENDING_VALIDATION",
                "PENDING_CONDITION_CHECK",
                "PENDING_INVENTORY_ALLOCATION",
                "INVENTORY_ALLOCATED",
                "PENDING_REWARD_GRANT",
                "SUCCESS_ALL_GRANTED"
            ]
        );
    }

    #[test]
    fn a_failed_grant_is_compensated_in_reverse_order() {
        let now = Utc::now();
        let mut request = request(&[Some(5), Some(5), Some(5)], GrantPolicy::AllOrNothing);
        request =
            request.after_validation(Validation::Passed, now).after_condition_check(Ok(true), &policy(), now, 0.0);
        request = request.after_allocation("a1", now).start_granting(now);
        request = request.after_grant(0, CallOutcome::Succeeded, &policy(), now, 0.0);
        request = request.after_grant(1, CallOutcome::Succeeded, &policy(), now, 0.0);
        request = request.after_grant(2, CallOutcome::Permanent("400".into()), &policy(), now, 0.0);
        assert_eq!(next_step(&request), NextStep::ConcludeGrants);
        request = request.conclude_grants(now);
        assert_eq!(request.status, ClaimStatus::RewardGrantFailedExternal);
        request = request.start_compensation(now);
        assert_eq!(next_step(&request), NextStep::Revoke(1), "newest grant first");
        request = request.after_revoke(1, CallOutcome::Succeeded, &policy(), now, 0.0);
        assert_eq!(next_step(&request), NextStep::Revoke(0));
        request = request.after_revoke(0, CallOutcome::Succeeded, &policy(), now, 0.0);
        request =
            request.rewards_compensated(now).start_inventory_compensation(now).after_stock_returned(now).roll_back(now);
        assert_eq!(request.status, ClaimStatus::FailedRolledBack);
        let log: Vec<(String, String)> =
            request.compensating_actions_log.iter().map(|a| (a.action.clone(), a.reward_id.clone())).collect();
        let id = |i: usize| request.rewards_to_process[i].reward_id().to_owned();
        assert_eq!(
            log,
            vec![
                ("REVOKE_GRANT".into(), id(1)),
                ("REVOKE_GRANT".into(), id(0)),
                ("INCREMENT_STOCK".into(), id(2)),
                ("INCREMENT_STOCK".into(), id(1)),
                ("INCREMENT_STOCK".into(), id(0)),
            ]
        );
    }

    #[test]
    fn a_grant_that_timed_out_is_revoked_even_though_it_never_succeeded() {
        let now = Utc::now();
        let once = RetryPolicy { max_attempts: 1, ..policy() };
        let mut request = request(&[Some(5), Some(5)], GrantPolicy::PartialAllowed);
        request =
            request.after_validation(Validation::Passed, now).after_condition_check(Ok(true), &policy(), now, 0.0);
        request = request.after_allocation("a1", now).start_granting(now);
        request = request.after_grant(0, CallOutcome::Succeeded, &once, now, 0.0);
        request = request.after_grant(1, CallOutcome::Transient("timed out".into()), &once, now, 0.0);
        assert_eq!(request.rewards_to_process[1].grant_status, GrantStatus::FailedExternal);
        request = request.conclude_grants(now).start_compensation(now);
        assert_eq!(request.status, ClaimStatus::PendingCompensationReward, "the uncertain grant is taken back first");
        assert_eq!(next_step(&request), NextStep::Revoke(1), "only the uncertain one: the policy keeps the success");
        request = request.after_revoke(1, CallOutcome::Succeeded, &policy(), now, 0.0);
        assert_eq!(next_step(&request), NextStep::RewardsCompensated);
        request = request.rewards_compensated(now).start_inventory_compensation(now);
        assert_eq!(request.held_reservations(), vec![1]);
        request = request.after_stock_returned(now).roll_back(now);
        assert_eq!(request.status, ClaimStatus::RewardPartiallyGranted);
        assert!(request.claim_slot.is_some());
        assert!(request.rewards_to_process[0].stock_reserved && !request.rewards_to_process[1].stock_reserved);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: TimeDelta::milliseconds(100),
            max_delay: TimeDelta::seconds(1),
        };
        assert_eq!(p.delay(1, 1.0), TimeDelta::milliseconds(100));
        assert_eq!(p.delay(3, 1.0), TimeDelta::milliseconds(400));
        assert_eq!(p.delay(9, 1.0), TimeDelta::seconds(1));
        assert_eq!(p.delay(3, 0.0), TimeDelta::milliseconds(200));
    }
}
