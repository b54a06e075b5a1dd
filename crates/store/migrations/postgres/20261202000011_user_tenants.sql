-- The tenant a user belongs to: they see and act within it only (administrators aside).
ALTER TABLE users ADD COLUMN tenant_id TEXT;
