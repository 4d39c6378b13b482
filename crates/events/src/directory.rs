//! The `UserDirectory` port: the events service asks whether a player exists and is active.
//!
//! The events service never reads `auth_db`. It asks the account source of the process (an
//! in-process read of the auth store in all-in-one mode, auth's internal route in split mode)
//! directly, without the per-request memory of [`bestow_core::accounts::AccountStandings`]:
//! the saga wants the answer of the moment.

use std::sync::Arc;

use async_trait::async_trait;
use bestow_core::accounts::{AccountSource, StandingUnavailable};
use bestow_core::ids::UserId;

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
    /// `Err` when the directory cannot be reached.
    async fn user_state(&self, user_id: &UserId) -> Result<UserState, StandingUnavailable>;
}

/// The directory over an [`AccountSource`].
pub struct AccountDirectory(pub Arc<dyn AccountSource>);

#[async_trait]
impl UserDirectory for AccountDirectory {
    async fn user_state(&self, user_id: &UserId) -> Result<UserState, StandingUnavailable> {
        Ok(match self.0.standing(user_id).await? {
            Some(standing) if standing.is_active => UserState::Active,
            Some(_) => UserState::Inactive,
            None => UserState::Unknown,
        })
    }
}
