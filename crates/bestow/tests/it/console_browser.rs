//! The console's main flow in a real headless Chromium, driven over W3C WebDriver by Debian's
//! `chromedriver` (`scripts/test` installs both when missing), and axe-core's accessibility
//! rules on every main page (`scripts/test` installs it too). `BESTOW_SCREENSHOTS=<dir>` also
//! saves a PNG of each main page there (`scripts/screenshots`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fixtures::{
    activated_event, active_event, app_with, claim, claim_all, create_event, event_body, players, points,
};
use crate::granter::{Faults, TestGranter};
use crate::helpers::ADMIN_PASSWORD;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// axe-core's rules the console meets: WCAG 2.0 and 2.1, A and AA, and Deque's best practices.
const AXE_RUN: &str = "const done = arguments[arguments.length - 1];\
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } })\
      .then(result => done(result.violations.map(v => `${v.id} (${v.impact}): ${v.help}\\n` +\
        v.nodes.map(n => `    ${n.target.join(' ')}: ${(n.failureSummary || '').replace(/\\s+/g, ' ')}`).join('\\n'))))\
      .catch(error => done([`axe-core failed: ${error}`]));";

/// axe-core's script: `BESTOW_AXE_JS` (set by `scripts/test`, which installs it), else where
/// `scripts/test` puts it.
fn axe_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = std::env::var_os("BESTOW_AXE_JS").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.build/axe/node_modules/axe-core/axe.min.js")
        });
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("no axe-core at {} ({e}): run scripts/test, which installs it, or set BESTOW_AXE_JS", path.display())
        })
    })
}

/// One browser session on a [`Driver`]; on drop the session is deleted (Chromium quits), then
/// the driver ends everything it started, also when the test failed.
struct Browser {
    http: reqwest::Client,
    session: String,
    session_id: String,
    driver: Driver,
}

/// A `chromedriver` in a process group of its own, and the profile directory of the Chromium it
/// starts. On drop the group is ended (TERM, then KILL), then any process still naming the
/// profile (Chromium's helpers may leave the group): nothing of a test's browser outlives it.
struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
    /// Chromium's processes, as last seen running: the drop waits until they are gone.
    browser: Vec<u32>,
}

impl Driver {
    fn start() -> Self {
        let driver_path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver_path} ({e}); scripts/test installs chromium-driver"));
        Self { child, port, profile: tempfile::TempDir::new().unwrap(), browser: Vec::new() }
    }

    fn user_data_dir(&self) -> String {
        format!("--user-data-dir={}", self.profile.path().display())
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let user_data_dir = self.user_data_dir();
        self.browser.extend(processes_naming(&user_data_dir));
        let group = format!("-{}", self.child.id());
        signal("TERM", std::slice::from_ref(&group));
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal("KILL", &[group]);
        let _ = self.child.wait();
        for _ in 0..100 {
            let left: Vec<String> = processes_naming(&user_data_dir).iter().map(u32::to_string).collect();
            if left.is_empty() {
                break;
            }
            signal("KILL", &left);
            std::thread::sleep(Duration::from_millis(50));
        }
        // Until the ended processes are reaped too (orphans, by their new parent).
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.browser.iter().any(|pid| PathBuf::from(format!("/proc/{pid}")).exists()) && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Sends `signal` to `targets` (pids, or `-pgid` for a process group) with kill(1): the tests
/// use no unsafe code.
fn signal(signal: &str, targets: &[String]) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--"])
        .args(targets)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The processes whose command line has the argument `argument` (e.g. a browser's
/// `--user-data-dir=…`), from /proc.
fn processes_naming(argument: &str) -> Vec<u32> {
    let needle = argument.as_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            // An argument ends at a NUL, or at a space where a process rewrote its title.
            let named = cmdline.windows(needle.len()).enumerate().any(|(at, window)| {
                window == needle && matches!(cmdline.get(at + needle.len()), None | Some(0 | b' '))
            });
            named.then_some(pid)
        })
        .collect()
}

impl Browser {
    /// A desktop-sized window (1280×800).
    async fn start() -> Self {
        Self::start_sized(1280, 800).await
    }

