//! Fires timers when they come due: those of instances, and those of timer start events,
//! each of whose firings starts an instance.
//!
//! The service sleeps until the earliest timer no server holds is nearly due (or a commit
//! sets an earlier one, or a second passes: another server sharing the database may have set
//! one), leases the timers due within [`AHEAD_MS`] to this server, and fires each at its due
//! time through the committer as a
//! [`Command::FireTimer`] naming the due time it fires for. The commit that applies the firing
//! removes the timer or moves it to its next due time, so a timer fires once however many
//! servers lease it: a firing that comes second finds the timer moved on and changes nothing
//! (the engine refuses it), and the row it leased is then forgotten. A server that dies while
//! holding timers loses them to another when their lease ends; timers that came due while
//! every server was down fire at the next start.

use crate::runtime::records::{Records, StartFired};
use crate::runtime::{Runtime, RuntimeError, now_ms};
use flowstone_engine::{Command, EngineError};
use flowstone_model::{Definition, NodeKind, Schedule, TimerDef, TimerTime};
use flowstone_store::{NewModel, TimerLease, TimerMove, TimerRow};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};

/// How many timers are leased at once.
const BATCH: u64 = 512;
/// How many firings wait for their commit at once.
const IN_FLIGHT: usize = 2048;
/// How long the service sleeps at most: timers set by other servers are seen this late.
const POLL: Duration = Duration::from_secs(1);
/// How far ahead timers are leased: each waits here for its due time, so that a lease taken
/// behind the database's writer (SQLite has one) or a slow query does not make it late.
const AHEAD_MS: i64 = 250;

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
            // A stopped server takes no more timers (a busy one may not pass the select below
            // for a while).
            if *stopped.borrow() {
                return;
            }
            // Only when something is due (or a lease ended) does the service take the writer's
            // lock to lease: an idle server reads once a second.
            let now = now_ms();
            let next = match runtime.store().next_timer(now + AHEAD_MS).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read when the next timer is due");
                    None
                }
            };
            if next.is_some_and(|due| due <= now + AHEAD_MS) {
                let until = now + AHEAD_MS + lease.as_millis() as i64;
                let due = TimerLease { owner: &node, now: now + AHEAD_MS, until, limit: BATCH };
                let leased = match runtime.store().lease_timers(due).await {
                    Ok(leased) => leased,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not lease due timers");
                        tokio::time::sleep(POLL).await;
                        continue;
                    }
                };
                if leased.is_empty() {
                    // Leased elsewhere meanwhile: look again after a breath.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                for timer in leased {
                    let Ok(permit) = permits.clone().acquire_owned().await else { return };
                    let runtime = runtime.clone();
                    tokio::spawn(async move {
                        let wait = timer.due.saturating_sub(now_ms());
                        if wait > 0 {
                            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                        }
                        fire(&runtime, timer).await;
                        drop(permit);
                    });
                }
                continue;
            }
            let wait = next.map_or(POLL, |next| {
                Duration::from_millis(next.saturating_sub(now + AHEAD_MS).max(0) as u64).min(POLL)
            });
            tokio::select! {
                _ = stopped.changed() => return,
                () = bell.0.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    });
}

/// The timers of the timer start events of models being deployed, due first at `now` or
/// later, under the key (and tenant) they start instances of: a new version's replaces the
/// old one's, and a new version without one ends the old one's (as Flowable does).
pub(super) fn start_timers(
    models: &[NewModel],
    defs: &[Definition],
    tenant: Option<&str>,
    now: i64,
) -> (Vec<TimerRow>, Vec<String>) {
    let (mut set, mut dropped) = (Vec::new(), Vec::new());
    for (model, def) in models.iter().zip(defs) {
        let record_id = match tenant {
            Some(tenant) => format!("start:{tenant}:{}", model.key),
            None => format!("start:{}", model.key),
        };
        let first = def.timer_start.and_then(|node| {
            let NodeKind::TimerStart(timer) = &def.node(node).kind else { return None };
            let due = start_schedule(timer)?.first(now)?;
            Some(TimerRow {
                record_id: record_id.clone(),
                instance_id: String::new(),
                element: def.node(node).id.clone(),
                due,
                owner: None,
                locked_until: None,
                model_id: Some(model.id.clone()),
                fired: 0,
            })
        });
        match first {
            Some(timer) => set.push(timer),
            None => dropped.push(record_id),
        }
    }
    (set, dropped)
}

