//! The split-mode reverse proxy: forwards an admitted request to its service over HTTP.
//!
//! Header hygiene both ways: hop-by-hop headers are dropped; from the client, so is anything
//! that could pass for identity or for our service credential (`x-bestow-*`, `x-user-*`,
//! forwarding headers), and the gateway adds its own `x-forwarded-for` vouched for by the
//! shared credential. The request id travels unchanged. Requests and most answers are small
//! JSON documents, so they are buffered (within the body limit); an answer the service streams
//! (an export, sent without a `Content-Length`) is streamed on, and so is a bulk request body
//! (`text/csv`, a LIST audience's members; the `bulk` module), within the edge's bulk limits.
//!
//! A service may run as several instances ([`Instances`]): requests are spread over them, and
//! one that refuses a connection is skipped, the request going to the next instance. An
//! instance that fails after it was sent the request (the connection reset or closed before
//! the answer's head: typically a process killed mid-request) is skipped the same way, and the
//! request is sent once more, to the next instance, when that is safe ([`may_resend`]): a
//! `GET`/`HEAD`, or a request whose `Idempotency-Key` the route honours. Requests are buffered
//! anyway (within the body limit), so a resend costs no extra memory. A bulk body is not, so
//! it is never resent: it goes to the next instance only when the first could not be connected
//! to, before reading any of it. A request that got no answer head in time is never resent:
//! its instance may still be working on it, and a slow instance is more often an overloaded
//! database than a dead process, where sending the same work again would only add to the load.
//! Resends are counted in `gateway_resends_total`.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, header};
use axum::response::Response;
use bestow_core::ApiError;
use bestow_core::http::{FORWARDED_FOR, SERVICE_TOKEN, body_refusal, is_bulk};
use bestow_core::secret::ServiceCredential;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::bulk::BulkUpload;
use crate::instances::Instances;
use crate::routes::{Route, Upstream};

/// Where the services listen: each a comma-separated list of `http://host:port` instances.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub auth: String,
    pub events: String,
}

/// Limits of one proxied call.
#[derive(Debug, Clone, Copy)]
pub struct ProxySettings {
    /// Time to establish a connection to a service.
    pub connect_timeout: Duration,
    /// Time for the whole call, answer included. A bulk body may take longer: the client may
    /// pause this long between chunks, and the service too before it takes the next one or,
    /// once the body has ended, answers.
    pub timeout: Duration,
    /// Largest request body forwarded.
    pub body_limit: usize,
}

/// Forwards requests to the services.
///
/// A plain HTTP/1.1 client with pooled keep-alive connections: the services are addressed by
/// `http://host:port` on a private network, so the general-purpose client's URL and proxy
/// handling would only add work to every request.
pub struct Proxy {
    client: Client<HttpConnector, Body>,
    auth: Instances,
    events: Instances,
    credential: ServiceCredential,
    body_limit: usize,
    timeout: Duration,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("auth", &self.auth).field("events", &self.events).finish_non_exhaustive()
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Client headers that look like identity or forwarding information: whole namespaces
/// (ours included, which carries the service credential) and single names. The services
/// ignore them all; the gateway makes sure they never see them.
const SPOOFABLE_PREFIXES: [&str; 4] = ["x-bestow-", "x-user-", "x-forwarded-", "x-auth-request-"];
const SPOOFABLE: [&str; 5] = ["x-roles", "x-remote-user", "remote-user", "x-real-ip", "forwarded"];

impl Proxy {
    pub fn new(upstreams: Upstreams, settings: ProxySettings, credential: ServiceCredential) -> Result<Self, String> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(settings.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        let (auth, events) = (Instances::parse(&upstreams.auth)?, Instances::parse(&upstreams.events)?);
        Ok(Self { client, auth, events, credential, body_limit: settings.body_limit, timeout: settings.timeout })
    }

