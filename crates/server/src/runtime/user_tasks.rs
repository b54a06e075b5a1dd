//! What people do to user tasks — create, claim, delegate, resolve, complete, set fields,
//! variables, links, comments and attachments, delete — as requests the committer applies in
//! order with every other change.
//!
//! The rule a change must pass (who may claim, "a delegated task is resolved before it is
//! completed", a variable created does not exist yet, a comment is deleted by its author) is
//! checked against the task as it stands when the change is applied, not as a handler read it
//! earlier, so of two racing changes exactly one wins and the other is refused by the rule; the
//! platform API and Flowable's obey the same rules.

use super::RuntimeError;
use flowstone_engine::{Actor, Assignment, Candidates, Command, Delegation, TaskChange};
use flowstone_store::{
    AttachmentRow, CommentRow, Store, StoreError, TaskLink, TaskPartWrite, TaskVariable, UserTaskRow,
};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

/// Who asks for a change.
#[derive(Debug, Clone)]
pub struct Person {
    /// The signed-in user.
    pub user: String,
    /// The groups they are a member of.
    pub groups: Vec<String>,
    /// An administrator may work on any task.
    pub admin: bool,
}

/// A change to a user task.
#[derive(Debug, Clone)]
pub enum TaskOp {
    /// A change the assignment rules guard; a completion of a process's task gives the
    /// process these variables (and transient ones, seen only by the step that follows).
    Change {
        /// What changes.
        change: TaskChange,
        /// For a completion: variables its process gets.
        variables: Map<String, Value>,
        /// For a completion: variables only the step that follows sees.
        transient: Map<String, Value>,
    },
    /// Fields set as given (Flowable's task update, an identity link naming the assignee or
    /// the owner), with the audit event Flowable records for it.
    Fields {
        /// The fields set.
        fields: Box<TaskFields>,
        /// The audit event's action and details.
        event: Option<(&'static str, Vec<String>)>,
    },
    /// A change of what hangs on the task.
    Part(Part),
    /// A new standalone task (its id is the request's).
    Create(Box<UserTaskRow>),
    /// A standalone task deleted: kept as history with `reason`, or removed with all it has.
    Delete {
        /// Whether it stays as a finished task.
        keep_history: bool,
        /// Why, for the history (`deleted` when none).
        reason: Option<String>,
    },
}

/// A change of a task's variables, links, comments or attachments.
#[derive(Debug, Clone)]
pub enum Part {
    /// Variables set: `locals` on the task, `globals` on its process. Created (none may exist
    /// yet) or updated (each must exist).
    SetVariables {
        /// Variables of the task.
        locals: Vec<TaskVariable>,
        /// Variables of its process.
        globals: Map<String, Value>,
        /// Whether they are new.
        create: bool,
    },
    /// A variable removed (it must exist), of the task or of its process.
    DeleteVariable {
        /// Its name.
        name: String,
        /// Whether it is its process's.
        global: bool,
    },
    /// Every local variable removed.
    DeleteLocals,
    /// A link added (nothing when it is there).
    AddLink(TaskLink),
    /// A link removed (it must be there).
    RemoveLink(TaskLink),
    /// A comment added.
    AddComment(CommentRow),
    /// A comment removed, by its author or an administrator.
    DeleteComment(String),
    /// A file or link attached.
    AddAttachment(AttachmentRow),
    /// An attachment removed.
    DeleteAttachment(String),
}

/// Fields of a task a change sets: `Some(None)` clears one, `None` leaves it. (Flowable's
/// names; see [`UserTaskRow`].)
#[derive(Debug, Clone, Default)]
pub struct TaskFields {
    /// Its name.
    pub name: Option<Option<String>>,
    /// Its description.
    pub description: Option<Option<String>>,
    /// Who works on it.
    pub assignee: Option<Option<String>>,
    /// Who is responsible for it.
    pub owner: Option<Option<String>>,
    /// Whether it is delegated.
    pub delegation: Option<Option<Delegation>>,
    /// When it is due.
    pub due_date: Option<Option<i64>>,
    /// How urgent it is.
    pub priority: Option<i64>,
    /// The task it is a subtask of.
    pub parent_task_id: Option<Option<String>>,
    /// Its category.
    pub category: Option<Option<String>>,
    /// The form a client shows for it.
    pub form_key: Option<Option<String>>,
    /// Its tenant.
    pub tenant_id: Option<Option<String>>,
}

impl TaskFields {
    /// Sets the fields given on `row`.
    pub fn apply(self, row: &mut UserTaskRow) {
        fn set<T>(field: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *field = v;
            }
        }
        set(&mut row.name, self.name);
        set(&mut row.description, self.description);
        set(&mut row.assignee, self.assignee);
        set(&mut row.owner, self.owner);
        set(&mut row.delegation, self.delegation.map(|d| d.map(|d| d.text().to_owned())));
        set(&mut row.due_date, self.due_date);
        set(&mut row.priority, self.priority);
        set(&mut row.parent_task_id, self.parent_task_id);
        set(&mut row.category, self.category);
        set(&mut row.form_key, self.form_key);
        set(&mut row.tenant_id, self.tenant_id);
    }
}

