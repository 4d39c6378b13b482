//! The saga driver: executes what the pure state machine asks for and persists each step.
//!
//! A driver run leases the request, then loops: [`next_step`] says what to do, the driver does
//! the I/O (directory, conditions, stock, granter), builds the next document with the pure
//! `after_*` methods and commits it with a compare-and-set. It stops at a final status, when a
//! transient failure reschedules the request, or when it loses the lease; the recovery
//! sweeper picks up whatever is left.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bestow_core::accounts::StandingUnavailable;
use bestow_core::ids::{RequestId, UserId};
use bestow_core::store::{Conflict, StoreError};
use bestow_core::time::Clock;
use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;

use super::fault::FaultSwitch;
use super::store::{ClaimStore, Inserted, StockChange};
use crate::catalog::store::EventStore;
use crate::conditions::activities::FactError;
use crate::conditions::eligibility::EligibilityChecker;
use crate::directory::{UserDirectory, UserState};
use crate::domain::event::Event;
use crate::domain::lifecycle::accepts_claims;
use crate::domain::saga::{
    CallOutcome, ClaimRequest, ClaimStatus, ClaimTarget, Lease, NextStep, RetryPolicy, Transition, Validation,
    next_step,
};
use crate::grants::{Grant, RewardGranter, call_outcome};

/// Tunables of the saga.
#[derive(Debug, Clone)]
pub struct SagaSettings {
    /// How long a worker owns a request between commits.
    pub lease: Duration,
    pub condition_retry: RetryPolicy,
    pub grant_retry: RetryPolicy,
    pub compensation_retry: RetryPolicy,
}

/// Everything the driver talks to.
pub struct ClaimSaga {
    pub(crate) claims: Arc<dyn ClaimStore>,
    events: Arc<dyn EventStore>,
    directory: Arc<dyn UserDirectory>,
    conditions: Arc<EligibilityChecker>,
    granter: Arc<dyn RewardGranter>,
    settings: SagaSettings,
    worker: String,
    faults: FaultSwitch,
    /// Business time: validation against the event's window, the claim's period, leases and
    /// retry times (recovery reads the same clock, so they compare alike).
    clock: Clock,
}

impl std::fmt::Debug for ClaimSaga {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimSaga").field("worker", &self.worker).finish_non_exhaustive()
    }
}

/// Outcome of [`ClaimSaga::start`].
#[derive(Debug)]
pub enum Started {
    /// Recorded; continue it with [`ClaimSaga::continue_started`].
    Created(Box<StartedClaim>),
    /// The request id existed: the stored request, untouched.
    Replayed(Box<ClaimRequest>),
}

/// A request just recorded by [`ClaimSaga::start`], with what its run has learnt so far.
#[derive(Debug)]
pub struct StartedClaim {
    pub request: ClaimRequest,
    context: RunContext,
}

/// Why a driver run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The user directory could not say whether the player is active.
    #[error("user directory: {0}")]
    Directory(#[from] StandingUnavailable),
    /// The machine named a reward the request does not have.
    #[error("the request has no reward {0}")]
    NoSuchReward(usize),
}

