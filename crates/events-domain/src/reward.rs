//! Rewards of an event (`events.rewards[]`): their types, each described once
//! ([`RewardDescription`]: its `details` members, bounds, labels and example, which the parser,
//! the OpenAPI schema and the console's form read), typed details, stock policy, and the rule
//! for topping stock up. Operators' documents are parsed here once into [`ValidReward`];
//! stored rewards come back as [`RewardDefinition`] through the same checks.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use super::validation::{FieldError, ObjectReader, check_text, child_pointer, serialize_number, summarize};

/// Longest reward name, and longest identifier or label inside details.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest free-text description inside details.
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
/// Largest number of points or currency units in one grant; with [`MAX_QUANTITY_PER_USER`] it
/// keeps `amount × quantityPerUser` far inside `i64`.
pub const MAX_GRANT_AMOUNT: i64 = 1_000_000_000_000;
/// Largest number of units of one reward a single player receives.
pub const MAX_QUANTITY_PER_USER: i64 = 10_000;
/// Largest `totalStock` of a reward, top-ups included: far inside `i64`, so no stock counter
/// can overflow however many top-ups race.
pub const MAX_TOTAL_STOCK: i64 = 1_000_000_000_000;
/// The seed's spelling of "unlimited" for `totalStock` (besides `null`).
const UNLIMITED_STOCK: i64 = -1;

/// The kind of a reward, stored in `rewardType` exactly as the seed spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RewardType {
    /// Loyalty points.
    Point,
    /// An in-game item.
    Item,
    /// A discount coupon.
    Coupon,
    /// Units of a game currency such as gems.
    VirtualCurrency,
}

impl RewardType {
    /// Every reward type.
    pub const ALL: [Self; 4] = [Self::Point, Self::Item, Self::Coupon, Self::VirtualCurrency];

    /// Members of `details` that are the reward itself rather than its description: whoever
    /// reads them has it (a coupon's code redeems the coupon). Only staff, and players in
    /// their wallet or in a claim that granted them the reward, read them.
    pub fn secret_details(self) -> &'static [&'static str] {
        self.description().secret_details
    }

    /// What this type is: its `details` members, their bounds and labels, and its example.
    pub fn description(self) -> &'static RewardDescription {
        match self {
            Self::Point => &POINT,
            Self::Item => &ITEM,
            Self::Coupon => &COUPON,
            Self::VirtualCurrency => &VIRTUAL_CURRENCY,
        }
    }

    /// The stored spelling, e.g. `"VIRTUAL_CURRENCY"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Point => "POINT",
            Self::Item => "ITEM",
            Self::Coupon => "COUPON",
            Self::VirtualCurrency => "VIRTUAL_CURRENCY",
        }
    }
}

impl fmt::Display for RewardType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one reward type is: the one place its `details` members, their bounds and labels are
/// written. The parser ([`parse_details`]) reads `details` by it, the OpenAPI schema
/// ([`super::schemas`]) and the console's reward form are built from it.
#[derive(Debug)]
pub struct RewardDescription {
    /// The type described.
    pub reward_type: RewardType,
    /// The members of `details`, in the order they are read and documented. Member names are
    /// unique across all reward types, so a form may name its fields by them.
    pub details: &'static [DetailMember],
    /// Members of `details` hidden from players ([`RewardType::secret_details`]).
    pub secret_details: &'static [&'static str],
    /// A whole reward of this type as an operator sends it (JSON), the schema's example.
    pub example: &'static str,
    /// Builds the details from their members, once the parser has read them all without error.
    build: fn(&DetailValues) -> Option<RewardDetails>,
}

/// One member of a reward's `details`.
#[derive(Debug)]
pub struct DetailMember {
    /// Its name in `details`, e.g. `itemId`.
    pub name: &'static str,
    /// Its kind and bounds.
    pub kind: DetailKind,
    /// How an operator's form labels it, e.g. `Item id`.
    pub label: &'static str,
}

/// The kind of a `details` member and the bounds the parser enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailKind {
    /// A whole number from 1 to `max`.
    Whole {
        /// The largest value allowed.
        max: i64,
    },
    /// A number in `(0, 1]`.
    Fraction,
    /// A non-blank string of at most `max_chars` characters.
    Text {
        /// The most characters allowed.
        max_chars: usize,
    },
    /// Like [`DetailKind::Text`], but it may be absent or `null`.
    OptionalText {
        /// The most characters allowed.
        max_chars: usize,
    },
}

impl DetailKind {
    /// Whether the member is a number (else a string).
    pub fn is_numeric(self) -> bool {
        matches!(self, Self::Whole { .. } | Self::Fraction)
    }
}

