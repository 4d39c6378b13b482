//! Secrets: random ones and their storage form, configured ones that cannot be printed.
//!
//! Refresh tokens and API keys are 256-bit random values; only their SHA-256 is stored. A
//! fast hash is right here (unlike passwords): the input has full entropy, so there is
//! nothing to brute-force. A configured secret (a password, a signing key, a connection
//! string with credentials) is a [`Secret`]: its `Debug` and `Serialize` show `[redacted]`.

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

/// What a [`Secret`] shows of itself.
pub const REDACTED: &str = "[redacted]";

/// A configured secret. `Debug` and `Serialize` show [`REDACTED`], never the value, so a
/// secret inside a logged or dumped configuration stays hidden; the value is read by name,
/// with [`Secret::expose`], where it is used. It deserializes from a plain string.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
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

    #[test]
    fn a_secret_shows_itself_only_when_exposed() {
        let secret: Secret = serde_json::from_str(r#""hunter2-hunter2""#).unwrap();
        assert_eq!(secret.expose(), "hunter2-hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        assert_eq!(serde_json::to_string(&secret).unwrap(), r#""[redacted]""#);
    }
}
