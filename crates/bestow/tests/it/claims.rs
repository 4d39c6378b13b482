//! The claim saga over HTTP: no oversell, one success per player, idempotency, granter faults,
//! compensation, manual intervention and history.

use std::sync::Arc;
use std::time::Duration;

use bestow_events::domain::saga::ClaimStatus;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::fixtures::{
    ClaimedEvent, activated_event, active_event, app_with, claim, claim_all, claim_all_at_most, claimed_event,
    create_event, event_body, final_claim, granting_app, players, points, send_claim, set_status, status_of,
    two_claims_stuck_in_compensation,
};
use crate::granter::Faults;
use crate::helpers::{TestApp, member_pairs, problem};

/// The claim slot the stored request holds (clients never see it: it is saga bookkeeping).
fn stored_claim_slot(app: &TestApp, request: &Value) -> Option<String> {
    let db = rusqlite::Connection::open(app.data_dir.path().join("event.db")).unwrap();
    db.query_row(
        "SELECT claimSlot FROM user_reward_requests WHERE requestId = ?1",
        [request["requestId"].as_str().unwrap()],
        |row| row.get(0),
    )
    .unwrap()
}

async fn remaining_stock(app: &TestApp, event_id: &str) -> Vec<Option<i64>> {
    let admin = app.admin_token().await;
    let event = app.get_json(&format!("/api/v1/events/{event_id}"), Some(&admin)).await;
    event["rewards"].as_array().unwrap().iter().map(|r| r["remainingStock"].as_i64()).collect()
}

fn count(requests: &[Value], status: ClaimStatus) -> usize {
    requests.iter().filter(|r| status_of(r) == status).count()
}

#[tokio::test]
async fn a_thousand_players_never_oversell_a_hundred_units() {
    crowd_never_oversells(Arc::new(app_with(None, |_| {}).await), 1000, 100, 1000).await;
}

/// `crowd` players claim `units` units, `concurrency` at a time: exactly `units` succeed, the
/// rest find the stock gone, and the ledger holds exactly one grant per winner.
pub(crate) async fn crowd_never_oversells(app: Arc<TestApp>, crowd: usize, units: usize, concurrency: usize) {
    let (event_id, _) = active_event(&app, json!([points("limited", 1, units as i64)]), "ALL_OR_NOTHING").await;
    let players = players(&app, "crowd", crowd).await;
    let requests = claim_all_at_most(&app, &players, &event_id, concurrency).await;
    assert_eq!(count(&requests, ClaimStatus::SuccessAllGranted), units);
    assert_eq!(count(&requests, ClaimStatus::InventoryAllocationFailedOutOfStock), crowd - units);
    assert_eq!(remaining_stock(&app, &event_id).await, vec![Some(0)]);

    // The ledger is the judge: exactly one grant per winner, none for anyone else.
    let admin = app.admin_token().await;
    let mut grants = 0;
    for (user_id, _) in &players {
        let wallet = app.get_json(&format!("/api/v1/wallets/{user_id}"), Some(&admin)).await;
        grants += wallet["grants"].as_u64().unwrap();
    }
    assert_eq!(grants, units as u64);
}

#[tokio::test]
async fn stock_is_reserved_in_units_of_quantity_per_user() {
    let app = Arc::new(app_with(None, |_| {}).await);
    let trio = claimed_event(&app, json!([points("triple", 3, 10)]), "trio", 20).await;
    assert_eq!(count(&trio.claims, ClaimStatus::SuccessAllGranted), 3);
    assert_eq!(count(&trio.claims, ClaimStatus::InventoryAllocationFailedOutOfStock), 17);
    assert_eq!(remaining_stock(&app, &trio.event_id).await, vec![Some(1)]);
}

#[tokio::test]
async fn one_success_per_player_and_one_request_per_key() {
    one_success_per_player(Arc::new(app_with(None, |_| {}).await)).await;
}

