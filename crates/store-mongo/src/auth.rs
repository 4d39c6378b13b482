//! `auth_db`: the MongoDB adapter of [`AuthStore`].
//!
//! - `users`: the seed's document, plus `usernameKey` (the lowercased username) carrying the
//!   unique index, so that uniqueness ignores letter case as the port requires.
//! - `refresh_tokens`: one document per token (only its digest), unique on `tokenDigest`.
//! - `audit_logs`: see [`crate::audit`].

use async_trait::async_trait;
use bestow_auth_domain::domain::User;
use bestow_auth_domain::store::{AuthStore, RefreshToken, Rotation, UserFilter};
use bestow_kernel::audit::{AuditEntry, AuditQuery};
use bestow_kernel::identity::Role;
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use mongodb::{Client, Collection, Database};
use tokio::sync::OnceCell;

use crate::audit::{AUDIT_LOGS, audit_document, audit_indexes, list_audit};
use crate::common::{
    TxResult, collect, corrupt, create_indexes, date, escape_regex, find_page, id_bson, in_transaction, index,
    insert_audited, is_duplicate_key, map_error, optional_date, read_date, read_id, read_optional_date, text,
};

pub(crate) const USERS: &str = "users";
pub(crate) const REFRESH_TOKENS: &str = "refresh_tokens";
/// Default name of the auth database.
pub const AUTH_DB: &str = "auth_db";

/// The auth store on MongoDB.
#[derive(Clone)]
pub struct MongoAuthStore {
    client: Client,
    db: Database,
    users: Collection<Document>,
    tokens: Collection<Document>,
    audit: Collection<Document>,
    indexes: std::sync::Arc<OnceCell<()>>,
}

impl std::fmt::Debug for MongoAuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoAuthStore").field("db", &self.db.name()).finish_non_exhaustive()
    }
}

impl MongoAuthStore {
    /// A store on database `db_name` at `uri`. The connection is lazy: a server that is down
    /// now fails the first operations (`Unavailable`), not this call. Indexes are created now
    /// if the server answers, otherwise before the first operation that reaches it.
    pub async fn connect(uri: &str, db_name: &str) -> Result<Self, StoreError> {
        let client = crate::common::client(uri).await?;
        let db = client.database(db_name);
        let store = Self {
            users: db.collection(USERS),
            tokens: db.collection(REFRESH_TOKENS),
            audit: db.collection(AUDIT_LOGS),
            client,
            db,
            indexes: std::sync::Arc::new(OnceCell::new()),
        };
        if let Err(error) = store.ready().await {
            tracing::warn!(%error, "auth_db indexes not created yet; retrying on first use");
        }
        Ok(store)
    }

    /// Creates the indexes (once per store; creating them again is a no-op on the server as
    /// well), failing if the server refuses: what a restore runs after loading a dump.
    pub async fn create_indexes(&self) -> Result<(), StoreError> {
        self.ready().await
    }

    /// Creates the indexes once (idempotent on the server as well).
    async fn ready(&self) -> Result<(), StoreError> {
        self.indexes
            .get_or_try_init(|| async {
                create_indexes(
                    &self.db,
                    USERS,
                    vec![
                        index(doc! { "usernameKey": 1 }, "users_usernameKey", true),
                        index(doc! { "createdAt": 1, "_id": 1 }, "users_createdAt", false),
                    ],
                )
                .await?;
                create_indexes(
                    &self.db,
                    REFRESH_TOKENS,
                    vec![
                        index(doc! { "tokenDigest": 1 }, "refresh_tokens_digest", true),
                        index(doc! { "familyId": 1 }, "refresh_tokens_family", false),
                        index(doc! { "userId": 1 }, "refresh_tokens_user", false),
                        index(doc! { "userId": 1, "revokedAt": 1 }, "refresh_tokens_user_revoked", false),
                    ],
                )
                .await?;
                create_indexes(&self.db, AUDIT_LOGS, audit_indexes()).await
            })
            .await
            .map(drop)
    }
}

fn roles_bson(roles: &[Role]) -> Bson {
    Bson::Array(roles.iter().map(|role| Bson::String(role.as_str().to_owned())).collect())
}

fn user_document(user: &User) -> Document {
    doc! {
        "_id": id_bson(&user.id),
        "username": &user.username,
        "usernameKey": user.username.to_lowercase(),
        "password": &user.password_hash,
        "roles": roles_bson(&user.roles),
        "createdAt": date(user.created_at),
        "updatedAt": date(user.updated_at),
        "isActive": user.is_active,
        "sessionVersion": user.session_version,
    }
}

