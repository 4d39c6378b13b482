//! Service API keys: the credentials game servers present (`X-Api-Key`) to push activities.
//!
//! An admin creates a key with a name and scopes; its secret (`bsk_` + 256 random bits) is
//! returned once and only its SHA-256 digest is stored, so a leaked database reveals no usable
//! key. Keys are revoked, never deleted: a revoked key stays listed and fails authentication.
//! Creation and revocation are audited in the events audit log.

use std::sync::Arc;

use bestow_core::audit::AuditActor;
use bestow_core::ids::{ServiceKeyId, UserId};
use bestow_core::page::{Page, PageRequest};
use bestow_core::store::{Conflict, StoreError};
use bestow_core::time::Clock;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::validation::{FieldError, check_text};

/// Prefix of every secret, so a leaked one is recognisable (e.g. by secret scanners).
pub const SECRET_PREFIX: &str = "bsk_";
/// Longest key name, in characters.
pub const MAX_KEY_NAME_CHARS: usize = 100;

pub use crate::domain::ports::service_keys::{CreatedServiceKey, Scope, ServiceKey, ServiceKeyStore, ServiceKeyView};

/// A new key, as an admin asks for it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceKeyInput {
    /// What the key is for, e.g. the game server that holds it; at most 100 characters.
    #[schema(example = "game-server-eu", min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    /// At least one of: `activities:write`.
    #[schema(example = json!(["activities:write"]), min_items = 1)]
    pub scopes: Vec<Scope>,
}

/// The audit snapshot of a key (never the secret or its digest).
fn snapshot(key: &ServiceKey) -> Value {
    serde_json::to_value(ServiceKeyView::from(key)).unwrap_or(Value::Null)
}

/// Why a service-key use case failed. The HTTP layer (`crate::http::errors`) maps each to its
/// problem details.
#[derive(Debug, thiserror::Error)]
pub enum ServiceKeyError {
    /// Bad field values, each at its JSON pointer.
    #[error("request validation failed")]
    Invalid(Vec<FieldError>),
    #[error("no such service key")]
    NotFound,
    /// An unknown or revoked key: the caller is not authenticated.
    #[error("the API key is invalid or revoked")]
    Refused,
    /// A working key without the scope the route needs.
    #[error("the API key does not allow this")]
    ScopeMissing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creating, listing, revoking and checking service keys.
pub struct ServiceKeys {
    store: Arc<dyn ServiceKeyStore>,
    /// Stamps creations and revocations.
    clock: Clock,
}

impl std::fmt::Debug for ServiceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceKeys").finish_non_exhaustive()
    }
}

impl ServiceKeys {
    pub fn new(store: Arc<dyn ServiceKeyStore>, clock: Clock) -> Self {
        Self { store, clock }
    }

    /// Creates a key and returns it with its secret.
    pub async fn create(
        &self,
        actor: &AuditActor,
        input: ServiceKeyInput,
    ) -> Result<CreatedServiceKey, ServiceKeyError> {
        let mut errors = Vec::new();
        check_text(&input.name, "/name", MAX_KEY_NAME_CHARS).unwrap_or_else(|e| errors.push(e));
        if input.scopes.is_empty() {
            errors.push(FieldError::new("/scopes", "required", "must name at least one scope"));
        }
        if !errors.is_empty() {
            return Err(ServiceKeyError::Invalid(errors));
        }
        let mut scopes: Vec<Scope> = Vec::with_capacity(input.scopes.len());
        for scope in input.scopes {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        let secret = format!("{SECRET_PREFIX}{}", bestow_core::secret::random_token());
        let key = ServiceKey {
            id: ServiceKeyId::generate(),
            name: input.name.trim().to_owned(),
            scopes,
            secret_digest: bestow_core::secret::digest(&secret),
            created_at: self.clock.now(),
            created_by: UserId::parse(&actor.actor_id).map_err(|e| StoreError::Unavailable(e.to_string()))?,
            revoked_at: None,
        };
        let audit = actor.entry("service_key.create", ("service_key", key.id.as_str()), None, Some(snapshot(&key)));
        self.store.insert_service_key(&key, &audit).await?;
        Ok(CreatedServiceKey {
            id: key.id.to_string(),
            name: key.name,
            scopes: key.scopes,
            secret,
            created_at: key.created_at,
        })
    }

    /// One page of keys, newest first.
    pub async fn list(&self, page: PageRequest) -> Result<Page<ServiceKeyView>, ServiceKeyError> {
        Ok(self.store.list_service_keys(page).await?.map(|key| ServiceKeyView::from(&key)))
    }

    /// Revokes a key; revoking a revoked key changes nothing.
    pub async fn revoke(&self, actor: &AuditActor, id: &str) -> Result<(), ServiceKeyError> {
        let Ok(id) = ServiceKeyId::parse(id) else { return Err(ServiceKeyError::NotFound) };
        let key = self.store.service_key(&id).await?.ok_or(ServiceKeyError::NotFound)?;
        if key.revoked_at.is_some() {
            return Ok(());
        }
        let at = self.clock.now();
        let revoked = ServiceKey { revoked_at: Some(at), ..key.clone() };
        let audit = actor.entry(
            "service_key.revoke",
            ("service_key", key.id.as_str()),
            Some(snapshot(&key)),
            Some(snapshot(&revoked)),
        );
        match self.store.revoke_service_key(&key.id, at, &audit).await {
            // A revocation that came first stands.
            Ok(()) | Err(StoreError::Conflict(Conflict::AlreadyRevoked)) => Ok(()),
            Err(StoreError::NotFound) => Err(ServiceKeyError::NotFound),
            Err(other) => Err(other.into()),
        }
    }

    /// The key `secret` belongs to, if it is not revoked and holds `scope`.
    pub async fn authenticate(&self, secret: &str, scope: Scope) -> Result<ServiceKey, ServiceKeyError> {
        if !secret.starts_with(SECRET_PREFIX) {
            return Err(ServiceKeyError::Refused);
        }
        let key = self.store.service_key_by_digest(&bestow_core::secret::digest(secret)).await?;
        match key {
            Some(key) if key.revoked_at.is_none() && key.scopes.contains(&scope) => Ok(key),
            Some(key) if key.revoked_at.is_none() => Err(ServiceKeyError::ScopeMissing),
            _ => Err(ServiceKeyError::Refused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_and_write_their_names() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
            assert_eq!(serde_json::to_value(scope).ok(), Some(Value::String(scope.as_str().to_owned())));
        }
        assert!("activities:read".parse::<Scope>().is_err());
    }
}
