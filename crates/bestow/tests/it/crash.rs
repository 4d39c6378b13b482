//! Crash safety: a real `bestow serve` process is made to exit right before and right after
//! the commit of each saga step; after a restart on the same data dir every claim reaches a
//! final status, the stock invariant holds and the granter saw no key twice.

use std::sync::Arc;
use std::time::Duration;

use bestow_events::domain::saga::ClaimStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::granter::{Faults, TestGranter};
use crate::helpers::Client;
use crate::process::{ServeProcess, granting_envs};

const ADMIN_PASSWORD: &str = "crash-admin-password";
const KEY: &str = "5a1f0a4e-9c2b-4d8e-8f00-1c2d3e4f5a6b";

/// Steps of a successful claim.
const SUCCESS_PATH: [&str; 6] =
    ["VALIDATE", "CHECK_CONDITIONS", "ALLOCATE_INVENTORY", "START_GRANTING", "GRANT_REWARD", "CONCLUDE_GRANTS"];
/// Steps of a claim whose second reward is refused and which is rolled back.
const COMPENSATION_PATH: [&str; 6] = [
    "START_COMPENSATION",
    "REVOKE_GRANT",
    "REWARDS_COMPENSATED",
    "START_INVENTORY_COMPENSATION",
    "RETURN_STOCK",
    "ROLL_BACK",
];

/// The player's claim, always under the same idempotency key.
async fn send_claim(
    client: &reqwest::Client,
    base: &str,
    player: &str,
    event_id: &str,
    shape: Shape,
) -> reqwest::Result<reqwest::Response> {
    let mut request = client
        .post(format!("{base}/api/v1/events/{event_id}/claims"))
        .bearer_auth(player)
        .header("idempotency-key", KEY);
    if shape == Shape::TieredDaily {
        request = request.json(&json!({ "tierId": "second" }));
    }
    request.send().await
}

/// The event a crash scenario claims on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The seed's shape: one-time, its rewards one implicit tier.
    OneTime,
    /// A daily event whose claim names the second of two tiers.
    TieredDaily,
}

/// The event of a scenario: two rewards (the second refused when compensating), as the
/// event's rewards or as those of its second tier.
fn event_body(shape: Shape) -> Value {
    let now = chrono::Utc::now();
    let rewards = json!([
        { "rewardType": "POINT", "rewardName": "granted", "details": { "points": 5 }, "quantityPerUser": 2, "totalStock": 10 },
        { "rewardType": "ITEM", "rewardName": "refused", "details": { "itemId": "i", "itemName": "I" }, "quantityPerUser": 1, "totalStock": 10 },
    ]);
    let mut event = json!({
        "eventName": "crash", "startDate": (now - chrono::Duration::hours(1)).to_rfc3339(),
        "endDate": (now + chrono::Duration::days(1)).to_rfc3339(),
    });
    match shape {
        Shape::OneTime => event["rewards"] = rewards,
        Shape::TieredDaily => {
            event["recurrence"] = json!({ "period": "DAILY", "resetTime": "05:00" });
            event["timezone"] = json!("Asia/Seoul");
            event["tiers"] = json!([
                { "tierId": "first", "tierName": "First", "rewards": [
                    { "rewardType": "POINT", "rewardName": "other", "details": { "points": 1 }, "quantityPerUser": 1, "totalStock": 10 }
                ] },
                { "tierId": "second", "tierName": "Second", "rewards": rewards },
            ]);
        }
    }
    event
}

/// The rewards the scenario's claim is for, as the event now stands.
fn claimed_rewards(event: &Value, shape: Shape) -> &Vec<Value> {
    match shape {
        Shape::OneTime => event["rewards"].as_array().unwrap(),
        Shape::TieredDaily => event["tiers"][1]["rewards"].as_array().unwrap(),
    }
}

fn envs(granter_url: &str, crash_at: Option<&str>, storage: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let recovery =
        [("BESTOW_CLAIM_LEASE_MS", "800"), ("BESTOW_RECOVERY_SWEEP_MS", "100"), ("BESTOW_SAGA_RETRY_BASE_MS", "20")];
    let mut envs = granting_envs(ADMIN_PASSWORD, granter_url, &recovery);
    if let Some(point) = crash_at {
        envs.push(("BESTOW_TEST_CRASH_AT", point.to_owned()));
    }
    envs.extend_from_slice(storage);
    envs
}

