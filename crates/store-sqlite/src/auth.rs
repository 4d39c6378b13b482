//! `auth.db`: the SQLite adapter of [`AuthStore`]. Columns carry the seed's field names; the
//! schema is `migrations/auth/`.

use async_trait::async_trait;
use bestow_auth_domain::domain::User;
use bestow_auth_domain::store::{AuthStore, RefreshToken, Rotation, UserFilter};
use bestow_kernel::audit::{AuditEntry, AuditQuery};
use bestow_kernel::identity::Role;
use bestow_kernel::ids::UserId;
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::audit::{insert_audit, list_audit};
use crate::columns::NamedColumns;
use crate::database::{Database, map_error, to_text};
use crate::filters::{Filters, count, prefix_pattern};
use crate::migrations::AUTH_MIGRATIONS;

/// The auth store on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteAuthStore {
    db: Database,
}

impl SqliteAuthStore {
    /// Opens `auth.db` at `path`, creating or migrating its schema.
    pub fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        Ok(Self { db: Database::open(path, AUTH_MIGRATIONS)? })
    }
}

const USER_COLUMNS: &str = "_id, username, password, roles, createdAt, updatedAt, isActive, sessionVersion";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.parsed("_id")?,
        username: row.get("username")?,
        password_hash: row.get("password")?,
        roles: row.json::<Vec<Role>>("roles")?,
        created_at: row.time("createdAt")?,
        updated_at: row.time("updatedAt")?,
        is_active: row.get("isActive")?,
        session_version: row.get("sessionVersion")?,
    })
}

fn roles_json(roles: &[Role]) -> String {
    serde_json::to_string(roles).unwrap_or_else(|_| "[]".to_owned())
}

fn select_user(connection: &Connection, clause: &str, key: &str) -> Result<Option<User>, StoreError> {
    connection
        .query_row(&format!("SELECT {USER_COLUMNS} FROM users WHERE {clause}"), [key], user_from_row)
        .optional()
        .map_err(map_error)
}

fn refresh_from_row(row: &Row<'_>) -> rusqlite::Result<RefreshToken> {
    Ok(RefreshToken {
        id: row.get("_id")?,
        family_id: row.get("familyId")?,
        user_id: row.parsed("userId")?,
        token_digest: row.get("tokenDigest")?,
        issued_at: row.time("issuedAt")?,
        expires_at: row.time("expiresAt")?,
        rotated_at: row.optional_time("rotatedAt")?,
        revoked_at: row.optional_time("revokedAt")?,
    })
}

fn insert_refresh(connection: &Connection, token: &RefreshToken) -> Result<(), StoreError> {
    connection
        .execute(
            "INSERT INTO refresh_tokens (_id, familyId, userId, tokenDigest, issuedAt, expiresAt, rotatedAt, revokedAt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                token.id,
                token.family_id,
                token.user_id.as_str(),
                token.token_digest,
                to_text(token.issued_at),
                to_text(token.expires_at),
                token.rotated_at.map(to_text),
                token.revoked_at.map(to_text),
            ],
        )
        .map_err(map_error)?;
    Ok(())
}

