//! The current standing of accounts, checked on every authenticated request.
//!
//! An access token proves who signed in and when; it does not freeze what they may do. Every
//! process that verifies tokens also asks what the account is *now* — active or not, its roles,
//! and its session version — through an [`AccountSource`], and keeps the answer for at most
//! [`AccountStandings::FRESH_FOR`]. So a deactivation, a role change or a password reset takes
//! effect on every route within that time in any mode, and at once in the process that made
//! the change (it calls [`AccountStandings::forget`]).
//!
//! When the source cannot be reached, a standing already known (however old) is used, so that
//! an auth outage does not sign everybody out; nothing can change an account while auth is
//! down. A caller never seen before gets a 503.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;

use crate::http::SERVICE_TOKEN;
use crate::ids::UserId;
use crate::secret::ServiceCredential;

pub use bestow_kernel::identity::Standing;

/// The account store could not be asked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("account standings unavailable: {0}")]
pub struct StandingUnavailable(pub String);

/// Where standings come from: the auth store in-process, or auth's internal route.
#[async_trait]
pub trait AccountSource: Send + Sync {
    /// The standing of `user_id`, `None` when there is no such account.
    async fn standing(&self, user_id: &UserId) -> Result<Option<Standing>, StandingUnavailable>;
}

/// A per-process memory of standings in front of an [`AccountSource`].
pub struct AccountStandings {
    source: Arc<dyn AccountSource>,
    fresh_for: Duration,
    known: Mutex<HashMap<UserId, Known>>,
}

#[derive(Clone)]
struct Known {
    standing: Option<Standing>,
    fetched: Instant,
}

/// More entries than this and stale ones are swept before the next insert.
const SWEEP_ABOVE: usize = 100_000;

impl std::fmt::Debug for AccountStandings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountStandings").field("fresh_for", &self.fresh_for).finish_non_exhaustive()
    }
}

impl AccountStandings {
    /// How long a standing is trusted before it is asked again: well inside the promise that
    /// an account change takes effect everywhere within 5 seconds.
    pub const FRESH_FOR: Duration = Duration::from_secs(2);

    pub fn new(source: Arc<dyn AccountSource>) -> Self {
        Self::with_freshness(source, Self::FRESH_FOR)
    }

    pub fn with_freshness(source: Arc<dyn AccountSource>, fresh_for: Duration) -> Self {
        Self { source, fresh_for, known: Mutex::new(HashMap::new()) }
    }

    /// The standing of `user_id`: remembered if fresh, else asked for now.
    pub async fn current(&self, user_id: &UserId) -> Result<Option<Standing>, StandingUnavailable> {
        let now = Instant::now();
        // One clone of the entry, out of the lock; a fresh one is returned as it is.
        let remembered = self.lock().get(user_id).cloned();
        if let Some(known) = remembered.as_ref()
            && now.duration_since(known.fetched) < self.fresh_for
        {
            return Ok(remembered.and_then(|known| known.standing));
        }
        match self.source.standing(user_id).await {
            Ok(standing) => {
                let mut known = self.lock();
                if known.len() >= SWEEP_ABOVE {
                    let fresh_for = self.fresh_for;
                    known.retain(|_, entry| now.duration_since(entry.fetched) < fresh_for);
                }
                known.insert(user_id.clone(), Known { standing: standing.clone(), fetched: Instant::now() });
                Ok(standing)
            }
            Err(unavailable) => match remembered {
                Some(known) => {
                    tracing::warn!(%unavailable, "using the last known account standing");
                    Ok(known.standing)
                }
                None => Err(unavailable),
            },
        }
    }

