//! `/api/v1/events`: create, list, read, update, change status, delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bestow_core::ApiError;
use bestow_core::audit::AuditActor;
use bestow_core::extract::{Authenticated, Authorized, RequestId, require};
use bestow_core::json::{ValidJson, ValidQuery};
use bestow_core::page::{Page, PageParams, PageRequest};
use bestow_core::problem::Problem;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{EventsState, etag, if_match};
use crate::catalog::store::{EventFilter, EventSortKey};
use crate::domain::event::{Event, EventInput, EventPatch};
use crate::domain::lifecycle::EventStatus;
use crate::view::{Audience, EventView};

pub(super) fn router() -> OpenApiRouter<EventsState> {
    OpenApiRouter::new()
        .routes(routes!(create_event, list_events))
        .routes(routes!(get_event, patch_event, delete_event))
        .routes(routes!(set_status))
}

/// The event as `audience` may read it, with its `ETag`.
fn with_etag(status: StatusCode, event: &Event, audience: Audience) -> Response {
    (status, [(header::ETAG, etag(event.version))], Json(EventView::new(event, audience))).into_response()
}

/// Creates a DRAFT event; rewards may be given inline (OPERATOR, ADMIN).
///
/// Refused with 400 by rules the schema cannot state, each naming its field: `endDate` not
/// after `startDate`; a reward whose `totalStock` (other than `-1`) is below its
/// `quantityPerUser`; two tiers with one `tierId`; a condition tree deeper than 5 levels or
/// with more than 50 nodes; a `timezone` the IANA database does not hold.
#[utoipa::path(post, path = "/api/v1/events", tag = "events", request_body = EventInput, security(("bearer" = [])),
    responses(
        (status = 201, description = "Created as DRAFT", body = EventView),
        (status = 400, description = "Invalid field; `errors` points at each", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "`audience` names an audience that does not exist", body = Problem),
    ))]
async fn create_event(
    caller: Authorized<require::ManageEvents>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    ValidJson(input): ValidJson<EventInput>,
) -> Result<Response, ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id);
    let event = state.catalog.create(&actor, input).await?;
    Ok(with_etag(StatusCode::CREATED, &event, Audience::Staff))
}

/// Filters and order of the event list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct EventListQuery {
    /// Only events in this status.
    status: Option<EventStatus>,
    /// Only events running at this instant (`startDate <= activeAt < endDate`; years 1970–9999).
    #[serde(default, deserialize_with = "bestow_core::time::bounded_option")]
    active_at: Option<DateTime<Utc>>,
    /// Case-insensitive part of the event name.
    q: Option<String>,
    /// `startDate`, `-startDate`, `createdAt` (default) or `-createdAt`.
    #[param(pattern = "^-?(startDate|createdAt)$")]
    sort: Option<String>,
}

/// Events the caller may see; players see ACTIVE and EXPIRED events only.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventListQuery, PageParams),
    security(("bearer" = [])),
    responses((status = 200, body = Page<EventView>), (status = 400, body = Problem), (status = 401, body = Problem)))]
async fn list_events(
    Authenticated(caller): Authenticated,
    State(state): State<EventsState>,
    ValidQuery(query): ValidQuery<EventListQuery>,
    ValidQuery(paging): ValidQuery<PageParams>,
) -> Result<Json<Page<EventView>>, ApiError> {
    let (sort, descending) = match query.sort.as_deref() {
        None | Some("createdAt") => (EventSortKey::CreatedAt, false),
        Some("-createdAt") => (EventSortKey::CreatedAt, true),
        Some("startDate") => (EventSortKey::StartDate, false),
        Some("-startDate") => (EventSortKey::StartDate, true),
        Some(other) => {
            let message = format!("cannot sort by `{other}`; use startDate, -startDate, createdAt or -createdAt");
            return Err(ApiError::field("?sort", "invalid", message));
        }
    };
    // Checked after `?sort`, so a request wrong in both is told about the sort first.
    let page = PageRequest::try_from(&paging)?;
    let filter = EventFilter {
        statuses: query.status.map(|status| vec![status]),
        active_at: query.active_at,
        name_contains: query.q,
        sort,
        descending,
    };
    let page = state.catalog.list(&caller, filter, page).await?;
    let audience = Audience::of(&caller);
    Ok(Json(page.map(|event| EventView::new(&event, audience))))
}

/// One event, with its `ETag`; 404 for players when it is not ACTIVE or EXPIRED.
#[utoipa::path(get, path = "/api/v1/events/{eventId}", tag = "events", params(("eventId" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = EventView), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_event(
    Authenticated(caller): Authenticated,
    State(state): State<EventsState>,
    Path(event_id): Path<String>,
) -> Result<Response, ApiError> {
    let event = state.catalog.get(&caller, &event_id).await?;
    Ok(with_etag(StatusCode::OK, &event, Audience::of(&caller)))
}

/// Partial update (OPERATOR, ADMIN). Honours `If-Match` with the `ETag` of a previous read.
///
/// Refused with 400 by rules of the stored event, each naming its field: new dates that,
/// with the stored ones, do not keep `endDate` after `startDate`; the bounds of a new
/// condition tree or tiers as on creation. Conditions, dates, time zone, grant policy and
/// recurrence change only while the event is DRAFT or INACTIVE (409 otherwise).
#[utoipa::path(patch, path = "/api/v1/events/{eventId}", tag = "events", params(("eventId" = String, Path)),
    request_body = EventPatch, security(("bearer" = [])),
    responses(
        (status = 200, body = EventView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "The lifecycle forbids the change, or `audience` names an audience that does not exist", body = Problem),
        (status = 412, description = "`If-Match` is stale", body = Problem),
    ))]
async fn patch_event(
    caller: Authorized<require::ManageEvents>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    Path(event_id): Path<String>,
    headers: HeaderMap,
    ValidJson(patch): ValidJson<EventPatch>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let actor = AuditActor::user(&caller.principal, request_id);
    let event = state.catalog.patch(&actor, &event_id, patch, expected).await?;
    Ok(with_etag(StatusCode::OK, &event, Audience::Staff))
}

/// The requested status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "status": "ACTIVE" }))]
struct StatusChange {
    /// `ACTIVE`, `INACTIVE`, `EXPIRED` or `ARCHIVED`.
    status: EventStatus,
}

/// Moves the event through its lifecycle (OPERATOR, ADMIN).
#[utoipa::path(put, path = "/api/v1/events/{eventId}/status", tag = "events", params(("eventId" = String, Path)),
    request_body = StatusChange, security(("bearer" = [])),
    responses(
        (status = 200, body = EventView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "Forbidden transition, or activation without rewards or after the end", body = Problem),
    ))]
async fn set_status(
    caller: Authorized<require::ManageEvents>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    Path(event_id): Path<String>,
    ValidJson(change): ValidJson<StatusChange>,
) -> Result<Response, ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id);
    let event = state.catalog.set_status(&actor, &event_id, change.status).await?;
    Ok(with_etag(StatusCode::OK, &event, Audience::Staff))
}

/// Deletes a DRAFT event (ADMIN).
#[utoipa::path(delete, path = "/api/v1/events/{eventId}", tag = "events", params(("eventId" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, description = "Not a DRAFT", body = Problem),
    ))]
async fn delete_event(
    caller: Authorized<require::DeleteEvents>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    Path(event_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id);
    state.catalog.delete(&actor, &event_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
