//! The storage port of the auth service (`auth_db`).
//!
//! Every method is one atomic operation: an audited change commits with its audit entry, and
//! a refresh-token rotation is a compare-and-set, so two concurrent refreshes with the same
//! token cannot both win.

use async_trait::async_trait;
use bestow_kernel::audit::{AuditEntry, AuditQuery};
use bestow_kernel::identity::Role;
use bestow_kernel::ids::UserId;
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::StoreError;
use chrono::{DateTime, Utc};

use crate::domain::User;

/// Filters of the admin user list.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    /// Case-insensitive username prefix.
    pub username_prefix: Option<String>,
}

/// A refresh token as stored: only its digest, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub id: String,
    /// All tokens descended from one login share a family; reuse revokes the whole family.
    pub family_id: String,
    pub user_id: UserId,
    pub token_digest: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Set when the token was exchanged for its successor.
    pub rotated_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Outcome of an attempt to rotate a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The old token was live; it is now rotated and the new one stored.
    Rotated,
    /// The old token had already been rotated or revoked: its family is now revoked.
    AlreadyUsed,
}

/// Storage of users, refresh tokens and the auth audit log.
#[async_trait]
pub trait AuthStore: Send + Sync {
    /// Cheap round trip for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Inserts `user` (and `audit`, in the same transaction).
    /// `Conflict(Username)` when the name is taken in any letter case.
    async fn insert_user(&self, user: &User, audit: Option<&AuditEntry>) -> Result<(), StoreError>;

    async fn user_by_id(&self, id: &UserId) -> Result<Option<User>, StoreError>;

    /// Looks a user up by name, ignoring letter case.
    async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError>;

    /// One page of users ordered by creation, and the total matching `filter`.
    async fn list_users(&self, filter: &UserFilter, page: PageRequest) -> Result<Page<User>, StoreError>;

    async fn count_users(&self) -> Result<u64, StoreError>;

    /// Replaces user `expected` by `next` (a change the service decided) if the stored user is
    /// still `expected` — a compare-and-set on its mutable fields — and appends `audit` in the
    /// same transaction. `Conflict(Version)` when the user changed meanwhile (or is gone).
    async fn replace_user(&self, expected: &User, next: &User, audit: Option<&AuditEntry>) -> Result<(), StoreError>;

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<(), StoreError>;

    async fn refresh_token_by_digest(&self, digest: &str) -> Result<Option<RefreshToken>, StoreError>;

    /// Marks `old` rotated and inserts `new` — only if `old` is neither rotated nor revoked;
    /// otherwise (a reuse that lost a race) revokes `old`'s whole family instead. Either way in
    /// one transaction.
    async fn rotate_refresh_token(
        &self,
        old: &RefreshToken,
        new: &RefreshToken,
        at: DateTime<Utc>,
    ) -> Result<Rotation, StoreError>;

    /// Revokes every live token of a family.
    async fn revoke_family(&self, family_id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Revokes every live token of a user (deactivation, password change).
    async fn revoke_user_tokens(&self, user_id: &UserId, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// The families (sessions) of `user_id` with a token revoked at or after `since`, each once,
    /// the most recently revoked first, at most `limit`: the sessions whose access tokens may
    /// still be unexpired and must stop working.
    async fn ended_sessions(
        &self,
        user_id: &UserId,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// One page of audit entries, newest first, and the total matching `query`.
    async fn list_audit(&self, query: &AuditQuery, page: PageRequest) -> Result<Page<AuditEntry>, StoreError>;
}
