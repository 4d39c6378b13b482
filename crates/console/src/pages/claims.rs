//! Claims: search, one claim's saga as a timeline, and the queue of claims waiting for a person.

use axum::Router;
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::{get, post};
use bestow_core::identity::Permission;
use bestow_events_domain::saga::ClaimStatus;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::filters::{Filters, PAGE_SIZE};
use super::{Nothing, Outcome, change_then_show, segment, shown, text};
use crate::ConsoleState;
use crate::api::{Call, Failure};
use crate::layout::{self, Section, Zone};
use crate::session::{Checked, Staff};

/// The status of a claim whose compensation failed: it waits for an ADMIN.
const NEEDS_A_PERSON: &str = "COMPENSATION_FAILED_MANUAL_INTERVENTION_REQUIRED";

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/console/claims", get(search))
        .route("/console/claims/queue", get(queue))
        .route("/console/claims/export", get(export))
        .route("/console/claims/{id}", get(show))
        .route("/console/claims/{id}/retry", post(retry))
        .route("/console/claims/{id}/resolve", post(resolve))
}

/// The claims list's filters, as `GET /api/v1/claims` takes them.
const CLAIM_FILTERS: [&str; 5] = ["userId", "eventId", "status", "from", "to"];

async fn search(staff: Staff, Query(query): Query<Vec<(String, String)>>) -> Response {
    layout::render(search_page(&staff, &Filters::read(&query, &CLAIM_FILTERS), false).await)
}

/// The claims CSV, streamed from the API as it writes it.
async fn export(staff: Staff, Query(query): Query<Vec<(String, String)>>) -> Response {
    staff.forward(Call::get(Filters::read(&query, &CLAIM_FILTERS).on("/api/v1/claims/export"))).await
}

async fn queue(staff: Staff, Query(query): Query<Vec<(String, String)>>) -> Response {
    let mut filters = Filters::read(&query, &CLAIM_FILTERS);
    filters.set("status", NEEDS_A_PERSON);
    layout::render(search_page(&staff, &filters, true).await)
}

async fn search_page(staff: &Staff, filters: &Filters, queue: bool) -> Result<Markup, Failure> {
    let found: Value = staff.get(filters.api_page("/api/v1/claims", PAGE_SIZE)).await?;
    let items = found["items"].as_array().cloned().unwrap_or_default();
    let (title, base) =
        if queue { ("Waiting for a person", "/console/claims/queue") } else { ("Claims", "/console/claims") };
    let body = html! {
        div.heading {
            h1 { (title) }
            nav.actions aria-label="Claims" {
                @if queue { a.button href="/console/claims" { "All claims" } }
                @else { a.button href="/console/claims/queue" { "Manual-intervention queue" } }
                a.button href=(filters.on("/console/claims/export")) download data-testid="export-claims" { "Export CSV" }
            }
        }
        @if queue {
            p.hint { "These claims could not be compensated automatically. An ADMIN retries the compensation or settles each one with a note." }
        } @else {
            form.filters method="get" action="/console/claims" role="search" {
                (filters.text_input("userId", "Player id", ""))
                (filters.text_input("eventId", "Event id", ""))
                (filters.select("status", "Status", ClaimStatus::ALL.map(ClaimStatus::as_str)))
                (filters.text_input("from", "From (RFC 3339)", "2026-12-01T00:00:00Z"))
                (filters.text_input("to", "To", "2026-12-02T00:00:00Z"))
                button type="submit" { "Search" }
            }
        }
        (claims_table(&items))
        (filters.pager(base, &found))
    };
    Ok(layout::page(staff, Section::Claims, title, body))
}

/// Claims as rows linking to their pages.
pub fn claims_table(items: &[Value]) -> Markup {
    html! {
        table.list data-testid="claims" {
            thead { tr { th { "Request" } th { "Player" } th { "Event" } th { "Tier" } th { "Status" } th { "Created" } } }
            tbody {
                @for claim in items {
                    tr {
                        td { a href=(format!("/console/claims/{}", segment(text(claim, "requestId")))) { code { (text(claim, "requestId")) } } }
                        td { a href=(format!("/console/players/{}", segment(text(claim, "userId")))) { (text(claim, "userId")) } }
                        td { a href=(format!("/console/events/{}", segment(text(claim, "eventId")))) { (claim["eventSnapshot"]["eventName"].as_str().unwrap_or(text(claim, "eventId"))) } }
                        td { (shown(claim, "tierId")) }
                        td { (layout::badge(text(claim, "status"))) }
                        td { (layout::instant(text(claim, "createdAt"), Zone::Utc)) }
                    }
                }
                @if items.is_empty() { tr { td colspan="6" { "No claims match." } } }
            }
        }
    }
}

async fn show(staff: Staff, Path(id): Path<String>, outcome: Outcome) -> Response {
    layout::render(claim_page(&staff, &id, &outcome).await)
}

