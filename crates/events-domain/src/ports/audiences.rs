//! The storage port of audiences (`audiences`, `audience_members`), player properties
//! (`player_properties`) and sticky memberships (`audience_sticky`), all in `event_db`.
//!
//! LIST members are stored per generation (`audiences.memberGeneration` names the one that
//! counts): an upload stages a new generation in batches and the audience switches to it with
//! [`AudienceStore::replace_audience`]'s compare-and-set, so readers never see half an upload
//! and a refused one is discarded without touching the members that count.

use async_trait::async_trait;
use bestow_kernel::audit::AuditEntry;
use bestow_kernel::ids::{AudienceId, EventId, UserId};
use bestow_kernel::page::{Page, PageRequest};
use bestow_kernel::store::StoreError;
use chrono::{DateTime, Utc};

use crate::audience::properties::PlayerProperties;
use crate::audience::{Audience, AudienceEstimate, AudienceUsers};

/// What a request judging audiences reads of one player at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayerSnapshot {
    /// The player's stored properties, when asked for and stored.
    pub properties: Option<PlayerProperties>,
    /// The LIST audiences asked about that have the player as a member.
    pub lists: Vec<AudienceId>,
}

/// Storage of audiences, their members, player properties and sticky memberships.
#[async_trait]
pub trait AudienceStore: Send + Sync {
    /// The player's stored properties; `None` before any was set.
    async fn player_properties(&self, user_id: &UserId) -> Result<Option<PlayerProperties>, StoreError>;

    /// Stores `properties` if the stored version is `expected_version` (0: none stored yet),
    /// with `audit`, in one transaction; `Conflict(Version)` otherwise.
    async fn write_player_properties(
        &self,
        properties: &PlayerProperties,
        expected_version: i64,
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;

    /// Up to `limit` stored players' properties with a user id greater than `after`, by user id:
    /// the known players an estimate scans.
    async fn player_properties_after(
        &self,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<PlayerProperties>, StoreError>;

    /// How many players have stored properties.
    async fn count_player_properties(&self) -> Result<u64, StoreError>;

    /// Inserts a new audience with its audit entry.
    async fn insert_audience(&self, audience: &Audience, audit: &AuditEntry) -> Result<(), StoreError>;

    async fn audience(&self, id: &AudienceId) -> Result<Option<Audience>, StoreError>;

    /// The audiences among `ids` that exist, in no set order.
    async fn audiences(&self, ids: &[AudienceId]) -> Result<Vec<Audience>, StoreError>;

    /// One page of audiences, newest first.
    async fn list_audiences(&self, page: PageRequest) -> Result<Page<Audience>, StoreError>;

    /// Replaces the stored audience if its version is `expected_version` (`Conflict(Version)`
    /// otherwise, `NotFound` if absent); with `audit` when given. The stored `estimate` is kept:
    /// only [`AudienceStore::record_estimate`] writes it, so a copy read before a run's last
    /// write cannot put back an older progress. `memberCount` is written only with another
    /// `memberGeneration` (see `add_member`). A switch to another generation may first move
    /// its staged members into place (seconds for a million), so readers find all of them.
    async fn replace_audience(
        &self,
        audience: &Audience,
        expected_version: i64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError>;

    /// Deletes the audience (and its members of every generation) if its version is
    /// `expected_version`.
    async fn delete_audience(
        &self,
        id: &AudienceId,
        expected_version: i64,
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;

    /// Who uses the audience: events whose `audience` names it, audiences whose rule does.
    async fn audience_users(&self, id: &AudienceId) -> Result<AudienceUsers, StoreError>;

    /// Adds `user_ids` to generation `generation` of the audience's members, skipping ids
    /// already there; returns how many were new. One call is one batch (one transaction). A
    /// generation the audience does not count yet may be held back (not read by
    /// `members_after`, `list_members`, `memberships`) until the audience switches to it; one
    /// upload stages a generation, one batch at a time.
    async fn stage_members(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        user_ids: &[UserId],
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Deletes the members of the audience in every generation but `keep` (all of them when
    /// `keep` is `None`), in batches; returns how many. Run after an upload switched the
    /// audience to `keep`: an upload staging meanwhile loses its compare-and-set anyway.
    async fn discard_members(&self, audience_id: &AudienceId, keep: Option<&str>) -> Result<u64, StoreError>;

    /// Deletes the members of generation `generation` only (a refused upload's), in batches;
    /// returns how many.
    async fn discard_generation(&self, audience_id: &AudienceId, generation: &str) -> Result<u64, StoreError>;

    /// Adds one member to the audience's current generation, moving `memberCount` with it, if
    /// the audience's generation is still `generation` (`Conflict(Version)` otherwise,
    /// `NotFound` if absent); `false` when it was already there. The audience's `version` and
    /// `updatedAt` stay: one member more is not an edit an `If-Match` should lose to.
    async fn add_member(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        user_id: &UserId,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// Removes one member like [`AudienceStore::add_member`] adds one; `false` when absent.
    async fn remove_member(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        user_id: &UserId,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// Up to `limit` members of a generation with a user id greater than `after`, by user id.
    async fn members_after(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<UserId>, StoreError>;

    /// One page of a generation's members, by user id, with `total` = the members counted.
    async fn list_members(
        &self,
        audience_id: &AudienceId,
        generation: &str,
        page: PageRequest,
    ) -> Result<Page<UserId>, StoreError>;

    /// The LIST audiences among `lists` (each with its current generation) that have
    /// `user_id` as a member: one indexed read.
    async fn memberships(
        &self,
        user_id: &UserId,
        lists: &[(AudienceId, String)],
    ) -> Result<Vec<AudienceId>, StoreError>;

    /// The player's properties (when `properties`) and [`AudienceStore::memberships`] among
    /// `lists`: what a player's path reads, in one round trip where the store can.
    async fn player_snapshot(
        &self,
        user_id: &UserId,
        properties: bool,
        lists: &[(AudienceId, String)],
    ) -> Result<PlayerSnapshot, StoreError> {
        let stored = async { if properties { self.player_properties(user_id).await } else { Ok(None) } };
        let member_of =
            async { if lists.is_empty() { Ok(Vec::new()) } else { self.memberships(user_id, lists).await } };
        let (stored, member_of) = futures_util::future::join(stored, member_of).await;
        Ok(PlayerSnapshot { properties: stored?, lists: member_of? })
    }

    /// The events among `events` the player is stuck to (sticky membership recorded).
    async fn sticky_events(&self, user_id: &UserId, events: &[EventId]) -> Result<Vec<EventId>, StoreError>;

    /// Records that the player was in the sticky event's audience at `at`; a second record is
    /// a no-op.
    async fn stick(&self, user_id: &UserId, event_id: &EventId, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Writes the audience's `estimate` (a background job's progress) without moving its
    /// version, when no estimate is stored, the stored one is of the same run (same `jobId`),
    /// or it is of an older run: a `startedAt` before this one's, or the same `startedAt` and a
    /// smaller `jobId`. So a new run replaces any older one, and a late progress write of an
    /// older run never overwrites a newer run's. `false` (nothing written) when a newer run's
    /// estimate is stored or the audience is absent.
    async fn record_estimate(&self, id: &AudienceId, estimate: &AudienceEstimate) -> Result<bool, StoreError>;
}
