-- A task record written again sets its start again (a `reRun` restarts it under its id), and
-- SQLite rewrites every index over a column the write sets, even to the same value: with the
-- start in the index of an instance's records, each write of a record moved its entry there,
-- a page of its own. Keyed by the instance alone, the index stays as it is; an instance's
-- records are few enough to be put in order when read.
DROP INDEX tasks_instance;
CREATE INDEX tasks_instance ON tasks (instance_id);
