//! Player properties (`event_db.player_properties`): what the game's servers say of a player,
//! set with a service key and merged per call, and the properties the platform computes itself.

use std::collections::BTreeMap;

use bestow_kernel::ids::UserId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::validation::{FieldError, child_pointer};

/// Most properties one player may have.
pub const MAX_PROPERTIES: usize = 64;
/// Longest property name, in characters: a letter, then letters, digits or `_`.
pub const MAX_PROPERTY_NAME_CHARS: usize = 64;
/// Largest property value, in bytes of its JSON text (strings: of the string).
pub const MAX_PROPERTY_VALUE_BYTES: usize = 256;

/// One property's value: a string, a number or a boolean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PropertyValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl PropertyValue {
    /// The value `value` holds, if it is a string, a number or a boolean within bounds.
    pub fn from_json(value: &Value, pointer: &str) -> Result<Self, FieldError> {
        let parsed = match value {
            Value::Bool(flag) => Self::Bool(*flag),
            Value::Number(number) => Self::Number(
                number
                    .as_f64()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| FieldError::out_of_range(pointer, "must be a finite number"))?,
            ),
            Value::String(text) if text.len() > MAX_PROPERTY_VALUE_BYTES => {
                return Err(FieldError::out_of_range(
                    pointer,
                    format!("must be at most {MAX_PROPERTY_VALUE_BYTES} bytes"),
                ));
            }
            Value::String(text) => Self::Text(text.clone()),
            _ => return Err(FieldError::wrong_type(pointer, "a string, a number, a boolean or null")),
        };
        Ok(parsed)
    }

    /// As JSON, numbers without a fractional part written as integers (as far as every integer
    /// is exact in an `f64`, like [`crate::validation::serialize_number`]).
    pub fn to_json(&self) -> Value {
        const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;
        match self {
            Self::Bool(flag) => Value::Bool(*flag),
            Self::Number(number) if number.fract() == 0.0 && number.abs() <= MAX_EXACT_INTEGER => {
                Value::from(*number as i64)
            }
            Self::Number(number) => serde_json::Number::from_f64(*number).map(Value::Number).unwrap_or(Value::Null),
            Self::Text(text) => Value::String(text.clone()),
        }
    }
}

/// Whether `name` is a property name: `[a-zA-Z][a-zA-Z0-9_]{0,63}`.
pub fn is_property_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|first| first.is_ascii_alphabetic())
        && name.len() <= MAX_PROPERTY_NAME_CHARS
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A player's stored properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlayerProperties {
    /// `_id`: the player.
    pub user_id: UserId,
    pub properties: BTreeMap<String, PropertyValue>,
    pub updated_at: DateTime<Utc>,
    /// Incremented by every write; merges are compare-and-set on it.
    pub version: i64,
}

impl PlayerProperties {
    /// A player nobody set a property of yet (version 0: not stored).
    pub fn empty(user_id: UserId, now: DateTime<Utc>) -> Self {
        Self { user_id, properties: BTreeMap::new(), updated_at: now, version: 0 }
    }

    /// The properties as a JSON object.
    pub fn to_json(&self) -> Map<String, Value> {
        self.properties.iter().map(|(name, value)| (name.clone(), value.to_json())).collect()
    }
}

/// A merge of properties: `Some` sets, `None` (JSON `null`) removes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PropertyPatch(pub BTreeMap<String, Option<PropertyValue>>);

impl PropertyPatch {
    /// Reads a patch body: an object of names to values or `null`.
    pub fn parse(value: &Value) -> Result<Self, Vec<FieldError>> {
        let Value::Object(members) = value else {
            return Err(vec![FieldError::wrong_type("", "an object of property names to values")]);
        };
        let mut errors = Vec::new();
        if members.len() > MAX_PROPERTIES {
            errors.push(FieldError::out_of_range("", format!("sets at most {MAX_PROPERTIES} properties")));
        }
        let mut patch = BTreeMap::new();
        for (name, value) in members.iter().take(MAX_PROPERTIES + 1) {
            let pointer = child_pointer("", name);
            if !is_property_name(name) {
                errors.push(FieldError::new(
                    &pointer,
                    "invalid",
                    "a property name is a letter, then up to 63 letters, digits or `_`",
                ));
                continue;
            }
            match value {
                Value::Null => {
                    patch.insert(name.clone(), None);
                }
                value => match PropertyValue::from_json(value, &pointer) {
                    Ok(parsed) => {
                        patch.insert(name.clone(), Some(parsed));
                    }
                    Err(error) => errors.push(error),
                },
            }
        }
        if errors.is_empty() { Ok(Self(patch)) } else { Err(errors) }
    }

