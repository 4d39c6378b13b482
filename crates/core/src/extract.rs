//! Extractors that authenticate the caller and check a permission before a handler runs.
//!
//! A handler's signature shows what it requires: `Authenticated` for any signed-in caller,
//! `Authorized<ManageUsers>` for a permission. Identity comes only from a verified bearer
//! token; headers such as `x-user-id` are never read.

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::{HeaderMap, header, request::Parts};

use crate::identity::Principal;
pub use crate::identity::{Requirement, require};
use crate::problem::ApiError;
use crate::token::TokenVerifier;

/// Any caller with a valid access token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    TokenVerifier: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(Self(principal.clone()));
        }
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized("a bearer token is required"))?;
        let verifier = TokenVerifier::from_ref(state);
        let principal = verifier.verify(token).await?;
        // Cache for a second extractor in the same request.
        parts.extensions.insert(principal.clone());
        Ok(Self(principal))
    }
}

/// The bearer token of a request, if any: `Authorization: Bearer <token>`, the scheme in any
/// case, spaces around the token ignored. An empty token is no token, so every caller answers
/// "a bearer token is required" for it rather than "invalid token".
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// A caller holding permission `R`: 401 without a valid token, 403 without the permission.
#[derive(Debug)]
pub struct Authorized<R: Requirement> {
    pub principal: Principal,
    requirement: PhantomData<R>,
}

impl<S, R> FromRequestParts<S> for Authorized<R>
where
    S: Send + Sync,
    TokenVerifier: FromRef<S>,
    R: Requirement,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        if !principal.can(R::PERMISSION) {
            return Err(ApiError::Forbidden);
        }
        Ok(Self { principal, requirement: PhantomData })
    }
}

/// The client's address, for per-address throttling: the address the gateway saw when the
/// request came through a trusted gateway ([`crate::http::trust_gateway`]), else the client as
/// [`crate::client::identify_client`] found it (the peer, or behind trusted proxies the
/// forwarded address), keyed by [`crate::client::limit_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub Option<std::net::IpAddr>);

pub use crate::client::ForwardedClient;

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ForwardedClient(address)) = parts.extensions.get::<ForwardedClient>() {
            return Ok(Self(Some(crate::client::limit_key(*address))));
        }
        if let Some(crate::client::ClientIp(address)) = parts.extensions.get::<crate::client::ClientIp>() {
            return Ok(Self(Some(*address)));
        }
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip());
        Ok(Self(peer.map(crate::client::limit_key)))
    }
}

/// The request id the request-id layer assigned (or the client sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let id = parts.headers.get(crate::http::REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(Self(id))
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use axum::Router;
    use axum::http::{HeaderName, Request};

    use super::ClientAddress;
    use crate::http::{FORWARDED_FOR, SERVICE_TOKEN, trust_gateway};
    use crate::secret::ServiceCredential;

    async fn client_address_seen(headers: &[(&HeaderName, &str)]) -> String {
        let router = Router::new()
            .route("/", get(|ClientAddress(address): ClientAddress| async move { format!("{address:?}") }));
        let router = trust_gateway(router, ServiceCredential::new("shared-secret-for-tests"));
        let mut request = Request::builder().uri("/");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = router.oneshot(request.body(Body::empty()).unwrap_or_default()).await;
        let body = response.map(|r| r.into_body()).map_err(|e| e.to_string());
        let bytes = axum::body::to_bytes(body.unwrap_or_default(), 1024).await.unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn a_forwarded_address_counts_only_next_to_the_credential() {
        let vouched =
            client_address_seen(&[(&SERVICE_TOKEN, "shared-secret-for-tests"), (&FORWARDED_FOR, "203.0.113.9")]).await;
        assert_eq!(vouched, "Some(203.0.113.9)");
        let forged = client_address_seen(&[(&SERVICE_TOKEN, "a-guess"), (&FORWARDED_FOR, "203.0.113.9")]).await;
        assert_eq!(forged, "None", "no connection info in this test, and the header is ignored");
        assert_eq!(client_address_seen(&[(&FORWARDED_FOR, "203.0.113.9")]).await, "None");
    }

    #[test]
    fn a_bearer_token_needs_the_scheme_and_a_non_empty_token() {
        let token_of = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            if let Ok(value) = axum::http::HeaderValue::from_str(value) {
                headers.insert(axum::http::header::AUTHORIZATION, value);
            }
            super::bearer_token(&headers).map(str::to_owned)
        };
        assert_eq!(token_of("Bearer abc.def"), Some("abc.def".to_owned()));
        assert_eq!(token_of("bearer abc"), Some("abc".to_owned()), "the scheme is case-insensitive");
        assert_eq!(token_of("BEARER abc"), Some("abc".to_owned()));
        assert_eq!(token_of("Bearer   abc  "), Some("abc".to_owned()), "spaces around the token are ignored");
        for no_token in ["Bearer ", "Bearer    ", "Bearer", "abc", "Basic abc", "Bearerabc", ""] {
            assert_eq!(token_of(no_token), None, "{no_token:?}");
        }
        assert_eq!(super::bearer_token(&axum::http::HeaderMap::new()), None, "no header");
    }
}
