//! Stones: the executors that do a service task's real work.
//!
//! A stone receives a job's params and answers with outputs or a failure. The server runs
//! the [`builtin`] stones in-process, so a fresh install runs the example models with no
//! worker; external workers (next) implement the same [`Stone`] trait.

mod builtin;

pub use builtin::{BillingStone, MachineStone, NoopStone, SleepStone, builtin};

use serde_json::{Map, Value};

/// What a stone reports when its work is done.
pub type StoneResult = Result<Map<String, Value>, String>;

/// An executor for one kind of service task.
#[async_trait::async_trait]
pub trait Stone: Send + Sync {
    /// The stone's name: the topic its jobs are queued under.
    fn name(&self) -> &str;

    /// Whether the work takes long enough to report `start.begin` before it ends.
    fn reports_begin(&self) -> bool {
        false
    }

    /// Does the work described by `params`; returns the outputs to keep under the task's
    /// namespace, or why it failed.
    async fn start(&self, params: &Value) -> StoneResult;
}
