//! Audiences over real HTTP, on SQLite and on MongoDB (issue 26's acceptance): a Korea-only
//! launch, a welcome-back event on the test clock, a 10 % rollout stable across a restart and
//! independent across salts, exclude winning over include, sticky membership surviving a
//! property change, LIST uploads all or nothing (a bad line at 500,000 and one line too many
//! on SQLite, a bad line past two write batches on MongoDB), and the staff tools (estimates,
//! checks with per-node verdicts, deletion while in use, `If-Match`, errors named by pointer).
//! Properties are set by a game server's service key and audited as its changes. Every
//! scenario runs on both stores.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::fixtures::{app_with, claim, create_event, set_status};
use crate::helpers::{TestApp, point_event, pointers, problem};
use crate::mongo::on_mongodb;

/// Runs `scenario` as two tests: on SQLite, and on MongoDB.
macro_rules! on_both_stores {
    ($on_sqlite:ident, $on_mongodb:ident, $scenario:ident) => {
        #[tokio::test]
        async fn $on_sqlite() {
            $scenario(app_with(None, |_| {}).await).await;
        }

        #[tokio::test]
        async fn $on_mongodb() {
            $scenario(app_with(None, on_mongodb).await).await;
        }
    };
}

/// An id no event has: what every route answers for it is what an outsider must get.
const UNKNOWN_EVENT: &str = "0123456789abcdef01234567";

/// The Korea-only audience's rule.
fn korea() -> Value {
    json!({ "type": "PROPERTY", "name": "country", "op": "IN", "value": ["KR"] })
}

/// Creates a service key with `scopes` as `admin`; returns (id, secret).
async fn service_key(app: &TestApp, admin: &str, name: &str, scopes: &[&str]) -> (String, String) {
    let response = app.post("/api/v1/service-keys", Some(admin), &json!({ "name": name, "scopes": scopes })).await;
    assert_eq!(response.status(), StatusCode::CREATED, "create key {name}");
    let key: Value = response.json().await.unwrap();
    (key["id"].as_str().unwrap().to_owned(), key["secret"].as_str().unwrap().to_owned())
}

/// `PATCH /api/v1/players/{user_id}/properties` with the service key `secret`.
async fn patch_properties(app: &TestApp, secret: &str, user_id: &str, properties: &Value) -> reqwest::Response {
    app.request(Method::PATCH, &format!("/api/v1/players/{user_id}/properties"), None)
        .header("x-api-key", secret)
        .json(properties)
        .send()
        .await
        .unwrap()
}

/// Merges `properties` with the service key `secret`, expecting 200; the view it answers.
async fn set_properties(app: &TestApp, secret: &str, user_id: &str, properties: Value) -> Value {
    let response = patch_properties(app, secret, user_id, &properties).await;
    assert_eq!(response.status(), StatusCode::OK, "set properties of {user_id}");
    response.json().await.unwrap()
}

/// Creates the audience `body` as `token`, expecting 201; the audience.
async fn create_audience(app: &TestApp, token: &str, body: Value) -> Value {
    let response = app.post("/api/v1/audiences", Some(token), &body).await;
    let status = response.status();
    let audience: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "create audience: {audience}");
    audience
}

/// A RULE audience named `name` over `rule`; its id.
async fn rule_audience(app: &TestApp, token: &str, name: &str, rule: Value) -> String {
    let audience = create_audience(app, token, json!({ "name": name, "kind": "RULE", "rule": rule })).await;
    audience["id"].as_str().unwrap().to_owned()
}

/// An empty LIST audience named `name`; its id.
async fn list_audience(app: &TestApp, token: &str, name: &str) -> String {
    let audience = create_audience(app, token, json!({ "name": name, "kind": "LIST" })).await;
    audience["id"].as_str().unwrap().to_owned()
}

/// A POINT event open now targeting players in `include` and in none of `exclude`.
fn targeted(name: &str, include: &[&str], exclude: &[&str], sticky: bool) -> Value {
    let mut body = point_event(name, 10, -1);
    body["audience"] = json!({ "include": include, "exclude": exclude, "sticky": sticky });
    body
}

/// Creates and activates `body` as `admin`; its id.
async fn active(app: &TestApp, admin: &str, body: &Value) -> String {
    let event = create_event(app, admin, body).await;
    let id = event["id"].as_str().unwrap().to_owned();
    let response = set_status(app, admin, &id, "ACTIVE").await;
    assert_eq!(response.status(), StatusCode::OK, "activate {id}");
    id
}

