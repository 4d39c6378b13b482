//! `bestow-bench`: whole-system benchmarks against a real `bestow serve` process.
//!
//! Run through `scripts/bench`, which builds the release binaries first. Each benchmark starts
//! its own server on a free loopback port with a temporary data dir, measures, prints a
//! report, and stops the server.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bestow_events::domain::saga::ClaimStatus;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

mod audiences;
mod console;
mod gateway;

#[derive(Debug, Parser)]
#[command(name = "bestow-bench", about = "Benchmarks of a real bestow server")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Logins/s at a production bcrypt cost against the raw bcrypt-verify rate, and the
    /// latency of `GET /api/v1/auth/me` while logins saturate the CPU.
    Auth {
        /// bcrypt cost of the account's hash.
        #[arg(long, default_value_t = 12)]
        cost: u32,
        /// Seconds of each measurement.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        /// Concurrent login clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
    },
    /// Activities/s through `POST /api/v1/activities` in batches of 1000 with a service key.
    Ingest {
        /// Batches of 1000 activities to send.
        #[arg(long, default_value_t = 300)]
        batches: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 4)]
        clients: usize,
    },
    /// Latency of `GET /api/v1/events/{id}/eligibility` for a player with many activities, all
    /// relevant to the event's conditions, in a store holding many more.
    Eligibility {
        /// Activities in the store, the player's included (pushed in batches of 1000).
        #[arg(long, default_value_t = 1_000_000)]
        total: usize,
        /// Activities of the measured player.
        #[arg(long, default_value_t = 10_000)]
        player_activities: usize,
        /// Sequential eligibility requests measured.
        #[arg(long, default_value_t = 500)]
        requests: usize,
        /// Concurrent clients while seeding.
        #[arg(long, default_value_t = 4)]
        clients: usize,
    },
    /// Latency of the player's event screen, `GET /api/v1/me/events`: every running event with
    /// its tiers' progress, for a player with many activities in a store holding many more.
    EventScreen {
        /// Activities in the store, the player's included (pushed in batches of 1000).
        #[arg(long, default_value_t = 1_000_000)]
        total: usize,
        /// Activities of the measured player.
        #[arg(long, default_value_t = 10_000)]
        player_activities: usize,
        /// Active events on the screen.
        #[arg(long, default_value_t = 10)]
        events: usize,
        /// Tiers per event.
        #[arg(long, default_value_t = 7)]
        tiers: usize,
        /// Sequential screen requests measured.
        #[arg(long, default_value_t = 300)]
        requests: usize,
        /// Concurrent clients while seeding.
        #[arg(long, default_value_t = 4)]
        clients: usize,
    },
    /// Latency of the operator console's event dashboard, `GET /api/v1/events/{id}/stats`, and of
    /// the console's pages (dashboard, event, claims, a claim, home), for an event with many
    /// claims stored (made through the API, one per player: successes until
    /// the stock runs out, then out-of-stock failures).
    EventStats {
        /// Claims stored for the event (one player each).
        #[arg(long, default_value_t = 10_000)]
        claims: usize,
        /// Units of the event's reward: that many claims succeed, the rest fail out of stock.
        #[arg(long, default_value_t = 8_000)]
        stock: i64,
        /// Sequential dashboard requests measured.
        #[arg(long, default_value_t = 300)]
        requests: usize,
        /// Concurrent clients while seeding.
        #[arg(long, default_value_t = 32)]
        clients: usize,
    },
    /// End-to-end claims/s with and without stock contention, and the raw SQLite ceiling; then,
    /// 5 s after the last answer, every answered claim read back (stored? still pending?).
    Claims {
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Players (each claims each event once).
        #[arg(long, default_value_t = 1000)]
        players: usize,
        /// Events with unlimited stock for the phase without contention.
        #[arg(long, default_value_t = 10)]
        events: usize,
        /// Longest duration of each phase, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Storage of the server: `sqlite` (files in a temporary data dir) or `mongodb` (the
        /// server named by `BESTOW_TEST_MONGODB_URI`, else the test server started with
        /// `scripts/mongo/server start` and stopped at the end).
        #[arg(long, default_value = "sqlite", value_parser = ["sqlite", "mongodb"])]
        storage: String,
        /// The server's fast-path wait (`claim_wait_ms`): how long a claim waits for a final
        /// status before it is answered 202.
        #[arg(long, default_value_t = 2000)]
        claim_wait_ms: u64,
    },
    /// Latency of the event screen, `GET /api/v1/me/events`, when half its running events are
    /// targeted at RULE and LIST audiences, in a store with many activities and many players
    /// with properties; then the same with those events untargeted, and targeted again.
    AudienceScreen {
        /// Activities in the store, the player's included (pushed in batches of 1000).
        #[arg(long, default_value_t = 1_000_000)]
        total: usize,
        /// Activities of the measured player.
        #[arg(long, default_value_t = 10_000)]
        player_activities: usize,
        /// Players whose properties a game server sets (`player-0`, `player-1`, …).
        #[arg(long, default_value_t = 100_000)]
        players: usize,
        /// Running events on the screen; half of them are targeted.
        #[arg(long, default_value_t = 20)]
        events: usize,
        /// Tiers per event.
        #[arg(long, default_value_t = 3)]
        tiers: usize,
        /// Sequential screen requests measured in each phase.
        #[arg(long, default_value_t = 300)]
        requests: usize,
        /// Concurrent clients while seeding.
        #[arg(long, default_value_t = 4)]
        clients: usize,
    },
    /// Claims/s on an event targeted at audiences against an untargeted one with the same
    /// reward: every player claims each once, in alternating rounds.
    AudienceClaims {
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Players, each with properties (each claims each event once).
        #[arg(long, default_value_t = 2_000)]
        players: usize,
        /// Rounds; each has a fresh targeted and untargeted event.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Make the target sticky: a player's first sight of the event is recorded.
        #[arg(long)]
        sticky: bool,
    },
    /// Bulk audience work: a LIST upload of a million members (a CSV body, one PUT), and
    /// background estimates of RULE audiences over every player with properties.
    AudienceUpload {
        /// User ids in the uploaded CSV.
        #[arg(long, default_value_t = 1_000_000)]
        members: usize,
        /// Players whose properties a game server sets (`player-0`, `player-1`, …).
        #[arg(long, default_value_t = 100_000)]
        players: usize,
        /// Activities in the store (the inactivity and activity rules read them).
        #[arg(long, default_value_t = 1_000_000)]
        activities: usize,
        /// Concurrent clients while seeding.
        #[arg(long, default_value_t = 4)]
        clients: usize,
    },
    /// Latency and throughput of the same request straight to the events process and through
    /// the gateway (split mode, three processes), in alternating rounds.
    Gateway {
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Seconds of each round.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Rounds per target.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Auth { cost, seconds, clients } => auth(cost, Duration::from_secs(seconds), clients).await,
        Bench::Ingest { batches, clients } => ingest(batches, clients).await,
        Bench::Eligibility { total, player_activities, requests, clients } => {
            eligibility(total, player_activities, requests, clients).await
        }
        Bench::EventScreen { total, player_activities, events, tiers, requests, clients } => {
            event_screen(Seeding { total, player_activities, clients }, events, tiers, requests).await
        }
        Bench::EventStats { claims, stock, requests, clients } => event_stats(claims, stock, requests, clients).await,
        Bench::Claims { clients, players, events, seconds, storage, claim_wait_ms } => {
            claims(clients, players, events, seconds, &storage, claim_wait_ms).await
        }
        Bench::AudienceScreen { total, player_activities, players, events, tiers, requests, clients } => {
            let seeding = Seeding { total, player_activities, clients };
            audiences::screen(seeding, players, events, tiers, requests).await
        }
        Bench::AudienceClaims { clients, players, rounds, sticky } => {
            audiences::claims(clients, players, rounds, sticky).await
        }
        Bench::AudienceUpload { members, players, activities, clients } => {
            audiences::upload(members, players, Seeding { total: activities, player_activities: 0, clients }).await
        }
        Bench::Gateway { clients, seconds, rounds } => gateway::gateway(clients, seconds, rounds).await,
    }
}

