//! What the platform dialect answers: one type per answer, rendered to the seeds' field names
//! and status words only here.

use super::super::format::platform_date;
use flowstone_engine::TaskStatus;
use flowstone_store::{InstanceRow, ModelRow, Outcome, TaskRow};
use serde::Serialize;
use utoipa::ToSchema;

/// A deployed model.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModelView {
    model_id: String,
    deployment_id: String,
    /// The process key; deploying a key again makes a new version.
    key: String,
    name: Option<String>,
    version: i64,
    /// `2018-08-06 14:27:48`, in the server's time zone.
    create_time: String,
}

impl From<&ModelRow> for ModelView {
    fn from(m: &ModelRow) -> Self {
        ModelView {
            model_id: m.id.clone(),
            deployment_id: m.deployment_id.clone(),
            key: m.key.clone(),
            name: m.name.clone(),
            version: m.version,
            create_time: platform_date(m.created_at),
        }
    }
}

/// A deployment: its first model's fields, and every model it holds.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Deployed {
    #[serde(flatten)]
    first: ModelView,
    models: Vec<ModelView>,
}

impl Deployed {
    /// The view of a deployment's models (a deployment holds at least one).
    pub(crate) fn of(rows: &[ModelRow]) -> Option<Self> {
        let first = rows.first()?.into();
        Some(Deployed { first, models: rows.iter().map(ModelView::from).collect() })
    }
}

/// Where a process stands, in the platform's words: its own status, or while (and once) its
/// rollback, cancel or delete process runs, where that one stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) enum ProcessStatus {
    Running,
    Success,
    Failed,
    Canceled,
    Debug,
    RollingBack,
    RolledBack,
    Canceling,
    Deleting,
    Deleted,
}

impl ProcessStatus {
    pub(crate) const ALL: [ProcessStatus; 10] = [
        ProcessStatus::Running,
        ProcessStatus::Success,
        ProcessStatus::Failed,
        ProcessStatus::Canceled,
        ProcessStatus::Debug,
        ProcessStatus::RollingBack,
        ProcessStatus::RolledBack,
        ProcessStatus::Canceling,
        ProcessStatus::Deleting,
        ProcessStatus::Deleted,
    ];

    /// Its word on the wire.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ProcessStatus::Running => "running",
            ProcessStatus::Success => "success",
            ProcessStatus::Failed => "failed",
            ProcessStatus::Canceled => "canceled",
            ProcessStatus::Debug => "debug",
            ProcessStatus::RollingBack => "rollingBack",
            ProcessStatus::RolledBack => "rolledBack",
            ProcessStatus::Canceling => "canceling",
            ProcessStatus::Deleting => "deleting",
            ProcessStatus::Deleted => "deleted",
        }
    }

    pub(crate) fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == word)
    }

    /// The status of a process whose engine status is `engine` (as the store keeps it) and
    /// whose rollback, cancel or delete process stands at `outcome`.
    pub(crate) fn of(engine: &str, outcome: Outcome) -> Self {
        match outcome {
            Outcome::RollingBack => return ProcessStatus::RollingBack,
            Outcome::RolledBack => return ProcessStatus::RolledBack,
            Outcome::Canceling => return ProcessStatus::Canceling,
            Outcome::Deleting => return ProcessStatus::Deleting,
            Outcome::Deleted => return ProcessStatus::Deleted,
            Outcome::Own => {}
        }
        match engine {
            "running" => ProcessStatus::Running,
            "debug" => ProcessStatus::Debug,
            "completed" => ProcessStatus::Success,
            "canceled" => ProcessStatus::Canceled,
            _ => ProcessStatus::Failed,
        }
    }

    /// What `GET /process?status=` asks of the store: the engine status and where the
    /// rollback, cancel or delete process stands (the inverse of [`ProcessStatus::of`]).
    pub(crate) fn filter(self) -> (Option<&'static str>, Option<Outcome>) {
        match self {
            // A running process has no rollback, cancel or delete process yet.
            ProcessStatus::Running => (Some("running"), None),
            ProcessStatus::Debug => (Some("debug"), None),
            ProcessStatus::Success => (Some("completed"), Some(Outcome::Own)),
            ProcessStatus::Failed => (Some("failed"), Some(Outcome::Own)),
            ProcessStatus::Canceled => (Some("canceled"), Some(Outcome::Own)),
            ProcessStatus::RollingBack => (Some("failed"), Some(Outcome::RollingBack)),
            ProcessStatus::RolledBack => (Some("failed"), Some(Outcome::RolledBack)),
            ProcessStatus::Canceling => (Some("canceled"), Some(Outcome::Canceling)),
            ProcessStatus::Deleting => (None, Some(Outcome::Deleting)),
            ProcessStatus::Deleted => (None, Some(Outcome::Deleted)),
        }
    }
}

