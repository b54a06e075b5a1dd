-- bk-sops periodic tasks: a template's task made and started each time a crontab comes due
-- while the periodic task is enabled (its timer in `timers` is `periodic:<id>`).
CREATE TABLE bk_periodic_tasks (
    id              BIGSERIAL PRIMARY KEY,
    biz_id          BIGINT NOT NULL,
    template_id     BIGINT NOT NULL,
    name            TEXT NOT NULL,
    creator         TEXT NOT NULL,
    model_id        TEXT NOT NULL,
    constants       TEXT NOT NULL,
    cron            TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL,
    total_run_count BIGINT NOT NULL DEFAULT 0,
    last_run_at     BIGINT,
    editor          TEXT,
    edited_at       BIGINT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX bk_periodic_tasks_biz ON bk_periodic_tasks (biz_id, id);
