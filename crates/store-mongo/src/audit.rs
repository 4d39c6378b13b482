//! `audit_logs`, the same collection in both databases: append-only, queried by time, actor
//! and target.

use bestow_kernel::audit::{AuditEntry, AuditQuery};
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::StoreError;
use bson::{Bson, Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};

use crate::common::{bson_to_json, corrupt, date, find_page, id_bson, json_to_bson, read_date, read_id, text};

pub(crate) const AUDIT_LOGS: &str = "audit_logs";

pub(crate) fn audit_indexes() -> Vec<IndexModel> {
    let named = |keys: Document, name: &str| {
        IndexModel::builder().keys(keys).options(IndexOptions::builder().name(name.to_owned()).build()).build()
    };
    vec![
        named(doc! { "at": -1, "_id": -1 }, "audit_logs_at"),
        named(doc! { "actorId": 1, "at": -1 }, "audit_logs_actor"),
        named(doc! { "targetId": 1, "at": -1 }, "audit_logs_target"),
    ]
}

/// The stored document of an entry; `before` and `after` are real documents.
pub(crate) fn audit_document(entry: &AuditEntry) -> Document {
    doc! {
        "_id": id_bson(&entry.id),
        "actorId": &entry.actor_id,
        "actorUsername": &entry.actor_username,
        "action": &entry.action,
        "targetType": &entry.target_type,
        "targetId": &entry.target_id,
        "before": entry.before.as_ref().map_or(Bson::Null, json_to_bson),
        "after": entry.after.as_ref().map_or(Bson::Null, json_to_bson),
        "at": date(entry.at),
        "requestId": entry.request_id.as_ref().map_or(Bson::Null, |id| Bson::String(id.clone())),
    }
}

fn audit_from_document(document: &Document) -> Result<AuditEntry, StoreError> {
    const WHAT: &str = "audit";
    let json = |key: &str| match document.get(key) {
        None | Some(Bson::Null) => None,
        Some(value) => Some(bson_to_json(value)),
    };
    Ok(AuditEntry {
        id: read_id(document, WHAT)?,
        actor_id: text(document, "actorId", WHAT)?,
        actor_username: text(document, "actorUsername", WHAT)?,
        action: text(document, "action", WHAT)?,
        target_type: text(document, "targetType", WHAT)?,
        target_id: text(document, "targetId", WHAT)?,
        before: json("before"),
        after: json("after"),
        at: read_date(document, "at", WHAT)?,
        request_id: match document.get("requestId") {
            None | Some(Bson::Null) => None,
            Some(Bson::String(id)) => Some(id.clone()),
            Some(other) => return Err(corrupt(WHAT, format!("requestId is {other}"))),
        },
    })
}

/// Entries matching `query`, newest first.
pub(crate) async fn list_audit(
    collection: &Collection<Document>,
    query: &AuditQuery,
    page: PageRequest,
) -> Result<Page<AuditEntry>, StoreError> {
    let mut filter = Document::new();
    if let Some(actor) = &query.actor {
        filter.insert("actorId", actor);
    }
    if let Some(action) = &query.action {
        filter.insert("action", action);
    }
    if let Some(target) = &query.target_id {
        filter.insert("targetId", target);
    }
    let mut at = Document::new();
    if let Some(from) = query.from {
        at.insert("$gte", date(from));
    }
    if let Some(to) = query.to {
        at.insert("$lt", date(to));
    }
    if !at.is_empty() {
        filter.insert("at", at);
    }
    find_page(collection, filter, doc! { "at": -1, "_id": -1 }, page)
        .await?
        .try_map(|entry| audit_from_document(&entry))
}
