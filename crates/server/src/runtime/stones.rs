//! Runs jobs of the built-in stones inside the server.
//!
//! The committer leases each new job of a built-in stone to this server and hands it over
//! after the commit. While a job runs, its lease is extended; a server that stops (or is
//! killed) stops extending, and once the lease has ended any server sharing the database
//! takes the job over. At start a server takes back the jobs it held before.

use crate::runtime::{Runtime, RuntimeError, now_ms};
use flowstone_engine::{Command, StoneEvent};
use flowstone_store::{Acquire, JobRow};
use flowstone_worker::{Progress, Refused, Reporter, Stone, Work, drive};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

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
    node: String,
    lease: Duration,
    /// Jobs running here now, by task record id: their leases are extended.
    running: Arc<Mutex<HashSet<String>>>,
    stopped: watch::Receiver<bool>,
}

impl StoneRunner {
    pub(crate) fn new(
        runtime: Runtime,
        stones: &[Arc<dyn Stone>],
        node: String,
        lease: Duration,
        stopped: watch::Receiver<bool>,
    ) -> Self {
        let stones = stones.iter().map(|s| (s.name().to_owned(), s.clone())).collect();
        Self {
            runtime,
            spawner: tokio::runtime::Handle::current(),
            stones: Arc::new(stones),
            permits: Arc::new(Semaphore::new(CONCURRENCY)),
            node,
            lease,
            running: Arc::default(),
            stopped,
        }
    }

    /// Whether jobs of `stone` run in-process.
    pub(crate) fn owns(&self, stone: &str) -> bool {
        self.stones.contains_key(stone)
    }

    /// Takes back this node's jobs, then keeps extending the leases of running jobs and
    /// taking over jobs whose lease ended elsewhere, until the runtime stops.
    pub(crate) fn start(&self) -> tokio::task::JoinHandle<()> {
        let runner = self.clone();
        self.spawner.spawn(async move {
            // Jobs handed back by a server that stopped cleanly are taken at once, not when a
            // lease would have ended.
            let signal = match runner.runtime.store().job_signal().await {
                Ok(signal) => signal,
                Err(e) => {
                    tracing::warn!(error = %e, "no job notifications; relying on the lease sweep");
                    None
                }
            };
            runner.take_over(true).await;
            let mut stopped = runner.stopped.clone();
            let mut tick = tokio::time::interval(runner.lease / 3);
            loop {
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = tick.tick() => runner.heartbeat().await,
                    () = async { signal.as_ref().expect("guarded by the branch condition").notified().await }, if signal.is_some() => {}
                }
                runner.take_over(false).await;
            }
        })
    }

    async fn take_over(&self, include_own: bool) {
        let names: Vec<&str> = self.stones.keys().map(String::as_str).collect();
        let now = now_ms();
        let acquire = Acquire {
            stones: &names,
            owner: &self.node,
            now,
            until: now + self.lease.as_millis() as i64,
            include_own,
            limit: CONCURRENCY as u64,
            action: None,
        };
        match self.runtime.store().acquire_jobs(acquire).await {
            Ok(jobs) => {
                if !jobs.is_empty() {
                    tracing::info!(jobs = jobs.len(), "took over stone jobs");
                }
                for job in jobs {
                    self.dispatch(job);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not take over stone jobs"),
        }
    }

    async fn heartbeat(&self) {
        let ids: Vec<String> = self.running.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
        if ids.is_empty() {
            return;
        }
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let until = now_ms() + self.lease.as_millis() as i64;
        if let Err(e) = self.runtime.store().extend_jobs(&self.node, &ids, until, true).await {
            tracing::warn!(error = %e, "could not extend job leases");
        }
    }

    /// Runs the job if a built-in stone owns it and it is not running here already.
    pub(crate) fn dispatch(&self, row: JobRow) {
        let Some(stone) = self.stones.get(&row.job.stone).cloned() else { return };
        if !self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(row.job.record_id.clone()) {
            return;
        }
        let runner = self.clone();
        self.spawner.spawn(async move {
            if let Ok(_permit) = runner.permits.clone().acquire_owned().await {
                runner.run(stone, &row).await;
            }
            runner.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&row.job.record_id);
        });
    }

    async fn run(&self, stone: Arc<dyn Stone>, row: &JobRow) {
        self.runtime.metrics().job_handed_out(&row.job.stone, row.job.action.name(), row.created_at);
        let reporter =
            InProcess { runtime: self.runtime.clone(), instance: &row.instance_id, record: &row.job.record_id };
        let work =
            Work { params: row.job.params.clone(), outputs: row.job.outputs.clone(), queued_at: Some(row.created_at) };
        if let Err(Refused(message)) = drive(stone.as_ref(), row.job.action, work, false, &reporter).await {
            tracing::debug!(job = %row.job.record_id, %message, "job no longer wanted");
        }
    }
}

/// Reports of a job run in-process: commands straight to the runtime.
struct InProcess<'a> {
    runtime: Runtime,
    instance: &'a str,
    record: &'a str,
}

impl InProcess<'_> {
    fn command(&self, event: StoneEvent) -> Command {
        Command::Stone { record: self.record.to_owned(), event }
    }
}

#[async_trait::async_trait]
impl Progress for InProcess<'_> {
    async fn progress(&self, percent: u8) {
        let _ = self.runtime.apply(self.instance, self.command(StoneEvent::Progress(percent))).await;
    }
}

#[async_trait::async_trait]
impl Reporter for InProcess<'_> {
    async fn report(&self, event: StoneEvent) -> Result<(), Refused> {
        // An event is work done: while the database is away, keep it and try again.
        let mut backoff = Duration::from_millis(100);
        loop {
            let command = self.command(event.clone());
            // A `begin` commits with the outcome of a stone that ends soon (one commit a step).
            let applied = match event {
                StoneEvent::Begin(_) => self.runtime.apply_lazily(self.instance, command).await,
                _ => self.runtime.apply(self.instance, command).await,
            };
            match applied {
                Ok(()) => return Ok(()),
                Err(e @ (RuntimeError::Store(_) | RuntimeError::NotCommitted(_))) => {
                    tracing::warn!(job = %self.record, error = %e, "stone event not committed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(Refused(e.to_string())),
            }
        }
    }
}