/// A change asked for, with where its answer goes.
pub(super) struct TaskRequest {
    pub(super) task: String,
    pub(super) op: TaskOp,
    pub(super) by: Person,
    pub(super) reply: oneshot::Sender<Result<UserTaskRow, RuntimeError>>,
}

/// Flowable's words for a task that does not exist.
pub(super) fn not_found(id: &str) -> RuntimeError {
    RuntimeError::NotFound(format!("Could not find a task with id '{id}'."))
}

/// A change of a task that has ended: a process's task is no longer open in it (what its
/// engine says of a second completion); a standalone one is gone.
pub(super) fn not_open(row: &UserTaskRow) -> RuntimeError {
    match row.instance_id {
        Some(_) => RuntimeError::Conflict(flowstone_engine::EngineError::TaskNotOpen(row.id.clone())),
        None => not_found(&row.id),
    }
}

/// What the rules of a change read besides the task's row: its candidates, and for a change
/// of its parts the parts it names, as the store holds them (the committer applies a change of
/// parts only while no change of the task is on its way to the store).
#[derive(Default)]
pub(super) struct Seen {
    links: Vec<TaskLink>,
    variables: Vec<String>,
    comment: Option<CommentRow>,
    attachment: Option<AttachmentRow>,
}

impl Seen {
    /// Reads what `op` on task `task` asks about.
    pub(super) async fn read(store: &dyn Store, task: &str, op: &TaskOp) -> Result<Seen, StoreError> {
        let mut seen = Seen::default();
        match op {
            TaskOp::Change { change: TaskChange::Claim(_) | TaskChange::Complete, .. }
            | TaskOp::Part(Part::AddLink(_) | Part::RemoveLink(_)) => seen.links = store.task_links(task).await?,
            TaskOp::Part(Part::SetVariables { locals, .. }) if locals.is_empty() => {}
            TaskOp::Part(Part::SetVariables { .. } | Part::DeleteVariable { global: false, .. }) => {
                seen.variables = store.task_variables(task).await?.into_iter().map(|v| v.name).collect();
            }
            TaskOp::Part(Part::DeleteComment(id)) => seen.comment = store.comment(id).await?,
            TaskOp::Part(Part::DeleteAttachment(id)) => seen.attachment = store.attachment(id).await?,
            _ => {}
        }
        Ok(seen)
    }
}

/// The process variables `op` asks about (creates, updates or deletes).
pub(super) fn process_vars_named(op: &TaskOp) -> Vec<&str> {
    match op {
        TaskOp::Part(Part::SetVariables { globals, .. }) => globals.keys().map(String::as_str).collect(),
        TaskOp::Part(Part::DeleteVariable { name, global: true }) => vec![name.as_str()],
        _ => Vec::new(),
    }
}

/// What a change did to a task, for the committer to write.
pub(super) enum Outcome {
    /// The row changed (its version one up), with its comments and audit events, the writes of
    /// its parts, and a command its process applies in the same group.
    Changed { comments: Vec<CommentRow>, parts: Vec<TaskPartWrite>, process: Option<(String, Command)> },
    /// A process's task is to be completed by its instance, with these variables.
    Complete { instance: String, variables: Map<String, Value>, transient: Map<String, Value> },
}

