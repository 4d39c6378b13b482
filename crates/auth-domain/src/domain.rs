//! Pure rules of accounts: usernames, passwords, users and role changes.

use std::fmt;

use bestow_kernel::identity::{Role, Standing};
use bestow_kernel::ids::UserId;
use bestow_kernel::violation::FieldViolation;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// A username: 3 to 32 of `[A-Za-z0-9_.-]`. Uniqueness ignores case; the spelling is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Longest username, in bytes (every allowed character is one byte).
    pub const MAX_BYTES: usize = 32;

    pub fn parse(raw: &str, pointer: &str) -> Result<Self, FieldViolation> {
        let valid_chars = raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !(3..=Self::MAX_BYTES).contains(&raw.len()) || !valid_chars {
            return Err(FieldViolation::new(
                pointer,
                "invalid_username",
                "a username is 3 to 32 characters of letters, digits, `_`, `.` and `-`",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 8 to 72 characters (what a JSON Schema `minLength`/`maxLength` says). One
/// that bcrypt could not read whole (over 72 bytes, possible with non-ASCII characters) is
/// pre-hashed by `bestow_auth::password::PasswordHasher`, never truncated.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 72;

    pub fn parse(raw: String, pointer: &str) -> Result<Self, FieldViolation> {
        match raw.chars().count() {
            n if n < Self::MIN_CHARS => {
                Err(FieldViolation::new(pointer, "too_short", "a password has at least 8 characters"))
            }
            n if n > Self::MAX_CHARS => {
                Err(FieldViolation::new(pointer, "too_long", "a password has at most 72 characters"))
            }
            _ => Ok(Self(raw)),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

/// A stored account: the seed's `auth_db.users` document.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// `_id`, ObjectId hex.
    pub id: UserId,
    pub username: String,
    /// bcrypt hash (`password` in the seed).
    pub password_hash: String,
    pub roles: Vec<Role>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub is_active: bool,
    /// `sessionVersion` (an addition to the seed): moves with every change that must end the
    /// account's sessions; access tokens carry the version they were issued at.
    pub session_version: i64,
}

impl fmt::Debug for User {
    // Hand-written so the hash can never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .field("is_active", &self.is_active)
            .field("session_version", &self.session_version)
            .finish_non_exhaustive()
    }
}

impl User {
    /// A new active account.
    pub fn new(username: &Username, password_hash: String, roles: Vec<Role>) -> Self {
        let now = bestow_kernel::time::now();
        Self {
            id: UserId::generate(),
            username: username.as_str().to_owned(),
            password_hash,
            roles: normalize_roles(roles),
            created_at: now,
            updated_at: now,
            is_active: true,
            session_version: 0,
        }
    }

    /// What every request is judged by: whether the account is active, its roles, and the
    /// session version its tokens must carry.
    pub fn standing(&self) -> Standing {
        Standing {
            is_active: self.is_active,
            roles: self.roles.clone(),
            session_version: self.session_version,
            ended_sessions: Vec::new(),
            created_at: Some(self.created_at),
        }
    }

    /// What the audit log records of an account: everything but the hash.
    pub fn audit_snapshot(&self) -> Value {
        json!({
            "id": self.id,
            "username": self.username,
            "roles": self.roles,
            "isActive": self.is_active,
        })
    }
}

/// Sorted and without duplicates, so that stored role lists compare equal.
pub fn normalize_roles(mut roles: Vec<Role>) -> Vec<Role> {
    roles.sort();
    roles.dedup();
    roles
}

/// The change an admin may make to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    Roles(Vec<Role>),
    Active(bool),
    PasswordHash(String),
}

impl UserChange {
    /// The audit action name of the change.
    pub fn action(&self) -> &'static str {
        match self {
            UserChange::Roles(_) => "user.roles.set",
            UserChange::Active(true) => "user.activate",
            UserChange::Active(false) => "user.deactivate",
            UserChange::PasswordHash(_) => "user.password.reset",
        }
    }

    /// Whether the change ends the account's sessions: a new password (someone else may have
    /// known the old one) and a deactivation. Role changes need not: requests are judged by the
    /// account's current roles.
    pub fn ends_sessions(&self) -> bool {
        matches!(self, UserChange::PasswordHash(_) | UserChange::Active(false))
    }

    /// `user` after the change at `at`: what the store writes if `user` is still stored.
    pub fn applied_to(&self, user: &User, at: DateTime<Utc>) -> User {
        let mut next = user.clone();
        self.apply(&mut next, at);
        next
    }

    fn apply(&self, user: &mut User, at: DateTime<Utc>) {
        match self {
            UserChange::Roles(roles) => user.roles = normalize_roles(roles.clone()),
            UserChange::Active(active) => user.is_active = *active,
            UserChange::PasswordHash(hash) => user.password_hash.clone_from(hash),
        }
        if self.ends_sessions() {
            user.session_version = user.session_version.saturating_add(1);
        }
        user.updated_at = at;
    }
}

/// Whether `actor_id` may make `change` to `target_id`: nobody changes their own roles or
/// active state (a stolen or stale admin session cannot promote or revive itself, and at
/// least one admin always remains).
pub fn check_admin_change(actor_id: &str, target_id: &str, change: &UserChange) -> Result<(), SelfChange> {
    match change {
        UserChange::Roles(_) | UserChange::Active(_) if actor_id == target_id => Err(SelfChange),
        _ => Ok(()),
    }
}

/// An account tried to change its own roles or active state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an account cannot change its own roles or active state; ask another admin")]
pub struct SelfChange;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["abc", "Player_1", "a.b-c", &"x".repeat(32)] {
            assert!(Username::parse(ok, "/username").is_ok(), "{ok}");
        }
        for bad in ["ab", "has space", "ünï", "a/b", &"x".repeat(33), ""] {
            assert!(Username::parse(bad, "/username").is_err(), "{bad}");
        }
    }

    #[test]
    fn password_lengths_are_bytes_not_chars() {
        assert!(NewPassword::parse("1234567".into(), "/p").is_err());
        assert!(NewPassword::parse("12345678".into(), "/p").is_ok());
        assert!(NewPassword::parse("x".repeat(72), "/p").is_ok());
        assert_eq!(NewPassword::parse("x".repeat(73), "/p").err().map(|v| v.code), Some("too_long".into()));
        // Characters, not bytes: 72 three-byte characters are 216 bytes.
        assert!(NewPassword::parse("한".repeat(72), "/p").is_ok());
        assert!(NewPassword::parse("한".repeat(73), "/p").is_err());
        assert!(NewPassword::parse("한".repeat(7), "/p").is_err(), "21 bytes, but 7 characters");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let user = User::new(&Username("alice".into()), "$2b$12$secret-hash".into(), vec![Role::User]);
        assert!(!format!("{user:?}").contains("secret-hash"));
        assert!(!user.audit_snapshot().to_string().contains("secret-hash"));
        assert!(!format!("{:?}", NewPassword("hunter2hunter2".into())).contains("hunter2"));
    }

    #[test]
    fn nobody_changes_their_own_roles_or_active_state() {
        let demote = UserChange::Roles(vec![Role::User]);
        assert!(check_admin_change("a", "a", &demote).is_err());
        assert!(check_admin_change("a", "b", &demote).is_ok());
        assert!(check_admin_change("a", "a", &UserChange::Active(false)).is_err());
        assert!(check_admin_change("a", "a", &UserChange::Active(true)).is_err());
        let keep_admin = UserChange::Roles(vec![Role::Admin, Role::User]);
        assert_eq!(check_admin_change("a", "a", &keep_admin), Err(SelfChange));
    }

    #[test]
    fn password_changes_and_deactivation_end_sessions_and_role_changes_do_not() {
        let mut user = User::new(&Username("dana".into()), "h".into(), vec![Role::User]);
        let now = bestow_kernel::time::now();
        UserChange::Roles(vec![Role::Operator]).apply(&mut user, now);
        UserChange::Active(true).apply(&mut user, now);
        assert_eq!(user.session_version, 0);
        UserChange::PasswordHash("h2".into()).apply(&mut user, now);
        UserChange::Active(false).apply(&mut user, now);
        assert_eq!(user.session_version, 2);
    }
}
