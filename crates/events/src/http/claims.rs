//! `/api/v1/…/claims`: submitting claims, reading them, and settling the ones that need a human.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bestow_core::ApiError;
use bestow_core::audit::AuditActor;
use bestow_core::export::{CsvDownload, CsvExport};
use bestow_core::extract::{Authenticated, Authorized, RequestId, require};
use bestow_core::ids::{self, EventId, UserId};
use bestow_core::json::{ValidJson, ValidQuery, parse_json};
use bestow_core::page::{Page, PageParams, ValidPage};
use bestow_core::problem::Problem;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::EventsState;
use crate::claims::store::ClaimFilter;
use crate::claims::{ClaimError, Resolution, Submission};
use crate::domain::saga::{ClaimRequest, ClaimStatus};
use crate::view::{Audience, ClaimView};

pub(super) fn router() -> OpenApiRouter<EventsState> {
    OpenApiRouter::new()
        .routes(routes!(submit_claim))
        .routes(routes!(my_claims))
        .routes(routes!(all_claims))
        .routes(routes!(export_claims))
        .routes(routes!(get_claim))
        .routes(routes!(retry_claim))
        .routes(routes!(resolve_claim))
}

/// The body of a claim submission: empty, an empty object, or the tier claimed.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClaimBody {
    /// The tier claimed: required for an event with tiers, absent otherwise.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", example = "day-1")]
    tier_id: Option<String>,
}

/// `Idempotency-Key` as a request id, or a new one.
fn request_id(headers: &HeaderMap) -> Result<ids::RequestId, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(ids::RequestId::generate());
    };
    let text = value.to_str().unwrap_or_default().trim();
    ids::RequestId::parse(text)
        .map_err(|_| ApiError::field("Idempotency-Key", "invalid", "the Idempotency-Key header must be a UUID"))
}

/// The claim a `{requestId}` path names; text that is no request id names none (404).
fn claim_key(text: &str) -> Result<ids::RequestId, ClaimError> {
    ids::RequestId::parse(text).map_err(|_| ClaimError::ClaimNotFound)
}

fn with_location(status: StatusCode, request: ClaimRequest, audience: Audience) -> Response {
    let location = HeaderValue::from_str(&format!("/api/v1/claims/{}", request.request_id)).ok();
    let mut response = (status, Json(ClaimView::new(request, audience))).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Asks for the rewards of an event (USER). The outcome — granted, not eligible, out of stock —
/// is the request's `status`: 201 when final, 202 while in progress (poll
/// `GET /api/v1/claims/{requestId}`), 200 when the `Idempotency-Key` replays an earlier claim.
#[utoipa::path(post, path = "/api/v1/events/{eventId}/claims", tag = "claims",
    params(("eventId" = String, Path), ("Idempotency-Key" = Option<String>, Header, format = Uuid, description = "A UUID (8-4-4-4-12 hex digits); replays return the stored request")),
    request_body(content = Option<ClaimBody>, description = "Empty, `null` or `{}` for an event without tiers; `{\"tierId\": …}` for one with tiers"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replay of an earlier claim", body = ClaimView),
        (status = 201, description = "Recorded and final", body = ClaimView),
        (status = 202, description = "Recorded, still in progress", body = ClaimView),
        (status = 400, description = "A bad body or key, or `TIER_REQUIRED`", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "`EVENT_NOT_FOUND`, or `TIER_NOT_FOUND`", body = Problem),
        (status = 422, description = "The key was used for another request", body = Problem),
    ))]
async fn submit_claim(
    caller: Authorized<require::ClaimRewards>,
    State(state): State<EventsState>,
    Path(event_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        ClaimBody::default()
    } else {
        parse_json::<Option<ClaimBody>>(&body)?.unwrap_or_default()
    };
    let request_id = request_id(&headers)?;
    let tier_id = body.tier_id.as_deref();
    let event_id = EventId::parse(&event_id).map_err(|_| ClaimError::EventNotFound)?;
    let (request, submission) = state.claims.submit(&caller.principal, &event_id, request_id, tier_id).await?;
    let status = match (submission, request.status.is_final()) {
        (_, false) => StatusCode::ACCEPTED,
        (Submission::Created, true) => StatusCode::CREATED,
        (Submission::Replayed, true) => StatusCode::OK,
    };
    Ok(with_location(status, request, Audience::of(&caller.principal)))
}

