//! The auth service's use cases, independent of HTTP.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bestow_core::accounts::AccountStandings;
use bestow_core::audit::{AuditActor, AuditEntry, AuditQuery};
use bestow_core::identity::{Principal, Role};
use bestow_core::ids::UserId;
use bestow_core::page::{Page, PageRequest};
use bestow_core::store::StoreError;
use bestow_core::token::{AUDIENCE, AccessClaims, ISSUER};
use chrono::TimeDelta;

use crate::accounts::StoreAccounts;
use crate::domain::{NewPassword, User, UserChange, Username, check_admin_change};
use crate::password::PasswordHasher;
use crate::signing::SigningKeys;
use crate::store::{AuthStore, RefreshToken, Rotation, UserFilter};
use crate::throttle::{LoginThrottle, ThrottleSettings};

/// Tunables of the auth service.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub bcrypt_cost: u32,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub throttle: ThrottleSettings,
}

/// A signed-in session: what login and refresh return.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: Duration,
    pub user: User,
}

/// Accounts, sessions and roles.
pub struct AuthService {
    store: Arc<dyn AuthStore>,
    hasher: PasswordHasher,
    keys: Arc<SigningKeys>,
    throttle: LoginThrottle,
    /// Accounts' standings as stored now.
    accounts: Arc<StoreAccounts>,
    /// The standings this process judges requests by; forgotten here on every account change
    /// so that the change takes effect at once in this process.
    standings: Arc<AccountStandings>,
    settings: AuthSettings,
    /// Verified against when the username is unknown, so that a miss costs as much time as a
    /// wrong password and response times do not reveal which usernames exist.
    decoy_hash: String,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Why an auth use case failed. The HTTP layer (`crate::http::errors`) maps each to its
/// problem details; nothing here knows a status code.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password and inactive account alike.
    #[error("invalid username or password")]
    BadCredentials,
    #[error("too many login attempts; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("the refresh token is invalid or expired")]
    InvalidRefreshToken,
    #[error("that username is taken")]
    UsernameTaken,
    #[error("no such user")]
    UserNotFound,
    #[error("the current password is wrong")]
    CurrentPasswordWrong,
    #[error(transparent)]
    SelfChange(#[from] crate::domain::SelfChange),
    #[error("the account changed at the same time; read it again and retry")]
    UserChanged,
    #[error(transparent)]
    Hashing(#[from] crate::password::HashingFailed),
    #[error(transparent)]
    Keys(#[from] crate::signing::KeyError),
    /// A blocking task of the service died.
    #[error("a background task failed")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Longest refresh token looked up; issued ones are 43 characters.
const MAX_REFRESH_TOKEN_CHARS: usize = 128;

/// A username that names no account, as a log field: its first three characters only, since
/// a password typed into the username box often lands here.
fn loggable(username: &str) -> String {
    let shown: String = username.chars().take(3).collect();
    if shown.len() < username.len() { format!("{shown}…") } else { shown }
}

impl AuthService {
    pub async fn new(
        store: Arc<dyn AuthStore>,
        keys: Arc<SigningKeys>,
        settings: AuthSettings,
    ) -> Result<Self, AuthError> {
        let hasher = PasswordHasher::new(settings.bcrypt_cost);
        let decoy_hash = hasher.hash(&bestow_core::secret::random_password(16)).await?;
        let accounts = Arc::new(StoreAccounts::new(store.clone(), settings.access_token_ttl));
        let standings = Arc::new(AccountStandings::new(accounts.clone()));
        Ok(Self {
            throttle: LoginThrottle::new(settings.throttle),
            store,
            hasher,
            keys,
            accounts,
            standings,
            settings,
            decoy_hash,
        })
    }

    /// Account standings read from this service's store, for the token verifiers of the process.
    pub fn standings(&self) -> &Arc<AccountStandings> {
        &self.standings
    }

    /// Standings read from the store each time: what other processes and services are told.
    pub fn accounts(&self) -> &Arc<StoreAccounts> {
        &self.accounts
    }

    pub fn store(&self) -> &Arc<dyn AuthStore> {
        &self.store
    }

    pub fn keys(&self) -> &Arc<SigningKeys> {
        &self.keys
    }

    /// Adds a signing key that signs from now on, and audits it.
    pub async fn rotate_signing_key(&self, actor: &AuditActor) -> Result<String, AuthError> {
        let keys = self.keys.clone();
        let kid = tokio::task::spawn_blocking(move || keys.rotate()).await??;
        self.store.append_audit(&actor.entry("signing_key.rotate", ("signing_key", &kid), None, None)).await?;
        tracing::info!(%kid, "rotated the token signing key");
        Ok(kid)
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Creates an account with exactly `roles` (USER for self-service sign-up).
    pub async fn create_user(
        &self,
        username: Username,
        password: NewPassword,
        roles: Vec<Role>,
        actor: Option<&AuditActor>,
    ) -> Result<User, AuthError> {
        let hash = self.hasher.hash(password.expose()).await?;
        let user = User::new(&username, hash, roles);
        let audit = actor
            .map(|actor| actor.entry("user.create", ("user", user.id.as_str()), None, Some(user.audit_snapshot())));
        self.store.insert_user(&user, audit.as_ref()).await.map_err(|error| match error {
            StoreError::Conflict(_) => AuthError::UsernameTaken,
            other => other.into(),
        })?;
        tracing::info!(user_id = %user.id, username = %user.username, roles = ?user.roles, "account created");
        Ok(user)
    }

    /// Checks credentials and opens a session. Unknown user, wrong password and inactive
    /// account all give the same 401. `username` must already be bounded
    /// ([`Username::MAX_BYTES`]): it becomes a throttle key.
    pub async fn login(&self, username: &str, password: &str, address: Option<IpAddr>) -> Result<Session, AuthError> {
        let attempt = self.throttle.begin(username, address).map_err(|retry_after_secs| {
            tracing::warn!(username = %loggable(username), ?address, "login throttled");
            AuthError::Throttled { retry_after_secs }
        })?;
        let user = self.store.user_by_username(username).await?;
        let hash = user.as_ref().map_or(self.decoy_hash.as_str(), |u| u.password_hash.as_str());
        // Longer passwords were never accepted, so they cannot match.
        let matches = password.chars().count() <= NewPassword::MAX_CHARS && self.hasher.verify(password, hash).await?;
        match user {
            Some(user) if matches && user.is_active => {
                self.throttle.succeeded(attempt);
                let family = bestow_core::ids::new_object_id();
                self.open_session(user, family).await
            }
            // The attempt stays counted as a failure.
            Some(user) => {
                tracing::info!(user_id = %user.id, username = %user.username, ?address, "login refused");
                Err(AuthError::BadCredentials)
            }
            None => {
                tracing::info!(username = %loggable(username), ?address, "login refused: no such account");
                Err(AuthError::BadCredentials)
            }
        }
    }

    /// Exchanges a refresh token for a new pair. A token used twice revokes its whole family:
    /// one of the two users of the token is a thief, and we cannot tell which.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, AuthError> {
        let invalid = || AuthError::InvalidRefreshToken;
        // Issued tokens are 43 characters; anything far longer is not one, and is not hashed.
        if refresh_token.len() > MAX_REFRESH_TOKEN_CHARS {
            return Err(invalid());
        }
        let digest = bestow_core::secret::digest(refresh_token);
        let old = self.store.refresh_token_by_digest(&digest).await?.ok_or_else(invalid)?;
        let now = bestow_core::time::now();
        if old.rotated_at.is_some() || old.revoked_at.is_some() {
            if old.rotated_at.is_some() {
                tracing::warn!(family_id = %old.family_id, user_id = %old.user_id, "refresh token reused; revoking its family");
                self.store.revoke_family(&old.family_id, now).await?;
            }
            return Err(invalid());
        }
        if old.expires_at <= now {
            return Err(invalid());
        }
        let user = self.store.user_by_id(&old.user_id).await?.filter(|u| u.is_active).ok_or_else(invalid)?;
        let (session, new) = self.new_session(user, old.family_id.clone())?;
        match self.store.rotate_refresh_token(&old, &new, now).await? {
            Rotation::Rotated => Ok(session),
            // Lost a race with another use of the same token: that is reuse too, and the store
            // revoked the family with it.
            Rotation::AlreadyUsed => Err(invalid()),
        }
    }

    /// Ends the caller's session: its refresh token and every access token issued in it (their
    /// `sid`). Tokens of other users are left alone.
    pub async fn logout(&self, caller: &Principal, refresh_token: &str) -> Result<(), AuthError> {
        let digest = bestow_core::secret::digest(refresh_token);
        if let Some(token) = self.store.refresh_token_by_digest(&digest).await?
            && token.user_id == caller.user_id
        {
            self.store.revoke_family(&token.family_id, bestow_core::time::now()).await?;
            // The session's access tokens stop working at once here, within the standings'
            // freshness elsewhere.
            self.standings.forget(&caller.user_id);
        }
        Ok(())
    }

    pub async fn user(&self, id: &UserId) -> Result<User, AuthError> {
        self.store.user_by_id(id).await?.ok_or(AuthError::UserNotFound)
    }

    /// Changes the caller's own password after checking the current one; every session of the
    /// account ends. Throttled like logins: a stolen access token must not become a way to
    /// guess the password.
    pub async fn change_password(
        &self,
        caller: &Principal,
        current: &str,
        new: NewPassword,
        address: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let attempt = self
            .throttle
            .begin(&caller.username, address)
            .map_err(|retry_after_secs| AuthError::Throttled { retry_after_secs })?;
        let user = self.user(&caller.user_id).await?;
        let matches = current.chars().count() <= NewPassword::MAX_CHARS
            && self.hasher.verify(current, &user.password_hash).await?;
        if !matches {
            tracing::info!(user_id = %user.id, ?address, "password change refused: wrong current password");
            // A well-formed request whose proof of the account failed: refused, not malformed.
            return Err(AuthError::CurrentPasswordWrong);
        }
        self.throttle.succeeded(attempt);
        let hash = self.hasher.hash(new.expose()).await?;
        let changed = UserChange::PasswordHash(hash).applied_to(&user, bestow_core::time::now());
        self.store.replace_user(&user, &changed, None).await?;
        self.standings.forget(&user.id);
        self.store.revoke_user_tokens(&user.id, bestow_core::time::now()).await?;
        tracing::info!(user_id = %user.id, "password changed; sessions ended");
        Ok(())
    }

    pub async fn list_users(&self, filter: &UserFilter, page: PageRequest) -> Result<Page<User>, AuthError> {
        Ok(self.store.list_users(filter, page).await?)
    }

    /// An admin's change to an account, audited with before and after.
    pub async fn change_user(
        &self,
        actor: &AuditActor,
        target_id: &UserId,
        change: UserChange,
    ) -> Result<User, AuthError> {
        check_admin_change(&actor.actor_id, target_id.as_str(), &change)?;
        let action = change.action();
        let before = self.store.user_by_id(target_id).await?.ok_or(AuthError::UserNotFound)?;
        let after = change.applied_to(&before, bestow_core::time::now());
        let audit = actor.entry(
            action,
            ("user", after.id.as_str()),
            Some(before.audit_snapshot()),
            Some(after.audit_snapshot()),
        );
        self.store.replace_user(&before, &after, Some(&audit)).await.map_err(|error| match error {
            StoreError::Conflict(_) => AuthError::UserChanged,
            other => other.into(),
        })?;
        self.standings.forget(target_id);
        if change.ends_sessions() {
            self.store.revoke_user_tokens(target_id, bestow_core::time::now()).await?;
        }
        tracing::info!(user_id = %target_id, action, "account changed by an admin");
        Ok(after)
    }

    pub async fn audit_log(&self, query: &AuditQuery, page: PageRequest) -> Result<Page<AuditEntry>, AuthError> {
        Ok(self.store.list_audit(query, page).await?)
    }

    async fn open_session(&self, user: User, family_id: String) -> Result<Session, AuthError> {
        let (session, token) = self.new_session(user, family_id)?;
        self.store.insert_refresh_token(&token).await?;
        Ok(session)
    }

    fn new_session(&self, user: User, family_id: String) -> Result<(Session, RefreshToken), AuthError> {
        let now = bestow_core::time::now();
        let claims = AccessClaims {
            sub: user.id.clone(),
            name: user.username.clone(),
            roles: user.roles.clone(),
            sv: user.session_version,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now.timestamp(),
            exp: now.timestamp() + i64::try_from(self.settings.access_token_ttl.as_secs()).unwrap_or(i64::MAX / 2),
            jti: bestow_core::ids::new_object_id(),
            sid: Some(family_id.clone()),
        };
        let access_token = self.keys.sign(&claims)?;
        let refresh_token = bestow_core::secret::random_token();
        let record = RefreshToken {
            id: bestow_core::ids::new_object_id(),
            family_id,
            user_id: user.id.clone(),
            token_digest: bestow_core::secret::digest(&refresh_token),
            issued_at: now,
            expires_at: now + TimeDelta::from_std(self.settings.refresh_token_ttl).unwrap_or(TimeDelta::days(30)),
            rotated_at: None,
            revoked_at: None,
        };
        let session = Session { access_token, refresh_token, expires_in: self.settings.access_token_ttl, user };
        Ok((session, record))
    }
}
