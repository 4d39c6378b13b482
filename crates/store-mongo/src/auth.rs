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
use bestow_kernel::ids::UserId;
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use mongodb::{Client, Collection, Database};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::audit::{AUDIT_LOGS, audit_document, audit_indexes, list_audit};
use crate::common::{
    TxResult, collect, corrupt, create_indexes, date, escape_regex, find_page, id_bson, in_transaction, index,
    insert_audited, is_duplicate_key, map_error,
};
use crate::fields::{from_document, object_id, to_document};

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

/// A user as stored in `users`: the seed's document, plus `usernameKey`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserDocument {
    #[serde(rename = "_id", with = "object_id")]
    id: UserId,
    username: String,
    /// The lowercased `username`, which carries the unique index.
    username_key: String,
    password: String,
    roles: Vec<Role>,
    created_at: bson::DateTime,
    updated_at: bson::DateTime,
    is_active: bool,
    /// Absent in documents written before sessions had versions.
    #[serde(default)]
    session_version: i64,
}

impl From<&User> for UserDocument {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.clone(),
            username: user.username.clone(),
            username_key: user.username.to_lowercase(),
            password: user.password_hash.clone(),
            roles: user.roles.clone(),
            created_at: bson::DateTime::from_chrono(user.created_at),
            updated_at: bson::DateTime::from_chrono(user.updated_at),
            is_active: user.is_active,
            session_version: user.session_version,
        }
    }
}

impl From<UserDocument> for User {
    fn from(document: UserDocument) -> Self {
        Self {
            id: document.id,
            username: document.username,
            password_hash: document.password,
            roles: document.roles,
            created_at: document.created_at.to_chrono(),
            updated_at: document.updated_at.to_chrono(),
            is_active: document.is_active,
            session_version: document.session_version,
        }
    }
}

const USER: &str = "user";

fn user_from_document(document: Document) -> Result<User, StoreError> {
    from_document::<UserDocument>(document, USER).map(User::from)
}

/// A refresh token as stored in `refresh_tokens` (its digest, never the token).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshTokenDocument {
    #[serde(rename = "_id", with = "object_id")]
    id: String,
    family_id: String,
    user_id: UserId,
    token_digest: String,
    issued_at: bson::DateTime,
    expires_at: bson::DateTime,
    rotated_at: Option<bson::DateTime>,
    revoked_at: Option<bson::DateTime>,
}

impl From<&RefreshToken> for RefreshTokenDocument {
    fn from(token: &RefreshToken) -> Self {
        Self {
            id: token.id.clone(),
            family_id: token.family_id.clone(),
            user_id: token.user_id.clone(),
            token_digest: token.token_digest.clone(),
            issued_at: bson::DateTime::from_chrono(token.issued_at),
            expires_at: bson::DateTime::from_chrono(token.expires_at),
            rotated_at: token.rotated_at.map(bson::DateTime::from_chrono),
            revoked_at: token.revoked_at.map(bson::DateTime::from_chrono),
        }
    }
}

impl From<RefreshTokenDocument> for RefreshToken {
    fn from(document: RefreshTokenDocument) -> Self {
        Self {
            id: document.id,
            family_id: document.family_id,
            user_id: document.user_id,
            token_digest: document.token_digest,
            issued_at: document.issued_at.to_chrono(),
            expires_at: document.expires_at.to_chrono(),
            rotated_at: document.rotated_at.map(|at| at.to_chrono()),
            revoked_at: document.revoked_at.map(|at| at.to_chrono()),
        }
    }
}

const REFRESH_TOKEN: &str = "refresh token";

fn token_document(token: &RefreshToken) -> Result<Document, StoreError> {
    to_document(&RefreshTokenDocument::from(token), REFRESH_TOKEN)
}

#[async_trait]
impl AuthStore for MongoAuthStore {
    async fn ping(&self) -> Result<(), StoreError> {
        crate::common::ping(&self.db).await
    }

