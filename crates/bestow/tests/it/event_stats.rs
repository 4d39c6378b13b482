//! The event dashboard, `GET /api/v1/events/{eventId}/stats`, over HTTP: figures of claims
//! made through the API, every status and minute listed, stock per reward and tier.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fixtures::{app_with, create_event, event_body, second_reward, set_status};
use crate::helpers::{TestApp, member_pairs, problem};

async fn stats(app: &TestApp, token: &str, event_id: &str) -> Value {
    let response = app.get(&format!("/api/v1/events/{event_id}/stats"), Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK, "stats of {event_id}");
    response.json().await.unwrap()
}

async fn claim(app: &TestApp, token: &str, event_id: &str) -> Value {
    let response = app.post(&format!("/api/v1/events/{event_id}/claims"), Some(token), &json!({})).await;
    assert_eq!(response.status(), StatusCode::CREATED, "a final claim");
    response.json().await.unwrap()
}

fn minute_of(at: &Value) -> DateTime<Utc> {
    let at: DateTime<Utc> = at.as_str().unwrap().parse().unwrap();
    at.duration_trunc(TimeDelta::minutes(1)).unwrap()
}

#[tokio::test]
async fn the_dashboard_counts_the_claims_made_through_the_api() {
    let app = app_with(None, |_| {}).await;
    let admin = app.admin_token().await;
    let (_, operator) = app.user_with_roles("dashboard-operator", &["OPERATOR"]).await;
    let mut body = event_body("dashboard");
    body["conditions"] = Value::Null;
    body["rewards"][0]["totalStock"] = json!(2);
    body["rewards"] = json!([body["rewards"][0], second_reward()]);
    let event = create_event(&app, &admin, &body).await;
    let event_id = event["id"].as_str().unwrap().to_owned();
    assert_eq!(set_status(&app, &admin, &event_id, "ACTIVE").await.status(), StatusCode::OK);

    let before = stats(&app, &operator, &event_id).await;
    assert_eq!(before["stock"][0]["remainingStock"], 2);
    assert!(before["claimsByStatus"].as_object().unwrap().values().all(|count| count == 0));

    let mut claims = Vec::new();
    let mut players = Vec::new();
    for n in 0..3 {
        let (_, player) = app.user_with_roles(&format!("dashboard-player-{n}"), &["USER"]).await;
        claims.push(claim(&app, &player, &event_id).await);
        players.push(player);
    }
    // The first player again: refused, with another reason.
    claims.push(claim(&app, &players[0], &event_id).await);
    let statuses: Vec<&str> = claims.iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        [
            "SUCCESS_ALL_GRANTED",
            "SUCCESS_ALL_GRANTED",
            "INVENTORY_ALLOCATION_FAILED_OUT_OF_STOCK",
            "VALIDATION_FAILED_ALREADY_CLAIMED"
        ]
    );

    let stats = stats(&app, &operator, &event_id).await;
    assert_eq!(stats["eventId"], event_id);

    let by_status = stats["claimsByStatus"].as_object().unwrap();
    assert_eq!(by_status.len(), 23, "every claim status, zeros included: {by_status:?}");
    assert_eq!(by_status["SUCCESS_ALL_GRANTED"], 2);
    assert_eq!(by_status["INVENTORY_ALLOCATION_FAILED_OUT_OF_STOCK"], 1);
    assert_eq!(by_status["VALIDATION_FAILED_ALREADY_CLAIMED"], 1);
    assert_eq!(by_status["PENDING_VALIDATION"], 0);
    assert_eq!(by_status.values().map(|count| count.as_u64().unwrap()).sum::<u64>(), 4);

    let minutes = stats["claimsPerMinute"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    assert_eq!(minute_of(&minutes[59]["minute"]), minute_of(&stats["generatedAt"]), "the last entry is this minute");
    for pair in minutes.windows(2) {
        assert_eq!(minute_of(&pair[1]["minute"]) - minute_of(&pair[0]["minute"]), TimeDelta::minutes(1));
    }
    // Each minute counts the claims created in it (whether or not the minute turned meanwhile).
    for entry in minutes {
        let created_then = claims.iter().filter(|c| minute_of(&c["createdAt"]) == minute_of(&entry["minute"])).count();
        assert_eq!(entry["count"], created_then, "claims in {}", entry["minute"]);
    }
    assert_eq!(minutes.iter().map(|m| m["count"].as_u64().unwrap()).sum::<u64>(), 4);
    assert_eq!(
        minutes[59]["count"],
        claims.iter().filter(|c| minute_of(&c["createdAt"]) == minute_of(&stats["generatedAt"])).count()
    );

    let failures = stats["failuresByReason"].as_array().unwrap();
    let mut expected: Vec<Value> =
        claims[2..].iter().map(|c| json!({ "reason": c["failureReason"], "count": 1 })).collect();
    expected.sort_by_key(|entry| entry["reason"].as_str().unwrap().to_owned());
    assert!(expected.iter().all(|entry| entry["reason"].is_string()), "failed claims record their reason");
    assert_eq!(failures, &expected, "each failed claim's reason, counted");
    let codes: Vec<&str> = claims[2..].iter().map(|c| c["failureCode"].as_str().unwrap()).collect();
    assert_eq!(codes, ["OUT_OF_STOCK", "ALREADY_CLAIMED"], "each failed claim's code, beside its reason");
    assert_eq!(
        stats["failuresByCode"],
        json!([{ "failureCode": "ALREADY_CLAIMED", "count": 1 }, { "failureCode": "OUT_OF_STOCK", "count": 1 }]),
        "failed claims per code, ties in the codes' order"
    );

    let stock = stats["stock"].as_array().unwrap();
    let rewards = event["rewards"].as_array().unwrap();
    assert_eq!(stock.len(), 2);
    assert_eq!(
        stock[0],
        json!({ "rewardId": rewards[0]["rewardId"], "rewardName": "1000 points", "rewardType": "POINT",
                "totalStock": 2, "remainingStock": 0 }),
        "the limited reward is used up; no tierId without tiers"
    );
    assert_eq!(
        stock[1],
        json!({ "rewardId": rewards[1]["rewardId"], "rewardName": "Red potion", "rewardType": "ITEM",
                "totalStock": null, "remainingStock": null }),
        "unlimited stock is null"
    );

    let (_, auditor) = app.user_with_roles("dashboard-auditor", &["AUDITOR"]).await;
    let as_auditor = self::stats(&app, &auditor, &event_id).await;
    assert_eq!(as_auditor["claimsByStatus"], stats["claimsByStatus"]);
}

