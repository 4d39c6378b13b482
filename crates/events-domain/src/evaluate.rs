//! Pure evaluation of a [`Condition`] tree against a player's activity facts: the verdict for a
//! claim and the per-node progress (`met`, `current / target`) for the eligibility preview.
//! Also says which facts the store must load ([`fact_query`]).
//!
//! # The counting window
//!
//! An activity counts when `window_start <= occurredAt < min(window_end, now)`: an activity at
//! exactly `window_start` counts, one at exactly `window_end` does not (the same half-open rule
//! as claims, `[startDate, endDate)`), and activities at or after `now` are ignored, so a fact
//! reported with a clock ahead of ours cannot make a player eligible early. `LEVEL_REACHED` is
//! the one exception: it has no lower bound (see [`evaluate`]).
//!
//! "A day" is a calendar day in the event's timezone, so a 23- or 25-hour day around a DST
//! change is still one day, and the day before it is still consecutive with it.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::condition::{Condition, Scope};
use super::recurrence::Period;
use super::validation::serialize_number;

/// Activity type reported when a player logs in.
pub const LOGIN: &str = "LOGIN";
/// Activity type reported when a player invites a friend.
pub const FRIEND_INVITED: &str = "FRIEND_INVITED";
/// Activity type reported when a player completes a quest; `attributes.questId` names it.
pub const QUEST_COMPLETED: &str = "QUEST_COMPLETED";
/// Activity type reported when a player levels up; `attributes.level` is the new level.
pub const LEVEL_UP: &str = "LEVEL_UP";
/// Activity type reported when a player pays; `attributes.amount` is the amount.
pub const PURCHASE: &str = "PURCHASE";
/// Activity type reported when a player spends a game currency; `attributes.currency` names
/// the currency and `attributes.amount` is the amount.
pub const SPEND: &str = "SPEND";

/// One thing a player did, as stored (already de-duplicated by the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityFact {
    /// E.g. [`LOGIN`], or any custom type.
    pub activity_type: String,
    /// When it happened, by the reporting game server's clock.
    pub occurred_at: DateTime<Utc>,
    /// Type-specific data, e.g. `{"questId": "q1"}`; missing or ill-typed members are ignored.
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// Where and when facts count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvaluationContext {
    /// First instant that counts (inclusive), normally the event's `startDate`.
    pub window_start: DateTime<Utc>,
    /// First instant that no longer counts (exclusive), normally the event's `endDate`.
    pub window_end: DateTime<Utc>,
    /// The event's timezone, which decides where one day ends and the next begins.
    pub timezone: Tz,
    /// The evaluation instant; activities at or after it are ignored.
    pub now: DateTime<Utc>,
    /// The period of a recurring event being judged: leaves of [`Scope::Period`] count only
    /// the activities within it (and within the window). `None` for a one-time event.
    pub period: Option<Period>,
}

impl EvaluationContext {
    /// The exclusive upper bound of counting: `min(window_end, now)`.
    pub fn effective_end(&self) -> DateTime<Utc> {
        self.window_end.min(self.now)
    }

    /// The half-open interval a leaf of `scope` counts in, before the `now` bound.
    fn bounds(&self, scope: Scope) -> (DateTime<Utc>, DateTime<Utc>) {
        match (scope, self.period) {
            (Scope::Period, Some(period)) => (self.window_start.max(period.start), self.window_end.min(period.end)),
            _ => (self.window_start, self.window_end),
        }
    }
}

/// The verdict for a whole tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// Whether the player is eligible.
    pub met: bool,
    /// Progress of the root node and, recursively, of every node.
    pub root: NodeProgress,
}

/// Progress of one node, mirroring the condition tree.
///
/// `current` and `target` are numbers (`f64`) because `PURCHASE_TOTAL` amounts may be
/// fractional; whole values serialize as JSON integers. For leaves, `current` is capped at
/// `target` (and floored at 0), so `current / target` is a progress ratio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeProgress {
    /// The node's `type`, e.g. `LOGIN_STREAK`; serialized as `type` like in the condition.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether this node is met.
    pub met: bool,
    /// How far the player got.
    #[serde(serialize_with = "serialize_number")]
    pub current: f64,
    /// Where the node is met.
    #[serde(serialize_with = "serialize_number")]
    pub target: f64,
    /// Progress of the sub-conditions of `AND`, `OR` and `NOT`; omitted for leaves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub children: Vec<NodeProgress>,
}

/// The verdict on one player and one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Eligibility {
    /// Whether the event's conditions are met now (always true for an event without
    /// conditions). A claim also needs the event to be ACTIVE and within its dates.
    pub eligible: bool,
    /// The condition tree with the progress of each node, or null when the event has no
    /// conditions. Each node: `type` (as in the condition), `met`, `current` and `target`
    /// (numbers; `current` never exceeds `target`), and `children` for `AND`, `OR` and `NOT`.
    /// For `AND`, `current` counts the met children; for `OR` and `NOT` it is 0 or 1.
    pub conditions: Option<NodeProgress>,
}

/// An event without conditions: always eligible.
impl Default for Eligibility {
    fn default() -> Self {
        Self { eligible: true, conditions: None }
    }
}

