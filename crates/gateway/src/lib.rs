//! The gateway: Bestow's single public entry.
//!
//! One route table ([`routes`]) decides which service owns a request and who may make it;
//! [`policy`] applies it together with per-address and per-user rate limits before any
//! service sees the request. Behind the policy, the services are reached in-process in
//! all-in-one mode ([`in_process`]) or over HTTP in split mode ([`proxied`], via [`proxy`]),
//! spread over each service's [`instances`].

mod bulk;
pub mod instances;
pub mod policy;
pub mod proxy;
pub mod rate_limit;
pub mod routes;
pub mod verified;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bestow_core::ApiError;
use bestow_core::client::{ClientIp, limit_key};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use policy::GatewayPolicy;
pub use proxy::{Proxy, ProxySettings, Upstreams};
pub use rate_limit::Rate;

/// All-in-one mode: the services' routers behind the gateway policy. The verified caller is
/// handed to the handlers with the request, so they do not verify the token a second time.
/// Paths no service has are caught too, so that they pass the policy (and its per-address
/// limit) exactly as in split mode.
pub fn in_process(services: Router, policy: Arc<GatewayPolicy>) -> Router {
    let unrouted = || async { ApiError::route_not_found() };
    // `/` is the console's (it redirects there).
    services.route("/{*path}", any(unrouted)).layer(middleware::from_fn_with_state(policy, admit_then_serve))
}

async fn admit_then_serve(State(policy): State<Arc<GatewayPolicy>>, mut request: Request, next: Next) -> Response {
    let client = client_address(&request);
    match policy.admit(request.method(), request.uri().path(), request.headers(), client).await {
        Ok(admitted) => {
            if let Some(principal) = admitted.principal {
                request.extensions_mut().insert(principal);
            }
            next.run(request).await
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// Split mode: every request not served by the gateway itself (health, metrics) is admitted
/// and then forwarded to its service.
pub fn proxied(policy: Arc<GatewayPolicy>, proxy: Arc<Proxy>) -> Router {
    // A catch-all route rather than a fallback: the process's own 404 fallback stays in place
    // and the gateway's static routes (health, docs) still take precedence.
    // `/` is the console's (it redirects there).
    Router::new().route("/{*path}", any(admit_then_forward)).with_state((policy, proxy))
}

async fn admit_then_forward(
    State((policy, proxy)): State<(Arc<GatewayPolicy>, Arc<Proxy>)>,
    request: Request,
) -> Response {
    let client = client_address(&request);
    let admitted = match policy.admit(request.method(), request.uri().path(), request.headers(), client).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.into_response(),
    };
    match proxy.forward(admitted.route, request, client).await {
        Ok(response) => response,
        Err(failure) => failure.into_response(),
    }
}

/// The client as the edge identified it (trusted proxies, IPv6 /64), else the peer.
fn client_address(request: &Request) -> Option<std::net::IpAddr> {
    if let Some(ClientIp(address)) = request.extensions().get::<ClientIp>() {
        return Some(*address);
    }
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| limit_key(info.0.ip()))
}

/// Browser access from other origins: `origins` is a list of exact origins, or `*` for any
/// (without credentials either way: tokens travel in the `Authorization` header). Empty
/// means no CORS headers at all, i.e. same-origin only.
pub fn cors(origins: &[String]) -> Result<Option<CorsLayer>, String> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow_origin = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|origin| HeaderValue::from_str(origin).map_err(|_| format!("`{origin}` is not a valid origin")))
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(values)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static(policy::API_KEY),
                bestow_core::http::REQUEST_ID,
            ])
            .expose_headers([header::ETAG, header::RETRY_AFTER, header::LOCATION, bestow_core::http::REQUEST_ID])
            .max_age(Duration::from_secs(600)),
    ))
}
