//! The worker protocol over HTTP, shared by the server and the worker runner.
//!
//! A worker long-polls `POST /worker/fetch` for jobs of its topics (stone names); jobs come
//! locked to it for `lockDuration` milliseconds, and handing a job out records its
//! `<action>.begin` (a worker reporting it again does no harm). For each it reports lifecycle
//! events to
//! `POST /worker/jobs/{id}/event`, progress to `…/progress`, extends the lock with
//! `…/heartbeat`, fails it with retries and a back-off through `…/fail`, or hands it back
//! unfinished through `…/release`. Durations are milliseconds; times are milliseconds since
//! the epoch.

use flowstone_engine::{Action, Phase, StoneEvent, TaskStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where workers fetch jobs.
pub const FETCH_PATH: &str = "/worker/fetch";

/// Where workers send many events at once.
pub const EVENTS_PATH: &str = "/worker/events";

/// The RabbitMQ queue of a stone's jobs.
pub fn stone_queue(prefix: &str, stone: &str) -> String {
    format!("{prefix}{stone}")
}

/// The RabbitMQ queue workers send their events to.
pub fn events_queue(prefix: &str) -> String {
    format!("{prefix}flowstone.events")
}

/// The path of a report on a job: `what` is `event`, `progress`, `heartbeat`, `fail` or `release`.
pub fn job_path(id: &str, what: &str) -> String {
    format!("/worker/jobs/{id}/{what}")
}

fn default_max_jobs() -> u32 {
    1
}

fn default_lock() -> u64 {
    30_000
}

/// The longest a lock may last, in milliseconds: a day.
pub const MAX_LOCK_MS: u64 = 86_400_000;

/// The longest a retry may wait, in milliseconds: a week.
pub const MAX_BACKOFF_MS: u64 = 7 * 86_400_000;

/// The schema of `topics`: at least one stone, none unnamed.
#[cfg(feature = "openapi")]
fn topics_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::{ArrayBuilder, ObjectBuilder, Type};
    let name = ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"\S"));
    ArrayBuilder::new().items(name).min_items(Some(1)).build()
}

/// Asks for jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchRequest {
    /// Who asks; the jobs are locked to it.
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub worker_id: String,
    /// The stones it runs.
    #[cfg_attr(feature = "openapi", schema(schema_with = topics_schema))]
    pub topics: Vec<String>,
    /// At most this many jobs (default 1).
    #[serde(default = "default_max_jobs")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub max_jobs: u32,
    /// How long the jobs stay locked to it without a heartbeat (default 30,000).
    #[serde(default = "default_lock")]
    #[cfg_attr(feature = "openapi", schema(minimum = 100, maximum = 86_400_000))]
    pub lock_duration: u64,
    /// How long to wait for a job when none is free (default 0: answer at once).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(maximum = 60_000))]
    pub wait_time: u64,
}

/// A job locked to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LockedJob {
    /// The job id (its task record's id).
    pub id: String,
    /// The process instance it belongs to.
    pub process_instance_id: String,
    /// The stone that runs it.
    pub stone: String,
    /// What the stone is to do: `start`, `monitor`, `rollback`, `cancel`, `delete` or `mock`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "start"))]
    pub action: Action,
    /// The task's params.
    pub params: Value,
    /// What the task put out before (for monitor, rollback, cancel, delete).
    #[serde(default)]
    pub outputs: Map<String, Value>,
    /// When the lock ends unless extended.
    pub locked_until: i64,
    /// Retries left, once a worker has failed it with retries.
    #[serde(default)]
    pub retries: Option<i64>,
    /// When the job was queued (milliseconds since the epoch): a stone that waits a while
    /// (`sleep_timer`) waits from then, so that a job run again after a crash waits what is
    /// left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<i64>,
    /// Its W3C trace context (`00-TRACE-SPAN-01`): the trace of its process, with a span of
    /// its own. A worker that calls other systems passes it on as the `traceparent` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// The W3C trace id of a process: the 32 hex digits of its id (a UUID), so that every
/// server, worker and log line names the same trace without storing one; another id is
/// hashed into 32 digits.
pub fn trace_id(process_instance_id: &str) -> String {
    let hex: String = process_instance_id.chars().filter(char::is_ascii_hexdigit).collect();
    if hex.len() == 32 && hex.chars().any(|c| c != '0') {
        return hex.to_ascii_lowercase();
    }
    format!("{:016x}{:016x}", fnv(process_instance_id, 0), fnv(process_instance_id, 1))
}

/// The W3C `traceparent` of a job: its process's trace, and a span named by its record id.
pub fn traceparent(process_instance_id: &str, record_id: &str) -> String {
    let trace = trace_id(process_instance_id);
    let span = trace_id(record_id);
    // The random end of the record's id; a span id of all zeros is not valid.
    let span = if span[16..].chars().all(|c| c == '0') { &span[..16] } else { &span[16..] };
    format!("00-{trace}-{span}-01")
}

