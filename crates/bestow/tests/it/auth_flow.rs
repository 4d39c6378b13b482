//! Sign-up, sign-in, sessions and persistence.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, pointers, problem, token_of};

#[tokio::test]
async fn register_login_me() {
    let app = TestApp::spawn().await;
    let response = app.register("Alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["roles"], json!(["USER"]));
    assert_eq!(user["isActive"], json!(true));
    assert!(user.get("password").is_none());

    let session = app.session("alice", PASSWORD).await;
    assert_eq!(session["tokenType"], "Bearer");
    assert!(session["expiresIn"].as_u64().unwrap() > 0);
    let me: Value = app.get("/api/v1/auth/me", Some(&token_of(&session))).await.json().await.unwrap();
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["username"], "Alice");
}

#[tokio::test]
async fn usernames_are_unique_ignoring_case() {
    let app = TestApp::spawn().await;
    assert_eq!(app.register("Bob_1", PASSWORD).await.status(), StatusCode::CREATED);
    let response = app.register("bOB_1", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(problem(response).await["code"], "USERNAME_TAKEN");
}

#[tokio::test]
async fn bad_sign_ups_name_the_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({ "username": "carol", "password": PASSWORD, "roles": ["ADMIN"] }), "/roles"),
        (json!({ "username": "carol", "password": "short" }), "/password"),
        (json!({ "username": "carol", "password": "x".repeat(73) }), "/password"),
        (json!({ "username": "carol" }), "/password"),
        (json!({ "username": "c", "password": PASSWORD }), "/username"),
        (json!({ "username": "carol", "password": 12345678 }), "/password"),
    ];
    for (body, pointer) in cases {
        let response = app.post("/api/v1/auth/register", None, &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let problem = problem(response).await;
        assert_eq!(problem["code"], "VALIDATION_FAILED");
        assert_eq!(pointers(&problem), vec![pointer.to_owned()], "{body}");
    }
    // 72 bytes is the limit, and nothing above was stored: the name is still free.
    assert_eq!(app.register("carol", &"x".repeat(72)).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn malformed_bodies_are_problems_not_500s() {
    let app = TestApp::spawn().await;
    let raw = app.send_raw(Method::POST, "/api/v1/auth/register", None, "{not json").await;
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    assert_eq!(problem(raw).await["code"], "MALFORMED_JSON");

    let text = app.request(Method::POST, "/api/v1/auth/register", None).body("username=x").send().await.unwrap();
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = json!({ "username": "x".repeat(2 * 1024 * 1024), "password": PASSWORD });
    let response = app.post("/api/v1/auth/register", None, &huge).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let missing = app.get("/api/v1/nothing-here", None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn wrong_password_and_inactive_account_look_the_same() {
    let app = TestApp::spawn().await;
    let (dave_id, _) = app.user_with_roles("dave", &["USER"]).await;
    let wrong = app.login("dave", "not-the-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong_body = problem(wrong).await;

    let admin = app.admin_token().await;
    let path = format!("/api/v1/users/{dave_id}");
    let response = app.send_json(Method::PATCH, &path, Some(&admin), &json!({ "isActive": false })).await;
    assert_eq!(response.status(), StatusCode::OK);

    let inactive = app.login("dave", PASSWORD).await;
    assert_eq!(inactive.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(problem(inactive).await, wrong_body);
    let unknown = app.login("nobody-here", PASSWORD).await;
    assert_eq!(problem(unknown).await, wrong_body);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = TestApp::spawn().await;
    app.register("erin", PASSWORD).await;
    let first = app.session("erin", PASSWORD).await;
    let refresh = |token: &Value| json!({ "refreshToken": token["refreshToken"] });

    let response = app.post("/api/v1/auth/refresh", None, &refresh(&first)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second: Value = response.json().await.unwrap();
    assert_ne!(second["refreshToken"], first["refreshToken"]);
    assert_eq!(app.get("/api/v1/auth/me", Some(&token_of(&second))).await.status(), StatusCode::OK);

    let reuse = app.post("/api/v1/auth/refresh", None, &refresh(&first)).await;
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    let revoked = app.post("/api/v1/auth/refresh", None, &refresh(&second)).await;
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED, "the successor was revoked with its family");

    // A fresh login is a new family and works.
    let third = app.session("erin", PASSWORD).await;
    assert_eq!(app.post("/api/v1/auth/refresh", None, &refresh(&third)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = TestApp::spawn().await;
    app.register("frank", PASSWORD).await;
    let session = app.session("frank", PASSWORD).await;
    let body = json!({ "refreshToken": session["refreshToken"] });
    let token = token_of(&session);
    assert_eq!(app.post("/api/v1/auth/logout", None, &body).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.post("/api/v1/auth/logout", Some(&token), &body).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.post("/api/v1/auth/refresh", None, &body).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn change_password_checks_the_current_one() {
    let app = TestApp::spawn().await;
    app.register("grace", PASSWORD).await;
    let session = app.session("grace", PASSWORD).await;
    let token = token_of(&session);
    let path = "/api/v1/auth/me/password";
    let wrong = json!({ "currentPassword": "not-it-at-all", "newPassword": "a-brand-new-secret" });
    let response = app.send_json(Method::PUT, path, Some(&token), &wrong).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(problem(response).await["code"], "CURRENT_PASSWORD_WRONG");
    let short = json!({ "currentPassword": PASSWORD, "newPassword": "short" });
    let response = app.send_json(Method::PUT, path, Some(&token), &short).await;
    assert_eq!(pointers(&problem(response).await), vec!["/newPassword"]);

    let good = json!({ "currentPassword": PASSWORD, "newPassword": "a-brand-new-secret" });
    assert_eq!(app.send_json(Method::PUT, path, Some(&token), &good).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.login("grace", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    app.session("grace", "a-brand-new-secret").await;
    let old_refresh = json!({ "refreshToken": session["refreshToken"] });
    assert_eq!(app.post("/api/v1/auth/refresh", None, &old_refresh).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_n_plus_first_failed_login_is_throttled() {
    let app = TestApp::spawn_configured(|config| config.auth.login_max_failures_per_username = 3).await;
    app.register("heidi", PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(app.login("heidi", "wrong-password").await.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = app.login("HEIDI", PASSWORD).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = throttled.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    assert_eq!(problem(throttled).await["code"], "RATE_LIMITED");
    // Other accounts are unaffected.
    app.register("ivan", PASSWORD).await;
    app.session("ivan", PASSWORD).await;
}

#[tokio::test]
async fn restart_keeps_users_sessions_and_the_signing_key() {
    let app = TestApp::spawn().await;
    app.register("judy", PASSWORD).await;
    let session = app.session("judy", PASSWORD).await;
    let (dir, config) = app.stop().await;

    let app = TestApp::spawn_with(dir, config).await;
    let me = app.get("/api/v1/auth/me", Some(&token_of(&session))).await;
    assert_eq!(me.status(), StatusCode::OK, "a token issued before the restart verifies");
    let refresh = json!({ "refreshToken": session["refreshToken"] });
    assert_eq!(app.post("/api/v1/auth/refresh", None, &refresh).await.status(), StatusCode::OK);
    app.session("judy", PASSWORD).await;
    let users: Value = app.get("/api/v1/users", Some(&app.admin_token().await)).await.json().await.unwrap();
    assert_eq!(users["total"], 2, "admin and judy, no second bootstrap admin");
}