/// A `bestow serve` child process on a free port with a temporary data dir.
struct Server {
    child: Child,
    base: String,
    _data_dir: tempfile::TempDir,
}

impl Server {
    /// `bestow serve`, all-in-one.
    fn start(envs: &[(&str, String)]) -> anyhow::Result<Self> {
        Self::start_command("serve", envs)
    }

    /// `bestow <command>` on a free port with its own data dir. All the load comes from one
    /// loopback address, so the gateway's rate limits are raised out of the way (they are
    /// still evaluated on every request).
    fn start_command(command: &str, envs: &[(&str, String)]) -> anyhow::Result<Self> {
        let binary = std::env::current_exe()?.with_file_name("bestow");
        if !binary.exists() {
            bail!("{} not found; run through scripts/bench", binary.display());
        }
        let data_dir = tempfile::TempDir::new()?;
        let port = free_port()?;
        let mut child = Command::new(&binary)
            .arg(command)
            .env("BESTOW_LISTEN", format!("127.0.0.1:{port}"))
            .env("BESTOW_RATE_LIMIT_ADDRESS_PER_SEC", "1000000")
            .env("BESTOW_RATE_LIMIT_ADDRESS_BURST", "1000000")
            .env("BESTOW_RATE_LIMIT_USER_PER_SEC", "1000000")
            .env("BESTOW_RATE_LIMIT_USER_BURST", "1000000")
            .env("BESTOW_DATA_DIR", data_dir.path())
            .env("BESTOW_LOG_LEVEL", "warn")
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || child.try_wait()?.is_some() {
                bail!("the server did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { child, base, _data_dir: data_dir })
    }

    /// Peak resident memory of the server so far (`VmHWM`), in MiB.
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(PathBuf::from(format!("/proc/{}/status", self.child.id()))).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// CPU time the server has used so far (user + system).
    fn cpu_time(&self) -> Option<Duration> {
        cpu_time_of(&self.child.id().to_string())
    }
}

/// CPU time (user + system) of process `pid` (`self` for this one), from `/proc/<pid>/stat`.
fn cpu_time_of(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; the fields after it are plain numbers.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // Clock ticks are 1/100 s on every Linux build this runs on (USER_HZ).
    Some(Duration::from_millis((utime + stime) * 10))
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Latency percentiles of a set of samples, in milliseconds.
struct Percentiles {
    count: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

fn percentiles(samples: &mut [Duration]) -> Percentiles {
    samples.sort();
    let at = |q: f64| {
        if samples.is_empty() {
            return 0.0;
        }
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index].as_secs_f64() * 1000.0
    };
    Percentiles { count: samples.len(), p50: at(0.50), p99: at(0.99), max: at(1.0) }
}

async fn auth(cost: u32, duration: Duration, clients: usize) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "auth benchmark: bcrypt cost {cost}, {cores} cores, {}s per phase, {clients} login clients",
        duration.as_secs()
    );

    // 1. The ceiling: raw bcrypt verifications on every core, no server involved.
    let password = "benchmark-password";
    let hash = bcrypt::hash(password, cost)?;
    let raw_rate = raw_bcrypt_rate(password, &hash, cores, duration);
    println!("raw bcrypt verify:        {raw_rate:8.2} /s");

    // 2. Logins through the real server, with a prober reading /me at the same time.
    let server = Server::start(&[
        ("BESTOW_BCRYPT_COST", cost.to_string()),
        ("BESTOW_ADMIN_PASSWORD", "bench-admin-password".to_owned()),
    ])?;
    let client = bestow_core::outbound::client()?;
    let credentials = json!({ "username": "bench-player", "password": password });
    let registered = client.post(format!("{}/api/v1/auth/register", server.base)).json(&credentials).send().await?;
    if !registered.status().is_success() {
        bail!("register failed: {}", registered.status());
    }
    let session: Value =
        client.post(format!("{}/api/v1/auth/login", server.base)).json(&credentials).send().await?.json().await?;
    let token = session["accessToken"].as_str().context("no access token")?.to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..clients {
        let (client, base, body) = (client.clone(), server.base.clone(), credentials.clone());
        let (stop, logins, failures) = (stop.clone(), logins.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match client.post(format!("{base}/api/v1/auth/login")).json(&body).send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        logins.fetch_add(1, Ordering::Relaxed);
                        latencies.push(started.elapsed());
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    let prober = {
        let (client, base, token, stop) = (client.clone(), server.base.clone(), token.clone(), stop.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match client.get(format!("{base}/api/v1/auth/me")).bearer_auth(&token).send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.push(started.elapsed());
                    }
                    _ => errors += 1,
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (latencies, errors)
        })
    };
    // Let the login load build up before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counted_from = logins.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    let counted = logins.load(Ordering::Relaxed) - counted_from;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut login_latencies = Vec::new();
    for worker in workers {
        login_latencies.extend(worker.await?);
    }
    let (mut me_latencies, me_errors) = prober.await?;

    let login_rate = counted as f64 / elapsed;
    let login = percentiles(&mut login_latencies);
    let me = percentiles(&mut me_latencies);
    println!("logins through bestow:    {login_rate:8.2} /s  (failed: {})", failures.load(Ordering::Relaxed));
    println!("ratio logins / raw:       {:8.3}  (target >= 0.9)", login_rate / raw_rate);
    println!("login latency:            p50 {:7.1} ms  p99 {:7.1} ms  (n={})", login.p50, login.p99, login.count);
    println!(
        "GET /auth/me under load:  p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  (n={}, errors {me_errors}; target p99 < 20 ms)",
        me.p50, me.p99, me.max, me.count
    );
    print_peak_rss(&server);
    Ok(())
}

/// bcrypt verifications per second with one thread per core.
fn raw_bcrypt_rate(password: &str, hash: &str, threads: usize, duration: Duration) -> f64 {
    let done = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while started.elapsed() < duration {
                    if bcrypt::verify(password, hash).unwrap_or(false) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

const BENCH_ADMIN_PASSWORD: &str = "bench-admin-password";
/// Activities per `POST /api/v1/activities`: the largest batch the API takes.
const BATCH: usize = 1_000;
/// Players the background activities are spread over.
const PLAYERS: usize = 10_000;

/// A server whose admin is signed in and holds a fresh service key.
struct IngestionSetup {
    server: Server,
    client: reqwest::Client,
    admin_token: String,
    key: String,
}

impl IngestionSetup {
    async fn start() -> anyhow::Result<Self> {
        let server = Server::start(&[("BESTOW_ADMIN_PASSWORD", BENCH_ADMIN_PASSWORD.to_owned())])?;
        let client = bestow_core::outbound::client()?;
        let credentials = json!({ "username": "admin", "password": BENCH_ADMIN_PASSWORD });
        let session: Value =
            client.post(format!("{}/api/v1/auth/login", server.base)).json(&credentials).send().await?.json().await?;
        let admin_token = session["accessToken"].as_str().context("admin login failed")?.to_owned();
        let key: Value = client
            .post(format!("{}/api/v1/service-keys", server.base))
            .bearer_auth(&admin_token)
            .json(&json!({ "name": "bench", "scopes": ["activities:write"] }))
            .send()
            .await?
            .json()
            .await?;
        let key = key["secret"].as_str().context("service key creation failed")?.to_owned();
        Ok(Self { server, client, admin_token, key })
    }

    /// Posts every body with `clients` concurrent clients; returns the activities stored, the
    /// wall time and each batch's latency.
    async fn push_all(&self, bodies: Vec<String>, clients: usize) -> anyhow::Result<(u64, Duration, Vec<Duration>)> {
        let bodies = Arc::new(bodies);
        let next = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..clients.max(1) {
            let (client, bodies, next) = (self.client.clone(), bodies.clone(), next.clone());
            let (url, key) = (format!("{}/api/v1/activities", self.server.base), self.key.clone());
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut accepted = 0u64;
                loop {
                    let index = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
                    let Some(body) = bodies.get(index) else { break };
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("x-api-key", &key)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await?;
                    if response.status() != reqwest::StatusCode::ACCEPTED {
                        bail!("batch {index}: HTTP {}: {}", response.status(), response.text().await?);
                    }
                    let receipt: Value = response.json().await?;
                    accepted += receipt["accepted"].as_u64().unwrap_or(0);
                    latencies.push(sent.elapsed());
                }
                Ok::<_, anyhow::Error>((accepted, latencies))
            }));
        }
        let mut accepted = 0;
        let mut latencies = Vec::new();
        for worker in workers {
            let (stored, batch_latencies) = worker.await??;
            accepted += stored;
            latencies.extend(batch_latencies);
        }
        Ok((accepted, started.elapsed(), latencies))
    }
}

