//! HTTP clients for the calls Bestow makes: to its other services, and to the studio's reward
//! webhook and fact provider, which are usually `https://`.
//!
//! TLS is rustls on the *ring* provider, verifying certificates against the system's trusted
//! roots (on Linux the usual CA bundle, or the file named by `SSL_CERT_FILE`), so a studio
//! endpoint signed by a private CA is trusted by adding that CA to the system store.

use std::sync::Once;

/// A client builder whose TLS is ready to use. Every outbound client starts here.
pub fn client_builder() -> reqwest::ClientBuilder {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        // Err means another part of the process installed a provider first; that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}

/// A client with default settings (no timeouts): for tools and tests.
pub fn client() -> reqwest::Result<reqwest::Client> {
    client_builder().build()
}
