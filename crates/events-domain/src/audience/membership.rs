//! Whether a player is in an audience, and in an event's target, judged purely on the facts
//! the service gathered ([`PlayerFacts`]); [`fact_needs`] says which facts those are, so a
//! request reads no more than its rules look at.

use std::collections::{BTreeSet, HashMap, VecDeque};

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

/// Whether the player is in `audience`, with the verdict of every node. An audience the tree
/// reaches again at the same nesting depth is judged once: its later mentions show only whether
/// it was met, so a tree naming the same audiences many times over costs no more than naming
/// them once (without this the work would grow as the references multiply down the nesting).
pub fn judge(audience: &Audience, facts: &PlayerFacts<'_>) -> RuleVerdict {
    Judgement::new(facts).audience(audience, 0)
}

/// Whether the player is in the audience `id` (not in an audience that is gone).
pub fn is_member(id: &AudienceId, facts: &PlayerFacts<'_>) -> bool {
    Judgement::new(facts).is_member(id)
}

/// Whether `target` admits the player: in an included audience (any player when none is
/// named) and in no excluded one. Stickiness is the service's to apply: it is a stored fact.
pub fn admits(target: &AudienceTarget, facts: &PlayerFacts<'_>) -> bool {
    let mut judgement = Judgement::new(facts);
    let included = target.include.is_empty() || target.include.iter().any(|id| judgement.is_member(id));
    included && !target.exclude.iter().any(|id| judgement.is_member(id))
}

/// One player's judgement: the facts, and whether each audience judged so far was met, by the
/// nesting depth it was judged at (at a deeper one, less of what it names is followed).
struct Judgement<'f, 'a> {
    facts: &'f PlayerFacts<'a>,
    judged: HashMap<(AudienceId, usize), bool>,
}

impl<'f, 'a> Judgement<'f, 'a> {
    fn new(facts: &'f PlayerFacts<'a>) -> Self {
        Self { facts, judged: HashMap::new() }
    }

    fn is_member(&mut self, id: &AudienceId) -> bool {
        if let Some(met) = self.judged.get(&(id.clone(), 0)) {
            return *met;
        }
        let facts = self.facts;
        facts.audiences.get(id).is_some_and(|audience| self.audience(audience, 0).met)
    }

    fn audience(&mut self, audience: &Audience, depth: usize) -> RuleVerdict {
        let verdict = match (&audience.kind, &audience.rule) {
            (AudienceKind::Rule, Some(rule)) => self.rule(rule, depth),
            _ => RuleVerdict::leaf("LIST", self.facts.lists.contains(&audience.id)),
        };
        self.judged.insert((audience.id.clone(), depth), verdict.met);
        verdict
    }