/// Background activity number `n`: one of [`PLAYERS`] players, a mix of types over 30 days.
fn background_activity(n: usize, now: chrono::DateTime<chrono::Utc>) -> Value {
    let seconds_ago = i64::try_from(n.wrapping_mul(7_919) % (30 * 24 * 3_600)).unwrap_or(0) + 60;
    let occurred_at = (now - chrono::Duration::seconds(seconds_ago)).to_rfc3339();
    let user_id = format!("player-{}", n % PLAYERS);
    let (kind, attributes) = match n % 10 {
        0..=5 => ("LOGIN", Value::Null),
        6 | 7 => ("PURCHASE", json!({ "amount": n % 50 + 1 })),
        8 => ("QUEST_COMPLETED", json!({ "questId": format!("q-{}", n % 20) })),
        _ => ("BOSS_KILLED", Value::Null),
    };
    json!({ "activityId": format!("a-{n}"), "userId": user_id, "type": kind, "occurredAt": occurred_at,
            "attributes": attributes })
}

/// Activity number `k` of the measured player: spread over the last 360 days, every type the
/// bench event's conditions read.
fn player_activity(user_id: &str, k: usize, count: usize, now: chrono::DateTime<chrono::Utc>) -> Value {
    let span = 360 * 24 * 3_600;
    let seconds_ago = i64::try_from(k * span / count.max(1)).unwrap_or(0) + 60;
    let occurred_at = (now - chrono::Duration::seconds(seconds_ago)).to_rfc3339();
    let (kind, attributes) = match k % 20 {
        0..=11 => ("LOGIN", Value::Null),
        12..=15 => ("PURCHASE", json!({ "amount": 10 })),
        16 => ("LEVEL_UP", json!({ "level": 1 + (count - k) / 100 })),
        17 => ("QUEST_COMPLETED", json!({ "questId": format!("q-{}", k % 10) })),
        _ => ("BOSS_KILLED", Value::Null),
    };
    json!({ "activityId": format!("p-{k}"), "userId": user_id, "type": kind, "occurredAt": occurred_at,
            "attributes": attributes })
}

