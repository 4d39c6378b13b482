//! The `UserDirectory` port: the events service asks whether a player exists and is active.
//!
//! The events service never reads `auth_db`. In all-in-one mode the directory is an
//! in-process call into the auth service; in split mode, an HTTP call to auth.

use std::time::Duration;

use async_trait::async_trait;
use bestow_core::http::SERVICE_TOKEN;
use bestow_core::secret::ServiceCredential;
use reqwest::StatusCode;
use serde::Deserialize;

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

/// The split-mode directory: auth's internal user route, called with the shared service
/// credential.
pub struct HttpUserDirectory {
    client: reqwest::Client,
    auth_url: String,
    credential: ServiceCredential,
}

impl HttpUserDirectory {
    pub fn new(auth_url: &str, credential: ServiceCredential, timeout: Duration) -> Result<Self, String> {
        let client = bestow_core::outbound::client_builder()
            .timeout(timeout)
            .build()
            .map_err(|error| format!("cannot build the user directory client: {error}"))?;
        Ok(Self { client, auth_url: auth_url.trim_end_matches('/').to_owned(), credential })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserStatus {
    is_active: bool,
}

#[async_trait]
impl UserDirectory for HttpUserDirectory {
    async fn user_state(&self, user_id: &str) -> Result<UserState, String> {
        // Ids are ObjectId hex; anything else cannot name a user and must not shape the URL.
        if !user_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Ok(UserState::Unknown);
        }
        let response = self
            .client
            .get(format!("{}/internal/v1/users/{user_id}", self.auth_url))
            .header(SERVICE_TOKEN, self.credential.presented())
            .send()
            .await
            .map_err(|error| format!("auth is unreachable: {error}"))?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(UserState::Unknown),
            status if status.is_success() => {
                let user: UserStatus =
                    response.json().await.map_err(|error| format!("bad answer from auth: {error}"))?;
                Ok(if user.is_active { UserState::Active } else { UserState::Inactive })
            }
            status => Err(format!("auth answered {status}")),
        }
    }
}
