-- The audit log, the same table in auth.db and event.db (step 2 of both).

CREATE TABLE audit_logs (
    _id            TEXT PRIMARY KEY,
    actorId        TEXT NOT NULL,
    actorUsername  TEXT NOT NULL,
    action         TEXT NOT NULL,
    targetType     TEXT NOT NULL,
    targetId       TEXT NOT NULL,
    before         TEXT,
    after          TEXT,
    at             TEXT NOT NULL,
    requestId      TEXT
) STRICT;
CREATE INDEX audit_logs_at ON audit_logs (at, _id);
CREATE INDEX audit_logs_actor ON audit_logs (actorId, at);
CREATE INDEX audit_logs_target ON audit_logs (targetId, at);