fn batch_body(activities: Vec<Value>) -> String {
    json!({ "activities": activities }).to_string()
}

async fn ingest(batches: usize, clients: usize) -> anyhow::Result<()> {
    println!("ingestion benchmark: {batches} batches of {BATCH} activities, {clients} clients, one service key");
    let setup = IngestionSetup::start().await?;
    let now = chrono::Utc::now();
    // Built before the clock starts: the bench client shares the machine with the server.
    let bodies: Vec<String> = (0..batches)
        .map(|b| batch_body((0..BATCH).map(|i| background_activity(b * BATCH + i, now)).collect()))
        .collect();
    let (accepted, elapsed, mut latencies) = setup.push_all(bodies.clone(), clients).await?;
    let rate = accepted as f64 / elapsed.as_secs_f64();
    let latency = percentiles(&mut latencies);
    println!("stored:                   {accepted} activities in {:.2} s", elapsed.as_secs_f64());
    println!("ingestion rate:           {rate:9.0} activities/s  (target >= 20000)");
    println!("batch latency:            p50 {:7.1} ms  p99 {:7.1} ms  (n={})", latency.p50, latency.p99, latency.count);

    // The same batches again: every activity is a duplicate and nothing new is stored.
    let resend: Vec<String> = bodies.into_iter().take(batches.min(50)).collect();
    let sent = resend.len() * BATCH;
    let (stored_again, elapsed, _) = setup.push_all(resend, clients).await?;
    println!(
        "re-sent {sent} activities:  {stored_again} stored, {:9.0} activities/s checked",
        sent as f64 / elapsed.as_secs_f64()
    );
    print_peak_rss(&setup.server);
    Ok(())
}

async fn eligibility(total: usize, player_activities: usize, requests: usize, clients: usize) -> anyhow::Result<()> {
    if player_activities > total {
        bail!("--player-activities must not exceed --total");
    }
    println!(
        "eligibility benchmark: {total} activities in the store, {player_activities} of them the player's, \
         {requests} sequential requests"
    );
    let (setup, player_token) = Seeding { total, player_activities, clients }.seed().await?;
    let base = setup.server.base.clone();
    let now = chrono::Utc::now();

    // Every condition reads the player's activities; LEVEL_REACHED makes the query load all of
    // them, whatever their date.
    let event = json!({
        "eventName": "bench", "startDate": (now - chrono::Duration::days(365)).to_rfc3339(),
        "endDate": (now + chrono::Duration::days(30)).to_rfc3339(), "timezone": "Asia/Seoul",
        "conditions": { "type": "AND", "subConditions": [
            { "type": "LOGIN_STREAK", "days": 30 },
            { "type": "LOGIN_DAYS", "days": 200 },
            { "type": "PURCHASE_TOTAL", "amount": 1000 },
            { "type": "LEVEL_REACHED", "level": 50 },
            { "type": "QUEST_COMPLETE", "questId": "q-7" },
            { "type": "ACTIVITY_COUNT", "activityType": "BOSS_KILLED", "count": 100000 },
        ]},
        "rewards": [{ "rewardType": "POINT", "rewardName": "bench points", "details": { "points": 10 },
                      "quantityPerUser": 1, "totalStock": -1 }],
    });
    let event_id = activated_event(&setup, &event).await?;

    let url = format!("{base}/api/v1/events/{event_id}/eligibility");
    let (mut latencies, last) = timed_gets(&setup.client, &url, &player_token, requests).await?;
    let latency = percentiles(&mut latencies);
    let progress: Vec<String> = last["conditions"]["children"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|n| format!("{} {}/{}", n["type"].as_str().unwrap_or("?"), n["current"], n["target"]))
                .collect()
        })
        .unwrap_or_default();
    println!("player's progress:        eligible={} [{}]", last["eligible"], progress.join(", "));
    println!(
        "GET eligibility:          p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  (n={}; target p99 <= 10 ms)",
        latency.p50, latency.p99, latency.max, latency.count
    );
    print_peak_rss(&setup.server);
    Ok(())
}

/// A store of `total` activities, `player_activities` of them one player's.
struct Seeding {
    total: usize,
    player_activities: usize,
    clients: usize,
}

impl Seeding {
    /// Starts a server, registers the player and pushes the activities; returns the setup and
    /// the player's access token.
    async fn seed(&self) -> anyhow::Result<(IngestionSetup, String)> {
        let Self { total, player_activities, clients } = *self;
        if player_activities > total {
            bail!("--player-activities must not exceed --total");
        }
        let setup = IngestionSetup::start().await?;
        let base = setup.server.base.clone();
        let credentials = json!({ "username": "bench-player", "password": "bench-player-password" });
        let user: Value =
            setup.client.post(format!("{base}/api/v1/auth/register")).json(&credentials).send().await?.json().await?;
        let player = user["id"].as_str().context("player registration failed")?.to_owned();
        let session: Value =
            setup.client.post(format!("{base}/api/v1/auth/login")).json(&credentials).send().await?.json().await?;
        let player_token = session["accessToken"].as_str().context("player login failed")?.to_owned();

        // The player's activities are spread evenly over the batches, as a live game would send them.
        let now = chrono::Utc::now();
        let batches = total.div_ceil(BATCH);
        let mut player_left = (0..player_activities).map(|k| player_activity(&player, k, player_activities, now));
        let mut background = 0;
        let bodies: Vec<String> = (0..batches)
            .map(|b| {
                let size = BATCH.min(total - b * BATCH);
                let players_share = player_activities.div_ceil(batches).min(size);
                let mut items: Vec<Value> = player_left.by_ref().take(players_share).collect();
                while items.len() < size {
                    items.push(background_activity(background, now));
                    background += 1;
                }
                batch_body(items)
            })
            .collect();
        let (stored, elapsed, _) = setup.push_all(bodies, clients).await?;
        println!(
            "seeded:                   {stored} activities in {:.1} s ({:.0} activities/s)",
            elapsed.as_secs_f64(),
            stored as f64 / elapsed.as_secs_f64()
        );
        Ok((setup, player_token))
    }
}

