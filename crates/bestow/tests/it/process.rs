//! The real `bestow` binary as a separate process: bootstrap output, logs, configuration.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_bestow");

/// A `bestow` child (`serve`, or a split-mode service) whose stdout and stderr are captured
/// line by line.
pub(crate) struct ServeProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    pub(crate) base: String,
}

impl ServeProcess {
    pub(crate) fn start(data_dir: &std::path::Path, envs: &[(&str, &str)]) -> Self {
        Self::start_command("serve", data_dir, envs)
    }

    /// `bestow <command>` on a free loopback port (unless `envs` sets `BESTOW_LISTEN`).
    pub(crate) fn start_command(command: &str, data_dir: &std::path::Path, envs: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BINARY)
            .arg(command)
            .env_clear()
            .env("BESTOW_LISTEN", "127.0.0.1:0")
            .env("BESTOW_DATA_DIR", data_dir)
            .env("BESTOW_BCRYPT_COST", "4")
            .env("BESTOW_LOG_LEVEL", "trace")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [Box::new(stdout) as Box<dyn std::io::Read + Send>, Box::new(stderr)] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = sender.send(line);
                }
            });
        }
        let mut process = Self { child, lines, seen: Vec::new(), base: String::new() };
        let banner = process.wait_for("bestow listening on ");
        process.base = banner.split("listening on ").nth(1).unwrap().trim().to_owned();
        process
    }

    /// A stand-in for a process that was stopped: `true` exits at once.
    pub(crate) fn placeholder() -> Self {
        let child = Command::new("true").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let (_, lines) = mpsc::channel();
        Self { child, lines, seen: Vec::new(), base: String::new() }
    }

    /// Waits (up to 20 s) for a line containing `needle` and returns it.
    pub(crate) fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no line containing {needle:?}; output so far:\n{}", self.seen.join("\n")));
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Stops the process and returns everything it printed.
    /// Sends SIGTERM.
    pub(crate) fn terminate(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    }

    /// Resident memory of the process, in KiB (from `/proc`).
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit code.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub(crate) fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.seen.push(line);
        }
        std::mem::take(&mut self.seen).join("\n")
    }
}

