//! Stones: the executors that do a service task's real work, and the SDK to write them.
//!
//! A stone implements [`Stone`]: `start` does the work, `monitor` (for stones that say they
//! monitor) watches it to its end reporting progress, and `rollback`, `cancel`, `delete` and
//! `mock` answer the operator's controls. [`drive`] runs one job through a stone and reports
//! every lifecycle event to a [`Reporter`]; the server runs the [`builtin`] stones in-process
//! through it, and [`runner::Worker`] runs stones as a separate program over HTTP.

#[cfg(feature = "amqp")]
pub mod amqp;
mod builtin;
mod machine;
pub mod protocol;
pub mod runner;
pub mod trace;

pub use builtin::{BillingStone, NoopStone, PauseNodeStone, SleepStone, SleepTimerStone, builtin, select};
pub use machine::MachineStone;

use flowstone_engine::{Action, StoneEvent};
use serde_json::{Map, Value};

/// What a stone action answers: outputs to keep under the task's namespace, or why it failed.
pub type StoneResult = Result<Map<String, Value>, String>;

/// What a mock answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Mocked {
    /// The stone pretended to do the work; these outputs stand in for the real ones.
    Success(Map<String, Value>),
    /// Nothing to do for this stone in a mock run.
    Passed,
}

/// One job as a stone sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Work {
    /// The task's params: process variables overlaid with its namespace object.
    pub params: Value,
    /// What the task put out before: the start's outputs for `monitor`, everything it put
    /// out for `rollback`, `cancel` and `delete`; empty for `start` and `mock`.
    pub outputs: Map<String, Value>,
    /// When the job was queued (milliseconds since the epoch), where the server says: a wait
    /// measured from then survives a crash of whoever ran the job first.
    pub queued_at: Option<i64>,
}

/// Where a monitoring stone reports how far the work is.
#[async_trait::async_trait]
pub trait Progress: Send + Sync {
    /// Reports 0–100; failures to deliver are not the stone's concern.
    async fn progress(&self, percent: u8);
}

/// An executor for one kind of service task. Every action but `start` has a default that
/// succeeds with nothing to do, so a stone implements only what it has to undo or watch.
#[async_trait::async_trait]
pub trait Stone: Send + Sync {
    /// The stone's name: the topic its jobs are queued under.
    fn name(&self) -> &str;

    /// What the stone does, in a sentence, for catalogues of stones (bk-sops' plugin list).
    fn summary(&self) -> &str {
        ""
    }

    /// Whether a successful start is followed by [`Stone::monitor`]: the task stays open
    /// (`start.success`, then `monitor.*`) until the work is really done.
    fn monitors(&self) -> bool {
        false
    }

    /// Whether a successful start leaves the task open for a callback, as bk-sops components
    /// such as `pause_node` do: the job leaves the queue and the task runs on until a callback
    /// (`operate_node` callback, `node_callback`, or a later `start.success`) ends it.
    fn awaits_callback(&self) -> bool {
        false
    }

    /// Starts the work.
    async fn start(&self, work: &Work) -> StoneResult;

    /// Watches started work to its end.
    async fn monitor(&self, work: &Work, progress: &dyn Progress) -> StoneResult {
        let _ = (work, progress);
        Ok(Map::new())
    }

    /// Undoes the work of a task whose process failed.
    async fn rollback(&self, work: &Work) -> StoneResult {
        let _ = work;
        Ok(Map::new())
    }

    /// Stops work still running in a canceled process.
    async fn cancel(&self, work: &Work) -> StoneResult {
        let _ = work;
        Ok(Map::new())
    }

    /// Removes what the work made, after its process ended.
    async fn delete(&self, work: &Work) -> StoneResult {
        let _ = work;
        Ok(Map::new())
    }

    /// Pretends to do the work.
    async fn mock(&self, work: &Work) -> Result<Mocked, String> {
        let _ = work;
        Ok(Mocked::Passed)
    }
}

/// The engine refused a report: the job is no longer this worker's to run (it was canceled,
/// taken over, or finished); the driver stops.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("report refused: {0}")]
pub struct Refused(pub String);

