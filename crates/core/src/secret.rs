//! Random secrets and their storage form.
//!
//! Refresh tokens and API keys are 256-bit random values; only their SHA-256 is stored. A
//! fast hash is right here (unlike passwords): the input has full entropy, so there is
//! nothing to brute-force.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new random secret, URL-safe, 43 characters.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A random password of letters and digits, for generated admin credentials.
pub fn random_password(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..len).map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char).collect()
}

/// The stored form of a secret: hex SHA-256.
pub fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The secret split-mode services share (`BESTOW_INTERNAL_SECRET`): the gateway presents it
/// to vouch for the client address it forwards, events presents it to auth's internal routes.
/// Only its digest is kept for comparison; `Debug` never shows it.
#[derive(Clone)]
pub struct ServiceCredential {
    secret: std::sync::Arc<str>,
    digest: String,
}

impl std::fmt::Debug for ServiceCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceCredential(<redacted>)")
    }
}

impl ServiceCredential {
    pub fn new(secret: &str) -> Self {
        Self { secret: secret.into(), digest: digest(secret) }
    }

    /// The value to send in [`crate::http::SERVICE_TOKEN`].
    pub fn presented(&self) -> &str {
        &self.secret
    }

    /// Whether a presented value is this secret. Digests are compared, so the time taken
    /// says nothing about how much of the secret a guess got right.
    pub fn verifies(&self, presented: &str) -> bool {
        digest(presented) == self.digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_digests_stable() {
        assert_ne!(random_token(), random_token());
        assert_eq!(digest("a"), digest("a"));
        assert_ne!(digest("a"), digest("b"));
        assert_eq!(random_password(20).len(), 20);
    }

    #[test]
    fn a_service_credential_verifies_only_its_secret_and_hides_it() {
        let credential = ServiceCredential::new("shared-secret-value");
        assert!(credential.verifies("shared-secret-value"));
        assert!(!credential.verifies("shared-secret-valuE"));
        assert!(!format!("{credential:?}").contains("shared"));
    }
}
