//! Events: the list, one event with its lifecycle and stock, the form, and the live dashboard.

use axum::Router;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bestow_core::identity::Permission;
use bestow_core::ids::AudienceId;
use bestow_events_domain::audience::AudienceTarget;
use bestow_events_domain::lifecycle::EventStatus;
use bestow_events_domain::recurrence::RecurrencePeriod;
use bestow_events_domain::saga::ClaimStatus;
use bestow_events_domain::stats::FailureCodeCount;
use bestow_events_domain::view::{EventView, RewardView};
use chrono::{DateTime, Utc};
use http::{Method, StatusCode};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::audiences::PICKER_LIMIT;
use super::event_form::{self, AudienceChoice, EventForm};
use super::filters::{Filters, PAGE_SIZE};
use super::{Nothing, Outcome, back_with_error, change_then_show, refusal, segment, shown, with_query};
use crate::ConsoleState;
use crate::api::{self, Call, Failure};
use crate::chart;
use crate::layout::{self, Section, Zone};
use crate::session::{Checked, Staff};

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/console/events", get(list))
        .route("/console/events/new", get(new_form).post(create))
        .route("/console/events/{id}", get(show))
        .route("/console/events/{id}/edit", get(edit_form).post(update))
        .route("/console/events/{id}/status", post(change_status))
        .route("/console/events/{id}/delete", post(delete))
        .route("/console/events/{id}/rewards", post(add_reward))
        .route("/console/events/{id}/rewards/{reward}/top-up", post(top_up))
        .route("/console/events/{id}/rewards/{reward}/delete", post(remove_reward))
        .route("/console/events/{id}/dashboard", get(dashboard))
        .route("/console/events/{id}/dashboard/live", get(dashboard_live))
}

async fn list(staff: Staff, Query(query): Query<Vec<(String, String)>>) -> Response {
    layout::render(list_page(&staff, &Filters::read(&query, &["status", "q"])).await)
}

async fn list_page(staff: &Staff, filters: &Filters) -> Result<Markup, Failure> {
    let found = staff.read(filters.page_of(api::events(), PAGE_SIZE)).await?;
    let items = &found.items;
    let body = html! {
        div.heading {
            h1 { "Events" }
            @if staff.account.can(Permission::ManageEvents) {
                a.button href="/console/events/new" { "New event" }
            }
        }
        form.filters method="get" action="/console/events" role="search" {
            (filters.select("status", "Status", EventStatus::ALL.map(EventStatus::as_str)))
            (filters.text_input("q", "Name contains", ""))
            button type="submit" { "Filter" }
        }
        table.list {
            thead { tr { th { "Name" } th { "Status" } th { "Starts" } th { "Ends" } th { "Time zone" } th { "Rewards" } } }
            tbody {
                @for event in items {
                    tr {
                        td { a href=(event_path(&event.id.to_string())) { (event.event_name) } }
                        td { (layout::badge(event.status.as_str())) }
                        @let zone = Zone::of_event(&event.timezone);
                        td { (layout::instant_at(event.start_date, zone)) }
                        td { (layout::instant_at(event.end_date, zone)) }
                        td { (event.timezone) }
                        td { (event.rewards.len()) }
                    }
                }
                @if items.is_empty() { tr { td colspan="6" { "No events match." } } }
            }
        }
        (filters.pager("/console/events", &found))
    };
    Ok(layout::page(staff, Section::Events, "Events", body))
}

async fn new_form(staff: Staff) -> Response {
    let form =
        EventForm { timezone: "UTC".to_owned(), grant_policy: "ALL_OR_NOTHING".to_owned(), ..EventForm::default() };
    form_page(&staff, "/console/events/new", &form, true, None, StatusCode::OK).await
}

