//! Who is calling and what they may do: roles, permissions and the one table between them.
//!
//! Handlers never test roles; they name the [`Permission`] they need (through the
//! `bestow_core::extract::Authorized` extractor) and this table decides. ADMIN holds every
//! permission; the other roles hold exactly what `API.md` gives them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A role as stored in `users.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    User,
    Operator,
    Auditor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::User, Role::Operator, Role::Auditor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "USER",
            Role::Operator => "OPERATOR",
            Role::Auditor => "AUDITOR",
            Role::Admin => "ADMIN",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a role name that is not one of the four.
#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}`; expected one of USER, OPERATOR, AUDITOR, ADMIN")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|role| role.as_str() == s).ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Defines [`Permission`], [`Permission::ALL`] and a marker type per permission in [`require`]
/// from one list, so a permission added here exists everywhere at once.
macro_rules! permissions {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Something a caller may be allowed to do.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Permission {
            $($(#[$doc])* $name,)*
        }

        impl Permission {
            /// Every permission.
            pub const ALL: &'static [Permission] = &[$(Permission::$name),*];
        }

        /// Marker types naming each [`Permission`] for `crate::extract::Authorized`.
        pub mod require {
            use super::{Permission, Requirement};
            $(
                $(#[$doc])*
                #[derive(Debug)]
                pub struct $name;
                impl Requirement for $name {
                    const PERMISSION: Permission = Permission::$name;
                }
            )*
        }
    };
}

permissions!(
    /// List users, change roles, activate and deactivate accounts.
    ManageUsers,
    /// Read the audit logs of both services.
    ReadAuditLogs,
    /// Create and edit events and their rewards, change their status.
    ManageEvents,
    /// Delete a DRAFT event.
    DeleteEvents,
    /// See events in every status, not only the ones players see.
    ReadAllEvents,
    /// Ask for a reward and preview eligibility.
    ClaimRewards,
    /// Read every player's claims and wallets.
    ReadAllClaims,
    /// Retry or resolve claims that need a human.
    InterveneInClaims,
    /// Push game activities.
    WriteActivities,
    /// Create, list and revoke service API keys.
    ManageServiceKeys,
    /// Rotate the keys that sign access tokens.
    ManageSigningKeys,
    /// Create, change and delete audiences and their members.
    ManageAudiences,
    /// Read audiences, their members, size estimates and membership checks.
    ReadAudiences,
    /// Set players' properties (game servers do it with a service key).
    WritePlayerProperties,
    /// Read players' properties, stored and computed.
    ReadPlayerProperties,
);

/// A permission, as a type, so that it can appear in a handler's signature.
pub trait Requirement: Send + Sync + 'static {
    const PERMISSION: Permission;
}

impl Permission {
    /// The role→permission table. ADMIN is not listed: it holds everything.
    fn granted_to(self) -> &'static [Role] {
        use Role::*;
        match self {
            Permission::ManageUsers
            | Permission::DeleteEvents
            | Permission::InterveneInClaims
            | Permission::WriteActivities
            | Permission::ManageServiceKeys
            | Permission::ManageSigningKeys
            | Permission::WritePlayerProperties => &[],
            Permission::ReadAuditLogs => &[Auditor],
            Permission::ManageEvents | Permission::ManageAudiences => &[Operator],
            Permission::ReadAudiences | Permission::ReadPlayerProperties => &[Operator, Auditor],
            Permission::ReadAllEvents | Permission::ReadAllClaims => &[Operator, Auditor],
            Permission::ClaimRewards => &[User],
        }
    }

    /// Whether any of `roles` grants this permission.
    pub fn granted_by(self, roles: &[Role]) -> bool {
        roles.iter().any(|role| *role == Role::Admin || self.granted_to().contains(role))
    }
}

/// An authenticated caller: who a verified access token proves, with what the account may do
/// now (`bestow_core::accounts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `users._id`.
    pub user_id: crate::ids::UserId,
    pub username: String,
    /// The account's current roles, not the ones the token was issued with.
    pub roles: Vec<Role>,
}

impl Principal {
    pub fn can(&self, permission: Permission) -> bool {
        permission.granted_by(&self.roles)
    }
}

/// What an account is allowed to be right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Standing {
    pub is_active: bool,
    pub roles: Vec<Role>,
    /// Moves whenever the account's sessions must end (password change or reset,
    /// deactivation); tokens issued at an older version stop verifying.
    pub session_version: i64,
    /// Sessions (`sid`, a refresh-token family) of the account that ended within an access
    /// token's lifetime (sign-out, a stolen refresh token used again): their access tokens
    /// stop verifying although the account's other sessions go on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ended_sessions: Vec<String>,
    /// When the account was created (`users.createdAt`): audiences judge an account's age by
    /// it. `None` from a source that does not know it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_holds_every_permission_and_user_only_claims() {
        use Permission::*;
        for &permission in Permission::ALL {
            assert!(permission.granted_by(&[Role::Admin]), "{permission:?}");
            assert_eq!(permission.granted_by(&[Role::User]), permission == ClaimRewards, "{permission:?}");
        }
    }

    #[test]
    fn auditors_read_and_never_write() {
        let auditor = [Role::Auditor];
        assert!(Permission::ReadAuditLogs.granted_by(&auditor));
        assert!(Permission::ReadAllClaims.granted_by(&auditor));
        assert!(!Permission::ManageEvents.granted_by(&auditor));
        assert!(!Permission::ManageUsers.granted_by(&auditor));
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(role));
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
