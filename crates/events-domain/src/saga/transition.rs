//! The values the machine and the claim store exchange: what a claim is for, the stock changes
//! and the next document a step commits together, and a worker's lease with the rule for
//! taking one (SQLite calls it; MongoDB states it as the filter of one conditional update).

use chrono::{DateTime, Utc};

use super::document::ClaimRequest;
use crate::recurrence::Period;
use crate::tier::Tier;

/// What one claim is for: a tier of an event with tiers, in a period of a recurring event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimTarget {
    pub tier: Option<Tier>,
    pub period: Option<Period>,
}

/// A change of one reward's `remainingStock` that must commit with a claim's next document:
/// negative reserves (only if that much remains), positive returns (only up to `totalStock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockChange {
    pub reward_id: String,
    pub delta: i64,
    /// The reservation's `stockReservationId`, which the committed document records.
    pub reservation_id: Option<String>,
}

impl StockChange {
    /// Reserves `units` of `reward_id` as reservation `reservation_id`.
    pub fn reserve(reward_id: &str, units: i64, reservation_id: Option<&str>) -> Self {
        Self { reward_id: reward_id.to_owned(), delta: -units, reservation_id: reservation_id.map(str::to_owned) }
    }

    /// Gives `units` of `reward_id` back.
    pub fn give_back(reward_id: &str, units: i64) -> Self {
        Self { reward_id: reward_id.to_owned(), delta: units, reservation_id: None }
    }
}

/// One step of the machine: the next document and the stock changes that commit with it.
/// The driver performs the step's calls, then commits exactly this.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub next: ClaimRequest,
    pub stock: Vec<StockChange>,
}

impl From<ClaimRequest> for Transition {
    /// A step that moves no stock.
    fn from(next: ClaimRequest) -> Self {
        Self { next, stock: Vec::new() }
    }
}

/// A worker's exclusive hold on driving a claim, taken at `from` until `until`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lease<'a> {
    pub owner: &'a str,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl ClaimRequest {
    /// Whether `lease` may be taken: the claim is not final, nobody holds a live lease and its
    /// next attempt is due.
    pub fn can_lease(&self, lease: &Lease<'_>) -> bool {
        let lease_free = self.lease_expires_at.is_none_or(|expires| expires <= lease.from);
        let due = self.next_attempt_at.is_none_or(|at| at <= lease.from);
        !self.status.is_final() && lease_free && due
    }

    /// The request with `lease` taken: attempted now, one version on.
    pub fn take_lease(&mut self, lease: &Lease<'_>) {
        self.lease_owner = Some(lease.owner.to_owned());
        self.lease_expires_at = Some(lease.until);
        self.next_attempt_at = None;
        self.version += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::event::GrantPolicy;
    use crate::saga::ClaimStatus;
    use crate::saga::test_support::request;
    use chrono::TimeDelta;

    #[test]
    fn a_lease_is_taken_only_on_a_due_unfinished_claim_nobody_holds() {
        let now = Utc::now();
        let lease = |owner, from| Lease { owner, from, until: from + TimeDelta::seconds(30) };
        let mut claim = request(&[Some(5)], GrantPolicy::AllOrNothing);
        assert!(claim.can_lease(&lease("w1", now)));
        claim.take_lease(&lease("w1", now));
        assert_eq!((claim.lease_owner.as_deref(), claim.version), (Some("w1"), 2));
        assert!(!claim.can_lease(&lease("w2", now + TimeDelta::seconds(29))), "the lease is live");
        assert!(claim.can_lease(&lease("w2", now + TimeDelta::seconds(30))), "the lease ran out");

        claim.lease_expires_at = None;
        claim.next_attempt_at = Some(now + TimeDelta::seconds(5));
        assert!(!claim.can_lease(&lease("w2", now)), "the next attempt is not due");
        claim.next_attempt_at = None;
        claim.status = ClaimStatus::SuccessAllGranted;
        assert!(!claim.can_lease(&lease("w2", now)), "a final claim is never driven again");
    }
}
