//! `event.db`: the SQLite adapter of [`ServiceKeyStore`]: keys of game servers, stored by the
//! digest of their secret, revoked once and never deleted.

use async_trait::async_trait;
use bestow_events_domain::ports::service_keys::{Scope, ServiceKey, ServiceKeyStore};
use bestow_kernel::audit::AuditEntry;
use bestow_kernel::ids::ServiceKeyId;
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::audit::insert_audit;
use crate::columns::{NamedColumns, corrupt};
use crate::database::{map_error, to_text};
use crate::event_db::SqliteEventStore;

const KEY_COLUMNS: &str = "_id, name, scopes, secretDigest, createdAt, createdBy, revokedAt";

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<ServiceKey> {
    let scopes: Vec<String> = row.json("scopes")?;
    Ok(ServiceKey {
        id: row.parsed("_id")?,
        name: row.get("name")?,
        scopes: scopes
            .iter()
            .map(|s| s.parse::<Scope>())
            .collect::<Result<_, _>>()
            .map_err(|e| corrupt(row, "scopes", e))?,
        secret_digest: row.get("secretDigest")?,
        created_at: row.time("createdAt")?,
        created_by: row.parsed("createdBy")?,
        revoked_at: row.optional_time("revokedAt")?,
    })
}

fn select_key(connection: &Connection, column: &str, value: &str) -> Result<Option<ServiceKey>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM service_keys WHERE {column} = ?1");
    connection.prepare_cached(&sql).map_err(map_error)?.query_row([value], key_from_row).optional().map_err(map_error)
}

#[async_trait]
impl ServiceKeyStore for SqliteEventStore {
    async fn insert_service_key(&self, key: &ServiceKey, audit: &AuditEntry) -> Result<(), StoreError> {
        let (key, audit) = (key.clone(), audit.clone());
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
        let scopes = serde_json::to_string(&scopes).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.db
            .transaction(move |tx| {
                tx.execute(
                    &format!("INSERT INTO service_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                    params![
                        key.id.as_str(),
                        key.name,
                        scopes,
                        key.secret_digest,
                        to_text(key.created_at),
                        key.created_by.as_str(),
                        key.revoked_at.map(to_text),
                    ],
                )
                .map_err(map_error)?;
                insert_audit(tx, &audit)?;
                Ok(())
            })
            .await
    }

    async fn list_service_keys(&self, page: PageRequest) -> Result<Page<ServiceKey>, StoreError> {
        self.db
            .read(move |connection| {
                let total: i64 = connection
                    .query_row("SELECT COUNT(*) FROM service_keys", [], |row| row.get(0))
                    .map_err(map_error)?;
                let mut statement = connection
                    .prepare_cached(&format!(
                        "SELECT {KEY_COLUMNS} FROM service_keys ORDER BY createdAt DESC, _id DESC LIMIT ?1 OFFSET ?2"
                    ))
                    .map_err(map_error)?;
                let offset = i64::try_from(page.offset()).unwrap_or(i64::MAX);
                let keys = statement
                    .query_map(params![i64::from(page.limit), offset], key_from_row)
                    .map_err(map_error)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(map_error)?;
                Ok(Page::new(keys, page, u64::try_from(total).unwrap_or(0)))
            })
            .await
    }

    async fn service_key_by_digest(&self, digest: &str) -> Result<Option<ServiceKey>, StoreError> {
        let digest = digest.to_owned();
        self.db.read(move |connection| select_key(connection, "secretDigest", &digest)).await
    }

    async fn service_key(&self, id: &ServiceKeyId) -> Result<Option<ServiceKey>, StoreError> {
        let id = id.to_string();
        self.db.read(move |connection| select_key(connection, "_id", &id)).await
    }

    async fn revoke_service_key(
        &self,
        id: &ServiceKeyId,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let (id, audit) = (id.to_string(), audit.clone());
        self.db
            .transaction(move |tx| {
                let revoked = tx
                    .execute(
                        "UPDATE service_keys SET revokedAt = ?2 WHERE _id = ?1 AND revokedAt IS NULL",
                        params![id, to_text(at)],
                    )
                    .map_err(map_error)?;
                if revoked == 0 {
                    return Err(match select_key(tx, "_id", &id)? {
                        Some(_) => StoreError::Conflict(Conflict::AlreadyRevoked),
                        None => StoreError::NotFound,
                    });
                }
                insert_audit(tx, &audit)?;
                Ok(())
            })
            .await
    }
}
