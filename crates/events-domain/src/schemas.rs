//! OpenAPI schemas of the inputs the derive cannot describe, because the domain reads them
//! field by field to report every problem at once: the condition tree (a recursive `oneOf` of
//! its node types), a reward (one shape per `rewardType`, its `details` with it) and time zone
//! names. Each states the rules the parsers in this module's siblings enforce; what JSON Schema
//! cannot say (a tree's depth and size, `totalStock` against `quantityPerUser`) is in the
//! descriptions.

use std::borrow::Cow;

use serde_json::{Value, json};
use utoipa::openapi::{RefOr, Schema};

use super::condition::{LEAVES, LeafDescription, MAX_DEPTH, MAX_NODES, MemberKind};
use super::reward::{
    DetailKind, MAX_NAME_CHARS, MAX_QUANTITY_PER_USER, MAX_TOTAL_STOCK, RewardDescription, RewardType,
};

/// An activity type: `LOGIN`, `QUEST_COMPLETED`, … or any custom one of this shape.
pub const ACTIVITY_TYPE_PATTERN: &str = "^[A-Z][A-Z0-9_]{0,63}$";
/// Some character that is not white space: "not blank".
const NOT_BLANK: &str = "\\S";

fn schema(value: Value) -> RefOr<Schema> {
    serde_json::from_value(value).unwrap_or_else(|error| panic!("a documentation schema is malformed: {error}"))
}

fn text(max_chars: usize) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": max_chars, "pattern": NOT_BLANK })
}

/// `schema` with a description.
fn about(mut schema: Value, description: &str) -> Value {
    schema["description"] = json!(description);
    schema
}

/// `schema`, or null (which a patch reads as "unchanged").
fn nullable(mut schema: Value) -> Value {
    if let Some(kind) = schema.get("type").and_then(Value::as_str).map(str::to_owned) {
        schema["type"] = json!([kind, "null"]);
    }
    schema
}

fn whole(max: i64) -> Value {
    json!({ "type": "integer", "format": "int64", "minimum": 1, "maximum": max })
}

/// A node of `{type, …members}` with exactly these members.
fn node(type_name: &str, description: &str, members: Value) -> Value {
    let mut properties = json!({ "type": { "type": "string", "enum": [type_name], "description": "The node type." } });
    let mut required = vec![json!("type")];
    if let (Some(all), Value::Object(members)) = (properties.as_object_mut(), members) {
        for (name, member) in members {
            required.push(json!(name));
            all.insert(name, member);
        }
    }
    json!({
        "type": "object", "description": description, "properties": properties,
        "required": required, "additionalProperties": false,
    })
}

/// A `oneOf` of named components, chosen by the member `tag` (the variants are registered by
/// [`register`]): generated clients turn each variant into a type of its own.
fn one_of(description: &str, tag: &str, variants: &[(String, Value)]) -> RefOr<Schema> {
    let refs: Vec<Value> =
        variants.iter().map(|(name, _)| json!({ "$ref": format!("#/components/schemas/{name}") })).collect();
    let mapping: serde_json::Map<String, Value> = variants
        .iter()
        .map(|(name, variant)| {
            // A variant that is itself a union (`PROPERTY`) takes its tag from its first shape.
            let shape = variant.get("oneOf").and_then(|shapes| shapes.get(0)).unwrap_or(variant);
            let tag_value = shape["properties"][tag]["enum"][0].as_str().unwrap_or_default().to_owned();
            (tag_value, json!(format!("#/components/schemas/{name}")))
        })
        .collect();
    schema(json!({
        "description": description, "oneOf": refs,
        "discriminator": { "propertyName": tag, "mapping": mapping },
    }))
}

fn register(variants: Vec<(String, Value)>, schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.extend(variants.into_iter().map(|(name, variant)| (name, schema(variant))));
}

