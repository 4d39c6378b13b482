-- Audiences (third wave): who an event is shown to. `events.audience` holds the event's target
-- as JSON (`{"include": [...], "exclude": [...], "sticky": bool}`), NULL for every player.

ALTER TABLE events ADD COLUMN audience TEXT;