/// The trace id of a `traceparent` (`00-TRACE-SPAN-FLAGS`), when it is one.
pub fn trace_of(traceparent: &str) -> Option<&str> {
    let trace = traceparent.split('-').nth(1)?;
    (trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit())).then_some(trace)
}

/// FNV-1a of `text`, seeded.
fn fnv(text: &str, seed: u64) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325 ^ seed, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A lifecycle event: `status` is `<action>.<begin|success|failed>` or `mock.passed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventReport {
    /// The worker holding the job.
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub worker_id: String,
    /// The status reached.
    pub status: String,
    /// Outputs of a success.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub outputs: Map<String, Value>,
    /// With `start.success`: the stone monitors the work next, in the same job.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub monitor: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// With a success instead of `outputs`: variables set in the process itself (not under
    /// the task's namespace), as Flowable's external workers do. With a failure: variables
    /// set before the BPMN error is thrown.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub variables: Map<String, Value>,
    /// With a failure: a BPMN error with this code, which an error boundary event on the task
    /// (or a subprocess around it) may catch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// With the status `progress`: how far the work is, 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 100))]
    pub progress: Option<u8>,
    /// With `start.begin`: the start is done and the job is given back; the task stays under
    /// way until a callback (or a later `start.success` / `start.failed`) ends it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub await_callback: bool,
}

impl EventReport {
    /// The report of an engine event.
    pub fn new(worker_id: &str, event: StoneEvent) -> Self {
        let mut report = EventReport {
            worker_id: worker_id.to_owned(),
            status: String::new(),
            outputs: Map::new(),
            monitor: false,
            reason: None,
            variables: Map::new(),
            error_code: None,
            progress: None,
            await_callback: false,
        };
        report.status = match event {
            StoneEvent::Begin(action) => TaskStatus::Stone(action, Phase::Begin).text(),
            StoneEvent::AwaitCallback => {
                report.await_callback = true;
                TaskStatus::Stone(Action::Start, Phase::Begin).text()
            }
            StoneEvent::Success { action, outputs, monitor } => {
                (report.outputs, report.monitor) = (outputs, monitor);
                TaskStatus::Stone(action, Phase::Success).text()
            }
            StoneEvent::Failed { action, reason } => {
                report.reason = Some(reason);
                TaskStatus::Stone(action, Phase::Failed).text()
            }
            StoneEvent::Fault(reason) => {
                report.reason = Some(reason);
                TaskStatus::Stone(Action::Start, Phase::Failed).text()
            }
            StoneEvent::Passed => TaskStatus::Stone(Action::Mock, Phase::Passed).text(),
            StoneEvent::Progress(percent) => {
                report.progress = Some(percent);
                "progress".into()
            }
            StoneEvent::Completed { variables } => {
                report.variables = variables;
                TaskStatus::Stone(Action::Start, Phase::Success).text()
            }
            StoneEvent::Produced => TaskStatus::Produce(Phase::Success).text(),
            StoneEvent::ProduceFailed(reason) => {
                report.reason = Some(reason);
                TaskStatus::Produce(Phase::Failed).text()
            }
            StoneEvent::BpmnError { code, variables } => {
                (report.error_code, report.variables) = (Some(code), variables);
                TaskStatus::Stone(Action::Start, Phase::Failed).text()
            }
        };
        report
    }

    /// The engine event it reports.
    ///
    /// # Errors
    /// A message naming a status that is not `<action>.<phase>`.
    pub fn event(self) -> Result<StoneEvent, String> {
        let bad = || {
            format!(
                "status `{}` is not <action>.<begin|success|failed> (actions: start, monitor, rollback, cancel, delete, mock), mock.passed or progress",
                self.status
            )
        };
        if self.status == "progress" {
            return match self.progress {
                Some(percent) if percent <= 100 => Ok(StoneEvent::Progress(percent)),
                other => Err(format!("a `progress` event needs `progress` from 0 to 100, not {other:?}")),
            };
        }
        let (action, phase) = self.status.split_once('.').ok_or_else(bad)?;
        let action = Action::parse(action).ok_or_else(bad)?;
        if self.await_callback && (action, phase) != (Action::Start, "begin") {
            return Err(format!("`awaitCallback` goes with `start.begin`, not `{}`", self.status));
        }
        Ok(match phase {
            "begin" if self.await_callback => StoneEvent::AwaitCallback,
            "begin" => StoneEvent::Begin(action),
            "success" if !self.variables.is_empty() => {
                if !self.outputs.is_empty() || self.monitor {
                    return Err("give `outputs` (kept under the task's namespace) or `variables` (set in the process), not both; a success with variables cannot be followed by monitoring".into());
                }
                StoneEvent::Completed { variables: self.variables }
            }
            "success" => StoneEvent::Success { action, outputs: self.outputs, monitor: self.monitor },
            "failed" if self.error_code.is_some() => {
                StoneEvent::BpmnError { code: self.error_code.unwrap_or_default(), variables: self.variables }
            }
            "failed" => StoneEvent::Failed { action, reason: self.reason.unwrap_or_else(|| "no reason given".into()) },
            "passed" if action == Action::Mock => StoneEvent::Passed,
            _ => return Err(bad()),
        })
    }
}

/// Many events, of jobs one worker holds, in one request: each is applied as if sent alone,
/// and answered in [`EventOutcome`]s in the same order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventBatch {
    /// The worker holding the jobs.
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub worker_id: String,
    /// The events.
    pub events: Vec<JobEvent>,
}

/// One event of a batch: a report's fields with the job instead of the worker. The fields
/// are spelled out rather than flattened because serde cannot refuse unknown fields of a
/// flattened struct, and a misspelled field must be refused, not ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobEvent {
    /// The job.
    pub job_id: String,
    /// As in [`EventReport`].
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub variables: Map<String, Value>,
    /// As in [`EventReport`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// As in [`EventReport`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 100))]
    pub progress: Option<u8>,
    /// As in [`EventReport`].
    pub status: String,
    /// As in [`EventReport`].
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub outputs: Map<String, Value>,
    /// As in [`EventReport`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub monitor: bool,
    /// As in [`EventReport`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// As in [`EventReport`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub await_callback: bool,
}

impl JobEvent {
    /// The single report it stands for.
    pub fn report(self, worker_id: &str) -> EventReport {
        EventReport {
            worker_id: worker_id.to_owned(),
            status: self.status,
            outputs: self.outputs,
            monitor: self.monitor,
            reason: self.reason,
            variables: self.variables,
            error_code: self.error_code,
            progress: self.progress,
            await_callback: self.await_callback,
        }
    }

    /// The batch entry of a single report.
    pub fn of(job_id: &str, report: EventReport) -> Self {
        JobEvent {
            job_id: job_id.to_owned(),
            status: report.status,
            outputs: report.outputs,
            monitor: report.monitor,
            reason: report.reason,
            variables: report.variables,
            error_code: report.error_code,
            progress: report.progress,
            await_callback: report.await_callback,
        }
    }
}

/// How one event of a batch went: the HTTP status it would have had alone, and the
/// message of a refusal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EventOutcome {
    /// The job.
    pub job_id: String,
    /// 204 when applied (or a harmless repeat), else the refusal's status.
    pub status: u16,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How far the work is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProgressReport {
    /// The worker holding the job.
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub worker_id: String,
    /// 0–100.
    #[cfg_attr(feature = "openapi", schema(maximum = 100))]
    pub progress: u8,
}

/// Extends a lock, or hands a job back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockReport {
    /// The worker holding the job.
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub worker_id: String,
    /// The new lock, from now (default 30,000; at least 100, at most a day); ignored by `release`.
    #[serde(default = "default_lock")]
    #[cfg_attr(feature = "openapi", schema(maximum = 86_400_000))]
    pub lock_duration: u64,
}

/// The answer to a heartbeat: the lock's new end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LockExtended {
    /// When the lock ends unless extended again, in milliseconds since the epoch.
    pub locked_until: i64,
}

/// A failure, possibly to be retried.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailureReport {
    /// The worker holding the job.
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub worker_id: String,
    /// Why it failed.
    pub reason: String,
    /// Retries left: above 0, the job is handed out again after `retryBackoff`; 0 or absent
    /// (with none left from an earlier failure) fails the task's current action.
    #[serde(default)]
    pub retries: Option<i64>,
    /// How long to wait before the retry (default 0, at most a week).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(maximum = 604_800_000))]
    pub retry_backoff: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_round_trip_through_their_report() {
        let events = [
            StoneEvent::Begin(Action::Rollback),
            StoneEvent::Success {
                action: Action::Start,
                outputs: Map::from_iter([("a".into(), json!(1))]),
                monitor: true,
            },
            StoneEvent::Failed { action: Action::Monitor, reason: "lost".into() },
            StoneEvent::Passed,
            StoneEvent::Completed { variables: Map::from_iter([("v".into(), json!(2))]) },
            StoneEvent::BpmnError { code: "E1".into(), variables: Map::new() },
            StoneEvent::Progress(40),
            StoneEvent::AwaitCallback,
        ];
        for event in events {
            assert_eq!(EventReport::new("w", event.clone()).event(), Ok(event));
        }
    }

    #[test]
    fn malformed_statuses_are_named() {
        let report = |status: &str| EventReport::new("w", StoneEvent::Passed).with_status(status);
        for status in ["start", "launch.begin", "start.passed", "monitor.done"] {
            assert!(report(status).event().is_err_and(|e| e.contains(status)), "{status}");
        }
        let awaiting = EventReport::new("w", StoneEvent::AwaitCallback).with_status("start.success");
        assert!(awaiting.event().is_err_and(|e| e.contains("awaitCallback")));
    }

    impl EventReport {
        fn with_status(mut self, status: &str) -> Self {
            status.clone_into(&mut self.status);
            self
        }
    }
}
