//! Game activities: what game servers push, where it is stored, and how the condition
//! evaluator reads it back as facts.
//!
//! - [`ActivityStore`]: the append-only storage port, unique on `activityId` and indexed by
//!   (`userId`, `type`, `occurredAt`), the shape of every [`FactQuery`].
//! - [`ActivityProvider`]: where the evaluator's facts come from, with [`FactError`] saying
//!   whether another attempt may help. [`StoredActivityProvider`] reads the store;
//!   [`crate::conditions::external_facts::HttpActivityProvider`] asks an operator's HTTP endpoint.
//! - [`ActivityIngestion`]: validates a pushed batch item by item and stores it idempotently.
//! - [`ActivityHistory`]: reads a player's stored activities back, newest first, for staff.

use std::sync::Arc;

use async_trait::async_trait;
use bestow_core::ids::UserId;
use bestow_core::page::{Page, PageRequest};
use bestow_core::store::StoreError;
use bestow_core::time::Clock;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::domain::condition::ActivityType;
use crate::domain::evaluate::{ActivityFact, FactQuery};
use crate::domain::validation::{FieldError, ObjectReader, child_pointer};

/// Most activities in one batch.
pub const MAX_BATCH: usize = 1_000;
/// Longest `userId`, in characters: the kernel's bound of a [`UserId`].
pub use bestow_core::ids::MAX_USER_ID_CHARS;
/// Longest `activityId`, in characters.
pub const MAX_ACTIVITY_ID_CHARS: usize = 128;
/// Largest `attributes` object, in bytes of compact JSON.
pub const MAX_ATTRIBUTES_BYTES: usize = 4 * 1024;
/// How far in the future `occurredAt` may lie: the tolerated clock skew of a game server.
pub const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);
/// Longest `occurredAt` text read; far above any RFC 3339 timestamp.
const MAX_TIMESTAMP_CHARS: usize = 64;

pub use crate::domain::ports::activities::{Activity, ActivityStore, NewActivity};

/// Why facts could not be read, and whether another attempt may help.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FactError {
    /// Timeout, connection failure, 5xx, unavailable storage: another attempt may succeed.
    #[error("facts temporarily unavailable: {0}")]
    Transient(#[source] FactFailure),
    /// A refusal or a malformed answer: another attempt would fail the same way.
    #[error("facts unavailable: {0}")]
    Permanent(#[source] FactFailure),
}

/// What went wrong reading facts. Its text is what a claim records as its failure reason, so it
/// never quotes the provider's URL or secrets.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FactFailure {
    #[error("timed out")]
    TimedOut,
    #[error("connection failed")]
    Unreachable,
    #[error("request failed")]
    RequestFailed,
    /// The provider answered with this status.
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("timed out reading the answer")]
    AnswerTimedOut,
    #[error("the answer was cut off")]
    CutOff,
    #[error("malformed answer: {0}")]
    Malformed(#[source] Arc<serde_json::Error>),
    /// The built-in provider's store failed.
    #[error("{0}")]
    Store(#[source] Arc<StoreError>),
    /// Every attempt the retry policy allows failed; `last` is the last one's failure.
    #[error("{last} (after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        #[source]
        last: Box<FactFailure>,
    },
}

/// Where the condition evaluator's facts come from.
#[async_trait]
pub trait ActivityProvider: Send + Sync {
    /// The facts `query` asks for (see [`ActivityStore::facts`] for the bounds). Loading more
    /// is harmless: the evaluator applies the window itself.
    async fn facts(&self, user_id: &UserId, query: &FactQuery) -> Result<Vec<ActivityFact>, FactError>;
}

/// The built-in provider: activities game servers pushed to this service.
pub struct StoredActivityProvider {
    store: Arc<dyn ActivityStore>,
}

impl StoredActivityProvider {
    pub fn new(store: Arc<dyn ActivityStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl ActivityProvider for StoredActivityProvider {
    async fn facts(&self, user_id: &UserId, query: &FactQuery) -> Result<Vec<ActivityFact>, FactError> {
        // Whatever the store failed with, the facts exist and a later attempt may read them.
        self.store
            .facts(user_id, query)
            .await
            .map_err(|error| FactError::Transient(FactFailure::Store(Arc::new(error))))
    }
}

/// The body of `POST /api/v1/activities`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "activities": [
    { "activityId": "login-42-2026-11-30", "userId": "6b0f5cc28f55b97276d7a209", "type": "LOGIN",
      "occurredAt": "2026-11-30T09:00:00Z" }
] }))]
pub struct ActivityBatch {
    /// 1 to 1000 activities. Each is validated on its own; any bad item rejects the whole
    /// batch, with every problem located at `/activities/{index}/{field}`.
    #[schema(value_type = Vec<ActivityInput>, min_items = 1, max_items = 1000)]
    pub activities: Vec<Value>,
}

