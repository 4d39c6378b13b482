//! The audit log of both services in one view, newest first, before and after side by side.

use axum::Router;
use axum::extract::Query;
use axum::response::Response;
use axum::routing::get;
use bestow_core::audit::AuditEntry;
use maud::{Markup, html};

use super::filters::Filters;
use crate::ConsoleState;
use crate::api::{self, Call, Failure};
use crate::layout::{self, Section, Zone};
use crate::session::Staff;

/// Entries read from each service per page.
const PER_SERVICE: u32 = 25;

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/console/audit", get(show))
        .route("/console/audit/export/events", get(export_events))
        .route("/console/audit/export/auth", get(export_auth))
}

/// The audit lists' filters, as both services take them.
const AUDIT_FILTERS: [&str; 5] = ["actor", "action", "targetId", "from", "to"];

async fn show(staff: Staff, Query(query): Query<Vec<(String, String)>>) -> Response {
    layout::render(audit_page(&staff, &Filters::read(&query, &AUDIT_FILTERS)).await)
}

/// The events service's audit log as CSV, streamed from the API.
async fn export_events(staff: Staff, Query(query): Query<Vec<(String, String)>>) -> Response {
    staff.forward(Call::get(Filters::read(&query, &AUDIT_FILTERS).on("/api/v1/audit-logs/export"))).await
}

/// The auth service's audit log as CSV, streamed from the API.
async fn export_auth(staff: Staff, Query(query): Query<Vec<(String, String)>>) -> Response {
    staff.forward(Call::get(Filters::read(&query, &AUDIT_FILTERS).on("/api/v1/auth/audit-logs/export"))).await
}

async fn audit_page(staff: &Staff, filters: &Filters) -> Result<Markup, Failure> {
    let events = staff.read(filters.page_of(api::events_audit_log(), PER_SERVICE)).await?;
    let auth = staff.read(filters.page_of(api::auth_audit_log(), PER_SERVICE)).await?;
    let mut entries: Vec<(&str, &AuditEntry)> = Vec::new();
    for (service, found) in [("events", &events), ("auth", &auth)] {
        entries.extend(found.items.iter().map(|entry| (service, entry)));
    }
    entries.sort_by_key(|(_, entry)| std::cmp::Reverse(entry.at));
    let total = events.total + auth.total;
    let longest = events.total.max(auth.total);
    let body = html! {
        div.heading {
            h1 { "Audit log" }
            nav.actions aria-label="Exports" {
                a.button href=(filters.on("/console/audit/export/events")) download { "Export events CSV" }
                a.button href=(filters.on("/console/audit/export/auth")) download { "Export accounts CSV" }
            }
        }
        form.filters method="get" action="/console/audit" role="search" {
            (filters.text_input("actor", "Actor id", ""))
            (filters.text_input("action", "Action", "claim.resolve"))
            (filters.text_input("targetId", "Target id", ""))
            (filters.text_input("from", "From (RFC 3339)", "2026-12-01T00:00:00Z"))
            (filters.text_input("to", "To", ""))
            button type="submit" { "Filter" }
        }
        p.hint { (total) " entries in all, from both services." }
        table.list.audit data-testid="audit" {
            thead { tr { th { "When" } th { "Service" } th { "Actor" } th { "Action" } th { "Target" } th { "Before" } th { "After" } } }
            tbody {
                @for (service, entry) in &entries {
                    tr {
                        td { (layout::instant_at(entry.at, Zone::Utc)) }
                        td { (service) }
                        td { (entry.actor_username) }
                        td { code { (entry.action) } }
                        td { (entry.target_type) " " code { (entry.target_id) } }
                        td { (layout::json_block(&entry.before, &format!("Before {}, entry {}", entry.action, entry.id))) }
                        td { (layout::json_block(&entry.after, &format!("After {}, entry {}", entry.action, entry.id))) }
                    }
                }
                @if entries.is_empty() { tr { td colspan="7" { "No entries match." } } }
            }
        }
        (layout::pager(&filters.on("/console/audit"), filters.page, PER_SERVICE, longest))
    };
    Ok(layout::page(staff, Section::AuditLog, "Audit log", body))
}
