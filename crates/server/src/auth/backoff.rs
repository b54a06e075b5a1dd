//! Back-off after failed sign-ins, per user name and per client address, and a bounded pool
//! for password checks.
//!
//! A password check costs tens of milliseconds of CPU and ~19 MiB by design; without bounds
//! a flood of wrong passwords takes the server to gigabytes and every request's latency to
//! seconds. Here a few wrong passwords are free, then each further one makes the user name,
//! from the address that sent them (and, with more failures, the client address), wait twice
//! as long, up to a minute, answered 429 with `Retry-After` at no cost; and at most one check
//! per core runs at a time, with a bounded queue behind them. Credentials that passed within
//! the last minute are remembered and pass without a check, so a user signed in meanwhile
//! keeps working.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Wrong passwords a user name may send before it must wait.
const FREE_PER_USER: u32 = 5;
/// Failed sign-ins a client address may make before it must wait.
const FREE_PER_ADDRESS: u32 = 20;
/// The longest wait.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// A record of failures is forgotten after this long without another.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// How many user names and addresses are tracked at most.
const MAX_TRACKED: usize = 100_000;
/// How many password checks may wait for a core; beyond, a sign-in is refused at once.
const MAX_WAITING: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    until: Instant,
}

/// What is tracked: a user name (as sent from one address, so that failures from one
/// client do not lock the user out everywhere), a bk-sops application, or a client address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Who {
    User(String, Option<IpAddr>),
    App(String),
    Address(IpAddr),
}

impl Who {
    fn free(&self) -> u32 {
        match self {
            Who::User(..) | Who::App(_) => FREE_PER_USER,
            Who::Address(_) => FREE_PER_ADDRESS,
        }
    }
}

/// Failed sign-ins, and the pool their checks run in.
pub(crate) struct Backoff {
    failures: Mutex<HashMap<Who, Failures>>,
    checks: Semaphore,
    waiting: AtomicUsize,
}

/// Why a check did not run.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Too many failures of this name or address: wait this long.
    Wait(Duration),
    /// Too many checks are queued already.
    Busy,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Backoff { failures: Mutex::default(), checks: Semaphore::new(cores), waiting: AtomicUsize::new(0) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Who, Failures>> {
        self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long the longest-waiting of `who` must still wait, if any must.
    pub(crate) fn blocked(&self, who: &[Who], now: Instant) -> Option<Duration> {
        let failures = self.lock();
        who.iter().filter_map(|w| failures.get(w)).filter(|f| f.until > now).map(|f| f.until - now).max()
    }

    /// Records a failed sign-in of each of `who`.
    pub(crate) fn failed(&self, who: &[Who], now: Instant) {
        let mut failures = self.lock();
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER && f.until > now);
            if failures.len() >= MAX_TRACKED {
                failures.clear();
            }
        }
        for w in who {
            let entry = failures.entry(w.clone()).or_insert(Failures { count: 0, last: now, until: now });
            if now.duration_since(entry.last) >= FORGET_AFTER {
                entry.count = 0;
            }
            entry.count += 1;
            entry.last = now;
            if let Some(over) = entry.count.checked_sub(w.free()) {
                let wait = Duration::from_secs(1u64 << over.min(6)).min(MAX_WAIT);
                entry.until = now + wait;
            }
        }
    }

    /// A sign-in passed: the failures of its name (not of its address) are forgotten.
    pub(crate) fn passed(&self, who: &[Who]) {
        let mut failures = self.lock();
        for w in who.iter().filter(|w| !matches!(w, Who::Address(_))) {
            failures.remove(w);
        }
    }

    /// Runs `check` (a password check of `who`) in the bounded pool, off the async workers,
    /// unless `who` must wait once its turn came: a burst of attempts that queued together is
    /// held as soon as the first of them failed.
    pub(crate) async fn check<F>(&self, who: &[Who], check: F) -> Result<bool, Refused>
    where
        F: FnOnce() -> bool + Send + 'static,
    {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Busy);
        }
        let permit = self.checks.acquire().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let _permit = permit.map_err(|_| Refused::Busy)?;
        if let Some(wait) = self.blocked(who, Instant::now()) {
            return Err(Refused::Wait(wait));
        }
        tokio::task::spawn_blocking(check).await.map_err(|_| Refused::Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_name_waits_twice_as_long_after_each_failure_past_the_free_ones() {
        let b = Backoff::new();
        let t0 = Instant::now();
        let kermit = [Who::User("kermit".into(), None)];
        for _ in 0..FREE_PER_USER - 1 {
            b.failed(&kermit, t0);
        }
        assert_eq!(b.blocked(&kermit, t0), None, "a few wrong passwords are free");
        b.failed(&kermit, t0);
        assert_eq!(b.blocked(&kermit, t0), Some(Duration::from_secs(1)));
        b.failed(&kermit, t0);
        assert_eq!(b.blocked(&kermit, t0), Some(Duration::from_secs(2)));
        for _ in 0..20 {
            b.failed(&kermit, t0);
        }
        assert_eq!(b.blocked(&kermit, t0), Some(MAX_WAIT), "capped");
        assert_eq!(b.blocked(&kermit, t0 + MAX_WAIT), None, "the wait ends");
        assert_eq!(b.blocked(&[Who::User("piggy".into(), None)], t0), None, "others are not held");
        b.passed(&kermit);
        assert_eq!(b.blocked(&kermit, t0), None);
    }

    #[test]
    fn an_address_trying_many_names_is_held_too() {
        let b = Backoff::new();
        let t0 = Instant::now();
        let addr = Who::Address(IpAddr::from([10, 0, 0, 1]));
        for i in 0..=FREE_PER_ADDRESS {
            b.failed(&[Who::User(format!("user{i}"), None), addr.clone()], t0);
        }
        assert!(b.blocked(&[Who::User("new".into(), None), addr], t0).is_some());
    }

    #[test]
    fn failures_long_ago_are_forgotten() {
        let b = Backoff::new();
        let t0 = Instant::now();
        let who = [Who::User("kermit".into(), None)];
        for _ in 0..FREE_PER_USER {
            b.failed(&who, t0);
        }
        let later = t0 + FORGET_AFTER;
        b.failed(&who, later);
        assert_eq!(b.blocked(&who, later), None, "counting starts again");
    }

    #[tokio::test]
    async fn checks_beyond_the_queue_are_refused_at_once() {
        let b = std::sync::Arc::new(Backoff::new());
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = std::sync::Arc::new(Mutex::new(hold));
        let mut running = Vec::new();
        for _ in 0..MAX_WAITING + 8 {
            let (b, hold) = (b.clone(), hold.clone());
            running.push(tokio::spawn(async move {
                b.check(&[], move || hold.lock().map(|h| h.recv().is_ok()).unwrap_or(false)).await
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(b.check(&[], || true).await, Err(Refused::Busy));
        for _ in 0..MAX_WAITING + 8 {
            let _ = release.send(());
        }
        drop(release);
        for r in running {
            let _ = r.await;
        }
        assert_eq!(b.check(&[], || true).await, Ok(true), "room again once they ran");
    }
}
