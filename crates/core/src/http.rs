//! HTTP plumbing every Bestow process shares: request ids, access logs, metrics, panic
//! safety, body limits, health and readiness, and serving with graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::client::ForwardedClient;
use crate::problem::ApiError;
use crate::secret::ServiceCredential;

/// The request-id header, set on every request that lacks one and echoed on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Carries the shared [`ServiceCredential`] between split-mode services. The gateway strips
/// it (and every other `x-bestow-*` header) from client requests.
pub const SERVICE_TOKEN: HeaderName = HeaderName::from_static("x-bestow-service-token");

/// The client address the gateway saw, trusted only next to a valid [`SERVICE_TOKEN`].
pub const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// A split-mode service's base URL, without a trailing `/`, if `url` is one: the services talk
/// plain HTTP on a private network, at `http://host:port` with no path prefix.
pub fn service_base_url(url: &str) -> Option<&str> {
    let url = url.trim_end_matches('/');
    let uri = url.parse::<axum::http::Uri>().ok()?;
    (uri.scheme_str() == Some("http") && uri.host().is_some() && uri.path() == "/").then_some(url)
}

/// For a service behind the gateway: when a request presents the shared credential, its
/// `x-forwarded-for` becomes the [`crate::extract::ClientAddress`] (so login throttling counts
/// players, not the gateway); without it the header is ignored. The credential header never
/// reaches a handler.
pub fn trust_gateway(router: Router, credential: ServiceCredential) -> Router {
    router.layer(middleware::from_fn_with_state(credential, accept_forwarded_client))
}

async fn accept_forwarded_client(
    State(credential): State<ServiceCredential>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = request.headers_mut().remove(SERVICE_TOKEN);
    let vouched = presented.as_ref().and_then(|value| value.to_str().ok()).is_some_and(|v| credential.verifies(v));
    if vouched
        && let Some(address) = request
            .headers()
            .get(FORWARDED_FOR)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|value| value.trim().parse::<std::net::IpAddr>().ok())
    {
        request.extensions_mut().insert(ForwardedClient(address));
    }
    next.run(request).await
}

/// Wraps `router` with the layers every process applies, outermost first: request id (a
/// client's own kept only when short and plain), access log, panic to 500, metrics, the
/// whole body read within `limits` (408, 413). Unknown routes answer a 404 problem.
pub fn with_common_layers(router: Router, limits: BodyLimits) -> Router {
    router
        .fallback(|| async { ApiError::route_not_found() })
        .layer(DefaultBodyLimit::max(limits.max_bytes))
        .layer(middleware::from_fn_with_state(limits, read_body_in_time))
        .layer(middleware::from_fn(record_metrics))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal("handler panicked").into_response()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let request_id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    // The path only: query strings may carry values we would rather not log.
                    tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(middleware::map_request(drop_unfit_request_id))
}

/// How much of a request body a process accepts, and how long it waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// Longest request id kept from a client; longer ones, or ones with other than
/// `[A-Za-z0-9._:-]`, are replaced (they end up in every log line and response).
pub const MAX_REQUEST_ID_CHARS: usize = 128;

async fn drop_unfit_request_id(mut request: Request) -> Request {
    let fit = request.headers().get(REQUEST_ID).is_none_or(|value| {
        let bytes = value.as_bytes();
        bytes.len() <= MAX_REQUEST_ID_CHARS
            && !bytes.is_empty()
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    });
    if !fit {
        request.headers_mut().remove(REQUEST_ID);
    }
    request
}

/// Largest bulk body (`text/csv`, e.g. a million user ids), in bytes.
pub const MAX_BULK_BODY_BYTES: usize = 192 * 1024 * 1024;

/// The media types of a bulk body: CSV text, sent as `text/csv` or as plain bytes
/// (`application/octet-stream`, the one upload type every generated client can send).
pub const BULK_MEDIA_TYPES: [&str; 2] = ["text/csv", "application/octet-stream"];

/// Whether a request with `headers` carries a bulk body ([`BULK_MEDIA_TYPES`]), which its
/// handler reads as a stream (and the split-mode gateway forwards as one).
pub fn is_bulk(headers: &axum::http::HeaderMap) -> bool {
    headers.get(axum::http::header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).is_some_and(|value| {
        let value = value.trim_start().to_ascii_lowercase();
        BULK_MEDIA_TYPES.iter().any(|media_type| value.starts_with(media_type))
    })
}

/// Whether a request with `headers` is a form with files (`multipart/form-data`): the console's
/// upload of a LIST's members, which it streams on as CSV; read as a bulk body. Other handlers
/// refuse it by its media type, or read no more of it than their extractor's limit.
pub fn is_form_upload(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// `body` read as a bulk body: it fails past [`MAX_BULK_BODY_BYTES`], or when no frame comes
/// within `idle` of the one before (or of the start); [`body_refusal`] names either failure.
pub fn bulk_body(body: axum::body::Body, idle: Duration) -> axum::body::Body {
    axum::body::Body::new(http_body_util::Limited::new(IdleTimeout::new(body, idle), MAX_BULK_BODY_BYTES))
}

/// The answer to a request whose body could not be read: 413 past its limit, 408 when a bulk
/// body stopped arriving, else 400 (the client went away mid-body, or sent a broken one).
/// `error` is searched down its causes, however many bodies wrap the one that failed.
pub fn body_refusal(error: &(dyn std::error::Error + 'static)) -> ApiError {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if current.is::<http_body_util::LengthLimitError>() {
            return ApiError::PayloadTooLarge;
        }
        if current.is::<BodyIdle>() {
            return ApiError::RequestTimeout;
        }
        cause = current.source();
    }
    ApiError::BadRequest { code: "BODY_UNREADABLE", detail: "the request body could not be read".into() }
}

