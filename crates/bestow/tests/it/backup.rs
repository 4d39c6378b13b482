//! `bestow admin backup` / `restore` under claim load: a backup taken from a running
//! `bestow serve` while players claim (some claims held mid-saga by a granter that is down,
//! then hangs, so the backup holds claims leased for 15 s to the running server) is restored
//! into an empty data dir; restore releases those leases, and a server started on it signs in
//! the same accounts, accepts tokens signed before the backup, finishes every claim the backup
//! caught under way within 3 s of its start, and keeps the stock invariant. The running server
//! reports the backup's time (`bestow_backup_last_success_timestamp_seconds`).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bestow_events::domain::saga::ClaimStatus;
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::task::JoinSet;

use crate::granter::{Faults, TestGranter};
use crate::helpers::{Client, point_event};
use crate::process::{ServeProcess, granting_envs};

const BINARY: &str = env!("CARGO_BIN_EXE_bestow");
pub(crate) const ADMIN_PASSWORD: &str = "backup-admin-password";
const PLAYER_PASSWORD: &str = "backup-player-password";
const PLAYERS: usize = 40;
/// Fewer units than players: the last claims run out of stock.
const STOCK: i64 = 30;
/// The backup-age gauge: when the newest recorded backup finished.
pub(crate) const GAUGE: &str = "bestow_backup_last_success_timestamp_seconds";

/// A granting server with long leases and quick recovery: claims caught under way in a backup
/// finish after a restore only if their leases were released.
pub(crate) fn envs(granter_url: &str) -> Vec<(&'static str, String)> {
    let recovery = [
        ("BESTOW_CLAIM_WAIT_MS", "100"),
        ("BESTOW_CLAIM_LEASE_MS", "15000"),
        ("BESTOW_RECOVERY_SWEEP_MS", "100"),
        ("BESTOW_SAGA_RETRY_BASE_MS", "50"),
        ("BESTOW_SAGA_MAX_ATTEMPTS", "30"),
    ];
    granting_envs(ADMIN_PASSWORD, granter_url, &recovery)
}

