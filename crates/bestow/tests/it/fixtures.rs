//! What many test files set up the same way: event bodies, events created and activated,
//! servers whose saga retries quickly, crowds of players and their claims.

use std::sync::Arc;
use std::time::Duration;

use bestow_events::domain::saga::ClaimStatus;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::granter::{Faults, SECRET, TestGranter};
use crate::helpers::{PASSWORD, TestApp, test_config, token_of};

/// A valid event body with one limited POINT reward, running now.
pub(crate) fn event_body(name: &str) -> Value {
    let now = chrono::Utc::now();
    json!({
        "eventName": name,
        "description": "log in three days in a row",
        "startDate": (now - chrono::Duration::days(1)).to_rfc3339(),
        "endDate": (now + chrono::Duration::days(30)).to_rfc3339(),
        "conditions": { "type": "LOGIN_STREAK", "days": 3 },
        "timezone": "Asia/Seoul",
        "rewards": [{ "rewardType": "POINT", "rewardName": "1000 points", "details": { "points": 1000 },
                      "quantityPerUser": 1, "totalStock": 100 }],
    })
}

pub(crate) fn second_reward() -> Value {
    json!({ "rewardType": "ITEM", "rewardName": "Red potion",
            "details": { "itemId": "potion_red", "itemName": "Red potion", "itemGrade": "RARE" },
            "quantityPerUser": 2, "totalStock": -1 })
}

/// Creates an event as `token` and returns it.
pub(crate) async fn create_event(app: &TestApp, token: &str, body: &Value) -> Value {
    let response = app.post("/api/v1/events", Some(token), body).await;
    assert_eq!(response.status(), StatusCode::CREATED, "create event");
    response.json().await.unwrap()
}

pub(crate) async fn set_status(app: &TestApp, token: &str, id: &str, status: &str) -> reqwest::Response {
    app.send_json(Method::PUT, &format!("/api/v1/events/{id}/status"), Some(token), &json!({ "status": status })).await
}

/// Creates the event `body` as `token`, activates it, and returns its id.
pub(crate) async fn activated_event(app: &TestApp, token: &str, body: &Value) -> String {
    let id = create_event(app, token, body).await["id"].as_str().unwrap().to_owned();
    assert_eq!(set_status(app, token, &id, "ACTIVE").await.status(), StatusCode::OK, "activate {id}");
    id
}

/// A server whose saga retries quickly, optionally granting through `webhook`.
pub(crate) async fn app_with(webhook: Option<&str>, configure: impl FnOnce(&mut bestow::Config)) -> TestApp {
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = test_config(&dir);
    config.events.claim_wait_ms = 3_000;
    config.events.recovery_sweep_ms = 100;
    config.events.saga_retry_base_ms = 20;
    config.events.claim_lease_ms = 2_000;
    if let Some(url) = webhook {
        config.events.webhook_url = Some(url.to_owned());
        config.events.webhook_secret = Some(SECRET.into());
        config.events.webhook_timeout_ms = 300;
    }
    configure(&mut config);
    TestApp::spawn_with(dir, config).await
}

/// Registers `count` players named `{prefix}{i}` and returns their (id, token).
pub(crate) async fn players(app: &Arc<TestApp>, prefix: &str, count: usize) -> Vec<(String, String)> {
    let mut set = JoinSet::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(32));
    for i in 0..count {
        let (app, slots, name) = (app.clone(), slots.clone(), format!("{prefix}{i}"));
        set.spawn(async move {
            let _slot = slots.acquire().await.unwrap();
            let user: Value = app.register(&name, PASSWORD).await.json().await.unwrap();
            let token = token_of(&app.session(&name, PASSWORD).await);
            (i, user["id"].as_str().unwrap().to_owned(), token)
        });
    }
    let mut players: Vec<(usize, String, String)> = set.join_all().await;
    players.sort();
    players.into_iter().map(|(_, id, token)| (id, token)).collect()
}

/// Creates and activates an event with `rewards` (no conditions); returns its id and reward ids.
pub(crate) async fn active_event(app: &TestApp, rewards: Value, policy: &str) -> (String, Vec<String>) {
    let operator = app.admin_token().await;
    let mut body = event_body("claimable");
    body["conditions"] = Value::Null;
    body["rewards"] = rewards;
    body["grantPolicy"] = json!(policy);
    let event = create_event(app, &operator, &body).await;
    let id = event["id"].as_str().unwrap().to_owned();
    assert_eq!(set_status(app, &operator, &id, "ACTIVE").await.status(), StatusCode::OK);
    let rewards =
        event["rewards"].as_array().unwrap().iter().map(|r| r["rewardId"].as_str().unwrap().to_owned()).collect();
    (id, rewards)
}