/// Evaluates `condition` against `facts` within `context` (see the module docs for the window).
///
/// Leaves (each `current` is capped at `target`):
/// - `LOGIN_STREAK {days}`: the longest run of consecutive calendar days (event timezone), within
///   the window, each with at least one `LOGIN`. `current` = longest run, `target` = `days`. The
///   longest run, not the run ending today, is used: once achieved, a streak stays met.
/// - `LOGIN_DAYS {days}`: the number of distinct calendar days (event timezone) with at least one
///   `LOGIN` in the window; several logins on one day count once. `target` = `days`.
/// - `FRIEND_INVITE {count}`: the number of `FRIEND_INVITED` activities in the window.
/// - `QUEST_COMPLETE {questId}`: met when some `QUEST_COMPLETED` in the window has
///   `attributes.questId` equal to `questId` (a string); `current` 0 or 1, `target` 1.
/// - `LEVEL_REACHED {level}`: the highest integer `attributes.level` of any `LEVEL_UP` before
///   `min(window_end, now)`, including before the window: a level is a state the player is in,
///   not something done during the event, and a player at level 60 is at least at level 50.
///   `target` = `level`.
/// - `PURCHASE_TOTAL {amount}`: the sum of numeric `attributes.amount` over `PURCHASE` activities
///   in the window (a negative amount, e.g. a refund, lowers it); met when the sum `>= amount`.
/// - `SPEND_CURRENCY {currency, amount}`: the sum of numeric `attributes.amount` over `SPEND`
///   activities in the window whose `attributes.currency` is `currency` (a negative amount, e.g.
///   a refund, lowers it); met when the sum `>= amount`.
/// - `ACTIVITY_COUNT {activityType, count}`: the number of activities of type `activityType` in
///   the window.
///
/// Composites:
/// - `AND`: met when every child is met; `current` = met children, `target` = children.
/// - `OR`: met when any child is met; `current` = 1 if any child is met else 0, `target` 1.
/// - `NOT`: met when its child is not; `current` = 1 if met else 0, `target` 1.
///
/// Facts with a missing or ill-typed attribute the leaf needs are ignored.
pub fn evaluate(condition: &Condition, facts: &[ActivityFact], context: &EvaluationContext) -> Evaluation {
    let root = FactView::new(facts, context).progress(condition);
    Evaluation { met: root.met, root }
}

/// Every activity type `condition` looks at.
pub fn relevant_activity_types(condition: &Condition) -> BTreeSet<String> {
    let mut types = BTreeSet::new();
    let mut pending = vec![condition];
    while let Some(node) = pending.pop() {
        pending.extend(node.children());
        types.extend(leaf_activity_type(node).map(str::to_owned));
    }
    types
}

/// The activity type a leaf looks at; `None` for composites.
fn leaf_activity_type(condition: &Condition) -> Option<&str> {
    Some(match condition {
        Condition::And { .. } | Condition::Or { .. } | Condition::Not { .. } => return None,
        Condition::LoginStreak { .. } | Condition::LoginDays { .. } => LOGIN,
        Condition::FriendInvite { .. } => FRIEND_INVITED,
        Condition::QuestComplete { .. } => QUEST_COMPLETED,
        Condition::LevelReached { .. } => LEVEL_UP,
        Condition::PurchaseTotal { .. } => PURCHASE,
        Condition::ActivityCount { activity_type, .. } => activity_type.as_str(),
        Condition::SpendCurrency { .. } => SPEND,
    })
}

/// The facts an evaluation needs, so the store loads no more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactQuery {
    /// Activity types to load.
    pub types: BTreeSet<String>,
    /// Inclusive lower bound on `occurredAt`; `None` when `LEVEL_REACHED` needs all history.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `occurredAt`: [`EvaluationContext::effective_end`].
    pub to: DateTime<Utc>,
}

/// What to load for evaluating `condition` in `context`. Loading more is harmless: the
/// evaluator applies the window itself.
pub fn fact_query(condition: &Condition, context: &EvaluationContext) -> FactQuery {
    FactQuery {
        types: relevant_activity_types(condition),
        from: (!needs_history(condition)).then(|| earliest_start(condition, context)),
        to: context.effective_end(),
    }
}

/// The earliest instant some leaf of `condition` counts from.
fn earliest_start(condition: &Condition, context: &EvaluationContext) -> DateTime<Utc> {
    match condition.children() {
        [] => context.bounds(condition.scope()).0,
        children => children.iter().map(|child| earliest_start(child, context)).min().unwrap_or(context.window_start),
    }
}

/// Whether some node counts facts from before the window (only `LEVEL_REACHED` does).
fn needs_history(condition: &Condition) -> bool {
    matches!(condition, Condition::LevelReached { .. }) || condition.children().iter().any(needs_history)
}

/// The facts as one evaluation sees them.
struct FactView<'a> {
    /// Facts before the effective end of the window, including those before its start.
    history: Vec<&'a ActivityFact>,
    context: EvaluationContext,
}

impl<'a> FactView<'a> {
    fn new(facts: &'a [ActivityFact], context: &EvaluationContext) -> Self {
        let end = context.effective_end();
        Self { history: facts.iter().filter(|fact| fact.occurred_at < end).collect(), context: *context }
    }