/// The ids a player's event list at `path` shows, checking its total counts exactly those.
async fn listed(app: &TestApp, token: &str, path: &str) -> BTreeSet<String> {
    let response = app.get(path, Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let page: Value = response.json().await.unwrap();
    let items = page["items"].as_array().unwrap_or_else(|| panic!("{path}: {page}"));
    assert_eq!(page["total"].as_u64(), Some(items.len() as u64), "{path}: the total counts what is listed: {page}");
    items.iter().map(|item| item["id"].as_str().unwrap().to_owned()).collect()
}

/// Whether the player behind `token` meets event `event_id`. Every player route must agree:
/// the event list, the event screen, the event, its rewards and its eligibility; outside the
/// audience each answers 404 exactly as for an event that does not exist.
async fn sees(app: &TestApp, token: &str, event_id: &str) -> bool {
    let in_list = listed(app, token, "/api/v1/events?limit=100").await.contains(event_id);
    let on_screen = listed(app, token, "/api/v1/me/events?limit=100").await.contains(event_id);
    assert_eq!(on_screen, in_list, "the event screen and the event list disagree on {event_id}");
    for route in ["", "/rewards", "/eligibility"] {
        let response = app.get(&format!("/api/v1/events/{event_id}{route}"), Some(token)).await;
        let status = response.status();
        if in_list {
            assert_eq!(status, StatusCode::OK, "GET {event_id}{route} of a listed event");
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND, "GET {event_id}{route} of an unlisted event");
            let unknown = problem(app.get(&format!("/api/v1/events/{UNKNOWN_EVENT}{route}"), Some(token)).await).await;
            let answer = problem(response).await;
            assert_eq!((&answer["code"], &answer["title"]), (&unknown["code"], &unknown["title"]), "like no event");
        }
    }
    in_list
}

/// Claims `event_id` as `token` and expects 404 as for an event that does not exist.
async fn claim_refused(app: &TestApp, token: &str, event_id: &str) {
    let (status, answer) = claim(app, token, event_id, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "claim from outside the audience: {answer}");
    assert_eq!(answer["code"], "EVENT_NOT_FOUND", "{answer}");
}

/// Claims `event_id` as `token` and expects it granted at once (201).
async fn claim_granted(app: &TestApp, token: &str, event_id: &str) {
    let (status, answer) = claim(app, token, event_id, None).await;
    assert_eq!(status, StatusCode::CREATED, "claim from inside the audience: {answer}");
    assert_eq!(answer["status"], "SUCCESS_ALL_GRANTED", "{answer}");
}

/// `GET /api/v1/audiences/{audience_id}/check?userId={user_id}`, expecting 200.
async fn check(app: &TestApp, token: &str, audience_id: &str, user_id: &str) -> Value {
    let response = app.get(&format!("/api/v1/audiences/{audience_id}/check?userId={user_id}"), Some(token)).await;
    let status = response.status();
    let verdict: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "check {user_id}: {verdict}");
    verdict
}

/// The latest audit entry of `action` on `target_id`.
async fn last_audit(app: &TestApp, admin: &str, target_id: &str, action: &str) -> Value {
    let log = app.get_json(&format!("/api/v1/audit-logs?targetId={target_id}&action={action}"), Some(admin)).await;
    log["items"][0].clone()
}

on_both_stores!(a_korea_only_launch_on_sqlite, a_korea_only_launch_on_mongodb, korea_only_launch);

/// Properties set by a game server (`players:write`), a `country IN [KR]` audience, an event
/// for it: the Korean player meets and claims it everywhere, the American player nowhere.
async fn korea_only_launch(app: TestApp) {
    let admin = app.admin_token().await;
    let (key_id, secret) = service_key(&app, &admin, "game", &["players:write"]).await;
    let (seoul_id, seoul) = app.user_with_roles("seoul", &["USER"]).await;
    let (boston_id, boston) = app.user_with_roles("boston", &["USER"]).await;
    let view = set_properties(&app, &secret, &seoul_id, json!({ "country": "KR", "vipLevel": 3, "beta": true })).await;
    assert_eq!(view["userId"], seoul_id.as_str());
    assert_eq!(view["properties"], json!({ "country": "KR", "vipLevel": 3, "beta": true }));
    set_properties(&app, &secret, &boston_id, json!({ "country": "US" })).await;

    let audience = rule_audience(&app, &admin, "Korea", korea()).await;
    let everyone = active(&app, &admin, &point_event("Everyone", 5, -1)).await;
    let launch = active(&app, &admin, &targeted("Korea launch", &[&audience], &[], false)).await;
    let event = app.get_json(&format!("/api/v1/events/{launch}"), Some(&admin)).await;
    assert_eq!(event["audience"], json!({ "include": [audience], "exclude": [], "sticky": false }));

    assert!(sees(&app, &seoul, &launch).await);
    assert!(sees(&app, &seoul, &everyone).await);
    assert!(!sees(&app, &boston, &launch).await, "outside the audience the event is nowhere");
    assert!(sees(&app, &boston, &everyone).await, "an untargeted event is everyone's");
    assert_eq!(listed(&app, &seoul, "/api/v1/events").await.len(), 2);
    assert_eq!(listed(&app, &boston, "/api/v1/events").await.len(), 1);
    claim_refused(&app, &boston, &launch).await;
    claim_granted(&app, &seoul, &launch).await;
    let staff = listed(&app, &admin, "/api/v1/events?limit=100").await;
    assert!(staff.contains(&launch), "staff see every event");

    // Staff read the properties with the computed ones; the change is audited as the key's.
    let read = app.get_json(&format!("/api/v1/players/{seoul_id}/properties"), Some(&admin)).await;
    assert_eq!(read["properties"], json!({ "country": "KR", "vipLevel": 3, "beta": true }), "{read}");
    assert!(read["computed"]["createdAt"].is_string(), "{read}");
    assert_eq!(read["computed"]["lastSeenAt"], Value::Null);
    assert_eq!(read["computed"]["purchaseTotal"], 0);
    let entry = last_audit(&app, &admin, &seoul_id, "player.properties.update").await;
    assert_eq!(entry["actorId"], key_id.as_str(), "{entry}");
    assert_eq!(entry["actorUsername"], "service key game", "{entry}");
    assert_eq!(entry["after"], json!({ "country": "KR", "vipLevel": 3, "beta": true }), "{entry}");
    let entry = last_audit(&app, &admin, &audience, "audience.create").await;
    assert_eq!(entry["actorUsername"], "admin", "{entry}");
    assert_eq!(entry["after"]["rule"], korea(), "{entry}");

    // A property change moves the player at once: the merge keeps what it does not name.
    set_properties(&app, &secret, &boston_id, json!({ "country": "KR", "language": "en" })).await;
    assert!(sees(&app, &boston, &launch).await);
    let view = set_properties(&app, &secret, &boston_id, json!({ "country": null })).await;
    assert_eq!(view["properties"], json!({ "language": "en" }), "null removes a property");
    assert!(!sees(&app, &boston, &launch).await);

    // Opening the ACTIVE event to everyone is an audited change like any other.
    let path = format!("/api/v1/events/{launch}");
    let response = app.send_json(Method::PATCH, &path, Some(&admin), &json!({ "audience": null })).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(sees(&app, &boston, &launch).await);
    let entry = last_audit(&app, &admin, &launch, "event.update").await;
    assert_eq!(entry["before"]["audience"]["include"], json!([audience]), "{entry}");
    assert_eq!(entry["after"]["audience"], Value::Null, "{entry}");
    app.stop().await;
}

