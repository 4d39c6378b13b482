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

use super::properties::{MAX_PROPERTY_NAME_CHARS, PropertyValue, is_property_name};

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
                    let pointer = reader.pointer_to("percent");
                    match value.as_f64() {
                        Some(percent) if (0.0..=100.0).contains(&percent) => Some(percent),
                        Some(_) => {
                            reader.push(FieldError::out_of_range(pointer, "must be a number from 0 to 100"));
                            None
                        }
                        None => {
                            reader.push(FieldError::wrong_type(pointer, "a number from 0 to 100"));
                            None
                        }
                    }
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
        reader.children("subConditions", "rule", |value, pointer| self.node(value, pointer, depth + 1))
    }
}

/// Reads a `PROPERTY` leaf: `name`, `op` and the `value` the op takes. Every member is read
/// whatever is wrong with another, so a bad `name` or `op` is not also reported as an unknown
/// `value`.
fn read_property(reader: &mut ObjectReader<'_>) -> Option<Rule> {
    let name = reader.required_text("name", MAX_PROPERTY_NAME_CHARS).map(str::to_owned).filter(|name| {
        let valid = is_property_name(name);
        if !valid {
            reader.push(FieldError::new(
                reader.pointer_to("name"),
                "invalid",
                "a property name is a letter, then up to 63 letters, digits or `_`",
            ));
        }
        valid
    });
    let op = reader.required_text("op", MAX_TYPE_CHARS).and_then(|text| {
        let op = PropertyOp::ALL.iter().find(|(name, _)| *name == text).map(|(_, op)| *op);
        if op.is_none() {
            let names: Vec<&str> = PropertyOp::ALL.iter().map(|(name, _)| *name).collect();
            reader.push(FieldError::new(
                reader.pointer_to("op"),
                "invalid",
                format!("must be one of {}", names.join(", ")),
            ));
        }
        op
    });
    let Some(op) = op else {
        // What `value` must be depends on the op, so without one it cannot be checked.
        let _ = reader.optional("value");
        return None;
    };
    let value = read_operand(reader, op);
    name.zip(value).map(|(name, value)| Rule::Property { name, op, value })
}

