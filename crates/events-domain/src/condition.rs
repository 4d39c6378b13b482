//! The eligibility condition tree of `events.conditions`: its typed form, the parser that
//! builds it from an operator's JSON (reporting every bad node by JSON pointer), and its
//! serialization back to exactly the stored shape.
//!
//! ```json
//! {"type": "AND", "subConditions": [
//!   {"type": "LOGIN_STREAK", "days": 7},
//!   {"type": "NOT", "condition": {"type": "QUEST_COMPLETE", "questId": "tutorial"}}
//! ]}
//! ```

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, de};
use serde_json::Value;
use thiserror::Error;

use super::validation::{FieldError, ObjectReader, child_pointer, serialize_number, summarize};

/// Deepest allowed nesting; a single leaf has depth 1.
pub const MAX_DEPTH: usize = 5;
/// Most nodes (composites and leaves) allowed in one tree.
pub const MAX_NODES: usize = 50;
/// Longest allowed `days` threshold: about ten years.
pub const MAX_DAYS: i64 = 3_660;
/// Largest allowed `count` or `level` threshold.
pub const MAX_COUNT: i64 = 1_000_000;
/// Largest allowed `PURCHASE_TOTAL` amount.
pub const MAX_PURCHASE_AMOUNT: f64 = 1e12;
/// Longest allowed quest id.
pub const MAX_QUEST_ID_CHARS: usize = 200;

/// Longest `type` read; far above any real one, it bounds what an error message echoes back.
const MAX_TYPE_CHARS: usize = 64;

/// Every `type` a condition node may have.
pub const CONDITION_TYPES: [&str; 10] = [
    "AND",
    "OR",
    "NOT",
    "LOGIN_STREAK",
    "LOGIN_DAYS",
    "FRIEND_INVITE",
    "QUEST_COMPLETE",
    "LEVEL_REACHED",
    "PURCHASE_TOTAL",
    "ACTIVITY_COUNT",
];

/// One node of a condition tree. Build it with [`parse_condition`]; it serializes to the
/// stored shape, e.g. `{"type": "LOGIN_STREAK", "days": 7}`. The meaning of each node is
/// documented on the evaluator, [`super::evaluate::evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE", rename_all_fields = "camelCase")]
pub enum Condition {
    /// Met when every sub-condition is met; has at least one.
    And {
        /// The conjuncts.
        sub_conditions: Vec<Condition>,
    },
    /// Met when any sub-condition is met; has at least one.
    Or {
        /// The disjuncts.
        sub_conditions: Vec<Condition>,
    },
    /// Met when its condition is not.
    Not {
        /// The negated condition.
        condition: Box<Condition>,
    },
    /// Logged in on `days` consecutive calendar days.
    LoginStreak {
        /// Length of the streak, `1..=MAX_DAYS`.
        days: u32,
        /// `EVENT` to count over the whole event window in a recurring event; omitted for the
        /// current period (the default).
        #[serde(skip_serializing_if = "Scope::is_period")]
        scope: Scope,
    },
    /// Logged in on `days` distinct calendar days.
    LoginDays {
        /// Number of days, `1..=MAX_DAYS`.
        days: u32,
        /// `EVENT` to count over the whole event window in a recurring event; omitted for the
        /// current period (the default).
        #[serde(skip_serializing_if = "Scope::is_period")]
        scope: Scope,
    },
    /// Invited `count` friends.
    FriendInvite {
        /// Number of invitations, `1..=MAX_COUNT`.
        count: u32,
        /// `EVENT` to count over the whole event window in a recurring event; omitted for the
        /// current period (the default).
        #[serde(skip_serializing_if = "Scope::is_period")]
        scope: Scope,
    },
    /// Completed the quest `quest_id`.
    QuestComplete {
        /// The game's quest identifier.
        quest_id: String,
        /// `EVENT` to count over the whole event window in a recurring event; omitted for the
        /// current period (the default).
        #[serde(skip_serializing_if = "Scope::is_period")]
        scope: Scope,
    },
    /// Reached level `level`.
    LevelReached {
        /// The level, `1..=MAX_COUNT`.
        level: u32,
        /// `EVENT` to count over the whole event window in a recurring event; omitted for the
        /// current period (the default).
        #[serde(skip_serializing_if = "Scope::is_period")]
        scope: Scope,
    },
    /// Spent at least `amount` in total.
    PurchaseTotal {
        /// Positive, possibly fractional, at most [`MAX_PURCHASE_AMOUNT`].
        #[serde(serialize_with = "serialize_number")]
        amount: f64,
        /// `EVENT` to count over the whole event window in a recurring event; omitted for the
        /// current period (the default).
        #[serde(skip_serializing_if = "Scope::is_period")]
        scope: Scope,
    },
    /// Did `count` activities of type `activity_type`.
    ActivityCount {
        /// The activity type counted.
        activity_type: ActivityType,
        /// Number of activities, `1..=MAX_COUNT`.
        count: u32,
        /// `EVENT` to count over the whole event window in a recurring event; omitted for the
        /// current period (the default).
        #[serde(skip_serializing_if = "Scope::is_period")]
        scope: Scope,
    },
}

