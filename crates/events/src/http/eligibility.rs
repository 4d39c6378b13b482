//! `GET /api/v1/events/{eventId}/eligibility`: a player's progress towards an event's
//! conditions.

use axum::Json;
use axum::extract::{Path, State};
use bestow_core::ApiError;
use bestow_core::extract::{Authorized, require};
use bestow_core::problem::Problem;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::EventsState;
use crate::eligibility::Eligibility;

pub(super) fn router() -> OpenApiRouter<EventsState> {
    OpenApiRouter::new().routes(routes!(eligibility))
}

/// Whether the caller meets the event's conditions now, with `met`, `current` and `target` for
/// every node of the condition tree (USER). 404 when the event is not visible to the caller;
/// 503 when the activity facts cannot be read.
#[utoipa::path(get, path = "/api/v1/events/{eventId}/eligibility", tag = "eligibility",
    params(("eventId" = String, Path)), security(("bearer" = [])),
    responses(
        (status = 200, body = Eligibility), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
        (status = 503, description = "The fact provider failed", body = Problem),
    ))]
async fn eligibility(
    caller: Authorized<require::ClaimRewards>,
    State(state): State<EventsState>,
    Path(event_id): Path<String>,
) -> Result<Json<Eligibility>, ApiError> {
    let event = state.catalog.get(&caller.principal, &event_id).await?;
    let eligibility = state
        .eligibility
        .check(&caller.principal.user_id, &event, bestow_core::time::now())
        .await
        .map_err(|error| ApiError::Unavailable(error.to_string()))?;
    Ok(Json(eligibility))
}
