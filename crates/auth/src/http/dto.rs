//! Request and response bodies of the auth routes.

use bestow_core::identity::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use bestow_auth_domain::view::UserView;

use crate::service::Session;

/// Self-service sign-up. Roles are never accepted here: every new account is a USER.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3 to 32 of `[A-Za-z0-9_.-]`, unique ignoring case.
    #[schema(pattern = "^[A-Za-z0-9_.-]{3,32}$", min_length = 3, max_length = 32, example = "alice")]
    pub username: String,
    /// 8 to 72 characters.
    #[schema(min_length = 8, max_length = 72, example = "correct horse battery")]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// At most 32 characters, as every username.
    #[schema(max_length = 32, example = "alice")]
    pub username: String,
    /// The account password.
    #[schema(example = "correct horse battery")]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshRequest {
    /// The refresh token of the last session answer.
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(example = json!({ "currentPassword": "correct horse battery", "newPassword": "a brand new secret" }))]
pub struct ChangePasswordRequest {
    /// The password in use now.
    pub current_password: String,
    /// 8 to 72 characters.
    #[schema(min_length = 8, max_length = 72)]
    pub new_password: String,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// EdDSA JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Opaque, single-use: exchange it at `/api/v1/auth/refresh` for a new pair.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
    /// The signed-in account.
    pub user: UserView,
}

impl From<Session> for SessionView {
    fn from(session: Session) -> Self {
        Self {
            access_token: session.access_token,
            refresh_token: session.refresh_token,
            token_type: "Bearer",
            expires_in: session.expires_in.as_secs(),
            user: session.user.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "roles": ["USER", "OPERATOR"] }))]
pub struct SetRolesRequest {
    /// The complete new role list, at least one role.
    #[schema(min_items = 1)]
    pub roles: Vec<Role>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(example = json!({ "isActive": false }))]
pub struct PatchUserRequest {
    /// False deactivates the account at once; true reactivates it.
    pub is_active: bool,
}