on_both_stores!(
    a_welcome_back_event_finds_players_away_30_days_on_sqlite,
    a_welcome_back_event_finds_players_away_30_days_on_mongodb,
    welcome_back
);

/// `INACTIVE_DAYS min 30` on the server's clock: a player whose last login is 31 days old
/// meets the event, one who logged in yesterday does not.
async fn welcome_back(app: TestApp) {
    let admin = app.admin_token().await;
    let (away_id, away) = app.user_with_roles("away", &["USER"]).await;
    let (regular_id, regular) = app.user_with_roles("regular", &["USER"]).await;
    let login = |user_id: &str, at: chrono::DateTime<chrono::Utc>| {
        let body = json!({ "activities": [{ "userId": user_id, "type": "LOGIN", "occurredAt": at.to_rfc3339() }] });
        let (app, admin) = (&app, &admin);
        async move { assert_eq!(app.post("/api/v1/activities", Some(admin), &body).await.status(), StatusCode::ACCEPTED) }
    };
    let last_login = app.clock.now() - TimeDelta::minutes(5);
    login(&away_id, last_login).await;
    let audience = rule_audience(&app, &admin, "Away 30 days", json!({ "type": "INACTIVE_DAYS", "min": 30 })).await;
    let mut body = targeted("Welcome back", &[&audience], &[], false);
    body["endDate"] = json!((app.clock.now() + TimeDelta::days(90)).to_rfc3339());
    let event = active(&app, &admin, &body).await;
    assert!(!sees(&app, &away, &event).await, "just logged in: not away");

    app.clock.travel(TimeDelta::days(31));
    login(&regular_id, app.clock.now() - TimeDelta::days(1)).await;
    assert!(sees(&app, &away, &event).await, "31 days since the last login");
    assert!(!sees(&app, &regular, &event).await, "logged in yesterday");
    claim_granted(&app, &away, &event).await;
    claim_refused(&app, &regular, &event).await;

    let verdict = check(&app, &admin, &audience, &away_id).await;
    assert_eq!(verdict, json!({ "userId": away_id, "member": true, "rule": { "type": "INACTIVE_DAYS", "met": true } }));
    let read = app.get_json(&format!("/api/v1/players/{away_id}/properties"), Some(&admin)).await;
    let seen: chrono::DateTime<chrono::Utc> = read["computed"]["lastSeenAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(seen.timestamp(), last_login.timestamp(), "lastSeenAt is the last LOGIN: {read}");
    app.stop().await;
}

on_both_stores!(
    a_rollout_is_stable_across_restarts_and_independent_across_salts_on_sqlite,
    a_rollout_is_stable_across_restarts_and_independent_across_salts_on_mongodb,
    rollout
);

/// Players judged by `check`: 2,000 generated ids (accounts would cost 2,000 registrations; the
/// check judges ROLLOUT exactly as the gate does, which real players below confirm).
fn generated_players() -> Vec<String> {
    (0..2_000u64).map(|i| format!("{:024x}", 0x6500_0000_0000_0000_u64 + i * 7_919)).collect()
}

/// Which of `players` are members of `audience_id`, by `check`, 8 at a time (the MongoDB test server is shared).
async fn members_by_check(app: &Arc<TestApp>, token: &str, audience_id: &str, players: &[String]) -> BTreeSet<String> {
    let mut checks = JoinSet::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(8));
    for player in players {
        let (app, token, audience_id, player, slots) =
            (app.clone(), token.to_owned(), audience_id.to_owned(), player.clone(), slots.clone());
        checks.spawn(async move {
            let _slot = slots.acquire().await.unwrap();
            let verdict = check(&app, &token, &audience_id, &player).await;
            assert_eq!(verdict["rule"]["type"], "ROLLOUT");
            verdict["member"].as_bool().unwrap().then_some(player)
        });
    }
    checks.join_all().await.into_iter().flatten().collect()
}