impl ClaimSaga {
    /// The saga over its stores and collaborators, stamping and judging by `clock`.
    #[allow(
        clippy::too_many_arguments,
        reason = "each is a separate choice of the wiring; a struct of them would only rename the list"
    )]
    pub fn new(
        claims: Arc<dyn ClaimStore>,
        events: Arc<dyn EventStore>,
        directory: Arc<dyn UserDirectory>,
        conditions: Arc<EligibilityChecker>,
        granter: Arc<dyn RewardGranter>,
        settings: SagaSettings,
        faults: FaultSwitch,
        clock: Clock,
    ) -> Self {
        let worker = format!("worker-{}", bestow_core::ids::new_object_id());
        Self { claims, events, directory, conditions, granter, settings, worker, faults, clock }
    }

    /// The clock the saga stamps and judges by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// How long a worker owns a request between commits.
    pub fn lease(&self) -> Duration {
        self.settings.lease
    }

    /// The lease this worker would take now.
    fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + TimeDelta::from_std(self.settings.lease).unwrap_or(TimeDelta::seconds(30))
    }

    /// Drives request `request_id` as far as it can go now and returns its latest state
    /// (`None` if it does not exist).
    pub async fn drive(&self, request_id: &RequestId) -> Result<Option<ClaimRequest>, DriveError> {
        let now = self.clock.now();
        let lease = Lease { owner: &self.worker, from: now, until: self.lease_until(now) };
        let Some(leased) = self.claims.acquire_lease(request_id, lease).await? else {
            return Ok(self.claims.request(request_id).await?);
        };
        self.run(leased, RunContext::default()).await.map(Some)
    }

    /// Records a brand-new request and drives it as far as it can go now.
    ///
    /// The first steps that touch nothing outside the platform (validation; the condition check
    /// when the event has no conditions; the stock reservation) run before the insert, which
    /// commits their outcome, the claim slot and the reservation in one transaction. A crash
    /// before that commit leaves nothing behind: the client, who got no answer, retries with
    /// its key. A replayed key returns the stored request untouched.
    #[tracing::instrument(name = "claim", skip_all, fields(request_id = %request.request_id))]
    pub async fn start(&self, request: ClaimRequest, event: Event) -> Result<Started, DriveError> {
        let mut context = RunContext { fresh_event: Some(event), user_checked_at: None };
        let mut first = request;
        first.lease_owner = Some(self.worker.clone());
        first.lease_expires_at = Some(self.lease_until(self.clock.now()));
        let started = Instant::now();
        // A store that cannot reserve with the insert gets the reservation in the next commit.
        let reserves_with_insert = self.claims.reserves_with_insert();
        let may_fold = |request: &ClaimRequest, step: NextStep| match step {
            NextStep::Allocate if !reserves_with_insert && holds_limited_stock(request) => false,
            _ => folds_before_insert(request, step),
        };
        let PlannedCommit { next, stock, labels, before_allocation } =
            self.plan(NextStep::Validate, &first, &mut context, &may_fold).await?;
        let mut next = self.stamp(next, &first);
        next.version = first.version;
        labels.iter().for_each(|label| self.faults.checkpoint(label, "before"));
        let inserted = match self.claims.insert_request(&next, &stock).await {
            Err(StoreError::Conflict(conflict)) => {
                let refused = refusal_of(conflict, &first, before_allocation.as_ref(), self.clock.now())
                    .ok_or(StoreError::Conflict(conflict))?;
                next = self.stamp(refused, &first);
                next.version = first.version;
                self.claims.insert_request(&next, &[]).await?
            }
            other => other?,
        };
        if let Inserted::Existing(stored) = inserted {
            return Ok(Started::Replayed(stored));
        }
        labels.iter().for_each(|label| self.faults.checkpoint(label, "after"));
        self.record(labels[0], started, &next);
        Ok(Started::Created(Box::new(StartedClaim { request: next, context })))
    }

    /// Drives a request [`Self::start`] just recorded (still leased to this worker) as far as
    /// it can go now.
    pub async fn continue_started(&self, started: Box<StartedClaim>) -> Result<ClaimRequest, DriveError> {
        if started.request.lease_owner.is_none() {
            return Ok(started.request);
        }
        let StartedClaim { request, context } = *started;
        self.run(request, context).await
    }

    fn record(&self, label: &'static str, started: Instant, next: &ClaimRequest) {
        metrics::histogram!("saga_step_seconds", "step" => label).record(started.elapsed().as_secs_f64());
        tracing::debug!(step = label, status = next.status.as_str(), "saga step committed");
        if next.next_attempt_at.is_some() {
            metrics::counter!("saga_retries_total", "step" => label).increment(1);
        }
        if next.status.is_final() {
            metrics::counter!("claims_final_total", "status" => next.status.as_str()).increment(1);
        }
    }

    #[tracing::instrument(name = "claim", skip_all, fields(request_id = %current.request_id))]
    async fn run(&self, mut current: ClaimRequest, mut context: RunContext) -> Result<ClaimRequest, DriveError> {
        loop {
            let step = next_step(&current);
            if step == NextStep::Done {
                return Ok(current);
            }
            let started = Instant::now();
            let PlannedCommit { next, stock, labels, before_allocation } =
                self.plan(step, &current, &mut context, &folds_into_commit).await?;
            let mut transition = Transition { next: self.stamp(next, &current), stock };
            labels.iter().for_each(|label| self.faults.checkpoint(label, "before"));
            match self.claims.commit(&current, &transition, None).await {
                Ok(()) => {}
                Err(StoreError::Conflict(Conflict::Version)) => {
                    // Another worker took over (our lease expired): it owns the request now.
                    tracing::info!(request_id = %current.request_id, "lost the lease; leaving the request to its new owner");
                    return Ok(self.claims.request(&current.request_id).await?.unwrap_or(current));
                }
                Err(StoreError::Conflict(conflict)) => {
                    let refused = refusal_of(conflict, &current, before_allocation.as_ref(), self.clock.now())
                        .ok_or(StoreError::Conflict(conflict))?;
                    transition = Transition::from(self.stamp(refused, &current));
                    self.claims.commit(&current, &transition, None).await?;
                }
                Err(error @ StoreError::Unavailable(_)) => {
                    // The store gave up (its own bounded retries of conflicts included): hand
                    // the request back for a prompt retry instead of holding it until the
                    // lease runs out.
                    self.postpone(&current).await;
                    return Err(error.into());
                }
                Err(error) => return Err(error.into()),
            }
            labels.iter().for_each(|label| self.faults.checkpoint(label, "after"));
            self.record(labels[0], started, &transition.next);
            let parked = transition.next.lease_owner.is_none();
            current = transition.next;
            if parked {
                return Ok(current);
            }
        }
    }

    /// Performs `step` and, while `may_fold` allows, the steps after it that can share its
    /// commit (they write nothing outside this request): fewer transactions, the same trail,
    /// and still one atomic step for recovery. Grants and revokes always commit first.
    async fn plan(
        &self,
        step: NextStep,
        current: &ClaimRequest,
        context: &mut RunContext,
        may_fold: &(dyn Fn(&ClaimRequest, NextStep) -> bool + Sync),
    ) -> Result<PlannedCommit, DriveError> {
        let Transition { mut next, mut stock } = self.perform(step, current, context).await?;
        let mut labels = vec![checkpoint_name(step)];
        let mut before_allocation = None;
        while !next.status.is_final() && next.next_attempt_at.is_none() {
            let step = next_step(&next);
            if !may_fold(&next, step) {
                break;
            }
            if step == NextStep::Allocate {
                before_allocation = Some(next.clone());
            }
            let Transition { next: folded, stock: more_stock } = self.perform(step, &next, context).await?;
            next = folded;
            stock.extend(more_stock);
            labels.push(checkpoint_name(step));
        }
        Ok(PlannedCommit { next, stock, labels, before_allocation })
    }

    /// Releases the lease of `current` with its next attempt due shortly (jittered, so that
    /// claims that collided do not collide again). If even that commit fails, the lease's
    /// expiry hands the request to recovery.
    async fn postpone(&self, current: &ClaimRequest) {
        let delay = TimeDelta::milliseconds(rand::rng().random_range(POSTPONE_MS));
        let postponed = self.stamp(current.postponed(self.clock.now() + delay), current);
        if let Err(error) = self.claims.commit(current, &postponed.into(), None).await {
            tracing::warn!(%error, request_id = %current.request_id, "could not hand a claim back; recovery resumes it when its lease ends");
        }
    }

    /// Bumps the version and carries the lease: renewed while the saga goes on, released when
    /// the request is final or waits for a retry.
    fn stamp(&self, mut next: ClaimRequest, current: &ClaimRequest) -> ClaimRequest {
        next.version = current.version + 1;
        if next.status.is_final() || next.next_attempt_at.is_some() {
            next.lease_owner = None;
            next.lease_expires_at = None;
        } else {
            next.lease_owner = Some(self.worker.clone());
            next.lease_expires_at = Some(self.lease_until(self.clock.now()));
        }
        next
    }

    /// Does the I/O of `step` and returns the next document with the stock changes that must
    /// commit with it.
    #[tracing::instrument(name = "saga_step", skip_all, fields(request_id = %current.request_id, step = checkpoint_name(step)))]
    async fn perform(
        &self,
        step: NextStep,
        current: &ClaimRequest,
        context: &mut RunContext,
    ) -> Result<Transition, DriveError> {
        let now = self.clock.now();
        let jitter: f64 = rand::rng().random();
        let next = match step {
            NextStep::Validate => current.after_validation(self.validate(current, now, context).await?, now),
            NextStep::CheckConditions => {
                let event = current.snapshot_event();
                // The claim is judged in the period it was made in, even when checked later.
                let target = ClaimTarget { tier: event.tiers.first().cloned(), period: current.period() };
                let outcome = match self.conditions.check(&current.user_id, &event, &target, now).await {
                    Ok(eligibility) => Ok(eligibility.eligible),
                    Err(FactError::Transient(reason)) => Err(CallOutcome::Transient(reason.to_string())),
                    Err(FactError::Permanent(reason)) => Err(CallOutcome::Permanent(reason.to_string())),
                };
                current.after_condition_check(outcome, &self.settings.condition_retry, now, jitter)
            }
            NextStep::Allocate => return Ok(current.allocate(&bestow_core::ids::new_object_id(), now)),
            NextStep::StartGranting => current.start_granting(now),
            NextStep::Grant(index) => match self.user_state_for_grant(&current.user_id, context).await {
                Ok(UserState::Active) => {
                    let outcome = call_outcome(self.granter.grant(&grant_of(current, index)?).await);
                    current.after_grant(index, outcome, &self.settings.grant_retry, now, jitter)
                }
                Ok(UserState::Inactive | UserState::Unknown) => current.after_user_deactivated(now),
                Err(unavailable) => {
                    let outcome = CallOutcome::Transient(unavailable.to_string());
                    current.after_grant(index, outcome, &self.settings.grant_retry, now, jitter)
                }
            },
            NextStep::ConcludeGrants => current.conclude_grants(now),
            NextStep::StartCompensation => return Ok(current.begin_compensation(now)),
            NextStep::Revoke(index) => {
                let outcome = call_outcome(self.granter.revoke(&grant_of(current, index)?).await);
                current.after_revoke(index, outcome, &self.settings.compensation_retry, now, jitter)
            }
            NextStep::RewardsCompensated => current.rewards_compensated(now),
            NextStep::StartInventoryCompensation => current.start_inventory_compensation(now),
            NextStep::ReturnStock => return Ok(current.return_held_stock(now)),
            NextStep::RollBack => current.roll_back(now),
            NextStep::Done => current.clone(),
        };
        Ok(next.into())
    }

    async fn validate(
        &self,
        current: &ClaimRequest,
        now: DateTime<Utc>,
        context: &mut RunContext,
    ) -> Result<Validation, DriveError> {
        match self.directory.user_state(&current.user_id).await {
            Ok(UserState::Active) => context.user_checked_at = Some(Instant::now()),
            Ok(UserState::Inactive | UserState::Unknown) => return Ok(Validation::UserInactive),
            Err(unavailable) => return Err(unavailable.into()),
        }
        // The live event, not the snapshot: a deactivation before validation must count.
        let event = match context.fresh_event.take() {
            Some(event) => Some(event),
            None => self.events.event(&current.event_id).await?,
        };
        let active = event.is_some_and(|e| accepts_claims(e.status, e.start_date, e.end_date, now));
        Ok(if active { Validation::Passed } else { Validation::EventNotActive })
    }

    /// The player's state before a grant. A check made moments ago in this same run stands: a
    /// deactivation inside that window cannot be told apart from one just after the grant.
    /// After a retry or a crash the run is new and the directory is asked again.
    async fn user_state_for_grant(
        &self,
        user_id: &UserId,
        context: &mut RunContext,
    ) -> Result<UserState, StandingUnavailable> {
        if context.user_checked_at.is_some_and(|at| at.elapsed() < RECENT_USER_CHECK) {
            return Ok(UserState::Active);
        }
        let state = self.directory.user_state(user_id).await?;
        if state == UserState::Active {
            context.user_checked_at = Some(Instant::now());
        }
        Ok(state)
    }
}

