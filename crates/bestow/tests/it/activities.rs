//! Service keys, activity ingestion and the eligibility preview over HTTP, including an
//! external fact provider served by a real local HTTP server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, NaiveTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fixtures::{create_event, event_body, set_status};
use crate::helpers::{Cast, TestApp, pointers, problem};

/// Creates a service key as `admin` and returns (id, secret).
async fn service_key(app: &TestApp, admin: &str, name: &str) -> (String, String) {
    let body = json!({ "name": name, "scopes": ["activities:write"] });
    let response = app.post("/api/v1/service-keys", Some(admin), &body).await;
    assert_eq!(response.status(), StatusCode::CREATED, "create key {name}");
    let key: Value = response.json().await.unwrap();
    (key["id"].as_str().unwrap().to_owned(), key["secret"].as_str().unwrap().to_owned())
}

/// Posts `activities` with the service key `secret`.
async fn push(app: &TestApp, secret: &str, activities: Value) -> reqwest::Response {
    app.request(Method::POST, "/api/v1/activities", None)
        .header("x-api-key", secret)
        .json(&json!({ "activities": activities }))
        .send()
        .await
        .unwrap()
}

/// Posts and expects 202; returns (accepted, duplicates).
async fn push_ok(app: &TestApp, secret: &str, activities: Value) -> (u64, u64) {
    let response = push(app, secret, activities).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let receipt: Value = response.json().await.unwrap();
    (receipt["accepted"].as_u64().unwrap(), receipt["duplicates"].as_u64().unwrap())
}

fn activity(id: Option<&str>, user: &str, kind: &str, at: DateTime<Utc>) -> Value {
    let mut activity = json!({ "userId": user, "type": kind, "occurredAt": at.to_rfc3339() });
    if let Some(id) = id {
        activity["activityId"] = json!(id);
    }
    activity
}

/// An ACTIVE event (running since ten days ago, Asia/Seoul) with `conditions`.
async fn active_event(app: &TestApp, operator: &str, conditions: Value) -> String {
    let mut body = event_body("conditions");
    body["startDate"] = json!((Utc::now() - Duration::days(10)).to_rfc3339());
    body["conditions"] = conditions;
    let id = create_event(app, operator, &body).await["id"].as_str().unwrap().to_owned();
    assert_eq!(set_status(app, operator, &id, "ACTIVE").await.status(), StatusCode::OK);
    id
}

/// A game pushing one player's activities with a live service key, and an active event.
struct Game {
    app: TestApp,
    /// The service key's secret.
    secret: String,
    /// The player's id and access token.
    player: String,
    user: String,
    event: String,
}

impl Game {
    async fn with(conditions: Value) -> Self {
        let app = TestApp::spawn().await;
        let admin = app.admin_token().await;
        let (_, secret) = service_key(&app, &admin, "game").await;
        let (player, user) = app.user_with_roles("player", &["USER"]).await;
        let event = active_event(&app, &admin, conditions).await;
        Self { app, secret, player, user, event }
    }

    /// An event asking for `count` BOSS_KILLED activities.
    async fn with_boss_kills(count: u32) -> Self {
        Self::with(json!({ "type": "ACTIVITY_COUNT", "activityType": "BOSS_KILLED", "count": count })).await
    }
}

