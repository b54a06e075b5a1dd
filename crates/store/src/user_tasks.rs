//! User tasks as people work on them: the rows, the queries and the trait that keeps them.
//!
//! Every write goes through a [`WriteBatch`](crate::WriteBatch): the engine creates and closes a
//! process's user tasks; what people change in between (assignee, owner, delegation, priority,
//! links, local variables, comments, attachments) is a [`ChangedUserTask`], written only on the
//! version of the row it read, so that two concurrent changes never both apply.

use crate::{Page, Result};

/// A user task: open while `end_time` is none, history after.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserTaskRow {
    /// Its id; for a process's task, the engine's task record id.
    pub id: String,
    /// The process instance it belongs to; none for a standalone task.
    pub instance_id: Option<String>,
    /// The model (process definition) of that instance.
    pub model_id: Option<String>,
    /// The model element (Flowable's `taskDefinitionKey`).
    pub element: Option<String>,
    /// Its name.
    pub name: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// Who works on it.
    pub assignee: Option<String>,
    /// Who is responsible for it.
    pub owner: Option<String>,
    /// `pending` while delegated, `resolved` once the delegate gave it back.
    pub delegation: Option<String>,
    /// How urgent it is.
    pub priority: i64,
    /// When it is due (milliseconds since the epoch).
    pub due_date: Option<i64>,
    /// Its category.
    pub category: Option<String>,
    /// The form a client shows for it.
    pub form_key: Option<String>,
    /// The task it is a subtask of.
    pub parent_task_id: Option<String>,
    /// Its tenant.
    pub tenant_id: Option<String>,
    /// When it was created.
    pub create_time: i64,
    /// When its assignee last took it.
    pub claim_time: Option<i64>,
    /// When it was completed or deleted.
    pub end_time: Option<i64>,
    /// Why it ended other than by completion (`deleted`, `canceled`, a caller's reason).
    pub delete_reason: Option<String>,
    /// Bumped by every change; a change names the version it read.
    pub version: i64,
}

/// A person or group linked to a task: a candidate, or otherwise involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLink {
    /// The task.
    pub task_id: String,
    /// The user, for a user link.
    pub user_id: Option<String>,
    /// The group, for a group link.
    pub group_id: Option<String>,
    /// `candidate`, `participant`, or any type a client names.
    pub kind: String,
}

/// A task created by the engine, with its candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUserTask {
    /// The task.
    pub row: UserTaskRow,
    /// Its candidate users and groups.
    pub links: Vec<TaskLink>,
}

/// A process's user task the engine closed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedUserTask {
    /// The task.
    pub id: String,
    /// When.
    pub end_time: i64,
    /// Why, when not by completion.
    pub reason: Option<String>,
}

/// A change people made to a task and to what hangs on it, as one write of a commit: the row
/// at its new version (one above the version it read; else the commit fails with
/// [`StoreError::Conflict`](crate::StoreError::Conflict) naming the task), then its comments
/// and audit events, then the writes of its parts in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangedUserTask {
    /// The task as changed.
    pub row: UserTaskRow,
    /// Comments and audit events it adds.
    pub comments: Vec<CommentRow>,
    /// What it changes of the task's links, variables, comments and attachments.
    pub parts: Vec<TaskPartWrite>,
}

/// A write of what hangs on a task (the task of the [`ChangedUserTask`] it belongs to). The
/// rule it passed (a variable created did not exist, a comment deleted is its author's) was
/// checked against the version of the task the change read.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskPartWrite {
    /// Local variables set, created or replaced.
    SetVariables(Vec<TaskVariable>),
    /// Local variables removed (all of them when none are named).
    DeleteVariables(Option<Vec<String>>),
    /// A link added.
    AddLink(TaskLink),
    /// A link removed.
    RemoveLink(TaskLink),
    /// A comment removed, by id.
    DeleteComment(String),
    /// A file or link attached.
    AddAttachment(AttachmentRow),
    /// An attachment removed, by id.
    DeleteAttachment(String),
    /// The task removed with everything that hangs on it.
    Delete,
}