#[async_trait]
impl AuthStore for SqliteAuthStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.db.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(map_error)).await
    }

    async fn insert_user(&self, user: &User, audit: Option<&AuditEntry>) -> Result<(), StoreError> {
        let (user, audit) = (user.clone(), audit.cloned());
        self.db
            .transaction(move |tx| {
                tx.execute(
                    &format!("INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                    params![
                        user.id.as_str(),
                        user.username,
                        user.password_hash,
                        roles_json(&user.roles),
                        to_text(user.created_at),
                        to_text(user.updated_at),
                        user.is_active,
                        user.session_version,
                    ],
                )
                .map_err(|e| match map_error(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(Conflict::Username),
                    other => other,
                })?;
                if let Some(entry) = &audit {
                    insert_audit(tx, entry)?;
                }
                Ok(())
            })
            .await
    }

    async fn user_by_id(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let id = id.clone();
        self.db.read(move |c| select_user(c, "_id = ?1", id.as_str())).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let username = username.to_owned();
        self.db.read(move |c| select_user(c, "username = ?1 COLLATE NOCASE", &username)).await
    }

    async fn list_users(&self, filter: &UserFilter, page: PageRequest) -> Result<Page<User>, StoreError> {
        let mut filters = Filters::default();
        if let Some(role) = filter.role {
            filters.add(
                "EXISTS (SELECT 1 FROM json_each(users.roles) WHERE json_each.value = ?)",
                role.as_str().to_owned(),
            );
        }
        if let Some(active) = filter.is_active {
            filters.add("isActive = ?", i64::from(active));
        }
        if let Some(prefix) = &filter.username_prefix {
            filters.add("username LIKE ? ESCAPE '\\'", prefix_pattern(prefix));
        }
        self.db
            .read(move |connection| {
                let sql = filters.page_sql(USER_COLUMNS, "users", "createdAt, _id");
                filters.select_page(connection, "users", &sql, page, user_from_row)
            })
            .await
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        self.db.read(|c| count(c, "users", &Filters::default())).await
    }

    async fn replace_user(&self, expected: &User, next: &User, audit: Option<&AuditEntry>) -> Result<(), StoreError> {
        let (expected, updated, entry) = (expected.clone(), next.clone(), audit.cloned());
        self.db
            .transaction(move |tx| {
                // Compare-and-set on the row as read: a concurrent change makes this a conflict
                // instead of silently overwriting it.
                let changed = tx
                    .execute(
                        "UPDATE users SET roles = ?1, isActive = ?2, password = ?3, updatedAt = ?4, sessionVersion = ?5
                         WHERE _id = ?6 AND updatedAt = ?7 AND roles = ?8 AND isActive = ?9 AND password = ?10
                           AND sessionVersion = ?11",
                        params![
                            roles_json(&updated.roles),
                            updated.is_active,
                            updated.password_hash,
                            to_text(updated.updated_at),
                            updated.session_version,
                            expected.id.as_str(),
                            to_text(expected.updated_at),
                            roles_json(&expected.roles),
                            expected.is_active,
                            expected.password_hash,
                            expected.session_version,
                        ],
                    )
                    .map_err(map_error)?;
                if changed == 0 {
                    return Err(StoreError::Conflict(Conflict::Version));
                }
                if let Some(entry) = &entry {
                    insert_audit(tx, entry)?;
                }
                Ok(())
            })
            .await
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        let token = token.clone();
        self.db.write(move |c| insert_refresh(c, &token)).await
    }

    async fn refresh_token_by_digest(&self, digest: &str) -> Result<Option<RefreshToken>, StoreError> {
        let digest = digest.to_owned();
        self.db
            .read(move |c| {
                c.query_row(
                    "SELECT _id, familyId, userId, tokenDigest, issuedAt, expiresAt, rotatedAt, revokedAt
                     FROM refresh_tokens WHERE tokenDigest = ?1",
                    [digest],
                    refresh_from_row,
                )
                .optional()
                .map_err(map_error)
            })
            .await
    }

    async fn rotate_refresh_token(
        &self,
        old: &RefreshToken,
        new: &RefreshToken,
        at: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        let (old_id, family_id, new) = (old.id.clone(), old.family_id.clone(), new.clone());
        self.db
            .transaction(move |tx| {
                let won = tx
                    .execute(
                        "UPDATE refresh_tokens SET rotatedAt = ?1 WHERE _id = ?2 AND rotatedAt IS NULL AND revokedAt IS NULL",
                        params![to_text(at), old_id],
                    )
                    .map_err(map_error)?;
                if won == 0 {
                    tx.execute(
                        "UPDATE refresh_tokens SET revokedAt = ?1 WHERE familyId = ?2 AND revokedAt IS NULL",
                        params![to_text(at), family_id],
                    )
                    .map_err(map_error)?;
                    return Ok(Rotation::AlreadyUsed);
                }
                insert_refresh(tx, &new)?;
                Ok(Rotation::Rotated)
            })
            .await
    }

    async fn revoke_family(&self, family_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let family_id = family_id.to_owned();
        self.db
            .write(move |c| {
                c.execute(
                    "UPDATE refresh_tokens SET revokedAt = ?1 WHERE familyId = ?2 AND revokedAt IS NULL",
                    params![to_text(at), family_id],
                )
                .map(drop)
                .map_err(map_error)
            })
            .await
    }

    async fn revoke_user_tokens(&self, user_id: &UserId, at: DateTime<Utc>) -> Result<(), StoreError> {
        let user_id = user_id.to_string();
        self.db
            .write(move |c| {
                c.execute(
                    "UPDATE refresh_tokens SET revokedAt = ?1 WHERE userId = ?2 AND revokedAt IS NULL",
                    params![to_text(at), user_id],
                )
                .map(drop)
                .map_err(map_error)
            })
            .await
    }

    async fn ended_sessions(
        &self,
        user_id: &UserId,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let user_id = user_id.to_string();
        self.db
            .read(move |c| {
                let mut statement = c
                    .prepare_cached(
                        "SELECT familyId FROM refresh_tokens WHERE userId = ?1 AND revokedAt >= ?2
                         GROUP BY familyId ORDER BY max(revokedAt) DESC, familyId LIMIT ?3",
                    )
                    .map_err(map_error)?;
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let families = statement
                    .query_map(params![user_id, to_text(since), limit], |row| row.get("familyId"))
                    .map_err(map_error)?;
                families.collect::<Result<_, _>>().map_err(map_error)
            })
            .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.db.write(move |c| insert_audit(c, &entry)).await
    }

    async fn list_audit(&self, query: &AuditQuery, page: PageRequest) -> Result<Page<AuditEntry>, StoreError> {
        let query = query.clone();
        self.db.read(move |c| list_audit(c, "audit_logs", &query, page)).await
    }
}
