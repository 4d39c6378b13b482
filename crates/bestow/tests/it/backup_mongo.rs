//! The restore drill on MongoDB (the test server `BESTOW_TEST_MONGODB_URI` names): a `bestow
//! serve` on fresh databases runs an event of limited stock; players claim, and while the
//! studio hangs (claims held mid-saga, leased to the running server) `bestow admin backup`
//! dumps both databases. The server reports the backup's time on `/metrics`. Then the
//! databases are dropped; a dump with an edited file is refused without writing anything;
//! the honest dump restores (releasing the leases it caught), and a restore over databases
//! that hold documents is refused. A server started on the restored databases signs in the
//! same accounts, accepts a token signed before the backup, holds the same events, claims and
//! users, finishes the claims the dump caught under way, and keeps
//! `totalStock = remainingStock + Σ reserved`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bestow_events::domain::saga::ClaimStatus;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::backup::{ADMIN_PASSWORD, GAUGE, backup_gauge, start, units_reserved};
use crate::granter::{Faults, TestGranter};
use crate::helpers::{Client, point_event};
use crate::mongo::SplitDatabases;

const BINARY: &str = env!("CARGO_BIN_EXE_bestow");
const PLAYER_PASSWORD: &str = "drill-player-password";
const PLAYERS: usize = 12;
/// Fewer units than players: the last claims run out of stock.
const STOCK: i64 = 8;

