//! The audit tables both databases keep (`auth_db.audit_logs`, `event_db.audit_logs`), created by
//! `migrations/audit_logs.sql`: append-only, queried by time, actor and target.

use bestow_kernel::audit::{AuditEntry, AuditQuery};
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::StoreError;
use rusqlite::{Connection, Row, params};

use crate::columns::NamedColumns;
use crate::database::{map_error, to_text};
use crate::filters::Filters;

/// Appends one entry (inside the caller's transaction).
pub(crate) fn insert_audit(connection: &Connection, entry: &AuditEntry) -> Result<(), StoreError> {
    connection
        .execute(
            "INSERT INTO audit_logs (_id, actorId, actorUsername, action, targetType, targetId, before, after, at, requestId)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                entry.id,
                entry.actor_id,
                entry.actor_username,
                entry.action,
                entry.target_type,
                entry.target_id,
                entry.before.as_ref().map(ToString::to_string),
                entry.after.as_ref().map(ToString::to_string),
                to_text(entry.at),
                entry.request_id,
            ],
        )
        .map_err(map_error)?;
    Ok(())
}

fn audit_from_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.get("_id")?,
        actor_id: row.get("actorId")?,
        actor_username: row.get("actorUsername")?,
        action: row.get("action")?,
        target_type: row.get("targetType")?,
        target_id: row.get("targetId")?,
        before: row.optional_json("before")?,
        after: row.optional_json("after")?,
        at: row.time("at")?,
        request_id: row.get("requestId")?,
    })
}

/// Lists audit entries of `table` matching `query`, newest first. Shared by both services'
/// audit tables, which have the same shape.
pub(crate) fn list_audit(
    connection: &Connection,
    table: &str,
    query: &AuditQuery,
    page: PageRequest,
) -> Result<Page<AuditEntry>, StoreError> {
    let mut filters = Filters::default();
    if let Some(actor) = &query.actor {
        filters.add("actorId = ?", actor.clone());
    }
    if let Some(action) = &query.action {
        filters.add("action = ?", action.clone());
    }
    if let Some(target) = &query.target_id {
        filters.add("targetId = ?", target.clone());
    }
    if let Some(from) = query.from {
        filters.add("at >= ?", to_text(from));
    }
    if let Some(to) = query.to {
        filters.add("at < ?", to_text(to));
    }
    let columns = "_id, actorId, actorUsername, action, targetType, targetId, before, after, at, requestId";
    let sql = filters.page_sql(columns, table, "at DESC, _id DESC");
    filters.select_page(connection, table, &sql, page, audit_from_row)
}
