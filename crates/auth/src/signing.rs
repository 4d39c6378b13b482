//! The EdDSA keys auth signs access tokens with, and the JWKS that publishes them.
//!
//! Keys live in `signing-keys.json` in the data dir (created with mode 0600 on first start).
//! The newest key signs; every key in the file verifies, so a rotation does not invalidate
//! tokens already issued. Only the 32-byte Ed25519 seed is stored.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bestow_core::token::{AccessClaims, KeySource, KeysUnavailable};
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// File name of the key set inside the data dir.
pub const KEY_FILE: &str = "signing-keys.json";

/// PKCS#8 v1 prefix of an Ed25519 private key; the 32-byte seed follows it.
const PKCS8_ED25519_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// Key-file problems; they stop the process at start-up.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid key file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot sign a token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredKey {
    kid: String,
    created_at: DateTime<Utc>,
    /// base64url Ed25519 seed.
    seed: String,
}

#[derive(Serialize, Deserialize, Default)]
struct KeyFile {
    keys: Vec<StoredKey>,
}

struct LoadedKey {
    kid: String,
    public: [u8; 32],
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl LoadedKey {
    fn from_seed(seed: [u8; 32]) -> Self {
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        let x = URL_SAFE_NO_PAD.encode(public);
        let digest = Sha256::digest(public);
        let kid = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            kid,
            public,
            encoding: EncodingKey::from_ed_der(&der),
            // `from_ed_components` takes the JWK `x`, i.e. the raw public key.
            decoding: DecodingKey::from_ed_components(&x).unwrap_or_else(|_| DecodingKey::from_ed_der(&public)),
        }
    }
}

/// Takes the exclusive lock that serialises every read-modify-write of the key file at
/// `path` (across processes: the server and `bestow admin`); released when dropped.
fn lock_key_file(path: &Path) -> Result<std::fs::File, KeyError> {
    let lock_path = path.with_extension("lock");
    let io = |source| KeyError::Io { path: lock_path.clone(), source };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&lock_path).map_err(io)?;
    file.lock().map_err(io)?;
    Ok(file)
}

/// The signing key set of this auth service.
pub struct SigningKeys {
    path: PathBuf,
    /// Oldest first; the last one signs.
    keys: RwLock<Arc<Vec<LoadedKey>>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Loads the key set from `dir`, creating it with one new key when absent.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join(KEY_FILE);
        let _lock = lock_key_file(&path)?;
        let file = if path.exists() {
            let bytes = std::fs::read(&path).map_err(|source| KeyError::Io { path: path.clone(), source })?;
            parse_key_file(&path, &bytes)?
        } else {
            let mut file = KeyFile::default();
            file.keys.push(new_stored_key());
            write_key_file(&path, &file)?;
            tracing::info!(path = %path.display(), "generated a new token signing key");
            file
        };
        let keys = load_keys(&path, &file)?;
        Ok(Self { path, keys: RwLock::new(Arc::new(keys)) })
    }

    /// Adds a new signing key; older keys keep verifying. Returns the new `kid`.
    pub fn rotate(&self) -> Result<String, KeyError> {
        // Read, append and write under an exclusive lock of the key file: a rotation through
        // the API and one from the command line at the same time must both keep their key.
        let _lock = lock_key_file(&self.path)?;
        let bytes = std::fs::read(&self.path).map_err(|source| KeyError::Io { path: self.path.clone(), source })?;
        let mut file = parse_key_file(&self.path, &bytes)?;
        file.keys.push(new_stored_key());
        write_key_file(&self.path, &file)?;
        let keys = load_keys(&self.path, &file)?;
        let kid = keys.last().map(|k| k.kid.clone()).unwrap_or_default();
        *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(keys);
        Ok(kid)
    }

    fn snapshot(&self) -> Arc<Vec<LoadedKey>> {
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Signs `claims` with the newest key.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        let keys = self.snapshot();
        let key = keys.last().ok_or_else(|| KeyError::Invalid { path: self.path.clone(), reason: "no keys".into() })?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// The public keys, as a JWK set.
    pub fn jwks(&self) -> Jwks {
        let keys = self.snapshot();
        Jwks {
            keys: keys
                .iter()
                .map(|key| Jwk {
                    kty: "OKP".into(),
                    crv: "Ed25519".into(),
                    alg: "EdDSA".into(),
                    key_use: "sig".into(),
                    kid: key.kid.clone(),
                    x: URL_SAFE_NO_PAD.encode(key.public),
                })
                .collect(),
        }
    }
}

#[async_trait]
impl KeySource for SigningKeys {
    async fn decoding_key(&self, kid: &str) -> Result<Option<DecodingKey>, KeysUnavailable> {
        Ok(self.snapshot().iter().find(|key| key.kid == kid).map(|key| key.decoding.clone()))
    }
}

/// A JSON Web Key Set (RFC 7517) of Ed25519 public keys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    /// The public keys that verify access tokens, current and previous.
    pub keys: Vec<Jwk>,
}

/// One public key (RFC 8037 `OKP`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    /// Key type: `OKP`.
    pub kty: String,
    /// Curve: `Ed25519`.
    pub crv: String,
    /// Algorithm: `EdDSA`.
    pub alg: String,
    /// Use: `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
    /// Key id, as in the `kid` of a token header.
    pub kid: String,
    /// base64url public key.
    pub x: String,
}

fn new_stored_key() -> StoredKey {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let kid = LoadedKey::from_seed(seed).kid;
    StoredKey { kid, created_at: bestow_core::time::now(), seed: URL_SAFE_NO_PAD.encode(seed) }
}

