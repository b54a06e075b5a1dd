-- An instance's wait kept on the task record that waits (the catch event, receive task or
-- boundary event), with a partial index of the records that wait: a delivered message
-- changes the record it closes anyway and deletes one index entry, where it also deleted a
-- row of its own. Start events' waits, which have no record, keep a table of their own;
-- `event_subscriptions` is the view of both that every read goes through.
ALTER TABLE tasks ADD COLUMN wait_kind TEXT;
ALTER TABLE tasks ADD COLUMN wait_name TEXT;
ALTER TABLE tasks ADD COLUMN wait_key TEXT;
ALTER TABLE tasks ADD COLUMN wait_model TEXT;
ALTER TABLE tasks ADD COLUMN wait_tenant TEXT;
ALTER TABLE tasks ADD COLUMN wait_since BIGINT;
UPDATE tasks SET wait_kind = s.kind, wait_name = s.name, wait_key = s.correlation_key, wait_model = s.model_id,
    wait_tenant = s.tenant_id, wait_since = s.created_at
    FROM event_subscriptions s WHERE s.record_id = tasks.id AND s.instance_id <> '';
CREATE TABLE start_subscriptions (
    record_id       TEXT PRIMARY KEY,
    model_id        TEXT NOT NULL,
    starts          TEXT,
    tenant_id       TEXT,
    element         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    correlation_key TEXT,
    created_at      BIGINT NOT NULL
);
INSERT INTO start_subscriptions
    SELECT record_id, model_id, starts, tenant_id, element, kind, name, correlation_key, created_at
    FROM event_subscriptions WHERE instance_id = '';
DROP TABLE event_subscriptions;
CREATE INDEX start_subscriptions_event ON start_subscriptions (kind, name, correlation_key, created_at);
CREATE INDEX start_subscriptions_starts ON start_subscriptions (starts);
CREATE INDEX tasks_waiting ON tasks (wait_kind, wait_name, wait_key, wait_since) WHERE wait_kind IS NOT NULL;
CREATE VIEW event_subscriptions AS
    SELECT record_id, '' AS instance_id, model_id, starts, tenant_id, element, kind, name, correlation_key, created_at
    FROM start_subscriptions
    UNION ALL
    SELECT id, instance_id, wait_model, NULL, wait_tenant, element, wait_kind, wait_name, wait_key, wait_since
    FROM tasks WHERE wait_kind IS NOT NULL;
