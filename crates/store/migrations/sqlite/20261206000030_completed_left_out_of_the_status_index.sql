-- Completed is final and, in a store that has run a while, most of the instances: their
-- entries in the status index were the bulk of it, and the end of each instance moved its
-- entry from `running` to `completed`, two pages of every commit that completes instances
-- out of their start order (a message to one of many waiting instances). Completed instances
-- are listed in id order by the key itself, testing each row's status, which finds them at
-- once where they are most; the index keeps the statuses that are looked for among many.
-- Queries name the index's condition (`status <> 'completed'`) beside their own status test,
-- which SQLite needs to use a partial index.
DROP INDEX instances_status;
CREATE INDEX instances_status ON instances (status, id) WHERE status <> 'completed';
