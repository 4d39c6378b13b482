//! Whether a player is in an audience, and in an event's target, judged purely on the facts
//! the service gathered ([`PlayerFacts`]); [`fact_needs`] says which facts those are, so a
//! request reads no more than its rules look at.

use std::collections::{BTreeSet, HashMap};

use bestow_kernel::ids::{AudienceId, UserId};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::evaluate::{ActivityFact, EvaluationContext, FactQuery, evaluate, fact_query};

use super::properties::{ComputedProperties, PropertyValue};
use super::rule::{Operand, PropertyOp, Rule};
use super::{Audience, AudienceKind, AudienceTarget};

/// Deepest chain of `IN_AUDIENCE` followed; writes refuse cycles, this only bounds the work
/// on a chain that a concurrent edit closed into a loop.
pub const MAX_AUDIENCE_NESTING: usize = 8;
/// Rollout buckets: a percent is judged to two decimals.
const ROLLOUT_BUCKETS: u64 = 10_000;

/// What is known of one player at one instant, for judging audiences.
#[derive(Debug, Clone)]
pub struct PlayerFacts<'a> {
    pub user_id: &'a UserId,
    pub properties: &'a std::collections::BTreeMap<String, PropertyValue>,
    pub computed: ComputedProperties,
    /// The player's activities the rules' activity leaves need ([`FactNeeds::activities`]).
    pub activities: &'a [ActivityFact],
    /// The LIST audiences, among those judged, the player is a member of.
    pub lists: &'a BTreeSet<AudienceId>,
    /// Every audience the judged ones name, directly or through `IN_AUDIENCE`.
    pub audiences: &'a HashMap<AudienceId, Audience>,
    pub now: DateTime<Utc>,
}

/// The verdict on one node of an audience (`GET /api/v1/audiences/{id}/check`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleVerdict {
    /// The node's `type` (`LIST` for a LIST audience's membership).
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether the node holds for the player.
    pub met: bool,
    /// The verdicts of an `AND`, `OR` or `NOT`'s children, and of the audience an
    /// `IN_AUDIENCE` names; omitted for other leaves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub children: Vec<RuleVerdict>,
}

impl RuleVerdict {
    fn leaf(kind: &str, met: bool) -> Self {
        Self { kind: kind.to_owned(), met, children: Vec::new() }
    }
}

/// Whether the player is in `audience`, with the verdict of every node.
pub fn judge(audience: &Audience, facts: &PlayerFacts<'_>) -> RuleVerdict {
    judge_nested(audience, facts, 0)
}

/// Whether the player is in the audience `id` (not in an audience that is gone).
pub fn is_member(id: &AudienceId, facts: &PlayerFacts<'_>) -> bool {
    facts.audiences.get(id).is_some_and(|audience| judge(audience, facts).met)
}

/// Whether `target` admits the player: in an included audience (any player when none is
/// named) and in no excluded one. Stickiness is the service's to apply: it is a stored fact.
pub fn admits(target: &AudienceTarget, facts: &PlayerFacts<'_>) -> bool {
    let included = target.include.is_empty() || target.include.iter().any(|id| is_member(id, facts));
    included && !target.exclude.iter().any(|id| is_member(id, facts))
}

fn judge_nested(audience: &Audience, facts: &PlayerFacts<'_>, depth: usize) -> RuleVerdict {
    match (&audience.kind, &audience.rule) {
        (AudienceKind::Rule, Some(rule)) => judge_rule(rule, facts, depth),
        _ => RuleVerdict::leaf("LIST", facts.lists.contains(&audience.id)),
    }
}

fn judge_rule(rule: &Rule, facts: &PlayerFacts<'_>, depth: usize) -> RuleVerdict {
    let kind = rule.type_name();
    match rule {
        Rule::And(rules) => {
            let children: Vec<RuleVerdict> = rules.iter().map(|rule| judge_rule(rule, facts, depth)).collect();
            RuleVerdict { kind: kind.to_owned(), met: children.iter().all(|child| child.met), children }
        }
        Rule::Or(rules) => {
            let children: Vec<RuleVerdict> = rules.iter().map(|rule| judge_rule(rule, facts, depth)).collect();
            RuleVerdict { kind: kind.to_owned(), met: children.iter().any(|child| child.met), children }
        }
        Rule::Not(rule) => {
            let child = judge_rule(rule, facts, depth);
            RuleVerdict { kind: kind.to_owned(), met: !child.met, children: vec![child] }
        }
        Rule::Property { name, op, value } => RuleVerdict::leaf(kind, compare(facts.properties.get(name), *op, value)),
        Rule::AccountAgeDays { min, max } => {
            let age = facts.computed.created_at.map(|created| whole_days(created, facts.now));
            let met = age.is_some_and(|age| {
                min.is_none_or(|min| age >= i64::from(min)) && max.is_none_or(|max| age <= i64::from(max))
            });
            RuleVerdict::leaf(kind, met)
        }
        Rule::InactiveDays { min } => {
            let since = facts.computed.last_seen_at.or(facts.computed.created_at);
            RuleVerdict::leaf(kind, since.is_some_and(|since| whole_days(since, facts.now) >= i64::from(*min)))
        }
        Rule::Activity { condition, within_days } => {
            let met = evaluate(condition, facts.activities, &sliding_window(*within_days, facts.now)).met;
            RuleVerdict::leaf(kind, met)
        }
        Rule::InAudience(id) => match facts.audiences.get(id) {
            Some(nested) if depth < MAX_AUDIENCE_NESTING => {
                let child = judge_nested(nested, facts, depth + 1);
                RuleVerdict { kind: kind.to_owned(), met: child.met, children: vec![child] }
            }
            _ => RuleVerdict::leaf(kind, false),
        },
        Rule::Rollout { percent, salt } => RuleVerdict::leaf(kind, in_rollout(facts.user_id, salt, *percent)),
    }
}

