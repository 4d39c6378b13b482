//! Signing in and out. A player's credentials are checked like anyone's, but the console then
//! ends that session at once and only says it is for staff.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bestow_core::client::ClientIp;
use http::header::SET_COOKIE;
use http::{HeaderMap, StatusCode};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::Nothing;
use crate::ConsoleState;
use crate::api::Call;
use crate::layout;
use crate::session::{
    Account, CSRF_COOKIE, Checked, Cookies, Https, Staff, Tokens, clear_session_cookies, cookie, new_token,
    set_session_cookies,
};

pub fn routes() -> Router<ConsoleState> {
    Router::new().route("/console/sign-in", get(form).post(submit)).route("/console/sign-out", post(sign_out))
}

/// The sign-in form, with a CSRF token of its own (a cookie set here if there is none yet).
async fn form(headers: HeaderMap, Https(secure): Https) -> Response {
    let existing = Cookies::of(&headers).get(CSRF_COOKIE).map(str::to_owned);
    let token = existing.clone().unwrap_or_else(new_token);
    let mut response = page(&token, "", None).into_response();
    if existing.is_none() {
        response.headers_mut().append(SET_COOKIE, cookie(CSRF_COOKIE, Some(&token), secure));
    }
    response
}

fn page(csrf: &str, username: &str, error: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Sign in to the Bestow console" }
        @if let Some(error) = error { p.alert.error role="alert" { (error) } }
        form.sign-in method="post" action="/console/sign-in" {
            (layout::csrf_value(csrf))
            label for="username" { "Username" }
            input #username name="username" type="text" autocomplete="username" required value=(username) autofocus;
            label for="password" { "Password" }
            input #password name="password" type="password" autocomplete="current-password" required;
            button type="submit" { "Sign in" }
        }
    };
    layout::bare("Sign in", body)
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignedIn {
    #[serde(flatten)]
    tokens: Tokens,
    user: Account,
}

async fn submit(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Https(secure): Https,
    client: Option<axum::Extension<ClientIp>>,
    Checked(credentials): Checked<Credentials>,
) -> Response {
    let client = client.map(|axum::Extension(ip)| ip);
    let csrf = Cookies::of(&headers).get(CSRF_COOKIE).unwrap_or_default().to_owned();
    let body = json!({ "username": credentials.username, "password": credentials.password });
    let reply = match state.api.send(Call::post("/api/v1/auth/login", body).from_client(client)).await {
        Ok(reply) => reply,
        Err(failure) => return layout::failure_page(&failure),
    };
    if !reply.is_success() {
        let failure = reply.failure();
        let text = match failure.status {
            StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST => "Wrong username or password.".to_owned(),
            _ => failure.message(),
        };
        return (failure.status, page(&csrf, &credentials.username, Some(&text))).into_response();
    }
    let signed_in: SignedIn = match reply.parse() {
        Ok(signed_in) => signed_in,
        Err(failure) => return layout::failure_page(&failure),
    };
    if !signed_in.user.is_staff() {
        let logout = Call::post("/api/v1/auth/logout", json!({ "refreshToken": signed_in.tokens.refresh_token }))
            .bearer(&signed_in.tokens.access_token)
            .from_client(client);
        if let Err(failure) = state.api.send(logout).await {
            tracing::warn!(reason = %failure.message(), "the console could not end a player's session");
        }
        return layout::staff_only();
    }
    let mut response = Redirect::to("/console/").into_response();
    set_session_cookies(response.headers_mut(), &signed_in.tokens, secure);
    // A new CSRF token for the new session.
    response.headers_mut().append(SET_COOKIE, cookie(CSRF_COOKIE, Some(&new_token()), secure));
    response
}

/// Ends the session at the API (the refresh token stops working) and forgets the cookies.
async fn sign_out(Https(secure): Https, staff: Result<Staff, Response>, Checked(_): Checked<Nothing>) -> Response {
    if let Ok(staff) = staff {
        staff.sign_out().await;
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    clear_session_cookies(response.headers_mut(), secure);
    response
}
