//! The event catalog's use cases: events, their rewards and lifecycle, visibility, audit;
//! its storage port ([`store`]) and the sweeper that expires events ([`expiry`]).

pub mod expiry;
pub mod store;

use std::sync::Arc;

use bestow_core::ApiError;
use bestow_core::audit::{AuditActor, AuditBuilder, AuditEntry, AuditQuery};
use bestow_core::identity::{Permission, Principal};
use bestow_core::page::{Page, PageRequest};
use bestow_core::store::StoreError;
use chrono::{DateTime, Utc};

use crate::catalog::store::{EventFilter, EventStore};
use crate::domain::event::{
    Event, EventInput, EventPatch, PatchError, Provenance, RewardChange, RewardPatch, RewardPatchError, RewardRefusal,
    add_reward, remove_reward,
};
use crate::domain::lifecycle::{ActivationFacts, EventStatus, check_transition, deletable, visible_to_players};
use crate::domain::reward::{RewardDefinition, RewardId, RewardInput};
use crate::domain::validation::FieldError;
use crate::view::event_snapshot;

/// Events, rewards and their lifecycle.
pub struct EventCatalog {
    store: Arc<dyn EventStore>,
}

impl std::fmt::Debug for EventCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventCatalog").finish_non_exhaustive()
    }
}

/// Converts domain field errors into the HTTP layer's field violations.
pub fn invalid(errors: Vec<FieldError>) -> ApiError {
    ApiError::Validation(
        errors.into_iter().map(|e| bestow_core::FieldViolation::new(e.pointer, e.code, e.message)).collect(),
    )
}

fn event_not_found() -> ApiError {
    ApiError::not_found("EVENT_NOT_FOUND", "no such event")
}

fn reward_not_found() -> ApiError {
    ApiError::not_found("REWARD_NOT_FOUND", "no such reward in this event")
}

fn new_reward_id() -> RewardId {
    RewardId::generated(bestow_core::ids::new_object_id())
}

/// Maps a lost compare-and-set: with `If-Match` it is a stale precondition (412), without one
/// it is a concurrent edit (409).
fn lost_race(error: StoreError, had_if_match: bool) -> ApiError {
    match error {
        StoreError::Conflict(_) if had_if_match => ApiError::PreconditionFailed,
        StoreError::Conflict(_) => {
            ApiError::conflict("CONCURRENT_UPDATE", "the event changed meanwhile; read it again")
        }
        StoreError::NotFound => event_not_found(),
        other => other.into(),
    }
}

impl EventCatalog {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Creates a DRAFT event owned by the caller.
    pub async fn create(&self, actor: &AuditActor, input: EventInput) -> Result<Event, ApiError> {
        let provenance = Provenance {
            event_id: bestow_core::ids::new_object_id(),
            created_by: actor.actor_id.clone(),
            now: bestow_core::time::now(),
        };
        let event = input.into_event(provenance, new_reward_id).map_err(invalid)?;
        let audit = actor.entry("event.create", ("event", &event.id), None, Some(event_snapshot(&event)));
        self.store.insert_event(&event, &audit).await?;
        Ok(event)
    }

    /// The event, if the caller may see it (players see ACTIVE and EXPIRED events only).
    pub async fn get(&self, caller: &Principal, id: &str) -> Result<Event, ApiError> {
        let event = self.load(id).await?;
        if !caller.can(Permission::ReadAllEvents) && !visible_to_players(event.status) {
            return Err(event_not_found());
        }
        Ok(event)
    }