/// Whole days from `since` to `now` (0 when `since` is later).
fn whole_days(since: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - since).num_days().max(0)
}

/// The window an activity leaf counts in: the last `within_days` days up to `now`, days
/// counted in UTC.
pub fn sliding_window(within_days: u32, now: DateTime<Utc>) -> EvaluationContext {
    EvaluationContext {
        window_start: now - Duration::days(i64::from(within_days)),
        window_end: now,
        timezone: chrono_tz::UTC,
        now,
        period: None,
    }
}

/// Whether `user_id` falls in the first `percent` of the buckets `salt` splits players into:
/// the same player, salt and percent always give the same answer, a larger percent keeps
/// everyone a smaller one admitted, and two salts split independently.
pub fn in_rollout(user_id: &UserId, salt: &str, percent: f64) -> bool {
    rollout_bucket(user_id, salt) < (percent * (ROLLOUT_BUCKETS as f64 / 100.0)).round() as u64
}

/// The player's bucket, `0..10_000`, under `salt`.
pub fn rollout_bucket(user_id: &UserId, salt: &str) -> u64 {
    let digest =
        Sha256::new().chain_update(salt.as_bytes()).chain_update([0]).chain_update(user_id.as_str()).finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % ROLLOUT_BUCKETS
}

/// Whether the player's property `value` satisfies `op` against `operand`. A missing property
/// satisfies only `NE` and `NOT_IN`; order comparisons hold for numbers only.
fn compare(value: Option<&PropertyValue>, op: PropertyOp, operand: &Operand) -> bool {
    match (op, value, operand) {
        (PropertyOp::Exists, value, _) => value.is_some(),
        (PropertyOp::Eq, Some(value), Operand::One(expected)) => value == expected,
        (PropertyOp::Ne, value, Operand::One(expected)) => value != Some(expected),
        (PropertyOp::In, Some(value), Operand::Many(list)) => list.contains(value),
        (PropertyOp::NotIn, value, Operand::Many(list)) => value.is_none_or(|value| !list.contains(value)),
        (op, Some(PropertyValue::Number(number)), Operand::Number(bound)) => match op {
            PropertyOp::Gt => number > bound,
            PropertyOp::Gte => number >= bound,
            PropertyOp::Lt => number < bound,
            PropertyOp::Lte => number <= bound,
            _ => false,
        },
        _ => false,
    }
}

/// Which facts judging some audiences needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FactNeeds {
    /// Some `PROPERTY` leaf reads the player's properties.
    pub properties: bool,
    /// Some leaf reads the account's creation time.
    pub account: bool,
    /// Some leaf reads the last login.
    pub last_seen: bool,
    /// What the activity leaves count; `None` when there are none.
    pub activities: Option<FactQuery>,
    /// LIST audiences whose membership of the player must be looked up, with their current
    /// member generation.
    pub lists: Vec<(AudienceId, String)>,
}

/// The facts judging `audiences` (and everything they name, which must be in `known`) at
/// `now` needs.
pub fn fact_needs<'a>(
    audiences: impl IntoIterator<Item = &'a AudienceId>,
    known: &HashMap<AudienceId, Audience>,
    now: DateTime<Utc>,
) -> FactNeeds {
    let mut needs = FactNeeds::default();
    let mut pending: Vec<(&AudienceId, usize)> = audiences.into_iter().map(|id| (id, 0)).collect();
    let mut seen: BTreeSet<&AudienceId> = BTreeSet::new();
    while let Some((id, depth)) = pending.pop() {
        let Some(audience) = known.get(id) else { continue };
        if depth > MAX_AUDIENCE_NESTING || !seen.insert(id) {
            continue;
        }
        match &audience.rule {
            None => needs.lists.push((audience.id.clone(), audience.member_generation.clone())),
            Some(rule) => rule.visit(&mut |node| match node {
                Rule::Property { .. } => needs.properties = true,
                Rule::AccountAgeDays { .. } => needs.account = true,
                Rule::InactiveDays { .. } => {
                    needs.last_seen = true;
                    needs.account = true;
                }
                Rule::Activity { condition, within_days } => {
                    let query = fact_query(condition, &sliding_window(*within_days, now));
                    needs.activities = Some(match needs.activities.take() {
                        None => query,
                        Some(mut known) => {
                            known.types.extend(query.types);
                            known.from = known.from.zip(query.from).map(|(a, b)| a.min(b));
                            known.to = known.to.max(query.to);
                            known
                        }
                    });
                }
                _ => {}
            }),
        }
        if let Some(rule) = &audience.rule {
            pending.extend(
                rule.references()
                    .into_iter()
                    .filter_map(|nested| known.get_key_value(&nested))
                    .map(|(id, _)| (id, depth + 1)),
            );
        }
    }
    needs
}