fn print_peak_rss(server: &Server) {
    match server.peak_rss_mib() {
        Some(mib) => println!("server peak RSS:          {mib:8.1} MiB"),
        None => println!("server peak RSS:          unavailable"),
    }
}

/// Times `requests` sequential GETs of `url` with `token`, after 20 that warm the caches and
/// connections; returns the latencies and the last answer.
async fn timed_gets(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    requests: usize,
) -> anyhow::Result<(Vec<Duration>, Value)> {
    let mut latencies = Vec::with_capacity(requests);
    let mut last = Value::Null;
    for round in 0..requests + 20 {
        let started = Instant::now();
        let response = client.get(url).bearer_auth(token).send().await?;
        if !response.status().is_success() {
            bail!("GET {url}: HTTP {}", response.status());
        }
        last = response.json().await?;
        if round >= 20 {
            latencies.push(started.elapsed());
        }
    }
    Ok((latencies, last))
}

/// Creates and activates `event` as the admin; returns its id.
async fn activated_event(setup: &IngestionSetup, event: &Value) -> anyhow::Result<String> {
    created_and_activated(&setup.client, &setup.server.base, &setup.admin_token, event).await
}

/// Running event number `e` of the event screen: `tiers` tiers (daily, weekly or one-time;
/// streaks, login days over the event, purchase totals and custom activity counts) under an
/// event-wide login gate.
fn screen_event(e: usize, tiers: usize, now: chrono::DateTime<chrono::Utc>) -> Value {
    let recurrence = match e % 3 {
        0 => json!({ "period": "DAILY", "resetTime": "05:00" }),
        1 => json!({ "period": "WEEKLY", "resetWeekday": "MONDAY" }),
        _ => Value::Null,
    };
    let tier_list: Vec<Value> = (1..=tiers)
        .map(|t| {
            let conditions = match t % 4 {
                0 => json!({ "type": "LOGIN_DAYS", "days": t, "scope": "EVENT" }),
                1 => json!({ "type": "PURCHASE_TOTAL", "amount": 10 * t }),
                2 => json!({ "type": "ACTIVITY_COUNT", "activityType": "BOSS_KILLED", "count": t }),
                _ => json!({ "type": "LOGIN_STREAK", "days": t }),
            };
            json!({ "tierName": format!("tier {t}"), "conditions": conditions,
                    "rewards": [{ "rewardType": "POINT", "rewardName": format!("tier {t} points"),
                                  "details": { "points": 10 * t }, "quantityPerUser": 1, "totalStock": 1000 }] })
        })
        .collect();
    json!({
        "eventName": format!("screen {e}"), "startDate": (now - chrono::Duration::days(90)).to_rfc3339(),
        "endDate": (now + chrono::Duration::days(30)).to_rfc3339(), "timezone": "Asia/Seoul",
        "recurrence": recurrence, "conditions": { "type": "LOGIN_DAYS", "days": 1 }, "tiers": tier_list,
    })
}

