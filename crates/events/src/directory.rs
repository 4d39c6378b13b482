//! The `UserDirectory` port: the events service asks whether a player exists and is active.
//!
//! The events service never reads `auth_db`. In all-in-one mode the directory is an
//! in-process call into the auth service; in split mode, an HTTP call to auth.

use async_trait::async_trait;

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
