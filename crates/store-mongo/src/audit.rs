//! `audit_logs`, the same collection in both databases: append-only, queried by time, actor
//! and target.

use bestow_kernel::audit::{AuditEntry, AuditQuery};
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::StoreError;
use bson::{Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::{date, find_page};
use crate::fields::{from_document, json, object_id, to_document};

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

/// An entry as stored; `before` and `after` are real documents.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditDocument {
    #[serde(rename = "_id", with = "object_id")]
    id: String,
    actor_id: String,
    actor_username: String,
    action: String,
    target_type: String,
    target_id: String,
    #[serde(default, with = "json")]
    before: Option<Value>,
    #[serde(default, with = "json")]
    after: Option<Value>,
    at: bson::DateTime,
    request_id: Option<String>,
}

impl From<&AuditEntry> for AuditDocument {
    fn from(entry: &AuditEntry) -> Self {
        Self {
            id: entry.id.clone(),
            actor_id: entry.actor_id.clone(),
            actor_username: entry.actor_username.clone(),
            action: entry.action.clone(),
            target_type: entry.target_type.clone(),
            target_id: entry.target_id.clone(),
            before: entry.before.clone(),
            after: entry.after.clone(),
            at: bson::DateTime::from_chrono(entry.at),
            request_id: entry.request_id.clone(),
        }
    }
}

impl From<AuditDocument> for AuditEntry {
    fn from(document: AuditDocument) -> Self {
        Self {
            id: document.id,
            actor_id: document.actor_id,
            actor_username: document.actor_username,
            action: document.action,
            target_type: document.target_type,
            target_id: document.target_id,
            before: document.before,
            after: document.after,
            at: document.at.to_chrono(),
            request_id: document.request_id,
        }
    }
}

const WHAT: &str = "audit";

/// The stored document of an entry.
pub(crate) fn audit_document(entry: &AuditEntry) -> Result<Document, StoreError> {
    to_document(&AuditDocument::from(entry), WHAT)
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
        .try_map(|entry| from_document::<AuditDocument>(entry, WHAT).map(AuditEntry::from))
}
