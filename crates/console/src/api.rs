//! The console's only way to read or change anything: a request to the HTTP API, sent in
//! process through the same router (and so the same gateway admission, permission checks and
//! audit) that serves API clients, with the signed-in user's access token.
//!
//! Every read the console makes is a [`Read`] named below, whose type says what the API
//! answers: the API's own view types (`EventView`, `ClaimView`, `Page<T>`…), so the pages
//! read fields, never JSON members by name.

use std::marker::PhantomData;

use axum::Router;
use axum::body::{Body, to_bytes};
use bestow_auth_domain::view::UserView;
use bestow_core::audit::AuditEntry;
use bestow_core::client::ClientIp;
use bestow_core::page::Page;
use bestow_events_domain::audience::properties::PlayerPropertiesView;
pub use bestow_events_domain::audience::view::{
    AudienceMember, AudienceView, EstimateProgress, MemberCount, MembershipCheck,
};
use bestow_events_domain::evaluate::Eligibility;
use bestow_events_domain::ports::activities::Activity;
use bestow_events_domain::ports::service_keys::ServiceKeyView;
use bestow_events_domain::stats::EventStats;
use bestow_events_domain::view::{ClaimView, EventView};
use bestow_events_domain::wallet::Wallet;

use http::header::{AUTHORIZATION, CONTENT_TYPE, IF_MATCH};
use http::{HeaderValue, Method, Request, StatusCode};

use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceExt;

/// Largest API reply the console reads; a page of 100 claims is far below it.
const MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;

/// The API as the console sees it.
#[derive(Clone)]
pub struct Api {
    router: Router,
}

/// One API call: method, path with query, and what goes with it.
#[derive(Debug)]
pub struct Call<'a> {
    method: Method,
    path: String,
    bearer: Option<&'a str>,
    body: Option<Payload>,
    if_match: Option<String>,
    client: Option<ClientIp>,
}

impl<'a> Call<'a> {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self { method, path: path.into(), bearer: None, body: None, if_match: None, client: None }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::POST, path).json(body)
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(Payload::Json(body));
        self
    }

    /// `body` sent on as `text/csv`, as it arrives (an upload is never held whole).
    pub fn csv(mut self, body: Body) -> Self {
        self.body = Some(Payload::Csv(body));
        self
    }

    pub fn bearer(mut self, token: &'a str) -> Self {
        self.bearer = Some(token);
        self
    }

    pub fn if_match(mut self, version: Option<String>) -> Self {
        self.if_match = version;
        self
    }

    /// The browser's address, so rate limits and audit entries name the real client.
    pub fn from_client(mut self, client: Option<ClientIp>) -> Self {
        self.client = client;
        self
    }
}

/// What a call sends.
#[derive(Debug)]
enum Payload {
    Json(Value),
    Csv(Body),
}

/// A `GET` of the API whose answer is a `T`.
#[derive(Debug)]
pub struct Read<T> {
    path: String,
    reply: PhantomData<fn() -> T>,
}

impl<T> Read<T> {
    fn at(path: impl Into<String>) -> Self {
        Self { path: path.into(), reply: PhantomData }
    }

    /// The path with its query string.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The same read with `pairs` as its query string (blank values left out).
    pub fn query(self, pairs: &[(&str, &str)]) -> Self {
        Self::at(with_query(&self.path, pairs))
    }

    /// The same read with its path and query rewritten by `rewrite` (e.g. a list's filters).
    pub fn rewritten(self, rewrite: impl FnOnce(&str) -> String) -> Self {
        Self::at(rewrite(&self.path))
    }
}

/// `GET /api/v1/events`.
pub fn events() -> Read<Page<EventView>> {
    Read::at("/api/v1/events")
}

/// `GET /api/v1/events/{id}`.
pub fn event(id: &str) -> Read<EventView> {
    Read::at(format!("/api/v1/events/{}", segment(id)))
}

/// `GET /api/v1/events/{id}/stats`: the event's dashboard.
pub fn event_stats(id: &str) -> Read<EventStats> {
    Read::at(format!("/api/v1/events/{}/stats", segment(id)))
}

