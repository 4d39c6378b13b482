//! `/api/v1/events/{eventId}/rewards`: the rewards embedded in an event.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bestow_core::ApiError;
use bestow_core::audit::AuditActor;
use bestow_core::extract::{Authenticated, Authorized, RequestId, require};
use bestow_core::json::ValidJson;
use bestow_core::problem::Problem;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::EventsState;
use crate::domain::event::RewardPatch;
use crate::domain::reward::RewardInput;
use crate::view::{Audience, RewardView};

pub(super) fn router() -> OpenApiRouter<EventsState> {
    OpenApiRouter::new().routes(routes!(add_reward, list_rewards)).routes(routes!(patch_reward, delete_reward))
}

/// Adds a reward; `rewardId` is generated and `details` checked per `rewardType`
/// (OPERATOR, ADMIN; DRAFT or INACTIVE events).
///
/// Refused with 400 when `totalStock` (other than `-1`) is below `quantityPerUser`.
#[utoipa::path(post, path = "/api/v1/events/{eventId}/rewards", tag = "rewards", params(("eventId" = String, Path)),
    request_body = crate::domain::schemas::RewardSpec, security(("bearer" = [])),
    responses(
        (status = 201, body = RewardView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
    ))]
async fn add_reward(
    caller: Authorized<require::ManageEvents>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    Path(event_id): Path<String>,
    ValidJson(input): ValidJson<RewardInput>,
) -> Result<(StatusCode, Json<RewardView>), ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id);
    let reward = state.catalog.add_reward(&actor, &event_id, input).await?;
    Ok((StatusCode::CREATED, Json(RewardView::from(&reward))))
}

/// The rewards of an event the caller may see.
#[utoipa::path(get, path = "/api/v1/events/{eventId}/rewards", tag = "rewards", params(("eventId" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<RewardView>), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn list_rewards(
    Authenticated(caller): Authenticated,
    State(state): State<EventsState>,
    Path(event_id): Path<String>,
) -> Result<Json<Vec<RewardView>>, ApiError> {
    let rewards = state.catalog.rewards(&caller, &event_id).await?;
    let audience = Audience::of(&caller);
    Ok(Json(rewards.iter().map(|reward| RewardView::new(reward, audience)).collect()))
}

/// Tops up stock (`addStock`, any time) or changes the definition (DRAFT or INACTIVE;
/// `totalStock` only while DRAFT) (OPERATOR, ADMIN).
///
/// Refused with 400 by rules of the stored reward, each naming its field: `details` without
/// the members of the stored reward's type; a `totalStock` below the stored
/// `quantityPerUser`, or a `quantityPerUser` above the stored `totalStock`; a top-up that
/// would take `totalStock` above 10^12.
#[utoipa::path(patch, path = "/api/v1/events/{eventId}/rewards/{rewardId}", tag = "rewards",
    params(("eventId" = String, Path), ("rewardId" = String, Path)),
    request_body = crate::domain::schemas::RewardChangeSpec, security(("bearer" = [])),
    responses(
        (status = 200, body = RewardView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
    ))]
async fn patch_reward(
    caller: Authorized<require::ManageEvents>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    Path((event_id, reward_id)): Path<(String, String)>,
    ValidJson(patch): ValidJson<RewardPatch>,
) -> Result<Json<RewardView>, ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id);
    let reward = state.catalog.patch_reward(&actor, &event_id, &reward_id, patch).await?;
    Ok(Json(RewardView::from(&reward)))
}

/// Removes a reward (OPERATOR, ADMIN; DRAFT events only).
#[utoipa::path(delete, path = "/api/v1/events/{eventId}/rewards/{rewardId}", tag = "rewards",
    params(("eventId" = String, Path), ("rewardId" = String, Path)), security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
    ))]
async fn delete_reward(
    caller: Authorized<require::ManageEvents>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    Path((event_id, reward_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id);
    state.catalog.delete_reward(&actor, &event_id, &reward_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
