//! The event lifecycle: the statuses of `events.status`, which transitions between them are
//! allowed, and what each status permits (editing, deleting, showing to players, claiming).
//!
//! ```text
//! DRAFT ──► ACTIVE ⇄ INACTIVE
//! ACTIVE | INACTIVE ──► EXPIRED    (by hand, or automatically once endDate passes)
//! EXPIRED | INACTIVE ──► ARCHIVED
//! ```

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The status of an event, stored in `events.status` exactly as the seed spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventStatus {
    /// Being prepared; invisible to players, freely editable, deletable.
    Draft,
    /// Live: visible, and claimable within `[startDate, endDate)`.
    Active,
    /// Paused by an operator; invisible, editable again.
    Inactive,
    /// Over; visible (players can see what they missed or won) but not claimable.
    Expired,
    /// Filed away for good; invisible.
    Archived,
}

impl EventStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 5] = [Self::Draft, Self::Active, Self::Inactive, Self::Expired, Self::Archived];

    /// The stored spelling, e.g. `"DRAFT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Expired => "EXPIRED",
            Self::Archived => "ARCHIVED",
        }
    }

    /// Whether the lifecycle has an edge from `self` to `to`, ignoring activation
    /// preconditions. Staying in the same status is not a transition.
    pub fn can_become(self, to: Self) -> bool {
        use EventStatus::{Active, Archived, Draft, Expired, Inactive};
        matches!(
            (self, to),
            (Draft | Inactive, Active)
                | (Active, Inactive)
                | (Active | Inactive, Expired)
                | (Expired | Inactive, Archived)
        )
    }
}

impl fmt::Display for EventStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the five event statuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown event status {0:?}")]
pub struct UnknownEventStatus(pub String);

impl FromStr for EventStatus {
    type Err = UnknownEventStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|status| status.as_str() == text).ok_or_else(|| UnknownEventStatus(text.to_owned()))
    }
}

/// What activation depends on, gathered by the caller from the stored event and its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivationFacts {
    /// Number of reward definitions on the event.
    pub reward_count: usize,
    /// `events.startDate`.
    pub start_date: DateTime<Utc>,
    /// `events.endDate`.
    pub end_date: DateTime<Utc>,
    /// The current instant.
    pub now: DateTime<Utc>,
}

/// Why a status change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum LifecycleError {
    /// The lifecycle has no edge between the two statuses.
    #[error("an event cannot go from {from} to {to}")]
    ForbiddenTransition {
        /// The current status.
        from: EventStatus,
        /// The requested status.
        to: EventStatus,
    },
    /// Activation needs something to give away.
    #[error("an event needs at least one reward to be activated")]
    NoRewards,
    /// Activation needs a non-empty schedule.
    #[error("an event can be activated only if its startDate is before its endDate")]
    InvalidSchedule,
    /// The event would expire at once, so activating it is refused.
    #[error("an event whose endDate has passed cannot be activated")]
    AlreadyEnded,
}

impl LifecycleError {
    /// Stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ForbiddenTransition { .. } => "FORBIDDEN_TRANSITION",
            Self::NoRewards => "NO_REWARDS",
            Self::InvalidSchedule => "INVALID_SCHEDULE",
            Self::AlreadyEnded => "ALREADY_ENDED",
        }
    }
}

/// Checks that an event may go from `from` to `to`; activation (from DRAFT or INACTIVE) also
/// needs at least one reward, `startDate < endDate`, and `now < endDate`.
pub fn check_transition(from: EventStatus, to: EventStatus, facts: &ActivationFacts) -> Result<(), LifecycleError> {
    if !from.can_become(to) {
        return Err(LifecycleError::ForbiddenTransition { from, to });
    }
    if to == EventStatus::Active {
        if facts.reward_count == 0 {
            return Err(LifecycleError::NoRewards);
        }
        if facts.start_date >= facts.end_date {
            return Err(LifecycleError::InvalidSchedule);
        }
        if facts.now >= facts.end_date {
            return Err(LifecycleError::AlreadyEnded);
        }
    }
    Ok(())
}

/// Whether conditions and reward definitions may change: only while no player can claim, so a
/// claim never races an edit of what it checks or pays.
pub fn definition_editable(status: EventStatus) -> bool {
    matches!(status, EventStatus::Draft | EventStatus::Inactive)
}

/// Whether the event may be deleted: only a DRAFT, which no player has ever seen.
pub fn deletable(status: EventStatus) -> bool {
    status == EventStatus::Draft
}

/// Whether reward definitions may be removed: only in DRAFT, because once an event has been
/// active, claims and their snapshots refer to its rewards.
pub fn rewards_removable(status: EventStatus) -> bool {
    status == EventStatus::Draft
}

/// Whether players see the event at all.
pub fn visible_to_players(status: EventStatus) -> bool {
    matches!(status, EventStatus::Active | EventStatus::Expired)
}

/// Whether the expiry sweep should move the event to EXPIRED: it is live or paused and its
/// `endDate` has been reached.
pub fn should_expire(status: EventStatus, end_date: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    matches!(status, EventStatus::Active | EventStatus::Inactive) && now >= end_date
}

