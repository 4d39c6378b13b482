//! The recovery sweeper: resumes requests whose worker died or whose retry is due.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::driver::ClaimSaga;
use crate::domain::saga::ClaimStatus;

/// Requests resumed per sweep, at most.
const BATCH: usize = 200;
/// Requests driven at once by the sweeper.
const PARALLEL: usize = 16;

/// Every `interval`, drives each due request (free or expired lease, retry time reached) and
/// refreshes the manual-intervention gauge. Runs until aborted; every step it triggers is an
/// atomic commit, so an abort leaves nothing half-done.
pub async fn run_recovery(saga: Arc<ClaimSaga>, interval: Duration) {
    let slots = Arc::new(Semaphore::new(PARALLEL));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        sweep(&saga, &slots).await;
    }
}

/// One pass of the sweeper; returns how many requests it resumed.
#[tracing::instrument(name = "recovery_sweep", skip_all)]
pub async fn sweep(saga: &Arc<ClaimSaga>, slots: &Arc<Semaphore>) -> usize {
    let now = saga.clock().now();
    // A reservation still in flight after a whole lease was orphaned by a crash or a lost
    // lease: settle it before resuming the requests, so they find the stock as it really is.
    let older_than = now - chrono::TimeDelta::from_std(saga.lease()).unwrap_or(chrono::TimeDelta::MAX);
    match saga.claims.settle_stray_reservations(older_than).await {
        Ok(0) => {}
        Ok(settled) => tracing::info!(settled, "recovery settled stray stock reservations"),
        Err(error) => tracing::warn!(%error, "recovery could not settle stray stock reservations"),
    }
    let due = match saga.claims.due_requests(now, BATCH).await {
        Ok(due) => due,
        Err(error) => {
            tracing::warn!(%error, "recovery sweep could not list due requests");
            return 0;
        }
    };
    let count = due.len();
    let mut running = Vec::with_capacity(count);
    for request_id in due {
        let Ok(slot) = slots.clone().acquire_owned().await else { break };
        let saga = saga.clone();
        running.push(tokio::spawn(async move {
            let _slot = slot;
            if let Err(error) = saga.drive(&request_id).await {
                tracing::warn!(%error, %request_id, "resuming a claim failed; will retry");
            }
        }));
    }
    for task in running {
        let _ = task.await;
    }
    if let Ok(parked) = saga.claims.count_by_status(ClaimStatus::CompensationFailedManualInterventionRequired).await {
        metrics::gauge!("claims_manual_intervention").set(parked as f64);
    }
    if count > 0 {
        tracing::info!(count, "recovery resumed claims");
    }
    count
}
