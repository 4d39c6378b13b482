//! The operator console at the HTML level: real HTTP against the real server, a cookie jar,
//! forms posted as a browser posts them. The browser tests (`console_browser.rs`) drive the
//! main flows end to end in Chromium; these cover the rules and the details.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fixtures::{ClaimedEvent, app_with, claimed_event, points, two_claims_stuck_in_compensation};
use crate::granter::Faults;
use crate::helpers::{ADMIN_PASSWORD, PASSWORD, TestApp};

/// A browser's view of the console: cookies kept, redirects not followed.
#[derive(Clone)]
pub struct ConsoleClient {
    base: String,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

/// A console answer.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
    }
}

impl ConsoleClient {
    pub fn new(app: &TestApp) -> Self {
        Self::at(&app.url(""))
    }

    /// A browser of the server at `base` (all-in-one, or the gateway in split mode).
    pub fn at(base: &str) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { base: base.trim_end_matches('/').to_owned(), http, cookies: HashMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let response = request.header("cookie", self.cookie_header()).send().await.expect("console request");
        let (status, headers) = (response.status(), response.headers().clone());
        for line in headers.get_all(SET_COOKIE) {
            let line = line.to_str().unwrap();
            let (pair, attributes) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page { status, headers, body: response.text().await.unwrap() }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// Posts `fields` as a form, with the CSRF token the console gave this browser.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.cookies.get("bestow_csrf").cloned().unwrap_or_default();
        let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        form.extend_from_slice(fields);
        self.post_raw(path, &form).await
    }

    pub async fn post_raw(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(form));
        self.send(request).await
    }

    /// Posts `fields` as `multipart/form-data`, the CSRF token first (as the page's form has it);
    /// a field with a file name is a file.
    pub async fn post_multipart(&mut self, path: &str, fields: &[(&str, Option<&str>, &str)]) -> Page {
        let csrf = self.cookies.get("bestow_csrf").cloned().unwrap_or_default();
        self.post_multipart_with(&csrf, path, fields).await
    }

    /// Posts `fields` as `multipart/form-data` with `csrf` as the form's token.
    pub async fn post_multipart_with(&mut self, csrf: &str, path: &str, fields: &[(&str, Option<&str>, &str)]) -> Page {
        let boundary = "----bestow-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n");
        for (name, file_name, content) in fields {
            let disposition = match file_name {
                Some(file) => format!("form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: text/csv"),
                None => format!("form-data; name=\"{name}\""),
            };
            body.push_str(&format!("--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n{content}\r\n"));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body);
        self.send(request).await
    }

    pub async fn sign_in(&mut self, username: &str, password: &str) -> Page {
        self.get("/console/sign-in").await;
        self.post("/console/sign-in", &[("username", username), ("password", password)]).await
    }

    pub fn cookie(&self, name: &str) -> Option<&String> {
        self.cookies.get(name)
    }
}

