//! The audit-log resource both services answer: a page of entries and the CSV export of every
//! entry matching a filter, each for AUDITOR and ADMIN.
//!
//! The handlers are written once, in [`audit_log_routes!`]; a service names its state, the
//! field holding its [`AuditTrail`], the two paths with their operation ids and docs, and the
//! export's file name. What a service's entries need before they leave in a file is
//! [`AuditTrail::exported`].

use std::sync::Arc;

use axum::Json;
use axum::response::Response;

use crate::ApiError;
use crate::audit::{AUDIT_COLUMNS, AuditEntry, AuditQuery};
use crate::export::CsvExport;
use crate::page::{Page, PageRequest};

/// A service's audit trail as the audit-log resource reads it.
pub trait AuditTrail: Send + Sync + 'static {
    /// One page of the entries matching `query`, newest first.
    fn audit_page(
        &self,
        query: &AuditQuery,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<AuditEntry>, ApiError>> + Send;

    /// An entry as a CSV export shows it: unchanged, unless the service keeps something in
    /// its entries that a file must not carry.
    fn exported(_entry: &mut AuditEntry) {}
}

/// `GET …/audit-logs`: one page of entries.
pub async fn list<T: AuditTrail>(
    trail: &T,
    query: &AuditQuery,
    page: PageRequest,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    Ok(Json(trail.audit_page(query, page).await?))
}

/// `GET …/audit-logs/export`: every entry matching `query`, streamed as the CSV file `filename`.
pub async fn export<T: AuditTrail>(
    trail: Arc<T>,
    filename: &'static str,
    query: AuditQuery,
) -> Result<Response, ApiError> {
    let export = CsvExport { filename, columns: AUDIT_COLUMNS };
    export
        .stream((trail, query.for_export()), |(trail, query), page| async move {
            let mut entries = trail.audit_page(&query, page).await?.items;
            entries.iter_mut().for_each(T::exported);
            Ok(entries)
        })
        .await
}

/// Declares, in the calling module, the audit-log handlers of a service and their
/// `router()`: `state` is the service's router state, `trail` the field of it holding an
/// `Arc` of an [`AuditTrail`]; the doc comments before `list` and `export` become the
/// operations' OpenAPI summary and description.
///
/// ```ignore
/// bestow_core::audit_log_routes! {
///     state: AuthState, trail: service;
///     /// Auth-side mutations, newest first (AUDITOR, ADMIN).
///     list: "/api/v1/auth/audit-logs" as "list_auth_audit_logs";
///     /// Every entry matching the filters, as CSV (AUDITOR, ADMIN).
///     export: "/api/v1/auth/audit-logs/export" as "export_auth_audit_logs", file "auth-audit-logs.csv";
/// }
/// ```
#[macro_export]
macro_rules! audit_log_routes {
    (
        state: $state:ty, trail: $trail:ident;
        $(#[$list_doc:meta])*
        list: $list_path:literal as $list_operation:literal;
        $(#[$export_doc:meta])*
        export: $export_path:literal as $export_operation:literal, file $filename:literal;
    ) => {
        use $crate::audit::{AuditEntry, AuditQuery};
        use $crate::export::CsvDownload;
        use $crate::extract::{Authorized, require};
        use $crate::json::ValidQuery;
        use $crate::page::{Page, PageParams, ValidPage};
        use $crate::problem::Problem;

        pub(super) fn router() -> ::utoipa_axum::router::OpenApiRouter<$state> {
            ::utoipa_axum::router::OpenApiRouter::new()
                .routes(::utoipa_axum::routes!(list_audit_logs))
                .routes(::utoipa_axum::routes!(export_audit_logs))
        }

        $(#[$list_doc])*
        #[::utoipa::path(get, path = $list_path, operation_id = $list_operation, tag = "audit",
            params(AuditQuery, PageParams),
            security(("bearer" = [])),
            responses(
                (status = 200, body = Page<AuditEntry>),
                (status = 401, body = Problem), (status = 403, body = Problem),
            ))]
        async fn list_audit_logs(
            _caller: Authorized<require::ReadAuditLogs>,
            ::axum::extract::State(state): ::axum::extract::State<$state>,
            ValidQuery(query): ValidQuery<AuditQuery>,
            ValidPage(page): ValidPage,
        ) -> Result<::axum::Json<Page<AuditEntry>>, $crate::ApiError> {
            $crate::audit_log::list(&*state.$trail, &query, page).await
        }

        $(#[$export_doc])*
        #[::utoipa::path(get, path = $export_path, operation_id = $export_operation, tag = "audit",
            params(AuditQuery),
            security(("bearer" = [])), responses(CsvDownload))]
        async fn export_audit_logs(
            _caller: Authorized<require::ReadAuditLogs>,
            ::axum::extract::State(state): ::axum::extract::State<$state>,
            ValidQuery(query): ValidQuery<AuditQuery>,
        ) -> Result<::axum::response::Response, $crate::ApiError> {
            $crate::audit_log::export(state.$trail, $filename, query).await
        }
    };
}