/// Reads the `value` of a `PROPERTY` leaf as `op` takes it.
fn read_operand(reader: &mut ObjectReader<'_>, op: PropertyOp) -> Option<Operand> {
    let pointer = reader.pointer_to("value");
    match op {
        PropertyOp::Exists => match reader.optional("value") {
            Some(_) => {
                reader.push(FieldError::new(&pointer, "invalid", "EXISTS takes no value"));
                None
            }
            None => Some(Operand::None),
        },
        PropertyOp::Eq | PropertyOp::Ne => {
            let value = reader.required("value")?;
            PropertyValue::from_json(value, &pointer).map(Operand::One).map_err(|error| reader.push(error)).ok()
        }
        PropertyOp::In | PropertyOp::NotIn => {
            let values = reader.required_array("value")?;
            if values.is_empty() || values.len() > MAX_IN_VALUES {
                reader.push(FieldError::out_of_range(&pointer, format!("must hold 1 to {MAX_IN_VALUES} values")));
                return None;
            }
            let parsed: Vec<Option<PropertyValue>> = values
                .iter()
                .enumerate()
                .map(|(index, value)| {
                    PropertyValue::from_json(value, &child_pointer(&pointer, index))
                        .map_err(|error| reader.push(error))
                        .ok()
                })
                .collect();
            parsed.into_iter().collect::<Option<Vec<_>>>().map(Operand::Many)
        }
        PropertyOp::Gt | PropertyOp::Gte | PropertyOp::Lt | PropertyOp::Lte => {
            let value = reader.required("value")?;
            let number = value.as_f64().filter(|number| number.is_finite());
            if number.is_none() {
                reader.push(FieldError::wrong_type(&pointer, "a number"));
            }
            number.map(Operand::Number)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::condition::{MemberKind, Scope};

    const FIRST: &str = "0123456789abcdef01234567";
    const SECOND: &str = "89abcdef0123456789abcdef";

    fn errors_of(value: &Value) -> Vec<(String, &'static str)> {
        parse_rule(value, "/rule").unwrap_err().into_iter().map(|error| (error.pointer, error.code)).collect()
    }

    fn expect_errors(value: Value, expected: &[(&str, &str)]) {
        let found = errors_of(&value);
        let found: Vec<(&str, &str)> = found.iter().map(|(pointer, code)| (pointer.as_str(), *code)).collect();
        assert_eq!(found, expected, "{value}");
    }

    fn inactive(min: u32) -> Value {
        json!({"type": "INACTIVE_DAYS", "min": min})
    }

    /// A chain of `depth` nodes: `depth - 1` NOTs around one leaf.
    fn nested(depth: usize) -> Value {
        (1..depth).fold(inactive(30), |inner, _| json!({"type": "NOT", "condition": inner}))
    }

    /// An AND of `leaves` leaves: `leaves + 1` nodes.
    fn wide(leaves: usize) -> Value {
        json!({"type": "AND", "subConditions": vec![inactive(30); leaves]})
    }

    /// A valid activity leaf of the condition engine's `leaf` type, counted over 14 days.
    fn activity_example(leaf: &condition::LeafDescription) -> Value {
        let mut value = json!({"type": leaf.name, "withinDays": 14});
        for member in leaf.members {
            value[member.name] = match member.kind {
                MemberKind::Whole { max } => json!(max),
                MemberKind::PositiveNumber { .. } => json!(12.5),
                MemberKind::Text { .. } => json!("q1"),
                MemberKind::ActivityType => json!("BOSS_KILLED"),
            };
        }
        value
    }

    #[test]
    fn every_leaf_round_trips_to_exactly_its_input() {
        let hundred: Vec<Value> = (0..MAX_IN_VALUES).map(|n| json!(n)).collect();
        let mut cases = vec![
            json!({"type": "PROPERTY", "name": "country", "op": "EQ", "value": "KR"}),
            json!({"type": "PROPERTY", "name": "vipLevel", "op": "EQ", "value": 3}),
            json!({"type": "PROPERTY", "name": "tester", "op": "NE", "value": true}),
            json!({"type": "PROPERTY", "name": "country", "op": "IN", "value": ["KR", "JP"]}),
            json!({"type": "PROPERTY", "name": "platform", "op": "NOT_IN", "value": ["ios", 2, false, 2.5]}),
            json!({"type": "PROPERTY", "name": "vipLevel", "op": "IN", "value": hundred}),
            json!({"type": "PROPERTY", "name": "vipLevel", "op": "GT", "value": 2}),
            json!({"type": "PROPERTY", "name": "balance", "op": "GTE", "value": 2.5}),
            json!({"type": "PROPERTY", "name": "balance", "op": "LT", "value": -1}),
            json!({"type": "PROPERTY", "name": "balance", "op": "LTE", "value": 0}),
            json!({"type": "PROPERTY", "name": "Z9_", "op": "EXISTS"}),
            json!({"type": "ACCOUNT_AGE_DAYS", "min": 7}),
            json!({"type": "ACCOUNT_AGE_DAYS", "max": 0}),
            json!({"type": "ACCOUNT_AGE_DAYS", "min": 7, "max": 7}),
            json!({"type": "ACCOUNT_AGE_DAYS", "min": 0, "max": 3660}),
            json!({"type": "INACTIVE_DAYS", "min": 30}),
            json!({"type": "IN_AUDIENCE", "audienceId": FIRST}),
            json!({"type": "ROLLOUT", "percent": 10, "salt": "spring-launch"}),
            json!({"type": "ROLLOUT", "percent": 12.5, "salt": "s"}),
            json!({"type": "ROLLOUT", "percent": 0, "salt": "s"}),
            json!({"type": "ROLLOUT", "percent": 100, "salt": "x".repeat(MAX_SALT_CHARS)}),
            json!({"type": "LOGIN_DAYS", "days": 3, "withinDays": 14}),
            json!({"type": "LOGIN_STREAK", "days": 7, "withinDays": 3660, "scope": "EVENT"}),
            json!({"type": "PURCHASE_TOTAL", "amount": 50000, "withinDays": 1}),
            json!({"type": "NOT", "condition": {"type": "IN_AUDIENCE", "audienceId": SECOND}}),
            json!({"type": "AND", "subConditions": [
                {"type": "PROPERTY", "name": "country", "op": "IN", "value": ["KR"]},
                {"type": "OR", "subConditions": [
                    {"type": "INACTIVE_DAYS", "min": 30},
                    {"type": "LOGIN_DAYS", "days": 3, "withinDays": 14}
                ]},
                {"type": "ROLLOUT", "percent": 10, "salt": "spring-launch"}
            ]}),
            nested(MAX_DEPTH),
            wide(MAX_NODES - 1),
        ];
        for leaf in condition::LEAVES {
            cases.push(activity_example(leaf));
            let mut scoped = activity_example(leaf);
            scoped["scope"] = json!("EVENT");
            cases.push(scoped);
        }
        for value in cases {
            let rule = parse_rule(&value, "/rule").unwrap();
            assert_eq!(serde_json::to_value(&rule).unwrap(), value);
            assert_eq!(rule.type_name(), value["type"]);
            assert_eq!(serde_json::from_value::<Rule>(value).unwrap(), rule);
        }
    }

    #[test]
    fn leaves_parse_into_their_variants() {
        let cases = [
            (
                json!({"type": "LOGIN_DAYS", "days": 3, "withinDays": 14}),
                Rule::Activity { condition: Condition::LoginDays { days: 3, scope: Scope::Period }, within_days: 14 },
            ),
            (
                json!({"type": "LOGIN_DAYS", "days": 3, "withinDays": 14, "scope": "EVENT"}),
                Rule::Activity { condition: Condition::LoginDays { days: 3, scope: Scope::Event }, within_days: 14 },
            ),
            (
                json!({"type": "PROPERTY", "name": "vipLevel", "op": "GTE", "value": 3}),
                Rule::Property { name: "vipLevel".to_owned(), op: PropertyOp::Gte, value: Operand::Number(3.0) },
            ),
            (
                json!({"type": "PROPERTY", "name": "vipLevel", "op": "EQ", "value": 3}),
                Rule::Property {
                    name: "vipLevel".to_owned(),
                    op: PropertyOp::Eq,
                    value: Operand::One(PropertyValue::Number(3.0)),
                },
            ),
            (
                json!({"type": "PROPERTY", "name": "on", "op": "EXISTS", "value": null}),
                Rule::Property { name: "on".to_owned(), op: PropertyOp::Exists, value: Operand::None },
            ),
            (json!({"type": "ACCOUNT_AGE_DAYS", "max": 5}), Rule::AccountAgeDays { min: None, max: Some(5) }),
            (json!({"type": "ACCOUNT_AGE_DAYS", "min": 5.0}), Rule::AccountAgeDays { min: Some(5), max: None }),
            (json!({"type": "IN_AUDIENCE", "audienceId": FIRST}), Rule::InAudience(FIRST.parse().unwrap())),
            (
                json!({"type": "ROLLOUT", "percent": 33.33, "salt": "a"}),
                Rule::Rollout { percent: 33.33, salt: "a".to_owned() },
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_rule(&value, "").unwrap(), expected, "{value}");
        }
        // An ObjectId is kept in its canonical lowercase form.
        let upper = json!({"type": "IN_AUDIENCE", "audienceId": FIRST.to_uppercase()});
        assert_eq!(serde_json::to_value(parse_rule(&upper, "").unwrap()).unwrap()["audienceId"], FIRST);
    }

    #[test]
    fn bad_nodes_are_reported_by_pointer() {
        let property =
            |op: &str, value: Value| json!({"type": "PROPERTY", "name": "country", "op": op, "value": value});
        let strings = |count: usize| Value::Array((0..count).map(|n| json!(format!("v{n}"))).collect());
        let cases = [
            (json!({"type": "DANCE", "moves": 3}), vec![("/rule/type", "unknown_type")]),
            (json!({"type": "property", "name": "a", "op": "EQ", "value": 1}), vec![("/rule/type", "unknown_type")]),
            (json!({"name": "country"}), vec![("/rule/type", "required")]),
            (json!({"type": 7}), vec![("/rule/type", "wrong_type")]),
            (json!("INACTIVE_DAYS"), vec![("/rule", "wrong_type")]),
            (json!(null), vec![("/rule", "required")]),
            // PROPERTY
            (property("LIKE", json!("K%")), vec![("/rule/op", "invalid")]),
            (property("eq", json!("KR")), vec![("/rule/op", "invalid")]),
            (json!({"type": "PROPERTY", "name": "country", "value": "KR"}), vec![("/rule/op", "required")]),
            (json!({"type": "PROPERTY", "name": "country", "op": "EQ"}), vec![("/rule/value", "required")]),
            (property("EQ", json!({"code": "KR"})), vec![("/rule/value", "wrong_type")]),
            (property("NE", json!(["KR"])), vec![("/rule/value", "wrong_type")]),
            (property("EQ", json!("x".repeat(257))), vec![("/rule/value", "out_of_range")]),
            (property("IN", json!([])), vec![("/rule/value", "out_of_range")]),
            (property("IN", strings(MAX_IN_VALUES + 1)), vec![("/rule/value", "out_of_range")]),
            (property("NOT_IN", json!([])), vec![("/rule/value", "out_of_range")]),
            (property("IN", json!("KR")), vec![("/rule/value", "wrong_type")]),
            (
                property("NOT_IN", json!(["KR", {}, "JP", [1]])),
                vec![("/rule/value/1", "wrong_type"), ("/rule/value/3", "wrong_type")],
            ),
            (property("GT", json!("3")), vec![("/rule/value", "wrong_type")]),
            (property("LTE", json!(true)), vec![("/rule/value", "wrong_type")]),
            (property("GTE", json!(null)), vec![("/rule/value", "required")]),
            (property("EXISTS", json!("KR")), vec![("/rule/value", "invalid")]),
            (json!({"type": "PROPERTY", "name": "1st", "op": "EQ", "value": 1}), vec![("/rule/name", "invalid")]),
            (
                json!({"type": "PROPERTY", "name": "vip-level", "op": "LIKE", "value": 1}),
                vec![("/rule/name", "invalid"), ("/rule/op", "invalid")],
            ),
            (
                json!({"type": "PROPERTY", "name": format!("a{}", "b".repeat(64)), "op": "EXISTS"}),
                vec![("/rule/name", "out_of_range")],
            ),
            (json!({"type": "PROPERTY", "name": "", "op": "EXISTS"}), vec![("/rule/name", "required")]),
            (
                json!({"type": "PROPERTY", "name": "a", "op": "EXISTS", "withinDays": 3}),
                vec![("/rule/withinDays", "unknown_field")],
            ),
            // ACCOUNT_AGE_DAYS
            (json!({"type": "ACCOUNT_AGE_DAYS"}), vec![("/rule/min", "required")]),
            (json!({"type": "ACCOUNT_AGE_DAYS", "min": null, "max": null}), vec![("/rule/min", "required")]),
            (json!({"type": "ACCOUNT_AGE_DAYS", "min": 31, "max": 30}), vec![("/rule/max", "out_of_range")]),
            (json!({"type": "ACCOUNT_AGE_DAYS", "min": -1}), vec![("/rule/min", "out_of_range")]),
            (json!({"type": "ACCOUNT_AGE_DAYS", "max": 3661}), vec![("/rule/max", "out_of_range")]),
            (
                json!({"type": "ACCOUNT_AGE_DAYS", "min": 1.5, "max": "2"}),
                vec![("/rule/min", "wrong_type"), ("/rule/max", "wrong_type")],
            ),
            // INACTIVE_DAYS
            (inactive(0), vec![("/rule/min", "out_of_range")]),
            (json!({"type": "INACTIVE_DAYS", "min": 3661}), vec![("/rule/min", "out_of_range")]),
            (json!({"type": "INACTIVE_DAYS"}), vec![("/rule/min", "required")]),
            (json!({"type": "INACTIVE_DAYS", "min": 30, "max": 60}), vec![("/rule/max", "unknown_field")]),
            // ROLLOUT
            (json!({"type": "ROLLOUT", "percent": 101, "salt": "s"}), vec![("/rule/percent", "out_of_range")]),
            (json!({"type": "ROLLOUT", "percent": -1, "salt": "s"}), vec![("/rule/percent", "out_of_range")]),
            (json!({"type": "ROLLOUT", "percent": 100.01, "salt": "s"}), vec![("/rule/percent", "out_of_range")]),
            (json!({"type": "ROLLOUT", "percent": "10", "salt": "s"}), vec![("/rule/percent", "wrong_type")]),
            (json!({"type": "ROLLOUT", "percent": 10}), vec![("/rule/salt", "required")]),
            (json!({"type": "ROLLOUT", "percent": 10, "salt": " "}), vec![("/rule/salt", "required")]),
            (
                json!({"type": "ROLLOUT", "percent": 10, "salt": "x".repeat(MAX_SALT_CHARS + 1)}),
                vec![("/rule/salt", "out_of_range")],
            ),
            (json!({"type": "ROLLOUT", "salt": "s"}), vec![("/rule/percent", "required")]),
            // IN_AUDIENCE
            (json!({"type": "IN_AUDIENCE", "audienceId": "spenders"}), vec![("/rule/audienceId", "invalid")]),
            (json!({"type": "IN_AUDIENCE", "audienceId": format!("{FIRST}0")}), vec![("/rule/audienceId", "invalid")]),
            (json!({"type": "IN_AUDIENCE", "audienceId": 7}), vec![("/rule/audienceId", "wrong_type")]),
            (json!({"type": "IN_AUDIENCE"}), vec![("/rule/audienceId", "required")]),
            // Activity leaves
            (json!({"type": "LOGIN_DAYS", "days": 3}), vec![("/rule/withinDays", "required")]),
            (json!({"type": "LOGIN_DAYS", "days": 3, "withinDays": null}), vec![("/rule/withinDays", "required")]),
            (json!({"type": "LOGIN_DAYS", "days": 3, "withinDays": 0}), vec![("/rule/withinDays", "out_of_range")]),
            (json!({"type": "LOGIN_DAYS", "days": 3, "withinDays": 3661}), vec![("/rule/withinDays", "out_of_range")]),
            (
                json!({"type": "LOGIN_DAYS", "days": 0}),
                vec![("/rule/withinDays", "required"), ("/rule/days", "out_of_range")],
            ),
            (
                json!({"type": "LOGIN_DAYS", "days": 3, "withinDays": 14, "hours": 2}),
                vec![("/rule/hours", "unknown_field")],
            ),
            (
                json!({"type": "LOGIN_DAYS", "days": 3, "withinDays": 14, "scope": "WEEK"}),
                vec![("/rule/scope", "invalid")],
            ),
            (json!({"type": "QUEST_COMPLETE", "withinDays": 7}), vec![("/rule/questId", "required")]),
            // Composites
            (json!({"type": "AND", "subConditions": []}), vec![("/rule/subConditions", "out_of_range")]),
            (json!({"type": "OR", "subConditions": {}}), vec![("/rule/subConditions", "wrong_type")]),
            (json!({"type": "NOT"}), vec![("/rule/condition", "required")]),
            (
                json!({"type": "AND", "subConditions": [
                    inactive(30),
                    {"type": "ROLLOUT", "percent": 101, "salt": "s"},
                    {"type": "OR", "subConditions": [{"type": "NOPE"}], "extra": 1},
                    {"type": "NOT", "condition": {"type": "LOGIN_DAYS", "days": 3}}
                ]}),
                vec![
                    ("/rule/subConditions/1/percent", "out_of_range"),
                    ("/rule/subConditions/2/subConditions/0/type", "unknown_type"),
                    ("/rule/subConditions/2/extra", "unknown_field"),
                    ("/rule/subConditions/3/condition/withinDays", "required"),
                ],
            ),
            (
                json!({"type": "AND", "subConditions": [nested(MAX_DEPTH)]}),
                vec![("/rule/subConditions/0/condition/condition/condition/condition", "too_deep")],
            ),
            (nested(MAX_DEPTH + 1), vec![("/rule/condition/condition/condition/condition/condition", "too_deep")]),
            (wide(MAX_NODES), vec![("/rule", "too_many_nodes")]),
            (
                json!({"type": "OR", "subConditions": [wide(MAX_NODES), {"type": "X"}]}),
                vec![("/rule", "too_many_nodes"), ("/rule/subConditions/1/type", "unknown_type")],
            ),
        ];
        for (value, expected) in cases {
            expect_errors(value, &expected);
        }
    }

    #[test]
    fn a_stored_rule_is_read_with_the_same_checks() {
        let error = serde_json::from_value::<Rule>(json!({"type": "INACTIVE_DAYS", "min": 0})).unwrap_err();
        assert!(error.to_string().contains("/min"), "{error}");
    }

    #[test]
    fn references_are_the_named_audiences_once_in_tree_order() {
        let rule = parse_rule(
            &json!({"type": "AND", "subConditions": [
                {"type": "IN_AUDIENCE", "audienceId": SECOND},
                {"type": "NOT", "condition": {"type": "IN_AUDIENCE", "audienceId": FIRST}},
                {"type": "OR", "subConditions": [
                    {"type": "IN_AUDIENCE", "audienceId": SECOND.to_uppercase()},
                    {"type": "PROPERTY", "name": "country", "op": "EXISTS"}
                ]}
            ]}),
            "",
        )
        .unwrap();
        let expected: Vec<AudienceId> = vec![SECOND.parse().unwrap(), FIRST.parse().unwrap()];
        assert_eq!(rule.references(), expected);
        assert_eq!(parse_rule(&inactive(3), "").unwrap().references(), Vec::<AudienceId>::new());
    }

    #[test]
    fn rule_types_name_every_type_once() {
        let types: Vec<&str> = rule_types().collect();
        let mut unique = types.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), types.len());
        assert_eq!(types.len(), 3 + AUDIENCE_LEAF_TYPES.len() + condition::LEAVES.len());
        assert!(types.contains(&"LOGIN_DAYS") && types.contains(&"ROLLOUT") && types.contains(&"NOT"));
    }
}
