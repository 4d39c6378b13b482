//! Where a claim stands: `status`, `currentSagaStep` and each reward's `grantStatus`, spelled
//! as the seed spells them, and `failureCode`, why it failed as a stable code.

use serde::{Deserialize, Serialize};

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

impl SagaStep {
    pub const ALL: [SagaStep; 7] = [
        Self::ValidateUserAndEvent,
        Self::CheckConditions,
        Self::AllocateInventory,
        Self::GrantRewards,
        Self::CompensateRewards,
        Self::CompensateInventory,
        Self::Completed,
    ];

    /// The seed's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidateUserAndEvent => "VALIDATE_USER_AND_EVENT",
            Self::CheckConditions => "CHECK_CONDITIONS",
            Self::AllocateInventory => "ALLOCATE_INVENTORY",
            Self::GrantRewards => "GRANT_REWARDS",
            Self::CompensateRewards => "COMPENSATE_REWARDS",
            Self::CompensateInventory => "COMPENSATE_INVENTORY",
            Self::Completed => "COMPLETED",
        }
    }
}

/// `failureCode`: why a claim failed, or why its last attempt did, as a stable code kept beside
/// the prose `failureReason` (which may name rewards and quote other systems). Set and cleared
/// together with `failureReason`; the event dashboard groups failed claims by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureCode {
    /// The player's account was inactive when the claim was validated.
    UserInactive,
    /// The event did not accept claims: not active, or outside its dates.
    EventNotActive,
    /// The player already held the claim the request was for.
    AlreadyClaimed,
    /// The player's facts did not meet the conditions.
    ConditionNotMet,
    /// The facts the conditions need could not be read.
    ConditionCheckFailedExternal,
    /// Too little stock was left for the claim.
    OutOfStock,
    /// The reservation lost to concurrent claims.
    AllocationConflict,
    /// The reservation failed for another reason.
    AllocationError,
    /// The granter refused a reward or gave no answer.
    GrantFailedExternal,
    /// The player's account was deactivated before every reward was granted.
    UserDeactivated,
    /// Taking a grant back failed or gave no answer.
    RevokeFailedExternal,
}

impl FailureCode {
    pub const ALL: [FailureCode; 11] = [
        Self::UserInactive,
        Self::EventNotActive,
        Self::AlreadyClaimed,
        Self::ConditionNotMet,
        Self::ConditionCheckFailedExternal,
        Self::OutOfStock,
        Self::AllocationConflict,
        Self::AllocationError,
        Self::GrantFailedExternal,
        Self::UserDeactivated,
        Self::RevokeFailedExternal,
    ];

    /// The spelling stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserInactive => "USER_INACTIVE",
            Self::EventNotActive => "EVENT_NOT_ACTIVE",
            Self::AlreadyClaimed => "ALREADY_CLAIMED",
            Self::ConditionNotMet => "CONDITION_NOT_MET",
            Self::ConditionCheckFailedExternal => "CONDITION_CHECK_FAILED_EXTERNAL",
            Self::OutOfStock => "OUT_OF_STOCK",
            Self::AllocationConflict => "ALLOCATION_CONFLICT",
            Self::AllocationError => "ALLOCATION_ERROR",
            Self::GrantFailedExternal => "GRANT_FAILED_EXTERNAL",
            Self::UserDeactivated => "USER_DEACTIVATED",
            Self::RevokeFailedExternal => "REVOKE_FAILED_EXTERNAL",
        }
    }

    /// How an operator reads it, e.g. on the event dashboard.
    pub fn label(self) -> &'static str {
        match self {
            Self::UserInactive => "Player inactive",
            Self::EventNotActive => "Event not accepting claims",
            Self::AlreadyClaimed => "Already claimed",
            Self::ConditionNotMet => "Conditions not met",
            Self::ConditionCheckFailedExternal => "Conditions could not be checked",
            Self::OutOfStock => "Out of stock",
            Self::AllocationConflict => "Stock reservation conflict",
            Self::AllocationError => "Stock reservation error",
            Self::GrantFailedExternal => "Grant failed",
            Self::UserDeactivated => "Player deactivated during the grant",
            Self::RevokeFailedExternal => "Revoke failed",
        }
    }

    /// The code of a failed stock reservation that ended the claim in `status`.
    pub fn of_failed_allocation(status: ClaimStatus) -> Self {
        match status {
            ClaimStatus::InventoryAllocationFailedOutOfStock => Self::OutOfStock,
            ClaimStatus::InventoryAllocationFailedConcurrency => Self::AllocationConflict,
            _ => Self::AllocationError,
        }
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FailureCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|code| code.as_str() == s).ok_or_else(|| format!("unknown failure code `{s}`"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_round_trip_through_the_seed_spelling() {
        for status in ClaimStatus::ALL {
            assert_eq!(status.as_str().parse::<ClaimStatus>().unwrap(), status);
            assert_eq!(serde_json::to_value(status).unwrap(), json!(status.as_str()));
        }
    }

    #[test]
    fn failure_codes_are_written_in_screaming_snake_case_and_read_back() {
        let spelled: Vec<&str> = FailureCode::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(
            spelled,
            [
                "USER_INACTIVE",
                "EVENT_NOT_ACTIVE",
                "ALREADY_CLAIMED",
                "CONDITION_NOT_MET",
                "CONDITION_CHECK_FAILED_EXTERNAL",
                "OUT_OF_STOCK",
                "ALLOCATION_CONFLICT",
                "ALLOCATION_ERROR",
                "GRANT_FAILED_EXTERNAL",
                "USER_DEACTIVATED",
                "REVOKE_FAILED_EXTERNAL"
            ]
        );
        for code in FailureCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
            assert_eq!(serde_json::from_value::<FailureCode>(json!(code.as_str())).unwrap(), code);
            assert_eq!(code.as_str().parse::<FailureCode>().unwrap(), code);
            assert!(!code.label().is_empty());
        }
        let labels: std::collections::HashSet<_> = FailureCode::ALL.iter().map(|code| code.label()).collect();
        assert_eq!(labels.len(), FailureCode::ALL.len(), "each code reads differently");
    }

    #[test]
    fn steps_are_written_in_the_seed_spelling() {
        for step in SagaStep::ALL {
            assert_eq!(serde_json::to_value(step).unwrap(), json!(step.as_str()));
            assert_eq!(serde_json::from_value::<SagaStep>(json!(step.as_str())).unwrap(), step);
        }
        assert_eq!(SagaStep::AllocateInventory.as_str(), "ALLOCATE_INVENTORY");
        assert_eq!(SagaStep::GrantRewards.as_str(), "GRANT_REWARDS");
    }
}
