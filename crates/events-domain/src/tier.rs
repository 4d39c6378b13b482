//! `events.tiers`: reward tiers, such as the days of an attendance calendar or purchase
//! milestones. Each tier has its own conditions (on top of the event's) and rewards, and each
//! succeeds once per player (per period when the event recurs).
//!
//! The stock of a tier's rewards is kept with every other reward of the event, in
//! [`Event::rewards`](super::event::Event::rewards), so a reservation moves one counter in one
//! place whatever the tier; a tier names its rewards by id.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::condition::{Condition, parse_optional_conditions};
use super::event::MAX_REWARDS;
use super::reward::{RewardDefinition, RewardId, RewardInput};
use super::validation::{FieldError, check_text, child_pointer};

/// Most tiers one event may carry.
pub const MAX_TIERS: usize = 50;
/// Longest `tierId`.
pub use bestow_kernel::ids::MAX_TIER_ID_CHARS;
/// Longest `tierName`, in characters.
pub const MAX_TIER_NAME_CHARS: usize = 200;

/// A tier as stored: its rewards by id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tier {
    /// Unique within the event: letters, digits, `_` and `-`.
    pub tier_id: String,
    /// Display name, e.g. "Day 3".
    pub tier_name: String,
    /// What this tier requires on top of the event's conditions; `None` for nothing more.
    pub conditions: Option<Condition>,
    /// The rewards a claim of this tier receives, in order.
    pub reward_ids: Vec<RewardId>,
}

/// A tier as an operator sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierInput {
    /// Letters, digits, `_` and `-`, at most 64, unique within the event; generated when absent.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", example = "day-1")]
    pub tier_id: Option<String>,
    /// Not blank, at most 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S", example = "Day 1")]
    pub tier_name: String,
    /// What this tier requires on top of the event's conditions; absent or null for nothing.
    #[serde(default)]
    #[schema(value_type = Option<super::schemas::ConditionTree>)]
    pub conditions: Option<Value>,
    /// What a claim of this tier receives: 1 to 20 rewards, as in an event's `rewards`.
    #[schema(value_type = Vec<super::schemas::RewardSpec>, min_items = 1, max_items = 20)]
    pub rewards: Vec<RewardInput>,
}

/// The kernel's `TierId` rule: 1 to 64 letters, digits, `_` or `-`.
fn well_formed_id(id: &str) -> bool {
    bestow_kernel::ids::TierId::parse(id).is_ok()
}

