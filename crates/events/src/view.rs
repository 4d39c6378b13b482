//! How events and rewards look to clients and in audit snapshots: the seed's `events`
//! document with `id` for `_id`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::event::{Event, GrantPolicy};
use crate::domain::lifecycle::EventStatus;
use crate::domain::reward::RewardDefinition;

/// An event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    /// `events._id`.
    pub id: String,
    pub event_name: String,
    pub description: String,
    pub start_date: DateTime<Utc>,
    pub end_date: DateTime<Utc>,
    /// The condition tree in the seed's JSON shape, or null for none.
    #[schema(value_type = Option<Object>)]
    pub conditions: Option<Value>,
    #[schema(value_type = String, example = "DRAFT")]
    pub status: EventStatus,
    pub rewards: Vec<RewardView>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// IANA time zone of the event's calendar days.
    pub timezone: String,
    #[schema(value_type = String, example = "ALL_OR_NOTHING")]
    pub grant_policy: GrantPolicy,
    /// Changes with every write; also sent as the `ETag` header.
    pub version: i64,
}

/// A reward of an event, in the seed's `rewards[]` shape.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewardView {
    pub reward_id: String,
    /// `POINT`, `ITEM`, `COUPON` or `VIRTUAL_CURRENCY`.
    pub reward_type: String,
    pub reward_name: String,
    #[schema(value_type = Object)]
    pub details: Value,
    pub quantity_per_user: i64,
    /// Null when unlimited.
    pub total_stock: Option<i64>,
    /// Null when unlimited.
    pub remaining_stock: Option<i64>,
}

impl From<&RewardDefinition> for RewardView {
    fn from(reward: &RewardDefinition) -> Self {
        let stock = reward.reward().stock();
        Self {
            reward_id: reward.reward_id().as_str().to_owned(),
            reward_type: reward.reward().reward_type().as_str().to_owned(),
            reward_name: reward.reward().reward_name().to_owned(),
            details: serde_json::to_value(reward.reward().details()).unwrap_or(Value::Null),
            quantity_per_user: stock.quantity_per_user(),
            total_stock: stock.total_stock(),
            remaining_stock: reward.remaining_stock(),
        }
    }
}

impl From<&Event> for EventView {
    fn from(event: &Event) -> Self {
        Self {
            id: event.id.clone(),
            event_name: event.event_name.clone(),
            description: event.description.clone(),
            start_date: event.start_date,
            end_date: event.end_date,
            conditions: event.conditions.as_ref().and_then(|c| serde_json::to_value(c).ok()),
            status: event.status,
            rewards: event.rewards.iter().map(RewardView::from).collect(),
            created_by: event.created_by.clone(),
            created_at: event.created_at,
            updated_at: event.updated_at,
            timezone: event.timezone.name().to_owned(),
            grant_policy: event.grant_policy,
            version: event.version,
        }
    }
}

/// The audit snapshot of an event.
pub fn event_snapshot(event: &Event) -> Value {
    serde_json::to_value(EventView::from(event)).unwrap_or(Value::Null)
}
