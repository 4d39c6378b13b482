//! The reverse proxy against real HTTP upstreams on loopback: header hygiene as the upstream
//! sees it, the 502/503/504 answers of a broken, absent or slow upstream, a streamed answer
//! passed on as it comes, which requests are sent to the next instance when theirs dies
//! mid-request, and bulk (`text/csv`) request bodies streamed through past the body limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bestow_core::secret::ServiceCredential;
use bestow_gateway::routes::{Access, Route, Upstream};
use bestow_gateway::{Proxy, ProxySettings, Upstreams};
use http_body_util::BodyExt;
use tokio::io::AsyncReadExt;
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

/// A route to `upstream` (the proxy forwards the request's own path: only the service and
/// whether it honours idempotency keys matter here).
const fn to(upstream: Upstream, honours_idempotency_key: bool) -> Route {
    Route { method: "POST", pattern: "/{any}", upstream, access: Access::Public, honours_idempotency_key }
}

const AUTH: Route = to(Upstream::Auth, false);
const EVENTS: Route = to(Upstream::Events, false);
/// Like the claim submission: a repeated `Idempotency-Key` is harmless.
const KEYED: Route = to(Upstream::Events, true);

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
    let response = proxy.forward(&AUTH, request("/echo?x=1", &forged, "{\"a\":1}"), Some(client.ip())).await;
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
    let error = proxy.forward(&EVENTS, request, None).await.unwrap_err();
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
    assert_eq!(proxy.forward(&EVENTS, broken, None).await.unwrap_err().status(), StatusCode::BAD_GATEWAY);
    let oversized = request("/echo", &[], &"x".repeat(2048));
    assert_eq!(proxy.forward(&AUTH, oversized, None).await.unwrap_err().status(), StatusCode::PAYLOAD_TOO_LARGE);
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
    let response = proxy.forward(&EVENTS, streamed, None).await.unwrap();
    assert!(response.headers().get("content-length").is_none());
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first");
    assert!(started.elapsed() < Duration::from_millis(500), "the first chunk came before the last was sent");
    assert_eq!(body.collect().await.unwrap().to_bytes(), "second");
    assert!(started.elapsed() >= Duration::from_millis(600), "the whole body, after the call's timeout");
}

/// How a failing instance treats the requests it is sent.
#[derive(Clone, Copy)]
enum Fault {
    /// Reads the request, then closes the connection without an answer, as a process killed
    /// mid-request does.
    Dies,
    /// Reads the request and never answers.
    Hangs,
}

/// An instance that fails every request it is sent as `fault` says; its base URL and how many
/// requests reached it.
async fn failing(fault: Fault) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut connection, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0_u8; 1024];
                while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                    match connection.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => head.extend_from_slice(&chunk[..read]),
                    }
                }
                counter.fetch_add(1, AtomicOrdering::SeqCst);
                if let Fault::Hangs = fault {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                drop(connection);
            });
        }
    });
    (base, seen)
}

/// A healthy instance answering `/echo` with the body and `Idempotency-Key` it received; its
/// base URL and how many requests reached it.
async fn healthy() -> (String, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let router = Router::new().route(
        "/echo",
        any(move |headers: HeaderMap, body: String| {
            counter.fetch_add(1, AtomicOrdering::SeqCst);
            let key = headers.get("idempotency-key").map(|key| key.to_str().unwrap_or("?").to_owned());
            async move { Json(serde_json::json!({ "body": body, "key": key })) }
        }),
    );
    (serve(router).await, seen)
}

const KEY: (&str, &str) = ("idempotency-key", "0b0f3a3e-8a5e-4d5c-9a4e-3f1f6f0c2d11");

fn get_request(path: &str) -> Request {
    Request::builder().uri(path).body(Body::empty()).unwrap()
}

