//! `GET /api/v1/me/events`: the player's event screen.

use axum::Json;
use axum::extract::State;
use bestow_core::ApiError;
use bestow_core::extract::{Authorized, require};
use bestow_core::page::{Page, PageParams, ValidPage};
use bestow_core::problem::Problem;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::EventsState;
use crate::event_screen::ScreenEvent;

pub(super) fn router() -> OpenApiRouter<EventsState> {
    OpenApiRouter::new().routes(routes!(my_events))
}

/// The caller's event screen (USER): the ACTIVE events running now, soonest-starting first,
/// each with its current period, its next reset and, per tier, the caller's progress, this
/// period's latest claim and whether a claim now would pay. Secret reward details are never
/// shown. 503 when the activity facts cannot be read.
#[utoipa::path(get, path = "/api/v1/me/events", tag = "eligibility", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Page<ScreenEvent>), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 503, description = "The fact provider failed", body = Problem),
    ))]
async fn my_events(
    caller: Authorized<require::ClaimRewards>,
    State(state): State<EventsState>,
    ValidPage(page): ValidPage,
) -> Result<Json<Page<ScreenEvent>>, ApiError> {
    let page = state.screen.page(&caller.principal, page).await?;
    Ok(Json(page))
}
