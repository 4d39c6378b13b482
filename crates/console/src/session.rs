//! Console sessions: the API's own tokens, kept in cookies the page's scripts cannot read.
//!
//! A session is the access and refresh token pair the API issued at sign-in, each in an
//! HttpOnly, SameSite=Strict cookie scoped to `/console` (Secure behind HTTPS). Nothing is kept
//! on the server, so any replica of the gateway serves any session, and every check (account
//! active, current roles) is the API's own, made again on every page. State-changing forms carry
//! a CSRF token that must equal a third cookie's value, and a cross-origin `Origin` is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bestow_core::client::{ClientIp, ClientScheme};
use bestow_core::identity::{Permission, Role};
use http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use rand::RngCore;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::ConsoleState;
use crate::api::{Api, Call, Failure, Read, Reply};
use crate::layout;

pub const ACCESS_COOKIE: &str = "bestow_access";
pub const REFRESH_COOKIE: &str = "bestow_refresh";
pub const CSRF_COOKIE: &str = "bestow_csrf";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// Largest form the console accepts; an event with its condition tree fits many times over.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The account behind a session, as `GET /api/v1/auth/me` reports it now.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub username: String,
    pub roles: Vec<Role>,
}

impl Account {
    pub fn can(&self, permission: Permission) -> bool {
        permission.granted_by(&self.roles)
    }

    /// Staff read events or audit logs; a player holds neither.
    pub fn is_staff(&self) -> bool {
        self.can(Permission::ReadAllEvents) || self.can(Permission::ReadAuditLogs)
    }
}

/// The tokens the API issued for a session.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// The API tokens a browser presented, and where the browser is.
struct Session {
    api: Api,
    renewals: Arc<RecentRenewals>,
    access: String,
    refresh: Option<String>,
    client: Option<ClientIp>,
}

impl Session {
    async fn send(&self, call: Call<'_>) -> Result<Reply, Failure> {
        self.api.send(call.bearer(&self.access).from_client(self.client)).await
    }

    /// Trades the refresh token for a new pair and uses it; `None` when the session is over.
    async fn renew(&mut self) -> Option<Tokens> {
        let tokens = self.renewals.renew(&self.api, &self.access, self.refresh.as_ref()?, self.client).await?;
        self.access = tokens.access_token.clone();
        self.refresh = Some(tokens.refresh_token.clone());
        Some(tokens)
    }
}

/// How long a renewal is shared with other requests that present the same refresh token.
const SHARED_RENEWAL: Duration = Duration::from_secs(10);

/// The renewals of the last few seconds, by the digest of the token pair they were made for.
/// A browser that opens several pages with one expired access token (tabs, the dashboard's
/// live refresh) sends the same pair with each: the API rotates the refresh token on first use
/// and reads a second use as theft, ending the session. The pages share one renewal instead.
/// Only the same pair shares it: whoever presents the old refresh token with another access
/// token (one who found it, not the browser that held both) goes to the API, whose reuse
/// detection ends the session.
#[derive(Default)]
pub struct RecentRenewals(tokio::sync::Mutex<HashMap<String, (Instant, Tokens)>>);

impl RecentRenewals {
    async fn renew(&self, api: &Api, access: &str, refresh: &str, client: Option<ClientIp>) -> Option<Tokens> {
        let key = bestow_core::secret::digest(&format!("{access}\n{refresh}"));
        // Held across the call: renewals are rare (one per session per token lifetime).
        let mut recent = self.0.lock().await;
        recent.retain(|_, (at, _)| at.elapsed() < SHARED_RENEWAL);
        if let Some((_, tokens)) = recent.get(&key) {
            return Some(tokens.clone());
        }
        let call = Call::post("/api/v1/auth/refresh", json!({ "refreshToken": refresh })).from_client(client);
        let tokens: Tokens = api.send(call).await.ok()?.parse().ok()?;
        recent.insert(key, (Instant::now(), tokens.clone()));
        Some(tokens)
    }

    /// Shares no renewal that handed out `refresh` any more (its session has ended).
    async fn forget(&self, refresh: &str) {
        self.0.lock().await.retain(|_, (_, tokens)| tokens.refresh_token != refresh);
    }
}

/// A signed-in staff member: who they are and how to act as them.
pub struct Staff {
    pub account: Account,
    pub csrf: String,
    session: Session,
}

impl Staff {
    /// Sends `call` as this staff member.
    pub async fn send(&self, call: Call<'_>) -> Result<Reply, Failure> {
        self.session.send(call).await
    }

