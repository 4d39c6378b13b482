//! `GET /api/v1/auth/audit-logs` and its CSV export: the auth side of the audit trail. The
//! handlers are bestow-core's (`audit_log_routes!`), shared with the events service.

use bestow_core::ApiError;
use bestow_core::audit_log::AuditTrail;
use bestow_core::page::PageRequest;

use super::AuthState;
use crate::service::AuthService;

impl AuditTrail for AuthService {
    async fn audit_page(&self, query: &AuditQuery, page: PageRequest) -> Result<Page<AuditEntry>, ApiError> {
        Ok(self.audit_log(query, page).await?)
    }
}

bestow_core::audit_log_routes! {
    state: AuthState, trail: service;
    /// Auth-side mutations (account creation, roles, activation, bootstrap), newest first
    /// (AUDITOR, ADMIN).
    list: "/api/v1/auth/audit-logs" as "list_auth_audit_logs";
    /// Every entry matching the filters of `GET /api/v1/auth/audit-logs`, as CSV (AUDITOR, ADMIN).
    ///
    /// Streamed, newest first: every matching row, no pagination.
    export: "/api/v1/auth/audit-logs/export" as "export_auth_audit_logs", file "auth-audit-logs.csv";
}
