//! The events service's HTTP resources, per `API.md`.

mod activities;
mod audit;
mod claims;
mod eligibility;
mod events;
mod rewards;
mod service_keys;
mod wallets;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::{HeaderMap, HeaderValue, header};
use bestow_core::ApiError;
use bestow_core::token::TokenVerifier;
use utoipa_axum::router::OpenApiRouter;

use crate::activities::ActivityIngestion;
use crate::catalog::EventCatalog;
use crate::claims::ClaimService;
use crate::eligibility::EligibilityChecker;
use crate::grants::ledger::LedgerStore;
use crate::service_keys::ServiceKeys;

/// What every events handler can reach.
#[derive(Clone)]
pub struct EventsState {
    pub catalog: Arc<EventCatalog>,
    pub verifier: TokenVerifier,
    pub claims: Arc<ClaimService>,
    pub ledger: Arc<dyn LedgerStore>,
    pub activities: Arc<ActivityIngestion>,
    pub service_keys: Arc<ServiceKeys>,
    pub eligibility: Arc<EligibilityChecker>,
}

impl FromRef<EventsState> for TokenVerifier {
    fn from_ref(state: &EventsState) -> Self {
        state.verifier.clone()
    }
}

/// Every public events route, documented.
pub fn router(state: EventsState) -> OpenApiRouter {
    routes().with_state(state)
}

/// The OpenAPI paths of [`router`], for a process that documents events without serving
/// them (the split-mode gateway).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

fn routes() -> OpenApiRouter<EventsState> {
    OpenApiRouter::new()
        .merge(events::router())
        .merge(rewards::router())
        .merge(claims::router())
        .merge(wallets::router())
        .merge(activities::router())
        .merge(service_keys::router())
        .merge(eligibility::router())
        .merge(audit::router())
}

/// The `ETag` of an event version.
fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// The version an `If-Match` header names: `None` without the header; a header that names no
/// version of ours can match nothing, so it fails the precondition.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| ApiError::PreconditionFailed)?.trim();
    let version = text.trim_start_matches("W/").trim_matches('"');
    version.parse().map(Some).map_err(|_| ApiError::PreconditionFailed)
}