/// One player claiming 20 times at once wins once; 20 concurrent requests with one key are one
/// request.
pub(crate) async fn one_success_per_player(app: Arc<TestApp>) {
    let (event_id, _) = active_event(&app, json!([points("once", 1, 100)]), "ALL_OR_NOTHING").await;
    let players = players(&app, "eager", 2).await;

    let eager = vec![players[0].clone(); 20];
    let requests = claim_all(&app, &eager, &event_id).await;
    assert_eq!(count(&requests, ClaimStatus::SuccessAllGranted), 1);
    assert_eq!(count(&requests, ClaimStatus::ValidationFailedAlreadyClaimed), 19);

    let key = "0b8f4c5e-3f4a-4c55-9d1a-2a5c8e0b7f11";
    let mut set = JoinSet::new();
    for _ in 0..20 {
        let (app, token, event_id) = (app.clone(), players[1].1.clone(), event_id.clone());
        set.spawn(async move { claim(&app, &token, &event_id, Some(key)).await });
    }
    let answers = set.join_all().await;
    assert!(answers.iter().all(|(_, request)| request["requestId"] == key));
    assert_eq!(
        answers.iter().filter(|(status, _)| *status == StatusCode::CREATED).count(),
        1,
        "one recorded, the rest replays"
    );
    let mine = app.get_json("/api/v1/claims/me", Some(&players[1].1)).await;
    assert_eq!(mine["total"], 1);
    assert_eq!(remaining_stock(&app, &event_id).await, vec![Some(98)]);

    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    for series in [
        "claims_final_total{status=\"SUCCESS_ALL_GRANTED\"}",
        "claims_final_total{status=\"VALIDATION_FAILED_ALREADY_CLAIMED\"}",
        "saga_step_seconds",
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
}

#[tokio::test]
async fn idempotency_keys_replay_and_are_never_shared() {
    let app = Arc::new(app_with(None, |_| {}).await);
    let (first_event, _) = active_event(&app, json!([points("a", 1, 10)]), "ALL_OR_NOTHING").await;
    let (second_event, _) = active_event(&app, json!([points("b", 1, 10)]), "ALL_OR_NOTHING").await;
    let players = players(&app, "keyed", 2).await;
    let key = "7d1c1d1e-5b7e-4a2f-8e55-0c2f9a3b4d6e";

    let (status, original) = claim(&app, &players[0].1, &first_event, Some(key)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, replay) = claim(&app, &players[0].1, &first_event, Some(key)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replay, original);

    for (token, event) in [(&players[1].1, &first_event), (&players[0].1, &second_event)] {
        let response = send_claim(&app, token, event, Some(key)).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = problem(response).await;
        assert_eq!(body["code"], "IDEMPOTENCY_KEY_REUSED");
        assert!(!body.to_string().contains(&players[0].0), "reveals nothing about the first claim");
    }
    // An optional body may be `null`, as the document allows.
    let claims = format!("/api/v1/events/{second_event}/claims");
    let null_body = app.send_raw(Method::POST, &claims, Some(&players[1].1), "null").await;
    assert_eq!(null_body.status(), StatusCode::CREATED);
    let bad = send_claim(&app, &players[1].1, &first_event, Some("abc")).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(problem(bad).await["errors"][0]["pointer"], "Idempotency-Key");
    let body =
        app.post(&format!("/api/v1/events/{first_event}/claims"), Some(&players[1].1), &json!({ "extra": 1 })).await;
    assert_eq!(body.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn events_that_are_not_running_refuse_claims() {
    let app = Arc::new(app_with(None, |_| {}).await);
    let admin = app.admin_token().await;
    let players = players(&app, "late", 1).await;
    let token = &players[0].1;
    let (event_id, _) = active_event(&app, json!([points("p", 1, 10)]), "ALL_OR_NOTHING").await;
    set_status(&app, &admin, &event_id, "EXPIRED").await;
    let (status, request) = claim(&app, token, &event_id, None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(status_of(&request), ClaimStatus::ValidationFailedEventNotActive);
    assert_eq!(stored_claim_slot(&app, &request), None, "a failed claim holds no slot");
    // The saga's bookkeeping stays in storage: a client reads the claim view.
    for bookkeeping in ["claimSlot", "leaseOwner", "leaseExpiresAt", "keepGrants", "version"] {
        assert!(request.get(bookkeeping).is_none(), "{bookkeeping} in {request}");
    }
    assert_eq!(remaining_stock(&app, &event_id).await, vec![Some(10)]);

    // Paused: hidden from players, so no claim is recorded at all; staff who may claim get
    // the recorded failure.
    let (paused, _) = active_event(&app, json!([points("p", 1, 10)]), "ALL_OR_NOTHING").await;
    set_status(&app, &admin, &paused, "INACTIVE").await;
    let (status, _) = claim(&app, token, &paused, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, request) = claim(&app, &admin, &paused, None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(status_of(&request), ClaimStatus::ValidationFailedEventNotActive);

    let draft = create_event(&app, &admin, &event_body("draft")).await;
    let (status, _) = claim(&app, token, draft["id"].as_str().unwrap(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = claim(&app, token, "ffffffffffffffffffffffff", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let operator = app.user_with_roles("operator1", &["OPERATOR"]).await.1;
    let (status, _) = claim(&app, &operator, &event_id, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_flaky_granter_never_pays_twice() {
    let faults = Faults { fail_percent: 30, slow_percent: 10, ..Faults::default() };
    // Enough attempts that only the granter's answers, never the machine's load, decide the
    // outcome; calls still time out on the granter's slow answers.
    let (granter, app) = granting_app(faults, |config| {
        config.events.saga_max_attempts = 12;
        config.events.webhook_timeout_ms = 1_000;
    })
    .await;
    let flaky = claimed_event(&app, json!([points("first", 1, 100), points("second", 2, 100)]), "flaky", 30).await;
    let (event_id, requests) = (flaky.event_id, flaky.claims);

    let successes = count(&requests, ClaimStatus::SuccessAllGranted);
    {
        let ledger = granter.ledger();
        assert_eq!(ledger.bad_signatures, 0);
        assert!(ledger.applications.values().all(|&n| n == 1), "no grant key applied twice");
        let rolled_back = count(&requests, ClaimStatus::FailedRolledBack);
        assert_eq!(successes + rolled_back, requests.len(), "every claim ends granted or rolled back");
        for request in &requests {
            let id = request["requestId"].as_str().unwrap();
            for reward in request["rewardsToProcess"].as_array().unwrap() {
                let key = format!("{id}:{}", reward["rewardDefinition"]["rewardId"].as_str().unwrap());
                let granted = ledger.granted.contains(&key);
                assert_eq!(granted, status_of(request) == ClaimStatus::SuccessAllGranted, "{key}");
            }
        }
    }
    let held = i64::try_from(successes).unwrap();
    assert_eq!(remaining_stock(&app, &event_id).await, vec![Some(100 - held), Some(100 - 2 * held)]);
}

#[tokio::test]
async fn a_refused_grant_is_compensated_in_reverse_order() {
    let faults = Faults { refuse_reward_name: Some("refused".into()), ..Faults::default() };
    let (granter, app) = granting_app(faults, |_| {}).await;
    let rewards = json!([points("kept", 1, 10), points("also kept", 1, 10), points("refused", 1, 10)]);
    let ClaimedEvent { event_id, reward_ids, players, claims } =
        claimed_event(&app, rewards.clone(), "unlucky", 1).await;
    let request = &claims[0];
    assert_eq!(status_of(request), ClaimStatus::FailedRolledBack);
    let trail: Vec<&str> =
        request["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(
        &trail[4..],
        [
            "PENDING_REWARD_GRANT",
            "REWARD_GRANT_FAILED_EXTERNAL",
            "PENDING_COMPENSATION_REWARD",
            "COMPENSATED_REWARD",
            "PENDING_COMPENSATION_INVENTORY",
            "COMPENSATED_INVENTORY",
            "FAILED_ROLLED_BACK"
        ]
    );
    let log = member_pairs(&request["compensatingActionsLog"], "action", "rewardId");
    let id = |i: usize| reward_ids[i].as_str();
    assert_eq!(
        log,
        vec![
            ("REVOKE_GRANT", id(1)),
            ("REVOKE_GRANT", id(0)),
            ("INCREMENT_STOCK", id(2)),
            ("INCREMENT_STOCK", id(1)),
            ("INCREMENT_STOCK", id(0))
        ]
    );
    assert_eq!(remaining_stock(&app, &event_id).await, vec![Some(10), Some(10), Some(10)]);
    assert!(granter.ledger().granted.is_empty(), "everything granted was revoked");
    assert_eq!(stored_claim_slot(&app, request), None);

    // Under PARTIAL_ALLOWED the player keeps what was granted; the refused reward's stock returns.
    let (partial_event, _) = active_event(&app, rewards, "PARTIAL_ALLOWED").await;
    let request = &claim_all(&app, &players, &partial_event).await[0];
    assert_eq!(status_of(request), ClaimStatus::RewardPartiallyGranted);
    assert_eq!(remaining_stock(&app, &partial_event).await, vec![Some(9), Some(9), Some(10)]);
    assert_eq!(granter.ledger().granted.len(), 2);
}

#[tokio::test]
async fn a_player_deactivated_before_the_grant_is_compensated() {
    let faults = Faults { grants_down: true, ..Faults::default() };
    let (granter, app) = granting_app(faults, |config| {
        config.events.saga_retry_base_ms = 400;
        config.events.claim_wait_ms = 200;
    })
    .await;
    let (event_id, _) = active_event(&app, json!([points("p", 1, 10)]), "ALL_OR_NOTHING").await;
    let players = players(&app, "leaver", 1).await;
    let (user_id, token) = &players[0];
    let (status, request) = claim(&app, token, &event_id, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the grant is being retried");
    assert_eq!(status_of(&request), ClaimStatus::PendingRewardGrant);

    let admin = app.admin_token().await;
    let response = app
        .send_json(Method::PATCH, &format!("/api/v1/users/{user_id}"), Some(&admin), &json!({ "isActive": false }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    granter.set_faults(Faults::default());
    let request = final_claim(&app, &admin, request["requestId"].as_str().unwrap()).await;
    assert_eq!(status_of(&request), ClaimStatus::FailedRolledBack);
    let trail: Vec<&str> =
        request["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert!(trail.contains(&"REWARD_GRANT_FAILED_USER_INACTIVE"), "{trail:?}");
    assert_eq!(remaining_stock(&app, &event_id).await, vec![Some(10)]);
    assert!(granter.ledger().granted.is_empty());
}

#[tokio::test]
async fn a_revoke_that_keeps_failing_waits_for_an_admin() {
    let (granter, faults, app, event_id, parked) = two_claims_stuck_in_compensation().await;
    assert!(parked.iter().all(|r| status_of(r) == ClaimStatus::CompensationFailedManualInterventionRequired));
    assert_eq!(remaining_stock(&app, &event_id).await, vec![Some(8), Some(8)], "stock stays reserved until settled");

    let admin = app.admin_token().await;
    let operator = app.user_with_roles("operator1", &["OPERATOR"]).await.1;
    let mut gauge = String::new();
    for _ in 0..50 {
        let metrics = app.get("/metrics", None).await.text().await.unwrap();
        gauge = metrics.lines().find(|l| l.starts_with("claims_manual_intervention")).unwrap_or_default().to_owned();
        if gauge.ends_with(" 2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gauge, "claims_manual_intervention 2");
    let listed =
        app.get_json("/api/v1/claims?status=COMPENSATION_FAILED_MANUAL_INTERVENTION_REQUIRED", Some(&admin)).await;
    assert_eq!(listed["total"], 2);
    let first = parked[0]["requestId"].as_str().unwrap();
    let second = parked[1]["requestId"].as_str().unwrap();
    let retry = format!("/api/v1/claims/{first}/retry");
    assert_eq!(
        app.request(Method::POST, &retry, Some(&operator)).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    granter.set_faults(Faults { revokes_down: false, ..faults });
    let response = app.request(Method::POST, &retry, Some(&admin)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let settled = final_claim(&app, &admin, first).await;
    assert_eq!(status_of(&settled), ClaimStatus::FailedRolledBack);
    assert_eq!(app.request(Method::POST, &retry, Some(&admin)).send().await.unwrap().status(), StatusCode::CONFLICT);

    let resolve = format!("/api/v1/claims/{second}/resolve");
    let response = app
        .post(&resolve, Some(&admin), &json!({ "resolution": "KEEP_GRANTED", "note": "player keeps the points" }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let resolved = final_claim(&app, &admin, second).await;
    assert_eq!(status_of(&resolved), ClaimStatus::RewardPartiallyGranted);
    assert_eq!(remaining_stock(&app, &event_id).await, vec![Some(9), Some(10)]);

    let log = app.get_json("/api/v1/audit-logs?action=claim.retry", Some(&admin)).await;
    assert_eq!((log["total"].as_u64(), log["items"][0]["targetId"].as_str()), (Some(1), Some(first)));
    let log = app.get_json("/api/v1/audit-logs?action=claim.resolve", Some(&admin)).await;
    assert_eq!(log["items"][0]["after"]["note"], "player keeps the points");
}

#[tokio::test]
async fn claim_history_is_private_to_players_and_filterable_by_staff() {
    let app = Arc::new(app_with(None, |_| {}).await);
    let (first_event, _) = active_event(&app, json!([points("a", 1, 10)]), "ALL_OR_NOTHING").await;
    let (second_event, _) = active_event(&app, json!([points("b", 1, 1)]), "ALL_OR_NOTHING").await;
    let players = players(&app, "hist", 2).await;
    let (alice, bob) = (&players[0], &players[1]);
    let (_, alice_claim) = claim(&app, &alice.1, &first_event, None).await;
    claim(&app, &bob.1, &first_event, None).await;
    claim(&app, &bob.1, &second_event, None).await;

    let alice_id = alice_claim["requestId"].as_str().unwrap();
    assert_eq!(app.get(&format!("/api/v1/claims/{alice_id}"), Some(&bob.1)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/claims/{alice_id}"), Some(&alice.1)).await.status(), StatusCode::OK);
    assert_eq!(app.get("/api/v1/claims", Some(&bob.1)).await.status(), StatusCode::FORBIDDEN);
    let mine = app.get_json("/api/v1/claims/me", Some(&bob.1)).await;
    assert_eq!(mine["total"], 2);
    let mine = app.get_json(&format!("/api/v1/claims/me?eventId={second_event}"), Some(&bob.1)).await;
    assert_eq!(mine["total"], 1);

    let auditor = app.user_with_roles("auditor1", &["AUDITOR"]).await.1;
    let by_user = app.get_json(&format!("/api/v1/claims?userId={}", bob.0), Some(&auditor)).await;
    assert_eq!(by_user["total"], 2);
    let by_event = app.get_json(&format!("/api/v1/claims?eventId={first_event}"), Some(&auditor)).await;
    assert_eq!(by_event["total"], 2);
    let by_status = app.get_json("/api/v1/claims?status=SUCCESS_ALL_GRANTED", Some(&auditor)).await;
    assert_eq!(by_status["total"], 3);
    let none_failed = app.get_json("/api/v1/claims?status=FAILED_ROLLED_BACK", Some(&auditor)).await;
    assert_eq!(none_failed["total"], 0);
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339().replace('+', "%2B");
    let none = app.get_json(&format!("/api/v1/claims?from={future}"), Some(&auditor)).await;
    assert_eq!(none["total"], 0);
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339().replace('+', "%2B");
    let all = app.get_json(&format!("/api/v1/claims?from={past}&to={future}"), Some(&auditor)).await;
    assert_eq!(all["total"], 3);
    assert_eq!(app.get("/api/v1/claims?status=BOGUS", Some(&auditor)).await.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_player_who_meets_the_condition_later_can_claim_again() {
    let app = Arc::new(app_with(None, |_| {}).await);
    let admin = app.admin_token().await;
    let mut body = event_body("two days");
    body["startDate"] = json!((chrono::Utc::now() - chrono::Duration::days(5)).to_rfc3339());
    body["conditions"] = json!({ "type": "LOGIN_DAYS", "days": 2 });
    body["timezone"] = json!("UTC");
    let event_id = activated_event(&app, &admin, &body).await;
    let players = players(&app, "patient", 1).await;
    let (user_id, token) = &players[0];

    let (status, first) = claim(&app, token, &event_id, None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(status_of(&first), ClaimStatus::ConditionNotMet);
    assert_eq!(stored_claim_slot(&app, &first), None);

    let logins: Vec<Value> = [3, 1]
        .iter()
        .map(|days| {
            json!({ "userId": user_id, "type": "LOGIN",
                    "occurredAt": (chrono::Utc::now() - chrono::Duration::days(*days)).to_rfc3339() })
        })
        .collect();
    let response = app.post("/api/v1/activities", Some(&admin), &json!({ "activities": logins })).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let (status, second) = claim(&app, token, &event_id, None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(status_of(&second), ClaimStatus::SuccessAllGranted);
    assert_ne!(second["requestId"], first["requestId"]);
}

#[tokio::test]
async fn an_unreachable_fact_provider_ends_the_claim_as_an_external_failure() {
    // Nothing listens on port 9 of loopback: every fact request is refused at once.
    let app = Arc::new(
        app_with(None, |config| {
            config.events.facts_url = Some("http://127.0.0.1:9/facts".into());
            config.events.facts_secret = Some("facts-secret".into());
            config.events.facts_retries = 1;
            config.events.saga_max_attempts = 2;
        })
        .await,
    );
    let admin = app.admin_token().await;
    let mut body = event_body("external");
    body["conditions"] = json!({ "type": "LOGIN_DAYS", "days": 1 });
    let event_id = activated_event(&app, &admin, &body).await;
    let players = players(&app, "remote", 1).await;
    let (_, request) = claim(&app, &players[0].1, &event_id, None).await;
    let request = final_claim(&app, &players[0].1, request["requestId"].as_str().unwrap()).await;
    assert_eq!(status_of(&request), ClaimStatus::ConditionCheckFailedExternal);
    assert!(request["retryCount"].as_u64().unwrap() >= 1, "transient failures were retried: {request}");
    assert_eq!(stored_claim_slot(&app, &request), None);
    assert_eq!(remaining_stock(&app, &event_id).await, vec![Some(100)]);
}