/// Applies `op` by `by` at `now` to `row` (open), with what its rules read (`seen`) and the
/// names its process's variables have (`process_vars`, for a change of global variables).
///
/// # Errors
/// The rule's refusal; the row is then unchanged.
pub(super) fn apply(
    row: &mut UserTaskRow,
    seen: Seen,
    process_vars: &dyn Fn(&str) -> bool,
    op: TaskOp,
    by: &Person,
    now: i64,
) -> Result<Outcome, RuntimeError> {
    let mut parts = Vec::new();
    let mut comments = Vec::new();
    let mut process = None;
    let event = match op {
        TaskOp::Change { change, variables, transient } => {
            let mut assignment = Assignment {
                task: row.id.clone(),
                assignee: row.assignee.clone(),
                owner: row.owner.clone(),
                delegation: row.delegation.as_deref().and_then(Delegation::parse),
                claim_time: row.claim_time,
                candidates: candidates(&seen.links),
            };
            let actor = Actor { user: &by.user, groups: &by.groups, admin: by.admin };
            assignment.apply(&change, actor, now)?;
            if change == TaskChange::Complete {
                match &row.instance_id {
                    Some(instance) => {
                        return Ok(Outcome::Complete { instance: instance.clone(), variables, transient });
                    }
                    None => row.end_time = Some(now),
                }
            }
            row.assignee = assignment.assignee;
            row.owner = assignment.owner;
            row.delegation = assignment.delegation.map(|d| d.text().to_owned());
            row.claim_time = assignment.claim_time;
            change.event()
        }
        TaskOp::Fields { fields, event } => {
            fields.apply(row);
            event
        }
        TaskOp::Part(part) => {
            let (event, process_command) = apply_part(row, seen, process_vars, part, by, &mut parts, &mut comments)?;
            process = process_command;
            event
        }
        TaskOp::Create(_) => return Err(RuntimeError::Exists(format!("task '{}' exists already", row.id))),
        TaskOp::Delete { keep_history, reason } => {
            if row.instance_id.is_some() {
                return Err(RuntimeError::Forbidden(format!(
                    "Cannot delete a task that is part of a process instance: '{}'",
                    row.id
                )));
            }
            row.end_time = Some(now);
            row.delete_reason = Some(reason.unwrap_or_else(|| "deleted".into()));
            if !keep_history {
                parts.push(TaskPartWrite::Delete);
            }
            None
        }
    };
    row.version += 1;
    comments.extend(event.map(|(action, details)| audit(row, by, now, action, &details)));
    Ok(Outcome::Changed { comments, parts, process })
}

/// An audit event of a task, by who acted.
fn audit(row: &UserTaskRow, by: &Person, now: i64, action: &str, details: &[String]) -> CommentRow {
    CommentRow {
        id: super::new_id(),
        kind: "event".into(),
        task_id: Some(row.id.clone()),
        instance_id: row.instance_id.clone(),
        author: Some(by.user.clone()),
        time: now,
        action: action.into(),
        message: serde_json::to_string(details).unwrap_or_default(),
    }
}

/// Flowable's 404 for a variable a task does not have.
pub(super) fn no_variable(task: &str, name: &str) -> RuntimeError {
    RuntimeError::NotFound(format!("Task '{task}' does not have a variable with name: '{name}'"))
}

