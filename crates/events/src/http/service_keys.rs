//! `/api/v1/service-keys`: the API keys game servers push activities with (ADMIN).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bestow_core::ApiError;
use bestow_core::audit::AuditActor;
use bestow_core::extract::{Authorized, RequestId, require};
use bestow_core::json::ValidJson;
use bestow_core::page::{Page, PageParams, ValidPage};
use bestow_core::problem::Problem;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::EventsState;
use crate::service_keys::{CreatedServiceKey, ServiceKeyInput, ServiceKeyView};

pub(super) fn router() -> OpenApiRouter<EventsState> {
    OpenApiRouter::new().routes(routes!(create_service_key, list_service_keys)).routes(routes!(revoke_service_key))
}

/// Creates a key (ADMIN). The response carries its `secret`, shown this once.
#[utoipa::path(post, path = "/api/v1/service-keys", tag = "service-keys", request_body = ServiceKeyInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; keep the secret, it is not shown again", body = CreatedServiceKey),
        (status = 400, description = "Blank name, no scope or an unknown scope", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ))]
async fn create_service_key(
    caller: Authorized<require::ManageServiceKeys>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    ValidJson(input): ValidJson<ServiceKeyInput>,
) -> Result<(StatusCode, Json<CreatedServiceKey>), ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id);
    Ok((StatusCode::CREATED, Json(state.service_keys.create(&actor, input).await?)))
}

/// Every key, newest first, revoked ones included; never their secrets (ADMIN).
#[utoipa::path(get, path = "/api/v1/service-keys", tag = "service-keys", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Page<ServiceKeyView>), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ))]
async fn list_service_keys(
    _caller: Authorized<require::ManageServiceKeys>,
    State(state): State<EventsState>,
    ValidPage(page): ValidPage,
) -> Result<Json<Page<ServiceKeyView>>, ApiError> {
    Ok(Json(state.service_keys.list(page).await?))
}

/// Revokes a key at once; requests with it fail with 401 from then on (ADMIN). Revoking a
/// revoked key changes nothing.
#[utoipa::path(delete, path = "/api/v1/service-keys/{keyId}", tag = "service-keys", params(("keyId" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
    ))]
async fn revoke_service_key(
    caller: Authorized<require::ManageServiceKeys>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    Path(key_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id);
    state.service_keys.revoke(&actor, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
