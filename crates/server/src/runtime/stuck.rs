//! Stuck work: stone jobs no worker takes, callbacks awaited too long, instances without a
//! step, timers overdue. Listed on demand (`GET /stuck`), and swept every minute: counted in metrics and
//! logged once each while it stays stuck.

use super::{Runtime, RuntimeError, now_ms};
use flowstone_store::Stuck;
use std::collections::HashSet;
use std::time::Duration;

/// How often the sweep looks.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How many of each kind the sweep reads (and remembers as logged) at most.
const SWEEP_LIMIT: u64 = 1_000;

/// What has not moved for a while, with what the server knows of why.
#[derive(Debug, Default)]
pub struct StuckWork {
    /// The lists, oldest first.
    pub stuck: Stuck,
    /// The stones some worker present fetches now (those of in-process stones are taken at
    /// once, so a job of theirs is never listed).
    pub fetched: std::collections::BTreeSet<String>,
}

impl StuckWork {
    /// Why a stone's job stays in the queue.
    pub fn why_waiting(&self, stone: &str) -> String {
        if self.fetched.contains(stone) {
            format!("workers fetch `{stone}` but none took this job")
        } else {
            format!("no worker fetches `{stone}`")
        }
    }
}

impl Runtime {
    /// What has not moved since `before` (milliseconds since the epoch), each list at most
    /// `limit` long.
    ///
    /// # Errors
    /// A store failure.
    pub async fn stuck(&self, before: i64, limit: u64) -> Result<StuckWork, RuntimeError> {
        let stuck = self.store.stuck(before, now_ms(), limit).await?;
        Ok(StuckWork { stuck, fetched: self.board.roster.topics() })
    }

    /// Sweeps for work stuck longer than `after` every minute until the runtime stops: sets
    /// the `flowstone_stuck` gauges, and logs each item once when it is first found stuck.
    pub(super) fn sweep_stuck(&self, after: Duration) {
        let (rt, mut stopped) = (self.clone(), self.stop.subscribe());
        tokio::spawn(async move {
            let mut logged: HashSet<String> = HashSet::new();
            loop {
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => return,
                    () = tokio::time::sleep(SWEEP_EVERY.min(after).max(Duration::from_secs(1))) => {}
                }
                let before = now_ms().saturating_sub(i64::try_from(after.as_millis()).unwrap_or(i64::MAX));
                match rt.stuck(before, SWEEP_LIMIT).await {
                    Ok(work) => logged = rt.report_stuck(&work, &logged),
                    Err(e) => tracing::warn!(error = %e, "could not look for stuck work"),
                }
            }
        });
    }

    /// Counts `work` and logs what `logged` does not hold; answers what is logged now (what
    /// stopped being stuck is forgotten, and logged again should it stick again).
    fn report_stuck(&self, work: &StuckWork, logged: &HashSet<String>) -> HashSet<String> {
        let Stuck { jobs, callbacks, instances, timers, pending_timers } = &work.stuck;
        self.metrics().set_stuck(
            [
                ("job", jobs.len()),
                ("callback", callbacks.len()),
                ("instance", instances.len()),
                ("timer", timers.len()),
            ],
            *pending_timers,
        );
        let mut now_logged = HashSet::new();
        let mut first = |key: String| {
            let new = !logged.contains(&key);
            now_logged.insert(key);
            new
        };
        for job in jobs {
            let (task, stone) = (&job.job.record_id, &job.job.stone);
            if first(format!("job {task}")) {
                let (instance, why) = (&job.instance_id, work.why_waiting(stone));
                tracing::warn!(target: "flowstone::lifecycle", %task, %instance, %stone, queued_at = job.created_at, %why, "stone job stuck");
            }
        }
        for task in callbacks {
            let (record, instance) = (&task.record.id, &task.instance_id);
            if first(format!("callback {record}")) {
                let stone = task.record.stone.as_deref().unwrap_or("-");
                tracing::warn!(target: "flowstone::lifecycle", task = %record, %instance, %stone, since = task.record.create_time, "callback awaited too long");
            }
        }
        for (row, last_step) in instances {
            if first(format!("instance {}", row.id)) {
                tracing::warn!(target: "flowstone::lifecycle", id = %row.id, key = %row.model_key, status = %row.status, last_step, "instance without a step");
            }
        }
        for timer in timers {
            if first(format!("timer {}@{}", timer.record_id, timer.due)) {
                let (record, instance, owner) = (&timer.record_id, &timer.instance_id, timer.owner.as_deref());
                let held = owner.unwrap_or("-");
                tracing::warn!(target: "flowstone::lifecycle", timer = %record, %instance, element = %timer.element, due = timer.due, held_by = %held, "timer overdue");
            }
        }
        now_logged
    }
}