pub(crate) fn points(name: &str, quantity: i64, stock: i64) -> Value {
    json!({ "rewardType": "POINT", "rewardName": name, "details": { "points": 100 },
            "quantityPerUser": quantity, "totalStock": stock })
}

/// Claims `event_id` as `token`, with `key` as the idempotency key if given.
pub(crate) async fn send_claim(app: &TestApp, token: &str, event_id: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = app.request(Method::POST, &format!("/api/v1/events/{event_id}/claims"), Some(token));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.unwrap()
}

pub(crate) async fn claim(app: &TestApp, token: &str, event_id: &str, key: Option<&str>) -> (StatusCode, Value) {
    let response = send_claim(app, token, event_id, key).await;
    (response.status(), response.json().await.unwrap())
}

pub(crate) fn status_of(request: &Value) -> ClaimStatus {
    request["status"].as_str().unwrap().parse().unwrap()
}

/// Polls a claim until it is final (20 s at most).
pub(crate) async fn final_claim(app: &TestApp, token: &str, request_id: &str) -> Value {
    for _ in 0..200 {
        let request = app.get_json(&format!("/api/v1/claims/{request_id}"), Some(token)).await;
        if status_of(&request).is_final() {
            return request;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("claim {request_id} did not reach a final status");
}

/// Claims concurrently for every player and returns each final request.
pub(crate) async fn claim_all(app: &Arc<TestApp>, players: &[(String, String)], event_id: &str) -> Vec<Value> {
    claim_all_at_most(app, players, event_id, players.len()).await
}

/// Like [`claim_all`], with at most `concurrency` claims in flight at once.
pub(crate) async fn claim_all_at_most(
    app: &Arc<TestApp>,
    players: &[(String, String)],
    event_id: &str,
    concurrency: usize,
) -> Vec<Value> {
    let mut set = JoinSet::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
    for (_, token) in players {
        let (app, token, event_id, slots) = (app.clone(), token.clone(), event_id.to_owned(), slots.clone());
        set.spawn(async move {
            let slot = slots.acquire().await.unwrap();
            let (status, request) = claim(&app, &token, &event_id, None).await;
            drop(slot);
            assert!(matches!(status.as_u16(), 201 | 202), "{status}: {request}");
            final_claim(&app, &token, request["requestId"].as_str().unwrap()).await
        });
    }
    set.join_all().await
}

/// An ALL_OR_NOTHING event without conditions that a crowd of new players has claimed once each.
pub(crate) struct ClaimedEvent {
    pub(crate) event_id: String,
    pub(crate) reward_ids: Vec<String>,
    /// Each player's (id, token), in the order of their names.
    pub(crate) players: Vec<(String, String)>,
    /// Each player's final claim, in the order they settled.
    pub(crate) claims: Vec<Value>,
}

/// Activates an ALL_OR_NOTHING event with `rewards` and has `count` new players named
/// `{prefix}{i}` claim it at once, each claim awaited until final.
pub(crate) async fn claimed_event(app: &Arc<TestApp>, rewards: Value, prefix: &str, count: usize) -> ClaimedEvent {
    let (event_id, reward_ids) = active_event(app, rewards, "ALL_OR_NOTHING").await;
    let players = players(app, prefix, count).await;
    let claims = claim_all(app, &players, &event_id).await;
    ClaimedEvent { event_id, reward_ids, players, claims }
}

/// A server whose saga retries quickly and grants through a new test granter with `faults`.
pub(crate) async fn granting_app(
    faults: Faults,
    configure: impl FnOnce(&mut bestow::Config),
) -> (TestGranter, Arc<TestApp>) {
    let (granter, url) = TestGranter::start(faults).await;
    (granter, Arc::new(app_with(Some(&url), configure).await))
}

/// Two players' claims on an ALL_OR_NOTHING event whose second reward the granter refuses and
/// whose revokes it cannot take: both claims end waiting for an admin.
pub(crate) async fn two_claims_stuck_in_compensation() -> (TestGranter, Faults, Arc<TestApp>, String, Vec<Value>) {
    let faults = Faults { refuse_reward_name: Some("refused".into()), revokes_down: true, ..Faults::default() };
    let (granter, app) = granting_app(faults.clone(), |_| {}).await;
    let stuck = claimed_event(&app, json!([points("granted", 1, 10), points("refused", 1, 10)]), "stuck", 2).await;
    (granter, faults, app, stuck.event_id, stuck.claims)
}
