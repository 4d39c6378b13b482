//! `GET /api/v1/auth/audit-logs` and its CSV export: the auth side of the audit trail.

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

use super::AuthState;

pub(super) fn router() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new().routes(routes!(list_audit_logs)).routes(routes!(export_audit_logs))
}

/// Auth-side mutations (account creation, roles, activation, bootstrap), newest first
/// (AUDITOR, ADMIN).
#[utoipa::path(get, path = "/api/v1/auth/audit-logs", operation_id = "list_auth_audit_logs", tag = "audit", params(AuditQuery, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Page<AuditEntry>),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ))]
async fn list_audit_logs(
    _caller: Authorized<require::ReadAuditLogs>,
    State(state): State<AuthState>,
    ValidQuery(query): ValidQuery<AuditQuery>,
    ValidPage(page): ValidPage,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    Ok(Json(state.service.audit_log(&query, page).await?))
}

/// Every entry matching the filters of `GET /api/v1/auth/audit-logs`, as CSV (AUDITOR, ADMIN).
///
/// Streamed, newest first: every matching row, no pagination.
#[utoipa::path(get, path = "/api/v1/auth/audit-logs/export", operation_id = "export_auth_audit_logs", tag = "audit", params(AuditQuery),
    security(("bearer" = [])), responses(CsvDownload))]
async fn export_audit_logs(
    _caller: Authorized<require::ReadAuditLogs>,
    State(state): State<AuthState>,
    ValidQuery(query): ValidQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let export = CsvExport { filename: "auth-audit-logs.csv", columns: AUDIT_COLUMNS };
    export
        .stream((state.service, query.for_export()), |(service, query), page| async move {
            Ok(service.audit_log(&query, page).await?.items)
        })
        .await
}
