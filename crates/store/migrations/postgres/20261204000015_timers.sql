-- Timers waiting for their due time, earliest first; a server fires one while it holds the
-- lease (owner, locked_until), and another takes it over once that has ended.
CREATE TABLE timers (
    record_id    TEXT PRIMARY KEY,
    instance_id  TEXT NOT NULL,
    element      TEXT NOT NULL,
    due          BIGINT NOT NULL,
    owner        TEXT,
    locked_until BIGINT
);
CREATE INDEX timers_due ON timers (due);
CREATE INDEX timers_instance ON timers (instance_id);