    /// Sends `request` to the service of `route` and returns its answer, or the 502/503/504
    /// that explains why there is none.
    pub async fn forward(&self, route: &Route, request: Request, client: Option<IpAddr>) -> Result<Response, ApiError> {
        let upstream = route.upstream;
        let (mut parts, body) = request.into_parts();
        let instances = match upstream {
            Upstream::Auth => &self.auth,
            Upstream::Events => &self.events,
        };
        let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
        let payload = self.payload(&parts.headers, body).await?;

        let resendable =
            payload.is_replayable() && may_resend(&parts.method, &parts.headers, route.honours_idempotency_key);
        let headers = self.outgoing_headers(std::mem::take(&mut parts.headers), client);

        // Set while the request is being sent again, until the resend is counted (here, or
        // below when the timeout overtakes it).
        let resending = AtomicBool::new(false);
        let call = async {
            let mut refused = None;
            // The failure of the instance that was sent the request, while a resend is due.
            let mut failed: Option<String> = None;
            for index in instances.order(Instant::now()) {
                let Some(body) = payload.body_for_instance() else {
                    break;
                };
                if failed.is_some() {
                    resending.store(true, Ordering::Relaxed);
                }
                let uri: Uri = format!("{}{path}", instances.base(index))
                    .parse()
                    .map_err(|error| ApiError::BadGateway(format!("{upstream:?}: bad target {path:?}: {error}")))?;
                let mut outgoing = axum::http::Request::new(body);
                *outgoing.method_mut() = parts.method.clone();
                *outgoing.uri_mut() = uri;
                *outgoing.headers_mut() = headers.clone();
                let answer = match self.client.request(outgoing).await {
                    Ok(answer) => answer,
                    // Refused or not connected within the connect timeout: nothing was sent,
                    // so the next instance gets the same request.
                    Err(error) if error.is_connect() => {
                        instances.refused(index, Instant::now());
                        refused = Some(format!("{upstream:?} at {}: {error}", instances.base(index)));
                        continue;
                    }
                    // Sent, and no answer: the instance may have acted on the request before
                    // it failed. It is skipped for a while; the request goes to the next
                    // instance once, if that is safe.
                    Err(error) => {
                        // The client's bulk body failed mid-way: the instance is not to blame.
                        if let Some(refusal) = payload.client_failure() {
                            return Err(refusal);
                        }
                        instances.refused(index, Instant::now());
                        let failure = format!("{upstream:?} at {}: {error}", instances.base(index));
                        if resendable && failed.is_none() {
                            failed = Some(failure);
                            continue;
                        }
                        if resending.swap(false, Ordering::Relaxed) {
                            count_resend(upstream, "failed");
                        }
                        return Err(ApiError::BadGateway(failure));
                    }
                };
                instances.answered(index);
                if resending.swap(false, Ordering::Relaxed) {
                    count_resend(upstream, "answered");
                }
                let (parts, body) = answer.into_parts();
                // A body of unknown length is one the service streams (a CSV export of every
                // row): it is passed on as it comes, so the gateway holds a chunk, not the
                // file, and the timeout covers the answer's head only.
                if !parts.headers.contains_key(header::CONTENT_LENGTH) {
                    return Ok((parts, Body::new(body)));
                }
                let body =
                    body.collect().await.map_err(|error| ApiError::BadGateway(format!("{upstream:?}: {error}")))?;
                return Ok::<_, ApiError>((parts, Body::from(body.to_bytes())));
            }
            match failed {
                // No other instance took the request: its own failure is the answer.
                Some(failure) => {
                    if resending.swap(false, Ordering::Relaxed) {
                        count_resend(upstream, "failed");
                    }
                    Err(ApiError::BadGateway(failure))
                }
                None => Err(ApiError::Unavailable(refused.unwrap_or_else(|| format!("{upstream:?}: no instance")))),
            }
        };
        let answered = match &payload {
            Payload::Buffered(_) => tokio::time::timeout(self.timeout, call).await.ok(),
            Payload::Streamed(upload) => upload.unless_service_idle(self.timeout, call).await,
        };
        let (parts, body) = answered.ok_or_else(|| {
            if resending.load(Ordering::Relaxed) {
                count_resend(upstream, "failed");
            }
            ApiError::GatewayTimeout(format!("{upstream:?}: no answer within {} ms", self.timeout.as_millis()))
        })??;
        let mut response = Response::from_parts(parts, body);
        drop_connection_headers(response.headers_mut());
        Ok(response)
    }

    /// The client's `headers` as the service is to see them: without connection or identity
    /// headers, with the service credential and the client address the gateway vouches for.
    fn outgoing_headers(&self, mut headers: HeaderMap, client: Option<IpAddr>) -> HeaderMap {
        drop_connection_headers(&mut headers);
        drop_client_identity(&mut headers);
        if let Ok(value) = HeaderValue::from_str(self.credential.presented()) {
            headers.insert(SERVICE_TOKEN, value);
        }
        if let Some(address) = client
            && let Ok(value) = HeaderValue::from_str(&address.to_string())
        {
            headers.insert(FORWARDED_FOR, value);
        }
        headers
    }

    /// The request body as it will be forwarded. A bulk body is passed on as it comes. Any
    /// other is read whole, so that it can be sent to another instance: within the body limit
    /// (else 413), the client getting as long to send it as a service gets to answer (else 408).
    async fn payload(&self, headers: &HeaderMap, body: Body) -> Result<Payload, ApiError> {
        let empty = http_body::Body::size_hint(&body).exact() == Some(0);
        if is_bulk(headers) && !empty {
            return Ok(Payload::Streamed(BulkUpload::new(body, self.timeout)));
        }
        let bytes = tokio::time::timeout(self.timeout, axum::body::to_bytes(body, self.body_limit))
            .await
            .map_err(|_| ApiError::RequestTimeout)?
            .map_err(|error| body_refusal(&error))?;
        Ok(Payload::Buffered(bytes))
    }
}

/// A request body on its way to a service.
enum Payload {
    /// Read whole: the same bytes can go to any instance, as often as need be.
    Buffered(Bytes),
    /// A bulk body, passed on as it comes: to one instance.
    Streamed(Arc<BulkUpload>),
}

impl Payload {
    /// Whether the body could be sent again after an instance read it.
    const fn is_replayable(&self) -> bool {
        matches!(self, Self::Buffered(_))
    }