fn user_from_document(document: &Document) -> Result<User, StoreError> {
    const WHAT: &str = "user";
    let roles = document
        .get_array("roles")
        .map_err(|e| corrupt(WHAT, e))?
        .iter()
        .map(|role| match role {
            Bson::String(name) => {
                serde_json::from_value::<Role>(serde_json::Value::String(name.clone())).map_err(|e| corrupt(WHAT, e))
            }
            other => Err(corrupt(WHAT, format!("role {other}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(User {
        id: read_id(document, WHAT)?,
        username: text(document, "username", WHAT)?,
        password_hash: text(document, "password", WHAT)?,
        roles,
        created_at: read_date(document, "createdAt", WHAT)?,
        updated_at: read_date(document, "updatedAt", WHAT)?,
        is_active: document.get_bool("isActive").map_err(|e| corrupt(WHAT, e))?,
        // Absent in documents written before sessions had versions.
        session_version: match document.get("sessionVersion") {
            None => 0,
            Some(Bson::Int64(version)) => *version,
            Some(Bson::Int32(version)) => i64::from(*version),
            Some(other) => return Err(corrupt(WHAT, format!("sessionVersion {other}"))),
        },
    })
}

fn token_document(token: &RefreshToken) -> Document {
    doc! {
        "_id": id_bson(&token.id),
        "familyId": &token.family_id,
        "userId": &token.user_id,
        "tokenDigest": &token.token_digest,
        "issuedAt": date(token.issued_at),
        "expiresAt": date(token.expires_at),
        "rotatedAt": optional_date(token.rotated_at),
        "revokedAt": optional_date(token.revoked_at),
    }
}

fn token_from_document(document: &Document) -> Result<RefreshToken, StoreError> {
    const WHAT: &str = "refresh token";
    Ok(RefreshToken {
        id: read_id(document, WHAT)?,
        family_id: text(document, "familyId", WHAT)?,
        user_id: text(document, "userId", WHAT)?,
        token_digest: text(document, "tokenDigest", WHAT)?,
        issued_at: read_date(document, "issuedAt", WHAT)?,
        expires_at: read_date(document, "expiresAt", WHAT)?,
        rotated_at: read_optional_date(document, "rotatedAt", WHAT)?,
        revoked_at: read_optional_date(document, "revokedAt", WHAT)?,
    })
}

#[async_trait]
impl AuthStore for MongoAuthStore {
    async fn ping(&self) -> Result<(), StoreError> {
        crate::common::ping(&self.db).await
    }

    async fn insert_user(&self, user: &User, audit: Option<&AuditEntry>) -> Result<(), StoreError> {
        self.ready().await?;
        let user = user_document(user);
        let Some(audit) = audit.map(audit_document) else {
            // Self-service sign-up is not audited: one document, atomic on its own.
            return self.users.insert_one(user).await.map(drop).map_err(|error| {
                if is_duplicate_key(&error) { StoreError::Conflict(Conflict::Username) } else { map_error(error) }
            });
        };
        insert_audited(&self.client, (&self.users, user), (&self.audit, audit), Conflict::Username).await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.ready().await?;
        let found = self.users.find_one(doc! { "_id": id_bson(id) }).await.map_err(map_error)?;
        found.as_ref().map(user_from_document).transpose()
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.ready().await?;
        let found = self.users.find_one(doc! { "usernameKey": username.to_lowercase() }).await.map_err(map_error)?;
        found.as_ref().map(user_from_document).transpose()
    }

    async fn list_users(&self, filter: &UserFilter, page: PageRequest) -> Result<Page<User>, StoreError> {
        self.ready().await?;
        let mut query = Document::new();
        if let Some(role) = filter.role {
            query.insert("roles", role.as_str());
        }
        if let Some(active) = filter.is_active {
            query.insert("isActive", active);
        }
        if let Some(prefix) = &filter.username_prefix {
            // On the lowercased key: a case-insensitive prefix that can use its index.
            query.insert("usernameKey", doc! { "$regex": format!("^{}", escape_regex(&prefix.to_lowercase())) });
        }
        find_page(&self.users, query, doc! { "createdAt": 1, "_id": 1 }, page)
            .await?
            .try_map(|user| user_from_document(&user))
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        self.ready().await?;
        self.users.count_documents(doc! {}).await.map_err(map_error)
    }

    async fn replace_user(&self, expected: &User, next: &User, audit: Option<&AuditEntry>) -> Result<(), StoreError> {
        self.ready().await?;
        let (before, after) = (expected, next);
        let entry = audit.map(audit_document);
        // Compare-and-set on the document as read: a concurrent change makes this a conflict
        // instead of silently overwriting it.
        let filter = doc! {
            "_id": id_bson(&before.id),
            "updatedAt": date(before.updated_at),
            "roles": roles_bson(&before.roles),
            "isActive": before.is_active,
            "password": &before.password_hash,
        };
        let update = doc! { "$set": {
            "roles": roles_bson(&after.roles),
            "isActive": after.is_active,
            "password": &after.password_hash,
            "updatedAt": date(after.updated_at),
            "sessionVersion": after.session_version,
        } };
        in_transaction(&self.client, |session| {
            let (users, logs, filter, update, entry) =
                (self.users.clone(), self.audit.clone(), filter.clone(), update.clone(), entry.clone());
            Box::pin(async move {
                let changed = users.update_one(filter, update).session(&mut *session).await?;
                if changed.matched_count == 0 {
                    return Err(StoreError::Conflict(Conflict::Version).into());
                }
                if let Some(entry) = entry {
                    logs.insert_one(entry).session(&mut *session).await?;
                }
                TxResult::Ok(())
            })
        })
        .await
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError> {
        self.ready().await?;
        self.tokens.insert_one(token_document(token)).await.map(drop).map_err(map_error)
    }

    async fn refresh_token_by_digest(&self, digest: &str) -> Result<Option<RefreshToken>, StoreError> {
        self.ready().await?;
        let found = self.tokens.find_one(doc! { "tokenDigest": digest }).await.map_err(map_error)?;
        found.as_ref().map(token_from_document).transpose()
    }

    async fn rotate_refresh_token(
        &self,
        old: &RefreshToken,
        new: &RefreshToken,
        at: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        self.ready().await?;
        let filter = doc! { "_id": id_bson(&old.id), "rotatedAt": Bson::Null, "revokedAt": Bson::Null };
        let family = doc! { "familyId": &old.family_id, "revokedAt": Bson::Null };
        let new = token_document(new);
        in_transaction(&self.client, |session| {
            let (tokens, filter, family, new) = (self.tokens.clone(), filter.clone(), family.clone(), new.clone());
            Box::pin(async move {
                let won = tokens
                    .update_one(filter, doc! { "$set": { "rotatedAt": date(at) } })
                    .session(&mut *session)
                    .await?;
                if won.matched_count == 0 {
                    tokens
                        .update_many(family, doc! { "$set": { "revokedAt": date(at) } })
                        .session(&mut *session)
                        .await?;
                    return Ok(Rotation::AlreadyUsed);
                }
                tokens.insert_one(new).session(&mut *session).await?;
                TxResult::Ok(Rotation::Rotated)
            })
        })
        .await
    }

    async fn revoke_family(&self, family_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.ready().await?;
        self.tokens
            .update_many(
                doc! { "familyId": family_id, "revokedAt": Bson::Null },
                doc! { "$set": { "revokedAt": date(at) } },
            )
            .await
            .map(drop)
            .map_err(map_error)
    }

    async fn revoke_user_tokens(&self, user_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.ready().await?;
        self.tokens
            .update_many(
                doc! { "userId": user_id, "revokedAt": Bson::Null },
                doc! { "$set": { "revokedAt": date(at) } },
            )
            .await
            .map(drop)
            .map_err(map_error)
    }

    async fn ended_sessions(
        &self,
        user_id: &str,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.ready().await?;
        let pipeline = vec![
            doc! { "$match": { "userId": user_id, "revokedAt": { "$gte": date(since) } } },
            doc! { "$group": { "_id": "$familyId", "revokedAt": { "$max": "$revokedAt" } } },
            doc! { "$sort": { "revokedAt": -1, "_id": 1 } },
            // An int32: the test server takes no int64 here, and no limit needs one.
            doc! { "$limit": i32::try_from(limit).unwrap_or(i32::MAX) },
        ];
        let cursor = self.tokens.aggregate(pipeline).await.map_err(map_error)?;
        let groups = collect(cursor).await?;
        groups
            .iter()
            .map(|group| group.get_str("_id").map(str::to_owned).map_err(|e| corrupt("refresh token", e)))
            .collect()
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.ready().await?;
        self.audit.insert_one(audit_document(entry)).await.map(drop).map_err(map_error)
    }

    async fn list_audit(&self, query: &AuditQuery, page: PageRequest) -> Result<Page<AuditEntry>, StoreError> {
        self.ready().await?;
        list_audit(&self.audit, query, page).await
    }
}
