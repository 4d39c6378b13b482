//! `/api/v1/players/{userId}/properties`: game servers merge what they know of a player
//! (service key with `players:write`, or ADMIN); staff read it back with the properties the
//! platform computes itself (OPERATOR, AUDITOR, ADMIN).

use axum::Json;
use axum::extract::{Path, State};
use bestow_core::ApiError;
use bestow_core::extract::{Authenticated, Authorized, RequestId, require};
use bestow_core::ids::UserId;
use bestow_core::json::ValidJson;
use bestow_core::problem::Problem;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::EventsState;
use super::writer::{Players, Writer};
use crate::domain::audience::properties::PlayerPropertiesView;

pub(super) fn router() -> OpenApiRouter<EventsState> {
    OpenApiRouter::new().routes(routes!(player_properties, merge_player_properties)).routes(routes!(my_properties))
}

/// What a player reads of their own properties: what the game set, not what the platform
/// computes to judge audiences.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnProperties {
    pub user_id: String,
    /// Name to value (string, number or boolean).
    #[schema(value_type = Object)]
    pub properties: serde_json::Map<String, Value>,
}

/// The caller's own properties, as the game's servers set them (any signed-in account).
#[utoipa::path(get, path = "/api/v1/me/properties", tag = "audiences", security(("bearer" = [])),
    responses((status = 200, body = OwnProperties), (status = 401, body = Problem)))]
async fn my_properties(
    Authenticated(caller): Authenticated,
    State(state): State<EventsState>,
) -> Result<Json<OwnProperties>, ApiError> {
    let view = state.players.own(&caller.user_id).await?;
    Ok(Json(OwnProperties { user_id: caller.user_id.to_string(), properties: view }))
}

/// The player a path names; text that can be no player id names none (404).
fn player(user_id: &str) -> Result<UserId, ApiError> {
    UserId::parse(user_id).map_err(|_| ApiError::not_found("PLAYER_NOT_FOUND", "no such player"))
}

/// A player's properties and what the platform computes of them (OPERATOR, AUDITOR, ADMIN):
/// account `createdAt`, `lastSeenAt` (the last `LOGIN` pushed) and `purchaseTotal` (the sum
/// of the `PURCHASE` amounts pushed). A player no game server described has no properties.
#[utoipa::path(get, path = "/api/v1/players/{userId}/properties", tag = "audiences",
    params(("userId" = String, Path, min_length = 1, max_length = 128)), security(("bearer" = [])),
    responses(
        (status = 200, body = PlayerPropertiesView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 503, description = "Facts cannot be read now", body = Problem),
    ))]
async fn player_properties(
    _caller: Authorized<require::ReadPlayerProperties>,
    State(state): State<EventsState>,
    Path(user_id): Path<String>,
) -> Result<Json<PlayerPropertiesView>, ApiError> {
    Ok(Json(state.players.get(&player(&user_id)?).await?))
}

/// Merges properties into a player's (service key with `players:write`, or ADMIN): each
/// member sets one property (a string of at most 256 bytes, a number or a boolean), `null`
/// removes it; names are a letter then up to 63 letters, digits or `_`, and a player has at
/// most 64 properties. Audited as the change, by the key or person that made it.
#[utoipa::path(patch, path = "/api/v1/players/{userId}/properties", tag = "audiences",
    params(("userId" = String, Path, min_length = 1, max_length = 128)),
    request_body = crate::domain::schemas::PropertyMerge,
    security(("apiKey" = []), ("bearer" = [])),
    responses(
        (status = 200, body = PlayerPropertiesView),
        (status = 400, description = "A bad name or value, or more than 64 properties", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "The merge would leave more than 64 properties, or concurrent merges kept winning", body = Problem),
    ))]
async fn merge_player_properties(
    writer: Writer<Players>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    Path(user_id): Path<String>,
    ValidJson(body): ValidJson<Value>,
) -> Result<Json<PlayerPropertiesView>, ApiError> {
    let user_id = player(&user_id)?;
    let actor = writer.actor(request_id);
    Ok(Json(state.players.merge(&actor, &user_id, &body).await?))
}
