//! The RULE audience's tree: the composites of the condition tree (AND/OR/NOT) over audience
//! leaves, parsed from an operator's JSON with every bad node reported by JSON pointer, and
//! serialized back to exactly that shape.
//!
//! ```json
//! {"type": "AND", "subConditions": [
//!   {"type": "PROPERTY", "name": "country", "op": "IN", "value": ["KR"]},
//!   {"type": "INACTIVE_DAYS", "min": 30},
//!   {"type": "LOGIN_DAYS", "days": 3, "withinDays": 14},
//!   {"type": "ROLLOUT", "percent": 10, "salt": "spring-launch"}
//! ]}
//! ```
//!
//! The activity leaves are those of the condition engine ([`crate::condition::LEAVES`]) with a
//! sliding window: `withinDays` days back from the moment of judging.

use bestow_kernel::ids::AudienceId;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use serde_json::{Map, Value};

use crate::condition::{self, Condition, MAX_DAYS, MAX_DEPTH, MAX_NODES, leaf_description, parse_condition};
use crate::validation::{FieldError, ObjectReader, child_pointer, summarize};

use super::properties::{PropertyValue, is_property_name};

/// The `type`s of the audience leaves besides the condition engine's activity leaves.
pub const AUDIENCE_LEAF_TYPES: [&str; 5] = ["PROPERTY", "ACCOUNT_AGE_DAYS", "INACTIVE_DAYS", "IN_AUDIENCE", "ROLLOUT"];
/// Most values of an `IN` or `NOT_IN` list.
pub const MAX_IN_VALUES: usize = 100;
/// Longest rollout salt, in characters.
pub const MAX_SALT_CHARS: usize = 64;
/// Longest `type` read; bounds what an error message echoes back.
const MAX_TYPE_CHARS: usize = 64;

/// How a `PROPERTY` leaf compares the player's property with its `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PropertyOp {
    /// Equal (a missing property is not).
    Eq,
    /// Not equal (a missing property is not equal).
    Ne,
    /// Equal to one of a list.
    In,
    /// Equal to none of a list (a missing property is in none).
    NotIn,
    /// Greater than (numbers only).
    Gt,
    Gte,
    Lt,
    Lte,
    /// The player has the property, whatever its value (no `value`).
    Exists,
}

impl PropertyOp {
    const ALL: [(&'static str, Self); 9] = [
        ("EQ", Self::Eq),
        ("NE", Self::Ne),
        ("IN", Self::In),
        ("NOT_IN", Self::NotIn),
        ("GT", Self::Gt),
        ("GTE", Self::Gte),
        ("LT", Self::Lt),
        ("LTE", Self::Lte),
        ("EXISTS", Self::Exists),
    ];
}

/// What a `PROPERTY` leaf compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `EXISTS`: nothing.
    None,
    /// `EQ`, `NE`: one value.
    One(PropertyValue),
    /// `IN`, `NOT_IN`: a list of values.
    Many(Vec<PropertyValue>),
    /// `GT`, `GTE`, `LT`, `LTE`: a number.
    Number(f64),
}

/// One node of an audience rule. Build it with [`parse_rule`]; it serializes to the stored
/// shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Met when every sub-rule is.
    And(Vec<Rule>),
    /// Met when any sub-rule is.
    Or(Vec<Rule>),
    /// Met when its rule is not.
    Not(Box<Rule>),
    /// Compares one of the player's properties.
    Property { name: String, op: PropertyOp, value: Operand },
    /// The account is between `min` and `max` whole days old (either may be absent, not both).
    AccountAgeDays { min: Option<u32>, max: Option<u32> },
    /// At least `min` whole days since the player's last login (since the account was created
    /// when they never logged in).
    InactiveDays { min: u32 },
    /// A leaf of the condition engine, counted over the last `within_days` days.
    Activity { condition: Condition, within_days: u32 },
    /// The player is in another audience.
    InAudience(AudienceId),
    /// A stable `percent` of players: those whose bucket of `hash(salt, userId)` is below it.
    Rollout { percent: f64, salt: String },
}