/// Which activities a leaf counts in a recurring event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scope {
    /// Those of the current period (the event window for a one-time event).
    #[default]
    Period,
    /// Those of the whole event window, e.g. a 7-day streak rewarded weekly.
    Event,
}

impl Scope {
    /// Whether this is the default scope, which the stored shape omits.
    pub fn is_period(&self) -> bool {
        *self == Self::Period
    }
}

impl Condition {
    /// The scope of a leaf; [`Scope::Period`] for composites.
    pub fn scope(&self) -> Scope {
        match self {
            Self::And { .. } | Self::Or { .. } | Self::Not { .. } => Scope::Period,
            Self::LoginStreak { scope, .. }
            | Self::LoginDays { scope, .. }
            | Self::FriendInvite { scope, .. }
            | Self::QuestComplete { scope, .. }
            | Self::LevelReached { scope, .. }
            | Self::PurchaseTotal { scope, .. }
            | Self::ActivityCount { scope, .. } => *scope,
        }
    }

    /// The node's `type` as stored, e.g. `"LOGIN_STREAK"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::And { .. } => "AND",
            Self::Or { .. } => "OR",
            Self::Not { .. } => "NOT",
            Self::LoginStreak { .. } => "LOGIN_STREAK",
            Self::LoginDays { .. } => "LOGIN_DAYS",
            Self::FriendInvite { .. } => "FRIEND_INVITE",
            Self::QuestComplete { .. } => "QUEST_COMPLETE",
            Self::LevelReached { .. } => "LEVEL_REACHED",
            Self::PurchaseTotal { .. } => "PURCHASE_TOTAL",
            Self::ActivityCount { .. } => "ACTIVITY_COUNT",
        }
    }

    /// The direct sub-conditions: those of `AND` and `OR`, the one of `NOT`, none for a leaf.
    pub fn children(&self) -> &[Condition] {
        match self {
            Self::And { sub_conditions } | Self::Or { sub_conditions } => sub_conditions,
            Self::Not { condition } => std::slice::from_ref(condition),
            Self::LoginStreak { .. }
            | Self::LoginDays { .. }
            | Self::FriendInvite { .. }
            | Self::QuestComplete { .. }
            | Self::LevelReached { .. }
            | Self::PurchaseTotal { .. }
            | Self::ActivityCount { .. } => &[],
        }
    }
}

/// Reads a stored tree with the same checks as [`parse_condition`].
impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        parse_condition(&value, "").map_err(|errors| de::Error::custom(summarize(&errors)))
    }
}

/// The type of an activity a game server reports, e.g. `LOGIN` or `BOSS_KILLED`: an uppercase
/// letter followed by at most 63 uppercase letters, digits or underscores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ActivityType(String);

