//! Attacks replayed over real HTTP: each test makes the attack of a security finding and
//! checks that it fails, and that the legitimate use beside it still works.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinSet;

use crate::fixtures::{activated_event, create_event, event_body, set_status};
use crate::helpers::{ADMIN_PASSWORD, PASSWORD, TestApp, pointers, problem, token_of};
use crate::process::ServeProcess;
use crate::split::SplitDeployment;

async fn status_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

// --- 1. Stale privileges ------------------------------------------------------------------

#[tokio::test]
async fn nobody_changes_their_own_roles_or_active_state() {
    let app = TestApp::spawn().await;
    let (id, admin2) = app.user_with_roles("admin2", &["ADMIN"]).await;
    for (method, path, body) in [
        (Method::PUT, format!("/api/v1/users/{id}/roles"), json!({ "roles": ["ADMIN", "USER"] })),
        (Method::PATCH, format!("/api/v1/users/{id}"), json!({ "isActive": true })),
        (Method::PATCH, format!("/api/v1/users/{id}"), json!({ "isActive": false })),
    ] {
        let response = app.send_json(method, &path, Some(&admin2), &body).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} {body}");
        assert_eq!(problem(response).await["code"], "SELF_CHANGE_FORBIDDEN");
    }
    // Another admin still can.
    let admin = app.admin_token().await;
    let response = app
        .send_json(Method::PUT, &format!("/api/v1/users/{id}/roles"), Some(&admin), &json!({ "roles": ["USER"] }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_deactivated_admin_cannot_revive_itself_with_its_old_token() {
    let app = TestApp::spawn().await;
    let (id, admin2) = app.user_with_roles("admin2", &["ADMIN"]).await;
    let admin = app.admin_token().await;
    let deactivate =
        app.send_json(Method::PATCH, &format!("/api/v1/users/{id}"), Some(&admin), &json!({ "isActive": false })).await;
    assert_eq!(deactivate.status(), StatusCode::OK);

    // The replay: the old token, 15 minutes from expiry, on every kind of route.
    let revive =
        app.send_json(Method::PATCH, &format!("/api/v1/users/{id}"), Some(&admin2), &json!({ "isActive": true })).await;
    assert_eq!(revive.status(), StatusCode::UNAUTHORIZED);
    for path in ["/api/v1/auth/me", "/api/v1/users", "/api/v1/events", "/api/v1/claims"] {
        assert_eq!(app.get(path, Some(&admin2)).await.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    assert_eq!(app.login("admin2", PASSWORD).await.status(), StatusCode::UNAUTHORIZED, "still inactive");
}

#[tokio::test]
async fn a_demoted_admin_loses_its_rights_at_once_and_a_promotion_needs_no_new_token() {
    let app = TestApp::spawn().await;
    let (id, admin2) = app.user_with_roles("admin2", &["ADMIN"]).await;
    let admin = app.admin_token().await;
    assert_eq!(app.get("/api/v1/users", Some(&admin2)).await.status(), StatusCode::OK);
    let roles = format!("/api/v1/users/{id}/roles");
    let demote = app.send_json(Method::PUT, &roles, Some(&admin), &json!({ "roles": ["USER"] })).await;
    assert_eq!(demote.status(), StatusCode::OK);

    // The replay: the token still says ADMIN.
    assert_eq!(app.get("/api/v1/users", Some(&admin2)).await.status(), StatusCode::FORBIDDEN);
    let again = app.send_json(Method::PUT, &roles, Some(&admin2), &json!({ "roles": ["ADMIN"] })).await;
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    // What a USER may do, it still may, with the same token.
    assert_eq!(app.get("/api/v1/auth/me", Some(&admin2)).await.status(), StatusCode::OK);

    let (_, operator) = app.user_with_roles("promoted", &["USER"]).await;
    assert_eq!(app.get("/api/v1/claims", Some(&operator)).await.status(), StatusCode::FORBIDDEN);
    let promoted = app.get("/api/v1/users?q=promoted", Some(&admin)).await.json::<Value>().await.unwrap();
    let promoted_id = promoted["items"][0]["id"].as_str().unwrap().to_owned();
    let promote = app
        .send_json(
            Method::PUT,
            &format!("/api/v1/users/{promoted_id}/roles"),
            Some(&admin),
            &json!({ "roles": ["AUDITOR"] }),
        )
        .await;
    assert_eq!(promote.status(), StatusCode::OK);
    assert_eq!(app.get("/api/v1/claims", Some(&operator)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_password_change_ends_every_session_of_the_account() {
    let app = TestApp::spawn().await;
    let (_, laptop) = app.user_with_roles("pat", &["USER"]).await;
    let phone = token_of(&app.session("pat", PASSWORD).await);
    let change = json!({ "currentPassword": PASSWORD, "newPassword": "a-brand-new-password" });
    let response = app.send_json(Method::PUT, "/api/v1/auth/me/password", Some(&laptop), &change).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for token in [&laptop, &phone] {
        assert_eq!(app.get("/api/v1/auth/me", Some(token)).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(app.get("/api/v1/events", Some(token)).await.status(), StatusCode::UNAUTHORIZED);
    }
    let fresh = token_of(&app.session("pat", "a-brand-new-password").await);
    assert_eq!(app.get("/api/v1/auth/me", Some(&fresh)).await.status(), StatusCode::OK);
}

/// In split mode the gateway and events learn of a change from auth within seconds.
#[tokio::test]
async fn in_split_mode_a_deactivation_reaches_gateway_and_events_within_five_seconds() {
    let split = SplitDeployment::start(&[]);
    let api = split.gateway();
    let events = crate::helpers::Client::new(&split.events.base);
    let admin = api.login("admin", ADMIN_PASSWORD).await;
    let (status, user) =
        api.post("/api/v1/auth/register", None, json!({ "username": "sam", "password": PASSWORD })).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = user["id"].as_str().unwrap().to_owned();
    let (status, _) = api
        .call(Method::PUT, &format!("/api/v1/users/{id}/roles"), Some(&admin), Some(json!({ "roles": ["OPERATOR"] })))
        .await;
    assert_eq!(status, StatusCode::OK);
    let sam = api.login("sam", PASSWORD).await;
    assert_eq!(api.get("/api/v1/claims", Some(&sam)).await.0, StatusCode::OK);
    assert_eq!(events.get("/api/v1/claims", Some(&sam)).await.0, StatusCode::OK);

    let changed = Instant::now();
    let (status, _) =
        api.call(Method::PATCH, &format!("/api/v1/users/{id}"), Some(&admin), Some(json!({ "isActive": false }))).await;
    assert_eq!(status, StatusCode::OK);
    loop {
        let through_gateway = api.get("/api/v1/claims", Some(&sam)).await.0;
        let direct = events.get("/api/v1/claims", Some(&sam)).await.0;
        if through_gateway == StatusCode::UNAUTHORIZED && direct == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(changed.elapsed() < Duration::from_secs(5), "still {through_gateway}/{direct} after 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    split.stop();
}

// --- 2. Login throttle races --------------------------------------------------------------

#[tokio::test]
async fn parallel_wrong_passwords_reach_the_check_at_most_limit_times() {
    let app = Arc::new(TestApp::spawn_configured(|config| config.auth.login_max_failures_per_address = 1000).await);
    app.register("victim", PASSWORD).await;
    let mut set = JoinSet::new();
    for _ in 0..64 {
        let app = app.clone();
        set.spawn(async move { app.login("victim", "wrong-password!").await.status() });
    }
    let statuses = set.join_all().await;
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(checked + refused, 64, "{statuses:?}");
    assert!(checked <= 5, "{checked} passwords were checked; the limit is 5");
    assert_eq!(app.login("victim", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS, "locked for the window");
}

#[tokio::test]
async fn password_changes_are_throttled_like_logins() {
    let app = Arc::new(TestApp::spawn_configured(|config| config.auth.login_max_failures_per_address = 1000).await);
    let (_, token) = app.user_with_roles("stolen", &["USER"]).await;
    let mut set = JoinSet::new();
    for i in 0..64 {
        let (app, token) = (app.clone(), token.clone());
        set.spawn(async move {
            let guess = json!({ "currentPassword": format!("guess-number-{i}"), "newPassword": "taken-over-account" });
            app.send_json(Method::PUT, "/api/v1/auth/me/password", Some(&token), &guess).await.status()
        });
    }
    let statuses = set.join_all().await;
    let checked = statuses.iter().filter(|s| **s == StatusCode::FORBIDDEN).count();
    assert!(checked <= 5, "{checked} guesses were checked: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 64 - checked);
}

// --- 3. Coupon codes ----------------------------------------------------------------------

fn coupon(stock: i64) -> Value {
    json!({ "rewardType": "COUPON", "rewardName": "Welcome coupon",
            "details": { "couponCode": "SECRET-CODE-2026", "discountRate": 0.1, "description": "10% off" },
            "quantityPerUser": 1, "totalStock": stock })
}

fn mentions_the_code(value: &Value) -> bool {
    value.to_string().contains("SECRET-CODE-2026")
}

#[tokio::test]
async fn players_read_a_coupon_code_only_once_it_was_granted_to_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, player) = app.user_with_roles("shopper", &["USER"]).await;
    // One event the player cannot earn (conditions unmet), one it can.
    let mut locked = event_body("locked coupon");
    locked["rewards"] = json!([coupon(10)]);
    let locked = activated_event(&app, &admin, &locked).await;
    let mut open = event_body("open coupon");
    open["conditions"] = Value::Null;
    open["rewards"] = json!([coupon(10)]);
    let open = activated_event(&app, &admin, &open).await;

    // The replay: every read a player can make before earning the coupon.
    for path in [
        "/api/v1/events".to_owned(),
        format!("/api/v1/events/{locked}"),
        format!("/api/v1/events/{locked}/rewards"),
        format!("/api/v1/events/{open}"),
    ] {
        let body = app.get_json(&path, Some(&player)).await;
        assert!(!mentions_the_code(&body), "{path} shows the code: {body}");
        assert!(body.to_string().contains("discountRate"), "{path} keeps the public details");
    }
    let failed =
        app.request(Method::POST, &format!("/api/v1/events/{locked}/claims"), Some(&player)).send().await.unwrap();
    let failed: Value = failed.json().await.unwrap();
    assert_eq!(failed["status"], "CONDITION_NOT_MET");
    assert!(!mentions_the_code(&failed), "a failed claim shows the code: {failed}");
    let mine = app.get_json("/api/v1/claims/me", Some(&player)).await;
    assert!(!mentions_the_code(&mine));

    // Earned: the granted claim and the wallet show it, to this player.
    let granted =
        app.request(Method::POST, &format!("/api/v1/events/{open}/claims"), Some(&player)).send().await.unwrap();
    let granted: Value = granted.json().await.unwrap();
    assert_eq!(granted["status"], "SUCCESS_ALL_GRANTED");
    assert!(mentions_the_code(&granted));
    let wallet = app.get_json("/api/v1/wallet/me", Some(&player)).await;
    assert!(mentions_the_code(&wallet), "{wallet}");
    // Staff views are whole.
    let staff = app.get_json(&format!("/api/v1/events/{locked}"), Some(&admin)).await;
    assert!(mentions_the_code(&staff));
    let request_id = failed["requestId"].as_str().unwrap();
    let staff = app.get_json(&format!("/api/v1/claims/{request_id}"), Some(&admin)).await;
    assert!(mentions_the_code(&staff));
}

// --- 4. Hidden events ---------------------------------------------------------------------

#[tokio::test]
async fn events_hidden_from_players_are_absent_on_every_route() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, player) = app.user_with_roles("curious", &["USER"]).await;
    let mut body = event_body("hidden");
    body["conditions"] = Value::Null;
    let mut hidden = Vec::new();
    for path in [&[][..], &["ACTIVE", "INACTIVE"][..], &["ACTIVE", "EXPIRED", "ARCHIVED"][..]] {
        let id = create_event(&app, &admin, &body).await["id"].as_str().unwrap().to_owned();
        for step in path {
            assert_eq!(set_status(&app, &admin, &id, step).await.status(), StatusCode::OK);
        }
        hidden.push(id);
    }
    for id in &hidden {
        let claim =
            app.request(Method::POST, &format!("/api/v1/events/{id}/claims"), Some(&player)).send().await.unwrap();
        let (status, body) = status_of(claim).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "claim on a hidden event: {body}");
        assert_eq!(body["code"], "EVENT_NOT_FOUND");
        assert!(body.get("eventSnapshot").is_none());
        for route in ["", "/rewards", "/eligibility"] {
            let status = app.get(&format!("/api/v1/events/{id}{route}"), Some(&player)).await.status();
            assert_eq!(status, StatusCode::NOT_FOUND, "GET {route} of a hidden event");
        }
    }
    // An ended event exists for players; a claim on it is recorded and fails.
    let expired = create_event(&app, &admin, &body).await["id"].as_str().unwrap().to_owned();
    for step in ["ACTIVE", "EXPIRED"] {
        assert_eq!(set_status(&app, &admin, &expired, step).await.status(), StatusCode::OK);
    }
    let claim =
        app.request(Method::POST, &format!("/api/v1/events/{expired}/claims"), Some(&player)).send().await.unwrap();
    let (status, request) = status_of(claim).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(request["status"], "VALIDATION_FAILED_EVENT_NOT_ACTIVE");
}

// --- 5. Dates out of range ----------------------------------------------------------------

#[tokio::test]
async fn dates_outside_the_years_1970_to_9999_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for (field, value) in [("endDate", "+10000-01-01T00:00:00Z"), ("startDate", "1969-12-31T23:59:59Z")] {
        let mut body = event_body("far future");
        body[field] = json!(value);
        let response = app.post("/api/v1/events", Some(&admin), &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{field} {value}");
        assert_eq!(pointers(&problem(response).await), [format!("/{field}")]);
    }
    let draft = create_event(&app, &admin, &event_body("editable")).await;
    let patch = app
        .send_json(
            Method::PATCH,
            &format!("/api/v1/events/{}", draft["id"].as_str().unwrap()),
            Some(&admin),
            &json!({ "endDate": "+10000-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(patch.status(), StatusCode::BAD_REQUEST);
    for query in ["/api/v1/events?activeAt=%2B10000-01-01T00:00:00Z", "/api/v1/claims?from=1900-01-01T00:00:00Z"] {
        let response = app.get(query, Some(&admin)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }
    // Nothing half-written: the catalog still lists exactly the one draft, and answers.
    let list = app.get_json("/api/v1/events", Some(&admin)).await;
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn one_unreadable_event_does_not_stop_the_expiry_sweep_for_the_others() {
    let app = TestApp::spawn_configured(|config| config.events.expiry_sweep_secs = 1).await;
    let admin = app.admin_token().await;
    let mut ids = Vec::new();
    for name in ["corrupted", "ending"] {
        let mut body = event_body(name);
        body["endDate"] = json!((chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339());
        ids.push(activated_event(&app, &admin, &body).await);
    }
    // A row written by an older version, or by hand: its end date does not parse.
    let db = rusqlite::Connection::open(app.data_dir.path().join("event.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute("UPDATE events SET endDate = '+10000-01-01T00:00:00.000Z' WHERE _id = ?1", [&ids[0]]).unwrap();
    drop(db);

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let event = app.get_json(&format!("/api/v1/events/{}", ids[1]), Some(&admin)).await;
        if event["status"] == "EXPIRED" {
            break;
        }
        assert!(Instant::now() < deadline, "the sweep stopped at the unreadable row: {event}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// --- 6. Connection limits -----------------------------------------------------------------

/// Opens a connection and sends half a request head.
fn half_a_header(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: ").unwrap();
    stream
}

/// Runs `talk`, blocking socket code given the app's address, on a thread that may block.
async fn over_raw_tcp<T: Send + 'static>(app: &TestApp, talk: impl FnOnce(SocketAddr) -> T + Send + 'static) -> T {
    let addr = app.addr;
    tokio::task::spawn_blocking(move || talk(addr)).await.unwrap()
}

/// Whether the server closed `stream` (EOF or reset) within `wait`.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buffer = [0u8; 512];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            // A 408 or similar written before closing: keep reading to the close.
            Ok(_) => continue,
            Err(error) if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[tokio::test]
async fn slowloris_connections_do_not_starve_clients_and_are_closed_in_time() {
    let header_timeout = Duration::from_secs(4);
    let app =
        TestApp::spawn_configured(|config| config.server.header_timeout_ms = header_timeout.as_millis() as u64).await;
    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = over_raw_tcp(&app, |addr| (0..200).map(|_| half_a_header(addr)).collect()).await;

    // Served while all 200 are still held open (well inside the header timeout).
    let started = Instant::now();
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2), "a normal client waited {:?}", started.elapsed());

    let deadline = opened + header_timeout + Duration::from_secs(4);
    let all_closed = tokio::task::spawn_blocking(move || {
        slow.iter_mut().all(|stream| {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
            closed_within(stream, left)
        })
    })
    .await
    .unwrap();
    assert!(all_closed, "a slowloris connection outlived the header timeout by 4 s");
}

#[tokio::test]
async fn a_dripped_body_is_answered_408_and_idle_keep_alive_connections_close() {
    let app = TestApp::spawn_configured(|config| {
        config.server.body_timeout_ms = 1_000;
        config.server.header_timeout_ms = 1_500;
    })
    .await;
    let (answer, idle_closed) = over_raw_tcp(&app, |addr| {
        let mut stream = TcpStream::connect(addr).unwrap();
        let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user";
        stream.write_all(head.as_bytes()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let mut buffer = [0u8; 1024];
        // A second connection that sends one request and then sits idle.
        let mut idle = TcpStream::connect(addr).unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let _ = idle.read(&mut buffer);
        (answer, closed_within(&mut idle, Duration::from_secs(5)))
    })
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"));
    assert!(idle_closed, "an idle keep-alive connection stayed open");
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_and_the_server_recovers() {
    let app = TestApp::spawn_configured(|config| {
        config.server.max_connections = 20;
        config.server.header_timeout_ms = 60_000;
    })
    .await;
    let refused = over_raw_tcp(&app, |addr| {
        let mut held: Vec<TcpStream> = (0..20).map(|_| half_a_header(addr)).collect();
        std::thread::sleep(Duration::from_millis(200));
        let mut extra = TcpStream::connect(addr).unwrap();
        let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let refused = closed_within(&mut extra, Duration::from_secs(3));
        held.clear();
        refused
    })
    .await;
    assert!(refused, "the 21st connection was served");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK, "slots come back when connections close");
}

#[tokio::test]
async fn after_sigterm_a_stalled_client_cannot_keep_the_process_alive() {
    let dir = TempDir::new().unwrap();
    let mut server = ServeProcess::start(
        dir.path(),
        &[
            ("BESTOW_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("BESTOW_DRAIN_TIMEOUT_MS", "1000"),
            ("BESTOW_HEADER_TIMEOUT_MS", "60000"),
            ("BESTOW_BODY_TIMEOUT_MS", "60000"),
        ],
    );
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    // A request whose body never finishes: in flight when the signal comes.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let signalled = Instant::now();
    server.terminate();
    assert_eq!(server.wait_exit(Duration::from_secs(5)), Some(0), "still running after the drain timeout");
    assert!(signalled.elapsed() < Duration::from_secs(4));
    drop(stalled);
}

// --- 7. Client address behind a load balancer ---------------------------------------------

async fn login_from(app: &TestApp, forwarded_for: &str, username: &str, password: &str) -> StatusCode {
    app.request(Method::POST, "/api/v1/auth/login", None)
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_budget() {
    let app = TestApp::spawn_configured(|config| {
        config.server.trusted_proxies = "127.0.0.0/8".to_owned();
        config.auth.login_max_failures_per_address = 3;
    })
    .await;
    app.register("bystander", PASSWORD).await;
    for i in 0..3 {
        let status = login_from(&app, "198.51.100.7", &format!("guess{i}"), "wrong-password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_from(&app, "198.51.100.7", "anyone", "wrong-password").await, StatusCode::TOO_MANY_REQUESTS);
    // Another player behind the same load balancer is not locked out.
    assert_eq!(login_from(&app, "203.0.113.50", "bystander", PASSWORD).await, StatusCode::OK);
    // A forged left-most hop does not buy a fresh budget: the right-most untrusted hop counts.
    assert_eq!(login_from(&app, "192.0.2.1, 198.51.100.7", "anyone", "wrong").await, StatusCode::TOO_MANY_REQUESTS);
    // IPv6 addresses of one /64 share a budget.
    for i in 0..3 {
        let status = login_from(&app, &format!("2001:db8:7:7::{i}"), &format!("v6guess{i}"), "wrong-password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_from(&app, "2001:db8:7:7::ffff", "bystander", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login_from(&app, "2001:db8:7:8::1", "bystander", PASSWORD).await, StatusCode::OK);
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let app = TestApp::spawn_configured(|config| config.auth.login_max_failures_per_address = 3).await;
    for i in 0..3 {
        let status = login_from(&app, &format!("198.51.100.{i}"), &format!("guess{i}"), "wrong-password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_from(&app, "203.0.113.99", "other", "wrong-password").await, StatusCode::TOO_MANY_REQUESTS);
}

// --- 8. Unbounded input -------------------------------------------------------------------

#[tokio::test]
async fn megabyte_usernames_are_refused_before_they_cost_memory() {
    let dir = TempDir::new().unwrap();
    let server =
        ServeProcess::start(dir.path(), &[("BESTOW_ADMIN_PASSWORD", ADMIN_PASSWORD), ("BESTOW_LOG_LEVEL", "info")]);
    let client = bestow_core::outbound::client().unwrap();
    let login = |username: String| {
        client
            .post(format!("{}/api/v1/auth/login", server.base))
            .json(&json!({ "username": username, "password": "whatever-password" }))
            .send()
    };
    assert_eq!(login("warmup".into()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let before = server.rss_kib();
    for i in 0..60 {
        let response = login(format!("{i}{}", "u".repeat(1_000_000 - 8))).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(pointers(&problem(response).await), ["/username"]);
    }
    let grown = server.rss_kib().saturating_sub(before);
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB over 60 one-megabyte usernames");
    // A client's oversized request id is replaced, not echoed.
    let response =
        client.get(format!("{}/healthz", server.base)).header("x-request-id", "x".repeat(5000)).send().await.unwrap();
    assert!(response.headers()["x-request-id"].len() <= 128);
    let output = server.stop();
    assert!(!output.contains(&"u".repeat(100)), "a huge username reached the logs");
}

#[tokio::test]
async fn the_failed_login_log_line_does_not_record_what_was_typed() {
    let dir = TempDir::new().unwrap();
    let server =
        ServeProcess::start(dir.path(), &[("BESTOW_ADMIN_PASSWORD", ADMIN_PASSWORD), ("BESTOW_LOG_LEVEL", "info")]);
    let client = bestow_core::outbound::client().unwrap();
    // A password typed into the username box.
    let typed = "Tr0ub4dor-and-3";
    let response = client
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({ "username": typed, "password": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let output = server.stop();
    assert!(output.contains("login refused"), "{output}");
    assert!(!output.contains(typed), "the typed text reached the log");
}

// --- 9. Metric labels ---------------------------------------------------------------------

#[tokio::test]
async fn made_up_methods_and_paths_do_not_make_new_series_and_metrics_can_be_private() {
    let dir = TempDir::new().unwrap();
    let mut server = ServeProcess::start(
        dir.path(),
        &[("BESTOW_ADMIN_PASSWORD", ADMIN_PASSWORD), ("BESTOW_METRICS_LISTEN", "127.0.0.1:0")],
    );
    let banner = server.wait_for("metrics listening on ");
    let metrics = banner.split("listening on ").nth(1).unwrap().trim().to_owned();
    let client = bestow_core::outbound::client().unwrap();
    for i in 0..30 {
        let method = Method::from_bytes(format!("ZZMETHOD{i}").as_bytes()).unwrap();
        let _ = client.request(method, format!("{}/made/up/{i}", server.base)).send().await.unwrap();
    }
    // The main listener no longer serves /metrics; the metrics listener does.
    assert_eq!(client.get(format!("{}/metrics", server.base)).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let text = client.get(format!("{metrics}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!text.contains("ZZMETHOD"), "a made-up method became a label");
    assert!(!text.contains("/made/up"), "a raw path became a label");
    // The thirty requests are one series: one fixed method label, one route template.
    let series: Vec<&str> = text.lines().filter(|line| line.starts_with("http_requests_total")).collect();
    let other: Vec<&&str> = series.iter().filter(|line| line.contains(r#"method="OTHER""#)).collect();
    assert!(other.len() == 1 && other[0].ends_with(" 30"), "{series:#?}");
    drop(server);
}

// --- 10. Files readable by others ---------------------------------------------------------

#[tokio::test]
async fn the_data_dir_and_databases_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let parent = TempDir::new().unwrap();
    let dir = parent.path().join("data");
    let server = ServeProcess::start(&dir, &[("BESTOW_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let mode = |path: std::path::PathBuf| std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir.clone()), 0o700);
    for file in ["auth.db", "event.db", "auth.db-wal", "event.db-wal", "signing-keys.json"] {
        assert_eq!(mode(dir.join(file)), 0o600, "{file}");
    }
    drop(server);
    // A data dir made by an older version is narrowed on the next start.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join("auth.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = ServeProcess::start(&dir, &[("BESTOW_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    assert_eq!(mode(dir.clone()), 0o700);
    assert_eq!(mode(dir.join("auth.db")), 0o600);
    drop(server);
}

// --- 11. Arithmetic at the edges ----------------------------------------------------------

#[tokio::test]
async fn stock_and_top_ups_are_bounded_and_refused_without_a_500() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut body = event_body("huge stock");
    body["rewards"][0]["totalStock"] = json!(1_000_000_000_001_i64);
    let response = app.post("/api/v1/events", Some(&admin), &body).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(pointers(&problem(response).await), ["/rewards/0/totalStock"]);

    let event = create_event(&app, &admin, &event_body("top up")).await;
    let (id, reward) = (event["id"].as_str().unwrap(), event["rewards"][0]["rewardId"].as_str().unwrap());
    let path = format!("/api/v1/events/{id}/rewards/{reward}");
    for add in [i64::MAX - 50, 1_000_000_000_001] {
        let response = app.send_json(Method::PATCH, &path, Some(&admin), &json!({ "addStock": add })).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "addStock {add}");
        assert_eq!(pointers(&problem(response).await), ["/addStock"]);
    }
    // Within the bounds of a top-up, but more than the current total can take.
    let response =
        app.send_json(Method::PATCH, &path, Some(&admin), &json!({ "addStock": 1_000_000_000_000_i64 })).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(problem(response).await["code"], "STOCK_CEILING");
    let response = app.send_json(Method::PATCH, &path, Some(&admin), &json!({ "addStock": 50 })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let reward: Value = response.json().await.unwrap();
    assert_eq!((reward["totalStock"].as_i64(), reward["remainingStock"].as_i64()), (Some(150), Some(150)));
}