// The schema of the API docs only: `parse_activity` reads items from JSON field by field, so
// that every bad field of every item is reported rather than the first one serde meets.
/// One activity as a game server sends it. Each item is checked on its own, and every bad
/// field of every item is reported.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityInput {
    /// The sender's unique id of this activity (at most 128 characters). A re-sent activity
    /// with an `activityId` already stored is ignored, so batches can be retried safely.
    /// Without one, every send is stored anew.
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub activity_id: Option<String>,
    /// The player (`users._id`), at most 128 characters.
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub user_id: String,
    /// `LOGIN`, `FRIEND_INVITED`, `QUEST_COMPLETED`, `LEVEL_UP`, `PURCHASE` or any custom type
    /// matching `[A-Z][A-Z0-9_]{0,63}`.
    #[serde(rename = "type")]
    #[schema(example = "LOGIN", pattern = "^[A-Z][A-Z0-9_]{0,63}$")]
    pub activity_type: String,
    /// When it happened (RFC 3339); at most 5 minutes in the future.
    pub occurred_at: DateTime<Utc>,
    /// Type-specific data, at most 4 KiB of JSON: `questId` of `QUEST_COMPLETED`, `level` of
    /// `LEVEL_UP`, `amount` of `PURCHASE`.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
}

/// What a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestionReceipt {
    /// Activities stored by this request.
    pub accepted: u64,
    /// Activities skipped because their `activityId` was already stored (or repeated within
    /// the batch).
    pub duplicates: u64,
}

/// Validates one activity of a batch, found at `pointer`, received at `now`.
pub fn parse_activity(value: &Value, pointer: &str, now: DateTime<Utc>) -> Result<NewActivity, Vec<FieldError>> {
    let mut reader = ObjectReader::new(value, pointer)?;
    let activity_id = reader.optional_text("activityId", MAX_ACTIVITY_ID_CHARS);
    let user_id = reader.required_text("userId", MAX_USER_ID_CHARS).and_then(|text| match UserId::parse(text) {
        Ok(user_id) => Some(user_id),
        Err(error) => {
            reader.push(FieldError::new(reader.pointer_to("userId"), "invalid", error.to_string()));
            None
        }
    });
    let activity_type = reader.required_parsed::<ActivityType>("type");
    let occurred_at = reader.required_text("occurredAt", MAX_TIMESTAMP_CHARS).and_then(|text| {
        let pointer = reader.pointer_to("occurredAt");
        match DateTime::parse_from_rfc3339(text) {
            Err(error) => reader.push(FieldError::new(pointer, "invalid", format!("must be RFC 3339: {error}"))),
            Ok(at) if at > now + MAX_CLOCK_SKEW => {
                let message = format!("must not be more than {} minutes in the future", MAX_CLOCK_SKEW.num_minutes());
                reader.push(FieldError::out_of_range(pointer, message));
            }
            Ok(at) => match bestow_core::time::in_range(at.with_timezone(&Utc)) {
                Ok(at) => return Some(at),
                Err(out_of_range) => reader.push(FieldError::out_of_range(pointer, out_of_range.to_string())),
            },
        }
        None
    });
    let attributes = match reader.optional("attributes") {
        None => Some(Map::new()),
        Some(Value::Object(attributes)) => {
            let size = serde_json::to_vec(attributes).map_or(usize::MAX, |bytes| bytes.len());
            if size > MAX_ATTRIBUTES_BYTES {
                let message = format!("must be at most {MAX_ATTRIBUTES_BYTES} bytes of JSON");
                reader.push(FieldError::out_of_range(reader.pointer_to("attributes"), message));
            }
            Some(attributes.clone())
        }
        Some(_) => {
            reader.push(FieldError::wrong_type(reader.pointer_to("attributes"), "an object"));
            None
        }
    };
    // `finish` refuses the value whenever an error was recorded, including one of the
    // optional `activityId`, so a bad id never falls back to a generated one.
    let parsed = match (user_id, activity_type, occurred_at, attributes) {
        (Some(user_id), Some(activity_type), Some(occurred_at), Some(attributes)) => Some(NewActivity {
            activity_id: activity_id.map_or_else(bestow_core::ids::new_object_id, str::to_owned),
            user_id,
            activity_type,
            occurred_at,
            attributes,
            received_at: now,
        }),
        _ => None,
    };
    reader.finish(parsed)
}

