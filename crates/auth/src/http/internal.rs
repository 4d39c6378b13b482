//! Routes for the other services, never for clients: the gateway's route table has no entry
//! for them, and each call must present the shared service credential.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use bestow_core::ApiError;
use bestow_core::accounts::Standing;
use bestow_core::http::SERVICE_TOKEN;
use bestow_core::ids::UserId;
use bestow_core::secret::ServiceCredential;
use serde::Serialize;

use crate::service::AuthService;

/// What the other services need to know about an account: its id and current standing.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UserStatus {
    id: String,
    #[serde(flatten)]
    standing: Standing,
}

#[derive(Clone)]
struct InternalState {
    service: Arc<AuthService>,
    credential: ServiceCredential,
}

/// `GET /internal/v1/users/{userId}`: whether an account exists, is active, its roles,
/// session version and the sessions that ended lately.
pub fn router(service: Arc<AuthService>, credential: ServiceCredential) -> Router {
    Router::new()
        .route("/internal/v1/users/{user_id}", get(user_status))
        .with_state(InternalState { service, credential })
}

async fn user_status(
    State(state): State<InternalState>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<Json<UserStatus>, ApiError> {
    let presented = headers.get(SERVICE_TOKEN).and_then(|value| value.to_str().ok());
    if !presented.is_some_and(|value| state.credential.verifies(value)) {
        return Err(ApiError::Unauthorized("a service credential is required"));
    }
    // Text no account id can be names no account.
    let standing = match UserId::parse(&user_id) {
        Ok(id) => state.service.accounts().read(&id).await?,
        Err(_) => None,
    };
    let standing = standing.ok_or_else(|| ApiError::not_found("USER_NOT_FOUND", "no such user"))?;
    Ok(Json(UserStatus { id: user_id, standing }))
}