/// Checks that `bytes`, the content of a key file at `path`, hold a key set the server would
/// load (a restore must not bring back one it would refuse); the number of keys.
pub fn validate_key_file(path: &Path, bytes: &[u8]) -> Result<usize, KeyError> {
    Ok(load_keys(path, &parse_key_file(path, bytes)?)?.len())
}

fn parse_key_file(path: &Path, bytes: &[u8]) -> Result<KeyFile, KeyError> {
    serde_json::from_slice(bytes).map_err(|e| KeyError::Invalid { path: path.to_owned(), reason: e.to_string() })
}

fn load_keys(path: &Path, file: &KeyFile) -> Result<Vec<LoadedKey>, KeyError> {
    if file.keys.is_empty() {
        return Err(KeyError::Invalid { path: path.to_owned(), reason: "the key list is empty".into() });
    }
    file.keys
        .iter()
        .map(|stored| {
            let seed: [u8; 32] =
                URL_SAFE_NO_PAD.decode(&stored.seed).ok().and_then(|bytes| bytes.try_into().ok()).ok_or_else(|| {
                    KeyError::Invalid { path: path.to_owned(), reason: format!("key {} has a bad seed", stored.kid) }
                })?;
            Ok(LoadedKey::from_seed(seed))
        })
        .collect()
}

/// Writes atomically (temp file, then rename) with owner-only permissions.
fn write_key_file(path: &Path, file: &KeyFile) -> Result<(), KeyError> {
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    let text = serde_json::to_string_pretty(file)
        .map_err(|e| KeyError::Invalid { path: path.to_owned(), reason: e.to_string() })?;
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(&tmp).map_err(io)?;
        out.write_all(text.as_bytes()).map_err(io)?;
        out.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bestow_core::accounts::{AccountSource, AccountStandings, Standing, StandingUnavailable};
    use bestow_core::token::TokenVerifier;

    fn claims(exp_offset: i64) -> AccessClaims {
        let now = Utc::now().timestamp();
        AccessClaims {
            sub: bestow_core::ids::UserId::parse("u1").unwrap(),
            name: "alice".into(),
            roles: vec![bestow_core::identity::Role::User],
            sv: 0,
            iss: bestow_core::token::ISSUER.into(),
            aud: bestow_core::token::AUDIENCE.into(),
            iat: now,
            exp: now + exp_offset,
            jti: "j".into(),
            sid: None,
        }
    }

    #[tokio::test]
    async fn signed_tokens_verify_after_reload_and_rotation() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile_dir();
        let keys = Arc::new(SigningKeys::load_or_create(&dir)?);
        let old_token = keys.sign(&claims(60))?;
        let reloaded = Arc::new(SigningKeys::load_or_create(&dir)?);
        let verifier = TokenVerifier::new(reloaded.clone(), Arc::new(AccountStandings::new(Arc::new(NoAccounts))));
        assert_eq!(verifier.verify_signature(&old_token).await?.sub, "u1");

        let new_kid = reloaded.rotate()?;
        let new_token = reloaded.sign(&claims(60))?;
        assert_eq!(jsonwebtoken::decode_header(&new_token)?.kid.as_deref(), Some(new_kid.as_str()));
        assert!(verifier.verify_signature(&new_token).await.is_ok());
        assert!(verifier.verify_signature(&old_token).await.is_ok(), "older keys keep verifying");
        assert_eq!(reloaded.jwks().keys.len(), 2);
        assert!(verifier.verify_signature(&reloaded.sign(&claims(-60))?).await.is_err(), "expired");
        assert!(verifier.verify(&new_token).await.is_err(), "a valid signature of an unknown account");
        Ok(())
    }

    #[test]
    fn concurrent_rotations_from_two_processes_keep_every_key() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile_dir();
        // Two independent loads stand for the server and `bestow admin`: neither shares memory.
        let server = SigningKeys::load_or_create(&dir)?;
        let cli = SigningKeys::load_or_create(&dir)?;
        let rotated: Vec<String> = std::thread::scope(|scope| {
            let a = scope.spawn(|| (0..20).filter_map(|_| server.rotate().ok()).collect::<Vec<_>>());
            let b = scope.spawn(|| (0..20).filter_map(|_| cli.rotate().ok()).collect::<Vec<_>>());
            [a.join().unwrap_or_default(), b.join().unwrap_or_default()].concat()
        });
        assert_eq!(rotated.len(), 40);
        let kept = SigningKeys::load_or_create(&dir)?.jwks().keys.len();
        assert_eq!(kept, 41, "the first key and every rotated one");
        Ok(())
    }

    #[test]
    fn a_key_file_is_valid_only_if_the_server_would_load_it() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile_dir();
        SigningKeys::load_or_create(&dir)?;
        let path = dir.join(KEY_FILE);
        assert_eq!(validate_key_file(&path, &std::fs::read(&path)?)?, 1);
        let seed = r#"{"keys":[{"kid":"k","createdAt":"2025-01-01T00:00:00Z","seed":"AAAA"}]}"#;
        for bad in ["not json", r#"{"keys":"none"}"#, r#"{"keys":[]}"#, r#"{"other":1}"#, seed] {
            assert!(validate_key_file(&path, bad.as_bytes()).is_err(), "{bad}");
        }
        Ok(())
    }

    /// Knows no account: signatures are all these tests check.
    struct NoAccounts;

    #[async_trait::async_trait]
    impl AccountSource for NoAccounts {
        async fn standing(&self, _user_id: &bestow_core::ids::UserId) -> Result<Option<Standing>, StandingUnavailable> {
            Ok(None)
        }
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bestow-keys-{}", bestow_core::ids::new_object_id()));
        std::fs::create_dir_all(&dir).ok();
        dir
    }
}
