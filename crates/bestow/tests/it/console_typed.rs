//! The console's pages checked against the API's typed replies: the test reads an event, a
//! claim, the dashboard and a wallet as the API's own view types (`common_calls.rs`) and finds
//! each figure on the page that shows it, as the console renders it.

use bestow_events::domain::lifecycle::EventStatus;
use bestow_events::domain::saga::ClaimStatus;
use bestow_events::view::RewardView;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console::ConsoleClient;
use crate::fixtures::{event_body, points, second_reward};
use crate::helpers::{ADMIN_PASSWORD, PASSWORD, TestApp};

/// What the console shows in a stock cell for `reward`.
fn stock_cell(reward: &RewardView) -> String {
    match (reward.remaining_stock, reward.total_stock) {
        (Some(left), Some(total)) => format!("{left} of {total}"),
        _ => "unlimited".to_owned(),
    }
}

#[tokio::test]
async fn console_pages_show_what_the_apis_typed_replies_say() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut body = event_body("Typed winter");
    body["conditions"] = Value::Null;
    body["rewards"] = json!([points("typed points", 1, 10), second_reward()]);
    let event = app.api.create_active_event(&admin, body).await;
    assert_eq!((event.status, event.rewards.len()), (EventStatus::Active, 2));
    let event_id = event.id.to_string();

    let player = app.api.player("typed_player", PASSWORD).await;
    let account = app.api.me(&player).await;
    let recorded = app.api.claim_view(&player, &event_id, "5f0c6a56-3c36-4b9f-9d55-1d5b1c2b8a3e").await;
    assert_eq!(recorded.event_id.to_string(), event_id);
    let request_id = recorded.request_id.to_string();
    let claim = app.api.settled_claim(&player, &request_id).await;
    assert_eq!(claim.status, ClaimStatus::SuccessAllGranted);
    assert_eq!(claim.user_id.to_string(), account.id.to_string());

    let mut console = ConsoleClient::new(&app);
    let signed_in = console.sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);

    // The event page: its name, status and the stock left of each reward.
    let event = app.api.event(&admin, &event_id).await;
    let page = console.get(&format!("/console/events/{event_id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(&event.event_name) && page.body.contains(event.status.as_str()));
    for reward in &event.rewards {
        assert!(page.body.contains(&reward.reward_name), "{}", reward.reward_name);
        let shown = format!("data-testid=\"stock\">{}<", stock_cell(reward));
        assert!(page.body.contains(&shown), "{shown} in {}", page.body);
    }
    assert!(page.body.contains("9 of 10"), "the limited reward lost the unit the claim took");

    // The claim page: each reward's grant, the saga's history, no failure.
    let page = console.get(&format!("/console/claims/{request_id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(&claim.request_id.to_string()) && page.body.contains(&claim.event_snapshot.event_name));
    assert!(page.body.contains("data-testid=\"failure-reason\">—<"));
    for reward in &claim.rewards_to_process {
        assert!(page.body.contains(&reward.reward_definition.reward_name));
        let held = if reward.stock_reserved { "yes" } else { "no" };
        assert!(page.body.contains(&format!("data-testid=\"stock-held\">{held}<")));
    }
    for entry in &claim.history {
        assert!(page.body.contains(entry.status.as_str()), "timeline has {:?}", entry.status);
    }

    // The claims list of the event, and the event list.
    let claims = app.api.claims(&admin, &format!("eventId={event_id}")).await;
    assert_eq!(claims.total, 1);
    let page = console.get(&format!("/console/claims?eventId={event_id}")).await;
    assert!(claims.items.iter().all(|listed| page.body.contains(&listed.request_id.to_string())));
    let events = app.api.events(&admin, "status=ACTIVE").await;
    let page = console.get("/console/events?status=ACTIVE").await;
    assert!(events.items.iter().all(|listed| page.body.contains(&listed.event_name)));

    // The dashboard's figures.
    let stats = app.api.event_stats(&admin, &event_id).await;
    let succeeded = stats.claims_by_status.get(&ClaimStatus::SuccessAllGranted).copied().unwrap_or(0);
    assert_eq!(succeeded, 1);
    let live = console.get(&format!("/console/events/{event_id}/dashboard/live")).await;
    assert!(live.body.contains(&format!("data-testid=\"claims-succeeded\">{succeeded}<")), "{}", live.body);
    for reward in &stats.stock {
        assert!(live.body.contains(&reward.reward_name));
    }

    // The player's page: the wallet the claim filled.
    let wallet = app.api.wallet(&admin, account.id.as_str()).await;
    assert_eq!((wallet.points, wallet.items.len()), (100, 1));
    let page = console.get(&format!("/console/players/{}", account.id)).await;
    assert!(page.body.contains(&format!("data-testid=\"points\">{}<", wallet.points)), "{}", page.body);
    let eligibility = app.api.eligibility(&admin, &event_id, account.id.as_str()).await;
    let preview = console.get(&format!("/console/players/eligibility?userId={}&eventId={event_id}", account.id)).await;
    let eligible = if eligibility.eligible { "yes" } else { "no" };
    assert!(preview.body.contains(&format!("data-testid=\"eligible\">{eligible}<")), "{}", preview.body);
}