/// A process instance (seed 002's process record).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProcessView {
    id: String,
    /// The same as `id`, under the seed's second name.
    process_instance_id: String,
    model_id: String,
    model_key: String,
    process_name: String,
    /// `rollback`, `cancel` or `delete` for the process that undoes another's stone work;
    /// absent for a process started by a user.
    process_type: Option<String>,
    process_status: ProcessStatus,
    /// The start variables, as JSON text.
    process_content: String,
    start_time: String,
    end_time: Option<String>,
    /// Always null: models live in Flowstone's store, not in a file service.
    activiti_file_id: Option<String>,
    /// The model's output template filled in, as JSON text, once it ends.
    outputs: Option<String>,
    /// The final process variables as JSON text; empty while it runs.
    native_outputs: String,
    rollback_process_instance_id: Option<String>,
    cancel_process_instance_id: Option<String>,
    delete_process_instance_id: Option<String>,
    /// For a rollback, cancel or delete process: the process it works for; for a process a
    /// call activity started: the calling process.
    parent_process_instance_id: Option<String>,
    /// Why it failed.
    reason: Option<String>,
    /// What it waits for now, when one process is asked for (not in lists): its open task
    /// records — a person, a stone, an operator, or a timer and when it is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting_for: Option<Vec<Waiting>>,
}

/// One thing a running process waits for: an open task record.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Waiting {
    /// The record (`GET /task/{taskId}`).
    task_id: String,
    name: String,
    /// `userTask`, `serviceTask` (a stone), `intermediateCatchEvent`, `boundaryEvent` or
    /// `startEvent` (a timer; the last of an event subprocess), `exclusiveGateway` (an
    /// operator's choice), …
    #[serde(rename = "type")]
    kind: String,
    #[schema(value_type = String, example = "active")]
    status: TaskStatus,
    /// For a timer: when it fires, in the platform's date format.
    due_date: Option<String>,
}

impl ProcessView {
    /// The process, with what it waits for: its `open` records (as
    /// [`flowstone_store::Store::tasks_of_instances`] reads them).
    pub(crate) fn waiting(mut self, open: &[TaskRow]) -> Self {
        let open = open.iter().map(|t| &t.record);
        self.waiting_for = Some(
            open.map(|r| Waiting {
                task_id: r.id.clone(),
                name: r.name.clone(),
                kind: r.kind.clone(),
                status: r.status,
                due_date: r
                    .params
                    .as_ref()
                    .filter(|_| matches!(r.kind.as_str(), "intermediateCatchEvent" | "boundaryEvent" | "startEvent"))
                    .and_then(|p| p["dueDate"].as_str())
                    .and_then(flowstone_engine::parse_instant)
                    .map(platform_date),
            })
            .collect(),
        );
        self
    }

    pub(crate) fn of(row: &InstanceRow, outcome: Outcome) -> Self {
        ProcessView {
            id: row.id.clone(),
            process_instance_id: row.id.clone(),
            model_id: row.model_id.clone(),
            model_key: row.model_key.clone(),
            process_name: row.name.clone(),
            process_type: (row.kind != "process").then(|| row.kind.clone()),
            process_status: ProcessStatus::of(&row.status, outcome),
            process_content: row.variables.clone(),
            start_time: platform_date(row.start_time),
            end_time: row.end_time.map(platform_date),
            activiti_file_id: None,
            outputs: row.outputs.clone(),
            native_outputs: row.final_vars.clone().unwrap_or_default(),
            rollback_process_instance_id: row.rollback_id.clone(),
            cancel_process_instance_id: row.cancel_id.clone(),
            delete_process_instance_id: row.delete_id.clone(),
            parent_process_instance_id: row.parent_id.clone(),
            reason: row.failure.clone(),
            waiting_for: None,
        }
    }
}

/// One run of a task (seed 002's task record): a stone task's attempts are records of their own.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskView {
    id: String,
    process_instance_id: String,
    /// The activity-instance id, which `reRun` and `resume` address.
    task_id: String,
    name: String,
    namespace: Option<String>,
    stone: Option<String>,
    create_time: String,
    end_time: Option<String>,
    /// `start.begin`, `monitor.success`, `rollback.failed`, `mock.passed`, `active`, …
    #[schema(value_type = String, example = "start.success")]
    status: TaskStatus,
    reason: Option<String>,
    /// Its input, as JSON text.
    params: Option<String>,
    /// Its output, as JSON text.
    outputs: Option<String>,
    /// 0–100, while a stone monitors.
    progress: Option<u8>,
}

impl From<&TaskRow> for TaskView {
    fn from(t: &TaskRow) -> Self {
        let r = &t.record;
        TaskView {
            id: r.id.clone(),
            process_instance_id: t.instance_id.clone(),
            task_id: r.task_id.clone(),
            name: r.name.clone(),
            namespace: r.namespace.clone(),
            stone: r.stone.clone(),
            create_time: platform_date(r.create_time),
            end_time: r.end_time.map(platform_date),
            status: r.status,
            reason: r.reason.clone(),
            params: r.params.as_ref().map(ToString::to_string),
            outputs: r.outputs.as_ref().map(ToString::to_string),
            progress: r.progress,
        }
    }
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Listing<T> {
    /// How many there are in all.
    total: u64,
    /// This page, from 1.
    page: u64,
    /// The page size asked for.
    size: u64,
    data: Vec<T>,
}

impl<T> Listing<T> {
    pub(crate) fn new(data: Vec<T>, total: u64, page: u64, size: u64) -> Self {
        Listing { total, page, size, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_filter_finds_the_processes_that_show_that_status() {
        for status in ProcessStatus::ALL {
            let (engine, outcome) = status.filter();
            let engine = engine.unwrap_or("failed");
            assert_eq!(ProcessStatus::of(engine, outcome.unwrap_or(Outcome::Own)), status, "{}", status.name());
            assert_eq!(ProcessStatus::parse(status.name()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.name());
        }
    }
}