/// A test that fails (or forgets `stop`) must not leave its process running.
impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The settings of a `bestow serve` granting through the test granter at `webhook_url` and
/// logging warnings, then `more` (a later setting wins).
pub(crate) fn granting_envs(
    admin_password: &str,
    webhook_url: &str,
    more: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let base = [
        ("BESTOW_ADMIN_PASSWORD", admin_password),
        ("BESTOW_WEBHOOK_URL", webhook_url),
        ("BESTOW_WEBHOOK_SECRET", crate::granter::SECRET),
        ("BESTOW_LOG_LEVEL", "warn"),
    ];
    base.iter().chain(more).map(|(name, value)| (*name, (*value).to_owned())).collect()
}

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (StatusCode, String) {
    let mut request = bestow_core::outbound::client().unwrap().post(format!("{base}{path}")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The address in the banner of a process's `output`.
fn server_base(output: &str) -> String {
    let banner = output.lines().find(|line| line.contains("bestow listening on ")).expect("a banner");
    banner.split("listening on ").nth(1).unwrap().trim().to_owned()
}

#[tokio::test]
async fn first_start_prints_admin_credentials_once_and_they_work() {
    let dir = tempfile::TempDir::new().unwrap();
    let server = ServeProcess::start(dir.path(), &[]);
    let line =
        server.seen.iter().find(|line| line.contains("password: ")).expect("credentials printed before the banner");
    let password = line.split("password: ").nth(1).unwrap().trim().to_owned();
    let body = json!({ "username": "admin", "password": password });
    let (status, session) = post(&server.base, "/api/v1/auth/login", None, body).await;
    assert_eq!(status, StatusCode::OK);
    let session: Value = serde_json::from_str(&session).unwrap();
    assert_eq!(session["user"]["roles"], json!(["ADMIN"]));
    let first_output = server.stop();
    assert_eq!(first_output.matches(&password).count(), 1, "printed exactly once, never logged");
    // The banner says where a newcomer goes next.
    let base = &server_base(&first_output);
    for (label, path) in [("console:  ", "/console/"), ("API docs: ", "/docs")] {
        let line = format!("  {label}{base}{path}");
        assert!(first_output.lines().any(|printed| printed == line), "{line:?} in\n{first_output}");
    }

    let server = ServeProcess::start(dir.path(), &[]);
    let second_output = server.stop();
    assert!(!second_output.contains("password:"), "no credentials on a second start:\n{second_output}");
}

#[tokio::test]
async fn no_response_or_log_line_contains_a_password_or_hash() {
    let dir = tempfile::TempDir::new().unwrap();
    let admin_password = "configured-admin-secret";
    let server = ServeProcess::start(dir.path(), &[("BESTOW_ADMIN_PASSWORD", admin_password)]);
    let base = server.base.clone();
    let secrets = ["player-secret-one", "player-secret-two", "wrong-guess-secret"];
    let mut responses = Vec::new();

    responses.push(
        post(&base, "/api/v1/auth/register", None, json!({ "username": "mallory", "password": secrets[0] })).await,
    );
    responses
        .push(post(&base, "/api/v1/auth/login", None, json!({ "username": "mallory", "password": secrets[2] })).await);
    let (status, session) =
        post(&base, "/api/v1/auth/login", None, json!({ "username": "mallory", "password": secrets[0] })).await;
    assert_eq!(status, StatusCode::OK);
    let token = serde_json::from_str::<Value>(&session).unwrap()["accessToken"].as_str().unwrap().to_owned();
    responses.push((status, session));
    let change = json!({ "currentPassword": secrets[0], "newPassword": secrets[1] });
    let client = bestow_core::outbound::client().unwrap();
    let response =
        client.put(format!("{base}/api/v1/auth/me/password")).bearer_auth(&token).json(&change).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let admin =
        post(&base, "/api/v1/auth/login", None, json!({ "username": "admin", "password": admin_password })).await;
    let admin_token = serde_json::from_str::<Value>(&admin.1).unwrap()["accessToken"].as_str().unwrap().to_owned();
    responses.push(admin);
    for path in ["/api/v1/users", "/api/v1/auth/audit-logs", "/api/v1/auth/me"] {
        let response = client.get(format!("{base}{path}")).bearer_auth(&admin_token).send().await.unwrap();
        responses.push((response.status(), response.text().await.unwrap()));
    }
    // A validation failure on the password field must not echo it either.
    responses.push(post(&base, "/api/v1/auth/register", None, json!({ "username": "x", "password": "tiny" })).await);
    let output = server.stop();

    assert!(output.contains("/api/v1/auth/login"), "the test did capture the access log:\n{output}");
    for (status, body) in &responses {
        for secret in secrets.iter().chain([&admin_password, &"tiny"]) {
            assert!(!body.contains(secret), "{status} response contains a password: {body}");
        }
        assert!(!body.contains("$2b$") && !body.contains("$2y$"), "{status} response contains a hash: {body}");
    }
    for secret in secrets.iter().chain([&admin_password]) {
        assert!(!output.contains(secret), "logs contain a password:\n{output}");
    }
    assert!(!output.contains("$2b$") && !output.contains("$2y$"), "logs contain a hash:\n{output}");
}

#[test]
fn a_bad_setting_stops_the_process_with_one_line_naming_it() {
    let cases = [
        ("BESTOW_LISTEN", "not-an-address", "LISTEN"),
        ("BESTOW_BCRYPT_COST", "99", "bcrypt_cost"),
        ("BESTOW_LOG_FORMAT", "xml", "LOG_FORMAT"),
    ];
    for (variable, value, named) in cases {
        let output = Command::new(BINARY).arg("serve").env_clear().env(variable, value).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.to_lowercase().contains(&named.to_lowercase()), "{stderr}");
    }
}

#[test]
fn a_config_file_is_read_and_checked() {
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("bestow.toml");
    std::fs::write(&file, "bcrypt_cost = 99\n").unwrap();
    let output = Command::new(BINARY).args(["--config"]).arg(&file).arg("serve").env_clear().output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bcrypt_cost"), "{stderr}");
    std::fs::write(&file, "no_such_setting = 1\n").unwrap();
    let output = Command::new(BINARY).args(["--config"]).arg(&file).arg("serve").env_clear().output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no_such_setting"));
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut server = ServeProcess::start(dir.path(), &[("BESTOW_ADMIN_PASSWORD", "sigterm-admin-pw")]);
    let health = bestow_core::outbound::client().unwrap().get(format!("{}/healthz", server.base)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0), "exits 0 after a graceful shutdown");
    assert!(server.stop().contains("bestow stopped"));
}

#[test]
fn admin_commands_work_on_the_data_dir() {
    let dir = tempfile::TempDir::new().unwrap();
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(BINARY)
            .args(["admin"])
            .args(args)
            .env_clear()
            .env("BESTOW_DATA_DIR", dir.path())
            .env("BESTOW_BCRYPT_COST", "4")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let created = run(
        &["create-user", "--username", "ops", "--roles", "OPERATOR,AUDITOR", "--password-stdin"],
        "ops-password-1\n",
    );
    assert!(created.contains("created ops"), "{created}");
    let listed = run(&["list-users"], "");
    assert!(listed.contains("ops") && listed.contains("OPERATOR,AUDITOR"), "{listed}");
    let reset = run(&["reset-password", "--username", "ops"], "");
    let generated = reset.lines().find_map(|l| l.strip_prefix("password: ")).unwrap();
    assert_eq!(generated.len(), 20);
}
