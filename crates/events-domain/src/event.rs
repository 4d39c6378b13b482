//! The event aggregate: the seed's `events` document plus `timezone`, `grantPolicy` and a
//! `version` that changes with every write (the HTTP `ETag`).
//!
//! [`EventInput`] and [`EventPatch`] are what operators send; they are validated here into an
//! [`Event`], with every offending field reported at once.

use bestow_kernel::ids::EventId;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::audience::{AudienceTarget, parse_target};
use super::condition::{Condition, parse_optional_conditions};
use super::lifecycle::{EventStatus, definition_editable};
use super::recurrence::{Period, Recurrence, RecurrenceInput};
use super::reward::{MAX_TOTAL_STOCK, RewardDefinition, RewardId, RewardInput};
pub use super::tier::{MAX_TIERS, Tier, TierInput};
use super::validation::{FieldError, child_pointer};

/// Longest `eventName`, in characters.
pub const MAX_EVENT_NAME_CHARS: usize = 200;
/// Longest `description`, in characters.
pub const MAX_EVENT_DESCRIPTION_CHARS: usize = 5_000;
/// Most rewards one event may carry.
pub const MAX_REWARDS: usize = 20;

/// What happens when some rewards of a claim are granted and others fail for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GrantPolicy {
    /// Revoke what was granted and return all stock (the default).
    #[default]
    AllOrNothing,
    /// Keep what was granted, return the stock of what was not.
    PartialAllowed,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `_id`.
    pub id: EventId,
    pub event_name: String,
    pub description: String,
    pub start_date: DateTime<Utc>,
    pub end_date: DateTime<Utc>,
    pub conditions: Option<Condition>,
    pub status: EventStatus,
    pub rewards: Vec<RewardDefinition>,
    /// User id of the operator or admin who created it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// IANA zone in which "a day" of the conditions is counted.
    pub timezone: Tz,
    pub grant_policy: GrantPolicy,
    /// Incremented by every write; the `ETag`.
    pub version: i64,
    /// When the event pays again; `None` for a one-time event.
    pub recurrence: Option<Recurrence>,
    /// The reward tiers; empty for an event whose `rewards` are one implicit tier. With tiers,
    /// `rewards` holds the rewards of every tier, each named by exactly one tier.
    pub tiers: Vec<Tier>,
    /// Who the event is shown to; `None` for every player.
    pub audience: Option<AudienceTarget>,
}

impl Event {
    /// The period `now` falls in, for a recurring event; `None` for a one-time event.
    pub fn period_at(&self, now: DateTime<Utc>) -> Option<Period> {
        self.recurrence.map(|recurrence| recurrence.period_at(now, self.timezone))
    }

    /// The reward with id `reward_id`.
    pub fn reward(&self, reward_id: &str) -> Option<&RewardDefinition> {
        self.rewards.iter().find(|r| r.reward_id().as_str() == reward_id)
    }

    /// The tier with id `tier_id`.
    pub fn tier(&self, tier_id: &str) -> Option<&Tier> {
        self.tiers.iter().find(|tier| tier.tier_id == tier_id)
    }

    /// What a claim of `tier` (`None` for an event without tiers) receives.
    pub fn rewards_of(&self, tier: Option<&Tier>) -> Vec<RewardDefinition> {
        match tier {
            None => self.rewards.clone(),
            Some(tier) => {
                self.rewards.iter().filter(|reward| tier.reward_ids.contains(reward.reward_id())).cloned().collect()
            }
        }
    }

    /// The conditions a claim of `tier` is judged by: the event's, and the tier's on top.
    pub fn conditions_of(&self, tier: Option<&Tier>) -> Option<Condition> {
        match (self.conditions.clone(), tier.and_then(|tier| tier.conditions.clone())) {
            (Some(gate), Some(own)) => Some(Condition::And { sub_conditions: vec![gate, own] }),
            (gate, own) => own.or(gate),
        }
    }

