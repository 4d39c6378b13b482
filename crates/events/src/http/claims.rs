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
use crate::claims::{Resolution, Submission};
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

/// `Idempotency-Key` as a UUID, or a new one.
fn request_id(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(uuid_v4());
    };
    let text = value.to_str().unwrap_or_default().trim();
    parse_uuid(text)
        .ok_or_else(|| ApiError::field("Idempotency-Key", "invalid", "the Idempotency-Key header must be a UUID"))
}

/// A random (version 4) UUID in its canonical text form.
fn uuid_v4() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    format_uuid(&bytes)
}

fn format_uuid(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// The canonical lowercase form of a UUID in 8-4-4-4-12 form, if `text` is one.
fn parse_uuid(text: &str) -> Option<String> {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let well_formed = lengths == [8, 4, 4, 4, 12] && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    well_formed.then(|| text.to_ascii_lowercase())
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
    let filter = ClaimFilter {
        user_id: Some(caller.user_id),
        event_id: query.event_id,
        status: query.status,
        ..ClaimFilter::default()
    };
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
    let page = state.claims.list(&query.into(), page).await?;
    Ok(Json(page.map(|request| ClaimView::new(request, Audience::Staff))))
}

impl From<ClaimsQuery> for ClaimFilter {
    fn from(query: ClaimsQuery) -> Self {
        Self { user_id: query.user_id, event_id: query.event_id, status: query.status, from: query.from, to: query.to }
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
    let filter = ClaimFilter { to: state.clock.up_to_now(query.to), ..query.into() };
    CLAIMS_CSV
        .stream((state.claims, filter), |(claims, filter), page| async move {
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
    let request = state.claims.get(&caller, &request_id).await?;
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
    let request = state.claims.retry(&actor, &request_id).await?;
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
    let request = state.claims.resolve(&actor, &request_id, body.resolution, note).await?;
    Ok(Json(ClaimView::new(request, Audience::Staff)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_must_be_uuids() {
        assert_eq!(
            parse_uuid("3F2504E0-4F89-11D3-9A0C-0305E82C3301").as_deref(),
            Some("3f2504e0-4f89-11d3-9a0c-0305e82c3301")
        );
        assert!(parse_uuid("not-a-uuid").is_none());
        assert!(parse_uuid("3f2504e04f8911d39a0c0305e82c3301").is_none());
        assert!(parse_uuid(&uuid_v4()).is_some());
        assert_ne!(uuid_v4(), uuid_v4());
    }
}
