//! Gauges sampled from storage and from the readiness checks, for dashboards and alerts:
//! what a counter incremented on the request path cannot tell (how much stock is left, how
//! many claims are still under way and for how long, whether a dependency answers).
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `claims_in_progress` | `status` | claims in each non-final status |
//! | `claims_oldest_in_progress_seconds` | | age of the oldest non-final claim (0 when none) |
//! | `reward_stock_remaining` | `event_id`, `reward` | units left of each limited reward of an ACTIVE event |
//! | `reward_stock_total` | `event_id`, `reward` | units that exist of that reward |
//! | `dependency_ready` | `dependency` | 1 when the readiness check answers, else 0 |
//! | `bestow_backup_last_success_timestamp_seconds` | | end of the newest backup in `backup_runs` (Unix time); absent before one |
//!
//! Every events process samples the same database, so replicas report the same values:
//! aggregate them with `max`, not `sum`. Series of events that stop being ACTIVE are dropped
//! by the exporter's idle timeout (see `bestow_core::telemetry`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bestow_core::http::ReadinessCheck;
use bestow_core::page::PageRequest;
use bestow_core::store::StoreError;
use bestow_core::time::Clock;
use bestow_events::EventStore;
use bestow_events::catalog::store::EventFilter;
use bestow_events::claims::store::{ClaimFilter, ClaimStore};
use bestow_events::domain::lifecycle::EventStatus;
use bestow_events::domain::saga::ClaimStatus;
use bestow_store_mongo::MongoEventStore;
use bestow_store_sqlite::SqliteEventStore;
use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;

/// How often the gauges are refreshed: below Prometheus' usual 15 s scrape interval.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// ACTIVE events whose stock is reported, at most (one page of the event list per 100).
const MAX_EVENTS: u32 = 1_000;

/// Starts sampling claim and stock gauges from the events database every [`SAMPLE_EVERY`]; a
/// claim's age is measured on `clock`, the one that stamped it.
pub fn sample_claims_and_stock(
    claims: Arc<dyn ClaimStore>,
    events: Arc<dyn EventStore>,
    clock: Clock,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(SAMPLE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = sample_claims(claims.as_ref(), &clock).await {
                tracing::warn!(%error, "could not sample the claim gauges");
            }
            if let Err(error) = sample_stock(events.as_ref()).await {
                tracing::warn!(%error, "could not sample the stock gauges");
            }
        }
    })
}

/// Starts publishing the outcome of each readiness check every [`SAMPLE_EVERY`].
pub fn sample_readiness(checks: Vec<Arc<dyn ReadinessCheck>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(SAMPLE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            for check in &checks {
                let ready = matches!(tokio::time::timeout(Duration::from_secs(2), check.check()).await, Ok(Ok(())));
                metrics::gauge!("dependency_ready", "dependency" => check.name()).set(if ready { 1.0 } else { 0.0 });
            }
        }
    })
}

/// The record `bestow admin backup` keeps of the backups it completed (`backup_runs` in the
/// event database), as the backup-age gauge reads it.
#[async_trait]
pub trait BackupRecords: Send + Sync {
    /// When the newest recorded backup finished; `None` before the first.
    async fn last_backup_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
}

#[async_trait]
impl BackupRecords for SqliteEventStore {
    async fn last_backup_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.last_backup().await
    }
}

#[async_trait]
impl BackupRecords for MongoEventStore {
    async fn last_backup_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.last_backup().await
    }
}

/// Starts publishing when the newest backup finished, every [`SAMPLE_EVERY`]. Until a backup
/// is recorded the gauge is absent (the alert on backup age covers that case with `absent`).
pub fn sample_last_backup(records: Arc<dyn BackupRecords>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(SAMPLE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match records.last_backup_at().await {
                Ok(Some(at)) => {
                    let seconds = at.timestamp_millis() as f64 / 1000.0;
                    metrics::gauge!("bestow_backup_last_success_timestamp_seconds").set(seconds);
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "could not sample the backup-age gauge"),
            }
        }
    })
}

async fn sample_claims(claims: &dyn ClaimStore, clock: &Clock) -> Result<(), bestow_core::store::StoreError> {
    let now = clock.now();
    let mut oldest = None;
    for status in ClaimStatus::ALL.into_iter().filter(|status| !status.is_final()) {
        let count = claims.count_by_status(status).await?;
        metrics::gauge!("claims_in_progress", "status" => status.as_str()).set(count as f64);
        if count == 0 {
            continue;
        }
        // Newest first: the last page of one holds the oldest claim in this status.
        let filter = ClaimFilter { status: Some(status), ..ClaimFilter::default() };
        let last = PageRequest { page: u32::try_from(count).unwrap_or(u32::MAX), limit: 1 };
        let page = claims.list_requests(&filter, last).await?;
        if let Some(claim) = page.items.first() {
            oldest =
                Some(oldest.map_or(claim.created_at, |at: chrono::DateTime<chrono::Utc>| at.min(claim.created_at)));
        }
    }
    let age = oldest.map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0));
    metrics::gauge!("claims_oldest_in_progress_seconds").set(age);
    Ok(())
}

async fn sample_stock(events: &dyn EventStore) -> Result<(), bestow_core::store::StoreError> {
    let filter = EventFilter { statuses: Some(vec![EventStatus::Active]), ..EventFilter::default() };
    let mut page = PageRequest { page: 1, limit: 100 };
    loop {
        let events_page = events.list_events(&filter, page).await?;
        for event in &events_page.items {
            for reward in &event.rewards {
                let (Some(remaining), Some(total)) = (reward.remaining_stock(), reward.reward().stock().total_stock())
                else {
                    continue;
                };
                let labels = [("event_id", event.id.to_string()), ("reward", reward.reward().reward_name().to_owned())];
                metrics::gauge!("reward_stock_remaining", &labels).set(remaining as f64);
                metrics::gauge!("reward_stock_total", &labels).set(total as f64);
            }
        }
        let seen = u64::from(page.page) * u64::from(page.limit);
        if events_page.items.is_empty() || events_page.is_last() || seen >= u64::from(MAX_EVENTS) {
            return Ok(());
        }
        page.page += 1;
    }
}
