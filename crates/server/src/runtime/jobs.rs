//! The job board: where workers wait for stone jobs (long-poll fetch-and-lock).
//!
//! A fetch takes a lease on free jobs of its topics at once; when there are none it waits
//! until the committer commits new jobs (or, on a shared database, another server's commit
//! is heard through `LISTEN`), and tries again. Leases that end while it waits are noticed
//! within a second.

use flowstone_engine::Action;
use flowstone_store::{Acquire, JobRow, Store, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A job as a worker gets it, locked until its lease ends.
pub(crate) fn locked_job(row: JobRow) -> flowstone_worker::protocol::LockedJob {
    let traceparent = flowstone_worker::protocol::traceparent(&row.instance_id, &row.job.record_id);
    flowstone_worker::protocol::LockedJob {
        traceparent: Some(traceparent),
        id: row.job.record_id,
        process_instance_id: row.instance_id,
        stone: row.job.stone,
        action: row.job.action,
        params: row.job.params,
        outputs: row.job.outputs,
        locked_until: row.locked_until.unwrap_or_default(),
        retries: row.retries,
        queued_at: Some(row.created_at),
    }
}

/// How often a waiting fetch looks again for jobs whose lease ended meanwhile.
const LEASE_SWEEP: Duration = Duration::from_secs(1);

/// Wakes waiting fetches when jobs for workers may be free.
#[derive(Default)]
pub(crate) struct JobBoard {
    notify: Notify,
    closed: AtomicBool,
    /// Set as the server stops: long-lived answers (the console's live streams) end.
    closing: tokio::sync::watch::Sender<bool>,
    /// The workers that fetch here.
    pub(crate) roster: crate::roster::Roster,
}

/// What one fetch asks for.
pub(crate) struct Wanted<'a> {
    pub(crate) topics: &'a [&'a str],
    pub(crate) worker: &'a str,
    pub(crate) max: u64,
    pub(crate) lock: Duration,
    pub(crate) wait: Duration,
    /// Only jobs asking for this action; any when none.
    pub(crate) action: Option<Action>,
}

impl JobBoard {
    /// New jobs were committed, or jobs were handed back.
    pub(crate) fn wake(&self) {
        self.notify.notify_waiters();
    }

    /// Resolves at the next [`JobBoard::wake`].
    #[cfg(feature = "amqp")]
    pub(crate) fn woken(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// The server stops: waiting fetches answer now, with what they have.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.closing.send_replace(true);
        self.wake();
    }

    /// Turns true as the server stops.
    pub(crate) fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Leases up to `max` free jobs to `worker`, waiting up to `wait` for the first.
    pub(crate) async fn fetch(&self, store: &dyn Store, wanted: Wanted<'_>) -> Result<Vec<JobRow>, StoreError> {
        let _present = self.roster.fetching(wanted.worker, wanted.topics);
        let deadline = Instant::now() + wanted.wait;
        loop {
            // Registered before looking, so that a commit in between is not missed.
            let woken = self.notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let now = crate::runtime::now_ms();
            let acquire = Acquire {
                stones: wanted.topics,
                owner: wanted.worker,
                now,
                until: now + wanted.lock.as_millis() as i64,
                include_own: false,
                limit: wanted.max,
                action: wanted.action.map(Action::name),
            };
            let jobs = store.acquire_jobs(acquire).await?;
            if !jobs.is_empty() || Instant::now() >= deadline || self.closed.load(Ordering::SeqCst) {
                return Ok(jobs);
            }
            let sweep = (Instant::now() + LEASE_SWEEP).min(deadline);
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep_until(sweep) => {}
            }
        }
    }
}
