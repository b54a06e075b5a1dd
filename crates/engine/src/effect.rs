//! Effects: what the runtime must write or send once a command's new state is committed.

use flowstone_model::EventKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a stone is asked to do with a job: the first half of its task's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Do the work (then, for stones that monitor it, watch it to its end).
    Start,
    /// Watch work already started to its end (a `reRun` of the monitor step).
    Monitor,
    /// Undo the work of a task whose process failed.
    Rollback,
    /// Stop work still running in a canceled process.
    Cancel,
    /// Remove what the work made, after the process ended.
    Delete,
    /// Pretend to do the work (a mock run).
    Mock,
}

impl Action {
    /// Every action, for parsing.
    pub const ALL: [Action; 6] =
        [Action::Start, Action::Monitor, Action::Rollback, Action::Cancel, Action::Delete, Action::Mock];

    /// Its name in statuses and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Monitor => "monitor",
            Action::Rollback => "rollback",
            Action::Cancel => "cancel",
            Action::Delete => "delete",
            Action::Mock => "mock",
        }
    }

    /// The action of this name.
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// Where a stone is in one action: the second half of its task's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// It began.
    Begin,
    /// It succeeded.
    Success,
    /// It failed.
    Failed,
    /// Nothing needed doing (`mock.passed`).
    Passed,
}

impl Phase {
    /// Every phase, for parsing.
    pub const ALL: [Phase; 4] = [Phase::Begin, Phase::Success, Phase::Failed, Phase::Passed];

    /// Its name in statuses.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Begin => "begin",
            Phase::Success => "success",
            Phase::Failed => "failed",
            Phase::Passed => "passed",
        }
    }
}

/// Where a task record stands: the statuses of the platform API (seed 000) and those of
/// tasks that no stone runs. Rules test the value; its text (`start.success`, `active`) is
/// written only at the wire and in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum TaskStatus {
    /// Its job on the way to the queue (`produce.begin`: a brokered stone's job committed and
    /// being published), queued (`produce.success`), or to be published again
    /// (`produce.failed`).
    Produce(Phase),
    /// A stone's action in a phase, e.g. `start.begin` or `rollback.failed`.
    Stone(Action, Phase),
    /// An exclusive gateway that could not choose a flow, waiting in debug mode for an
    /// operator to choose (`exclusiveGateway.failed`).
    GatewayFailed,
    /// A user task waiting for a person.
    Active,
    /// A task that no stone runs, finished.
    Completed,
    /// A task that no stone runs, failed (an expression error).
    Failed,
    /// A queued or running task stopped by a cancel or by its instance's failure.
    Canceled,
    /// A failed task an operator skipped: the flow went on without it.
    Skipped,
}

impl TaskStatus {
    /// The statuses without an action or phase.
    pub const PLAIN: [TaskStatus; 6] = [
        TaskStatus::Active,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Canceled,
        TaskStatus::Skipped,
        TaskStatus::GatewayFailed,
    ];

    /// Whether a step failed and stays open for an operator in debug mode: a stone's action,
    /// its job's publishing or a gateway's choice (a plain task's failure closes at once).
    pub fn step_failed(self) -> bool {
        matches!(
            self,
            TaskStatus::Produce(Phase::Failed) | TaskStatus::Stone(_, Phase::Failed) | TaskStatus::GatewayFailed
        )
    }

    /// Whether its job is still on the way to its stone (nothing of the work began).
    pub fn producing(self) -> bool {
        matches!(self, TaskStatus::Produce(_))
    }

    /// Its text, as the platform API writes it.
    pub fn text(self) -> String {
        self.into()
    }

    /// The status of this text.
    pub fn parse(text: &str) -> Option<TaskStatus> {
        if let Some(status) = TaskStatus::PLAIN.into_iter().find(|s| s.plain_name() == Some(text)) {
            return Some(status);
        }
        let (first, phase) = text.split_once('.')?;
        let phase = Phase::ALL.into_iter().find(|p| p.name() == phase)?;
        match first {
            "produce" => Some(TaskStatus::Produce(phase)),
            action => Action::parse(action).map(|a| TaskStatus::Stone(a, phase)),
        }
    }