    /// The event ended by the expiry sweep at `now`, if it is live or paused and its
    /// `endDate` has been reached.
    pub fn expired(&self, now: DateTime<Utc>) -> Option<Event> {
        if !super::lifecycle::should_expire(self.status, self.end_date, now) {
            return None;
        }
        let mut next = self.clone();
        next.status = EventStatus::Expired;
        next.updated_at = now;
        next.version += 1;
        Some(next)
    }

    /// The fewest rewards any claim of the event would receive (what activation requires).
    pub fn fewest_rewards_per_claim(&self) -> usize {
        if self.tiers.is_empty() {
            self.rewards.len()
        } else {
            self.tiers.iter().map(|tier| tier.reward_ids.len()).min().unwrap_or(0)
        }
    }
}

/// A new event as an operator sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "eventName": "7-day login streak", "description": "Log in 7 days in a row for a rare potion",
    "startDate": "2026-12-01T00:00:00Z", "endDate": "2026-12-31T00:00:00Z", "timezone": "Asia/Seoul",
    "conditions": { "type": "LOGIN_STREAK", "days": 7 },
    "rewards": [{ "rewardType": "ITEM", "rewardName": "Rare potion",
                  "details": { "itemId": "potion_rare", "itemName": "Rare potion", "itemGrade": "RARE" },
                  "quantityPerUser": 1, "totalStock": 1000 }]
}))]
pub struct EventInput {
    /// Not blank, at most 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub event_name: String,
    /// At most 5000 characters.
    #[schema(max_length = 5000)]
    #[serde(default)]
    pub description: String,
    /// RFC 3339, years 1970–9999.
    #[serde(deserialize_with = "bestow_clock::bounded")]
    #[schema(example = "2026-12-01T00:00:00Z")]
    pub start_date: DateTime<Utc>,
    /// RFC 3339, years 1970–9999; after `startDate`.
    #[serde(deserialize_with = "bestow_clock::bounded")]
    #[schema(example = "2026-12-08T00:00:00Z")]
    pub end_date: DateTime<Utc>,
    /// Condition tree, e.g. `{"type":"LOGIN_STREAK","days":7}`; absent or null for none.
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::ConditionTree>)]
    pub conditions: Option<Value>,
    /// `UTC` when absent.
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::TimeZoneName>)]
    pub timezone: Option<String>,
    /// `ALL_OR_NOTHING` (default) or `PARTIAL_ALLOWED`.
    #[serde(default)]
    pub grant_policy: Option<GrantPolicy>,
    #[serde(default)]
    /// At most 20; empty when the event has `tiers`.
    #[schema(value_type = Vec<super::schemas::RewardSpec>, max_items = 20)]
    pub rewards: Vec<RewardInput>,
    /// When the event pays again (once per player and period); absent or null for a one-time
    /// event.
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::RecurrenceSpec>)]
    pub recurrence: Option<RecurrenceInput>,
    /// Reward tiers, each paid once per player (and period), instead of `rewards`; at most 50.
    /// A top-level `conditions` then gates every tier.
    #[serde(default)]
    #[schema(max_items = 50, min_items = 1)]
    pub tiers: Option<Vec<TierInput>>,
    /// Who the event is shown to: null or absent for every player.
    #[serde(default)]
    #[schema(value_type = Option<crate::schemas::AudienceTargetSpec>)]
    pub audience: Option<Value>,
}

/// Who creates an event, and the identifiers and clock the caller supplies (this module
/// performs no I/O and reads no clock).
#[derive(Debug, Clone)]
pub struct Provenance {
    pub event_id: EventId,
    pub created_by: String,
    pub now: DateTime<Utc>,
}

