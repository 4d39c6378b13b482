//! Starting the application in-process (port 0, temporary data dir) and talking to it.

#![allow(dead_code)]

use std::net::SocketAddr;

use std::time::{Duration, Instant};

use bestow::{Application, Config};
use bestow_core::time::Clock;
use bestow_events::domain::saga::ClaimStatus;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const PASSWORD: &str = "correct-horse-battery";

/// A running all-in-one server.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The API at this server, for calls whose status a test asserts itself.
    pub api: Client,
    pub data_dir: TempDir,
    pub config: Config,
    /// This server's business clock, its own: moving it (`clock.travel`) moves this server's
    /// time alone, not the process's nor another test's.
    pub clock: Clock,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// The configuration tests start from: cheap bcrypt, a known admin password, and no rate
/// limits (every test client shares one loopback address; the limits have their own tests).
pub fn test_config(data_dir: &TempDir) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().expect("address");
    config.storage.data_dir = data_dir.path().to_owned();
    config.auth.admin_password = Some(ADMIN_PASSWORD.into());
    config.auth.bcrypt_cost = 4;
    config.gateway.rate_limit_address_per_sec = 0;
    config.gateway.rate_limit_user_per_sec = 0;
    config
}

impl TestApp {
    pub async fn spawn() -> Self {
        let dir = TempDir::new().expect("temp dir");
        let config = test_config(&dir);
        Self::spawn_with(dir, config).await
    }

    /// A server on [`test_config`] as `configure` changes it.
    pub async fn spawn_configured(configure: impl FnOnce(&mut Config)) -> Self {
        let dir = TempDir::new().expect("temp dir");
        let mut config = test_config(&dir);
        configure(&mut config);
        Self::spawn_with(dir, config).await
    }

    pub async fn spawn_with(data_dir: TempDir, config: Config) -> Self {
        init_test_log();
        let app = Application::build(&config).await.expect("application builds");
        let addr = app.local_addr().expect("bound");
        let clock = app.clock().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let api = Client::new(&format!("http://{addr}"));
        Self { addr, api, data_dir, config, clock, stop, task }
    }

    /// Shuts down gracefully and hands back the data dir and config for a restart.
    pub async fn stop(self) -> (TempDir, Config) {
        let _ = self.stop.send(());
        self.task.await.expect("server task").expect("server ran");
        (self.data_dir, self.config)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        self.api.request(method, path, token)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::GET, path, token).send().await.expect("request sent")
    }

    /// `GET path` as `token`, its body read as JSON whatever the status.
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> Value {
        self.get(path, token).await.json().await.expect("json body")
    }

    pub async fn send_json(&self, method: Method, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.request(method, path, token).json(body).send().await.expect("request sent")
    }

    /// Sends `body` as it is, labelled JSON.
    pub async fn send_raw(&self, method: Method, path: &str, token: Option<&str>, body: &'static str) -> Response {
        let request = self.request(method, path, token).header("content-type", "application/json");
        request.body(body).send().await.expect("request sent")
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send_json(Method::POST, path, token, body).await
    }

    pub async fn register(&self, username: &str, password: &str) -> Response {
        self.post("/api/v1/auth/register", None, &json!({ "username": username, "password": password })).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post("/api/v1/auth/login", None, &json!({ "username": username, "password": password })).await
    }

    /// Logs in and returns the session body, asserting success.
    pub async fn session(&self, username: &str, password: &str) -> Value {
        let response = self.login(username, password).await;
        assert_eq!(response.status(), StatusCode::OK, "login of {username}");
        response.json().await.expect("session json")
    }

    pub async fn admin_token(&self) -> String {
        token_of(&self.session("admin", ADMIN_PASSWORD).await)
    }

    /// The account id behind `token`.
    pub async fn user_id(&self, token: &str) -> String {
        let me = self.api.expect(StatusCode::OK, Method::GET, "/api/v1/auth/me", Some(token), None).await;
        me["id"].as_str().expect("id").to_owned()
    }

    /// Registers `username`, has the admin grant `roles`, and returns (user id, access token).
    pub async fn user_with_roles(&self, username: &str, roles: &[&str]) -> (String, String) {
        let response = self.register(username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CREATED, "register {username}");
        let user: Value = response.json().await.expect("user json");
        let id = user["id"].as_str().expect("id").to_owned();
        if roles != ["USER"] {
            let admin = self.admin_token().await;
            let path = format!("/api/v1/users/{id}/roles");
            let response = self.send_json(Method::PUT, &path, Some(&admin), &json!({ "roles": roles })).await;
            assert_eq!(response.status(), StatusCode::OK, "set roles of {username}");
        }
        (id, token_of(&self.session(username, PASSWORD).await))
    }
}

/// `TEST_LOG=1` (or a filter such as `TEST_LOG=bestow_events=debug`) prints the in-process
/// server's logs, with their spans (claim, saga_step, recovery_sweep, expiry_sweep), under the
/// test's output; without it tests run silent.
fn init_test_log() {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let filter = if filter.is_empty() || filter == "1" { "info" } else { filter.as_str() };
        // Several apps in one test share the process's subscriber: the first installs it.
        let _ = bestow_core::telemetry::init_logging(bestow_core::telemetry::LogFormat::Text, filter);
    }
}

