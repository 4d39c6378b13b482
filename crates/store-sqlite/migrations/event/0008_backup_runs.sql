-- One row per backup `bestow admin backup` completed, read for the backup-age gauge. Also run by
-- `record_backup` on an event.db an older server made, whichever comes first (hence `IF NOT EXISTS`).

CREATE TABLE IF NOT EXISTS backup_runs (
    startedAt   TEXT NOT NULL,
    finishedAt  TEXT NOT NULL,
    location    TEXT NOT NULL,
    bytes       INTEGER NOT NULL
) STRICT;
