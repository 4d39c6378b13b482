//! The storage port of service keys, a key as stored, and a key as clients read it
//! ([`ServiceKeyView`], [`CreatedServiceKey`]).

use async_trait::async_trait;
use bestow_kernel::audit::AuditEntry;
use bestow_kernel::ids::{ServiceKeyId, UserId};
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::StoreError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a key allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    /// `POST /api/v1/activities`.
    #[serde(rename = "activities:write")]
    ActivitiesWrite,
    /// `PATCH /api/v1/players/{userId}/properties`.
    #[serde(rename = "players:write")]
    PlayersWrite,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::ActivitiesWrite, Scope::PlayersWrite];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ActivitiesWrite => "activities:write",
            Scope::PlayersWrite => "players:write",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == text).ok_or_else(|| format!("unknown scope `{text}`"))
    }
}

/// A key as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceKey {
    /// `_id`.
    pub id: ServiceKeyId,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// `bestow_core::secret::digest` of the secret.
    pub secret_digest: String,
    pub created_at: DateTime<Utc>,
    /// The admin who created it.
    pub created_by: UserId,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key as listed: never its secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceKeyView {
    /// Identifier of the key.
    pub id: String,
    /// What the key is for.
    pub name: String,
    /// What the key allows.
    pub scopes: Vec<Scope>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// User id of the admin who created it.
    pub created_by: String,
    /// When it was revoked; null while it works.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&ServiceKey> for ServiceKeyView {
    fn from(key: &ServiceKey) -> Self {
        Self {
            id: key.id.to_string(),
            name: key.name.clone(),
            scopes: key.scopes.clone(),
            created_at: key.created_at,
            created_by: key.created_by.to_string(),
            revoked_at: key.revoked_at,
        }
    }
}

/// A key just created, with its secret: the only time the secret is shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedServiceKey {
    /// Identifier of the key.
    pub id: String,
    /// What the key is for.
    pub name: String,
    /// What the key allows.
    pub scopes: Vec<Scope>,
    /// Send it as `X-Api-Key`. Shown once; only its digest is stored.
    #[schema(example = "bsk_3q2-7wE…")]
    pub secret: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Storage of service keys.
#[async_trait]
pub trait ServiceKeyStore: Send + Sync {
    /// Inserts a new key and its audit entry in one transaction.
    async fn insert_service_key(&self, key: &ServiceKey, audit: &AuditEntry) -> Result<(), StoreError>;

    /// One page of keys, newest first, revoked ones included.
    async fn list_service_keys(&self, page: PageRequest) -> Result<Page<ServiceKey>, StoreError>;

    /// The key whose secret has `digest`, revoked or not.
    async fn service_key_by_digest(&self, digest: &str) -> Result<Option<ServiceKey>, StoreError>;

    /// The key with this id, revoked or not.
    async fn service_key(&self, id: &ServiceKeyId) -> Result<Option<ServiceKey>, StoreError>;

    /// Marks the key revoked at `at` and appends `audit`, in one transaction, if it is not
    /// revoked yet: `Conflict::AlreadyRevoked` when it is, `NotFound` for an unknown id.
    async fn revoke_service_key(
        &self,
        id: &ServiceKeyId,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;
}
