//! Audiences: who an event is shown to.
//!
//! - [`properties`]: what the game's servers say of a player (`country`, `vipLevel`…) and
//!   what the platform computes itself (account age, last login, purchase total).
//! - [`rule`]: the RULE audience's tree (AND/OR/NOT over property, account-age, inactivity,
//!   activity, nested-audience and rollout leaves), its parser and stored shape.
//! - [`membership`]: whether a player is in an audience and in an event's target, judged
//!   purely on facts the service gathered ([`PlayerFacts`]), with the verdict of every node.
//!
//! An audience is evaluated, never materialised (design §10): a RULE audience is a function of
//! the player's facts, a LIST audience an indexed set of user ids. LIST members live in
//! generations: an upload writes a new generation beside the current one and the audience
//! switches to it in one compare-and-set, so a refused upload leaves the audience as it was.

pub mod membership;
pub mod properties;
pub mod rule;

use bestow_kernel::ids::{AudienceId, EventId};
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
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AudienceTarget {
    /// Shown to players in any of these (everyone when empty).
    #[serde(default)]
    #[schema(value_type = Vec<String>, max_items = 10)]
    pub include: Vec<AudienceId>,
    /// Never shown to players in any of these; exclude wins over include.
    #[serde(default)]
    #[schema(value_type = Vec<String>, max_items = 10)]
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
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Up to 2,000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    pub kind: AudienceKind,
    /// Required for a RULE audience, absent for a LIST one.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
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
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// A RULE audience's new tree.
    #[schema(value_type = Option<Object>)]
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

/// Reads the `audience` member of an event input: null or absent for everyone.
pub fn parse_target(value: Option<&Value>, pointer: &str) -> Result<Option<AudienceTarget>, Vec<FieldError>> {
    let Some(value) = value.filter(|value| !value.is_null()) else { return Ok(None) };
    let mut reader = ObjectReader::new(value, pointer)?;
    let _ = (reader.optional("include"), reader.optional("exclude"), reader.optional("sticky"));
    reader.finish(Some(()))?;
    let target: AudienceTarget = serde_json::from_value(value.clone())
        .map_err(|error| vec![FieldError::new(pointer, "invalid", error.to_string())])?;
    target.validate(pointer)?;
    Ok(Some(target))
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