/// The values of a reward's `details` members, read by the parser as its description says;
/// an optional text that is absent has no value.
#[derive(Debug, Default)]
pub struct DetailValues(Vec<(&'static str, Value)>);

impl DetailValues {
    /// The whole number `name`.
    pub fn whole(&self, name: &str) -> Option<i64> {
        self.get(name)?.as_i64()
    }

    /// The number `name`.
    pub fn number(&self, name: &str) -> Option<f64> {
        self.get(name)?.as_f64()
    }

    /// The text `name`; `None` when it is absent.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)?.as_str().map(str::to_owned)
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(member, _)| *member == name).map(|(_, value)| value)
    }
}

static POINT: RewardDescription = RewardDescription {
    reward_type: RewardType::Point,
    details: &[DetailMember { name: "points", kind: DetailKind::Whole { max: MAX_GRANT_AMOUNT }, label: "Points" }],
    secret_details: &[],
    example: r#"{"rewardType": "POINT", "rewardName": "1000 points", "details": {"points": 1000},
                 "quantityPerUser": 1, "totalStock": -1}"#,
    build: |values| Some(RewardDetails::Point { points: values.whole("points")? }),
};

static ITEM: RewardDescription = RewardDescription {
    reward_type: RewardType::Item,
    details: &[
        DetailMember { name: "itemId", kind: DetailKind::Text { max_chars: MAX_NAME_CHARS }, label: "Item id" },
        DetailMember { name: "itemName", kind: DetailKind::Text { max_chars: MAX_NAME_CHARS }, label: "Item name" },
        DetailMember {
            name: "itemGrade",
            kind: DetailKind::OptionalText { max_chars: MAX_NAME_CHARS },
            label: "Item grade (optional)",
        },
    ],
    secret_details: &[],
    example: r#"{"rewardType": "ITEM", "rewardName": "Red potion",
                 "details": {"itemId": "item_code_123", "itemName": "Red potion", "itemGrade": "RARE"},
                 "quantityPerUser": 1, "totalStock": -1}"#,
    build: |values| {
        Some(RewardDetails::Item {
            item_id: values.text("itemId")?,
            item_name: values.text("itemName")?,
            item_grade: values.text("itemGrade"),
        })
    },
};

static COUPON: RewardDescription = RewardDescription {
    reward_type: RewardType::Coupon,
    details: &[
        DetailMember { name: "couponCode", kind: DetailKind::Text { max_chars: MAX_NAME_CHARS }, label: "Coupon code" },
        DetailMember { name: "discountRate", kind: DetailKind::Fraction, label: "Discount rate (0–1)" },
        DetailMember {
            name: "description",
            kind: DetailKind::OptionalText { max_chars: MAX_DESCRIPTION_CHARS },
            label: "Coupon description (optional)",
        },
    ],
    secret_details: &["couponCode"],
    example: r#"{"rewardType": "COUPON", "rewardName": "10% off",
                 "details": {"couponCode": "WELCOME2025", "discountRate": 0.1},
                 "quantityPerUser": 1, "totalStock": -1}"#,
    build: |values| {
        Some(RewardDetails::Coupon {
            coupon_code: values.text("couponCode")?,
            discount_rate: values.number("discountRate")?,
            description: values.text("description"),
        })
    },
};

static VIRTUAL_CURRENCY: RewardDescription = RewardDescription {
    reward_type: RewardType::VirtualCurrency,
    details: &[
        DetailMember { name: "currency", kind: DetailKind::Text { max_chars: MAX_NAME_CHARS }, label: "Currency" },
        DetailMember { name: "amount", kind: DetailKind::Whole { max: MAX_GRANT_AMOUNT }, label: "Amount" },
    ],
    secret_details: &[],
    example: r#"{"rewardType": "VIRTUAL_CURRENCY", "rewardName": "100 gems",
                 "details": {"currency": "GEM", "amount": 100}, "quantityPerUser": 1}"#,
    build: |values| {
        Some(RewardDetails::VirtualCurrency { currency: values.text("currency")?, amount: values.whole("amount")? })
    },
};

/// A string that is not one of the reward types.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown reward type {0:?}")]
pub struct UnknownRewardType(pub String);

impl FromStr for RewardType {
    type Err = UnknownRewardType;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|reward_type| reward_type.as_str() == text)
            .ok_or_else(|| UnknownRewardType(text.to_owned()))
    }
}

