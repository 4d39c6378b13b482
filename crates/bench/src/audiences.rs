//! The audience benchmarks (issue 26): the event screen when half its events are targeted at
//! RULE and LIST audiences (`audience-screen`), claims on a targeted event against an
//! untargeted one (`audience-claims`), and bulk work: a LIST upload of a million members and
//! RULE estimates over every player with properties (`audience-upload`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{
    BENCH_ADMIN_PASSWORD, Seeding, Server, created_and_activated, login, percentiles, point_event, print_peak_rss,
    print_screen, registered_players, run_claims, screen_event, timed_gets,
};

const COUNTRIES: [&str; 7] = ["KR", "JP", "US", "DE", "BR", "FR", "TW"];
const PLATFORMS: [&str; 3] = ["ios", "android", "pc"];
/// Concurrent clients pushing player properties.
const PROPERTY_CLIENTS: usize = 16;

/// The properties a game server sets for its player number `n`.
fn properties_of(n: usize) -> Value {
    json!({
        "country": COUNTRIES[n % COUNTRIES.len()],
        "platform": PLATFORMS[(n / COUNTRIES.len()) % PLATFORMS.len()],
        "vipLevel": (n / 21) % 10,
        "language": if n.is_multiple_of(3) { "ko" } else { "en" },
    })
}

/// The admin's side of a running server: where it is, and the admin's access token.
struct Staff<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
    admin: &'a str,
}

impl Staff<'_> {
    /// A new service key holding `scope`; returns its secret.
    async fn service_key(&self, scope: &str) -> anyhow::Result<String> {
        let key: Value = self
            .client
            .post(format!("{}/api/v1/service-keys", self.base))
            .bearer_auth(self.admin)
            .json(&json!({ "name": format!("bench {scope}"), "scopes": [scope] }))
            .send()
            .await?
            .json()
            .await?;
        Ok(key["secret"].as_str().with_context(|| format!("service key creation failed: {key}"))?.to_owned())
    }

    /// Creates an audience; returns its id.
    async fn audience(&self, name: &str, kind: &str, rule: Option<Value>) -> anyhow::Result<String> {
        let mut body = json!({ "name": name, "kind": kind });
        if let Some(rule) = rule {
            body["rule"] = rule;
        }
        let created: Value = self
            .client
            .post(format!("{}/api/v1/audiences", self.base))
            .bearer_auth(self.admin)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        Ok(created["id"].as_str().with_context(|| format!("audience creation failed: {created}"))?.to_owned())
    }

    /// A RULE audience of `rule`.
    async fn rule_audience(&self, name: &str, rule: Value) -> anyhow::Result<String> {
        self.audience(name, "RULE", Some(rule)).await
    }

    /// A LIST audience holding `members`.
    async fn list_audience(&self, name: &str, members: impl Iterator<Item = String>) -> anyhow::Result<String> {
        let id = self.audience(name, "LIST", None).await?;
        self.upload(&id, csv_of(members)).await?;
        Ok(id)
    }

    /// Replaces a LIST audience's members by `csv` in one PUT; returns the members it has now.
    async fn upload(&self, audience_id: &str, csv: Vec<u8>) -> anyhow::Result<u64> {
        let response = self
            .client
            .put(format!("{}/api/v1/audiences/{audience_id}/members", self.base))
            .bearer_auth(self.admin)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("upload: HTTP {}: {}", response.status(), response.text().await?);
        }
        let answer: Value = response.json().await?;
        answer["members"].as_u64().with_context(|| format!("upload answered {answer}"))
    }

    /// Starts an estimate of the audience and waits until it is done; returns the time it took
    /// and the estimate.
    async fn timed_estimate(&self, audience_id: &str) -> anyhow::Result<(Duration, Value)> {
        let url = format!("{}/api/v1/audiences/{audience_id}/estimate", self.base);
        let started = Instant::now();
        let job: Value = self.client.post(&url).bearer_auth(self.admin).send().await?.json().await?;
        let job_id = job["jobId"].as_str().with_context(|| format!("estimate not started: {job}"))?.to_owned();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let estimate: Value = self.client.get(&url).bearer_auth(self.admin).send().await?.json().await?;
            if estimate["jobId"] != job_id.as_str() {
                bail!("another estimate replaced ours: {estimate}");
            }
            match estimate["status"].as_str() {
                Some("RUNNING") => {}
                Some("DONE") => return Ok((started.elapsed(), estimate)),
                _ => bail!("estimate failed: {estimate}"),
            }
        }
    }

    /// Sets the event's audience target (`null`: every player).
    async fn target(&self, event_id: &str, target: &Value) -> anyhow::Result<()> {
        let response = self
            .client
            .patch(format!("{}/api/v1/events/{event_id}", self.base))
            .bearer_auth(self.admin)
            .json(&json!({ "audience": target }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("retargeting {event_id}: HTTP {}: {}", response.status(), response.text().await?);
        }
        Ok(())
    }
}

