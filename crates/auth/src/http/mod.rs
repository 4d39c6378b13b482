//! The auth service's HTTP resources, per `API.md`.

mod audit;
mod dto;
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
    OpenApiRouter::new()
        .merge(session::router())
        .merge(users::router())
        .merge(audit::router())
        .merge(jwks::router())
        .with_state(state)
}
