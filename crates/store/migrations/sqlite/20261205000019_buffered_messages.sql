-- Messages that nothing waited for when they came, kept until expires_at (their time to live):
-- the first wait for the name (and key, when the message has one; of the tenant, when it has
-- one) that begins by then takes it.
CREATE TABLE buffered_messages (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    correlation_key TEXT,
    tenant_id       TEXT,
    variables       TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX buffered_messages_name ON buffered_messages (name, created_at);
CREATE INDEX buffered_messages_expiry ON buffered_messages (expires_at);