/// The schema of a leaf member of `kind`.
fn member_schema(kind: MemberKind) -> Value {
    match kind {
        MemberKind::Whole { max } => whole(max),
        MemberKind::PositiveNumber { max } => json!({ "type": "number", "exclusiveMinimum": 0, "maximum": max }),
        MemberKind::Text { max_chars } => text(max_chars),
        MemberKind::ActivityType => json!({ "type": "string", "pattern": ACTIVITY_TYPE_PATTERN }),
    }
}

/// A leaf node as its [`LeafDescription`] says, with `scope` where the description documents it.
fn leaf(description: &LeafDescription) -> Value {
    let members: serde_json::Map<String, Value> = description
        .members
        .iter()
        .map(|member| (member.name.to_owned(), about(member_schema(member.kind), member.description)))
        .collect();
    let mut leaf = node(description.name, description.summary, Value::Object(members));
    if description.documents_scope {
        leaf["properties"]["scope"] = json!({
            "type": ["string", "null"], "enum": ["PERIOD", "EVENT", null],
            "description": "In a recurring event: `PERIOD` (the default, also when null) counts the current period's \
                            activities, `EVENT` those of the whole event window.",
        });
    }
    leaf
}

/// `LOGIN_STREAK` as a component name: `LoginStreak`.
fn pascal_case(screaming_snake: &str) -> String {
    screaming_snake
        .split('_')
        .flat_map(|word| {
            let mut letters = word.chars();
            letters.next().into_iter().chain(letters.flat_map(char::to_lowercase))
        })
        .collect()
}

/// The node types of a condition tree, each a named component: the composites, then every
/// described leaf.
fn condition_nodes() -> Vec<(String, Value)> {
    let nested = json!({ "$ref": "#/components/schemas/Condition" });
    let list = json!({ "type": "array", "minItems": 1, "items": nested });
    let composites = [
        (
            "ConditionAnd",
            node(
                "AND",
                "Met when every sub-condition is met.",
                json!({ "subConditions": about(list.clone(), "The conjuncts, at least one.") }),
            ),
        ),
        (
            "ConditionOr",
            node(
                "OR",
                "Met when any sub-condition is met.",
                json!({ "subConditions": about(list, "The disjuncts, at least one.") }),
            ),
        ),
        (
            "ConditionNot",
            node(
                "NOT",
                "Met when its condition is not.",
                json!({ "condition": about(nested, "The negated condition.") }),
            ),
        ),
    ];
    let leaves =
        LEAVES.iter().map(|description| (format!("Condition{}", pascal_case(description.name)), leaf(description)));
    composites.into_iter().map(|(name, node)| (name.to_owned(), node)).chain(leaves).collect()
}

/// The condition tree of an event (`conditions`), documentation only.
pub struct ConditionTree;

impl utoipa::PartialSchema for ConditionTree {
    fn schema() -> RefOr<Schema> {
        let description = format!(
            "A node of a condition tree, by its `type`. A tree nests at most {MAX_DEPTH} levels and has at most \
             {MAX_NODES} nodes."
        );
        one_of(&description, "type", &condition_nodes())
    }
}

impl utoipa::ToSchema for ConditionTree {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Condition")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        register(condition_nodes(), schemas);
    }
}

/// A property value as a rule or a merge names it: a string (at most 256 bytes: JSON Schema
/// counts characters, so the description says the rest), a number or a boolean.
fn property_value() -> Value {
    json!({
        "type": ["string", "number", "boolean"], "maxLength": crate::audience::properties::MAX_PROPERTY_VALUE_BYTES,
        "description": "A string of at most 256 bytes, a number or a boolean.",
    })
}

/// A property name.
fn property_name() -> Value {
    json!({ "type": "string", "pattern": "^[a-zA-Z][a-zA-Z0-9_]{0,63}$" })
}