impl EventInput {
    /// Validates the input into a DRAFT event. `new_reward_id` names each inline reward.
    pub fn into_event(
        self,
        provenance: Provenance,
        mut new_reward_id: impl FnMut() -> RewardId,
    ) -> Result<Event, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = check_name(&self.event_name, "/eventName").map_err(|e| errors.push(e)).ok();
        check_description(&self.description, "/description").unwrap_or_else(|e| errors.push(e));
        check_schedule(self.start_date, self.end_date, "/endDate").unwrap_or_else(|e| errors.push(e));
        let timezone = parse_timezone(self.timezone.as_deref(), "/timezone").map_err(|e| errors.push(e)).ok();
        let conditions = parse_optional_conditions(self.conditions.as_ref(), "/conditions")
            .map_err(|found| errors.extend(found))
            .ok();
        if self.rewards.len() > MAX_REWARDS {
            errors.push(FieldError::out_of_range("/rewards", format!("at most {MAX_REWARDS} rewards")));
        }
        let mut rewards = Vec::new();
        for (index, input) in self.rewards.into_iter().enumerate() {
            match input.validate(&child_pointer("/rewards", index)) {
                Ok(valid) => rewards.push(valid.into_definition(new_reward_id())),
                Err(found) => errors.extend(found),
            }
        }
        let recurrence = parse_recurrence(self.recurrence.as_ref()).map_err(|found| errors.extend(found)).ok();
        let mut tiers = Vec::new();
        if let Some(inputs) = self.tiers {
            if !rewards.is_empty() {
                let message = "an event has either rewards or tiers, never both";
                errors.push(FieldError::new("/tiers", "invalid", message));
            }
            match super::tier::validate_tiers(inputs, "/tiers", &mut new_reward_id) {
                Ok((valid, tier_rewards)) => {
                    tiers = valid;
                    rewards.extend(tier_rewards);
                }
                Err(found) => errors.extend(found),
            }
        }
        let audience = parse_target(self.audience.as_ref(), "/audience").map_err(|found| errors.extend(found)).ok();
        match (name, timezone, conditions, recurrence, audience) {
            (Some(event_name), Some(timezone), Some(conditions), Some(recurrence), Some(audience))
                if errors.is_empty() =>
            {
                Ok(Event {
                    id: provenance.event_id,
                    event_name,
                    description: self.description,
                    start_date: self.start_date,
                    end_date: self.end_date,
                    conditions,
                    status: EventStatus::Draft,
                    rewards,
                    created_by: provenance.created_by,
                    created_at: provenance.now,
                    updated_at: provenance.now,
                    timezone,
                    grant_policy: self.grant_policy.unwrap_or_default(),
                    version: 1,
                    recurrence,
                    tiers,
                    audience,
                })
            }
            _ => Err(errors),
        }
    }
}

/// A partial update of an event. `conditions: null` removes the conditions.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventPatch {
    /// Not blank, at most 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub event_name: Option<String>,
    /// At most 5000 characters.
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// RFC 3339, years 1970–9999.
    #[serde(default, deserialize_with = "bestow_clock::bounded_option")]
    pub start_date: Option<DateTime<Utc>>,
    /// RFC 3339, years 1970–9999.
    #[serde(default, deserialize_with = "bestow_clock::bounded_option")]
    pub end_date: Option<DateTime<Utc>>,
    /// The new condition tree; `null` removes the conditions.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<super::schemas::ConditionTree>)]
    pub conditions: Option<Option<Value>>,
    /// New IANA time zone.
    #[schema(value_type = Option<super::schemas::TimeZoneName>)]
    pub timezone: Option<String>,
    /// New grant policy.
    pub grant_policy: Option<GrantPolicy>,
    /// The new recurrence; `null` makes the event one-time.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<super::schemas::RecurrenceSpec>)]
    pub recurrence: Option<Option<RecurrenceInput>>,
    /// New tiers, replacing the event's (DRAFT only: their rewards are new rewards).
    #[schema(max_items = 50, min_items = 1)]
    pub tiers: Option<Vec<TierInput>>,
    /// Who the event is shown to; null for every player. Changes in any status but ARCHIVED.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<crate::schemas::AudienceTargetSpec>)]
    pub audience: Option<Option<Value>>,
}

/// Validates an optional recurrence input at `/recurrence`.
fn parse_recurrence(input: Option<&RecurrenceInput>) -> Result<Option<Recurrence>, Vec<FieldError>> {
    input.map(|input| input.validate("/recurrence")).transpose()
}

