//! Access tokens: the claims auth signs and every service verifies.
//!
//! Tokens are EdDSA JWTs with a `kid` header. Verification looks the key up through a
//! [`KeySource`]: in all-in-one mode that is auth's own key set, in split mode a JWKS fetched
//! from auth. Only EdDSA is accepted, whatever the header says, so an `alg: none` or an
//! HMAC-with-the-public-key token never verifies.

use std::sync::Arc;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::identity::{Principal, Role};

/// `iss` of every access token.
pub const ISSUER: &str = "bestow-auth";
/// `aud` of every access token.
pub const AUDIENCE: &str = "bestow";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// `users._id`.
    pub sub: String,
    /// Username at the time of issue, for logs.
    pub name: String,
    pub roles: Vec<Role>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique id of this token.
    pub jti: String,
}

impl From<AccessClaims> for Principal {
    fn from(claims: AccessClaims) -> Self {
        Principal { user_id: claims.sub, username: claims.name, roles: claims.roles }
    }
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
}

impl From<TokenError> for crate::ApiError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::KeysUnavailable(unavailable) => Self::Unavailable(unavailable.to_string()),
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
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

impl TokenVerifier {
    pub fn new(keys: Arc<dyn KeySource>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        // Clocks of split-mode hosts drift a little; a few seconds is enough.
        validation.leeway = 5;
        Self { keys, validation }
    }

    /// Verifies `token` and returns the caller it proves.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        Ok(self.verify_claims(token).await?.into())
    }

    /// Verifies `token` and returns all its claims (the expiry included).
    pub async fn verify_claims(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::Malformed)?;
        let key = self.keys.decoding_key(&kid).await?.ok_or(TokenError::UnknownKey)?;
        Ok(jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation)?.claims)
    }
}