/// Prints what an answer of `GET /api/v1/me/events` showed: events, tier entries, claimable ones.
fn print_screen(answer: &Value) {
    let items = answer["items"].as_array().map_or(0, Vec::len);
    let entries: Vec<&Value> = answer["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|item| item["tiers"].as_array().into_iter().flatten())
        .collect();
    let claimable = entries.iter().filter(|tier| tier["claimable"] == true).count();
    println!("screen:                   {items} events, {} tier entries, {claimable} claimable", entries.len());
}

/// The event-screen benchmark: `events` running events of `tiers` tiers each (daily, weekly
/// and one-time; streaks, login days, purchases and custom activities), all reading the
/// player's activities.
async fn event_screen(seeding: Seeding, events: usize, tiers: usize, requests: usize) -> anyhow::Result<()> {
    println!(
        "event-screen benchmark: {} activities in the store, {} of them the player's, {events} events x {tiers} tiers, \
         {requests} sequential requests",
        seeding.total, seeding.player_activities
    );
    let (setup, player_token) = seeding.seed().await?;
    let now = chrono::Utc::now();
    for e in 0..events {
        activated_event(&setup, &screen_event(e, tiers, now)).await?;
    }

    let url = format!("{}/api/v1/me/events?limit=100", setup.server.base);
    let (mut latencies, last) = timed_gets(&setup.client, &url, &player_token, requests).await?;
    print_screen(&last);
    let latency = percentiles(&mut latencies);
    println!(
        "GET /api/v1/me/events:    p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  (n={}; target p99 <= 20 ms)",
        latency.p50, latency.p99, latency.max, latency.count
    );
    print_peak_rss(&setup.server);
    Ok(())
}

/// The event-dashboard benchmark: `claims` claims of as many players on one event with `stock`
/// units, stored through the API, then `requests` sequential dashboard requests as the admin.
async fn event_stats(claims: usize, stock: i64, requests: usize, clients: usize) -> anyhow::Result<()> {
    println!(
        "event-stats benchmark: {claims} claims (one per player) on one event with {stock} units, \
         {requests} sequential requests"
    );
    let server = Server::start(&[
        ("BESTOW_BCRYPT_COST", "4".to_owned()),
        ("BESTOW_ADMIN_PASSWORD", BENCH_ADMIN_PASSWORD.to_owned()),
    ])?;
    let client = bestow_core::outbound::client_builder().pool_max_idle_per_host(clients * 2).build()?;
    let admin = login(&client, &server.base, "admin", BENCH_ADMIN_PASSWORD).await?;
    let players = register_players(&client, &server.base, claims).await?;
    let event = active_event(&client, &server.base, &admin, "dashboard", Some(stock)).await?;
    let pairs: Vec<(String, String)> = players.into_iter().map(|token| (token, event.clone())).collect();
    let mut seeded = run_claims(&client, &server.base, pairs, clients, Duration::from_secs(3_600)).await;
    seeded.print("seeded");

    let url = format!("{}/api/v1/events/{event}/stats", server.base);
    let (mut latencies, last) = timed_gets(&client, &url, &admin, requests).await?;
    let by_status = last["claimsByStatus"].as_object().map(|statuses| {
        let stored: u64 = statuses.values().filter_map(Value::as_u64).sum();
        (stored, statuses.get("SUCCESS_ALL_GRANTED").and_then(Value::as_u64).unwrap_or(0))
    });
    let (stored, granted) = by_status.unwrap_or_default();
    let last_hour: u64 =
        last["claimsPerMinute"].as_array().into_iter().flatten().filter_map(|m| m["count"].as_u64()).sum();
    let reasons = last["failuresByReason"].as_array().map_or(0, Vec::len);
    println!(
        "dashboard:                {stored} claims stored, {granted} SUCCESS_ALL_GRANTED, {last_hour} in the last hour, \
         {reasons} failure reasons, remaining stock {}",
        last["stock"][0]["remainingStock"]
    );
    let latency = percentiles(&mut latencies);
    println!(
        "GET /api/v1/events/{{id}}/stats: p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  (n={}; target p99 < 50 ms)",
        latency.p50, latency.p99, latency.max, latency.count
    );
    let console = console::ConsoleSession::sign_in(&server.base, "admin", BENCH_ADMIN_PASSWORD).await?;
    let claims: Value = client
        .get(format!("{}/api/v1/claims?eventId={event}&limit=1", server.base))
        .bearer_auth(&admin)
        .send()
        .await?
        .json()
        .await?;
    let request_id = claims["items"][0]["requestId"].as_str().unwrap_or_default().to_owned();
    println!("console pages (server-side, HTML only, {} requests each):", requests / 3);
    for page in [
        format!("/console/events/{event}/dashboard"),
        format!("/console/events/{event}/dashboard/live"),
        format!("/console/events/{event}"),
        format!("/console/claims?eventId={event}"),
        format!("/console/claims/{request_id}"),
        "/console/".to_owned(),
    ] {
        console.time_page(&page, requests / 3).await?;
    }
    print_peak_rss(&server);
    Ok(())
}

/// The MongoDB-wire test server of `scripts/mongo/server`, stopped on drop when this process
/// started it.
struct MongoTestServer {
    uri: String,
    started: bool,
}

impl MongoTestServer {
    fn start() -> anyhow::Result<Self> {
        if let Ok(uri) = std::env::var("BESTOW_TEST_MONGODB_URI") {
            return Ok(Self { uri, started: false });
        }
        let output = Command::new("scripts/mongo/server")
            .arg("start")
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run scripts/mongo/server (run through scripts/bench, from the repository)")?;
        if !output.status.success() {
            bail!("scripts/mongo/server start failed");
        }
        let uri = String::from_utf8(output.stdout)?.trim().to_owned();
        Ok(Self { uri, started: true })
    }
}

impl Drop for MongoTestServer {
    fn drop(&mut self) {
        if self.started {
            let _ = Command::new("scripts/mongo/server").arg("stop").status();
        }
    }
}

/// Claims end to end: `clients` concurrent clients against a real server, first spread over
/// `events` events with unlimited stock (no contention), then all on one reward with limited
/// stock (contention); with SQLite, in the same run, the storage ceiling: raw
/// conditional-update transactions/s with the server's SQLite settings. Then, 5 s after the
/// last answer, every answered claim is read back: stored at all, final or still pending.
async fn claims(
    clients: usize,
    users: usize,
    events: usize,
    seconds: u64,
    storage: &str,
    claim_wait_ms: u64,
) -> anyhow::Result<()> {
    println!(
        "claims benchmark ({storage}): {clients} clients, {users} players, {events} events, up to {seconds}s per phase, \
         fast-path wait {claim_wait_ms} ms"
    );
    let mut envs = vec![
        ("BESTOW_BCRYPT_COST", "4".to_owned()),
        ("BESTOW_ADMIN_PASSWORD", "bench-admin-password".to_owned()),
        ("BESTOW_CLAIM_WAIT_MS", claim_wait_ms.to_string()),
    ];
    let mut ceiling = None;
    let mongo = if storage == "mongodb" {
        let mongo = MongoTestServer::start()?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let prefix = format!("bench{:08x}", nanos ^ std::process::id());
        println!("storage: MongoDB at {} (databases {prefix}_auth_db, {prefix}_event_db)", mongo.uri);
        envs.push(("BESTOW_STORAGE", "mongodb".to_owned()));
        envs.push(("BESTOW_MONGODB_URI", mongo.uri.clone()));
        envs.push(("BESTOW_AUTH_DATABASE", format!("{prefix}_auth_db")));
        envs.push(("BESTOW_EVENT_DATABASE", format!("{prefix}_event_db")));
        Some(mongo)
    } else {
        let rate = storage_ceiling(clients, Duration::from_secs(3)).await?;
        println!("storage ceiling (SQLite WAL, conditional UPDATE + INSERT per txn): {rate:10.0} txn/s");
        ceiling = Some(rate);
        None
    };

    let server = Server::start(&envs)?;
    let client = bestow_core::outbound::client_builder().pool_max_idle_per_host(clients * 2).build()?;
    let admin = login(&client, &server.base, "admin", "bench-admin-password").await?;
    let players = register_players(&client, &server.base, users).await?;

    // Phase 1: no contention: unlimited stock, claims spread over many events.
    let mut event_ids = Vec::new();
    for i in 0..events {
        event_ids.push(active_event(&client, &server.base, &admin, &format!("open {i}"), None).await?);
    }
    let pairs: Vec<(String, String)> =
        event_ids.iter().flat_map(|event| players.iter().map(move |token| (token.clone(), event.clone()))).collect();
    let mut open = run_claims(&client, &server.base, pairs, clients, Duration::from_secs(seconds)).await;
    open.print("no contention");

    // Phase 2: contention: every client on one reward with half as much stock as players.
    let stock = i64::try_from(users / 2).unwrap_or(i64::MAX);
    let hot = active_event(&client, &server.base, &admin, "hot", Some(stock)).await?;
    let pairs: Vec<(String, String)> = players.iter().map(|token| (token.clone(), hot.clone())).collect();
    let mut contended = run_claims(&client, &server.base, pairs, clients, Duration::from_secs(seconds)).await;
    contended.print("stock contention");

    // 5 s after the last answer, every answered claim must be stored, and should be final.
    let last_answer = open.last_answer.max(contended.last_answer);
    tokio::time::sleep_until(tokio::time::Instant::from_std(last_answer + Duration::from_secs(5))).await;
    let open_settled = settle(&client, &server.base, &admin, &open.request_ids, clients).await;
    let hot_settled = settle(&client, &server.base, &admin, &contended.request_ids, clients).await;
    open_settled.print("no contention");
    hot_settled.print("stock contention");

    let event: Value =
        client.get(format!("{}/api/v1/events/{hot}", server.base)).bearer_auth(&admin).send().await?.json().await?;
    let remaining = event["rewards"][0]["remainingStock"].as_i64().unwrap_or(-1);
    let granted = i64::try_from(hot_settled.granted).unwrap_or(i64::MAX);
    let oversold = granted + remaining - stock;
    println!(
        "  stock {stock}: granted {granted} (stored as SUCCESS_ALL_GRANTED), remaining {remaining}, \
         answered out of stock {}; oversell: {oversold} (must be 0)",
        contended.out_of_stock
    );
    if let Some(ceiling) = ceiling {
        println!(
            "ratio successful claims/s to storage ceiling: {:.3} (a claim commits 3 write transactions: the validated and reserved request, the ledger grant, grant + conclusion)",
            open.rate() / ceiling
        );
    }
    print_peak_rss(&server);
    drop(server);
    drop(mongo);
    if oversold != 0 || remaining < 0 {
        bail!("stock invariant broken");
    }
    if open_settled.not_stored + hot_settled.not_stored != 0 {
        bail!("answered claims are not stored");
    }
    Ok(())
}

/// What a claims phase measured.
struct ClaimRun {
    attempts: usize,
    successes: usize,
    out_of_stock: usize,
    /// Answered with a final status (201, or 200 for a replay) within the fast-path wait.
    answered_final: usize,
    /// Answered 202: still in progress when the fast-path wait ran out.
    answered_pending: usize,
    other: usize,
    elapsed: f64,
    latencies: Vec<Duration>,
    /// The `requestId` of every answer that carried one.
    request_ids: Vec<String>,
    last_answer: Instant,
}

impl ClaimRun {
    fn new() -> Self {
        Self {
            attempts: 0,
            successes: 0,
            out_of_stock: 0,
            answered_final: 0,
            answered_pending: 0,
            other: 0,
            elapsed: 0.0,
            latencies: Vec::new(),
            request_ids: Vec::new(),
            last_answer: Instant::now(),
        }
    }

    fn rate(&self) -> f64 {
        self.successes as f64 / self.elapsed
    }

    fn print(&mut self, name: &str) {
        let latency = percentiles(&mut self.latencies);
        println!(
            "{name}: {} claims in {:.2}s: {:8.1} successful claims/s ({:.1} claims/s), p50 {:6.1} ms, p99 {:6.1} ms; \
             success {}, out of stock {}, other {}; answered final within the fast-path wait {} ({:.1} %), 202 {}",
            self.attempts,
            self.elapsed,
            self.rate(),
            self.attempts as f64 / self.elapsed,
            latency.p50,
            latency.p99,
            self.successes,
            self.out_of_stock,
            self.other,
            self.answered_final,
            100.0 * self.answered_final as f64 / self.attempts.max(1) as f64,
            self.answered_pending,
        );
    }
}

/// Answered claims read back (`GET /api/v1/claims/{requestId}` as admin).
#[derive(Default)]
struct Settled {
    read: usize,
    /// Answered with a `requestId` that the server answers 404 for: an acknowledged write lost.
    not_stored: usize,
    /// Stored, not final.
    pending: usize,
    /// Stored as SUCCESS_ALL_GRANTED.
    granted: usize,
    /// Neither 200 nor 404.
    unreadable: usize,
}

impl Settled {
    fn print(&self, name: &str) {
        println!(
            "  {name}, 5 s after the last answer: {} answered claims read back: still pending {}, \
             answered but not stored {} (must be 0), granted {}, unreadable {}",
            self.read, self.pending, self.not_stored, self.granted, self.unreadable
        );
    }
}

async fn settle(client: &reqwest::Client, base: &str, admin: &str, ids: &[String], clients: usize) -> Settled {
    let ids = Arc::new(ids.to_vec());
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..clients.max(1) {
        let (client, base, admin, ids, next) =
            (client.clone(), base.to_owned(), admin.to_owned(), ids.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut settled = Settled::default();
            loop {
                let index = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
                let Some(id) = ids.get(index) else { break };
                settled.read += 1;
                let response = client.get(format!("{base}/api/v1/claims/{id}")).bearer_auth(&admin).send().await;
                let Ok(response) = response else {
                    settled.unreadable += 1;
                    continue;
                };
                match response.status().as_u16() {
                    404 => settled.not_stored += 1,
                    200 => {
                        let status =
                            response.json::<Value>().await.ok().and_then(|v| v["status"].as_str().map(str::to_owned));
                        match status.as_deref().map(str::parse::<ClaimStatus>) {
                            Some(Ok(ClaimStatus::SuccessAllGranted)) => settled.granted += 1,
                            Some(Ok(status)) if status.is_final() => {}
                            Some(Ok(_)) => settled.pending += 1,
                            _ => settled.unreadable += 1,
                        }
                    }
                    _ => settled.unreadable += 1,
                }
            }
            settled
        }));
    }
    let mut total = Settled::default();
    for worker in workers {
        if let Ok(settled) = worker.await {
            total.read += settled.read;
            total.not_stored += settled.not_stored;
            total.pending += settled.pending;
            total.granted += settled.granted;
            total.unreadable += settled.unreadable;
        }
    }
    total
}