/// The `details` of a reward, typed by its [`RewardType`]. Serializes to exactly the seed's
/// shape, e.g. `{"points": 1000}`; the type itself lives beside it in `rewardType`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum RewardDetails {
    /// `{"points": 1000}`; points are a positive integer.
    Point {
        /// Points granted per unit.
        points: i64,
    },
    /// `{"itemId": "item_code_123", "itemName": "빨간 포션", "itemGrade": "RARE"}`.
    Item {
        /// The game's identifier of the item.
        item_id: String,
        /// Display name of the item.
        item_name: String,
        /// Optional grade, e.g. `RARE`.
        #[serde(skip_serializing_if = "Option::is_none")]
        item_grade: Option<String>,
    },
    /// `{"couponCode": "WELCOME2025", "discountRate": 0.1, "description": "10% 할인 쿠폰"}`.
    Coupon {
        /// Code the player redeems.
        coupon_code: String,
        /// Fraction taken off, in `(0, 1]`.
        #[serde(serialize_with = "serialize_number")]
        discount_rate: f64,
        /// Optional text shown with the coupon.
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// `{"currency": "GEM", "amount": 100}`; the amount is a positive integer.
    VirtualCurrency {
        /// Currency code in the game's wallet.
        currency: String,
        /// Units granted per unit of reward.
        amount: i64,
    },
}

impl RewardDetails {
    /// The reward type these details belong to.
    pub fn reward_type(&self) -> RewardType {
        match self {
            Self::Point { .. } => RewardType::Point,
            Self::Item { .. } => RewardType::Item,
            Self::Coupon { .. } => RewardType::Coupon,
            Self::VirtualCurrency { .. } => RewardType::VirtualCurrency,
        }
    }
}

/// Parses the `details` object of a reward of `reward_type`; `pointer_prefix` is the pointer of
/// that object (e.g. `/rewards/0/details`). Unknown members are errors.
pub fn parse_details(
    reward_type: RewardType,
    details: &Value,
    pointer_prefix: &str,
) -> Result<RewardDetails, Vec<FieldError>> {
    let mut reader = ObjectReader::new(details, pointer_prefix)?;
    let description = reward_type.description();
    let mut values = DetailValues::default();
    let mut all_read = true;
    for member in description.details {
        let value = match member.kind {
            DetailKind::Whole { max } => reader.required_int::<i64>(member.name, 1..=max).map(Value::from),
            DetailKind::Fraction => reader.required_positive_number(member.name, 1.0).map(Value::from),
            DetailKind::Text { max_chars } => reader.required_text(member.name, max_chars).map(Value::from),
            // An absent optional member has no value; a bad one has its error recorded, which
            // `finish` reports whatever `build` makes.
            DetailKind::OptionalText { max_chars } => reader.optional_text(member.name, max_chars).map(Value::from),
        };
        match value {
            Some(value) => values.0.push((member.name, value)),
            None if matches!(member.kind, DetailKind::OptionalText { .. }) => {}
            None => all_read = false,
        }
    }
    let parsed = if all_read { (description.build)(&values) } else { None };
    reader.finish(parsed)
}

/// How much of a reward each player gets and how much exists in total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockPolicy {
    quantity_per_user: i64,
    total_stock: Option<i64>,
}

impl StockPolicy {
    /// Units one successful claim receives (and reserves), at least 1.
    pub fn quantity_per_user(&self) -> i64 {
        self.quantity_per_user
    }

    /// Units that exist in total, `None` when unlimited; never below `quantity_per_user`.
    pub fn total_stock(&self) -> Option<i64> {
        self.total_stock
    }

    /// Whether the reward never runs out.
    pub fn is_unlimited(&self) -> bool {
        self.total_stock.is_none()
    }
}

/// Parses the stock fields of a reward whose pointer is `pointer_prefix`:
/// `quantityPerUser` is required, in `1..=MAX_QUANTITY_PER_USER`; `totalStock` of `-1` or
/// `null` means unlimited, otherwise it must cover at least one claim (`>= quantityPerUser`).
pub fn parse_stock(
    quantity_per_user: Option<i64>,
    total_stock: Option<i64>,
    pointer_prefix: &str,
) -> Result<StockPolicy, Vec<FieldError>> {
    let mut errors = Vec::new();
    let quantity_pointer = child_pointer(pointer_prefix, "quantityPerUser");
    let quantity_per_user = match quantity_per_user {
        None => {
            errors.push(FieldError::required(quantity_pointer));
            None
        }
        Some(quantity) if (1..=MAX_QUANTITY_PER_USER).contains(&quantity) => Some(quantity),
        Some(_) => {
            errors
                .push(FieldError::out_of_range(quantity_pointer, format!("must be from 1 to {MAX_QUANTITY_PER_USER}")));
            None
        }
    };
    let total_stock = total_stock.filter(|&total| total != UNLIMITED_STOCK);
    if total_stock.is_some_and(|total| total < quantity_per_user.unwrap_or(1) || total > MAX_TOTAL_STOCK) {
        errors.push(FieldError::out_of_range(
            child_pointer(pointer_prefix, "totalStock"),
            format!(
                "must be -1 or null for unlimited stock, or from quantityPerUser (at least 1) to {MAX_TOTAL_STOCK}"
            ),
        ));
    }
    match quantity_per_user {
        Some(quantity_per_user) if errors.is_empty() => Ok(StockPolicy { quantity_per_user, total_stock }),
        _ => Err(errors),
    }
}