    fn plain_name(self) -> Option<&'static str> {
        Some(match self {
            TaskStatus::Active => "active",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Canceled => "canceled",
            TaskStatus::Skipped => "skipped",
            TaskStatus::GatewayFailed => "exclusiveGateway.failed",
            TaskStatus::Produce(_) | TaskStatus::Stone(..) => return None,
        })
    }
}

impl From<TaskStatus> for String {
    fn from(status: TaskStatus) -> String {
        match status {
            TaskStatus::Produce(phase) => format!("produce.{}", phase.name()),
            TaskStatus::Stone(action, phase) => format!("{}.{}", action.name(), phase.name()),
            plain => plain.plain_name().unwrap_or_default().to_owned(),
        }
    }
}

impl TryFrom<String> for TaskStatus {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        TaskStatus::parse(&text).ok_or_else(|| format!("`{text}` is not a task status"))
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
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
    pub status: TaskStatus,
    /// Why it failed.
    pub reason: Option<String>,
    /// Its input.
    pub params: Option<Value>,
    /// Its output.
    pub outputs: Option<Value>,
    /// Progress, 0–100, while a stone monitors.
    pub progress: Option<u8>,
    /// The action its stone job asks for, while the job is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// For a user task just created: who may work on it and how urgent it is. The runtime
    /// stores it once; what people change later lives in the store, not in the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Box<UserTaskInfo>>,
}

/// What a user task starts with, its model's expressions evaluated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserTaskInfo {
    /// The task's name (the element's name, evaluated); none when the element has none.
    pub name: Option<String>,
    /// Its description (the element's documentation, evaluated).
    pub description: Option<String>,
    /// Who works on it.
    pub assignee: Option<String>,
    /// Who is responsible for it.
    pub owner: Option<String>,
    /// Users who may claim it.
    pub candidate_users: Vec<String>,
    /// Groups whose members may claim it.
    pub candidate_groups: Vec<String>,
    /// How urgent it is; 50 unless the model says.
    pub priority: i64,
    /// When it is due, in milliseconds since the epoch.
    pub due_date: Option<i64>,
    /// The form a client shows for it.
    pub form_key: Option<String>,
    /// The task's category.
    pub category: Option<String>,
}

/// The priority of a user task whose model gives none.
pub const DEFAULT_PRIORITY: i64 = 50;

/// Work for a stone, to be queued durably.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The task record it belongs to.
    pub record_id: String,
    /// The stone (topic) that runs it.
    pub stone: String,
    /// What the stone is to do.
    pub action: Action,
    /// Its input.
    pub params: Value,
    /// What the task's earlier steps put out (the machine a rollback removes), else empty.
    #[serde(default)]
    pub outputs: Map<String, Value>,
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
    /// The job's start is done and the stone monitors the work: whoever holds the job next
    /// (after its worker died) monitors with these outputs instead of starting again.
    MonitorJob {
        /// The task record of the job.
        record_id: String,
        /// What the start put out.
        outputs: Map<String, Value>,
    },
    /// Start a new instance that rolls back, cancels or deletes the stone work of this one.
    Spawn(Box<Spawned>),
    /// A token passed an event or a gateway.
    Passed(Passage),
    /// Set a timer, or move it to its next due time.
    SetTimer(TimerSet),
    /// Remove a timer: it fired for the last time, or its activity or instance ended.
    DropTimer {
        /// The timer's task record.
        record_id: String,
    },
    /// Wait for a message, a signal or a trigger, kept durably so that one sent to the
    /// server finds the records that wait for it.
    Subscribe(Subscription),
    /// Stop waiting: the event came for the last time, or what waited ended.
    Unsubscribe {
        /// The waiting task record.
        record_id: String,
    },
    /// Send a message or signal to the instances that wait for it, once committed.
    Throw(Thrown),
    /// Start a child instance for a call activity, in the same commit.
    Call(Box<crate::call::Call>),
    /// Cancel the child instance of a call activity that closed before the child ended.
    EndCall {
        /// The child instance.
        child: String,
    },
    /// Delete a child instance of a call activity with its caller, in the same commit.
    DeleteCall {
        /// The child instance.
        child: String,
    },
}

