-- History retention removes an ended instance with the instances that belong to it (called
-- processes, rollback, cancel and delete instances), found by their parent; and with the
-- bk-sops task and the attachments that name it.
CREATE INDEX instances_parent ON instances (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX bk_tasks_instance ON bk_tasks (instance_id) WHERE instance_id IS NOT NULL;
CREATE INDEX task_attachments_instance ON task_attachments (instance_id) WHERE instance_id IS NOT NULL;
