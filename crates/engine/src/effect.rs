//! Effects: what the runtime must write or send once a command's new state is committed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Task statuses of the platform API (seed 000) plus those of tasks that no stone runs.
pub mod task_status {
    /// The job is durably queued for its stone.
    pub const PRODUCE_SUCCESS: &str = "produce.success";
    /// The stone began the work.
    pub const START_BEGIN: &str = "start.begin";
    /// The stone finished starting the work (and, when it does not monitor, the task).
    pub const START_SUCCESS: &str = "start.success";
    /// The stone failed to start the work.
    pub const START_FAILED: &str = "start.failed";
    /// A queued or running task stopped by a cancel.
    pub const CANCELED: &str = "canceled";
    /// A user task waiting for a person.
    pub const ACTIVE: &str = "active";
    /// A task that no stone runs, finished.
    pub const COMPLETED: &str = "completed";
    /// A task that no stone runs, failed (an expression error).
    pub const FAILED: &str = "failed";
}

/// One run of a task-like activity: the platform API's task record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Unique id of this record; for the current attempt of an activity, its `task_id`.
    pub id: String,
    /// The activity-instance id, which debug operations address; earlier attempts keep it
    /// under ids of their own.
    pub task_id: String,
    /// The model element id of the activity.
    pub element: String,
    /// Its display name.
    pub name: String,
    /// `userTask`, `serviceTask`, `manualTask`, …: what kind of activity ran.
    pub kind: String,
    /// The namespace of a stone task (per instance for multi-instance tasks).
    pub namespace: Option<String>,
    /// The stone that runs it.
    pub stone: Option<String>,
    /// Milliseconds since the epoch.
    pub create_time: i64,
    /// When it ended.
    pub end_time: Option<i64>,
    /// Its status.
    pub status: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// Its input.
    pub params: Option<Value>,
    /// Its output.
    pub outputs: Option<Value>,
    /// Progress, 0–100, while a stone monitors.
    pub progress: Option<u8>,
}

/// Work for a stone, to be queued durably.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The task record it belongs to.
    pub record_id: String,
    /// The stone (topic) that runs it.
    pub stone: String,
    /// Its input.
    pub params: Value,
}

/// What the runtime must do after committing the instance's new state.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Insert or replace a task record.
    Task(Box<TaskRecord>),
    /// Queue a stone job.
    QueueJob(Job),
    /// Remove a job from the queue: its task has closed (done, failed or canceled).
    DropJob {
        /// The task record of the job.
        record_id: String,
    },
}
