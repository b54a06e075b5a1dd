-- Most instances have no business key and most user tasks no parent: their indexes held an
-- entry under NULL for each, written with every instance and task and never read (a query
-- asks for a key or a parent by value). Only the ones that have one are indexed now.
DROP INDEX instances_business_key;
CREATE INDEX instances_business_key ON instances (business_key) WHERE business_key IS NOT NULL;
DROP INDEX user_tasks_parent;
CREATE INDEX user_tasks_parent ON user_tasks (parent_task_id) WHERE parent_task_id IS NOT NULL;
