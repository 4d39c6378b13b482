//! The external fact provider: an HTTP endpoint the operator configures, asked for a player's
//! activities instead of (not in addition to) the ones pushed to this service.
//!
//! # Protocol
//!
//! `POST {url}` with the JSON body `{"userId", "types": [...], "from": <RFC 3339 or null>,
//! "to": <RFC 3339>}` asks for the player's activities of those types with `from <= occurredAt
//! < to` (`from` null: no lower bound). Headers: `X-Bestow-Timestamp: <unix seconds>` and
//! `X-Bestow-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">` keyed with the
//! configured secret, the same scheme as the reward webhook, so the endpoint can check that the
//! request is ours and fresh. The expected answer is a 2xx with
//! `{"activities": [{"type", "occurredAt", "attributes"?}]}`.
//!
//! # Failures
//!
//! Each attempt is bounded by a timeout. A timeout, a connection failure, a 5xx or a 429 is
//! transient: it is retried with exponential backoff and jitter, and reported as
//! [`FactError::Transient`] once the retries are spent. Any other status, or an answer that
//! is not the JSON above, is [`FactError::Permanent`] at once: asking again would not help.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use bestow_core::ids::UserId;

use crate::conditions::activities::{ActivityProvider, FactError, FactFailure};
use crate::domain::evaluate::{ActivityFact, FactQuery};
use crate::domain::saga::RetryPolicy;
use crate::grants::webhook::sign;

/// How to reach the endpoint and how hard to try.
#[derive(Debug, Clone)]
pub struct ExternalFactsSettings {
    /// Where the requests go, `http://` or `https://`.
    pub url: String,
    /// HMAC-SHA256 key of the signatures.
    pub secret: String,
    /// Bound of one attempt, connection included.
    pub timeout: Duration,
    /// Attempts after the first one, for transient failures.
    pub retries: u32,
    /// Delay before the first retry; doubles with each further retry (with jitter), up to
    /// [`MAX_BACKOFF`].
    pub backoff: Duration,
}

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The answer of the endpoint.
#[derive(Debug, Deserialize)]
struct FactsAnswer {
    activities: Vec<ExternalActivity>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExternalActivity {
    #[serde(rename = "type")]
    activity_type: String,
    occurred_at: DateTime<Utc>,
    #[serde(default)]
    attributes: Option<Map<String, Value>>,
}

/// Reads facts from the operator's HTTP endpoint.
pub struct HttpActivityProvider {
    client: reqwest::Client,
    url: String,
    secret: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for HttpActivityProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("HttpActivityProvider").field("url", &self.url).finish_non_exhaustive()
    }
}

impl HttpActivityProvider {
    pub fn new(settings: ExternalFactsSettings) -> Result<Self, String> {
        let client = bestow_core::outbound::client_builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|e| format!("cannot build the fact provider client: {e}"))?;
        let millis = |d: Duration| TimeDelta::milliseconds(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let retry = RetryPolicy {
            max_attempts: settings.retries.saturating_add(1),
            base_delay: millis(settings.backoff),
            max_delay: millis(MAX_BACKOFF),
        };
        Ok(Self { client, url: settings.url, secret: settings.secret, retry })
    }

    /// One signed request.
    async fn attempt(&self, body: &str) -> Result<Vec<ActivityFact>, FactError> {
        let timestamp = Utc::now().timestamp().to_string();
        let signature = sign(&self.secret, &timestamp, body);
        let sent = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-bestow-timestamp", &timestamp)
            .header("x-bestow-signature", format!("sha256={signature}"))
            .body(body.to_owned())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) if error.is_timeout() => return Err(FactError::Transient(FactFailure::TimedOut)),
            // reqwest's errors quote the URL; keep only the kind of failure.
            Err(error) if error.is_connect() => return Err(FactError::Transient(FactFailure::Unreachable)),
            Err(_) => return Err(FactError::Transient(FactFailure::RequestFailed)),
        };
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(FactError::Transient(FactFailure::Status(status)));
        }
        if !status.is_success() {
            return Err(FactError::Permanent(FactFailure::Status(status)));
        }
        let bytes = response.bytes().await.map_err(|error| {
            FactError::Transient(if error.is_timeout() { FactFailure::AnswerTimedOut } else { FactFailure::CutOff })
        })?;
        let answer: FactsAnswer = serde_json::from_slice(&bytes)
            .map_err(|error| FactError::Permanent(FactFailure::Malformed(Arc::new(error))))?;
        Ok(answer
            .activities
            .into_iter()
            .map(|activity| ActivityFact {
                activity_type: activity.activity_type,
                occurred_at: activity.occurred_at,
                attributes: activity.attributes.unwrap_or_default(),
            })
            .collect())
    }
}