/// A 10 % rollout holds 7 % to 13 % of 2,000 players, the same ones after a restart; two 50 %
/// splits with different salts overlap on 20 % to 30 % (independent, not the same half).
async fn rollout(app: TestApp) {
    let app = Arc::new(app);
    let admin = app.admin_token().await;
    let rollout = |percent: u32, salt: &str| json!({ "type": "ROLLOUT", "percent": percent, "salt": salt });
    let tenth = rule_audience(&app, &admin, "10 %", rollout(10, "spring-launch")).await;
    let half_a = rule_audience(&app, &admin, "half a", rollout(50, "a")).await;
    let half_b = rule_audience(&app, &admin, "half b", rollout(50, "b")).await;

    // Real players meet the event exactly when the check says they are members.
    let event = active(&app, &admin, &targeted("Half", &[&half_a], &[], false)).await;
    let mut verdicts = Vec::new();
    for i in 0..12 {
        let (id, token) = app.user_with_roles(&format!("roller{i}"), &["USER"]).await;
        let member = check(&app, &admin, &half_a, &id).await["member"].as_bool().unwrap();
        assert_eq!(sees(&app, &token, &event).await, member, "the gate and the check agree on {id}");
        verdicts.push(member);
    }
    assert!(verdicts.contains(&true) && verdicts.contains(&false), "both sides met: {verdicts:?}");

    let players = generated_players();
    let started = Instant::now();
    let tenth_members = members_by_check(&app, &admin, &tenth, &players).await;
    let in_a = members_by_check(&app, &admin, &half_a, &players).await;
    let in_b = members_by_check(&app, &admin, &half_b, &players).await;
    eprintln!("6,000 checks in {:?}", started.elapsed());
    assert!((140..=260).contains(&tenth_members.len()), "10 % of 2,000: {}", tenth_members.len());
    for half in [&in_a, &in_b] {
        assert!((800..=1_200).contains(&half.len()), "50 % of 2,000: {}", half.len());
    }
    let both = in_a.intersection(&in_b).count();
    assert!((400..=600).contains(&both), "two independent halves share about a quarter: {both}");

    let app = Arc::into_inner(app).expect("no check still holds the app");
    let (dir, config) = app.stop().await;
    let app = Arc::new(TestApp::spawn_with(dir, config).await);
    let admin = app.admin_token().await;
    let after_restart = members_by_check(&app, &admin, &tenth, &players).await;
    assert_eq!(after_restart, tenth_members, "the same 10 % after a restart");
}

on_both_stores!(exclude_wins_over_include_on_sqlite, exclude_wins_over_include_on_mongodb, exclude_wins);

