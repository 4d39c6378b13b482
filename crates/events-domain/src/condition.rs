//! The eligibility condition tree of `events.conditions`: its typed form, one description per
//! leaf type ([`LEAVES`]: name, members, bounds and wording, which the parser, the OpenAPI
//! schema and the console's editor read), the parser that builds a tree from an operator's JSON
//! (reporting every bad node by JSON pointer), and its serialization back to exactly the stored
//! shape.
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

use super::validation::{FieldError, ObjectReader, serialize_number, summarize};

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
/// Longest allowed currency code of `SPEND_CURRENCY`, as long as a reward's currency.
pub const MAX_CURRENCY_CHARS: usize = 200;

/// Longest `type` read; far above any real one, it bounds what an error message echoes back.
const MAX_TYPE_CHARS: usize = 64;

/// The `type`s of the composite nodes, which hold other nodes; every other `type` is a leaf
/// described in [`LEAVES`].
pub const COMPOSITE_TYPES: [&str; 3] = ["AND", "OR", "NOT"];

/// Every `type` a condition node may have: the composites, then the leaves.
pub fn condition_types() -> impl Iterator<Item = &'static str> {
    COMPOSITE_TYPES.into_iter().chain(LEAVES.iter().map(|leaf| leaf.name))
}

/// What one leaf `type` is: the one place its name, members, bounds and wording are written.
/// The parser reads its members by it, the OpenAPI schema ([`super::schemas`]) and the
/// console's condition editor are built from it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeafDescription {
    /// The node's `type`, e.g. `LOGIN_STREAK`.
    pub name: &'static str,
    /// What meeting it means, in a sentence.
    pub summary: &'static str,
    /// Its members besides `type` and `scope`, in the order they are read and documented.
    pub members: &'static [Member],
    /// Whether the published schema lists the optional `scope` member (the parser accepts it on
    /// every leaf). `false` only for the two leaves whose schema was published without it, so
    /// that the OpenAPI document stays as published.
    #[serde(skip)]
    pub documents_scope: bool,
    /// Builds the leaf from its members, once the parser has read them all without error.
    #[serde(skip)]
    build: fn(&MemberValues, Scope) -> Option<Condition>,
}

/// One member of a leaf: its name in the stored shape, its kind and bounds, and what it means.
#[derive(Debug, Serialize)]
pub struct Member {
    /// The member's name, e.g. `questId`.
    pub name: &'static str,
    /// Its kind and bounds.
    #[serde(flatten)]
    pub kind: MemberKind,
    /// What it means.
    pub description: &'static str,
}

/// The kind of a leaf member and the bounds the parser enforces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum MemberKind {
    /// A whole number from 1 to `max`.
    Whole {
        /// The largest value allowed.
        max: i64,
    },
    /// A number greater than 0, possibly fractional, at most `max`.
    PositiveNumber {
        /// The largest value allowed.
        max: f64,
    },
    /// A non-blank string of at most `max_chars` characters.
    Text {
        /// The most characters allowed.
        #[serde(rename = "maxChars")]
        max_chars: usize,
    },
    /// An [`ActivityType`].
    ActivityType,
}

/// The values of a leaf's members, read by the parser according to its [`LeafDescription`].
#[derive(Debug, Default)]
pub struct MemberValues(Vec<(&'static str, MemberValue)>);

#[derive(Debug)]
enum MemberValue {
    Whole(u32),
    Number(f64),
    Text(String),
    ActivityType(ActivityType),
}

impl MemberValues {
    fn get(&self, name: &str) -> Option<&MemberValue> {
        self.0.iter().find(|(member, _)| *member == name).map(|(_, value)| value)
    }

    /// The whole number `name`, if the description declares it [`MemberKind::Whole`].
    pub fn whole(&self, name: &str) -> Option<u32> {
        match self.get(name)? {
            MemberValue::Whole(value) => Some(*value),
            _ => None,
        }
    }

    /// The number `name`, if the description declares it [`MemberKind::PositiveNumber`].
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.get(name)? {
            MemberValue::Number(value) => Some(*value),
            _ => None,
        }
    }

    /// The text `name`, if the description declares it [`MemberKind::Text`].
    pub fn text(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            MemberValue::Text(value) => Some(value.clone()),
            _ => None,
        }
    }

    /// The activity type `name`, if the description declares it [`MemberKind::ActivityType`].
    pub fn activity_type(&self, name: &str) -> Option<ActivityType> {
        match self.get(name)? {
            MemberValue::ActivityType(value) => Some(value.clone()),
            _ => None,
        }
    }
}