/// Whether a claim made at `now` passes the event check: the event is ACTIVE and
/// `start_date <= now < end_date`. This does not wait for the expiry sweep.
pub fn accepts_claims(
    status: EventStatus,
    start_date: DateTime<Utc>,
    end_date: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    status == EventStatus::Active && start_date <= now && now < end_date
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;

    use super::{EventStatus::*, *};

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 0, 0, 0).unwrap()
    }

    fn activatable() -> ActivationFacts {
        ActivationFacts { reward_count: 1, start_date: at(1), end_date: at(10), now: at(5) }
    }

    #[test]
    fn every_status_pair_is_allowed_or_forbidden_as_designed() {
        let table = [
            (Draft, Draft, false),
            (Draft, Active, true),
            (Draft, Inactive, false),
            (Draft, Expired, false),
            (Draft, Archived, false),
            (Active, Draft, false),
            (Active, Active, false),
            (Active, Inactive, true),
            (Active, Expired, true),
            (Active, Archived, false),
            (Inactive, Draft, false),
            (Inactive, Active, true),
            (Inactive, Inactive, false),
            (Inactive, Expired, true),
            (Inactive, Archived, true),
            (Expired, Draft, false),
            (Expired, Active, false),
            (Expired, Inactive, false),
            (Expired, Expired, false),
            (Expired, Archived, true),
            (Archived, Draft, false),
            (Archived, Active, false),
            (Archived, Inactive, false),
            (Archived, Expired, false),
            (Archived, Archived, false),
        ];
        assert_eq!(table.len(), 25);
        for (from, to, allowed) in table {
            let result = check_transition(from, to, &activatable());
            let expected = if allowed { Ok(()) } else { Err(LifecycleError::ForbiddenTransition { from, to }) };
            assert_eq!(result, expected, "{from} -> {to}");
            assert_eq!(from.can_become(to), allowed, "{from} -> {to}");
        }
    }

    #[test]
    fn activation_preconditions() {
        let cases = [
            (activatable(), Ok(())),
            (ActivationFacts { reward_count: 0, ..activatable() }, Err(LifecycleError::NoRewards)),
            (ActivationFacts { start_date: at(10), ..activatable() }, Err(LifecycleError::InvalidSchedule)),
            (ActivationFacts { start_date: at(11), ..activatable() }, Err(LifecycleError::InvalidSchedule)),
            (ActivationFacts { now: at(10), ..activatable() }, Err(LifecycleError::AlreadyEnded)),
            // Activating ahead of the start is fine: claims wait for startDate.
            (ActivationFacts { now: at(1) - chrono::Duration::days(3), ..activatable() }, Ok(())),
        ];
        for (facts, expected) in cases {
            for from in [Draft, Inactive] {
                assert_eq!(check_transition(from, Active, &facts), expected, "{from} with {facts:?}");
            }
            // Preconditions concern activation only.
            assert_eq!(check_transition(Active, Inactive, &facts), Ok(()));
        }
    }

    #[test]
    fn errors_have_stable_codes() {
        let cases = [
            (
                LifecycleError::ForbiddenTransition { from: Archived, to: Active },
                "FORBIDDEN_TRANSITION",
                "an event cannot go from ARCHIVED to ACTIVE",
            ),
            (LifecycleError::NoRewards, "NO_REWARDS", "an event needs at least one reward to be activated"),
            (
                LifecycleError::InvalidSchedule,
                "INVALID_SCHEDULE",
                "an event can be activated only if its startDate is before its endDate",
            ),
            (LifecycleError::AlreadyEnded, "ALREADY_ENDED", "an event whose endDate has passed cannot be activated"),
        ];
        for (error, code, message) in cases {
            assert_eq!((error.code(), error.to_string().as_str()), (code, message));
        }
    }

    #[test]
    fn status_strings_round_trip() {
        for status in EventStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<EventStatus>(&json).unwrap(), status);
            assert_eq!(status.as_str().parse::<EventStatus>(), Ok(status));
        }
        assert_eq!("active".parse::<EventStatus>(), Err(UnknownEventStatus("active".into())));
    }

    #[test]
    fn permissions_per_status() {
        // (status, editable, deletable, rewards removable, visible)
        let table = [
            (Draft, true, true, true, false),
            (Active, false, false, false, true),
            (Inactive, true, false, false, false),
            (Expired, false, false, false, true),
            (Archived, false, false, false, false),
        ];
        for (status, editable, can_delete, removable, visible) in table {
            assert_eq!(
                (definition_editable(status), deletable(status), rewards_removable(status), visible_to_players(status)),
                (editable, can_delete, removable, visible),
                "{status}"
            );
        }
    }

    #[test]
    fn expiry_and_claim_windows() {
        let (start, end) = (at(1), at(10));
        for status in EventStatus::ALL {
            let live = matches!(status, Active | Inactive);
            assert!(!should_expire(status, end, at(9)), "{status}");
            assert_eq!(should_expire(status, end, end), live, "{status}");
            assert_eq!(should_expire(status, end, at(11)), live, "{status}");
        }
        let claims = [
            (Active, start - chrono::Duration::seconds(1), false),
            (Active, start, true),
            (Active, end - chrono::Duration::seconds(1), true),
            (Active, end, false),
            (Inactive, at(5), false),
            (Expired, at(5), false),
            (Draft, at(5), false),
        ];
        for (status, now, accepted) in claims {
            assert_eq!(accepts_claims(status, start, end, now), accepted, "{status} at {now}");
        }
    }
}