    async fn start_sized(width: u32, height: u32) -> Self {
        let driver = Driver::start();
        let http = bestow_core::outbound::client().unwrap();
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            // The console's confirmations (window.confirm) are accepted, as an operator would.
            "unhandledPromptBehavior": "accept",
            "goog:chromeOptions": {
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()),
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--disable-background-networking", "--disable-component-update", "--no-first-run",
                         format!("--window-size={width},{height}"), driver.user_data_dir()]
            }
        }}});
        let base = format!("http://127.0.0.1:{}", driver.port);
        let mut session = None;
        for _ in 0..100 {
            if let Ok(response) = http.post(format!("{base}/session")).json(&capabilities).send().await {
                let body: Value = response.json().await.unwrap();
                session = Some(
                    body["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {body}")).to_owned(),
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let session_id = session.expect("chromedriver answers");
        Self { http, session: format!("{base}/session/{session_id}"), session_id, driver }
    }

    /// Ends the browser, then checks that no process of it is left.
    fn quit(self) {
        let user_data_dir = self.driver.user_data_dir();
        drop(self);
        assert_eq!(processes_naming(&user_data_dir), Vec::<u32>::new(), "processes of the browser left running");
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let request = self.http.request(method, format!("{}{path}", self.session));
        let request = if body.is_null() { request } else { request.json(&body) };
        let reply: Value = request.send().await.unwrap().json().await.unwrap();
        reply["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({ "url": url })).await;
    }

    /// The first element matching `css`, waiting up to 20 s for it to appear.
    async fn find(&self, css: &str) -> String {
        for _ in 0..200 {
            let found =
                self.command(reqwest::Method::POST, "/element", json!({ "using": "css selector", "value": css })).await;
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no element {css} on {}", self.text("body").await);
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{element}/clear"), json!({})).await;
        self.command(reqwest::Method::POST, &format!("/element/{element}/value"), json!({ "text": text })).await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{element}/click"), json!({})).await;
    }

    async fn text(&self, css: &str) -> String {
        let found =
            self.command(reqwest::Method::POST, "/element", json!({ "using": "css selector", "value": css })).await;
        match found[ELEMENT].as_str() {
            Some(element) => self
                .command(reqwest::Method::GET, &format!("/element/{element}/text"), Value::Null)
                .await
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            None => String::new(),
        }
    }

    /// Waits up to 20 s (a loaded CI machine; the dashboard refreshes every 5 s) for `css`'s
    /// text to contain `expected`.
    async fn wait_for_text(&self, css: &str, expected: &str) {
        let mut seen = String::new();
        for _ in 0..200 {
            seen = self.text(css).await;
            if seen.contains(expected) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never showed {expected:?}; it shows {seen:?}");
    }

    async fn script(&self, script: &str) -> Value {
        self.command(reqwest::Method::POST, "/execute/sync", json!({ "script": script, "args": [] })).await
    }

    /// axe-core's violations on the current page, one text each (rule, impact, the nodes and
    /// why), prefixed with `page`.
    async fn accessibility_violations(&self, page: &str) -> Vec<String> {
        self.script(axe_source()).await;
        let found =
            self.command(reqwest::Method::POST, "/execute/async", json!({ "script": AXE_RUN, "args": [] })).await;
        let Some(violations) = found.as_array() else { panic!("axe-core did not run on {page}: {found}") };
        violations.iter().map(|violation| format!("{page}: {}", violation.as_str().unwrap_or_default())).collect()
    }

    /// Saves a PNG of the page as `name` when `BESTOW_SCREENSHOTS` names a directory.
    async fn screenshot(&self, name: &str) {
        let Ok(dir) = std::env::var("BESTOW_SCREENSHOTS") else { return };
        let png = self.command(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), bytes).unwrap();
    }
}

impl Drop for Browser {
    /// Deletes the session, so that chromedriver quits Chromium; blocking, with a timeout (a
    /// drop cannot await). The driver's drop then ends whatever is left.
    fn drop(&mut self) {
        self.driver.browser = processes_naming(&self.driver.user_data_dir());
        let address = SocketAddr::from(([127, 0, 0, 1], self.driver.port));
        let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else { return };
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session_id
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return;
        }
        // chromedriver answers once Chromium has quit, and keeps the connection open: read
        // until the answer is complete.
        let (mut reply, mut chunk) = (Vec::new(), [0; 1024]);
        while let Ok(read @ 1..) = stream.read(&mut chunk) {
            reply.extend_from_slice(&chunk[..read]);
            if http_reply_complete(&reply) {
                break;
            }
        }
    }
}

/// Whether `reply` holds an HTTP response's head and its whole `Content-Length` body.
fn http_reply_complete(reply: &[u8]) -> bool {
    let Some(head_end) = reply.windows(4).position(|window| window == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&reply[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    reply.len() >= head_end + 4 + length
}

#[tokio::test]
async fn an_operator_runs_an_event_from_sign_in_to_sign_out_in_chromium() {
    let app = Arc::new(app_with(None, |_| {}).await);
    let browser = Browser::start().await;
    let base = app.url("");

    browser.go(&format!("{base}/")).await;
    browser.wait_for_text("h1", "Sign in").await;
    browser.screenshot("sign-in").await;
    browser.type_into("input[name=username]", "admin").await;
    browser.type_into("input[name=password]", ADMIN_PASSWORD).await;
    browser.click("form.sign-in button[type=submit]").await;
    browser.wait_for_text("h1", "Welcome, admin").await;
    let cookies = browser.script("return document.cookie").await;
    assert_eq!(cookies, "", "the session cookies are HttpOnly: scripts cannot read them");

    // Create an event with a nested condition (built in the tree editor) and two rewards.
    browser.go(&format!("{base}/console/events/new")).await;
    browser.type_into("#eventName", "Browser winter event").await;
    browser
        .script(
            "for (const [id, value] of [['startDate', '2020-01-01T00:00'], ['endDate', '2099-01-01T00:00']]) \
         { document.getElementById(id).value = value; }",
        )
        .await;
    browser.click("condition-editor button").await; // "Add a condition": an AND group
    browser.click("condition-editor .cond-children > button").await; // a sub-condition
    browser.click("condition-editor .cond-children > button").await; // and another
    browser.script(
        "const selects = document.querySelectorAll('condition-editor .cond-children .cond-node > .cond-head select');\
         selects[selects.length - 2].value = 'OR'; selects[selects.length - 2].dispatchEvent(new Event('change'));",
    )
    .await;
    // Inside the OR group, one sub-condition of its own.
    browser.script("document.querySelector('condition-editor .cond-children .cond-children > button').click()").await;
    let tree: Value = serde_json::from_str(
        browser.script("return document.getElementById('conditions').value").await.as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(tree["type"], "AND");
    assert_eq!(tree["subConditions"][1]["type"], "OR", "{tree}");
    assert_eq!(tree["subConditions"][1]["subConditions"][0]["type"], "LOGIN_DAYS", "{tree}");
    browser.screenshot("event-form").await;
    browser.type_into("#reward-0-rewardName", "Snow points").await;
    browser.type_into("#reward-0-points", "100").await;
    browser.type_into("#reward-0-totalStock", "50").await;
    let rows = "return document.querySelectorAll('.reward-row').length";
    let before = browser.script(rows).await.as_u64().unwrap();
    browser.click("[data-add-reward]").await;
    assert_eq!(browser.script(rows).await.as_u64().unwrap(), before + 1, "Add a reward adds a row");
    browser
        .script("const type = document.getElementById('reward-1-rewardType'); type.value = 'VIRTUAL_CURRENCY'; type.dispatchEvent(new Event('change', {bubbles: true}));")
        .await;
    browser.type_into("#reward-1-rewardName", "Snow gems").await;
    browser.type_into("#reward-1-currency", "GEM").await;
    browser.type_into("#reward-1-amount", "5").await;

    // A leaf the server refuses (0 days): the error comes back at that node of the tree.
    let first_leaf = "condition-editor .cond-children .cond-node input[type=number]";
    browser.type_into(first_leaf, "0").await;
    browser.script(&format!("document.querySelector('{first_leaf}').dispatchEvent(new Event('change'))")).await;
    browser.click(".event-form .actions button[type=submit]").await;
    browser.find("condition-editor .cond-node.has-error .node-error").await;
    let marked = browser
        .script("return [...document.querySelectorAll('.cond-node.has-error')].map(n => n.dataset.pointer)")
        .await;
    assert_eq!(marked, json!(["/subConditions/0"]), "the refused leaf, and only it, is marked");
    // Fixed in place, with everything else still as typed.
    browser.type_into(first_leaf, "1").await;
    browser.script(&format!("document.querySelector('{first_leaf}').dispatchEvent(new Event('change'))")).await;
    browser.click(".event-form .actions button[type=submit]").await;
    browser.wait_for_text("main", "Event created.").await;

    // Activate it (the confirmation is accepted).
    browser.click("form[action$='/status'] button[value=ACTIVE]").await;
    browser.wait_for_text("main", "Status changed.").await;
    let url = browser.command(reqwest::Method::GET, "/url", Value::Null).await;
    let event_id =
        url.as_str().unwrap().split("/console/events/").nth(1).unwrap().split('?').next().unwrap().to_owned();
    browser.screenshot("event").await;

    // A claim made through the API appears on the live dashboard.
    browser.go(&format!("{base}/console/events/{event_id}/dashboard")).await;
    browser.wait_for_text("[data-testid=claims-last-hour]", "0").await;
    let player = &players(&app, "browserfan", 1).await[0];
    let eligible_now = app.post(&format!("/api/v1/events/{event_id}/claims"), Some(&player.1), &json!({})).await;
    assert!(eligible_now.status().is_success() || eligible_now.status() == StatusCode::ACCEPTED);
    browser.wait_for_text("[data-testid=claims-last-hour]", "1").await;
    // The chart as drawn: a tick every quarter hour, both axes named, the lone claim's bar seen.
    let chart = browser
        .script(
            "const svg = document.querySelector('svg.chart'); return { ticks: svg.querySelectorAll('[data-tick]').length, \
             titles: [...svg.querySelectorAll('.axis-title')].filter(t => t.getBBox().width > 0).map(t => t.textContent), \
             bars: [...svg.querySelectorAll('rect')].filter(r => r.getBoundingClientRect().height >= 1).length }",
        )
        .await;
    assert_eq!(chart["ticks"], 4, "{chart}");
    assert_eq!(chart["titles"][0], "Claims per minute", "{chart}");
    assert!(chart["titles"][1].as_str().unwrap().starts_with("Time (UTC)"), "{chart}");
    assert_eq!(chart["bars"], 1, "{chart}");
    browser.screenshot("dashboard").await;
    // The home page: the event running, with its stock.
    browser.go(&format!("{base}/console/")).await;
    browser.wait_for_text("#running", "Browser winter event").await;
    browser.wait_for_text("[data-testid=active-events]", "1").await;
    browser.screenshot("home").await;

    // The claim's page and the CSV export.
    browser.go(&format!("{base}/console/claims?eventId={event_id}")).await;
    browser.click("[data-testid=claims] tbody a").await;
    browser.wait_for_text("[data-testid=timeline]", "PENDING_VALIDATION").await;
    browser.screenshot("claim").await;
    // A viewer in Seoul sees the claim's times on their clock, the UTC text as the title.
    let claim_page = browser.command(reqwest::Method::GET, "/url", Value::Null).await;
    let seoul = |zone: &str| json!({ "cmd": "Emulation.setTimezoneOverride", "params": { "timezoneId": zone } });
    browser.command(reqwest::Method::POST, "/goog/cdp/execute", seoul("Asia/Seoul")).await;
    browser.go(claim_page.as_str().unwrap()).await;
    let time = browser
        .script("const t = document.querySelector('[data-testid=timeline] time'); return [t.dateTime, t.textContent, t.title]")
        .await;
    browser.command(reqwest::Method::POST, "/goog/cdp/execute", seoul("")).await;
    let at = chrono::DateTime::parse_from_rfc3339(time[0].as_str().unwrap()).unwrap();
    let in_seoul = at.with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap());
    let (text, title) = (time[1].as_str().unwrap(), time[2].as_str().unwrap());
    assert!(text.starts_with(&in_seoul.format("%Y-%m-%d %H:%M").to_string()) && !text.ends_with("UTC"), "{time}");
    assert!(title.starts_with(&at.format("%Y-%m-%d %H:%M").to_string()) && title.ends_with(" UTC"), "{time}");
    let csv = browser
        .script("return fetch('/console/claims/export').then(r => r.headers.get('content-type') + '\\n' + r.status)")
        .await;
    assert!(csv.as_str().unwrap().starts_with("text/csv"), "{csv}");
    browser.go(&format!("{base}/console/audit")).await;
    browser.wait_for_text("[data-testid=audit]", "event.create").await;
    browser.screenshot("audit-log").await;
    browser.go(&format!("{base}/console/players?q=browser")).await;
    browser.screenshot("players").await;

    browser.click("form.sign-out button").await;
    browser.wait_for_text("h1", "Sign in").await;
    browser.go(&format!("{base}/console/events")).await;
    browser.wait_for_text("h1", "Sign in").await;
    browser.quit();
}

#[tokio::test]
async fn an_admin_resolves_a_stuck_claim_from_the_queue_on_a_tablet_sized_window() {
    let faults = Faults { refuse_reward_name: Some("refused".into()), revokes_down: true, ..Faults::default() };
    let (_granter, url) = TestGranter::start(faults).await;
    let app = Arc::new(app_with(Some(&url), |_| {}).await);
    let (event_id, _) =
        active_event(&app, json!([points("granted", 1, 10), points("refused", 1, 10)]), "ALL_OR_NOTHING").await;
    let stuck = claim_all(&app, &players(&app, "stuck", 1).await, &event_id).await;
    let request_id = stuck[0]["requestId"].as_str().unwrap().to_owned();
    let browser = Browser::start_sized(820, 1180).await;
    let base = app.url("");

    browser.go(&format!("{base}/console/sign-in")).await;
    browser.type_into("input[name=username]", "admin").await;
    browser.type_into("input[name=password]", ADMIN_PASSWORD).await;
    browser.click("form.sign-in button[type=submit]").await;
    browser.wait_for_text("[data-testid=manual-queue]", "1").await;
    browser.click("a[href='/console/claims/queue']").await;
    browser.wait_for_text("[data-testid=claims]", &request_id).await;
    browser.screenshot("queue-tablet").await;
    browser.click("[data-testid=claims] tbody a").await;
    browser.type_into("#note", "granted the missing points by hand in the game").await;
    browser.script("document.getElementById('resolution').value = 'KEEP_GRANTED'").await;
    browser.screenshot("claim-tablet").await;
    browser.click("form.resolve button[type=submit]").await; // the confirmation is accepted
    browser.wait_for_text("main", "Claim resolved.").await;
    browser.wait_for_text("h1", "REWARD_PARTIALLY_GRANTED").await;

    let admin = app.admin_token().await;
    let log = app.get_json("/api/v1/audit-logs?action=claim.resolve", Some(&admin)).await;
    assert_eq!(log["items"][0]["after"]["note"], "granted the missing points by hand in the game");
    assert_eq!(log["items"][0]["actorUsername"], "admin", "the console acted as the signed-in admin");
    browser.quit();
}

#[tokio::test]
async fn a_browser_ends_with_every_process_it_started_also_when_its_test_fails() {
    let (started, running) = tokio::sync::oneshot::channel();
    let failing_test = tokio::spawn(async move {
        let browser = Browser::start().await;
        browser.go("about:blank").await;
        let user_data_dir = browser.driver.user_data_dir();
        let processes = processes_naming(&user_data_dir);
        started.send((browser.driver.child.id(), user_data_dir, processes)).unwrap();
        panic!("a deliberate failure, with the browser open");
    });
    assert!(failing_test.await.unwrap_err().is_panic());
    let (driver, user_data_dir, processes) = running.await.unwrap();
    assert!(processes.len() > 1, "Chromium and its helpers name their profile: {processes:?}");
    assert_eq!(processes_naming(&user_data_dir), Vec::<u32>::new(), "processes of the browser left running");
    assert!(!PathBuf::from(format!("/proc/{driver}")).exists(), "chromedriver ended and reaped");
}

#[tokio::test]
async fn every_console_page_passes_axe_core_in_chromium() {
    let app = Arc::new(app_with(None, |_| {}).await);
    let admin = app.admin_token().await;
    // Data for every page: events in each state, granted and refused claims, a player, a key.
    let streak_id = activated_event(&app, &admin, &event_body("Axe streak event")).await;
    create_event(&app, &admin, &event_body("Axe draft event")).await;
    let (event_id, _) = active_event(&app, json!([points("Axe points", 1, 10)]), "ALL_OR_NOTHING").await;
    let player = players(&app, "axe", 1).await.remove(0);
    claim(&app, &player.1, &streak_id, None).await;
    claim_all(&app, std::slice::from_ref(&player), &event_id).await;
    let browser = Browser::start().await;
    let base = app.url("");
    let mut violations = Vec::new();

    browser.go(&format!("{base}/console/sign-in")).await;
    violations.extend(browser.accessibility_violations("sign-in").await);
    // axe-core runs through WebDriver, not as a script of the page: the console's
    // Content-Security-Policy stays in force, and refuses an inline script.
    let inline = "const s = document.createElement('script'); s.textContent = 'window.inlineRan = true'; \
                  document.head.append(s); return window.inlineRan === true";
    assert_eq!(browser.script(inline).await, json!(false), "the CSP refuses inline scripts");
    browser.type_into("input[name=username]", "admin").await;
    browser.type_into("input[name=password]", ADMIN_PASSWORD).await;
    browser.click("form.sign-in button[type=submit]").await;
    browser.wait_for_text("h1", "Welcome, admin").await;
    violations.extend(browser.accessibility_violations("home").await);
    for (page, path) in [
        ("events", "/console/events".to_owned()),
        ("new event", "/console/events/new".to_owned()),
        ("event", format!("/console/events/{streak_id}")),
        ("dashboard", format!("/console/events/{event_id}/dashboard")),
        ("claims", "/console/claims".to_owned()),
        ("claims queue", "/console/claims/queue".to_owned()),
        ("players", "/console/players?q=axe".to_owned()),
        ("player", format!("/console/players/{}", player.0)),
        ("audit log", "/console/audit".to_owned()),
    ] {
        browser.go(&format!("{base}{path}")).await;
        browser.find("main h1").await;
        violations.extend(browser.accessibility_violations(page).await);
    }
    browser.go(&format!("{base}/console/claims?eventId={streak_id}")).await;
    browser.click("[data-testid=claims] tbody a").await;
    browser.wait_for_text("h1", "CONDITION_NOT_MET").await;
    violations.extend(browser.accessibility_violations("refused claim").await);
    browser.go(&format!("{base}/console/claims?eventId={event_id}")).await;
    browser.click("[data-testid=claims] tbody a").await;
    browser.wait_for_text("h1", "GRANTED").await;
    violations.extend(browser.accessibility_violations("granted claim").await);
    browser.go(&format!("{base}/console/service-keys")).await;
    browser.type_into("#name", "Axe game server").await;
    browser.click("form.filters button[type=submit]").await;
    browser.find("[data-testid=new-secret]").await;
    violations.extend(browser.accessibility_violations("service key created").await);
    browser.go(&format!("{base}/console/service-keys")).await;
    browser.wait_for_text("[data-testid=service-keys]", "Axe game server").await;
    violations.extend(browser.accessibility_violations("service keys").await);

    assert!(violations.is_empty(), "axe-core finds {} violations:\n{}", violations.len(), violations.join("\n"));
    browser.quit();
}

#[tokio::test]
async fn an_operator_builds_audiences_in_the_rule_editor_and_uploads_members_in_chromium() {
    let app = Arc::new(app_with(None, |_| {}).await);
    let player = players(&app, "audience", 1).await.remove(0);
    let admin = app.admin_token().await;
    let country = json!({ "country": "KR" });
    let path = format!("/api/v1/players/{}/properties", player.0);
    let set = app.send_json(reqwest::Method::PATCH, &path, Some(&admin), &country).await;
    assert_eq!(set.status(), StatusCode::OK);
    let browser = Browser::start().await;
    let base = app.url("");
    let mut violations = Vec::new();
    browser.go(&format!("{base}/console/sign-in")).await;
    browser.type_into("input[name=username]", "admin").await;
    browser.type_into("input[name=password]", ADMIN_PASSWORD).await;
    browser.click("form.sign-in button[type=submit]").await;
    browser.wait_for_text("h1", "Welcome, admin").await;

    // A RULE audience built in the tree editor: an AND over a PROPERTY leaf and an activity
    // leaf with its sliding window.
    browser.go(&format!("{base}/console/audiences/new")).await;
    browser.type_into("#name", "Korea").await;
    browser.click("condition-editor button").await; // "Add a condition": an AND group
    browser.click("condition-editor .cond-children > button").await; // a PROPERTY leaf
    browser.click("condition-editor .cond-children > button").await; // and another leaf
    let set_field = |index: usize, selector: &str, value: &str| {
        format!(
            "const leaf = document.querySelectorAll('condition-editor .cond-children .cond-node')[{index}];\
             const field = leaf.querySelector(\"{selector}\"); field.value = '{value}';\
             field.dispatchEvent(new Event('change'));"
        )
    };
    browser.script(&set_field(1, ".cond-head select", "LOGIN_DAYS")).await;
    browser.script(&set_field(0, "label:nth-of-type(2) input", "country")).await;
    browser.script(&set_field(0, "label:nth-of-type(3) select", "IN")).await;
    browser.script(&set_field(0, "label:nth-of-type(4) input", "[\"KR\"]")).await;
    browser.script(&set_field(1, "label:nth-of-type(3) input", "30")).await;
    let tree: Value =
        serde_json::from_str(browser.script("return document.getElementById('rule').value").await.as_str().unwrap())
            .unwrap();
    assert_eq!(
        tree,
        json!({ "type": "AND", "subConditions": [
            { "type": "PROPERTY", "name": "country", "op": "IN", "value": ["KR"] },
            { "type": "LOGIN_DAYS", "days": 1, "withinDays": 30 },
        ]}),
        "the leaves as the editor wrote them"
    );
    assert_eq!(browser.script("return document.querySelectorAll('condition-editor [name=scope]').length + document.querySelectorAll('condition-editor option[value=EVENT]').length").await, json!(0), "no period scope in a rule");
    violations.extend(browser.accessibility_violations("new audience").await);
    browser.click(".event-form .actions button[type=submit]").await;
    browser.wait_for_text("main", "Audience created.").await;
    violations.extend(browser.accessibility_violations("rule audience").await);
    browser.type_into("#check-user", &player.0).await;
    browser.click("form[action$='/check'] button").await;
    browser.wait_for_text("[data-testid=verdict]", "PROPERTY met").await;
    violations.extend(browser.accessibility_violations("membership check").await);

    // A LIST audience whose members come from a CSV file chosen in the file input.
    browser.go(&format!("{base}/console/audiences/new")).await;
    browser.type_into("#name", "Testers").await;
    browser.script("const kind = document.getElementById('kind'); kind.value = 'LIST';").await;
    browser.click(".event-form .actions button[type=submit]").await;
    browser.wait_for_text("main", "Audience created.").await;
    let file = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    std::fs::write(file.path(), format!("userId\n{}\ntester-2\n", player.0)).unwrap();
    let input = browser.find("#members-file").await;
    let chosen = json!({ "text": file.path().to_str().unwrap() });
    browser.command(reqwest::Method::POST, &format!("/element/{input}/value"), chosen).await;
    browser.click("form.upload button[type=submit]").await;
    browser.wait_for_text("[data-testid=upload-report]", "the audience has 2 members now").await;
    violations.extend(browser.accessibility_violations("list audience").await);
    browser.click("a[href$='/members']").await;
    browser.wait_for_text("[data-testid=members]", "tester-2").await;
    violations.extend(browser.accessibility_violations("members").await);
    browser.go(&format!("{base}/console/audiences")).await;
    browser.wait_for_text("[data-testid=audiences]", "Testers").await;
    violations.extend(browser.accessibility_violations("audiences").await);

    assert!(violations.is_empty(), "axe-core finds {} violations:\n{}", violations.len(), violations.join("\n"));
    browser.quit();
}
