-- The catalog: events and their rewards.
--
-- The seed embeds rewards in the event document; here they live in `event_rewards`, one row per
-- reward with the seed's field names, so that a stock change is a single conditional `UPDATE` of
-- one row. A `CHECK` keeps `remainingStock` from ever going below zero.

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
