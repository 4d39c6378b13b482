//! The auditors' CSV exports over HTTP: every matching row past one page of the list, the
//! header, RFC 4180 quoting and formula defusing as a reader sees them, the lists' filters and
//! their 400s, and no coupon code in any file. (Who may export is in the role matrices of
//! `roles.rs`, `events.rs` and `admin_routes.rs`; split mode and MongoDB in the scenario.)

use bestow_core::page::MAX_LIMIT;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fixtures::{activated_event, app_with, event_body};
use crate::helpers::{TestApp, pointers, problem};

/// The header rows: the API's JSON field names, in a fixed order.
const CLAIMS_HEADER: &str = "id,requestId,userId,eventId,tierId,periodStart,status,currentSagaStep,failureReason,\
                             retryCount,createdAt,updatedAt,claimedAt,nextAttemptAt,rewardsToProcess,\
                             compensatingActionsLog,history\r\n";
const AUDIT_HEADER: &str = "id,at,actorId,actorUsername,action,targetType,targetId,requestId,before,after\r\n";

/// Reads RFC 4180 text strictly: quoted fields with doubled quotes, and every line, the last
/// included, ending in CRLF.
pub(crate) fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => {
                assert!(field.is_empty(), "a quote inside an unquoted field: {field}");
                quoted = true;
            }
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "a CR outside quotes not followed by LF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\n') => panic!("a line ends in a bare LF"),
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted && field.is_empty() && row.is_empty(), "the last line does not end in CRLF");
    rows
}

/// The rows of a CSV table as JSON objects keyed by the header's names.
fn records(rows: &[Vec<String>]) -> Vec<Value> {
    let header = &rows[0];
    rows[1..]
        .iter()
        .map(|row| {
            assert_eq!(row.len(), header.len(), "{row:?}");
            Value::Object(header.iter().cloned().zip(row.iter().map(|cell| json!(cell))).collect())
        })
        .collect()
}