/// Distinguishes an absent member (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Why a patch cannot be applied at all (as opposed to a bad field value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchRefusal {
    #[error("an {0} event cannot be changed")]
    Archived(EventStatus),
    #[error(
        "conditions, dates, timezone, grant policy and recurrence change only while the event is DRAFT or INACTIVE (it is {0})"
    )]
    DefinitionLocked(EventStatus),
    #[error("tiers are replaced only while the event is DRAFT (it is {0}); their rewards can be topped up any time")]
    TiersLocked(EventStatus),
    #[error("an event without tiers keeps its rewards; tiers can replace them only while it has none")]
    RewardsPresent,
}

/// Outcome of checking a patch against an event.
#[derive(Debug)]
pub enum PatchError {
    Refused(PatchRefusal),
    Invalid(Vec<FieldError>),
}

impl EventPatch {
    /// Whether the patch touches the event's definition (what a claim is judged by).
    fn changes_definition(&self) -> bool {
        self.start_date.is_some()
            || self.end_date.is_some()
            || self.conditions.is_some()
            || self.timezone.is_some()
            || self.grant_policy.is_some()
            || self.recurrence.is_some()
    }

    /// `event` with the patch applied at `now`, version bumped. Name and description may
    /// change in any status but ARCHIVED; the definition only while DRAFT or INACTIVE.
    /// New tiers bring new rewards, named by `new_reward_id`.
    pub fn apply(
        self,
        event: &Event,
        now: DateTime<Utc>,
        mut new_reward_id: impl FnMut() -> RewardId,
    ) -> Result<Event, PatchError> {
        if event.status == EventStatus::Archived {
            return Err(PatchError::Refused(PatchRefusal::Archived(event.status)));
        }
        if self.changes_definition() && !definition_editable(event.status) {
            return Err(PatchError::Refused(PatchRefusal::DefinitionLocked(event.status)));
        }
        if self.tiers.is_some() && event.status != EventStatus::Draft {
            return Err(PatchError::Refused(PatchRefusal::TiersLocked(event.status)));
        }
        if self.tiers.is_some() && event.tiers.is_empty() && !event.rewards.is_empty() {
            return Err(PatchError::Refused(PatchRefusal::RewardsPresent));
        }
        let mut next = event.clone();
        let mut errors = Vec::new();
        if let Some(name) = self.event_name {
            match check_name(&name, "/eventName") {
                Ok(name) => next.event_name = name,
                Err(e) => errors.push(e),
            }
        }
        if let Some(description) = self.description {
            check_description(&description, "/description").unwrap_or_else(|e| errors.push(e));
            next.description = description;
        }
        next.start_date = self.start_date.unwrap_or(next.start_date);
        next.end_date = self.end_date.unwrap_or(next.end_date);
        if self.start_date.is_some() || self.end_date.is_some() {
            check_schedule(next.start_date, next.end_date, "/endDate").unwrap_or_else(|e| errors.push(e));
        }
        if let Some(timezone) = self.timezone {
            match parse_timezone(Some(&timezone), "/timezone") {
                Ok(tz) => next.timezone = tz,
                Err(e) => errors.push(e),
            }
        }
        if let Some(conditions) = self.conditions {
            match parse_optional_conditions(conditions.as_ref(), "/conditions") {
                Ok(parsed) => next.conditions = parsed,
                Err(found) => errors.extend(found),
            }
        }
        next.grant_policy = self.grant_policy.unwrap_or(next.grant_policy);
        if let Some(recurrence) = self.recurrence {
            match parse_recurrence(recurrence.as_ref()) {
                Ok(parsed) => next.recurrence = parsed,
                Err(found) => errors.extend(found),
            }
        }
        if let Some(inputs) = self.tiers {
            match super::tier::validate_tiers(inputs, "/tiers", &mut new_reward_id) {
                Ok((tiers, rewards)) => {
                    next.tiers = tiers;
                    next.rewards = rewards;
                }
                Err(found) => errors.extend(found),
            }
        }
        if let Some(audience) = self.audience {
            match parse_target(audience.as_ref(), "/audience") {
                Ok(parsed) => next.audience = parsed,
                Err(found) => errors.extend(found),
            }
        }
        if !errors.is_empty() {
            return Err(PatchError::Invalid(errors));
        }
        next.updated_at = now;
        next.version += 1;
        Ok(next)
    }
}