impl TaskPartWrite {
    /// How many statements write it.
    pub(crate) fn statements(&self) -> usize {
        match self {
            TaskPartWrite::SetVariables(vars) => vars.len(),
            TaskPartWrite::Delete => TASK_TABLES.len() + 1,
            _ => 1,
        }
    }
}

/// The tables of what hangs on a task, by `task_id`.
pub(crate) const TASK_TABLES: [&str; 4] = ["task_links", "task_variables", "task_comments", "task_attachments"];

/// A task-local variable, typed as Flowable's REST API types it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskVariable {
    /// Its name.
    pub name: String,
    /// `string`, `integer`, `long`, `double`, `boolean`, `date`, `json`, `binary`, …
    pub kind: String,
    /// The value as JSON text (none for binary values).
    pub value: Option<String>,
    /// The bytes of a binary or serializable value.
    pub bytes: Option<Vec<u8>>,
}

/// A comment, or an audit event of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentRow {
    /// Its id.
    pub id: String,
    /// `comment` or `event`.
    pub kind: String,
    /// The task it is about.
    pub task_id: Option<String>,
    /// The process instance it is about.
    pub instance_id: Option<String>,
    /// Who wrote it or did what the event records.
    pub author: Option<String>,
    /// When.
    pub time: i64,
    /// For an event, what was done (`AddUserLink`, `AddComment`, …); `AddComment` for a comment.
    pub action: String,
    /// The comment's text, or the event's details as a JSON array of strings.
    pub message: String,
}

/// A file or link attached to a task.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentRow {
    /// Its id.
    pub id: String,
    /// The task.
    pub task_id: Option<String>,
    /// The task's process instance.
    pub instance_id: Option<String>,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Any type, or a media type that content is served with.
    pub kind: Option<String>,
    /// The external resource it points to.
    pub url: Option<String>,
    /// Uploaded content (left out of lists).
    pub content: Option<Vec<u8>>,
    /// Whether it has uploaded content, also where the content is left out.
    pub has_content: bool,
    /// Who attached it.
    pub author: Option<String>,
    /// When.
    pub time: i64,
}

/// How the task list is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskOrder {
    /// By id (creation order).
    #[default]
    Id,
    /// By name.
    Name,
    /// By description.
    Description,
    /// By priority.
    Priority,
    /// By assignee.
    Assignee,
    /// By owner.
    Owner,
    /// By creation time.
    CreateTime,
    /// By due date.
    DueDate,
    /// By process instance.
    ProcessInstanceId,
    /// By model element.
    TaskDefinitionKey,
    /// By tenant.
    TenantId,
    /// By end time.
    EndTime,
}

impl TaskOrder {
    /// The column it sorts on.
    pub fn column(self) -> &'static str {
        match self {
            TaskOrder::Id => "t.id",
            TaskOrder::Name => "t.name",
            TaskOrder::Description => "t.description",
            TaskOrder::Priority => "t.priority",
            TaskOrder::Assignee => "t.assignee",
            TaskOrder::Owner => "t.owner",
            TaskOrder::CreateTime => "t.create_time",
            TaskOrder::DueDate => "t.due_date",
            TaskOrder::ProcessInstanceId => "t.instance_id",
            TaskOrder::TaskDefinitionKey => "t.element",
            TaskOrder::TenantId => "t.tenant_id",
            TaskOrder::EndTime => "t.end_time",
        }
    }
}

