//! Which events a player may see: the audience gate of every player path (event lists, one
//! event, its rewards and eligibility, the event screen, claims). A player outside an event's
//! target meets it nowhere: it answers 404 like an unknown event.
//!
//! Untargeted events pass without any read. For targeted ones the gate reads, in one go, the
//! audiences named (and those they name), the player's sticky memberships and what the rules
//! look at; it records a sticky membership the first time a player inside a sticky event
//! meets it.

use std::collections::HashMap;
use std::sync::Arc;

use bestow_core::identity::{Permission, Principal};
use bestow_core::ids::{AudienceId, EventId};
use bestow_core::time::Clock;

use super::facts::{FactGatherer, GatherError};
use crate::domain::audience::membership::{admits, fact_needs};
use crate::domain::event::Event;

/// Decides which events a player may see.
pub struct AudienceGate {
    facts: Arc<FactGatherer>,
    clock: Clock,
}

impl std::fmt::Debug for AudienceGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudienceGate").finish_non_exhaustive()
    }
}

impl AudienceGate {
    pub fn new(facts: Arc<FactGatherer>, clock: Clock) -> Self {
        Self { facts, clock }
    }

    /// Whether `caller` may see each of `events`, in order. Staff see every event; a player
    /// sees an untargeted event, and a targeted one whose audience admits them now or held
    /// them when they first met it (sticky).
    pub async fn admitted(&self, caller: &Principal, events: &[Event]) -> Result<Vec<bool>, GatherError> {
        if caller.can(Permission::ReadAllEvents) || events.iter().all(|event| event.audience.is_none()) {
            return Ok(vec![true; events.len()]);
        }
        let user_id = &caller.user_id;
        let sticky: Vec<EventId> = events
            .iter()
            .filter(|event| event.audience.as_ref().is_some_and(|target| target.sticky))
            .map(|event| event.id.clone())
            .collect();
        let stuck =
            if sticky.is_empty() { Vec::new() } else { self.facts.store().sticky_events(user_id, &sticky).await? };
        let judged: Vec<&Event> =
            events.iter().filter(|event| event.audience.is_some() && !stuck.contains(&event.id)).collect();
        let named: Vec<AudienceId> = judged
            .iter()
            .filter_map(|event| event.audience.as_ref())
            .flat_map(|target| target.audience_ids())
            .collect();
        let audiences = self.facts.audiences_named(&named).await?;
        let now = self.clock.now();
        let needs = fact_needs(&named, &audiences, now);
        let gathered = self.facts.gather(user_id, &needs, None).await?;
        let facts = gathered.facts(user_id, &audiences, now);
        let mut verdicts: HashMap<&EventId, bool> = HashMap::new();
        for event in judged {
            let inside = event.audience.as_ref().is_none_or(|target| admits(target, &facts));
            if inside && event.audience.as_ref().is_some_and(|target| target.sticky) {
                self.facts.store().stick(user_id, &event.id, now).await?;
            }
            verdicts.insert(&event.id, inside);
        }
        Ok(events.iter().map(|event| verdicts.get(&event.id).copied().unwrap_or(true)).collect())
    }

    /// The audiences among `ids` that do not exist.
    pub async fn missing(&self, ids: &[AudienceId]) -> Result<Vec<AudienceId>, GatherError> {
        let found = self.facts.store().audiences(ids).await?;
        Ok(ids.iter().filter(|id| !found.iter().any(|audience| &audience.id == *id)).cloned().collect())
    }

    /// Whether `caller` may see `event`.
    pub async fn admits(&self, caller: &Principal, event: &Event) -> Result<bool, GatherError> {
        Ok(self.admitted(caller, std::slice::from_ref(event)).await?.first().copied().unwrap_or(false))
    }
}
