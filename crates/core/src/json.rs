//! Body and query extractors whose rejections are problem details naming the field.
//!
//! Deserialisation goes through `serde_path_to_error`, so a wrong type deep inside a body is
//! reported at its JSON pointer. Request DTOs use `#[serde(deny_unknown_fields)]`; an unknown
//! or missing field is reported at the field itself, not at its parent object.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use serde::de::DeserializeOwned;

use crate::problem::{ApiError, FieldViolation};

/// A JSON body of type `T`, rejected with a 400 that names the offending field.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest { code: "BODY_UNREADABLE", detail: rejection.body_text() }
            }
        })?;
        parse_json(&bytes).map(ValidJson)
    }
}

/// Deserialises `bytes` as `T`, mapping errors to field violations. A number written with a
/// zero fraction (`5.0`, `1e2`) is an integer, as JSON Schema counts it: where the direct
/// parse meets one in an integer field, the body is read again with such numbers as integers.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match parse_json_exactly(bytes) {
        Err(ApiError::Validation(violations)) if violations.iter().any(|v| v.message.contains("floating point")) => {
            let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
                return Err(ApiError::Validation(violations));
            };
            if !integral_floats_as_integers(&mut value) {
                return Err(ApiError::Validation(violations));
            }
            serde_path_to_error::deserialize(value).map_err(|error| {
                let pointer = to_pointer(&error.path().to_string());
                ApiError::Validation(vec![violation(&pointer, &error.inner().to_string())])
            })
        }
        other => other,
    }
}

/// Rewrites every number with a zero fraction that an `i64` holds exactly as that integer;
/// `true` if it changed anything.
fn integral_floats_as_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    /// Integers up to 2^53 are exact in an `f64`.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        Value::Number(number) if number.is_f64() => match number.as_f64() {
            Some(float) if float.fract() == 0.0 && float.abs() <= EXACT => {
                #[allow(clippy::cast_possible_truncation)]
                let integer = float as i64;
                *value = Value::from(integer);
                true
            }
            _ => false,
        },
        Value::Array(items) => {
            items.iter_mut().fold(false, |changed, item| integral_floats_as_integers(item) | changed)
        }
        Value::Object(members) => {
            members.values_mut().fold(false, |changed, member| integral_floats_as_integers(member) | changed)
        }
        _ => false,
    }
}

fn parse_json_exactly<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let inner = error.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest {
                code: "MALFORMED_JSON",
                detail: format!("the body is not valid JSON: {inner}"),
            };
        }
        let pointer = to_pointer(&error.path().to_string());
        ApiError::Validation(vec![violation(&pointer, &inner.to_string())])
    })?;
    deserializer.end().map_err(|_| ApiError::BadRequest {
        code: "MALFORMED_JSON",
        detail: "trailing characters after the JSON body".to_owned(),
    })?;
    Ok(value)
}

/// Query parameters of type `T`, rejected with a 400 that names the parameter (`?limit`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(ValidQuery).map_err(|error| {
            let path = error.path().to_string();
            let field = field_named_in(&error.inner().to_string()).unwrap_or(path);
            ApiError::Validation(vec![FieldViolation::new(
                format!("?{}", field.trim_start_matches('.')),
                "invalid",
                error.inner().to_string(),
            )])
        })
    }
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// `rewards[0].details.points` → `/rewards/0/details/points`; `.` (the root) → ``.
fn to_pointer(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    path.split('.')
        .flat_map(|segment| segment.split('['))
        .map(|segment| segment.trim_end_matches(']'))
        .filter(|segment| !segment.is_empty())
        .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// serde reports unknown and missing fields against the parent object; point at the field.
fn violation(parent: &str, message: &str) -> FieldViolation {
    let code = if message.starts_with("unknown field") {
        "unknown_field"
    } else if message.starts_with("missing field") {
        "required"
    } else {
        "invalid"
    };
    let pointer = match (code, field_named_in(message)) {
        ("unknown_field" | "required", Some(field)) if !parent.ends_with(&format!("/{field}")) => {
            format!("{parent}/{field}")
        }
        _ => parent.to_owned(),
    };
    FieldViolation::new(pointer, code, message)
}

/// The first back-quoted name in a serde message: "unknown field `roles`, expected …".
fn field_named_in(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Register {
        #[allow(dead_code)]
        username: String,
        #[allow(dead_code)]
        password: String,
    }

    #[derive(Debug, Deserialize)]
    struct Outer {
        rewards: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    struct Inner {
        points: u32,
    }

    fn first_violation(result: Result<impl std::fmt::Debug, ApiError>) -> FieldViolation {
        match result {
            Err(ApiError::Validation(mut errors)) => errors.remove(0),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_field_points_at_the_field() {
        let v = first_violation(parse_json::<Register>(br#"{"username":"a","password":"b","roles":["ADMIN"]}"#));
        assert_eq!((v.pointer.as_str(), v.code.as_str()), ("/roles", "unknown_field"));
    }

    #[test]
    fn missing_field_points_at_the_field() {
        let v = first_violation(parse_json::<Register>(br#"{"username":"a"}"#));
        assert_eq!((v.pointer.as_str(), v.code.as_str()), ("/password", "required"));
    }

    #[test]
    fn nested_type_errors_carry_the_path() {
        let v = first_violation(parse_json::<Outer>(br#"{"rewards":[{"points":1},{"points":"x"}]}"#));
        assert_eq!(v.pointer, "/rewards/1/points");
    }

    #[test]
    fn numbers_with_a_zero_fraction_are_integers() {
        let outer = parse_json::<Outer>(br#"{"rewards":[{"points":1},{"points":2.0},{"points":3e1}]}"#).unwrap();
        assert_eq!(outer.rewards.iter().map(|r| r.points).collect::<Vec<_>>(), [1, 2, 30]);
        let v = first_violation(parse_json::<Outer>(br#"{"rewards":[{"points":2.5}]}"#));
        assert_eq!(v.pointer, "/rewards/0/points");
        let v = first_violation(parse_json::<Outer>(br#"{"rewards":[{"points":-2.0}]}"#));
        assert_eq!(v.pointer, "/rewards/0/points", "still out of an unsigned field's range");
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        assert!(matches!(parse_json::<Register>(b"{"), Err(ApiError::BadRequest { code: "MALFORMED_JSON", .. })));
    }
}