/// Reads the whole request body within the deadline before any handler sees it, so that a
/// client dripping its body holds nothing but its own connection, and only until the deadline.
///
/// A bulk body (`text/csv`, or a form with files) is not buffered: its handler reads it as a
/// stream, at most [`MAX_BULK_BODY_BYTES`], and each chunk must come within the deadline of the
/// one before. Handlers that do not stream refuse such a body by its media type before reading
/// it, or read at most their own small limit of it.
async fn read_body_in_time(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    // Most requests (every GET) carry no body at all: nothing to wait for.
    if http_body::Body::size_hint(request.body()).exact() == Some(0) {
        return next.run(request).await;
    }
    if is_bulk(request.headers()) || is_form_upload(request.headers()) {
        let (parts, body) = request.into_parts();
        return next.run(Request::from_parts(parts, bulk_body(body, limits.timeout))).await;
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(limits.timeout, axum::body::to_bytes(body, limits.max_bytes)).await {
        Err(_) => ApiError::RequestTimeout.into_response(),
        Ok(Err(error)) => body_refusal(&error).into_response(),
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
    }
}

/// A body that fails when no frame arrives within `idle` of the last one (or of the start).
struct IdleTimeout<B> {
    inner: B,
    idle: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<B> IdleTimeout<B> {
    fn new(inner: B, idle: Duration) -> Self {
        Self { inner, idle, deadline: Box::pin(tokio::time::sleep(idle)) }
    }
}

/// The bulk body stopped arriving.
#[derive(Debug, thiserror::Error)]
#[error("the body stopped arriving for longer than the body timeout")]
struct BodyIdle;

impl<B> http_body::Body for IdleTimeout<B>
where
    B: http_body::Body + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = B::Data;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        match std::pin::Pin::new(&mut self.inner).poll_frame(context) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + self.idle;
                self.deadline.as_mut().reset(next);
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => match self.deadline.as_mut().poll(context) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyIdle)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// The `method` label of request metrics: the standard methods by name, anything else as
/// `OTHER`, so that made-up methods cannot create new series.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // The route template, never the raw path: ids in paths would make a series each.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A dependency `/readyz` checks: a store, another service.
#[async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// Short name shown in the readiness report.
    fn name(&self) -> &'static str;
    /// `Err` with a reason when the dependency cannot serve requests.
    async fn check(&self) -> Result<(), String>;
}

/// A [`ReadinessCheck`] made of a name and an async probe, e.g. a store's `ping`.
pub struct Probe<F> {
    name: &'static str,
    probe: F,
}

impl<F> Probe<F> {
    pub fn new(name: &'static str, probe: F) -> Self {
        Self { name, probe }
    }
}

#[async_trait]
impl<F, Fut, E> ReadinessCheck for Probe<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    fn name(&self) -> &'static str {
        self.name
    }

    async fn check(&self) -> Result<(), String> {
        (self.probe)().await.map_err(|e| e.to_string())
    }
}

/// `/healthz` (the process is alive), `/readyz` (every dependency answers) and, unless the
/// metrics have their own listener ([`metrics_router`]), `/metrics`.
pub fn ops_router(checks: Vec<Arc<dyn ReadinessCheck>>, with_metrics: bool) -> Router {
    let router = Router::new()
        .route("/healthz", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/readyz", get(readiness).with_state(Arc::new(checks)));
    if with_metrics { router.merge(metrics_router()) } else { router }
}

/// `/metrics` alone, for a listener of its own (`metrics_listen`).
pub fn metrics_router() -> Router {
    Router::new().route("/metrics", get(render_metrics))
}

async fn readiness(State(checks): State<Arc<Vec<Arc<dyn ReadinessCheck>>>>) -> Response {
    let mut report = serde_json::Map::new();
    let mut ready = true;
    for check in checks.iter() {
        let outcome = tokio::time::timeout(Duration::from_secs(2), check.check()).await;
        let status = match outcome {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(reason)) => {
                tracing::warn!(dependency = check.name(), %reason, "not ready");
                ready = false;
                "unavailable".to_owned()
            }
            Err(_) => {
                ready = false;
                "timeout".to_owned()
            }
        };
        report.insert(check.name().to_owned(), status.into());
    }
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(json!({ "status": if ready { "ready" } else { "unavailable" }, "checks": report }))).into_response()
}

async fn render_metrics() -> Response {
    match crate::telemetry::metrics_handle() {
        Some(handle) => ([("content-type", "text/plain; version=0.0.4")], handle.render()).into_response(),
        None => ApiError::internal("no metrics recorder installed").into_response(),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}
