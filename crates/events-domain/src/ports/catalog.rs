//! The storage port of the event catalog (`event_db`).
//!
//! Writes are compare-and-set on the event's `version`, and each commits with its audit entry.
//! Stock counters move only by single conditional updates ([`EventStore::top_up`] here, stock
//! reservations in the claim saga), never by rewriting a whole event read earlier.

use async_trait::async_trait;
use bestow_kernel::audit::{AuditEntry, AuditQuery};
use bestow_kernel::ids::EventId;
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::{Conflict, StoreError};
use chrono::{DateTime, Utc};

use crate::event::Event;
use crate::lifecycle::EventStatus;
use crate::view::event_snapshot;

/// `add` units for both stock counters of one limited reward at `at`, audited as `audit`.
#[derive(Debug, Clone)]
pub struct TopUp {
    pub event_id: EventId,
    pub reward_id: String,
    pub add: i64,
    pub at: DateTime<Utc>,
    /// The entry to commit with the top-up, without its `before` and `after`: the store knows
    /// the after-state only inside the atomic increment.
    pub audit: AuditEntry,
}

impl TopUp {
    /// The audit entry of the top-up, completed with the event before and after it.
    pub fn audit_entry(&self, before: &Event, after: &Event) -> AuditEntry {
        AuditEntry { before: Some(event_snapshot(before)), after: Some(event_snapshot(after)), ..self.audit.clone() }
    }

    /// Why a top-up that moved no counter was refused, given the event before it: the reward
    /// has unlimited stock, or the event has no such reward.
    pub fn refusal(&self, before: &Event) -> StoreError {
        match before.reward(&self.reward_id) {
            Some(_) => StoreError::Conflict(Conflict::UnlimitedStock),
            None => StoreError::NotFound,
        }
    }
}

/// Sort keys of the event list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventSortKey {
    #[default]
    CreatedAt,
    StartDate,
}

/// Filters of the event list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these statuses; `None` for all.
    pub statuses: Option<Vec<EventStatus>>,
    /// Only events with `startDate <= activeAt < endDate`.
    pub active_at: Option<DateTime<Utc>>,
    /// Case-insensitive substring of `eventName`.
    pub name_contains: Option<String>,
    pub sort: EventSortKey,
    pub descending: bool,
}

/// Storage of events, their embedded rewards and the events audit log.
#[async_trait]
pub trait EventStore: Send + Sync {
    async fn ping(&self) -> Result<(), StoreError>;

    /// Inserts a new event with its rewards and its audit entry.
    async fn insert_event(&self, event: &Event, audit: &AuditEntry) -> Result<(), StoreError>;

    async fn event(&self, id: &EventId) -> Result<Option<Event>, StoreError>;

    async fn list_events(&self, filter: &EventFilter, page: PageRequest) -> Result<Page<Event>, StoreError>;

    /// Replaces the stored event by `event` if its stored version is `expected_version`
    /// (`Conflict(Conflict::Version)` otherwise, `NotFound` if absent). Rewards absent from `event` are
    /// removed and new ones inserted. Stock counters of existing rewards are written only while
    /// the stored event is DRAFT: afterwards claims move them and a stale copy must not.
    async fn replace_event(&self, event: &Event, expected_version: i64, audit: &AuditEntry) -> Result<(), StoreError>;

    /// Deletes the event if its stored version is `expected_version`.
    async fn delete_event(&self, id: &EventId, expected_version: i64, audit: &AuditEntry) -> Result<(), StoreError>;

    /// Adds `add` units to both `totalStock` and `remainingStock` of a limited reward in one
    /// conditional update, bumps the event's version, and returns the event after it.
    /// `Conflict(UnlimitedStock)` for unlimited stock, `NotFound` for an unknown event or reward.
    async fn top_up(&self, top_up: &TopUp) -> Result<Event, StoreError>;

    /// Ids of the ACTIVE or INACTIVE events whose `endDate <= now`: what the expiry sweep ends
    /// (each with [`EventStore::replace_event`], as the domain decides).
    async fn due_to_expire(&self, now: DateTime<Utc>) -> Result<Vec<EventId>, StoreError>;

    /// One page of events-side audit entries, newest first.
    async fn list_audit(&self, query: &AuditQuery, page: PageRequest) -> Result<Page<AuditEntry>, StoreError>;
}
