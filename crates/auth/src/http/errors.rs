//! How the auth service's failures read over HTTP: [`AuthError`] mapped once to its status and
//! problem-details code.

use bestow_core::ApiError;

use crate::service::AuthError;

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::BadCredentials => ApiError::Unauthorized("invalid username or password"),
            AuthError::InvalidRefreshToken => ApiError::Unauthorized("the refresh token is invalid or expired"),
            AuthError::Throttled { retry_after_secs } => ApiError::TooManyRequests { retry_after_secs },
            AuthError::UsernameTaken => ApiError::conflict("USERNAME_TAKEN", error.to_string()),
            AuthError::UserNotFound => ApiError::not_found("USER_NOT_FOUND", error.to_string()),
            AuthError::CurrentPasswordWrong => {
                ApiError::Refused { code: "CURRENT_PASSWORD_WRONG", detail: error.to_string() }
            }
            AuthError::SelfChange(_) => ApiError::Refused { code: "SELF_CHANGE_FORBIDDEN", detail: error.to_string() },
            AuthError::UserChanged => ApiError::conflict("USER_CHANGED", error.to_string()),
            AuthError::Store(store) => store.into(),
            AuthError::Hashing(_) | AuthError::Keys(_) | AuthError::Task(_) => ApiError::internal(error),
        }
    }
}
