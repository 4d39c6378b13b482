//! `/api/v1/audiences`: RULE and LIST audiences, LIST members (CSV upload, one by one, list,
//! export), size estimates and checking one player. OPERATOR and ADMIN change them; AUDITOR
//! reads.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bestow_core::ApiError;
use bestow_core::audit::AuditActor;
use bestow_core::export::TEXT_CSV;
use bestow_core::extract::{Authorized, RequestId, require};
use bestow_core::ids::UserId;
use bestow_core::json::{ValidJson, ValidQuery};
use bestow_core::page::{Page, PageParams, ValidPage};
use bestow_core::problem::Problem;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{EventsState, etag, if_match};
use crate::audiences::AudienceError;
use crate::domain::audience::view::EstimateProgress;
use crate::domain::audience::view::{AudienceMember, AudienceView, EstimateJob, MemberCount, MembershipCheck};
use crate::domain::audience::{Audience, AudienceInput, AudiencePatch};

pub(super) fn router() -> OpenApiRouter<EventsState> {
    OpenApiRouter::new()
        .routes(routes!(create_audience, list_audiences))
        .routes(routes!(get_audience, patch_audience, delete_audience))
        .routes(routes!(replace_members, list_members))
        .routes(routes!(export_members))
        .routes(routes!(add_member, remove_member))
        .routes(routes!(start_estimate, estimate))
        .routes(routes!(check_member))
}

/// A read of members: a RULE audience has no member list to read (404), where a change of
/// members is a conflict with its kind (409).
fn no_member_list(error: AudienceError) -> ApiError {
    match error {
        AudienceError::NotAList => ApiError::not_found("AUDIENCE_NOT_A_LIST", "a RULE audience has no member list"),
        other => other.into(),
    }
}

/// The audience with its `ETag`.
fn with_etag(status: StatusCode, audience: &Audience) -> Response {
    (status, [(header::ETAG, etag(audience.version))], Json(AudienceView::from(audience))).into_response()
}

/// A player a path or query names; text that can be no player id names none.
fn player(user_id: &str) -> Result<UserId, ApiError> {
    UserId::parse(user_id).map_err(|_| ApiError::not_found("PLAYER_NOT_FOUND", "no such player"))
}

/// Creates an audience (OPERATOR, ADMIN): RULE with its `rule` tree, or LIST (empty; upload
/// its members). A rule's leaves: `PROPERTY {name, op, value}` (`op` one of EQ, NE, IN,
/// NOT_IN, GT, GTE, LT, LTE, EXISTS), `ACCOUNT_AGE_DAYS {min?, max?}`, `INACTIVE_DAYS {min}`,
/// `IN_AUDIENCE {audienceId}`, `ROLLOUT {percent, salt}` and every condition leaf with
/// `withinDays`; composites AND, OR (`subConditions`) and NOT (`condition`).
#[utoipa::path(post, path = "/api/v1/audiences", tag = "audiences", request_body = AudienceInput,
    security(("bearer" = [])),
    responses(
        (status = 201, body = AudienceView),
        (status = 400, description = "A bad field or rule node, each named by its pointer", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "`IN_AUDIENCE` names no audience", body = Problem),
    ))]
async fn create_audience(
    caller: Authorized<require::ManageAudiences>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    ValidJson(input): ValidJson<AudienceInput>,
) -> Result<Response, ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id);
    let audience = state.audiences.create(&actor, input).await?;
    Ok(with_etag(StatusCode::CREATED, &audience))
}

/// Every audience, newest first (OPERATOR, AUDITOR, ADMIN).
#[utoipa::path(get, path = "/api/v1/audiences", tag = "audiences", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Page<AudienceView>), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem),
    ))]
async fn list_audiences(
    _caller: Authorized<require::ReadAudiences>,
    State(state): State<EventsState>,
    ValidPage(page): ValidPage,
) -> Result<Json<Page<AudienceView>>, ApiError> {
    Ok(Json(state.audiences.list(page).await?.map(|audience| AudienceView::from(&audience))))
}

/// One audience, with its `ETag` (OPERATOR, AUDITOR, ADMIN).
#[utoipa::path(get, path = "/api/v1/audiences/{audienceId}", tag = "audiences",
    params(("audienceId" = String, Path)), security(("bearer" = [])),
    responses(
        (status = 200, body = AudienceView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
    ))]