    fn of_type<'s>(&'s self, activity_type: &'s str) -> impl Iterator<Item = &'a ActivityFact> + 's {
        self.history.iter().copied().filter(move |fact| fact.activity_type == activity_type)
    }

    /// Facts of `activity_type` within the interval a leaf of `scope` counts in.
    fn counted<'s>(&'s self, activity_type: &'s str, scope: Scope) -> impl Iterator<Item = &'a ActivityFact> + 's {
        let (start, end) = self.context.bounds(scope);
        self.of_type(activity_type).filter(move |fact| start <= fact.occurred_at && fact.occurred_at < end)
    }

    fn login_dates(&self, scope: Scope) -> BTreeSet<NaiveDate> {
        let timezone = self.context.timezone;
        self.counted(LOGIN, scope).map(|fact| fact.occurred_at.with_timezone(&timezone).date_naive()).collect()
    }

    fn progress(&self, condition: &Condition) -> NodeProgress {
        let kind = condition.type_name();
        match condition {
            Condition::And { sub_conditions } => {
                let children = self.all_progress(sub_conditions);
                let met_count = count_met(&children);
                composite(kind, met_count == children.len(), met_count as f64, children.len() as f64, children)
            }
            Condition::Or { sub_conditions } => {
                let children = self.all_progress(sub_conditions);
                let met = count_met(&children) > 0;
                composite(kind, met, indicator(met), 1.0, children)
            }
            Condition::Not { condition } => {
                let child = self.progress(condition);
                let met = !child.met;
                composite(kind, met, indicator(met), 1.0, vec![child])
            }
            Condition::LoginStreak { days, scope } => {
                leaf(kind, longest_run(&self.login_dates(*scope)) as f64, f64::from(*days))
            }
            Condition::LoginDays { days, scope } => leaf(kind, self.login_dates(*scope).len() as f64, f64::from(*days)),
            Condition::FriendInvite { count, scope } => {
                leaf(kind, self.counted(FRIEND_INVITED, *scope).count() as f64, f64::from(*count))
            }
            Condition::QuestComplete { quest_id, scope } => {
                let completed = self
                    .counted(QUEST_COMPLETED, *scope)
                    .any(|fact| fact.attributes.get("questId").and_then(Value::as_str) == Some(quest_id));
                leaf(kind, indicator(completed), 1.0)
            }
            Condition::LevelReached { level, .. } => {
                let highest =
                    self.of_type(LEVEL_UP).filter_map(|fact| fact.attributes.get("level")?.as_i64()).max().unwrap_or(0);
                leaf(kind, highest as f64, f64::from(*level))
            }
            Condition::PurchaseTotal { amount, scope } => {
                let total =
                    self.counted(PURCHASE, *scope).filter_map(|fact| fact.attributes.get("amount")?.as_f64()).sum();
                leaf(kind, total, *amount)
            }
            Condition::ActivityCount { activity_type, count, scope } => {
                leaf(kind, self.counted(activity_type.as_str(), *scope).count() as f64, f64::from(*count))
            }
            Condition::SpendCurrency { currency, amount, scope } => {
                let total = self
                    .counted(SPEND, *scope)
                    .filter(|fact| fact.attributes.get("currency").and_then(Value::as_str) == Some(currency))
                    .filter_map(|fact| fact.attributes.get("amount")?.as_f64())
                    .sum();
                leaf(kind, total, *amount)
            }
        }
    }

    fn all_progress(&self, conditions: &[Condition]) -> Vec<NodeProgress> {
        conditions.iter().map(|condition| self.progress(condition)).collect()
    }
}

fn leaf(kind: &str, reached: f64, target: f64) -> NodeProgress {
    NodeProgress {
        kind: kind.to_owned(),
        met: reached >= target,
        // `min`/`max` rather than `clamp`, which panics on a NaN bound.
        current: reached.min(target).max(0.0),
        target,
        children: Vec::new(),
    }
}

fn composite(kind: &str, met: bool, current: f64, target: f64, children: Vec<NodeProgress>) -> NodeProgress {
    NodeProgress { kind: kind.to_owned(), met, current, target, children }
}

fn count_met(children: &[NodeProgress]) -> usize {
    children.iter().filter(|child| child.met).count()
}

fn indicator(condition: bool) -> f64 {
    if condition { 1.0 } else { 0.0 }
}