fn start(dir: &std::path::Path, envs: &[(&'static str, String)]) -> ServeProcess {
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServeProcess::start(dir, &envs)
}

/// Runs one crash scenario, on SQLite files in a temporary data dir, or on fresh MongoDB
/// databases when `on_mongodb`.
async fn scenario(point: String, compensate: bool, on_mongodb: bool, shape: Shape) {
    let storage: Vec<(&'static str, String)> = if on_mongodb {
        let databases = crate::mongo::SplitDatabases::fresh();
        databases.env().iter().map(|(key, value)| (*key, (*value).to_owned())).collect()
    } else {
        Vec::new()
    };
    let faults = Faults { refuse_reward_name: compensate.then(|| "refused".to_owned()), ..Faults::default() };
    let (granter, url) = TestGranter::start(faults).await;
    let dir = tempfile::TempDir::new().unwrap();
    let mut server = start(dir.path(), &envs(&url, Some(&point), &storage));
    let (base, client) = (server.base.clone(), bestow_core::outbound::client().unwrap());
    let api = Client::new(&base);

    let login = |name: &str, password: &str| json!({ "username": name, "password": password });
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    let event = event_body(shape);
    let event =
        api.expect(StatusCode::CREATED, reqwest::Method::POST, "/api/v1/events", Some(&admin), Some(event)).await;
    let event_id = event["id"].as_str().unwrap().to_owned();
    let status_url = format!("/api/v1/events/{event_id}/status");
    api.expect(StatusCode::OK, reqwest::Method::PUT, &status_url, Some(&admin), Some(json!({ "status": "ACTIVE" })))
        .await;
    api.expect(
        StatusCode::CREATED,
        reqwest::Method::POST,
        "/api/v1/auth/register",
        None,
        Some(login("victim", "victim-password")),
    )
    .await;
    let player = api.login("victim", "victim-password").await;

    // The claim crashes the server mid-saga: the connection drops without an answer.
    let claim = send_claim(&client, &base, &player, &event_id, shape).await;
    assert!(claim.is_err() || claim.is_ok_and(|r| r.status() != StatusCode::CREATED), "{point}: the process answered");
    assert_eq!(server.wait_exit(Duration::from_secs(30)), Some(86), "{point}: the process crashed on purpose");
    drop(server);

    let server = start(dir.path(), &envs(&url, None, &storage));
    let base = server.base.clone();
    let api = Client::new(&base);
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    // The player got no answer, so it retries with the same key: a replay if the claim was
    // recorded before the crash, a new claim if it was not.
    let player = api.login("victim", "victim-password").await;
    let retried = send_claim(&client, &base, &player, &event_id, shape).await.unwrap();
    assert!(matches!(retried.status().as_u16(), 200..=202), "{point}: retry answered {}", retried.status());
    let mut request = Value::Null;
    for _ in 0..300 {
        request = api
            .expect(StatusCode::OK, reqwest::Method::GET, &format!("/api/v1/claims/{KEY}"), Some(&admin), None)
            .await;
        if request["status"].as_str().and_then(|s| s.parse::<ClaimStatus>().ok()).is_some_and(ClaimStatus::is_final) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expected = if compensate { "FAILED_ROLLED_BACK" } else { "SUCCESS_ALL_GRANTED" };
    assert_eq!(request["status"], expected, "{point}: {request}");

    // totalStock = remainingStock + Σ reserved-and-not-returned.
    let event = api
        .expect(StatusCode::OK, reqwest::Method::GET, &format!("/api/v1/events/{event_id}"), Some(&admin), None)
        .await;
    if shape == Shape::TieredDaily {
        assert_eq!(request["tierId"], "second", "{point}: {request}");
        assert!(request["periodStart"].is_string(), "{point}: {request}");
    }
    let claimed = claimed_rewards(&event, shape);
    assert_eq!(claimed.len(), request["rewardsToProcess"].as_array().unwrap().len(), "{point}");
    for (reward, held) in claimed.iter().zip(request["rewardsToProcess"].as_array().unwrap()) {
        let reserved = if held["stockReserved"] == true {
            held["rewardDefinition"]["quantityPerUser"].as_i64().unwrap()
        } else {
            0
        };
        assert_eq!(
            reward["totalStock"].as_i64().unwrap(),
            reward["remainingStock"].as_i64().unwrap() + reserved,
            "{point}"
        );
    }
    {
        let ledger = granter.ledger();
        assert!(ledger.applications.values().all(|&n| n == 1), "{point}: a key was granted twice");
        assert_eq!(ledger.granted.len(), if compensate { 0 } else { 2 }, "{point}: grants left at the granter");
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_recovers_without_leaks_or_double_grants() {
    every_crash_point(false, Shape::OneTime).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_recovers_without_leaks_or_double_grants_on_mongodb() {
    every_crash_point(true, Shape::OneTime).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_of_a_tier_claim_in_a_daily_event_recovers() {
    every_crash_point(false, Shape::TieredDaily).await;
}

/// Every crash point of the success path and of the compensation path.
async fn every_crash_point(on_mongodb: bool, shape: Shape) {
    let mut points = Vec::new();
    for step in SUCCESS_PATH {
        for phase in ["before", "after"] {
            points.push((format!("{step}:{phase}"), false));
        }
    }
    for step in COMPENSATION_PATH {
        for phase in ["before", "after"] {
            points.push((format!("{step}:{phase}"), true));
        }
    }
    // On the MongoDB test server every two concurrent transactions conflict (a stock return
    // is one), so its scenarios run one at a time.
    let slots = Arc::new(tokio::sync::Semaphore::new(if on_mongodb { 1 } else { 4 }));
    let mut set = JoinSet::new();
    for (point, compensate) in points {
        let slots = slots.clone();
        set.spawn(async move {
            let _slot = slots.acquire().await.unwrap();
            scenario(point, compensate, on_mongodb, shape).await;
        });
    }
    for outcome in set.join_all().await {
        let () = outcome;
    }
}
