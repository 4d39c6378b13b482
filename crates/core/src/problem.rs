//! RFC 9457 problem details: the one place where errors become HTTP responses.
//!
//! Every handler returns `Result<_, ApiError>`. Each variant knows its status code and its
//! stable machine `code`; services build the variant that describes what went wrong and never
//! pick status codes themselves. Server-side failures ([`ApiError::Internal`],
//! [`ApiError::Unavailable`]) log their cause here and show the client a generic detail, so a
//! driver message or a file path never leaks.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

pub use bestow_kernel::violation::FieldViolation;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// Always `about:blank`: the `code` carries the machine meaning.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The HTTP status phrase.
    pub title: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// Stable machine code, e.g. `VALIDATION_FAILED`, `EVENT_NOT_FOUND`.
    pub code: &'static str,
    /// Human explanation, safe to show.
    pub detail: String,
    /// Offending fields, for validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldViolation>,
}

/// Everything a request can fail with, as seen by a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body or query failed validation; lists every offending field.
    #[error("request validation failed")]
    Validation(Vec<FieldViolation>),
    /// 400: a malformed request that is not about one field (bad JSON syntax, bad header).
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    /// 401: no credentials, or credentials that do not verify.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: authenticated, but the caller's roles do not allow this.
    #[error("forbidden")]
    Forbidden,
    /// 403: the caller's roles would allow the route, but a rule forbids this particular act
    /// (e.g. changing one's own roles).
    #[error("{detail}")]
    Refused { code: &'static str, detail: String },
    /// 404: absent, or hidden from this caller.
    #[error("{detail}")]
    NotFound { code: &'static str, detail: String },
    /// 409: conflicts with the current state (taken username, forbidden transition).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// 412: `If-Match` did not match the current version.
    #[error("the resource changed since it was read")]
    PreconditionFailed,
    /// 408: the client took too long to send its request body.
    #[error("the request body arrived too slowly")]
    RequestTimeout,
    /// 413: body larger than the configured limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 415: body is not JSON.
    #[error("expected a JSON body (content-type: application/json)")]
    UnsupportedMediaType,
    /// 422: an idempotency key reused for a different request.
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String },
    /// 429: throttled; the client may retry after the given number of seconds.
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// 405: the path exists, but not with this method.
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    /// 502: an upstream service answered with something that is not a response.
    #[error("bad gateway: {0}")]
    BadGateway(String),
    /// 503: a dependency (storage, another service) is unreachable. The cause is logged.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 504: an upstream service did not answer in time.
    #[error("gateway timeout: {0}")]
    GatewayTimeout(String),
    /// 500: a bug or an unexpected failure. The cause is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 for a single field.
    pub fn field(pointer: impl Into<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldViolation::new(pointer, code, message)])
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::NotFound { code, detail: detail.into() }
    }

    /// 404 for a path no service has.
    pub fn route_not_found() -> Self {
        Self::not_found("ROUTE_NOT_FOUND", "no such route")
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict { code, detail: detail.into() }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::Refused { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "VALIDATION_FAILED",
            Self::BadRequest { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Refused { code, .. }
            | Self::Unprocessable { code, .. } => code,
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::PreconditionFailed => "PRECONDITION_FAILED",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::TooManyRequests { .. } => "RATE_LIMITED",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::BadGateway(_) => "BAD_GATEWAY",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::GatewayTimeout(_) => "UPSTREAM_TIMEOUT",
            Self::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// The client-facing body; server-side causes are replaced by a generic detail.
    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            Self::Internal(_) => "an internal error occurred; it has been logged".to_owned(),
            Self::Unavailable(_) => "a dependency is unavailable; try again shortly".to_owned(),
            Self::BadGateway(_) => "an upstream service failed to answer properly".to_owned(),
            Self::GatewayTimeout(_) => "an upstream service did not answer in time".to_owned(),
            other => other.to_string(),
        };
        let errors = match self {
            Self::Validation(errors) => errors.clone(),
            _ => Vec::new(),
        };
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            code: self.code(),
            detail,
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) => tracing::error!(%cause, "request failed"),
            Self::Unavailable(cause) | Self::BadGateway(cause) | Self::GatewayTimeout(cause) => {
                tracing::warn!(%cause, "dependency unavailable")
            }
            _ => {}
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.to_problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match &self {
            Self::TooManyRequests { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    /// The fallback mapping. Services map `NotFound` and `Conflict` themselves where they
    /// mean something to the client; what reaches here unmapped is a server-side fault.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => ApiError::Unavailable(cause),
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_never_reach_the_client() {
        let problem = ApiError::internal("disk /var/secret full").to_problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("secret"));
    }

    #[test]
    fn validation_lists_fields() {
        let problem = ApiError::field("/password", "too_short", "at least 8 bytes").to_problem();
        assert_eq!((problem.status, problem.code), (400, "VALIDATION_FAILED"));
        assert_eq!(problem.errors[0].pointer, "/password");
    }

    #[test]
    fn rate_limit_carries_retry_after() {
        let response = ApiError::TooManyRequests { retry_after_secs: 42 }.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
