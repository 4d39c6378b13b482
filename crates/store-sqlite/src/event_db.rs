//! `event.db`: [`SqliteEventStore`], one handle on the database that implements every port of
//! the events service (each in the file named after it: `events.rs`, `claims.rs`,
//! `ledger.rs`, `activities.rs`, `service_keys.rs`), and its schema, migration by migration.
//!
//! The seed embeds rewards in the event document; here they live in `event_rewards`, one row
//! per reward with the seed's field names, so that a stock change is a single conditional
//! `UPDATE` of one row. A `CHECK` keeps `remainingStock` from ever going below zero.

use bestow_kernel::store::StoreError;

use crate::audit::AUDIT_SCHEMA;
use crate::backup_runs::BACKUP_RUNS_SCHEMA;
use crate::database::Database;

/// Schema of the catalog: events and their rewards.
const CATALOG_SCHEMA: &str = r"
    CREATE TABLE events (
        _id          TEXT PRIMARY KEY,
        eventName    TEXT NOT NULL,
        description  TEXT NOT NULL,
        startDate    TEXT NOT NULL,
        endDate      TEXT NOT NULL,
        conditions   TEXT,
        status       TEXT NOT NULL,
        createdBy    TEXT NOT NULL,
        createdAt    TEXT NOT NULL,
        updatedAt    TEXT NOT NULL,
        timezone     TEXT NOT NULL,
        grantPolicy  TEXT NOT NULL,
        version      INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX events_status_endDate ON events (status, endDate);
    CREATE INDEX events_startDate ON events (startDate, _id);
    CREATE INDEX events_createdAt ON events (createdAt, _id);

    CREATE TABLE event_rewards (
        eventId          TEXT NOT NULL REFERENCES events (_id) ON DELETE CASCADE,
        rewardId         TEXT NOT NULL,
        position         INTEGER NOT NULL,
        rewardType       TEXT NOT NULL,
        rewardName       TEXT NOT NULL,
        details          TEXT NOT NULL,
        quantityPerUser  INTEGER NOT NULL,
        totalStock       INTEGER,
        remainingStock   INTEGER CHECK (remainingStock IS NULL OR remainingStock >= 0),
        PRIMARY KEY (eventId, rewardId)
    ) STRICT;

";

/// Recurring events and reward tiers: both JSON in their seed shape (`tiers[].rewardIds`
/// names rows of `event_rewards`, where every reward's stock lives).
const RECURRENCE_AND_TIERS: &str = r"
    ALTER TABLE events ADD COLUMN recurrence TEXT;
    ALTER TABLE events ADD COLUMN tiers TEXT;
";

/// Schema of activities and service keys.
const ACTIVITIES_SCHEMA: &str = r"
    CREATE TABLE activities (
        _id         TEXT PRIMARY KEY,
        activityId  TEXT NOT NULL UNIQUE,
        userId      TEXT NOT NULL,
        type        TEXT NOT NULL,
        occurredAt  TEXT NOT NULL,
        attributes  TEXT,
        receivedAt  TEXT NOT NULL
    ) STRICT;
    CREATE INDEX activities_user_type_occurredAt ON activities (userId, type, occurredAt, attributes);

    CREATE TABLE service_keys (
        _id           TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        scopes        TEXT NOT NULL,
        secretDigest  TEXT NOT NULL UNIQUE,
        createdAt     TEXT NOT NULL,
        createdBy     TEXT NOT NULL,
        revokedAt     TEXT
    ) STRICT;
    CREATE INDEX service_keys_createdAt ON service_keys (createdAt, _id);
";

/// Schema of claims and of the built-in ledger.
const CLAIMS_SCHEMA: &str = r"
    CREATE TABLE user_reward_requests (
        _id              TEXT PRIMARY KEY,
        requestId        TEXT NOT NULL,
        userId           TEXT NOT NULL,
        eventId          TEXT NOT NULL,
        status           TEXT NOT NULL,
        currentSagaStep  TEXT NOT NULL,
        claimSlot        TEXT,
        leaseOwner       TEXT,
        leaseExpiresAt   TEXT,
        nextAttemptAt    TEXT,
        createdAt        TEXT NOT NULL,
        updatedAt        TEXT NOT NULL,
        version          INTEGER NOT NULL,
        document         TEXT NOT NULL
    ) STRICT;
    CREATE UNIQUE INDEX user_reward_requests_requestId ON user_reward_requests (requestId);
    CREATE UNIQUE INDEX user_reward_requests_claimSlot ON user_reward_requests (claimSlot) WHERE claimSlot IS NOT NULL;
    CREATE INDEX user_reward_requests_user ON user_reward_requests (userId, createdAt);
    CREATE INDEX user_reward_requests_event ON user_reward_requests (eventId, createdAt);
    CREATE INDEX user_reward_requests_status ON user_reward_requests (status, createdAt);

    CREATE TABLE reward_ledger (
        grantKey    TEXT PRIMARY KEY,
        userId      TEXT NOT NULL,
        requestId   TEXT,
        eventId     TEXT,
        rewardId    TEXT,
        rewardName  TEXT,
        rewardType  TEXT,
        details     TEXT,
        quantity    INTEGER,
        grantedAt   TEXT,
        revokedAt   TEXT
    ) STRICT;
    CREATE INDEX reward_ledger_user ON reward_ledger (userId);
";

/// The event dashboard's counts: `failureReason` as a column (kept by every write of a request,
/// filled from the documents here), so that claims per status and per failure reason are
/// counted from one covering index; claims per minute come from `(eventId, createdAt)`.
const CLAIM_STATS: &str = r"
    ALTER TABLE user_reward_requests ADD COLUMN failureReason TEXT;
    UPDATE user_reward_requests SET failureReason = json_extract(document, '$.failureReason');
    CREATE INDEX user_reward_requests_event_status ON user_reward_requests (eventId, status, failureReason);
";

/// A player's activities newest first (`GET /api/v1/activities?userId=`): the page's order
/// straight from the index, ties of `occurredAt` by `_id`.
const ACTIVITY_HISTORY: &str = r"
    CREATE INDEX activities_user_occurredAt ON activities (userId, occurredAt, _id);
";

/// Migrations of `event.db`, in order; each runs once.
const MIGRATIONS: &[&str] = &[
    CATALOG_SCHEMA,
    AUDIT_SCHEMA,
    ACTIVITIES_SCHEMA,
    CLAIMS_SCHEMA,
    RECURRENCE_AND_TIERS,
    CLAIM_STATS,
    ACTIVITY_HISTORY,
    BACKUP_RUNS_SCHEMA,
];

/// The event store on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteEventStore {
    pub(crate) db: Database,
}

impl SqliteEventStore {
    /// Opens `event.db` at `path`, creating or migrating its schema.
    pub fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        Ok(Self { db: Database::open(path, MIGRATIONS)? })
    }
}