#[tokio::test]
async fn the_dashboard_names_each_rewards_tier_and_is_staff_only() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut body = event_body("tiered dashboard");
    let points = |name: &str| json!({ "rewardType": "POINT", "rewardName": name, "details": { "points": 1 }, "quantityPerUser": 1, "totalStock": 5 });
    body.as_object_mut().unwrap().remove("rewards");
    body["tiers"] = json!([
        { "tierId": "day-1", "tierName": "Day 1", "rewards": [points("day 1")] },
        { "tierId": "day-2", "tierName": "Day 2", "rewards": [points("day 2a"), points("day 2b")] },
    ]);
    let event = create_event(&app, &admin, &body).await;
    let event_id = event["id"].as_str().unwrap();

    // A DRAFT event has a dashboard too: staff see every status.
    let stats = stats(&app, &admin, event_id).await;
    let tiers = member_pairs(&stats["stock"], "rewardName", "tierId");
    assert_eq!(tiers, [("day 1", "day-1"), ("day 2a", "day-2"), ("day 2b", "day-2")]);
    assert!(stats["failuresByReason"].as_array().unwrap().is_empty());

    let (_, player) = app.user_with_roles("dashboard-player", &["USER"]).await;
    let refused = app.get(&format!("/api/v1/events/{event_id}/stats"), Some(&player)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "players have no dashboard");
    let unknown = app.get("/api/v1/events/0123456789abcdef01234567/stats", Some(&admin)).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(problem(unknown).await["code"], "EVENT_NOT_FOUND");
}