async fn eligibility(app: &TestApp, token: &str, event_id: &str) -> Value {
    let response = app.get(&format!("/api/v1/events/{event_id}/eligibility"), Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Noon in Seoul (UTC+9, no daylight saving time), `days_ago` calendar days before today there.
fn seoul_noon(days_ago: i64) -> DateTime<Utc> {
    let today_in_seoul = (Utc::now() + Duration::hours(9)).date_naive();
    let noon = (today_in_seoul - Duration::days(days_ago)).and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap());
    noon.and_utc() - Duration::hours(9)
}

#[tokio::test]
async fn service_keys_are_admin_only_and_their_secret_is_shown_once() {
    let app = TestApp::spawn().await;
    let Cast { admin, operator, user, .. } = Cast::of(&app).await;
    let body = json!({ "name": "game-eu", "scopes": ["activities:write"] });
    for (token, status) in [(None, 401), (Some(&user), 403), (Some(&operator), 403)] {
        let token = token.map(String::as_str);
        assert_eq!(app.post("/api/v1/service-keys", token, &body).await.status().as_u16(), status);
        assert_eq!(app.get("/api/v1/service-keys", token).await.status().as_u16(), status);
        let delete = app.request(Method::DELETE, "/api/v1/service-keys/0123456789abcdef01234567", token);
        assert_eq!(delete.send().await.unwrap().status().as_u16(), status);
    }

    let response = app.post("/api/v1/service-keys", Some(&admin), &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let (id, secret) = (created["id"].as_str().unwrap(), created["secret"].as_str().unwrap());
    assert!(secret.starts_with("bsk_") && secret.len() > 40, "{secret}");
    assert_eq!(created["scopes"], json!(["activities:write"]));

    let listed = app.get_json("/api/v1/service-keys", Some(&admin)).await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["id"], id);
    assert_eq!(listed["items"][0]["revokedAt"], Value::Null);
    assert!(listed["items"][0].get("secret").is_none());
    assert!(!listed.to_string().contains(secret), "the secret is never listed");

    let response = app.request(Method::DELETE, &format!("/api/v1/service-keys/{id}"), Some(&admin)).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::NO_CONTENT);
    let again = app.request(Method::DELETE, &format!("/api/v1/service-keys/{id}"), Some(&admin)).send().await;
    assert_eq!(again.unwrap().status(), StatusCode::NO_CONTENT, "revoking twice changes nothing");
    let unknown = app.request(Method::DELETE, "/api/v1/service-keys/0123456789abcdef01234567", Some(&admin));
    let unknown = problem(unknown.send().await.unwrap()).await;
    assert_eq!(unknown["code"], "SERVICE_KEY_NOT_FOUND");
    let listed = app.get_json("/api/v1/service-keys", Some(&admin)).await;
    assert!(listed["items"][0]["revokedAt"].is_string());

    let audit = app.get_json(&format!("/api/v1/audit-logs?targetId={id}"), Some(&admin)).await;
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["service_key.revoke", "service_key.create"]);
    assert!(!audit.to_string().contains(secret), "the secret is never audited");

    for (bad, pointer) in [
        (json!({ "name": "x", "scopes": ["activities:read"] }), "/scopes/0"),
        (json!({ "name": " ", "scopes": ["activities:write"] }), "/name"),
        (json!({ "name": "x", "scopes": [] }), "/scopes"),
    ] {
        let refused = problem(app.post("/api/v1/service-keys", Some(&admin), &bad).await).await;
        assert_eq!((refused["status"].as_u64(), pointers(&refused)), (Some(400), vec![pointer.to_owned()]), "{bad}");
    }
}

#[tokio::test]
async fn pushing_activities_needs_a_live_key_or_an_admin() {
    let app = TestApp::spawn().await;
    let Cast { admin, operator, user, user_id: player, .. } = Cast::of(&app).await;
    let (revoked_id, revoked) = service_key(&app, &admin, "old").await;
    let (_, live) = service_key(&app, &admin, "new").await;
    let path = format!("/api/v1/service-keys/{revoked_id}");
    assert_eq!(app.request(Method::DELETE, &path, Some(&admin)).send().await.unwrap().status(), 204);
    let batch = json!({ "activities": [activity(None, &player, "LOGIN", Utc::now())] });

    let send = |key: Option<&str>, token: Option<&str>| {
        let mut request = app.request(Method::POST, "/api/v1/activities", token).json(&batch);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request.send()
    };
    let cases: [(&str, Option<&str>, Option<&str>, u16); 8] = [
        ("no credentials", None, None, 401),
        ("unknown key", Some("bsk_not-a-key-we-issued"), None, 401),
        ("not even a key", Some("hunter2"), None, 401),
        ("revoked key", Some(revoked.as_str()), None, 401),
        ("USER token", None, Some(user.as_str()), 403),
        ("OPERATOR token", None, Some(operator.as_str()), 403),
        ("ADMIN token", None, Some(admin.as_str()), 202),
        ("live key", Some(live.as_str()), None, 202),
    ];
    for (name, key, token, status) in cases {
        let response = send(key, token).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        if status != 202 {
            let refused = problem(response).await;
            assert_eq!(refused["code"], if status == 401 { "UNAUTHORIZED" } else { "FORBIDDEN" }, "{name}");
        }
    }
}

