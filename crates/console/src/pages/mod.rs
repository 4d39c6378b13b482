//! One module per section of the console; each handler reads or changes through the API and
//! renders what came back.

mod audiences;
mod audit;
mod claims;
mod event_form;
mod events;
mod filters;
mod home;
mod players;
mod service_keys;
mod sign_in;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use http::request::Parts;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ConsoleState;
use crate::api::{Call, Failure, Reply};
pub(crate) use crate::api::{segment, with_query};
use crate::flash::{self, Flash};
use crate::layout;
use crate::session::Staff;

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(home::show))
        .merge(sign_in::routes())
        .merge(events::routes())
        .merge(audiences::routes())
        .merge(claims::routes())
        .merge(players::routes())
        .merge(audit::routes())
        .merge(service_keys::routes())
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
struct Nothing {}

/// What the page shown after a change says about it: `?notice=` (a code the page words), or
/// the refusal the change's redirect carried ([`flash`]); `?error=` alone is worded here, never
/// shown as sent.
#[derive(Default)]
struct Outcome {
    notice: String,
    error: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Outcome {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        #[derive(Deserialize, Default)]
        struct Marks {
            #[serde(default)]
            notice: String,
            #[serde(default)]
            error: String,
        }
        let marks: Marks = serde_urlencoded::from_str(parts.uri.query().unwrap_or_default()).unwrap_or_default();
        let error = match parts.extensions.get::<Flash>() {
            Some(Flash(reason)) => reason.clone(),
            None if !marks.error.is_empty() => "The change was not made.".to_owned(),
            None => String::new(),
        };
        Ok(Self { notice: marks.notice, error })
    }
}

impl Outcome {
    /// The notice worded by `wording` (code → text), or the error.
    fn render(&self, wording: &[(&str, &str)]) -> Markup {
        let notice = wording.iter().find_map(|(code, text)| (*code == self.notice).then_some(*text));
        html! {
            @if let Some(text) = notice { (layout::notice(text)) }
            @if !self.error.is_empty() { div.alert.error role="alert" { (self.error) } }
        }
    }
}

/// Sends a change, then shows `page` again with `?notice=<notice>`, or with the API's refusal.
async fn change_then_show(staff: &Staff, call: Call<'_>, page: &str, notice: &str) -> Response {
    match refusal(staff.send(call).await) {
        None => Redirect::to(&with_query(page, &[("notice", notice)])).into_response(),
        Some(reason) => back_with_error(page, &reason),
    }
}

/// Why the API refused a change, for the operator; `None` when it was made.
fn refusal(answer: Result<Reply, Failure>) -> Option<String> {
    match answer {
        Ok(reply) if reply.is_success() => None,
        Ok(reply) => Some(reply.failure().message()),
        Err(failure) => Some(failure.message()),
    }
}

/// Back to `page`, saying why a change was not made.
fn back_with_error(page: &str, reason: &str) -> Response {
    flash::redirect_with(&with_query(page, &[flash::REFUSED]), reason)
}

/// A value of an API reply as text, as the API spells it: strings and enum members bare,
/// numbers as written, null (an absent optional) as a dash.
fn shown<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::Null) | Err(_) => "—".to_owned(),
        Ok(Value::String(text)) => text,
        Ok(other) => other.to_string(),
    }
}

/// What a browser submits (a form or a query string), as the pages' handlers receive it.
#[cfg(test)]
fn submitted(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_keep_only_what_was_filled_in() {
        assert_eq!(with_query("/a", &[("q", ""), ("status", "ACTIVE")]), "/a?status=ACTIVE");
        assert_eq!(with_query("/a", &[("q", " ")]), "/a");
        assert_eq!(with_query("/a", &[("q", "a&b=c")]), "/a?q=a%26b%3Dc");
    }

    #[test]
    fn segments_cannot_escape_their_path() {
        assert_eq!(segment("../users"), "..%2Fusers");
        assert_eq!(segment("abc123"), "abc123");
    }
}
