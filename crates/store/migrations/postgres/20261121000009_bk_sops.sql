-- bk-sops templates: a pipeline tree deployed as a model, under bk-sops' numeric id.
CREATE TABLE bk_templates (
    id                   BIGSERIAL PRIMARY KEY,
    biz_id               BIGINT NOT NULL,
    name                 TEXT NOT NULL,
    description          TEXT,
    creator              TEXT NOT NULL,
    model_id             TEXT NOT NULL,
    pipeline_template_id TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    edited_at            BIGINT NOT NULL
);
CREATE INDEX bk_templates_biz ON bk_templates (biz_id, id);

-- bk-sops tasks: created from a template (or a raw tree) with constants; started, a task is
-- a process instance of its model.
CREATE TABLE bk_tasks (
    id            BIGSERIAL PRIMARY KEY,
    biz_id        BIGINT NOT NULL,
    template_id   BIGINT,
    name          TEXT NOT NULL,
    creator       TEXT NOT NULL,
    executor      TEXT,
    model_id      TEXT NOT NULL,
    instance_id   TEXT,
    constants     TEXT NOT NULL,
    create_method TEXT NOT NULL,
    flow_type     TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    started_at    BIGINT
);
CREATE INDEX bk_tasks_biz ON bk_tasks (biz_id, id);