    /// Sends `call` as this staff member and hands a successful response on as it is
    /// (downloads); a refusal becomes a page, not a file saved under the download's name.
    pub async fn forward(&self, call: Call<'_>) -> Response {
        let session = &self.session;
        let answer = session.api.forward(call.bearer(&session.access).from_client(session.client)).await;
        let refused = match answer {
            Ok(response) if response.status().is_success() => return response,
            Ok(response) => Reply::read(response).await.map_or_else(|failure| failure, |reply| reply.failure()),
            Err(failure) => failure,
        };
        layout::failure_page(&refused)
    }

    /// What `read` answers, as its type.
    pub async fn read<T: DeserializeOwned>(&self, read: Read<T>) -> Result<T, Failure> {
        self.send(Call::get(read.path())).await?.parse()
    }

    /// Ends the session at the API: its refresh token stops working.
    pub async fn sign_out(&self) {
        if let Some(refresh) = &self.session.refresh {
            self.session.renewals.forget(refresh).await;
            let call = Call::post("/api/v1/auth/logout", json!({ "refreshToken": refresh }));
            if let Err(failure) = self.send(call).await {
                tracing::warn!(reason = %failure.message(), "the console could not end a session at the API");
            }
        }
    }
}

/// Tokens renewed while serving a request, written back as cookies by [`renew_cookies`].
#[derive(Clone, Default)]
struct Renewal(Arc<Mutex<Option<Tokens>>>);

/// Middleware: lets [`Staff`] renew an expired access token during a request, then sets the
/// renewed cookies on whatever the page answered.
pub async fn renew_cookies(mut request: Request, next: Next) -> Response {
    let renewal = Renewal::default();
    let secure = is_https(request.extensions());
    request.extensions_mut().insert(renewal.clone());
    let mut response = next.run(request).await;
    let renewed = renewal.0.lock().map(|mut slot| slot.take()).unwrap_or_default();
    // A page that set the session's cookies itself (sign-out, back to sign-in) has the last
    // word: the renewed pair must not bring back a session it ended.
    let session_decided = response.headers().get_all(SET_COOKIE).iter().any(|line| is_cookie(line, ACCESS_COOKIE));
    if let Some(tokens) = renewed
        && !session_decided
    {
        set_session_cookies(response.headers_mut(), &tokens, secure);
    }
    response
}

impl FromRequestParts<ConsoleState> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Self::Rejection> {
        let cookies = Cookies::of(&parts.headers);
        let csrf = cookies.get(CSRF_COOKIE).unwrap_or_default().to_owned();
        let Some(access) = cookies.get(ACCESS_COOKIE).map(str::to_owned) else {
            return Err(to_sign_in(parts));
        };
        let mut session = Session {
            api: state.api.clone(),
            renewals: state.renewals.clone(),
            access,
            refresh: cookies.get(REFRESH_COOKIE).map(str::to_owned),
            client: parts.extensions.get::<ClientIp>().copied(),
        };
        let me = || Call::get("/api/v1/auth/me");
        let mut reply = session.send(me()).await.map_err(|f| layout::failure_page(&f))?;
        if reply.status == StatusCode::UNAUTHORIZED {
            let Some(tokens) = session.renew().await else {
                return Err(to_sign_in(parts));
            };
            if let Some(renewal) = parts.extensions.get::<Renewal>()
                && let Ok(mut slot) = renewal.0.lock()
            {
                *slot = Some(tokens);
            }
            reply = session.send(me()).await.map_err(|f| layout::failure_page(&f))?;
        }
        if reply.status == StatusCode::UNAUTHORIZED {
            return Err(to_sign_in(parts));
        }
        let account: Account = reply.parse().map_err(|f| layout::failure_page(&f))?;
        if !account.is_staff() {
            return Err(layout::staff_only());
        }
        Ok(Staff { account, csrf, session })
    }
}

/// Whether the `Set-Cookie` line sets the cookie `name`.
fn is_cookie(line: &HeaderValue, name: &str) -> bool {
    line.as_bytes().strip_prefix(name.as_bytes()).is_some_and(|rest| rest.starts_with(b"="))
}

/// Back to the sign-in page, forgetting the session's cookies.
fn to_sign_in(parts: &Parts) -> Response {
    let mut response = Redirect::to("/console/sign-in").into_response();
    clear_session_cookies(response.headers_mut(), is_https(&parts.extensions));
    response
}

/// A form posted by the console's own page: the CSRF token matches the cookie and the
/// `Origin`, when the browser sends one, is this host.
pub struct Checked<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ConsoleState> for Checked<T> {
    type Rejection = Response;