/// A partial update of one reward. `addStock` tops up both stock counters and may be sent in
/// any status but ARCHIVED, alone; the definition (`rewardName`, `details`,
/// `quantityPerUser`) changes only while DRAFT or INACTIVE, and `totalStock` only while DRAFT.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RewardPatch {
    /// Not blank, at most 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub reward_name: Option<String>,
    /// The members of the reward's type (see `RewardSpec`).
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
    #[schema(minimum = 1, maximum = 10_000)]
    pub quantity_per_user: Option<i64>,
    /// `-1` for unlimited, else at least `quantityPerUser`.
    #[schema(minimum = -1, maximum = 1_000_000_000_000_i64)]
    pub total_stock: Option<i64>,
    /// Units added to both counters; the total stays at most 10^12.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub add_stock: Option<i64>,
}

/// What a reward patch amounts to.
#[derive(Debug, Clone, PartialEq)]
pub enum RewardChange {
    /// Add this many units to both counters (one conditional update in the store).
    TopUp(i64),
    /// Replace the event by this one, whose reward was redefined.
    Redefine(Box<Event>),
}

/// Why a reward patch cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewardRefusal {
    #[error("an {0} event cannot be changed")]
    Archived(EventStatus),
    #[error("reward definitions change only while the event is DRAFT or INACTIVE (it is {0})")]
    DefinitionLocked(EventStatus),
    #[error("totalStock can be set only while the event is DRAFT (it is {0}); use addStock to top up")]
    StockLocked(EventStatus),
    #[error(
        "rewards cannot be added or removed while the event is {0} (adding needs DRAFT or INACTIVE, removing DRAFT)"
    )]
    RewardsLocked(EventStatus),
    #[error("an event has at most {MAX_REWARDS} rewards")]
    Full,
    #[error("the top-up would take totalStock over {MAX_TOTAL_STOCK}")]
    StockCeiling,
    #[error("the rewards of an event with tiers are added by replacing its tiers")]
    Tiered,
}

impl RewardPatch {
    /// Plans the patch of `reward` in `event` at `now`.
    pub fn plan(
        self,
        event: &Event,
        reward: &RewardDefinition,
        now: DateTime<Utc>,
    ) -> Result<RewardChange, RewardPatchError> {
        if event.status == EventStatus::Archived {
            return Err(RewardPatchError::Refused(RewardRefusal::Archived(event.status)));
        }
        let redefines = self.reward_name.is_some()
            || self.details.is_some()
            || self.quantity_per_user.is_some()
            || self.total_stock.is_some();
        if let Some(add) = self.add_stock {
            if redefines {
                let message = "addStock cannot be combined with other changes";
                return Err(RewardPatchError::Invalid(vec![FieldError::new("/addStock", "invalid", message)]));
            }
            if add <= 0 || add > MAX_TOTAL_STOCK {
                let message = format!("must be from 1 to {MAX_TOTAL_STOCK} units");
                return Err(RewardPatchError::Invalid(vec![FieldError::out_of_range("/addStock", message)]));
            }
            // A well-formed top-up that the current total cannot take: a conflict with the state.
            let total_after = reward.reward().stock().total_stock().unwrap_or(0).checked_add(add);
            if total_after.is_none_or(|total| total > MAX_TOTAL_STOCK) {
                return Err(RewardPatchError::Refused(RewardRefusal::StockCeiling));
            }
            return Ok(RewardChange::TopUp(add));
        }
        if !definition_editable(event.status) {
            return Err(RewardPatchError::Refused(RewardRefusal::DefinitionLocked(event.status)));
        }
        if self.total_stock.is_some() && event.status != EventStatus::Draft {
            return Err(RewardPatchError::Refused(RewardRefusal::StockLocked(event.status)));
        }
        let mut input = reward.to_input();
        input.reward_name = self.reward_name.or(input.reward_name);
        input.details = self.details.unwrap_or(input.details);
        input.quantity_per_user = self.quantity_per_user.or(input.quantity_per_user);
        if self.total_stock.is_some() {
            input.total_stock = self.total_stock;
        }
        let valid = input.validate("").map_err(RewardPatchError::Invalid)?;
        let redefined = if event.status == EventStatus::Draft {
            valid.into_definition(reward.reward_id().clone())
        } else {
            reward.redefine(valid)
        };
        let mut next = event.clone();
        for slot in &mut next.rewards {
            if slot.reward_id() == reward.reward_id() {
                *slot = redefined.clone();
            }
        }
        next.updated_at = now;
        next.version += 1;
        Ok(RewardChange::Redefine(Box::new(next)))
    }
}