/// Validates a whole batch: every problem of every item, or every activity.
pub fn parse_batch(batch: &ActivityBatch, now: DateTime<Utc>) -> Result<Vec<NewActivity>, Vec<FieldError>> {
    if batch.activities.is_empty() || batch.activities.len() > MAX_BATCH {
        let message = format!("must hold 1 to {MAX_BATCH} activities, got {}", batch.activities.len());
        return Err(vec![FieldError::out_of_range("/activities", message)]);
    }
    let mut activities = Vec::with_capacity(batch.activities.len());
    let mut errors = Vec::new();
    for (index, value) in batch.activities.iter().enumerate() {
        match parse_activity(value, &child_pointer("/activities", index), now) {
            Ok(activity) => activities.push(activity),
            Err(found) => errors.extend(found),
        }
    }
    if errors.is_empty() { Ok(activities) } else { Err(errors) }
}

/// Why storing or reading activities failed. The HTTP layer (`crate::http::errors`) maps each
/// to its problem details.
#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    /// Bad field values, each at its JSON pointer (nothing of the batch was stored).
    #[error("request validation failed")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Accepts batches of activities from game servers.
pub struct ActivityIngestion {
    store: Arc<dyn ActivityStore>,
    /// What "not in the future" means for an activity's `occurredAt`.
    clock: Clock,
}

impl std::fmt::Debug for ActivityIngestion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityIngestion").finish_non_exhaustive()
    }
}

impl ActivityIngestion {
    pub fn new(store: Arc<dyn ActivityStore>, clock: Clock) -> Self {
        Self { store, clock }
    }

    /// Validates `batch` (nothing is stored unless every item is valid) and stores the
    /// activities not stored before.
    pub async fn ingest(&self, batch: &ActivityBatch) -> Result<IngestionReceipt, ActivityError> {
        let activities = parse_batch(batch, self.clock.now()).map_err(ActivityError::Invalid)?;
        let total = u64::try_from(activities.len()).unwrap_or(u64::MAX);
        let accepted = self.store.insert_batch(activities).await?;
        Ok(IngestionReceipt { accepted, duplicates: total.saturating_sub(accepted) })
    }
}

/// Reads a player's stored activities back for staff (the console's player page). Only what
/// game servers pushed here: with an external fact provider nothing is stored.
pub struct ActivityHistory {
    store: Arc<dyn ActivityStore>,
}

impl ActivityHistory {
    pub fn new(store: Arc<dyn ActivityStore>) -> Self {
        Self { store }
    }

    /// One page of `user_id`'s activities (of `activity_type` when given), newest first. An
    /// empty or over-long `userId` is a 400 at `?userId`; an unknown player has none.
    pub async fn recent(
        &self,
        user_id: &str,
        activity_type: Option<&ActivityType>,
        page: PageRequest,
    ) -> Result<Page<Activity>, ActivityError> {
        let user_id = check_user_id(user_id).map_err(|error| ActivityError::Invalid(vec![error]))?;
        Ok(self.store.recent(&user_id, activity_type, page).await?)
    }
}

