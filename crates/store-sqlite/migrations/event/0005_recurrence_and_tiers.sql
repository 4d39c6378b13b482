-- Recurring events and reward tiers: both JSON in their seed shape (`tiers[].rewardIds` names
-- rows of `event_rewards`, where every reward's stock lives).

ALTER TABLE events ADD COLUMN recurrence TEXT;
ALTER TABLE events ADD COLUMN tiers TEXT;
