-- Timers waiting for their due time, earliest first; a server fires one while it holds the
-- lease (owner, locked_until), and another takes it over once that has ended. A timer start
-- event's timer belongs to no instance but to the model it starts (model_id), and counts its
-- firings (fired) itself.
CREATE TABLE timers (
    record_id    TEXT PRIMARY KEY,
    instance_id  TEXT NOT NULL,
    element      TEXT NOT NULL,
    due          BIGINT NOT NULL,
    owner        TEXT,
    locked_until BIGINT,
    model_id     TEXT,
    fired        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX timers_due ON timers (due);
CREATE INDEX timers_instance ON timers (instance_id);
