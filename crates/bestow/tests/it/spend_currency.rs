//! The `SPEND_CURRENCY` condition leaf end to end over HTTP, on SQLite and on MongoDB: created
//! with an event (and refused with errors naming its fields), judged on `SPEND` activities in
//! the eligibility preview, and offered by the console's condition editor.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console::ConsoleClient;
use crate::fixtures::{app_with, create_event, event_body, set_status};
use crate::helpers::{ADMIN_PASSWORD, TestApp, pointers, problem};
use crate::mongo::on_mongodb;

fn spend(user: &str, currency: &str, amount: f64, minutes_ago: i64) -> Value {
    json!({
        "userId": user, "type": "SPEND", "occurredAt": (Utc::now() - Duration::minutes(minutes_ago)).to_rfc3339(),
        "attributes": { "currency": currency, "amount": amount },
    })
}

async fn spending_counts_only_the_named_currency(app: TestApp) {
    let admin = app.admin_token().await;
    let (player, user) = app.user_with_roles("spender", &["USER"]).await;

    let mut refused = event_body("bad spend");
    refused["conditions"] = json!({ "type": "SPEND_CURRENCY", "currency": "", "amount": 0 });
    let response = app.post("/api/v1/events", Some(&admin), &refused).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(pointers(&problem(response).await), ["/conditions/currency", "/conditions/amount"]);

    let mut body = event_body("spend gems");
    body["startDate"] = json!((Utc::now() - Duration::days(1)).to_rfc3339());
    body["conditions"] = json!({ "type": "SPEND_CURRENCY", "currency": "GEM", "amount": 100 });
    let event = create_event(&app, &admin, &body).await;
    assert_eq!(event["conditions"], json!({ "type": "SPEND_CURRENCY", "currency": "GEM", "amount": 100 }));
    let id = event["id"].as_str().unwrap().to_owned();
    assert_eq!(set_status(&app, &admin, &id, "ACTIVE").await.status(), StatusCode::OK);

    let push = |activities: Value| {
        let body = json!({ "activities": activities });
        let (app, admin) = (&app, &admin);
        async move { assert_eq!(app.post("/api/v1/activities", Some(admin), &body).await.status(), StatusCode::ACCEPTED) }
    };
    let preview = || async {
        let response = app.get(&format!("/api/v1/events/{id}/eligibility"), Some(&user)).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()
    };

    push(json!([spend(&player, "GEM", 60.0, 30), spend(&player, "GOLD", 500.0, 20)])).await;
    assert_eq!(
        preview().await,
        json!({ "eligible": false,
                "conditions": { "type": "SPEND_CURRENCY", "met": false, "current": 60, "target": 100 } })
    );
    push(json!([spend(&player, "GEM", 40.0, 10)])).await;
    assert_eq!(
        preview().await,
        json!({ "eligible": true,
                "conditions": { "type": "SPEND_CURRENCY", "met": true, "current": 100, "target": 100 } })
    );
}

#[tokio::test]
async fn spend_currency_counts_only_the_named_currency_on_sqlite() {
    spending_counts_only_the_named_currency(TestApp::spawn().await).await;
}

#[tokio::test]
async fn spend_currency_counts_only_the_named_currency_on_mongodb() {
    spending_counts_only_the_named_currency(app_with(None, on_mongodb).await).await;
}

#[tokio::test]
async fn the_console_editor_offers_spend_currency_and_reports_its_fields() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::new(&app);
    console.sign_in("admin", ADMIN_PASSWORD).await;

    let form = console.get("/console/events/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("&quot;name&quot;:&quot;SPEND_CURRENCY&quot;"), "{}", form.body);
    assert!(form.body.contains("&quot;SPEND_CURRENCY&quot;]"), "offered as a node type: {}", form.body);

    let fields = |conditions: &'static str| {
        vec![
            ("eventName", "Spend gems"),
            ("startDate", "2020-01-01T00:00"),
            ("endDate", "2099-01-01T00:00"),
            ("timezone", "UTC"),
            ("grantPolicy", "ALL_OR_NOTHING"),
            ("conditions", conditions),
            ("rewards.0.rewardType", "POINT"),
            ("rewards.0.rewardName", "Points"),
            ("rewards.0.points", "100"),
        ]
    };
    let refused = console.post("/console/events/new", &fields(r#"{"type":"SPEND_CURRENCY","currency":"GEM"}"#)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("&quot;pointer&quot;:&quot;/amount&quot;"), "{}", refused.body);
    let created =
        console.post("/console/events/new", &fields(r#"{"type":"SPEND_CURRENCY","currency":"GEM","amount":50}"#)).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
}