/// Why stock cannot be topped up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TopUpError {
    /// Only a positive number of units can be added.
    #[error("the number of units to add must be positive")]
    NonPositiveAmount,
    /// Unlimited stock has nothing to top up.
    #[error("unlimited stock cannot be topped up")]
    UnlimitedStock,
    /// The stored counters break the invariant `0 <= remainingStock <= totalStock`.
    #[error("the stored stock counters are inconsistent")]
    InconsistentCounters,
    /// The new counters would not fit in a 64-bit integer.
    #[error("the stock would overflow")]
    Overflow,
}

impl TopUpError {
    /// Stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NonPositiveAmount => "INVALID_TOP_UP_AMOUNT",
            Self::UnlimitedStock => "UNLIMITED_STOCK",
            Self::InconsistentCounters => "INCONSISTENT_STOCK",
            Self::Overflow => "STOCK_OVERFLOW",
        }
    }
}

/// The new `(totalStock, remainingStock)` after adding `add` units to limited stock.
///
/// Both counters move by the same amount because units already reserved by claims stay
/// reserved: the invariant `totalStock = remainingStock + Σ reserved` must survive a top-up.
/// `total_stock` of `None` or `-1` is unlimited and cannot be topped up.
pub fn top_up(total_stock: Option<i64>, remaining_stock: Option<i64>, add: i64) -> Result<(i64, i64), TopUpError> {
    if add <= 0 {
        return Err(TopUpError::NonPositiveAmount);
    }
    match (total_stock.filter(|&total| total != UNLIMITED_STOCK), remaining_stock) {
        (None, _) => Err(TopUpError::UnlimitedStock),
        (Some(total), Some(remaining)) if (0..=total).contains(&remaining) => {
            total.checked_add(add).zip(remaining.checked_add(add)).ok_or(TopUpError::Overflow)
        }
        (Some(_), _) => Err(TopUpError::InconsistentCounters),
    }
}

/// The identifier of a reward within its event: the kernel's, re-exported where rewards live.
pub use bestow_kernel::ids::RewardId;

/// A reward as an operator sends it, before validation.
///
/// Scalar members are optional here so that a missing one is reported as a [`FieldError`]
/// together with every other problem, not as a bare deserialization failure.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RewardInput {
    /// One of `POINT`, `ITEM`, `COUPON`, `VIRTUAL_CURRENCY`.
    pub reward_type: Option<String>,
    /// Display name, e.g. "1000 메이플포인트".
    pub reward_name: Option<String>,
    /// Type-specific details; see [`RewardDetails`].
    #[serde(default)]
    #[schema(value_type = Object)]
    pub details: Value,
    /// Units one claim receives.
    pub quantity_per_user: Option<i64>,
    /// Units in total; `-1` or absent for unlimited.
    pub total_stock: Option<i64>,
}

impl RewardInput {
    /// Checks every member, reporting all errors with pointers under `pointer_prefix`
    /// (the pointer of this reward, e.g. `/rewards/0`).
    pub fn validate(self, pointer_prefix: &str) -> Result<ValidReward, Vec<FieldError>> {
        let mut errors = Vec::new();

        let type_pointer = child_pointer(pointer_prefix, "rewardType");
        let reward_type = match self.reward_type.as_deref().map(str::parse::<RewardType>) {
            None => {
                errors.push(FieldError::required(type_pointer));
                None
            }
            Some(Err(unknown)) => {
                errors.push(FieldError::new(type_pointer, "unknown_type", unknown.to_string()));
                None
            }
            Some(Ok(reward_type)) => Some(reward_type),
        };

        let reward_name = parse_reward_name(self.reward_name, pointer_prefix).map_err(|error| errors.push(error)).ok();

        // Without a known type there is no schema to check the details against.
        let details = reward_type.and_then(|reward_type| {
            parse_details(reward_type, &self.details, &child_pointer(pointer_prefix, "details"))
                .map_err(|found| errors.extend(found))
                .ok()
        });

        let stock = parse_stock(self.quantity_per_user, self.total_stock, pointer_prefix)
            .map_err(|found| errors.extend(found))
            .ok();

        match (reward_name, details, stock) {
            (Some(reward_name), Some(details), Some(stock)) => Ok(ValidReward { reward_name, details, stock }),
            _ => Err(errors),
        }
    }
}

fn parse_reward_name(name: Option<String>, pointer_prefix: &str) -> Result<String, FieldError> {
    let pointer = child_pointer(pointer_prefix, "rewardName");
    let name = name.ok_or_else(|| FieldError::required(&pointer))?;
    check_text(&name, &pointer, MAX_NAME_CHARS)?;
    Ok(name)
}

/// A reward that passed validation, not yet given an id.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidReward {
    reward_name: String,
    details: RewardDetails,
    stock: StockPolicy,
}

