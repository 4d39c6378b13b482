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