/// The length of the longest run of consecutive dates.
fn longest_run(dates: &BTreeSet<NaiveDate>) -> usize {
    let mut longest = 0;
    let mut run = 0;
    let mut previous: Option<NaiveDate> = None;
    for &date in dates {
        run = if previous.and_then(|day| day.succ_opt()) == Some(date) { run + 1 } else { 1 };
        longest = longest.max(run);
        previous = Some(date);
    }
    longest
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono_tz::{America::New_York, Asia::Seoul, UTC};
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn an_eligibility_reads_back_as_it_was_sent() {
        let sent = json!({ "eligible": false, "conditions": {
            "type": "AND", "met": false, "current": 1, "target": 2, "children": [
                { "type": "LOGIN_STREAK", "met": true, "current": 3, "target": 3 },
                { "type": "PURCHASE_TOTAL", "met": false, "current": 12.5, "target": 50 },
            ],
        } });
        let first = serde_json::to_value(serde_json::from_value::<Eligibility>(sent.clone()).unwrap()).unwrap();
        let again = serde_json::to_value(serde_json::from_value::<Eligibility>(first.clone()).unwrap()).unwrap();
        assert_eq!((&first, &again), (&sent, &sent));
    }

    fn instant(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn fact(activity_type: &str, at: &str, attributes: Value) -> ActivityFact {
        let Value::Object(attributes) = attributes else { panic!("attributes must be an object") };
        ActivityFact { activity_type: activity_type.to_owned(), occurred_at: instant(at), attributes }
    }

    fn login(at: &str) -> ActivityFact {
        fact(LOGIN, at, json!({}))
    }

    /// March 2026 in UTC, evaluated on March 20th.
    fn march() -> EvaluationContext {
        EvaluationContext {
            window_start: instant("2026-03-01T00:00:00Z"),
            window_end: instant("2026-04-01T00:00:00Z"),
            timezone: UTC,
            now: instant("2026-03-20T00:00:00Z"),
            period: None,
        }
    }

    fn leaf_condition(value: Value) -> Condition {
        serde_json::from_value(value).unwrap()
    }

    /// (met, current, target) of the root.
    fn verdict(condition: &Condition, facts: &[ActivityFact], context: &EvaluationContext) -> (bool, f64, f64) {
        let evaluation = evaluate(condition, facts, context);
        assert_eq!(evaluation.met, evaluation.root.met);
        (evaluation.met, evaluation.root.current, evaluation.root.target)
    }

    #[test]
    fn leaves() {
        let cases = [
            (
                "streak of three",
                json!({"type": "LOGIN_STREAK", "days": 3}),
                vec![login("2026-03-01T10:00:00Z"), login("2026-03-02T10:00:00Z"), login("2026-03-03T10:00:00Z")],
                (true, 3.0, 3.0),
            ),
            (
                "gap breaks the streak",
                json!({"type": "LOGIN_STREAK", "days": 3}),
                vec![
                    login("2026-03-01T10:00:00Z"),
                    login("2026-03-02T10:00:00Z"),
                    login("2026-03-04T10:00:00Z"),
                    login("2026-03-05T10:00:00Z"),
                ],
                (false, 2.0, 3.0),
            ),
            (
                "longest run, not the latest, counts",
                json!({"type": "LOGIN_STREAK", "days": 2}),
                vec![login("2026-03-01T10:00:00Z"), login("2026-03-02T10:00:00Z"), login("2026-03-10T10:00:00Z")],
                (true, 2.0, 2.0),
            ),
            (
                "several logins on one day are one day",
                json!({"type": "LOGIN_STREAK", "days": 2}),
                vec![login("2026-03-01T01:00:00Z"), login("2026-03-01T02:00:00Z"), login("2026-03-01T23:59:59Z")],
                (false, 1.0, 2.0),
            ),
            (
                "streak needs logins",
                json!({"type": "LOGIN_STREAK", "days": 1}),
                vec![fact(PURCHASE, "2026-03-01T10:00:00Z", json!({"amount": 1}))],
                (false, 0.0, 1.0),
            ),
            (
                "distinct login days",
                json!({"type": "LOGIN_DAYS", "days": 3}),
                vec![
                    login("2026-03-01T10:00:00Z"),
                    login("2026-03-01T11:00:00Z"),
                    login("2026-03-05T10:00:00Z"),
                    login("2026-03-09T10:00:00Z"),
                ],
                (true, 3.0, 3.0),
            ),
            (
                "login days below target",
                json!({"type": "LOGIN_DAYS", "days": 5}),
                vec![login("2026-03-01T10:00:00Z"), login("2026-03-01T11:00:00Z")],
                (false, 1.0, 5.0),
            ),
            (
                "friend invites",
                json!({"type": "FRIEND_INVITE", "count": 2}),
                vec![fact(FRIEND_INVITED, "2026-03-02T00:00:00Z", json!({})), login("2026-03-02T00:00:00Z")],
                (false, 1.0, 2.0),
            ),
            (
                "current is capped at target",
                json!({"type": "FRIEND_INVITE", "count": 1}),
                vec![
                    fact(FRIEND_INVITED, "2026-03-02T00:00:00Z", json!({})),
                    fact(FRIEND_INVITED, "2026-03-03T00:00:00Z", json!({})),
                ],
                (true, 1.0, 1.0),
            ),
            (
                "quest completed",
                json!({"type": "QUEST_COMPLETE", "questId": "q1"}),
                vec![
                    fact(QUEST_COMPLETED, "2026-03-02T00:00:00Z", json!({"questId": "q2"})),
                    fact(QUEST_COMPLETED, "2026-03-03T00:00:00Z", json!({"questId": "q1"})),
                ],
                (true, 1.0, 1.0),
            ),
            (
                "other quest, ill-typed or missing quest id",
                json!({"type": "QUEST_COMPLETE", "questId": "1"}),
                vec![
                    fact(QUEST_COMPLETED, "2026-03-02T00:00:00Z", json!({"questId": "q2"})),
                    fact(QUEST_COMPLETED, "2026-03-03T00:00:00Z", json!({"questId": 1})),
                    fact(QUEST_COMPLETED, "2026-03-04T00:00:00Z", json!({})),
                ],
                (false, 0.0, 1.0),
            ),
            (
                "quest completed before the event does not count",
                json!({"type": "QUEST_COMPLETE", "questId": "q1"}),
                vec![fact(QUEST_COMPLETED, "2026-02-28T00:00:00Z", json!({"questId": "q1"}))],
                (false, 0.0, 1.0),
            ),
            (
                "level reached before the event counts",
                json!({"type": "LEVEL_REACHED", "level": 10}),
                vec![fact(LEVEL_UP, "2025-12-01T00:00:00Z", json!({"level": 12}))],
                (true, 10.0, 10.0),
            ),
            (
                "highest level; ill-typed and future levels ignored",
                json!({"type": "LEVEL_REACHED", "level": 10}),
                vec![
                    fact(LEVEL_UP, "2026-03-02T00:00:00Z", json!({"level": 7})),
                    fact(LEVEL_UP, "2026-03-03T00:00:00Z", json!({"level": 4})),
                    fact(LEVEL_UP, "2026-03-04T00:00:00Z", json!({"level": "99"})),
                    fact(LEVEL_UP, "2026-03-05T00:00:00Z", json!({"level": 99.5})),
                    fact(LEVEL_UP, "2026-03-25T00:00:00Z", json!({"level": 99})),
                ],
                (false, 7.0, 10.0),
            ),
            (
                "fractional purchases add up",
                json!({"type": "PURCHASE_TOTAL", "amount": 100}),
                vec![
                    fact(PURCHASE, "2026-03-02T00:00:00Z", json!({"amount": 30.5})),
                    fact(PURCHASE, "2026-03-03T00:00:00Z", json!({"amount": 69.5})),
                ],
                (true, 100.0, 100.0),
            ),
            (
                "ill-typed amounts ignored, refunds subtract",
                json!({"type": "PURCHASE_TOTAL", "amount": 100}),
                vec![
                    fact(PURCHASE, "2026-03-02T00:00:00Z", json!({"amount": 80})),
                    fact(PURCHASE, "2026-03-03T00:00:00Z", json!({"amount": "100"})),
                    fact(PURCHASE, "2026-03-04T00:00:00Z", json!({})),
                    fact(PURCHASE, "2026-03-05T00:00:00Z", json!({"amount": -20.5})),
                ],
                (false, 59.5, 100.0),
            ),
            (
                "refunds never make progress negative",
                json!({"type": "PURCHASE_TOTAL", "amount": 10}),
                vec![fact(PURCHASE, "2026-03-02T00:00:00Z", json!({"amount": -5}))],
                (false, 0.0, 10.0),
            ),
            (
                "custom activity count",
                json!({"type": "ACTIVITY_COUNT", "activityType": "BOSS_KILLED", "count": 2}),
                vec![
                    fact("BOSS_KILLED", "2026-03-02T00:00:00Z", json!({})),
                    fact("BOSS_KILLED", "2026-03-03T00:00:00Z", json!({})),
                    fact("BOSS_KILLED_2", "2026-03-03T00:00:00Z", json!({})),
                ],
                (true, 2.0, 2.0),
            ),
            (
                "spending counts only the named currency, refunds subtract",
                json!({"type": "SPEND_CURRENCY", "currency": "GEM", "amount": 100}),
                vec![
                    fact(SPEND, "2026-03-02T00:00:00Z", json!({"currency": "GEM", "amount": 70})),
                    fact(SPEND, "2026-03-03T00:00:00Z", json!({"currency": "GOLD", "amount": 500})),
                    fact(SPEND, "2026-03-04T00:00:00Z", json!({"amount": 500})),
                    fact(SPEND, "2026-03-05T00:00:00Z", json!({"currency": "GEM", "amount": "30"})),
                    fact(SPEND, "2026-03-06T00:00:00Z", json!({"currency": "GEM", "amount": -10.5})),
                    fact(PURCHASE, "2026-03-07T00:00:00Z", json!({"currency": "GEM", "amount": 100})),
                    fact(SPEND, "2026-03-25T00:00:00Z", json!({"currency": "GEM", "amount": 100})),
                ],
                (false, 59.5, 100.0),
            ),
            (
                "spending reaches the amount",
                json!({"type": "SPEND_CURRENCY", "currency": "GEM", "amount": 100}),
                vec![
                    fact(SPEND, "2026-03-02T00:00:00Z", json!({"currency": "GEM", "amount": 60})),
                    fact(SPEND, "2026-03-19T23:59:59Z", json!({"currency": "GEM", "amount": 40})),
                ],
                (true, 100.0, 100.0),
            ),
        ];
        for (name, condition, facts, expected) in cases {
            assert_eq!(verdict(&leaf_condition(condition), &facts, &march()), expected, "{name}");
        }
    }

    #[test]
    fn composites() {
        let met = json!({"type": "LOGIN_DAYS", "days": 1});
        let unmet = json!({"type": "LOGIN_DAYS", "days": 9});
        let facts = [login("2026-03-02T00:00:00Z")];
        let cases = [
            (json!({"type": "AND", "subConditions": [met, met]}), (true, 2.0, 2.0)),
            (json!({"type": "AND", "subConditions": [met, unmet, met]}), (false, 2.0, 3.0)),
            (json!({"type": "OR", "subConditions": [unmet, met, met]}), (true, 1.0, 1.0)),
            (json!({"type": "OR", "subConditions": [unmet, unmet]}), (false, 0.0, 1.0)),
            (json!({"type": "NOT", "condition": met}), (false, 0.0, 1.0)),
            (json!({"type": "NOT", "condition": unmet}), (true, 1.0, 1.0)),
        ];
        for (condition, expected) in cases {
            assert_eq!(verdict(&leaf_condition(condition.clone()), &facts, &march()), expected, "{condition}");
        }
    }

    #[test]
    fn progress_serializes_as_the_preview_tree() {
        let condition = leaf_condition(json!({"type": "AND", "subConditions": [
            {"type": "LOGIN_STREAK", "days": 3},
            {"type": "NOT", "condition": {"type": "PURCHASE_TOTAL", "amount": 9.5}}
        ]}));
        let facts = [login("2026-03-02T00:00:00Z"), login("2026-03-03T00:00:00Z")];
        let evaluation = evaluate(&condition, &facts, &march());
        assert_eq!(
            serde_json::to_value(evaluation).unwrap(),
            json!({"met": false, "root": {"type": "AND", "met": false, "current": 1, "target": 2, "children": [
                {"type": "LOGIN_STREAK", "met": false, "current": 2, "target": 3},
                {"type": "NOT", "met": true, "current": 1, "target": 1, "children": [
                    {"type": "PURCHASE_TOTAL", "met": false, "current": 0, "target": 9.5}
                ]}
            ]}})
        );
    }

    #[test]
    fn window_bounds() {
        let start = "2026-03-01T00:00:00Z";
        let end = "2026-04-01T00:00:00Z";
        let after_end = EvaluationContext { now: instant("2026-04-05T00:00:00Z"), ..march() };
        let one_login = leaf_condition(json!({"type": "LOGIN_DAYS", "days": 1}));
        let cases = [
            ("exactly at window start counts", start, march(), true),
            ("just before window start does not", "2026-02-28T23:59:59Z", march(), false),
            ("just before window end counts", "2026-03-31T23:59:59Z", after_end, true),
            ("exactly at window end does not", end, after_end, false),
            ("after window end does not", "2026-04-02T00:00:00Z", after_end, false),
            ("just before now counts", "2026-03-19T23:59:59Z", march(), true),
            ("exactly at now does not", "2026-03-20T00:00:00Z", march(), false),
            ("after now does not", "2026-03-25T00:00:00Z", march(), false),
        ];
        for (name, at, context, counted) in cases {
            assert_eq!(evaluate(&one_login, &[login(at)], &context).met, counted, "{name}");
        }
    }

    #[test]
    fn days_are_calendar_days_in_the_event_timezone() {
        let in_zone = |timezone, window_start: &str, now: &str| EvaluationContext {
            window_start: instant(window_start),
            window_end: instant("2027-01-01T00:00:00Z"),
            timezone,
            now: instant(now),
            period: None,
        };
        let march_seoul = in_zone(Seoul, "2026-02-01T00:00:00Z", "2026-12-01T00:00:00Z");
        let march_utc = in_zone(UTC, "2026-02-01T00:00:00Z", "2026-12-01T00:00:00Z");
        let march_new_york = in_zone(New_York, "2026-02-01T00:00:00Z", "2026-12-01T00:00:00Z");
        let days = |days| leaf_condition(json!({"type": "LOGIN_DAYS", "days": days}));
        let streak = |days| leaf_condition(json!({"type": "LOGIN_STREAK", "days": days}));
        // One UTC day; in Seoul 23:30 on March 1st and 00:30 on March 2nd.
        let around_seoul_midnight = vec![login("2026-03-01T14:30:00Z"), login("2026-03-01T15:30:00Z")];
        // New York springs forward on 2026-03-08 (a 23-hour day): 00:30 EST and 23:30 EDT.
        let short_day = vec![login("2026-03-08T05:30:00Z"), login("2026-03-09T03:30:00Z")];
        // Noon on March 7th (EST), 8th and 9th (EDT).
        let streak_over_spring_forward =
            vec![login("2026-03-07T17:00:00Z"), login("2026-03-08T16:00:00Z"), login("2026-03-09T16:00:00Z")];
        // New York falls back on 2026-11-01 (a 25-hour day): 00:30 EDT and 23:30 EST.
        let long_day = vec![login("2026-11-01T04:30:00Z"), login("2026-11-02T04:30:00Z")];
        // 23:00 on October 31st (EDT), November 1st and 2nd (EST).
        let streak_over_fall_back =
            vec![login("2026-11-01T03:00:00Z"), login("2026-11-02T04:00:00Z"), login("2026-11-03T04:00:00Z")];
        let cases = [
            ("Seoul splits at its midnight", days(2), &around_seoul_midnight, march_seoul, true),
            ("Seoul streak", streak(2), &around_seoul_midnight, march_seoul, true),
            ("UTC keeps one day", days(2), &around_seoul_midnight, march_utc, false),
            ("23-hour day is one day", days(2), &short_day, march_new_york, false),
            ("23-hour day is two UTC days", days(2), &short_day, march_utc, true),
            ("streak over spring forward", streak(3), &streak_over_spring_forward, march_new_york, true),
            ("25-hour day is one day", days(2), &long_day, march_new_york, false),
            ("25-hour day is two UTC days", days(2), &long_day, march_utc, true),
            ("streak over fall back", streak(3), &streak_over_fall_back, march_new_york, true),
        ];
        for (name, condition, facts, context, met) in cases {
            assert_eq!(evaluate(&condition, facts, &context).met, met, "{name}");
        }
    }

    #[test]
    fn a_recurring_event_counts_the_current_period_unless_a_leaf_asks_for_the_whole_event() {
        // The week of Monday March 16th, inside the March window, evaluated on the 20th.
        let week = Period { start: instant("2026-03-16T00:00:00Z"), end: instant("2026-03-23T00:00:00Z") };
        let weekly = EvaluationContext { period: Some(week), ..march() };
        let logins = [login("2026-03-10T10:00:00Z"), login("2026-03-15T23:59:59Z"), login("2026-03-16T00:00:00Z")];
        let in_period = leaf_condition(json!({"type": "LOGIN_DAYS", "days": 2}));
        let in_event = leaf_condition(json!({"type": "LOGIN_DAYS", "days": 2, "scope": "EVENT"}));
        assert_eq!(verdict(&in_period, &logins, &weekly), (false, 1.0, 2.0));
        assert_eq!(verdict(&in_event, &logins, &weekly), (true, 2.0, 2.0));
        assert_eq!(verdict(&in_period, &logins, &march()), (true, 2.0, 2.0), "a one-time event has no period");
        // A claim judged after its period ended counts nothing from the next one.
        let later = EvaluationContext { now: instant("2026-03-25T00:00:00Z"), ..weekly };
        let next_week = [login("2026-03-16T01:00:00Z"), login("2026-03-23T01:00:00Z")];
        assert_eq!(verdict(&in_period, &next_week, &later), (false, 1.0, 2.0));
        // The query starts where the earliest leaf counts from.
        assert_eq!(fact_query(&in_period, &weekly).from, Some(week.start));
        let both = leaf_condition(json!({"type": "OR", "subConditions": [
            {"type": "LOGIN_DAYS", "days": 2}, {"type": "FRIEND_INVITE", "count": 1, "scope": "EVENT"}
        ]}));
        assert_eq!(fact_query(&both, &weekly).from, Some(weekly.window_start));
    }

    #[test]
    fn fact_queries_load_only_what_is_needed() {
        let context = march();
        let cases = [
            (
                json!({"type": "AND", "subConditions": [
                    {"type": "LOGIN_STREAK", "days": 2},
                    {"type": "LOGIN_DAYS", "days": 2},
                    {"type": "OR", "subConditions": [
                        {"type": "FRIEND_INVITE", "count": 1},
                        {"type": "NOT", "condition": {"type": "ACTIVITY_COUNT", "activityType": "BOSS_KILLED", "count": 1}}
                    ]}
                ]}),
                vec!["BOSS_KILLED", FRIEND_INVITED, LOGIN],
                Some(context.window_start),
            ),
            (
                json!({"type": "OR", "subConditions": [
                    {"type": "PURCHASE_TOTAL", "amount": 1},
                    {"type": "NOT", "condition": {"type": "LEVEL_REACHED", "level": 3}},
                    {"type": "QUEST_COMPLETE", "questId": "q"}
                ]}),
                vec![LEVEL_UP, PURCHASE, QUEST_COMPLETED],
                None,
            ),
        ];
        for (condition, types, from) in cases {
            let query = fact_query(&leaf_condition(condition), &context);
            let expected = FactQuery { types: types.into_iter().map(str::to_owned).collect(), from, to: context.now };
            assert_eq!(query, expected);
        }
        let ended = EvaluationContext { now: instant("2026-05-01T00:00:00Z"), ..context };
        assert_eq!(fact_query(&Condition::LoginDays { days: 1, scope: Scope::Period }, &ended).to, ended.window_end);
    }

    #[test]
    fn activity_facts_read_the_stored_shape() {
        let stored =
            json!({"activityType": "PURCHASE", "occurredAt": "2026-03-02T00:00:00Z", "attributes": {"amount": 5}});
        let read: ActivityFact = serde_json::from_value(stored).unwrap();
        assert_eq!(read, fact(PURCHASE, "2026-03-02T00:00:00Z", json!({"amount": 5})));
    }

    /// Small thresholds and few activity kinds, so random trees are met about as often as not.
    fn leaf_strategy() -> impl Strategy<Value = Condition> {
        prop_oneof![
            (1u32..4).prop_map(|days| Condition::LoginStreak { days, scope: Scope::Period }),
            (1u32..5).prop_map(|days| Condition::LoginDays { days, scope: Scope::Period }),
            (1u32..3).prop_map(|count| Condition::FriendInvite { count, scope: Scope::Period }),
            prop::sample::select(vec!["q1", "q2"])
                .prop_map(|id| Condition::QuestComplete { quest_id: id.to_owned(), scope: Scope::Period }),
            (1u32..8).prop_map(|level| Condition::LevelReached { level, scope: Scope::Period }),
            (1u32..200)
                .prop_map(|amount| Condition::PurchaseTotal { amount: f64::from(amount) / 2.0, scope: Scope::Period }),
            (1u32..3).prop_map(|count| Condition::ActivityCount {
                activity_type: "BOSS_KILLED".parse().unwrap(),
                count,
                scope: Scope::Period
            }),
        ]
    }

    /// Trees of depth at most 4.
    fn condition_strategy() -> impl Strategy<Value = Condition> {
        leaf_strategy().prop_recursive(3, 24, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(|sub_conditions| Condition::And { sub_conditions }),
                prop::collection::vec(inner.clone(), 1..4).prop_map(|sub_conditions| Condition::Or { sub_conditions }),
                inner.prop_map(|condition| Condition::Not { condition: Box::new(condition) }),
            ]
        })
    }

    /// Facts around March 2026, some outside the window or after now, some with ill-typed
    /// attributes.
    fn facts_strategy() -> impl Strategy<Value = Vec<ActivityFact>> {
        let activity_type =
            prop::sample::select(vec![LOGIN, FRIEND_INVITED, QUEST_COMPLETED, LEVEL_UP, PURCHASE, "BOSS_KILLED"]);
        let attributes = prop_oneof![
            Just(json!({})),
            prop::sample::select(vec!["q1", "q2"]).prop_map(|id| json!({"questId": id})),
            (0i64..10).prop_map(|level| json!({"level": level})),
            (-50i64..150).prop_map(|amount| json!({"amount": amount})),
            Just(json!({"amount": "lots", "level": [1], "questId": 1})),
        ];
        let minutes = -3 * 24 * 60..40 * 24 * 60i64;
        let fact = (activity_type, minutes, attributes).prop_map(|(activity_type, minutes, attributes)| {
            let Value::Object(attributes) = attributes else { unreachable!() };
            ActivityFact {
                activity_type: activity_type.to_owned(),
                occurred_at: instant("2026-03-01T00:00:00Z") + chrono::Duration::minutes(minutes),
                attributes,
            }
        });
        prop::collection::vec(fact, 0..40)
    }

    fn property_context() -> EvaluationContext {
        EvaluationContext {
            window_start: instant("2026-03-01T00:00:00Z"),
            window_end: instant("2026-03-31T00:00:00Z"),
            timezone: Seoul,
            now: instant("2026-03-25T00:00:00Z"),
            period: None,
        }
    }

    fn is_met(condition: &Condition, facts: &[ActivityFact]) -> bool {
        evaluate(condition, facts, &property_context()).met
    }

    fn not(condition: Condition) -> Condition {
        Condition::Not { condition: Box::new(condition) }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn double_negation_keeps_the_verdict(condition in condition_strategy(), facts in facts_strategy()) {
            prop_assert_eq!(is_met(&not(not(condition.clone())), &facts), is_met(&condition, &facts));
        }

        #[test]
        fn child_order_does_not_matter(
            (children, shuffled) in prop::collection::vec(condition_strategy(), 1..5)
                .prop_flat_map(|children| (Just(children.clone()), Just(children).prop_shuffle())),
            facts in facts_strategy(),
        ) {
            for compose in [
                |sub_conditions| Condition::And { sub_conditions },
                |sub_conditions| Condition::Or { sub_conditions },
            ] {
                prop_assert_eq!(is_met(&compose(children.clone()), &facts), is_met(&compose(shuffled.clone()), &facts));
            }
        }

        #[test]
        fn de_morgan(a in condition_strategy(), b in condition_strategy(), facts in facts_strategy()) {
            let not_and = not(Condition::And { sub_conditions: vec![a.clone(), b.clone()] });
            let or_not = Condition::Or { sub_conditions: vec![not(a.clone()), not(b.clone())] };
            prop_assert_eq!(is_met(&not_and, &facts), is_met(&or_not, &facts));
            let not_or = not(Condition::Or { sub_conditions: vec![a.clone(), b.clone()] });
            let and_not = Condition::And { sub_conditions: vec![not(a), not(b)] };
            prop_assert_eq!(is_met(&not_or, &facts), is_met(&and_not, &facts));
        }

        #[test]
        fn progress_is_consistent(condition in condition_strategy(), facts in facts_strategy()) {
            let evaluation = evaluate(&condition, &facts, &property_context());
            let mut nodes = vec![&evaluation.root];
            while let Some(node) = nodes.pop() {
                prop_assert!((0.0..=node.target).contains(&node.current), "{:?}", node);
                prop_assert_eq!(node.met, node.current == node.target, "{:?}", node);
                nodes.extend(&node.children);
            }
        }
    }
}
