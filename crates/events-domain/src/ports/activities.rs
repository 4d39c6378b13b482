//! The append-only storage port of game activities (`activities`), unique on `activityId` and
//! indexed by (`userId`, `type`, `occurredAt`), the shape of every [`FactQuery`].

use async_trait::async_trait;
use bestow_kernel::ids::UserId;
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::StoreError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::condition::ActivityType;
use crate::evaluate::{ActivityFact, FactQuery};

/// One activity ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity {
    /// The sender's idempotency key; generated (an ObjectId) when the sender gave none.
    pub activity_id: String,
    pub user_id: UserId,
    pub activity_type: ActivityType,
    /// Truncated to milliseconds, the precision every store keeps.
    pub occurred_at: DateTime<Utc>,
    /// Type-specific data; empty when the sender gave none.
    pub attributes: Map<String, Value>,
    /// When the batch reached the service.
    pub received_at: DateTime<Utc>,
}

/// One stored activity as staff read it back: the stored fields, with `id` for `_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// `activities._id`.
    pub id: String,
    /// The sender's idempotency key, or the one generated when the sender gave none.
    pub activity_id: String,
    /// The player (`users._id`).
    #[schema(value_type = String)]
    pub user_id: UserId,
    /// `LOGIN`, `FRIEND_INVITED`, `QUEST_COMPLETED`, `LEVEL_UP`, `PURCHASE` or a custom type.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "LOGIN")]
    pub activity_type: ActivityType,
    /// When it happened, as the sender reported it (millisecond precision).
    pub occurred_at: DateTime<Utc>,
    /// Type-specific data; `{}` when the sender gave none.
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    /// When the events service received it.
    pub received_at: DateTime<Utc>,
}

/// Append-only storage of activities.
#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// Stores every activity whose `activityId` is not stored yet, all in one transaction,
    /// and returns how many were new. A repeated `activityId` (already stored, or earlier in
    /// the same batch) is skipped, never an error: that is what makes re-sends idempotent.
    async fn insert_batch(&self, activities: Vec<NewActivity>) -> Result<u64, StoreError>;

    /// The activities of `user_id` whose type is in `query.types` and whose `occurredAt` lies
    /// in `[query.from, query.to)` (no lower bound when `from` is `None`), in no set order.
    async fn facts(&self, user_id: &UserId, query: &FactQuery) -> Result<Vec<ActivityFact>, StoreError>;

    /// One page of the activities of `user_id` (only those of `activity_type` when given),
    /// newest `occurredAt` first, ties by `_id` descending, and how many match over all pages.
    async fn recent(
        &self,
        user_id: &UserId,
        activity_type: Option<&ActivityType>,
        page: PageRequest,
    ) -> Result<Page<Activity>, StoreError>;
}
