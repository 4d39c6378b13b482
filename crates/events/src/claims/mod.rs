//! Claims: the API's use cases around the saga (submit with idempotency, read, list, admin
//! retry and resolve, an event's dashboard figures in [`stats`]), the saga's [`driver`], its
//! [`store`] port, the [`recovery`] sweeper and the test-only [`fault`] switch.

pub mod driver;
pub mod fault;
pub mod recovery;
pub mod stats;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use bestow_core::audit::AuditActor;
use bestow_core::identity::{Permission, Principal};
use bestow_core::ids::{EventId, RequestId};
use bestow_core::page::{Page, PageRequest};
use bestow_core::store::StoreError;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::audiences::facts::GatherError;
use crate::audiences::gate::AudienceGate;
use crate::catalog::store::EventStore;
use crate::domain::event::Event;
use crate::domain::lifecycle::{EventStatus, visible_to_players};
use crate::domain::saga::{ClaimRequest, ClaimTarget, Transition};
use driver::{ClaimSaga, DriveError, Started, StartedClaim};
use stats::EventStats;
use store::{ClaimFilter, ClaimStore};

/// How a submission was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submission {
    /// A new request was recorded.
    Created,
    /// The idempotency key named an earlier request of the same player for the same event.
    Replayed,
}

/// How an admin settles a request that needs a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    /// The grants were taken back by hand; the platform returns the stock.
    RolledBack,
    /// The player keeps what was granted; the stock of the rest is returned.
    KeepGranted,
}

/// Submitting, reading and settling claims.
pub struct ClaimService {
    claims: Arc<dyn ClaimStore>,
    events: Arc<dyn EventStore>,
    saga: Arc<ClaimSaga>,
    /// How long `submit` waits for a final status before answering 202.
    fast_path_wait: Duration,
    /// Who may claim targeted events; without it every player may claim every visible event.
    gate: Option<Arc<AudienceGate>>,
}

impl std::fmt::Debug for ClaimService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimService").finish_non_exhaustive()
    }
}