/// The `PROPERTY` leaf, one shape per kind of `op`: the value it takes (none for `EXISTS`).
fn property_leaf() -> Value {
    use crate::audience::rule::MAX_IN_VALUES;
    let shape = |ops: &[&str], summary: &str, value: Option<Value>| {
        let mut members = json!({
            "name": about(property_name(), "The property's name."),
            "op": { "type": "string", "enum": ops },
        });
        if let Some(value) = value {
            members["value"] = value;
        }
        node("PROPERTY", summary, members)
    };
    let list = json!({ "type": "array", "minItems": 1, "maxItems": MAX_IN_VALUES, "items": property_value() });
    json!({
        "description": "Compares one of the player's properties; a missing property satisfies only `NE` and \
                        `NOT_IN`.",
        "oneOf": [
            shape(&["EXISTS"], "The player has the property.", None),
            shape(&["EQ", "NE"], "The property equals (or not) `value`.", Some(property_value())),
            shape(&["IN", "NOT_IN"], "The property is (or is not) one of `value`.", Some(list)),
            shape(&["GT", "GTE", "LT", "LTE"], "The property, a number, compares with `value`.", Some(json!({ "type": "number" }))),
        ],
    })
}

/// The node types of an audience rule, each a named component: the composites, the audience
/// leaves, then every condition leaf with `withinDays`.
fn rule_nodes() -> Vec<(String, Value)> {
    use crate::audience::rule::MAX_SALT_CHARS;
    use crate::condition::MAX_DAYS;
    let nested = json!({ "$ref": "#/components/schemas/AudienceRule" });
    let list = json!({ "type": "array", "minItems": 1, "items": nested });
    let days = |min: i64| json!({ "type": "integer", "format": "int64", "minimum": min, "maximum": MAX_DAYS });
    let mut account_age = node("ACCOUNT_AGE_DAYS", "The account is between `min` and `max` whole days old.", json!({}));
    account_age["properties"]["min"] = about(nullable(days(0)), "Fewest whole days; at most `max`.");
    account_age["properties"]["max"] = about(nullable(days(0)), "Most whole days.");
    account_age["anyOf"] = json!([
        { "properties": { "min": { "type": "integer" } }, "required": ["min"] },
        { "properties": { "max": { "type": "integer" } }, "required": ["max"] },
    ]);
    let mut nodes = vec![
        (
            "AudienceRuleAnd".to_owned(),
            node("AND", "Met when every sub-rule is.", json!({ "subConditions": list.clone() })),
        ),
        ("AudienceRuleOr".to_owned(), node("OR", "Met when any sub-rule is.", json!({ "subConditions": list }))),
        ("AudienceRuleNot".to_owned(), node("NOT", "Met when its rule is not.", json!({ "condition": nested }))),
        ("AudienceProperty".to_owned(), property_leaf()),
        ("AudienceAccountAgeDays".to_owned(), account_age),
        (
            "AudienceInactiveDays".to_owned(),
            node(
                "INACTIVE_DAYS",
                "At least `min` whole days since the last login (since the account was created without one).",
                json!({ "min": days(1) }),
            ),
        ),
        (
            "AudienceInAudience".to_owned(),
            node(
                "IN_AUDIENCE",
                "The player is in another audience (which must exist, and not lead back to this one).",
                json!({ "audienceId": { "type": "string", "pattern": "^[0-9a-fA-F]{24}$" } }),
            ),
        ),
        (
            "AudienceRollout".to_owned(),
            node(
                "ROLLOUT",
                "A stable `percent` of players, by a hash of `salt` and the user id.",
                json!({
                    "percent": { "type": "number", "minimum": 0, "maximum": 100 },
                    "salt": text(MAX_SALT_CHARS),
                }),
            ),
        ),
    ];
    nodes.extend(LEAVES.iter().map(|description| {
        let mut leaf = leaf(description);
        leaf["description"] = json!(format!("{} Counted over the last `withinDays` days.", description.summary));
        leaf["properties"]["withinDays"] = about(days(1), "The days back from now that count.");
        if let Some(required) = leaf["required"].as_array_mut() {
            required.push(json!("withinDays"));
        }
        (format!("Audience{}", pascal_case(description.name)), leaf)
    }));
    nodes
}

/// The rule of a RULE audience, documentation only.
pub struct AudienceRuleTree;

impl utoipa::PartialSchema for AudienceRuleTree {
    fn schema() -> RefOr<Schema> {
        let description = format!(
            "A node of an audience rule, by its `type`. A rule nests at most {MAX_DEPTH} levels and has at most              {MAX_NODES} nodes."
        );
        one_of(&description, "type", &rule_nodes())
    }
}

