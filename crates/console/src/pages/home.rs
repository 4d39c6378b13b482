//! The landing page: what needs attention now. Events running, and those starting or ending
//! within a day; claims waiting for a person; claims that failed in the last day. Each part
//! shows what the signed-in role may read: a part the API refuses is left out.

use axum::response::Response;
use bestow_core::identity::Permission;
use bestow_events_domain::saga::ClaimStatus;
use bestow_events_domain::view::{ClaimView, EventView};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use http::StatusCode;
use maud::{Markup, html};

use super::claims::claims_table;
use super::events::stock;
use super::{segment, with_query};
use crate::api::{self, Failure};
use crate::layout::{self, Section, Zone};
use crate::session::Staff;

/// How far ahead "soon" looks, and how far back "recent" does, in hours.
const WINDOW_HOURS: i64 = 24;
/// Active events read for the overview (the earliest started first).
const EVENTS_READ: u64 = 100;
/// Failed claims listed; the rest are counted.
const FAILURES_LISTED: usize = 10;

/// The failures an operator acts on: the service, a partner or the stock failed the player.
/// A player's own refusals (not eligible, already claimed, inactive, event not active) are not
/// among them: they are the rules working.
const FAILURES: [ClaimStatus; 6] = [
    ClaimStatus::CompensationFailedManualInterventionRequired,
    ClaimStatus::FailedRolledBack,
    ClaimStatus::ConditionCheckFailedExternal,
    ClaimStatus::InventoryAllocationFailedOutOfStock,
    ClaimStatus::InventoryAllocationFailedConcurrency,
    ClaimStatus::InventoryAllocationError,
];

pub async fn show(staff: Staff) -> Response {
    layout::render(overview(&staff, Utc::now()).await)
}

/// What is coming for an event.
#[derive(Clone, Copy)]
enum Coming {
    Start,
    End,
}

/// Failed claims of the last day: the latest few, and how many of each status.
struct Failures {
    latest: Vec<ClaimView>,
    by_status: Vec<(ClaimStatus, u64)>,
    since: String,
}

async fn overview(staff: &Staff, now: DateTime<Utc>) -> Result<Markup, Failure> {
    let window = TimeDelta::hours(WINDOW_HOURS);
    let limit = EVENTS_READ.to_string();
    let active = api::events().query(&[("status", "ACTIVE"), ("sort", "startDate"), ("limit", &limit)]);
    let found = readable(staff.read(active).await)?;
    let events = found.as_ref().map(|found| found.items.as_slice()).unwrap_or_default();
    let mut running = Vec::new();
    let mut coming = Vec::new();
    for event in events {
        let (start, end) = (event.start_date, event.end_date);
        if start <= now && now < end {
            running.push((event, end));
            if end - now <= window {
                coming.push((event, Coming::End, end));
            }
        } else if now < start && start - now <= window {
            coming.push((event, Coming::Start, start));
        }
    }
    running.sort_by_key(|(_, end)| *end);
    coming.sort_by_key(|(_, _, at)| *at);
    let unread = found.as_ref().map_or(0, |found| found.total).saturating_sub(EVENTS_READ);

    let claims = staff.account.can(Permission::ReadAllClaims);
    let waiting = if claims {
        let queue = ClaimStatus::CompensationFailedManualInterventionRequired;
        readable(staff.read(api::claims().query(&[("status", queue.as_str()), ("limit", "1")])).await)?
            .map(|page| page.total)
    } else {
        None
    };
    let failures = if claims { recent_failures(staff, now - window).await? } else { None };

    let body = html! {
        h1 { "Welcome, " (staff.account.username) }
        p.hint { "As of " (layout::instant(&now.to_rfc3339_opts(SecondsFormat::Secs, true), Zone::Utc)) "." }
        div.cards {
            @if found.is_some() {
                a.card href="#running" {
                    span.figure data-testid="active-events" { (running.len()) }
                    span { "events running now" }
                }
                a.card href="#coming" {
                    span.figure data-testid="coming-count" { (coming.len()) }
                    span { "starting or ending within " (WINDOW_HOURS) " hours" }
                }
            }
            @if let Some(waiting) = waiting {
                a.card href="/console/claims/queue" {
                    span.figure data-testid="manual-queue" { (waiting) }
                    span { "claims waiting for a person" }
                }
            }
            @if let Some(failures) = &failures {
                a.card href="#failures" {
                    span.figure data-testid="failure-count" { (failures.by_status.iter().map(|(_, count)| count).sum::<u64>()) }
                    span { "claims failed in the last " (WINDOW_HOURS) " hours" }
                }
            }
        }
        @if found.is_some() {
            section #running aria-labelledby="running-title" {
                h2 #running-title { "Running now" }
                table.list data-testid="running" {
                    thead { tr { th { "Event" } th { "Ends" } th { "Time left" } th { "Stock left" } @if claims { th { "Dashboard" } } } }
                    tbody {
                        @for (event, end) in &running {
                            tr {
                                td { a href=(event_path(event)) { (event.event_name) } }
                                td { (layout::instant_at(event.end_date, Zone::of_event(&event.timezone))) }
                                td { (from_now(now, *end)) }
                                td { (stock_left(event)) }
                                @if claims { td { a href=(format!("{}/dashboard", event_path(event))) { "Dashboard" } } }
                            }
                        }
                        @if running.is_empty() { tr { td colspan="5" { "No event is running." } } }
                    }
                }
                @if unread > 0 {
                    p.hint { "Only the first " (EVENTS_READ) " active events by start are shown here; " a href="/console/events?status=ACTIVE" { "see them all" } "." }
                }
            }
            section #coming aria-labelledby="coming-title" {
                h2 #coming-title { "Starting or ending within " (WINDOW_HOURS) " hours" }
                table.list data-testid="coming" {
                    thead { tr { th { "Event" } th { "What" } th { "When" } th { "In" } } }
                    tbody {
                        @for (event, what, at) in &coming {
                            tr {
                                td { a href=(event_path(event)) { (event.event_name) } }
                                td { @match what { Coming::Start => { "Starts" } Coming::End => { "Ends" } } }
                                td { (layout::instant_at(*at, Zone::of_event(&event.timezone))) }
                                td { (from_now(now, *at)) }
                            }
                        }
                        @if coming.is_empty() { tr { td colspan="4" { "No active event starts or ends in the next " (WINDOW_HOURS) " hours." } } }
                    }
                }
            }
        }
        @if let Some(failures) = &failures {
            section #failures aria-labelledby="failures-title" {
                h2 #failures-title { "Failed in the last " (WINDOW_HOURS) " hours" }
                @if failures.latest.is_empty() {
                    p data-testid="no-failures" { "No claim failed." }
                } @else {
                    ul.counts data-testid="failures-by-status" {
                        @for (status, count) in &failures.by_status {
                            li {
                                a href=(with_query("/console/claims", &[("status", status.as_str()), ("from", &failures.since)])) {
                                    (layout::badge(status.as_str()))
                                }
                                " " (count)
                            }
                        }
                    }
                    (claims_table(&failures.latest))
                }
            }
        }
    };
    Ok(layout::page(staff, Section::Home, "Overview", body))
}

