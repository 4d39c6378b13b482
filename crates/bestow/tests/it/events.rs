//! The event catalog over HTTP: roles, validation, lifecycle, concurrency, audit, persistence.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fixtures::{activated_event, create_event, event_body, second_reward, set_status};
use crate::helpers::{Cast, TestApp, pointers, problem};

/// An event driven to `status` through allowed transitions.
async fn event_in(app: &TestApp, token: &str, status: &str) -> String {
    let event = create_event(app, token, &event_body(&format!("in {status}"))).await;
    let id = event["id"].as_str().unwrap().to_owned();
    let path: &[&str] = match status {
        "DRAFT" => &[],
        "ACTIVE" => &["ACTIVE"],
        "INACTIVE" => &["ACTIVE", "INACTIVE"],
        "EXPIRED" => &["ACTIVE", "EXPIRED"],
        "ARCHIVED" => &["ACTIVE", "EXPIRED", "ARCHIVED"],
        other => panic!("unknown status {other}"),
    };
    for step in path {
        assert_eq!(set_status(app, token, &id, step).await.status(), StatusCode::OK, "to {step}");
    }
    id
}

async fn audit_total(app: &TestApp, token: &str, target: &str) -> u64 {
    let log = app.get_json(&format!("/api/v1/audit-logs?targetId={target}"), Some(token)).await;
    log["total"].as_u64().unwrap()
}

