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

/// The part of a problem document the directory reads.
#[derive(Deserialize, Default)]
struct Problem {
    #[serde(default)]
    code: String,
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
            // Only auth's own "no such user": a 404 from anything else (a wrong `auth_url`)
            // must not make every claim fail for good.
            StatusCode::NOT_FOUND => {
                let problem: Problem = response.json().await.unwrap_or_default();
                if problem.code == "USER_NOT_FOUND" {
                    Ok(UserState::Unknown)
                } else {
                    Err(format!("auth answered 404 {:?} for a user", problem.code))
                }
            }
            status if status.is_success() => {
                let user: UserStatus =
                    response.json().await.map_err(|error| format!("bad answer from auth: {error}"))?;
                Ok(if user.is_active { UserState::Active } else { UserState::Inactive })
            }
            status => Err(format!("auth answered {status}")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::Router;
    use axum::extract::Path;
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use bestow_core::ApiError;

    use super::*;

    const SECRET: &str = "directory-test-secret";

    /// A stand-in for auth's internal user route: `active` and `inactive` exist, `gone` does
    /// not, `broken` fails; anything without the credential is refused.
    async fn auth() -> String {
        let route = get(|Path(id): Path<String>, headers: HeaderMap| async move {
            if headers.get(SERVICE_TOKEN).and_then(|v| v.to_str().ok()) != Some(SECRET) {
                return ApiError::Unauthorized("credential").into_response();
            }
            match id.as_str() {
                "active" | "inactive" => axum::Json(serde_json::json!({ "isActive": id == "active" })).into_response(),
                "broken" => ApiError::internal("boom").into_response(),
                _ => ApiError::not_found("USER_NOT_FOUND", "no such user").into_response(),
            }
        });
        let app =
            Router::new().route("/internal/v1/users/{id}", route).fallback(|| async { ApiError::route_not_found() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    }

    fn directory(base: &str, secret: &str) -> HttpUserDirectory {
        HttpUserDirectory::new(base, ServiceCredential::new(secret), Duration::from_secs(2)).unwrap()
    }

    #[tokio::test]
    async fn states_come_from_auth() {
        let directory = directory(&auth().await, SECRET);
        assert_eq!(directory.user_state("active").await, Ok(UserState::Active));
        assert_eq!(directory.user_state("inactive").await, Ok(UserState::Inactive));
        assert_eq!(directory.user_state("gone").await, Ok(UserState::Unknown));
        assert_eq!(directory.user_state("../admin").await, Ok(UserState::Unknown), "not an id");
    }

    #[tokio::test]
    async fn only_auth_saying_no_such_user_makes_a_user_unknown() {
        let base = auth().await;
        assert!(directory(&base, SECRET).user_state("broken").await.is_err(), "a 500 is not an answer");
        assert!(directory(&base, "wrong-secret-value").user_state("active").await.is_err(), "a 401 is not either");
        // A wrong base URL: the 404 is the router's, not auth's verdict on the user.
        let misrouted = directory(&format!("{base}/elsewhere"), SECRET);
        assert!(misrouted.user_state("active").await.is_err());
        let unreachable = directory("http://127.0.0.1:9", SECRET);
        assert!(unreachable.user_state("active").await.is_err());
    }
}
