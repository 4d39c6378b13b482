//! Audiences: who an event is shown to.
//!
//! - [`properties`]: what the game's servers say of a player (`country`, `vipLevel`…) and
//!   what the platform computes itself (account age, last login, purchase total).
//! - [`rule`]: the RULE audience's tree (AND/OR/NOT over property, account-age, inactivity,
//!   activity, nested-audience and rollout leaves), its parser and stored shape.
//! - [`membership`]: whether a player is in an audience and in an event's target, judged
//!   purely on facts the service gathered ([`PlayerFacts`]), with the verdict of every node.
//! - [`view`]: how audiences read to clients.
//!
//! An audience is evaluated, never materialised (design §10): a RULE audience is a function of
//! the player's facts, a LIST audience an indexed set of user ids. LIST members live in
//! generations: an upload writes a new generation beside the current one and the audience
//! switches to it in one compare-and-set, so a refused upload leaves the audience as it was.

pub mod membership;
pub mod properties;
pub mod rule;
pub mod view;

use bestow_kernel::ids::{AudienceId, EventId, InvalidId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub use membership::{PlayerFacts, RuleVerdict};
pub use rule::Rule;

use crate::validation::{FieldError, ObjectReader, child_pointer};

/// Longest audience name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest audience description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Most audiences one event's `include` or `exclude` may name.
pub const MAX_TARGET_AUDIENCES: usize = 10;
/// Most lines of one LIST upload.
pub const MAX_LIST_MEMBERS: u64 = 1_000_000;

/// How an audience decides who is in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AudienceKind {
    /// Players its `rule` holds for, judged when asked.
    Rule,
    /// The user ids uploaded or added to it.
    List,
}

impl AudienceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rule => "RULE",
            Self::List => "LIST",
        }
    }
}

impl std::str::FromStr for AudienceKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "RULE" => Ok(Self::Rule),
            "LIST" => Ok(Self::List),
            other => Err(format!("`{other}` is not an audience kind (RULE or LIST)")),
        }
    }
}

/// Where a size estimate of an audience stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EstimateStatus {
    /// No estimate was started yet (only ever read, never stored).
    NotStarted,
    Running,
    Done,
    Failed,
}

/// The latest size estimate of an audience (`audiences.estimate`), written by the background
/// job as it scans the known players.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AudienceEstimate {
    /// Names this run; a new run replaces the estimate of the last one.
    pub job_id: String,
    pub status: EstimateStatus,
    /// Members found among the players scanned so far (exact for a LIST audience).
    pub members: u64,
    /// Players judged so far.
    pub scanned: u64,
    /// Players to judge: the known players when the run started.
    pub total: u64,
    pub started_at: DateTime<Utc>,
    /// When it finished or failed; null while it runs.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed; null otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One stored audience (`event_db.audiences`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Audience {
    /// `_id`.
    #[schema(value_type = String)]
    pub id: AudienceId,
    pub name: String,
    pub description: String,
    pub kind: AudienceKind,
    /// The RULE audience's tree; null for a LIST audience.
    #[schema(value_type = Option<Object>)]
    pub rule: Option<Rule>,
    /// The audiences `rule` names through `IN_AUDIENCE` (stored so a store can answer "who
    /// uses this audience" without parsing rules).
    #[schema(value_type = Vec<String>)]
    pub references: Vec<AudienceId>,
    /// Members of a LIST audience; 0 for a RULE audience.
    pub member_count: u64,
    /// The generation of LIST members that counts (internal; never shown to clients).
    #[serde(skip_serializing)]
    #[serde(default)]
    pub member_generation: String,
    /// The latest size estimate, or null before any.
    pub estimate: Option<AudienceEstimate>,
    /// User id of who created it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented by every write; the `ETag`.
    pub version: i64,
}