#[tokio::test]
async fn every_events_route_against_every_role() {
    let app = TestApp::spawn().await;
    let cast = Cast::of(&app).await;
    let roles = cast.roles();
    // (name, expected status per role in the order above, request builder on a fresh DRAFT event)
    type Call = fn(&str, &str) -> (Method, String, Option<Value>);
    let routes: Vec<(&str, [u16; 5], Call)> = vec![
        ("create", [401, 403, 201, 403, 201], |_, _| (Method::POST, "/api/v1/events".into(), Some(event_body("x")))),
        ("list", [401, 200, 200, 200, 200], |_, _| (Method::GET, "/api/v1/events".into(), None)),
        ("get draft", [401, 404, 200, 200, 200], |id, _| (Method::GET, format!("/api/v1/events/{id}"), None)),
        ("patch", [401, 403, 200, 403, 200], |id, _| {
            (Method::PATCH, format!("/api/v1/events/{id}"), Some(json!({ "eventName": "renamed" })))
        }),
        ("status", [401, 403, 200, 403, 200], |id, _| {
            (Method::PUT, format!("/api/v1/events/{id}/status"), Some(json!({ "status": "ACTIVE" })))
        }),
        ("delete", [401, 403, 403, 403, 204], |id, _| (Method::DELETE, format!("/api/v1/events/{id}"), None)),
        ("add reward", [401, 403, 201, 403, 201], |id, _| {
            (Method::POST, format!("/api/v1/events/{id}/rewards"), Some(second_reward()))
        }),
        ("list rewards of draft", [401, 404, 200, 200, 200], |id, _| {
            (Method::GET, format!("/api/v1/events/{id}/rewards"), None)
        }),
        ("patch reward", [401, 403, 200, 403, 200], |id, reward| {
            (Method::PATCH, format!("/api/v1/events/{id}/rewards/{reward}"), Some(json!({ "addStock": 5 })))
        }),
        ("delete reward", [401, 403, 204, 403, 204], |id, reward| {
            (Method::DELETE, format!("/api/v1/events/{id}/rewards/{reward}"), None)
        }),
        ("audit log", [401, 403, 403, 200, 200], |_, _| (Method::GET, "/api/v1/audit-logs".into(), None)),
        ("audit log export", [401, 403, 403, 200, 200], |_, _| (Method::GET, "/api/v1/audit-logs/export".into(), None)),
    ];
    for (name, expected, call) in routes {
        for ((role, token), want) in roles.iter().zip(expected) {
            let event = create_event(&app, &cast.operator, &event_body("fixture")).await;
            let (id, reward) = (event["id"].as_str().unwrap(), event["rewards"][0]["rewardId"].as_str().unwrap());
            let (method, path, body) = call(id, reward);
            let mut request = app.request(method, &path, *token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let status = request.send().await.unwrap().status().as_u16();
            assert_eq!(status, want, "{name} as {role}");
        }
    }
    // Players see ACTIVE events (and their rewards) once they are active.
    let id = event_in(&app, &cast.operator, "ACTIVE").await;
    assert_eq!(app.get(&format!("/api/v1/events/{id}"), Some(&cast.user)).await.status(), StatusCode::OK);
    assert_eq!(app.get(&format!("/api/v1/events/{id}/rewards"), Some(&cast.user)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_events_name_the_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let operator = app.user_with_roles("operator", &["OPERATOR"]).await.1;
    let with = |pointer: &str, value: Value| {
        let mut body = event_body("bad");
        let mut target = &mut body;
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        for part in &parts[..parts.len() - 1] {
            target = match part.parse::<usize>() {
                Ok(index) => &mut target[index],
                Err(_) => &mut target[*part],
            };
        }
        target[parts[parts.len() - 1]] = value;
        body
    };
    let reward = |reward_type: &str, details: Value| {
        let mut body = event_body("bad");
        body["rewards"][0]["rewardType"] = json!(reward_type);
        body["rewards"][0]["details"] = details;
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (reward("POINT", json!({ "points": 0 })), "/rewards/0/details/points"),
        (reward("POINT", json!({ "points": "many" })), "/rewards/0/details/points"),
        (reward("ITEM", json!({ "itemName": "Potion" })), "/rewards/0/details/itemId"),
        (reward("COUPON", json!({ "couponCode": "WELCOME", "discountRate": 1.5 })), "/rewards/0/details/discountRate"),
        (reward("VIRTUAL_CURRENCY", json!({ "currency": "GEM", "amount": -5 })), "/rewards/0/details/amount"),
        (reward("BITCOIN", json!({})), "/rewards/0/rewardType"),
        (with("/rewards/0/quantityPerUser", json!(0)), "/rewards/0/quantityPerUser"),
        (with("/rewards/0/totalStock", json!(0)), "/rewards/0/totalStock"),
        (with("/endDate", json!("2020-01-01T00:00:00Z")), "/endDate"),
        (with("/startDate", json!("yesterday")), "/startDate"),
        (with("/timezone", json!("Mars/Olympus_Mons")), "/timezone"),
        (with("/conditions", json!({ "type": "TELEPORT" })), "/conditions/type"),
        (with("/conditions", json!({ "type": "LOGIN_STREAK" })), "/conditions/days"),
        (with("/conditions", json!({ "type": "LOGIN_STREAK", "days": "seven" })), "/conditions/days"),
        (
            with("/conditions", json!({ "type": "AND", "subConditions": [{ "type": "LEVEL_REACHED", "level": 0 }] })),
            "/conditions/subConditions/0/level",
        ),
        (with("/conditions", nested(6)), "/conditions/condition/condition/condition/condition/condition"),
        (
            with(
                "/conditions",
                json!({ "type": "OR", "subConditions": vec![json!({ "type": "LOGIN_DAYS", "days": 1 }); 51] }),
            ),
            "/conditions",
        ),
        (with("/eventName", json!("")), "/eventName"),
    ];
    for (body, pointer) in cases {
        let response = app.post("/api/v1/events", Some(&operator), &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{pointer}: {body}");
        let problem = problem(response).await;
        assert!(pointers(&problem).contains(&pointer.to_owned()), "{pointer} in {problem}");
    }
    let listed = app.get_json("/api/v1/events", Some(&operator)).await;
    assert_eq!(listed["total"], 0, "nothing was stored");
    let admin = app.admin_token().await;
    let log = app.get_json("/api/v1/audit-logs", Some(&admin)).await;
    assert_eq!(log["total"], 0, "nothing was audited");
}

/// NOT nested `depth` times around a leaf: depth + 1 levels.
fn nested(depth: usize) -> Value {
    (0..depth).fold(json!({ "type": "LOGIN_DAYS", "days": 1 }), |inner, _| json!({ "type": "NOT", "condition": inner }))
}

#[tokio::test]
async fn the_whole_transition_table() {
    let app = TestApp::spawn().await;
    let operator = app.user_with_roles("operator", &["OPERATOR"]).await.1;
    let statuses = ["DRAFT", "ACTIVE", "INACTIVE", "EXPIRED", "ARCHIVED"];
    let allowed = [
        ("DRAFT", "ACTIVE"),
        ("ACTIVE", "INACTIVE"),
        ("INACTIVE", "ACTIVE"),
        ("ACTIVE", "EXPIRED"),
        ("INACTIVE", "EXPIRED"),
        ("EXPIRED", "ARCHIVED"),
        ("INACTIVE", "ARCHIVED"),
    ];
    for from in statuses {
        for to in statuses {
            let id = event_in(&app, &operator, from).await;
            let response = set_status(&app, &operator, &id, to).await;
            let want = if allowed.contains(&(from, to)) { StatusCode::OK } else { StatusCode::CONFLICT };
            assert_eq!(response.status(), want, "{from} -> {to}");
            let event = app.get_json(&format!("/api/v1/events/{id}"), Some(&operator)).await;
            let now = if want == StatusCode::OK { to } else { from };
            assert_eq!(event["status"], now, "{from} -> {to} leaves the event {now}");
        }
    }
}

#[tokio::test]
async fn lifecycle_rules() {
    let app = TestApp::spawn().await;
    let cast = Cast::of(&app).await;
    // Activation needs a reward.
    let mut bare = event_body("no rewards");
    bare["rewards"] = json!([]);
    let bare = create_event(&app, &cast.operator, &bare).await;
    let response = set_status(&app, &cast.operator, bare["id"].as_str().unwrap(), "ACTIVE").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(problem(response).await["code"], "NO_REWARDS");

    let id = event_in(&app, &cast.operator, "ACTIVE").await;
    let event = app.get_json(&format!("/api/v1/events/{id}"), Some(&cast.operator)).await;
    let reward = event["rewards"][0]["rewardId"].as_str().unwrap();
    // Not deletable once active.
    let response =
        app.request(Method::DELETE, &format!("/api/v1/events/{id}"), Some(&cast.admin)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    // Definitions are locked while active; names are not.
    let reward_path = format!("/api/v1/events/{id}/rewards/{reward}");
    for edit in [json!({ "rewardName": "2000 points" }), json!({ "details": { "points": 2000 } })] {
        let response = app.send_json(Method::PATCH, &reward_path, Some(&cast.operator), &edit).await;
        assert_eq!(response.status(), StatusCode::CONFLICT, "{edit}");
        assert!(problem(response).await["detail"].as_str().unwrap().contains("DRAFT or INACTIVE"));
    }
    let conditions = json!({ "conditions": { "type": "LOGIN_DAYS", "days": 1 } });
    let response =
        app.send_json(Method::PATCH, &format!("/api/v1/events/{id}"), Some(&cast.operator), &conditions).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let response = app.post(&format!("/api/v1/events/{id}/rewards"), Some(&cast.operator), &second_reward()).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    // A top-up works while active and moves both counters.
    let response = app.send_json(Method::PATCH, &reward_path, Some(&cast.operator), &json!({ "addStock": 50 })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let topped: Value = response.json().await.unwrap();
    assert_eq!((topped["totalStock"].as_i64(), topped["remainingStock"].as_i64()), (Some(150), Some(150)));
    // Once inactive, the definition may change again.
    set_status(&app, &cast.operator, &id, "INACTIVE").await;
    let response =
        app.send_json(Method::PATCH, &reward_path, Some(&cast.operator), &json!({ "rewardName": "Big points" })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let redefined: Value = response.json().await.unwrap();
    assert_eq!(
        (redefined["rewardName"].as_str(), redefined["remainingStock"].as_i64()),
        (Some("Big points"), Some(150))
    );
    // Players never see drafts or inactive events in lists.
    let list = app.get_json("/api/v1/events", Some(&cast.user)).await;
    assert_eq!(list["total"], 0);
    set_status(&app, &cast.operator, &id, "ACTIVE").await;
    let list = app.get_json("/api/v1/events?status=DRAFT", Some(&cast.user)).await;
    assert_eq!(list["total"], 0);
    let list = app.get_json("/api/v1/events", Some(&cast.user)).await;
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn events_expire_once_their_end_date_passes() {
    let app = TestApp::spawn_configured(|config| config.events.expiry_sweep_secs = 1).await;
    let operator = app.user_with_roles("operator", &["OPERATOR"]).await.1;
    let mut body = event_body("short");
    body["endDate"] = json!((chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339());
    let id = activated_event(&app, &operator, &body).await;
    let mut status = String::new();
    for _ in 0..50 {
        let event = app.get_json(&format!("/api/v1/events/{id}"), Some(&operator)).await;
        status = event["status"].as_str().unwrap().to_owned();
        if status == "EXPIRED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "EXPIRED");
    let admin = app.admin_token().await;
    let log = app.get_json(&format!("/api/v1/audit-logs?targetId={id}&action=event.expire"), Some(&admin)).await;
    assert_eq!(log["items"][0]["actorUsername"], "expiry");
}

#[tokio::test]
async fn concurrent_patches_with_the_same_if_match() {
    let app = TestApp::spawn().await;
    let operator = app.user_with_roles("operator", &["OPERATOR"]).await.1;
    let event = create_event(&app, &operator, &event_body("contended")).await;
    let id = event["id"].as_str().unwrap();
    let read = app.get(&format!("/api/v1/events/{id}"), Some(&operator)).await;
    let etag = read.headers()["etag"].to_str().unwrap().to_owned();
    let path = format!("/api/v1/events/{id}");
    let patch = |name: &'static str| {
        app.request(Method::PATCH, &path, Some(&operator))
            .header("if-match", &etag)
            .json(&json!({ "eventName": name }))
            .send()
    };
    let (first, second) = tokio::join!(patch("first"), patch("second"));
    let mut statuses = [first.unwrap().status().as_u16(), second.unwrap().status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 412]);
    // The stale tag stays stale; the new one works.
    let response = patch("third").await.unwrap();
    assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
    let fresh = app.get(&path, Some(&operator)).await.headers()["etag"].to_str().unwrap().to_owned();
    let response = app
        .request(Method::PATCH, &path, Some(&operator))
        .header("if-match", fresh)
        .json(&json!({ "eventName": "fourth" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_mutation_leaves_exactly_one_audit_entry() {
    let app = TestApp::spawn().await;
    let cast = Cast::of(&app).await;
    let event = create_event(&app, &cast.operator, &event_body("audited")).await;
    let id = event["id"].as_str().unwrap().to_owned();
    let reward = event["rewards"][0]["rewardId"].as_str().unwrap().to_owned();
    assert_eq!(audit_total(&app, &cast.admin, &id).await, 1);

    let added: Value = app
        .post(&format!("/api/v1/events/{id}/rewards"), Some(&cast.operator), &second_reward())
        .await
        .json()
        .await
        .unwrap();
    let added_id = added["rewardId"].as_str().unwrap().to_owned();
    let steps: Vec<(&str, Method, String, Option<Value>)> = vec![
        ("event.update", Method::PATCH, format!("/api/v1/events/{id}"), Some(json!({ "eventName": "renamed" }))),
        (
            "reward.update",
            Method::PATCH,
            format!("/api/v1/events/{id}/rewards/{reward}"),
            Some(json!({ "totalStock": 70 })),
        ),
        ("reward.delete", Method::DELETE, format!("/api/v1/events/{id}/rewards/{added_id}"), None),
        ("event.status", Method::PUT, format!("/api/v1/events/{id}/status"), Some(json!({ "status": "ACTIVE" }))),
        (
            "reward.topup",
            Method::PATCH,
            format!("/api/v1/events/{id}/rewards/{reward}"),
            Some(json!({ "addStock": 5 })),
        ),
    ];
    let mut expected_total = 2;
    for (action, method, path, body) in steps {
        let mut request = app.request(method, &path, Some(&cast.operator));
        if let Some(body) = body {
            request = request.json(&body);
        }
        assert!(request.send().await.unwrap().status().is_success(), "{action}");
        expected_total += 1;
        assert_eq!(audit_total(&app, &cast.admin, &id).await, expected_total, "{action} audited once");
        let log = app.get_json(&format!("/api/v1/audit-logs?targetId={id}&limit=1"), Some(&cast.auditor)).await;
        let entry = &log["items"][0];
        assert_eq!(entry["action"], action);
        assert_eq!(entry["actorUsername"], "operator");
        let (before, after) = (&entry["before"], &entry["after"]);
        match action {
            "event.update" => assert_eq!(
                (before["eventName"].as_str(), after["eventName"].as_str()),
                (Some("audited"), Some("renamed"))
            ),
            "reward.update" => assert_eq!(
                (before["rewards"][0]["totalStock"].as_i64(), after["rewards"][0]["totalStock"].as_i64()),
                (Some(100), Some(70))
            ),
            "reward.delete" => assert_eq!(
                (before["rewards"].as_array().map(Vec::len), after["rewards"].as_array().map(Vec::len)),
                (Some(2), Some(1))
            ),
            "event.status" => {
                assert_eq!((before["status"].as_str(), after["status"].as_str()), (Some("DRAFT"), Some("ACTIVE")))
            }
            "reward.topup" => assert_eq!(
                (before["rewards"][0]["remainingStock"].as_i64(), after["rewards"][0]["remainingStock"].as_i64()),
                (Some(70), Some(75))
            ),
            _ => unreachable!(),
        }
        assert_eq!(after["version"].as_i64().unwrap(), before["version"].as_i64().unwrap() + 1);
    }
    // Deleting a draft is audited too, with the event as it was.
    let draft = create_event(&app, &cast.operator, &event_body("doomed")).await;
    let draft_id = draft["id"].as_str().unwrap();
    let response =
        app.request(Method::DELETE, &format!("/api/v1/events/{draft_id}"), Some(&cast.admin)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let log = app.get_json(&format!("/api/v1/audit-logs?targetId={draft_id}"), Some(&cast.admin)).await;
    assert_eq!(log["total"], 2);
    assert_eq!((log["items"][0]["action"].as_str(), log["items"][0]["after"].is_null()), (Some("event.delete"), true));
    assert_eq!(app.get(&format!("/api/v1/events/{draft_id}"), Some(&cast.admin)).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn events_survive_a_restart() {
    let app = TestApp::spawn().await;
    let operator = app.user_with_roles("operator", &["OPERATOR"]).await.1;
    let id = activated_event(&app, &operator, &event_body("durable")).await;
    let before = app.get_json(&format!("/api/v1/events/{id}"), Some(&operator)).await;
    let (dir, config) = app.stop().await;
    let app = TestApp::spawn_with(dir, config).await;
    let after = app.get_json(&format!("/api/v1/events/{id}"), Some(&operator)).await;
    assert_eq!(before, after);
    assert_eq!(after["conditions"], json!({ "type": "LOGIN_STREAK", "days": 3 }));
    assert_eq!(after["timezone"], "Asia/Seoul");
}

#[tokio::test]
async fn list_filters_sorts_and_pages() {
    let app = TestApp::spawn().await;
    let operator = app.user_with_roles("operator", &["OPERATOR"]).await.1;
    let now = chrono::Utc::now();
    for (name, start_days, end_days) in
        [("Spring festival", -10, -5), ("Summer festival", -1, 10), ("Winter sale", 5, 20)]
    {
        let mut body = event_body(name);
        body["startDate"] = json!((now + chrono::Duration::days(start_days)).to_rfc3339());
        body["endDate"] = json!((now + chrono::Duration::days(end_days)).to_rfc3339());
        create_event(&app, &operator, &body).await;
    }
    let get = |query: &str| {
        let path = format!("/api/v1/events?{query}");
        let (app, operator) = (&app, &operator);
        async move { app.get(&path, Some(operator)).await }
    };
    let festivals: Value = get("q=FESTIVAL").await.json().await.unwrap();
    assert_eq!(festivals["total"], 2);
    let running: Value = get(&format!("activeAt={}", now.to_rfc3339().replace('+', "%2B"))).await.json().await.unwrap();
    assert_eq!(running["items"][0]["eventName"], "Summer festival");
    assert_eq!(running["total"], 1);
    let newest_start: Value = get("sort=-startDate&limit=1").await.json().await.unwrap();
    assert_eq!(
        (newest_start["items"][0]["eventName"].as_str(), newest_start["total"].as_u64()),
        (Some("Winter sale"), Some(3))
    );
    let page_two: Value = get("sort=startDate&limit=2&page=2").await.json().await.unwrap();
    assert_eq!(page_two["items"][0]["eventName"], "Winter sale");
    assert_eq!(get("sort=popularity").await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(get("status=NOPE").await.status(), StatusCode::BAD_REQUEST);
}
