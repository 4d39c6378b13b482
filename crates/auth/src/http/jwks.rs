//! `/.well-known/jwks.json`: the public keys that verify access tokens.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AuthState;
use crate::signing::Jwks;

pub(super) fn router() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new().routes(routes!(jwks))
}

/// Public signing keys.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JWK set", body = Jwks)))]
async fn jwks(State(state): State<AuthState>) -> Json<Jwks> {
    Json(state.service.keys().jwks())
}