/// An open task record waiting for a message, a signal or a trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The waiting record (it names the wait in [`crate::Command::Deliver`]).
    pub record_id: String,
    /// The waiting event's element.
    pub element: String,
    /// What it waits for.
    pub kind: EventKind,
    /// The message's or signal's name (empty for a trigger).
    pub name: String,
    /// The value of the message's correlation key when the wait began.
    pub key: Option<String>,
}

/// A message or signal a process sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Thrown {
    /// A message (one waiting record gets it) or a signal (every one does).
    pub kind: EventKind,
    /// Its name.
    pub name: String,
    /// The value of its correlation key in the sender.
    pub key: Option<String>,
}

/// A timer to be fired at its due time, kept durably until then.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerSet {
    /// The timer's task record (it names the timer in [`crate::Command::FireTimer`]).
    pub record_id: String,
    /// The timer event's element.
    pub element: String,
    /// When it fires, in milliseconds since the epoch.
    pub due: i64,
}

/// A token's pass through an event or a gateway, which takes no time: with the task records,
/// the instance's activity history (Flowable's historic activity instances). Kept apart from
/// task records because every instance passes several and they need none of a task's
/// columns: writing them as task records cost a quarter of the durable throughput.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// Unique id (time-ordered).
    pub id: String,
    /// The model element passed.
    pub element: String,
    /// The element's name, if it has one.
    pub name: Option<String>,
    /// `startEvent`, `endEvent`, `exclusiveGateway`, `parallelGateway` or `boundaryEvent`.
    pub kind: &'static str,
    /// When, in milliseconds since the epoch.
    pub time: i64,
}

/// A compensation instance born of a command on another instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Spawned {
    /// Its id, also recorded in the parent.
    pub id: String,
    /// The new instance.
    pub instance: crate::Instance,
    /// Its own first effects.
    pub effects: Vec<Effect>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_status_reads_back_from_its_text_and_other_text_is_refused() {
        let mut all = TaskStatus::PLAIN.to_vec();
        all.extend(Phase::ALL.map(TaskStatus::Produce));
        all.extend(Action::ALL.into_iter().flat_map(|a| Phase::ALL.map(|p| TaskStatus::Stone(a, p))));
        for status in all {
            assert_eq!(TaskStatus::parse(&status.text()), Some(status), "{status}");
            let json = serde_json::to_value(status).unwrap_or_default();
            assert_eq!(json, Value::String(status.text()), "stored and sent as its text");
        }
        assert_eq!(TaskStatus::Stone(Action::Monitor, Phase::Success).text(), "monitor.success");
        assert_eq!(TaskStatus::Produce(Phase::Failed).text(), "produce.failed");
        for bad in ["", "start", "start.", "jump.begin", "produce.done", "Completed"] {
            assert_eq!(TaskStatus::parse(bad), None, "{bad:?}");
            assert!(serde_json::from_str::<TaskStatus>(&format!("{bad:?}")).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn failed_steps_wait_for_an_operator_and_a_plain_failure_does_not() {
        assert!(TaskStatus::Stone(Action::Rollback, Phase::Failed).step_failed());
        assert!(TaskStatus::Produce(Phase::Failed).step_failed());
        assert!(TaskStatus::GatewayFailed.step_failed());
        assert!(!TaskStatus::Failed.step_failed());
        assert!(!TaskStatus::Stone(Action::Start, Phase::Success).step_failed());
    }
}
