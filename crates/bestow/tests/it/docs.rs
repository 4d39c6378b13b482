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
    let expected = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    if expected != rendered && std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        eprintln!("updating {SNAPSHOT}:\n{}", changed_lines(&expected, &rendered));
        std::fs::write(SNAPSHOT, &rendered).unwrap();
        return;
    }
    assert!(
        expected == rendered,
        "the OpenAPI document changed; review the change and run `UPDATE_SNAPSHOTS=1 cargo test -p bestow openapi`:\n{}",
        changed_lines(&expected, &rendered)
    );
    for path in
        ["/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/users/{userId}/roles", "/.well-known/jwks.json"]
    {
        assert!(document["paths"].get(path).is_some(), "{path} documented");
    }
}

/// What changed from `old` to `new`, one line per JSON pointer: `+` added, `-` removed, `~`
/// changed (with both values, shortened). Objects are compared member by member; arrays and
/// scalars as a whole.
fn changed_lines(old: &str, new: &str) -> String {
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let mut lines = Vec::new();
    compare("", &parse(old), &parse(new), &mut lines);
    lines.join("\n")
}

fn compare(pointer: &str, old: &Value, new: &Value, lines: &mut Vec<String>) {
    let short = |value: &Value| {
        let text = value.to_string();
        if text.chars().count() > 160 { format!("{}…", text.chars().take(160).collect::<String>()) } else { text }
    };
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, value) in old {
                let at = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                match new.get(key) {
                    Some(other) => compare(&at, value, other, lines),
                    None => lines.push(format!("- {at}: {}", short(value))),
                }
            }
            for (key, value) in new.iter().filter(|(key, _)| !old.contains_key(*key)) {
                lines.push(format!("+ {pointer}/{}: {}", key.replace('~', "~0").replace('/', "~1"), short(value)));
            }
        }
        (old, new) if old != new => lines.push(format!("~ {pointer}: {} → {}", short(old), short(new))),
        _ => {}
    }
}

#[test]
fn the_snapshot_diff_names_each_change() {
    let diff = changed_lines(r#"{"a":1,"b":{"c":[1],"d":"x"}}"#, r#"{"a":1,"b":{"c":[1,2],"e":true}}"#);
    assert_eq!(diff, "~ /b/c: [1] → [1,2]\n- /b/d: \"x\"\n+ /b/e: true");
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
