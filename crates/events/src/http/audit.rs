//! `GET /api/v1/audit-logs` and its CSV export: the events side of the audit trail.

use crate::domain::view::exported_snapshot;
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use bestow_core::ApiError;
use bestow_core::audit::{AUDIT_COLUMNS, AuditEntry, AuditQuery};
use bestow_core::export::{CsvDownload, CsvExport};
use bestow_core::extract::{Authorized, require};
use bestow_core::json::ValidQuery;
use bestow_core::page::{Page, PageParams, ValidPage};
use bestow_core::problem::Problem;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::EventsState;

pub(super) fn router() -> OpenApiRouter<EventsState> {
    OpenApiRouter::new().routes(routes!(list_audit_logs)).routes(routes!(export_audit_logs))
}

/// Events-side mutations by operators, admins and the platform itself, newest first
/// (AUDITOR, ADMIN).
#[utoipa::path(get, path = "/api/v1/audit-logs", tag = "audit", params(AuditQuery, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Page<AuditEntry>),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ))]
async fn list_audit_logs(
    _caller: Authorized<require::ReadAuditLogs>,
    State(state): State<EventsState>,
    ValidQuery(query): ValidQuery<AuditQuery>,
    ValidPage(page): ValidPage,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    Ok(Json(state.catalog.audit_log(&query, page).await?))
}

/// Every entry matching the filters of `GET /api/v1/audit-logs`, as CSV (AUDITOR, ADMIN).
///
/// Streamed, newest first: every matching row, no pagination. Rewards in the snapshots
/// carry no secret details (a coupon's code); staff read those in the API.
#[utoipa::path(get, path = "/api/v1/audit-logs/export", tag = "audit", params(AuditQuery),
    security(("bearer" = [])), responses(CsvDownload))]
async fn export_audit_logs(
    _caller: Authorized<require::ReadAuditLogs>,
    State(state): State<EventsState>,
    ValidQuery(query): ValidQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let export = CsvExport { filename: "audit-logs.csv", columns: AUDIT_COLUMNS };
    export
        .stream((state.catalog, query.for_export()), |(catalog, query), page| async move {
            let mut entries = catalog.audit_log(&query, page).await?.items;
            for entry in &mut entries {
                entry.before.iter_mut().chain(entry.after.iter_mut()).for_each(exported_snapshot);
            }
            Ok(entries)
        })
        .await
}
