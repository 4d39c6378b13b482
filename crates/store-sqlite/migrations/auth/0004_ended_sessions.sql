-- A user's revoked tokens by time: the sessions that ended lately, read with every standing.

CREATE INDEX refresh_tokens_user_revoked ON refresh_tokens (userId, revokedAt);