    /// The body to send to the next instance tried, unless it cannot have it any more.
    fn body_for_instance(&self) -> Option<Body> {
        match self {
            Self::Buffered(bytes) => Some(Body::from(bytes.clone())),
            Self::Streamed(upload) => upload.body_for_instance(),
        }
    }

    /// Why the call failed on the client's side, if it did ([`BulkUpload::client_failure`]).
    fn client_failure(&self) -> Option<ApiError> {
        match self {
            Self::Buffered(_) => None,
            Self::Streamed(upload) => upload.client_failure(),
        }
    }
}

/// Whether a request may be sent to a second instance after the first one failed with the
/// request sent and no answer (it may have acted on it): a `GET` or `HEAD`, which changes
/// nothing, or a request with an `Idempotency-Key` on a route whose service answers a repeated
/// key with the first request's outcome. Anything else (a `POST`, `PUT`, `PATCH` or `DELETE`
/// without a key, or with a key the route ignores) could be carried out twice, so its failure
/// is the answer.
pub fn may_resend(method: &Method, headers: &HeaderMap, route_honours_key: bool) -> bool {
    if *method == Method::GET || *method == Method::HEAD {
        return true;
    }
    route_honours_key && headers.get(IDEMPOTENCY_KEY).is_some_and(|key| !key.is_empty())
}

/// The header a client names its request with, to make a repetition harmless.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Counts a request sent again to another instance, by how the resend ended: `answered` (the
/// other instance answered) or `failed` (it failed too, refused or gave no answer in time).
fn count_resend(upstream: Upstream, outcome: &'static str) {
    let upstream = match upstream {
        Upstream::Auth => "auth",
        Upstream::Events => "events",
    };
    metrics::counter!("gateway_resends_total", "upstream" => upstream, "outcome" => outcome).increment(1);
}

/// Removes what describes one connection rather than the message: hop-by-hop headers and
/// those `Connection` names, plus `Host` and `Content-Length`, which are set anew for the next
/// hop.
fn drop_connection_headers(headers: &mut HeaderMap) {
    let named_by_connection: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named_by_connection {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::HOST);
    headers.remove(header::CONTENT_LENGTH);
}

/// Removes everything a client could pass off as identity, forwarding information or our
/// service credential.
fn drop_client_identity(headers: &mut HeaderMap) {
    let spoofable: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            SPOOFABLE.contains(&name) || SPOOFABLE_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
        })
        .cloned()
        .collect();
    for name in spoofable {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, X-Secret-Hop"));
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        headers.insert(header::HOST, HeaderValue::from_static("example"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("x-request-id", HeaderValue::from_static("abc"));
        drop_connection_headers(&mut headers);
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "x-request-id"]);
    }

    #[test]
    fn only_reads_and_requests_with_a_key_their_route_honours_may_be_resent() {
        let keyed = {
            let mut headers = HeaderMap::new();
            headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("0b0f3a3e-8a5e-4d5c-9a4e-3f1f6f0c2d11"));
            headers
        };
        let empty_key = {
            let mut headers = HeaderMap::new();
            headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static(""));
            headers
        };
        let none = HeaderMap::new();
        // Reads change nothing: always, key or not, whatever the route.
        for method in [Method::GET, Method::HEAD] {
            for (headers, honours) in [(&none, false), (&none, true), (&keyed, false)] {
                assert!(may_resend(&method, headers, honours), "{method}");
            }
        }
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(may_resend(&method, &keyed, true), "{method} with a key the route honours");
            assert!(!may_resend(&method, &keyed, false), "{method} with a key the route ignores");
            assert!(!may_resend(&method, &none, true), "{method} without a key");
            assert!(!may_resend(&method, &empty_key, true), "{method} with an empty key");
        }
    }

    #[test]
    fn identity_namespaces_and_names_are_removed_from_client_headers() {
        let mut headers = HeaderMap::new();
        for name in ["x-bestow-service-token", "x-bestow-anything", "x-user-id", "x-user-tenant", "x-forwarded-for"] {
            headers.insert(name, HeaderValue::from_static("guess"));
        }
        for name in ["x-auth-request-email", "x-real-ip", "forwarded", "x-roles", "x-api-key", "authorization"] {
            headers.insert(name, HeaderValue::from_static("guess"));
        }
        drop_client_identity(&mut headers);
        let mut kept: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["authorization", "x-api-key"]);
    }
}