/// Who an event is shown to (`events.audience`): players in any `include` audience (everyone
/// when `include` is empty) and in no `exclude` audience. With `sticky`, a player who was in
/// when they first saw or claimed the event stays in until it ends.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AudienceTarget {
    /// Shown to players in any of these (everyone when empty).
    #[serde(default)]
    pub include: Vec<AudienceId>,
    /// Never shown to players in any of these; exclude wins over include.
    #[serde(default)]
    pub exclude: Vec<AudienceId>,
    /// Keep a player who was in when they first saw or claimed the event, until it ends.
    #[serde(default)]
    pub sticky: bool,
}

impl AudienceTarget {
    /// Every audience the target names, include first, without repeats.
    pub fn audience_ids(&self) -> Vec<AudienceId> {
        let mut ids: Vec<AudienceId> = Vec::new();
        for id in self.include.iter().chain(&self.exclude) {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids
    }

    /// Checks the target's bounds, reporting errors under `pointer` (e.g. `/audience`).
    pub fn validate(&self, pointer: &str) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (member, ids) in [("include", &self.include), ("exclude", &self.exclude)] {
            let at = child_pointer(pointer, member);
            if ids.len() > MAX_TARGET_AUDIENCES {
                errors.push(FieldError::out_of_range(&at, format!("names at most {MAX_TARGET_AUDIENCES} audiences")));
            }
            for (index, id) in ids.iter().enumerate() {
                if ids[..index].contains(id) {
                    errors.push(FieldError::new(child_pointer(&at, index), "invalid", "names this audience twice"));
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// An operator's new audience (`POST /api/v1/audiences`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AudienceInput {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// Up to 2,000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    pub kind: AudienceKind,
    /// Required for a RULE audience, absent for a LIST one.
    #[serde(default)]
    #[schema(value_type = Option<crate::schemas::AudienceRuleTree>)]
    pub rule: Option<Value>,
}

/// Who made an audience, and when.
#[derive(Debug, Clone)]
pub struct AudienceProvenance {
    pub id: AudienceId,
    pub created_by: String,
    pub now: DateTime<Utc>,
    /// The first LIST generation's name.
    pub generation: String,
}

impl AudienceInput {
    /// Validates the input into a new audience (LIST audiences start empty).
    pub fn into_audience(self, provenance: AudienceProvenance) -> Result<Audience, Vec<FieldError>> {
        let mut errors = Vec::new();
        check_name(&self.name, "/name", &mut errors);
        check_description(&self.description, "/description", &mut errors);
        let rule = parse_rule_for(self.kind, self.rule.as_ref(), &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let references = rule.as_ref().map(Rule::references).unwrap_or_default();
        Ok(Audience {
            id: provenance.id,
            name: self.name,
            description: self.description,
            kind: self.kind,
            rule,
            references,
            member_count: 0,
            member_generation: provenance.generation,
            estimate: None,
            created_by: provenance.created_by,
            created_at: provenance.now,
            updated_at: provenance.now,
            version: 1,
        })
    }
}

/// An operator's change to an audience (`PATCH /api/v1/audiences/{audienceId}`); the kind
/// never changes.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AudiencePatch {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// A RULE audience's new tree.
    #[schema(value_type = Option<crate::schemas::AudienceRuleTree>)]
    pub rule: Option<Value>,
}

impl AudiencePatch {
    /// The audience after the patch, one version on.
    pub fn apply(self, current: &Audience, now: DateTime<Utc>) -> Result<Audience, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut next = current.clone();
        if let Some(name) = self.name {
            check_name(&name, "/name", &mut errors);
            next.name = name;
        }
        if let Some(description) = self.description {
            check_description(&description, "/description", &mut errors);
            next.description = description;
        }
        if let Some(rule) = &self.rule {
            next.rule = parse_rule_for(current.kind, Some(rule), &mut errors);
            if next.rule.as_ref().is_some_and(|rule| rule.references().contains(&current.id)) {
                errors.push(FieldError::new("/rule", "invalid", "an audience cannot contain itself"));
            }
            next.references = next.rule.as_ref().map(Rule::references).unwrap_or_default();
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        next.updated_at = now;
        next.version += 1;
        Ok(next)
    }
}

fn check_name(name: &str, pointer: &str, errors: &mut Vec<FieldError>) {
    if let Err(error) = crate::validation::check_text(name, pointer, MAX_NAME_CHARS) {
        errors.push(error);
    }
}

fn check_description(description: &str, pointer: &str, errors: &mut Vec<FieldError>) {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        errors.push(FieldError::out_of_range(pointer, format!("must be at most {MAX_DESCRIPTION_CHARS} characters")));
    }
}

/// The rule of an audience of `kind`: required for RULE, refused for LIST.
fn parse_rule_for(kind: AudienceKind, rule: Option<&Value>, errors: &mut Vec<FieldError>) -> Option<Rule> {
    match (kind, rule) {
        (AudienceKind::Rule, None) => {
            errors.push(FieldError::required("/rule"));
            None
        }
        (AudienceKind::Rule, Some(value)) => rule::parse_rule(value, "/rule").map_err(|e| errors.extend(e)).ok(),
        (AudienceKind::List, None) => None,
        (AudienceKind::List, Some(_)) => {
            errors.push(FieldError::new("/rule", "invalid", "a LIST audience has no rule; upload its members"));
            None
        }
    }
}

/// Reads the `audience` member of an event input: null or absent for everyone. Every bad
/// member is reported at its own pointer (e.g. `/audience/include/0`).
pub fn parse_target(value: Option<&Value>, pointer: &str) -> Result<Option<AudienceTarget>, Vec<FieldError>> {
    let Some(value) = value.filter(|value| !value.is_null()) else { return Ok(None) };
    let mut reader = ObjectReader::new(value, pointer)?;
    let include = read_audience_ids(&mut reader, "include");
    let exclude = read_audience_ids(&mut reader, "exclude");
    let sticky = match reader.optional("sticky") {
        None => Some(false),
        Some(Value::Bool(sticky)) => Some(*sticky),
        Some(_) => {
            reader.push(FieldError::wrong_type(reader.pointer_to("sticky"), "a boolean"));
            None
        }
    };
    let target = include.zip(exclude).zip(sticky).map(|((include, exclude), sticky)| AudienceTarget {
        include,
        exclude,
        sticky,
    });
    let target = reader.finish(target)?;
    target.validate(pointer)?;
    Ok(Some(target))
}

/// The audience ids of the array member `key` of a target (none when it is absent).
fn read_audience_ids(reader: &mut ObjectReader<'_>, key: &'static str) -> Option<Vec<AudienceId>> {
    let Some(value) = reader.optional(key) else { return Some(Vec::new()) };
    let pointer = reader.pointer_to(key);
    let Some(values) = value.as_array() else {
        reader.push(FieldError::wrong_type(pointer, "an array of audience ids"));
        return None;
    };
    if values.len() > MAX_TARGET_AUDIENCES {
        // Not read further: a long list of bad ids would be as many errors.
        reader.push(FieldError::out_of_range(pointer, format!("names at most {MAX_TARGET_AUDIENCES} audiences")));
        return None;
    }
    let ids: Vec<Option<AudienceId>> = values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let at = child_pointer(&pointer, index);
            let Some(text) = value.as_str() else {
                reader.push(FieldError::wrong_type(at, "an audience id"));
                return None;
            };
            text.parse().map_err(|error: InvalidId| reader.push(FieldError::new(at, "invalid", error.to_string()))).ok()
        })
        .collect();
    ids.into_iter().collect()
}

/// Who uses an audience: what keeps it from being deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudienceUsers {
    /// Events whose `audience` names it (any status).
    pub events: Vec<EventId>,
    /// RULE audiences whose rule names it (`IN_AUDIENCE`).
    pub audiences: Vec<AudienceId>,
}

