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
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Auth { cost, seconds, clients } => auth(cost, Duration::from_secs(seconds), clients).await,
    }
}

/// A `bestow serve` child process on a free port with a temporary data dir.
struct Server {
    child: Child,
    base: String,
    _data_dir: tempfile::TempDir,
}

impl Server {
    fn start(envs: &[(&str, String)]) -> anyhow::Result<Self> {
        let binary = std::env::current_exe()?.with_file_name("bestow");
        if !binary.exists() {
            bail!("{} not found; run through scripts/bench", binary.display());
        }
        let data_dir = tempfile::TempDir::new()?;
        let port = free_port()?;
        let mut child = Command::new(&binary)
            .arg("serve")
            .env("BESTOW_LISTEN", format!("127.0.0.1:{port}"))
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
    let client = reqwest::Client::new();
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
    match server.peak_rss_mib() {
        Some(mib) => println!("server peak RSS:          {mib:8.1} MiB"),
        None => println!("server peak RSS:          unavailable"),
    }
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
