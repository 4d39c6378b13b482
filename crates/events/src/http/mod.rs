//! The events service's HTTP resources, per `API.md`.

mod activities;
mod audiences;
mod audit;
mod claims;
mod eligibility;
mod errors;
mod events;
mod me_events;
mod players;
mod rewards;
mod service_keys;
mod stats;
mod wallets;
pub mod writer;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::{HeaderMap, HeaderValue, header};
use bestow_core::ApiError;
use bestow_core::time::Clock;
use bestow_core::token::TokenVerifier;
use utoipa_axum::router::OpenApiRouter;

use crate::audiences::AudienceService;
use crate::audiences::properties::PlayerPropertyService;
use crate::catalog::EventCatalog;
use crate::claims::ClaimService;
use crate::conditions::activities::{ActivityHistory, ActivityIngestion};
use crate::conditions::eligibility::EligibilityChecker;
use crate::event_screen::EventScreen;
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
    pub activity_history: Arc<ActivityHistory>,
    pub service_keys: Arc<ServiceKeys>,
    pub eligibility: Arc<EligibilityChecker>,
    pub screen: Arc<EventScreen>,
    pub audiences: Arc<AudienceService>,
    pub players: Arc<PlayerPropertyService>,
    /// The services' business clock, for handlers that judge "now" themselves (eligibility
    /// previews, pinning an export's end).
    pub clock: Clock,
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

/// Rules between members of an input that JSON Schema states but the derive cannot write: an
/// event has top-level `rewards` or `tiers`, never both (`rewards` empty with `tiers` is
/// fine). Schemas absent from `openapi` are skipped.
pub fn state_member_rules(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;
    let Some(components) = &mut openapi.components else { return };
    if let Some(RefOr::T(Schema::Object(input))) = components.schemas.get_mut("EventInput") {
        let both = serde_json::json!({
            "required": ["rewards", "tiers"],
            "properties": { "rewards": { "minItems": 1 }, "tiers": { "type": "array" } },
        });
        // `not` is no member of utoipa's object schema; its extensions serialize flattened.
        input.extensions.get_or_insert_with(Default::default).insert("not".to_owned(), both);
    }
}

/// The OpenAPI links between the events operations: what a client (or a fuzzer) can do next
/// with the event it created or the claim it made, and with which value of the answer.
/// Operations absent from `openapi` (a process that does not document events) are skipped.
pub fn link_operations(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::link::LinkBuilder;
    let link = |operation_id: &str, parameter: &str, value: &str| {
        RefOr::T(LinkBuilder::new().operation_id(operation_id).parameter(parameter, value).build())
    };
    let event_id = "$response.body#/id";
    let activate = RefOr::T(
        LinkBuilder::new()
            .operation_id("set_status")
            .parameter("eventId", event_id)
            .request_body(Some(serde_json::json!({ "status": "ACTIVE" })))
            .build(),
    );
    let links = [
        (
            "/api/v1/events",
            "post",
            "201",
            vec![
                ("GetEvent", link("get_event", "eventId", event_id)),
                ("ActivateEvent", activate),
                ("AddReward", link("add_reward", "eventId", event_id)),
                ("ClaimReward", link("submit_claim", "eventId", event_id)),
                ("CheckEligibility", link("eligibility", "eventId", event_id)),
            ],
        ),
        (
            "/api/v1/events/{eventId}/status",
            "put",
            "200",
            vec![("ClaimReward", link("submit_claim", "eventId", event_id))],
        ),
        (
            "/api/v1/events/{eventId}/claims",
            "post",
            "201",
            vec![("GetClaim", link("get_claim", "requestId", "$response.body#/requestId"))],
        ),
        (
            "/api/v1/events/{eventId}/claims",
            "post",
            "202",
            vec![("GetClaim", link("get_claim", "requestId", "$response.body#/requestId"))],
        ),
    ];
    for (path, method, status, named) in links {
        let Some(item) = openapi.paths.paths.get_mut(path) else { continue };
        let operation = match method {
            "post" => item.post.as_mut(),
            "put" => item.put.as_mut(),
            _ => None,
        };
        let response = operation.and_then(|operation| operation.responses.responses.get_mut(status));
        if let Some(RefOr::T(response)) = response {
            response.links.extend(named.into_iter().map(|(name, link)| (name.to_owned(), link)));
        }
    }
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
        .merge(me_events::router())
        .merge(audit::router())
        .merge(stats::router())
        .merge(audiences::router())
        .merge(players::router())
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
