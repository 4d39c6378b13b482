//! The audit log of both services in one view, newest first, before and after side by side.

use axum::Router;
use axum::extract::Query;
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::{text, with_query};
use crate::ConsoleState;
use crate::api::{Call, Failure};
use crate::layout::{self, Section};
use crate::session::Staff;

/// Entries read from each service per page.
const PER_SERVICE: u32 = 25;

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/console/audit", get(show))
        .route("/console/audit/export/events", get(export_events))
        .route("/console/audit/export/auth", get(export_auth))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuditSearch {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target_id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: Option<u32>,
}

impl AuditSearch {
    fn filters(&self) -> [(&'static str, &str); 5] {
        [
            ("actor", &self.actor),
            ("action", &self.action),
            ("targetId", &self.target_id),
            ("from", &self.from),
            ("to", &self.to),
        ]
    }
}

async fn show(staff: Staff, Query(query): Query<AuditSearch>) -> Response {
    layout::render(audit_page(&staff, &query).await)
}

/// The events service's audit log as CSV, streamed from the API.
async fn export_events(staff: Staff, Query(query): Query<AuditSearch>) -> Response {
    staff.forward(Call::get(with_query("/api/v1/audit-logs/export", &query.filters()))).await
}

/// The auth service's audit log as CSV, streamed from the API.
async fn export_auth(staff: Staff, Query(query): Query<AuditSearch>) -> Response {
    staff.forward(Call::get(with_query("/api/v1/auth/audit-logs/export", &query.filters()))).await
}

async fn audit_page(staff: &Staff, query: &AuditSearch) -> Result<Markup, Failure> {
    let page = query.page.unwrap_or(1);
    let (page_text, limit) = (page.to_string(), PER_SERVICE.to_string());
    let mut params = query.filters().to_vec();
    params.extend([("page", page_text.as_str()), ("limit", limit.as_str())]);
    let events: Value = staff.get(with_query("/api/v1/audit-logs", &params)).await?;
    let auth: Value = staff.get(with_query("/api/v1/auth/audit-logs", &params)).await?;
    let mut entries: Vec<(&str, &Value)> = Vec::new();
    for (service, found) in [("events", &events), ("auth", &auth)] {
        entries.extend(
            found["items"].as_array().map(Vec::as_slice).unwrap_or_default().iter().map(|entry| (service, entry)),
        );
    }
    // RFC 3339 instants in UTC sort as text.
    entries.sort_by(|(_, a), (_, b)| text(b, "at").cmp(text(a, "at")));
    let total = events["total"].as_u64().unwrap_or(0) + auth["total"].as_u64().unwrap_or(0);
    let longest = events["total"].as_u64().unwrap_or(0).max(auth["total"].as_u64().unwrap_or(0));
    let body = html! {
        div.heading {
            h1 { "Audit log" }
            nav.actions aria-label="Exports" {
                a.button href=(with_query("/console/audit/export/events", &query.filters())) download { "Export events CSV" }
                a.button href=(with_query("/console/audit/export/auth", &query.filters())) download { "Export accounts CSV" }
            }
        }
        form.filters method="get" action="/console/audit" role="search" {
            label for="actor" { "Actor id" }
            input #actor name="actor" value=(query.actor);
            label for="action" { "Action" }
            input #action name="action" value=(query.action);
            label for="targetId" { "Target id" }
            input #targetId name="targetId" value=(query.target_id);
            label for="from" { "From (RFC 3339)" }
            input #from name="from" value=(query.from);
            label for="to" { "To" }
            input #to name="to" value=(query.to);
            button type="submit" { "Filter" }
        }
        p.hint { (total) " entries in all, from both services." }
        table.list.audit data-testid="audit" {
            thead { tr { th { "When" } th { "Service" } th { "Actor" } th { "Action" } th { "Target" } th { "Before" } th { "After" } } }
            tbody {
                @for (service, entry) in &entries {
                    tr {
                        td { (text(entry, "at")) }
                        td { (service) }
                        td { (text(entry, "actorUsername")) }
                        td { code { (text(entry, "action")) } }
                        td { (text(entry, "targetType")) " " code { (text(entry, "targetId")) } }
                        td { (layout::json_block(&entry["before"])) }
                        td { (layout::json_block(&entry["after"])) }
                    }
                }
                @if entries.is_empty() { tr { td colspan="7" { "No entries match." } } }
            }
        }
        (layout::pager(&with_query("/console/audit", &query.filters()), page, PER_SERVICE, longest))
    };
    Ok(layout::page(staff, Section::AuditLog, "Audit log", body))
}
