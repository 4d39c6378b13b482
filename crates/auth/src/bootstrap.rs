//! First start: an empty auth store gets an `admin` account.

use bestow_core::FieldViolation;
use bestow_core::audit::AuditActor;
use bestow_core::identity::Role;

use crate::domain::{NewPassword, Username};
use crate::service::{AuthError, AuthService};

/// Username of the bootstrap admin.
pub const ADMIN_USERNAME: &str = "admin";

/// What bootstrap did.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// The store already had users; nothing was done.
    AlreadyInitialised,
    /// `admin` was created with the configured password.
    CreatedWithConfiguredPassword,
    /// `admin` was created with this generated password, to be shown once.
    CreatedWithGeneratedPassword(String),
}

/// Why the admin account could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The configured password breaks the password rules.
    #[error("{}: {}", .0.pointer, .0.message)]
    Refused(FieldViolation),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Creates `admin` with roles `["ADMIN"]` when the store has no user at all. The password is
/// `configured` when given, else generated; the creation is audited.
pub async fn ensure_admin(auth: &AuthService, configured: Option<&str>) -> Result<Bootstrap, BootstrapError> {
    if auth.store().count_users().await.map_err(AuthError::Store)? > 0 {
        return Ok(Bootstrap::AlreadyInitialised);
    }
    let (password, generated) = match configured {
        Some(password) => (password.to_owned(), false),
        None => (bestow_core::secret::random_password(20), true),
    };
    let username = Username::parse(ADMIN_USERNAME, "/username").map_err(BootstrapError::Refused)?;
    let new_password =
        NewPassword::parse(password.clone(), "BESTOW_ADMIN_PASSWORD").map_err(BootstrapError::Refused)?;
    let actor = AuditActor::system("bootstrap");
    auth.create_user(username, new_password, vec![Role::Admin], Some(&actor)).await?;
    Ok(if generated {
        Bootstrap::CreatedWithGeneratedPassword(password)
    } else {
        Bootstrap::CreatedWithConfiguredPassword
    })
}
