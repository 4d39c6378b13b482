-- Audiences (third wave): who an event is shown to. `events.audience` holds the event's target
-- as JSON (`{"include": [...], "exclude": [...], "sticky": bool}`), NULL for every player.

ALTER TABLE events ADD COLUMN audience TEXT;

-- What the game's servers say of a player: `properties` a JSON object of name to value, merged
-- by compare-and-set on `version`. Paged by `_id` when an estimate scans the known players.
CREATE TABLE player_properties (
    _id         TEXT PRIMARY KEY,
    properties  TEXT NOT NULL,
    updatedAt   TEXT NOT NULL,
    version     INTEGER NOT NULL
) STRICT;

-- `rule` is the RULE audience's tree (NULL for LIST), `references` the audiences it names
-- through IN_AUDIENCE (a JSON array, so "who uses this audience" never parses rules).
-- `memberGeneration` names the LIST members that count; `estimate` is the latest size
-- estimate, written by its job outside the compare-and-set on `version`.
CREATE TABLE audiences (
    _id               TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('RULE', 'LIST')),
    rule              TEXT,
    "references"      TEXT NOT NULL,
    memberCount       INTEGER NOT NULL CHECK (memberCount >= 0),
    memberGeneration  TEXT NOT NULL,
    estimate          TEXT,
    createdBy         TEXT NOT NULL,
    createdAt         TEXT NOT NULL,
    updatedAt         TEXT NOT NULL,
    version           INTEGER NOT NULL
) STRICT;
CREATE INDEX audiences_createdAt ON audiences (createdAt, _id);

-- LIST members, per generation: an upload fills a new generation beside the current one, so a
-- refused upload is discarded without touching the members that count. No foreign key: a
-- deleted audience's members are removed in batches after its row, never in one long
-- transaction. WITHOUT ROWID: the key is the row, each member stored once in key order.
-- Memberships are point reads of this key (a player is asked about a few lists at a time), so
-- no second index doubles the cost of every upload.
CREATE TABLE audience_members (
    audienceId  TEXT NOT NULL,
    generation  TEXT NOT NULL,
    userId      TEXT NOT NULL,
    addedAt     TEXT NOT NULL,
    PRIMARY KEY (audienceId, generation, userId)
) STRICT, WITHOUT ROWID;

-- An upload's ids as they arrive, for a generation the audience does not count yet. Appending
-- is cheap, where inserting a million ids in the CSV's order into the key above would rewrite
-- most of its pages at every batch; the generation moves into `audience_members` in user-id
-- order, in batches, when the audience switches to it.
CREATE TABLE audience_staging (
    audienceId  TEXT NOT NULL,
    generation  TEXT NOT NULL,
    userId      TEXT NOT NULL,
    addedAt     TEXT NOT NULL
) STRICT;
CREATE INDEX audience_staging_generation ON audience_staging (audienceId, generation);

-- Sticky membership: the player was in the event's audience when they first saw or claimed it,
-- and stays in until it ends. The one membership fact stored (audiences are evaluated).
CREATE TABLE audience_sticky (
    userId   TEXT NOT NULL,
    eventId  TEXT NOT NULL,
    stuckAt  TEXT NOT NULL,
    PRIMARY KEY (userId, eventId)
) STRICT, WITHOUT ROWID;