/// Outcome of checking a reward patch.
#[derive(Debug)]
pub enum RewardPatchError {
    Refused(RewardRefusal),
    Invalid(Vec<FieldError>),
}

/// `event` with one more reward, if its status allows adding rewards.
pub fn add_reward(event: &Event, reward: RewardDefinition, now: DateTime<Utc>) -> Result<Event, RewardPatchError> {
    if !definition_editable(event.status) {
        return Err(RewardPatchError::Refused(RewardRefusal::RewardsLocked(event.status)));
    }
    if !event.tiers.is_empty() {
        return Err(RewardPatchError::Refused(RewardRefusal::Tiered));
    }
    if event.rewards.len() >= MAX_REWARDS {
        return Err(RewardPatchError::Refused(RewardRefusal::Full));
    }
    let mut next = event.clone();
    next.rewards.push(reward);
    next.updated_at = now;
    next.version += 1;
    Ok(next)
}

/// `event` without reward `reward_id`; rewards are removed only while DRAFT, before any claim.
pub fn remove_reward(event: &Event, reward_id: &RewardId, now: DateTime<Utc>) -> Result<Event, RewardRefusal> {
    if !super::lifecycle::rewards_removable(event.status) {
        return Err(RewardRefusal::RewardsLocked(event.status));
    }
    let mut next = event.clone();
    next.rewards.retain(|r| r.reward_id() != reward_id);
    for tier in &mut next.tiers {
        tier.reward_ids.retain(|id| id != reward_id);
    }
    next.updated_at = now;
    next.version += 1;
    Ok(next)
}

fn check_name(name: &str, pointer: &str) -> Result<String, FieldError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(FieldError::required(pointer));
    }
    if trimmed.chars().count() > MAX_EVENT_NAME_CHARS {
        return Err(FieldError::out_of_range(pointer, format!("at most {MAX_EVENT_NAME_CHARS} characters")));
    }
    Ok(trimmed.to_owned())
}

fn check_description(description: &str, pointer: &str) -> Result<(), FieldError> {
    if description.chars().count() > MAX_EVENT_DESCRIPTION_CHARS {
        return Err(FieldError::out_of_range(pointer, format!("at most {MAX_EVENT_DESCRIPTION_CHARS} characters")));
    }
    Ok(())
}

fn check_schedule(start: DateTime<Utc>, end: DateTime<Utc>, pointer: &str) -> Result<(), FieldError> {
    if start >= end {
        return Err(FieldError::out_of_range(pointer, "endDate must be after startDate"));
    }
    Ok(())
}

