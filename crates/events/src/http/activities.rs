//! `/api/v1/activities`: game servers push what players did (`POST`); staff read a player's
//! recent activities back (`GET`).
//!
//! A writer is a [`Writer`]: a game server with a service key (`X-Api-Key`) holding
//! `activities:write`, or a person whose bearer token grants `WriteActivities` (ADMIN). A reader
//! is a person whose token grants `ReadAllClaims` (OPERATOR, AUDITOR, ADMIN); a service key
//! only writes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bestow_core::ApiError;
use bestow_core::extract::{Authorized, require};
use bestow_core::json::{ValidJson, ValidQuery};
use bestow_core::page::{Page, PageParams, ValidPage};
use bestow_core::problem::Problem;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::EventsState;
use super::writer::{Activities, Writer};
use crate::conditions::activities::{Activity, ActivityBatch, IngestionReceipt};
use crate::domain::condition::ActivityType;

pub(super) fn router() -> OpenApiRouter<EventsState> {
    OpenApiRouter::new().routes(routes!(ingest_activities, recent_activities))
}

/// Stores a batch of 1 to 1000 activities (service key with `activities:write`, or ADMIN).
/// Every item is validated; one bad item rejects the batch, and the problem lists every bad
/// field as `/activities/{index}/{field}`. Activities whose `activityId` is already stored are
/// skipped, so a batch can be re-sent safely.
///
/// Refused with 400 by a rule of the server's clock: an `occurredAt` more than 5 minutes in
/// the future.
#[utoipa::path(post, path = "/api/v1/activities", tag = "activities", request_body = ActivityBatch,
    security(("apiKey" = []), ("bearer" = [])),
    responses(
        (status = 202, description = "Stored; `duplicates` were already known", body = IngestionReceipt),
        (status = 400, description = "A bad item, or more than 1000; `errors` points at each field", body = Problem),
        (status = 401, description = "No credentials, or an unknown or revoked key", body = Problem),
        (status = 403, description = "A token without `WriteActivities`, or a key without the scope", body = Problem),
        (status = 413, description = "Body larger than the configured limit", body = Problem),
    ))]
async fn ingest_activities(
    writer: Writer<Activities>,
    State(state): State<EventsState>,
    ValidJson(batch): ValidJson<ActivityBatch>,
) -> Result<(StatusCode, Json<IngestionReceipt>), ApiError> {
    let receipt = state.activities.ingest(&batch).await?;
    let (writer_kind, writer_id) = writer.identity();
    tracing::debug!(writer_kind, writer_id, receipt.accepted, receipt.duplicates, "activities stored");
    Ok((StatusCode::ACCEPTED, Json(receipt)))
}

/// Whose activities, of which type.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct RecentActivitiesQuery {
    /// The player (`users._id`), 1 to 128 characters: required.
    #[param(min_length = 1, max_length = 128)]
    user_id: String,
    /// Only activities of this type.
    #[serde(rename = "type")]
    #[param(value_type = Option<String>, pattern = "^[A-Z][A-Z0-9_]{0,63}$", example = "LOGIN")]
    activity_type: Option<ActivityType>,
}

/// A player's activities, newest first (OPERATOR, AUDITOR, ADMIN).
///
/// What game servers pushed, newest `occurredAt` first (equal times in one fixed order, so
/// pages neither repeat nor skip one); a service key writes activities but cannot read them.
/// With an external fact provider configured nothing is pushed here, so the list is empty.
#[utoipa::path(get, path = "/api/v1/activities", tag = "activities", params(RecentActivitiesQuery, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Page<Activity>),
        (status = 400, description = "No `userId`, or a bad `type`, `page` or `limit`", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ))]
async fn recent_activities(
    _caller: Authorized<require::ReadAllClaims>,
    State(state): State<EventsState>,
    ValidQuery(query): ValidQuery<RecentActivitiesQuery>,
    ValidPage(page): ValidPage,
) -> Result<Json<Page<Activity>>, ApiError> {
    Ok(Json(state.activity_history.recent(&query.user_id, query.activity_type.as_ref(), page).await?))
}