/// The request body for `query`.
fn request_body(user_id: &str, query: &FactQuery) -> String {
    json!({ "userId": user_id, "types": query.types, "from": query.from, "to": query.to }).to_string()
}

#[async_trait]
impl ActivityProvider for HttpActivityProvider {
    async fn facts(&self, user_id: &UserId, query: &FactQuery) -> Result<Vec<ActivityFact>, FactError> {
        let body = request_body(user_id.as_str(), query);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.attempt(&body).await {
                Err(FactError::Transient(reason)) if self.retry.allows_another(attempts) => {
                    let delay = self.retry.delay(attempts, rand::random::<f64>());
                    tracing::debug!(attempts, %reason, "external facts failed; retrying");
                    tokio::time::sleep(delay.to_std().unwrap_or_default()).await;
                }
                Err(FactError::Transient(last)) => {
                    return Err(FactError::Transient(FactFailure::GaveUp { attempts, last: Box::new(last) }));
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! Against a real HTTP server on a loopback port that checks the signature and can be told
    //! to answer, fail with a status, or stall past the client's timeout.

    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;

    use super::*;

    const SECRET: &str = "facts-secret";

    /// What the server does with each request, by its 1-based number.
    #[derive(Clone, Copy)]
    enum Behaviour {
        Answer,
        /// 503 for the first `n` requests, then answers.
        FailFirst(usize),
        Status(StatusCode),
        /// Waits longer than any client timeout of these tests, then answers.
        Stall,
        Malformed,
    }

    #[derive(Clone)]
    struct Endpoint {
        behaviour: Behaviour,
        calls: Arc<AtomicUsize>,
        bodies: Arc<std::sync::Mutex<Vec<Value>>>,
    }

    async fn handle(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Bytes) -> Response {
        let call = endpoint.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let (timestamp, signature) = (header("x-bestow-timestamp"), header("x-bestow-signature"));
        let body_text = std::str::from_utf8(&body).unwrap_or_default();
        let fresh = timestamp.parse::<i64>().is_ok_and(|at| (Utc::now().timestamp() - at).abs() < 60);
        if !fresh || signature != format!("sha256={}", sign(SECRET, &timestamp, body_text)) {
            return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
        }
        endpoint.bodies.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
        let answer = json!({"activities": [
            {"type": "LOGIN", "occurredAt": "2026-03-02T10:00:00Z"},
            {"type": "PURCHASE", "occurredAt": "2026-03-03T10:00:00+09:00", "attributes": {"amount": 12.5}},
        ]});
        match endpoint.behaviour {
            Behaviour::Answer => axum::Json(answer).into_response(),
            Behaviour::FailFirst(n) if call <= n => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            Behaviour::FailFirst(_) => axum::Json(answer).into_response(),
            Behaviour::Status(status) => status.into_response(),
            Behaviour::Stall => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                axum::Json(answer).into_response()
            }
            Behaviour::Malformed => axum::Json(json!({"facts": []})).into_response(),
        }
    }

    /// Starts an endpoint on 127.0.0.1:0; returns it and its URL.
    async fn endpoint(behaviour: Behaviour) -> (Endpoint, String) {
        let endpoint = Endpoint { behaviour, calls: Arc::default(), bodies: Arc::default() };
        let app = Router::new().route("/facts", post(handle)).with_state(endpoint.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/facts", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (endpoint, url)
    }

    fn provider(url: &str, secret: &str, retries: u32) -> HttpActivityProvider {
        HttpActivityProvider::new(ExternalFactsSettings {
            url: url.to_owned(),
            secret: secret.to_owned(),
            timeout: Duration::from_millis(300),
            retries,
            backoff: Duration::from_millis(10),
        })
        .unwrap()
    }

    fn query() -> FactQuery {
        FactQuery {
            types: BTreeSet::from(["LOGIN".to_owned(), "PURCHASE".to_owned()]),
            from: Some("2026-03-01T00:00:00Z".parse().unwrap()),
            to: "2026-03-20T00:00:00Z".parse().unwrap(),
        }
    }

    #[tokio::test]
    async fn answers_become_facts_and_requests_are_signed() {
        let (endpoint, url) = endpoint(Behaviour::Answer).await;
        let facts = provider(&url, SECRET, 2).facts(&UserId::parse("player-1").unwrap(), &query()).await.unwrap();
        assert_eq!(facts.len(), 2);
        assert_eq!((facts[0].activity_type.as_str(), facts[0].attributes.len()), ("LOGIN", 0));
        assert_eq!(facts[1].occurred_at, "2026-03-03T01:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(facts[1].attributes["amount"], json!(12.5));
        assert_eq!(endpoint.calls.load(Ordering::SeqCst), 1);
        let sent = endpoint.bodies.lock().unwrap()[0].clone();
        assert_eq!(
            sent,
            json!({"userId": "player-1", "types": ["LOGIN", "PURCHASE"],
                   "from": "2026-03-01T00:00:00Z", "to": "2026-03-20T00:00:00Z"})
        );
        let no_lower_bound = FactQuery { from: None, ..query() };
        provider(&url, SECRET, 0).facts(&UserId::parse("player-1").unwrap(), &no_lower_bound).await.unwrap();
        assert_eq!(endpoint.bodies.lock().unwrap()[1]["from"], Value::Null);
    }

    #[tokio::test]
    async fn a_wrong_secret_is_refused_for_good() {
        let (endpoint, url) = endpoint(Behaviour::Answer).await;
        let error =
            provider(&url, "not-the-secret", 3).facts(&UserId::parse("player-1").unwrap(), &query()).await.unwrap_err();
        assert!(matches!(error, FactError::Permanent(FactFailure::Status(status)) if status == 401), "{error:?}");
        assert_eq!(error.to_string(), "facts unavailable: HTTP 401 Unauthorized");
        assert_eq!(endpoint.calls.load(Ordering::SeqCst), 1, "4xx is not retried");
    }

    #[tokio::test]
    async fn transient_5xx_are_retried_until_an_answer() {
        let (endpoint, url) = endpoint(Behaviour::FailFirst(2)).await;
        let facts = provider(&url, SECRET, 2).facts(&UserId::parse("player-1").unwrap(), &query()).await.unwrap();
        assert_eq!(facts.len(), 2);
        assert_eq!(endpoint.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn persistent_5xx_end_transient_after_the_retries() {
        let (endpoint, url) = endpoint(Behaviour::Status(StatusCode::BAD_GATEWAY)).await;
        let error = provider(&url, SECRET, 3).facts(&UserId::parse("player-1").unwrap(), &query()).await.unwrap_err();
        assert!(matches!(&error, FactError::Transient(reason) if reason.to_string().contains("502")), "{error:?}");
        assert_eq!(endpoint.calls.load(Ordering::SeqCst), 4, "first attempt and three retries");
    }

    #[tokio::test]
    async fn timeouts_are_transient_and_bounded() {
        let (endpoint, url) = endpoint(Behaviour::Stall).await;
        let started = Instant::now();
        let error = provider(&url, SECRET, 1).facts(&UserId::parse("player-1").unwrap(), &query()).await.unwrap_err();
        assert!(
            matches!(&error, FactError::Transient(reason) if reason.to_string().contains("timed out")),
            "{error:?}"
        );
        assert_eq!(endpoint.calls.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() < Duration::from_secs(2), "each attempt is cut at the timeout");
    }

    #[tokio::test]
    async fn refused_connections_are_transient() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let error = provider(&format!("http://127.0.0.1:{port}/facts"), SECRET, 1)
            .facts(&UserId::parse("player-1").unwrap(), &query())
            .await
            .unwrap_err();
        assert!(
            matches!(&error, FactError::Transient(reason) if reason.to_string().contains("connection")),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn client_errors_and_malformed_answers_are_permanent() {
        for behaviour in [Behaviour::Status(StatusCode::NOT_FOUND), Behaviour::Malformed] {
            let (endpoint, url) = endpoint(behaviour).await;
            let error =
                provider(&url, SECRET, 3).facts(&UserId::parse("player-1").unwrap(), &query()).await.unwrap_err();
            assert!(matches!(error, FactError::Permanent(_)), "{error:?}");
            assert_eq!(endpoint.calls.load(Ordering::SeqCst), 1);
        }
    }
}