#[tokio::test]
async fn bad_batches_are_refused_whole_with_every_bad_field() {
    let Game { app, secret, player, user, event } = Game::with_boss_kills(1000).await;
    let kill = |id: &str| activity(Some(id), &player, "BOSS_KILLED", Utc::now() - Duration::minutes(1));

    let too_many: Vec<Value> = (0..1001).map(|i| kill(&format!("k{i}"))).collect();
    let refused = problem(push(&app, &secret, json!(too_many)).await).await;
    assert_eq!((refused["status"].as_u64(), pointers(&refused)), (Some(400), vec!["/activities".to_owned()]));
    let empty = problem(push(&app, &secret, json!([])).await).await;
    assert_eq!(pointers(&empty), ["/activities"]);

    let mixed = json!([
        kill("good-1"),
        { "userId": "", "type": "boss killed", "occurredAt": Utc::now().to_rfc3339() },
        kill("good-2"),
        { "userId": player, "type": "LOGIN", "occurredAt": (Utc::now() + Duration::hours(1)).to_rfc3339(),
          "attributes": "not an object", "color": "red" },
    ]);
    let refused = problem(push(&app, &secret, mixed).await).await;
    assert_eq!(refused["code"], "VALIDATION_FAILED");
    assert_eq!(
        pointers(&refused),
        [
            "/activities/1/userId",
            "/activities/1/type",
            "/activities/3/occurredAt",
            "/activities/3/attributes",
            "/activities/3/color"
        ]
    );
    let progress = eligibility(&app, &user, &event).await;
    assert_eq!(progress["conditions"]["current"], 0, "nothing of a refused batch is stored");

    let exactly_1000: Vec<Value> = (0..1000).map(|i| kill(&format!("k{i}"))).collect();
    assert_eq!(push_ok(&app, &secret, json!(exactly_1000)).await, (1000, 0));
    let progress = eligibility(&app, &user, &event).await;
    assert_eq!((progress["eligible"].as_bool(), progress["conditions"]["current"].as_u64()), (Some(true), Some(1000)));
}

#[tokio::test]
async fn a_resent_batch_stores_nothing_new() {
    let Game { app, secret, player, user, event } = Game::with_boss_kills(10).await;
    let at = Utc::now() - Duration::minutes(5);
    let batch: Vec<Value> = (0..5).map(|i| activity(Some(&format!("kill-{i}")), &player, "BOSS_KILLED", at)).collect();

    assert_eq!(push_ok(&app, &secret, json!(batch)).await, (5, 0));
    assert_eq!(push_ok(&app, &secret, json!(batch)).await, (0, 5), "the same activityIds again");
    let mut overlapping = batch[3..].to_vec();
    overlapping.push(activity(Some("kill-5"), &player, "BOSS_KILLED", at));
    overlapping.push(activity(Some("kill-5"), &player, "BOSS_KILLED", at));
    assert_eq!(push_ok(&app, &secret, json!(overlapping)).await, (1, 3), "repeats within a batch count once");
    assert_eq!(eligibility(&app, &user, &event).await["conditions"]["current"], 6);

    // Without an activityId every send is a new activity.
    let anonymous = json!([activity(None, &player, "BOSS_KILLED", at)]);
    assert_eq!(push_ok(&app, &secret, anonymous.clone()).await, (1, 0));
    assert_eq!(push_ok(&app, &secret, anonymous).await, (1, 0));
    assert_eq!(eligibility(&app, &user, &event).await["conditions"]["current"], 8);
}

#[tokio::test]
async fn the_preview_shows_a_streak_part_way_through() {
    let conditions = json!({ "type": "AND", "subConditions": [
        { "type": "LOGIN_STREAK", "days": 7 },
        { "type": "LOGIN_DAYS", "days": 4 },
    ]});
    let Game { app, secret, player, user, event } = Game::with(conditions).await;
    let (other, other_token) = app.user_with_roles("other", &["USER"]).await;
    // Seoul days: 6 days ago, then 3, 2 (twice) and 1 day ago: a streak of 3 over 4 days.
    let logins: Vec<Value> = [6, 3, 2, 2, 1]
        .into_iter()
        .enumerate()
        .map(|(i, days_ago)| {
            let at = seoul_noon(days_ago) + Duration::minutes(i as i64);
            activity(Some(&format!("login-{i}")), &player, "LOGIN", at)
        })
        .collect();
    push_ok(&app, &secret, json!(logins)).await;
    push_ok(&app, &secret, json!([activity(None, &other, "LOGIN", seoul_noon(1))])).await;

    assert_eq!(
        eligibility(&app, &user, &event).await,
        json!({ "eligible": false, "conditions": { "type": "AND", "met": false, "current": 1, "target": 2, "children": [
            { "type": "LOGIN_STREAK", "met": false, "current": 3, "target": 7 },
            { "type": "LOGIN_DAYS", "met": true, "current": 4, "target": 4 },
        ]}})
    );
    let others = eligibility(&app, &other_token, &event).await;
    assert_eq!(others["conditions"]["children"][0]["current"], 1, "only the caller's own activities count");
}

