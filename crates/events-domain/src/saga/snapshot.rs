//! `eventSnapshot`: the copy of the event, and of the claimed tier, that a claim is judged by.

use bestow_kernel::ids::EventId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::event::{Event, GrantPolicy};
use crate::lifecycle::EventStatus;
use crate::recurrence::Recurrence;
use crate::reward::RewardDefinition;
use crate::tier::Tier;

/// `eventSnapshot`: the event as the player saw it when claiming. Conditions and rewards are
/// judged by this copy, so later edits do not change an in-flight claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventSnapshot {
    /// The event name at claim time.
    pub event_name: String,
    /// The event description at claim time.
    pub description: String,
    /// Start of the event at claim time.
    pub start_date: DateTime<Utc>,
    /// End of the event at claim time.
    pub end_date: DateTime<Utc>,
    /// The condition tree the claim is judged by.
    #[schema(value_type = Option<crate::schemas::ConditionTree>)]
    pub conditions: Option<Condition>,
    /// The event status at claim time.
    pub status: EventStatus,
    /// The event time zone at claim time.
    pub timezone: String,
    /// The grant policy the claim follows.
    pub grant_policy: GrantPolicy,
    /// Who created the event.
    pub created_by: String,
    /// The event version copied.
    pub version: i64,
    /// The event's recurrence at claim time; null for a one-time event.
    #[serde(default)]
    pub recurrence: Option<Recurrence>,
    /// The claimed tier at claim time; null for an event without tiers.
    #[serde(default)]
    pub tier: Option<TierSnapshot>,
}

/// The claimed tier as it was when the claim was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TierSnapshot {
    /// The tier's id.
    pub tier_id: String,
    /// The tier's name at claim time.
    pub tier_name: String,
    /// The tier's own conditions (judged together with the event's).
    #[schema(value_type = Option<crate::schemas::ConditionTree>)]
    pub conditions: Option<Condition>,
}

impl EventSnapshot {
    pub fn of(event: &Event) -> Self {
        Self {
            event_name: event.event_name.clone(),
            description: event.description.clone(),
            start_date: event.start_date,
            end_date: event.end_date,
            conditions: event.conditions.clone(),
            status: event.status,
            timezone: event.timezone.name().to_owned(),
            grant_policy: event.grant_policy,
            created_by: event.created_by.clone(),
            version: event.version,
            recurrence: event.recurrence,
            tier: None,
        }
    }

    /// The snapshot as an event (with the rewards of the claim), for condition evaluation.
    pub fn to_event(&self, event_id: &EventId, rewards: Vec<RewardDefinition>) -> Event {
        let reward_ids: Vec<_> = rewards.iter().map(|reward| reward.reward_id().clone()).collect();
        Event {
            id: event_id.clone(),
            event_name: self.event_name.clone(),
            description: self.description.clone(),
            start_date: self.start_date,
            end_date: self.end_date,
            conditions: self.conditions.clone(),
            status: self.status,
            rewards,
            created_by: self.created_by.clone(),
            created_at: self.start_date,
            updated_at: self.start_date,
            timezone: self.timezone.parse().unwrap_or(chrono_tz::Tz::UTC),
            grant_policy: self.grant_policy,
            version: self.version,
            recurrence: self.recurrence,
            tiers: self
                .tier
                .iter()
                .map(|tier| Tier {
                    tier_id: tier.tier_id.clone(),
                    tier_name: tier.tier_name.clone(),
                    conditions: tier.conditions.clone(),
                    reward_ids: reward_ids.clone(),
                })
                .collect(),
            // Who may claim is judged when the claim is submitted, not by the saga.
            audience: None,
        }
    }
}