/// The drill's databases: `BESTOW_*` settings and the two names.
struct Databases {
    env: Vec<(&'static str, String)>,
    auth: String,
    event: String,
}

impl Databases {
    fn fresh() -> Self {
        let env: Vec<(&'static str, String)> =
            SplitDatabases::fresh().env().iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let named = |key: &str| env.iter().find(|(k, _)| *k == key).unwrap().1.clone();
        let (auth, event) = (named("BESTOW_AUTH_DATABASE"), named("BESTOW_EVENT_DATABASE"));
        Self { env, auth, event }
    }

    async fn client() -> mongodb::Client {
        mongodb::Client::with_uri_str(crate::mongo::mongodb_uri()).await.unwrap()
    }

    async fn drop_both(&self) {
        let client = Self::client().await;
        for name in [&self.auth, &self.event] {
            client.database(name).drop().await.unwrap();
        }
    }

    /// Documents held in either database.
    async fn documents(&self) -> u64 {
        let client = Self::client().await;
        let mut total = 0;
        for name in [&self.auth, &self.event] {
            let database = client.database(name);
            for collection in database.list_collection_names().await.unwrap() {
                let collection = database.collection::<mongodb::bson::Document>(&collection);
                total += collection.count_documents(mongodb::bson::doc! {}).await.unwrap();
            }
        }
        total
    }
}

fn serve_envs(databases: &Databases, granter_url: &str) -> Vec<(&'static str, String)> {
    let mut envs = crate::backup::envs(granter_url);
    envs.extend(databases.env.iter().cloned());
    envs
}

/// `bestow admin <args>` on the data dir `data_dir` and the drill's databases.
async fn admin(databases: &Databases, data_dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(BINARY);
    command.arg("admin").args(args).env_clear().env("BESTOW_DATA_DIR", data_dir).env("BESTOW_BCRYPT_COST", "4");
    command.envs(databases.env.iter().map(|(k, v)| (*k, v.as_str())));
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

fn succeeded(output: &Output) -> String {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn refused(output: &Output, reasons: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "accepted: {}", String::from_utf8_lossy(&output.stdout));
    for reason in reasons {
        assert!(stderr.contains(reason), "{reason:?} not in: {stderr}");
    }
}

/// The documents of a dump file, as plain JSON.
fn dumped(backup: &Path, file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(backup.join(file)).unwrap();
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_drill_on_mongodb_brings_back_accounts_keys_events_and_claims() {
    let (granter, url) = TestGranter::start(Faults::default()).await;
    let databases = Databases::fresh();
    let envs = serve_envs(&databases, &url);
    let source = tempfile::TempDir::new().unwrap();
    let server = start(source.path(), &envs);
    let api = Client::new(&server.base);

    let admin_token = api.login("admin", ADMIN_PASSWORD).await;
    let event_id = api.active_event(&admin_token, point_event("restore drill", 5, STOCK)).await;
    let mut players = Vec::new();
    for n in 0..PLAYERS {
        players.push(api.player(&format!("drill{n}"), PLAYER_PASSWORD).await);
    }
    let claim_all = |claims: &mut JoinSet<()>, range: std::ops::Range<usize>| {
        for n in range {
            let (api, event_id, player) = (api.clone(), event_id.clone(), players[n].clone());
            claims.spawn(async move {
                tokio::time::sleep(Duration::from_millis(20 * (n as u64 % 6))).await;
                let (status, claim) = api.claim(&player, &event_id, &uuid::Uuid::new_v4().to_string()).await;
                assert!(status.is_success(), "claim answered {status}: {claim}");
            });
        }
    };
    // A few claims end before the backup; then the studio hangs (each grant call outlives the
    // client's timeout), so the others stay in PENDING_REWARD_GRANT, leased while they call.
    let mut claims = JoinSet::new();
    claim_all(&mut claims, 0..3);
    claims.join_all().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while granter.ledger().granted.len() < 3 {
        assert!(Instant::now() < deadline, "the first claims were never granted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    granter.set_faults(Faults { slow_percent: 100, ..Faults::default() });
    let mut claims = JoinSet::new();
    claim_all(&mut claims, 3..PLAYERS);
    claims.join_all().await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let backups = tempfile::TempDir::new().unwrap();
    let backup = backups.path().join("drill");
    let before = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let report = succeeded(&admin(&databases, source.path(), &["backup", "--to", backup.to_str().unwrap()]).await);
    let after = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    assert!(report.contains("backup complete") && report.contains("recorded the backup's success"), "{report}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join(bestow::backup::MANIFEST)).unwrap()).unwrap();
    assert_eq!(manifest["storage"], "mongodb");
    let names: Vec<&str> = manifest["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    for file in ["auth_db.users.jsonl", "auth_db.refresh_tokens.jsonl", "event_db.events.jsonl", "signing-keys.json"] {
        assert!(names.contains(&file) && backup.join(file).is_file(), "{file} in the backup: {names:?}");
    }
    // The running server reads the record the backup left: the backup-age signal.
    let gauge = backup_gauge(&api).await;
    assert!(before - 1.0 <= gauge && gauge <= after + 1.0, "{GAUGE} = {gauge}, backup between {before} and {after}");

    // What the dump caught: every account, finished claims and claims leased mid-saga.
    let users = dumped(&backup, "auth_db.users.jsonl");
    assert_eq!(users.len(), PLAYERS + 1, "the players and the admin");
    let requests = dumped(&backup, "event_db.user_reward_requests.jsonl");
    let status = |request: &Value| request["status"].as_str().unwrap().parse::<ClaimStatus>().unwrap();
    let under_way = requests.iter().filter(|r| !status(r).is_final()).count();
    let leased = requests.iter().filter(|r| !status(r).is_final() && r["leaseOwner"].is_string()).count();
    assert!(requests.len() > under_way && under_way > 0, "finished and unfinished claims: {requests:?}");
    assert!(leased > 0, "the dump caught claims leased to the running server: {requests:?}");
    eprintln!("the dump holds {} claims, {under_way} under way, {leased} leased", requests.len());
    granter.set_faults(Faults::default());
    drop(server);

    // The disaster: both databases are gone.
    databases.drop_both().await;
    assert_eq!(databases.documents().await, 0);

    // An edited dump file (a player made ADMIN) is refused before anything is written.
    let edited = backups.path().join("edited");
    std::fs::create_dir(&edited).unwrap();
    for name in &names {
        std::fs::copy(backup.join(name), edited.join(name)).unwrap();
    }
    std::fs::copy(backup.join(bestow::backup::MANIFEST), edited.join(bestow::backup::MANIFEST)).unwrap();
    let accounts = std::fs::read_to_string(edited.join("auth_db.users.jsonl")).unwrap();
    let promoted = accounts.replacen(r#""roles":["USER"]"#, r#""roles":["ADMIN"]"#, 1);
    assert_ne!(accounts, promoted);
    // …and its size in the manifest made to match, as whoever edits a file does next.
    let manifest_path = edited.join(bestow::backup::MANIFEST);
    let mut sealed: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for entry in sealed["files"].as_array_mut().unwrap() {
        if entry["name"] == "auth_db.users.jsonl" {
            entry["bytes"] = json!(promoted.len());
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&sealed).unwrap()).unwrap();
    std::fs::write(edited.join("auth_db.users.jsonl"), promoted).unwrap();
    let restored = tempfile::TempDir::new().unwrap();
    let data_dir = restored.path().join("data");
    refused(
        &admin(&databases, &data_dir, &["restore", "--from", edited.to_str().unwrap()]).await,
        &["auth_db.users.jsonl", "checksum"],
    );
    assert_eq!(databases.documents().await, 0, "nothing restored");
    assert!(!data_dir.exists(), "nothing written");

    let report = succeeded(&admin(&databases, &data_dir, &["restore", "--from", backup.to_str().unwrap()]).await);
    assert!(report.contains(&format!("released the leases of {leased} claims under way")), "{report}");
    let again = restored.path().join("again");
    refused(&admin(&databases, &again, &["restore", "--from", backup.to_str().unwrap()]).await, &["not empty"]);

    let restored_server = start(&data_dir, &envs);
    let (started, started_at) = (Instant::now(), chrono::Utc::now().timestamp_millis());
    // Without the release, the claims caught under way would wait for these leases.
    let soonest = requests
        .iter()
        .filter(|r| !status(r).is_final() && r["leaseOwner"].is_string())
        .map(|r| r["leaseExpiresAt"]["$date"]["$numberLong"].as_str().unwrap().parse::<i64>().unwrap())
        .min()
        .unwrap();
    assert!(soonest > started_at + 8_000, "a lease of the dump ends {} ms after the start", soonest - started_at);
    let api = Client::new(&restored_server.base);
    // The signing keys came along: a token issued before the backup still verifies.
    api.expect(StatusCode::OK, Method::GET, "/api/v1/auth/me", Some(&players[0]), None).await;
    let admin_token = api.login("admin", ADMIN_PASSWORD).await;
    api.login("drill7", PLAYER_PASSWORD).await;
    let listed = api.expect(StatusCode::OK, Method::GET, "/api/v1/users?limit=100", Some(&admin_token), None).await;
    assert_eq!(listed["total"], json!(PLAYERS + 1), "{listed}");
    let event =
        api.expect(StatusCode::OK, Method::GET, &format!("/api/v1/events/{event_id}"), Some(&admin_token), None).await;
    assert_eq!((event["eventName"].as_str(), event["status"].as_str()), (Some("restore drill"), Some("ACTIVE")));

    // Recovery finishes every claim the dump caught under way (their leases were released)
    // and the stock adds up: totalStock = remainingStock + Σ units reserved.
    let list = format!("/api/v1/claims?eventId={event_id}&limit=100");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (items, remaining, reserved) = loop {
        let listed = api.expect(StatusCode::OK, Method::GET, &list, Some(&admin_token), None).await;
        let items = listed["items"].as_array().unwrap().clone();
        let event = api
            .expect(StatusCode::OK, Method::GET, &format!("/api/v1/events/{event_id}"), Some(&admin_token), None)
            .await;
        let remaining = event["rewards"][0]["remainingStock"].as_i64().unwrap();
        let reserved = units_reserved(&items);
        let all_final = items.iter().all(|claim| status(claim).is_final());
        if all_final && remaining + reserved == STOCK {
            break (items, remaining, reserved);
        }
        assert!(
            Instant::now() < deadline,
            "after 30 s: final {all_final}, remaining {remaining} + reserved {reserved} != {STOCK}: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(started.elapsed() < Duration::from_secs(8), "recovery waited for the leases: {:?}", started.elapsed());
    eprintln!(
        "every claim final and the stock whole ({remaining} left, {reserved} reserved) {:?} after the restored \
         server started",
        started.elapsed()
    );
    let mut ids: Vec<&str> = items.iter().map(|c| c["requestId"].as_str().unwrap()).collect();
    let mut backed_up: Vec<&str> = requests.iter().map(|r| r["requestId"].as_str().unwrap()).collect();
    ids.sort_unstable();
    backed_up.sort_unstable();
    assert_eq!(ids, backed_up, "the restored server holds exactly the backed-up claims");
    for claim in &items {
        assert_ne!(status(claim), ClaimStatus::CompensationFailedManualInterventionRequired, "{claim}");
    }
    let granted = items.iter().filter(|c| c["status"] == "SUCCESS_ALL_GRANTED").count();
    assert_eq!(granted as i64, reserved, "every reserved unit belongs to a granted claim");
    assert!(granter.ledger().applications.values().all(|&n| n == 1), "a grant was applied twice");
    drop(restored_server);
    databases.drop_both().await;
}