    /// One page of the events the caller may see.
    pub async fn list(
        &self,
        caller: &Principal,
        mut filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<Event>, ApiError> {
        if !caller.can(Permission::ReadAllEvents) {
            let visible: Vec<EventStatus> = EventStatus::ALL.into_iter().filter(|s| visible_to_players(*s)).collect();
            filter.statuses = Some(match filter.statuses {
                Some(asked) => asked.into_iter().filter(|s| visible.contains(s)).collect(),
                None => visible,
            });
        }
        let (events, total) = self.store.list_events(&filter, page).await?;
        Ok(Page::new(events, page, total))
    }

    /// Applies a partial update; `if_match` is the version the client last read.
    pub async fn patch(
        &self,
        actor: &AuditActor,
        id: &str,
        patch: EventPatch,
        if_match: Option<i64>,
    ) -> Result<Event, ApiError> {
        let current = self.load(id).await?;
        if if_match.is_some_and(|version| version != current.version) {
            return Err(ApiError::PreconditionFailed);
        }
        let next = patch.apply(&current, bestow_core::time::now(), new_reward_id).map_err(|error| match error {
            PatchError::Refused(refusal) => ApiError::conflict("EVENT_NOT_EDITABLE", refusal.to_string()),
            PatchError::Invalid(errors) => invalid(errors),
        })?;
        self.replace(actor, "event.update", &current, &next, if_match.is_some()).await?;
        Ok(next)
    }

    /// Moves the event to `status` if the lifecycle allows it.
    pub async fn set_status(&self, actor: &AuditActor, id: &str, status: EventStatus) -> Result<Event, ApiError> {
        let current = self.load(id).await?;
        let now = bestow_core::time::now();
        let facts = ActivationFacts {
            reward_count: current.fewest_rewards_per_claim(),
            start_date: current.start_date,
            end_date: current.end_date,
            now,
        };
        check_transition(current.status, status, &facts)
            .map_err(|refusal| ApiError::conflict(refusal.code(), refusal.to_string()))?;
        let mut next = current.clone();
        next.status = status;
        next.updated_at = now;
        next.version += 1;
        self.replace(actor, "event.status", &current, &next, false).await?;
        Ok(next)
    }

    /// Deletes a DRAFT event.
    pub async fn delete(&self, actor: &AuditActor, id: &str) -> Result<(), ApiError> {
        let current = self.load(id).await?;
        if !deletable(current.status) {
            let detail = format!("only DRAFT events can be deleted; this one is {}", current.status);
            return Err(ApiError::conflict("EVENT_NOT_DELETABLE", detail));
        }
        let audit = actor.entry("event.delete", ("event", id), Some(event_snapshot(&current)), None);
        self.store.delete_event(id, current.version, &audit).await.map_err(|e| lost_race(e, false))
    }

    /// Adds a reward (DRAFT or INACTIVE events).
    pub async fn add_reward(
        &self,
        actor: &AuditActor,
        id: &str,
        input: RewardInput,
    ) -> Result<RewardDefinition, ApiError> {
        let current = self.load(id).await?;
        let reward = input.validate("").map_err(invalid)?.into_definition(new_reward_id());
        let next = add_reward(&current, reward.clone(), bestow_core::time::now()).map_err(reward_refusal)?;
        self.replace(actor, "reward.create", &current, &next, false).await?;
        Ok(reward)
    }

    /// The rewards of an event the caller may see.
    pub async fn rewards(&self, caller: &Principal, id: &str) -> Result<Vec<RewardDefinition>, ApiError> {
        Ok(self.get(caller, id).await?.rewards)
    }

    /// Tops up or redefines one reward.
    pub async fn patch_reward(
        &self,
        actor: &AuditActor,
        id: &str,
        reward_id: &str,
        patch: RewardPatch,
    ) -> Result<RewardDefinition, ApiError> {
        let current = self.load(id).await?;
        let reward = current.reward(reward_id).ok_or_else(reward_not_found)?.clone();
        let now = bestow_core::time::now();
        let after = match patch.plan(&current, &reward, now).map_err(reward_refusal)? {
            RewardChange::TopUp(add) => {
                if reward.reward().stock().is_unlimited() {
                    return Err(ApiError::conflict("STOCK_UNLIMITED", "an unlimited reward cannot be topped up"));
                }
                let actor = actor.clone();
                let audit: AuditBuilder<Event> = Arc::new(move |before, after| {
                    actor.entry(
                        "reward.topup",
                        ("event", &after.id),
                        Some(event_snapshot(before)),
                        Some(event_snapshot(after)),
                    )
                });
                self.store.top_up(id, reward_id, add, now, audit).await.map_err(|error| match error {
                    StoreError::NotFound => reward_not_found(),
                    StoreError::Conflict(_) => {
                        ApiError::conflict("STOCK_UNLIMITED", "an unlimited reward cannot be topped up")
                    }
                    other => other.into(),
                })?
            }
            RewardChange::Redefine(next) => {
                self.replace(actor, "reward.update", &current, &next, false).await?;
                *next
            }
        };
        after.reward(reward_id).cloned().ok_or_else(reward_not_found)
    }

    /// Removes a reward (DRAFT events only).
    pub async fn delete_reward(&self, actor: &AuditActor, id: &str, reward_id: &str) -> Result<(), ApiError> {
        let current = self.load(id).await?;
        let reward = current.reward(reward_id).ok_or_else(reward_not_found)?;
        let next = remove_reward(&current, reward.reward_id(), bestow_core::time::now())
            .map_err(|refusal| ApiError::conflict("REWARDS_LOCKED", refusal.to_string()))?;
        self.replace(actor, "reward.delete", &current, &next, false).await
    }

    /// Expires every ACTIVE or INACTIVE event past its `endDate`; returns how many.
    #[tracing::instrument(name = "expiry_sweep", skip(self))]
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Result<usize, ApiError> {
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
            let audit =
                actor.entry("event.expire", ("event", &id), Some(event_snapshot(&event)), Some(event_snapshot(&next)));
            match self.store.replace_event(&next, event.version, &audit).await {
                Ok(()) => expired += 1,
                // Changed meanwhile (paused, archived, edited): the next sweep judges it again.
                Err(StoreError::Conflict(_) | StoreError::NotFound) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Ok(expired)
    }

    pub async fn audit_log(&self, query: &AuditQuery, page: PageRequest) -> Result<Page<AuditEntry>, ApiError> {
        let (entries, total) = self.store.list_audit(query, page).await?;
        Ok(Page::new(entries, page, total))
    }

    async fn load(&self, id: &str) -> Result<Event, ApiError> {
        self.store.event(id).await?.ok_or_else(event_not_found)
    }

    async fn replace(
        &self,
        actor: &AuditActor,
        action: &str,
        current: &Event,
        next: &Event,
        had_if_match: bool,
    ) -> Result<(), ApiError> {
        let audit = actor.entry(action, ("event", &next.id), Some(event_snapshot(current)), Some(event_snapshot(next)));
        self.store.replace_event(next, current.version, &audit).await.map_err(|e| lost_race(e, had_if_match))
    }
}

fn reward_refusal(error: RewardPatchError) -> ApiError {
    match error {
        RewardPatchError::Refused(RewardRefusal::Full) => {
            ApiError::conflict("TOO_MANY_REWARDS", RewardRefusal::Full.to_string())
        }
        RewardPatchError::Refused(RewardRefusal::StockCeiling) => {
            ApiError::conflict("STOCK_CEILING", RewardRefusal::StockCeiling.to_string())
        }
        RewardPatchError::Refused(refusal) => ApiError::conflict("REWARD_NOT_EDITABLE", refusal.to_string()),
        RewardPatchError::Invalid(errors) => invalid(errors),
    }
}
