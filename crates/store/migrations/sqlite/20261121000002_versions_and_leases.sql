-- Every write of an instance bumps its version; a write based on an older version is refused,
-- so servers sharing a database never overwrite each other's steps.
ALTER TABLE instances ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
-- A job runs on the server that holds its lease; an expired lease lets another take it over.
ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN locked_until INTEGER;