async fn run_claims(
    client: &reqwest::Client,
    base: &str,
    pairs: Vec<(String, String)>,
    clients: usize,
    limit: Duration,
) -> ClaimRun {
    let pairs = Arc::new(pairs);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..clients {
        let (client, base, pairs, next) = (client.clone(), base.to_owned(), pairs.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut run = ClaimRun::new();
            loop {
                let index = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
                let Some((token, event)) = pairs.get(index) else { break };
                if started.elapsed() > limit {
                    break;
                }
                let sent = Instant::now();
                let response =
                    client.post(format!("{base}/api/v1/events/{event}/claims")).bearer_auth(token).send().await;
                let answer = match response {
                    Ok(response) => {
                        let code = response.status().as_u16();
                        response.json::<Value>().await.ok().map(|body| (code, body))
                    }
                    Err(_) => None,
                };
                run.last_answer = Instant::now();
                run.latencies.push(sent.elapsed());
                run.attempts += 1;
                if let Some((code, body)) = &answer {
                    if let Some(id) = body["requestId"].as_str() {
                        run.request_ids.push(id.to_owned());
                    }
                    let status = body["status"].as_str().and_then(|s| s.parse::<ClaimStatus>().ok());
                    match (code, status) {
                        (200 | 201, Some(status)) if status.is_final() => run.answered_final += 1,
                        (202, _) => run.answered_pending += 1,
                        _ => {}
                    }
                }
                let status = answer.as_ref().and_then(|(_, body)| body["status"].as_str());
                match status {
                    Some("SUCCESS_ALL_GRANTED") => run.successes += 1,
                    Some("INVENTORY_ALLOCATION_FAILED_OUT_OF_STOCK") => run.out_of_stock += 1,
                    // Answered 202: counted above, read back after the run.
                    _ if matches!(answer, Some((202, _))) => {}
                    other => {
                        run.other += 1;
                        if run.other <= 3 {
                            eprintln!("unexpected claim outcome: {other:?}");
                        }
                    }
                }
            }
            run
        }));
    }
    let mut total = ClaimRun::new();
    total.last_answer = started;
    for worker in workers {
        if let Ok(run) = worker.await {
            total.attempts += run.attempts;
            total.successes += run.successes;
            total.out_of_stock += run.out_of_stock;
            total.answered_final += run.answered_final;
            total.answered_pending += run.answered_pending;
            total.other += run.other;
            total.latencies.extend(run.latencies);
            total.request_ids.extend(run.request_ids);
            if run.attempts > 0 {
                total.last_answer = total.last_answer.max(run.last_answer);
            }
        }
    }
    total.elapsed = started.elapsed().as_secs_f64();
    total
}