impl utoipa::ToSchema for AudienceRuleTree {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("AudienceRule")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        register(rule_nodes(), schemas);
    }
}

/// An event's `audience` target, documentation only (ids must name existing audiences).
pub struct AudienceTargetSpec;

impl utoipa::PartialSchema for AudienceTargetSpec {
    fn schema() -> RefOr<Schema> {
        use crate::audience::MAX_TARGET_AUDIENCES;
        let ids = |description: &str| {
            json!({
                "type": ["array", "null"], "maxItems": MAX_TARGET_AUDIENCES, "uniqueItems": true,
                "items": { "type": "string", "pattern": "^[0-9a-fA-F]{24}$" }, "description": description,
            })
        };
        schema(json!({
            "type": "object",
            "description": "Who the event is shown to: players in any `include` audience (every player when it is \
                            empty) and in no `exclude` audience. Each id names an existing audience.",
            "properties": {
                "include": ids("Shown to players in any of these (null or empty: every player)."),
                "exclude": ids("Never shown to players in any of these; exclude wins over include."),
                "sticky": {
                    "type": ["boolean", "null"],
                    "description": "Keep a player who was in when they first saw or claimed the event, until it ends.",
                },
            },
            "additionalProperties": false,
        }))
    }
}

impl utoipa::ToSchema for AudienceTargetSpec {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("AudienceTarget")
    }
}

/// A merge of player properties (`PATCH /api/v1/players/{userId}/properties`), documentation
/// only.
pub struct PropertyMerge;

impl utoipa::PartialSchema for PropertyMerge {
    fn schema() -> RefOr<Schema> {
        let mut value = property_value();
        value["type"] = json!(["string", "number", "boolean", "null"]);
        schema(json!({
            "type": "object",
            "description": "Property names to values; `null` removes the property. A player has at most 64 properties \
                            after the merge.",
            "maxProperties": crate::audience::properties::MAX_PROPERTIES,
            "propertyNames": property_name(),
            "additionalProperties": value,
            "example": { "country": "KR", "vipLevel": 3, "beta": true, "oldFlag": null },
        }))
    }
}

impl utoipa::ToSchema for PropertyMerge {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("PropertyMerge")
    }
}

/// `totalStock`: `-1` (or null) for unlimited, else a number of units.
fn total_stock() -> Value {
    json!({
        "description": "Units in total, at least `quantityPerUser`; `-1`, null or absent for unlimited.",
        "oneOf": [
            { "type": "integer", "enum": [-1] },
            { "type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_TOTAL_STOCK },
            { "type": "null" },
        ],
    })
}

/// A change of one reward (`PATCH …/rewards/{rewardId}`), documentation only: a top-up alone,
/// or a redefinition.
pub struct RewardChangeSpec;

fn reward_changes() -> Vec<(String, Value)> {
    vec![
        (
            "RewardTopUp".to_owned(),
            json!({
                "type": "object",
                "description": "Adds units to both stock counters; allowed in any status but ARCHIVED. The total stays \
                                at most 10^12.",
                "properties": { "addStock": about(whole(MAX_TOTAL_STOCK), "Units added to both stock counters.") },
                "required": ["addStock"],
                "additionalProperties": false,
                "example": { "addStock": 100 },
            }),
        ),
        (
            "RewardRedefinition".to_owned(),
            json!({
                "type": "object",
                "description": "Changes the definition while the event is DRAFT or INACTIVE (`totalStock` only while \
                                DRAFT); `details` has the members of the reward's type.",
                "properties": {
                    "rewardName": about(nullable(text(MAX_NAME_CHARS)), "New display name."),
                    "details": { "type": ["object", "null"], "description": "New details, with the members of the reward's type." },
                    "quantityPerUser": about(nullable(whole(MAX_QUANTITY_PER_USER)), "New units per claim."),
                    "totalStock": total_stock(),
                    "addStock": { "type": "null", "description": "Absent or null: a top-up goes alone." },
                },
                "additionalProperties": false,
                "example": { "rewardName": "2000 points" },
            }),
        ),
    ]
}

impl utoipa::PartialSchema for RewardChangeSpec {
    fn schema() -> RefOr<Schema> {
        let refs: Vec<Value> = reward_changes()
            .iter()
            .map(|(name, _)| json!({ "$ref": format!("#/components/schemas/{name}") }))
            .collect();
        schema(json!({ "description": "A top-up, or a redefinition.", "oneOf": refs }))
    }
}

impl utoipa::ToSchema for RewardChangeSpec {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RewardChange")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        register(reward_changes(), schemas);
    }
}

