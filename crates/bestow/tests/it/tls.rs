//! The studio's webhook over HTTPS: a real `bestow serve` process grants through a TLS
//! endpoint whose certificate it trusts, and refuses to talk to one it does not trust.

use std::sync::atomic::Ordering;

use reqwest::Method;
use serde_json::Value;

use crate::granter::{Faults, TestGranter};
use crate::helpers::{Client, point_event};
use crate::process::{ServeProcess, granting_envs};

const ADMIN_PASSWORD: &str = "tls-admin-password";

/// Starts `bestow serve` granting through `webhook_url`, creates an active event and a player,
/// sends the player's claim and returns the claim as the admin finally sees it.
async fn claim_through(webhook_url: &str, trusted_ca: Option<&std::path::Path>) -> Value {
    let dir = tempfile::TempDir::new().unwrap();
    let retries = [("BESTOW_SAGA_MAX_ATTEMPTS", "2"), ("BESTOW_SAGA_RETRY_BASE_MS", "20")];
    let mut envs = granting_envs(ADMIN_PASSWORD, webhook_url, &retries);
    if let Some(ca) = trusted_ca {
        envs.push(("SSL_CERT_FILE", ca.display().to_string()));
    }
    let envs: Vec<(&str, &str)> = envs.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let server = ServeProcess::start(dir.path(), &envs);
    let api = Client::new(&server.base);

    let admin = api.login("admin", ADMIN_PASSWORD).await;
    let event_id = api.active_event(&admin, point_event("tls", 10, 5)).await;
    let player = api.player("player", "player-password").await;

    let claim = api.call(Method::POST, &format!("/api/v1/events/{event_id}/claims"), Some(&player), None).await.1;
    let request_id = claim["requestId"].as_str().unwrap().to_owned();
    api.final_claim(&admin, &request_id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_with_a_trusted_certificate_grants_over_https() {
    let (granter, url, ca_pem, failed_handshakes) = TestGranter::start_tls(Faults::default()).await;
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), ca_pem).unwrap();

    let claim = claim_through(&url, Some(ca.path())).await;

    assert_eq!(claim["status"], "SUCCESS_ALL_GRANTED", "{claim}");
    let ledger = granter.ledger();
    assert_eq!((ledger.granted.len(), ledger.bad_signatures), (1, 0));
    assert_eq!(failed_handshakes.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_with_an_untrusted_certificate_is_never_called() {
    let (granter, url, _ca_pem, failed_handshakes) = TestGranter::start_tls(Faults::default()).await;

    let claim = claim_through(&url, None).await;

    // Neither the grant nor its safety revoke can reach the studio, so the claim is left for
    // an admin, with its stock still held.
    assert_eq!(claim["status"], "COMPENSATION_FAILED_MANUAL_INTERVENTION_REQUIRED", "{claim}");
    assert_eq!(granter.ledger().grant_calls, 0, "a request reached a server whose certificate is not trusted");
    assert!(failed_handshakes.load(Ordering::SeqCst) >= 1, "no TLS handshake was attempted");
}
