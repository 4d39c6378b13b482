//! The reverse proxy against real HTTP upstreams on loopback: header hygiene as the upstream
//! sees it, the 502/503/504 answers of a broken, absent or slow upstream, and a streamed answer
//! passed on as it comes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bestow_core::secret::ServiceCredential;
use bestow_gateway::routes::Upstream;
use bestow_gateway::{Proxy, ProxySettings, Upstreams};
use http_body_util::BodyExt;
use tokio::net::TcpListener;

const SECRET: &str = "a-shared-secret-of-tests";

/// Serves `router` on a free loopback port and returns its base URL.
async fn serve(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// An upstream that answers with the headers and body it received.
fn echo() -> Router {
    Router::new()
        .route(
            "/echo",
            any(|headers: HeaderMap, body: String| async move {
                let seen: BTreeMap<String, String> = headers
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("?").to_owned()))
                    .collect();
                let mut response = Json(serde_json::json!({ "headers": seen, "body": body })).into_response();
                response.headers_mut().insert("connection", "x-upstream-hop".parse().unwrap());
                response.headers_mut().insert("x-upstream-hop", "1".parse().unwrap());
                response.headers_mut().insert("x-upstream-kept", "1".parse().unwrap());
                response
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "too late"
            }),
        )
        .route(
            "/stream",
            get(|| async {
                let (chunks, receiver) = tokio::sync::mpsc::channel(2);
                tokio::spawn(async move {
                    let _ = chunks.send("first").await;
                    tokio::time::sleep(Duration::from_millis(600)).await;
                    let _ = chunks.send("second").await;
                });
                Body::new(ChannelBody(receiver))
            }),
        )
        .route(
            "/broken",
            get(|| async { Response::builder().header("content-length", "100").body(Body::from("short")).unwrap() }),
        )
}

fn proxy(auth: &str, events: &str, timeout: Duration) -> Proxy {
    let settings = ProxySettings { connect_timeout: Duration::from_millis(300), timeout, body_limit: 1024 };
    let upstreams = Upstreams { auth: auth.to_owned(), events: events.to_owned() };
    Proxy::new(upstreams, settings, ServiceCredential::new(SECRET)).unwrap()
}

fn request(path: &str, headers: &[(&str, &str)], body: &str) -> Request {
    let mut builder = Request::builder().method("POST").uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

async fn json_of(response: Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn the_upstream_sees_no_client_identity_headers_and_the_vouched_client_address() {
    let base = serve(echo()).await;
    let proxy = proxy(&base, "http://127.0.0.1:9", Duration::from_secs(2));
    let client: SocketAddr = "203.0.113.7:5555".parse().unwrap();
    let forged = [
        ("x-user-id", "someone-else"),
        ("x-user-roles", "ADMIN"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-bestow-service-token", "a-guess"),
        ("connection", "x-client-hop"),
        ("x-client-hop", "1"),
        ("authorization", "Bearer t"),
        ("x-request-id", "req-1"),
        ("content-type", "application/json"),
    ];
    let response = proxy.forward(Upstream::Auth, request("/echo?x=1", &forged, "{\"a\":1}"), Some(client.ip())).await;
    let response = response.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("x-upstream-hop").is_none(), "hop-by-hop answer headers dropped");
    assert!(response.headers().contains_key("x-upstream-kept"));
    let seen = json_of(response).await;
    let headers = &seen["headers"];
    for absent in ["x-user-id", "x-user-roles", "x-client-hop"] {
        assert!(headers.get(absent).is_none(), "{absent} reached the upstream: {headers}");
    }
    assert_eq!(headers["x-bestow-service-token"], SECRET, "replaced by the real credential");
    assert_eq!(headers["x-forwarded-for"], "203.0.113.7", "the gateway's own view of the client");
    assert_eq!(headers["authorization"], "Bearer t");
    assert_eq!(headers["x-request-id"], "req-1");
    assert_eq!(seen["body"], "{\"a\":1}");
}

/// Forwards `request` to the events upstream, expecting a refusal within `limit`; returns
/// the refusal's status.
async fn refused_within(proxy: &Proxy, request: Request<Body>, limit: Duration) -> StatusCode {
    let started = Instant::now();
    let error = proxy.forward(Upstream::Events, request, None).await.unwrap_err();
    assert!(started.elapsed() < limit, "{:?}", started.elapsed());
    error.status()
}

#[tokio::test]
async fn an_absent_upstream_is_a_prompt_503() {
    // A port that was just free: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let proxy = proxy(&format!("http://{closed}"), &format!("http://{closed}"), Duration::from_secs(5));
    let refusal = refused_within(&proxy, request("/echo", &[], ""), Duration::from_secs(1)).await;
    assert_eq!(refusal, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_within_the_timeout() {
    let base = serve(echo()).await;
    let proxy = proxy(&base, &base, Duration::from_millis(300));
    let slow = Request::builder().uri("/slow").body(Body::empty()).unwrap();
    assert_eq!(refused_within(&proxy, slow, Duration::from_millis(1500)).await, StatusCode::GATEWAY_TIMEOUT);
}

/// A request body whose sender stalls forever.
struct StalledBody;

impl axum::body::HttpBody for StalledBody {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

#[tokio::test]
async fn a_client_that_stalls_its_body_is_a_408_within_the_timeout() {
    let base = serve(echo()).await;
    let proxy = proxy(&base, &base, Duration::from_millis(300));
    let stalled = Request::builder().method("POST").uri("/echo").body(Body::new(StalledBody)).unwrap();
    assert_eq!(refused_within(&proxy, stalled, Duration::from_millis(1500)).await, StatusCode::REQUEST_TIMEOUT);
}

#[tokio::test]
async fn a_broken_answer_is_a_502_and_an_oversized_body_a_413() {
    let base = serve(echo()).await;
    let proxy = proxy(&base, &base, Duration::from_secs(2));
    let broken = Request::builder().uri("/broken").body(Body::empty()).unwrap();
    assert_eq!(proxy.forward(Upstream::Events, broken, None).await.unwrap_err().status(), StatusCode::BAD_GATEWAY);
    let oversized = request("/echo", &[], &"x".repeat(2048));
    assert_eq!(
        proxy.forward(Upstream::Auth, oversized, None).await.unwrap_err().status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

/// An answer body of unknown length: the chunks its channel gives, as they come.
struct ChannelBody(tokio::sync::mpsc::Receiver<&'static str>);

impl axum::body::HttpBody for ChannelBody {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|chunk| Ok(http_body::Frame::data(chunk.into()))))
    }
}

#[tokio::test]
async fn a_streamed_answer_is_passed_on_as_it_comes_even_past_the_timeout() {
    let base = serve(echo()).await;
    let proxy = proxy(&base, &base, Duration::from_millis(300));
    let started = Instant::now();
    let streamed = Request::builder().uri("/stream").body(Body::empty()).unwrap();
    let response = proxy.forward(Upstream::Events, streamed, None).await.unwrap();
    assert!(response.headers().get("content-length").is_none());
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first");
    assert!(started.elapsed() < Duration::from_millis(500), "the first chunk came before the last was sent");
    assert_eq!(body.collect().await.unwrap().to_bytes(), "second");
    assert!(started.elapsed() >= Duration::from_millis(600), "the whole body, after the call's timeout");
}