/// The audiences the form's picker offers (the newest page of them); none when they cannot be
/// read, the form's own choices kept by id.
async fn audience_choices(staff: &Staff) -> Vec<AudienceChoice> {
    match staff.read(api::audiences().query(&[("limit", PICKER_LIMIT)])).await {
        Ok(found) => {
            found.items.into_iter().map(|audience| AudienceChoice { id: audience.id, name: audience.name }).collect()
        }
        Err(failure) => {
            tracing::warn!(reason = %failure.message(), "the event form could not list the audiences");
            Vec::new()
        }
    }
}

async fn form_page(
    staff: &Staff,
    action: &str,
    form: &EventForm,
    creating: bool,
    failure: Option<&Failure>,
    status: StatusCode,
) -> Response {
    let title = if creating { "New event" } else { "Edit event" };
    let audiences = audience_choices(staff).await;
    let body = html! { h1 { (title) } (event_form::render(staff, action, form, creating, &audiences, failure)) };
    (status, layout::page(staff, Section::Events, title, body)).into_response()
}

/// A form the API (or the form itself) refused, shown again as typed, with the reasons.
async fn refused_form(staff: &Staff, action: &str, form: &EventForm, creating: bool, failure: Failure) -> Response {
    let status = if failure.status.is_client_error() { failure.status } else { StatusCode::BAD_GATEWAY };
    form_page(staff, action, form, creating, Some(&failure), status).await
}

fn malformed(violations: Vec<crate::api::Violation>) -> Failure {
    Failure {
        status: StatusCode::BAD_REQUEST,
        title: "Some fields need attention".to_owned(),
        detail: None,
        code: Some("VALIDATION_FAILED".to_owned()),
        violations,
    }
}

async fn create(staff: Staff, Checked(pairs): Checked<Vec<(String, String)>>) -> Response {
    let form = EventForm::from_pairs(&pairs);
    let action = "/console/events/new";
    let body = match form.to_body(true) {
        Ok(body) => body,
        Err(violations) => return refused_form(&staff, action, &form, true, malformed(violations)).await,
    };
    let created = staff.send(Call::post("/api/v1/events", body)).await.and_then(|reply| reply.parse::<EventView>());
    let created = match created {
        Ok(created) => created,
        Err(failure) => return refused_form(&staff, action, &form, true, failure).await,
    };
    Redirect::to(&format!("/console/events/{}?notice=created", segment(&created.id.to_string()))).into_response()
}

async fn show(staff: Staff, Path(id): Path<String>, outcome: Outcome) -> Response {
    layout::render(event_page(&staff, &id, &outcome).await)
}

