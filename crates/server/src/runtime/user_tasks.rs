//! What people do to user tasks — claim, delegate, resolve, complete, set fields — as requests
//! the committer applies in order with every other change.
//!
//! The rule a change must pass (who may claim, "a delegated task is resolved before it is
//! completed") is checked against the task as it stands when the change is applied, not as a
//! handler read it earlier, so of two racing claims exactly one wins and the other is refused
//! by the rule; the platform API and Flowable's obey the same rules.

use super::RuntimeError;
use flowstone_engine::{Actor, Assignment, Candidates, Delegation, TaskChange};
use flowstone_store::{CommentRow, TaskLink, UserTaskRow};
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

/// Whether applying `op` asks who the task's candidates are (claims and completions do).
pub(super) fn needs_candidates(op: &TaskOp) -> bool {
    matches!(op, TaskOp::Change { change: TaskChange::Claim(_) | TaskChange::Complete, .. })
}

/// What a change did to a task, for the committer to write.
pub(super) enum Outcome {
    /// The row changed (its version one up), with the audit event of the change.
    Changed(Option<CommentRow>),
    /// A process's task is to be completed by its instance, with these variables.
    Complete { instance: String, variables: Map<String, Value>, transient: Map<String, Value> },
}

/// Applies `op` by `by` at `now` to `row` (open, with its identity `links`).
///
/// # Errors
/// The rule's refusal; the row is then unchanged.
pub(super) fn apply(
    row: &mut UserTaskRow,
    links: &[TaskLink],
    op: TaskOp,
    by: &Person,
    now: i64,
) -> Result<Outcome, RuntimeError> {
    let event = match op {
        TaskOp::Change { change, variables, transient } => {
            let mut assignment = Assignment {
                task: row.id.clone(),
                assignee: row.assignee.clone(),
                owner: row.owner.clone(),
                delegation: row.delegation.as_deref().and_then(Delegation::parse),
                claim_time: row.claim_time,
                candidates: candidates(links),
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
    };
    row.version += 1;
    Ok(Outcome::Changed(event.map(|(action, details)| CommentRow {
        id: super::new_id(),
        kind: "event".into(),
        task_id: Some(row.id.clone()),
        instance_id: row.instance_id.clone(),
        author: Some(by.user.clone()),
        time: now,
        action: action.into(),
        message: serde_json::to_string(&details).unwrap_or_default(),
    })))
}

fn candidates(links: &[TaskLink]) -> Candidates {
    let mut c = Candidates::default();
    for link in links.iter().filter(|l| l.kind == "candidate") {
        c.users.extend(link.user_id.clone());
        c.groups.extend(link.group_id.clone());
    }
    c
}
