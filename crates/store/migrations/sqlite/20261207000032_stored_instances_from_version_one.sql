-- A row's first write is at version 1 and goes to the store as a plain insert, without the
-- upsert's speculative check (see `new_first`). Rows stored before versions were counted,
-- still at 0, are lifted to 1: their next write would be at 1, and taken for a first.
UPDATE instances SET version = 1 WHERE version = 0;