/// Where [`drive`] sends lifecycle events.
#[async_trait::async_trait]
pub trait Reporter: Progress {
    /// Delivers one event; retries delivery itself while the server is unreachable.
    async fn report(&self, event: StoneEvent) -> Result<(), Refused>;
}

/// Runs `action` of a job through `stone`, reporting each step: `<action>.begin` (unless
/// `begun`: the server recorded it when it handed the job out), then `.success` with
/// outputs or `.failed` with the reason (`mock.passed` when a mock has nothing to do); a
/// start that monitors goes on to `monitor.*` in the same job.
///
/// # Errors
/// [`Refused`] when the engine no longer wants the job.
pub async fn drive(
    stone: &dyn Stone,
    action: Action,
    work: Work,
    begun: bool,
    reporter: &dyn Reporter,
) -> Result<(), Refused> {
    if !begun {
        reporter.report(StoneEvent::Begin(action)).await?;
    }
    let done = |result: StoneResult, monitor| match result {
        Ok(outputs) => StoneEvent::Success { action, outputs, monitor },
        Err(reason) => StoneEvent::Failed { action, reason },
    };
    match action {
        Action::Start => {
            let started = stone.start(&work).await;
            if started.is_ok() && stone.awaits_callback() {
                return reporter.report(StoneEvent::AwaitCallback).await;
            }
            let monitor = started.is_ok() && stone.monitors();
            let outputs = started.clone().unwrap_or_default();
            reporter.report(done(started, monitor)).await?;
            if monitor {
                let mut all = work.outputs;
                all.extend(outputs);
                return watch(stone, Work { params: work.params, outputs: all, queued_at: work.queued_at }, reporter)
                    .await;
            }
            Ok(())
        }
        Action::Monitor => {
            let result = stone.monitor(&work, reporter).await;
            reporter.report(done(result, false)).await
        }
        Action::Mock => {
            let event = match stone.mock(&work).await {
                Ok(Mocked::Success(outputs)) => StoneEvent::Success { action, outputs, monitor: false },
                Ok(Mocked::Passed) => StoneEvent::Passed,
                Err(reason) => StoneEvent::Failed { action, reason },
            };
            reporter.report(event).await
        }
        Action::Rollback => reporter.report(done(stone.rollback(&work).await, false)).await,
        Action::Cancel => reporter.report(done(stone.cancel(&work).await, false)).await,
        Action::Delete => reporter.report(done(stone.delete(&work).await, false)).await,
    }
}

/// The monitor half of a start that monitors.
async fn watch(stone: &dyn Stone, work: Work, reporter: &dyn Reporter) -> Result<(), Refused> {
    reporter.report(StoneEvent::Begin(Action::Monitor)).await?;
    let result = stone.monitor(&work, reporter).await;
    let event = match result {
        Ok(outputs) => StoneEvent::Success { action: Action::Monitor, outputs, monitor: false },
        Err(reason) => StoneEvent::Failed { action: Action::Monitor, reason },
    };
    reporter.report(event).await
}

/// The params a model gave, without the two the engine adds.
pub fn own_params(params: &Value) -> Map<String, Value> {
    let mut map = params.as_object().cloned().unwrap_or_default();
    map.remove("namespace");
    map.remove("queue");
    map
}

/// Fails `action` when the params ask for it, so that failure paths can be exercised
/// without a real executor: `"fail": true` or `"fail": "reason"` fails the start;
/// `"fail": {"monitor": "reason", "rollback": true}` fails the actions named.
///
/// # Errors
/// The injected reason.
pub fn injected_failure(params: &Value, action: Action) -> Result<(), String> {
    let default = || format!("{} failure injected by the `fail` param", action.name());
    let reason = match params.get("fail") {
        Some(Value::Object(by_action)) => by_action.get(action.name()),
        other if action == Action::Start => other,
        _ => None,
    };
    match reason {
        Some(Value::Bool(true)) => Err(default()),
        Some(Value::String(reason)) if !reason.is_empty() => Err(reason.clone()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
