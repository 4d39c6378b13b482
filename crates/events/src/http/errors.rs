//! How the events service's failures read over HTTP: each use case's error enum mapped once to
//! its status and problem-details code.

use bestow_core::ApiError;

use crate::audiences::facts::GatherError;
use crate::audiences::{AudienceError, UploadError};
use crate::catalog::CatalogError;
use crate::claims::ClaimError;
use crate::claims::driver::DriveError;
use crate::conditions::activities::{ActivityError, FactError};
use crate::domain::event::RewardRefusal;
use crate::domain::validation::FieldError;
use crate::event_screen::ScreenError;
use crate::service_keys::ServiceKeyError;

/// Domain field errors as the problem's field violations.
fn invalid(errors: Vec<FieldError>) -> ApiError {
    ApiError::Validation(
        errors.into_iter().map(|e| bestow_core::FieldViolation::new(e.pointer, e.code, e.message)).collect(),
    )
}

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
            CatalogError::UnknownAudience(_) => ApiError::conflict("AUDIENCE_NOT_FOUND", detail),
            CatalogError::Audience(facts) => facts.into(),
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
            ClaimError::Audience(facts) => facts.into(),
            ClaimError::Drive(DriveError::Store(store)) | ClaimError::Store(store) => store.into(),
            ClaimError::Drive(DriveError::Directory(unavailable)) => ApiError::Unavailable(unavailable.to_string()),
            ClaimError::Drive(error @ DriveError::NoSuchReward(_)) => ApiError::internal(error),
        }
    }
}

impl From<ServiceKeyError> for ApiError {
    fn from(error: ServiceKeyError) -> Self {
        match error {
            ServiceKeyError::Invalid(errors) => invalid(errors),
            ServiceKeyError::NotFound => ApiError::not_found("SERVICE_KEY_NOT_FOUND", error.to_string()),
            ServiceKeyError::Refused => ApiError::Unauthorized("the API key is invalid or revoked"),
            ServiceKeyError::ScopeMissing => ApiError::Forbidden,
            ServiceKeyError::Store(store) => store.into(),
        }
    }
}

impl From<ActivityError> for ApiError {
    fn from(error: ActivityError) -> Self {
        match error {
            ActivityError::Invalid(errors) => invalid(errors),
            ActivityError::Store(store) => store.into(),
        }
    }
}

/// The player's facts are the studio's or our store's: unreadable now, perhaps not later.
impl From<FactError> for ApiError {
    fn from(error: FactError) -> Self {
        ApiError::Unavailable(error.to_string())
    }
}

/// An audience's facts: the fact provider's, the accounts' or our store's, unreadable now.
impl From<GatherError> for ApiError {
    fn from(error: GatherError) -> Self {
        match error {
            GatherError::Facts(facts) => facts.into(),
            GatherError::Accounts(unavailable) => ApiError::Unavailable(unavailable.to_string()),
            GatherError::Store(store) => store.into(),
        }
    }
}

impl From<AudienceError> for ApiError {
    fn from(error: AudienceError) -> Self {
        let detail = error.to_string();
        match error {
            AudienceError::NotFound => ApiError::not_found("AUDIENCE_NOT_FOUND", detail),
            AudienceError::Invalid(errors) => invalid(errors),
            AudienceError::Stale => ApiError::PreconditionFailed,
            AudienceError::ChangedMeanwhile => ApiError::conflict("CONCURRENT_UPDATE", detail),
            AudienceError::InUse(_) => ApiError::conflict("AUDIENCE_IN_USE", detail),
            AudienceError::NotAList => ApiError::conflict("AUDIENCE_NOT_A_LIST", detail),
            AudienceError::NotARule => ApiError::conflict("AUDIENCE_NOT_A_RULE", detail),
            AudienceError::Reference(_) => ApiError::conflict("AUDIENCE_REFERENCE_INVALID", detail),
            AudienceError::TooManyProperties(_) => ApiError::conflict("TOO_MANY_PROPERTIES", detail),
            AudienceError::Upload(UploadError::BadLine { line, message }) => {
                ApiError::Validation(vec![bestow_core::FieldViolation::new(
                    format!("line:{line}"),
                    "invalid",
                    format!("line {line}: {message}"),
                )])
            }
            AudienceError::Upload(UploadError::TooManyLines { line }) => {
                ApiError::Validation(vec![bestow_core::FieldViolation::new(
                    format!("line:{line}"),
                    "too_many_lines",
                    detail,
                )])
            }
            AudienceError::Upload(UploadError::Body(_)) => {
                ApiError::BadRequest { code: "BODY_UNREADABLE", detail: "the request body could not be read".into() }
            }
            AudienceError::Facts(facts) => facts.into(),
            AudienceError::Store(store) => store.into(),
        }
    }
}

impl From<ScreenError> for ApiError {
    fn from(error: ScreenError) -> Self {
        match error {
            ScreenError::Catalog(catalog) => catalog.into(),
            ScreenError::Facts(facts) => facts.into(),
            ScreenError::Store(store) => store.into(),
            ScreenError::Task(task) => ApiError::internal(task),
        }
    }
}
