//! Split mode: auth, events and the gateway as three real `bestow` processes on loopback.
//!
//! One end-to-end scenario runs against all-in-one and against split mode and must observe
//! the same thing; then what only split mode has: a dead or restarted events process, key
//! rotation seen by the other processes without a restart, the internal route.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::console::ConsoleClient;
use crate::helpers::{ADMIN_PASSWORD, Client, TestApp, point_event};
use crate::process::ServeProcess;

pub(crate) const SECRET: &str = "split-mode-shared-secret";

/// Three `bestow` processes: auth, events and the gateway in front of them.
pub(crate) struct SplitDeployment {
    pub(crate) auth: ServeProcess,
    pub(crate) events: ServeProcess,
    pub(crate) gateway: ServeProcess,
    events_env: Vec<(String, String)>,
    dirs: [TempDir; 3],
}

impl SplitDeployment {
    /// Starts auth, then events (with `events_env` added), then the gateway.
    pub(crate) fn start(events_env: &[(&str, &str)]) -> Self {
        Self::start_with(&[], events_env)
    }

    /// Like [`Self::start`], with `storage_env` given to auth and events.
    pub(crate) fn start_with(storage_env: &[(&str, &str)], events_env: &[(&str, &str)]) -> Self {
        let dirs = [TempDir::new().unwrap(), TempDir::new().unwrap(), TempDir::new().unwrap()];
        let mut auth_env = vec![("BESTOW_INTERNAL_SECRET", SECRET), ("BESTOW_ADMIN_PASSWORD", ADMIN_PASSWORD)];
        auth_env.extend_from_slice(storage_env);
        let auth = ServeProcess::start_command("auth", dirs[0].path(), &auth_env);
        let events_env: Vec<(String, String)> =
            storage_env.iter().chain(events_env).map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
        let events = Self::start_events(dirs[1].path(), &auth.base, &events_env, "127.0.0.1:0");
        let gateway_env = [
            ("BESTOW_INTERNAL_SECRET", SECRET),
            ("BESTOW_AUTH_URL", auth.base.as_str()),
            ("BESTOW_EVENTS_URL", events.base.as_str()),
            ("BESTOW_RATE_LIMIT_ADDRESS_PER_SEC", "0"),
            ("BESTOW_RATE_LIMIT_USER_PER_SEC", "0"),
        ];
        let gateway = ServeProcess::start_command("gateway", dirs[2].path(), &gateway_env);
        Self { auth, events, gateway, events_env, dirs }
    }

    fn start_events(dir: &std::path::Path, auth: &str, extra: &[(String, String)], listen: &str) -> ServeProcess {
        let mut env = vec![("BESTOW_INTERNAL_SECRET", SECRET), ("BESTOW_AUTH_URL", auth), ("BESTOW_LISTEN", listen)];
        env.extend(extra.iter().map(|(key, value)| (key.as_str(), value.as_str())));
        ServeProcess::start_command("events", dir, &env)
    }

    /// Kills the events process (as a crash would) and returns its output.
    pub(crate) fn kill_events(&mut self) -> String {
        let replacement = ServeProcess::placeholder();
        std::mem::replace(&mut self.events, replacement).stop()
    }

    /// Kills the auth process and returns its output.
    pub(crate) fn kill_auth(&mut self) -> String {
        std::mem::replace(&mut self.auth, ServeProcess::placeholder()).stop()
    }

    /// Starts events again on its old port, with the same data dir, without `drop_env` keys.
    pub(crate) fn restart_events(&mut self, drop_env: &[&str]) {
        let listen = self.events.base.trim_start_matches("http://").to_owned();
        let _ = self.kill_events();
        self.events_env.retain(|(key, _)| !drop_env.contains(&key.as_str()));
        self.events = Self::start_events(self.dirs[1].path(), &self.auth.base, &self.events_env, &listen);
    }

