-- Activities and service keys.

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
