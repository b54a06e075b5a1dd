-- Waits for a message, a signal or a trigger: an instance's open record (instance_id), or a
-- message or signal start event of the latest version of a model key (instance_id empty;
-- starts names the key, with its tenant). A message finds its waits by name and key, oldest
-- first; a signal every wait of its name.
CREATE TABLE event_subscriptions (
    record_id       TEXT PRIMARY KEY,
    instance_id     TEXT NOT NULL,
    model_id        TEXT NOT NULL,
    starts          TEXT,
    tenant_id       TEXT,
    element         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    correlation_key TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX event_subscriptions_event ON event_subscriptions (kind, name, correlation_key, created_at);
CREATE INDEX event_subscriptions_instance ON event_subscriptions (instance_id);
CREATE INDEX event_subscriptions_starts ON event_subscriptions (starts);