    /// `current` after the merge, one version on; refused when the player would have more than
    /// [`MAX_PROPERTIES`] properties.
    pub fn apply(&self, current: &PlayerProperties, now: DateTime<Utc>) -> Result<PlayerProperties, Vec<FieldError>> {
        let mut next = current.clone();
        for (name, value) in &self.0 {
            match value {
                Some(value) => next.properties.insert(name.clone(), value.clone()),
                None => next.properties.remove(name),
            };
        }
        if next.properties.len() > MAX_PROPERTIES {
            return Err(vec![FieldError::out_of_range(
                "",
                format!(
                    "a player has at most {MAX_PROPERTIES} properties; this merge would leave {}",
                    next.properties.len()
                ),
            )]);
        }
        next.updated_at = now;
        next.version += 1;
        Ok(next)
    }

    /// The names the patch sets or removes, for the audit log.
    pub fn changes(&self) -> Map<String, Value> {
        self.0
            .iter()
            .map(|(name, value)| (name.clone(), value.as_ref().map(PropertyValue::to_json).unwrap_or(Value::Null)))
            .collect()
    }
}

/// What the platform keeps of a player itself.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComputedProperties {
    /// When the account was created; null for an id the platform has no account of.
    pub created_at: Option<DateTime<Utc>>,
    /// The player's last `LOGIN` activity; null before any.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The sum of the player's `PURCHASE` amounts.
    #[serde(serialize_with = "crate::validation::serialize_number")]
    pub purchase_total: f64,
}

