//! The auth service's HTTP resources, per `API.md`.

mod audit;
mod dto;
mod errors;
pub mod internal;
mod jwks;
mod session;
mod users;

use std::sync::Arc;

use axum::extract::FromRef;
use bestow_core::token::TokenVerifier;
use utoipa_axum::router::OpenApiRouter;

use crate::service::AuthService;

pub use dto::UserView;

/// What every auth handler can reach.
#[derive(Clone)]
pub struct AuthState {
    pub service: Arc<AuthService>,
    pub verifier: TokenVerifier,
}

impl FromRef<AuthState> for TokenVerifier {
    fn from_ref(state: &AuthState) -> Self {
        state.verifier.clone()
    }
}

/// Every public auth route, documented.
pub fn router(state: AuthState) -> OpenApiRouter {
    routes().with_state(state)
}

/// The OpenAPI paths of [`router`], for a process that documents auth without serving it
/// (the split-mode gateway).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

fn routes() -> OpenApiRouter<AuthState> {
    OpenApiRouter::new().merge(session::router()).merge(users::router()).merge(audit::router()).merge(jwks::router())
}
