//! The event catalog's use cases: events, their rewards and lifecycle, visibility, audit;
//! its storage port ([`store`]) and the sweeper that expires events ([`expiry`]).

pub mod expiry;
pub mod store;

use std::sync::Arc;

use bestow_core::audit::{AuditActor, AuditEntry, AuditQuery};
use bestow_core::identity::{Permission, Principal};
use bestow_core::ids::EventId;
use bestow_core::page::{Page, PageRequest};
use bestow_core::store::StoreError;
use bestow_core::time::Clock;
use chrono::{DateTime, Utc};

use crate::audiences::facts::GatherError;
use crate::audiences::gate::AudienceGate;
use crate::catalog::store::{EventFilter, EventStore, TopUp};
use crate::domain::event::{
    Event, EventInput, EventPatch, PatchError, PatchRefusal, Provenance, RewardChange, RewardPatch, RewardPatchError,
    RewardRefusal, add_reward, remove_reward,
};
use crate::domain::lifecycle::{
    ActivationFacts, EventStatus, LifecycleError, check_transition, deletable, visible_to_players,
};
use crate::domain::reward::{RewardDefinition, RewardId, RewardInput};
use crate::domain::validation::FieldError;
use crate::view::event_snapshot;

/// Events, rewards and their lifecycle.
pub struct EventCatalog {
    store: Arc<dyn EventStore>,
    clock: Clock,
    /// Who sees targeted events; without it every player sees every visible event.
    gate: Option<Arc<AudienceGate>>,
}

/// Most events a player's list judges for audiences at once: the list is filtered before it
/// is paged, so every event matching the filter is read.
pub const MAX_EVENTS_JUDGED: u32 = 5_000;

impl std::fmt::Debug for EventCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventCatalog").finish_non_exhaustive()
    }
}

