//! `GET /api/v1/events/{eventId}/eligibility`: a player's progress towards an event's
//! conditions.

use axum::Json;
use axum::extract::{Path, State};
use bestow_core::ApiError;
use bestow_core::extract::Authenticated;
use bestow_core::identity::Permission;
use bestow_core::ids::UserId;
use bestow_core::json::ValidQuery;
use bestow_core::problem::Problem;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::EventsState;
use crate::claims::claim_target;
use crate::conditions::eligibility::{Eligibility, EligibilityChecker};

/// Whose eligibility, for which tier.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EligibilityQuery {
    /// The tier to preview: required for an event with tiers.
    #[param(max_length = 64)]
    tier_id: Option<String>,
    /// Staff only (OPERATOR, AUDITOR, ADMIN): preview for this player instead of the caller.
    #[param(max_length = 64)]
    user_id: Option<String>,
}

/// The documented bound of both parameters.
const MAX_ID_CHARS: usize = 64;

impl EligibilityQuery {
    /// Refuses what the document refuses: an id longer than [`MAX_ID_CHARS`].
    fn bounded(self) -> Result<Self, ApiError> {
        for (pointer, value) in [("?tierId", &self.tier_id), ("?userId", &self.user_id)] {
            if value.as_ref().is_some_and(|value| value.chars().count() > MAX_ID_CHARS) {
                return Err(ApiError::field(pointer, "too_long", format!("at most {MAX_ID_CHARS} characters")));
            }
        }
        Ok(self)
    }
}

pub(super) fn router() -> OpenApiRouter<EventsState> {
    OpenApiRouter::new().routes(routes!(eligibility))
}

/// Whether the caller meets the conditions of the event (and of tier `tierId`) now, in the
/// current period of a recurring event, with `met`, `current` and `target` for every node of
/// the condition tree (USER; staff with `userId`, for that player). 404 when the event or tier
/// is not visible to the caller; 503 when the activity facts cannot be read.
///
/// Refused with 400 `TIER_REQUIRED` when the event pays by tiers and no `tierId` is given.
#[utoipa::path(get, path = "/api/v1/events/{eventId}/eligibility", tag = "eligibility",
    params(("eventId" = String, Path), EligibilityQuery), security(("bearer" = [])),
    responses(
        (status = 200, body = Eligibility),
        (status = 400, description = "A bad query, or `TIER_REQUIRED`", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "`EVENT_NOT_FOUND`, or `TIER_NOT_FOUND`", body = Problem),
        (status = 503, description = "The fact provider failed", body = Problem),
    ))]
async fn eligibility(
    Authenticated(principal): Authenticated,
    State(state): State<EventsState>,
    Path(event_id): Path<String>,
    ValidQuery(query): ValidQuery<EligibilityQuery>,
) -> Result<Json<Eligibility>, ApiError> {
    let principal = &principal;
    let query = query.bounded()?;
    let user_id = match query.user_id {
        None if principal.can(Permission::ClaimRewards) => principal.user_id.to_string(),
        Some(user_id) if principal.can(Permission::ReadAllClaims) => user_id,
        _ => return Err(ApiError::Forbidden),
    };
    let event = state.catalog.get(principal, &event_id).await?;
    let now = state.clock.now();
    let target = claim_target(&event, query.tier_id.as_deref(), now)?;
    let eligibility = match UserId::parse(&user_id) {
        Ok(user_id) => state.eligibility.check(&user_id, &event, &target, now).await?,
        // No activity is ever recorded under text that is no user id (an empty `?userId=`).
        Err(_) => EligibilityChecker::check_without_facts(&event, &target, now),
    };
    Ok(Json(eligibility))
}
