//! How accounts look to clients: [`UserView`], what the auth routes answer and the operator
//! console reads back, never the password hash.

use bestow_kernel::identity::Role;
use bestow_kernel::ids::UserId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::User;

/// An account as clients see it: never the password hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// `users._id`.
    #[schema(value_type = String)]
    pub id: UserId,
    /// Unique ignoring case.
    pub username: String,
    /// The roles the account holds now.
    pub roles: Vec<Role>,
    /// False once deactivated: no sign-in, no request.
    pub is_active: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            username: user.username,
            roles: user.roles,
            is_active: user.is_active,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_user_view_reads_back_as_it_was_sent() {
        let sent = json!({
            "id": "a".repeat(24), "username": "alice", "roles": ["USER", "OPERATOR"], "isActive": false,
            "createdAt": "2026-12-07T11:01:02.123Z", "updatedAt": "2026-12-07T11:05:00Z",
        });
        let first = serde_json::to_value(serde_json::from_value::<UserView>(sent.clone()).unwrap()).unwrap();
        let again = serde_json::to_value(serde_json::from_value::<UserView>(first.clone()).unwrap()).unwrap();
        assert_eq!((&first, &again), (&sent, &sent));
    }
}