    fn rule(&mut self, rule: &Rule, depth: usize) -> RuleVerdict {
        let facts = self.facts;
        let kind = rule.type_name();
        match rule {
            Rule::And(rules) => {
                let children: Vec<RuleVerdict> = rules.iter().map(|rule| self.rule(rule, depth)).collect();
                RuleVerdict { kind: kind.to_owned(), met: children.iter().all(|child| child.met), children }
            }
            Rule::Or(rules) => {
                let children: Vec<RuleVerdict> = rules.iter().map(|rule| self.rule(rule, depth)).collect();
                RuleVerdict { kind: kind.to_owned(), met: children.iter().any(|child| child.met), children }
            }
            Rule::Not(rule) => {
                let child = self.rule(rule, depth);
                RuleVerdict { kind: kind.to_owned(), met: !child.met, children: vec![child] }
            }
            Rule::Property { name, op, value } => {
                RuleVerdict::leaf(kind, compare(facts.properties.get(name), *op, value))
            }
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
                    if let Some(met) = self.judged.get(&(id.clone(), depth + 1)) {
                        return RuleVerdict::leaf(kind, *met);
                    }
                    let child = self.audience(nested, depth + 1);
                    RuleVerdict { kind: kind.to_owned(), met: child.met, children: vec![child] }
                }
                _ => RuleVerdict::leaf(kind, false),
            },
            Rule::Rollout { percent, salt } => RuleVerdict::leaf(kind, in_rollout(facts.user_id, salt, *percent)),
        }
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
    // Breadth first, so an audience is first met at the least depth it is judged at and
    // what it names is followed as far as judging follows it.
    let mut pending: VecDeque<(&AudienceId, usize)> = audiences.into_iter().map(|id| (id, 0)).collect();
    let mut seen: BTreeSet<&AudienceId> = BTreeSet::new();
    while let Some((id, depth)) = pending.pop_front() {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use super::*;
    use crate::audience::rule::parse_rule;
    use crate::evaluate::{LOGIN, PURCHASE};

    /// Audience ids: `id(1)` is `000…001`.
    fn id(n: u8) -> AudienceId {
        format!("{n:024x}").parse().unwrap()
    }

    fn instant(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn now() -> DateTime<Utc> {
        instant("2026-03-15T12:00:00Z")
    }

    fn days_ago(days: i64) -> DateTime<Utc> {
        now() - Duration::days(days)
    }

    fn users(count: usize) -> Vec<UserId> {
        (0..count).map(|n| UserId::parse(&format!("player-{n}")).unwrap()).collect()
    }

    fn audience(id: AudienceId, rule: Option<Value>) -> Audience {
        let rule = rule.map(|value| parse_rule(&value, "").unwrap());
        Audience {
            name: format!("audience {id}"),
            description: String::new(),
            kind: if rule.is_some() { AudienceKind::Rule } else { AudienceKind::List },
            references: rule.as_ref().map(Rule::references).unwrap_or_default(),
            rule,
            member_count: 0,
            member_generation: format!("generation-of-{id}"),
            estimate: None,
            created_by: "operator".to_owned(),
            created_at: now(),
            updated_at: now(),
            version: 1,
            id,
        }
    }

    fn in_audience(id: &AudienceId) -> Value {
        json!({"type": "IN_AUDIENCE", "audienceId": id})
    }

    /// Everything known of one player, owned, lent out as [`PlayerFacts`].
    struct World {
        user_id: UserId,
        properties: BTreeMap<String, PropertyValue>,
        computed: ComputedProperties,
        activities: Vec<ActivityFact>,
        lists: BTreeSet<AudienceId>,
        audiences: HashMap<AudienceId, Audience>,
    }

    impl World {
        fn new() -> Self {
            Self {
                user_id: UserId::parse("player-1").unwrap(),
                properties: BTreeMap::new(),
                computed: ComputedProperties::default(),
                activities: Vec::new(),
                lists: BTreeSet::new(),
                audiences: HashMap::new(),
            }
        }

        fn facts(&self) -> PlayerFacts<'_> {
            PlayerFacts {
                user_id: &self.user_id,
                properties: &self.properties,
                computed: self.computed,
                activities: &self.activities,
                lists: &self.lists,
                audiences: &self.audiences,
                now: now(),
            }
        }

        fn with_property(mut self, name: &str, value: Value) -> Self {
            self.properties.insert(name.to_owned(), PropertyValue::from_json(&value, "").unwrap());
            self
        }

        fn with(mut self, audience: Audience) -> Self {
            self.audiences.insert(audience.id.clone(), audience);
            self
        }

        fn member_of(mut self, list: AudienceId) -> Self {
            self.lists.insert(list);
            self
        }

        fn holds(&self, rule: Value) -> bool {
            judge(&audience(id(200), Some(rule)), &self.facts()).met
        }
    }

    #[test]
    fn property_ops_compare_like_with_like() {
        let cases: [(Option<Value>, &str, Value, bool); 36] = [
            (Some(json!("KR")), "EQ", json!("KR"), true),
            (Some(json!("JP")), "EQ", json!("KR"), false),
            (None, "EQ", json!("KR"), false),
            (Some(json!("3")), "EQ", json!(3), false),
            (Some(json!(3.0)), "EQ", json!(3), true),
            (Some(json!(1)), "EQ", json!(true), false),
            (Some(json!(true)), "EQ", json!(true), true),
            (Some(json!("JP")), "NE", json!("KR"), true),
            (Some(json!("KR")), "NE", json!("KR"), false),
            (None, "NE", json!("KR"), true),
            (Some(json!("3")), "NE", json!(3), true),
            (Some(json!("JP")), "IN", json!(["KR", "JP"]), true),
            (Some(json!("US")), "IN", json!(["KR", "JP"]), false),
            (None, "IN", json!(["KR", "JP"]), false),
            (Some(json!("3")), "IN", json!([3, true]), false),
            (Some(json!(3)), "IN", json!(["3", 3]), true),
            (Some(json!("JP")), "NOT_IN", json!(["KR"]), true),
            (Some(json!("KR")), "NOT_IN", json!(["KR"]), false),
            (None, "NOT_IN", json!(["KR"]), true),
            (Some(json!("3")), "NOT_IN", json!([3]), true),
            (Some(json!(3)), "GT", json!(2), true),
            (Some(json!(2)), "GT", json!(2), false),
            (None, "GT", json!(2), false),
            (Some(json!("3")), "GT", json!(2), false),
            (Some(json!(true)), "GT", json!(0), false),
            (Some(json!(2)), "GTE", json!(2), true),
            (Some(json!(1.5)), "GTE", json!(2), false),
            (Some(json!(1)), "LT", json!(2), true),
            (Some(json!(2)), "LT", json!(2), false),
            (Some(json!("1")), "LT", json!(2), false),
            (Some(json!(2)), "LTE", json!(2), true),
            (Some(json!(2.5)), "LTE", json!(2), false),
            (None, "LTE", json!(2), false),
            (Some(json!(false)), "EXISTS", Value::Null, true),
            (Some(json!("")), "EXISTS", Value::Null, true),
            (None, "EXISTS", Value::Null, false),
        ];
        for (property, op, operand, expected) in cases {
            let mut world = World::new().with_property("other", json!("KR"));
            if let Some(property) = &property {
                world = world.with_property("p", property.clone());
            }
            let mut rule = json!({"type": "PROPERTY", "name": "p", "op": op});
            if !operand.is_null() {
                rule["value"] = operand.clone();
            }
            assert_eq!(world.holds(rule), expected, "{property:?} {op} {operand}");
        }
    }

    #[test]
    fn account_age_counts_whole_days() {
        let second = Duration::seconds(1);
        let cases = [
            (json!({"min": 30}), Some(days_ago(30)), true),
            (json!({"min": 30}), Some(days_ago(30) + second), false),
            (json!({"min": 30}), Some(days_ago(400)), true),
            (json!({"max": 30}), Some(days_ago(31) + second), true),
            (json!({"max": 30}), Some(days_ago(31)), false),
            (json!({"max": 30}), Some(now()), true),
            (json!({"min": 0, "max": 0}), Some(now() - second), true),
            (json!({"min": 0, "max": 0}), Some(days_ago(1)), false),
            // A creation time ahead of our clock is an account of age 0.
            (json!({"min": 0, "max": 0}), Some(now() + Duration::hours(1)), true),
            (json!({"min": 7, "max": 7}), Some(days_ago(8) + second), true),
            (json!({"min": 7, "max": 7}), Some(days_ago(8)), false),
            (json!({"min": 7, "max": 7}), Some(days_ago(7) + second), false),
            // No account: no age.
            (json!({"min": 0}), None, false),
            (json!({"max": 3660}), None, false),
        ];
        for (bounds, created_at, expected) in cases {
            let mut world = World::new();
            world.computed.created_at = created_at;
            let mut rule = bounds.clone();
            rule["type"] = json!("ACCOUNT_AGE_DAYS");
            assert_eq!(world.holds(rule), expected, "{bounds} created {created_at:?}");
        }
    }

    #[test]
    fn inactivity_counts_from_the_last_login_else_from_the_account_creation() {
        let second = Duration::seconds(1);
        let cases = [
            (Some(days_ago(30)), Some(days_ago(400)), true),
            (Some(days_ago(30) + second), Some(days_ago(400)), false),
            (Some(days_ago(2)), Some(days_ago(400)), false),
            (None, Some(days_ago(30)), true),
            (None, Some(days_ago(29)), false),
            (None, None, false),
        ];
        for (last_seen_at, created_at, expected) in cases {
            let mut world = World::new();
            world.computed = ComputedProperties { created_at, last_seen_at, purchase_total: 0.0 };
            assert_eq!(
                world.holds(json!({"type": "INACTIVE_DAYS", "min": 30})),
                expected,
                "last seen {last_seen_at:?}, created {created_at:?}"
            );
        }
    }

    #[test]
    fn activity_leaves_count_only_within_the_sliding_window() {
        let login = |at: DateTime<Utc>| ActivityFact {
            activity_type: LOGIN.to_owned(),
            occurred_at: at,
            attributes: serde_json::Map::new(),
        };
        let once_in_30 = json!({"type": "LOGIN_DAYS", "days": 1, "withinDays": 30});
        let cases = [
            (vec![login(days_ago(31))], false),
            (vec![login(days_ago(30) - Duration::seconds(1))], false),
            (vec![login(days_ago(30))], true),
            (vec![login(days_ago(29))], true),
            // Ahead of our clock: not yet.
            (vec![login(now() + Duration::hours(1))], false),
        ];
        for (activities, expected) in cases {
            let world = World { activities: activities.clone(), ..World::new() };
            assert_eq!(world.holds(once_in_30.clone()), expected, "{activities:?}");
        }
        let three_in_14 = json!({"type": "LOGIN_DAYS", "days": 3, "withinDays": 14});
        let inside = vec![login(days_ago(1)), login(days_ago(5)), login(days_ago(13))];
        assert!(World { activities: inside.clone(), ..World::new() }.holds(three_in_14.clone()));
        let one_outside = vec![login(days_ago(1)), login(days_ago(5)), login(days_ago(15))];
        assert!(!World { activities: one_outside, ..World::new() }.holds(three_in_14.clone()));
        // Scope changes nothing: the window is the same sliding one.
        let scoped = json!({"type": "LOGIN_DAYS", "days": 3, "withinDays": 14, "scope": "EVENT"});
        assert!(World { activities: inside, ..World::new() }.holds(scoped));
    }

    #[test]
    fn in_audience_follows_list_and_rule_audiences() {
        let (list, korea, gone) = (id(1), id(2), id(3));
        let world = || {
            World::new().with(audience(list.clone(), None)).with(audience(
                korea.clone(),
                Some(json!({"type": "PROPERTY", "name": "country", "op": "EQ", "value": "KR"})),
            ))
        };
        assert!(world().member_of(list.clone()).holds(in_audience(&list)));
        assert!(!world().member_of(id(9)).holds(in_audience(&list)));
        assert!(world().with_property("country", json!("KR")).holds(in_audience(&korea)));
        assert!(!world().with_property("country", json!("JP")).holds(in_audience(&korea)));
        // An audience that is gone has nobody in it, even a player on a list of that id.
        assert!(!world().member_of(gone.clone()).holds(in_audience(&gone)));
        assert!(world().member_of(list.clone()).holds(json!({"type": "NOT", "condition": in_audience(&gone)})));
        assert!(is_member(&list, &world().member_of(list.clone()).facts()));
        assert!(!is_member(&gone, &world().member_of(gone.clone()).facts()));
    }

    /// The number of `IN_AUDIENCE` nodes on the verdict's first-child chain.
    fn nesting_of(verdict: &RuleVerdict) -> usize {
        let mut count = 0;
        let mut node = Some(verdict);
        while let Some(current) = node {
            count += usize::from(current.kind == "IN_AUDIENCE");
            node = current.children.first();
        }
        count
    }

    #[test]
    fn a_cycle_of_audiences_is_cut_at_the_nesting_bound() {
        let (first, second) = (id(1), id(2));
        let world = World::new()
            .with(audience(first.clone(), Some(in_audience(&second))))
            .with(audience(second.clone(), Some(in_audience(&first))));
        let verdict = judge(&world.audiences[&first], &world.facts());
        assert!(!verdict.met);
        assert_eq!(nesting_of(&verdict), MAX_AUDIENCE_NESTING + 1);
        assert!(!admits(&AudienceTarget { include: vec![first.clone()], ..Default::default() }, &world.facts()));

        // A loop through an OR still holds through its other branch.
        let korea = json!({"type": "PROPERTY", "name": "country", "op": "EQ", "value": "KR"});
        let looping =
            audience(first.clone(), Some(json!({"type": "OR", "subConditions": [in_audience(&first), korea]})));
        let world = World::new().with(looping).with_property("country", json!("KR"));
        assert!(judge(&world.audiences[&first], &world.facts()).met);
    }

    /// Audiences `1 → 2 → … → hops` each naming the next, the last naming the LIST `hops + 1`
    /// the player is on.
    fn chain(hops: u8) -> World {
        let mut world = World::new().with(audience(id(hops + 1), None)).member_of(id(hops + 1));
        for n in 1..=hops {
            world = world.with(audience(id(n), Some(in_audience(&id(n + 1)))));
        }
        world
    }

    #[test]
    fn a_chain_is_followed_exactly_as_deep_as_the_nesting_bound() {
        let hops = u8::try_from(MAX_AUDIENCE_NESTING).unwrap();
        let within = chain(hops);
        assert!(is_member(&id(1), &within.facts()));
        let needs = fact_needs([&id(1)], &within.audiences, now());
        assert_eq!(needs.lists, [(id(hops + 1), format!("generation-of-{}", id(hops + 1)))]);

        let beyond = chain(hops + 1);
        assert!(!is_member(&id(1), &beyond.facts()));
        assert_eq!(fact_needs([&id(1)], &beyond.audiences, now()).lists, []);
    }

    #[test]
    fn fact_needs_follow_an_audience_at_the_least_depth_it_is_judged_at() {
        // 100 → 1 → … → 8 → LIST 9 directly, and 100 → 50 → 1 → … the long way round: the LIST
        // is judged through the short path, so its membership is needed.
        let hops = u8::try_from(MAX_AUDIENCE_NESTING).unwrap() - 1;
        let world = chain(hops).with(audience(id(50), Some(in_audience(&id(1))))).with(audience(
            id(100),
            Some(json!({"type": "OR", "subConditions": [in_audience(&id(1)), in_audience(&id(50))]})),
        ));
        assert!(is_member(&id(100), &world.facts()));
        let needs = fact_needs([&id(100)], &world.audiences, now());
        assert_eq!(needs.lists.iter().map(|(list, _)| list.clone()).collect::<Vec<_>>(), [id(hops + 1)]);
    }

    #[test]
    fn an_audience_named_many_times_is_judged_once_per_depth() {
        // 1 → 2 → … → 8, each naming the next 40 times, the last the LIST 9: judged path by
        // path that is 40^7 judgements; once per audience and depth, it is eight.
        let hops = u8::try_from(MAX_AUDIENCE_NESTING).unwrap();
        let mut world = World::new().with(audience(id(hops + 1), None)).member_of(id(hops + 1));
        for n in 1..=hops {
            let rule = json!({"type": "AND", "subConditions": vec![in_audience(&id(n + 1)); 40]});
            world = world.with(audience(id(n), Some(rule)));
        }
        let verdict = judge(&world.audiences[&id(1)], &world.facts());
        assert!(verdict.met);
        assert_eq!(nesting_of(&verdict), MAX_AUDIENCE_NESTING);
        assert_eq!(verdict.children.len(), 40);
        assert_eq!(verdict.children[0].children.len(), 1, "the first mention shows the audience's verdict");
        assert!(verdict.children[1..].iter().all(|child| child.met && child.children.is_empty()), "later ones its met");
        assert!(is_member(&id(1), &world.facts()));
        let target = AudienceTarget { include: vec![id(2)], exclude: vec![id(1)], sticky: false };
        assert!(!admits(&target, &world.facts()));
        world.lists.clear();
        assert!(!judge(&world.audiences[&id(1)], &world.facts()).met);
    }

    fn percent_admitted<'a>(ids: &'a [UserId], salt: &str, percent: f64) -> BTreeSet<&'a UserId> {
        ids.iter().filter(|user_id| in_rollout(user_id, salt, percent)).collect()
    }

    #[test]
    fn rollouts_are_stable_nested_and_independent_across_salts() {
        let ids = users(2_000);
        let ten = percent_admitted(&ids, "spring-launch", 10.0);
        assert!((140..=260).contains(&ten.len()), "10 % admitted {} of 2,000", ten.len());
        assert_eq!(percent_admitted(&ids, "spring-launch", 10.0), ten, "the same players every time");
        assert!(percent_admitted(&ids, "spring-launch", 0.0).is_empty());
        assert_eq!(percent_admitted(&ids, "spring-launch", 100.0).len(), ids.len());
        let twenty = percent_admitted(&ids, "spring-launch", 20.0);
        assert!(ten.is_subset(&twenty), "a player in 10 % is in 20 %");
        assert!((340..=460).contains(&twenty.len()), "20 % admitted {} of 2,000", twenty.len());

        let first = percent_admitted(&ids, "spring-launch", 50.0);
        let second = percent_admitted(&ids, "summer-sale", 50.0);
        let both = first.intersection(&second).count();
        assert!((400..=600).contains(&both), "two independent halves overlap on about a quarter, not {both}");

        // The buckets must never change between releases, or a live 10 % would become another
        // 10 %: the first 8 bytes of SHA-256(salt, 0, userId), big-endian, modulo 10,000.
        assert_eq!([rollout_bucket(&ids[0], "spring-launch"), rollout_bucket(&ids[1], "summer-sale")], [9809, 9538]);
    }

    #[test]
    fn a_rollout_leaf_judges_the_player_by_id() {
        let rule = json!({"type": "ROLLOUT", "percent": 10, "salt": "spring-launch"});
        for user_id in users(200) {
            let world = World { user_id: user_id.clone(), ..World::new() };
            assert_eq!(world.holds(rule.clone()), in_rollout(&user_id, "spring-launch", 10.0), "{user_id}");
        }
    }

    #[test]
    fn a_target_admits_the_included_unless_excluded() {
        let (korea, banned) = (id(1), id(2));
        let world = |country: &str| {
            World::new()
                .with(audience(
                    korea.clone(),
                    Some(json!({"type": "PROPERTY", "name": "country", "op": "EQ", "value": "KR"})),
                ))
                .with(audience(banned.clone(), None))
                .with_property("country", json!(country))
        };
        let target = |include: &[&AudienceId], exclude: &[&AudienceId]| AudienceTarget {
            include: include.iter().map(|id| (*id).clone()).collect(),
            exclude: exclude.iter().map(|id| (*id).clone()).collect(),
            sticky: false,
        };
        let korean = world("KR");
        let korean_banned = world("KR").member_of(banned.clone());
        let japanese = world("JP");
        let cases = [
            (target(&[], &[]), &japanese, true),
            (target(&[&korea], &[]), &korean, true),
            (target(&[&korea], &[]), &japanese, false),
            (target(&[&korea, &banned], &[]), &japanese, false),
            (target(&[&banned, &korea], &[]), &korean, true),
            (target(&[&korea], &[&banned]), &korean, true),
            (target(&[&korea], &[&banned]), &korean_banned, false),
            (target(&[], &[&banned]), &japanese, true),
            (target(&[], &[&banned]), &korean_banned, false),
            (target(&[&korea], &[&korea]), &korean, false),
            // An audience that is gone includes nobody and excludes nobody.
            (target(&[&id(3)], &[]), &korean, false),
            (target(&[], &[&id(3)]), &korean, true),
        ];
        for (index, (target, world, expected)) in cases.into_iter().enumerate() {
            assert_eq!(admits(&target, &world.facts()), expected, "case {index}: {target:?}");
        }
    }

    #[test]
    fn a_verdict_names_every_node() {
        let list = id(1);
        let rule = json!({"type": "AND", "subConditions": [
            {"type": "PROPERTY", "name": "country", "op": "IN", "value": ["KR"]},
            {"type": "NOT", "condition": {"type": "ROLLOUT", "percent": 0, "salt": "s"}},
            {"type": "LOGIN_DAYS", "days": 1, "withinDays": 7},
            in_audience(&list)
        ]});
        let world = World::new()
            .with(audience(list.clone(), None))
            .member_of(list.clone())
            .with_property("country", json!("KR"));
        let verdict = judge(&audience(id(2), Some(rule)), &world.facts());
        assert_eq!(
            serde_json::to_value(&verdict).unwrap(),
            json!({"type": "AND", "met": false, "children": [
                {"type": "PROPERTY", "met": true},
                {"type": "NOT", "met": true, "children": [{"type": "ROLLOUT", "met": false}]},
                {"type": "LOGIN_DAYS", "met": false},
                {"type": "IN_AUDIENCE", "met": true, "children": [{"type": "LIST", "met": true}]}
            ]})
        );
        let on_list = judge(&world.audiences[&list], &world.facts());
        assert_eq!(serde_json::to_value(&on_list).unwrap(), json!({"type": "LIST", "met": true}));
        let read: RuleVerdict = serde_json::from_value(serde_json::to_value(&verdict).unwrap()).unwrap();
        assert_eq!(read, verdict);
    }

    #[test]
    fn fact_needs_name_only_what_the_rules_read() {
        let (list, other_list) = (id(1), id(2));
        let known: HashMap<AudienceId, Audience> = [
            audience(list.clone(), None),
            audience(other_list.clone(), None),
            audience(id(10), Some(json!({"type": "PROPERTY", "name": "country", "op": "EXISTS"}))),
            audience(id(11), Some(json!({"type": "ACCOUNT_AGE_DAYS", "min": 3}))),
            audience(id(12), Some(json!({"type": "INACTIVE_DAYS", "min": 3}))),
            audience(id(13), Some(json!({"type": "ROLLOUT", "percent": 50, "salt": "s"}))),
            audience(id(14), Some(json!({"type": "LOGIN_DAYS", "days": 1, "withinDays": 14}))),
            audience(
                id(15),
                Some(json!({"type": "OR", "subConditions": [
                    {"type": "PURCHASE_TOTAL", "amount": 5, "withinDays": 30},
                    {"type": "LOGIN_STREAK", "days": 2, "withinDays": 7}
                ]})),
            ),
            audience(id(16), Some(json!({"type": "LEVEL_REACHED", "level": 5, "withinDays": 7}))),
            audience(id(17), Some(json!({"type": "AND", "subConditions": [in_audience(&id(10)), in_audience(&list)]}))),
            audience(id(18), Some(json!({"type": "OR", "subConditions": [in_audience(&id(17)), in_audience(&list), in_audience(&id(99))]}))),
        ]
        .into_iter()
        .map(|audience| (audience.id.clone(), audience))
        .collect();
        let needs = |ids: &[u8]| {
            let ids: Vec<AudienceId> = ids.iter().map(|n| id(*n)).collect();
            fact_needs(&ids, &known, now())
        };
        let generation = |list: &AudienceId| (list.clone(), format!("generation-of-{list}"));
        let types = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect::<BTreeSet<_>>();

        assert_eq!(needs(&[]), FactNeeds::default());
        assert_eq!(needs(&[13, 99]), FactNeeds::default(), "a rollout reads nothing, a gone audience nothing");
        assert_eq!(needs(&[10]), FactNeeds { properties: true, ..FactNeeds::default() });
        assert_eq!(needs(&[11]), FactNeeds { account: true, ..FactNeeds::default() });
        assert_eq!(needs(&[12]), FactNeeds { account: true, last_seen: true, ..FactNeeds::default() });
        assert_eq!(
            needs(&[1, 2, 1]),
            FactNeeds { lists: vec![generation(&list), generation(&other_list)], ..FactNeeds::default() }
        );

        let login_in_14 = FactQuery { types: types(&[LOGIN]), from: Some(days_ago(14)), to: now() };
        assert_eq!(needs(&[14]).activities, Some(login_in_14));
        let union = FactQuery { types: types(&[LOGIN, PURCHASE]), from: Some(days_ago(30)), to: now() };
        assert_eq!(needs(&[14, 15]).activities, Some(union));
        let with_history = needs(&[14, 16]).activities.unwrap();
        assert_eq!(
            (with_history.types, with_history.from),
            (types(&[LOGIN, "LEVEL_UP"]), None),
            "a level needs all history"
        );
        assert_eq!(needs(&[16, 14]).activities.unwrap().from, None);

        // 18 names 17, which names 10 and the list; each list once.
        assert_eq!(
            needs(&[18]),
            FactNeeds { properties: true, lists: vec![generation(&list)], ..FactNeeds::default() }
        );
    }
}