    async fn from_request(request: Request, _state: &ConsoleState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        if !same_origin(&parts.headers) {
            return Err(layout::refusal(StatusCode::FORBIDDEN, "This form was sent from another site."));
        }
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| layout::refusal(StatusCode::PAYLOAD_TOO_LARGE, "This form is too large."))?;
        if let Some(refused) =
            csrf_refusal(&parts.headers, &form_urlencoded_value(&bytes, CSRF_FIELD).unwrap_or_default())
        {
            return Err(refused);
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(Checked)
            .map_err(|error| layout::refusal(StatusCode::BAD_REQUEST, &format!("This form is not valid: {error}")))
    }
}

/// Why a form with the CSRF token `sent` is refused, if it is: the token must match the
/// session's cookie and the `Origin`, when the browser sends one, be this host. For forms not
/// read by [`Checked`] (an upload streamed on as it arrives).
pub fn csrf_refusal(headers: &HeaderMap, sent: &str) -> Option<Response> {
    if !same_origin(headers) {
        return Some(layout::refusal(StatusCode::FORBIDDEN, "This form was sent from another site."));
    }
    let expected = Cookies::of(headers).get(CSRF_COOKIE).unwrap_or_default().to_owned();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), sent.as_bytes()) {
        return Some(layout::refusal(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from the console. Reload the page and try again.",
        ));
    }
    None
}

fn form_urlencoded_value(bytes: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
        .ok()?
        .into_iter()
        .find_map(|(key, value)| (key == name).then_some(value))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Browsers send `Origin` on every POST; when present its host must be ours.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|value| value.to_str().ok()) else {
        return true;
    };
    let host = headers.get(HOST).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// The request's cookies.
pub struct Cookies(HashMap<String, String>);

impl Cookies {
    pub fn of(headers: &HeaderMap) -> Self {
        let pairs = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|line| line.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()));
        Self(pairs.collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|value| !value.is_empty())
    }
}

/// A fresh random token (256 bits, URL-safe).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether the browser reached the console over HTTPS, as the trusted proxies in front say
/// ([`ClientScheme`]; a client's own word is never taken): its cookies get `Secure`.
pub fn is_https(extensions: &http::Extensions) -> bool {
    extensions.get::<ClientScheme>() == Some(&ClientScheme::Https)
}

/// [`is_https`] as a handler's argument.
pub struct Https(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Https {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(is_https(&parts.extensions)))
    }
}

/// A console cookie: HttpOnly, SameSite=Strict, for `/console` only, ending with the browser
/// session; `None` deletes it.
pub fn cookie(name: &str, value: Option<&str>, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let line = match value {
        Some(value) => format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{name}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    // Tokens are base64url or JWTs: always a valid header value.
    HeaderValue::from_str(&line).unwrap_or_else(|_| HeaderValue::from_static("bestow_invalid=; Max-Age=0"))
}

pub fn set_session_cookies(headers: &mut HeaderMap, tokens: &Tokens, secure: bool) {
    headers.append(SET_COOKIE, cookie(ACCESS_COOKIE, Some(&tokens.access_token), secure));
    headers.append(SET_COOKIE, cookie(REFRESH_COOKIE, Some(&tokens.refresh_token), secure));
}

pub fn clear_session_cookies(headers: &mut HeaderMap, secure: bool) {
    headers.append(SET_COOKIE, cookie(ACCESS_COOKIE, None, secure));
    headers.append(SET_COOKIE, cookie(REFRESH_COOKIE, None, secure));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_strict_and_scoped_to_the_console() {
        let line = cookie(ACCESS_COOKIE, Some("abc"), false);
        assert_eq!(line, "bestow_access=abc; Path=/console; HttpOnly; SameSite=Strict");
        let secure = cookie(ACCESS_COOKIE, Some("abc"), true);
        assert!(secure.to_str().unwrap_or_default().ends_with("; Secure"));
        let gone = cookie(REFRESH_COOKIE, None, false);
        assert!(gone.to_str().unwrap_or_default().contains("Max-Age=0"));
    }

    #[test]
    fn a_cross_origin_post_is_refused_and_a_same_origin_one_passes() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&headers), "no Origin: an older client; CSRF token still required");
        headers.insert(ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&headers));
        headers.insert(ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(!same_origin(&headers));
        headers.insert(ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers));
    }

    #[test]
    fn cookies_parse_from_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; bestow_csrf=xyz"));
        headers.append(COOKIE, HeaderValue::from_static("b=2"));
        let cookies = Cookies::of(&headers);
        assert_eq!(cookies.get(CSRF_COOKIE), Some("xyz"));
        assert_eq!(cookies.get("b"), Some("2"));
        assert_eq!(cookies.get("missing"), None);
    }

    #[test]
    fn tokens_are_long_random_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }
}