#[tokio::test]
async fn the_preview_is_for_players_and_visible_events() {
    let app = TestApp::spawn().await;
    let Cast { user, operator, auditor, .. } = Cast::of(&app).await;
    let mut unconditional = event_body("free for all");
    unconditional["conditions"] = Value::Null;
    let free = create_event(&app, &operator, &unconditional).await["id"].as_str().unwrap().to_owned();
    let draft = create_event(&app, &operator, &event_body("draft")).await["id"].as_str().unwrap().to_owned();
    let path = |id: &str| format!("/api/v1/events/{id}/eligibility");

    assert_eq!(problem(app.get(&path(&free), Some(&user)).await).await["code"], "EVENT_NOT_FOUND", "DRAFT hidden");
    assert_eq!(set_status(&app, &operator, &free, "ACTIVE").await.status(), StatusCode::OK);
    for (token, status) in [(None, 401), (Some(&operator), 403), (Some(&auditor), 403)] {
        assert_eq!(app.get(&path(&free), token.map(String::as_str)).await.status().as_u16(), status);
    }
    assert_eq!(eligibility(&app, &user, &free).await, json!({ "eligible": true, "conditions": null }));
    assert_eq!(app.get(&path(&draft), Some(&user)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&path("0123456789abcdef01234567"), Some(&user)).await.status(), StatusCode::NOT_FOUND);
}

