//! The `UserDirectory` port: the events service asks whether a player exists and is active.
//!
//! The events service never reads `auth_db`. It asks the account source of the process (an
//! in-process read of the auth store in all-in-one mode, auth's internal route in split mode)
//! directly, without the per-request memory of [`bestow_core::accounts::AccountStandings`]:
//! the saga wants the answer of the moment.

use std::sync::Arc;

use async_trait::async_trait;
use bestow_core::accounts::AccountSource;

/// What the directory knows of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    Active,
    Inactive,
    /// No such user.
    Unknown,
}

/// Answers whether a user may receive rewards.
#[async_trait]
pub trait UserDirectory: Send + Sync {
    /// `Err` with a reason when the directory cannot be reached.
    async fn user_state(&self, user_id: &str) -> Result<UserState, String>;
}

/// The directory over an [`AccountSource`].
pub struct AccountDirectory(pub Arc<dyn AccountSource>);

#[async_trait]
impl UserDirectory for AccountDirectory {
    async fn user_state(&self, user_id: &str) -> Result<UserState, String> {
        match self.0.standing(user_id).await {
            Ok(Some(standing)) if standing.is_active => Ok(UserState::Active),
            Ok(Some(_)) => Ok(UserState::Inactive),
            Ok(None) => Ok(UserState::Unknown),
            Err(unavailable) => Err(unavailable.to_string()),
        }
    }
}
