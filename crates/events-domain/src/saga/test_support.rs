//! Fixtures the saga's unit tests share: an event with rewards of the given stocks, a retry
//! policy and a fresh request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bestow_kernel::ids::{EventId, RequestId, UserId};
use chrono::{TimeDelta, Utc};
use serde_json::json;

use super::document::ClaimRequest;
use super::retry::RetryPolicy;
use crate::event::{Event, EventInput, GrantPolicy, Provenance};
use crate::reward::RewardId;

fn event(stocks: &[Option<i64>], policy: GrantPolicy) -> Event {
    let rewards: Vec<_> = stocks
        .iter()
        .map(|stock| {
            json!({ "rewardType": "POINT", "rewardName": "p", "details": { "points": 10 },
                    "quantityPerUser": 1, "totalStock": stock.unwrap_or(-1) })
        })
        .collect();
    let input: EventInput = serde_json::from_value(json!({
        "eventName": "e", "startDate": "2026-01-01T00:00:00Z", "endDate": "2027-01-01T00:00:00Z",
        "rewards": rewards, "grantPolicy": policy,
    }))
    .unwrap();
    let mut n = 0;
    let provenance =
        Provenance { event_id: EventId::parse(&"e".repeat(24)).unwrap(), created_by: "op".into(), now: Utc::now() };
    input
        .into_event(provenance, || {
            n += 1;
            RewardId::parse(&format!("{n:024x}")).unwrap()
        })
        .unwrap()
}

pub(super) fn policy() -> RetryPolicy {
    RetryPolicy { max_attempts: 3, base_delay: TimeDelta::milliseconds(100), max_delay: TimeDelta::seconds(5) }
}

pub(super) fn request(stocks: &[Option<i64>], policy: GrantPolicy) -> ClaimRequest {
    ClaimRequest::new(
        "r".into(),
        RequestId::generate(),
        UserId::parse("u").unwrap(),
        &event(stocks, policy),
        Utc::now(),
    )
}