/// `?userId` as the query names a player: 1 to [`MAX_USER_ID_CHARS`] characters. A blank id
/// is not refused: no activity was ever stored under one, so it simply has none.
fn check_user_id(user_id: &str) -> Result<UserId, FieldError> {
    let pointer = "?userId";
    if user_id.is_empty() {
        return Err(FieldError::new(pointer, "required", "userId must name a player"));
    }
    if user_id.chars().count() > MAX_USER_ID_CHARS {
        return Err(FieldError::out_of_range(pointer, format!("must be at most {MAX_USER_ID_CHARS} characters")));
    }
    UserId::parse(user_id).map_err(|error| FieldError::new(pointer, "invalid", error.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-03-10T12:00:00Z".parse().unwrap()
    }

    fn batch(activities: Vec<Value>) -> ActivityBatch {
        ActivityBatch { activities }
    }

    fn errors_of(activities: Vec<Value>) -> Vec<(String, &'static str)> {
        parse_batch(&batch(activities), now()).unwrap_err().into_iter().map(|e| (e.pointer, e.code)).collect()
    }

    #[test]
    fn valid_items_become_activities() {
        let parsed = parse_batch(
            &batch(vec![
                json!({"activityId": "a-1", "userId": "u1", "type": "PURCHASE",
                       "occurredAt": "2026-03-10T09:00:00.123456+09:00", "attributes": {"amount": 5}}),
                json!({"userId": "u2", "type": "LOGIN", "occurredAt": "2026-03-10T12:04:59Z", "attributes": null}),
            ]),
            now(),
        )
        .unwrap();
        assert_eq!(parsed[0].activity_id, "a-1");
        assert_eq!(parsed[0].activity_type.as_str(), "PURCHASE");
        assert_eq!(parsed[0].occurred_at, "2026-03-10T00:00:00.123Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(parsed[0].attributes.get("amount"), Some(&json!(5)));
        assert!(bestow_core::ids::is_object_id(&parsed[1].activity_id), "generated id");
        assert!(parsed[1].attributes.is_empty());
        assert_eq!(parsed[1].received_at, now());
    }

    #[test]
    fn every_bad_field_of_every_item_is_reported() {
        let big = "x".repeat(MAX_ATTRIBUTES_BYTES);
        let found = errors_of(vec![
            json!({"userId": "u1", "type": "LOGIN", "occurredAt": "2026-03-10T00:00:00Z"}),
            json!({"userId": "", "type": "login", "occurredAt": "yesterday"}),
            json!({"type": "LOGIN", "occurredAt": "2026-03-10T12:05:01Z", "attributes": [1], "extra": 1}),
            json!({"activityId": "", "userId": "u".repeat(129), "type": "A".repeat(65),
                   "occurredAt": "2026-03-10T00:00:00Z", "attributes": {"blob": big}}),
            json!({"activityId": 7, "userId": 3, "type": null, "occurredAt": 1}),
            json!("not an object"),
        ]);
        let expected = [
            ("/activities/1/userId", "required"),
            ("/activities/1/type", "invalid"),
            ("/activities/1/occurredAt", "invalid"),
            ("/activities/2/userId", "required"),
            ("/activities/2/occurredAt", "out_of_range"),
            ("/activities/2/attributes", "wrong_type"),
            ("/activities/2/extra", "unknown_field"),
            ("/activities/3/activityId", "required"),
            ("/activities/3/userId", "out_of_range"),
            ("/activities/3/type", "invalid"),
            ("/activities/3/attributes", "out_of_range"),
            ("/activities/4/activityId", "wrong_type"),
            ("/activities/4/userId", "wrong_type"),
            ("/activities/4/type", "required"),
            ("/activities/4/occurredAt", "wrong_type"),
            ("/activities/5", "wrong_type"),
        ];
        let expected: Vec<(String, &str)> = expected.iter().map(|(p, c)| ((*p).to_owned(), *c)).collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn the_history_names_a_player_by_1_to_128_characters() {
        let pointer_of = |user_id: &str| check_user_id(user_id).err().map(|error| error.pointer);
        assert_eq!(pointer_of(""), Some("?userId".to_owned()));
        assert_eq!(pointer_of(&"é".repeat(MAX_USER_ID_CHARS + 1)), Some("?userId".to_owned()));
        assert_eq!(pointer_of(&"é".repeat(MAX_USER_ID_CHARS)), None, "characters, not bytes");
        assert_eq!(pointer_of(" "), None);
    }

    #[test]
    fn batch_size_is_bounded() {
        let item = json!({"userId": "u1", "type": "LOGIN", "occurredAt": "2026-03-10T00:00:00Z"});
        assert_eq!(parse_batch(&batch(vec![item.clone(); MAX_BATCH]), now()).unwrap().len(), MAX_BATCH);
        for size in [0, MAX_BATCH + 1] {
            assert_eq!(errors_of(vec![item.clone(); size]), [("/activities".to_owned(), "out_of_range")]);
        }
    }
}
