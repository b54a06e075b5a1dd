//! Runs jobs of the built-in stones inside the server.

use crate::runtime::{Runtime, RuntimeError};
use flowstone_engine::{Command, StoneOutcome};
use flowstone_store::JobRow;
use flowstone_worker::{Stone, builtin};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How many built-in stone jobs run at once.
const CONCURRENCY: usize = 256;

/// Hands committed jobs of built-in stones to their stone, and reports back to the runtime.
#[derive(Clone)]
pub(crate) struct StoneRunner {
    runtime: Runtime,
    /// The server's runtime: jobs run there, not on the committer's thread that dispatches them.
    spawner: tokio::runtime::Handle,
    stones: Arc<HashMap<String, Arc<dyn Stone>>>,
    permits: Arc<Semaphore>,
}

impl StoneRunner {
    pub(crate) fn new(runtime: Runtime) -> Self {
        let stones = builtin().into_iter().map(|s| (s.name().to_owned(), s)).collect();
        Self {
            runtime,
            spawner: tokio::runtime::Handle::current(),
            stones: Arc::new(stones),
            permits: Arc::new(Semaphore::new(CONCURRENCY)),
        }
    }

    /// The stones that run in-process.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.stones.keys().map(String::as_str).collect()
    }

    /// Runs the job if a built-in stone owns it; other jobs wait for external workers.
    pub(crate) fn dispatch(&self, row: JobRow) {
        let Some(stone) = self.stones.get(&row.job.stone).cloned() else { return };
        let runtime = self.runtime.clone();
        let permits = self.permits.clone();
        self.spawner.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else { return };
            let report = |outcome| Command::Stone { record: row.job.record_id.clone(), outcome };
            if stone.reports_begin()
                && let Err(e) = runtime.apply(&row.instance_id, report(StoneOutcome::Began)).await
            {
                tracing::debug!(job = %row.job.record_id, error = %e, "job no longer open");
                return;
            }
            let outcome = match stone.start(&row.job.params).await {
                Ok(outputs) => StoneOutcome::Succeeded(outputs),
                Err(reason) => StoneOutcome::Failed(reason),
            };
            // A result is work done: while the database is away, keep it and try again.
            let mut backoff = Duration::from_millis(100);
            loop {
                match runtime.apply(&row.instance_id, report(outcome.clone())).await {
                    Err(RuntimeError::Store(e)) => {
                        tracing::warn!(job = %row.job.record_id, error = %e, "stone result not committed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                    Err(RuntimeError::Stopped) => return,
                    Err(e) => {
                        tracing::debug!(job = %row.job.record_id, error = %e, "stone result no longer wanted");
                        return;
                    }
                    Ok(()) => return,
                }
            }
        });
    }
}
