//! A stand-in for a game studio's reward service: a real HTTP server on loopback that
//! implements the webhook contract (idempotent grants, revokes as tombstones) and can be told
//! to fail, time out or refuse.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

pub const SECRET: &str = "webhook-test-secret";

/// How the granter misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Percentage of calls answered 503 before doing anything.
    pub fail_percent: u32,
    /// Percentage of calls that sleep past the client's timeout (after applying the grant).
    pub slow_percent: u32,
    /// Grants of rewards with this name are refused with 400.
    pub refuse_reward_name: Option<String>,
    /// Every revoke answers 503.
    pub revokes_down: bool,
    /// Every grant answers 503.
    pub grants_down: bool,
}

#[derive(Debug, Default)]
pub struct Ledger {
    /// Keys granted and not revoked.
    pub granted: HashSet<String>,
    /// Keys revoked (tombstones).
    pub revoked: HashSet<String>,
    /// How many times each key's grant was applied (must never exceed 1).
    pub applications: HashMap<String, u32>,
    pub grant_calls: u32,
    pub revoke_calls: u32,
    /// Calls whose signature did not verify.
    pub bad_signatures: u32,
}

#[derive(Clone, Default)]
pub struct TestGranter {
    pub faults: Arc<Mutex<Faults>>,
    pub ledger: Arc<Mutex<Ledger>>,
    counter: Arc<Mutex<u64>>,
}

impl TestGranter {
    /// Starts the server on a free loopback port; returns it and its base URL.
    pub async fn start(faults: Faults) -> (Self, String) {
        let granter = TestGranter { faults: Arc::new(Mutex::new(faults)), ..TestGranter::default() };
        let app = Router::new().route("/grant", post(grant)).route("/revoke", post(revoke)).with_state(granter.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (granter, format!("http://{addr}"))
    }

    /// Starts the server behind TLS, with a certificate for `localhost` issued by a CA made
    /// for this test; returns it, its `https://localhost:PORT` base URL, the CA certificate in
    /// PEM (to be trusted) and the number of failed TLS handshakes so far.
    pub async fn start_tls(faults: Faults) -> (Self, String, String, Arc<AtomicU32>) {
        let granter = TestGranter { faults: Arc::new(Mutex::new(faults)), ..TestGranter::default() };
        let app = Router::new().route("/grant", post(grant)).route("/revoke", post(revoke)).with_state(granter.clone());
        let (tls, ca_pem) = tls_for_localhost();
        let listener = TlsListener {
            tcp: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
            failed_handshakes: Arc::default(),
        };
        let (port, failed_handshakes) = (listener.tcp.local_addr().unwrap().port(), listener.failed_handshakes.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (granter, format!("https://localhost:{port}"), ca_pem, failed_handshakes)
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap() = faults;
    }

    pub fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap()
    }

    /// A deterministic pseudo-random percentage, so failures are spread over calls.
    fn roll(&self) -> u32 {
        let mut counter = self.counter.lock().unwrap();
        *counter = counter.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*counter >> 33) % 100) as u32
    }
}

fn verify(headers: &HeaderMap, body: &str) -> bool {
    let timestamp = headers.get("x-bestow-timestamp").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let signature = headers.get("x-bestow-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    signature == format!("sha256={}", bestow_events::grants::webhook::sign(SECRET, timestamp, body))
}

async fn grant(State(granter): State<TestGranter>, headers: HeaderMap, body: String) -> StatusCode {
    let faults = granter.faults.lock().unwrap().clone();
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    {
        let mut ledger = granter.ledger();
        ledger.grant_calls += 1;
        if !verify(&headers, &body) || key != request["grantKey"] {
            ledger.bad_signatures += 1;
            return StatusCode::UNAUTHORIZED;
        }
    }
    if faults.grants_down || granter.roll() < faults.fail_percent {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if faults.refuse_reward_name.as_deref() == request["rewardName"].as_str() {
        return StatusCode::BAD_REQUEST;
    }
    let status = {
        let mut ledger = granter.ledger();
        if ledger.revoked.contains(&key) {
            StatusCode::GONE
        } else if ledger.granted.contains(&key) {
            StatusCode::CONFLICT
        } else {
            ledger.granted.insert(key.clone());
            *ledger.applications.entry(key).or_default() += 1;
            StatusCode::OK
        }
    };
    if granter.roll() < faults.slow_percent {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    status
}

async fn revoke(State(granter): State<TestGranter>, headers: HeaderMap, body: String) -> StatusCode {
    let faults = granter.faults.lock().unwrap().clone();
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    {
        let mut ledger = granter.ledger();
        ledger.revoke_calls += 1;
        if !verify(&headers, &body) {
            ledger.bad_signatures += 1;
            return StatusCode::UNAUTHORIZED;
        }
    }
    if faults.revokes_down || granter.roll() < faults.fail_percent {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let mut ledger = granter.ledger();
    ledger.granted.remove(&key);
    ledger.revoked.insert(key);
    StatusCode::OK
}

/// A server configuration for `localhost` and the PEM of the CA that issued its certificate.
fn tls_for_localhost() -> (rustls::ServerConfig, String) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "Bestow test studio CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let certificate =
        rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let ca_pem = AsRef::<rcgen::Certificate>::as_ref(&ca).pem();
    (config, ca_pem)
}

/// Accepts TCP connections and completes their TLS handshake; failed handshakes are counted
/// and skipped.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    failed_handshakes: Arc<AtomicU32>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, address)) = self.tcp.accept().await else { continue };
            match self.acceptor.accept(stream).await {
                Ok(tls) => return (tls, address),
                Err(_) => {
                    self.failed_handshakes.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