/// `GET /api/v1/events/{id}/eligibility` (with `userId` and `tierId` in the query).
pub fn eligibility(event_id: &str) -> Read<Eligibility> {
    Read::at(format!("/api/v1/events/{}/eligibility", segment(event_id)))
}

/// `GET /api/v1/claims`.
pub fn claims() -> Read<Page<ClaimView>> {
    Read::at("/api/v1/claims")
}

/// `GET /api/v1/claims/{requestId}`.
pub fn claim(request_id: &str) -> Read<ClaimView> {
    Read::at(format!("/api/v1/claims/{}", segment(request_id)))
}

/// `GET /api/v1/users` (ADMIN).
pub fn users() -> Read<Page<UserView>> {
    Read::at("/api/v1/users")
}

/// `GET /api/v1/users/{id}` (ADMIN).
pub fn user(id: &str) -> Read<UserView> {
    Read::at(format!("/api/v1/users/{}", segment(id)))
}

/// `GET /api/v1/wallets/{userId}`.
pub fn wallet(user_id: &str) -> Read<Wallet> {
    Read::at(format!("/api/v1/wallets/{}", segment(user_id)))
}

/// `GET /api/v1/activities`.
pub fn activities() -> Read<Page<Activity>> {
    Read::at("/api/v1/activities")
}

/// `GET /api/v1/audit-logs`: the events service's audit log.
pub fn events_audit_log() -> Read<Page<AuditEntry>> {
    Read::at("/api/v1/audit-logs")
}

/// `GET /api/v1/auth/audit-logs`: the auth service's audit log.
pub fn auth_audit_log() -> Read<Page<AuditEntry>> {
    Read::at("/api/v1/auth/audit-logs")
}

/// `GET /api/v1/service-keys`.
pub fn service_keys() -> Read<Page<ServiceKeyView>> {
    Read::at("/api/v1/service-keys")
}

/// `GET /api/v1/audiences`.
pub fn audiences() -> Read<Page<AudienceView>> {
    Read::at("/api/v1/audiences")
}

/// `GET /api/v1/audiences/{id}`.
pub fn audience(id: &str) -> Read<AudienceView> {
    Read::at(format!("/api/v1/audiences/{}", segment(id)))
}

/// `GET /api/v1/audiences/{id}/members`: a LIST audience's members, a page at a time.
pub fn audience_members(id: &str) -> Read<Page<AudienceMember>> {
    Read::at(format!("/api/v1/audiences/{}/members", segment(id)))
}

/// `GET /api/v1/audiences/{id}/estimate`: the latest size estimate (404 before any).
pub fn audience_estimate(id: &str) -> Read<EstimateProgress> {
    Read::at(format!("/api/v1/audiences/{}/estimate", segment(id)))
}

/// `GET /api/v1/audiences/{id}/check` (with `userId` in the query).
pub fn audience_check(id: &str) -> Read<MembershipCheck> {
    Read::at(format!("/api/v1/audiences/{}/check", segment(id)))
}

/// `GET /api/v1/players/{userId}/properties`.
pub fn player_properties(user_id: &str) -> Read<PlayerPropertiesView> {
    Read::at(format!("/api/v1/players/{}/properties", segment(user_id)))
}

/// `path` with a query string of the non-blank `pairs`.
pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs.iter().copied().filter(|(_, value)| !value.trim().is_empty()).collect();
    if kept.is_empty() {
        return path.to_owned();
    }
    let query = serde_urlencoded::to_string(&kept).unwrap_or_default();
    format!("{path}?{query}")
}