/// Whose requests a failing first instance gets resent to the healthy second one: the
/// answer's status, and how many requests each instance saw.
async fn through_a_dying_first_instance(route: &Route, request: Request) -> (StatusCode, usize, usize) {
    let (dying, died) = failing(Fault::Dies).await;
    let (alive, answered) = healthy().await;
    // A fresh proxy sends its first request to the first instance listed.
    let proxy = proxy("http://127.0.0.1:9", &format!("{dying},{alive}"), Duration::from_secs(5));
    let status = match proxy.forward(route, request, None).await {
        Ok(response) => {
            let status = response.status();
            let echoed = json_of(response).await;
            assert_eq!((echoed["body"].as_str(), echoed["key"].as_str()), (Some("{\"a\":1}"), Some(KEY.1)), "{echoed}");
            status
        }
        Err(error) => error.status(),
    };
    (status, died.load(AtomicOrdering::SeqCst), answered.load(AtomicOrdering::SeqCst))
}

#[tokio::test]
async fn a_get_or_a_keyed_request_is_resent_to_the_next_instance_when_its_instance_dies_mid_request() {
    let (dying, died) = failing(Fault::Dies).await;
    let (alive, answered) = healthy().await;
    let proxy = proxy("http://127.0.0.1:9", &format!("{dying},{alive}"), Duration::from_secs(5));
    let started = Instant::now();
    let response = proxy.forward(&EVENTS, get_request("/echo"), None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!((died.load(AtomicOrdering::SeqCst), answered.load(AtomicOrdering::SeqCst)), (1, 1));
    // The instance that failed is skipped for a while: the next requests go to the other.
    for _ in 0..4 {
        assert_eq!(proxy.forward(&EVENTS, get_request("/echo"), None).await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!((died.load(AtomicOrdering::SeqCst), answered.load(AtomicOrdering::SeqCst)), (1, 5));

    // A claim with its key: the same body and key reach the next instance.
    let keyed = request("/echo", &[KEY], "{\"a\":1}");
    assert_eq!(through_a_dying_first_instance(&KEYED, keyed).await, (StatusCode::OK, 1, 1));
}

#[tokio::test]
async fn a_request_that_may_not_be_repeated_gets_its_instances_failure_as_the_answer() {
    // No key: a POST the first instance may have carried out is not sent again.
    let unkeyed = request("/echo", &[], "{\"a\":1}");
    assert_eq!(through_a_dying_first_instance(&KEYED, unkeyed).await, (StatusCode::BAD_GATEWAY, 1, 0));
    // A key on a route whose service ignores keys promises nothing.
    let ignored = request("/echo", &[KEY], "{\"a\":1}");
    assert_eq!(through_a_dying_first_instance(&EVENTS, ignored).await, (StatusCode::BAD_GATEWAY, 1, 0));
    for method in ["PUT", "PATCH", "DELETE"] {
        let mut unkeyed = request("/echo", &[], "{\"a\":1}");
        *unkeyed.method_mut() = method.parse().unwrap();
        assert_eq!(through_a_dying_first_instance(&KEYED, unkeyed).await, (StatusCode::BAD_GATEWAY, 1, 0), "{method}");
    }
}

#[tokio::test]
async fn a_request_is_resent_once_at_most() {
    let (first, first_saw) = failing(Fault::Dies).await;
    let (second, second_saw) = failing(Fault::Dies).await;
    let (alive, answered) = healthy().await;
    let proxy = proxy("http://127.0.0.1:9", &format!("{first},{second},{alive}"), Duration::from_secs(5));
    let refusal = refused_within(&proxy, get_request("/echo"), Duration::from_secs(1)).await;
    assert_eq!(refusal, StatusCode::BAD_GATEWAY);
    let seen = [&first_saw, &second_saw, &answered].map(|seen| seen.load(AtomicOrdering::SeqCst));
    assert_eq!(seen, [1, 1, 0], "the first instance, one resend, no third try");
}

#[tokio::test]
async fn a_request_without_an_answer_in_time_is_not_resent() {
    let (hanging, hung) = failing(Fault::Hangs).await;
    let (alive, answered) = healthy().await;
    let proxy = proxy("http://127.0.0.1:9", &format!("{hanging},{alive}"), Duration::from_millis(300));
    let keyed = request("/echo", &[KEY], "{}");
    let refusal = refused_within(&proxy, keyed, Duration::from_millis(1500)).await;
    assert_eq!(refusal, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!((hung.load(AtomicOrdering::SeqCst), answered.load(AtomicOrdering::SeqCst)), (1, 0));
}

#[tokio::test]
async fn a_single_instance_dying_mid_request_is_a_prompt_502_even_for_a_keyed_request() {
    let (dying, died) = failing(Fault::Dies).await;
    let proxy = proxy("http://127.0.0.1:9", &dying, Duration::from_secs(5));
    let keyed = request("/echo", &[KEY], "{}");
    let refusal = refused_within(&proxy, keyed, Duration::from_secs(1)).await;
    assert_eq!((refusal, died.load(AtomicOrdering::SeqCst)), (StatusCode::BAD_GATEWAY, 1));
}

/// What an upstream made of a bulk body: the bytes and lines it read, and whether the body
/// broke off.
#[derive(Default)]
struct Received {
    bytes: AtomicUsize,
    lines: AtomicUsize,
    broken: std::sync::atomic::AtomicBool,
}

/// An upstream whose `/members` reads its body as a stream, counting bytes and lines as they
/// come (so that a test can watch them arrive), and answers the counts.
async fn counting() -> (String, Arc<Received>) {
    let received = Arc::new(Received::default());
    let seen = received.clone();
    let router = Router::new().route(
        "/members",
        any(move |body: Body| async move {
            let mut body = body;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else {
                    seen.broken.store(true, AtomicOrdering::SeqCst);
                    return StatusCode::BAD_REQUEST.into_response();
                };
                if let Ok(chunk) = frame.into_data() {
                    seen.lines.fetch_add(chunk.iter().filter(|byte| **byte == b'\n').count(), AtomicOrdering::SeqCst);
                    seen.bytes.fetch_add(chunk.len(), AtomicOrdering::SeqCst);
                }
            }
            let count = |counter: &AtomicUsize| counter.load(AtomicOrdering::SeqCst);
            Json(serde_json::json!({ "bytes": count(&seen.bytes), "lines": count(&seen.lines) })).into_response()
        }),
    );
    (serve(router).await, received)
}

/// A client body that sends what its channel gives, as it comes, and stalls while the
/// channel is open and empty.
struct ClientBody(tokio::sync::mpsc::Receiver<axum::body::Bytes>);

impl axum::body::HttpBody for ClientBody {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|chunk| Ok(http_body::Frame::data(chunk))))
    }
}

