-- Claims (`user_reward_requests`, the saga's document as JSON beside the columns it is found
-- by) and the built-in ledger.

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