/// Why a claim use case failed. The HTTP layer (`crate::http::errors`) maps each to its
/// problem details. A claim's business outcome is never one of these: it is the request's
/// `status`.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("no such event")]
    EventNotFound,
    #[error("no such claim")]
    ClaimNotFound,
    /// The event pays by tier and the claim named none.
    #[error("`tierId` is required: this event pays by tier")]
    TierRequired,
    #[error("this event has no tier with that `tierId`")]
    TierNotFound,
    /// The idempotency key named another player's or another target's request.
    #[error("this Idempotency-Key was already used for a different request")]
    KeyReused,
    /// Only parked claims can be retried or resolved.
    #[error("only claims in COMPENSATION_FAILED_MANUAL_INTERVENTION_REQUIRED can be retried or resolved")]
    NotParked,
    #[error("the claim changed meanwhile; read it again")]
    ChangedMeanwhile,
    /// The facts an audience is judged on could not be read.
    #[error(transparent)]
    Audience(#[from] GatherError),
    #[error(transparent)]
    Drive(#[from] DriveError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a claim of `tier_id` on `event` made at `now` is for: the tier (required exactly when
/// the event has tiers) and, for a recurring event, the current period.
pub fn claim_target(event: &Event, tier_id: Option<&str>, now: DateTime<Utc>) -> Result<ClaimTarget, ClaimError> {
    let tier = match tier_id {
        None if !event.tiers.is_empty() => return Err(ClaimError::TierRequired),
        None => None,
        Some(id) => Some(event.tier(id).cloned().ok_or(ClaimError::TierNotFound)?),
    };
    Ok(ClaimTarget { tier, period: event.period_at(now) })
}

impl ClaimService {
    pub fn new(
        claims: Arc<dyn ClaimStore>,
        events: Arc<dyn EventStore>,
        saga: Arc<ClaimSaga>,
        fast_path_wait: Duration,
    ) -> Self {
        Self { claims, events, saga, fast_path_wait, gate: None }
    }

    /// The service with `gate` deciding who may claim targeted events.
    pub fn with_gate(mut self, gate: Arc<AudienceGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    pub fn saga(&self) -> &Arc<ClaimSaga> {
        &self.saga
    }

    /// Records a claim of `caller` on `event_id` under `request_id` and drives it for up to the
    /// fast-path wait. A reused key answers the stored request when it was the same player's
    /// claim on the same event, and 422 (revealing nothing) otherwise.
    pub async fn submit(
        &self,
        caller: &Principal,
        event_id: &EventId,
        request_id: RequestId,
        tier_id: Option<&str>,
    ) -> Result<(ClaimRequest, Submission), ClaimError> {
        let event = self.events.event(event_id).await?;
        // The catalog's visibility rule: paused, archived and draft events do not exist for
        // players, and drafts, never published, for nobody. A claim on an event that exists
        // but is not running is recorded and ends VALIDATION_FAILED_EVENT_NOT_ACTIVE.
        let event = event
            .filter(|e| e.status != EventStatus::Draft)
            .filter(|e| caller.can(Permission::ReadAllEvents) || visible_to_players(e.status))
            .ok_or(ClaimError::EventNotFound)?;
        // A player outside a targeted event's audience meets it nowhere, not even here.
        if let Some(gate) = &self.gate
            && !gate.admits(caller, &event).await?
        {
            return Err(ClaimError::EventNotFound);
        }
        let now = self.saga.clock().now();
        let target = claim_target(&event, tier_id, now)?;
        let (id, user_id) = (bestow_core::ids::new_object_id(), caller.user_id.clone());
        let request = ClaimRequest::for_target(id, request_id, user_id, &event, &target, now);
        match self.saga.start(request, event).await? {
            Started::Replayed(stored)
                if stored.user_id.as_str() == caller.user_id.as_str()
                    && stored.event_id == *event_id
                    && stored.tier_id.as_deref() == tier_id =>
            {
                Ok((*stored, Submission::Replayed))
            }
            Started::Replayed(_) => Err(ClaimError::KeyReused),
            Started::Created(started) => Ok((self.drive_for_a_while(started).await, Submission::Created)),
        }
    }

    /// Drives a request just recorded in the background and waits for it up to the fast-path
    /// wait; it goes on after that, and recovery resumes it if this process dies.
    async fn drive_for_a_while(&self, started: Box<StartedClaim>) -> ClaimRequest {
        let saga = self.saga.clone();
        let recorded = started.request.clone();
        let driving = tokio::spawn(async move { saga.continue_started(started).await });
        match tokio::time::timeout(self.fast_path_wait, driving).await {
            Ok(Ok(Ok(latest))) => latest,
            Ok(Ok(Err(error))) => {
                tracing::warn!(%error, request_id = %recorded.request_id, "claim driving stopped; recovery will resume it");
                self.latest(&recorded).await
            }
            _ => self.latest(&recorded).await,
        }
    }

    /// Drives a request someone else may hold, and waits for it up to the fast-path wait.
    async fn drive_unleased(&self, request_id: &RequestId) -> Result<ClaimRequest, ClaimError> {
        let saga = self.saga.clone();
        let id = *request_id;
        let driving = tokio::spawn(async move { saga.drive(&id).await });
        if let Ok(Ok(Ok(Some(latest)))) = tokio::time::timeout(self.fast_path_wait, driving).await {
            return Ok(latest);
        }
        self.claims.request(request_id).await?.ok_or(ClaimError::ClaimNotFound)
    }

    async fn latest(&self, request: &ClaimRequest) -> ClaimRequest {
        match self.claims.request(&request.request_id).await {
            Ok(Some(stored)) => stored,
            _ => request.clone(),
        }
    }

    /// A request, to its owner and to those who read every claim; 404 to anyone else.
    pub async fn get(&self, caller: &Principal, request_id: &RequestId) -> Result<ClaimRequest, ClaimError> {
        let request = self.claims.request(request_id).await?.ok_or(ClaimError::ClaimNotFound)?;
        if request.user_id.as_str() != caller.user_id.as_str() && !caller.can(Permission::ReadAllClaims) {
            return Err(ClaimError::ClaimNotFound);
        }
        Ok(request)
    }

    pub async fn list(&self, filter: &ClaimFilter, page: PageRequest) -> Result<Page<ClaimRequest>, ClaimError> {
        Ok(self.claims.list_requests(filter, page).await?)
    }

    /// The dashboard figures of `event` now: its claims counted by the store, and its stock.
    pub async fn event_stats(&self, event: &Event) -> Result<EventStats, ClaimError> {
        let now = self.saga.clock().now();
        let counted = self.claims.event_claim_stats(&event.id, crate::domain::stats::series_start(now)).await?;
        Ok(EventStats::new(event, &counted, now))
    }

    /// An admin's retry of a request parked for manual intervention (409 otherwise); audited.
    pub async fn retry(&self, actor: &AuditActor, request_id: &RequestId) -> Result<ClaimRequest, ClaimError> {
        let current = self.claims.request(request_id).await?.ok_or(ClaimError::ClaimNotFound)?;
        let note = format!("retried by {}", actor.actor_username);
        let next = current.admin_retry(self.saga.clock().now(), &note).ok_or(ClaimError::NotParked)?;
        self.settle(actor, "claim.retry", &current, next.into(), json!({})).await
    }

    /// An admin's resolution of a parked request, with a note; audited.
    pub async fn resolve(
        &self,
        actor: &AuditActor,
        request_id: &RequestId,
        resolution: Resolution,
        note: &str,
    ) -> Result<ClaimRequest, ClaimError> {
        let current = self.claims.request(request_id).await?.ok_or(ClaimError::ClaimNotFound)?;
        let text = format!("resolved by {}: {note}", actor.actor_username);
        let transition = current
            .resolve_by_admin(resolution == Resolution::RolledBack, self.saga.clock().now(), &text)
            .ok_or(ClaimError::NotParked)?;
        let detail = json!({ "resolution": resolution, "note": note });
        self.settle(actor, "claim.resolve", &current, transition, detail).await
    }

    async fn settle(
        &self,
        actor: &AuditActor,
        action: &str,
        current: &ClaimRequest,
        mut transition: Transition,
        detail: serde_json::Value,
    ) -> Result<ClaimRequest, ClaimError> {
        transition.next.version = current.version + 1;
        let next = &transition.next;
        let snapshot = |r: &ClaimRequest| json!({ "status": r.status, "currentSagaStep": r.current_saga_step });
        let mut after = snapshot(next);
        if let (Some(after), Some(detail)) = (after.as_object_mut(), detail.as_object()) {
            after.extend(detail.clone());
        }
        let audit =
            actor.entry(action, ("claim", &current.request_id.to_string()), Some(snapshot(current)), Some(after));
        self.claims.commit(current, &transition, Some(&audit)).await.map_err(|error| match error {
            StoreError::Conflict(_) => ClaimError::ChangedMeanwhile,
            other => other.into(),
        })?;
        self.drive_unleased(&next.request_id).await
    }
}
