-- PostgreSQL schema; keep in step with migrations/sqlite.
-- Models: one row per deployed process definition version.
CREATE TABLE models (
    id            TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL,
    key           TEXT NOT NULL,
    name          TEXT,
    version       BIGINT NOT NULL,
    source        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (key, version)
);
CREATE INDEX models_deployment ON models (deployment_id);

-- Process instances; `state` is the engine's whole instance state as JSON.
CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    model_id     TEXT NOT NULL REFERENCES models (id),
    model_key    TEXT NOT NULL,
    name         TEXT NOT NULL,
    status       TEXT NOT NULL,
    variables    TEXT NOT NULL,
    start_time   BIGINT NOT NULL,
    end_time     BIGINT,
    outputs      TEXT,
    final_vars   TEXT,
    failure      TEXT,
    state        TEXT NOT NULL
);
-- Instance ids are UUIDv7, ordered by time: listing newest first walks the key.
CREATE INDEX instances_status ON instances (status, id);
CREATE INDEX instances_key ON instances (model_key, id);

-- Task records: one per run of a task-like activity. The current attempt's id is its
-- task_id, so both lookups use the key.
CREATE TABLE tasks (
    id          TEXT PRIMARY KEY,
    task_id     TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    element     TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    namespace   TEXT,
    stone       TEXT,
    create_time BIGINT NOT NULL,
    end_time    BIGINT,
    status      TEXT NOT NULL,
    reason      TEXT,
    params      TEXT,
    outputs     TEXT,
    progress    BIGINT
);
CREATE INDEX tasks_instance ON tasks (instance_id, create_time);

-- Stone jobs waiting for (or held by) an executor.
CREATE TABLE jobs (
    record_id   TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    stone       TEXT NOT NULL,
    params      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX jobs_stone ON jobs (stone, created_at);