impl ValidReward {
    /// The reward's type, as implied by its details.
    pub fn reward_type(&self) -> RewardType {
        self.details.reward_type()
    }

    /// Non-blank display name of at most [`MAX_NAME_CHARS`] characters.
    pub fn reward_name(&self) -> &str {
        &self.reward_name
    }

    /// What one unit of the reward is.
    pub fn details(&self) -> &RewardDetails {
        &self.details
    }

    /// How much each player gets and how much exists.
    pub fn stock(&self) -> StockPolicy {
        self.stock
    }

    /// Names the reward; a new reward starts with all of its stock remaining.
    pub fn into_definition(self, reward_id: RewardId) -> RewardDefinition {
        RewardDefinition { reward_id, remaining_stock: self.stock.total_stock(), reward: self }
    }
}

/// One element of `events.rewards[]` as stored, in the seed's shape:
/// `{rewardId, rewardType, rewardName, details, quantityPerUser, totalStock, remainingStock}`.
///
/// `totalStock` and `remainingStock` are written as `null` when stock is unlimited; `-1` is
/// accepted when reading. Reading applies the same checks as [`RewardInput::validate`] and also
/// requires `0 <= remainingStock <= totalStock` for limited stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RewardRecord<Value>", into = "RewardRecord<RewardDetails>")]
pub struct RewardDefinition {
    reward_id: RewardId,
    reward: ValidReward,
    remaining_stock: Option<i64>,
}

impl RewardDefinition {
    /// The reward's id within its event.
    pub fn reward_id(&self) -> &RewardId {
        &self.reward_id
    }

    /// The validated definition: name, details and stock policy.
    pub fn reward(&self) -> &ValidReward {
        &self.reward
    }

    /// Units still available, `None` when unlimited. The store moves this counter; this value
    /// is what was read or snapshotted.
    pub fn remaining_stock(&self) -> Option<i64> {
        self.remaining_stock
    }

    /// The same reward (id and remaining stock) with a new definition whose stock policy keeps
    /// the same `totalStock`: the counters belong to claims, not to the operator's edit.
    pub fn redefine(&self, reward: ValidReward) -> Self {
        Self { reward_id: self.reward_id.clone(), reward, remaining_stock: self.remaining_stock }
    }

    /// The operator's view of this reward, for merging a partial update into it.
    pub fn to_input(&self) -> RewardInput {
        let stock = self.reward.stock;
        RewardInput {
            reward_type: Some(self.reward.reward_type().as_str().to_owned()),
            reward_name: Some(self.reward.reward_name.clone()),
            details: serde_json::to_value(&self.reward.details).unwrap_or(Value::Null),
            quantity_per_user: Some(stock.quantity_per_user()),
            total_stock: stock.total_stock(),
        }
    }
}

/// The stored shape of a reward; `details` is raw JSON when read and typed when written.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RewardRecord<D> {
    reward_id: RewardId,
    reward_type: RewardType,
    reward_name: String,
    details: D,
    quantity_per_user: i64,
    total_stock: Option<i64>,
    remaining_stock: Option<i64>,
}

impl TryFrom<RewardRecord<Value>> for RewardDefinition {
    type Error = String;

    fn try_from(record: RewardRecord<Value>) -> Result<Self, Self::Error> {
        let reward = RewardInput {
            reward_type: Some(record.reward_type.as_str().to_owned()),
            reward_name: Some(record.reward_name),
            details: record.details,
            quantity_per_user: Some(record.quantity_per_user),
            total_stock: record.total_stock,
        }
        .validate("")
        .map_err(|errors| summarize(&errors))?;
        let remaining_stock = match (reward.stock.total_stock(), record.remaining_stock) {
            (None, None | Some(UNLIMITED_STOCK)) => None,
            (Some(total), Some(remaining)) if (0..=total).contains(&remaining) => Some(remaining),
            _ => {
                return Err("/remainingStock: must be from 0 to totalStock, or null when stock is unlimited".to_owned());
            }
        };
        Ok(Self { reward_id: record.reward_id, reward, remaining_stock })
    }
}

