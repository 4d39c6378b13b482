//! Claims: search, one claim's saga as a timeline, and the queue of claims waiting for a person.

use axum::Router;
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::{get, post};
use bestow_core::identity::Permission;
use bestow_events_domain::saga::ClaimStatus;
use bestow_events_domain::view::ClaimView;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::filters::{Filters, PAGE_SIZE};
use super::{Nothing, Outcome, change_then_show, segment, shown};
use crate::ConsoleState;
use crate::api::{self, Call, Failure};
use crate::layout::{self, Section, Zone};
use crate::session::{Checked, Staff};

/// The status of a claim whose compensation failed: it waits for an ADMIN.
const NEEDS_A_PERSON: ClaimStatus = ClaimStatus::CompensationFailedManualInterventionRequired;

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
    filters.set("status", NEEDS_A_PERSON.as_str());
    layout::render(search_page(&staff, &filters, true).await)
}

async fn search_page(staff: &Staff, filters: &Filters, queue: bool) -> Result<Markup, Failure> {
    let found = staff.read(filters.page_of(api::claims(), PAGE_SIZE)).await?;
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
        (claims_table(&found.items))
        (filters.pager(base, &found))
    };
    Ok(layout::page(staff, Section::Claims, title, body))
}

/// Claims as rows linking to their pages.
pub fn claims_table(items: &[ClaimView]) -> Markup {
    html! {
        table.list data-testid="claims" {
            thead { tr { th { "Request" } th { "Player" } th { "Event" } th { "Tier" } th { "Status" } th { "Created" } } }
            tbody {
                @for claim in items {
                    tr {
                        td { a href=(format!("/console/claims/{}", segment(&claim.request_id.to_string()))) { code { (claim.request_id) } } }
                        td { a href=(format!("/console/players/{}", segment(&claim.user_id.to_string()))) { (claim.user_id) } }
                        td { a href=(format!("/console/events/{}", segment(&claim.event_id.to_string()))) { (claim.event_snapshot.event_name) } }
                        td { (shown(&claim.tier_id)) }
                        td { (layout::badge(claim.status.as_str())) }
                        td { (layout::instant_at(claim.created_at, Zone::Utc)) }
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
    let claim = staff.read(api::claim(id)).await?;
    let base = format!("/console/claims/{}", segment(id));
    let waiting = claim.status == NEEDS_A_PERSON;
    let player = &claim.user_id.to_string();
    let username = username(staff, player).await;
    let event_zone = Zone::of_event(&claim.event_snapshot.timezone);
    let body = html! {
        (outcome.render(&[("retried", "Compensation retried."), ("resolved", "Claim resolved.")]))
        div.heading {
            h1 { "Claim " code { (claim.request_id) } " " (layout::badge(claim.status.as_str())) }
        }
        dl.facts {
            dt { "Player" } dd data-testid="player" {
                a href=(format!("/console/players/{}", segment(player))) {
                    @if let Some(username) = &username { (username) } @else { code { (player) } }
                }
            }
            dt { "Event" } dd { a href=(format!("/console/events/{}", segment(&claim.event_id.to_string()))) { (claim.event_snapshot.event_name) } }
            dt { "Tier" } dd { (shown(&claim.tier_id)) }
            dt { "Period start" } dd { (layout::instant_at(claim.period_start, event_zone)) }
            dt { "Saga step" } dd { (shown(&claim.current_saga_step)) }
            dt { "Failure reason" } dd data-testid="failure-reason" { (shown(&claim.failure_reason)) }
            dt { "Retries" } dd { (claim.retry_count) }
            dt { "Next attempt" } dd { (layout::instant_at(claim.next_attempt_at, Zone::Utc)) }
            dt { "Created" } dd { (layout::instant_at(claim.created_at, Zone::Utc)) }
            dt { "Claimed" } dd { (layout::instant_at(claim.claimed_at, Zone::Utc)) }
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
                    @for reward in &claim.rewards_to_process {
                        tr {
                            td { (reward.reward_definition.reward_name) }
                            td { (layout::badge(&shown(&reward.grant_status))) }
                            td { (reward.attempt_count) }
                            td { (shown(&reward.last_failure_reason)) }
                            td data-testid="stock-held" { (layout::yes_no(reward.stock_reserved)) }
                            td { (layout::yes_no(reward.grant_uncertain)) }
                        }
                    }
                }
            }
        }
        section aria-label="Saga history" {
            h2 { "Saga history" }
            ol.timeline data-testid="timeline" {
                @for entry in &claim.history {
                    li {
                        (layout::instant_at(entry.at, Zone::Utc))
                        " " (layout::badge(entry.status.as_str())) " "
                        span.step { (shown(&entry.step)) }
                        @if let Some(note) = &entry.note { p.note { (note) } }
                    }
                }
            }
        }
        section aria-label="Compensating actions" {
            h2 { "Compensating actions" }
            @let actions = &claim.compensating_actions_log;
            @if actions.is_empty() { p { "None." } }
            @else {
                table.list {
                    thead { tr { th { "When" } th { "Step" } th { "Action" } th { "Reward" } } }
                    tbody {
                        @for action in actions {
                            tr { td { (layout::instant_at(action.timestamp, Zone::Utc)) } td { (shown(&action.step)) } td { (shown(&action.action)) } td { (action.reward_id) } }
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
    let account = staff.read(api::user(id)).await.ok()?;
    Some(account.username).filter(|name| !name.is_empty())
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