async fn login(client: &reqwest::Client, base: &str, username: &str, password: &str) -> anyhow::Result<String> {
    let session: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await?
        .json()
        .await?;
    Ok(session["accessToken"].as_str().context("login failed")?.to_owned())
}

/// Registers and signs in `count` players; returns their access tokens.
async fn register_players(client: &reqwest::Client, base: &str, count: usize) -> anyhow::Result<Vec<String>> {
    Ok(registered_players(client, base, count).await?.into_iter().map(|player| player.access_token).collect())
}

/// A registered player, signed in.
struct Player {
    /// The account's id (`userId`).
    id: String,
    access_token: String,
}

/// Registers and signs in `count` players.
async fn registered_players(client: &reqwest::Client, base: &str, count: usize) -> anyhow::Result<Vec<Player>> {
    let mut players = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(32) {
        let mut tasks = Vec::new();
        for &i in chunk {
            let (client, base) = (client.clone(), base.to_owned());
            tasks.push(tokio::spawn(async move {
                let name = format!("bench-player-{i}");
                let body = json!({ "username": name, "password": "bench-password" });
                let user: Value =
                    client.post(format!("{base}/api/v1/auth/register")).json(&body).send().await?.json().await?;
                let id = user["id"].as_str().with_context(|| format!("registration failed: {user}"))?.to_owned();
                let access_token = login(&client, &base, &name, "bench-password").await?;
                Ok::<_, anyhow::Error>(Player { id, access_token })
            }));
        }
        for task in tasks {
            players.push(task.await??);
        }
    }
    Ok(players)
}

/// Creates and activates an event with one POINT reward (`stock` units, or unlimited).
async fn active_event(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    name: &str,
    stock: Option<i64>,
) -> anyhow::Result<String> {
    created_and_activated(client, base, admin, &point_event(name, stock)).await
}

/// An event running from an hour ago to tomorrow with one POINT reward (`stock` units, or
/// unlimited), one per player.
fn point_event(name: &str, stock: Option<i64>) -> Value {
    let now = chrono::Utc::now();
    json!({
        "eventName": name,
        "startDate": (now - chrono::Duration::hours(1)).to_rfc3339(),
        "endDate": (now + chrono::Duration::days(1)).to_rfc3339(),
        "rewards": [{ "rewardType": "POINT", "rewardName": "points", "details": { "points": 10 },
                      "quantityPerUser": 1, "totalStock": stock.unwrap_or(-1) }],
    })
}

/// Creates `event` as `admin` and activates it; returns its id.
async fn created_and_activated(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    event: &Value,
) -> anyhow::Result<String> {
    let created: Value =
        client.post(format!("{base}/api/v1/events")).bearer_auth(admin).json(event).send().await?.json().await?;
    let id = created["id"].as_str().with_context(|| format!("event creation failed: {created}"))?.to_owned();
    let activated = client
        .put(format!("{base}/api/v1/events/{id}/status"))
        .bearer_auth(admin)
        .json(&json!({ "status": "ACTIVE" }))
        .send()
        .await?;
    if !activated.status().is_success() {
        bail!("event activation failed: {}", activated.status());
    }
    Ok(id)
}

/// Conditional-update transactions/s on a SQLite file opened exactly as the server opens
/// `event.db` (same `Database`: WAL, synchronous NORMAL, one writer connection), from
/// `clients` concurrent tasks.
async fn storage_ceiling(clients: usize, duration: Duration) -> anyhow::Result<f64> {
    let dir = tempfile::TempDir::new()?;
    let schema = "CREATE TABLE stock (id INTEGER PRIMARY KEY, remaining INTEGER NOT NULL CHECK (remaining >= 0));
                  CREATE TABLE reservations (id INTEGER PRIMARY KEY, stockId INTEGER NOT NULL, at TEXT NOT NULL);
                  INSERT INTO stock (id, remaining) VALUES (1, 1000000000);";
    let db = bestow_store_sqlite::Database::open(&dir.path().join("ceiling.db"), &[schema])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (db, done) = (db.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < duration {
                let committed = db
                    .write(|connection| {
                        let map = |e: rusqlite::Error| bestow_core::store::StoreError::Unavailable(e.to_string());
                        let tx = connection.transaction().map_err(map)?;
                        tx.execute("UPDATE stock SET remaining = remaining - 1 WHERE id = 1 AND remaining >= 1", [])
                            .map_err(map)?;
                        tx.execute("INSERT INTO reservations (stockId, at) VALUES (1, datetime('now'))", [])
                            .map_err(map)?;
                        tx.commit().map_err(map)
                    })
                    .await;
                if committed.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}