/// A player in both an included and an excluded audience does not meet the event.
async fn exclude_wins(app: TestApp) {
    let admin = app.admin_token().await;
    let (_, secret) = service_key(&app, &admin, "game", &["players:write"]).await;
    let (tester_id, tester) = app.user_with_roles("tester", &["USER"]).await;
    let (fan_id, fan) = app.user_with_roles("fan", &["USER"]).await;
    for id in [&tester_id, &fan_id] {
        set_properties(&app, &secret, id, json!({ "country": "KR" })).await;
    }
    let korea = rule_audience(&app, &admin, "Korea", korea()).await;
    let testers = list_audience(&app, &admin, "Testers").await;
    let add = app.request(Method::POST, &format!("/api/v1/audiences/{testers}/members/{tester_id}"), Some(&admin));
    assert_eq!(add.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let event = active(&app, &admin, &targeted("Korea, no testers", &[&korea], &[&testers], false)).await;

    assert!(!sees(&app, &tester, &event).await, "in Korea and in Testers: excluded");
    assert!(sees(&app, &fan, &event).await, "in Korea only");
    claim_refused(&app, &tester, &event).await;
    claim_granted(&app, &fan, &event).await;

    // Removed from the list, the tester meets it; an empty include is everyone.
    let remove = app.request(Method::DELETE, &format!("/api/v1/audiences/{testers}/members/{tester_id}"), Some(&admin));
    assert_eq!(remove.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert!(sees(&app, &tester, &event).await);
    let add = app.request(Method::POST, &format!("/api/v1/audiences/{testers}/members/{fan_id}"), Some(&admin));
    assert_eq!(add.send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let all_but_testers = active(&app, &admin, &targeted("No testers", &[], &[&testers], false)).await;
    assert!(sees(&app, &tester, &all_but_testers).await);
    assert!(!sees(&app, &fan, &all_but_testers).await);
    app.stop().await;
}

on_both_stores!(
    sticky_membership_survives_a_property_change_on_sqlite,
    sticky_membership_survives_a_property_change_on_mongodb,
    sticky
);

/// A player inside a sticky event when they first meet it stays inside after a property change
/// puts them out; its non-sticky twin disappears for them. Sticky keeps only who met it.
async fn sticky(app: TestApp) {
    let admin = app.admin_token().await;
    let (_, secret) = service_key(&app, &admin, "game", &["players:write"]).await;
    let (mover_id, mover) = app.user_with_roles("mover", &["USER"]).await;
    let (late_id, late) = app.user_with_roles("late", &["USER"]).await;
    for id in [&mover_id, &late_id] {
        set_properties(&app, &secret, id, json!({ "country": "KR" })).await;
    }
    let korea = rule_audience(&app, &admin, "Korea", korea()).await;
    let sticky = active(&app, &admin, &targeted("Sticky", &[&korea], &[], true)).await;
    let twin = active(&app, &admin, &targeted("Twin", &[&korea], &[], false)).await;

    assert!(sees(&app, &mover, &sticky).await);
    assert!(sees(&app, &mover, &twin).await);
    set_properties(&app, &secret, &mover_id, json!({ "country": "US" })).await;
    set_properties(&app, &secret, &late_id, json!({ "country": "US" })).await;
    assert!(sees(&app, &mover, &sticky).await, "inside when first met: stays inside");
    assert!(!sees(&app, &mover, &twin).await, "the non-sticky twin follows the property");
    claim_granted(&app, &mover, &sticky).await;
    claim_refused(&app, &mover, &twin).await;
    assert!(!sees(&app, &late, &sticky).await, "never met it while inside: not kept");
    claim_refused(&app, &late, &sticky).await;
    app.stop().await;
}

on_both_stores!(
    a_list_upload_replaces_members_and_exports_them_back_on_sqlite,
    a_list_upload_replaces_members_and_exports_them_back_on_mongodb,
    list_upload
);

/// `PUT .../members` with `text/csv` as `token`.
async fn upload(app: &TestApp, token: &str, audience_id: &str, csv: impl Into<reqwest::Body>) -> reqwest::Response {
    app.request(Method::PUT, &format!("/api/v1/audiences/{audience_id}/members"), Some(token))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap()
}

/// A LIST audience's member count as staff read it.
async fn member_count(app: &TestApp, token: &str, audience_id: &str) -> u64 {
    app.get_json(&format!("/api/v1/audiences/{audience_id}"), Some(token)).await["memberCount"].as_u64().unwrap()
}

async fn is_member(app: &TestApp, token: &str, audience_id: &str, user_id: &str) -> bool {
    check(app, token, audience_id, user_id).await["member"].as_bool().unwrap()
}

/// A good upload replaces the members (header, CRLF, blank lines and repeats as the API says);
/// the list, the export and the check agree; the export uploads back to the same members.
async fn list_upload(app: TestApp) {
    let admin = app.admin_token().await;
    let (player_id, player) = app.user_with_roles("listed", &["USER"]).await;
    let audience = list_audience(&app, &admin, "Beta testers").await;
    let event = active(&app, &admin, &targeted("Beta", &[&audience], &[], false)).await;
    assert!(!sees(&app, &player, &event).await, "an empty list holds nobody");

    let csv = format!("userId\r\nalice\r\n\r\n{player_id}\nalice\n  bob  \n-carol\nd,e");
    let response = upload(&app, &admin, &audience, csv).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "members": 5 }));
    assert_eq!(member_count(&app, &admin, &audience).await, 5);
    let mut expected = vec!["-carol".to_owned(), "alice".into(), "bob".into(), "d,e".into(), player_id.clone()];
    expected.sort();
    let page = app.get_json(&format!("/api/v1/audiences/{audience}/members?limit=100"), Some(&admin)).await;
    let listed: Vec<&str> = page["items"].as_array().unwrap().iter().map(|m| m["userId"].as_str().unwrap()).collect();
    assert_eq!(listed, expected, "{page}");
    assert_eq!(page["total"], 5);
    assert!(sees(&app, &player, &event).await);
    assert!(is_member(&app, &admin, &audience, "bob").await);
    let verdict = check(&app, &admin, &audience, "zed").await;
    assert_eq!(verdict, json!({ "userId": "zed", "member": false, "rule": { "type": "LIST", "met": false } }));

    // The export, uploaded back, makes the same members.
    let response = app.get(&format!("/api/v1/audiences/{audience}/members/export"), Some(&admin)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let exported = response.text().await.unwrap();
    assert!(exported.starts_with("userId\r\n"), "{exported}");
    assert_eq!(exported.lines().count(), 6, "{exported}");
    let replaced = upload(&app, &admin, &audience, "x1\nx2\n").await;
    assert_eq!(replaced.json::<Value>().await.unwrap(), json!({ "members": 2 }));
    assert!(!sees(&app, &player, &event).await, "an upload replaces the members");
    assert!(!is_member(&app, &admin, &audience, "alice").await);
    let restored = upload(&app, &admin, &audience, exported).await;
    assert_eq!(restored.status(), StatusCode::OK);
    let page = app.get_json(&format!("/api/v1/audiences/{audience}/members?limit=100"), Some(&admin)).await;
    let listed: Vec<&str> = page["items"].as_array().unwrap().iter().map(|m| m["userId"].as_str().unwrap()).collect();
    assert_eq!(listed, expected, "the export round trips: {page}");
    assert!(sees(&app, &player, &event).await);

    // Not CSV, not a LIST audience, no such audience.
    let json_body = app.request(Method::PUT, &format!("/api/v1/audiences/{audience}/members"), Some(&admin));
    let response = json_body.json(&json!(["alice"])).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let rule = rule_audience(&app, &admin, "Korea", korea()).await;
    let response = upload(&app, &admin, &rule, "alice\n").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(problem(response).await["code"], "AUDIENCE_NOT_A_LIST");
    let response = upload(&app, &admin, "0123456789abcdef01234567", "alice\n").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let bad = upload(&app, &admin, &audience, format!("ok\n{}\n", "x".repeat(129))).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(pointers(&problem(bad).await), ["line:2"]);
    assert_eq!(member_count(&app, &admin, &audience).await, 5);
    let entry = last_audit(&app, &admin, &audience, "audience.members.replace").await;
    assert_eq!((&entry["before"]["memberCount"], &entry["after"]["memberCount"]), (&json!(2), &json!(5)), "{entry}");
    app.stop().await;
}

/// `count` member lines `m0000001`… from `first`, each ending in a newline.
fn member_lines(body: &mut Vec<u8>, first: u64, count: u64) {
    for i in first..first + count {
        body.extend_from_slice(format!("m{i:07}\n").as_bytes());
    }
}

/// A LIST audience holding `keep-1` and `keep-2`; its id.
async fn two_members(app: &TestApp, admin: &str) -> String {
    let audience = list_audience(app, admin, "Whales").await;
    assert_eq!(upload(app, admin, &audience, "keep-1\nkeep-2\n").await.status(), StatusCode::OK);
    audience
}

/// An upload whose line `bad_at` is no user id (ids before it, and 1,000 after) is refused
/// naming that line, and the audience keeps exactly its two members.
async fn a_bad_line_refuses_the_whole_upload(app: &TestApp, admin: &str, audience: &str, bad_at: u64) {
    let mut body = b"userId\n".to_vec();
    member_lines(&mut body, 1, bad_at - 2);
    body.extend_from_slice(format!("{}\n", "x".repeat(129)).as_bytes());
    member_lines(&mut body, bad_at - 1, 1_000);
    let started = Instant::now();
    let response = upload(app, admin, audience, body).await;
    eprintln!("an upload refused at line {bad_at} took {:?}", started.elapsed());
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let refusal = problem(response).await;
    assert_eq!(pointers(&refusal), [format!("line:{bad_at}")], "{refusal}");
    assert!(refusal.to_string().contains(&format!("line {bad_at}")), "{refusal}");
    assert_eq!(member_count(app, admin, audience).await, 2);
    assert!(is_member(app, admin, audience, "keep-1").await);
    assert!(!is_member(app, admin, audience, "m0000001").await, "nothing of a refused upload is kept");
    let page = app.get_json(&format!("/api/v1/audiences/{audience}/members"), Some(admin)).await;
    assert_eq!(page["total"], 2, "{page}");
}

/// Big uploads refused whole: a bad line at line 500,000, then 1,000,001 ids (one too many);
/// each names its line and leaves the audience exactly as it was. On SQLite only: the MongoDB
/// test server (mongoeco) cannot take it — under the 500,000-line upload its connections time
/// out ("server monitor timeout", a 503 after 11 to 14 s) and it stalls for the other tests
/// sharing it, where SQLite refuses it in 3 to 5 s and the 1,000,001 lines in 7 to 21 s (debug
/// build, 2 busy cores). MongoDB runs the same refusal past two write batches below (11,000
/// lines, 9 to 15 s there).
#[tokio::test]
async fn big_uploads_are_refused_whole_on_sqlite() {
    let app = app_with(None, |_| {}).await;
    let admin = app.admin_token().await;
    let audience = two_members(&app, &admin).await;
    a_bad_line_refuses_the_whole_upload(&app, &admin, &audience, 500_000).await;

    let mut too_many = Vec::with_capacity(9 * 1_000_001);
    member_lines(&mut too_many, 1, 1_000_001);
    let started = Instant::now();
    let response = upload(&app, &admin, &audience, too_many).await;
    eprintln!("a refused 1,000,001-line upload took {:?}", started.elapsed());
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let refusal = problem(response).await;
    assert_eq!(pointers(&refusal), ["line:1000001"], "{refusal}");
    assert_eq!(refusal["errors"][0]["code"], "too_many_lines", "{refusal}");
    assert_eq!(member_count(&app, &admin, &audience).await, 2);
    assert!(is_member(&app, &admin, &audience, "keep-2").await);
    assert!(!is_member(&app, &admin, &audience, "m1000000").await, "nothing of a refused upload is kept");
    app.stop().await;
}

/// The refusal of a bad line on MongoDB, after two full write batches of members were staged.
#[tokio::test]
async fn an_upload_refused_after_several_batches_is_refused_whole_on_mongodb() {
    let app = app_with(None, on_mongodb).await;
    let admin = app.admin_token().await;
    let audience = two_members(&app, &admin).await;
    a_bad_line_refuses_the_whole_upload(&app, &admin, &audience, 11_000).await;
    app.stop().await;
}

on_both_stores!(staff_audience_tools_on_sqlite, staff_audience_tools_on_mongodb, staff_tools);

/// Polls the estimate of `audience_id` until job `job_id` is DONE (30 s at most).
async fn finished_estimate(app: &TestApp, token: &str, audience_id: &str, job_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let estimate = app.get_json(&format!("/api/v1/audiences/{audience_id}/estimate"), Some(token)).await;
        if estimate["jobId"] == job_id && estimate["status"] == "DONE" {
            return estimate;
        }
        assert_ne!(estimate["status"], "FAILED", "{estimate}");
        assert!(Instant::now() < deadline, "estimate {job_id} did not finish: {estimate}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts an estimate as `token`; its job id.
async fn start_estimate(app: &TestApp, token: &str, audience_id: &str) -> String {
    let response = app.post(&format!("/api/v1/audiences/{audience_id}/estimate"), Some(token), &json!({})).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    response.json::<Value>().await.unwrap()["jobId"].as_str().unwrap().to_owned()
}

/// Estimates, checks with every node's verdict, deletion refused while in use, `If-Match`,
/// and every bad input a 4xx naming its field.
async fn staff_tools(app: TestApp) {
    let admin = app.admin_token().await;
    let (_, operator) = app.user_with_roles("operator", &["OPERATOR"]).await;
    let (_, secret) = service_key(&app, &admin, "game", &["players:write"]).await;
    let players = [
        ("kr-1", json!({ "country": "KR", "vipLevel": 3 })),
        ("kr-2", json!({ "country": "KR", "vipLevel": 7 })),
        ("us-1", json!({ "country": "US" })),
    ];
    for (id, properties) in players {
        set_properties(&app, &secret, id, properties).await;
    }

    // Estimates: a RULE audience over the players with properties, in the background.
    let rule = json!({ "type": "AND", "subConditions": [
        korea(), { "type": "NOT", "condition": { "type": "PROPERTY", "name": "vipLevel", "op": "GTE", "value": 5 } },
    ] });
    let audience = rule_audience(&app, &operator, "Korea, not VIP", rule.clone()).await;
    let path = format!("/api/v1/audiences/{audience}/estimate");
    let before = app.get_json(&path, Some(&operator)).await;
    assert_eq!(
        (&before["status"], &before["scanned"], &before["jobId"]),
        (&json!("NOT_STARTED"), &json!(0), &Value::Null)
    );
    let job = start_estimate(&app, &operator, &audience).await;
    let estimate = finished_estimate(&app, &operator, &audience, &job).await;
    assert_eq!((&estimate["members"], &estimate["scanned"], &estimate["total"]), (&json!(1), &json!(3), &json!(3)));
    let shown = app.get_json(&format!("/api/v1/audiences/{audience}"), Some(&operator)).await;
    assert_eq!(shown["estimate"]["jobId"], job.as_str(), "{shown}");
    let list = list_audience(&app, &operator, "Hand picked").await;
    assert_eq!(upload(&app, &operator, &list, "a\nb\nc\n").await.status(), StatusCode::OK);
    let job = start_estimate(&app, &operator, &list).await;
    let estimate = finished_estimate(&app, &operator, &list, &job).await;
    assert_eq!(estimate["members"], 3, "a LIST's estimate is exact: {estimate}");

    // The check shows why, node by node.
    let verdict = check(&app, &operator, &audience, "kr-1").await;
    let property = |met: bool| json!({ "type": "PROPERTY", "met": met });
    let tree = |country: bool, vip: bool| {
        json!({ "type": "AND", "met": country && !vip, "children": [
            property(country), { "type": "NOT", "met": !vip, "children": [property(vip)] },
        ] })
    };
    assert_eq!(verdict, json!({ "userId": "kr-1", "member": true, "rule": tree(true, false) }));
    assert_eq!(check(&app, &operator, &audience, "kr-2").await["rule"], tree(true, true));
    assert_eq!(check(&app, &operator, &audience, "nobody").await["rule"], tree(false, false));
    let nested = json!({ "type": "IN_AUDIENCE", "audienceId": audience });
    let outer = rule_audience(&app, &operator, "Nested", nested).await;
    let verdict = check(&app, &operator, &outer, "kr-1").await;
    assert_eq!(verdict["rule"], json!({ "type": "IN_AUDIENCE", "met": true, "children": [tree(true, false)] }));
    let response = app.get(&format!("/api/v1/audiences/{audience}/check?userId="), Some(&operator)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(pointers(&problem(response).await), ["?userId"]);
    let response = app.get(&format!("/api/v1/audiences/{UNKNOWN_EVENT}/check?userId=kr-1"), Some(&operator)).await;
    assert_eq!(problem(response).await["code"], "AUDIENCE_NOT_FOUND");

    // Deleting: refused while an event or another audience names it.
    let used = list_audience(&app, &operator, "Used").await;
    let draft = create_event(&app, &operator, &targeted("Uses it", &[], &[&used], false)).await;
    let delete = |id: &str| app.request(Method::DELETE, &format!("/api/v1/audiences/{id}"), Some(&operator)).send();
    let response = delete(&used).await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(problem(response).await["code"], "AUDIENCE_IN_USE");
    let response = delete(&audience).await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT, "the nested audience names it");
    let draft_path = format!("/api/v1/events/{}", draft["id"].as_str().unwrap());
    let response = app.request(Method::DELETE, &draft_path, Some(&admin)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT, "only ADMIN deletes events");
    assert_eq!(delete(&used).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/api/v1/audiences/{used}"), Some(&operator)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(delete(&used).await.unwrap().status(), StatusCode::NOT_FOUND);
    let entry = last_audit(&app, &admin, &used, "audience.delete").await;
    assert_eq!(entry["actorUsername"], "operator", "{entry}");

    // PATCH honours If-Match.
    let path = format!("/api/v1/audiences/{list}");
    let response = app.get(&path, Some(&operator)).await;
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let patch = |if_match: &str, body: Value| {
        let request = app.request(Method::PATCH, &path, Some(&operator)).header("if-match", if_match);
        request.json(&body).send()
    };
    let response = patch(&etag, json!({ "description": "picked by hand" })).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_ne!(response.headers()["etag"].to_str().unwrap(), etag);
    let changed: Value = response.json().await.unwrap();
    assert_eq!((&changed["description"], &changed["memberCount"]), (&json!("picked by hand"), &json!(3)));
    let response = patch(&etag, json!({ "name": "stale" })).await.unwrap();
    assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.get_json(&path, Some(&operator)).await["name"], "Hand picked");

    // Bad input: each error names its field; never a 500.
    let refused = |body: Value| {
        let app = &app;
        let operator = &operator;
        async move {
            let response = app.post("/api/v1/audiences", Some(operator), &body).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            pointers(&problem(response).await)
        }
    };
    let bad_op = json!({ "type": "AND", "subConditions": [{ "type": "PROPERTY", "name": "country", "op": "LIKE", "value": "K%" }] });
    assert_eq!(refused(json!({ "name": "x", "kind": "RULE", "rule": bad_op })).await, ["/rule/subConditions/0/op"]);
    assert_eq!(refused(json!({ "name": "x", "kind": "RULE" })).await, ["/rule"]);
    assert_eq!(refused(json!({ "name": "x", "kind": "LIST", "rule": korea() })).await, ["/rule"]);
    assert_eq!(refused(json!({ "name": "", "kind": "LIST" })).await, ["/name"]);
    let unknown = json!({ "type": "IN_AUDIENCE", "audienceId": UNKNOWN_EVENT });
    let response =
        app.post("/api/v1/audiences", Some(&operator), &json!({ "name": "x", "kind": "RULE", "rule": unknown })).await;
    assert_eq!(response.status(), StatusCode::CONFLICT, "a rule names existing audiences");
    assert_eq!(problem(response).await["code"], "AUDIENCE_REFERENCE_INVALID");
    let bad_rollout = json!({ "type": "ROLLOUT", "percent": 101, "salt": "s" });
    assert_eq!(refused(json!({ "name": "x", "kind": "RULE", "rule": bad_rollout })).await, ["/rule/percent"]);
    let response = app
        .send_json(
            Method::PATCH,
            &format!("/api/v1/audiences/{audience}"),
            Some(&operator),
            &json!({ "rule": { "type": "INACTIVE_DAYS", "min": 0 } }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(pointers(&problem(response).await), ["/rule/min"]);
    let response =
        app.post("/api/v1/events", Some(&operator), &targeted("Nobody's", &[UNKNOWN_EVENT], &[], false)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT, "a target names existing audiences");
    assert_eq!(problem(response).await["code"], "AUDIENCE_NOT_FOUND");
    assert_eq!(app.get("/api/v1/audiences/not-an-id", Some(&operator)).await.status(), StatusCode::NOT_FOUND);

    let property_refusal = |body: Value| {
        let (app, secret) = (&app, &secret);
        async move {
            let response = patch_properties(app, secret, "kr-1", &body).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
            problem(response).await
        }
    };
    assert_eq!(pointers(&property_refusal(json!({ "9lives": 1, "ok": true })).await), ["/9lives"]);
    assert_eq!(pointers(&property_refusal(json!({ "motto": "x".repeat(257) })).await), ["/motto"]);
    assert_eq!(pointers(&property_refusal(json!({ "nested": { "a": 1 } })).await), ["/nested"]);
    let too_many: serde_json::Map<String, Value> = (0..65).map(|i| (format!("p{i}"), json!(i))).collect();
    let refusal = property_refusal(Value::Object(too_many)).await;
    assert!(refusal.to_string().contains("64"), "{refusal}");
    // 63 more on top of the 2 kr-1 has is one too many as well: a conflict with what is stored.
    let sixty_three: serde_json::Map<String, Value> = (0..63).map(|i| (format!("q{i}"), json!(i))).collect();
    let response = patch_properties(&app, &secret, "kr-1", &Value::Object(sixty_three)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let refusal = problem(response).await;
    assert_eq!(refusal["code"], "TOO_MANY_PROPERTIES");
    assert!(refusal.to_string().contains("64"), "{refusal}");
    assert_eq!(property_refusal(json!(["country"])).await["status"], 400);
    let read = app.get_json("/api/v1/players/kr-1/properties", Some(&operator)).await;
    assert_eq!(read["properties"], json!({ "country": "KR", "vipLevel": 3 }), "refusals change nothing: {read}");
    app.stop().await;
}
