//! `event_db`: the MongoDB adapter of [`ServiceKeyStore`] (`service_keys`): keys of game
//! servers, found by the digest of their secret, revoked once and never deleted.

use async_trait::async_trait;
use bestow_events_domain::ports::service_keys::{Scope, ServiceKey, ServiceKeyStore};
use bestow_kernel::audit::AuditEntry;
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};

use crate::audit::audit_document;
use crate::common::{
    TxResult, corrupt, date, find_page, id_bson, in_transaction, insert_audited, map_error, optional_date, read_date,
    read_id, read_optional_date, text,
};
use crate::event_db::MongoEventStore;

fn key_document(key: &ServiceKey) -> Document {
    doc! {
        "_id": id_bson(&key.id),
        "name": &key.name,
        "scopes": key.scopes.iter().map(|s| Bson::String(s.as_str().to_owned())).collect::<Vec<_>>(),
        "secretDigest": &key.secret_digest,
        "createdAt": date(key.created_at),
        "createdBy": &key.created_by,
        "revokedAt": optional_date(key.revoked_at),
    }
}

fn key_from_document(document: &Document) -> Result<ServiceKey, StoreError> {
    const WHAT: &str = "service key";
    let scopes = document
        .get_array("scopes")
        .map_err(|e| corrupt(WHAT, e))?
        .iter()
        .map(|scope| scope.as_str().unwrap_or_default().parse::<Scope>().map_err(|e| corrupt(WHAT, e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ServiceKey {
        id: read_id(document, WHAT)?,
        name: text(document, "name", WHAT)?,
        scopes,
        secret_digest: text(document, "secretDigest", WHAT)?,
        created_at: read_date(document, "createdAt", WHAT)?,
        created_by: text(document, "createdBy", WHAT)?,
        revoked_at: read_optional_date(document, "revokedAt", WHAT)?,
    })
}

#[async_trait]
impl ServiceKeyStore for MongoEventStore {
    async fn insert_service_key(&self, key: &ServiceKey, audit: &AuditEntry) -> Result<(), StoreError> {
        self.ready().await?;
        let (key, audit) = (key_document(key), audit_document(audit));
        insert_audited(&self.client, (&self.keys, key), (&self.audit, audit), Conflict::KeyDigest).await
    }

    async fn list_service_keys(&self, page: PageRequest) -> Result<Page<ServiceKey>, StoreError> {
        self.ready().await?;
        let newest_first = doc! { "createdAt": -1, "_id": -1 };
        find_page(&self.keys, doc! {}, newest_first, page).await?.try_map(|key| key_from_document(&key))
    }

    async fn service_key_by_digest(&self, digest: &str) -> Result<Option<ServiceKey>, StoreError> {
        self.ready().await?;
        let found = self.keys.find_one(doc! { "secretDigest": digest }).await.map_err(map_error)?;
        found.as_ref().map(key_from_document).transpose()
    }

    async fn service_key(&self, id: &str) -> Result<Option<ServiceKey>, StoreError> {
        self.ready().await?;
        let found = self.keys.find_one(doc! { "_id": id_bson(id) }).await.map_err(map_error)?;
        found.as_ref().map(key_from_document).transpose()
    }

    async fn revoke_service_key(&self, id: &str, at: DateTime<Utc>, audit: &AuditEntry) -> Result<(), StoreError> {
        self.ready().await?;
        let (id, audit) = (id_bson(id), audit_document(audit));
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
