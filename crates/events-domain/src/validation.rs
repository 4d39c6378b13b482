//! Field-level validation shared by the domain parsers.
//!
//! [`FieldError`] names a bad value by its RFC 6901 JSON pointer so an operator can find it in
//! the document they sent. `ObjectReader` reads typed members of one JSON object and collects
//! every problem instead of stopping at the first, which is why the parsers return
//! `Result<T, Vec<FieldError>>`.

use std::{fmt, ops::RangeInclusive, str::FromStr};

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// One invalid value in an operator's document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// RFC 6901 JSON pointer to the offending value, e.g. `/conditions/subConditions/1/days`.
    pub pointer: String,
    /// Stable machine-readable code: `required`, `wrong_type`, `out_of_range`, `unknown_field`,
    /// `unknown_type`, `too_deep`, `too_many_nodes` or `invalid`.
    pub code: &'static str,
    /// Human-readable explanation, for operators.
    pub message: String,
}

impl FieldError {
    /// An error with an explicit code; prefer the named constructors for the common codes.
    pub fn new(pointer: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self { pointer: pointer.into(), code, message: message.into() }
    }

    /// The value is missing or `null`.
    pub fn required(pointer: impl Into<String>) -> Self {
        Self::new(pointer, "required", "is required")
    }

    /// The value has the wrong JSON type; `expected` reads like "a string".
    pub fn wrong_type(pointer: impl Into<String>, expected: &str) -> Self {
        Self::new(pointer, "wrong_type", format!("must be {expected}"))
    }

    /// The value has the right type but lies outside what is allowed.
    pub fn out_of_range(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(pointer, "out_of_range", message)
    }

    /// The member is not part of the schema; refused so typos do not pass silently.
    pub fn unknown_field(pointer: impl Into<String>) -> Self {
        Self::new(pointer, "unknown_field", "is not a known field")
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.message)
    }
}

