//! `GET /api/v1/audit-logs` and its CSV export: the events side of the audit trail. The
//! handlers are bestow-core's (`audit_log_routes!`), shared with the auth service.

use bestow_core::ApiError;
use bestow_core::audit_log::AuditTrail;
use bestow_core::page::PageRequest;

use super::EventsState;
use crate::catalog::EventCatalog;
use crate::domain::view::exported_snapshot;

impl AuditTrail for EventCatalog {
    async fn audit_page(&self, query: &AuditQuery, page: PageRequest) -> Result<Page<AuditEntry>, ApiError> {
        Ok(self.audit_log(query, page).await?)
    }

    fn exported(entry: &mut AuditEntry) {
        entry.before.iter_mut().chain(entry.after.iter_mut()).for_each(exported_snapshot);
    }
}

bestow_core::audit_log_routes! {
    state: EventsState, trail: catalog;
    /// Events-side mutations by operators, admins and the platform itself, newest first
    /// (AUDITOR, ADMIN).
    list: "/api/v1/audit-logs" as "list_audit_logs";
    /// Every entry matching the filters of `GET /api/v1/audit-logs`, as CSV (AUDITOR, ADMIN).
    ///
    /// Streamed, newest first: every matching row, no pagination. Rewards in the snapshots
    /// carry no secret details (a coupon's code); staff read those in the API.
    export: "/api/v1/audit-logs/export" as "export_audit_logs", file "audit-logs.csv";
}
