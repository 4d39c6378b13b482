//! Whether a player meets an event's conditions right now, with the progress of every node:
//! the eligibility preview, and the condition check of the claim saga.
//!
//! The facts are read from the configured [`ActivityProvider`] and evaluated by the pure
//! [`evaluate`] over the event's window `[startDate, endDate)` in the event's timezone.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use bestow_core::ids::UserId;

use crate::conditions::activities::{ActivityProvider, FactError};
use crate::domain::condition::Condition;
use crate::domain::evaluate::{ActivityFact, EvaluationContext, FactQuery, evaluate, fact_query};
use crate::domain::event::Event;
use crate::domain::recurrence::Period;
use crate::domain::saga::ClaimTarget;
use crate::domain::tier::Tier;

/// The verdict on one player and one event, a domain type so that clients read it back.
pub use crate::domain::evaluate::Eligibility;

/// Evaluates events' conditions against a player's facts.
pub struct EligibilityChecker {
    provider: Arc<dyn ActivityProvider>,
}

impl std::fmt::Debug for EligibilityChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EligibilityChecker").finish_non_exhaustive()
    }
}

impl EligibilityChecker {
    pub fn new(provider: Arc<dyn ActivityProvider>) -> Self {
        Self { provider }
    }

    /// Evaluates the conditions a claim of `target` is judged by (the event's, and its tier's)
    /// for `user_id` at `now`, counting within `target`'s period for a recurring event; fails
    /// only when the facts cannot be read.
    pub async fn check(
        &self,
        user_id: &UserId,
        event: &Event,
        target: &ClaimTarget,
        now: DateTime<Utc>,
    ) -> Result<Eligibility, FactError> {
        let judgement = Judgement::new(event, &[target.tier.as_ref()], target.period, now);
        let mut verdicts = self.judge_all(user_id, std::slice::from_ref(&judgement)).await?;
        Ok(verdicts.pop().and_then(|mut tiers| tiers.pop()).unwrap_or_default())
    }

    /// The verdict [`Self::check`] gives for text that names no player (an empty id): judged
    /// on no facts, since no activity can be recorded under it.
    pub fn check_without_facts(event: &Event, target: &ClaimTarget, now: DateTime<Utc>) -> Eligibility {
        let judgement = Judgement::new(event, &[target.tier.as_ref()], target.period, now);
        judgement.verdicts(&[]).pop().unwrap_or_default()
    }

    /// The verdicts of several judgements of one player, from one read of the facts they
    /// need together.
    pub async fn judge_all(
        &self,
        user_id: &UserId,
        judgements: &[Judgement],
    ) -> Result<Vec<Vec<Eligibility>>, FactError> {
        let query = judgements.iter().filter_map(|judgement| judgement.query.clone()).reduce(union);
        let facts = match &query {
            None => Vec::new(),
            Some(query) => self.provider.facts(user_id, query).await?,
        };
        Ok(judgements.iter().map(|judgement| judgement.verdicts(&facts)).collect())
    }
}

/// The conditions of some tiers of one event, to be judged in one period at one instant, and
/// the facts they need.
#[derive(Debug, Clone)]
pub struct Judgement {
    context: EvaluationContext,
    conditions: Vec<Option<Condition>>,
    /// `None` when no condition can count anything yet.
    query: Option<FactQuery>,
}

impl Judgement {
    pub fn new(event: &Event, tiers: &[Option<&Tier>], period: Option<Period>, now: DateTime<Utc>) -> Self {
        let context = EvaluationContext {
            window_start: event.start_date,
            window_end: event.end_date,
            timezone: event.timezone,
            now,
            period,
        };
        let conditions: Vec<_> = tiers.iter().map(|tier| event.conditions_of(*tier)).collect();
        let query = conditions
            .iter()
            .flatten()
            .map(|condition| fact_query(condition, &context))
            .reduce(union)
            // Before the event starts nothing can count yet: no need to ask anyone.
            .filter(|query| query.from.is_none_or(|from| from < query.to));
        Self { context, conditions, query }
    }

    /// The verdict of each tier on `facts` (which may hold more than the query asked for: the
    /// evaluator applies the window itself).
    fn verdicts(&self, facts: &[ActivityFact]) -> Vec<Eligibility> {
        self.conditions
            .iter()
            .map(|condition| match condition {
                None => Eligibility::default(),
                Some(condition) => {
                    let evaluation = evaluate(condition, facts, &self.context);
                    Eligibility { eligible: evaluation.met, conditions: Some(evaluation.root) }
                }
            })
            .collect()
    }
}

