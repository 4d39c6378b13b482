//! Every events-service route beyond the catalog, against every role: claims, wallets,
//! eligibility, activities and service keys. (The catalog and auth routes have their own
//! matrices in `events.rs` and `admin_routes.rs`.)

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::{create_event, event_body, set_status};
use crate::helpers::{Cast, TestApp};

/// (name, method, path, body, expected status for anonymous, USER, OPERATOR, AUDITOR, ADMIN)
type Route = (&'static str, Method, String, Option<Value>, [u16; 5]);

#[tokio::test]
async fn every_claim_wallet_activity_and_key_route_against_every_role() {
    let app = TestApp::spawn().await;
    let cast = Cast::of(&app).await;
    let mut body = event_body("matrix");
    body["conditions"] = Value::Null;
    let event = create_event(&app, &cast.operator, &body).await;
    let event_id = event["id"].as_str().unwrap().to_owned();
    set_status(&app, &cast.operator, &event_id, "ACTIVE").await;
    let player_id = app.user_id(&cast.user).await;
    let claim: Value = app
        .post(&format!("/api/v1/events/{event_id}/claims"), Some(&cast.user), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let request_id = claim["requestId"].as_str().unwrap().to_owned();
    let key = |name: &str| json!({ "name": name, "scopes": ["activities:write"] });
    let activity = json!({ "activities": [{ "userId": player_id, "type": "LOGIN", "occurredAt": chrono::Utc::now().to_rfc3339() }] });

    let roles = cast.roles();
    let routes: Vec<Route> = vec![
        (
            "claim",
            Method::POST,
            format!("/api/v1/events/{event_id}/claims"),
            Some(json!({})),
            [401, 201, 403, 403, 201],
        ),
        ("my claims", Method::GET, "/api/v1/claims/me".into(), None, [401, 200, 200, 200, 200]),
        ("all claims", Method::GET, "/api/v1/claims".into(), None, [401, 403, 200, 200, 200]),
        ("export claims", Method::GET, "/api/v1/claims/export".into(), None, [401, 403, 200, 200, 200]),
        ("one claim", Method::GET, format!("/api/v1/claims/{request_id}"), None, [401, 200, 200, 200, 200]),
        ("retry", Method::POST, format!("/api/v1/claims/{request_id}/retry"), None, [401, 403, 403, 403, 409]),
        (
            "resolve",
            Method::POST,
            format!("/api/v1/claims/{request_id}/resolve"),
            Some(json!({ "resolution": "ROLLED_BACK", "note": "n" })),
            [401, 403, 403, 403, 409],
        ),
        ("my wallet", Method::GET, "/api/v1/wallet/me".into(), None, [401, 200, 200, 200, 200]),
        ("a wallet", Method::GET, format!("/api/v1/wallets/{player_id}"), None, [401, 403, 200, 200, 200]),
        ("event stats", Method::GET, format!("/api/v1/events/{event_id}/stats"), None, [401, 403, 200, 200, 200]),
        ("eligibility", Method::GET, format!("/api/v1/events/{event_id}/eligibility"), None, [401, 200, 403, 403, 200]),
        (
            "a player's eligibility",
            Method::GET,
            format!("/api/v1/events/{event_id}/eligibility?userId={player_id}"),
            None,
            [401, 403, 200, 200, 200],
        ),
        ("my events", Method::GET, "/api/v1/me/events".into(), None, [401, 200, 403, 403, 200]),
        ("activities", Method::POST, "/api/v1/activities".into(), Some(activity), [401, 403, 403, 403, 202]),
        (
            "a player's activities",
            Method::GET,
            format!("/api/v1/activities?userId={player_id}"),
            None,
            [401, 403, 200, 200, 200],
        ),
        ("create key", Method::POST, "/api/v1/service-keys".into(), Some(key("k")), [401, 403, 403, 403, 201]),
        ("list keys", Method::GET, "/api/v1/service-keys".into(), None, [401, 403, 403, 403, 200]),
    ];
    for (name, method, path, body, expected) in routes {
        for ((role, token), want) in roles.iter().zip(expected) {
            let mut request = app.request(method.clone(), &path, *token);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let status = request.send().await.unwrap().status().as_u16();
            assert_eq!(status, want, "{name} as {role}");
        }
    }
    // Revoking a key: only ADMIN, each attempt on a fresh key.
    for ((role, token), want) in roles.iter().zip([401, 403, 403, 403, 204]) {
        let created: Value =
            app.post("/api/v1/service-keys", Some(&cast.admin), &key(role)).await.json().await.unwrap();
        let path = format!("/api/v1/service-keys/{}", created["id"].as_str().unwrap());
        let status = app.request(Method::DELETE, &path, *token).send().await.unwrap().status().as_u16();
        assert_eq!(status, want, "revoke key as {role}");
    }
}

/// Sends `method path` as `token` with `body`: JSON, or CSV when it is a string.
async fn status_of(app: &TestApp, method: &Method, path: &str, token: Option<&str>, body: &Option<Value>) -> u16 {
    let mut request = app.request(method.clone(), path, token);
    match body {
        Some(Value::String(csv)) => request = request.header("content-type", "text/csv").body(csv.clone()),
        Some(json) => request = request.json(json),
        None => {}
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn every_audience_and_player_property_route_against_every_role() {
    let app = TestApp::spawn().await;
    let cast = Cast::of(&app).await;
    let list: Value = app
        .post("/api/v1/audiences", Some(&cast.admin), &json!({ "name": "list", "kind": "LIST" }))
        .await
        .json()
        .await
        .unwrap();
    let list_id = list["id"].as_str().unwrap().to_owned();
    let audience =
        |name: &str| json!({ "name": name, "kind": "RULE", "rule": { "type": "ROLLOUT", "percent": 10, "salt": "s" } });
    let player = &cast.user_id;
    let start = app.post(&format!("/api/v1/audiences/{list_id}/estimate"), Some(&cast.admin), &json!({})).await;
    assert_eq!(start.status().as_u16(), 202);

    let roles = cast.roles();
    let routes: Vec<Route> = vec![
        (
            "a player's properties",
            Method::GET,
            format!("/api/v1/players/{player}/properties"),
            None,
            [401, 403, 200, 200, 200],
        ),
        (
            "set a player's properties",
            Method::PATCH,
            format!("/api/v1/players/{player}/properties"),
            Some(json!({ "country": "KR" })),
            [401, 403, 403, 403, 200],
        ),
        ("my properties", Method::GET, "/api/v1/me/properties".into(), None, [401, 200, 200, 200, 200]),
        ("create audience", Method::POST, "/api/v1/audiences".into(), Some(audience("a")), [401, 403, 201, 403, 201]),
        ("list audiences", Method::GET, "/api/v1/audiences".into(), None, [401, 403, 200, 200, 200]),
        ("one audience", Method::GET, format!("/api/v1/audiences/{list_id}"), None, [401, 403, 200, 200, 200]),
        (
            "change audience",
            Method::PATCH,
            format!("/api/v1/audiences/{list_id}"),
            Some(json!({ "description": "d" })),
            [401, 403, 200, 403, 200],
        ),
        (
            "upload members",
            Method::PUT,
            format!("/api/v1/audiences/{list_id}/members"),
            Some(json!("userId\nplayer-1\n")),
            [401, 403, 200, 403, 200],
        ),
        ("list members", Method::GET, format!("/api/v1/audiences/{list_id}/members"), None, [401, 403, 200, 200, 200]),
        (
            "export members",
            Method::GET,
            format!("/api/v1/audiences/{list_id}/members/export"),
            None,
            [401, 403, 200, 200, 200],
        ),
        (
            "add a member",
            Method::POST,
            format!("/api/v1/audiences/{list_id}/members/{player}"),
            None,
            [401, 403, 204, 403, 204],
        ),
        (
            "remove a member",
            Method::DELETE,
            format!("/api/v1/audiences/{list_id}/members/{player}"),
            None,
            [401, 403, 204, 403, 204],
        ),
        (
            "start estimate",
            Method::POST,
            format!("/api/v1/audiences/{list_id}/estimate"),
            None,
            [401, 403, 202, 403, 202],
        ),
        ("estimate", Method::GET, format!("/api/v1/audiences/{list_id}/estimate"), None, [401, 403, 200, 200, 200]),
        (
            "check a player",
            Method::GET,
            format!("/api/v1/audiences/{list_id}/check?userId={player}"),
            None,
            [401, 403, 200, 200, 200],
        ),
    ];
    for (name, method, path, body, expected) in routes {
        for ((role, token), want) in roles.iter().zip(expected) {
            assert_eq!(status_of(&app, &method, &path, *token, &body).await, want, "{name} as {role}");
        }
    }
    // The same CSV upload as plain bytes (what generated clients send); other types are 415.
    let members = format!("/api/v1/audiences/{list_id}/members");
    for (media_type, want) in [("application/octet-stream", 200), ("application/json", 415), ("text/plain", 415)] {
        let upload = app.request(Method::PUT, &members, Some(&cast.admin)).header("content-type", media_type);
        let response = upload.body("userId\nplayer-1\nplayer-2\n").send().await.unwrap();
        assert_eq!(response.status().as_u16(), want, "{media_type}");
    }
    assert_eq!(app.get_json(&members, Some(&cast.admin)).await["total"], 2);

    // A player reads what the game set for them, never what the platform computes of them.
    let own = app.get_json("/api/v1/me/properties", Some(&cast.user)).await;
    assert_eq!(own, json!({ "userId": player, "properties": { "country": "KR" } }));

    // Deleting an audience: OPERATOR and ADMIN, each attempt on a fresh one.
    for ((role, token), want) in roles.iter().zip([401, 403, 204, 403, 204]) {
        let created: Value =
            app.post("/api/v1/audiences", Some(&cast.admin), &audience(role)).await.json().await.unwrap();
        let path = format!("/api/v1/audiences/{}", created["id"].as_str().unwrap());
        assert_eq!(status_of(&app, &Method::DELETE, &path, *token, &None).await, want, "delete audience as {role}");
    }

    // Game servers set properties with a key holding `players:write`; no other scope will do.
    let key = |scope: &str| json!({ "name": scope, "scopes": [scope] });
    let path = format!("/api/v1/players/{player}/properties");
    for (scope, want) in [("activities:write", 403), ("players:write", 200)] {
        let created: Value =
            app.post("/api/v1/service-keys", Some(&cast.admin), &key(scope)).await.json().await.unwrap();
        let request = app.request(Method::PATCH, &path, None).header("x-api-key", created["secret"].as_str().unwrap());
        let status = request.json(&json!({ "vipLevel": 2 })).send().await.unwrap().status().as_u16();
        assert_eq!(status, want, "a key with {scope}");
    }
    let unknown = app.request(Method::PATCH, &path, None).header("x-api-key", "not-a-key");
    assert_eq!(unknown.json(&json!({ "vipLevel": 2 })).send().await.unwrap().status().as_u16(), 401);
}
