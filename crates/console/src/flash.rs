//! Why a change was refused, carried from the form's POST to the page shown after it.
//!
//! The page after a change is reached by a redirect, so the API's reason has to travel. A
//! query string would let anyone write a red alert on our origin with a link
//! (`?error=Your account is locked, call …`); the reason travels instead in a cookie that only
//! this server sets (HttpOnly, SameSite=Strict, for `/console`, one minute), is shown once and
//! then deleted. The query string only says that there was a refusal (`?error=refused`), which
//! the page words itself when the cookie is gone.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::SET_COOKIE;

use crate::session::{Cookies, is_https};

const FLASH_COOKIE: &str = "bestow_flash";
/// The query parameter that marks a page shown after a refusal.
pub const REFUSED: (&str, &str) = ("error", "refused");
/// Longer reasons are cut: a cookie holds 4 KiB at most, and no refusal needs more.
const MAX_REASON_BYTES: usize = 1_500;

/// The reason a change was refused, as the page after it shows it; set by [`carry`].
#[derive(Debug, Clone)]
pub struct Flash(pub String);

/// A redirect to `location` that carries `reason` to the page there.
pub fn redirect_with(location: &str, reason: &str) -> Response {
    let mut response = Redirect::to(location).into_response();
    response.extensions_mut().insert(Flash(reason.to_owned()));
    response
}

/// Middleware: hands a flash cookie the browser sent to the page (as [`Flash`]) and deletes it,
/// and turns a [`Flash`] a handler answered with into the cookie.
pub async fn carry(mut request: Request, next: Next) -> Response {
    let secure = is_https(request.extensions());
    let received = Cookies::of(request.headers()).get(FLASH_COOKIE).and_then(decode);
    if let Some(reason) = &received {
        request.extensions_mut().insert(Flash(reason.clone()));
    }
    let mut response = next.run(request).await;
    let line = match response.extensions_mut().remove::<Flash>() {
        Some(Flash(reason)) => Some(crate::session::cookie(FLASH_COOKIE, Some(&encode(&reason)), secure)),
        None => received.map(|_| crate::session::cookie(FLASH_COOKIE, None, secure)),
    };
    if let Some(line) = line {
        response.headers_mut().append(SET_COOKIE, line);
    }
    response
}

fn encode(reason: &str) -> String {
    let mut end = reason.len().min(MAX_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    URL_SAFE_NO_PAD.encode(&reason[..end])
}

fn decode(value: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(value).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_round_trips_and_a_long_one_is_cut_on_a_character() {
        let reason = "Validation failed (/rewards/0/details/itemId is required) — 한국어";
        assert_eq!(decode(&encode(reason)).as_deref(), Some(reason));
        let long = "가".repeat(1_000);
        let cut = decode(&encode(&long)).unwrap_or_default();
        assert!(cut.len() <= MAX_REASON_BYTES && cut.chars().all(|c| c == '가'));
        assert_eq!(decode("not base64 !"), None);
    }
}