/// Percent-encodes one path segment taken from user input or an API reply.
pub fn segment(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// What the API answered.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub etag: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// The body as `T`, or the failure as a [`Failure`].
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        if !self.is_success() {
            return Err(self.failure());
        }
        serde_json::from_slice(&self.body)
            .map_err(|error| Failure::unexpected(format!("unreadable API reply: {error}")))
    }

    /// The problem details of a failed call.
    pub fn failure(&self) -> Failure {
        let problem: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        let text = |key: &str| problem.get(key).and_then(Value::as_str).map(str::to_owned);
        Failure {
            status: self.status,
            title: text("title").unwrap_or_else(|| self.status.canonical_reason().unwrap_or("Error").to_owned()),
            detail: text("detail"),
            code: text("code"),
            violations: problem
                .get("errors")
                .and_then(Value::as_array)
                .map(|errors| {
                    errors
                        .iter()
                        .map(|error| {
                            let field =
                                |key: &str| error.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
                            Violation { pointer: field("pointer"), message: field("message") }
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// A refused or failed API call, as shown to the operator.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: StatusCode,
    pub title: String,
    pub detail: Option<String>,
    /// The API's machine-readable code (e.g. `VERSION_MISMATCH`).
    pub code: Option<String>,
    /// The offending fields, for a validation failure.
    pub violations: Vec<Violation>,
}

/// One offending field: a JSON pointer (RFC 6901) into what the console sent, and why.
#[derive(Debug, Clone)]
pub struct Violation {
    pub pointer: String,
    pub message: String,
}

impl Failure {
    pub fn unexpected(detail: String) -> Self {
        Self {
            status: StatusCode::BAD_GATEWAY,
            title: "The API answered unexpectedly".to_owned(),
            detail: Some(detail),
            code: None,
            violations: Vec::new(),
        }
    }

    /// A form field the console itself filled in came back altered.
    pub fn bad_form(field: &str, message: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            title: "The form was altered".to_owned(),
            detail: Some(format!("{field} {message}")),
            code: None,
            violations: Vec::new(),
        }
    }

    /// One line for the operator.
    pub fn message(&self) -> String {
        let mut message = match &self.detail {
            Some(detail) if !detail.is_empty() => format!("{}: {detail}", self.title),
            _ => self.title.clone(),
        };
        let fields: Vec<String> = self.violations.iter().map(|v| format!("{} {}", v.pointer, v.message)).collect();
        if !fields.is_empty() {
            message.push_str(&format!(" ({})", fields.join("; ")));
        }
        message
    }

    /// Lost an `If-Match` race: someone else changed the record first.
    pub fn is_stale_version(&self) -> bool {
        self.status == StatusCode::PRECONDITION_FAILED
    }
}

impl Api {
    /// The API's response as it is, body streamed (for downloads).
    pub async fn forward(&self, call: Call<'_>) -> Result<axum::response::Response, Failure> {
        let mut request = Request::builder().method(call.method).uri(&call.path);
        if let Some(token) = call.bearer {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| Failure::unexpected("the session's token is not a header value".to_owned()))?;
            request = request.header(AUTHORIZATION, value);
        }
        if let Some(version) = &call.if_match {
            let value = HeaderValue::from_str(version)
                .map_err(|_| Failure::bad_form("version", "is not a version the console wrote"))?;
            request = request.header(IF_MATCH, value);
        }
        let body = match call.body {
            Some(Payload::Json(json)) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            Some(Payload::Csv(body)) => {
                request = request.header(CONTENT_TYPE, "text/csv; charset=utf-8");
                body
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).map_err(|error| Failure::unexpected(error.to_string()))?;
        if let Some(client) = call.client {
            request.extensions_mut().insert(client);
        }
        Ok(self.router.clone().oneshot(request).await.unwrap_or_else(|never| match never {}))
    }

    /// `router` serves the API exactly as clients reach it (the gateway in front).
    pub fn new(router: Router) -> Self {
        Self { router }
    }

    pub async fn send(&self, call: Call<'_>) -> Result<Reply, Failure> {
        Reply::read(self.forward(call).await?).await
    }
}

impl Reply {
    /// Reads the API's `response` whole (at most [`MAX_REPLY_BYTES`]).
    pub async fn read(response: axum::response::Response) -> Result<Self, Failure> {
        let (parts, body) = response.into_parts();
        let header =
            |name: http::HeaderName| parts.headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
        let (status, etag, content_type) = (parts.status, header(http::header::ETAG), header(CONTENT_TYPE));
        let body = to_bytes(body, MAX_REPLY_BYTES)
            .await
            .map_err(|error| Failure::unexpected(format!("cannot read the API's reply: {error}")))?;
        Ok(Reply { status, etag, content_type, body: body.to_vec() })
    }
}
