-- Open task records are found through the running instances that hold them (an instance has
-- a handful of records, read by `tasks_instance`), not through an index of their own: each
-- record that closed moved out of that index, a page of its own per message or stone step.
DROP INDEX tasks_open;
