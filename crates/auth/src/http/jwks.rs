//! Signing keys: `/.well-known/jwks.json` publishes the public keys that verify access tokens;
//! `POST /api/v1/auth/signing-keys` rotates them without a restart.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bestow_core::ApiError;
use bestow_core::audit::AuditActor;
use bestow_core::extract::{Authorized, RequestId, require};
use bestow_core::problem::Problem;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AuthState;
use crate::signing::Jwks;

pub(super) fn router() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new().routes(routes!(jwks)).routes(routes!(rotate))
}

/// Public signing keys.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JWK set", body = Jwks)))]
async fn jwks(State(state): State<AuthState>) -> Json<Jwks> {
    Json(state.service.keys().jwks())
}

/// The key that signs from now on.
#[derive(Debug, Serialize, ToSchema)]
struct RotatedKey {
    /// `kid` of the new key, as published in the JWKS.
    kid: String,
}

/// Adds a new signing key and signs with it from now on (ADMIN). Tokens signed with older
/// keys keep verifying; services behind the gateway fetch the new key on first sight of its
/// `kid`. Audited.
#[utoipa::path(post, path = "/api/v1/auth/signing-keys", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 201, body = RotatedKey),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ))]
async fn rotate(
    caller: Authorized<require::ManageSigningKeys>,
    RequestId(request_id): RequestId,
    State(state): State<AuthState>,
) -> Result<(StatusCode, Json<RotatedKey>), ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id);
    let kid = state.service.rotate_signing_key(&actor).await?;
    Ok((StatusCode::CREATED, Json(RotatedKey { kid })))
}