/// Filters of the caller's own claims.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct MyClaimsQuery {
    status: Option<ClaimStatus>,
    event_id: Option<String>,
}

/// The caller's own claims, newest first.
#[utoipa::path(get, path = "/api/v1/claims/me", tag = "claims", params(MyClaimsQuery, PageParams),
    security(("bearer" = [])),
    responses((status = 200, body = Page<ClaimView>), (status = 400, body = Problem), (status = 401, body = Problem)))]
async fn my_claims(
    Authenticated(caller): Authenticated,
    State(state): State<EventsState>,
    ValidQuery(query): ValidQuery<MyClaimsQuery>,
    ValidPage(page): ValidPage,
) -> Result<Json<Page<ClaimView>>, ApiError> {
    let audience = Audience::of(&caller);
    // No claim is ever made on text that is no event id.
    let Some(event_id) = query.event_id.as_deref().map(EventId::parse).transpose().ok() else {
        return Ok(Json(Page::new(Vec::new(), page, 0)));
    };
    let filter =
        ClaimFilter { user_id: Some(caller.user_id.clone()), event_id, status: query.status, ..ClaimFilter::default() };
    let page = state.claims.list(&filter, page).await?;
    Ok(Json(page.map(|request| ClaimView::new(request, audience))))
}

/// Filters of the claim history.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ClaimsQuery {
    user_id: Option<String>,
    event_id: Option<String>,
    status: Option<ClaimStatus>,
    /// Created at or after (RFC 3339, years 1970–9999).
    #[serde(default, deserialize_with = "bestow_core::time::bounded_option")]
    from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339, years 1970–9999).
    #[serde(default, deserialize_with = "bestow_core::time::bounded_option")]
    to: Option<DateTime<Utc>>,
}

/// Every claim, newest first (OPERATOR, AUDITOR, ADMIN).
#[utoipa::path(get, path = "/api/v1/claims", tag = "claims", params(ClaimsQuery, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Page<ClaimView>), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ))]
async fn all_claims(
    _caller: Authorized<require::ReadAllClaims>,
    State(state): State<EventsState>,
    ValidQuery(query): ValidQuery<ClaimsQuery>,
    ValidPage(page): ValidPage,
) -> Result<Json<Page<ClaimView>>, ApiError> {
    let Some(filter) = query.filter() else {
        return Ok(Json(Page::new(Vec::new(), page, 0)));
    };
    let page = state.claims.list(&filter, page).await?;
    Ok(Json(page.map(|request| ClaimView::new(request, Audience::Staff))))
}

impl ClaimsQuery {
    /// The filter the query asks for; `None` when an id in it is not well formed, so that
    /// nothing can match (no claim is ever recorded under such an id).
    fn filter(self) -> Option<ClaimFilter> {
        let user_id = self.user_id.as_deref().map(UserId::parse).transpose().ok()?;
        let event_id = self.event_id.as_deref().map(EventId::parse).transpose().ok()?;
        Some(ClaimFilter { user_id, event_id, status: self.status, from: self.from, to: self.to })
    }
}

/// `GET /api/v1/claims/export`: one claim a row, the columns named as [`ClaimView`]'s fields.
/// Nested values (rewards with their grant status, compensations, history) are JSON cells.
const CLAIMS_CSV: CsvExport = CsvExport {
    filename: "claims.csv",
    columns: &[
        "id",
        "requestId",
        "userId",
        "eventId",
        "tierId",
        "periodStart",
        "status",
        "currentSagaStep",
        "failureReason",
        "retryCount",
        "createdAt",
        "updatedAt",
        "claimedAt",
        "nextAttemptAt",
        "rewardsToProcess",
        "compensatingActionsLog",
        "history",
    ],
};

/// Every claim matching the filters of `GET /api/v1/claims`, as CSV (OPERATOR, AUDITOR, ADMIN).
///
/// Streamed, newest first: every matching row, no pagination. Secret reward details (a coupon's
/// code) are never exported.
#[utoipa::path(get, path = "/api/v1/claims/export", tag = "claims", params(ClaimsQuery),
    security(("bearer" = [])), responses(CsvDownload))]