/// The schema of a `details` member of `kind`.
fn detail_schema(kind: DetailKind) -> Value {
    match kind {
        DetailKind::Whole { max } => whole(max),
        DetailKind::Fraction => json!({ "type": "number", "exclusiveMinimum": 0, "maximum": 1 }),
        DetailKind::Text { max_chars } => text(max_chars),
        DetailKind::OptionalText { max_chars } => nullable(text(max_chars)),
    }
}

/// A reward of the type `description` describes.
fn reward_shape(description: &RewardDescription) -> Value {
    let reward_type = description.reward_type.as_str();
    let properties: serde_json::Map<String, Value> =
        description.details.iter().map(|member| (member.name.to_owned(), detail_schema(member.kind))).collect();
    let required: Vec<&str> = description
        .details
        .iter()
        .filter(|member| !matches!(member.kind, DetailKind::OptionalText { .. }))
        .map(|member| member.name)
        .collect();
    let example = serde_json::from_str::<Value>(description.example)
        .unwrap_or_else(|error| panic!("the example of {reward_type} is malformed: {error}"));
    json!({
        "type": "object",
        "description": format!("A reward of type `{reward_type}`."),
        "properties": {
            "rewardType": { "type": "string", "enum": [reward_type], "description": "The reward type." },
            "rewardName": about(text(MAX_NAME_CHARS), "Display name, e.g. `1000 points`."),
            "details": about(
                json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false }),
                "What one unit of this reward is.",
            ),
            "quantityPerUser": about(whole(MAX_QUANTITY_PER_USER), "Units one claim receives."),
            "totalStock": total_stock(),
        },
        "required": ["rewardType", "rewardName", "details", "quantityPerUser"],
        "additionalProperties": false,
        "example": example,
    })
}

/// The shapes of a reward by `rewardType`, each a named component (`PointReward`, …).
fn reward_shapes() -> Vec<(String, Value)> {
    RewardType::ALL
        .into_iter()
        .map(|reward_type| {
            (format!("{}Reward", pascal_case(reward_type.as_str())), reward_shape(reward_type.description()))
        })
        .collect()
}

/// A reward as an operator sends it (`rewards[]` of a new event, `POST …/rewards`),
/// documentation only.
pub struct RewardSpec;

impl utoipa::PartialSchema for RewardSpec {
    fn schema() -> RefOr<Schema> {
        one_of("A reward, by its `rewardType`; `details` has the members of that type.", "rewardType", &reward_shapes())
    }
}

impl utoipa::ToSchema for RewardSpec {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RewardSpec")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        register(reward_shapes(), schemas);
    }
}

