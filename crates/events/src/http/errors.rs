//! How the events service's failures read over HTTP: each use case's error enum mapped once to
//! its status and problem-details code.

use bestow_core::ApiError;

use crate::catalog::{CatalogError, invalid};
use crate::claims::ClaimError;
use crate::claims::driver::DriveError;
use crate::domain::event::RewardRefusal;

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        let detail = error.to_string();
        match error {
            CatalogError::EventNotFound => ApiError::not_found("EVENT_NOT_FOUND", detail),
            CatalogError::RewardNotFound => ApiError::not_found("REWARD_NOT_FOUND", detail),
            CatalogError::Invalid(errors) => invalid(errors),
            CatalogError::Stale => ApiError::PreconditionFailed,
            CatalogError::ChangedMeanwhile => ApiError::conflict("CONCURRENT_UPDATE", detail),
            CatalogError::NotEditable(_) => ApiError::conflict("EVENT_NOT_EDITABLE", detail),
            CatalogError::Transition(refusal) => ApiError::conflict(refusal.code(), detail),
            CatalogError::NotDeletable(_) => ApiError::conflict("EVENT_NOT_DELETABLE", detail),
            CatalogError::StockUnlimited => ApiError::conflict("STOCK_UNLIMITED", detail),
            CatalogError::Reward(RewardRefusal::Full) => ApiError::conflict("TOO_MANY_REWARDS", detail),
            CatalogError::Reward(RewardRefusal::StockCeiling) => ApiError::conflict("STOCK_CEILING", detail),
            CatalogError::Reward(_) => ApiError::conflict("REWARD_NOT_EDITABLE", detail),
            CatalogError::RewardsLocked(_) => ApiError::conflict("REWARDS_LOCKED", detail),
            CatalogError::Store(store) => store.into(),
        }
    }
}

impl From<ClaimError> for ApiError {
    fn from(error: ClaimError) -> Self {
        let detail = error.to_string();
        match error {
            ClaimError::EventNotFound => ApiError::not_found("EVENT_NOT_FOUND", detail),
            ClaimError::ClaimNotFound => ApiError::not_found("CLAIM_NOT_FOUND", detail),
            ClaimError::TierRequired => ApiError::BadRequest { code: "TIER_REQUIRED", detail },
            ClaimError::TierNotFound => ApiError::not_found("TIER_NOT_FOUND", detail),
            ClaimError::KeyReused => ApiError::Unprocessable { code: "IDEMPOTENCY_KEY_REUSED", detail },
            ClaimError::NotParked => ApiError::conflict("CLAIM_NOT_PARKED", detail),
            ClaimError::ChangedMeanwhile => ApiError::conflict("CLAIM_CHANGED", detail),
            ClaimError::Drive(DriveError::Store(store)) | ClaimError::Store(store) => store.into(),
            ClaimError::Drive(DriveError::Directory(unavailable)) => ApiError::Unavailable(unavailable.to_string()),
            ClaimError::Drive(error @ DriveError::NoSuchReward(_)) => ApiError::internal(error),
        }
    }
}
