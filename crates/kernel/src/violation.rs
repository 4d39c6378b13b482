//! A refused input field, as every 400 names it.

use serde::Serialize;
use utoipa::ToSchema;

/// One offending input field, located by a JSON pointer into the request
/// (`/password`, `/rewards/0/details/points`, or `?limit` style for query parameters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldViolation {
    /// JSON pointer (RFC 6901) to the field, or `?name` for a query parameter.
    pub pointer: String,
    /// Stable machine reason, e.g. `required`, `too_short`, `unknown_field`.
    pub code: String,
    /// Human explanation.
    pub message: String,
}

impl FieldViolation {
    pub fn new(pointer: impl Into<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { pointer: pointer.into(), code: code.into(), message: message.into() }
    }
}