/// A `PUT` of a CSV body fed by the returned sender.
fn csv_upload() -> (Request, tokio::sync::mpsc::Sender<axum::body::Bytes>) {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let request = Request::builder()
        .method("PUT")
        .uri("/members")
        .header("content-type", "text/csv")
        .body(Body::new(ClientBody(receiver)))
        .unwrap();
    (request, sender)
}

/// Lines a chunk of [`send_chunks`] holds, each a user id of 20 bytes (newline included).
const LINES_A_CHUNK: usize = 1024;

/// Sends `chunks` chunks of user ids (20 KiB each), the first numbered `first`.
async fn send_chunks(sender: &tokio::sync::mpsc::Sender<axum::body::Bytes>, first: usize, chunks: usize) {
    for chunk in first..first + chunks {
        let lines = chunk * LINES_A_CHUNK..(chunk + 1) * LINES_A_CHUNK;
        let chunk: String = lines.map(|line| format!("user-{line:014}\n")).collect();
        sender.send(chunk.into()).await.unwrap();
    }
}

/// Waits until `condition` holds, for 5 s at most.
async fn eventually(condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < Duration::from_secs(5), "never happened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_bulk_body_is_passed_on_as_it_comes_far_past_the_body_limit() {
    let (base, received) = counting().await;
    // A body limit of 1 KiB: a buffered 20 MB body would be a 413.
    let proxy = proxy("http://127.0.0.1:9", &base, Duration::from_secs(5));
    let (upload, sender) = csv_upload();
    let client = tokio::spawn(async move {
        send_chunks(&sender, 0, 512).await;
        // The upstream reads the first half before the client sent the second.
        eventually(|| received.bytes.load(AtomicOrdering::SeqCst) > 0).await;
        send_chunks(&sender, 512, 512).await;
    });
    let response = proxy.forward(&EVENTS, upload, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    client.await.unwrap();
    assert_eq!(json_of(response).await, serde_json::json!({ "bytes": 20 * 1024 * 1024, "lines": 1_048_576 }));
}

#[tokio::test]
async fn a_json_body_past_the_limit_is_still_a_413() {
    let (base, received) = counting().await;
    let proxy = proxy("http://127.0.0.1:9", &base, Duration::from_secs(2));
    let json = request("/members", &[("content-type", "application/json")], &format!("\"{}\"", "x".repeat(2048)));
    assert_eq!(proxy.forward(&EVENTS, json, None).await.unwrap_err().status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(received.bytes.load(AtomicOrdering::SeqCst), 0, "nothing was forwarded");
}

#[tokio::test]
async fn a_bulk_body_that_stalls_past_the_idle_time_is_cut_with_a_408() {
    let (base, received) = counting().await;
    let proxy = proxy("http://127.0.0.1:9", &base, Duration::from_millis(300));
    let (upload, sender) = csv_upload();
    send_chunks(&sender, 0, 2).await;
    // The sender is kept, and sends nothing more.
    let refusal = refused_within(&proxy, upload, Duration::from_millis(1500)).await;
    assert_eq!(refusal, StatusCode::REQUEST_TIMEOUT);
    eventually(|| received.broken.load(AtomicOrdering::SeqCst)).await;
    assert!(received.bytes.load(AtomicOrdering::SeqCst) > 0, "the upstream had the first chunks");
    drop(sender);
}

#[tokio::test]
async fn a_bulk_body_that_takes_longer_than_the_timeout_but_keeps_coming_is_forwarded() {
    let (base, _) = counting().await;
    let proxy = proxy("http://127.0.0.1:9", &base, Duration::from_millis(300));
    let (upload, sender) = csv_upload();
    let client = tokio::spawn(async move {
        for round in 0..8 {
            send_chunks(&sender, round, 1).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    });
    let response = proxy.forward(&EVENTS, upload, None).await.unwrap();
    client.await.unwrap();
    assert_eq!(json_of(response).await, serde_json::json!({ "bytes": 8 * 20 * 1024, "lines": 8 * LINES_A_CHUNK }));
}

#[tokio::test]
async fn a_bulk_body_goes_to_one_instance_unless_the_first_could_not_be_reached() {
    let csv = [("content-type", "text/csv"), KEY];
    // Read by an instance that died: never sent again, even with a key the route honours.
    let sent = request("/echo", &csv, "{\"a\":1}");
    assert_eq!(through_a_dying_first_instance(&KEYED, sent).await, (StatusCode::BAD_GATEWAY, 1, 0));

    // Not read at all (nothing listens at the first instance): the next instance has it.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let (alive, answered) = healthy().await;
    let proxy = proxy("http://127.0.0.1:9", &format!("http://{closed},{alive}"), Duration::from_secs(5));
    let response = proxy.forward(&KEYED, request("/echo", &csv, "user-1\nuser-2\n"), None).await.unwrap();
    assert_eq!(json_of(response).await["body"], "user-1\nuser-2\n");
    assert_eq!(answered.load(AtomicOrdering::SeqCst), 1);
}

#[tokio::test]
async fn a_service_that_stops_taking_a_bulk_body_is_a_504_within_the_timeout() {
    let (hanging, hung) = failing(Fault::Hangs).await;
    let proxy = proxy("http://127.0.0.1:9", &hanging, Duration::from_millis(300));
    let (upload, sender) = csv_upload();
    // The client would send for ever; the service reads the request's head and no more.
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let client = tokio::spawn(async move {
        for chunk in 0.. {
            send_chunks(&sender, chunk, 1).await;
            counter.fetch_add(1, AtomicOrdering::SeqCst);
        }
    });
    let refusal = refused_within(&proxy, upload, Duration::from_millis(1500)).await;
    assert_eq!((refusal, hung.load(AtomicOrdering::SeqCst)), (StatusCode::GATEWAY_TIMEOUT, 1));
    assert!(sent.load(AtomicOrdering::SeqCst) > 0, "the body was flowing before the service stopped taking it");
    client.abort();
}