async fn get_audience(
    _caller: Authorized<require::ReadAudiences>,
    State(state): State<EventsState>,
    Path(audience_id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(with_etag(StatusCode::OK, &state.audiences.get(&audience_id).await?))
}

/// Changes an audience's name, description or rule (OPERATOR, ADMIN); honours `If-Match`.
/// Events targeting it see the change at once.
#[utoipa::path(patch, path = "/api/v1/audiences/{audienceId}", tag = "audiences",
    params(("audienceId" = String, Path)), request_body = AudiencePatch, security(("bearer" = [])),
    responses(
        (status = 200, body = AudienceView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "Changed meanwhile, a rule for a LIST audience, or an `IN_AUDIENCE` naming no audience or leading back to this one", body = Problem),
        (status = 412, description = "`If-Match` is stale", body = Problem),
    ))]
async fn patch_audience(
    caller: Authorized<require::ManageAudiences>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    Path(audience_id): Path<String>,
    headers: HeaderMap,
    ValidJson(patch): ValidJson<AudiencePatch>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let actor = AuditActor::user(&caller.principal, request_id);
    let audience = state.audiences.patch(&actor, &audience_id, patch, expected).await?;
    Ok(with_etag(StatusCode::OK, &audience))
}

/// Deletes an audience and its members (OPERATOR, ADMIN); 409 while an event or another
/// audience's rule names it.
#[utoipa::path(delete, path = "/api/v1/audiences/{audienceId}", tag = "audiences",
    params(("audienceId" = String, Path)), security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, description = "In use", body = Problem),
    ))]
async fn delete_audience(
    caller: Authorized<require::ManageAudiences>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    Path(audience_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id);
    state.audiences.delete(&actor, &audience_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a LIST audience's members by a CSV of user ids, one a line (an optional `userId`
/// header, blank lines skipped, repeated ids kept once), at most 1,000,000 (OPERATOR, ADMIN).
/// All or nothing: a bad line (named by its number), one line too many or a broken body
/// leaves the members as they were. Read as it arrives, never held whole.
#[utoipa::path(put, path = "/api/v1/audiences/{audienceId}/members", tag = "audiences",
    params(("audienceId" = String, Path)),
    request_body(content = String, content_type = "application/octet-stream",
        description = "CSV text, one user id a line; sent as `application/octet-stream` or `text/csv`",
        example = "userId\nplayer-1\nplayer-2\n"),
    security(("bearer" = [])),
    responses(
        (status = 200, body = MemberCount),
        (status = 400, description = "A bad line (`line:N`), too many lines, or an unreadable body", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "Not a LIST audience, or changed meanwhile", body = Problem),
        (status = 415, description = "Neither `application/octet-stream` nor `text/csv`", body = Problem),
    ))]
async fn replace_members(
    caller: Authorized<require::ManageAudiences>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    Path(audience_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<MemberCount>, ApiError> {
    if !bestow_core::http::is_bulk(&headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let actor = AuditActor::user(&caller.principal, request_id);
    let members = state.audiences.replace_members(&actor, &audience_id, body.into_data_stream()).await?;
    Ok(Json(MemberCount { members }))
}

/// One page of a LIST audience's members, by user id (OPERATOR, AUDITOR, ADMIN).
#[utoipa::path(get, path = "/api/v1/audiences/{audienceId}/members", tag = "audiences",
    params(("audienceId" = String, Path), PageParams), security(("bearer" = [])),
    responses(
        (status = 200, body = Page<AudienceMember>), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "No such audience, or a RULE audience (no member list)", body = Problem),
    ))]
async fn list_members(
    _caller: Authorized<require::ReadAudiences>,
    State(state): State<EventsState>,
    Path(audience_id): Path<String>,
    ValidPage(page): ValidPage,
) -> Result<Json<Page<AudienceMember>>, ApiError> {
    let members = state.audiences.members(&audience_id, page).await.map_err(no_member_list)?;
    Ok(Json(members.map(|user_id| AudienceMember { user_id: user_id.to_string() })))
}

/// Every member of a LIST audience as CSV (`userId` header), streamed (OPERATOR, AUDITOR,
/// ADMIN).
#[utoipa::path(get, path = "/api/v1/audiences/{audienceId}/members/export", tag = "audiences",
    params(("audienceId" = String, Path)), security(("bearer" = [])),
    responses(
        (status = 200, description = "One user id a line", content_type = "text/csv", body = String),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "No such audience, or a RULE audience (no member list)", body = Problem),
    ))]
