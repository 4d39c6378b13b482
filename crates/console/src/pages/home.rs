//! The landing page: what needs attention now.

use axum::response::Response;
use bestow_core::identity::Permission;
use maud::html;
use serde_json::Value;

use crate::api::Failure;
use crate::layout::{self, Section};
use crate::session::Staff;

pub async fn show(staff: Staff) -> Response {
    layout::render(overview(&staff).await)
}

async fn overview(staff: &Staff) -> Result<maud::Markup, Failure> {
    let count = |path: &'static str| async move { staff.get::<Value>(path).await.map(|page| page["total"].as_u64()) };
    let active = count("/api/v1/events?status=ACTIVE&limit=1").await?;
    let stuck = if staff.account.can(Permission::ReadAllClaims) {
        count("/api/v1/claims?status=COMPENSATION_FAILED_MANUAL_INTERVENTION_REQUIRED&limit=1").await?
    } else {
        None
    };
    let body = html! {
        h1 { "Welcome, " (staff.account.username) }
        div.cards {
            a.card href="/console/events?status=ACTIVE" {
                span.figure data-testid="active-events" { (active.unwrap_or(0)) }
                span { "active events" }
            }
            @if let Some(stuck) = stuck {
                a.card href="/console/claims/queue" {
                    span.figure data-testid="manual-queue" { (stuck) }
                    span { "claims waiting for a person" }
                }
            }
        }
    };
    Ok(layout::page(staff, Section::Home, "Overview", body))
}
