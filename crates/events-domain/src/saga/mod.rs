//! The claim saga as a pure state machine over the `user_reward_requests` document.
//!
//! [`next_step`] reads a request and says what must happen next; the `ClaimRequest::after_*`
//! methods apply the outcome of that step and return the new document, and the steps that move
//! stock (`allocate`, `begin_compensation`, `return_held_stock`, `resolve_by_admin`) return a
//! [`Transition`]: the document and the stock changes that commit with it. The driver
//! (`crate::claims::driver`) performs the I/O and commits each transition whole with a
//! compare-and-set, so a crash between any two steps resumes from the stored status alone.
//! Every step that records a `failureReason` records its [`FailureCode`] with it.
//!
//! ```text
//! PENDING_VALIDATION ─► VALIDATION_FAILED_{USER_INACTIVE, EVENT_NOT_ACTIVE, ALREADY_CLAIMED}
//!   └► PENDING_CONDITION_CHECK ─► CONDITION_NOT_MET | CONDITION_CHECK_FAILED_EXTERNAL
//!        └► PENDING_INVENTORY_ALLOCATION ─► INVENTORY_ALLOCATION_FAILED_{OUT_OF_STOCK, CONCURRENCY} | _ERROR
//!             └► INVENTORY_ALLOCATED ─► PENDING_REWARD_GRANT ─► SUCCESS_ALL_GRANTED
//!                  └► REWARD_GRANT_FAILED_{EXTERNAL, USER_INACTIVE}
//!                       ├► PENDING_COMPENSATION_REWARD ─► COMPENSATED_REWARD
//!                       │    ─► PENDING_COMPENSATION_INVENTORY ─► COMPENSATED_INVENTORY ─► FAILED_ROLLED_BACK
//!                       └► REWARD_PARTIALLY_GRANTED (PARTIAL_ALLOWED, something granted)
//! a compensation that keeps failing ─► COMPENSATION_FAILED_MANUAL_INTERVENTION_REQUIRED
//! ```
//!
//! One concern per file:
//! - `status.rs`: the request's status, saga step and grant statuses, as the seed spells them,
//!   and the failure codes.
//! - `document.rs`: the stored request document and its parts (rewards, history, compensations).
//! - `snapshot.rs`: the copy of the event (and tier) a claim is judged by.
//! - `transition.rs`: what the machine hands the store: targets, stock changes, transitions,
//!   leases and the rule for taking one.
//! - `retry.rs`: the outcome of an external call and the retry policy of transient failures.
//! - `machine.rs`: [`next_step`] and the steps that move a request forward or compensate it.
//! - `admin.rs`: what an admin may do with a request parked for manual intervention.

mod admin;
mod document;
mod machine;
mod retry;
mod snapshot;
mod status;
#[cfg(test)]
mod test_support;
mod transition;

pub use document::{ClaimRequest, CompensatingAction, CompensationKind, HistoryEntry, RewardToProcess};
pub use machine::{NextStep, Validation, next_step};
pub use retry::{CallOutcome, RetryPolicy};
pub use snapshot::{EventSnapshot, TierSnapshot};
pub use status::{ClaimStatus, FailureCode, GrantStatus, SagaStep};
pub use transition::{ClaimTarget, Lease, StockChange, Transition};