impl Rule {
    /// The node's `type` as stored.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::And(_) => "AND",
            Self::Or(_) => "OR",
            Self::Not(_) => "NOT",
            Self::Property { .. } => "PROPERTY",
            Self::AccountAgeDays { .. } => "ACCOUNT_AGE_DAYS",
            Self::InactiveDays { .. } => "INACTIVE_DAYS",
            Self::Activity { condition, .. } => condition.type_name(),
            Self::InAudience(_) => "IN_AUDIENCE",
            Self::Rollout { .. } => "ROLLOUT",
        }
    }

    /// The node's children, in order.
    pub fn children(&self) -> Vec<&Rule> {
        match self {
            Self::And(rules) | Self::Or(rules) => rules.iter().collect(),
            Self::Not(rule) => vec![rule],
            _ => Vec::new(),
        }
    }

    /// Every audience the tree names through `IN_AUDIENCE`, without repeats, in tree order.
    pub fn references(&self) -> Vec<AudienceId> {
        let mut found = Vec::new();
        self.visit(&mut |rule| {
            if let Self::InAudience(id) = rule
                && !found.contains(id)
            {
                found.push(id.clone());
            }
        });
        found
    }

    /// Calls `f` on every node, parents before children.
    pub fn visit(&self, f: &mut impl FnMut(&Rule)) {
        f(self);
        for child in self.children() {
            child.visit(f);
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self {
            Self::And(rules) | Self::Or(rules) => {
                map.serialize_entry("type", self.type_name())?;
                map.serialize_entry("subConditions", rules)?;
            }
            Self::Not(rule) => {
                map.serialize_entry("type", "NOT")?;
                map.serialize_entry("condition", rule)?;
            }
            Self::Property { name, op, value } => {
                map.serialize_entry("type", "PROPERTY")?;
                map.serialize_entry("name", name)?;
                map.serialize_entry("op", op)?;
                match value {
                    Operand::None => {}
                    Operand::One(value) => map.serialize_entry("value", &value.to_json())?,
                    Operand::Many(values) => {
                        let values: Vec<Value> = values.iter().map(PropertyValue::to_json).collect();
                        map.serialize_entry("value", &values)?;
                    }
                    Operand::Number(number) => {
                        map.serialize_entry("value", &PropertyValue::Number(*number).to_json())?
                    }
                }
            }
            Self::AccountAgeDays { min, max } => {
                map.serialize_entry("type", "ACCOUNT_AGE_DAYS")?;
                if let Some(min) = min {
                    map.serialize_entry("min", min)?;
                }
                if let Some(max) = max {
                    map.serialize_entry("max", max)?;
                }
            }
            Self::InactiveDays { min } => {
                map.serialize_entry("type", "INACTIVE_DAYS")?;
                map.serialize_entry("min", min)?;
            }
            Self::Activity { condition, within_days } => {
                let Ok(Value::Object(members)) = serde_json::to_value(condition) else {
                    return Err(serde::ser::Error::custom("a condition leaf serializes to an object"));
                };
                for (key, value) in &members {
                    map.serialize_entry(key, value)?;
                }
                map.serialize_entry("withinDays", within_days)?;
            }
            Self::InAudience(id) => {
                map.serialize_entry("type", "IN_AUDIENCE")?;
                map.serialize_entry("audienceId", id)?;
            }
            Self::Rollout { percent, salt } => {
                map.serialize_entry("type", "ROLLOUT")?;
                map.serialize_entry("percent", &PropertyValue::Number(*percent).to_json())?;
                map.serialize_entry("salt", salt)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        parse_rule(&value, "").map_err(|errors| de::Error::custom(summarize(&errors)))
    }
}

/// Every `type` an audience rule node may have.
pub fn rule_types() -> impl Iterator<Item = &'static str> {
    condition::COMPOSITE_TYPES
        .into_iter()
        .chain(AUDIENCE_LEAF_TYPES)
        .chain(condition::LEAVES.iter().map(|leaf| leaf.name))
}

/// Parses a rule tree, reporting every bad node by its JSON pointer under `pointer_prefix`.
pub fn parse_rule(value: &Value, pointer_prefix: &str) -> Result<Rule, Vec<FieldError>> {
    let mut parser = RuleParser { nodes: 0 };
    let parsed = parser.node(value, pointer_prefix, 1);
    if parser.nodes <= MAX_NODES {
        return parsed;
    }
    let too_many = FieldError::new(
        pointer_prefix,
        "too_many_nodes",
        format!("a rule has at most {MAX_NODES} nodes, this one has {}", parser.nodes),
    );
    Err(std::iter::once(too_many).chain(parsed.err().unwrap_or_default()).collect())
}

struct RuleParser {
    nodes: usize,
}

impl RuleParser {
    fn node(&mut self, value: &Value, pointer: &str, depth: usize) -> Result<Rule, Vec<FieldError>> {
        if depth > MAX_DEPTH {
            return Err(vec![FieldError::new(
                pointer,
                "too_deep",
                format!("rules nest at most {MAX_DEPTH} levels deep"),
            )]);
        }
        self.nodes += 1;
        let mut reader = ObjectReader::new(value, pointer)?;
        let Some(type_name) = reader.required_text("type", MAX_TYPE_CHARS) else {
            return Err(reader.into_errors());
        };
        let parsed = match type_name {
            "AND" => self.children(&mut reader, depth).map(Rule::And),
            "OR" => self.children(&mut reader, depth).map(Rule::Or),
            "NOT" => reader.required("condition").and_then(|child| {
                let parsed = self.node(child, &reader.pointer_to("condition"), depth + 1);
                reader.absorb(parsed).map(|rule| Rule::Not(Box::new(rule)))
            }),
            "PROPERTY" => read_property(&mut reader),
            "ACCOUNT_AGE_DAYS" => {
                let min = reader.optional("min").and_then(|_| reader.required_int("min", 0..=MAX_DAYS));
                let max = reader.optional("max").and_then(|_| reader.required_int("max", 0..=MAX_DAYS));
                match (min, max) {
                    (None, None) if reader.is_clean() => {
                        reader.push(FieldError::required(reader.pointer_to("min")));
                        None
                    }
                    (Some(min), Some(max)) if min > max => {
                        reader.push(FieldError::out_of_range(reader.pointer_to("max"), "must be at least `min`"));
                        None
                    }
                    (min, max) => Some(Rule::AccountAgeDays { min, max }),
                }
            }
            "INACTIVE_DAYS" => reader.required_int("min", 1..=MAX_DAYS).map(|min| Rule::InactiveDays { min }),
            "IN_AUDIENCE" => reader.required_parsed::<AudienceId>("audienceId").map(Rule::InAudience),
            "ROLLOUT" => {
                let percent = reader.required("percent").and_then(|value| {
                    let percent = value.as_f64().filter(|p| (0.0..=100.0).contains(p));
                    if percent.is_none() {
                        reader.push(FieldError::out_of_range(
                            reader.pointer_to("percent"),
                            "must be a number from 0 to 100",
                        ));
                    }
                    percent
                });
                let salt = reader.required_text("salt", MAX_SALT_CHARS).map(str::to_owned);
                percent.zip(salt).map(|(percent, salt)| Rule::Rollout { percent, salt })
            }
            leaf if leaf_description(leaf).is_some() => {
                let within_days = reader.required_int("withinDays", 1..=MAX_DAYS);
                // The leaf's own members are the condition parser's to read and to check.
                let mut leaf_members: Map<String, Value> = value.as_object().cloned().unwrap_or_default();
                leaf_members.remove("withinDays");
                let condition = reader.absorb(parse_condition(&Value::Object(leaf_members), pointer));
                // The condition parser has checked every other member.
                return match condition.zip(within_days) {
                    Some((condition, within_days)) if reader.is_clean() => {
                        Ok(Rule::Activity { condition, within_days })
                    }
                    _ => Err(reader.into_errors()),
                };
            }
            unknown => {
                return Err(vec![FieldError::new(
                    reader.pointer_to("type"),
                    "unknown_type",
                    format!(
                        "unknown rule type {unknown:?}; expected one of {}",
                        rule_types().collect::<Vec<_>>().join(", ")
                    ),
                )]);
            }
        };
        reader.finish(parsed)
    }

    fn children(&mut self, reader: &mut ObjectReader<'_>, depth: usize) -> Option<Vec<Rule>> {
        let values = reader.required_array("subConditions")?;
        let pointer = reader.pointer_to("subConditions");
        if values.is_empty() {
            reader.push(FieldError::out_of_range(pointer, "must contain at least one rule"));
            return None;
        }
        let children: Vec<Option<Rule>> = values
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let parsed = self.node(value, &child_pointer(&pointer, index), depth + 1);
                reader.absorb(parsed)
            })
            .collect();
        children.into_iter().collect()
    }
}