/// Every leaf `type`, described once. A new leaf is its variant of [`Condition`] (with its arms
/// in this file's `match`es), its description here and its evaluation in
/// [`super::evaluate`].
pub static LEAVES: &[LeafDescription] = &[
    LeafDescription {
        name: "LOGIN_STREAK",
        summary: "Logged in on `days` consecutive calendar days.",
        members: &[Member {
            name: "days",
            kind: MemberKind::Whole { max: MAX_DAYS },
            description: "Length of the streak, in calendar days.",
        }],
        documents_scope: true,
        build: |values, scope| Some(Condition::LoginStreak { days: values.whole("days")?, scope }),
    },
    LeafDescription {
        name: "LOGIN_DAYS",
        summary: "Logged in on `days` distinct calendar days.",
        members: &[Member {
            name: "days",
            kind: MemberKind::Whole { max: MAX_DAYS },
            description: "Number of distinct days with a login.",
        }],
        documents_scope: true,
        build: |values, scope| Some(Condition::LoginDays { days: values.whole("days")?, scope }),
    },
    LeafDescription {
        name: "FRIEND_INVITE",
        summary: "Invited `count` friends.",
        members: &[Member {
            name: "count",
            kind: MemberKind::Whole { max: MAX_COUNT },
            description: "Number of invitations.",
        }],
        documents_scope: true,
        build: |values, scope| Some(Condition::FriendInvite { count: values.whole("count")?, scope }),
    },
    LeafDescription {
        name: "QUEST_COMPLETE",
        summary: "Completed the quest `questId`.",
        members: &[Member {
            name: "questId",
            kind: MemberKind::Text { max_chars: MAX_QUEST_ID_CHARS },
            description: "The game's quest identifier.",
        }],
        documents_scope: true,
        build: |values, scope| Some(Condition::QuestComplete { quest_id: values.text("questId")?, scope }),
    },
    LeafDescription {
        name: "LEVEL_REACHED",
        summary: "Reached level `level`.",
        members: &[Member {
            name: "level",
            kind: MemberKind::Whole { max: MAX_COUNT },
            description: "The level to reach.",
        }],
        documents_scope: true,
        build: |values, scope| Some(Condition::LevelReached { level: values.whole("level")?, scope }),
    },
    LeafDescription {
        name: "PURCHASE_TOTAL",
        summary: "Purchases add up to at least `amount`.",
        members: &[Member {
            name: "amount",
            kind: MemberKind::PositiveNumber { max: MAX_PURCHASE_AMOUNT },
            description: "Sum of the purchase amounts.",
        }],
        documents_scope: false,
        build: |values, scope| Some(Condition::PurchaseTotal { amount: values.number("amount")?, scope }),
    },
    LeafDescription {
        name: "ACTIVITY_COUNT",
        summary: "Sent `count` activities of `activityType`.",
        members: &[
            Member { name: "activityType", kind: MemberKind::ActivityType, description: "The activity type counted." },
            Member {
                name: "count",
                kind: MemberKind::Whole { max: MAX_COUNT },
                description: "Number of activities of that type.",
            },
        ],
        documents_scope: false,
        build: |values, scope| {
            Some(Condition::ActivityCount {
                activity_type: values.activity_type("activityType")?,
                count: values.whole("count")?,
                scope,
            })
        },
    },
    LeafDescription {
        name: "SPEND_CURRENCY",
        summary: "Spent at least `amount` of the game currency `currency`.",
        members: &[
            Member {
                name: "currency",
                kind: MemberKind::Text { max_chars: MAX_CURRENCY_CHARS },
                description: "The currency code, as `attributes.currency` of `SPEND` activities names it.",
            },
            Member {
                name: "amount",
                kind: MemberKind::PositiveNumber { max: MAX_PURCHASE_AMOUNT },
                description: "Sum of the `attributes.amount` of those activities.",
            },
        ],
        documents_scope: true,
        build: |values, scope| {
            Some(Condition::SpendCurrency {
                currency: values.text("currency")?,
                amount: values.number("amount")?,
                scope,
            })
        },
    },
];

