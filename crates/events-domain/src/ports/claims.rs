//! The storage port of claims (`user_reward_requests`) and of stock reservations.
//!
//! [`ClaimStore::commit`] is the saga's only write: it replaces the request document by its
//! next state if the stored one is still the one the driver read (same version, status and
//! lease holder), and applies the step's stock changes in the same transaction. A crash can
//! therefore neither leak a reservation nor count one twice.

use async_trait::async_trait;
use bestow_kernel::audit::AuditEntry;
use bestow_kernel::ids::{EventId, RequestId, UserId};
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::StoreError;
use chrono::{DateTime, Utc};

use crate::saga::{ClaimRequest, ClaimStatus, Lease, Transition};

pub use crate::saga::StockChange;
pub use crate::stats::ClaimStats;

/// Outcome of inserting a new request.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    Created,
    /// A request with the same `requestId` already exists: this one.
    Existing(Box<ClaimRequest>),
}

/// Filters of claim lists.
#[derive(Debug, Clone, Default)]
pub struct ClaimFilter {
    pub user_id: Option<UserId>,
    pub event_id: Option<EventId>,
    pub status: Option<ClaimStatus>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
}

/// Storage of claim requests.
#[async_trait]
pub trait ClaimStore: Send + Sync {
    /// Inserts `request`, possibly already advanced by its first steps, and applies `stock` in
    /// the same transaction. When its `requestId` exists (unique) the stored request is
    /// returned and nothing is written. Errors, with nothing written:
    /// `Conflict(ClaimSlot)` when its claim slot is held by another request,
    /// `Conflict(Stock)` when a reservation finds too little stock.
    async fn insert_request(&self, request: &ClaimRequest, stock: &[StockChange]) -> Result<Inserted, StoreError>;

    async fn request(&self, request_id: &RequestId) -> Result<Option<ClaimRequest>, StoreError>;

    /// One page of requests, newest first, and the total matching `filter`.
    async fn list_requests(&self, filter: &ClaimFilter, page: PageRequest) -> Result<Page<ClaimRequest>, StoreError>;

    /// Takes `lease` on a request if [`ClaimRequest::can_lease`] allows it (not final, no live
    /// lease, next attempt due at `lease.from`), as one atomic step; returns the request as
    /// leased ([`ClaimRequest::take_lease`]), or `None`.
    async fn acquire_lease(&self, request_id: &RequestId, lease: Lease<'_>)
    -> Result<Option<ClaimRequest>, StoreError>;

    /// Replaces the request `from` by `to.next` (compare-and-set on version, status and lease
    /// holder), applies `to.stock` atomically with it, and appends `audit` if given. Errors:
    /// `Conflict(Version)` when the stored request moved on,
    /// `Conflict(ClaimSlot)` when `next` takes a slot another request holds,
    /// `Conflict(Stock)` when a reservation finds too little stock.
    async fn commit(&self, from: &ClaimRequest, to: &Transition, audit: Option<&AuditEntry>) -> Result<(), StoreError>;

    /// `requestId`s of non-final requests whose lease is free or expired and whose next
    /// attempt is due: what the recovery sweeper resumes.
    async fn due_requests(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RequestId>, StoreError>;

    async fn count_by_status(&self, status: ClaimStatus) -> Result<u64, StoreError>;

    /// The claims of `event_id` counted for its dashboard, by the database (never by reading
    /// the requests): per status; per minute of `createdAt` (UTC, the minute's start) for the
    /// claims created at or after `since`; and, for the claims in a failure status
    /// ([`ClaimStatus::is_failure`]), per status, `failureCode` and `failureReason`. Groups
    /// without claims may be left out; an unknown event has none.
    async fn event_claim_stats(&self, event_id: &EventId, since: DateTime<Utc>) -> Result<ClaimStats, StoreError>;

    /// Whether [`Self::insert_request`] can reserve stock atomically with the insert. A store
    /// that answers `false` receives reservations only through [`Self::commit`], for requests
    /// it already holds.
    fn reserves_with_insert(&self) -> bool {
        true
    }

    /// Settles the reservations a store made in a separate write from the request that should
    /// record them and that are still in flight at `older_than`: kept if the request recorded
    /// them, given back otherwise (after fencing off the writer that made them). Returns how
    /// many it settled. Stores that reserve in the request's own transaction have none.
    async fn settle_stray_reservations(&self, _older_than: DateTime<Utc>) -> Result<usize, StoreError> {
        Ok(0)
    }
}