pub(crate) fn start(dir: &Path, envs: &[(&'static str, String)]) -> ServeProcess {
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ServeProcess::start(dir, &envs)
}

/// `bestow admin <args>` on `data_dir`.
fn admin(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(BINARY).arg("admin").args(args).env_clear().env("BESTOW_DATA_DIR", data_dir).output().unwrap()
}

/// When the lease of each claim under way in `database` that holds one runs out.
fn lease_expiries(database: &Path) -> Vec<DateTime<Utc>> {
    let connection = rusqlite::Connection::open(database).unwrap();
    let mut statement = connection
        .prepare("SELECT status, leaseExpiresAt FROM user_reward_requests WHERE leaseOwner IS NOT NULL")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .filter(|(status, _)| !status.parse::<ClaimStatus>().unwrap().is_final())
        .map(|(_, expires)| expires.parse().unwrap())
        .collect()
}

fn claim_statuses(database: &Path) -> Vec<ClaimStatus> {
    let connection = rusqlite::Connection::open(database).unwrap();
    let mut statement = connection.prepare("SELECT status FROM user_reward_requests").unwrap();
    statement.query_map([], |row| row.get::<_, String>(0)).unwrap().map(|s| s.unwrap().parse().unwrap()).collect()
}

/// The value of the gauge on `/metrics` once it is there (sampled every 5 s).
/// The units of stock the listed claims hold reserved and have not returned.
pub(crate) fn units_reserved(claims: &[serde_json::Value]) -> i64 {
    claims
        .iter()
        .flat_map(|claim| claim["rewardsToProcess"].as_array().unwrap().iter())
        .filter(|reward| reward["stockReserved"] == true)
        .map(|reward| reward["rewardDefinition"]["quantityPerUser"].as_i64().unwrap())
        .sum()
}

pub(crate) async fn backup_gauge(api: &Client) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let metrics = api.http().get(format!("{}/metrics", api.base())).send().await.unwrap().text().await.unwrap();
        let value = metrics
            .lines()
            .find(|line| line.starts_with(GAUGE))
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok());
        if let Some(value) = value {
            return value;
        }
        assert!(Instant::now() < deadline, "{GAUGE} never appeared:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn claim(client: &reqwest::Client, base: &str, event_id: &str, player: &str, key: &str) {
    let response = client
        .post(format!("{base}/api/v1/events/{event_id}/claims"))
        .bearer_auth(player)
        .header("idempotency-key", key)
        .send()
        .await
        .unwrap();
    assert!(matches!(response.status().as_u16(), 200..=202), "claim answered {}", response.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_claim_load_restores_to_a_consistent_server() {
    let (granter, url) = TestGranter::start(Faults::default()).await;
    let source = tempfile::TempDir::new().unwrap();
    let server = start(source.path(), &envs(&url));
    let (base, client) = (server.base.clone(), bestow_core::outbound::client().unwrap());
    let api = Client::new(&base);

    let admin_token = api.login("admin", ADMIN_PASSWORD).await;
    let event_id = api.active_event(&admin_token, point_event("backup under load", 5, STOCK)).await;
    let mut players = Vec::new();
    for n in 0..PLAYERS {
        let name = format!("player{n}");
        let body = json!({ "username": name, "password": PLAYER_PASSWORD });
        api.expect(StatusCode::CREATED, Method::POST, "/api/v1/auth/register", None, Some(body)).await;
        players.push(api.login(&name, PLAYER_PASSWORD).await);
    }

    let mut claims = JoinSet::new();
    let send = |claims: &mut JoinSet<()>, range: std::ops::Range<usize>| {
        for n in range {
            let (client, base, event_id, player) = (client.clone(), base.clone(), event_id.clone(), players[n].clone());
            claims.spawn(async move {
                tokio::time::sleep(Duration::from_millis(15 * (n as u64 % 20))).await;
                claim(&client, &base, &event_id, &player, &uuid::Uuid::new_v4().to_string()).await;
            });
        }
    };
    // A few claims end before the backup; then the studio goes down, and the claims that
    // reserve stock wait in PENDING_REWARD_GRANT, retrying.
    send(&mut claims, 0..5);
    while claims.join_next().await.is_some() {}
    for _ in 0..100 {
        if granter.ledger().granted.len() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    granter.set_faults(Faults { grants_down: true, ..Faults::default() });
    send(&mut claims, 5..PLAYERS / 2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Then it hangs: each grant call is held for 2 s, and the claim making it keeps its lease
    // (15 s) meanwhile. The backup catches those leases; nothing can release them but restore.
    granter.set_faults(Faults { slow_percent: 100, ..Faults::default() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The second half claims while the backup runs.
    send(&mut claims, PLAYERS / 2..PLAYERS);
    let backups = tempfile::TempDir::new().unwrap();
    let backup_dir = backups.path().join("under-load");
    let before = Utc::now().timestamp_millis() as f64 / 1000.0;
    let backed_up = {
        let (data, target) = (source.path().to_owned(), backup_dir.clone());
        tokio::task::spawn_blocking(move || admin(&data, &["backup", "--to", target.to_str().unwrap()])).await.unwrap()
    };
    assert!(backed_up.status.success(), "backup failed: {}", String::from_utf8_lossy(&backed_up.stderr));
    let report = String::from_utf8_lossy(&backed_up.stdout);
    assert!(report.contains("backup complete"), "{report}");
    for file in ["auth.db", "event.db", "signing-keys.json", bestow::backup::MANIFEST] {
        assert!(backup_dir.join(file).is_file(), "{file} in the backup");
    }
    assert!(!backup_dir.join("event.db-wal").exists(), "the copy is one self-contained file");
    let after = Utc::now().timestamp_millis() as f64 / 1000.0;
    claims.join_all().await;
    granter.set_faults(Faults::default());

    let in_backup = claim_statuses(&backup_dir.join("event.db"));
    let under_way = in_backup.iter().filter(|status| !status.is_final()).count();
    assert!(in_backup.len() > under_way, "the backup holds finished claims too: {in_backup:?}");
    assert!(under_way > 0, "the backup caught claims mid-saga: {in_backup:?}");
    let leases = lease_expiries(&backup_dir.join("event.db"));
    assert!(!leases.is_empty(), "the backup caught claims leased to the running server: {in_backup:?}");
    eprintln!("the backup holds {} claims, {under_way} of them under way, {} leased", in_backup.len(), leases.len());

    // A backup is never written over anything, and restore wants a complete backup and an
    // empty data dir.
    let refused = admin(source.path(), &["backup", "--to", backup_dir.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not empty"));
    let incomplete = backups.path().join("incomplete");
    std::fs::create_dir(&incomplete).unwrap();
    std::fs::copy(backup_dir.join("event.db"), incomplete.join("event.db")).unwrap();
    let refused = admin(&backups.path().join("other"), &["restore", "--from", incomplete.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a complete backup"));
    let refused = admin(source.path(), &["restore", "--from", backup_dir.to_str().unwrap()]);
    assert!(!refused.status.success(), "restore over a live data dir");

    let restored = tempfile::TempDir::new().unwrap();
    let data_dir = restored.path().join("data");
    let backed_up_events = std::fs::read(backup_dir.join("event.db")).unwrap();
    let output = admin(&data_dir, &["restore", "--from", backup_dir.to_str().unwrap()]);
    assert!(output.status.success(), "restore failed: {}", String::from_utf8_lossy(&output.stderr));
    let report = String::from_utf8_lossy(&output.stdout);
    let released = format!("released the leases of {} claims under way", leases.len());
    assert!(report.contains(&released), "{report}");
    assert!(std::fs::read(backup_dir.join("event.db")).unwrap() == backed_up_events, "the backup is left as it was");
    let restored_server = start(&data_dir, &envs(&url));
    let (ready, ready_at) = (Instant::now(), Utc::now());
    // Without the release, these claims would wait for their leases, well past the 3 s.
    let soonest = leases.iter().min().unwrap();
    assert!(*soonest > ready_at + chrono::TimeDelta::seconds(5), "a lease of the backup ends at {soonest}");
    let base = restored_server.base.clone();
    let api = Client::new(&base);

    // The signing keys came along: a token issued before the backup still verifies.
    let me = client.get(format!("{base}/api/v1/auth/me")).bearer_auth(&players[0]).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let admin_token = api.login("admin", ADMIN_PASSWORD).await;

    // Recovery finishes every claim the backup caught under way, within 3 s of the start.
    let list = format!("/api/v1/claims?eventId={event_id}&limit=100");
    let (listed, elapsed) = loop {
        let listed = api.expect(StatusCode::OK, Method::GET, &list, Some(&admin_token), None).await;
        let elapsed = ready.elapsed();
        let statuses: Vec<ClaimStatus> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["status"].as_str().unwrap().parse().unwrap())
            .collect();
        if statuses.iter().all(|status| status.is_final()) {
            break (listed, elapsed);
        }
        assert!(
            elapsed < Duration::from_secs(3),
            "claims still under way {elapsed:?} after the restored server started: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("every claim final {elapsed:?} after the restored server started");
    assert!(
        elapsed <= Duration::from_secs(3),
        "the claims became final only {elapsed:?} after the restored server started"
    );
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), in_backup.len(), "the restored server holds exactly the backed-up claims");
    for claim in items {
        let status: ClaimStatus = claim["status"].as_str().unwrap().parse().unwrap();
        assert!(status.is_final(), "still under way after recovery: {claim}");
        assert_ne!(status, ClaimStatus::CompensationFailedManualInterventionRequired, "{claim}");
    }

    // totalStock = remainingStock + Σ units reserved and not returned.
    let event =
        api.expect(StatusCode::OK, Method::GET, &format!("/api/v1/events/{event_id}"), Some(&admin_token), None).await;
    let reserved = units_reserved(items);
    let reward = &event["rewards"][0];
    assert_eq!(reward["totalStock"].as_i64().unwrap(), STOCK);
    assert_eq!(reward["remainingStock"].as_i64().unwrap() + reserved, STOCK, "stock invariant: {event}");
    let granted = items.iter().filter(|c| c["status"] == "SUCCESS_ALL_GRANTED").count();
    assert_eq!(granted as i64, reserved, "every reserved unit belongs to a granted claim");
    assert!(granted > 0, "recovery granted the claims caught under way");
    {
        let ledger = granter.ledger();
        assert!(ledger.applications.values().all(|&n| n == 1), "a grant was applied twice");
    }
    // The server backed up reads the record the backup left in its event.db: the backup-age
    // signal (sampled every 5 s, hence checked last).
    let gauge = backup_gauge(&Client::new(&server.base)).await;
    assert!(before - 1.0 <= gauge && gauge <= after + 1.0, "{GAUGE} = {gauge}, backup between {before} and {after}");
    restored_server.stop();
    server.stop();
}