/// Reads a `PROPERTY` leaf: `name`, `op` and the `value` the op takes.
fn read_property(reader: &mut ObjectReader<'_>) -> Option<Rule> {
    let name = reader.required_text("name", super::properties::MAX_PROPERTY_NAME_CHARS).map(str::to_owned);
    if let Some(name) = &name
        && !is_property_name(name)
    {
        reader.push(FieldError::new(
            reader.pointer_to("name"),
            "invalid",
            "a property name is a letter, then up to 63 letters, digits or `_`",
        ));
        return None;
    }
    let op_text = reader.required_text("op", MAX_TYPE_CHARS)?;
    let Some(op) = PropertyOp::ALL.iter().find(|(text, _)| *text == op_text).map(|(_, op)| *op) else {
        let names: Vec<&str> = PropertyOp::ALL.iter().map(|(text, _)| *text).collect();
        reader.push(FieldError::new(
            reader.pointer_to("op"),
            "invalid",
            format!("must be one of {}", names.join(", ")),
        ));
        return None;
    };
    let pointer = reader.pointer_to("value");
    let value = match op {
        PropertyOp::Exists => {
            if reader.optional("value").is_some() {
                reader.push(FieldError::new(&pointer, "invalid", "EXISTS takes no value"));
                return None;
            }
            Operand::None
        }
        PropertyOp::Eq | PropertyOp::Ne => {
            let value = reader.required("value")?;
            match PropertyValue::from_json(value, &pointer) {
                Ok(value) => Operand::One(value),
                Err(error) => {
                    reader.push(error);
                    return None;
                }
            }
        }
        PropertyOp::In | PropertyOp::NotIn => {
            let values = reader.required_array("value")?;
            if values.is_empty() || values.len() > MAX_IN_VALUES {
                reader.push(FieldError::out_of_range(&pointer, format!("must hold 1 to {MAX_IN_VALUES} values")));
                return None;
            }
            let mut parsed = Vec::new();
            for (index, value) in values.iter().enumerate() {
                match PropertyValue::from_json(value, &child_pointer(&pointer, index)) {
                    Ok(value) => parsed.push(value),
                    Err(error) => reader.push(error),
                }
            }
            if parsed.len() != values.len() {
                return None;
            }
            Operand::Many(parsed)
        }
        PropertyOp::Gt | PropertyOp::Gte | PropertyOp::Lt | PropertyOp::Lte => {
            let value = reader.required("value")?;
            match value.as_f64().filter(|n| n.is_finite()) {
                Some(number) => Operand::Number(number),
                None => {
                    reader.push(FieldError::wrong_type(&pointer, "a number"));
                    return None;
                }
            }
        }
    };
    name.map(|name| Rule::Property { name, op, value })
}