impl From<RewardDefinition> for RewardRecord<RewardDetails> {
    fn from(definition: RewardDefinition) -> Self {
        let ValidReward { reward_name, details, stock } = definition.reward;
        Self {
            reward_id: definition.reward_id,
            reward_type: details.reward_type(),
            reward_name,
            details,
            quantity_per_user: stock.quantity_per_user(),
            total_stock: stock.total_stock(),
            remaining_stock: definition.remaining_stock,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pointers_and_codes(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors.iter().map(|e| (e.pointer.as_str(), e.code)).collect()
    }

    #[test]
    fn reward_type_strings_round_trip() {
        for reward_type in RewardType::ALL {
            let json = serde_json::to_value(reward_type).unwrap();
            assert_eq!(json, json!(reward_type.as_str()));
            assert_eq!(serde_json::from_value::<RewardType>(json).unwrap(), reward_type);
            assert_eq!(reward_type.as_str().parse(), Ok(reward_type));
        }
        assert_eq!("Point".parse::<RewardType>(), Err(UnknownRewardType("Point".into())));
    }

    #[test]
    fn valid_details_round_trip_to_the_seed_shape() {
        let cases = [
            (RewardType::Point, json!({"points": 1000})),
            (RewardType::Item, json!({"itemId": "item_code_123", "itemName": "빨간 포션", "itemGrade": "RARE"})),
            (RewardType::Item, json!({"itemId": "i", "itemName": "n"})),
            (
                RewardType::Coupon,
                json!({"couponCode": "WELCOME2025", "discountRate": 0.1, "description": "10% 할인 쿠폰"}),
            ),
            (RewardType::Coupon, json!({"couponCode": "ALL", "discountRate": 1})),
            (RewardType::VirtualCurrency, json!({"currency": "GEM", "amount": 100})),
        ];
        for (reward_type, details) in cases {
            let parsed = parse_details(reward_type, &details, "/details").unwrap();
            assert_eq!(parsed.reward_type(), reward_type);
            assert_eq!(serde_json::to_value(&parsed).unwrap(), details, "{reward_type}");
        }
    }

    #[test]
    fn optional_details_members_may_be_null() {
        let details = json!({"itemId": "i", "itemName": "n", "itemGrade": null});
        let parsed = parse_details(RewardType::Item, &details, "").unwrap();
        assert_eq!(serde_json::to_value(parsed).unwrap(), json!({"itemId": "i", "itemName": "n"}));
    }

    #[test]
    fn invalid_details_report_every_bad_member() {
        let p = "/rewards/0/details";
        let cases = [
            (RewardType::Point, json!({"points": 0}), vec![("/rewards/0/details/points", "out_of_range")]),
            (RewardType::Point, json!({"points": 1.5}), vec![("/rewards/0/details/points", "wrong_type")]),
            (RewardType::Point, json!({"points": "10"}), vec![("/rewards/0/details/points", "wrong_type")]),
            (RewardType::Point, json!({}), vec![("/rewards/0/details/points", "required")]),
            (RewardType::Point, json!({"points": 5, "bonus": 1}), vec![("/rewards/0/details/bonus", "unknown_field")]),
            (RewardType::Point, json!([1]), vec![("/rewards/0/details", "wrong_type")]),
            (RewardType::Point, json!(null), vec![("/rewards/0/details", "required")]),
            (
                RewardType::Item,
                json!({"itemId": " ", "itemGrade": 3}),
                vec![
                    ("/rewards/0/details/itemId", "required"),
                    ("/rewards/0/details/itemName", "required"),
                    ("/rewards/0/details/itemGrade", "wrong_type"),
                ],
            ),
            (
                RewardType::Coupon,
                json!({"couponCode": "C", "discountRate": 0}),
                vec![("/rewards/0/details/discountRate", "out_of_range")],
            ),
            (
                RewardType::Coupon,
                json!({"couponCode": "C", "discountRate": 1.01, "description": "x".repeat(1001)}),
                vec![
                    ("/rewards/0/details/discountRate", "out_of_range"),
                    ("/rewards/0/details/description", "out_of_range"),
                ],
            ),
            (
                RewardType::VirtualCurrency,
                json!({"currency": "", "amount": -5}),
                vec![("/rewards/0/details/currency", "required"), ("/rewards/0/details/amount", "out_of_range")],
            ),
            // The right members for another type are still unknown here.
            (
                RewardType::VirtualCurrency,
                json!({"points": 10}),
                vec![
                    ("/rewards/0/details/currency", "required"),
                    ("/rewards/0/details/amount", "required"),
                    ("/rewards/0/details/points", "unknown_field"),
                ],
            ),
        ];
        for (reward_type, details, expected) in cases {
            let errors = parse_details(reward_type, &details, p).unwrap_err();
            assert_eq!(pointers_and_codes(&errors), expected, "{reward_type} {details}");
        }
    }

    #[test]
    fn stock_policies() {
        let unlimited = |quantity| StockPolicy { quantity_per_user: quantity, total_stock: None };
        let limited = |quantity, total| StockPolicy { quantity_per_user: quantity, total_stock: Some(total) };
        let cases = [
            (Some(1), None, Ok(unlimited(1))),
            (Some(2), Some(-1), Ok(unlimited(2))),
            (Some(1), Some(1), Ok(limited(1, 1))),
            (Some(3), Some(100), Ok(limited(3, 100))),
            (Some(3), Some(2), Err(vec![("/r/totalStock", "out_of_range")])),
            (Some(1), Some(0), Err(vec![("/r/totalStock", "out_of_range")])),
            (Some(1), Some(-2), Err(vec![("/r/totalStock", "out_of_range")])),
            (None, Some(0), Err(vec![("/r/quantityPerUser", "required"), ("/r/totalStock", "out_of_range")])),
            (Some(MAX_QUANTITY_PER_USER + 1), None, Err(vec![("/r/quantityPerUser", "out_of_range")])),
        ];
        for (quantity, total, expected) in cases {
            let result = parse_stock(quantity, total, "/r");
            assert_eq!(
                result.as_ref().map_err(|errors| pointers_and_codes(errors)),
                expected.as_ref().map_err(Vec::clone),
                "{quantity:?} {total:?}"
            );
        }
        assert!(unlimited(1).is_unlimited());
        assert!(!limited(1, 1).is_unlimited());
    }

    #[test]
    fn top_up_moves_both_counters() {
        let cases = [
            (Some(100), Some(40), 10, Ok((110, 50))),
            (Some(5), Some(0), 1, Ok((6, 1))),
            (Some(100), Some(40), 0, Err(TopUpError::NonPositiveAmount)),
            (Some(100), Some(40), -3, Err(TopUpError::NonPositiveAmount)),
            (None, None, 10, Err(TopUpError::UnlimitedStock)),
            (Some(-1), None, 10, Err(TopUpError::UnlimitedStock)),
            (Some(100), None, 10, Err(TopUpError::InconsistentCounters)),
            (Some(100), Some(101), 10, Err(TopUpError::InconsistentCounters)),
            (Some(100), Some(-1), 10, Err(TopUpError::InconsistentCounters)),
            (Some(i64::MAX), Some(1), 1, Err(TopUpError::Overflow)),
        ];
        for (total, remaining, add, expected) in cases {
            assert_eq!(top_up(total, remaining, add), expected, "{total:?} {remaining:?} +{add}");
        }
        assert_eq!(TopUpError::UnlimitedStock.code(), "UNLIMITED_STOCK");
    }

    #[test]
    fn reward_ids_are_24_hex_digits() {
        let cases = [
            ("65f1c0ffee0000000000abcd", Some("65f1c0ffee0000000000abcd")),
            ("65F1C0FFEE0000000000ABCD", Some("65f1c0ffee0000000000abcd")),
            ("65f1c0ffee0000000000abc", None),
            ("65f1c0ffee0000000000abcde", None),
            ("65f1c0ffee0000000000abcg", None),
            ("", None),
        ];
        for (text, expected) in cases {
            let parsed = text.parse::<RewardId>().ok();
            assert_eq!(parsed.as_ref().map(RewardId::as_str), expected, "{text:?}");
        }
    }

    #[test]
    fn reward_input_reports_errors_of_every_part() {
        let input: RewardInput = serde_json::from_value(json!({
            "rewardType": "POINT",
            "rewardName": "",
            "details": {"points": -1},
            "totalStock": 0
        }))
        .unwrap();
        let errors = input.validate("/rewards/2").unwrap_err();
        assert_eq!(
            pointers_and_codes(&errors),
            [
                ("/rewards/2/rewardName", "required"),
                ("/rewards/2/details/points", "out_of_range"),
                ("/rewards/2/quantityPerUser", "required"),
                ("/rewards/2/totalStock", "out_of_range"),
            ]
        );

        let unknown: RewardInput = serde_json::from_value(json!({
            "rewardType": "BADGE", "rewardName": "x", "details": {"anything": 1}, "quantityPerUser": 1
        }))
        .unwrap();
        let errors = unknown.validate("/rewards/0").unwrap_err();
        assert_eq!(pointers_and_codes(&errors), [("/rewards/0/rewardType", "unknown_type")]);

        let missing: RewardInput = serde_json::from_value(json!({})).unwrap();
        let errors = missing.validate("").unwrap_err();
        assert_eq!(
            pointers_and_codes(&errors),
            [("/rewardType", "required"), ("/rewardName", "required"), ("/quantityPerUser", "required")]
        );

        for (length, expected) in [(MAX_NAME_CHARS, true), (MAX_NAME_CHARS + 1, false)] {
            let input: RewardInput = serde_json::from_value(json!({
                "rewardType": "POINT", "rewardName": "가".repeat(length), "details": {"points": 1}, "quantityPerUser": 1
            }))
            .unwrap();
            let result = input.validate("");
            assert_eq!(result.is_ok(), expected, "{length} characters");
            if let Err(errors) = result {
                assert_eq!(pointers_and_codes(&errors), [("/rewardName", "out_of_range")]);
            }
        }

        let extra = serde_json::from_value::<RewardInput>(json!({"rewardId": "x"}));
        assert!(extra.is_err(), "unknown members are refused");
    }

    #[test]
    fn valid_input_becomes_a_definition_with_full_stock() {
        let input: RewardInput = serde_json::from_value(json!({
            "rewardType": "VIRTUAL_CURRENCY",
            "rewardName": "100 젬",
            "details": {"currency": "GEM", "amount": 100},
            "quantityPerUser": 1,
            "totalStock": 500
        }))
        .unwrap();
        let reward = input.validate("/rewards/0").unwrap();
        assert_eq!(reward.reward_type(), RewardType::VirtualCurrency);
        assert_eq!(reward.reward_name(), "100 젬");
        assert_eq!(reward.stock().total_stock(), Some(500));
        let id: RewardId = "65f1c0ffee0000000000abcd".parse().unwrap();
        let definition = reward.into_definition(id.clone());
        assert_eq!(definition.reward_id(), &id);
        assert_eq!(definition.remaining_stock(), Some(500));
        assert_eq!(
            serde_json::to_value(&definition).unwrap(),
            json!({
                "rewardId": "65f1c0ffee0000000000abcd",
                "rewardType": "VIRTUAL_CURRENCY",
                "rewardName": "100 젬",
                "details": {"currency": "GEM", "amount": 100},
                "quantityPerUser": 1,
                "totalStock": 500,
                "remainingStock": 500
            })
        );
    }

    #[test]
    fn stored_definitions_are_read_with_the_same_checks() {
        let stored = |total: Value, remaining: Value| {
            json!({
                "rewardId": "65f1c0ffee0000000000abcd",
                "rewardType": "COUPON",
                "rewardName": "웰컴 쿠폰",
                "details": {"couponCode": "WELCOME2025", "discountRate": 0.1, "description": "10% 할인 쿠폰"},
                "quantityPerUser": 1,
                "totalStock": total,
                "remainingStock": remaining
            })
        };
        // (stored totalStock, stored remainingStock, written back as, readable)
        let cases = [
            (json!(100), json!(7), Some((json!(100), json!(7)))),
            (json!(-1), json!(-1), Some((json!(null), json!(null)))),
            (json!(-1), json!(null), Some((json!(null), json!(null)))),
            (json!(null), json!(null), Some((json!(null), json!(null)))),
            (json!(100), json!(101), None),
            (json!(100), json!(-1), None),
            (json!(100), json!(null), None),
            (json!(null), json!(5), None),
        ];
        for (total, remaining, expected) in cases {
            let read = serde_json::from_value::<RewardDefinition>(stored(total.clone(), remaining.clone()));
            match expected {
                Some((total_out, remaining_out)) => {
                    let written = serde_json::to_value(read.unwrap()).unwrap();
                    assert_eq!(written, stored(total_out, remaining_out), "{total} {remaining}");
                }
                None => assert!(read.is_err(), "{total} {remaining}"),
            }
        }

        let mut bad_details = stored(json!(1), json!(1));
        bad_details["details"]["discountRate"] = json!(2);
        let error = serde_json::from_value::<RewardDefinition>(bad_details).unwrap_err();
        assert!(error.to_string().contains("/details/discountRate"), "{error}");
    }

    #[test]
    fn every_reward_type_has_exactly_one_description() {
        let mut member_names = Vec::new();
        for reward_type in RewardType::ALL {
            let description = reward_type.description();
            assert_eq!(description.reward_type, reward_type);
            member_names.extend(description.details.iter().map(|member| member.name));
            for secret in description.secret_details {
                assert!(description.details.iter().any(|member| member.name == *secret), "{reward_type}.{secret}");
            }
        }
        let mut unique = member_names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), member_names.len(), "detail member names are unique across types: {member_names:?}");
    }

