//! The split-mode [`KeySource`]: auth's public keys, fetched from its JWKS and cached.
//!
//! A token whose `kid` is not cached triggers one refetch (that is how a key rotation reaches
//! the gateway and events without a restart). Refetches are single-flight and at most one per
//! [`RemoteKeySet::MIN_REFRESH`]: a request that comes too soon waits for the next allowed
//! fetch, once, so a flood of tokens with made-up `kid`s cannot turn into a flood of requests
//! to auth. When auth is unreachable, cached keys keep verifying.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::token::KeySource;

/// The fields of a JWK this verifier uses; auth publishes Ed25519 (`OKP`) keys only.
#[derive(Deserialize)]
struct PublishedKey {
    kid: String,
    kty: String,
    crv: String,
    x: String,
}

#[derive(Deserialize)]
struct PublishedKeySet {
    keys: Vec<PublishedKey>,
}

/// Auth's signing keys as published at `{auth}/.well-known/jwks.json`.
pub struct RemoteKeySet {
    client: reqwest::Client,
    url: String,
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// When the last fetch started; held while fetching, which makes fetches single-flight.
    last_fetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for RemoteKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeySet").field("url", &self.url).finish_non_exhaustive()
    }
}

impl RemoteKeySet {
    /// Shortest time between two fetches.
    pub const MIN_REFRESH: Duration = Duration::from_secs(1);

    /// Keys of the auth service at `auth_url` (its base URL). Nothing is fetched until the
    /// first token needs a key.
    pub fn new(auth_url: &str, timeout: Duration) -> Result<Self, String> {
        let client = crate::outbound::client_builder()
            .timeout(timeout)
            .build()
            .map_err(|error| format!("cannot build the JWKS client: {error}"))?;
        Ok(Self {
            client,
            url: format!("{}/.well-known/jwks.json", auth_url.trim_end_matches('/')),
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
        })
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().ok()?.get(kid).cloned()
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let response = self.client.get(&self.url).send().await.map_err(|error| error.to_string())?;
        if !response.status().is_success() {
            return Err(format!("JWKS answered {}", response.status()));
        }
        let set: PublishedKeySet = response.json().await.map_err(|error| error.to_string())?;
        let keys = set
            .keys
            .into_iter()
            .filter(|key| key.kty == "OKP" && key.crv == "Ed25519")
            .filter_map(|key| DecodingKey::from_ed_components(&key.x).ok().map(|decoding| (key.kid, decoding)))
            .collect();
        Ok(keys)
    }
}

#[async_trait]
impl KeySource for RemoteKeySet {
    async fn decoding_key(&self, kid: &str) -> Option<DecodingKey> {
        let mut waited = false;
        loop {
            if let Some(key) = self.cached(kid) {
                return Some(key);
            }
            let mut last_fetch = self.last_fetch.lock().await;
            // Another request may have fetched while this one waited for the lock.
            if let Some(key) = self.cached(kid) {
                return Some(key);
            }
            let wait = last_fetch.map_or(Duration::ZERO, |at| Self::MIN_REFRESH.saturating_sub(at.elapsed()));
            if wait.is_zero() {
                *last_fetch = Some(Instant::now());
                return self.refresh(kid).await;
            }
            // Too soon after the last fetch (a rotation right after a fetch, or made-up
            // `kid`s): wait for the next allowed fetch once, without holding the lock.
            if waited {
                return None;
            }
            drop(last_fetch);
            tokio::time::sleep(wait).await;
            waited = true;
        }
    }
}

impl RemoteKeySet {
    /// Fetches the key set, replaces the cache, and returns the key for `kid` if it is in it.
    async fn refresh(&self, kid: &str) -> Option<DecodingKey> {
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "fetched auth's signing keys");
                let key = keys.get(kid).cloned();
                if let Ok(mut cache) = self.keys.write() {
                    *cache = keys;
                }
                key
            }
            Err(reason) => {
                tracing::warn!(%reason, url = %self.url, "cannot fetch auth's signing keys");
                None
            }
        }
    }
}