impl ActivityType {
    /// The type's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActivityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that does not match `[A-Z][A-Z0-9_]{0,63}`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("an activity type must match [A-Z][A-Z0-9_]{{0,63}}, got {0:?}")]
pub struct InvalidActivityType(pub String);

impl FromStr for ActivityType {
    type Err = InvalidActivityType;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = text.bytes();
        let well_formed = text.len() <= 64
            && bytes.next().is_some_and(|first| first.is_ascii_uppercase())
            && bytes.all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b'_');
        if well_formed { Ok(Self(text.to_owned())) } else { Err(InvalidActivityType(text.to_owned())) }
    }
}

impl TryFrom<String> for ActivityType {
    type Error = InvalidActivityType;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<ActivityType> for String {
    fn from(activity_type: ActivityType) -> Self {
        activity_type.0
    }
}

/// Parses a condition tree whose root is at `pointer_prefix` (e.g. `/conditions`).
///
/// Reports, each at the pointer of the offending value: a missing, ill-typed or out-of-range
/// member; an unknown member; an unknown `type` (at `…/type`); an empty `subConditions`; a node
/// nested deeper than [`MAX_DEPTH`] (`too_deep`, at the first such node, which is not
/// descended into). A tree of more than [`MAX_NODES`] nodes within that depth gets one
/// `too_many_nodes` error at the root.
pub fn parse_condition(value: &Value, pointer_prefix: &str) -> Result<Condition, Vec<FieldError>> {
    let mut parser = TreeParser { nodes: 0 };
    let parsed = parser.node(value, pointer_prefix, 1);
    if parser.nodes <= MAX_NODES {
        return parsed;
    }
    let too_many = FieldError::new(
        pointer_prefix,
        "too_many_nodes",
        format!("a condition tree has at most {MAX_NODES} nodes, this one has {}", parser.nodes),
    );
    Err(std::iter::once(too_many).chain(parsed.err().unwrap_or_default()).collect())
}

/// Parses the optional `conditions` of an event: absent or `null` means "no condition", so
/// every player is eligible.
pub fn parse_optional_conditions(
    value: Option<&Value>,
    pointer_prefix: &str,
) -> Result<Option<Condition>, Vec<FieldError>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => parse_condition(value, pointer_prefix).map(Some),
    }
}

/// Walks one tree, counting its nodes against [`MAX_NODES`].
struct TreeParser {
    nodes: usize,
}