/// The description of the leaf `type` `name`; `None` for composites and unknown types.
pub fn leaf_description(name: &str) -> Option<&'static LeafDescription> {
    LEAVES.iter().find(|leaf| leaf.name == name)
}

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
    /// Spent at least `amount` of the game currency `currency`.
    SpendCurrency {
        /// The currency code, as the game reports it in `SPEND` activities.
        currency: String,
        /// Positive, possibly fractional, at most [`MAX_PURCHASE_AMOUNT`].
        #[serde(serialize_with = "serialize_number")]
        amount: f64,
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
            | Self::ActivityCount { scope, .. }
            | Self::SpendCurrency { scope, .. } => *scope,
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
            Self::SpendCurrency { .. } => "SPEND_CURRENCY",
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
            | Self::ActivityCount { .. }
            | Self::SpendCurrency { .. } => &[],
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
            leaf_type => match leaf_description(leaf_type) {
                Some(leaf) => read_leaf(&mut reader, leaf),
                None => {
                    // The members of an unknown type cannot be checked, so this is the only error.
                    return Err(vec![FieldError::new(
                        reader.pointer_to("type"),
                        "unknown_type",
                        format!(
                            "unknown condition type {leaf_type:?}; expected one of {}",
                            condition_types().collect::<Vec<_>>().join(", ")
                        ),
                    )]);
                }
            },
        };
        reader.finish(parsed)
    }

    fn sub_conditions(&mut self, reader: &mut ObjectReader<'_>, depth: usize) -> Option<Vec<Condition>> {
        reader.children("subConditions", "condition", |value, pointer| self.node(value, pointer, depth + 1))
    }
}