    /// Drops what is remembered of `user_id`, so that the next request asks again: called by
    /// the process that changed the account.
    pub fn forget(&self, user_id: &UserId) {
        self.lock().remove(user_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Known>> {
        // A poisoned lock only means a panic elsewhere mid-insert; the map is still usable.
        self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The split-mode [`AccountSource`]: auth's internal route `GET /internal/v1/users/{userId}`,
/// called with the shared service credential.
pub struct RemoteAccounts {
    client: reqwest::Client,
    auth_url: String,
    credential: ServiceCredential,
}

impl std::fmt::Debug for RemoteAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteAccounts").field("auth_url", &self.auth_url).finish_non_exhaustive()
    }
}

impl RemoteAccounts {
    pub fn new(auth_url: &str, credential: ServiceCredential, timeout: Duration) -> Result<Self, String> {
        let client = crate::outbound::client_builder()
            .timeout(timeout)
            .build()
            .map_err(|error| format!("cannot build the account client: {error}"))?;
        Ok(Self { client, auth_url: auth_url.trim_end_matches('/').to_owned(), credential })
    }
}

/// The part of a problem document this client reads.
#[derive(Deserialize, Default)]
struct ProblemCode {
    #[serde(default)]
    code: String,
}

#[async_trait]
impl AccountSource for RemoteAccounts {
    async fn standing(&self, user_id: &UserId) -> Result<Option<Standing>, StandingUnavailable> {
        // Ids are ObjectId hex; anything else cannot name a user and must not shape the URL.
        let user_id = user_id.as_str();
        if user_id.len() > 64 || !user_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        let unavailable = |why: String| StandingUnavailable(why);
        let response = self
            .client
            .get(format!("{}/internal/v1/users/{user_id}", self.auth_url))
            .header(SERVICE_TOKEN, self.credential.presented())
            .send()
            .await
            .map_err(|error| unavailable(format!("auth is unreachable: {error}")))?;
        match response.status() {
            // Only auth's own "no such user": a 404 from anything else (a wrong `auth_url`)
            // must not sign everybody out.
            reqwest::StatusCode::NOT_FOUND => {
                let problem: ProblemCode = response.json().await.unwrap_or_default();
                if problem.code == "USER_NOT_FOUND" {
                    Ok(None)
                } else {
                    Err(unavailable(format!("auth answered 404 {:?} for a user", problem.code)))
                }
            }
            status if status.is_success() => {
                let standing: Standing =
                    response.json().await.map_err(|error| unavailable(format!("bad answer from auth: {error}")))?;
                Ok(Some(standing))
            }
            status => Err(unavailable(format!("auth answered {status}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;
    use crate::identity::Role;

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    #[derive(Default)]
    struct Counting {
        asked: AtomicUsize,
        down: AtomicBool,
        active: AtomicBool,
    }

    #[async_trait]
    impl AccountSource for Counting {
        async fn standing(&self, _user_id: &UserId) -> Result<Option<Standing>, StandingUnavailable> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StandingUnavailable("down".into()));
            }
            self.asked.fetch_add(1, Ordering::SeqCst);
            let is_active = self.active.load(Ordering::SeqCst);
            Ok(Some(Standing {
                is_active,
                roles: vec![Role::User],
                session_version: 0,
                ended_sessions: Vec::new(),
                created_at: None,
            }))
        }
    }

    #[tokio::test]
    async fn a_standing_is_remembered_only_while_fresh_and_forgotten_on_demand() {
        let source = Arc::new(Counting { active: AtomicBool::new(true), ..Counting::default() });
        let standings = AccountStandings::with_freshness(source.clone(), Duration::from_millis(50));
        assert!(standings.current(&user("u")).await.ok().flatten().is_some_and(|s| s.is_active));
        assert!(standings.current(&user("u")).await.is_ok());
        assert_eq!(source.asked.load(Ordering::SeqCst), 1, "the second read is remembered");

        source.active.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(standings.current(&user("u")).await.ok().flatten().is_some_and(|s| !s.is_active), "asked again");

        source.active.store(true, Ordering::SeqCst);
        standings.forget(&user("u"));
        assert!(standings.current(&user("u")).await.ok().flatten().is_some_and(|s| s.is_active), "forgotten");
        assert_eq!(source.asked.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_outage_keeps_known_standings_and_refuses_unknown_callers() {
        let source = Arc::new(Counting { active: AtomicBool::new(true), ..Counting::default() });
        let standings = AccountStandings::with_freshness(source.clone(), Duration::ZERO);
        assert!(standings.current(&user("known")).await.is_ok());
        source.down.store(true, Ordering::SeqCst);
        assert!(standings.current(&user("known")).await.ok().flatten().is_some());
        assert!(standings.current(&user("stranger")).await.is_err());
    }

    const SECRET: &str = "accounts-test-secret";

    /// A stand-in for auth's internal user route: `active` and `inactive` exist, `gone` does
    /// not, `broken` fails; anything without the credential is refused.
    async fn auth() -> String {
        use axum::extract::Path;
        use axum::http::HeaderMap;
        use axum::response::IntoResponse;

        let route = axum::routing::get(|Path(id): Path<String>, headers: HeaderMap| async move {
            if headers.get(SERVICE_TOKEN).and_then(|v| v.to_str().ok()) != Some(SECRET) {
                return crate::ApiError::Unauthorized("credential").into_response();
            }
            match id.as_str() {
                "active" | "inactive" => axum::Json(serde_json::json!({
                    "id": id, "isActive": id == "active", "roles": ["USER", "AUDITOR"], "sessionVersion": 3,
                    "endedSessions": ["ended"], "createdAt": "2026-01-02T03:04:05Z"
                }))
                .into_response(),
                "broken" => crate::ApiError::internal("boom").into_response(),
                _ => crate::ApiError::not_found("USER_NOT_FOUND", "no such user").into_response(),
            }
        });
        let app = axum::Router::new()
            .route("/internal/v1/users/{id}", route)
            .fallback(|| async { crate::ApiError::route_not_found() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
        let address = listener.local_addr().unwrap_or_else(|e| panic!("address: {e}"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    }

    fn remote(base: &str, secret: &str) -> RemoteAccounts {
        RemoteAccounts::new(base, ServiceCredential::new(secret), Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("client: {e}"))
    }

    #[tokio::test]
    async fn standings_come_from_auth() {
        let accounts = remote(&auth().await, SECRET);
        let active = accounts.standing(&user("active")).await.ok().flatten();
        assert_eq!(
            active,
            Some(Standing {
                is_active: true,
                roles: vec![Role::User, Role::Auditor],
                session_version: 3,
                ended_sessions: vec!["ended".into()],
                created_at: "2026-01-02T03:04:05Z".parse().ok(),
            })
        );
        assert!(accounts.standing(&user("inactive")).await.ok().flatten().is_some_and(|s| !s.is_active));
        assert_eq!(accounts.standing(&user("gone")).await.ok(), Some(None));
        assert_eq!(accounts.standing(&user("../admin")).await.ok(), Some(None), "not an id");
    }

    #[tokio::test]
    async fn only_auth_saying_no_such_user_makes_an_account_unknown() {
        let base = auth().await;
        assert!(remote(&base, SECRET).standing(&user("broken")).await.is_err(), "a 500 is not an answer");
        assert!(remote(&base, "wrong-secret-value").standing(&user("active")).await.is_err(), "a 401 is not either");
        // A wrong base URL: the 404 is the router's, not auth's verdict on the user.
        assert!(remote(&format!("{base}/elsewhere"), SECRET).standing(&user("active")).await.is_err());
        assert!(remote("http://127.0.0.1:9", SECRET).standing(&user("active")).await.is_err());
    }
}