async fn claim_page(staff: &Staff, id: &str, outcome: &Outcome) -> Result<Markup, Failure> {
    let claim: Value = staff.get(format!("/api/v1/claims/{}", segment(id))).await?;
    let base = format!("/console/claims/{}", segment(id));
    let waiting = text(&claim, "status") == NEEDS_A_PERSON;
    let player = text(&claim, "userId");
    let username = username(staff, player).await;
    let event_zone = Zone::of_event(claim["eventSnapshot"]["timezone"].as_str().unwrap_or_default());
    let body = html! {
        (outcome.render(&[("retried", "Compensation retried."), ("resolved", "Claim resolved.")]))
        div.heading {
            h1 { "Claim " code { (text(&claim, "requestId")) } " " (layout::badge(text(&claim, "status"))) }
        }
        dl.facts {
            dt { "Player" } dd data-testid="player" {
                a href=(format!("/console/players/{}", segment(player))) {
                    @if let Some(username) = &username { (username) } @else { code { (player) } }
                }
            }
            dt { "Event" } dd { a href=(format!("/console/events/{}", segment(text(&claim, "eventId")))) { (claim["eventSnapshot"]["eventName"].as_str().unwrap_or_default()) } }
            dt { "Tier" } dd { (shown(&claim, "tierId")) }
            dt { "Period start" } dd { (layout::instant(text(&claim, "periodStart"), event_zone)) }
            dt { "Saga step" } dd { (text(&claim, "currentSagaStep")) }
            dt { "Failure reason" } dd data-testid="failure-reason" { (shown(&claim, "failureReason")) }
            dt { "Retries" } dd { (shown(&claim, "retryCount")) }
            dt { "Next attempt" } dd { (layout::instant(text(&claim, "nextAttemptAt"), Zone::Utc)) }
            dt { "Created" } dd { (layout::instant(text(&claim, "createdAt"), Zone::Utc)) }
            dt { "Claimed" } dd { (layout::instant(text(&claim, "claimedAt"), Zone::Utc)) }
        }
        @if waiting && staff.account.can(Permission::InterveneInClaims) {
            section.intervention aria-label="Intervention" {
                h2 { "Intervention" }
                form.inline method="post" action=(format!("{base}/retry")) data-confirm="Retry the compensation of this claim?" {
                    (layout::csrf(staff))
                    button type="submit" { "Retry compensation" }
                }
                form.resolve method="post" action=(format!("{base}/resolve")) data-confirm="Resolve this claim? This is final." {
                    (layout::csrf(staff))
                    fieldset {
                        legend { "Resolve by hand" }
                        label for="resolution" { "Outcome" }
                        select #resolution name="resolution" {
                            option value="ROLLED_BACK" { "Rolled back: grants were taken back by hand; stock returns" }
                            option value="KEEP_GRANTED" { "Keep granted: the player keeps what was granted" }
                        }
                        label for="note" { "Note (required, for the audit log)" }
                        textarea #note name="note" required maxlength="2000" rows="3" {}
                        button type="submit" { "Resolve" }
                    }
                }
            }
        }
        section aria-label="Rewards" {
            h2 { "Rewards" }
            table.list {
                thead { tr { th { "Reward" } th { "Grant status" } th { "Attempts" } th { "Last failure" } th { "Stock held" } th { "Outcome unknown" } } }
                tbody {
                    @for reward in claim["rewardsToProcess"].as_array().map(Vec::as_slice).unwrap_or_default() {
                        tr {
                            td { (reward["rewardDefinition"]["rewardName"].as_str().unwrap_or_default()) }
                            td { (layout::badge(text(reward, "grantStatus"))) }
                            td { (shown(reward, "attemptCount")) }
                            td { (shown(reward, "lastFailureReason")) }
                            td data-testid="stock-held" { (layout::yes_no(&reward["stockReserved"])) }
                            td { (layout::yes_no(&reward["grantUncertain"])) }
                        }
                    }
                }
            }
        }
        section aria-label="Saga history" {
            h2 { "Saga history" }
            ol.timeline data-testid="timeline" {
                @for entry in claim["history"].as_array().map(Vec::as_slice).unwrap_or_default() {
                    li {
                        (layout::instant(text(entry, "at"), Zone::Utc))
                        " " (layout::badge(text(entry, "status"))) " "
                        span.step { (text(entry, "step")) }
                        @if let Some(note) = entry["note"].as_str() { p.note { (note) } }
                    }
                }
            }
        }
        section aria-label="Compensating actions" {
            h2 { "Compensating actions" }
            @let actions = claim["compensatingActionsLog"].as_array().map(Vec::as_slice).unwrap_or_default();
            @if actions.is_empty() { p { "None." } }
            @else {
                table.list {
                    thead { tr { th { "When" } th { "Step" } th { "Action" } th { "Reward" } } }
                    tbody {
                        @for action in actions {
                            tr { td { (layout::instant(text(action, "timestamp"), Zone::Utc)) } td { (text(action, "step")) } td { (text(action, "action")) } td { (text(action, "rewardId")) } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(staff, Section::Claims, "Claim", body))
}

/// The username of player `id` when the API lets this staff member read accounts (ADMIN);
/// `None` otherwise, or when the account cannot be read: the page then shows the id.
async fn username(staff: &Staff, id: &str) -> Option<String> {
    if !staff.account.can(Permission::ManageUsers) || id.is_empty() {
        return None;
    }
    let account: Value = staff.get(format!("/api/v1/users/{}", segment(id))).await.ok()?;
    account["username"].as_str().filter(|name| !name.is_empty()).map(str::to_owned)
}

async fn retry(staff: Staff, Path(id): Path<String>, Checked(_): Checked<Nothing>) -> Response {
    let call = Call::new(http::Method::POST, format!("/api/v1/claims/{}/retry", segment(&id)));
    change_then_show(&staff, call, &format!("/console/claims/{}", segment(&id)), "retried").await
}

#[derive(Deserialize)]
struct ResolveForm {
    resolution: String,
    note: String,
}

async fn resolve(staff: Staff, Path(id): Path<String>, Checked(form): Checked<ResolveForm>) -> Response {
    let body = json!({ "resolution": form.resolution, "note": form.note });
    let call = Call::post(format!("/api/v1/claims/{}/resolve", segment(&id)), body);
    change_then_show(&staff, call, &format!("/console/claims/{}", segment(&id)), "resolved").await
}
