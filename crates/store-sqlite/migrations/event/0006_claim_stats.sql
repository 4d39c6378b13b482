-- The event dashboard's counts: `failureReason` as a column (kept by every write of a request,
-- filled from the documents here), so that claims per status and per failure reason are counted
-- from one covering index; claims per minute come from `(eventId, createdAt)`.

ALTER TABLE user_reward_requests ADD COLUMN failureReason TEXT;
UPDATE user_reward_requests SET failureReason = json_extract(document, '$.failureReason');
CREATE INDEX user_reward_requests_event_status ON user_reward_requests (eventId, status, failureReason);