/// `pairs` as `application/x-www-form-urlencoded`.
fn encode(pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("http://form.invalid/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

async fn signed_in(app: &TestApp, username: &str, password: &str) -> ConsoleClient {
    let mut console = ConsoleClient::new(app);
    let page = console.sign_in(username, password).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/console/"), "{}", page.body);
    console
}

/// The admin signed in to the console, whose access cookie has since gone bad.
async fn admin_with_an_expired_access_token(app: &TestApp) -> ConsoleClient {
    let mut console = signed_in(app, "admin", ADMIN_PASSWORD).await;
    console.cookies.insert("bestow_access".into(), "expired.or.forged".into());
    console
}

/// The text of a page's error alert, "" when it has none.
fn alert(body: &str) -> &str {
    let Some((_, rest)) = body.split_once("role=\"alert\">") else { return "" };
    rest.split_once("</div>").map_or(rest, |(text, _)| text)
}

async fn assert_signed_out(console: &mut ConsoleClient) {
    assert_eq!(console.get("/console/").await.location(), "/console/sign-in", "signed out");
}

fn nav_links(body: &str) -> Vec<&'static str> {
    ["Events", "Audiences", "Claims", "Players", "Audit log", "Service keys"]
        .into_iter()
        .filter(|label| body.contains(&format!("\">{label}</a></li>")))
        .collect()
}

#[tokio::test]
async fn the_root_leads_to_a_sign_in_form_and_a_session_lives_in_strict_http_only_cookies() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::new(&app);
    let root = console.get("/").await;
    assert_eq!((root.status, root.location()), (StatusCode::SEE_OTHER, "/console/"));
    let home = console.get("/console/").await;
    assert_eq!((home.status, home.location()), (StatusCode::SEE_OTHER, "/console/sign-in"));

    let form = console.get("/console/sign-in").await;
    assert_eq!(form.status, StatusCode::OK);
    for field in ["username", "password"] {
        assert!(form.body.contains(&format!("<label for=\"{field}\">")), "a label for {field}");
        assert!(form.body.contains(&format!("name=\"{field}\"")));
    }
    assert!(form.headers["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    assert!(!form.body.contains("http://") && !form.body.contains("https://"), "nothing from another origin");

    let wrong = console.post("/console/sign-in", &[("username", "admin"), ("password", "nope")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong username or password"));

    let page = console.post("/console/sign-in", &[("username", "admin"), ("password", ADMIN_PASSWORD)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let cookies = page.set_cookies();
    for name in ["bestow_access", "bestow_refresh", "bestow_csrf"] {
        let line = cookies.iter().find(|c| c.starts_with(&format!("{name}="))).expect(name);
        assert!(
            line.contains("HttpOnly") && line.contains("SameSite=Strict") && line.contains("Path=/console"),
            "{line}"
        );
        assert!(!line.contains("Secure"), "plain HTTP here");
    }
    let home = console.get("/console/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(nav_links(&home.body), ["Events", "Audiences", "Claims", "Players", "Audit log", "Service keys"]);
    assert_eq!(home.headers["cache-control"], "no-store");
}

/// The cookies of a sign-in whose request carries `forwarded` (a proxy's headers).
async fn sign_in_cookies(app: &TestApp, forwarded: &[(&str, &str)]) -> Vec<String> {
    let mut browser = ConsoleClient::new(app);
    browser.get("/console/sign-in").await;
    let csrf = browser.cookie("bestow_csrf").unwrap().clone();
    let mut request = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/console/sign-in"))
        .header("cookie", format!("bestow_csrf={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("csrf", csrf.as_str()), ("username", "admin"), ("password", ADMIN_PASSWORD)]));
    for (name, value) in forwarded {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    response.headers().get_all(SET_COOKIE).iter().map(|c| c.to_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn cookies_are_secure_when_a_trusted_proxy_says_https_and_only_then() {
    let secure = |cookies: &[String]| !cookies.is_empty() && cookies.iter().all(|c| c.contains("; Secure"));
    // Behind a trusted HTTPS proxy the cookies are Secure, whether it sets or appends.
    let proxied = app_with(None, |config| config.server.trusted_proxies = "127.0.0.0/8".to_owned()).await;
    for proto in ["https", "http, https"] {
        assert!(secure(&sign_in_cookies(&proxied, &[("x-forwarded-proto", proto)]).await), "{proto}");
    }
    assert!(secure(&sign_in_cookies(&proxied, &[("forwarded", "for=192.0.2.1;proto=https")]).await));
    assert!(!secure(&sign_in_cookies(&proxied, &[("forwarded", "proto=httpsX")]).await), "read exactly");
    // The attack: a client that is no trusted proxy says https itself; it is not believed.
    let direct = TestApp::spawn().await;
    let cookies = sign_in_cookies(&direct, &[("x-forwarded-proto", "https")]).await;
    assert!(cookies.iter().all(|c| !c.contains("Secure")), "{cookies:?}");
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_or_from_another_origin_are_refused() {
    let app = TestApp::spawn().await;
    let mut console = signed_in(&app, "admin", ADMIN_PASSWORD).await;
    // The attack: a page elsewhere posts to the console with the victim's cookies.
    let forged = console.post_raw("/console/service-keys", &[("name", "forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let guessed = console.post_raw("/console/service-keys", &[("csrf", "guess"), ("name", "forged")]).await;
    assert_eq!(guessed.status, StatusCode::FORBIDDEN);
    let csrf = console.cookie("bestow_csrf").unwrap().clone();
    let cross_origin = reqwest::Client::new()
        .post(app.url("/console/service-keys"))
        .header("origin", "http://evil.example")
        .header("cookie", console.cookie_header())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("csrf", csrf.as_str()), ("name", "forged")]))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_origin.status(), StatusCode::FORBIDDEN);
    let sign_out = console.post_raw("/console/sign-out", &[]).await;
    assert_eq!(sign_out.status, StatusCode::FORBIDDEN, "a forged sign-out is refused too");

    let admin = app.admin_token().await;
    let keys = app.get_json("/api/v1/service-keys", Some(&admin)).await;
    assert_eq!(keys["total"], 0, "no forged key was created");
    let page = console.post("/console/service-keys", &[("name", "game-server-1")]).await;
    assert_eq!(page.status, StatusCode::CREATED);
    assert!(page.body.contains("data-testid=\"new-secret\">bsk_"), "the secret is shown once");
    let listed = console.get("/console/service-keys").await;
    assert!(listed.body.contains("game-server-1") && !listed.body.contains("bsk_"), "and never again");
}

#[tokio::test]
async fn a_player_is_told_the_console_is_for_staff_and_gets_no_session() {
    let app = TestApp::spawn().await;
    app.register("player1", PASSWORD).await;
    let mut console = ConsoleClient::new(&app);
    let page = console.sign_in("player1", PASSWORD).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("The console is for staff"));
    assert!(!page.body.contains("Events</a>"), "no navigation");
    assert!(console.cookie("bestow_access").is_none() && console.cookie("bestow_refresh").is_none());
}

#[tokio::test]
async fn navigation_shows_what_each_role_may_use_and_the_api_decides_the_rest() {
    let app = TestApp::spawn().await;
    app.user_with_roles("operator1", &["OPERATOR"]).await;
    app.user_with_roles("auditor1", &["AUDITOR"]).await;
    let mut operator = signed_in(&app, "operator1", PASSWORD).await;
    let home = operator.get("/console/").await;
    assert_eq!(nav_links(&home.body), ["Events", "Audiences", "Claims", "Players"]);
    // A section not in the menu is still refused by the API itself.
    assert_eq!(operator.get("/console/service-keys").await.status, StatusCode::FORBIDDEN);
    assert_eq!(operator.get("/console/audit").await.status, StatusCode::FORBIDDEN);
    let denied = operator.post("/console/service-keys", &[("name", "sneaky")]).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    let mut auditor = signed_in(&app, "auditor1", PASSWORD).await;
    assert_eq!(
        nav_links(&auditor.get("/console/").await.body),
        ["Events", "Audiences", "Claims", "Players", "Audit log"]
    );
    assert_eq!(auditor.get("/console/audit").await.status, StatusCode::OK);
    assert!(!auditor.get("/console/events").await.body.contains("New event"), "auditors read only");
}

#[tokio::test]
async fn deactivation_and_role_changes_reach_an_open_console_session() {
    let app = TestApp::spawn().await;
    let (operator_id, _) = app.user_with_roles("operator1", &["OPERATOR"]).await;
    let (other_id, _) = app.user_with_roles("operator2", &["OPERATOR"]).await;
    let mut operator = signed_in(&app, "operator1", PASSWORD).await;
    let mut other = signed_in(&app, "operator2", PASSWORD).await;
    let mut admin = signed_in(&app, "admin", ADMIN_PASSWORD).await;

    let page = admin.post(&format!("/console/players/{operator_id}/active"), &[("isActive", "false")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().ends_with("notice=saved"), "{}", page.location());
    let page = admin.post(&format!("/console/players/{other_id}/roles"), &[("roles", "USER")]).await;
    assert!(page.location().ends_with("notice=saved"), "{}", page.location());

    // The API applies account changes within 5 s; the console asks the API on every page.
    let mut outcome = (StatusCode::OK, StatusCode::OK);
    for _ in 0..60 {
        outcome = (operator.get("/console/events").await.status, other.get("/console/events").await.status);
        if outcome == (StatusCode::SEE_OTHER, StatusCode::FORBIDDEN) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        outcome,
        (StatusCode::SEE_OTHER, StatusCode::FORBIDDEN),
        "deactivated: signed out; now a player: refused"
    );
    assert!(other.get("/console/events").await.body.contains("The console is for staff"));

    // Nobody changes their own account, from the console either.
    let me = app.user_id(&app.admin_token().await).await;
    let own = admin.get(&format!("/console/players/{me}")).await;
    assert!(own.body.contains("Nobody changes their own roles") && !own.body.contains("Save roles"));
    let page = admin.post(&format!("/console/players/{me}/active"), &[("isActive", "false")]).await;
    assert!(page.location().contains("error="), "the API refuses: {}", page.location());
}

#[tokio::test]
async fn signing_out_ends_the_session_and_its_refresh_token() {
    let app = TestApp::spawn().await;
    let mut console = signed_in(&app, "admin", ADMIN_PASSWORD).await;
    let refresh = console.cookie("bestow_refresh").unwrap().clone();
    let access = console.cookie("bestow_access").unwrap().clone();
    let other_session = app.admin_token().await;
    let page = console.post("/console/sign-out", &[]).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/console/sign-in"));
    assert!(console.cookie("bestow_access").is_none());
    let reused = app.post("/api/v1/auth/refresh", None, &json!({ "refreshToken": refresh })).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED, "the refresh token no longer works");
    // The attack: the access token copied before sign-out, used after it.
    let me = app.get("/api/v1/auth/me", Some(&access)).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED, "the session's access token ended with it");
    assert_eq!(app.get("/api/v1/auth/me", Some(&other_session)).await.status(), StatusCode::OK, "not the others");
    assert_signed_out(&mut console).await;
}

#[tokio::test]
async fn an_expired_access_token_is_renewed_with_the_refresh_cookie() {
    let app = TestApp::spawn().await;
    let mut console = admin_with_an_expired_access_token(&app).await;
    let page = console.get("/console/events").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.set_cookies().iter().any(|c| c.starts_with("bestow_access=ey")), "a new access token");
    assert_eq!(console.get("/console/events").await.status, StatusCode::OK);
}

#[tokio::test]
async fn signing_out_with_an_expired_access_token_still_forgets_the_session() {
    let app = TestApp::spawn().await;
    let mut console = admin_with_an_expired_access_token(&app).await;
    let page = console.post("/console/sign-out", &[]).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/console/sign-in"));
    assert_eq!(console.cookie("bestow_access"), None, "the renewed pair is not set again: {:?}", page.set_cookies());
    assert_eq!(console.cookie("bestow_refresh"), None);
    assert_signed_out(&mut console).await;
}

#[tokio::test]
async fn pages_opened_at_once_with_an_expired_access_token_share_one_renewal() {
    let app = TestApp::spawn().await;
    let console = admin_with_an_expired_access_token(&app).await;
    // Tabs of one browser: the same cookies, sent together.
    let mut tabs = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let mut tab = console.clone();
        tabs.spawn(async move {
            let page = tab.get("/console/events").await;
            (page.status, page.location().to_owned(), tab)
        });
    }
    let mut last = None;
    while let Some(opened) = tabs.join_next().await {
        let (status, location, tab) = opened.unwrap();
        assert_eq!(status, StatusCode::OK, "no tab is sent to sign in ({location})");
        last = Some(tab);
    }
    let mut tab = last.unwrap();
    assert_eq!(tab.get("/console/events").await.status, StatusCode::OK, "and the session lives on");
}

/// The attack: someone who found a browser's previous refresh token (not its access token)
/// presents it just after that browser renewed. The shared renewal is not theirs; the API sees
/// a rotated token used again and ends the session, the victim's renewed one included.
#[tokio::test]
async fn a_previous_refresh_token_from_another_browser_gets_no_shared_renewal() {
    let app = TestApp::spawn().await;
    let mut victim = admin_with_an_expired_access_token(&app).await;
    let stale = victim.cookie("bestow_refresh").unwrap().clone();
    assert_eq!(victim.get("/console/events").await.status, StatusCode::OK, "the victim's browser renewed");
    let renewed = victim.cookie("bestow_refresh").unwrap().clone();
    assert_ne!(renewed, stale);

    let mut thief = ConsoleClient::new(&app);
    thief.cookies.insert("bestow_access".into(), "some.other.token".into());
    thief.cookies.insert("bestow_refresh".into(), stale);
    let page = thief.get("/console/events").await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/console/sign-in"));
    assert!(!page.set_cookies().iter().any(|c| c.starts_with("bestow_access=ey")), "no tokens handed out");
    let reused = app.post("/api/v1/auth/refresh", None, &json!({ "refreshToken": renewed })).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED, "reuse detection ended the session");
}

#[tokio::test]
async fn service_keys_are_listed_page_by_page() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for index in 0..23 {
        let body = json!({ "name": format!("game-server-{index:02}"), "scopes": ["activities:write"] });
        assert_eq!(app.post("/api/v1/service-keys", Some(&admin), &body).await.status(), StatusCode::CREATED);
    }
    let mut console = signed_in(&app, "admin", ADMIN_PASSWORD).await;
    let first = console.get("/console/service-keys").await;
    let second = console.get("/console/service-keys?page=2").await;
    let listed = |body: &str| (0..23).filter(|i| body.contains(&format!("game-server-{i:02}<"))).count();
    assert_eq!((listed(&first.body), listed(&second.body)), (20, 3), "newest 20 first, then the rest");
    assert!(first.body.contains("/console/service-keys?page=2"), "the pager links the next page");
}

const NESTED: &str = r#"{"type":"AND","subConditions":[{"type":"LOGIN_DAYS","days":1},{"type":"NOT","condition":{"type":"LEVEL_REACHED","level":99}}]}"#;

fn event_form<'a>(name: &'a str, conditions: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("eventName", name),
        ("description", "from the console"),
        ("startDate", "2020-01-01T00:00"),
        ("endDate", "2099-01-01T00:00"),
        ("timezone", "Asia/Seoul"),
        ("grantPolicy", "ALL_OR_NOTHING"),
        ("conditions", conditions),
        ("recurrence", ""),
        ("tiers", ""),
        ("rewards.0.rewardType", "POINT"),
        ("rewards.0.rewardName", "Welcome points"),
        ("rewards.0.points", "100"),
        ("rewards.0.totalStock", "5"),
        ("rewards.1.rewardType", "COUPON"),
        ("rewards.1.rewardName", "Welcome coupon"),
        ("rewards.1.couponCode", "WELCOME"),
        ("rewards.1.discountRate", "0.1"),
        ("rewards.2.rewardType", "ITEM"),
    ]
}

#[tokio::test]
async fn operators_create_edit_activate_top_up_and_delete_events_from_forms() {
    let app = TestApp::spawn().await;
    app.user_with_roles("operator1", &["OPERATOR"]).await;
    let mut console = signed_in(&app, "operator1", PASSWORD).await;

    // Server validation errors come back at the node of the condition tree they concern.
    let bad = r#"{"type":"AND","subConditions":[{"type":"LOGIN_DAYS","days":0}]}"#;
    let refused = console.post("/console/events/new", &event_form("Bad", bad)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("&quot;pointer&quot;:&quot;/subConditions/0/days&quot;"), "{}", refused.body);
    assert!(refused.body.contains("value=\"Welcome points\""), "the form comes back as typed");

    let created = console.post("/console/events/new", &event_form("Winter login", NESTED)).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let page_path = created.location().split('?').next().unwrap().to_owned();
    let event_id = page_path.rsplit('/').next().unwrap().to_owned();
    let event = app.get_json(&format!("/api/v1/events/{event_id}"), Some(&app.admin_token().await)).await;
    assert_eq!(event["conditions"], serde_json::from_str::<Value>(NESTED).unwrap());
    assert_eq!(event["startDate"], "2019-12-31T15:00:00Z", "the form's times are the event's time zone");
    assert_eq!(event["rewards"].as_array().unwrap().len(), 2);

    let page = console.get(created.location()).await;
    assert!(page.body.contains("Event created."));
    // DRAFT may only become ACTIVE; OPERATOR may not delete (ADMIN only).
    assert!(page.body.contains(">Make ACTIVE</button>") && !page.body.contains("Make ARCHIVED"));
    assert!(!page.body.contains("Delete draft"));

    // An edit that lost an If-Match race says so and offers a reload.
    let edit = console.get(&format!("{page_path}/edit")).await;
    let version =
        edit.body.split("name=\"version\" value=\"").nth(1).unwrap().split('"').next().unwrap().replace("&quot;", "\"");
    let admin = app.admin_token().await;
    let patched = app
        .send_json(
            Method::PATCH,
            &format!("/api/v1/events/{event_id}"),
            Some(&admin),
            &json!({ "description": "changed elsewhere" }),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let mut fields = event_form("Winter login 2", NESTED);
    fields.push(("version", &version));
    let stale = console.post(&format!("{page_path}/edit"), &fields).await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert!(stale.body.contains("Someone else changed this event") && stale.body.contains("data-testid=\"reload\""));

    let activated = console.post(&format!("{page_path}/status"), &[("status", "ACTIVE")]).await;
    assert!(activated.location().ends_with("notice=status"), "{}", activated.location());
    let page = console.get(&page_path).await;
    assert!(page.body.contains(">Make INACTIVE</button>") && page.body.contains(">Make EXPIRED</button>"));
    assert!(!page.body.contains(">Make ACTIVE</button>"));

    let points_id = event["rewards"][0]["rewardId"].as_str().unwrap();
    let topped = console.post(&format!("{page_path}/rewards/{points_id}/top-up"), &[("addStock", "10")]).await;
    assert!(topped.location().ends_with("notice=topped-up"), "{}", topped.location());
    assert!(console.get(&page_path).await.body.contains("15 of 15"));
    let not_a_number = console.post(&format!("{page_path}/rewards/{points_id}/top-up"), &[("addStock", "ten")]).await;
    assert!(not_a_number.location().contains("error="));

    // Rewards of a draft are added and removed from the event page.
    let mut admin_console = signed_in(&app, "admin", ADMIN_PASSWORD).await;
    let draft = admin_console.post("/console/events/new", &event_form("Draft to delete", "")).await;
    let draft_path = draft.location().split('?').next().unwrap().to_owned();
    let fields = [
        ("rewards.0.rewardType", "ITEM"),
        ("rewards.0.rewardName", "Sled"),
        ("rewards.0.itemId", "sled-1"),
        ("rewards.0.itemName", "Sled"),
    ];
    let added = admin_console.post(&format!("{draft_path}/rewards"), &fields).await;
    assert!(added.location().ends_with("notice=reward-added"), "{}", added.location());
    let refused = admin_console
        .post(&format!("{draft_path}/rewards"), &[("rewards.0.rewardType", "ITEM"), ("rewards.0.rewardName", "No id")])
        .await;
    assert!(refused.location().ends_with("?error=refused"), "{}", refused.location());
    let page = admin_console.get(refused.location()).await;
    assert!(alert(&page.body).contains("itemId"), "the API's reason is shown, carried by the server");
    assert!(page.body.contains("Sled") && page.body.matches(">Remove</button>").count() == 3);
    let again = admin_console.get(refused.location()).await;
    assert_eq!(alert(&again.body), "The change was not made.", "the reason is shown once");

    // The attack: a link to a console page with words of someone else's choosing in `?error=`.
    let phishing = admin_console.get(&format!("{draft_path}?error=Your+account+is+locked.+Call+555-0100")).await;
    assert!(!phishing.body.contains("Your account is locked"), "text from the link is not shown");
    assert_eq!(alert(&phishing.body), "The change was not made.", "the console words a refusal itself");
    let draft_id = draft_path.rsplit('/').next().unwrap();
    let draft_event = app.get_json(&format!("/api/v1/events/{draft_id}"), Some(&admin)).await;
    let sled = draft_event["rewards"][2]["rewardId"].as_str().unwrap();
    let removed = admin_console.post(&format!("{draft_path}/rewards/{sled}/delete"), &[]).await;
    assert!(removed.location().ends_with("notice=reward-removed"), "{}", removed.location());
    assert!(!admin_console.get(&draft_path).await.body.contains("Sled"));

    // An ADMIN deletes a draft.
    assert!(admin_console.get(&draft_path).await.body.contains("Delete draft"));
    let deleted = admin_console.post(&format!("{draft_path}/delete"), &[]).await;
    assert_eq!(deleted.location(), "/console/events");
    assert_eq!(admin_console.get(&draft_path).await.status, StatusCode::NOT_FOUND);

    let list = console.get("/console/events?status=ACTIVE&q=winter").await;
    assert!(list.body.contains("Winter login") && !list.body.contains("Draft to delete"));
}

#[tokio::test]
async fn claims_search_timeline_queue_and_exports_act_through_the_api() {
    let (granter, faults, app, event_id, stuck) = two_claims_stuck_in_compensation().await;
    let (first, second) = (stuck[0]["requestId"].as_str().unwrap(), stuck[1]["requestId"].as_str().unwrap());
    app.user_with_roles("operator1", &["OPERATOR"]).await;

    let mut admin = signed_in(&app, "admin", ADMIN_PASSWORD).await;
    let queue = admin.get("/console/claims/queue").await;
    assert!(queue.body.contains(first) && queue.body.contains(second));
    let home = admin.get("/console/").await;
    assert!(home.body.contains("data-testid=\"manual-queue\">2<"));

    let page = admin.get(&format!("/console/claims/{first}")).await;
    assert!(page.body.contains("data-testid=\"timeline\""));
    for status in ["PENDING_VALIDATION", "PENDING_REWARD_GRANT", "COMPENSATION_FAILED_MANUAL_INTERVENTION_REQUIRED"] {
        assert!(page.body.contains(status), "timeline has {status}");
    }
    assert!(page.body.contains("Retry compensation") && page.body.contains("name=\"note\""));

    // OPERATOR sees the claim but not the intervention, and the API refuses it anyway.
    let mut operator = signed_in(&app, "operator1", PASSWORD).await;
    assert!(!operator.get(&format!("/console/claims/{first}")).await.body.contains("Retry compensation"));
    let refused = operator
        .post(&format!("/console/claims/{first}/resolve"), &[("resolution", "KEEP_GRANTED"), ("note", "x")])
        .await;
    assert!(refused.location().contains("error="));

    // A note is required.
    let no_note = admin
        .post(&format!("/console/claims/{second}/resolve"), &[("resolution", "KEEP_GRANTED"), ("note", " ")])
        .await;
    assert!(no_note.location().contains("error="), "{}", no_note.location());
    let resolved = admin
        .post(&format!("/console/claims/{second}/resolve"), &[("resolution", "KEEP_GRANTED"), ("note", "kept by hand")])
        .await;
    assert!(resolved.location().ends_with("notice=resolved"), "{}", resolved.location());
    granter.set_faults(Faults { revokes_down: false, ..faults });
    let retried = admin.post(&format!("/console/claims/{first}/retry"), &[]).await;
    assert!(retried.location().ends_with("notice=retried"), "{}", retried.location());

    let search = admin.get(&format!("/console/claims?eventId={event_id}&status=REWARD_PARTIALLY_GRANTED")).await;
    assert!(search.body.contains(second) && !search.body.contains(first));

    let export = admin.get(&format!("/console/claims/export?eventId={event_id}")).await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(export.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(export.body.contains(first) && export.body.contains(second));
    let audit = admin.get("/console/audit?action=claim.resolve").await;
    assert!(audit.body.contains("kept by hand"), "before/after shown");
    let audit_csv = admin.get("/console/audit/export/events?action=claim.resolve").await;
    assert!(audit_csv.body.contains("claim.resolve"));
    let accounts_csv = admin.get("/console/audit/export/auth").await;
    assert_eq!(accounts_csv.status, StatusCode::OK);
    assert!(accounts_csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));

    let refused = admin.get("/console/claims/export?from=yesterday").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.headers["content-type"].to_str().unwrap().starts_with("text/html"), "a page, not a saved file");
    assert!(refused.body.contains("from"), "naming the field: {}", refused.body);
}

#[tokio::test]
async fn the_dashboard_and_player_pages_show_the_apis_figures() {
    let app = Arc::new(app_with(None, |_| {}).await);
    let ClaimedEvent { event_id, players, .. } =
        claimed_event(&app, json!([points("daily points", 1, 10)]), "fan", 3).await;
    let mut admin = signed_in(&app, "admin", ADMIN_PASSWORD).await;

    let live = admin.get(&format!("/console/events/{event_id}/dashboard/live")).await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.body);
    assert!(live.body.contains("data-testid=\"claims-last-hour\">3<"), "{}", live.body);
    assert!(live.body.contains("data-testid=\"claims-succeeded\">3<"));
    assert!(live.body.contains("7 of 10"), "stock left");
    assert!(live.body.contains("<svg class=\"chart\""));
    let page = admin.get(&format!("/console/events/{event_id}/dashboard")).await;
    assert!(page.body.contains(&format!("data-refresh=\"/console/events/{event_id}/dashboard/live\"")));

    let (player_id, _) = &players[0];
    let admin_token = app.admin_token().await;
    let activity = json!({ "activities": [{ "userId": player_id, "type": "BOSS_KILLED", "occurredAt": chrono::Utc::now().to_rfc3339(), "attributes": { "boss": "yeti" } }] });
    assert_eq!(app.post("/api/v1/activities", Some(&admin_token), &activity).await.status(), StatusCode::ACCEPTED);
    let found = admin.get("/console/players?q=fan").await;
    assert!(found.body.contains(&format!("/console/players/{player_id}")));
    let player = admin.get(&format!("/console/players/{player_id}")).await;
    assert!(player.body.contains("data-testid=\"points\">100<"), "the wallet");
    assert!(player.body.contains("SUCCESS_ALL_GRANTED"), "their claims");
    assert!(player.body.contains("BOSS_KILLED") && player.body.contains("yeti"), "their recent activities");
    let preview = admin.get(&format!("/console/players/eligibility?userId={player_id}&eventId={event_id}")).await;
    assert!(preview.body.contains("data-testid=\"eligible\">yes<"), "in words: {}", preview.body);
}

#[tokio::test]
async fn the_dashboard_groups_failed_claims_by_cause_with_a_readable_label() {
    let app = Arc::new(app_with(None, |_| {}).await);
    let ClaimedEvent { event_id, claims, .. } =
        claimed_event(&app, json!([points("scarce points", 1, 2)]), "scarce", 3).await;
    let codes: Vec<&str> = claims.iter().filter_map(|claim| claim["failureCode"].as_str()).collect();
    assert_eq!(codes, ["OUT_OF_STOCK"], "one claim found the stock gone");
    let mut admin = signed_in(&app, "admin", ADMIN_PASSWORD).await;
    let live = admin.get(&format!("/console/events/{event_id}/dashboard/live")).await;
    let causes = live.body.split("data-testid=\"by-cause\"").nth(1).expect("the failures by cause");
    assert!(causes.contains("<td>Out of stock</td><td><code>OUT_OF_STOCK</code></td><td>1</td>"), "{causes}");
}

/// The texts of the SVG elements of `svg` after `marker` (e.g. `data-tick>`).
fn texts_after<'a>(svg: &'a str, marker: &str) -> Vec<&'a str> {
    svg.split(marker).skip(1).map(|rest| rest.split('<').next().unwrap()).collect()
}

#[tokio::test]
async fn the_dashboard_chart_has_labelled_axes_on_the_events_clock() {
    let app = Arc::new(app_with(None, |_| {}).await);
    let event_id = claimed_event(&app, json!([points("daily points", 1, 10)]), "charted", 3).await.event_id;
    let mut admin = signed_in(&app, "admin", ADMIN_PASSWORD).await;
    let live = admin.get(&format!("/console/events/{event_id}/dashboard/live")).await;
    let svg = live.body.split("<svg").nth(1).and_then(|rest| rest.split("</svg>").next()).expect("a chart");

    // The time axis: a tick every quarter hour of the hour shown, on Seoul's clock (the event's).
    let ticks = texts_after(svg, "data-tick>");
    assert_eq!(ticks.len(), 4, "{svg}");
    assert!(ticks.iter().all(|tick| tick.len() == 5 && ["00", "15", "30", "45"].contains(&&tick[3..])), "{ticks:?}");
    assert!(svg.contains(">Time (KST), one bar per minute"), "the axis names its zone: {svg}");
    let seoul = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
    let now = chrono::Utc::now().with_timezone(&seoul);
    let this_minute =
        [now, now - chrono::Duration::minutes(1)].map(|at| format!("<title>{} KST: ", at.format("%H:%M")));
    let last_bar = svg.rsplit("<rect").next().unwrap();
    assert!(
        this_minute.iter().any(|title| last_bar.contains(title.as_str())),
        "the last bar is now in Seoul: {last_bar}"
    );
    assert!(ticks.iter().all(|tick| svg.contains(&format!("<title>{tick} KST: "))), "ticks mark bars' minutes");

    // The count axis: from 0 to the busiest minute, and named.
    let counts: Vec<u64> =
        texts_after(svg, "data-value=\"").iter().map(|v| v.split('"').next().unwrap().parse().unwrap()).collect();
    assert_eq!((counts.len(), counts.iter().sum::<u64>()), (60, 3), "a bar a minute, every claim counted");
    let most = counts.iter().max().unwrap();
    assert!(svg.contains(">Claims per minute</text>"), "{svg}");
    assert!(svg.contains("text-anchor=\"end\">0</text>"), "{svg}");
    assert!(svg.contains(&format!("text-anchor=\"end\">{most}</text>")), "{svg}");
    assert!(svg.contains(&format!("<desc>3 claims in 60 minutes; the most in one minute: {most}")), "{svg}");
}

#[tokio::test]
async fn a_claim_page_names_its_player_to_those_who_may_read_accounts_and_says_yes_or_no() {
    let app = Arc::new(app_with(None, |_| {}).await);
    let ClaimedEvent { players, claims, .. } =
        claimed_event(&app, json!([points("daily points", 1, 10)]), "named", 1).await;
    let (request_id, player_id) = (claims[0]["requestId"].as_str().unwrap(), &players[0].0);
    app.user_with_roles("operator1", &["OPERATOR"]).await;

    let mut admin = signed_in(&app, "admin", ADMIN_PASSWORD).await;
    let page = admin.get(&format!("/console/claims/{request_id}")).await;
    let link = format!("data-testid=\"player\"><a href=\"/console/players/{player_id}\">");
    assert!(page.body.contains(&format!("{link}named0</a>")), "the username, linking to the player: {}", page.body);
    assert!(page.body.contains("data-testid=\"stock-held\">yes<"), "{}", page.body);
    assert!(!page.body.contains(">true<") && !page.body.contains(">false<"), "no Rust booleans: {}", page.body);
    // An OPERATOR may not read accounts: the id, and the page still shows.
    let mut operator = signed_in(&app, "operator1", PASSWORD).await;
    let page = operator.get(&format!("/console/claims/{request_id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("{link}<code>{player_id}</code></a>")), "{}", page.body);
}

#[tokio::test]
async fn event_dates_are_on_the_events_clock_and_records_on_utcs_with_the_instant_kept() {
    let app = Arc::new(app_with(None, |_| {}).await);
    let admin = app.admin_token().await;
    let mut body = crate::fixtures::event_body("Seoul evening");
    body["startDate"] = json!("2026-12-07T11:01:00Z");
    body["endDate"] = json!("2027-01-07T15:00:00Z");
    let id = crate::fixtures::create_event(&app, &admin, &body).await["id"].as_str().unwrap().to_owned();
    let mut console = signed_in(&app, "admin", ADMIN_PASSWORD).await;
    let page = console.get(&format!("/console/events/{id}")).await;
    let start = r#"<time datetime="2026-12-07T11:01:00Z" title="Asia/Seoul, UTC+09:00">2026-12-07 20:01 KST</time>"#;
    assert!(page.body.contains(&format!("data-testid=\"starts\">{start}")), "{}", page.body);
    assert!(page.body.contains(">2027-01-08 00:00 KST</time>"), "past midnight in Seoul: {}", page.body);
    assert!(!page.body.contains("2026-12-07T11:01:00Z<"), "no raw instant as text");
    assert!(console.get("/console/events").await.body.contains(start), "the list too");

    // A claim's own instants: UTC, said so, the browser's script turning them to the viewer's clock.
    let claim = &claimed_event(&app, json!([points("p", 1, 10)]), "dated", 1).await.claims[0];
    let created = claim["createdAt"].as_str().unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(created).unwrap();
    let page = console.get(&format!("/console/claims/{}", claim["requestId"].as_str().unwrap())).await;
    let shown = format!("<time datetime=\"{}", at.format("%Y-%m-%dT%H:%M:%S"));
    let text = format!("data-local>{} UTC</time>", at.format("%Y-%m-%d %H:%M:%S"));
    assert!(page.body.contains(&shown) && page.body.contains(&text), "{shown} … {text} in {}", page.body);
    assert!(!page.body.contains(&format!(">{created}<")), "no raw instant as text");
}

/// The part of `body` from the element with `id` to the end of its section.
fn section<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {body}"));
    body[start..].split("</section>").next().unwrap()
}

#[tokio::test]
async fn the_home_page_shows_running_and_coming_events_and_the_latest_failures() {
    let app = Arc::new(app_with(None, |_| {}).await);
    app.user_with_roles("auditor1", &["AUDITOR"]).await;
    let mut console = signed_in(&app, "admin", ADMIN_PASSWORD).await;
    let empty = console.get("/console/").await;
    assert!(section(&empty.body, "running").contains("No event is running."), "{}", empty.body);
    assert!(section(&empty.body, "failures").contains("data-testid=\"no-failures\""), "{}", empty.body);

    // Running for a month with one unit for two players: one claim fails, out of stock.
    let ClaimedEvent { event_id: month_id, claims, .. } =
        claimed_event(&app, json!([points("last unit", 1, 1)]), "late", 2).await;
    let of = |status: &str| {
        claims.iter().find(|c| c["status"] == status).unwrap_or_else(|| panic!("{status}: {claims:?}"))["requestId"]
            .as_str()
            .unwrap()
    };
    let (failed, granted) = (of("INVENTORY_ALLOCATION_FAILED_OUT_OF_STOCK"), of("SUCCESS_ALL_GRANTED"));
    // Ending in 3 hours, starting in 2, and a draft starting in 1 (not active: neither).
    let admin = app.admin_token().await;
    let now = chrono::Utc::now();
    let at = |hours: i64| json!((now + chrono::Duration::hours(hours)).to_rfc3339());
    for (name, start, end, status) in [
        ("Ends tonight", at(-24), at(3), Some("ACTIVE")),
        ("Starts soon", at(2), at(48), Some("ACTIVE")),
        ("Still a draft", at(1), at(48), None),
    ] {
        let mut body = crate::fixtures::event_body(name);
        (body["startDate"], body["endDate"]) = (start, end);
        let event = crate::fixtures::create_event(&app, &admin, &body).await;
        if let Some(status) = status {
            let id = event["id"].as_str().unwrap();
            assert_eq!(crate::fixtures::set_status(&app, &admin, id, status).await.status(), StatusCode::OK);
        }
    }

    let home = console.get("/console/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("data-testid=\"active-events\">2<"), "{}", home.body);
    let running = section(&home.body, "running");
    let order =
        |part: &str, names: [&str; 2]| names.map(|name| part.find(name).unwrap_or_else(|| panic!("{name}: {part}")));
    let [tonight, month] = order(running, ["Ends tonight", ">claimable<"]);
    assert!(tonight < month, "the soonest end first: {running}");
    assert!(running.contains("last unit: 0 of 1"), "the stock left: {running}");
    assert!(running.contains("<td>in 2 h 5") && running.contains("days</td>"), "the time left: {running}");
    assert!(running.contains(&format!("/console/events/{month_id}/dashboard")));
    assert!(running.contains(" KST</time>") && !running.contains("Starts soon"), "{running}");
    assert!(!home.body.contains("Still a draft"), "drafts neither run nor come");

    assert!(home.body.contains("data-testid=\"coming-count\">2<"), "{}", home.body);
    let coming = section(&home.body, "coming");
    let [starts, ends] = order(coming, ["Starts soon", "Ends tonight"]);
    assert!(starts < ends, "in the order they come: {coming}");
    assert!(coming.contains("<td>Starts</td>") && coming.contains("<td>in 1 h 5"), "{coming}");
    assert!(!coming.contains(">claimable<"), "a month away: {coming}");

    assert!(home.body.contains("data-testid=\"failure-count\">1<"), "{}", home.body);
    let failures = section(&home.body, "failures");
    assert!(failures.contains(&format!("/console/claims/{failed}")) && !failures.contains(granted), "{failures}");
    assert!(failures.contains("INVENTORY_ALLOCATION_FAILED_OUT_OF_STOCK</span></a> 1"), "{failures}");

    // An AUDITOR reads the same (all that the API lets them read).
    let mut auditor = signed_in(&app, "auditor1", PASSWORD).await;
    let seen = auditor.get("/console/").await;
    assert!(seen.body.contains("data-testid=\"failure-count\">1<") && seen.body.contains("Ends tonight"));
}

/// Every visible form control of `html` has a label: `<label for=id>` or a wrapping `<label>`.
fn unlabelled_controls(html: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for tag in ["<input", "<select", "<textarea"] {
        for (at, _) in html.match_indices(tag) {
            let end = html[at..].find('>').map_or(html.len(), |i| at + i);
            let element = &html[at..=end.min(html.len() - 1)];
            if element.contains("type=\"hidden\"") {
                continue;
            }
            let by_id = element
                .split(" id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .is_some_and(|id| html.contains(&format!("for=\"{id}\"")));
            let before = &html[..at];
            let wrapped = before.rfind("<label").is_some_and(|open| !before[open..].contains("</label>"));
            if !by_id && !wrapped {
                missing.push(element.to_owned());
            }
        }
    }
    missing
}

