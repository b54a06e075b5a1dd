-- The businesses (`bk_biz_id`s, comma-separated) an application of the bk-sops API may reach;
-- NULL: every business.
ALTER TABLE bk_apps ADD COLUMN businesses TEXT;
