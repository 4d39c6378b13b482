//! The OpenAPI document (snapshot) and the interactive docs, served with no network.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json");

/// API drift shows up as a reviewed diff of `tests/snapshots/openapi.json`. After an intended
/// change, regenerate it with `UPDATE_SNAPSHOTS=1 cargo test -p bestow openapi`.
#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let app = TestApp::spawn().await;
    let document: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let rendered = serde_json::to_string_pretty(&document).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &rendered).unwrap();
    }
    let expected = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        expected == rendered,
        "the OpenAPI document changed; review and run `UPDATE_SNAPSHOTS=1 cargo test -p bestow openapi`"
    );
    for path in
        ["/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/users/{userId}/roles", "/.well-known/jwks.json"]
    {
        assert!(document["paths"].get(path).is_some(), "{path} documented");
    }
}

#[tokio::test]
async fn interactive_docs_and_their_assets_are_embedded() {
    let app = TestApp::spawn().await;
    let page = app.get("/docs/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(!html.contains("https://") && !html.contains("http://"), "no CDN references");
    for asset in ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-initializer.js"] {
        assert!(html.contains(asset), "{asset} referenced");
        let response = app.get(&format!("/docs/{asset}"), None).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(response.bytes().await.unwrap().len() > 100, "{asset} has content");
    }
    let initializer = app.get("/docs/swagger-initializer.js", None).await.text().await.unwrap();
    assert!(initializer.contains("/openapi.json"));
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let ready: Value = app.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(ready["checks"]["auth_store"], "ok");
    app.get("/healthz", None).await;
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
}
