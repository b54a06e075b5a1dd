-- User tasks as people see them (Flowable's runtime and historic tasks), created by the
-- engine or standalone. What people change later (assignee, owner, delegation, priority, …)
-- lives here, not in the instance state. A finished task keeps its row (history).
CREATE TABLE user_tasks (
    id             TEXT PRIMARY KEY,
    instance_id    TEXT,
    model_id       TEXT,
    element        TEXT,
    name           TEXT,
    description    TEXT,
    assignee       TEXT,
    owner          TEXT,
    delegation     TEXT,
    priority       BIGINT NOT NULL,
    due_date       BIGINT,
    category       TEXT,
    form_key       TEXT,
    parent_task_id TEXT,
    tenant_id      TEXT,
    create_time    BIGINT NOT NULL,
    claim_time     BIGINT,
    end_time       BIGINT,
    delete_reason  TEXT,
    version        BIGINT NOT NULL DEFAULT 1
);
-- Open tasks by who works on them, by process and by parent: the task list's filters.
CREATE INDEX user_tasks_open_assignee ON user_tasks (assignee, id) WHERE end_time IS NULL;
CREATE INDEX user_tasks_open ON user_tasks (id) WHERE end_time IS NULL;
CREATE INDEX user_tasks_instance ON user_tasks (instance_id);
CREATE INDEX user_tasks_parent ON user_tasks (parent_task_id);

-- Who may work on a task, or is otherwise involved (Flowable identity links).
CREATE TABLE task_links (
    task_id  TEXT NOT NULL,
    user_id  TEXT,
    group_id TEXT,
    type     TEXT NOT NULL
);
CREATE INDEX task_links_task ON task_links (task_id);
CREATE INDEX task_links_user ON task_links (user_id, task_id);
CREATE INDEX task_links_group ON task_links (group_id, task_id);

-- Task-local variables, typed as Flowable's REST API types them; binary ones keep bytes.
CREATE TABLE task_variables (
    task_id TEXT NOT NULL,
    name    TEXT NOT NULL,
    type    TEXT NOT NULL,
    value   TEXT,
    bytes   BYTEA,
    PRIMARY KEY (task_id, name)
);

-- Comments on tasks and processes, and the tasks' audit events (`kind` tells which).
CREATE TABLE task_comments (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    task_id     TEXT,
    instance_id TEXT,
    author      TEXT,
    time        BIGINT NOT NULL,
    action      TEXT NOT NULL,
    message     TEXT NOT NULL
);
CREATE INDEX task_comments_task ON task_comments (task_id, time);
CREATE INDEX task_comments_instance ON task_comments (instance_id, time);

-- Files and links attached to tasks.
CREATE TABLE task_attachments (
    id          TEXT PRIMARY KEY,
    task_id     TEXT,
    instance_id TEXT,
    name        TEXT NOT NULL,
    description TEXT,
    type        TEXT,
    url         TEXT,
    content     BYTEA,
    author      TEXT,
    time        BIGINT NOT NULL
);
CREATE INDEX task_attachments_task ON task_attachments (task_id);

-- People and groups: who may sign in, and whom candidate groups mean.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    first_name    TEXT,
    last_name     TEXT,
    display_name  TEXT,
    email         TEXT,
    password_hash TEXT
);
CREATE TABLE groups (
    id   TEXT PRIMARY KEY,
    name TEXT,
    type TEXT
);
CREATE TABLE memberships (
    group_id TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);