/// The shapes of `recurrence`, one per period: each period has only its own members.
fn recurrence_shapes() -> Vec<(String, Value)> {
    let reset_time = json!({
        "type": ["string", "null"], "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "example": "05:00",
        "description": "Local wall-clock time of the reset in the event's timezone, `HH:MM`; `00:00` when absent or null.",
    });
    let shape = |period: &str, description: &str, extra: Value| {
        let mut properties = json!({
            "period": { "type": "string", "enum": [period], "description": "How often the event resets." },
            "resetTime": reset_time.clone(),
        });
        if let (Some(all), Value::Object(extra)) = (properties.as_object_mut(), extra) {
            all.extend(extra);
        }
        json!({ "type": "object", "description": description, "properties": properties,
                "required": ["period"], "additionalProperties": false })
    };
    let weekdays = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"];
    vec![
        ("RecurrenceDaily".to_owned(), shape("DAILY", "Resets every day at `resetTime`.", json!({}))),
        (
            "RecurrenceWeekly".to_owned(),
            shape(
                "WEEKLY",
                "Resets every week on `resetWeekday` at `resetTime`.",
                json!({ "resetWeekday": { "type": ["string", "null"], "enum": weekdays.iter().map(|day| json!(day)).chain([Value::Null]).collect::<Vec<_>>(),
                                          "description": "Day of the reset; `MONDAY` when absent or null." } }),
            ),
        ),
        (
            "RecurrenceMonthly".to_owned(),
            shape(
                "MONTHLY",
                "Resets every month on day `resetDay` at `resetTime`.",
                json!({ "resetDay": { "type": ["integer", "null"], "minimum": 1, "maximum": super::recurrence::MAX_RESET_DAY,
                                      "description": "Day of the month of the reset, a day every month has; 1 when absent or null." } }),
            ),
        ),
    ]
}

/// `recurrence` as an operator sends it, documentation only.
pub struct RecurrenceSpec;

impl utoipa::PartialSchema for RecurrenceSpec {
    fn schema() -> RefOr<Schema> {
        one_of(
            "When a recurring event pays again: one success per player (and tier) per period.",
            "period",
            &recurrence_shapes(),
        )
    }
}

impl utoipa::ToSchema for RecurrenceSpec {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RecurrenceSpec")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        register(recurrence_shapes(), schemas);
    }
}

/// An IANA time zone name, documentation only.
pub struct TimeZoneName;

/// The shape of every IANA zone name (`Asia/Seoul`, `America/Argentina/Buenos_Aires`, `GMT+0`).
const TIME_ZONE_PATTERN: &str = "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$";
/// Longer than any IANA zone name (the longest has 32 characters).
const TIME_ZONE_MAX_CHARS: usize = 64;

impl utoipa::PartialSchema for TimeZoneName {
    /// A string of the names' shape, not an enum of the ~600 names: generated clients would
    /// get a 600-member enum, and some names differ only in signs their generators drop
    /// (`GMT+0`, `GMT-0`, `GMT0`).
    fn schema() -> RefOr<Schema> {
        schema(json!({
            "type": "string", "minLength": 1, "maxLength": TIME_ZONE_MAX_CHARS, "pattern": TIME_ZONE_PATTERN,
            "example": "Asia/Seoul",
            "description": "A name from the IANA time zone database (`Asia/Seoul`, `UTC`, `America/New_York`); \
                            calendar days of conditions and periods are counted in it. A name the database does \
                            not hold is refused (400).",
        }))
    }
}

impl utoipa::ToSchema for TimeZoneName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("TimeZone")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use utoipa::PartialSchema;

    use super::*;

    #[test]
    fn every_time_zone_the_server_knows_fits_the_documented_shape() {
        let pattern = regex::Regex::new(TIME_ZONE_PATTERN).unwrap();
        for zone in chrono_tz::TZ_VARIANTS {
            let name = zone.name();
            assert!(pattern.is_match(name) && name.len() <= TIME_ZONE_MAX_CHARS, "{name}");
        }
        assert!(!pattern.is_match("../etc") && !pattern.is_match("Asia/") && !pattern.is_match(""));
    }

    #[test]
    fn the_documentation_schemas_are_well_formed() {
        for (name, schema) in [
            ("Condition", ConditionTree::schema()),
            ("RewardSpec", RewardSpec::schema()),
            ("RecurrenceSpec", RecurrenceSpec::schema()),
            ("TimeZone", TimeZoneName::schema()),
        ] {
            let RefOr::T(schema) = schema else { panic!("{name} is a reference") };
            let rendered = serde_json::to_value(&schema).unwrap();
            let constrained = ["oneOf", "enum", "pattern"].iter().any(|key| rendered.get(key).is_some());
            assert!(constrained, "{name}: {rendered}");
        }
    }
}
