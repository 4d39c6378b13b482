-- Accounts and their sessions (refresh tokens).

CREATE TABLE users (
    _id        TEXT PRIMARY KEY,
    username   TEXT NOT NULL COLLATE NOCASE,
    password   TEXT NOT NULL,
    roles      TEXT NOT NULL,
    createdAt  TEXT NOT NULL,
    updatedAt  TEXT NOT NULL,
    isActive   INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_username ON users (username COLLATE NOCASE);
CREATE INDEX users_createdAt ON users (createdAt, _id);

CREATE TABLE refresh_tokens (
    _id          TEXT PRIMARY KEY,
    familyId     TEXT NOT NULL,
    userId       TEXT NOT NULL REFERENCES users (_id),
    tokenDigest  TEXT NOT NULL,
    issuedAt     TEXT NOT NULL,
    expiresAt    TEXT NOT NULL,
    rotatedAt    TEXT,
    revokedAt    TEXT
) STRICT;
CREATE UNIQUE INDEX refresh_tokens_digest ON refresh_tokens (tokenDigest);
CREATE INDEX refresh_tokens_family ON refresh_tokens (familyId);
CREATE INDEX refresh_tokens_user ON refresh_tokens (userId);
