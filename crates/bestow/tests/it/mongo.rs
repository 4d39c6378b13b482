//! The platform on MongoDB: the wire-compatible test server `scripts/test` starts (its URI in
//! `BESTOW_TEST_MONGODB_URI`). The end-to-end scenario in both modes, the claim concurrency
//! tests, a claims export of several pages, a player's activities read back by staff, and a
//! database that goes away and comes back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bestow::Config;
use bestow::config::Storage;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::activities::staff_read_a_players_recent_activities;
use crate::claims::{crowd_never_oversells, one_success_per_player};
use crate::exports::every_claim_is_exported;
use crate::fixtures::app_with;
use crate::granter::{Faults, TestGranter};
use crate::helpers::{ADMIN_PASSWORD, Client, TestApp, point_event, test_config};
use crate::split::{SplitDeployment, scenario};

/// The test server's URI. Without it the run fails: a skipped MongoDB test proves nothing.
pub(crate) fn mongodb_uri() -> String {
    std::env::var("BESTOW_TEST_MONGODB_URI").expect(
        "BESTOW_TEST_MONGODB_URI is not set: run the tests with scripts/test, which starts the MongoDB test server",
    )
}

/// Fresh database names, so that tests sharing the server never see each other's data.
fn fresh_databases() -> (String, String) {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    (format!("t{}_auth_db", &tag[..12]), format!("t{}_event_db", &tag[..12]))
}

/// Points `config` at fresh databases on `uri`.
fn on_mongodb_at(config: &mut Config, uri: &str) {
    let (auth, event) = fresh_databases();
    config.storage.backend = Storage::Mongodb;
    config.storage.mongodb_uri = Some(uri.into());
    config.storage.auth_database = auth;
    config.storage.event_database = event;
}

pub(crate) fn on_mongodb(config: &mut Config) {
    on_mongodb_at(config, &mongodb_uri());
}

/// Fresh databases on the test server, for `bestow` processes (as `BESTOW_*` variables).
pub(crate) struct SplitDatabases {
    uri: String,
    auth: String,
    event: String,
}

impl SplitDatabases {
    pub(crate) fn fresh() -> Self {
        let (auth, event) = fresh_databases();
        Self { uri: mongodb_uri(), auth, event }
    }