async fn event_page(staff: &Staff, id: &str, outcome: &Outcome) -> Result<Markup, Failure> {
    let event = staff.read(api::event(id)).await?;
    let base = event_path(id);
    let status = event.status;
    let manage = staff.account.can(Permission::ManageEvents);
    let zone = Zone::of_event(&event.timezone);
    let targeting = targeting(staff, event.audience.as_ref()).await;
    let body = html! {
        (outcome.render(&[("created", "Event created."), ("saved", "Changes saved."), ("status", "Status changed."), ("topped-up", "Stock topped up."), ("reward-added", "Reward added."), ("reward-removed", "Reward removed.")]))
        div.heading {
            h1 { (event.event_name) " " (layout::badge(event.status.as_str())) }
            nav.actions aria-label="Event" {
                a.button href=(format!("{base}/dashboard")) { "Dashboard" }
                a.button href=(with_query("/console/claims", &[("eventId", id)])) { "Claims" }
                @if manage && matches!(status, EventStatus::Draft | EventStatus::Inactive) {
                    a.button href=(format!("{base}/edit")) { "Edit" }
                }
            }
        }
        p { (event.description) }
        dl.facts {
            dt { "Starts" } dd data-testid="starts" { (layout::instant_at(event.start_date, zone)) }
            dt { "Ends" } dd data-testid="ends" { (layout::instant_at(event.end_date, zone)) }
            dt { "Time zone" } dd { (event.timezone) }
            dt { "Grant policy" } dd { (shown(&event.grant_policy)) }
            dt { "Recurrence" } dd data-testid="recurrence" { (recurrence(&event)) }
            dt { "Version" } dd { (event.version) }
        }
        @if manage {
            section.lifecycle aria-label="Lifecycle" {
                h2 { "Lifecycle" }
                @for next in EventStatus::ALL.into_iter().filter(|next| status.can_become(*next)) {
                    form.inline method="post" action=(format!("{base}/status")) data-confirm=(format!("Change the status to {next}?")) {
                        (layout::csrf(staff))
                        input type="hidden" name="status" value=(next.as_str());
                        button type="submit" name="to" value=(next.as_str()) { "Make " (next.as_str()) }
                    }
                }
                @if status == EventStatus::Draft && staff.account.can(Permission::DeleteEvents) {
                    form.inline method="post" action=(format!("{base}/delete")) data-confirm="Delete this draft for good?" {
                        (layout::csrf(staff))
                        button.danger type="submit" { "Delete draft" }
                    }
                }
            }
        }
        section aria-label="Audience" {
            h2 { "Audience" }
            (targeting)
        }
        section aria-label="Conditions" {
            h2 { "Conditions" }
            (layout::json_block(&event.conditions, "Conditions as JSON"))
        }
        section aria-label="Rewards" {
            h2 { "Rewards" }
            @let definitions_open = manage && matches!(status, EventStatus::Draft | EventStatus::Inactive);
            (rewards_table(staff, &base, &event.rewards, manage, definitions_open && status == EventStatus::Draft))
            @if definitions_open && event.tiers.is_none() {
                details.add-reward {
                    summary { "Add a reward" }
                    form.event-form method="post" action=(format!("{base}/rewards")) {
                        (layout::csrf(staff))
                        (event_form::new_reward_fields())
                        button type="submit" { "Add reward" }
                    }
                }
            }
        }
        @if let Some(tiers) = &event.tiers {
            section aria-label="Tiers" {
                h2 { "Tiers" }
                @for tier in tiers {
                    h3 { (tier.tier_name) " " code { (tier.tier_id) } }
                    (layout::json_block(&tier.conditions, &format!("Conditions of tier {} as JSON", tier.tier_id)))
                    (rewards_table(staff, &base, &tier.rewards, manage, false))
                }
            }
        }
        section aria-label="Eligibility preview" {
            h2 { "Eligibility of a player" }
            form.filters method="get" action="/console/players/eligibility" {
                input type="hidden" name="eventId" value=(id);
                label for="preview-user" { "Player id" }
                input #preview-user name="userId" required;
                @if let Some(tiers) = &event.tiers {
                    label for="preview-tier" { "Tier" }
                    select #preview-tier name="tierId" {
                        @for tier in tiers { option value=(tier.tier_id) { (tier.tier_name) } }
                    }
                }
                button type="submit" { "Preview" }
            }
        }
    };
    Ok(layout::page(staff, Section::Events, &event.event_name, body))
}

/// Who an event is shown to: everyone, or its audiences by name (linked) with stickiness.
async fn targeting(staff: &Staff, target: Option<&AudienceTarget>) -> Markup {
    let Some(target) = target.filter(|target| !target.include.is_empty() || !target.exclude.is_empty()) else {
        return html! { p data-testid="audience" { "Every player." } };
    };
    let mut names = Vec::new();
    for id in target.audience_ids() {
        let name =
            staff.read(api::audience(id.as_str())).await.map_or_else(|_| id.to_string(), |audience| audience.name);
        names.push((id.to_string(), name));
    }
    let links = |ids: &[AudienceId]| {
        html! {
            @for (index, id) in ids.iter().enumerate() {
                @if index > 0 { ", " }
                @let name = names.iter().find(|(known, _)| known == id.as_str()).map_or(id.as_str(), |(_, name)| name.as_str());
                a href=(format!("/console/audiences/{}", segment(id.as_str()))) { (name) }
            }
        }
    };
    html! {
        dl.facts data-testid="audience" {
            dt { "Shown to" } dd data-testid="audience-include" {
                @if target.include.is_empty() { "every player" } @else { "players in " (links(&target.include)) }
            }
            dt { "Never to" } dd data-testid="audience-exclude" {
                @if target.exclude.is_empty() { "—" } @else { "players in " (links(&target.exclude)) }
            }
            dt { "Sticky" } dd data-testid="audience-sticky" { (layout::yes_no(target.sticky)) }
        }
    }
}