impl AudienceUsers {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.audiences.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn id(n: u8) -> AudienceId {
        format!("{n:024x}").parse().unwrap()
    }

    fn instant(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn pointers_and_codes(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors.iter().map(|error| (error.pointer.as_str(), error.code)).collect()
    }

    fn provenance() -> AudienceProvenance {
        AudienceProvenance {
            id: id(1),
            created_by: "operator-7".to_owned(),
            now: instant("2026-03-01T00:00:00Z"),
            generation: "generation-1".to_owned(),
        }
    }

    fn input(value: Value) -> Result<Audience, Vec<FieldError>> {
        serde_json::from_value::<AudienceInput>(value).unwrap().into_audience(provenance())
    }

    fn korea() -> Value {
        json!({"type": "PROPERTY", "name": "country", "op": "IN", "value": ["KR"]})
    }

    #[test]
    fn a_rule_audience_is_built_from_its_input() {
        let rule = json!({"type": "AND", "subConditions": [
            korea(),
            {"type": "IN_AUDIENCE", "audienceId": id(2)},
            {"type": "NOT", "condition": {"type": "IN_AUDIENCE", "audienceId": id(3)}}
        ]});
        let audience =
            input(json!({"name": "Korea", "description": "KR players", "kind": "RULE", "rule": rule})).unwrap();
        assert_eq!(serde_json::to_value(audience.rule.as_ref().unwrap()).unwrap(), rule);
        assert_eq!(audience.references, [id(2), id(3)]);
        assert_eq!(
            (audience.id, audience.kind, audience.member_count, audience.version, audience.estimate),
            (id(1), AudienceKind::Rule, 0, 1, None)
        );
        assert_eq!((audience.created_at, audience.updated_at), (provenance().now, provenance().now));
        assert_eq!((audience.created_by.as_str(), audience.member_generation.as_str()), ("operator-7", "generation-1"));
    }

    #[test]
    fn a_list_audience_starts_empty_without_a_rule() {
        for value in
            [json!({"name": "Testers", "kind": "LIST"}), json!({"name": "Testers", "kind": "LIST", "rule": null})]
        {
            let audience = input(value).unwrap();
            assert_eq!((audience.kind, audience.rule, audience.references), (AudienceKind::List, None, vec![]));
            assert_eq!((audience.description.as_str(), audience.member_count), ("", 0));
        }
    }

    #[test]
    fn a_bad_input_is_refused_naming_every_field() {
        let cases = [
            (json!({"name": "Korea", "kind": "RULE"}), vec![("/rule", "required")]),
            (json!({"name": "Korea", "kind": "RULE", "rule": null}), vec![("/rule", "required")]),
            (json!({"name": "Testers", "kind": "LIST", "rule": korea()}), vec![("/rule", "invalid")]),
            (
                json!({"name": "Welcome back", "kind": "RULE", "rule": {"type": "AND", "subConditions": [
                    {"type": "INACTIVE_DAYS", "min": 0}, {"type": "LOGIN_DAYS", "days": 1}
                ]}}),
                vec![("/rule/subConditions/0/min", "out_of_range"), ("/rule/subConditions/1/withinDays", "required")],
            ),
            (json!({"name": "", "kind": "LIST"}), vec![("/name", "required")]),
            (json!({"name": "  ", "kind": "LIST"}), vec![("/name", "required")]),
            (json!({"name": "n".repeat(MAX_NAME_CHARS + 1), "kind": "LIST"}), vec![("/name", "out_of_range")]),
            (
                json!({"name": "x", "description": "d".repeat(MAX_DESCRIPTION_CHARS + 1), "kind": "LIST"}),
                vec![("/description", "out_of_range")],
            ),
            (
                json!({"name": "", "description": "d".repeat(MAX_DESCRIPTION_CHARS + 1), "kind": "RULE"}),
                vec![("/name", "required"), ("/description", "out_of_range"), ("/rule", "required")],
            ),
        ];
        for (value, expected) in cases {
            let errors = input(value.clone()).unwrap_err();
            assert_eq!(pointers_and_codes(&errors), expected, "{value}");
        }
        // The bounds are in characters, not bytes.
        let longest = json!({"name": "한".repeat(MAX_NAME_CHARS), "description": "é".repeat(MAX_DESCRIPTION_CHARS), "kind": "LIST"});
        assert!(input(longest).is_ok());
        // Members and kinds outside the schema are refused by the reader.
        assert!(serde_json::from_value::<AudienceInput>(json!({"name": "x", "kind": "LIST", "size": 3})).is_err());
        assert!(serde_json::from_value::<AudienceInput>(json!({"name": "x", "kind": "SEGMENT"})).is_err());
    }

    #[test]
    fn a_patch_changes_what_it_names_one_version_on() {
        let current = input(json!({"name": "Korea", "description": "KR", "kind": "RULE", "rule": korea()})).unwrap();
        let later = instant("2026-03-02T00:00:00Z");

        let renamed = AudiencePatch { name: Some("Korea and Japan".to_owned()), ..AudiencePatch::default() }
            .apply(&current, later)
            .unwrap();
        assert_eq!((renamed.name.as_str(), renamed.description.as_str()), ("Korea and Japan", "KR"));
        assert_eq!((renamed.version, renamed.updated_at, renamed.created_at), (2, later, current.created_at));
        assert_eq!(renamed.rule, current.rule);

        let nested = json!({"type": "OR", "subConditions": [korea(), {"type": "IN_AUDIENCE", "audienceId": id(5)}]});
        let patch: AudiencePatch = serde_json::from_value(json!({"rule": nested, "description": ""})).unwrap();
        let changed = patch.apply(&renamed, later).unwrap();
        assert_eq!(serde_json::to_value(changed.rule.as_ref().unwrap()).unwrap(), nested);
        assert_eq!((changed.references.clone(), changed.version, changed.description.as_str()), (vec![id(5)], 3, ""));

        let untouched = AudiencePatch::default().apply(&changed, later).unwrap();
        assert_eq!((untouched.references, untouched.version), (vec![id(5)], 4));
    }

    #[test]
    fn a_bad_patch_is_refused_naming_every_field() {
        let current = input(json!({"name": "Korea", "kind": "RULE", "rule": korea()})).unwrap();
        let list = input(json!({"name": "Testers", "kind": "LIST"})).unwrap();
        let itself = json!({"type": "NOT", "condition": {"type": "IN_AUDIENCE", "audienceId": current.id}});
        let cases = [
            (&current, json!({"rule": itself}), vec![("/rule", "invalid")]),
            (&current, json!({"rule": {"type": "INACTIVE_DAYS"}}), vec![("/rule/min", "required")]),
            (
                &current,
                json!({"name": " ", "description": "d".repeat(2_001)}),
                vec![("/name", "required"), ("/description", "out_of_range")],
            ),
            (&list, json!({"rule": korea()}), vec![("/rule", "invalid")]),
        ];
        for (audience, value, expected) in cases {
            let patch: AudiencePatch = serde_json::from_value(value.clone()).unwrap();
            let errors = patch.apply(audience, instant("2026-03-02T00:00:00Z")).unwrap_err();
            assert_eq!(pointers_and_codes(&errors), expected, "{value}");
        }
        assert!(serde_json::from_value::<AudiencePatch>(json!({"kind": "LIST"})).is_err(), "the kind never changes");
    }

    #[test]
    fn a_target_names_at_most_ten_audiences_each_once() {
        let ids = |range: std::ops::RangeInclusive<u8>| range.map(id).collect::<Vec<_>>();
        let most = AudienceTarget { include: ids(1..=10), exclude: ids(11..=20), sticky: true };
        assert_eq!(most.validate("/audience"), Ok(()));
        let cases = [
            (
                AudienceTarget { include: ids(1..=11), ..Default::default() },
                vec![("/audience/include", "out_of_range")],
            ),
            (
                AudienceTarget { exclude: ids(1..=11), ..Default::default() },
                vec![("/audience/exclude", "out_of_range")],
            ),
            (
                AudienceTarget { include: vec![id(1), id(2), id(1)], exclude: vec![id(3), id(3)], sticky: false },
                vec![("/audience/include/2", "invalid"), ("/audience/exclude/1", "invalid")],
            ),
        ];
        for (target, expected) in cases {
            let errors = target.validate("/audience").unwrap_err();
            assert_eq!(pointers_and_codes(&errors), expected, "{target:?}");
        }
        // The same audience in include and exclude is allowed: exclude wins.
        let both = AudienceTarget { include: vec![id(1), id(2)], exclude: vec![id(2), id(3)], sticky: false };
        assert_eq!(both.validate(""), Ok(()));
        assert_eq!(both.audience_ids(), [id(1), id(2), id(3)]);
    }

    #[test]
    fn an_event_target_is_parsed_with_every_bad_member_named() {
        assert_eq!(parse_target(None, "/audience"), Ok(None));
        assert_eq!(parse_target(Some(&json!(null)), "/audience"), Ok(None));
        assert_eq!(parse_target(Some(&json!({})), "/audience"), Ok(Some(AudienceTarget::default())));
        let value = json!({"include": [id(1).as_str().to_uppercase()], "exclude": [id(2)], "sticky": true});
        let target = parse_target(Some(&value), "/audience").unwrap().unwrap();
        assert_eq!(target, AudienceTarget { include: vec![id(1)], exclude: vec![id(2)], sticky: true });
        assert_eq!(
            serde_json::to_value(&target).unwrap(),
            json!({"include": [id(1)], "exclude": [id(2)], "sticky": true}),
            "stored in the shape it was sent, ids in canonical form"
        );
        assert_eq!(serde_json::from_value::<AudienceTarget>(serde_json::to_value(&target).unwrap()).unwrap(), target);

        let eleven: Vec<String> = (1..=11).map(|n| id(n).to_string()).collect();
        let many_bad: Vec<&str> = vec!["bad"; 1_000];
        let cases = [
            (json!({"includes": [id(1)]}), vec![("/audience/includes", "unknown_field")]),
            (
                json!({"include": ["spenders", 7, id(1)]}),
                vec![("/audience/include/0", "invalid"), ("/audience/include/1", "wrong_type")],
            ),
            (json!({"exclude": id(1)}), vec![("/audience/exclude", "wrong_type")]),
            (json!({"sticky": "yes"}), vec![("/audience/sticky", "wrong_type")]),
            (json!({"include": eleven}), vec![("/audience/include", "out_of_range")]),
            (json!({"exclude": many_bad}), vec![("/audience/exclude", "out_of_range")]),
            (json!({"include": [id(1), id(1).as_str().to_uppercase()]}), vec![("/audience/include/1", "invalid")]),
            (json!([id(1)]), vec![("/audience", "wrong_type")]),
            (json!("everyone"), vec![("/audience", "wrong_type")]),
        ];
        for (value, expected) in cases {
            let errors = parse_target(Some(&value), "/audience").unwrap_err();
            assert_eq!(pointers_and_codes(&errors), expected, "{value}");
        }
    }

    #[test]
    fn an_audience_is_shown_without_its_internal_generation() {
        let audience = input(json!({"name": "Testers", "kind": "LIST"})).unwrap();
        let shown = serde_json::to_value(&audience).unwrap();
        assert_eq!(shown["memberCount"], 0);
        assert_eq!(shown["kind"], "LIST");
        assert_eq!(shown["rule"], Value::Null);
        assert!(shown.get("memberGeneration").is_none() && shown.get("member_generation").is_none());
        let read: Audience = serde_json::from_value(shown).unwrap();
        assert_eq!(read, Audience { member_generation: String::new(), ..audience });
    }

    #[test]
    fn kinds_read_and_write_their_names() {
        for kind in [AudienceKind::Rule, AudienceKind::List] {
            assert_eq!(kind.as_str().parse::<AudienceKind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert!("rule".parse::<AudienceKind>().is_err());
    }

    #[test]
    fn an_audience_nobody_uses_may_go() {
        assert!(AudienceUsers::default().is_empty());
        assert!(!AudienceUsers { audiences: vec![id(1)], ..Default::default() }.is_empty());
        assert!(!AudienceUsers { events: vec![EventId::generate()], ..Default::default() }.is_empty());
    }
}