    pub(crate) fn gateway(&self) -> Client {
        Client::new(&self.gateway.base)
    }

    pub(crate) fn stop(self) {
        for process in [self.gateway, self.events, self.auth] {
            process.stop();
        }
    }
}

/// The end-to-end scenario. Returns its transcript: one line per step with what a client
/// observes (statuses and business outcomes; never ids or times, which differ per run).
pub(crate) async fn scenario(api: &Client) -> Vec<String> {
    let mut transcript = Vec::new();
    let mut note = |step: &str, status: StatusCode, outcome: &str| {
        transcript.push(format!("{step}: {} {outcome}", status.as_u16()));
    };
    let password = "correct-horse-battery";
    let credentials = |username: &str| json!({ "username": username, "password": password });

    // Sign-up and sign-in; roles are never self-assigned.
    let (status, alice) = api.post("/api/v1/auth/register", None, credentials("alice")).await;
    note("register alice", status, alice["roles"].to_string().as_str());
    let alice_id = alice["id"].as_str().unwrap().to_owned();
    let (status, _) = api.post("/api/v1/auth/register", None, credentials("ALICE")).await;
    note("register ALICE again", status, "");
    let mut self_made_admin = credentials("mallory");
    self_made_admin["roles"] = json!(["ADMIN"]);
    let (status, problem) = api.post("/api/v1/auth/register", None, self_made_admin).await;
    note("register with roles", status, problem["code"].as_str().unwrap_or_default());
    let (status, _) =
        api.post("/api/v1/auth/login", None, json!({ "username": "alice", "password": "nope-nope" })).await;
    note("login with a wrong password", status, "");
    let alice = api.login("alice", password).await;
    let (status, me) = api.get("/api/v1/auth/me", Some(&alice)).await;
    note("alice reads herself", status, me["username"].as_str().unwrap_or_default());

    // The admin grants roles.
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    for (username, role) in [("opal", "OPERATOR"), ("audra", "AUDITOR"), ("bob", "USER")] {
        let (_, user) = api.post("/api/v1/auth/register", None, credentials(username)).await;
        let path = format!("/api/v1/users/{}/roles", user["id"].as_str().unwrap());
        let (status, user) = api.call(Method::PUT, &path, Some(&admin), Some(json!({ "roles": [role] }))).await;
        note(&format!("admin makes {username} {role}"), status, user["roles"].to_string().as_str());
    }
    let (operator, auditor, bob) =
        (api.login("opal", password).await, api.login("audra", password).await, api.login("bob", password).await);
    let (status, _) = api
        .call(
            Method::PUT,
            &format!("/api/v1/users/{alice_id}/roles"),
            Some(&operator),
            Some(json!({ "roles": ["ADMIN"] })),
        )
        .await;
    note("operator grants a role", status, "");

    // An operator creates and activates an event with a condition and a limited reward.
    let now = chrono::Utc::now();
    let event = json!({
        "eventName": "Boss week",
        "description": "defeat three bosses",
        "startDate": (now - chrono::Duration::days(1)).to_rfc3339(),
        "endDate": (now + chrono::Duration::days(7)).to_rfc3339(),
        "conditions": { "type": "ACTIVITY_COUNT", "activityType": "BOSS_KILLED", "count": 3 },
        "rewards": [{ "rewardType": "POINT", "rewardName": "100 points", "details": { "points": 100 },
                      "quantityPerUser": 1, "totalStock": 5 }],
    });
    let (status, _) = api.post("/api/v1/events", Some(&alice), event.clone()).await;
    note("player creates an event", status, "");
    let (status, created) = api.post("/api/v1/events", Some(&operator), event).await;
    note("operator creates an event", status, created["status"].as_str().unwrap_or_default());
    let event_id = created["id"].as_str().unwrap().to_owned();
    let (status, _) = api.get(&format!("/api/v1/events/{event_id}"), Some(&alice)).await;
    note("player reads a draft", status, "");
    let path = format!("/api/v1/events/{event_id}/status");
    let (status, active) = api.call(Method::PUT, &path, Some(&operator), Some(json!({ "status": "ACTIVE" }))).await;
    note("operator activates", status, active["status"].as_str().unwrap_or_default());

    // A game server pushes activities with a service key.
    let (status, key) = api
        .post("/api/v1/service-keys", Some(&admin), json!({ "name": "game-eu", "scopes": ["activities:write"] }))
        .await;
    note("admin creates a service key", status, "");
    let secret = key["secret"].as_str().unwrap().to_owned();
    let kills: Vec<Value> = (0..3)
        .map(|n| {
            json!({ "activityId": format!("kill-{n}"), "userId": alice_id, "type": "BOSS_KILLED",
                         "occurredAt": (now - chrono::Duration::minutes(n)).to_rfc3339() })
        })
        .collect();
    for attempt in ["first", "replayed"] {
        let response = api
            .request(Method::POST, "/api/v1/activities", None)
            .header("x-api-key", &secret)
            .json(&json!({ "activities": kills }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let receipt: Value = response.json().await.unwrap();
        note(
            &format!("{attempt} activity batch"),
            status,
            &format!("{} {}", receipt["accepted"], receipt["duplicates"]),
        );
    }
    let (status, progress) = api.get(&format!("/api/v1/events/{event_id}/eligibility"), Some(&alice)).await;
    note("alice's eligibility", status, &format!("{} {}", progress["eligible"], progress["conditions"]["current"]));
    // Staff read them back, newest first; neither the player nor a service key may.
    let path = format!("/api/v1/activities?userId={alice_id}");
    let (status, pushed) = api.get(&path, Some(&auditor)).await;
    let ids: Vec<&str> = pushed["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|item| item["activityId"].as_str()).collect())
        .unwrap_or_default();
    note("auditor reads alice's activities", status, &ids.join(","));
    let (status, _) = api.get(&path, Some(&alice)).await;
    note("alice reads her activities", status, "");
    let with_key = api.request(Method::GET, &path, None).header("x-api-key", &secret).send().await.unwrap();
    note("a service key reads activities", with_key.status(), "");

    // Claims: a success, its replay, a second attempt, and a player who does not qualify.
    let key = uuid::Uuid::new_v4().to_string();
    let (status, claimed) = api.claim(&alice, &event_id, &key).await;
    let request_id = claimed["requestId"].as_str().unwrap().to_owned();
    let claimed = api.final_claim(&alice, &request_id).await;
    note("alice claims", status, claimed["status"].as_str().unwrap_or_default());
    let (status, replay) = api.claim(&alice, &event_id, &key).await;
    note("alice replays", status, &(replay["requestId"] == request_id.as_str()).to_string());
    let (_, again) = api.claim(&alice, &event_id, &uuid::Uuid::new_v4().to_string()).await;
    let again = api.final_claim(&alice, again["requestId"].as_str().unwrap()).await;
    note("alice claims again", StatusCode::OK, again["status"].as_str().unwrap_or_default());
    let (_, refused) = api.claim(&bob, &event_id, &uuid::Uuid::new_v4().to_string()).await;
    let refused = api.final_claim(&bob, refused["requestId"].as_str().unwrap()).await;
    note("bob claims", StatusCode::OK, refused["status"].as_str().unwrap_or_default());
    let (status, _) = api.get(&format!("/api/v1/claims/{request_id}"), Some(&bob)).await;
    note("bob reads alice's claim", status, "");

    // History, wallet, audit.
    let (status, history) = api.get("/api/v1/claims/me", Some(&alice)).await;
    let mut statuses: Vec<String> =
        history["items"].as_array().unwrap().iter().map(|item| item["status"].as_str().unwrap().to_owned()).collect();
    statuses.sort();
    note("alice's history", status, &statuses.join(","));
    let (status, wallet) = api.get("/api/v1/wallet/me", Some(&alice)).await;
    note("alice's wallet", status, &wallet["points"].to_string());
    let (status, rewards) = api.get(&format!("/api/v1/events/{event_id}/rewards"), Some(&alice)).await;
    note(
        "remaining stock",
        status,
        &rewards.as_array().map(|r| r[0]["remainingStock"].to_string()).unwrap_or_default(),
    );
    let (status, log) = api.get("/api/v1/audit-logs?limit=100", Some(&auditor)).await;
    let mut actions: Vec<String> =
        log["items"].as_array().unwrap().iter().map(|entry| entry["action"].as_str().unwrap().to_owned()).collect();
    actions.sort();
    actions.dedup();
    note("auditor reads the events audit log", status, &actions.join(","));
    let (status, log) = api.get("/api/v1/auth/audit-logs?limit=100", Some(&auditor)).await;
    note("auditor reads the auth audit log", status, &log["total"].to_string());
    let (status, _) = api.get("/api/v1/audit-logs", Some(&alice)).await;
    note("player reads the audit log", status, "");
    // The auditors' exports: every row the list counts (through the gateway in split mode).
    for list in ["/api/v1/claims", "/api/v1/audit-logs", "/api/v1/auth/audit-logs"] {
        let response = api.request(Method::GET, &format!("{list}/export"), Some(&auditor)).send().await.unwrap();
        let status = response.status();
        let media_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let rows = crate::exports::parse_csv(&response.text().await.unwrap()).len() - 1;
        let (_, listed) = api.get(list, Some(&auditor)).await;
        let outcome = format!("{} {rows} rows, as listed: {}", media_type.unwrap_or_default(), listed["total"] == rows);
        note(&format!("auditor exports {list}"), status, &outcome);
    }
    let (status, _) = api.get("/api/v1/claims/export", Some(&alice)).await;
    note("player exports the claims", status, "");

    // Identity comes from the token only.
    let forged = api
        .request(Method::GET, "/api/v1/users", Some(&alice))
        .header("x-user-id", alice_id.as_str())
        .header("x-user-roles", "ADMIN")
        .header("x-user-role", "ADMIN")
        .send()
        .await
        .unwrap();
    note("forged identity headers", forged.status(), "");
    let forged: Value = api
        .request(Method::GET, "/api/v1/claims/me", Some(&bob))
        .header("x-user-id", alice_id.as_str())
        .header("x-forwarded-user", "alice")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let owners: Vec<&str> = forged["items"].as_array().unwrap().iter().filter_map(|c| c["userId"].as_str()).collect();
    let alices = owners.iter().any(|owner| *owner == alice_id);
    note(
        "bob's history with alice's id in headers",
        StatusCode::OK,
        &format!("{} claims, alice's: {alices}", owners.len()),
    );
    let (status, _) = api.get("/api/v1/claims/me", None).await;
    note("history without a token", status, "");

    // Signing out ends the session's access token too (within the standings' 2 s), not only
    // its refresh token; the account's other sessions go on.
    let (_, session) = api.post("/api/v1/auth/login", None, credentials("bob")).await;
    let signed_out = session["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(api.get("/api/v1/claims/me", Some(&signed_out)).await.0, StatusCode::OK);
    let refresh = json!({ "refreshToken": session["refreshToken"] });
    let (status, _) = api.post("/api/v1/auth/logout", Some(&signed_out), refresh).await;
    let mut after = StatusCode::OK;
    for _ in 0..50 {
        after = api.get("/api/v1/claims/me", Some(&signed_out)).await.0;
        if after == StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (other_session, _) = api.get("/api/v1/claims/me", Some(&bob)).await;
    note("bob signs out, then uses that session's access token", status, &format!("{after} {other_session}"));
    let internal = api
        .request(Method::GET, &format!("/internal/v1/users/{alice_id}"), None)
        .header("x-bestow-service-token", SECRET)
        .send()
        .await
        .unwrap();
    note("internal user route", internal.status(), "");

    // The console, served by the same process (the gateway in split mode), acting through it.
    let mut browser = ConsoleClient::at(api.base());
    let root = browser.get("/").await;
    note("the root", root.status, root.location());
    let refused = browser.sign_in("alice", password).await;
    note("a player signs in to the console", refused.status, "");
    let signed_in = browser.sign_in("admin", ADMIN_PASSWORD).await;
    note("the admin signs in to the console", signed_in.status, signed_in.location());
    let events = browser.get("/console/events").await;
    note("the console lists events", events.status, &events.body.contains("Boss week").to_string());
    let claims = browser.get("/console/claims?status=SUCCESS_ALL_GRANTED").await;
    note("the console lists claims", claims.status, &claims.body.contains("Boss week").to_string());
    let export = browser.get("/console/claims/export").await;
    note("the console exports claims", export.status, &export.body.lines().count().to_string());
    transcript
}

#[tokio::test]
async fn the_scenario_observes_the_same_in_all_in_one_and_split_mode() {
    let app = TestApp::spawn().await;
    let all_in_one = scenario(&Client::new(&app.url(""))).await;
    app.stop().await;

    let split = SplitDeployment::start(&[]);
    let three_processes = scenario(&split.gateway()).await;
    split.stop();

    assert_eq!(all_in_one, three_processes, "the two modes disagree");
    let expected = [
        "register alice: 201 [\"USER\"]",
        "register ALICE again: 409 ",
        "register with roles: 400 VALIDATION_FAILED",
        "login with a wrong password: 401 ",
        "operator grants a role: 403 ",
        "player creates an event: 403 ",
        "player reads a draft: 404 ",
        "first activity batch: 202 3 0",
        "replayed activity batch: 202 0 3",
        "alice's eligibility: 200 true 3",
        "auditor reads alice's activities: 200 kill-0,kill-1,kill-2",
        "alice reads her activities: 403 ",
        "a service key reads activities: 401 ",
        "alice claims: 201 SUCCESS_ALL_GRANTED",
        "alice replays: 200 true",
        "alice claims again: 200 VALIDATION_FAILED_ALREADY_CLAIMED",
        "bob claims: 200 CONDITION_NOT_MET",
        "bob reads alice's claim: 404 ",
        "alice's wallet: 200 100",
        "remaining stock: 200 4",
        "player reads the audit log: 403 ",
        "auditor exports /api/v1/claims: 200 text/csv; charset=utf-8 3 rows, as listed: true",
        "player exports the claims: 403 ",
        "forged identity headers: 403 ",
        "bob's history with alice's id in headers: 200 1 claims, alice's: false",
        "history without a token: 401 ",
        "bob signs out, then uses that session's access token: 204 401 Unauthorized 200 OK",
        "internal user route: 404 ",
        "the root: 303 /console/",
        "a player signs in to the console: 403 ",
        "the admin signs in to the console: 303 /console/",
        "the console lists events: 200 true",
        "the console lists claims: 200 true",
    ];
    for line in expected {
        assert!(all_in_one.iter().any(|seen| seen == line), "missing {line:?} in\n{}", all_in_one.join("\n"));
    }
}

#[tokio::test]
async fn the_internal_route_needs_the_service_credential_and_is_not_routed() {
    let split = SplitDeployment::start(&[]);
    let gateway = split.gateway();
    let admin = gateway.login("admin", ADMIN_PASSWORD).await;
    let (_, me) = gateway.get("/api/v1/auth/me", Some(&admin)).await;
    let path = format!("/internal/v1/users/{}", me["id"].as_str().unwrap());
    let http = bestow_core::outbound::client().unwrap();
    let direct = |token: Option<&str>| {
        let mut request = http.get(format!("{}{path}", split.auth.base));
        if let Some(token) = token {
            request = request.header("x-bestow-service-token", token);
        }
        request.send()
    };
    assert_eq!(direct(Some(SECRET)).await.unwrap().status(), StatusCode::OK, "events' view of auth");
    assert_eq!(direct(None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(direct(Some("a-wrong-secret-value")).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let through_gateway = http
        .get(format!("{}{path}", split.gateway.base))
        .header("x-bestow-service-token", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(through_gateway.status(), StatusCode::NOT_FOUND);
    split.stop();
}

#[tokio::test]
async fn a_dead_events_process_is_a_prompt_503_and_a_restart_resumes_claims() {
    // Events crashes right after reserving stock, before granting: the claim is in flight.
    let mut split = SplitDeployment::start(&[
        ("BESTOW_TEST_CRASH_AT", "ALLOCATE_INVENTORY:after"),
        ("BESTOW_CLAIM_LEASE_MS", "500"),
        ("BESTOW_RECOVERY_SWEEP_MS", "200"),
    ]);
    let api = split.gateway();
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    let player = api.player("carol", "correct-horse-battery").await;
    let event_id = api.active_event(&admin, point_event("Crash week", 50, 1)).await;

    let key = uuid::Uuid::new_v4().to_string();
    let (status, _) = api.claim(&player, &event_id, &key).await;
    assert!(status.is_server_error(), "the events process died under the claim: {status}");
    assert_eq!(split.events.wait_exit(Duration::from_secs(5)), Some(86), "crashed at the fault switch");

    // Down: every events route is a prompt 503 problem; auth routes still work.
    let started = Instant::now();
    let (status, problem) = api.get("/api/v1/claims/me", Some(&player)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem["code"], "SERVICE_UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_secs(2), "answered in {:?}", started.elapsed());
    assert_eq!(api.get("/api/v1/auth/me", Some(&player)).await.0, StatusCode::OK);
    let readiness =
        bestow_core::outbound::client().unwrap().get(format!("{}/readyz", split.gateway.base)).send().await.unwrap();
    assert_eq!(readiness.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Back up: traffic resumes and the in-flight claim completes through recovery.
    split.restart_events(&["BESTOW_TEST_CRASH_AT"]);
    let (status, replay) = api.claim(&player, &event_id, &key).await;
    assert!(matches!(status.as_u16(), 200 | 202), "the replay finds the recorded claim: {status} {replay}");
    let done = api.final_claim(&player, replay["requestId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "SUCCESS_ALL_GRANTED", "{done}");
    let (_, wallet) = api.get("/api/v1/wallet/me", Some(&player)).await;
    assert_eq!(wallet["points"], 50, "granted exactly once");
    split.stop();
}

#[tokio::test]
async fn a_rotated_signing_key_verifies_at_gateway_and_events_without_a_restart() {
    let split = SplitDeployment::start(&[]);
    let api = split.gateway();
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    let kid_of = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let old_kid = kid_of(&admin);
    // Both gateway and events have now cached the first key.
    assert_eq!(api.get("/api/v1/events", Some(&admin)).await.0, StatusCode::OK);

    let (status, rotated) = api.post("/api/v1/auth/signing-keys", Some(&admin), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let fresh = api.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(kid_of(&fresh), rotated["kid"].as_str().unwrap());
    assert_ne!(kid_of(&fresh), old_kid);

    assert_eq!(api.get("/api/v1/events", Some(&fresh)).await.0, StatusCode::OK, "through the gateway");
    let direct = Client::new(&split.events.base);
    assert_eq!(direct.get("/api/v1/events", Some(&fresh)).await.0, StatusCode::OK, "at events itself");
    assert_eq!(api.get("/api/v1/events", Some(&admin)).await.0, StatusCode::OK, "older tokens keep working");
    let (status, log) = api.get("/api/v1/auth/audit-logs?action=signing_key.rotate", Some(&fresh)).await;
    assert_eq!((status, log["total"].as_u64()), (StatusCode::OK, Some(1)), "{log}");
    let (status, _) =
        api.post("/api/v1/auth/signing-keys", Some(&api.login("admin", ADMIN_PASSWORD).await), json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    split.stop();
}

#[tokio::test]
async fn the_gateway_refuses_early_and_carries_the_request_id() {
    let split = SplitDeployment::start(&[]);
    let api = split.gateway();
    // 401/403 come from the gateway's table: the same answers the services give.
    let (status, problem) = api.get("/api/v1/users", None).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED")));
    let (status, problem) = api.call(Method::DELETE, "/api/v1/auth/login", None, None).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("METHOD_NOT_ALLOWED")));
    let (status, problem) = api.get("/api/v1/nowhere", None).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("ROUTE_NOT_FOUND")));

    // The request id travels to the service and back.
    let response = api
        .request(Method::GET, "/.well-known/jwks.json", None)
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let stopped = split.auth.stop();
    assert!(stopped.contains("trace-me-42"), "auth logged the gateway's request id");
    for process in [split.gateway, split.events] {
        process.stop();
    }
}

/// Checks a call's status and problem code.
fn assert_refused((status, problem): (StatusCode, Value), expected: StatusCode, code: &str) {
    assert_eq!((status, problem["code"].as_str()), (expected, Some(code)), "{problem}");
}

#[tokio::test]
async fn with_every_service_down_the_gateway_still_refuses_by_its_table() {
    let mut split = SplitDeployment::start(&[]);
    let api = split.gateway();
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    let player = api.player("pat", "pat-password").await;
    // The gateway learns auth's keys while auth is up.
    assert_eq!(api.get("/api/v1/events", Some(&player)).await.0, StatusCode::OK);
    let _ = split.kill_events();
    let _ = split.kill_auth();

    // No service could answer any of these: the answers are the gateway's own.
    assert_refused(api.get("/api/v1/events", None).await, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_refused(api.get("/api/v1/users", Some(&player)).await, StatusCode::FORBIDDEN, "FORBIDDEN");
    let (status, _) = api.post("/api/v1/events", Some(&player), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.get("/api/v1/events", Some("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // An admitted request finds the service down.
    assert_eq!(api.get("/api/v1/events", Some(&admin)).await.0, StatusCode::SERVICE_UNAVAILABLE);
    split.stop();
}

#[tokio::test]
async fn a_token_is_not_refused_because_auth_is_unreachable() {
    let mut split = SplitDeployment::start(&[]);
    let api = split.gateway();
    // Signing in goes through the gateway without verifying a token, so the gateway has not
    // fetched auth's keys yet when auth goes away.
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    let _ = split.kill_auth();

    assert_refused(
        api.get("/api/v1/events", Some(&admin)).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    );
    split.stop();
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_per_user_and_per_address() {
    let app = TestApp::spawn_configured(|config| {
        (config.gateway.rate_limit_user_per_sec, config.gateway.rate_limit_user_burst) = (1, 3);
    })
    .await;
    let api = Client::new(&app.url(""));
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    let statuses: Vec<u16> = futures_statuses(&api, &admin, 4).await;
    assert_eq!(statuses, [200, 200, 200, 429], "a burst of three, then the rate");
    let response = api.request(Method::GET, "/api/v1/auth/me", Some(&admin)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    // Another user has a bucket of its own; public routes are not per-user limited.
    let other = api
        .post("/api/v1/auth/register", None, json!({ "username": "dora", "password": "correct-horse-battery" }))
        .await;
    assert_eq!(other.0, StatusCode::CREATED);
    let dora = api.login("dora", "correct-horse-battery").await;
    assert_eq!(api.get("/api/v1/auth/me", Some(&dora)).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(api.get("/api/v1/auth/me", Some(&admin)).await.0, StatusCode::OK, "refilled after a second");
    app.stop().await;

    let app = TestApp::spawn_configured(|config| {
        (config.gateway.rate_limit_address_per_sec, config.gateway.rate_limit_address_burst) = (1, 2);
    })
    .await;
    let api = Client::new(&app.url(""));
    let statuses = [
        api.get("/.well-known/jwks.json", None).await.0,
        api.get("/api/v1/no-such-route", None).await.0,
        api.get("/.well-known/jwks.json", None).await.0,
        api.get("/api/v1/another-guess", None).await.0,
    ];
    assert_eq!(
        statuses.map(|s| s.as_u16()),
        [200, 404, 429, 429],
        "anonymous callers are limited by address, probing for routes included"
    );
    assert_eq!(api.get("/healthz", None).await.0, StatusCode::OK, "health checks are never limited");
    app.stop().await;
}

async fn futures_statuses(api: &Client, token: &str, count: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..count {
        statuses.push(api.get("/api/v1/auth/me", Some(token)).await.0.as_u16());
    }
    statuses
}

#[tokio::test]
async fn cors_answers_preflights_for_configured_origins_only() {
    let app =
        TestApp::spawn_configured(|config| config.gateway.cors_allowed_origins = "https://play.example".into()).await;
    let preflight = |origin: &'static str| {
        app.api
            .http()
            .request(Method::OPTIONS, app.url("/api/v1/events"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let allowed = preflight("https://play.example").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://play.example");
    let methods = allowed.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none());
    app.stop().await;

    let app = TestApp::spawn().await;
    let response = app
        .api
        .http()
        .get(app.url("/.well-known/jwks.json"))
        .header("origin", "https://play.example")
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none(), "no CORS unless configured");
    app.stop().await;
}

#[tokio::test]
async fn a_list_upload_past_the_gateways_body_limit_is_streamed_through_to_events() {
    let split = SplitDeployment::start(&[]);
    let api = split.gateway();
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    let list = json!({ "name": "Everyone we know", "kind": "LIST" });
    let audience = api.expect(StatusCode::CREATED, Method::POST, "/api/v1/audiences", Some(&admin), Some(list)).await;
    let path = format!("/api/v1/audiences/{}/members", audience["id"].as_str().unwrap());
    // 1.2 MB of user ids: past the gateway's 1 MiB body limit, which a JSON body may not pass.
    let csv: String = (0..60_000).map(|line| format!("player-{line:012}\n")).collect();
    assert!(csv.len() > 1024 * 1024);
    let response = api
        .request(Method::PUT, &path, Some(&admin))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "members": 60_000 }));
    let stored = api.expect(StatusCode::OK, Method::GET, &path.replace("/members", ""), Some(&admin), None).await;
    assert_eq!(stored["memberCount"], 60_000);
    let too_big = json!({ "name": "x".repeat(2 * 1024 * 1024), "kind": "LIST" });
    let (status, _) = api.post("/api/v1/audiences", Some(&admin), too_big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    split.stop();
}

#[test]
fn every_documented_route_is_in_the_gateway_table_with_its_service() {
    use bestow_gateway::routes::{Resolution, Upstream, resolve};
    let documents =
        [(Upstream::Auth, bestow_auth::http::openapi()), (Upstream::Events, bestow_events::http::openapi())];
    let mut checked = 0;
    for (upstream, document) in documents {
        for (path, item) in document.paths.paths {
            let operations = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ];
            for (method, present) in operations {
                if !present {
                    continue;
                }
                let method: Method = method.parse().unwrap();
                match resolve(&method, &path) {
                    Resolution::Found(route) => assert_eq!(route.upstream, upstream, "{method} {path}"),
                    other => panic!("{method} {path} is documented but the gateway answers {other:?}"),
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, bestow_gateway::routes::ROUTES.len(), "the table has no route the services lack");
}
