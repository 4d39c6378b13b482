//! Account administration: list, inspect, set roles, activate and deactivate.

use axum::Json;
use axum::extract::{Path, State};
use bestow_core::ApiError;
use bestow_core::audit::AuditActor;
use bestow_core::extract::{Authorized, RequestId, require};
use bestow_core::identity::Role;
use bestow_core::ids::UserId;
use bestow_core::json::{ValidJson, ValidQuery};
use bestow_core::page::{Page, PageParams, ValidPage};
use bestow_core::problem::Problem;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AuthState;
use super::dto::{PatchUserRequest, SetRolesRequest, UserView};
use crate::domain::UserChange;
use crate::service::AuthError;
use crate::store::UserFilter;

pub(super) fn router() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new().routes(routes!(list_users)).routes(routes!(get_user, patch_user)).routes(routes!(set_roles))
}

/// Filters of the user list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct UserListQuery {
    /// Only users holding this role.
    role: Option<Role>,
    is_active: Option<bool>,
    /// Username prefix, ignoring case.
    q: Option<String>,
}

/// Lists accounts (ADMIN).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserListQuery, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of users", body = Page<UserView>),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ))]
async fn list_users(
    _caller: Authorized<require::ManageUsers>,
    State(state): State<AuthState>,
    ValidQuery(query): ValidQuery<UserListQuery>,
    ValidPage(page): ValidPage,
) -> Result<Json<Page<UserView>>, ApiError> {
    let filter = UserFilter { role: query.role, is_active: query.is_active, username_prefix: query.q };
    let page = state.service.list_users(&filter, page).await?;
    Ok(Json(page.map(UserView::from)))
}

/// The account a path names: text that no account id can be names no account (404, like an
/// unknown id).
fn account(text: &str) -> Result<UserId, AuthError> {
    UserId::parse(text).map_err(|_| AuthError::UserNotFound)
}

/// One account (ADMIN).
#[utoipa::path(get, path = "/api/v1/users/{userId}", tag = "users", params(("userId" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, body = UserView),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ))]
async fn get_user(
    _caller: Authorized<require::ManageUsers>,
    State(state): State<AuthState>,
    Path(user_id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(state.service.user(&account(&user_id)?).await?.into()))
}

/// Replaces an account's roles (ADMIN). An admin cannot remove its own ADMIN role.
#[utoipa::path(put, path = "/api/v1/users/{userId}/roles", tag = "users", params(("userId" = String, Path)),
    request_body = SetRolesRequest, security(("bearer" = [])),
    responses(
        (status = 200, body = UserView),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, description = "Not an ADMIN, or the caller's own account (`SELF_CHANGE_FORBIDDEN`)", body = Problem),
        (status = 404, body = Problem), (status = 409, description = "The account changed concurrently", body = Problem),
    ))]
async fn set_roles(
    caller: Authorized<require::ManageUsers>,
    RequestId(request_id): RequestId,
    State(state): State<AuthState>,
    Path(user_id): Path<String>,
    ValidJson(body): ValidJson<SetRolesRequest>,
) -> Result<Json<UserView>, ApiError> {
    if body.roles.is_empty() {
        return Err(ApiError::field("/roles", "required", "an account needs at least one role"));
    }
    let actor = AuditActor::user(&caller.principal, request_id);
    Ok(Json(state.service.change_user(&actor, &account(&user_id)?, UserChange::Roles(body.roles)).await?.into()))
}

/// Activates or deactivates an account (ADMIN). Deactivation revokes its refresh tokens.
#[utoipa::path(patch, path = "/api/v1/users/{userId}", tag = "users", params(("userId" = String, Path)),
    request_body = PatchUserRequest, security(("bearer" = [])),
    responses(
        (status = 200, body = UserView),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, description = "Not an ADMIN, or the caller's own account (`SELF_CHANGE_FORBIDDEN`)", body = Problem),
        (status = 404, body = Problem), (status = 409, description = "The account changed concurrently", body = Problem),
    ))]
async fn patch_user(
    caller: Authorized<require::ManageUsers>,
    RequestId(request_id): RequestId,
    State(state): State<AuthState>,
    Path(user_id): Path<String>,
    ValidJson(body): ValidJson<PatchUserRequest>,
) -> Result<Json<UserView>, ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id);
    Ok(Json(state.service.change_user(&actor, &account(&user_id)?, UserChange::Active(body.is_active)).await?.into()))
}