/// The rewards with their stock; `manage` offers top-ups, `removable` a remove button (drafts).
fn rewards_table(staff: &Staff, base: &str, rewards: &[RewardView], manage: bool, removable: bool) -> Markup {
    html! {
        table.list {
            thead { tr { th { "Reward" } th { "Type" } th { "Details" } th { "Per player" } th { "Stock left" } @if manage { th { "Top up" } } } }
            tbody {
                @for reward in rewards {
                    tr {
                        td { (reward.reward_name) }
                        td { (reward.reward_type) }
                        td { code { (reward.details.to_string()) } }
                        td { (reward.quantity_per_user) }
                        td data-testid="stock" { (stock(reward.remaining_stock, reward.total_stock)) }
                        @if manage {
                            td {
                                @if reward.total_stock.is_some() {
                                    form.inline method="post" action=(format!("{base}/rewards/{}/top-up", segment(&reward.reward_id))) {
                                        (layout::csrf(staff))
                                        label.visually-hidden for=(format!("top-up-{}", reward.reward_id)) { "Units to add to " (reward.reward_name) }
                                        input id=(format!("top-up-{}", reward.reward_id)) name="addStock" inputmode="numeric" size="6" required;
                                        button type="submit" { "Add" }
                                    }
                                }
                                @if removable {
                                    form.inline method="post" action=(format!("{base}/rewards/{}/delete", segment(&reward.reward_id))) data-confirm="Remove this reward?" {
                                        (layout::csrf(staff))
                                        button.danger type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn edit_form(staff: Staff, Path(id): Path<String>) -> Response {
    let reply = match staff.send(Call::get(api::event(&id).path())).await {
        Ok(reply) => reply,
        Err(failure) => return layout::failure_page(&failure),
    };
    let event: EventView = match reply.parse() {
        Ok(event) => event,
        Err(failure) => return layout::failure_page(&failure),
    };
    let form = EventForm::of_event(&event, reply.etag.clone());
    form_page(&staff, &format!("/console/events/{}/edit", segment(&id)), &form, false, None, StatusCode::OK).await
}

async fn update(staff: Staff, Path(id): Path<String>, Checked(pairs): Checked<Vec<(String, String)>>) -> Response {
    let form = EventForm::from_pairs(&pairs);
    let action = format!("/console/events/{}/edit", segment(&id));
    let body = match form.to_body(false) {
        Ok(body) => body,
        Err(violations) => return refused_form(&staff, &action, &form, false, malformed(violations)).await,
    };
    let version = Some(form.version.clone()).filter(|version| !version.is_empty());
    let call = Call::new(Method::PATCH, format!("/api/v1/events/{}", segment(&id))).json(body).if_match(version);
    match staff.send(call).await.and_then(|reply| reply.parse::<EventView>()) {
        Ok(_) => Redirect::to(&format!("/console/events/{}?notice=saved", segment(&id))).into_response(),
        Err(failure) if failure.is_stale_version() => {
            let stale = Failure {
                title: "Someone else changed this event while you were editing".to_owned(),
                detail: Some(
                    "Your changes were not saved. Reload the form to start from the current version.".to_owned(),
                ),
                ..failure
            };
            let audiences = audience_choices(&staff).await;
            let reload = html! {
                h1 { "Edit event" }
                (layout::failure(&stale))
                p { a.button data-testid="reload" href=(action.clone()) { "Reload the current version" } }
                (event_form::render(&staff, &action, &form, false, &audiences, None))
            };
            (StatusCode::PRECONDITION_FAILED, layout::page(&staff, Section::Events, "Edit event", reload))
                .into_response()
        }
        Err(failure) => refused_form(&staff, &action, &form, false, failure).await,
    }
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
}

async fn change_status(staff: Staff, Path(id): Path<String>, Checked(form): Checked<StatusForm>) -> Response {
    let call = Call::new(Method::PUT, format!("/api/v1/events/{}/status", segment(&id)))
        .json(json!({ "status": form.status }));
    change_then_show(&staff, call, &event_path(&id), "status").await
}

#[derive(Deserialize)]
struct TopUpForm {
    #[serde(rename = "addStock")]
    add_stock: String,
}

async fn add_reward(staff: Staff, Path(id): Path<String>, Checked(pairs): Checked<Vec<(String, String)>>) -> Response {
    let body = match event_form::new_reward_body(&pairs) {
        Ok(body) => body,
        Err(violations) => return back_with_error(&event_path(&id), &malformed(violations).message()),
    };
    let call = Call::post(format!("/api/v1/events/{}/rewards", segment(&id)), body);
    change_then_show(&staff, call, &event_path(&id), "reward-added").await
}

async fn remove_reward(
    staff: Staff,
    Path((id, reward)): Path<(String, String)>,
    Checked(_): Checked<Nothing>,
) -> Response {
    let call = Call::new(Method::DELETE, format!("/api/v1/events/{}/rewards/{}", segment(&id), segment(&reward)));
    change_then_show(&staff, call, &event_path(&id), "reward-removed").await
}

async fn top_up(
    staff: Staff,
    Path((id, reward)): Path<(String, String)>,
    Checked(form): Checked<TopUpForm>,
) -> Response {
    let Ok(units) = form.add_stock.trim().parse::<i64>() else {
        return back_with_error(&event_path(&id), "The units to add must be a whole number.");
    };
    let path = format!("/api/v1/events/{}/rewards/{}", segment(&id), segment(&reward));
    let call = Call::new(Method::PATCH, path).json(json!({ "addStock": units }));
    change_then_show(&staff, call, &event_path(&id), "topped-up").await
}

/// The console page of event `id`.
fn event_path(id: &str) -> String {
    format!("/console/events/{}", segment(id))
}

async fn delete(staff: Staff, Path(id): Path<String>, Checked(_): Checked<Nothing>) -> Response {
    match refusal(staff.send(Call::new(Method::DELETE, format!("/api/v1/events/{}", segment(&id)))).await) {
        None => Redirect::to("/console/events").into_response(),
        Some(reason) => back_with_error(&event_path(&id), &reason),
    }
}

/// An event's recurrence in words, its reset on the event's own clock.
fn recurrence(event: &EventView) -> String {
    let Some(recurrence) = &event.recurrence else { return "None: one period from start to end".to_owned() };
    let at = format!("{} ({})", recurrence.reset_time.format("%H:%M"), event.timezone);
    match recurrence.period {
        RecurrencePeriod::Daily => format!("Daily, resetting at {at}"),
        RecurrencePeriod::Weekly => {
            let day = recurrence.reset_weekday.as_ref().map(shown).unwrap_or_default();
            let day =
                format!("{}{}", day.get(..1).unwrap_or_default(), day.get(1..).unwrap_or_default().to_lowercase());
            format!("Weekly, resetting on {day} at {at}")
        }
        RecurrencePeriod::Monthly => format!("Monthly, resetting on day {} at {at}", shown(&recurrence.reset_day)),
    }
}

/// A reward's stock: what is left of the total, or "unlimited".
pub(super) fn stock(remaining: Option<i64>, total: Option<i64>) -> Markup {
    html! {
        @match (remaining, total) {
            (Some(left), Some(total)) => { (left) " of " (total) }
            _ => { "unlimited" }
        }
    }
}

/// The cause of a group of failed claims: its code's label and the code, or, for claims
/// recorded before codes existed, their status.
fn failure_cause(group: &FailureCodeCount) -> Markup {
    html! {
        @match (group.failure_code, group.status) {
            (Some(code), _) => { td { (code.label()) } td { code { (code.as_str()) } } }
            (None, Some(status)) => { td { "Recorded without a code" } td { (layout::badge(status.as_str())) } }
            (None, None) => { td { "Recorded without a code" } td { "—" } }
        }
    }
}

async fn dashboard(staff: Staff, Path(id): Path<String>) -> Response {
    layout::render(dashboard_page(&staff, &id).await)
}

async fn dashboard_page(staff: &Staff, id: &str) -> Result<Markup, Failure> {
    let event = staff.read(api::event(id)).await?;
    let figures = dashboard_figures(staff, id, Zone::of_event(&event.timezone)).await?;
    let live = format!("/console/events/{}/dashboard/live", segment(id));
    let body = html! {
        div.heading {
            h1 { "Dashboard: " (event.event_name) " " (layout::badge(event.status.as_str())) }
            nav.actions aria-label="Event" { a.button href=(event_path(id)) { "Event" } }
        }
        p.hint { "Refreshed every 5 seconds while this page is open." }
        div #live data-refresh=(live) data-interval="5000" { (figures) }
    };
    Ok(layout::page(staff, Section::Events, "Dashboard", body))
}

/// Only the figures, for the page's periodic refresh.
async fn dashboard_live(staff: Staff, Path(id): Path<String>) -> Response {
    let figures = async {
        let event = staff.read(api::event(&id)).await?;
        dashboard_figures(&staff, &id, Zone::of_event(&event.timezone)).await
    };
    match figures.await {
        Ok(figures) => figures.into_response(),
        Err(failure) => (failure.status, layout::failure(&failure)).into_response(),
    }
}

/// The dashboard's figures, the chart's clock in the event's `zone`.
async fn dashboard_figures(staff: &Staff, id: &str, zone: Zone) -> Result<Markup, Failure> {
    let stats = staff.read(api::event_stats(id)).await?;
    let per_minute: Vec<(DateTime<Utc>, u64)> =
        stats.claims_per_minute.iter().map(|minute| (minute.minute, minute.count)).collect();
    let last_hour: u64 = per_minute.iter().map(|(_, count)| count).sum();
    let succeeded = stats.claims_by_status.get(&ClaimStatus::SuccessAllGranted).copied().unwrap_or(0);
    // Listed by the status's name, as the console always has.
    let mut by_status: Vec<(&str, u64)> =
        stats.claims_by_status.iter().map(|(status, count)| (status.as_str(), *count)).collect();
    by_status.sort_by_key(|(status, _)| *status);
    Ok(html! {
        div.cards {
            div.card { span.figure data-testid="claims-last-hour" { (last_hour) } span { "claims in the last hour" } }
            div.card {
                span.figure data-testid="claims-succeeded" { (succeeded) }
                span { "granted in full" }
            }
        }
        section aria-label="Claims per minute" {
            h2 { "Claims per minute, last hour" }
            (chart::per_minute("Claims per minute over the last hour", &per_minute, zone, 720, 220))
            p.hint { "Counted at " (layout::instant_at(stats.generated_at, zone)) "." }
        }
        div.columns {
            section aria-label="Claims by status" {
                h2 { "Claims by status" }
                table.list data-testid="by-status" {
                    tbody {
                        @for (status, count) in by_status.iter().filter(|(_, count)| *count > 0) {
                            tr { td { (layout::badge(status)) } td { (count) } }
                        }
                    }
                }
            }
            section aria-label="Stock" {
                h2 { "Stock left" }
                table.list {
                    tbody {
                        @for reward in &stats.stock {
                            tr {
                                td { (reward.reward_name) }
                                td data-testid="stock-left" { (stock(reward.remaining_stock, reward.total_stock)) }
                            }
                        }
                    }
                }
            }
            section aria-label="Failures by cause" {
                h2 { "Failures by cause" }
                table.list data-testid="by-cause" {
                    tbody {
                        @for group in &stats.failures_by_code {
                            tr { (failure_cause(group)) td { (group.count) } }
                        }
                    }
                }
            }
        }
    })
}