/// Joins errors into one line, for contexts that only carry a message (serde `Deserialize`).
pub fn summarize(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Appends one reference token to a JSON pointer, escaping `~` and `/` as RFC 6901 requires.
///
/// `child_pointer("/rewards", 0)` is `/rewards/0`; `child_pointer("", "a/b")` is `/a~1b`.
pub fn child_pointer(parent: &str, token: impl fmt::Display) -> String {
    // `~` first: escaping `/` introduces `~` characters that must not be escaped again.
    let escaped = token.to_string().replace('~', "~0").replace('/', "~1");
    format!("{parent}/{escaped}")
}

/// Checks that `text`, found at `pointer`, is not blank and has at most `max_chars` characters.
pub fn check_text(text: &str, pointer: &str, max_chars: usize) -> Result<(), FieldError> {
    if text.trim().is_empty() {
        Err(FieldError::new(pointer, "required", "must not be blank"))
    } else if text.chars().count() > max_chars {
        Err(FieldError::out_of_range(pointer, format!("must be at most {max_chars} characters")))
    } else {
        Ok(())
    }
}

/// Serializes a number as a JSON integer when it has no fractional part, so `50000` read from
/// an operator's document is written back as `50000`, not `50000.0`.
pub fn serialize_number<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    // Beyond 2^53 not every integer is representable, so the float form is the honest one.
    const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;
    if value.fract() == 0.0 && value.abs() <= MAX_EXACT_INTEGER {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// Reads typed members of one JSON object, recording an error for every bad member.
///
/// Every getter returns `None` exactly when it has recorded an error (or, for optional members,
/// when the member is absent), and [`ObjectReader::finish`] reports members nobody asked for.
pub struct ObjectReader<'a> {
    object: &'a Map<String, Value>,
    pointer: &'a str,
    known_keys: Vec<&'static str>,
    errors: Vec<FieldError>,
}

impl<'a> ObjectReader<'a> {
    /// Starts reading `value`, which must be a JSON object.
    pub fn new(value: &'a Value, pointer: &'a str) -> Result<Self, Vec<FieldError>> {
        match value {
            Value::Object(object) => Ok(Self { object, pointer, known_keys: Vec::new(), errors: Vec::new() }),
            Value::Null => Err(vec![FieldError::required(pointer)]),
            _ => Err(vec![FieldError::wrong_type(pointer, "an object")]),
        }
    }

    /// The pointer of member `key` of this object.
    pub fn pointer_to(&self, key: &str) -> String {
        child_pointer(self.pointer, key)
    }

    /// Records an error found by the caller, e.g. in a nested document.
    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// Keeps the value of `result`, or records its errors.
    pub fn absorb<T>(&mut self, result: Result<T, Vec<FieldError>>) -> Option<T> {
        result.map_err(|errors| self.errors.extend(errors)).ok()
    }

    /// Member `key`, absent when missing or `null`.
    pub fn optional(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known_keys.push(key);
        self.object.get(key).filter(|value| !value.is_null())
    }

    /// Member `key`, which must be present and not `null`.
    pub fn required(&mut self, key: &'static str) -> Option<&'a Value> {
        let value = self.optional(key);
        if value.is_none() {
            self.push(FieldError::required(self.pointer_to(key)));
        }
        value
    }

    /// A non-blank string member of at most `max_chars` characters.
    pub fn required_text(&mut self, key: &'static str, max_chars: usize) -> Option<&'a str> {
        let value = self.required(key)?;
        self.text(key, value, max_chars)
    }

    /// Like [`ObjectReader::required_text`], but the member may be absent or `null`.
    pub fn optional_text(&mut self, key: &'static str, max_chars: usize) -> Option<&'a str> {
        let value = self.optional(key)?;
        self.text(key, value, max_chars)
    }

    fn text(&mut self, key: &str, value: &'a Value, max_chars: usize) -> Option<&'a str> {
        let pointer = self.pointer_to(key);
        let Some(text) = value.as_str() else {
            self.push(FieldError::wrong_type(pointer, "a string"));
            return None;
        };
        check_text(text, &pointer, max_chars).map(|()| text).map_err(|error| self.push(error)).ok()
    }

    /// A string member parsed into `T`; a parse failure is recorded as `invalid` with the
    /// parser's message.
    pub fn required_parsed<T>(&mut self, key: &'static str) -> Option<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let value = self.required(key)?;
        let pointer = self.pointer_to(key);
        let Some(text) = value.as_str() else {
            self.push(FieldError::wrong_type(pointer, "a string"));
            return None;
        };
        text.parse().map_err(|error: T::Err| self.push(FieldError::new(pointer, "invalid", error.to_string()))).ok()
    }

    /// An integer member within `range`, converted to `T` (the range must fit in `T`).
    pub fn required_int<T: TryFrom<i64>>(&mut self, key: &'static str, range: RangeInclusive<i64>) -> Option<T> {
        let value = self.required(key)?;
        let pointer = self.pointer_to(key);
        let Some(number) = value.as_number() else {
            self.push(FieldError::wrong_type(pointer, "an integer"));
            return None;
        };
        let converted = integer_of(number).filter(|n| range.contains(n)).and_then(|n| T::try_from(n).ok());
        // An integer, as JSON Schema counts it, however large; a fraction is not.
        let integral = number.is_i64() || number.is_u64() || number.as_f64().is_some_and(|f| f.fract() == 0.0);
        if converted.is_none() {
            self.push(if !integral {
                FieldError::wrong_type(pointer, "an integer")
            } else {
                FieldError::out_of_range(pointer, format!("must be from {} to {}", range.start(), range.end()))
            });
        }
        converted
    }

    /// A number member in `(0, max]`; fractions are allowed.
    pub fn required_positive_number(&mut self, key: &'static str, max: f64) -> Option<f64> {
        let value = self.required(key)?;
        let pointer = self.pointer_to(key);
        match value.as_f64() {
            None => self.push(FieldError::wrong_type(pointer, "a number")),
            Some(number) if number > 0.0 && number <= max => return Some(number),
            Some(_) => {
                self.push(FieldError::out_of_range(pointer, format!("must be greater than 0 and at most {max}")))
            }
        }
        None
    }

    /// An array member, possibly empty.
    pub fn required_array(&mut self, key: &'static str) -> Option<&'a [Value]> {
        let value = self.required(key)?;
        let array = value.as_array().map(Vec::as_slice);
        if array.is_none() {
            self.push(FieldError::wrong_type(self.pointer_to(key), "an array"));
        }
        array
    }

    /// The non-empty array `key` of child nodes (of a tree), each parsed by `parse` at its own
    /// pointer; every child is parsed, so the errors of all of them are reported. `kind` names
    /// a child in the error for an empty array ("condition", "rule").
    pub fn children<T>(
        &mut self,
        key: &'static str,
        kind: &str,
        mut parse: impl FnMut(&Value, &str) -> Result<T, Vec<FieldError>>,
    ) -> Option<Vec<T>> {
        let values = self.required_array(key)?;
        let pointer = self.pointer_to(key);
        if values.is_empty() {
            self.push(FieldError::out_of_range(pointer, format!("must contain at least one {kind}")));
            return None;
        }
        let children: Vec<Option<T>> = values
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let parsed = parse(value, &child_pointer(&pointer, index));
                self.absorb(parsed)
            })
            .collect();
        children.into_iter().collect()
    }

    /// Whether no error was recorded so far.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors recorded so far, without checking for unknown members: for when the schema
    /// of the object is itself unknown (e.g. its `type` was bad).
    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    /// Ends reading: `value` if no error was recorded and no unknown member is present.
    pub fn finish<T>(mut self, value: Option<T>) -> Result<T, Vec<FieldError>> {
        for key in self.object.keys() {
            if !self.known_keys.contains(&key.as_str()) {
                self.errors.push(FieldError::unknown_field(self.pointer_to(key)));
            }
        }
        match value {
            Some(value) if self.errors.is_empty() => Ok(value),
            // A getter that returns `None` always records why, so the fallback only guards
            // against a caller that forgot to; it never yields an empty error list.
            _ if self.errors.is_empty() => Err(vec![FieldError::new(self.pointer, "invalid", "is invalid")]),
            _ => Err(self.errors),
        }
    }
}

/// The integer `number` is, as JSON Schema counts it: `5` and `5.0` alike.
fn integer_of(number: &serde_json::Number) -> Option<i64> {
    /// Integers up to 2^53 are exact in an `f64`.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    number.as_i64().or_else(|| {
        let float = number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT)?;
        #[allow(clippy::cast_possible_truncation)]
        Some(float as i64)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn child_pointer_escapes_per_rfc_6901() {
        let cases = [
            ("", "conditions", "/conditions"),
            ("/rewards", "0", "/rewards/0"),
            ("", "a/b", "/a~1b"),
            ("", "m~n", "/m~0n"),
            ("/x", "~/", "/x/~0~1"),
            ("", "", "/"),
        ];
        for (parent, token, expected) in cases {
            assert_eq!(child_pointer(parent, token), expected, "{parent:?} + {token:?}");
        }
        assert_eq!(child_pointer("/list", 3), "/list/3");
    }

    #[test]
    fn field_error_serializes_camel_case() {
        let error = FieldError::required("/a");
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            json!({"pointer": "/a", "code": "required", "message": "is required"})
        );
    }

    #[test]
    fn serialize_number_keeps_integers_integral() {
        #[derive(Serialize)]
        struct Wrapper(#[serde(serialize_with = "serialize_number")] f64);
        let cases = [(50_000.0, "50000"), (0.1, "0.1"), (-3.0, "-3"), (1e300, "1e+300")];
        for (number, expected) in cases {
            assert_eq!(serde_json::to_string(&Wrapper(number)).unwrap(), expected);
        }
    }

    #[test]
    fn reader_collects_every_error_and_unknown_fields() {
        let value = json!({
            "name": "", "count": 1.5, "big": 99, "rate": "x", "list": {}, "extra": true
        });
        let mut reader = ObjectReader::new(&value, "/doc").unwrap();
        assert_eq!(reader.required_text("name", 10), None);
        assert_eq!(reader.required_int::<u32>("count", 1..=10), None);
        assert_eq!(reader.required_int::<u32>("big", 1..=10), None);
        assert_eq!(reader.required_positive_number("rate", 1.0), None);
        assert_eq!(reader.required_array("list"), None);
        assert_eq!(reader.required("missing"), None);
        assert_eq!(reader.optional_text("absent", 10), None);
        let errors = reader.finish(None::<()>).unwrap_err();
        let found: Vec<_> = errors.iter().map(|e| (e.pointer.as_str(), e.code)).collect();
        assert_eq!(
            found,
            [
                ("/doc/name", "required"),
                ("/doc/count", "wrong_type"),
                ("/doc/big", "out_of_range"),
                ("/doc/rate", "wrong_type"),
                ("/doc/list", "wrong_type"),
                ("/doc/missing", "required"),
                ("/doc/extra", "unknown_field"),
            ]
        );
    }

    #[test]
    fn reader_accepts_valid_members() {
        let value = json!({"name": "Potion", "count": 3, "rate": 0.5, "list": [], "note": null});
        let mut reader = ObjectReader::new(&value, "").unwrap();
        let name = reader.required_text("name", 10);
        let count = reader.required_int::<u32>("count", 1..=10);
        let rate = reader.required_positive_number("rate", 1.0);
        let list = reader.required_array("list").map(<[Value]>::len);
        let note = reader.optional_text("note", 10);
        assert_eq!(
            reader.finish(Some((name, count, rate, list, note))).unwrap(),
            (Some("Potion"), Some(3), Some(0.5), Some(0), None)
        );
    }

    #[test]
    fn reader_requires_an_object() {
        let cases = [(json!(null), "required"), (json!([1]), "wrong_type")];
        for (value, code) in cases {
            let errors = ObjectReader::new(&value, "/x").err().unwrap();
            assert_eq!((errors[0].pointer.as_str(), errors[0].code), ("/x", code));
        }
    }
}