    pub(crate) fn env(&self) -> [(&'static str, &str); 4] {
        [
            ("BESTOW_STORAGE", "mongodb"),
            ("BESTOW_MONGODB_URI", self.uri.as_str()),
            ("BESTOW_AUTH_DATABASE", self.auth.as_str()),
            ("BESTOW_EVENT_DATABASE", self.event.as_str()),
        ]
    }
}

#[tokio::test]
async fn the_scenario_on_mongodb_observes_the_same_as_on_sqlite_in_both_modes() {
    let app = TestApp::spawn().await;
    let on_sqlite = scenario(&Client::new(&app.url(""))).await;
    app.stop().await;

    let dir = tempfile::TempDir::new().unwrap();
    let mut config = test_config(&dir);
    on_mongodb(&mut config);
    let app = TestApp::spawn_with(dir, config).await;
    let all_in_one = scenario(&Client::new(&app.url(""))).await;
    app.stop().await;
    assert_eq!(on_sqlite, all_in_one, "all-in-one on MongoDB differs from SQLite");

    let databases = SplitDatabases::fresh();
    let storage = databases.env();
    let split = SplitDeployment::start_with(&storage, &[]);
    let three_processes = scenario(&split.gateway()).await;
    split.stop();
    assert_eq!(on_sqlite, three_processes, "split mode on MongoDB differs from SQLite");
}

#[tokio::test]
async fn a_crowd_never_oversells_on_mongodb() {
    // 8 claims in flight at a time: on the test server every two concurrent transactions
    // conflict (it checks conflicts engine-wide, not per document as mongod does), so a crowd
    // of hundreds starves some claims past their retry budget there.
    crowd_never_oversells(Arc::new(app_with(None, on_mongodb).await), 200, 40, 8).await;
}

#[tokio::test]
async fn one_success_per_player_on_mongodb() {
    one_success_per_player(Arc::new(app_with(None, on_mongodb).await)).await;
}

#[tokio::test]
async fn every_claim_is_exported_on_mongodb() {
    every_claim_is_exported(app_with(None, on_mongodb).await).await;
}

#[tokio::test]
async fn staff_read_a_players_recent_activities_on_mongodb() {
    staff_read_a_players_recent_activities(app_with(None, on_mongodb).await).await;
}

/// A loopback TCP relay to the database that can be cut and restored on the same port: the
/// database "goes away" for the application without touching the shared test server.
struct Relay {
    port: u16,
    target: String,
    connections: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut relay = Self { port, target: target.to_owned(), connections: None };
        relay.serve(listener);
        relay
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target.clone();
        self.connections = Some(tokio::spawn(async move {
            let mut open = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                open.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// Closes the port and every relayed connection (dropping the task drops them all).
    fn cut(&mut self) {
        if let Some(task) = self.connections.take() {
            task.abort();
        }
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

#[tokio::test]
async fn an_unreachable_database_is_a_503_and_stuck_claims_finish_when_it_returns() {
    let uri = mongodb_uri();
    let target = uri.trim_start_matches("mongodb://").split(['/', '?']).next().unwrap().to_owned();
    let mut relay = Relay::start(&target).await;
    let relayed = uri.replacen(&target, &format!("127.0.0.1:{}", relay.port), 1);
    let (granter, granter_url) = TestGranter::start(Faults { grants_down: true, ..Faults::default() }).await;
    let app = app_with(Some(&granter_url), |config| {
        on_mongodb_at(config, &relayed);
        config.events.claim_wait_ms = 300;
        config.events.saga_max_attempts = 100;
        config.events.saga_retry_base_ms = 100;
        config.events.claim_lease_ms = 1_000;
    })
    .await;
    let api = Client::new(&app.url(""));
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    let now = chrono::Utc::now();
    let event = json!({
        "eventName": "Outage week", "description": "no conditions",
        "startDate": (now - chrono::Duration::days(1)).to_rfc3339(),
        "endDate": (now + chrono::Duration::days(7)).to_rfc3339(),
        "rewards": [{ "rewardType": "ITEM", "rewardName": "Shield",
                      "details": { "itemId": "shield", "itemName": "Shield", "itemGrade": "RARE" },
                      "quantityPerUser": 1, "totalStock": 10 }],
    });
    let (status, created) = api.post("/api/v1/events", Some(&admin), event).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let event_id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/events/{event_id}/status");
    assert_eq!(api.call(Method::PUT, &path, Some(&admin), Some(json!({ "status": "ACTIVE" }))).await.0, StatusCode::OK);
    let (status, claim) = api.post(&format!("/api/v1/events/{event_id}/claims"), Some(&admin), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the granter is down: the claim is in flight {claim}");
    let request_id = claim["requestId"].as_str().unwrap().to_owned();

    // The database goes away: readiness and every request that needs it say 503, promptly.
    relay.cut();
    let started = Instant::now();
    let readiness = app.get("/readyz", None).await;
    assert_eq!(readiness.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(5), "readyz took {:?}", started.elapsed());
    let (status, problem) = api.get(&format!("/api/v1/claims/{request_id}"), Some(&admin)).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("SERVICE_UNAVAILABLE")));
    let (status, _) = api.post(&format!("/api/v1/events/{event_id}/claims"), Some(&admin), json!({})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "nothing can be recorded");

    // It comes back with the granter: the recovery sweeper finishes the claim, paid once.
    granter.set_faults(Faults::default());
    relay.restore().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let (status, request) = api.get(&format!("/api/v1/claims/{request_id}"), Some(&admin)).await;
        if status == StatusCode::OK && request["status"] == "SUCCESS_ALL_GRANTED" {
            break request;
        }
        assert!(Instant::now() < deadline, "the claim did not finish: {status} {request}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["rewardsToProcess"][0]["grantStatus"], "SUCCESS");
    assert!(granter.ledger().applications.values().all(|&n| n == 1), "never paid twice");
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);
    app.stop().await;
}

/// Two events processes behind one gateway (`BESTOW_EVENTS_URL` lists both); one is killed
/// while claims are arriving. Requests keep being served by the other, and every claim ends
/// final once clients retry with their keys.
#[tokio::test]
async fn the_gateway_spreads_over_two_events_instances_and_survives_losing_one() {
    use crate::process::ServeProcess;
    use crate::split::SECRET;

    let databases = SplitDatabases::fresh();
    let storage = databases.env();
    // A claim the dying instance recorded is resumed by the other once its lease runs out.
    let recovery = [("BESTOW_CLAIM_LEASE_MS", "2000"), ("BESTOW_RECOVERY_SWEEP_MS", "200")];
    let split = SplitDeployment::start_with(&storage, &recovery);
    let second_dir = tempfile::TempDir::new().unwrap();
    let mut second_env = vec![("BESTOW_INTERNAL_SECRET", SECRET), ("BESTOW_AUTH_URL", split.auth.base.as_str())];
    second_env.extend_from_slice(&storage);
    second_env.extend_from_slice(&recovery);
    let second = ServeProcess::start_command("events", second_dir.path(), &second_env);
    let both = format!("{},{}", split.events.base, second.base);
    let gateway_dir = tempfile::TempDir::new().unwrap();
    let gateway = ServeProcess::start_command(
        "gateway",
        gateway_dir.path(),
        &[
            ("BESTOW_INTERNAL_SECRET", SECRET),
            ("BESTOW_AUTH_URL", split.auth.base.as_str()),
            ("BESTOW_EVENTS_URL", both.as_str()),
            ("BESTOW_RATE_LIMIT_ADDRESS_PER_SEC", "0"),
            ("BESTOW_RATE_LIMIT_USER_PER_SEC", "0"),
        ],
    );
    let api = Client::new(&gateway.base);
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    let event_id = api.active_event(&admin, point_event("two instances", 10, -1)).await;
    let mut players = Vec::new();
    for i in 0..24 {
        players.push(api.player(&format!("spread{i}"), "player-password").await);
    }

    // Each player claims with one key, retrying on 5xx (a request in flight on the instance
    // that dies) until the claim is recorded, then waits for its final status.
    let mut claims = JoinSet::new();
    for (i, token) in players.iter().enumerate() {
        let (api, token, event_id) = (api.clone(), token.clone(), event_id.clone());
        let key = uuid::Uuid::new_v4().to_string();
        claims.spawn(async move {
            tokio::time::sleep(Duration::from_millis(40 * i as u64)).await;
            let deadline = Instant::now() + Duration::from_secs(20);
            let request_id = loop {
                let (status, request) = api.claim(&token, &event_id, &key).await;
                if status.is_success() {
                    break request["requestId"].as_str().unwrap().to_owned();
                }
                assert!(status.is_server_error(), "{status}: {request}");
                assert!(Instant::now() < deadline, "claim never recorded: {status}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            api.final_claim(&token, &request_id).await
        });
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second_output = second.stop();
    assert!(second_output.contains("/claims"), "the second instance served no claim before it died");

    // With one instance gone, requests go to the other: none fails.
    for _ in 0..20 {
        assert_eq!(api.get("/api/v1/events", Some(&admin)).await.0, StatusCode::OK);
    }
    let finals: Vec<serde_json::Value> = claims.join_all().await;
    for request in &finals {
        assert_eq!(request["status"], "SUCCESS_ALL_GRANTED", "{request}");
    }
    let (status, all) = api.get(&format!("/api/v1/claims?eventId={event_id}&limit=100"), Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["total"], 24, "one claim per player, none twice");
    drop(gateway);
    split.stop();
}