async fn export_members(
    _caller: Authorized<require::ReadAudiences>,
    State(state): State<EventsState>,
    Path(audience_id): Path<String>,
) -> Result<Response, ApiError> {
    let lines = state.audiences.export_members(&audience_id).await.map_err(no_member_list)?;
    let disposition = HeaderValue::from_static("attachment; filename=\"audience-members.csv\"");
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_CSV)), (header::CONTENT_DISPOSITION, disposition)],
        Body::from_stream(lines),
    )
        .into_response())
}

/// Adds one player to a LIST audience (OPERATOR, ADMIN); adding a member again changes
/// nothing. Audited.
#[utoipa::path(post, path = "/api/v1/audiences/{audienceId}/members/{userId}", tag = "audiences",
    params(("audienceId" = String, Path), ("userId" = String, Path, min_length = 1, max_length = 128)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "A member"), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, description = "Not a LIST audience, or changed meanwhile", body = Problem),
    ))]
async fn add_member(
    caller: Authorized<require::ManageAudiences>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    Path((audience_id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id);
    state.audiences.add_member(&actor, &audience_id, &player(&user_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes one player from a LIST audience (OPERATOR, ADMIN); removing a non-member changes
/// nothing. Audited.
#[utoipa::path(delete, path = "/api/v1/audiences/{audienceId}/members/{userId}", tag = "audiences",
    params(("audienceId" = String, Path), ("userId" = String, Path, min_length = 1, max_length = 128)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Not a member"), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, description = "Not a LIST audience, or changed meanwhile", body = Problem),
    ))]
async fn remove_member(
    caller: Authorized<require::ManageAudiences>,
    RequestId(request_id): RequestId,
    State(state): State<EventsState>,
    Path((audience_id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let actor = AuditActor::user(&caller.principal, request_id);
    state.audiences.remove_member(&actor, &audience_id, &player(&user_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts estimating an audience's size (OPERATOR, ADMIN): a LIST audience's is exact at
/// once; a RULE audience is judged for every known player (those with properties) by a
/// background job. Follow it with `GET .../estimate`.
#[utoipa::path(post, path = "/api/v1/audiences/{audienceId}/estimate", tag = "audiences",
    params(("audienceId" = String, Path)), security(("bearer" = [])),
    responses(
        (status = 202, body = EstimateJob), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
    ))]
async fn start_estimate(
    _caller: Authorized<require::ManageAudiences>,
    State(state): State<EventsState>,
    Path(audience_id): Path<String>,
) -> Result<(StatusCode, Json<EstimateJob>), ApiError> {
    let job_id = state.audiences.start_estimate(&audience_id).await?;
    Ok((StatusCode::ACCEPTED, Json(EstimateJob { job_id })))
}

/// The latest estimate of an audience's size and how far it got (OPERATOR, AUDITOR, ADMIN);
/// `NOT_STARTED`, with nothing counted, before any run.
#[utoipa::path(get, path = "/api/v1/audiences/{audienceId}/estimate", tag = "audiences",
    params(("audienceId" = String, Path)), security(("bearer" = [])),
    responses(
        (status = 200, body = EstimateProgress), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem),
    ))]
async fn estimate(
    _caller: Authorized<require::ReadAudiences>,
    State(state): State<EventsState>,
    Path(audience_id): Path<String>,
) -> Result<Json<EstimateProgress>, ApiError> {
    let audience = state.audiences.get(&audience_id).await?;
    Ok(Json(EstimateProgress::of(audience.estimate.as_ref())))
}

/// Whose membership to check.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct CheckQuery {
    /// The player (`users._id`), 1 to 128 characters.
    #[param(min_length = 1, max_length = 128)]
    user_id: String,
}

/// Whether one player is in the audience now, and why: the verdict of every node of its rule
/// (OPERATOR, AUDITOR, ADMIN).
#[utoipa::path(get, path = "/api/v1/audiences/{audienceId}/check", tag = "audiences",
    params(("audienceId" = String, Path), CheckQuery), security(("bearer" = [])),
    responses(
        (status = 200, body = MembershipCheck), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, description = "Facts cannot be read now", body = Problem),
    ))]
async fn check_member(
    _caller: Authorized<require::ReadAudiences>,
    State(state): State<EventsState>,
    Path(audience_id): Path<String>,
    ValidQuery(query): ValidQuery<CheckQuery>,
) -> Result<Json<MembershipCheck>, ApiError> {
    let user_id = UserId::parse(&query.user_id).map_err(|error| {
        ApiError::Validation(vec![bestow_core::FieldViolation::new("?userId", "invalid", error.to_string())])
    })?;
    Ok(Json(state.audiences.check(&audience_id, &user_id).await?))
}
