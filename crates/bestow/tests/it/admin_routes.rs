//! Every admin route against every role, and what admin changes leave in the audit log.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Cast, PASSWORD, TestApp, problem};

/// (method, path, body) of every ADMIN-only auth route, with `{id}` for a target user.
fn admin_routes(target: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/api/v1/users".into(), None),
        (Method::GET, "/api/v1/users?role=USER&isActive=true&q=ta".into(), None),
        (Method::GET, format!("/api/v1/users/{target}"), None),
        (Method::PUT, format!("/api/v1/users/{target}/roles"), Some(json!({ "roles": ["USER", "OPERATOR"] }))),
        (Method::PATCH, format!("/api/v1/users/{target}"), Some(json!({ "isActive": true }))),
    ]
}

#[tokio::test]
async fn admin_routes_refuse_everyone_but_admins() {
    let app = TestApp::spawn().await;
    let (target, _) = app.user_with_roles("target", &["USER"]).await;
    let Cast { user, operator, auditor, admin, .. } = Cast::of(&app).await;

    for (method, path, body) in admin_routes(&target) {
        let call = |token: Option<String>| {
            let mut request = app.request(method.clone(), &path, token.as_deref());
            if let Some(body) = &body {
                request = request.json(body);
            }
            request.send()
        };
        let anonymous = call(None).await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{method} {path} anonymous");
        assert_eq!(problem(anonymous).await["code"], "UNAUTHORIZED");
        for (role, token) in [("USER", &user), ("OPERATOR", &operator), ("AUDITOR", &auditor)] {
            let response = call(Some(token.clone())).await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path} as {role}");
        }
        let response = call(Some(admin.clone())).await.unwrap();
        assert!(response.status().is_success(), "{method} {path} as ADMIN: {}", response.status());
    }

    // The auth audit log and its export are for AUDITOR and ADMIN.
    for path in ["/api/v1/auth/audit-logs", "/api/v1/auth/audit-logs/export"] {
        assert_eq!(app.get(path, None).await.status(), StatusCode::UNAUTHORIZED, "{path}");
        for token in [&user, &operator] {
            assert_eq!(app.get(path, Some(token)).await.status(), StatusCode::FORBIDDEN, "{path}");
        }
        for token in [&auditor, &admin] {
            assert_eq!(app.get(path, Some(token)).await.status(), StatusCode::OK, "{path}");
        }
    }
}

#[tokio::test]
async fn admin_changes_are_audited_with_before_and_after() {
    let app = TestApp::spawn().await;
    let (target, _) = app.user_with_roles("kim", &["USER"]).await;
    let admin = app.admin_token().await;
    let roles_path = format!("/api/v1/users/{target}/roles");
    let response =
        app.send_json(Method::PUT, &roles_path, Some(&admin), &json!({ "roles": ["OPERATOR", "USER"] })).await;
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["roles"], json!(["USER", "OPERATOR"]));
    let path = format!("/api/v1/users/{target}");
    app.send_json(Method::PATCH, &path, Some(&admin), &json!({ "isActive": false })).await;

    let query = format!("/api/v1/auth/audit-logs?targetId={target}");
    let log = app.get_json(&query, Some(&admin)).await;
    assert_eq!(log["total"], 2);
    let entries = log["items"].as_array().unwrap();
    let deactivate = &entries[0];
    assert_eq!(deactivate["action"], "user.deactivate");
    assert_eq!(deactivate["actorUsername"], "admin");
    assert_eq!(deactivate["before"]["isActive"], true);
    assert_eq!(deactivate["after"]["isActive"], false);
    assert!(deactivate["requestId"].is_string());
    let set_roles = &entries[1];
    assert_eq!(set_roles["action"], "user.roles.set");
    assert_eq!(set_roles["before"]["roles"], json!(["USER"]));
    assert_eq!(set_roles["after"]["roles"], json!(["USER", "OPERATOR"]));
    assert!(!log.to_string().contains("$2"), "no password hash in the audit log");

    let bootstrap = app.get_json("/api/v1/auth/audit-logs?actor=system", Some(&admin)).await;
    assert_eq!(bootstrap["items"][0]["actorUsername"], "bootstrap");
    let filtered = app.get_json("/api/v1/auth/audit-logs?action=user.roles.set", Some(&admin)).await;
    assert!(filtered["items"].as_array().unwrap().iter().all(|e| e["action"] == "user.roles.set"));
}

#[tokio::test]
async fn admins_cannot_change_their_own_roles_or_active_state() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = &app.user_id(&admin).await;
    let response = app
        .send_json(Method::PUT, &format!("/api/v1/users/{id}/roles"), Some(&admin), &json!({ "roles": ["USER"] }))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response =
        app.send_json(Method::PATCH, &format!("/api/v1/users/{id}"), Some(&admin), &json!({ "isActive": false })).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app
        .send_json(Method::PUT, &format!("/api/v1/users/{id}/roles"), Some(&admin), &json!({ "roles": ["SUPERUSER"] }))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let missing = app.get("/api/v1/users/ffffffffffffffffffffffff", Some(&admin)).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn user_list_filters_and_pages() {
    let app = TestApp::spawn().await;
    for name in ["tara", "tom", "tina"] {
        app.register(name, PASSWORD).await;
    }
    let admin = app.admin_token().await;
    let page = app.get_json("/api/v1/users?q=T&limit=2", Some(&admin)).await;
    assert_eq!((page["total"].as_u64(), page["items"].as_array().map(Vec::len)), (Some(3), Some(2)));
    let admins = app.get_json("/api/v1/users?role=ADMIN", Some(&admin)).await;
    assert_eq!(admins["total"], 1);
    let too_big = app.get("/api/v1/users?limit=101", Some(&admin)).await;
    assert_eq!(too_big.status(), StatusCode::BAD_REQUEST);
    assert_eq!(problem(too_big).await["errors"][0]["pointer"], "?limit");
}