/// An IANA zone name such as `Asia/Seoul`; `UTC` when absent.
pub fn parse_timezone(name: Option<&str>, pointer: &str) -> Result<Tz, FieldError> {
    match name {
        None => Ok(Tz::UTC),
        Some(name) => name
            .parse::<Tz>()
            .map_err(|_| FieldError::new(pointer, "invalid", format!("`{name}` is not an IANA time zone"))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provenance() -> Provenance {
        Provenance { event_id: EventId::generate(), created_by: "u1".into(), now: Utc::now() }
    }

    fn reward_ids() -> impl FnMut() -> RewardId {
        let mut n = 0u32;
        move || {
            n += 1;
            format!("{n:024x}").parse().unwrap()
        }
    }

    fn input(value: Value) -> EventInput {
        serde_json::from_value(value).unwrap()
    }

    fn base() -> Value {
        json!({
            "eventName": "Seven days", "startDate": "2026-01-01T00:00:00Z", "endDate": "2026-02-01T00:00:00Z",
            "conditions": {"type": "LOGIN_STREAK", "days": 7}, "timezone": "Asia/Seoul",
            "rewards": [{"rewardType": "POINT", "rewardName": "1000 points", "details": {"points": 1000},
                         "quantityPerUser": 1, "totalStock": 100}]
        })
    }

    #[test]
    fn a_valid_input_becomes_a_draft() {
        let event = input(base()).into_event(provenance(), reward_ids()).unwrap();
        assert_eq!(event.status, EventStatus::Draft);
        assert_eq!(event.timezone, chrono_tz::Asia::Seoul);
        assert_eq!(event.rewards[0].remaining_stock(), Some(100));
        assert_eq!(event.grant_policy, GrantPolicy::AllOrNothing);
    }

    #[test]
    fn every_bad_field_is_reported_with_its_pointer() {
        let mut bad = base();
        bad["endDate"] = json!("2025-12-01T00:00:00Z");
        bad["timezone"] = json!("Mars/Olympus");
        bad["conditions"] = json!({"type": "TELEPORT"});
        bad["rewards"][0]["details"] = json!({"points": 0});
        let errors = input(bad).into_event(provenance(), reward_ids()).unwrap_err();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        for expected in ["/endDate", "/timezone", "/conditions/type", "/rewards/0/details/points"] {
            assert!(pointers.contains(&expected), "{expected} in {pointers:?}");
        }
    }

    #[test]
    fn definition_changes_are_locked_while_active() {
        let mut event = input(base()).into_event(provenance(), reward_ids()).unwrap();
        event.status = EventStatus::Active;
        let rename = EventPatch { event_name: Some("Renamed".into()), ..EventPatch::default() };
        let renamed = rename.apply(&event, Utc::now(), reward_ids()).unwrap();
        assert_eq!((renamed.event_name.as_str(), renamed.version), ("Renamed", 2));
        let clear = EventPatch { conditions: Some(None), ..EventPatch::default() };
        assert!(matches!(
            clear.apply(&event, Utc::now(), reward_ids()),
            Err(PatchError::Refused(PatchRefusal::DefinitionLocked(_)))
        ));
        event.status = EventStatus::Inactive;
        let clear = EventPatch { conditions: Some(None), ..EventPatch::default() };
        assert_eq!(clear.apply(&event, Utc::now(), reward_ids()).unwrap().conditions, None);
    }

    #[test]
    fn a_full_event_refuses_another_reward_as_a_state_conflict() {
        let mut event = input(base()).into_event(provenance(), reward_ids()).unwrap();
        let reward = event.rewards[0].clone();
        while event.rewards.len() < MAX_REWARDS {
            event = add_reward(&event, reward.clone(), Utc::now()).unwrap();
        }
        let refused = add_reward(&event, reward, Utc::now());
        assert!(matches!(refused, Err(RewardPatchError::Refused(RewardRefusal::Full))), "{refused:?}");
    }

    #[test]
    fn patched_schedules_are_checked_as_a_whole() {
        let event = input(base()).into_event(provenance(), reward_ids()).unwrap();
        let patch = EventPatch { start_date: Some(event.end_date), ..EventPatch::default() };
        assert!(matches!(patch.apply(&event, Utc::now(), reward_ids()), Err(PatchError::Invalid(_))));
    }
}
