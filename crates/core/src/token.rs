//! Access tokens: the claims auth signs and every service verifies.
//!
//! Tokens are EdDSA JWTs with a `kid` header. Verification looks the key up through a
//! [`KeySource`]: in all-in-one mode that is auth's own key set, in split mode a JWKS fetched
//! from auth. Only EdDSA is accepted, whatever the header says, so an `alg: none` or an
//! HMAC-with-the-public-key token never verifies.
//!
//! A valid signature is not enough: the account must still be active, at the session version
//! the token was issued at, and its roles are read from the account's current standing
//! ([`crate::accounts`]), not from the token.

use std::sync::Arc;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::accounts::{AccountStandings, StandingUnavailable};
use crate::identity::{Principal, Role};
use crate::ids::UserId;

/// `iss` of every access token.
pub const ISSUER: &str = "bestow-auth";
/// `aud` of every access token.
pub const AUDIENCE: &str = "bestow";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// `users._id`.
    pub sub: UserId,
    /// Username at the time of issue, for logs.
    pub name: String,
    /// Roles at the time of issue, for clients; requests are judged by the current roles.
    pub roles: Vec<Role>,
    /// The account's session version at the time of issue (0 for tokens older than it).
    #[serde(default)]
    pub sv: i64,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique id of this token.
    pub jti: String,
    /// The session (refresh-token family) the token was issued in; absent in tokens older
    /// than it. When the session ends, its access tokens stop verifying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Finds the public key that verifies tokens carrying a given `kid`.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// The key for `kid`, `None` when it is unknown (after any refresh the source does), or
    /// `Err` when the keys cannot be obtained right now (auth unreachable).
    async fn decoding_key(&self, kid: &str) -> Result<Option<DecodingKey>, KeysUnavailable>;
}

/// Auth's keys could not be fetched: the token may well be valid, so this is not a 401.
#[derive(Debug, Clone, thiserror::Error)]
#[error("signing keys unavailable: {0}")]
pub struct KeysUnavailable(pub String);

/// Why a token was refused. All but [`TokenError::KeysUnavailable`] become the same 401:
/// callers learn nothing more.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    KeysUnavailable(#[from] KeysUnavailable),
    #[error("token is malformed")]
    Malformed,
    #[error("token is signed with an unknown key")]
    UnknownKey,
    #[error("token is invalid: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("the account no longer exists or is deactivated")]
    AccountClosed,
    #[error("the session was ended by a password change or deactivation")]
    SessionEnded,
    #[error(transparent)]
    StandingUnavailable(#[from] StandingUnavailable),
}

impl From<TokenError> for crate::ApiError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::KeysUnavailable(unavailable) => Self::Unavailable(unavailable.to_string()),
            TokenError::StandingUnavailable(unavailable) => Self::Unavailable(unavailable.to_string()),
            refused => {
                tracing::debug!(error = %refused, "access token refused");
                Self::Unauthorized("the access token is invalid or expired")
            }
        }
    }
}

/// Verifies access tokens against a [`KeySource`].
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<dyn KeySource>,
    standings: Arc<AccountStandings>,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

impl TokenVerifier {
    pub fn new(keys: Arc<dyn KeySource>, standings: Arc<AccountStandings>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        // Clocks of split-mode hosts drift a little; a few seconds is enough.
        validation.leeway = 5;
        Self { keys, standings, validation }
    }

    /// The standings this verifier judges accounts by.
    pub fn standings(&self) -> &Arc<AccountStandings> {
        &self.standings
    }

    /// Verifies `token` and returns the caller it proves, with the account's current roles.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let claims = self.verify_signature(token).await?;
        self.admit(&claims).await
    }

    /// The caller of an already verified token, if its account still stands: active, at the
    /// token's session version. Roles are the account's current ones.
    pub async fn admit(&self, claims: &AccessClaims) -> Result<Principal, TokenError> {
        let standing = self.standings.current(&claims.sub).await?;
        let standing = standing.filter(|s| s.is_active).ok_or(TokenError::AccountClosed)?;
        let session_ended = claims.sid.as_ref().is_some_and(|sid| standing.ended_sessions.contains(sid));
        if standing.session_version != claims.sv || session_ended {
            return Err(TokenError::SessionEnded);
        }
        Ok(Principal { user_id: claims.sub.clone(), username: claims.name.clone(), roles: standing.roles })
    }

    /// Checks `token`'s signature, issuer, audience and expiry, and returns all its claims;
    /// the account is not consulted (see [`Self::admit`]).
    pub async fn verify_signature(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::Malformed)?;
        let key = self.keys.decoding_key(&kid).await?.ok_or(TokenError::UnknownKey)?;
        Ok(jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation)?.claims)
    }
}
