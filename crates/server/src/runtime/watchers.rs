//! Requests waiting for an instance's status to change (`"wait"` on `POST /process`, `?wait=`
//! on `GET /process/{id}`), and the console's live views waiting for any change of one: told
//! by the committer once a change is committed, instead of polling the store.

use super::{Runtime, RuntimeError};
use flowstone_store::InstanceRow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

/// The longest a request may wait.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// What a waiter is told: the instance's row as its commit wrote it, when the commit wrote
/// it (the change of a rollback, cancel or delete instance tells its parent without).
type Told = Option<InstanceRow>;

/// Waiters by instance id.
#[derive(Default)]
pub(crate) struct Watchers {
    waiting: Mutex<HashMap<String, Vec<oneshot::Sender<Told>>>>,
    /// How many instances are waited on: a commit with none to tell costs one atomic load.
    count: AtomicUsize,
}

impl Watchers {
    fn register(&self, id: &str) -> oneshot::Receiver<Told> {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        // Waiters whose request went away are dropped as others register.
        if let Some(list) = waiting.get_mut(id) {
            list.retain(|w| !w.is_closed());
        }
        waiting.entry(id.to_owned()).or_default().push(tx);
        self.count.store(waiting.len(), Ordering::Release);
        rx
    }

    /// Tells the waiters of `ids` that their instance's status changed, each with its row
    /// among those the commit `written`, if it wrote one.
    pub(crate) fn changed<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
        written: impl IntoIterator<Item = &'a InstanceRow>,
    ) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let told: Vec<(&str, Vec<oneshot::Sender<Told>>)> = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            let told = ids.into_iter().filter_map(|id| waiting.remove(id).map(|w| (id, w))).collect();
            self.count.store(waiting.len(), Ordering::Release);
            told
        };
        // Rows are looked up only for a commit someone waits on, and outside the lock.
        if told.is_empty() {
            return;
        }
        let written: HashMap<&str, &InstanceRow> = written.into_iter().map(|row| (row.id.as_str(), row)).collect();
        for (id, waiters) in told {
            for waiter in waiters {
                let _ = waiter.send(written.get(id).map(|row| (*row).clone()));
            }
        }
    }

    /// Waits until `id` is told of a change, or `wait` is over; whether it was.
    async fn told(&self, id: &str, wait: Duration) -> bool {
        let changed = self.register(id);
        let told = matches!(tokio::time::timeout(wait.min(MAX_WAIT), changed).await, Ok(Ok(_)));
        if !told {
            self.tidy(id);
        }
        told
    }

    /// Forgets the waiters of `id` whose request went away.
    fn tidy(&self, id: &str) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = waiting.get_mut(id) {
            list.retain(|w| !w.is_closed());
            if list.is_empty() {
                waiting.remove(id);
            }
        }
        self.count.store(waiting.len(), Ordering::Release);
    }
}

impl Runtime {
    /// Waits until a status change of instance `id` (or of the rollback, cancel or delete
    /// instance working for it) is committed, or `wait` is over; whether one was.
    pub async fn status_change(&self, id: &str, wait: Duration) -> bool {
        self.watchers.told(id, wait).await
    }

    /// Waits until any change of instance `id` is committed (a task record, a variable, its
    /// status), or `wait` is over; whether one was.
    pub(crate) async fn next_change(&self, id: &str, wait: Duration) -> bool {
        self.progress.told(id, wait).await
    }

    /// The instance `id` once `done` holds for it, or as it stands when `wait` is over; none
    /// for an unknown instance. Wakes when a status change of the instance (or of the
    /// rollback, cancel or delete instance working for it) is committed.
    ///
    /// # Errors
    /// A store failure.
    pub async fn wait_for(
        &self,
        id: &str,
        wait: Duration,
        done: impl Fn(&InstanceRow) -> bool,
    ) -> Result<Option<InstanceRow>, RuntimeError> {
        let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        loop {
            // Registered before reading, so that a change committed in between is not missed.
            let changed = self.watchers.register(id);
            let row = self.instance(id).await?;
            match &row {
                Some(r) if !done(r) && tokio::time::Instant::now() < deadline => {}
                _ => {
                    drop(changed);
                    self.watchers.tidy(id);
                    return Ok(row);
                }
            }
            match tokio::time::timeout_at(deadline, changed).await {
                // The row its commit wrote ends the wait without reading it back. One that does
                // not is read again after registering anew: a change committed meanwhile would
                // otherwise go unseen.
                Ok(Ok(Some(written))) if done(&written) => return Ok(Some(written)),
                Ok(_) => {}
                Err(_) => self.watchers.tidy(id),
            }
        }
    }
}
