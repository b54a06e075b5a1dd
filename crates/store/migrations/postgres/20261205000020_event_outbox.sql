-- Messages and signals a process threw, written in the commit of the step that threw them and
-- removed once sent: a server that stopped before sending sends them when it starts again.
CREATE TABLE event_outbox (
    id              TEXT PRIMARY KEY,
    node            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    correlation_key TEXT,
    tenant_id       TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX event_outbox_node ON event_outbox (node, created_at);
