-- Waits clustered on their record id, without a rowid b-tree beside it, and start events'
-- waits alone in the index of `starts`: a message that reaches an instance deletes its wait
-- from three b-trees where it deleted it from five, each at a page of its own.
CREATE TABLE event_subscriptions_clustered (
    record_id       TEXT NOT NULL PRIMARY KEY,
    instance_id     TEXT NOT NULL,
    model_id        TEXT NOT NULL,
    starts          TEXT,
    tenant_id       TEXT,
    element         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    correlation_key TEXT,
    created_at      BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO event_subscriptions_clustered
    SELECT record_id, instance_id, model_id, starts, tenant_id, element, kind, name, correlation_key, created_at
    FROM event_subscriptions;
DROP TABLE event_subscriptions;
ALTER TABLE event_subscriptions_clustered RENAME TO event_subscriptions;
CREATE INDEX event_subscriptions_event ON event_subscriptions (kind, name, correlation_key, created_at);
CREATE INDEX event_subscriptions_instance ON event_subscriptions (instance_id);
CREATE INDEX event_subscriptions_starts ON event_subscriptions (starts) WHERE starts IS NOT NULL;