type Event = Option<(&'static str, Vec<String>)>;

/// Applies a change of parts: the writes go to `parts`, a comment to `comments`; answers its
/// audit event and the command its process applies.
fn apply_part(
    row: &UserTaskRow,
    seen: Seen,
    process_vars: &dyn Fn(&str) -> bool,
    part: Part,
    by: &Person,
    parts: &mut Vec<TaskPartWrite>,
    comments: &mut Vec<CommentRow>,
) -> Result<(Event, Option<(String, Command)>), RuntimeError> {
    let task = row.id.clone();
    let command = |variables: Map<String, Value>, removed: Vec<String>| {
        let instance = row.instance_id.clone().ok_or_else(|| {
            RuntimeError::NotValid(format!(
                "Task '{task}' is not part of a process: it has no global variables, use scope local"
            ))
        })?;
        Ok::<_, RuntimeError>(Some((instance, Command::SetVariables { task: Some(task.clone()), variables, removed })))
    };
    let link_event = |link: &TaskLink, added: bool| {
        let (action, who) = match (&link.user_id, added) {
            (Some(user), true) => ("AddUserLink", user),
            (Some(user), false) => ("DeleteUserLink", user),
            (None, true) => ("AddGroupLink", link.group_id.as_ref().unwrap_or(&task)),
            (None, false) => ("DeleteGroupLink", link.group_id.as_ref().unwrap_or(&task)),
        };
        Some((action, vec![who.clone(), link.kind.clone()]))
    };
    match part {
        Part::SetVariables { locals, globals, create } => {
            let present = |name: &str, global: bool| {
                if global { process_vars(name) } else { seen.variables.iter().any(|v| v == name) }
            };
            let names =
                locals.iter().map(|v| (v.name.as_str(), false)).chain(globals.keys().map(|n| (n.as_str(), true)));
            for (name, global) in names {
                match (create, present(name, global)) {
                    (true, true) => {
                        return Err(RuntimeError::Exists(format!(
                            "Variable '{name}' is already present on task '{task}'; update it with PUT instead."
                        )));
                    }
                    (false, false) => return Err(no_variable(&task, name)),
                    _ => {}
                }
            }
            let process = if globals.is_empty() { None } else { command(globals, Vec::new())? };
            if !locals.is_empty() {
                parts.push(TaskPartWrite::SetVariables(locals));
            }
            Ok((None, process))
        }
        Part::DeleteVariable { name, global: true } => {
            if !process_vars(&name) {
                return Err(no_variable(&task, &name));
            }
            Ok((None, command(Map::new(), vec![name])?))
        }
        Part::DeleteVariable { name, global: false } => {
            if !seen.variables.contains(&name) {
                return Err(no_variable(&task, &name));
            }
            parts.push(TaskPartWrite::DeleteVariables(Some(vec![name])));
            Ok((None, None))
        }
        Part::DeleteLocals => {
            parts.push(TaskPartWrite::DeleteVariables(None));
            Ok((None, None))
        }
        Part::AddLink(link) => {
            if seen.links.contains(&link) {
                return Ok((None, None));
            }
            let event = link_event(&link, true);
            parts.push(TaskPartWrite::AddLink(link));
            Ok((event, None))
        }
        Part::RemoveLink(link) => {
            if !seen.links.contains(&link) {
                let identity = link.user_id.as_ref().or(link.group_id.as_ref()).unwrap_or(&task);
                return Err(RuntimeError::NotFound(format!(
                    "Could not find the requested identity link: {identity}/{} on task '{task}'",
                    link.kind
                )));
            }
            let event = link_event(&link, false);
            parts.push(TaskPartWrite::RemoveLink(link));
            Ok((event, None))
        }
        Part::AddComment(comment) => {
            let event = Some(("AddComment", vec![comment.message.clone()]));
            comments.push(comment);
            Ok((event, None))
        }
        Part::DeleteComment(id) => match seen.comment {
            Some(c) if c.task_id.as_deref() == Some(task.as_str()) && c.kind == "comment" => {
                if c.author.as_deref() != Some(by.user.as_str()) && !by.admin {
                    return Err(RuntimeError::Forbidden(format!(
                        "user '{}' may not delete comment '{id}': only its author or an administrator may",
                        by.user
                    )));
                }
                parts.push(TaskPartWrite::DeleteComment(id));
                Ok((None, None))
            }
            _ => Err(RuntimeError::NotFound(format!("Task '{task}' does not have a comment with id '{id}'."))),
        },
        Part::AddAttachment(attachment) => {
            let event = Some(("AddAttachment", vec![attachment.name.clone()]));
            parts.push(TaskPartWrite::AddAttachment(attachment));
            Ok((event, None))
        }
        Part::DeleteAttachment(id) => match seen.attachment {
            Some(a) if a.task_id.as_deref() == Some(task.as_str()) => {
                parts.push(TaskPartWrite::DeleteAttachment(id));
                Ok((Some(("DeleteAttachment", vec![a.name])), None))
            }
            _ => Err(RuntimeError::NotFound(format!("Task '{task}' does not have an attachment with id '{id}'."))),
        },
    }
}

fn candidates(links: &[TaskLink]) -> Candidates {
    let mut c = Candidates::default();
    for link in links.iter().filter(|l| l.kind == "candidate") {
        c.users.extend(link.user_id.clone());
        c.groups.extend(link.group_id.clone());
    }
    c
}