/// An event with one POINT reward of `points` (`stock` units, -1 for unlimited), open from an
/// hour ago for a day, without conditions.
pub fn point_event(name: &str, points: i64, stock: i64) -> Value {
    let now = chrono::Utc::now();
    json!({
        "eventName": name, "startDate": (now - chrono::Duration::hours(1)).to_rfc3339(),
        "endDate": (now + chrono::Duration::days(1)).to_rfc3339(),
        "rewards": [{ "rewardType": "POINT", "rewardName": format!("{name} points"), "details": { "points": points },
                      "quantityPerUser": 1, "totalStock": stock }],
    })
}

/// One user per role: each one's token, and the USER's account id.
pub struct Cast {
    /// The USER's account id.
    pub user_id: String,
    pub user: String,
    pub operator: String,
    pub auditor: String,
    pub admin: String,
}

impl Cast {
    pub async fn of(app: &TestApp) -> Self {
        let (user_id, user) = app.user_with_roles("player", &["USER"]).await;
        Self {
            user_id,
            user,
            operator: app.user_with_roles("operator", &["OPERATOR"]).await.1,
            auditor: app.user_with_roles("auditor", &["AUDITOR"]).await.1,
            admin: app.admin_token().await,
        }
    }

    /// Each role's token, anonymous first, in the order route tables list expected statuses.
    pub fn roles(&self) -> [(&'static str, Option<&str>); 5] {
        [
            ("anonymous", None),
            ("USER", Some(&self.user)),
            ("OPERATOR", Some(&self.operator)),
            ("AUDITOR", Some(&self.auditor)),
            ("ADMIN", Some(&self.admin)),
        ]
    }
}

pub fn token_of(session: &Value) -> String {
    session["accessToken"].as_str().expect("accessToken").to_owned()
}

/// Reads a problem-details body, checking its media type.
pub async fn problem(response: Response) -> Value {
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(content_type, "application/problem+json");
    response.json().await.expect("problem json")
}

/// The pointers of a validation problem's offending fields.
pub fn pointers(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["pointer"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Two string members of each item of a JSON list, e.g. each stock line's reward name and tier.
pub fn member_pairs<'a>(list: &'a Value, first: &str, second: &str) -> Vec<(&'a str, &'a str)> {
    let member = |item: &'a Value, name: &str| item[name].as_str().unwrap_or_else(|| panic!("no {name} in {item}"));
    list.as_array().unwrap().iter().map(|item| (member(item, first), member(item, second))).collect()
}

/// The tests' one HTTP client of the API, at one base URL (an in-process app, a `bestow`
/// process, or the gateway in split mode).
#[derive(Clone)]
pub(crate) struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(base: &str) -> Self {
        Self::with_http(base, bestow_core::outbound::client().unwrap())
    }

    /// A client sending through `http` (e.g. one that trusts a test certificate).
    pub(crate) fn with_http(base: &str, http: reqwest::Client) -> Self {
        Self { base: base.trim_end_matches('/').to_owned(), http }
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The underlying HTTP client, for requests the API helpers do not cover (preflights).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.request(method, path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends the call and checks its status; returns the body.
    pub(crate) async fn expect(
        &self,
        expected: StatusCode,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let (status, body) = self.call(method.clone(), path, token, body).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
        body
    }

    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub(crate) async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub(crate) async fn login(&self, username: &str, password: &str) -> String {
        let (status, session) =
            self.post("/api/v1/auth/login", None, json!({ "username": username, "password": password })).await;
        assert_eq!(status, StatusCode::OK, "login of {username}: {session}");
        session["accessToken"].as_str().unwrap().to_owned()
    }

    /// Registers a player and signs it in; returns its access token.
    pub(crate) async fn player(&self, username: &str, password: &str) -> String {
        let account = json!({ "username": username, "password": password });
        self.expect(StatusCode::CREATED, Method::POST, "/api/v1/auth/register", None, Some(account)).await;
        self.login(username, password).await
    }

    /// Creates the event `body` and activates it; returns its id.
    pub(crate) async fn active_event(&self, token: &str, body: Value) -> String {
        let event = self.expect(StatusCode::CREATED, Method::POST, "/api/v1/events", Some(token), Some(body)).await;
        let id = event["id"].as_str().expect("event id").to_owned();
        let active = Some(json!({ "status": "ACTIVE" }));
        self.expect(StatusCode::OK, Method::PUT, &format!("/api/v1/events/{id}/status"), Some(token), active).await;
        id
    }

    pub(crate) async fn claim(&self, token: &str, event_id: &str, key: &str) -> (StatusCode, Value) {
        let response = self
            .request(Method::POST, &format!("/api/v1/events/{event_id}/claims"), Some(token))
            .header("idempotency-key", key)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap_or(Value::Null))
    }

    /// Polls a claim until its status is final (20 s at most).
    pub(crate) async fn final_claim(&self, token: &str, request_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, request) = self.get(&format!("/api/v1/claims/{request_id}"), Some(token)).await;
            let claim_status = request["status"].as_str().and_then(|s| s.parse::<ClaimStatus>().ok());
            if status == StatusCode::OK && claim_status.is_some_and(ClaimStatus::is_final) {
                return request;
            }
            assert!(Instant::now() < deadline, "claim {request_id} is not final: {status} {request}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
