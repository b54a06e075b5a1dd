-- The next id of each kind of bk-sops row: a template or task takes its id before the commit
-- that writes it, so that a task created and started in one commit names its own id (its
-- instance's business key) and answers it.
CREATE TABLE bk_sequences (
    name    TEXT PRIMARY KEY,
    next_id BIGINT NOT NULL
);