/// Reads a leaf's members as `leaf` describes them, then its optional `scope` (`PERIOD` or
/// `EVENT`), and builds it.
fn read_leaf(reader: &mut ObjectReader<'_>, leaf: &LeafDescription) -> Option<Condition> {
    let mut values = MemberValues::default();
    let mut all_read = true;
    for member in leaf.members {
        let value = match member.kind {
            MemberKind::Whole { max } => reader.required_int(member.name, 1..=max).map(MemberValue::Whole),
            MemberKind::PositiveNumber { max } => {
                reader.required_positive_number(member.name, max).map(MemberValue::Number)
            }
            MemberKind::Text { max_chars } => {
                reader.required_text(member.name, max_chars).map(|text| MemberValue::Text(text.to_owned()))
            }
            MemberKind::ActivityType => reader.required_parsed(member.name).map(MemberValue::ActivityType),
        };
        match value {
            Some(value) => values.0.push((member.name, value)),
            None => all_read = false,
        }
    }
    let scope = match reader.optional("scope") {
        None => Some(Scope::Period),
        Some(Value::String(text)) if text == "PERIOD" => Some(Scope::Period),
        Some(Value::String(text)) if text == "EVENT" => Some(Scope::Event),
        Some(_) => {
            reader.push(FieldError::new(reader.pointer_to("scope"), "invalid", "must be PERIOD or EVENT"));
            None
        }
    };
    if !all_read {
        return None;
    }
    (leaf.build)(&values, scope?)
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
            json!({"type": "SPEND_CURRENCY", "currency": "GEM", "amount": 500}),
            json!({"type": "SPEND_CURRENCY", "currency": "GOLD", "amount": 2.5, "scope": "EVENT"}),
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
            (
                json!({"type": "SPEND_CURRENCY", "currency": "", "amount": 0}),
                vec![("/c/currency", "required"), ("/c/amount", "out_of_range")],
            ),
            (json!({"type": "SPEND_CURRENCY", "amount": 5}), vec![("/c/currency", "required")]),
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

    /// An example of the variant after `previous` (the first one after `None`), so that
    /// [`every_variant_has_exactly_one_description`] walks them all. The `match` has no
    /// wildcard: a new variant does not compile until it is given an arm here, and that arm is
    /// reached only when the variant before it returns it.
    fn next_variant(previous: Option<&Condition>) -> Option<Condition> {
        let scope = Scope::Period;
        let leaf = || Box::new(Condition::LoginDays { days: 1, scope });
        Some(match previous {
            None => Condition::And { sub_conditions: vec![*leaf()] },
            Some(Condition::And { .. }) => Condition::Or { sub_conditions: vec![*leaf()] },
            Some(Condition::Or { .. }) => Condition::Not { condition: leaf() },
            Some(Condition::Not { .. }) => Condition::LoginStreak { days: 1, scope },
            Some(Condition::LoginStreak { .. }) => Condition::LoginDays { days: 1, scope },
            Some(Condition::LoginDays { .. }) => Condition::FriendInvite { count: 1, scope },
            Some(Condition::FriendInvite { .. }) => Condition::QuestComplete { quest_id: "q".to_owned(), scope },
            Some(Condition::QuestComplete { .. }) => Condition::LevelReached { level: 1, scope },
            Some(Condition::LevelReached { .. }) => Condition::PurchaseTotal { amount: 1.0, scope },
            Some(Condition::PurchaseTotal { .. }) => {
                Condition::ActivityCount { activity_type: "LOGIN".parse().unwrap(), count: 1, scope }
            }
            Some(Condition::ActivityCount { .. }) => {
                Condition::SpendCurrency { currency: "GEM".to_owned(), amount: 1.0, scope }
            }
            Some(Condition::SpendCurrency { .. }) => return None,
        })
    }

    /// A leaf of `leaf`'s type with a valid value for every described member.
    fn example_of(leaf: &LeafDescription) -> Value {
        let mut value = json!({ "type": leaf.name });
        for member in leaf.members {
            value[member.name] = match member.kind {
                MemberKind::Whole { max } => json!(max),
                MemberKind::PositiveNumber { max } => json!(max / 3.0),
                MemberKind::Text { max_chars } => json!("q".repeat(max_chars)),
                MemberKind::ActivityType => json!("BOSS_KILLED"),
            };
        }
        value
    }

    #[test]
    fn every_variant_has_exactly_one_description() {
        let mut leaves = Vec::new();
        let mut variant = next_variant(None);
        while let Some(condition) = variant {
            if condition.children().is_empty() {
                leaves.push(condition.type_name());
            } else {
                assert!(COMPOSITE_TYPES.contains(&condition.type_name()), "{condition:?}");
            }
            variant = next_variant(Some(&condition));
        }
        let described: Vec<&str> = LEAVES.iter().map(|leaf| leaf.name).collect();
        assert_eq!(described, leaves, "one description per leaf variant, in the variants' order");
        let types: Vec<&str> = condition_types().collect();
        assert_eq!(types.len(), COMPOSITE_TYPES.len() + LEAVES.len());
    }

    #[test]
    fn the_parser_accepts_exactly_the_described_members() {
        for leaf in LEAVES {
            let example = example_of(leaf);
            let condition = parse_condition(&example, "/c").unwrap();
            assert_eq!(condition.type_name(), leaf.name);
            assert_eq!(serde_json::to_value(&condition).unwrap(), example, "serializes to the described members");
            let scoped = {
                let mut value = example.clone();
                value["scope"] = json!("EVENT");
                value
            };
            assert_eq!(parse_condition(&scoped, "/c").unwrap().scope(), Scope::Event, "{}", leaf.name);
            for member in leaf.members {
                let mut missing = example.clone();
                missing.as_object_mut().unwrap().remove(member.name);
                let errors = parse_condition(&missing, "/c").unwrap_err();
                assert_eq!(pointers_and_codes(&errors), [(format!("/c/{}", member.name).as_str(), "required")]);
                let mut too_large = example.clone();
                too_large[member.name] = match member.kind {
                    MemberKind::Whole { max } => json!(max + 1),
                    MemberKind::PositiveNumber { max } => json!(max * 2.0),
                    MemberKind::Text { max_chars } => json!("q".repeat(max_chars + 1)),
                    MemberKind::ActivityType => json!("lowercase"),
                };
                let errors = parse_condition(&too_large, "/c").unwrap_err();
                assert_eq!(errors.len(), 1, "{}.{}", leaf.name, member.name);
                assert_eq!(errors[0].pointer, format!("/c/{}", member.name));
            }
        }
    }
}