/// The claims that failed since `since` (see [`FAILURES`]); `None` when the API does not let
/// this role read claims.
async fn recent_failures(staff: &Staff, since: DateTime<Utc>) -> Result<Option<Failures>, Failure> {
    let since = since.to_rfc3339_opts(SecondsFormat::Secs, true);
    let limit = FAILURES_LISTED.to_string();
    let mut latest = Vec::new();
    let mut by_status = Vec::new();
    for status in FAILURES {
        let path = api::claims().query(&[("status", status.as_str()), ("from", &since), ("limit", &limit)]);
        let Some(page) = readable(staff.read(path).await)? else { return Ok(None) };
        if page.total > 0 {
            by_status.push((status, page.total));
        }
        latest.extend(page.items);
    }
    latest.sort_by_key(|claim| std::cmp::Reverse(claim.created_at));
    latest.truncate(FAILURES_LISTED);
    by_status.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    Ok(Some(Failures { latest, by_status, since }))
}

/// What the API answered, or `None` when it refuses this role (the part is left out).
fn readable<T>(answer: Result<T, Failure>) -> Result<Option<T>, Failure> {
    match answer {
        Ok(value) => Ok(Some(value)),
        Err(failure) if failure.status == StatusCode::FORBIDDEN => Ok(None),
        Err(failure) => Err(failure),
    }
}

fn event_path(event: &EventView) -> String {
    format!("/console/events/{}", segment(&event.id.to_string()))
}

/// The time until `at`, roughly: "in 12 min", "in 5 h 20 min", "in 3 days".
fn from_now(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let minutes = (at - now).num_minutes().max(0);
    match minutes {
        0 => "in less than a minute".to_owned(),
        1..60 => format!("in {minutes} min"),
        60..2880 => format!("in {} h {:02} min", minutes / 60, minutes % 60),
        2880..1_051_200 => format!("in {} days", minutes / 1440),
        _ => format!("in {} years", minutes / 525_960),
    }
}

/// The stock left of an event's limited rewards (its tiers' included), one line each.
fn stock_left(event: &EventView) -> Markup {
    let tiers = event.tiers.as_deref().unwrap_or_default();
    let rewards: Vec<_> = event
        .rewards
        .iter()
        .chain(tiers.iter().flat_map(|tier| &tier.rewards))
        .filter(|reward| reward.total_stock.is_some())
        .collect();
    html! {
        @if rewards.is_empty() { "unlimited" }
        @for (index, reward) in rewards.iter().enumerate() {
            @if index > 0 { br; }
            (reward.reward_name) ": " (stock(reward.remaining_stock, reward.total_stock))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_is_said_roughly() {
        let now = Utc::now();
        let after = |minutes: i64| from_now(now, now + TimeDelta::minutes(minutes));
        assert_eq!(after(0), "in less than a minute");
        assert_eq!(after(12), "in 12 min");
        assert_eq!(after(320), "in 5 h 20 min");
        assert_eq!(after(60 * 24 * 3 + 5), "in 3 days");
        assert_eq!(after(60 * 24 * 700), "in 700 days");
        assert_eq!(after(60 * 24 * 365 * 30), "in 29 years", "a year is 365.25 days");
        assert_eq!(after(-5), "in less than a minute", "never a negative time");
    }
}