/// A player's properties as staff read them (`GET`/`PATCH /api/v1/players/{userId}/properties`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerPropertiesView {
    pub user_id: String,
    /// Name to value (string, number or boolean).
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    pub computed: ComputedProperties,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pointers_and_codes(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors.iter().map(|error| (error.pointer.as_str(), error.code)).collect()
    }

    fn instant(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn player(properties: &[(&str, Value)]) -> PlayerProperties {
        let mut player = PlayerProperties::empty(UserId::parse("player-1").unwrap(), instant("2026-01-01T00:00:00Z"));
        for (name, value) in properties {
            player.properties.insert((*name).to_owned(), PropertyValue::from_json(value, "").unwrap());
        }
        player.version = 4;
        player
    }

    #[test]
    fn property_names_follow_the_pattern() {
        let longest = format!("a{}", "B9_".repeat(21));
        let too_long = format!("{longest}x");
        assert_eq!((longest.len(), too_long.len()), (64, 65));
        let cases = [
            ("country", true),
            ("vipLevel", true),
            ("v", true),
            ("Z_9", true),
            (longest.as_str(), true),
            (too_long.as_str(), false),
            ("", false),
            ("1st", false),
            ("_private", false),
            ("vip-level", false),
            ("vip level", false),
            ("país", false),
            ("é", false),
        ];
        for (name, valid) in cases {
            assert_eq!(is_property_name(name), valid, "{name:?}");
            let patch = PropertyPatch::parse(&json!({ name: 1 }));
            assert_eq!(patch.is_ok(), valid, "{name:?}");
            if !valid {
                let pointer = crate::validation::child_pointer("", name);
                assert_eq!(pointers_and_codes(&patch.unwrap_err()), [(pointer.as_str(), "invalid")]);
            }
        }
    }

    #[test]
    fn a_patch_sets_bounded_values_and_removes_with_null() {
        // 128 two-byte characters are 256 bytes; one more is 258.
        let at_the_bound = "é".repeat(128);
        let patch = PropertyPatch::parse(&json!({
            "country": "KR", "vipLevel": 3, "ratio": 0.25, "tester": false, "legacy": null,
            "note": at_the_bound, "ascii": "x".repeat(256), "blank": ""
        }))
        .unwrap();
        let expected: BTreeMap<String, Option<PropertyValue>> = [
            ("country", Some(PropertyValue::Text("KR".to_owned()))),
            ("vipLevel", Some(PropertyValue::Number(3.0))),
            ("ratio", Some(PropertyValue::Number(0.25))),
            ("tester", Some(PropertyValue::Bool(false))),
            ("legacy", None),
            ("note", Some(PropertyValue::Text("é".repeat(128)))),
            ("ascii", Some(PropertyValue::Text("x".repeat(256)))),
            ("blank", Some(PropertyValue::Text(String::new()))),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        assert_eq!(patch.0, expected);
        assert_eq!(patch.changes()["legacy"], Value::Null);
        assert_eq!(patch.changes()["vipLevel"], json!(3));
    }

    #[test]
    fn a_patch_refuses_what_a_property_cannot_hold() {
        let cases = [
            (json!({"note": "x".repeat(257)}), vec![("/note", "out_of_range")]),
            (json!({"note": "é".repeat(129)}), vec![("/note", "out_of_range")]),
            (json!({"note": format!("{}x", "é".repeat(128))}), vec![("/note", "out_of_range")]),
            (json!({"profile": {"level": 3}}), vec![("/profile", "wrong_type")]),
            (json!({"tags": ["a", "b"]}), vec![("/tags", "wrong_type")]),
            (
                json!({"ok": 1, "1bad": 2, "tags": [], "a/b": 3}),
                vec![("/1bad", "invalid"), ("/a~1b", "invalid"), ("/tags", "wrong_type")],
            ),
            (json!(["country"]), vec![("", "wrong_type")]),
            (json!(null), vec![("", "wrong_type")]),
        ];
        for (value, expected) in cases {
            let errors = PropertyPatch::parse(&value).unwrap_err();
            let mut found = pointers_and_codes(&errors);
            found.sort_unstable();
            assert_eq!(found, expected, "{value}");
        }
        let many: Map<String, Value> = (0..=MAX_PROPERTIES).map(|n| (format!("p{n}"), json!(n))).collect();
        let errors = PropertyPatch::parse(&Value::Object(many)).unwrap_err();
        assert_eq!(pointers_and_codes(&errors), [("", "out_of_range")]);
        let most: Map<String, Value> = (0..MAX_PROPERTIES).map(|n| (format!("p{n}"), json!(n))).collect();
        assert_eq!(PropertyPatch::parse(&Value::Object(most)).unwrap().0.len(), MAX_PROPERTIES);
    }

    #[test]
    fn applying_merges_and_moves_one_version_on() {
        let current = player(&[("country", json!("JP")), ("legacy", json!(true)), ("vipLevel", json!(2))]);
        let now = instant("2026-03-15T12:00:00Z");
        let patch =
            PropertyPatch::parse(&json!({"country": "KR", "legacy": null, "platform": "ios", "gone": null})).unwrap();
        let next = patch.apply(&current, now).unwrap();
        assert_eq!(
            Value::Object(next.to_json()),
            json!({"country": "KR", "platform": "ios", "vipLevel": 2}),
            "set, replaced, removed, kept; removing a missing property is no error"
        );
        assert_eq!((next.version, next.updated_at, &next.user_id), (5, now, &current.user_id));
        assert_eq!(current.properties.len(), 3, "the current properties are left as they were");
    }

    #[test]
    fn applying_refuses_more_than_the_most_properties() {
        let full: Vec<(String, Value)> = (0..MAX_PROPERTIES).map(|n| (format!("p{n}"), json!(n))).collect();
        let full: Vec<(&str, Value)> = full.iter().map(|(name, value)| (name.as_str(), value.clone())).collect();
        let current = player(&full);
        let now = instant("2026-03-15T12:00:00Z");

        let one_more = PropertyPatch::parse(&json!({"extra": 1})).unwrap();
        let errors = one_more.apply(&current, now).unwrap_err();
        assert_eq!(pointers_and_codes(&errors), [("", "out_of_range")]);

        let replacing = PropertyPatch::parse(&json!({"p0": "changed", "p1": 7})).unwrap();
        assert_eq!(replacing.apply(&current, now).unwrap().properties.len(), MAX_PROPERTIES);
        let swapping = PropertyPatch::parse(&json!({"p0": null, "extra": 1})).unwrap();
        let swapped = swapping.apply(&current, now).unwrap();
        assert_eq!((swapped.properties.len(), swapped.version), (MAX_PROPERTIES, 5));
    }

    #[test]
    fn numbers_are_written_back_integral_when_they_are() {
        let cases = [
            (json!(3), "3"),
            (json!(3.0), "3"),
            (json!(-40), "-40"),
            (json!(0.25), "0.25"),
            (json!(9_007_199_254_740_992_u64), "9007199254740992"),
            (json!(-9_007_199_254_740_992_i64), "-9007199254740992"),
            (json!(1e20), "1e+20"),
            (json!(true), "true"),
            (json!("3"), "\"3\""),
        ];
        for (value, written) in cases {
            let property = PropertyValue::from_json(&value, "/p").unwrap();
            assert_eq!(serde_json::to_string(&property.to_json()).unwrap(), written, "{value}");
        }
        let stored = player(&[("vipLevel", json!(3)), ("ratio", json!(0.5))]);
        assert_eq!(serde_json::to_string(&stored.to_json()).unwrap(), r#"{"ratio":0.5,"vipLevel":3}"#);
        // The stored form reads back as it was written.
        let read: PlayerProperties = serde_json::from_value(serde_json::to_value(&stored).unwrap()).unwrap();
        assert_eq!(read, stored);
    }

    #[test]
    fn computed_properties_serialize_camel_case_with_an_integral_total() {
        let computed = ComputedProperties {
            created_at: Some(instant("2026-01-01T00:00:00Z")),
            last_seen_at: None,
            purchase_total: 120.0,
        };
        assert_eq!(
            serde_json::to_value(computed).unwrap(),
            json!({"createdAt": "2026-01-01T00:00:00Z", "lastSeenAt": null, "purchaseTotal": 120})
        );
    }
}
