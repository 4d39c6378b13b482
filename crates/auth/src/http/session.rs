//! Sign-up, sign-in and the signed-in user's own account.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bestow_core::extract::{Authenticated, ClientAddress};
use bestow_core::identity::Role;
use bestow_core::json::ValidJson;
use bestow_core::problem::Problem;
use bestow_core::{ApiError, FieldViolation};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AuthState;
use super::dto::{ChangePasswordRequest, LoginRequest, RefreshRequest, RegisterRequest, SessionView, UserView};
use crate::domain::{NewPassword, Username};

pub(super) fn router() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
}

/// Creates a USER account.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = UserView),
        (status = 400, description = "Invalid username or password, or a field that is not accepted", body = Problem),
        (status = 409, description = "Username taken", body = Problem),
    ))]
async fn register(
    State(state): State<AuthState>,
    ValidJson(body): ValidJson<RegisterRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let username = Username::parse(&body.username, "/username");
    let password = NewPassword::parse(body.password, "/password");
    let (username, password) = collect(username, password)?;
    let user = state.service.create_user(username, password, vec![Role::User], None).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Signs in. Wrong credentials and inactive accounts get the same 401.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = SessionView),
        (status = 400, description = "A username longer than any account's (32 characters)", body = Problem),
        (status = 401, description = "Wrong credentials or inactive account", body = Problem),
        (status = 429, description = "Too many failed logins; see Retry-After", body = Problem),
    ))]
async fn login(
    State(state): State<AuthState>,
    ClientAddress(address): ClientAddress,
    ValidJson(body): ValidJson<LoginRequest>,
) -> Result<Json<SessionView>, ApiError> {
    // Bounded before it costs anything: the username becomes a throttle key.
    if body.username.chars().count() > Username::MAX_BYTES {
        return Err(ApiError::field("/username", "too_long", "a username has at most 32 characters"));
    }
    let session = state.service.login(&body.username, &body.password, address).await?;
    Ok(Json(session.into()))
}

/// Exchanges a refresh token for a new pair; the old token stops working. Presenting an
/// already-exchanged token revokes every token descended from the same login.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New token pair", body = SessionView),
        (status = 401, description = "Invalid, expired, revoked or reused refresh token", body = Problem),
    ))]
async fn refresh(
    State(state): State<AuthState>,
    ValidJson(body): ValidJson<RefreshRequest>,
) -> Result<Json<SessionView>, ApiError> {
    Ok(Json(state.service.refresh(&body.refresh_token).await?.into()))
}

/// Ends the session of the given refresh token.
///
/// Revokes the token and its descendants; every access token issued in that session is refused
/// from then on (within 2 s in every process).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "No or invalid access token", body = Problem),
    ))]
async fn logout(
    State(state): State<AuthState>,
    Authenticated(caller): Authenticated,
    ValidJson(body): ValidJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    state.service.logout(&caller, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's own account.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserView),
        (status = 401, description = "No or invalid access token", body = Problem),
    ))]
async fn me(State(state): State<AuthState>, Authenticated(caller): Authenticated) -> Result<Json<UserView>, ApiError> {
    Ok(Json(state.service.user(&caller.user_id).await?.into()))
}

/// Changes the caller's password; every refresh token of the account is revoked.
#[utoipa::path(put, path = "/api/v1/auth/me/password", tag = "auth", request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Password changed"),
        (status = 400, description = "Wrong current password or invalid new one", body = Problem),
        (status = 401, description = "No or invalid access token", body = Problem),
        (status = 429, description = "Too many wrong passwords; see Retry-After", body = Problem),
    ))]
async fn change_password(
    State(state): State<AuthState>,
    Authenticated(caller): Authenticated,
    ClientAddress(address): ClientAddress,
    ValidJson(body): ValidJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let new = NewPassword::parse(body.new_password, "/newPassword").map_err(|v| ApiError::Validation(vec![v]))?;
    state.service.change_password(&caller, &body.current_password, new, address).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Both parsed values, or every violation at once.
fn collect<A, B>(a: Result<A, FieldViolation>, b: Result<B, FieldViolation>) -> Result<(A, B), ApiError> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => Err(ApiError::Validation(a.err().into_iter().chain(b.err()).collect())),
    }
}
