//! Password hashing with bcrypt, off the async runtime.
//!
//! Hashing is deliberately slow CPU work. It runs on the blocking pool, and no more hashes run
//! at once than there are cores: extra parallel hashes would not finish sooner, they would
//! only crowd out the runtime threads that serve every other request.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Hashes and verifies passwords at a configured bcrypt cost.
#[derive(Clone, Debug)]
pub struct PasswordHasher {
    cost: u32,
    slots: Arc<Semaphore>,
}

impl PasswordHasher {
    pub fn new(cost: u32) -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Self { cost, slots: Arc::new(Semaphore::new(cores)) }
    }

    pub fn cost(&self) -> u32 {
        self.cost
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashingFailed> {
        let cost = self.cost;
        let input = bcrypt_input(password);
        self.run(move || bcrypt::hash(input, cost).map_err(HashingFailed::from)).await
    }

    /// `true` when `password` matches `hash`. A malformed hash never matches.
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, HashingFailed> {
        let input = bcrypt_input(password);
        let hash = hash.to_owned();
        self.run(move || Ok(bcrypt::verify(input, &hash).unwrap_or(false))).await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashingFailed> + Send + 'static,
    ) -> Result<T, HashingFailed> {
        let _slot = self.slots.acquire().await.map_err(|closed| HashingFailed(Box::new(closed)))?;
        tokio::task::spawn_blocking(work).await.map_err(|panicked| HashingFailed(Box::new(panicked)))?
    }
}

/// What bcrypt hashes: the password itself when bcrypt reads it whole (72 bytes or fewer),
/// otherwise its SHA-256 in base64 (44 bytes, no NUL), so that two long passwords sharing
/// their first 72 bytes never verify as each other.
/// bcrypt failed, or its worker did: a server fault, with its cause.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashingFailed(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl From<bcrypt::BcryptError> for HashingFailed {
    fn from(error: bcrypt::BcryptError) -> Self {
        Self(Box::new(error))
    }
}

fn bcrypt_input(password: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    const BCRYPT_READS: usize = 72;
    if password.len() <= BCRYPT_READS {
        password.to_owned()
    } else {
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(password.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() -> Result<(), HashingFailed> {
        let hasher = PasswordHasher::new(4);
        let hash = hasher.hash("correct horse").await?;
        assert!(hash.starts_with("$2"));
        assert!(hasher.verify("correct horse", &hash).await?);
        assert!(!hasher.verify("wrong horse", &hash).await?);
        assert!(!hasher.verify("x", "not a hash").await?);
        Ok(())
    }

    #[tokio::test]
    async fn long_passwords_are_not_truncated() -> Result<(), HashingFailed> {
        let hasher = PasswordHasher::new(4);
        // 24 three-byte characters fill bcrypt's 72 bytes; the two differ only after them.
        let (one, other) = ("한".repeat(24) + "one", "한".repeat(24) + "two");
        let hash = hasher.hash(&one).await?;
        assert!(hasher.verify(&one, &hash).await?);
        assert!(!hasher.verify(&other, &hash).await?, "a shared 72-byte prefix must not be enough");
        let short = hasher.hash("exactly-72-bytes-or-less").await?;
        assert!(bcrypt::verify("exactly-72-bytes-or-less", &short).unwrap(), "short passwords are hashed as they are");
        Ok(())
    }
}
