-- bk-sops clocked tasks: a template's task made and started once, at its planned time (its
-- timer in `timers` is `clocked:<id>`); `state` is not_started, started or start_failed.
CREATE TABLE bk_clocked_tasks (
    id              BIGSERIAL PRIMARY KEY,
    biz_id          BIGINT NOT NULL,
    template_id     BIGINT NOT NULL,
    template_name   TEXT NOT NULL,
    task_name       TEXT NOT NULL,
    creator         TEXT NOT NULL,
    editor          TEXT NOT NULL,
    model_id        TEXT NOT NULL,
    task_params     TEXT NOT NULL,
    plan_start_time BIGINT NOT NULL,
    state           TEXT NOT NULL,
    task_id         BIGINT,
    created_at      BIGINT NOT NULL,
    edited_at       BIGINT NOT NULL
);
CREATE INDEX bk_clocked_tasks_biz ON bk_clocked_tasks (biz_id, id);
