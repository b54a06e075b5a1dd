//! The workers that fetch jobs, as far as this server has seen them: a line in the log when
//! one joins (its first fetch) and when it leaves (no fetch for [`GONE_AFTER`] and none under
//! way) — how an operator notices a stone that no one serves any more — and the topics they
//! fetch, which bk-sops lists as plugins.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a worker with no fetch under way may stay away before it counts as gone.
pub(crate) const GONE_AFTER: Duration = Duration::from_secs(60);
/// How often the roster looks for workers gone.
const SWEEP: Duration = Duration::from_secs(10);
/// How many workers are followed at most: worker ids come from callers, and a caller making
/// up a new one per fetch must not grow the server's memory.
const MAX_WORKERS: usize = 10_000;
/// How many topics of a worker are kept, and how long one may be to be kept, for the same
/// reason (a topic past that is no stone's name anyone lists).
const MAX_TOPICS: usize = 64;
const MAX_TOPIC_BYTES: usize = 200;

struct Seen {
    last: Instant,
    /// Fetches under way (a long poll waits up to a minute).
    fetching: u32,
    /// The topics of its latest fetch.
    topics: Vec<String>,
}

/// See the module documentation.
#[derive(Default)]
pub(crate) struct Roster {
    workers: Mutex<HashMap<String, Seen>>,
}

/// A fetch under way: the worker is present until it ends.
pub(crate) struct Fetching<'a> {
    roster: &'a Roster,
    worker: String,
}

impl Drop for Fetching<'_> {
    fn drop(&mut self) {
        let mut workers = self.roster.workers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(seen) = workers.get_mut(&self.worker) {
            seen.fetching = seen.fetching.saturating_sub(1);
            seen.last = Instant::now();
        }
    }
}

impl Roster {
    /// `worker` fetches jobs of `topics` (logged when it is new) until the guard drops.
    pub(crate) fn fetching(&self, worker: &str, topics: &[&str]) -> Fetching<'_> {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let room = workers.len() < MAX_WORKERS;
        let listed = || topics.iter().filter(|t| t.len() <= MAX_TOPIC_BYTES).take(MAX_TOPICS);
        let kept = || listed().map(|t| (*t).to_owned()).collect();
        match workers.get_mut(worker) {
            Some(seen) => {
                seen.fetching += 1;
                seen.last = Instant::now();
                if seen.topics.iter().map(String::as_str).ne(listed().copied()) {
                    seen.topics = kept();
                }
            }
            None if room => {
                tracing::info!(target: "flowstone::lifecycle", %worker, topics = %topics.join(","), "worker joined");
                workers.insert(worker.to_owned(), Seen { last: Instant::now(), fetching: 1, topics: kept() });
            }
            None => {}
        }
        Fetching { roster: self, worker: worker.to_owned() }
    }

    /// How many workers are present.
    pub(crate) fn len(&self) -> usize {
        self.workers.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The topics the workers present fetch, each once, in order.
    pub(crate) fn topics(&self) -> std::collections::BTreeSet<String> {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.values().flat_map(|seen| seen.topics.iter().cloned()).collect()
    }

    /// The workers present, by id: their topics, whether a fetch of theirs is under way, and
    /// how long ago they last fetched.
    pub(crate) fn present(&self) -> Vec<(String, Vec<String>, bool, Duration)> {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let mut present: Vec<_> = workers
            .iter()
            .map(|(id, seen)| (id.clone(), seen.topics.clone(), seen.fetching > 0, seen.last.elapsed()))
            .collect();
        present.sort_by(|a, b| a.0.cmp(&b.0));
        present
    }

    /// How many workers present fetch each topic, for the `at_most` topics most fetched (by
    /// name among equals); the workers of the rest are summed under `None`.
    pub(crate) fn per_topic(&self, at_most: usize) -> Vec<(Option<String>, usize)> {
        let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        for topic in workers.values().flat_map(|seen| &seen.topics) {
            *counts.entry(topic).or_default() += 1;
        }
        let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let rest: usize = counts.iter().skip(at_most).map(|(_, n)| n).sum();
        let mut listed: Vec<(Option<String>, usize)> =
            counts.into_iter().take(at_most).map(|(t, n)| (Some(t.to_owned()), n)).collect();
        if rest > 0 {
            listed.push((None, rest));
        }
        listed
    }

    /// Forgets the workers gone at `now`, logging each; answers how many there were.
    pub(crate) fn sweep(&self, now: Instant) -> usize {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let before = workers.len();
        workers.retain(|worker, seen| {
            let gone = seen.fetching == 0 && now.saturating_duration_since(seen.last) >= GONE_AFTER;
            if gone {
                tracing::info!(target: "flowstone::lifecycle", %worker, "worker left");
            }
            !gone
        });
        before - workers.len()
    }

    /// Sweeps every few seconds until the server stops.
    pub(crate) async fn watch(&self, mut stopped: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(SWEEP);
        loop {
            tokio::select! {
                _ = stopped.changed() => return,
                _ = ticks.tick() => {
                    self.sweep(Instant::now());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_is_gone_only_after_a_minute_with_no_fetch_under_way() {
        let roster = Roster::default();
        let start = Instant::now();
        let polling = roster.fetching("w1", &["MachineStone"]);
        drop(roster.fetching("w2", &["MachineStone"]));
        assert_eq!(roster.topics().into_iter().collect::<Vec<_>>(), ["MachineStone"]);
        assert_eq!(roster.sweep(start + GONE_AFTER * 2), 1, "w2 is gone, w1 still waits in a long poll");
        drop(polling);
        assert_eq!(roster.sweep(Instant::now() + GONE_AFTER / 2), 0, "w1 fetched just now");
        assert_eq!(roster.sweep(Instant::now() + GONE_AFTER), 1);
    }

    #[test]
    fn workers_are_counted_per_topic_with_the_least_fetched_summed() {
        let roster = Roster::default();
        drop(roster.fetching("w1", &["a", "b", "c"]));
        drop(roster.fetching("w2", &["b", "c"]));
        drop(roster.fetching("w3", &["c"]));
        let count = |at_most| roster.per_topic(at_most);
        assert_eq!(count(3), [(Some("c".into()), 3), (Some("b".into()), 2), (Some("a".into()), 1)]);
        assert_eq!(count(1), [(Some("c".into()), 3), (None, 3)]);
    }

    #[test]
    fn a_workers_topics_are_kept_within_their_bounds() {
        let roster = Roster::default();
        let long = "x".repeat(MAX_TOPIC_BYTES + 1);
        let many: Vec<String> = (0..MAX_TOPICS + 10).map(|i| format!("t{i}")).collect();
        let mut topics: Vec<&str> = vec![long.as_str()];
        topics.extend(many.iter().map(String::as_str));
        drop(roster.fetching("w", &topics));
        let kept = roster.topics();
        assert_eq!(kept.len(), MAX_TOPICS);
        assert!(!kept.contains(&long), "a topic too long to be a stone's name is not kept");
    }

    #[test]
    fn made_up_worker_ids_do_not_grow_the_roster_past_its_bound() {
        let roster = Roster::default();
        for i in 0..MAX_WORKERS + 100 {
            drop(roster.fetching(&format!("w{i}"), &[]));
        }
        assert_eq!(roster.workers.lock().map(|w| w.len()).unwrap_or_default(), MAX_WORKERS);
    }
}
