//! The background task that expires events once their `endDate` passes.

use std::sync::Arc;
use std::time::Duration;

use crate::catalog::EventCatalog;

/// Calls `catalog.expire_due` every `interval` (as of the catalog's clock), forever; the owner
/// aborts the task at shutdown. Each sweep is one store call whose writes are atomic, so an
/// abort between or during sweeps leaves nothing half-done.
pub async fn run_expiry(catalog: Arc<EventCatalog>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match catalog.expire_due(catalog.clock().now()).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "expired events past their end date"),
            Err(error) => tracing::warn!(%error, "event expiry sweep failed; will retry"),
        }
    }
}
