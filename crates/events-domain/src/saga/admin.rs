//! What an admin may do with a request parked in
//! `COMPENSATION_FAILED_MANUAL_INTERVENTION_REQUIRED`: retry its compensation, or resolve it
//! after fixing it by hand.

use chrono::{DateTime, Utc};

use super::document::{ClaimRequest, CompensatingAction, CompensationKind};
use super::status::{ClaimStatus, GrantStatus, SagaStep};
use super::transition::Transition;

impl ClaimRequest {
    /// [`Self::admin_resolve`] with the stock a resolution that keeps the grants returns.
    pub fn resolve_by_admin(&self, rolled_back: bool, at: DateTime<Utc>, note: &str) -> Option<Transition> {
        Some(self.ending_partially(self.admin_resolve(rolled_back, at, note)?))
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
                        step: SagaStep::GrantRewards,
                        action: CompensationKind::ManualRevoke,
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
