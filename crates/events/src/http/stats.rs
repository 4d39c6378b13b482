//! `GET /api/v1/events/{eventId}/stats`: the event dashboard of the operator console.

use axum::Json;
use axum::extract::{Path, State};
use bestow_core::ApiError;
use bestow_core::extract::{Authorized, require};
use bestow_core::problem::Problem;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::EventsState;
use crate::claims::stats::EventStats;

pub(super) fn router() -> OpenApiRouter<EventsState> {
    OpenApiRouter::new().routes(routes!(event_stats))
}

/// An event's claims by status, per minute over the last hour and failed by reason, with the
/// stock left of each reward (OPERATOR, AUDITOR, ADMIN). Counted by the database on every call.
#[utoipa::path(get, path = "/api/v1/events/{eventId}/stats", tag = "events",
    params(("eventId" = String, Path)), security(("bearer" = [])),
    responses(
        (status = 200, body = EventStats),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "`EVENT_NOT_FOUND`", body = Problem),
    ))]
async fn event_stats(
    caller: Authorized<require::ReadAllClaims>,
    State(state): State<EventsState>,
    Path(event_id): Path<String>,
) -> Result<Json<EventStats>, ApiError> {
    let event = state.catalog.get(&caller.principal, &event_id).await?;
    Ok(Json(state.claims.event_stats(&event).await?))
}
