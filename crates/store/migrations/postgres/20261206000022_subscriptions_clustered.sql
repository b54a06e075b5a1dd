-- Start events' waits alone in the index of `starts`: a message that reaches an instance no
-- longer deletes its wait from an index entry it never needed.
DROP INDEX event_subscriptions_starts;
CREATE INDEX event_subscriptions_starts ON event_subscriptions (starts) WHERE starts IS NOT NULL;