impl TreeParser {
    fn node(&mut self, value: &Value, pointer: &str, depth: usize) -> Result<Condition, Vec<FieldError>> {
        if depth > MAX_DEPTH {
            // Not descending further also bounds the recursion on hostile input.
            return Err(vec![FieldError::new(
                pointer,
                "too_deep",
                format!("conditions nest at most {MAX_DEPTH} levels deep"),
            )]);
        }
        self.nodes += 1;
        let mut reader = ObjectReader::new(value, pointer)?;
        let Some(type_name) = reader.required_text("type", MAX_TYPE_CHARS) else {
            return Err(reader.into_errors());
        };
        let parsed = match type_name {
            "AND" => self.sub_conditions(&mut reader, depth).map(|sub_conditions| Condition::And { sub_conditions }),
            "OR" => self.sub_conditions(&mut reader, depth).map(|sub_conditions| Condition::Or { sub_conditions }),
            "NOT" => reader.required("condition").and_then(|child| {
                let parsed = self.node(child, &reader.pointer_to("condition"), depth + 1);
                reader.absorb(parsed).map(|condition| Condition::Not { condition: Box::new(condition) })
            }),
            "LOGIN_STREAK" => {
                let days = reader.required_int("days", 1..=MAX_DAYS);
                scoped(&mut reader, days, |days, scope| Condition::LoginStreak { days, scope })
            }
            "LOGIN_DAYS" => {
                let days = reader.required_int("days", 1..=MAX_DAYS);
                scoped(&mut reader, days, |days, scope| Condition::LoginDays { days, scope })
            }
            "FRIEND_INVITE" => {
                let count = reader.required_int("count", 1..=MAX_COUNT);
                scoped(&mut reader, count, |count, scope| Condition::FriendInvite { count, scope })
            }
            "QUEST_COMPLETE" => {
                let quest_id = reader.required_text("questId", MAX_QUEST_ID_CHARS).map(str::to_owned);
                scoped(&mut reader, quest_id, |quest_id, scope| Condition::QuestComplete { quest_id, scope })
            }
            "LEVEL_REACHED" => {
                let level = reader.required_int("level", 1..=MAX_COUNT);
                scoped(&mut reader, level, |level, scope| Condition::LevelReached { level, scope })
            }
            "PURCHASE_TOTAL" => {
                let amount = reader.required_positive_number("amount", MAX_PURCHASE_AMOUNT);
                scoped(&mut reader, amount, |amount, scope| Condition::PurchaseTotal { amount, scope })
            }
            "ACTIVITY_COUNT" => {
                let activity_type = reader.required_parsed("activityType");
                let count = reader.required_int("count", 1..=MAX_COUNT);
                scoped(&mut reader, activity_type.zip(count), |(activity_type, count), scope| {
                    Condition::ActivityCount { activity_type, count, scope }
                })
            }
            unknown => {
                // The members of an unknown type cannot be checked, so this is the only error.
                return Err(vec![FieldError::new(
                    reader.pointer_to("type"),
                    "unknown_type",
                    format!("unknown condition type {unknown:?}; expected one of {}", CONDITION_TYPES.join(", ")),
                )]);
            }
        };
        reader.finish(parsed)
    }

