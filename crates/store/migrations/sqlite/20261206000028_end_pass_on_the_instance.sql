-- The pass that completed an instance (its end event, as it ended) kept on the instance's row,
-- which the same commit writes anyway, instead of a row of `passages`: the instance's first
-- pass filled the page its last one would go to, so that insert split a page one time in two.
-- Activities list it with the passes (see `ACTIVITIES`).
ALTER TABLE instances ADD COLUMN end_pass TEXT;
ALTER TABLE instances ADD COLUMN end_pass_name TEXT;
ALTER TABLE instances ADD COLUMN end_pass_kind TEXT;
