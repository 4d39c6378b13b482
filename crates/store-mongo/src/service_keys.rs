//! `event_db`: the MongoDB adapter of [`ServiceKeyStore`] (`service_keys`): keys of game
//! servers, found by the digest of their secret, revoked once and never deleted.

use async_trait::async_trait;
use bestow_events_domain::ports::service_keys::{Scope, ServiceKey, ServiceKeyStore};
use bestow_kernel::audit::AuditEntry;
use bestow_kernel::ids::{ServiceKeyId, UserId};
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::audit_document;
use crate::common::{TxResult, corrupt, date, find_page, id_bson, in_transaction, insert_audited, map_error};
use crate::event_db::MongoEventStore;
use crate::fields::{from_document, object_id, to_document};

/// A key as stored in `service_keys`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceKeyDocument {
    #[serde(rename = "_id", with = "object_id")]
    id: String,
    name: String,
    scopes: Vec<String>,
    secret_digest: String,
    created_at: bson::DateTime,
    created_by: UserId,
    revoked_at: Option<bson::DateTime>,
}

impl From<&ServiceKey> for ServiceKeyDocument {
    fn from(key: &ServiceKey) -> Self {
        Self {
            id: key.id.to_string(),
            name: key.name.clone(),
            scopes: key.scopes.iter().map(|scope| scope.as_str().to_owned()).collect(),
            secret_digest: key.secret_digest.clone(),
            created_at: bson::DateTime::from_chrono(key.created_at),
            created_by: key.created_by.clone(),
            revoked_at: key.revoked_at.map(bson::DateTime::from_chrono),
        }
    }
}

impl TryFrom<ServiceKeyDocument> for ServiceKey {
    type Error = StoreError;

    fn try_from(document: ServiceKeyDocument) -> Result<Self, StoreError> {
        Ok(Self {
            scopes: document
                .scopes
                .iter()
                .map(|scope| scope.parse::<Scope>().map_err(|e| corrupt(WHAT, e)))
                .collect::<Result<_, _>>()?,
            id: ServiceKeyId::parse(&document.id).map_err(|e| corrupt(WHAT, e))?,
            name: document.name,
            secret_digest: document.secret_digest,
            created_at: document.created_at.to_chrono(),
            created_by: document.created_by,
            revoked_at: document.revoked_at.map(|at| at.to_chrono()),
        })
    }
}

const WHAT: &str = "service key";

fn key_from_document(document: Document) -> Result<ServiceKey, StoreError> {
    from_document::<ServiceKeyDocument>(document, WHAT)?.try_into()
}

#[async_trait]
impl ServiceKeyStore for MongoEventStore {
    async fn insert_service_key(&self, key: &ServiceKey, audit: &AuditEntry) -> Result<(), StoreError> {
        self.ready().await?;
        let (key, audit) = (to_document(&ServiceKeyDocument::from(key), WHAT)?, audit_document(audit)?);
        insert_audited(&self.client, (&self.keys, key), (&self.audit, audit), Conflict::KeyDigest).await
    }

    async fn list_service_keys(&self, page: PageRequest) -> Result<Page<ServiceKey>, StoreError> {
        self.ready().await?;
        let newest_first = doc! { "createdAt": -1, "_id": -1 };
        find_page(&self.keys, doc! {}, newest_first, page).await?.try_map(key_from_document)
    }

    async fn service_key_by_digest(&self, digest: &str) -> Result<Option<ServiceKey>, StoreError> {
        self.ready().await?;
        let found = self.keys.find_one(doc! { "secretDigest": digest }).await.map_err(map_error)?;
        found.map(key_from_document).transpose()
    }

    async fn service_key(&self, id: &ServiceKeyId) -> Result<Option<ServiceKey>, StoreError> {
        self.ready().await?;
        let found = self.keys.find_one(doc! { "_id": id_bson(id.as_str()) }).await.map_err(map_error)?;
        found.map(key_from_document).transpose()
    }

    async fn revoke_service_key(
        &self,
        id: &ServiceKeyId,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        self.ready().await?;
        let (id, audit) = (id_bson(id.as_str()), audit_document(audit)?);
        in_transaction(&self.client, |session| {
            let (keys, logs, id, audit) = (self.keys.clone(), self.audit.clone(), id.clone(), audit.clone());
            Box::pin(async move {
                let written = keys
                    .update_one(
                        doc! { "_id": id.clone(), "revokedAt": Bson::Null },
                        doc! { "$set": { "revokedAt": date(at) } },
                    )
                    .session(&mut *session)
                    .await?;
                if written.matched_count == 0 {
                    let known = keys.find_one(doc! { "_id": id }).session(&mut *session).await?.is_some();
                    let refusal =
                        if known { StoreError::Conflict(Conflict::AlreadyRevoked) } else { StoreError::NotFound };
                    return Err(refusal.into());
                }
                logs.insert_one(audit).session(&mut *session).await?;
                TxResult::Ok(())
            })
        })
        .await
    }
}