    #[test]
    fn the_parser_accepts_exactly_the_described_details() {
        for reward_type in RewardType::ALL {
            let description = reward_type.description();
            let example: Value = serde_json::from_str(description.example).unwrap();
            let input: RewardInput = serde_json::from_value(example.clone()).unwrap();
            let valid = input.validate("/r").unwrap();
            assert_eq!(valid.details.reward_type(), reward_type);
            let details = &example["details"];
            assert_eq!(&serde_json::to_value(&valid.details).unwrap(), details, "{reward_type}");
            for member in description.details {
                let mut missing = details.clone();
                missing.as_object_mut().unwrap().remove(member.name);
                let parsed = parse_details(reward_type, &missing, "/d");
                match member.kind {
                    DetailKind::OptionalText { .. } => assert!(parsed.is_ok(), "{reward_type}.{}", member.name),
                    _ => assert_eq!(
                        pointers_and_codes(&parsed.unwrap_err()),
                        [(format!("/d/{}", member.name).as_str(), "required")]
                    ),
                }
                let mut ill_typed = details.clone();
                ill_typed[member.name] = if member.kind.is_numeric() { json!("1") } else { json!(1) };
                let errors = parse_details(reward_type, &ill_typed, "/d").unwrap_err();
                assert_eq!(pointers_and_codes(&errors), [(format!("/d/{}", member.name).as_str(), "wrong_type")]);
            }
        }
    }
}