    fn sub_conditions(&mut self, reader: &mut ObjectReader<'_>, depth: usize) -> Option<Vec<Condition>> {
        let values = reader.required_array("subConditions")?;
        let pointer = reader.pointer_to("subConditions");
        if values.is_empty() {
            reader.push(FieldError::out_of_range(pointer, "must contain at least one condition"));
            return None;
        }
        // Parse every child before combining, so the errors of all of them are reported.
        let children: Vec<Option<Condition>> = values
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

/// Reads a leaf's optional `scope` (`PERIOD` or `EVENT`) and builds the leaf from its members.
fn scoped<T>(
    reader: &mut ObjectReader<'_>,
    members: Option<T>,
    build: impl FnOnce(T, Scope) -> Condition,
) -> Option<Condition> {
    let scope = match reader.optional("scope") {
        None => Some(Scope::Period),
        Some(Value::String(text)) if text == "PERIOD" => Some(Scope::Period),
        Some(Value::String(text)) if text == "EVENT" => Some(Scope::Event),
        Some(_) => {
            reader.push(FieldError::new(reader.pointer_to("scope"), "invalid", "must be PERIOD or EVENT"));
            None
        }
    };
    Some(build(members?, scope?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pointers_and_codes(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors.iter().map(|e| (e.pointer.as_str(), e.code)).collect()
    }

    /// A chain of `depth` nodes: `depth - 1` NOTs around one leaf.
    fn nested(depth: usize) -> Value {
        (1..depth).fold(json!({"type": "LOGIN_DAYS", "days": 1}), |inner, _| json!({"type": "NOT", "condition": inner}))
    }

    /// An AND of `leaves` leaves: `leaves + 1` nodes.
    fn wide(leaves: usize) -> Value {
        json!({"type": "AND", "subConditions": vec![json!({"type": "FRIEND_INVITE", "count": 1}); leaves]})
    }

    #[test]
    fn a_number_with_a_zero_fraction_counts_as_an_integer() {
        let condition = parse_condition(&json!({"type": "LOGIN_STREAK", "days": 7.0}), "/c").unwrap();
        assert_eq!(condition, Condition::LoginStreak { days: 7, scope: Scope::Period });
    }

    #[test]
    fn valid_trees_round_trip_to_the_stored_shape() {
        let cases = [
            json!({"type": "LOGIN_STREAK", "days": 7}),
            json!({"type": "LOGIN_DAYS", "days": 3660}),
            json!({"type": "FRIEND_INVITE", "count": 3}),
            json!({"type": "QUEST_COMPLETE", "questId": "main/ch1~intro"}),
            json!({"type": "LEVEL_REACHED", "level": 50}),
            json!({"type": "PURCHASE_TOTAL", "amount": 50000}),
            json!({"type": "PURCHASE_TOTAL", "amount": 9.99}),
            json!({"type": "ACTIVITY_COUNT", "activityType": "BOSS_KILLED_2", "count": 10}),
            json!({"type": "NOT", "condition": {"type": "LEVEL_REACHED", "level": 10}}),
            json!({"type": "AND", "subConditions": [
                {"type": "LOGIN_STREAK", "days": 7},
                {"type": "OR", "subConditions": [
                    {"type": "FRIEND_INVITE", "count": 3},
                    {"type": "PURCHASE_TOTAL", "amount": 10000}
                ]}
            ]}),
            nested(MAX_DEPTH),
            wide(MAX_NODES - 1),
        ];
        for value in cases {
            let condition = parse_condition(&value, "/conditions").unwrap();
            assert_eq!(serde_json::to_value(&condition).unwrap(), value);
            assert_eq!(condition.type_name(), value["type"]);
            assert_eq!(serde_json::from_value::<Condition>(value).unwrap(), condition);
        }
    }

    #[test]
    fn invalid_trees_report_every_bad_node() {
        let cases = [
            (json!({"type": "LOGIN_STREAK"}), vec![("/c/days", "required")]),
            (json!({"type": "LOGIN_STREAK", "days": null}), vec![("/c/days", "required")]),
            (json!({"type": "LOGIN_STREAK", "days": "7"}), vec![("/c/days", "wrong_type")]),
            (json!({"type": "LOGIN_STREAK", "days": 7.5}), vec![("/c/days", "wrong_type")]),
            (json!({"type": "LOGIN_STREAK", "days": 0}), vec![("/c/days", "out_of_range")]),
            (json!({"type": "LOGIN_DAYS", "days": 3661}), vec![("/c/days", "out_of_range")]),
            (json!({"type": "FRIEND_INVITE", "count": -1}), vec![("/c/count", "out_of_range")]),
            (json!({"type": "LEVEL_REACHED", "level": 1_000_001}), vec![("/c/level", "out_of_range")]),
            (json!({"type": "LEVEL_REACHED", "level": u64::MAX}), vec![("/c/level", "out_of_range")]),
            (json!({"type": "PURCHASE_TOTAL", "amount": 0}), vec![("/c/amount", "out_of_range")]),
            (json!({"type": "QUEST_COMPLETE", "questId": 7}), vec![("/c/questId", "wrong_type")]),
            (json!({"type": "QUEST_COMPLETE", "questId": ""}), vec![("/c/questId", "required")]),
            (
                json!({"type": "ACTIVITY_COUNT", "activityType": "boss_kill", "count": 0}),
                vec![("/c/activityType", "invalid"), ("/c/count", "out_of_range")],
            ),
            (json!({"type": "LOGIN_STREAK", "days": 7, "hours": 1}), vec![("/c/hours", "unknown_field")]),
            (json!({"type": "DANCE", "moves": 3}), vec![("/c/type", "unknown_type")]),
            (json!({"type": "and", "subConditions": []}), vec![("/c/type", "unknown_type")]),
            (json!({"days": 7}), vec![("/c/type", "required")]),
            (json!({"type": 1}), vec![("/c/type", "wrong_type")]),
            (json!("LOGIN_STREAK"), vec![("/c", "wrong_type")]),
            (json!(null), vec![("/c", "required")]),
            (json!({"type": "AND", "subConditions": []}), vec![("/c/subConditions", "out_of_range")]),
            (json!({"type": "OR", "subConditions": {}}), vec![("/c/subConditions", "wrong_type")]),
            (json!({"type": "OR"}), vec![("/c/subConditions", "required")]),
            (json!({"type": "NOT"}), vec![("/c/condition", "required")]),
            (
                json!({"type": "NOT", "condition": {"type": "NOT", "condition": []}}),
                vec![("/c/condition/condition", "wrong_type")],
            ),
            (
                json!({"type": "AND", "subConditions": [
                    {"type": "LOGIN_STREAK", "days": 7},
                    {"type": "LOGIN_DAYS", "days": 0},
                    {"type": "OR", "subConditions": [{"type": "NOPE"}], "extra": 1}
                ]}),
                vec![
                    ("/c/subConditions/1/days", "out_of_range"),
                    ("/c/subConditions/2/subConditions/0/type", "unknown_type"),
                    ("/c/subConditions/2/extra", "unknown_field"),
                ],
            ),
            (
                json!({"type": "AND", "subConditions": [nested(MAX_DEPTH)]}),
                vec![("/c/subConditions/0/condition/condition/condition/condition", "too_deep")],
            ),
            (wide(MAX_NODES), vec![("/c", "too_many_nodes")]),
            (
                json!({"type": "AND", "subConditions": [wide(MAX_NODES), {"type": "X"}]}),
                vec![("/c", "too_many_nodes"), ("/c/subConditions/1/type", "unknown_type")],
            ),
        ];
        for (value, expected) in cases {
            let errors = parse_condition(&value, "/c").unwrap_err();
            assert_eq!(pointers_and_codes(&errors), expected, "{value}");
        }
    }

    #[test]
    fn depth_counts_a_leaf_as_one() {
        assert!(parse_condition(&nested(MAX_DEPTH), "").is_ok());
        let errors = parse_condition(&nested(MAX_DEPTH + 1), "").unwrap_err();
        assert_eq!(pointers_and_codes(&errors), [("/condition/condition/condition/condition/condition", "too_deep")]);
    }

    #[test]
    fn pointers_escape_member_names() {
        let value = json!({"type": "LOGIN_DAYS", "days": 1, "a/b~c": true});
        let errors = parse_condition(&value, "").unwrap_err();
        assert_eq!(pointers_and_codes(&errors), [("/a~1b~0c", "unknown_field")]);
    }

    #[test]
    fn conditions_are_optional() {
        let leaf = json!({"type": "LOGIN_DAYS", "days": 1});
        let cases = [
            (None, Ok(None)),
            (Some(json!(null)), Ok(None)),
            (Some(leaf.clone()), Ok(Some(Condition::LoginDays { days: 1, scope: Scope::Period }))),
            (Some(json!({})), Err(vec![("/conditions/type", "required")])),
        ];
        for (value, expected) in cases {
            let result = parse_optional_conditions(value.as_ref(), "/conditions");
            assert_eq!(
                result.as_ref().map(Option::as_ref).map_err(|errors| pointers_and_codes(errors)),
                expected.as_ref().map(Option::as_ref).map_err(Vec::clone),
                "{value:?}"
            );
        }
    }

    #[test]
    fn activity_types_follow_the_pattern() {
        let long = format!("A{}", "B".repeat(63));
        let too_long = format!("A{}", "B".repeat(64));
        let cases = [
            ("LOGIN", true),
            ("BOSS_KILLED_2", true),
            ("A", true),
            (long.as_str(), true),
            (too_long.as_str(), false),
            ("", false),
            ("_LOGIN", false),
            ("1LOGIN", false),
            ("Login", false),
            ("LOG-IN", false),
            ("LOGİN", false),
        ];
        for (text, valid) in cases {
            assert_eq!(text.parse::<ActivityType>().is_ok(), valid, "{text:?}");
        }
        assert!(serde_json::from_value::<ActivityType>(json!("x")).is_err());
    }
}
