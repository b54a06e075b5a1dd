-- Rollback, cancel and delete instances, and the links between them and their process.
ALTER TABLE instances ADD COLUMN kind TEXT NOT NULL DEFAULT 'process';
ALTER TABLE instances ADD COLUMN parent_id TEXT;
ALTER TABLE instances ADD COLUMN rollback_id TEXT;
ALTER TABLE instances ADD COLUMN cancel_id TEXT;
ALTER TABLE instances ADD COLUMN delete_id TEXT;
-- What a job asks its stone to do, what the task put out before (for monitor, rollback,
-- cancel and delete), and how many more times a failing worker may retry it.
ALTER TABLE jobs ADD COLUMN action TEXT NOT NULL DEFAULT 'start';
ALTER TABLE jobs ADD COLUMN outputs TEXT;
ALTER TABLE jobs ADD COLUMN retries BIGINT;
