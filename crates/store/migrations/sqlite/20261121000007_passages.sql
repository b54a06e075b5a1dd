-- Events and gateways an instance's tokens passed (they take no time): with the task
-- records, the instance's activity history. One b-tree, keyed by instance then time-ordered id.
CREATE TABLE passages (
    instance_id TEXT NOT NULL,
    id          TEXT NOT NULL,
    element     TEXT NOT NULL,
    name        TEXT,
    kind        TEXT NOT NULL,
    time        INTEGER NOT NULL,
    PRIMARY KEY (instance_id, id)
) WITHOUT ROWID;

-- Open task records by instance: the child executions of running instances.
CREATE INDEX tasks_open ON tasks (instance_id) WHERE end_time IS NULL;