/// A CSV of user ids, one a line, under a `userId` header.
fn csv_of(ids: impl Iterator<Item = String>) -> Vec<u8> {
    let mut csv = b"userId\n".to_vec();
    for id in ids {
        csv.extend_from_slice(id.as_bytes());
        csv.push(b'\n');
    }
    csv
}

/// Runs `job(i)` for every `i` in `0..count` on `clients` concurrent tasks; returns the wall
/// time.
async fn concurrently<F, Fut>(count: usize, clients: usize, job: F) -> anyhow::Result<Duration>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..clients.max(1) {
        let (job, next) = (job.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                job(i).await?;
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    Ok(started.elapsed())
}

/// Merges `properties` into the player `user_id`'s with the service key `key`.
async fn set_properties(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    user_id: &str,
    properties: &Value,
) -> anyhow::Result<()> {
    let response = client
        .patch(format!("{base}/api/v1/players/{user_id}/properties"))
        .header("x-api-key", key)
        .json(properties)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("properties of {user_id}: HTTP {}: {}", response.status(), response.text().await?);
    }
    Ok(())
}

/// Sets the properties of every player `ids` names ([`properties_of`] their index), as a game
/// server would, concurrently; prints the rate.
async fn push_properties(client: &reqwest::Client, base: &str, key: &str, ids: Vec<String>) -> anyhow::Result<()> {
    let count = ids.len();
    let (client, base, key, ids) = (client.clone(), base.to_owned(), key.to_owned(), Arc::new(ids));
    let elapsed = concurrently(count, PROPERTY_CLIENTS, move |n| {
        let (client, base, key, ids) = (client.clone(), base.clone(), key.clone(), ids.clone());
        async move { set_properties(&client, &base, &key, &ids[n], &properties_of(n)).await }
    })
    .await?;
    println!(
        "properties:               {count} players in {:.1} s ({:.0} merges/s, {PROPERTY_CLIENTS} clients)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// `player-0` … `player-{count-1}`: the ids the game servers report activities and
/// properties for (the first 10,000 have the background activities).
fn game_players(count: usize) -> impl Iterator<Item = String> {
    (0..count).map(|n| format!("player-{n}"))
}

/// The event screen with targeted events: `events` running events of `tiers` tiers, half of
/// them targeted at RULE audiences (property, inactivity, an activity window, rollout) and LIST
/// ones, for a player with many activities in a store of many more and `players` players
/// with properties. Measured targeted, then with those events untargeted, then targeted again.
pub(super) async fn screen(
    seeding: Seeding,
    players: usize,
    events: usize,
    tiers: usize,
    requests: usize,
) -> anyhow::Result<()> {
    println!(
        "audience-screen benchmark: {} activities in the store, {} of them the player's, {players} players with \
         properties, {events} events x {tiers} tiers ({} targeted), {requests} sequential requests per phase",
        seeding.total,
        seeding.player_activities,
        events / 2
    );
    let (setup, player_token) = seeding.seed().await?;
    let (client, base) = (&setup.client, setup.server.base.as_str());
    let staff = Staff { client, base, admin: &setup.admin_token };
    let key = staff.service_key("players:write").await?;
    push_properties(client, base, &key, game_players(players).collect()).await?;
    let me: Value =
        client.get(format!("{base}/api/v1/auth/me")).bearer_auth(&player_token).send().await?.json().await?;
    let player_id = me["id"].as_str().context("the player's id")?.to_owned();
    set_properties(client, base, &key, &player_id, &json!({ "country": "KR", "platform": "ios", "vipLevel": 5 }))
        .await?;

    let started = Instant::now();
    let targets = screen_targets(&staff, &player_id, players).await?;
    println!("audiences:                6 RULE and 2 LIST created in {:.1} s", started.elapsed().as_secs_f64());
    let now = chrono::Utc::now();
    let mut targeted: Vec<(String, Value)> = Vec::new();
    for e in 0..events {
        let mut event = screen_event(e, tiers, now);
        let target = (e < events / 2).then(|| targets[e % targets.len()].clone());
        if let Some(target) = &target {
            event["audience"] = target.clone();
        }
        let id = created_and_activated(client, base, &setup.admin_token, &event).await?;
        if let Some(target) = target {
            targeted.push((id, target));
        }
    }

    let url = format!("{base}/api/v1/me/events?limit=100");
    let phase = async |name: &str| -> anyhow::Result<()> {
        let (mut latencies, last) = timed_gets(client, &url, &player_token, requests).await?;
        print_screen(&last);
        let latency = percentiles(&mut latencies);
        println!(
            "GET /api/v1/me/events, {name}: p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  (n={}; target p99 <= 20 ms)",
            latency.p50, latency.p99, latency.max, latency.count
        );
        Ok(())
    };
    phase(&format!("{} targeted", targeted.len())).await?;
    for (id, _) in &targeted {
        staff.target(id, &Value::Null).await?;
    }
    phase("none targeted").await?;
    for (id, target) in &targeted {
        staff.target(id, target).await?;
    }
    phase(&format!("{} targeted again", targeted.len())).await?;
    print_peak_rss(&setup.server);
    Ok(())
}

/// The audiences of the screen's targeted events, and ten targets over them: the player is
/// in some and out of others, and every kind of rule leaf is read.
async fn screen_targets(staff: &Staff<'_>, player_id: &str, players: usize) -> anyhow::Result<Vec<Value>> {
    let korea = staff
        .rule_audience(
            "korea",
            json!({ "type": "PROPERTY", "name": "country", "op": "IN",
        "value": ["KR", "JP"] }),
        )
        .await?;
    let away = staff.rule_audience("away 30 days", json!({ "type": "INACTIVE_DAYS", "min": 30 })).await?;
    let regulars =
        staff.rule_audience("regulars", json!({ "type": "LOGIN_DAYS", "days": 3, "withinDays": 14 })).await?;
    let half = staff.rule_audience("half", json!({ "type": "ROLLOUT", "percent": 50, "salt": "spring" })).await?;
    let spenders = staff
        .rule_audience(
            "ios spenders",
            json!({ "type": "AND", "subConditions": [
                { "type": "PROPERTY", "name": "platform", "op": "EQ", "value": "ios" },
                { "type": "PROPERTY", "name": "vipLevel", "op": "GTE", "value": 3 },
                { "type": "PURCHASE_TOTAL", "amount": 100, "withinDays": 30 },
            ]}),
        )
        .await?;
    let veterans = staff.rule_audience("veterans", json!({ "type": "ACCOUNT_AGE_DAYS", "max": 3650 })).await?;
    let testers =
        staff.list_audience("testers", game_players(players.saturating_sub(1)).chain([player_id.to_owned()])).await?;
    let blocked = staff.list_audience("blocked", (0..1_000).map(|n| format!("blocked-{n}"))).await?;
    let target = |include: &[&String], exclude: &[&String], sticky: bool| json!({ "include": include, "exclude": exclude, "sticky": sticky });
    Ok(vec![
        target(&[&korea], &[], false),
        target(&[&away], &[], false),
        target(&[&regulars], &[], false),
        target(&[&half], &[], false),
        target(&[&spenders], &[], false),
        target(&[&testers], &[], false),
        target(&[&korea], &[&blocked], false),
        target(&[&regulars, &testers], &[&away], true),
        target(&[&half], &[&blocked], false),
        target(&[&spenders, &veterans], &[], true),
    ])
}

/// Claims/s on a targeted event against an untargeted one with the same reward: `players`
/// players with properties each claim each event once, `clients` at a time, for `rounds`
/// rounds of a fresh pair of events (the order alternating between rounds).
pub(super) async fn claims(clients: usize, players: usize, rounds: usize, sticky: bool) -> anyhow::Result<()> {
    println!(
        "audience-claims benchmark: {clients} clients, {players} players each claiming each event once, {rounds} \
         rounds of a targeted (sticky: {sticky}) and an untargeted event"
    );
    let server = Server::start(&[
        ("BESTOW_BCRYPT_COST", "4".to_owned()),
        ("BESTOW_ADMIN_PASSWORD", BENCH_ADMIN_PASSWORD.to_owned()),
    ])?;
    let client = bestow_core::outbound::client_builder().pool_max_idle_per_host(clients * 2).build()?;
    let admin = login(&client, &server.base, "admin", BENCH_ADMIN_PASSWORD).await?;
    let staff = Staff { client: &client, base: &server.base, admin: &admin };
    let registered = registered_players(&client, &server.base, players).await?;
    let key = staff.service_key("players:write").await?;
    push_properties(&client, &server.base, &key, registered.iter().map(|player| player.id.clone()).collect()).await?;

    // Every player is inside: the cost measured is judging them, not turning them away.
    let everyone = staff
        .rule_audience(
            "every country",
            json!({ "type": "AND", "subConditions": [
                { "type": "PROPERTY", "name": "country", "op": "IN", "value": COUNTRIES },
                { "type": "PROPERTY", "name": "vipLevel", "op": "GTE", "value": 0 },
                { "type": "ROLLOUT", "percent": 100, "salt": "claims" },
            ]}),
        )
        .await?;
    let blocked = staff.list_audience("blocked", (0..1_000).map(|n| format!("blocked-{n}"))).await?;
    let target = json!({ "include": [everyone], "exclude": [blocked], "sticky": sticky });

    // Per kind (targeted first): claims, wall seconds, server CPU seconds.
    let mut totals = [(0usize, 0.0f64, 0.0f64); 2];
    for round in 0..rounds {
        let order = if round % 2 == 0 { [true, false] } else { [false, true] };
        for targeted in order {
            let kind = if targeted { "targeted" } else { "untargeted" };
            let mut event = point_event(&format!("{kind} {round}"), None);
            if targeted {
                event["audience"] = target.clone();
            }
            let event_id = created_and_activated(&client, &server.base, &admin, &event).await?;
            let pairs = registered.iter().map(|player| (player.access_token.clone(), event_id.clone())).collect();
            let cpu_before = server.cpu_time();
            let mut run = run_claims(&client, &server.base, pairs, clients, Duration::from_secs(600)).await;
            let cpu = server.cpu_time().zip(cpu_before).map_or(0.0, |(after, before)| (after - before).as_secs_f64());
            run.print(&format!("round {round}, {kind}"));
            if run.successes != players {
                bail!("{kind} event: {} of {players} claims succeeded", run.successes);
            }
            let total = &mut totals[usize::from(!targeted)];
            total.0 += run.successes;
            total.1 += run.elapsed;
            total.2 += cpu;
        }
    }
    let [targeted, untargeted] = totals.map(|(claims, seconds, _)| claims as f64 / seconds);
    let [targeted_cpu, untargeted_cpu] = totals.map(|(claims, _, cpu)| cpu * 1e6 / claims.max(1) as f64);
    println!("targeted:                 {targeted:8.1} claims/s, server CPU {targeted_cpu:6.0} µs a claim");
    println!("untargeted:               {untargeted:8.1} claims/s, server CPU {untargeted_cpu:6.0} µs a claim");
    println!(
        "ratio targeted/untargeted: {:.3} claims/s (target >= 0.9), {:.3} server CPU a claim",
        targeted / untargeted,
        targeted_cpu / untargeted_cpu
    );
    print_peak_rss(&server);
    Ok(())
}

/// Bulk audience work on a store of activities and `players` players with properties: a LIST
/// upload of `members` user ids (then a second one replacing it), and estimates of RULE
/// audiences of growing cost over every player with properties.
pub(super) async fn upload(members: usize, players: usize, seeding: Seeding) -> anyhow::Result<()> {
    println!(
        "audience-upload benchmark: a LIST upload of {members} user ids; RULE estimates over {players} players with \
         properties, {} activities in the store",
        seeding.total
    );
    let (setup, _) = seeding.seed().await?;
    let (client, base) = (&setup.client, setup.server.base.as_str());
    let staff = Staff { client, base, admin: &setup.admin_token };
    let key = staff.service_key("players:write").await?;
    push_properties(client, base, &key, game_players(players).collect()).await?;

    let list = staff.audience("uploaded", "LIST", None).await?;
    for (name, offset) in [("new audience", 0), ("replacing those", members / 2)] {
        let csv = csv_of((offset..offset + members).map(|n| format!("player-{n}")));
        let bytes = csv.len();
        let cpu_before = setup.server.cpu_time();
        let started = Instant::now();
        let stored = staff.upload(&list, csv).await?;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = setup.server.cpu_time().zip(cpu_before).map_or(0.0, |(after, before)| (after - before).as_secs_f64());
        println!(
            "LIST upload, {name}: {stored} members ({:.1} MiB of CSV) in {elapsed:.2} s ({:.0} ids/s, server CPU \
             {cpu:.1} s; target <= 30 s)",
            bytes as f64 / (1024.0 * 1024.0),
            stored as f64 / elapsed
        );
    }

    let rules = [
        (
            "properties and rollout",
            json!({ "type": "AND", "subConditions": [
                { "type": "PROPERTY", "name": "country", "op": "IN", "value": ["KR", "JP"] },
                { "type": "PROPERTY", "name": "vipLevel", "op": "GTE", "value": 3 },
                { "type": "ROLLOUT", "percent": 50, "salt": "estimate" },
            ]}),
        ),
        (
            "property and inactivity",
            json!({ "type": "AND", "subConditions": [
                { "type": "PROPERTY", "name": "platform", "op": "EQ", "value": "ios" },
                { "type": "INACTIVE_DAYS", "min": 7 },
            ]}),
        ),
        ("logins in a window", json!({ "type": "LOGIN_DAYS", "days": 3, "withinDays": 14 })),
    ];
    for (name, rule) in rules {
        let audience = staff.rule_audience(name, rule).await?;
        let cpu_before = setup.server.cpu_time();
        let (elapsed, estimate) = staff.timed_estimate(&audience).await?;
        let cpu = setup.server.cpu_time().zip(cpu_before).map_or(0.0, |(after, before)| (after - before).as_secs_f64());
        println!(
            "RULE estimate, {name}: {} members of {} scanned (total {}) in {:.2} s (server CPU {cpu:.1} s; \
             target <= 10 s)",
            estimate["members"],
            estimate["scanned"],
            estimate["total"],
            elapsed.as_secs_f64()
        );
    }
    print_peak_rss(&setup.server);
    Ok(())
}