/// Downloads an export, checking the answer's headers; returns the body.
async fn download(app: &TestApp, path: &str, token: &str, filename: &str) -> String {
    let response = app.get(path, Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(headers["content-disposition"], format!("attachment; filename=\"{filename}\"").as_str());
    assert!(headers.get("content-length").is_none(), "streamed, not buffered");
    response.text().await.unwrap()
}

/// `field` of every item of a list, across all its pages (`list` ends in `?` or `&`).
async fn listed(app: &TestApp, token: &str, list: &str, field: &str) -> Vec<String> {
    let mut values = Vec::new();
    for page in 1.. {
        let body = app.get_json(&format!("{list}limit={MAX_LIMIT}&page={page}"), Some(token)).await;
        let items = body["items"].as_array().unwrap();
        values.extend(items.iter().map(|item| item[field].as_str().unwrap().to_owned()));
        if items.len() < MAX_LIMIT as usize {
            return values;
        }
    }
    unreachable!()
}

/// A 10%-off COUPON reward with `code`, one per player, `stock` units (-1 for unlimited).
fn coupon(code: &str, stock: i64) -> Value {
    json!({ "rewardType": "COUPON", "rewardName": "10% off", "details": { "couponCode": code, "discountRate": 0.1 },
            "quantityPerUser": 1, "totalStock": stock })
}

/// More claims than two pages of the list, by two players, on an event paying a coupon: the
/// export has every one, in the list's order, filtered as the list filters, without the code.
pub(crate) async fn every_claim_is_exported(app: TestApp) {
    let admin = app.admin_token().await;
    let (_, auditor) = app.user_with_roles("auditor", &["AUDITOR"]).await;
    let (shopper_id, shopper) = app.user_with_roles("shopper", &["USER"]).await;
    let (other_id, other) = app.user_with_roles("other", &["USER"]).await;
    let mut body = event_body("coupon week");
    body["conditions"] = Value::Null;
    body["rewards"] = json!([coupon("SECRET-EXPORT-CODE", -1)]);
    let event_id = activated_event(&app, &admin, &body).await;
    // Each player's first claim is granted, the others are recorded as already claimed.
    let total = 2 * MAX_LIMIT as usize + 5;
    for i in 0..total {
        let token = if i % 41 == 0 { &other } else { &shopper };
        let response = app.request(Method::POST, &format!("/api/v1/events/{event_id}/claims"), Some(token));
        assert_eq!(response.send().await.unwrap().status(), StatusCode::CREATED, "final before the export");
    }

    let text = download(&app, "/api/v1/claims/export", &auditor, "claims.csv").await;
    assert!(!text.contains("SECRET-EXPORT-CODE"), "a coupon code in the export");
    assert!(text.starts_with(CLAIMS_HEADER), "{:?}", text.lines().next());
    let rows = parse_csv(&text);
    let claims = records(&rows);
    assert_eq!(claims.len(), total, "every claim, not one page");
    let exported: Vec<&str> = claims.iter().map(|claim| claim["requestId"].as_str().unwrap()).collect();
    assert_eq!(exported, listed(&app, &auditor, "/api/v1/claims?", "requestId").await, "the list's rows, in order");
    let granted: Vec<&Value> = claims.iter().filter(|claim| claim["status"] == "SUCCESS_ALL_GRANTED").collect();
    assert_eq!(granted.len(), 2);
    let rewards: Value = serde_json::from_str(granted[0]["rewardsToProcess"].as_str().unwrap()).unwrap();
    assert_eq!(rewards[0]["grantStatus"], "SUCCESS");
    assert_eq!(rewards[0]["rewardDefinition"]["details"], json!({ "discountRate": 0.1 }), "public details kept");
    assert!(chrono::DateTime::parse_from_rfc3339(granted[0]["createdAt"].as_str().unwrap()).is_ok());
    assert_eq!(granted[0]["tierId"], "", "null is an empty cell");

    // The list's filters; its pagination parameters mean nothing here.
    let refused = "VALIDATION_FAILED_ALREADY_CLAIMED";
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (query, rows) in [
        (format!("userId={other_id}"), 5),
        ("status=SUCCESS_ALL_GRANTED".to_owned(), 2),
        (format!("eventId={event_id}&userId={shopper_id}&status={refused}"), total - 6),
        ("limit=1&page=2".to_owned(), total),
        (format!("from={future}"), 0),
        ("to=1970-01-02T00:00:00Z".to_owned(), 0),
    ] {
        let text = download(&app, &format!("/api/v1/claims/export?{query}"), &auditor, "claims.csv").await;
        let claims = records(&parse_csv(&text));
        assert_eq!(claims.len(), rows, "?{query}");
        let list = app.get_json(&format!("/api/v1/claims?{query}"), Some(&auditor)).await;
        if !query.starts_with("limit") {
            assert_eq!(list["total"], rows, "the list agrees on ?{query}");
        }
        if query.starts_with("userId") {
            assert!(claims.iter().all(|claim| claim["userId"] == other_id.as_str()));
        }
    }

    // A bad filter is the list's 400.
    for query in ["status=NOPE", "from=yesterday", "to=10000-01-01T00:00:00Z"] {
        let export = problem(app.get(&format!("/api/v1/claims/export?{query}"), Some(&auditor)).await).await;
        let list = problem(app.get(&format!("/api/v1/claims?{query}"), Some(&auditor)).await).await;
        assert_eq!((export["status"].as_u64(), &export["code"]), (Some(400), &list["code"]), "?{query}");
        assert_eq!(pointers(&export), pointers(&list), "?{query}");
    }
}

#[tokio::test]
async fn every_claim_is_exported_on_sqlite() {
    every_claim_is_exported(app_with(None, |_| {}).await).await;
}

#[tokio::test]
async fn audit_exports_quote_and_defuse_what_people_typed() {
    let app = TestApp::spawn().await;
    let (_, auditor) = app.user_with_roles("auditor", &["AUDITOR"]).await;
    // Usernames may start with `-`, and event names are free text.
    let (operator_id, operator) = app.user_with_roles("-op", &["OPERATOR"]).await;
    let name = "=HYPERLINK(\"http://evil.example\",\"win\"),\r\nthen more";
    let event_id = activated_event(&app, &operator, &event_body(name)).await;

    let path = format!("/api/v1/audit-logs/export?actor={operator_id}");
    let text = download(&app, &path, &auditor, "audit-logs.csv").await;
    assert!(text.contains(",'-op,"), "the username is defused: {text}");
    assert!(text.starts_with(AUDIT_HEADER), "{text}");
    let rows = parse_csv(&text);
    let entries = records(&rows);
    let ids: Vec<&str> = entries.iter().map(|entry| entry["id"].as_str().unwrap()).collect();
    assert_eq!(ids, listed(&app, &auditor, &format!("/api/v1/audit-logs?actor={operator_id}&"), "id").await);
    let created = entries.iter().find(|entry| entry["action"] == "event.create").unwrap();
    assert_eq!(created["actorUsername"], "'-op");
    assert_eq!((&created["targetType"], &created["targetId"]), (&json!("event"), &json!(event_id)));
    assert_eq!(created["before"], "", "nothing before a creation");
    let after: Value = serde_json::from_str(created["after"].as_str().unwrap()).unwrap();
    assert_eq!(after["eventName"], name, "quotes, commas and line breaks read back");
    let filtered = download(&app, &format!("{path}&action=event.create"), &auditor, "audit-logs.csv").await;
    assert_eq!(records(&parse_csv(&filtered)).len(), 1);

    // The auth side: an admin whose name starts with `-` deactivates the operator.
    let (_, boss) = app.user_with_roles("-boss", &["ADMIN"]).await;
    let user = format!("/api/v1/users/{operator_id}");
    let deactivated = app.send_json(Method::PATCH, &user, Some(&boss), &json!({ "isActive": false })).await;
    assert_eq!(deactivated.status(), StatusCode::OK);
    let path = format!("/api/v1/auth/audit-logs/export?targetId={operator_id}");
    let entries = records(&parse_csv(&download(&app, &path, &auditor, "auth-audit-logs.csv").await));
    let actions: Vec<&str> = entries.iter().map(|entry| entry["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["user.deactivate", "user.roles.set"], "newest first");
    assert_eq!(entries[0]["actorUsername"], "'-boss");
    let (before, after): (Value, Value) = (
        serde_json::from_str(entries[0]["before"].as_str().unwrap()).unwrap(),
        serde_json::from_str(entries[0]["after"].as_str().unwrap()).unwrap(),
    );
    assert_eq!((&before["isActive"], &after["isActive"]), (&json!(true), &json!(false)));
    let all =
        records(&parse_csv(&download(&app, "/api/v1/auth/audit-logs/export", &auditor, "auth-audit-logs.csv").await));
    let list = app.get_json("/api/v1/auth/audit-logs", Some(&auditor)).await;
    assert_eq!(list["total"], all.len());

    // A bad filter is the list's 400, on both services.
    for list in ["/api/v1/audit-logs", "/api/v1/auth/audit-logs"] {
        let export = problem(app.get(&format!("{list}/export?from=yesterday"), Some(&auditor)).await).await;
        assert_eq!((&export["code"], pointers(&export)), (&json!("VALIDATION_FAILED"), vec!["?from".to_owned()]));
    }
}

/// A coupon's code is the coupon: it stays out of the audit export (the attack: an auditor's
/// CSV handed around with every code in it), while the JSON list still shows it to staff and
/// the export keeps the rest of the reward.
#[tokio::test]
async fn the_audit_export_holds_no_coupon_code() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, auditor) = app.user_with_roles("auditor", &["AUDITOR"]).await;
    let mut body = event_body("coupon audit");
    body["rewards"] = json!([coupon("SECRET-AUDIT-CODE", 10)]);
    let event_id = activated_event(&app, &admin, &body).await;

    let path = format!("/api/v1/audit-logs/export?targetId={event_id}");
    let text = download(&app, &path, &auditor, "audit-logs.csv").await;
    assert!(!text.contains("SECRET-AUDIT-CODE"), "a coupon code in the audit export: {text}");
    let entries = records(&parse_csv(&text));
    let actions: Vec<&str> = entries.iter().map(|entry| entry["action"].as_str().unwrap()).collect();
    assert_eq!(actions.len(), 2, "the creation and the activation: {actions:?}");
    for entry in &entries {
        let after: Value = serde_json::from_str(entry["after"].as_str().unwrap()).unwrap();
        let reward = &after["rewards"][0];
        assert_eq!((&reward["rewardType"], &reward["details"]), (&json!("COUPON"), &json!({ "discountRate": 0.1 })));
    }
    let listed = app.get_json(&format!("/api/v1/audit-logs?targetId={event_id}"), Some(&auditor)).await;
    assert_eq!(
        listed["items"][0]["after"]["rewards"][0]["details"]["couponCode"], "SECRET-AUDIT-CODE",
        "staff read it in the API"
    );
}
