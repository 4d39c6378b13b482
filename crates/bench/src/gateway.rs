//! What the gateway costs: the same request sent straight to the events process and through
//! the gateway in front of it, in alternating rounds of the same run (three real processes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use crate::{Percentiles, Server, cpu_time_of, login, percentiles};

const ADMIN_PASSWORD: &str = "bench-admin-password";
const SECRET: &str = "bench-internal-secret";

/// One measured round: requests completed, elapsed time, latencies.
struct Round {
    completed: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// CPU time used by the load generator, events and the gateway.
#[derive(Default, Clone, Copy)]
struct Cpu {
    client: Duration,
    events: Duration,
    gateway: Duration,
}

impl Cpu {
    fn now(events: &Server, gateway: &Server) -> Self {
        let of = |time: Option<Duration>| time.unwrap_or_default();
        Self { client: of(cpu_time_of("self")), events: of(events.cpu_time()), gateway: of(gateway.cpu_time()) }
    }

    fn add_since(&mut self, start: Self, end: Self) {
        self.client += end.client - start.client;
        self.events += end.events - start.events;
        self.gateway += end.gateway - start.gateway;
    }
}

pub(crate) async fn gateway(clients: usize, seconds: u64, rounds: usize) -> anyhow::Result<()> {
    let auth = Server::start_command(
        "auth",
        &[("BESTOW_INTERNAL_SECRET", SECRET.to_owned()), ("BESTOW_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned())],
    )?;
    let secret_and_auth = [("BESTOW_INTERNAL_SECRET", SECRET.to_owned()), ("BESTOW_AUTH_URL", auth.base.clone())];
    let events = Server::start_command("events", &secret_and_auth)?;
    let mut gateway_env = secret_and_auth.to_vec();
    gateway_env.push(("BESTOW_EVENTS_URL", events.base.clone()));
    let gateway = Server::start_command("gateway", &gateway_env)?;

    let client = bestow_core::outbound::client()?;
    let token = login(&client, &gateway.base, "admin", ADMIN_PASSWORD).await?;
    let now = chrono::Utc::now();
    let event = json!({
        "eventName": "Gateway bench", "description": "read by every request",
        "startDate": (now - chrono::Duration::days(1)).to_rfc3339(),
        "endDate": (now + chrono::Duration::days(7)).to_rfc3339(),
        "rewards": [{ "rewardType": "POINT", "rewardName": "points", "details": { "points": 1 },
                      "quantityPerUser": 1, "totalStock": -1 }],
    });
    let created: serde_json::Value = client
        .post(format!("{}/api/v1/events", gateway.base))
        .bearer_auth(&token)
        .json(&event)
        .send()
        .await?
        .json()
        .await?;
    let id = created["id"].as_str().context("event not created")?;
    let path = format!("/api/v1/events/{id}");

    println!(
        "GET {path} (authenticated, ~1 KiB answer), {clients} clients, {rounds} rounds of {seconds} s per target, alternating"
    );
    let duration = Duration::from_secs(seconds);
    // Warm both paths (connections, key caches) before measuring.
    for base in [&events.base, &gateway.base] {
        run(&format!("{base}{path}"), &token, clients, Duration::from_secs(1)).await?;
    }
    let (mut direct, mut proxied) = (Vec::new(), Vec::new());
    let (mut direct_cpu, mut proxied_cpu) = (Cpu::default(), Cpu::default());
    for _ in 0..rounds {
        for (base, rounds, cpu) in
            [(&events.base, &mut direct, &mut direct_cpu), (&gateway.base, &mut proxied, &mut proxied_cpu)]
        {
            let start = Cpu::now(&events, &gateway);
            rounds.push(run(&format!("{base}{path}"), &token, clients, duration).await?);
            cpu.add_since(start, Cpu::now(&events, &gateway));
        }
    }
    let (direct_rate, direct_count, mut direct) = merge(direct);
    let (proxied_rate, proxied_count, mut proxied) = merge(proxied);
    let (direct, proxied) = (percentiles(&mut direct), percentiles(&mut proxied));
    report("direct to events", direct_rate, &direct);
    report("through the gateway", proxied_rate, &proxied);
    report_cpu("direct to events", direct_cpu, direct_count);
    report_cpu("through the gateway", proxied_cpu, proxied_count);
    println!(
        "added latency: p50 {:+.3} ms, p99 {:+.3} ms; gateway throughput {:.1}% of direct (targets: p50 < 1 ms, >= 70%)",
        proxied.p50 - direct.p50,
        proxied.p99 - direct.p99,
        100.0 * proxied_rate / direct_rate
    );
    Ok(())
}

/// Requests per second, request count and every latency of `rounds`.
fn merge(rounds: Vec<Round>) -> (f64, u64, Vec<Duration>) {
    let completed: u64 = rounds.iter().map(|round| round.completed).sum();
    let elapsed: f64 = rounds.iter().map(|round| round.elapsed.as_secs_f64()).sum();
    (completed as f64 / elapsed, completed, rounds.into_iter().flat_map(|round| round.latencies).collect())
}

/// CPU time per request of each process, in microseconds (1/100 s resolution over the rounds).
fn report_cpu(name: &str, cpu: Cpu, requests: u64) {
    let per_request = |time: Duration| time.as_secs_f64() * 1e6 / requests.max(1) as f64;
    println!(
        "{name:>20}: CPU per request: load generator {:.0} µs, gateway {:.0} µs, events {:.0} µs",
        per_request(cpu.client),
        per_request(cpu.gateway),
        per_request(cpu.events)
    );
}

fn report(name: &str, rate: f64, latency: &Percentiles) {
    println!(
        "{name:>20}: {rate:>8.0} req/s   p50 {:.3} ms   p99 {:.3} ms   max {:.1} ms   ({} requests)",
        latency.p50, latency.p99, latency.max, latency.count
    );
}

/// `clients` closed-loop clients sending GET `url` for `duration`; every answer must be 200.
async fn run(url: &str, token: &str, clients: usize, duration: Duration) -> anyhow::Result<Round> {
    let client = bestow_core::outbound::client_builder().pool_max_idle_per_host(clients).build()?;
    let started = Instant::now();
    let deadline = started + duration;
    let url: Arc<str> = url.into();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (client, url, token) = (client.clone(), url.clone(), token.to_owned());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = client.get(&*url).bearer_auth(&token).send().await?;
                let status = response.status();
                response.bytes().await?;
                if !status.is_success() {
                    bail!("GET {url} answered {status}");
                }
                latencies.push(sent.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(outcome) = tasks.join_next().await {
        latencies.extend(outcome??);
    }
    Ok(Round { completed: latencies.len() as u64, elapsed: started.elapsed(), latencies })
}