/// How soon a request whose commit the store could not take is attempted again, in ms.
const POSTPONE_MS: std::ops::RangeInclusive<i64> = 50..=250;

/// How long a player's "active" answer from the directory stands within one driver run.
const RECENT_USER_CHECK: Duration = Duration::from_secs(1);

/// What one driver run remembers between its steps.
#[derive(Debug, Default)]
struct RunContext {
    /// The live event, read moments ago by the caller that started the run.
    fresh_event: Option<Event>,
    /// When the directory last said the player is active, in this run.
    user_checked_at: Option<Instant>,
}

/// The work of one commit.
struct PlannedCommit {
    /// The document after every planned step.
    next: ClaimRequest,
    /// Stock changes committed with it.
    stock: Vec<StockChange>,
    /// The crash checkpoints the commit covers, first step first.
    labels: Vec<&'static str>,
    /// The document just before a planned reservation, for when the reservation is refused.
    before_allocation: Option<ClaimRequest>,
}

/// The document to commit instead when the store refuses a planned commit for a business
/// reason: the claim slot is held by another request, or the stock ran out (at `now`).
fn refusal_of(
    conflict: Conflict,
    current: &ClaimRequest,
    before_allocation: Option<&ClaimRequest>,
    now: DateTime<Utc>,
) -> Option<ClaimRequest> {
    match conflict {
        Conflict::ClaimSlot => Some(current.after_validation(Validation::AlreadyClaimed, now)),
        Conflict::Stock => Some(before_allocation.unwrap_or(current).after_failed_allocation(
            ClaimStatus::InventoryAllocationFailedOutOfStock,
            "not enough stock left for this claim".to_owned(),
            now,
        )),
        _ => None,
    }
}

