//! The state machine: [`next_step`] says what the driver must do with a request, and the
//! `ClaimRequest` steps apply each outcome, returning the next document (or, for the steps that
//! move stock, the [`Transition`] that commits with it).

use chrono::{DateTime, Utc};

use super::document::{ClaimRequest, CompensatingAction, CompensationKind, HistoryEntry};
use super::retry::{CallOutcome, RetryPolicy};
use super::status::{ClaimStatus, FailureCode, GrantStatus, SagaStep};
use super::transition::{StockChange, Transition};
use crate::event::GrantPolicy;

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

const MANUAL_NOTE: &str = "compensation kept failing; an admin must retry or resolve";

impl ClaimRequest {
    pub(super) fn moved(&self, status: ClaimStatus, step: SagaStep, at: DateTime<Utc>, note: Option<String>) -> Self {
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
    fn failed(&self, status: ClaimStatus, code: FailureCode, reason: String, at: DateTime<Utc>) -> Self {
        let mut next = self.moved(status, SagaStep::Completed, at, Some(reason.clone()));
        next.record_failure(code, reason);
        next.claim_slot = None;
        next
    }

    /// The request rescheduled after a transient failure.
    fn rescheduled(&self, code: FailureCode, reason: String, at: DateTime<Utc>, retry_at: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        next.retry_count = next.retry_count.saturating_add(1);
        next.updated_at = at;
        next.next_attempt_at = Some(retry_at);
        next.record_failure(code, reason);
        next
    }

    /// Records why the claim failed: the prose and its code, always together.
    fn record_failure(&mut self, code: FailureCode, reason: String) {
        self.failure_reason = Some(reason);
        self.failure_code = Some(code);
    }

    pub fn after_validation(&self, outcome: Validation, at: DateTime<Utc>) -> Self {
        match outcome {
            Validation::Passed => {
                let mut next = self.moved(ClaimStatus::PendingConditionCheck, SagaStep::CheckConditions, at, None);
                next.claim_slot = Some(self.slot());
                next
            }
            Validation::UserInactive => self.failed(
                ClaimStatus::ValidationFailedUserInactive,
                FailureCode::UserInactive,
                "the player's account is inactive".into(),
                at,
            ),
            Validation::EventNotActive => self.failed(
                ClaimStatus::ValidationFailedEventNotActive,
                FailureCode::EventNotActive,
                "the event is not active or outside its dates".into(),
                at,
            ),
            Validation::AlreadyClaimed => self.failed(
                ClaimStatus::ValidationFailedAlreadyClaimed,
                FailureCode::AlreadyClaimed,
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
            Ok(false) => self.failed(
                ClaimStatus::ConditionNotMet,
                FailureCode::ConditionNotMet,
                "the event's conditions are not met".into(),
                at,
            ),
            Err(CallOutcome::Transient(reason)) if policy.allows_another(self.retry_count + 1) => {
                let retry_at = at + policy.delay(self.retry_count + 1, jitter);
                self.rescheduled(FailureCode::ConditionCheckFailedExternal, reason, at, retry_at)
            }
            Err(CallOutcome::Transient(reason) | CallOutcome::Permanent(reason)) => self.failed(
                ClaimStatus::ConditionCheckFailedExternal,
                FailureCode::ConditionCheckFailedExternal,
                reason,
                at,
            ),
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

    /// `next` with the stock it returns when it ends the claim partially granted: that of
    /// every reward reserved and not granted.
    pub(super) fn ending_partially(&self, next: ClaimRequest) -> Transition {
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

    /// The same state, to be attempted again from `until`: its last commit could not be made.
    pub fn postponed(&self, until: DateTime<Utc>) -> Self {
        Self { next_attempt_at: Some(until), ..self.clone() }
    }

    /// No stock was reserved: `status` is one of the INVENTORY_ALLOCATION failures.
    pub fn after_failed_allocation(&self, status: ClaimStatus, reason: String, at: DateTime<Utc>) -> Self {
        self.failed(status, FailureCode::of_failed_allocation(status), reason, at)
    }

    pub fn start_granting(&self, at: DateTime<Utc>) -> Self {
        self.moved(ClaimStatus::PendingRewardGrant, SagaStep::GrantRewards, at, None)
    }

    /// Counts one attempt of an external call for reward `index` and classifies its outcome
    /// under `policy`: done, to be retried (the request is rescheduled, recording `failing`),
    /// or given up. `None` when there is no such reward.
    fn attempt(
        &self,
        index: usize,
        failing: FailureCode,
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
                return Some((next.rescheduled(failing, reason, at, retry_at), Attempt::Retrying));
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
        let Some((mut next, verdict)) =
            self.attempt(index, FailureCode::GrantFailedExternal, outcome, policy, at, jitter)
        else {
            return self.clone();
        };
        let reward = &mut next.rewards_to_process[index];
        match verdict {
            Attempt::Succeeded => reward.grant_status = GrantStatus::Success,
            Attempt::Retrying => reward.grant_uncertain = true,
            Attempt::GaveUp { reason, transient } => {
                reward.grant_status = GrantStatus::FailedExternal;
                reward.grant_uncertain |= transient;
                next.record_failure(FailureCode::GrantFailedExternal, reason);
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
        next.record_failure(
            FailureCode::UserDeactivated,
            "the player's account was deactivated before the grant".into(),
        );
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
            next.failure_code = None;
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
        let Some((mut next, verdict)) =
            self.attempt(index, FailureCode::RevokeFailedExternal, outcome, policy, at, jitter)
        else {
            return self.clone();
        };
        match verdict {
            Attempt::Succeeded => {
                let reward = &mut next.rewards_to_process[index];
                reward.grant_status = GrantStatus::Revoked;
                let reward_id = reward.reward_id().to_owned();
                next.compensating_actions_log.push(CompensatingAction {
                    step: SagaStep::GrantRewards,
                    action: CompensationKind::RevokeGrant,
                    reward_id,
                    timestamp: at,
                });
                next
            }
            Attempt::Retrying => next,
            Attempt::GaveUp { reason, .. } => {
                let reason = format!("revoking reward {} failed: {reason}", reward_id_of(&next, index));
                next.needs_human(FailureCode::RevokeFailedExternal, reason, at)
            }
        }
    }

    /// Parks the request for an admin, recording why.
    pub fn needs_human(&self, code: FailureCode, reason: String, at: DateTime<Utc>) -> Self {
        let step = self.current_saga_step;
        let mut next =
            self.moved(ClaimStatus::CompensationFailedManualInterventionRequired, step, at, Some(MANUAL_NOTE.into()));
        next.record_failure(code, reason);
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

    pub(super) fn return_stock_of(&mut self, index: usize, step: SagaStep, at: DateTime<Utc>) {
        if let Some(reward) = self.rewards_to_process.get_mut(index) {
            reward.stock_reserved = false;
            let reward_id = reward.reward_id().to_owned();
            self.compensating_actions_log.push(CompensatingAction {
                step,
                action: CompensationKind::IncrementStock,
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
}

fn reward_id_of(request: &ClaimRequest, index: usize) -> String {
    request.rewards_to_process.get(index).map(|r| r.reward_id().to_owned()).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::saga::RewardToProcess;
    use crate::saga::test_support::{policy, request};
    use proptest::prelude::*;

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
            let next = &transition.next;
            assert_eq!(next.failure_code.is_some(), next.failure_reason.is_some(), "a reason has a code: {next:?}");
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
        let returned =
            request.compensating_actions_log.iter().filter(|a| a.action.as_str() == "INCREMENT_STOCK").count();
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
    fn each_failure_records_its_code_beside_its_reason() {
        let now = Utc::now();
        let fresh = || request(&[Some(5), Some(5)], GrantPolicy::AllOrNothing);
        let once = RetryPolicy { max_attempts: 1, ..policy() };
        let recorded = |request: &ClaimRequest| {
            assert!(request.failure_reason.is_some(), "{:?} records a reason", request.status);
            (request.status, request.failure_code)
        };
        let checked = |outcome| {
            fresh().after_validation(Validation::Passed, now).after_condition_check(outcome, &policy(), now, 0.0)
        };
        let granting = || checked(Ok(true)).after_allocation("a1", now).start_granting(now);

        use ClaimStatus as S;
        use FailureCode as F;
        for (validation, status, code) in [
            (Validation::UserInactive, S::ValidationFailedUserInactive, F::UserInactive),
            (Validation::EventNotActive, S::ValidationFailedEventNotActive, F::EventNotActive),
            (Validation::AlreadyClaimed, S::ValidationFailedAlreadyClaimed, F::AlreadyClaimed),
        ] {
            assert_eq!(recorded(&fresh().after_validation(validation, now)), (status, Some(code)));
        }
        assert_eq!(recorded(&checked(Ok(false))), (S::ConditionNotMet, Some(F::ConditionNotMet)));
        let unreadable = checked(Err(CallOutcome::Permanent("facts refused".into())));
        assert_eq!(recorded(&unreadable), (S::ConditionCheckFailedExternal, Some(F::ConditionCheckFailedExternal)));
        let retrying = checked(Err(CallOutcome::Transient("facts timed out".into())));
        assert_eq!(recorded(&retrying), (S::PendingConditionCheck, Some(F::ConditionCheckFailedExternal)));
        for (status, code) in [
            (S::InventoryAllocationFailedOutOfStock, F::OutOfStock),
            (S::InventoryAllocationFailedConcurrency, F::AllocationConflict),
            (S::InventoryAllocationError, F::AllocationError),
        ] {
            let refused = checked(Ok(true)).after_failed_allocation(status, "refused".into(), now);
            assert_eq!(recorded(&refused), (status, Some(code)));
        }

        let retrying = granting().after_grant(0, CallOutcome::Transient("503".into()), &policy(), now, 0.0);
        assert_eq!(recorded(&retrying), (S::PendingRewardGrant, Some(F::GrantFailedExternal)));
        let recovered = retrying
            .after_grant(0, CallOutcome::Succeeded, &policy(), now, 0.0)
            .after_grant(1, CallOutcome::Succeeded, &policy(), now, 0.0)
            .conclude_grants(now);
        assert_eq!(
            (recovered.status, recovered.failure_reason, recovered.failure_code),
            (S::SuccessAllGranted, None, None)
        );
        let refused = granting().after_grant(0, CallOutcome::Permanent("400".into()), &policy(), now, 0.0);
        assert_eq!(
            recorded(&refused.conclude_grants(now)),
            (S::RewardGrantFailedExternal, Some(F::GrantFailedExternal))
        );
        let deactivated = granting().after_user_deactivated(now);
        assert_eq!(recorded(&deactivated), (S::RewardGrantFailedUserInactive, Some(F::UserDeactivated)));

        let compensating = granting()
            .after_grant(0, CallOutcome::Succeeded, &policy(), now, 0.0)
            .after_grant(1, CallOutcome::Permanent("400".into()), &policy(), now, 0.0)
            .conclude_grants(now)
            .start_compensation(now);
        let retrying = compensating.after_revoke(0, CallOutcome::Transient("timeout".into()), &policy(), now, 0.0);
        assert_eq!(recorded(&retrying), (S::PendingCompensationReward, Some(F::RevokeFailedExternal)));
        let parked = compensating.after_revoke(0, CallOutcome::Permanent("gone".into()), &once, now, 0.0);
        assert_eq!(recorded(&parked), (S::CompensationFailedManualInterventionRequired, Some(F::RevokeFailedExternal)));
        let resolved = parked.resolve_by_admin(true, now, "taken back by hand").unwrap().next;
        assert_eq!(resolved.failure_code, Some(F::RevokeFailedExternal), "an admin's resolution keeps the code");
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
        let log: Vec<(String, String)> = request
            .compensating_actions_log
            .iter()
            .map(|a| (a.action.as_str().to_owned(), a.reward_id.clone()))
            .collect();
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
}