/// A timer start event's schedule (its time was checked at deploy, and is no expression).
fn start_schedule(timer: &TimerDef) -> Option<Schedule> {
    match &timer.time {
        TimerTime::Fixed(text) => timer.schedule(text).ok(),
        TimerTime::Expr(_) => None,
    }
}

/// Starts the instance a timer start event's timer fired for, moving the timer on.
async fn fire_start(runtime: &Runtime, timer: &TimerRow) -> Result<(), RuntimeError> {
    let gone = || RuntimeError::NotFound(format!("timer {} starts no model any more", timer.record_id));
    let model = runtime.model(timer.model_id.as_deref().unwrap_or_default()).await?.ok_or_else(gone)?;
    let def = runtime.definition(&model)?;
    let node = def.timer_start.ok_or_else(gone)?;
    let NodeKind::TimerStart(time) = &def.node(node).kind else { return Err(gone()) };
    let fired = timer.fired + 1;
    let next = start_schedule(time)
        .and_then(|s| s.next(timer.due, u32::try_from(fired).unwrap_or(u32::MAX)))
        .map(|due| (due, fired));
    let moved = TimerMove { record_id: timer.record_id.clone(), from: timer.due, to: next };
    let fired = Some(StartFired { moved, model, def, node });
    runtime.write_records(Records { fired, ..Records::default() }).await
}

impl Runtime {
    /// Fires a timer for its due time, whatever it belongs to: an instance, a timer start
    /// event (an instance starts), a bk-sops periodic or clocked task (a task starts).
    ///
    /// # Errors
    /// [`RuntimeError::Conflict`] with [`EngineError::TimerNotSet`] when it fired or moved
    /// meanwhile, [`RuntimeError::NotFound`] when what it belongs to is gone, or as a commit
    /// fails.
    pub async fn fire_timer_now(&self, timer: &TimerRow) -> Result<(), RuntimeError> {
        if timer.model_id.is_some() {
            fire_start(self, timer).await
        } else if let Some(periodic) = super::periodic::periodic_of(&timer.record_id) {
            super::periodic::fire(self, periodic, timer).await
        } else if let Some(clocked) = super::clocked::clocked_of(&timer.record_id) {
            super::clocked::fire(self, clocked, timer).await
        } else {
            self.apply(&timer.instance_id, Command::FireTimer { timer: timer.record_id.clone(), due: timer.due }).await
        }
    }

    /// Drops a timer start event's schedule: no more instances start from it until its model
    /// is deployed again.
    ///
    /// # Errors
    /// As a commit fails.
    pub async fn drop_start_timer(&self, record_id: &str) -> Result<(), RuntimeError> {
        self.write_records(Records { dropped_timers: vec![record_id.to_owned()], ..Records::default() }).await
    }
}

/// What a timer belongs to, as metrics name it.
fn kind_of(timer: &TimerRow) -> &'static str {
    if timer.model_id.is_some() {
        "start"
    } else if super::periodic::periodic_of(&timer.record_id).is_some() {
        "periodic"
    } else if super::clocked::clocked_of(&timer.record_id).is_some() {
        "clocked"
    } else {
        "instance"
    }
}

/// Fires one timer; one its instance no longer waits for is forgotten.
async fn fire(runtime: &Runtime, timer: TimerRow) {
    let fired = runtime.fire_timer_now(&timer).await;
    match fired {
        Ok(()) => runtime.metrics().timer_fired(kind_of(&timer), timer.due),
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
