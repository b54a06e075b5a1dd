//! Fires timers when they come due.
//!
//! The service sleeps until the earliest timer no server holds is due (or a commit sets an
//! earlier one, or a second passes: another server sharing the database may have set one),
//! leases the due timers to this server, and fires each through the committer as a
//! [`Command::FireTimer`] naming the due time it fires for. The commit that applies the firing
//! removes the timer or moves it to its next due time, so a timer fires once however many
//! servers lease it: a firing that comes second finds the timer moved on and changes nothing
//! (the engine refuses it), and the row it leased is then forgotten. A server that dies while
//! holding timers loses them to another when their lease ends; timers that came due while
//! every server was down fire at the next start.

use crate::runtime::{Runtime, RuntimeError, now_ms};
use flowstone_engine::{Command, EngineError};
use flowstone_store::{TimerLease, TimerRow};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};

/// How many timers are leased at once.
const BATCH: u64 = 512;
/// How many firings wait for their commit at once.
const IN_FLIGHT: usize = 2048;
/// How long the service sleeps at most: timers set by other servers are seen this late.
const POLL: Duration = Duration::from_secs(1);

/// Wakes the timer service when a commit set timers.
#[derive(Default)]
pub(crate) struct TimerBell(Notify);

impl TimerBell {
    /// A commit set timers: one may be due before the service planned to look.
    pub(crate) fn ring(&self) {
        self.0.notify_one();
    }
}

/// Starts the service on the server's runtime; it stops when the runtime stops.
pub(crate) fn start(runtime: Runtime, node: String, lease: Duration, mut stopped: watch::Receiver<bool>) {
    let bell = runtime.timer_bell.clone();
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    tokio::spawn(async move {
        loop {
            let now = now_ms();
            let due = TimerLease { owner: &node, now, until: now + lease.as_millis() as i64, limit: BATCH };
            let leased = match runtime.store().lease_timers(due).await {
                Ok(leased) => leased,
                Err(e) => {
                    tracing::warn!(error = %e, "could not lease due timers");
                    Vec::new()
                }
            };
            let full = leased.len() as u64 == BATCH;
            for timer in leased {
                let Ok(permit) = permits.clone().acquire_owned().await else { return };
                let runtime = runtime.clone();
                tokio::spawn(async move {
                    fire(&runtime, timer).await;
                    drop(permit);
                });
            }
            if full {
                continue; // more are due
            }
            let wait = match runtime.store().next_timer().await {
                Ok(Some(next)) => Duration::from_millis(next.saturating_sub(now_ms()).max(0) as u64).min(POLL),
                Ok(None) => POLL,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read when the next timer is due");
                    POLL
                }
            };
            if wait.is_zero() {
                // Due, but leased elsewhere or just set: look again after a breath.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            tokio::select! {
                _ = stopped.changed() => return,
                () = bell.0.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    });
}

/// Fires one timer; one its instance no longer waits for is forgotten.
async fn fire(runtime: &Runtime, timer: TimerRow) {
    let command = Command::FireTimer { timer: timer.record_id.clone(), due: timer.due };
    match runtime.apply(&timer.instance_id, command).await {
        Ok(()) => {}
        Err(
            RuntimeError::Conflict(EngineError::TimerNotSet(_) | EngineError::NotRunning(_))
            | RuntimeError::NotFound(_),
        ) => {
            if let Err(e) = runtime.store().forget_timer(&timer.record_id, timer.due).await {
                tracing::warn!(error = %e, timer = %timer.record_id, "could not forget a timer");
            }
        }
        // Its lease ends and it is fired again.
        Err(e) => tracing::warn!(error = %e, timer = %timer.record_id, "could not fire a timer"),
    }
}
