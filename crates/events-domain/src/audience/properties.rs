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

    /// As JSON, numbers without a fractional part written as integers.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Bool(flag) => Value::Bool(*flag),
            Self::Number(number) if number.fract() == 0.0 && number.abs() < 9e15 => Value::from(*number as i64),
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
