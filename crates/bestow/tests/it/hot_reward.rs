//! A crowd on one limited reward, on the MongoDB-wire test server: the `bestow` binary
//! all-in-one in its own process, real HTTP, each claim with its own `Idempotency-Key`.
//!
//! What a live game meets at the start of a popular event: most answers are final within the
//! fast-path wait, the rest become final within seconds, nothing answered is lost, nobody is
//! paid twice, and `totalStock = remainingStock + Σ reserved` holds exactly, even when the
//! process is killed in the middle of the crowd. And in split mode, with two events processes
//! behind the gateway, one killed in the middle of the crowd: no player sees it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bestow_events::domain::saga::ClaimStatus;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::helpers::ADMIN_PASSWORD;
use crate::helpers::Client;
use crate::mongo::SplitDatabases;
use crate::process::ServeProcess;
use crate::split::{SECRET, SplitDeployment};

/// The server's fast-path wait, as configured by default.
const FAST_PATH_WAIT_MS: u64 = 2_000;
/// How soon after the last answer every claim must be final.
const SETTLED_WITHIN: Duration = Duration::from_secs(3);

/// `bestow serve` on fresh MongoDB databases, without rate limits (the crowd comes from one
/// address), with a short lease and a frequent sweep so that a crash is recovered promptly.
fn serve(dir: &std::path::Path, databases: &SplitDatabases, listen: &str) -> ServeProcess {
    let wait = FAST_PATH_WAIT_MS.to_string();
    let mut env = vec![
        ("BESTOW_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("BESTOW_LOG_LEVEL", "warn"),
        ("BESTOW_LISTEN", listen),
        ("BESTOW_RATE_LIMIT_ADDRESS_PER_SEC", "0"),
        ("BESTOW_RATE_LIMIT_USER_PER_SEC", "0"),
        ("BESTOW_CLAIM_WAIT_MS", wait.as_str()),
        ("BESTOW_CLAIM_LEASE_MS", "2000"),
        ("BESTOW_RECOVERY_SWEEP_MS", "200"),
    ];
    env.extend_from_slice(&databases.env());
    ServeProcess::start(dir, &env)
}

/// `serve` on a fresh data dir and fresh MongoDB databases.
fn serve_fresh() -> (tempfile::TempDir, SplitDatabases, ServeProcess) {
    let (dir, databases) = (tempfile::TempDir::new().unwrap(), SplitDatabases::fresh());
    let server = serve(dir.path(), &databases, "127.0.0.1:0");
    (dir, databases, server)
}

/// Players and one active event with one reward of `stock` units, one per player.
struct Crowd {
    api: Client,
    admin: String,
    event_id: String,
    stock: i64,
    /// Each player's id and token.
    players: Vec<(String, String)>,
}

impl Crowd {
    async fn gather(api: &Client, players: usize, stock: i64) -> Self {
        let admin = api.login("admin", ADMIN_PASSWORD).await;
        let now = chrono::Utc::now();
        let event = json!({
            "eventName": "Launch rush", "startDate": (now - chrono::Duration::hours(1)).to_rfc3339(),
            "endDate": (now + chrono::Duration::days(1)).to_rfc3339(),
            "rewards": [{ "rewardType": "ITEM", "rewardName": "Launch sword",
                          "details": { "itemId": "sword", "itemName": "Launch sword", "itemGrade": "EPIC" },
                          "quantityPerUser": 1, "totalStock": stock }],
        });
        let event_id = api.active_event(&admin, event).await;
        let slots = Arc::new(Semaphore::new(16));
        let mut joining = JoinSet::new();
        for i in 0..players {
            let (api, slots) = (api.clone(), slots.clone());
            joining.spawn(async move {
                let _slot = slots.acquire_owned().await.unwrap();
                let name = format!("rusher{i}");
                let body = json!({ "username": name, "password": "player-password" });
                let (status, user) = api.post("/api/v1/auth/register", None, body).await;
                assert_eq!(status, StatusCode::CREATED, "{user}");
                (i, user["id"].as_str().unwrap().to_owned(), api.login(&name, "player-password").await)
            });
        }
        let mut tokens = joining.join_all().await;
        tokens.sort();
        let players = tokens.into_iter().map(|(_, id, token)| (id, token)).collect();
        Self { api: api.clone(), admin, event_id, stock, players }
    }

    /// Every player fires `keys` claims at once, each with its own key, with at most
    /// `in_flight` claims outstanding. A claim whose answer is lost (connection refused or
    /// reset, a 5xx) is sent again with its key until answered, as a client would.
    async fn rush(&self, keys: usize, in_flight: usize, retry: bool) -> Vec<Answer> {
        let slots = Arc::new(Semaphore::new(in_flight));
        let mut claims = JoinSet::new();
        for (player, (_, token)) in self.players.iter().enumerate() {
            for _ in 0..keys {
                let (api, slots, token) = (self.api.clone(), slots.clone(), token.clone());
                let event_id = self.event_id.clone();
                claims.spawn(async move {
                    let _slot = slots.acquire_owned().await.unwrap();
                    let key = uuid::Uuid::new_v4().to_string();
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        let sent = api
                            .request(Method::POST, &format!("/api/v1/events/{event_id}/claims"), Some(&token))
                            .header("idempotency-key", &key)
                            .send()
                            .await;
                        let answered = match sent {
                            Ok(response) => Some((response.status(), response.json::<Value>().await.ok())),
                            Err(_) => None,
                        };
                        match answered {
                            Some((status, Some(body))) if !status.is_server_error() => {
                                return Answer { player, status, body, at: Instant::now() };
                            }
                            other => {
                                assert!(retry, "claim answered {other:?}");
                                assert!(Instant::now() < deadline, "claim never answered: {other:?}");
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                });
            }
        }
        claims.join_all().await
    }

    /// Every answered claim as stored `SETTLED_WITHIN` after the last answer, by request id.
    async fn settled(&self, answers: &[Answer]) -> HashMap<String, Value> {
        let last = answers.iter().map(|answer| answer.at).max().unwrap();
        tokio::time::sleep_until((last + SETTLED_WITHIN).into()).await;
        let mut claims = HashMap::new();
        for answer in answers {
            let request_id = answer.request_id();
            let (status, claim) = self.api.get(&format!("/api/v1/claims/{request_id}"), Some(&self.admin)).await;
            assert_eq!(status, StatusCode::OK, "answered claim {request_id} is not readable: {claim}");
            let claim_status = claim["status"].as_str().unwrap().parse::<ClaimStatus>().unwrap();
            assert!(claim_status.is_final(), "claim {request_id} not final {SETTLED_WITHIN:?} after the last answer");
            claims.insert(request_id.to_owned(), claim);
        }
        claims
    }

    /// `totalStock = remainingStock + Σ units reserved by the event's claims`, over every claim
    /// stored (answered or not); returns the number of successful claims.
    async fn check_stock(&self) -> usize {
        let event = self.api.event(&self.admin, &self.event_id).await;
        let reward = &event.rewards[0];
        assert_eq!(reward.total_stock, Some(self.stock));
        let remaining = reward.remaining_stock.unwrap();
        let (mut reserved, mut granted, mut page) = (0, 0, 1);
        loop {
            let claims =
                self.api.claims(&self.admin, &format!("eventId={}&limit=100&page={page}", self.event_id)).await;
            for claim in &claims.items {
                if claim.rewards_to_process.first().is_some_and(|reward| reward.stock_reserved) {
                    reserved += 1;
                }
                if claim.status == ClaimStatus::SuccessAllGranted {
                    granted += 1;
                }
            }
            if claims.items.len() < 100 {
                break;
            }
            page += 1;
        }
        assert_eq!(remaining + reserved, self.stock, "remaining {remaining} + reserved {reserved} != total");
        granted
    }

    /// Grants in the players' wallets: at most one each; returns the total.
    async fn grants(&self) -> u64 {
        let mut total = 0;
        for (user_id, _) in &self.players {
            let wallet = self.api.wallet(&self.admin, user_id).await;
            let grants = u64::try_from(wallet.grants).unwrap();
            assert!(grants <= 1, "a player was paid {grants} times: {wallet:?}");
            total += grants;
        }
        total
    }

    /// Checks that exactly `winners` claims succeeded, and that stock and wallets agree.
    async fn assert_paid(&self, claims: &HashMap<String, Value>, winners: usize) {
        assert_eq!(count(claims, "SUCCESS_ALL_GRANTED"), winners);
        assert_eq!(self.check_stock().await, winners);
        assert_eq!(self.grants().await, u64::try_from(winners).unwrap());
    }
}

/// One claim's answer.
struct Answer {
    player: usize,
    status: StatusCode,
    body: Value,
    at: Instant,
}

impl Answer {
    fn request_id(&self) -> &str {
        self.body["requestId"].as_str().unwrap_or_else(|| panic!("no requestId in {}: {}", self.status, self.body))
    }
}

fn count(claims: &HashMap<String, Value>, status: &str) -> usize {
    claims.values().filter(|claim| claim["status"] == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crowd_on_a_hot_reward_is_answered_final_and_loses_nothing_on_mongodb() {
    let (_dir, _databases, server) = serve_fresh();
    let crowd = Crowd::gather(&Client::new(&server.base), 200, 20).await;

    let answers = crowd.rush(1, 64, false).await;
    let final_answers = answers.iter().filter(|answer| answer.status == StatusCode::CREATED).count();
    assert!(answers.iter().all(|answer| matches!(answer.status.as_u16(), 201 | 202)));
    assert!(final_answers * 10 >= answers.len() * 9, "{final_answers} of {} answers final in time", answers.len());
    let claims = crowd.settled(&answers).await;
    assert_eq!(count(&claims, "INVENTORY_ALLOCATION_FAILED_OUT_OF_STOCK"), 180);
    crowd.assert_paid(&claims, 20).await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn double_tapping_players_win_once_each_without_a_5xx_on_mongodb() {
    let (_dir, _databases, server) = serve_fresh();
    let crowd = Crowd::gather(&Client::new(&server.base), 200, 500).await;

    let answers = crowd.rush(5, 80, false).await;
    assert_eq!(answers.len(), 1_000);
    let claims = crowd.settled(&answers).await;
    let mut wins = vec![0; crowd.players.len()];
    for answer in &answers {
        if claims[answer.request_id()]["status"] == "SUCCESS_ALL_GRANTED" {
            wins[answer.player] += 1;
        }
    }
    assert!(wins.iter().all(|&won| won == 1), "wins per player: {wins:?}");
    assert_eq!(count(&claims, "VALIDATION_FAILED_ALREADY_CLAIMED"), 800);
    crowd.assert_paid(&claims, 200).await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crowd_survives_the_process_being_killed_in_the_middle_on_mongodb() {
    let (dir, databases, server) = serve_fresh();
    let listen = server.base.trim_start_matches("http://").to_owned();
    let crowd = Arc::new(Crowd::gather(&Client::new(&server.base), 200, 20).await);

    let rushing = {
        let crowd = crowd.clone();
        tokio::spawn(async move { crowd.rush(1, 64, true).await })
    };
    // Kill the process (SIGKILL) while claims are in flight, then start it again on the same
    // port and databases: the clients' retries with their keys reach the new process.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let output = server.stop();
    assert!(!output.contains("panicked"), "{output}");
    let _restarted = serve(dir.path(), &databases, &listen);
    let answers = rushing.await.unwrap();

    let mut keys = HashMap::new();
    for answer in &answers {
        assert!(keys.insert(answer.request_id().to_owned(), answer.player).is_none(), "two keys, one request");
    }
    let claims = crowd.settled(&answers).await;
    let granted = count(&claims, "SUCCESS_ALL_GRANTED");
    assert_eq!(crowd.check_stock().await, granted);
    assert_eq!(crowd.grants().await, u64::try_from(granted).unwrap(), "one grant per successful claim");
    assert!(granted <= 20);
}

/// Split mode on fresh MongoDB databases: auth, two events processes sharing the event
/// database, and a gateway spreading over both. The events processes and the gateway log
/// warnings only, but for the events process `doomed`, whose request log tells when it is
/// serving claims.
struct Replicated {
    split: SplitDeployment,
    doomed: ServeProcess,
    gateway: ServeProcess,
    _dirs: [tempfile::TempDir; 2],
    _databases: SplitDatabases,
}

impl Replicated {
    fn start() -> Self {
        let databases = SplitDatabases::fresh();
        let storage = databases.env();
        let wait = FAST_PATH_WAIT_MS.to_string();
        // A claim the doomed process recorded is resumed by the other once its lease runs out.
        let settings = [
            ("BESTOW_CLAIM_WAIT_MS", wait.as_str()),
            ("BESTOW_CLAIM_LEASE_MS", "2000"),
            ("BESTOW_RECOVERY_SWEEP_MS", "200"),
        ];
        let quiet = [settings.as_slice(), &[("BESTOW_LOG_LEVEL", "warn")]].concat();
        let split = SplitDeployment::start_with(&storage, &quiet);
        let dirs = [tempfile::TempDir::new().unwrap(), tempfile::TempDir::new().unwrap()];
        let mut doomed_env = vec![("BESTOW_INTERNAL_SECRET", SECRET), ("BESTOW_AUTH_URL", split.auth.base.as_str())];
        doomed_env.extend_from_slice(&storage);
        doomed_env.extend_from_slice(&settings);
        doomed_env.push(("BESTOW_LOG_LEVEL", "info"));
        let doomed = ServeProcess::start_command("events", dirs[0].path(), &doomed_env);
        let both = format!("{},{}", split.events.base, doomed.base);
        let gateway = ServeProcess::start_command(
            "gateway",
            dirs[1].path(),
            &[
                ("BESTOW_INTERNAL_SECRET", SECRET),
                ("BESTOW_AUTH_URL", split.auth.base.as_str()),
                ("BESTOW_EVENTS_URL", both.as_str()),
                ("BESTOW_RATE_LIMIT_ADDRESS_PER_SEC", "0"),
                ("BESTOW_RATE_LIMIT_USER_PER_SEC", "0"),
                ("BESTOW_LOG_LEVEL", "warn"),
            ],
        );
        Self { split, doomed, gateway, _dirs: dirs, _databases: databases }
    }
}

/// The `gateway_resends_total` of the gateway at `base` for `outcome`, summed over upstreams.
async fn resends(base: &str, outcome: &str) -> f64 {
    let metrics = bestow_core::outbound::client()
        .unwrap()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let label = format!("outcome=\"{outcome}\"");
    metrics
        .lines()
        .filter(|line| line.starts_with("gateway_resends_total{") && line.contains(&label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crowd_through_the_gateway_sees_no_5xx_when_an_events_replica_is_killed_on_mongodb() {
    const PLAYERS: usize = 120;
    let started = Instant::now();
    let Replicated { split, mut doomed, gateway, _dirs, _databases } = Replicated::start();
    let crowd = Arc::new(Crowd::gather(&Client::new(&gateway.base), PLAYERS, PLAYERS as i64).await);
    let replicated = Instant::now();

    // One claim per player, each with its own key, never retried by the client: an answer
    // that is a 5xx or a lost connection fails the test.
    let rushing = {
        let crowd = crowd.clone();
        tokio::spawn(async move { crowd.rush(1, 32, false).await })
    };
    // SIGKILL the doomed process once it has answered a few claims, so that it dies with
    // others under way.
    let doomed = tokio::task::spawn_blocking(move || {
        for _ in 0..8 {
            doomed.wait_for("/claims");
        }
        doomed
    })
    .await
    .unwrap();
    let killed_at = Instant::now();
    let output = doomed.stop();
    assert!(!output.contains("panicked"), "{output}");
    let answers = rushing.await.unwrap();
    let answered = Instant::now();

    assert_eq!(answers.len(), PLAYERS);
    assert!(answers.iter().any(|answer| answer.at > killed_at), "the doomed process died before the crowd ended");
    let claims = crowd.settled(&answers).await;
    crowd.assert_paid(&claims, PLAYERS).await;
    let mut wins = vec![0; PLAYERS];
    for answer in &answers {
        if claims[answer.request_id()]["status"] == "SUCCESS_ALL_GRANTED" {
            wins[answer.player] += 1;
        }
    }
    assert!(wins.iter().all(|&won| won == 1), "wins per player: {wins:?}");

    // The claims the doomed process had under way were sent on by the gateway.
    let (resent, failed) = (resends(&gateway.base, "answered").await, resends(&gateway.base, "failed").await);
    assert!(resent >= 1.0, "no claim was under way on the killed process: the test proves nothing");
    assert_eq!(failed, 0.0);
    eprintln!(
        "{PLAYERS} players: set up in {:?}, answered {:?} after the first claim ({:?} after the kill), \
         {resent} resent, settled and checked {:?} after the last answer; {:?} in all",
        replicated - started,
        answered - replicated,
        answered - killed_at,
        answered.elapsed(),
        started.elapsed()
    );
    drop(gateway);
    split.stop();
}
