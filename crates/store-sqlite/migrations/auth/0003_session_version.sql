-- `sessionVersion`: moves when an account's sessions must end (issue-13 hardening).

ALTER TABLE users ADD COLUMN sessionVersion INTEGER NOT NULL DEFAULT 0;
