//! The operator console: what live-ops staff use in the browser.
//!
//! Pages are HTML written on the server. Every read and every change is a request to the HTTP
//! API ([`api`]), sent in process through the same gateway as any client's, with the signed-in
//! user's own access token ([`session`]): the console can never do more than its user could
//! with curl, and all-in-one and split mode (where the gateway serves it) behave alike.

pub mod api;
pub mod assets;
mod chart;
mod flash;
mod layout;
mod pages;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::get;
use http::HeaderValue;

use crate::api::Api;

/// What every console handler shares.
#[derive(Clone)]
pub struct ConsoleState {
    api: Api,
    renewals: Arc<session::RecentRenewals>,
}

/// The console's routes (`/` and `/console/...`), acting through `api`: the router that serves
/// the HTTP API to clients, gateway included.
pub fn router(api: Router) -> Router {
    let state = ConsoleState { api: Api::new(api), renewals: Arc::default() };
    let console = pages::routes()
        .route("/console/assets/{file}", get(assets::serve))
        .layer(middleware::from_fn(flash::carry))
        .layer(middleware::from_fn(session::renew_cookies))
        .layer(middleware::from_fn(page_headers))
        .with_state(state);
    Router::new().route("/", get(|| async { Redirect::to("/console/") })).merge(console)
}

/// Pages are never cached or framed, and load nothing from anywhere but this origin.
async fn page_headers(request: axum::extract::Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/console/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !is_asset {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