/// A query loading what both `a` and `b` load.
fn union(mut a: FactQuery, b: FactQuery) -> FactQuery {
    a.types.extend(b.types);
    a.from = a.from.zip(b.from).map(|(a, b)| a.min(b));
    a.to = a.to.max(b.to);
    a
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::conditions::activities::FactFailure;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::domain::evaluate::{ActivityFact, FactQuery};
    use crate::domain::event::EventInput;

    /// Answers with fixed facts (or an error) and records the queries it was asked.
    struct FixedFacts {
        facts: Result<Vec<ActivityFact>, FactError>,
        asked: Mutex<Vec<(String, FactQuery)>>,
    }

    #[async_trait]
    impl ActivityProvider for FixedFacts {
        async fn facts(&self, user_id: &UserId, query: &FactQuery) -> Result<Vec<ActivityFact>, FactError> {
            self.asked.lock().unwrap().push((user_id.to_string(), query.clone()));
            self.facts.clone()
        }
    }

    fn checker(facts: Result<Vec<ActivityFact>, FactError>) -> (EligibilityChecker, Arc<FixedFacts>) {
        let provider = Arc::new(FixedFacts { facts, asked: Mutex::default() });
        (EligibilityChecker::new(provider.clone()), provider)
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn login(text: &str) -> ActivityFact {
        ActivityFact { activity_type: "LOGIN".into(), occurred_at: at(text), attributes: Default::default() }
    }

    /// An event in Seoul running through March 2026.
    fn event(conditions: Option<serde_json::Value>) -> Event {
        let input: EventInput = serde_json::from_value(json!({
            "eventName": "streak", "startDate": "2026-03-01T00:00:00+09:00", "endDate": "2026-04-01T00:00:00+09:00",
            "timezone": "Asia/Seoul", "conditions": conditions,
        }))
        .unwrap();
        let provenance = crate::domain::event::Provenance {
            event_id: bestow_core::ids::EventId::generate(),
            created_by: "op".into(),
            now: at("2026-02-01T00:00:00Z"),
        };
        input.into_event(provenance, || unreachable!("no rewards")).unwrap()
    }

    #[tokio::test]
    async fn progress_of_a_streak_in_the_event_timezone() {
        // 23:30 on March 2nd and 00:30 on March 3rd in Seoul, then 10:00 on March 4th.
        let facts = vec![login("2026-03-02T14:30:00Z"), login("2026-03-02T15:30:00Z"), login("2026-03-04T01:00:00Z")];
        let (checker, provider) = checker(Ok(facts));
        let event = event(Some(json!({"type": "LOGIN_STREAK", "days": 5})));
        let now = at("2026-03-10T00:00:00Z");
        let eligibility =
            checker.check(&UserId::parse("player").unwrap(), &event, &ClaimTarget::default(), now).await.unwrap();
        assert_eq!(
            serde_json::to_value(&eligibility).unwrap(),
            json!({"eligible": false, "conditions": {"type": "LOGIN_STREAK", "met": false, "current": 3, "target": 5}})
        );
        let asked = provider.asked.lock().unwrap();
        assert_eq!(asked[0].0, "player");
        assert_eq!(
            asked[0].1,
            fact_query(
                event.conditions.as_ref().unwrap(),
                &EvaluationContext {
                    window_start: event.start_date,
                    window_end: event.end_date,
                    timezone: event.timezone,
                    now,
                    period: None,
                }
            )
        );
        assert_eq!((asked[0].1.from, asked[0].1.to), (Some(at("2026-02-28T15:00:00Z")), now));
    }

    #[tokio::test]
    async fn no_conditions_means_eligible_without_asking() {
        let (checker, provider) = checker(Err(FactError::Transient(FactFailure::Unreachable)));
        let eligibility = checker
            .check(&UserId::parse("player").unwrap(), &event(None), &ClaimTarget::default(), at("2026-03-10T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(eligibility, Eligibility { eligible: true, conditions: None });
        assert!(provider.asked.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn before_the_start_nothing_counts_and_nothing_is_asked() {
        let (checker, provider) = checker(Ok(vec![login("2026-02-20T00:00:00Z")]));
        let event = event(Some(json!({"type": "LOGIN_DAYS", "days": 1})));
        let eligibility = checker
            .check(&UserId::parse("player").unwrap(), &event, &ClaimTarget::default(), at("2026-02-25T00:00:00Z"))
            .await
            .unwrap();
        assert!(!eligibility.eligible);
        assert!(provider.asked.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn provider_failures_are_passed_on() {
        let (checker, _) = checker(Err(FactError::Transient(FactFailure::Unreachable)));
        let event = event(Some(json!({"type": "LOGIN_DAYS", "days": 1})));
        let error = checker
            .check(&UserId::parse("player").unwrap(), &event, &ClaimTarget::default(), at("2026-03-10T00:00:00Z"))
            .await
            .unwrap_err();
        assert!(matches!(error, FactError::Transient(FactFailure::Unreachable)), "{error:?}");
    }
}
