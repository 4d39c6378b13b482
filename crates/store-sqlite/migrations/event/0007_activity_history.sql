-- A player's activities newest first (`GET /api/v1/activities?userId=`): the page's order
-- straight from the index, ties of `occurredAt` by `_id`.

CREATE INDEX activities_user_occurredAt ON activities (userId, occurredAt, _id);