/// An operator's fact provider on 127.0.0.1:0: checks the signature, answers two login days
/// for whoever is asked, or fails with 500 while `failing` is set.
async fn fact_server(secret: &'static str, failing: Arc<AtomicBool>) -> String {
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;

    let handler = move |headers: HeaderMap, body: String| {
        let failing = failing.clone();
        async move {
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let timestamp = header("x-bestow-timestamp");
            let expected = format!("sha256={}", bestow_events::grants::webhook::sign(secret, &timestamp, &body));
            if header("x-bestow-signature") != expected {
                return axum::http::StatusCode::UNAUTHORIZED.into_response();
            }
            if failing.load(Ordering::SeqCst) {
                return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            let asked: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(asked["types"], json!(["LOGIN"]));
            axum::Json(json!({ "activities": [
                { "type": "LOGIN", "occurredAt": seoul_noon(2).to_rfc3339() },
                { "type": "LOGIN", "occurredAt": seoul_noon(1).to_rfc3339(), "attributes": { "device": "pc" } },
            ]}))
            .into_response()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/facts", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/facts", axum::routing::post(handler));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn the_preview_reads_an_external_provider_and_reports_its_failure() {
    const SECRET: &str = "shared-with-the-studio";
    let failing = Arc::new(AtomicBool::new(false));
    let facts_url = fact_server(SECRET, failing.clone()).await;
    let app = TestApp::spawn_configured(|config| {
        config.events.facts_url = Some(facts_url);
        config.events.facts_secret = Some(SECRET.into());
        config.events.facts_timeout_ms = 500;
        config.events.facts_retries = 1;
    })
    .await;
    let (_, user) = app.user_with_roles("player", &["USER"]).await;
    let operator = app.user_with_roles("operator", &["OPERATOR"]).await.1;
    let event = active_event(&app, &operator, json!({ "type": "LOGIN_STREAK", "days": 3 })).await;

    let progress = eligibility(&app, &user, &event).await;
    assert_eq!(progress["conditions"], json!({ "type": "LOGIN_STREAK", "met": false, "current": 2, "target": 3 }));

    failing.store(true, Ordering::SeqCst);
    let response = app.get(&format!("/api/v1/events/{event}/eligibility"), Some(&user)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let unavailable = problem(response).await;
    assert_eq!(unavailable["code"], "SERVICE_UNAVAILABLE");
    assert!(!unavailable.to_string().contains("127.0.0.1"), "the provider's address is not revealed");
}

/// `GET /api/v1/activities?{query}` as `token`, expecting 200.
async fn recent(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/activities?{query}"), Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.unwrap()
}

fn activity_ids(page: &Value) -> Vec<&str> {
    page["items"].as_array().unwrap().iter().map(|item| item["activityId"].as_str().unwrap()).collect()
}

/// Staff read a player's activities: only that player's, newest `occurredAt` first whatever
/// the order they were pushed in, paged, of one type on request, with every stored field.
/// Without `userId` the request is refused at `?userId`; players and service keys cannot read.
pub(crate) async fn staff_read_a_players_recent_activities(app: TestApp) {
    let admin = app.admin_token().await;
    let (_, secret) = service_key(&app, &admin, "game").await;
    let (player, player_token) = app.user_with_roles("player", &["USER"]).await;
    let (other, _) = app.user_with_roles("other", &["USER"]).await;
    let (_, operator) = app.user_with_roles("operator", &["OPERATOR"]).await;
    let (_, auditor) = app.user_with_roles("auditor", &["AUDITOR"]).await;
    let now = Utc::now();
    let minutes_ago = |minutes| now - Duration::minutes(minutes);
    let mut purchase = activity(Some("order-5"), &player, "PURCHASE", minutes_ago(10));
    purchase["attributes"] = json!({ "amount": 4.99, "currency": "EUR" });
    let batch = json!([
        activity(Some("login-3"), &player, "LOGIN", minutes_ago(30)),
        purchase,
        activity(Some("login-1"), &player, "LOGIN", minutes_ago(50)),
        activity(Some("level-4"), &player, "LEVEL_UP", minutes_ago(20)),
        activity(Some("elsewhere"), &other, "LOGIN", minutes_ago(5)),
    ]);
    assert_eq!(push_ok(&app, &secret, batch).await, (5, 0));
    let by_admin = json!({ "activities": [activity(Some("login-2"), &player, "LOGIN", minutes_ago(40))] });
    assert_eq!(app.post("/api/v1/activities", Some(&admin), &by_admin).await.status(), StatusCode::ACCEPTED);

    let first = recent(&app, &operator, &format!("userId={player}&limit=2")).await;
    assert_eq!(activity_ids(&first), ["order-5", "level-4"], "newest first");
    assert_eq!((first["page"].as_u64(), first["limit"].as_u64(), first["total"].as_u64()), (Some(1), Some(2), Some(5)));
    let second = recent(&app, &auditor, &format!("userId={player}&limit=2&page=2")).await;
    assert_eq!(activity_ids(&second), ["login-3", "login-2"]);
    let third = recent(&app, &admin, &format!("userId={player}&limit=2&page=3")).await;
    assert_eq!((activity_ids(&third), third["total"].as_u64()), (vec!["login-1"], Some(5)));

    let order = &first["items"][0];
    let mut fields: Vec<&str> = order.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["activityId", "attributes", "id", "occurredAt", "receivedAt", "type", "userId"]);
    assert_eq!((&order["userId"], &order["type"]), (&json!(player), &json!("PURCHASE")));
    assert_eq!(order["attributes"], json!({ "amount": 4.99, "currency": "EUR" }));
    assert_eq!(first["items"][1]["attributes"], json!({}), "no attributes read as an empty object");
    let read_time = |field: &str| DateTime::parse_from_rfc3339(order[field].as_str().unwrap()).unwrap();
    assert_eq!(read_time("occurredAt").timestamp_millis(), minutes_ago(10).timestamp_millis());
    assert!(read_time("receivedAt") >= now - Duration::seconds(1), "{}", order["receivedAt"]);

    let logins = recent(&app, &auditor, &format!("userId={player}&type=LOGIN")).await;
    assert_eq!((activity_ids(&logins), logins["total"].as_u64()), (vec!["login-3", "login-2", "login-1"], Some(3)));
    let none = recent(&app, &operator, &format!("userId={player}&type=QUEST_COMPLETED")).await;
    assert_eq!((none["items"].clone(), none["total"].as_u64()), (json!([]), Some(0)));
    let stranger = recent(&app, &operator, "userId=0123456789abcdef01234567").await;
    assert_eq!((stranger["items"].clone(), stranger["total"].as_u64()), (json!([]), Some(0)));

    for (query, pointer) in [
        ("", "?userId"),
        ("type=LOGIN&limit=5", "?userId"),
        ("userId=", "?userId"),
        (&format!("userId={player}&type=login") as &str, "?type"),
        (&format!("userId={player}&limit=101"), "?limit"),
    ] {
        let refused = problem(app.get(&format!("/api/v1/activities?{query}"), Some(&operator)).await).await;
        assert_eq!((refused["status"].as_u64(), refused["code"].as_str()), (Some(400), Some("VALIDATION_FAILED")));
        assert_eq!(pointers(&refused), [pointer], "{query}");
    }

    let path = format!("/api/v1/activities?userId={player}");
    let with_key = app.request(Method::GET, &path, None).header("x-api-key", &secret).send().await.unwrap();
    assert_eq!(problem(with_key).await["code"], "UNAUTHORIZED", "a service key only writes");
    let own = app.get(&path, Some(&player_token)).await;
    assert_eq!(problem(own).await["code"], "FORBIDDEN", "not even a player's own");
}

#[tokio::test]
async fn staff_read_a_players_recent_activities_on_sqlite() {
    staff_read_a_players_recent_activities(TestApp::spawn().await).await;
}