/// Filters of the task list; every one given must hold. `*_like` take SQL `LIKE` patterns.
#[derive(Debug, Clone, Default)]
pub struct UserTaskQuery {
    /// Open tasks (`Some(false)`), finished ones (`Some(true)`) or both.
    pub finished: Option<bool>,
    /// Only this task.
    pub id: Option<String>,
    /// Name equal to.
    pub name: Option<String>,
    /// Name like.
    pub name_like: Option<String>,
    /// Description equal to.
    pub description: Option<String>,
    /// Priority equal to.
    pub priority: Option<i64>,
    /// Priority at least.
    pub min_priority: Option<i64>,
    /// Priority at most.
    pub max_priority: Option<i64>,
    /// Assignee equal to.
    pub assignee: Option<String>,
    /// Assignee like.
    pub assignee_like: Option<String>,
    /// Owner equal to.
    pub owner: Option<String>,
    /// Owner like.
    pub owner_like: Option<String>,
    /// Only tasks nobody is assigned to.
    pub unassigned: bool,
    /// Delegation state equal to.
    pub delegation: Option<String>,
    /// Unassigned tasks this user may claim, as a candidate or through a group.
    pub candidate_user: Option<String>,
    /// Unassigned tasks a member of one of these groups may claim.
    pub candidate_groups: Option<Vec<String>>,
    /// Tasks this user is assigned, owns, or is linked to.
    pub involved_user: Option<String>,
    /// Tasks this user is assigned or may claim.
    pub candidate_or_assigned: Option<String>,
    /// Only tasks this user has a part in: assignee, owner, any identity link of theirs, a
    /// candidate group they are a member of, or an instance they started (what an ordinary
    /// user may see).
    pub visible_to: Option<String>,
    /// Model element equal to.
    pub element: Option<String>,
    /// Model element like.
    pub element_like: Option<String>,
    /// Process instance.
    pub instance_id: Option<String>,
    /// Model (process definition) id.
    pub model_id: Option<String>,
    /// Model key equal to.
    pub model_key: Option<String>,
    /// Model key like.
    pub model_key_like: Option<String>,
    /// Model name equal to.
    pub model_name: Option<String>,
    /// Model name like.
    pub model_name_like: Option<String>,
    /// Business key of the task's instance equal to.
    pub business_key: Option<String>,
    /// Business key of the task's instance like.
    pub business_key_like: Option<String>,
    /// Created exactly then.
    pub created_on: Option<i64>,
    /// Created before.
    pub created_before: Option<i64>,
    /// Created after.
    pub created_after: Option<i64>,
    /// Due exactly then.
    pub due_on: Option<i64>,
    /// Due before.
    pub due_before: Option<i64>,
    /// Due after.
    pub due_after: Option<i64>,
    /// Only tasks without a due date.
    pub without_due_date: bool,
    /// Only tasks that are no subtask.
    pub exclude_subtasks: bool,
    /// Subtasks of this task.
    pub parent_task_id: Option<String>,
    /// Tenant equal to.
    pub tenant_id: Option<String>,
    /// Tenant like.
    pub tenant_id_like: Option<String>,
    /// Only tasks without a tenant.
    pub without_tenant: bool,
    /// Category equal to.
    pub category: Option<String>,
    /// Ended before.
    pub ended_before: Option<i64>,
    /// Ended after.
    pub ended_after: Option<i64>,
    /// Conditions on the values of the task's or its process's variables.
    pub variables: Vec<crate::VariableFilter>,
    /// Order.
    pub order: TaskOrder,
    /// Descending instead of ascending.
    pub descending: bool,
}

/// Durable state of user tasks, their links, local variables, comments, events and attachments.
#[async_trait::async_trait]
pub trait UserTaskStore: Send + Sync {
    /// A user task, open or finished.
    async fn user_task(&self, id: &str) -> Result<Option<UserTaskRow>>;
    /// Tasks matching the query, with the total count; all of them when `page` is none.
    async fn list_user_tasks(&self, query: &UserTaskQuery, page: Option<Page>) -> Result<(Vec<UserTaskRow>, u64)>;

    /// A task's links.
    async fn task_links(&self, task_id: &str) -> Result<Vec<TaskLink>>;

    /// A task's local variables.
    async fn task_variables(&self, task_id: &str) -> Result<Vec<TaskVariable>>;

    /// Comments (`kind = "comment"`) or events of a task, oldest first.
    async fn comments_of_task(&self, task_id: &str, kind: &str) -> Result<Vec<CommentRow>>;
    /// Comments of a process instance, oldest first.
    async fn comments_of_instance(&self, instance_id: &str) -> Result<Vec<CommentRow>>;
    /// A comment or event by id.
    async fn comment(&self, id: &str) -> Result<Option<CommentRow>>;

    /// A task's attachments, oldest first, without their content.
    async fn attachments(&self, task_id: &str) -> Result<Vec<AttachmentRow>>;
    /// An attachment with its content.
    async fn attachment(&self, id: &str) -> Result<Option<AttachmentRow>>;
}