/// Validates the tiers found at `pointer` (`/tiers`): the tiers, and every reward they bring,
/// each named by `new_reward_id`. Every bad member is reported.
pub(crate) fn validate_tiers(
    inputs: Vec<TierInput>,
    pointer: &str,
    new_reward_id: &mut impl FnMut() -> RewardId,
) -> Result<(Vec<Tier>, Vec<RewardDefinition>), Vec<FieldError>> {
    let mut errors = Vec::new();
    if inputs.is_empty() || inputs.len() > MAX_TIERS {
        errors.push(FieldError::out_of_range(pointer, format!("from 1 to {MAX_TIERS} tiers")));
    }
    let mut tiers: Vec<Tier> = Vec::with_capacity(inputs.len());
    let mut rewards = Vec::new();
    for (index, input) in inputs.into_iter().enumerate() {
        let at = child_pointer(pointer, index);
        let tier_id = match input.tier_id {
            Some(id) if !well_formed_id(&id) => {
                let message = format!("must be 1 to {MAX_TIER_ID_CHARS} letters, digits, `_` or `-`");
                errors.push(FieldError::new(format!("{at}/tierId"), "invalid", message));
                id
            }
            Some(id) if tiers.iter().any(|tier| tier.tier_id == id) => {
                errors.push(FieldError::new(format!("{at}/tierId"), "invalid", "another tier has this id"));
                id
            }
            Some(id) => id,
            None => new_reward_id().to_string(),
        };
        check_text(&input.tier_name, &format!("{at}/tierName"), MAX_TIER_NAME_CHARS)
            .unwrap_or_else(|error| errors.push(error));
        let conditions = parse_optional_conditions(input.conditions.as_ref(), &format!("{at}/conditions"))
            .unwrap_or_else(|found| {
                errors.extend(found);
                None
            });
        if input.rewards.is_empty() || input.rewards.len() > MAX_REWARDS {
            let message = format!("a tier has from 1 to {MAX_REWARDS} rewards");
            errors.push(FieldError::out_of_range(format!("{at}/rewards"), message));
        }
        let mut reward_ids = Vec::with_capacity(input.rewards.len());
        for (position, reward) in input.rewards.into_iter().enumerate() {
            match reward.validate(&child_pointer(&format!("{at}/rewards"), position)) {
                Ok(valid) => {
                    let definition = valid.into_definition(new_reward_id());
                    reward_ids.push(definition.reward_id().clone());
                    rewards.push(definition);
                }
                Err(found) => errors.extend(found),
            }
        }
        tiers.push(Tier { tier_id, tier_name: input.tier_name.trim().to_owned(), conditions, reward_ids });
    }
    if errors.is_empty() { Ok((tiers, rewards)) } else { Err(errors) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ids() -> impl FnMut() -> RewardId {
        let mut n = 0u32;
        move || {
            n += 1;
            format!("{n:024x}").parse().unwrap()
        }
    }

    fn inputs(value: Value) -> Vec<TierInput> {
        serde_json::from_value(value).unwrap()
    }

    fn point_reward() -> Value {
        json!({"rewardType": "POINT", "rewardName": "100 points", "details": {"points": 100}, "quantityPerUser": 1})
    }

    #[test]
    fn tiers_name_their_rewards_and_get_ids_when_absent() {
        let value = json!([
            {"tierId": "day-1", "tierName": "Day 1", "conditions": {"type": "LOGIN_DAYS", "days": 1},
             "rewards": [point_reward()]},
            {"tierName": "Day 2", "rewards": [point_reward(), point_reward()]}
        ]);
        let (tiers, rewards) = validate_tiers(inputs(value), "/tiers", &mut ids()).unwrap();
        assert_eq!(rewards.len(), 3);
        assert_eq!(tiers[0].tier_id, "day-1");
        assert_eq!(tiers[0].reward_ids, vec![rewards[0].reward_id().clone()]);
        assert!(well_formed_id(&tiers[1].tier_id));
        assert_eq!(tiers[1].reward_ids.len(), 2);
        assert_eq!(tiers[1].conditions, None);
    }

    #[test]
    fn every_bad_member_is_reported_at_its_pointer() {
        let value = json!([
            {"tierId": "a:b", "tierName": " ", "conditions": {"type": "NOPE"}, "rewards": []},
            {"tierId": "same", "tierName": "x", "rewards": [point_reward()]},
            {"tierId": "same", "tierName": "y", "rewards": [{"rewardType": "POINT"}]}
        ]);
        let errors = validate_tiers(inputs(value), "/tiers", &mut ids()).unwrap_err();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        for expected in
            ["/tiers/0/tierId", "/tiers/0/tierName", "/tiers/0/conditions/type", "/tiers/0/rewards", "/tiers/2/tierId"]
        {
            assert!(pointers.contains(&expected), "{expected} in {pointers:?}");
        }
        assert!(pointers.iter().any(|p| p.starts_with("/tiers/2/rewards/0")), "{pointers:?}");
        let too_many: Vec<Value> =
            (0..=MAX_TIERS).map(|n| json!({"tierName": n.to_string(), "rewards": [point_reward()]})).collect();
        let errors = validate_tiers(inputs(Value::Array(too_many)), "/tiers", &mut ids()).unwrap_err();
        assert_eq!(errors[0].pointer, "/tiers");
    }
}
