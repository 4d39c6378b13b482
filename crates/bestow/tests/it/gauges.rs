//! The sampled gauges on `/metrics`: stock left per reward of an ACTIVE event, claims under
//! way and the age of the oldest, readiness per dependency; latencies as histogram buckets.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::granter::{Faults, SECRET, TestGranter};
use crate::helpers::{TestApp, point_event};

/// The value of the first series starting with `prefix`, if any.
fn value(metrics: &str, prefix: &str) -> Option<f64> {
    metrics.lines().find(|line| line.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
}

/// Polls `/metrics` (the gauges are sampled every 5 s) until `done` holds; the last text.
async fn metrics_until(app: &TestApp, done: impl Fn(&str) -> bool) -> String {
    let mut metrics = String::new();
    for _ in 0..150 {
        metrics = app.get("/metrics", None).await.text().await.unwrap();
        if done(&metrics) {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gauges never reached the expected values:\n{metrics}");
}

#[tokio::test]
async fn stock_claims_under_way_and_readiness_are_exported() {
    let (granter, url) = TestGranter::start(Faults { grants_down: true, ..Faults::default() }).await;
    let app = TestApp::spawn_configured(|config| {
        (config.events.webhook_url, config.events.webhook_secret) = (Some(url), Some(SECRET.into()));
        config.events.claim_wait_ms = 50;
        config.events.saga_retry_base_ms = 50;
        config.events.saga_max_attempts = 100;
    })
    .await;
    let admin = app.admin_token().await;
    let event_id = app.api.active_event(&admin, point_event("gauge", 1, 10)).await;
    let (_, player) = app.user_with_roles("gauge-player", &["USER"]).await;
    let claim = app
        .request(Method::POST, &format!("/api/v1/events/{event_id}/claims"), Some(&player))
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(claim.status(), StatusCode::ACCEPTED, "the granter is down: the claim is under way");

    let stock = format!("reward_stock_remaining{{event_id=\"{event_id}\",reward=\"gauge points\"}}");
    let total = format!("reward_stock_total{{event_id=\"{event_id}\",reward=\"gauge points\"}}");
    let pending = "claims_in_progress{status=\"PENDING_REWARD_GRANT\"}";
    let metrics = metrics_until(&app, |m| {
        value(m, &stock) == Some(9.0)
            && value(m, pending).is_some_and(|n| n >= 1.0)
            && value(m, "claims_oldest_in_progress_seconds").is_some_and(|age| age > 0.0)
    })
    .await;
    assert_eq!(value(&metrics, &total), Some(10.0));
    assert_eq!(value(&metrics, "dependency_ready{dependency=\"auth_store\"}"), Some(1.0));
    assert_eq!(value(&metrics, "dependency_ready{dependency=\"event_store\"}"), Some(1.0));
    assert!(metrics.contains("http_request_duration_seconds_bucket{"), "latency as buckets:\n{metrics}");
    assert!(metrics.contains("saga_step_seconds_bucket{"), "{metrics}");

    // Once the studio answers, the claim finishes and nothing is under way any more.
    granter.set_faults(Faults::default());
    metrics_until(&app, |m| value(m, pending) == Some(0.0)).await;
    app.stop().await;
}
