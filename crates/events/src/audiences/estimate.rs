//! Size estimates: how many of the known players (those with stored properties) an audience
//! holds, counted by a background job that records its progress in the audience
//! (`audiences.estimate`), so any instance can answer how far it got. A LIST audience's size
//! is exact at once. A new run replaces the last one's figures; a run that finds itself
//! replaced stops.

use std::sync::Arc;

use bestow_core::ids::UserId;
use bestow_core::time::Clock;
use futures_util::StreamExt;

use super::AudienceError;
use super::facts::{FactGatherer, GatherError};
use crate::domain::audience::membership::{fact_needs, judge};
use crate::domain::audience::{Audience, AudienceEstimate, AudienceKind, EstimateStatus};

/// Players read per page of the scan.
const SCAN_PAGE: u32 = 1_000;
/// Players judged at once within a page (each may read facts).
const JUDGED_AT_ONCE: usize = 16;

/// Starts and runs estimates.
pub(super) struct Estimates {
    facts: Arc<FactGatherer>,
    clock: Clock,
}

impl Estimates {
    pub(super) fn new(facts: Arc<FactGatherer>, clock: Clock) -> Self {
        Self { facts, clock }
    }

    /// Records a new run for `audience` and starts it; returns its job id.
    pub(super) async fn start(&self, audience: Audience) -> Result<String, AudienceError> {
        let store = self.facts.store().clone();
        let started_at = self.clock.now();
        let job_id = bestow_core::ids::new_object_id();
        if audience.kind == AudienceKind::List {
            let exact = AudienceEstimate {
                job_id: job_id.clone(),
                status: EstimateStatus::Done,
                members: audience.member_count,
                scanned: audience.member_count,
                total: audience.member_count,
                started_at,
                finished_at: Some(started_at),
                error: None,
            };
            store.record_estimate(&audience.id, &exact).await?;
            return Ok(job_id);
        }
        let total = store.count_player_properties().await?;
        let estimate = AudienceEstimate {
            job_id: job_id.clone(),
            status: EstimateStatus::Running,
            members: 0,
            scanned: 0,
            total,
            started_at,
            finished_at: None,
            error: None,
        };
        store.record_estimate(&audience.id, &estimate).await?;
        let run = Run { facts: self.facts.clone(), clock: self.clock.clone(), audience };
        tokio::spawn(run.scan(estimate));
        Ok(job_id)
    }
}

/// One estimate run.
struct Run {
    facts: Arc<FactGatherer>,
    clock: Clock,
    audience: Audience,
}

impl Run {
    /// Scans the known players page by page, recording progress after each page; ends DONE,
    /// or FAILED with the reason when facts cannot be read.
    async fn scan(self, mut estimate: AudienceEstimate) {
        let store = self.facts.store().clone();
        let outcome = self.count(&mut estimate).await;
        estimate.finished_at = Some(self.clock.now());
        match outcome {
            Ok(true) => estimate.status = EstimateStatus::Done,
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(audience_id = %self.audience.id, %error, "audience estimate failed");
                estimate.status = EstimateStatus::Failed;
                estimate.error = Some(error.to_string());
            }
        }
        if let Err(error) = store.record_estimate(&self.audience.id, &estimate).await {
            tracing::warn!(audience_id = %self.audience.id, %error, "cannot record the end of an audience estimate");
        }
    }

    /// Counts members into `estimate`; `false` when a newer run replaced this one.
    async fn count(&self, estimate: &mut AudienceEstimate) -> Result<bool, GatherError> {
        let store = self.facts.store().clone();
        let named = [self.audience.id.clone()];
        let audiences = self.facts.audiences_named(&named).await?;
        let now = estimate.started_at;
        let needs = fact_needs(&named, &audiences, now);
        let mut after: Option<UserId> = None;
        loop {
            let players = store.player_properties_after(after.as_ref(), SCAN_PAGE).await?;
            let Some(last) = players.last() else { return Ok(true) };
            after = Some(last.user_id.clone());
            let scanned = players.len();
            // Owned players: a stream of borrowed ones trips the spawned future's lifetimes.
            let verdicts: Vec<Result<bool, GatherError>> = futures_util::stream::iter(players)
                .map(|player| {
                    let (needs, audiences) = (&needs, &audiences);
                    async move {
                        let gathered = self.facts.gather(&player.user_id, needs, Some(&player)).await?;
                        Ok(judge(&self.audience, &gathered.facts(&player.user_id, audiences, now)).met)
                    }
                })
                .buffered(JUDGED_AT_ONCE)
                .collect()
                .await;
            for verdict in verdicts {
                estimate.members += u64::from(verdict?);
            }
            estimate.scanned += scanned as u64;
            estimate.total = estimate.total.max(estimate.scanned);
            if !store.record_estimate(&self.audience.id, estimate).await? {
                return Ok(false);
            }
            if scanned < SCAN_PAGE as usize {
                return Ok(true);
            }
        }
    }
}