/// Why a catalog use case failed. The HTTP layer (`crate::http::errors`) maps each to its
/// problem details; nothing here knows a status code.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("no such event")]
    EventNotFound,
    #[error("no such reward in this event")]
    RewardNotFound,
    /// Bad field values, each at its JSON pointer.
    #[error("request validation failed")]
    Invalid(Vec<FieldError>),
    /// The client's `If-Match` names a version that is no longer the event's.
    #[error("the event changed since it was read")]
    Stale,
    /// Another write won the compare-and-set (no `If-Match` was sent).
    #[error("the event changed meanwhile; read it again")]
    ChangedMeanwhile,
    #[error(transparent)]
    NotEditable(#[from] PatchRefusal),
    #[error(transparent)]
    Transition(#[from] LifecycleError),
    #[error("only DRAFT events can be deleted; this one is {0}")]
    NotDeletable(EventStatus),
    #[error("an unlimited reward cannot be topped up")]
    StockUnlimited,
    /// A reward change the event's state does not allow.
    #[error(transparent)]
    Reward(#[from] RewardRefusal),
    /// A reward removal the event's state does not allow.
    #[error("{0}")]
    RewardsLocked(RewardRefusal),
    /// The event's `audience` names an audience that does not exist.
    #[error("`audience` names no audience with id {0}")]
    UnknownAudience(String),
    /// The facts an audience is judged on could not be read.
    #[error(transparent)]
    Audience(#[from] GatherError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RewardPatchError> for CatalogError {
    fn from(error: RewardPatchError) -> Self {
        match error {
            RewardPatchError::Refused(refusal) => Self::Reward(refusal),
            RewardPatchError::Invalid(errors) => Self::Invalid(errors),
        }
    }
}

impl From<PatchError> for CatalogError {
    fn from(error: PatchError) -> Self {
        match error {
            PatchError::Refused(refusal) => Self::NotEditable(refusal),
            PatchError::Invalid(errors) => Self::Invalid(errors),
        }
    }
}

/// A lost compare-and-set: with `If-Match` it is a stale precondition, without one a
/// concurrent edit.
fn lost_race(error: StoreError, had_if_match: bool) -> CatalogError {
    match error {
        StoreError::Conflict(_) if had_if_match => CatalogError::Stale,
        StoreError::Conflict(_) => CatalogError::ChangedMeanwhile,
        StoreError::NotFound => CatalogError::EventNotFound,
        other => other.into(),
    }
}

impl EventCatalog {
    /// The catalog on `store`, judging windows and stamping changes by `clock`.
    pub fn new(store: Arc<dyn EventStore>, clock: Clock) -> Self {
        Self { store, clock, gate: None }
    }

    /// The catalog with `gate` deciding which targeted events each player sees.
    pub fn with_gate(mut self, gate: Arc<AudienceGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// The business clock the catalog reads (the expiry sweeper's too).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Creates a DRAFT event owned by the caller.
    pub async fn create(&self, actor: &AuditActor, input: EventInput) -> Result<Event, CatalogError> {
        let provenance =
            Provenance { event_id: EventId::generate(), created_by: actor.actor_id.clone(), now: self.clock.now() };
        let event = input.into_event(provenance, RewardId::generate).map_err(CatalogError::Invalid)?;
        self.check_audiences(&event).await?;
        let audit = actor.entry("event.create", ("event", event.id.as_str()), None, Some(event_snapshot(&event)));
        self.store.insert_event(&event, &audit).await?;
        Ok(event)
    }

    /// The event, if the caller may see it (players see ACTIVE and EXPIRED events only, and
    /// targeted ones only inside their audience).
    pub async fn get(&self, caller: &Principal, id: &str) -> Result<Event, CatalogError> {
        let event = self.load(id).await?;
        if !caller.can(Permission::ReadAllEvents) && !visible_to_players(event.status) {
            return Err(CatalogError::EventNotFound);
        }
        if let Some(gate) = &self.gate
            && !gate.admits(caller, &event).await?
        {
            return Err(CatalogError::EventNotFound);
        }
        Ok(event)
    }

    /// One page of the events the caller may see.
    pub async fn list(
        &self,
        caller: &Principal,
        mut filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<Event>, CatalogError> {
        if !caller.can(Permission::ReadAllEvents) {
            let visible: Vec<EventStatus> = EventStatus::ALL.into_iter().filter(|s| visible_to_players(*s)).collect();
            filter.statuses = Some(match filter.statuses {
                Some(asked) => asked.into_iter().filter(|s| visible.contains(s)).collect(),
                None => visible,
            });
            if let Some(gate) = &self.gate {
                return self.list_admitted(gate, caller, &filter, page).await;
            }
        }
        Ok(self.store.list_events(&filter, page).await?)
    }

    /// One page of the events matching `filter` that `gate` admits `caller` to: every match is
    /// read (up to [`MAX_EVENTS_JUDGED`]) and judged before paging, so totals and pages agree.
    async fn list_admitted(
        &self,
        gate: &AudienceGate,
        caller: &Principal,
        filter: &EventFilter,
        page: PageRequest,
    ) -> Result<Page<Event>, CatalogError> {
        let mut matching = Vec::new();
        let mut read = PageRequest { page: 1, limit: bestow_core::page::MAX_LIMIT };
        loop {
            let found = self.store.list_events(filter, read).await?;
            let last = found.is_last() || matching.len() as u32 + read.limit >= MAX_EVENTS_JUDGED;
            matching.extend(found.items);
            if last {
                break;
            }
            read.page += 1;
        }
        let admitted = gate.admitted(caller, &matching).await?;
        let visible: Vec<Event> =
            matching.into_iter().zip(admitted).filter_map(|(event, admitted)| admitted.then_some(event)).collect();
        let total = visible.len() as u64;
        let items = visible.into_iter().skip(page.offset() as usize).take(page.limit as usize).collect();
        Ok(Page::new(items, page, total))
    }

    /// Applies a partial update; `if_match` is the version the client last read.
    pub async fn patch(
        &self,
        actor: &AuditActor,
        id: &str,
        patch: EventPatch,
        if_match: Option<i64>,
    ) -> Result<Event, CatalogError> {
        let current = self.load(id).await?;
        if if_match.is_some_and(|version| version != current.version) {
            return Err(CatalogError::Stale);
        }
        let next = patch.apply(&current, self.clock.now(), RewardId::generate)?;
        if next.audience != current.audience {
            self.check_audiences(&next).await?;
        }
        self.replace(actor, "event.update", &current, &next, if_match.is_some()).await?;
        Ok(next)
    }

    /// Moves the event to `status` if the lifecycle allows it.
    pub async fn set_status(&self, actor: &AuditActor, id: &str, status: EventStatus) -> Result<Event, CatalogError> {
        let current = self.load(id).await?;
        let now = self.clock.now();
        let facts = ActivationFacts {
            reward_count: current.fewest_rewards_per_claim(),
            start_date: current.start_date,
            end_date: current.end_date,
            now,
        };
        check_transition(current.status, status, &facts)?;
        let mut next = current.clone();
        next.status = status;
        next.updated_at = now;
        next.version += 1;
        self.replace(actor, "event.status", &current, &next, false).await?;
        Ok(next)
    }

    /// Deletes a DRAFT event.
    pub async fn delete(&self, actor: &AuditActor, id: &str) -> Result<(), CatalogError> {
        let current = self.load(id).await?;
        if !deletable(current.status) {
            return Err(CatalogError::NotDeletable(current.status));
        }
        let audit = actor.entry("event.delete", ("event", id), Some(event_snapshot(&current)), None);
        self.store.delete_event(&current.id, current.version, &audit).await.map_err(|e| lost_race(e, false))
    }

    /// Adds a reward (DRAFT or INACTIVE events).
    pub async fn add_reward(
        &self,
        actor: &AuditActor,
        id: &str,
        input: RewardInput,
    ) -> Result<RewardDefinition, CatalogError> {
        let current = self.load(id).await?;
        let reward = input.validate("").map_err(CatalogError::Invalid)?.into_definition(RewardId::generate());
        let next = add_reward(&current, reward.clone(), self.clock.now())?;
        self.replace(actor, "reward.create", &current, &next, false).await?;
        Ok(reward)
    }

    /// The rewards of an event the caller may see.
    pub async fn rewards(&self, caller: &Principal, id: &str) -> Result<Vec<RewardDefinition>, CatalogError> {
        Ok(self.get(caller, id).await?.rewards)
    }

    /// Tops up or redefines one reward.
    pub async fn patch_reward(
        &self,
        actor: &AuditActor,
        id: &str,
        reward_id: &str,
        patch: RewardPatch,
    ) -> Result<RewardDefinition, CatalogError> {
        let current = self.load(id).await?;
        let reward = current.reward(reward_id).ok_or(CatalogError::RewardNotFound)?.clone();
        let now = self.clock.now();
        let after = match patch.plan(&current, &reward, now)? {
            RewardChange::TopUp(add) => {
                if reward.reward().stock().is_unlimited() {
                    return Err(CatalogError::StockUnlimited);
                }
                let audit = actor.entry("reward.topup", ("event", id), None, None);
                let top_up =
                    TopUp { event_id: current.id.clone(), reward_id: reward_id.to_owned(), add, at: now, audit };
                self.store.top_up(&top_up).await.map_err(|error| match error {
                    StoreError::NotFound => CatalogError::RewardNotFound,
                    StoreError::Conflict(_) => CatalogError::StockUnlimited,
                    other => other.into(),
                })?
            }
            RewardChange::Redefine(next) => {
                self.replace(actor, "reward.update", &current, &next, false).await?;
                *next
            }
        };
        after.reward(reward_id).cloned().ok_or(CatalogError::RewardNotFound)
    }

    /// Removes a reward (DRAFT events only).
    pub async fn delete_reward(&self, actor: &AuditActor, id: &str, reward_id: &str) -> Result<(), CatalogError> {
        let current = self.load(id).await?;
        let reward = current.reward(reward_id).ok_or(CatalogError::RewardNotFound)?;
        let next =
            remove_reward(&current, reward.reward_id(), self.clock.now()).map_err(CatalogError::RewardsLocked)?;
        self.replace(actor, "reward.delete", &current, &next, false).await
    }

    /// Expires every ACTIVE or INACTIVE event past its `endDate`; returns how many.
    #[tracing::instrument(name = "expiry_sweep", skip(self))]
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Result<usize, CatalogError> {
        let actor = AuditActor::system("expiry");
        let mut expired = 0;
        for id in self.store.due_to_expire(now).await? {
            // One unreadable event must not stop the sweep for every other one.
            let event = match self.store.event(&id).await {
                Ok(Some(event)) => event,
                Ok(None) => continue,
                Err(error) => {
                    tracing::error!(event_id = %id, %error, "cannot read an event due to expire; skipped");
                    continue;
                }
            };
            let Some(next) = event.expired(now) else { continue };
            let audit = actor.entry(
                "event.expire",
                ("event", id.as_str()),
                Some(event_snapshot(&event)),
                Some(event_snapshot(&next)),
            );
            match self.store.replace_event(&next, event.version, &audit).await {
                Ok(()) => expired += 1,
                // Changed meanwhile (paused, archived, edited): the next sweep judges it again.
                Err(StoreError::Conflict(_) | StoreError::NotFound) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Ok(expired)
    }

    pub async fn audit_log(&self, query: &AuditQuery, page: PageRequest) -> Result<Page<AuditEntry>, CatalogError> {
        Ok(self.store.list_audit(query, page).await?)
    }

    /// Refuses a target naming an audience that does not exist: nobody would ever be in it.
    async fn check_audiences(&self, event: &Event) -> Result<(), CatalogError> {
        let (Some(gate), Some(target)) = (&self.gate, &event.audience) else { return Ok(()) };
        let missing = gate.missing(&target.audience_ids()).await?;
        match missing.first() {
            None => Ok(()),
            Some(id) => Err(CatalogError::UnknownAudience(id.to_string())),
        }
    }

    /// The event `id` names; text that is no event id names none.
    async fn load(&self, id: &str) -> Result<Event, CatalogError> {
        let Ok(id) = EventId::parse(id) else { return Err(CatalogError::EventNotFound) };
        self.store.event(&id).await?.ok_or(CatalogError::EventNotFound)
    }

    async fn replace(
        &self,
        actor: &AuditActor,
        action: &str,
        current: &Event,
        next: &Event,
        had_if_match: bool,
    ) -> Result<(), CatalogError> {
        let audit =
            actor.entry(action, ("event", next.id.as_str()), Some(event_snapshot(current)), Some(event_snapshot(next)));
        self.store.replace_event(next, current.version, &audit).await.map_err(|e| lost_race(e, had_if_match))
    }
}
