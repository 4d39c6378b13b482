//! The split-mode [`KeySource`]: auth's public keys, fetched from its JWKS and cached.
//!
//! A token whose `kid` is not cached triggers one refetch (that is how a key rotation reaches
//! the gateway and events without a restart). Refetches are single-flight and at most one per
//! [`RemoteKeySet::MIN_REFRESH`]: a request that comes too soon waits for the next allowed
//! fetch, once, so a flood of tokens with made-up `kid`s cannot turn into a flood of requests
//! to auth. When auth is unreachable, cached keys keep verifying, and a token whose key is
//! not cached is "keys unavailable" (503), not "invalid" (401): it may well be valid.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::token::{KeySource, KeysUnavailable};

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
    /// The last fetch; held while fetching, which makes fetches single-flight.
    last_fetch: Mutex<LastFetch>,
}

#[derive(Default)]
struct LastFetch {
    started: Option<Instant>,
    /// Why it failed, if it did.
    failure: Option<String>,
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
            last_fetch: Mutex::new(LastFetch::default()),
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
    async fn decoding_key(&self, kid: &str) -> Result<Option<DecodingKey>, KeysUnavailable> {
        let mut waited = false;
        loop {
            if let Some(key) = self.cached(kid) {
                return Ok(Some(key));
            }
            let mut last_fetch = self.last_fetch.lock().await;
            // Another request may have fetched while this one waited for the lock.
            if let Some(key) = self.cached(kid) {
                return Ok(Some(key));
            }
            let wait = last_fetch.started.map_or(Duration::ZERO, |at| Self::MIN_REFRESH.saturating_sub(at.elapsed()));
            if wait.is_zero() {
                last_fetch.started = Some(Instant::now());
                let fetched = self.refresh(kid).await;
                last_fetch.failure = fetched.as_ref().err().map(|unavailable| unavailable.0.clone());
                return fetched;
            }
            // Too soon after the last fetch (a rotation right after a fetch, or made-up
            // `kid`s): wait for the next allowed fetch once, without holding the lock.
            if waited {
                return match &last_fetch.failure {
                    Some(reason) => Err(KeysUnavailable(reason.clone())),
                    None => Ok(None),
                };
            }
            drop(last_fetch);
            tokio::time::sleep(wait).await;
            waited = true;
        }
    }
}

impl RemoteKeySet {
    /// Fetches the key set, replaces the cache, and returns the key for `kid` if it is in it.
    async fn refresh(&self, kid: &str) -> Result<Option<DecodingKey>, KeysUnavailable> {
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "fetched auth's signing keys");
                let key = keys.get(kid).cloned();
                if let Ok(mut cache) = self.keys.write() {
                    *cache = keys;
                }
                Ok(key)
            }
            Err(reason) => {
                tracing::warn!(%reason, url = %self.url, "cannot fetch auth's signing keys");
                Err(KeysUnavailable(reason))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::get;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    /// A stand-in for auth's JWKS route: publishes key `k1`, counts fetches, can be "down".
    #[derive(Clone, Default)]
    struct Auth {
        fetches: Arc<AtomicU32>,
        down: Arc<AtomicBool>,
    }

    async fn start(auth: Auth) -> RemoteKeySet {
        let route = {
            let auth = auth.clone();
            get(move || async move {
                auth.fetches.fetch_add(1, Ordering::SeqCst);
                if auth.down.load(Ordering::SeqCst) {
                    return Err(StatusCode::SERVICE_UNAVAILABLE);
                }
                let x = URL_SAFE_NO_PAD.encode([7u8; 32]);
                Ok(axum::Json(serde_json::json!({ "keys": [
                    { "kid": "k1", "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": x },
                ] })))
            })
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new().route("/.well-known/jwks.json", route);
        tokio::spawn(async move { axum::serve(listener, app).await });
        RemoteKeySet::new(&format!("http://{address}"), Duration::from_secs(2)).unwrap()
    }

    #[tokio::test]
    async fn a_known_kid_is_fetched_once_then_served_from_the_cache() {
        let auth = Auth::default();
        let keys = start(auth.clone()).await;
        for _ in 0..5 {
            assert!(keys.decoding_key("k1").await.unwrap().is_some());
        }
        assert_eq!(auth.fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_flood_of_unknown_kids_makes_at_most_one_fetch_per_second() {
        let auth = Auth::default();
        let keys = Arc::new(start(auth.clone()).await);
        let started = Instant::now();
        let lookups: Vec<_> = (0..50)
            .map(|i| {
                let keys = keys.clone();
                tokio::spawn(async move { keys.decoding_key(&format!("made-up-{i}")).await })
            })
            .collect();
        for lookup in lookups {
            assert!(lookup.await.unwrap().unwrap().is_none(), "an unknown kid has no key");
        }
        let fetches = auth.fetches.load(Ordering::SeqCst);
        let allowed = 1 + started.elapsed().as_secs() as u32;
        assert!(fetches <= allowed, "{fetches} fetches in {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn auth_down_is_unavailable_and_cached_keys_keep_verifying() {
        let auth = Auth::default();
        let keys = start(auth.clone()).await;
        assert!(keys.decoding_key("k1").await.unwrap().is_some());
        auth.down.store(true, Ordering::SeqCst);
        tokio::time::sleep(RemoteKeySet::MIN_REFRESH).await;

        assert!(keys.decoding_key("k2").await.is_err(), "a key that cannot be fetched is not a refusal");
        assert!(keys.decoding_key("k3").await.is_err(), "nor within the same second");
        assert!(keys.decoding_key("k1").await.unwrap().is_some(), "cached keys keep verifying");
    }
}
