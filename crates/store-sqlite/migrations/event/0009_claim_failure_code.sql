-- The event dashboard groups failed claims by `failureCode`, a stable code kept beside the prose
-- `failureReason` (which names rewards and quotes other systems, so its groups fragment). As a
-- column, kept by every write of a request and filled from the documents here (documents
-- written before codes were recorded have none: the dashboard counts those per status). One
-- covering index serves the counts per status, code and reason; it replaces the one without
-- the code.

ALTER TABLE user_reward_requests ADD COLUMN failureCode TEXT;
UPDATE user_reward_requests SET failureCode = json_extract(document, '$.failureCode');
CREATE INDEX user_reward_requests_event_status_code
    ON user_reward_requests (eventId, status, failureCode, failureReason);
DROP INDEX user_reward_requests_event_status;