/// Whether `step` may share the commit of the step before it: it calls no granter, so a
/// crash before the shared commit simply repeats it.
fn folds_into_commit(_: &ClaimRequest, step: NextStep) -> bool {
    matches!(
        step,
        NextStep::CheckConditions
            | NextStep::Allocate
            | NextStep::StartGranting
            | NextStep::ConcludeGrants
            | NextStep::RewardsCompensated
            | NextStep::StartInventoryCompensation
            | NextStep::RollBack
    )
}

/// Whether `step` may run before a new request's first insert: nothing that can keep the
/// client waiting, so a condition check only when there is nothing to check.
fn folds_before_insert(request: &ClaimRequest, step: NextStep) -> bool {
    match step {
        NextStep::CheckConditions => !request.has_conditions(),
        NextStep::Allocate | NextStep::StartGranting => true,
        _ => false,
    }
}

/// The grant of reward `index` of `request`; an index the request does not have is a corrupt
/// document, not a reason to grant another reward.
fn grant_of(request: &ClaimRequest, index: usize) -> Result<Grant, DriveError> {
    let reward = request.rewards_to_process.get(index).ok_or(DriveError::NoSuchReward(index))?;
    Ok(Grant {
        key: reward.grant_key(&request.request_id),
        request_id: request.request_id,
        user_id: request.user_id.clone(),
        event_id: request.event_id.clone(),
        reward: reward.reward_definition.clone(),
    })
}

/// Whether a request has a reward of limited stock to reserve.
fn holds_limited_stock(request: &ClaimRequest) -> bool {
    request.rewards_to_process.iter().any(|r| r.reservation().is_some())
}

/// Names of the crash checkpoints, one per step.
pub fn checkpoint_name(step: NextStep) -> &'static str {
    match step {
        NextStep::Validate => "VALIDATE",
        NextStep::CheckConditions => "CHECK_CONDITIONS",
        NextStep::Allocate => "ALLOCATE_INVENTORY",
        NextStep::StartGranting => "START_GRANTING",
        NextStep::Grant(_) => "GRANT_REWARD",
        NextStep::ConcludeGrants => "CONCLUDE_GRANTS",
        NextStep::StartCompensation => "START_COMPENSATION",
        NextStep::Revoke(_) => "REVOKE_GRANT",
        NextStep::RewardsCompensated => "REWARDS_COMPENSATED",
        NextStep::StartInventoryCompensation => "START_INVENTORY_COMPENSATION",
        NextStep::ReturnStock => "RETURN_STOCK",
        NextStep::RollBack => "ROLL_BACK",
        NextStep::Done => "DONE",
    }
}
