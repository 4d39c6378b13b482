//! A short-lived memory of tokens the gateway has already verified.
//!
//! Every request of a session carries the same access token; verifying its Ed25519 signature
//! each time is the largest part of the gateway's own work. A token is immutable and signing
//! keys are never withdrawn, so a verified signature stays valid until the token expires: the
//! gateway remembers the token's claims for at most [`VerifiedTokens::REMEMBER`] (and never
//! past its `exp`). What may change — the account's standing — is checked on every request
//! ([`TokenVerifier::admit`]). The services still verify every token themselves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bestow_core::identity::Principal;
use bestow_core::token::{AccessClaims, TokenError, TokenVerifier};

/// Claims of verified tokens, with the time (Unix seconds) until which each may be reused.
pub struct VerifiedTokens {
    verifier: TokenVerifier,
    remembered: Mutex<HashMap<String, (AccessClaims, i64)>>,
}

/// More entries than this and the memory starts over: it only ever saves work.
const CAPACITY: usize = 50_000;

impl VerifiedTokens {
    /// Longest time a verification is reused.
    pub const REMEMBER: Duration = Duration::from_secs(60);

    pub fn new(verifier: TokenVerifier) -> Self {
        Self { verifier, remembered: Mutex::new(HashMap::new()) }
    }

    /// The caller `token` proves: its signature remembered or verified now, its account's
    /// standing checked now.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let claims = self.verified_claims(token).await?;
        self.verifier.admit(&claims).await
    }

    async fn verified_claims(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let now = chrono::Utc::now().timestamp();
        if let Some((claims, until)) = self.lock().get(token)
            && now < *until
        {
            return Ok(claims.clone());
        }
        let claims = self.verifier.verify_signature(token).await?;
        let until = claims.exp.min(now + Self::REMEMBER.as_secs() as i64);
        let mut remembered = self.lock();
        if remembered.len() >= CAPACITY {
            remembered.clear();
        }
        remembered.insert(token.to_owned(), (claims.clone(), until));
        Ok(claims)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (AccessClaims, i64)>> {
        // A poisoned lock only means a panic elsewhere mid-insert; the map is still usable.
        self.remembered.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