    async fn insert_user(&self, user: &User, audit: Option<&AuditEntry>) -> Result<(), StoreError> {
        self.ready().await?;
        let user = to_document(&UserDocument::from(user), USER)?;
        let Some(audit) = audit.map(audit_document).transpose()? else {
            // Self-service sign-up is not audited: one document, atomic on its own.
            return self.users.insert_one(user).await.map(drop).map_err(|error| {
                if is_duplicate_key(&error) { StoreError::Conflict(Conflict::Username) } else { map_error(error) }
            });
        };
        insert_audited(&self.client, (&self.users, user), (&self.audit, audit), Conflict::Username).await
    }

    async fn user_by_id(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        self.ready().await?;
        let found = self.users.find_one(doc! { "_id": id_bson(id.as_str()) }).await.map_err(map_error)?;
        found.map(user_from_document).transpose()
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.ready().await?;
        let found = self.users.find_one(doc! { "usernameKey": username.to_lowercase() }).await.map_err(map_error)?;
        found.map(user_from_document).transpose()
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
        find_page(&self.users, query, doc! { "createdAt": 1, "_id": 1 }, page).await?.try_map(user_from_document)
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        self.ready().await?;
        self.users.count_documents(doc! {}).await.map_err(map_error)
    }

    async fn replace_user(&self, expected: &User, next: &User, audit: Option<&AuditEntry>) -> Result<(), StoreError> {
        self.ready().await?;
        let (before, after) = (expected, next);
        let entry = audit.map(audit_document).transpose()?;
        // Compare-and-set on the document as read: a concurrent change makes this a conflict
        // instead of silently overwriting it.
        let filter = doc! {
            "_id": id_bson(before.id.as_str()),
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
        self.tokens.insert_one(token_document(token)?).await.map(drop).map_err(map_error)
    }

    async fn refresh_token_by_digest(&self, digest: &str) -> Result<Option<RefreshToken>, StoreError> {
        self.ready().await?;
        let found = self.tokens.find_one(doc! { "tokenDigest": digest }).await.map_err(map_error)?;
        found
            .map(|document| from_document::<RefreshTokenDocument>(document, REFRESH_TOKEN).map(RefreshToken::from))
            .transpose()
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
        let new = token_document(new)?;
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

    async fn revoke_user_tokens(&self, user_id: &UserId, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.ready().await?;
        self.tokens
            .update_many(
                doc! { "userId": user_id.as_str(), "revokedAt": Bson::Null },
                doc! { "$set": { "revokedAt": date(at) } },
            )
            .await
            .map(drop)
            .map_err(map_error)
    }

    async fn ended_sessions(
        &self,
        user_id: &UserId,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.ready().await?;
        let pipeline = vec![
            doc! { "$match": { "userId": user_id.as_str(), "revokedAt": { "$gte": date(since) } } },
            doc! { "$group": { "_id": "$familyId", "revokedAt": { "$max": "$revokedAt" } } },
            doc! { "$sort": { "revokedAt": -1, "_id": 1 } },
            // An int32: the test server takes no int64 here, and no limit needs one.
            doc! { "$limit": i32::try_from(limit).unwrap_or(i32::MAX) },
        ];
        let cursor = self.tokens.aggregate(pipeline).await.map_err(map_error)?;
        let groups = collect(cursor).await?;
        groups
            .iter()
            .map(|group| group.get_str("_id").map(str::to_owned).map_err(|e| corrupt(REFRESH_TOKEN, e)))
            .collect()
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.ready().await?;
        self.audit.insert_one(audit_document(entry)?).await.map(drop).map_err(map_error)
    }

    async fn list_audit(&self, query: &AuditQuery, page: PageRequest) -> Result<Page<AuditEntry>, StoreError> {
        self.ready().await?;
        list_audit(&self.audit, query, page).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bestow_auth_domain::domain::Username;

    use super::*;

    /// A user written before sessions had versions (no `sessionVersion`) reads back at version 0.
    #[test]
    fn a_user_without_a_session_version_reads_back() {
        let user = User::new(&Username::parse("Carol", "/username").unwrap(), "$2b$hash".into(), vec![Role::Admin]);
        let mut document = to_document(&UserDocument::from(&user), USER).unwrap();
        assert_eq!(document.get_str("usernameKey").unwrap(), "carol");
        document.remove("sessionVersion");
        assert_eq!(user_from_document(document).unwrap(), User { session_version: 0, ..user });
    }
}