#[tokio::test]
async fn every_input_of_the_main_pages_has_a_label() {
    let app = Arc::new(app_with(None, |_| {}).await);
    let ClaimedEvent { event_id, players, claims, .. } =
        claimed_event(&app, json!([points("p", 1, 10)]), "labelled", 1).await;
    let request_id = claims[0]["requestId"].as_str().unwrap();
    let player_id = &players[0].0;
    let mut admin = signed_in(&app, "admin", ADMIN_PASSWORD).await;
    let list = admin.post("/console/audiences/new", &[("name", "Testers"), ("kind", "LIST"), ("rule", "")]).await;
    let list_id = audience_id_of(&list);
    let pages = [
        "/console/sign-in".to_owned(),
        "/console/".to_owned(),
        "/console/events".to_owned(),
        "/console/events/new".to_owned(),
        format!("/console/events/{event_id}"),
        format!("/console/events/{event_id}/dashboard"),
        "/console/claims".to_owned(),
        "/console/claims/queue".to_owned(),
        format!("/console/claims/{request_id}"),
        "/console/players".to_owned(),
        format!("/console/players/{player_id}"),
        "/console/audit".to_owned(),
        "/console/service-keys".to_owned(),
        "/console/audiences".to_owned(),
        "/console/audiences/new".to_owned(),
        format!("/console/audiences/{list_id}"),
        format!("/console/audiences/{list_id}/members"),
    ];
    for path in pages {
        let page = admin.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_eq!(unlabelled_controls(&page.body), Vec::<String>::new(), "{path}");
    }
    assert_eq!(unlabelled_controls(r#"<input id="x" name="x">"#).len(), 1, "the check finds a missing label");
}

#[tokio::test]
async fn recurring_tiered_events_are_created_from_the_form_and_lists_page() {
    let app = TestApp::spawn().await;
    let mut console = signed_in(&app, "admin", ADMIN_PASSWORD).await;
    let tiers = r#"[{"tierId":"day1","tierName":"Day 1","conditions":{"type":"LOGIN_DAYS","days":1},
                    "rewards":[{"rewardType":"POINT","rewardName":"Day 1 points","details":{"points":10},"quantityPerUser":1}]},
                   {"tierId":"day7","tierName":"Day 7","conditions":{"type":"LOGIN_DAYS","days":7,"scope":"EVENT"},
                    "rewards":[{"rewardType":"POINT","rewardName":"Day 7 points","details":{"points":70},"quantityPerUser":1,"totalStock":100}]}]"#;
    let fields = [
        ("eventName", "Attendance"),
        ("startDate", "2026-01-01T05:00"),
        ("endDate", "2026-02-01T05:00"),
        ("timezone", "Asia/Seoul"),
        ("grantPolicy", "ALL_OR_NOTHING"),
        ("conditions", ""),
        ("recurrence", r#"{"period":"DAILY","resetTime":"05:00"}"#),
        ("tiers", tiers),
    ];
    let created = console.post("/console/events/new", &fields).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let event_id = created.location().split('?').next().unwrap().rsplit('/').next().unwrap().to_owned();
    let admin = app.admin_token().await;
    let event = app.get_json(&format!("/api/v1/events/{event_id}"), Some(&admin)).await;
    assert_eq!(event["recurrence"]["period"], "DAILY");
    assert_eq!(event["tiers"][1]["tierId"], "day7");
    let page = console.get(created.location()).await;
    assert!(page.body.contains("Day 7") && page.body.contains("100 of 100"), "tiers with their stock");
    assert!(page.body.contains("data-testid=\"recurrence\">Daily, resetting at 05:00 (Asia/Seoul)<"), "in words");
    // The edit form holds them as JSON, ready to change.
    let edit = console.get(&format!("/console/events/{event_id}/edit")).await;
    assert!(edit.body.contains("DAILY") && edit.body.contains("day7"));

    // Lists page through the API's pages, keeping their filters.
    for n in 0..21 {
        let body = crate::fixtures::event_body(&format!("filler {n:02}"));
        crate::fixtures::create_event(&app, &admin, &body).await;
    }
    let first = console.get("/console/events?status=DRAFT").await;
    assert!(
        first.body.contains("Page 1 of 2")
            && first.body.contains("rel=\"next\" href=\"/console/events?status=DRAFT&amp;page=2\"")
    );
    let second = console.get("/console/events?status=DRAFT&page=2").await;
    assert!(second.body.contains("Page 2 of 2") && second.body.contains("rel=\"prev\""));
    assert_eq!(second.body.matches("<td><a href=\"/console/events/").count(), 2, "22 drafts: 20 then 2");
}

/// The audience a creation's redirect (`/console/audiences/{id}?notice=created`) names.
fn audience_id_of(created: &Page) -> String {
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let path = created.location().split('?').next().unwrap();
    path.strip_prefix("/console/audiences/").expect("an audience page").to_owned()
}

const KOREA: &str = r#"{"type":"PROPERTY","name":"country","op":"IN","value":["KR"]}"#;

#[tokio::test]
async fn operators_build_rule_and_list_audiences_check_players_and_target_events_from_the_console() {
    let app = TestApp::spawn().await;
    app.user_with_roles("operator1", &["OPERATOR"]).await;
    let (player_id, _) = app.user_with_roles("player1", &["USER"]).await;
    let admin_token = app.admin_token().await;
    let properties = json!({ "country": "KR", "vipLevel": 3 });
    let path = format!("/api/v1/players/{player_id}/properties");
    assert_eq!(app.send_json(Method::PATCH, &path, Some(&admin_token), &properties).await.status(), StatusCode::OK);
    let mut console = signed_in(&app, "operator1", PASSWORD).await;

    // The rule editor is the condition-tree editor with the audience leaves.
    let form = console.get("/console/audiences/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<condition-editor data-scope=\"off\""), "{}", form.body);
    assert!(form.body.contains("INACTIVE_DAYS") && form.body.contains("withinDays") && form.body.contains("ROLLOUT"));

    // The server's errors come back at the rule's node, the form as typed.
    let bad = r#"{"type":"AND","subConditions":[{"type":"INACTIVE_DAYS","min":0}]}"#;
    let refused = console.post("/console/audiences/new", &[("name", "Away"), ("kind", "RULE"), ("rule", bad)]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("&quot;pointer&quot;:&quot;/subConditions/0/min&quot;"), "{}", refused.body);
    assert!(refused.body.contains("value=\"Away\""));

    // A RULE audience: created, checked for a player with the verdict of every node, estimated.
    let created = console
        .post(
            "/console/audiences/new",
            &[("name", "Korea"), ("description", "KR only"), ("kind", "RULE"), ("rule", KOREA)],
        )
        .await;
    let korea = audience_id_of(&created);
    let page = console.get(created.location()).await;
    assert!(page.body.contains("Audience created.") && page.body.contains("Start estimate"), "{}", page.body);
    let check = console.get(&format!("/console/audiences/{korea}/check?userId={player_id}")).await;
    assert_eq!(check.status, StatusCode::OK, "{}", check.body);
    assert!(check.body.contains("data-testid=\"member\">yes<"), "{}", check.body);
    assert!(check.body.contains("<strong>PROPERTY</strong> met"), "{}", check.body);
    let outsider = console.get(&format!("/console/audiences/{korea}/check?userId=nobody-here")).await;
    assert!(outsider.body.contains("data-testid=\"member\">no<"), "{}", outsider.body);

    let started = console.post(&format!("/console/audiences/{korea}/estimate"), &[]).await;
    assert!(started.location().ends_with("notice=estimating"), "{}", started.location());
    let mut figures = String::new();
    for _ in 0..100 {
        figures = console.get(&format!("/console/audiences/{korea}/estimate")).await.body;
        if figures.contains(">DONE<") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(figures.contains("data-testid=\"estimate-progress\">1 / 1<"), "{figures}");
    assert!(figures.contains("data-testid=\"estimate-members\">1<"), "{figures}");
    let list_page = console.get("/console/audiences").await;
    assert!(list_page.body.contains("≈ 1 of 1 players"), "{}", list_page.body);

    // A LIST audience: members uploaded as a CSV file, a refused upload changes nothing.
    let created = console.post("/console/audiences/new", &[("name", "Testers"), ("kind", "LIST"), ("rule", "")]).await;
    let testers = audience_id_of(&created);
    let members_path = format!("/console/audiences/{testers}/members");
    let csv = format!("userId\n{player_id}\ntester-2\ntester-2\n");
    let uploaded =
        console.post_multipart(&members_path, &[("file", Some("testers.csv"), &csv), ("members", None, "")]).await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.body);
    assert!(uploaded.body.contains("Upload accepted: the audience has 2 members now."), "{}", uploaded.body);
    let too_long = "x".repeat(129);
    let pasted = format!("tester-3\r\n\r\n{too_long}\r\n");
    let refused = console.post_multipart(&members_path, &[("file", Some(""), ""), ("members", None, &pasted)]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("Upload refused, nothing was changed: line 3:"), "{}", refused.body);
    assert!(refused.body.contains("data-testid=\"member-count\">2<"), "the members are as they were");
    let empty = console.post_multipart(&members_path, &[("file", Some(""), "")]).await;
    assert!(empty.body.contains("choose a file or paste user ids"), "{}", empty.body);
    let forged = console.post_multipart_with("forged", &members_path, &[("members", None, "intruder")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "an upload without the session's token is refused");
    // A file larger than the server's body limit for forms is streamed on, not refused.
    let many: String = (0..80_000).map(|n| format!("bulk-player-{n:08}\n")).collect();
    assert!(many.len() > 1024 * 1024);
    let large = console.post_multipart(&members_path, &[("file", Some("many.csv"), &many)]).await;
    assert!(large.body.contains("Upload accepted: the audience has 80000 members now."), "{}", large.body);
    let again = console.post_multipart(&members_path, &[("file", Some("testers.csv"), &csv)]).await;
    assert!(again.body.contains("the audience has 2 members now."), "{}", again.body);
    let members = console.get(&members_path).await;
    assert!(
        members.body.contains(&player_id) && members.body.contains("tester-2") && !members.body.contains("intruder"),
        "{}",
        members.body.split("data-testid=\"members\"").nth(1).unwrap_or(&members.body)
    );
    // One by one, from the members page.
    let added = console.post(&format!("{members_path}/add"), &[("userId", "tester-9")]).await;
    assert!(added.location().ends_with("notice=added"), "{}", added.location());
    let removed = console.post(&format!("{members_path}/tester-2/remove"), &[]).await;
    assert!(removed.location().ends_with("notice=removed"), "{}", removed.location());
    let members = console.get(removed.location()).await;
    assert!(members.body.contains("Player removed.") && members.body.contains("tester-9"));
    assert!(!members.body.contains(">tester-2<"), "{}", members.body);
    let export = console.get(&format!("{members_path}/export")).await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(export.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(export.body.starts_with("userId") && export.body.contains(&player_id), "{}", export.body);

    // The event form's picker sends the audience; the event page shows the targeting.
    let form = console.get("/console/events/new").await;
    assert!(form.body.contains(&format!("<option value=\"{korea}\">Korea</option>")), "{}", form.body);
    let mut fields = event_form("Korea launch", "");
    fields.extend([
        ("audienceInclude", korea.as_str()),
        ("audienceExclude", testers.as_str()),
        ("audienceSticky", "true"),
    ]);
    let created = console.post("/console/events/new", &fields).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let event_id = created.location().split('?').next().unwrap().rsplit('/').next().unwrap().to_owned();
    let event = app.get_json(&format!("/api/v1/events/{event_id}"), Some(&admin_token)).await;
    assert_eq!(event["audience"], json!({ "include": [korea], "exclude": [testers], "sticky": true }));
    let page = console.get(&format!("/console/events/{event_id}")).await;
    assert!(page.body.contains(&format!("<a href=\"/console/audiences/{korea}\">Korea</a>")), "{}", page.body);
    assert!(page.body.contains("data-testid=\"audience-sticky\">yes<"));
    let edit = console.get(&format!("/console/events/{event_id}/edit")).await;
    assert!(edit.body.contains(&format!("<option value=\"{korea}\" selected>Korea</option>")), "{}", edit.body);

    // An audience in use is not deleted, and the page says why.
    let kept = console.post(&format!("/console/audiences/{korea}/delete"), &[]).await;
    assert!(kept.location().ends_with("?error=refused"), "{}", kept.location());
    let page = console.get(kept.location()).await;
    assert!(alert(&page.body).contains("in use"), "{}", alert(&page.body));

    // Edit: the name changes, the rule stays.
    let edit = console.get(&format!("/console/audiences/{testers}/edit")).await;
    let version =
        edit.body.split("name=\"version\" value=\"").nth(1).unwrap().split('"').next().unwrap().replace("&quot;", "\"");
    let saved = console
        .post(
            &format!("/console/audiences/{testers}/edit"),
            &[("name", "QA testers"), ("kind", "LIST"), ("version", &version)],
        )
        .await;
    assert!(saved.location().ends_with("notice=saved"), "{}", saved.location());
    let stale = console
        .post(
            &format!("/console/audiences/{testers}/edit"),
            &[("name", "Stale"), ("kind", "LIST"), ("version", &version)],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED, "{}", stale.body);

    // The player page shows what the game's servers said and what the platform computes.
    let player = console.get(&format!("/console/players/{player_id}")).await;
    assert!(player.body.contains("<code>country</code></td><td>KR<"), "{}", player.body);
    assert!(player.body.contains("<code>vipLevel</code></td><td>3<"));
    assert!(player.body.contains("data-testid=\"purchase-total\">0<"));
    assert!(player.body.contains("data-testid=\"created-at\"><time"), "the account's creation");
}

#[tokio::test]
async fn auditors_read_audiences_without_forms_and_players_get_no_console() {
    let app = TestApp::spawn().await;
    app.user_with_roles("auditor1", &["AUDITOR"]).await;
    let admin_token = app.admin_token().await;
    let body = json!({ "name": "Korea", "kind": "RULE", "rule": serde_json::from_str::<Value>(KOREA).unwrap() });
    let created: Value = app.post("/api/v1/audiences", Some(&admin_token), &body).await.json().await.unwrap();
    let korea = created["id"].as_str().unwrap();
    let list: Value = app
        .post("/api/v1/audiences", Some(&admin_token), &json!({ "name": "Testers", "kind": "LIST" }))
        .await
        .json()
        .await
        .unwrap();
    let testers = list["id"].as_str().unwrap();

    let mut auditor = signed_in(&app, "auditor1", PASSWORD).await;
    let listed = auditor.get("/console/audiences").await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(listed.body.contains("Korea") && !listed.body.contains("New audience"));
    for id in [korea, testers] {
        let page = auditor.get(&format!("/console/audiences/{id}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("Check a player"), "auditors check players");
        for form in ["Start estimate", ">Delete<", "multipart/form-data", "/edit\""] {
            assert!(!page.body.contains(form), "no {form} for an auditor");
        }
    }
    // A form the page does not offer is refused by the API itself.
    let refused = auditor.post(&format!("/console/audiences/{korea}/delete"), &[]).await;
    assert!(refused.location().ends_with("?error=refused"), "{}", refused.location());
    let upload =
        auditor.post_multipart(&format!("/console/audiences/{testers}/members"), &[("members", None, "p1")]).await;
    assert_eq!(upload.status, StatusCode::BAD_REQUEST);
    assert!(upload.body.contains("Upload refused"), "{}", upload.body);
    assert_eq!(app.get(&format!("/api/v1/audiences/{korea}"), Some(&admin_token)).await.status(), StatusCode::OK);

    app.register("player1", PASSWORD).await;
    let mut player = ConsoleClient::new(&app);
    assert_eq!(player.sign_in("player1", PASSWORD).await.status, StatusCode::FORBIDDEN);
    assert_eq!(player.get("/console/audiences").await.location(), "/console/sign-in", "no console for a player");
}
