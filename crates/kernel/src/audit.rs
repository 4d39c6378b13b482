//! The audit trail both services keep: who changed what, when, from what to what.
//!
//! Entries are append-only. `before` and `after` are JSON snapshots of the target as a client
//! would see it (never secrets or hashes).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::identity::Principal;

/// One audited mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Identifier of the entry.
    pub id: String,
    /// `users._id` of the actor, or `system` for start-up bootstrap.
    pub actor_id: String,
    /// Username of the actor at the time.
    pub actor_username: String,
    /// Dotted action name, e.g. `user.roles.set`, `event.create`.
    pub action: String,
    /// Kind of the target, e.g. `user`, `event`.
    pub target_type: String,
    /// Identifier of the target.
    pub target_id: String,
    /// The target before the change (absent for a creation).
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// The target after the change (absent for a deletion).
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    /// When the change was committed.
    pub at: DateTime<Utc>,
    /// The `x-request-id` of the HTTP request that caused it, when there was one.
    pub request_id: Option<String>,
}

/// Who did it and in which request: what a service hands a store with each audited write.
#[derive(Debug, Clone)]
pub struct AuditActor {
    pub actor_id: String,
    pub actor_username: String,
    pub request_id: Option<String>,
}

impl AuditActor {
    pub fn user(principal: &Principal, request_id: Option<String>) -> Self {
        Self { actor_id: principal.user_id.to_string(), actor_username: principal.username.clone(), request_id }
    }

    /// A game server, by the id and name of the service key it presented.
    pub fn service_key(key_id: &str, key_name: &str, request_id: Option<String>) -> Self {
        Self { actor_id: key_id.to_owned(), actor_username: format!("service key {key_name}"), request_id }
    }

    /// The platform itself (start-up bootstrap, command-line administration).
    pub fn system(name: &str) -> Self {
        Self { actor_id: "system".to_owned(), actor_username: name.to_owned(), request_id: None }
    }

    /// A complete entry for `action` on `target`.
    pub fn entry(&self, action: &str, target: (&str, &str), before: Option<Value>, after: Option<Value>) -> AuditEntry {
        AuditEntry {
            id: crate::ids::new_object_id(),
            actor_id: self.actor_id.clone(),
            actor_username: self.actor_username.clone(),
            action: action.to_owned(),
            target_type: target.0.to_owned(),
            target_id: target.1.to_owned(),
            before,
            after,
            at: crate::time::now(),
            request_id: self.request_id.clone(),
        }
    }
}

/// Filters of `GET …/audit-logs` (pagination comes separately, as `bestow_core::page::PageParams`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Actor user id.
    pub actor: Option<String>,
    /// Exact action name.
    pub action: Option<String>,
    pub target_id: Option<String>,
    /// Entries at or after this instant (RFC 3339, years 1970–9999).
    #[serde(default, deserialize_with = "crate::time::bounded_option")]
    pub from: Option<DateTime<Utc>>,
    /// Entries before this instant (RFC 3339, years 1970–9999).
    #[serde(default, deserialize_with = "crate::time::bounded_option")]
    pub to: Option<DateTime<Utc>>,
}

impl AuditQuery {
    /// The query an export runs with: these filters, up to the export's start
    /// ([`crate::time::up_to_now`]).
    pub fn for_export(self) -> Self {
        Self { to: crate::time::up_to_now(self.to), ..self }
    }
}

/// The columns of `GET …/audit-logs/export`: [`AuditEntry`]'s field names, `before` and `after`
/// (JSON cells) last since they are the widest.
pub const AUDIT_COLUMNS: &[&str] =
    &["id", "at", "actorId", "actorUsername", "action", "targetType", "targetId", "requestId", "before", "after"];