async fn export_claims(
    _caller: Authorized<require::ReadAllClaims>,
    State(state): State<EventsState>,
    ValidQuery(query): ValidQuery<ClaimsQuery>,
) -> Result<Response, ApiError> {
    let to = state.clock.up_to_now(query.to);
    let filter = query.filter().map(|filter| ClaimFilter { to, ..filter });
    CLAIMS_CSV
        .stream((state.claims, filter), |(claims, filter), page| async move {
            let Some(filter) = filter else { return Ok(Vec::new()) };
            let page = claims.list(&filter, page).await?;
            Ok(page.items.into_iter().map(ClaimView::exported).collect())
        })
        .await
}

/// One claim: to its owner and to OPERATOR, AUDITOR, ADMIN; 404 to other players.
#[utoipa::path(get, path = "/api/v1/claims/{requestId}", tag = "claims", params(("requestId" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ClaimView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_claim(
    Authenticated(caller): Authenticated,
    State(state): State<EventsState>,
    Path(request_id): Path<String>,
) -> Result<Json<ClaimView>, ApiError> {
    let request = state.claims.get(&caller, &claim_key(&request_id)?).await?;
    Ok(Json(ClaimView::new(request, Audience::of(&caller))))
}

/// Retries the failed compensation of a claim that needs a human (ADMIN); audited.
#[utoipa::path(post, path = "/api/v1/claims/{requestId}/retry", tag = "claims", params(("requestId" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 202, body = ClaimView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, description = "Not waiting for a human", body = Problem),
    ))]
async fn retry_claim(
    caller: Authorized<require::InterveneInClaims>,
    RequestId(request_id_header): RequestId,
    State(state): State<EventsState>,
    Path(request_id): Path<String>,
) -> Result<(StatusCode, Json<ClaimView>), ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id_header);
    let request = state.claims.retry(&actor, &claim_key(&request_id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(ClaimView::new(request, Audience::Staff))))
}

/// How an admin settles a claim.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "resolution": "KEEP_GRANTED", "note": "the item was granted by hand in the game" }))]
struct ResolveBody {
    /// `ROLLED_BACK` (grants taken back by hand; stock is returned) or `KEEP_GRANTED`
    /// (the player keeps what was granted; the rest of the stock is returned).
    resolution: Resolution,
    /// Why, for the audit log: 1 to 2000 characters.
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    note: String,
}

/// Settles a claim that needs a human, with a note (ADMIN); audited.
#[utoipa::path(post, path = "/api/v1/claims/{requestId}/resolve", tag = "claims", params(("requestId" = String, Path)),
    request_body = ResolveBody, security(("bearer" = [])),
    responses(
        (status = 200, body = ClaimView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "Not waiting for a human", body = Problem),
    ))]
async fn resolve_claim(
    caller: Authorized<require::InterveneInClaims>,
    RequestId(request_id_header): RequestId,
    State(state): State<EventsState>,
    Path(request_id): Path<String>,
    ValidJson(body): ValidJson<ResolveBody>,
) -> Result<Json<ClaimView>, ApiError> {
    let note = body.note.trim();
    if note.is_empty() || note.chars().count() > 2000 {
        return Err(ApiError::field("/note", "required", "a note of 1 to 2000 characters is required"));
    }
    let actor = AuditActor::user(&caller.principal, request_id_header);
    let request = state.claims.resolve(&actor, &claim_key(&request_id)?, body.resolution, note).await?;
    Ok(Json(ClaimView::new(request, Audience::Staff)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_must_be_uuids() {
        let key = |text: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("idempotency-key", HeaderValue::from_str(text).unwrap());
            request_id(&headers).ok().map(|id| id.to_string())
        };
        assert_eq!(
            key("3F2504E0-4F89-11D3-9A0C-0305E82C3301").as_deref(),
            Some("3f2504e0-4f89-11d3-9a0c-0305e82c3301")
        );
        assert!(key("not-a-uuid").is_none());
        assert!(key("3f2504e04f8911d39a0c0305e82c3301").is_none());
        assert_ne!(request_id(&HeaderMap::new()).unwrap(), request_id(&HeaderMap::new()).unwrap());
    }
}
