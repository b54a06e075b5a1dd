//! What the server counts, served at `GET /metrics` in the Prometheus text format
//! (OpenMetrics): requests, instances, commits and workers, named as the ecosystem names them
//! (`flowstone_…_total`, `…_seconds`). Labels come from bounded sets only — route templates,
//! not paths; model keys, which only operators deploy — so no caller can grow the series.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

type Labels<const N: usize> = [(&'static str, String); N];
type Histograms<const N: usize> = Family<Labels<N>, Histogram, fn() -> Histogram>;

fn seconds() -> Histogram {
    // 0.5 ms to ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The server's counters, one set per runtime.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<Labels<3>, Counter>,
    request_seconds: Histograms<2>,
    started: Family<Labels<2>, Counter>,
    ended: Family<Labels<3>, Counter>,
    jobs: Family<Labels<2>, Counter>,
    group_requests: Histogram,
    commit_seconds: Histogram,
    commit_failures: Family<Labels<1>, Counter>,
    commits_beside: Counter,
    workers: Gauge,
    workers_polling: Family<Labels<1>, Gauge>,
    jobs_waiting: Family<Labels<2>, Gauge>,
    oldest_waiting: Family<Labels<2>, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pruned: Counter,
    stuck: Family<Labels<1>, Gauge>,
    handed_out: Family<Labels<2>, Counter>,
    handout_seconds: Histograms<1>,
    finished: Family<Labels<3>, Counter>,
    lifetime_seconds: Histograms<1>,
    timers_fired: Family<Labels<1>, Counter>,
    timer_lateness: Histograms<1>,
    timers_pending: Gauge,
    throughput: crate::throughput::Throughput,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("flowstone");
        let m = Metrics {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(seconds),
            started: Family::default(),
            ended: Family::default(),
            jobs: Family::default(),
            group_requests: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            commit_seconds: seconds(),
            commit_failures: Family::default(),
            commits_beside: Counter::default(),
            workers: Gauge::default(),
            workers_polling: Family::default(),
            jobs_waiting: Family::default(),
            oldest_waiting: Family::default(),
            pruned: Counter::default(),
            stuck: Family::default(),
            handed_out: Family::default(),
            handout_seconds: Family::new_with_constructor(seconds),
            finished: Family::default(),
            lifetime_seconds: Family::new_with_constructor(seconds),
            timers_fired: Family::default(),
            timer_lateness: Family::new_with_constructor(seconds),
            timers_pending: Gauge::default(),
            throughput: crate::throughput::Throughput::default(),
            registry: Registry::default(),
        };
        registry.register("http_requests", "HTTP requests answered, by method, route and status", m.requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request (until its headers), by method and route",
            m.request_seconds.clone(),
        );
        registry.register("instances_started", "Instances started, by model key and kind", m.started.clone());
        registry.register(
            "instances_ended",
            "Instances ended (completed, failed, canceled), by model key, kind and status",
            m.ended.clone(),
        );
        registry.register("jobs_created", "Stone jobs queued, by stone and action", m.jobs.clone());
        registry.register(
            "commit_group_requests",
            "Requests committed together in one transaction",
            m.group_requests.clone(),
        );
        registry.register("commit_duration_seconds", "Time of one group's commit", m.commit_seconds.clone());
        registry.register(
            "commit_failures",
            "Commit groups that wrote nothing, by reason (conflict, data, database)",
            m.commit_failures.clone(),
        );
        registry.register(
            "commits_beside",
            "Groups whose commit began while another group's was under way (PostgreSQL; groups sharing no instance)",
            m.commits_beside.clone(),
        );
        registry.register("workers", "Workers fetching jobs from this server", m.workers.clone());
        registry.register(
            "workers_polling",
            "Workers fetching jobs of each stone (the 100 stones most fetched; the rest under `other`)",
            m.workers_polling.clone(),
        );
        registry.register("jobs_waiting", "Stone jobs no one holds, by stone and action", m.jobs_waiting.clone());
        registry.register(
            "jobs_oldest_waiting_seconds",
            "Age of the oldest stone job no one holds, by stone",
            m.oldest_waiting.clone(),
        );
        registry.register(
            "instances_pruned",
            "Ended instances deleted by history retention (called processes, rollback, cancel and delete instances included)",
            m.pruned.clone(),
        );
        registry.register(
            "jobs_handed_out",
            "Stone jobs handed to a stone (in-process) or a worker (fetched), by stone and action",
            m.handed_out.clone(),
        );
        registry.register(
            "job_handout_seconds",
            "Time from a job's queueing to its hand-out, by stone",
            m.handout_seconds.clone(),
        );
        registry.register(
            "jobs_finished",
            "Stone jobs whose action ended, by stone, action and outcome (success, failed, passed)",
            m.finished.clone(),
        );
        registry.register(
            "job_lifetime_seconds",
            "Time from a stone task's first job queued to the end of its last action, by stone",
            m.lifetime_seconds.clone(),
        );
        registry.register(
            "stuck",
            "Work that has not moved for --stuck-after, by kind (job: no worker took it; callback: awaited; instance: no step; timer: due, not fired), as the last sweep found it (at most 1,000 each)",
            m.stuck.clone(),
        );
        registry.register(
            "timers_fired",
            "Timers fired by this server, by kind (instance: a timer event of an instance; start: a timer start event; periodic, clocked: bk-sops tasks)",
            m.timers_fired.clone(),
        );
        registry.register(
            "timer_lateness_seconds",
            "Time from a timer's due time to its firing's commit, by kind",
            m.timer_lateness.clone(),
        );
        registry.register(
            "timers_pending",
            "Timers set, due or not, as the last stuck-work sweep counted them",
            m.timers_pending.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// The text a scrape gets.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    pub(crate) fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        // Any token is a method, and requests are counted before sign-in: a made-up one must
        // not add a series.
        const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
        let method = if KNOWN.contains(&method) { method } else { "other" };
        let (method, route) = (method.to_owned(), route.to_owned());
        self.requests
            .get_or_create(&[("method", method.clone()), ("route", route.clone()), ("status", status.to_string())])
            .inc();
        self.request_seconds.get_or_create(&[("method", method), ("route", route)]).observe(took.as_secs_f64());
    }

    pub(crate) fn instance_started(&self, key: &str, kind: &str) {
        self.started.get_or_create(&[("model", key.to_owned()), ("kind", kind.to_owned())]).inc();
    }

    pub(crate) fn instance_ended(&self, key: &str, kind: &str, status: &str) {
        let labels = [("model", key.to_owned()), ("kind", kind.to_owned()), ("status", status.to_owned())];
        self.ended.get_or_create(&labels).inc();
    }

    pub(crate) fn job_created(&self, stone: &str, action: &str) {
        self.jobs.get_or_create(&[("stone", stone.to_owned()), ("action", action.to_owned())]).inc();
    }

    pub(crate) fn committed(&self, requests: usize, took: Duration) {
        self.group_requests.observe(requests as f64);
        self.commit_seconds.observe(took.as_secs_f64());
    }

    pub(crate) fn committing_beside(&self) {
        self.commits_beside.inc();
    }

    pub(crate) fn commit_failed(&self, reason: &'static str) {
        self.commit_failures.get_or_create(&[("reason", reason.to_owned())]).inc();
    }

    pub(crate) fn instances_pruned(&self, count: u64) {
        self.pruned.inc_by(count);
    }

    /// A job queued at `queued_at` was handed out now.
    pub(crate) fn job_handed_out(&self, stone: &str, action: &str, queued_at: i64) {
        self.handed_out.get_or_create(&[("stone", stone.to_owned()), ("action", action.to_owned())]).inc();
        let waited = (crate::runtime::now_ms() - queued_at).max(0) as f64 / 1000.0;
        self.handout_seconds.get_or_create(&[("stone", stone.to_owned())]).observe(waited);
    }

    /// A stone task's action ended with `outcome`; `took` since its first job, when the task
    /// ended with it.
    pub(crate) fn job_finished(&self, stone: &str, action: &str, outcome: &str, took: Option<Duration>) {
        let labels = [("stone", stone.to_owned()), ("action", action.to_owned()), ("outcome", outcome.to_owned())];
        self.finished.get_or_create(&labels).inc();
        self.throughput.ended(stone, crate::runtime::now_ms().div_euclid(60_000));
        if let Some(took) = took {
            self.lifetime_seconds.get_or_create(&[("stone", stone.to_owned())]).observe(took.as_secs_f64());
        }
    }

    /// Stone actions ended per minute over the last hour, for the console.
    pub(crate) fn throughput(&self) -> &crate::throughput::Throughput {
        &self.throughput
    }

    /// What the last sweep found stuck: how many of each kind.
    pub(crate) fn set_stuck(&self, counts: [(&str, usize); 4], pending_timers: u64) {
        for (kind, count) in counts {
            self.stuck.get_or_create(&[("kind", kind.to_owned())]).set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.timers_pending.set(i64::try_from(pending_timers).unwrap_or(i64::MAX));
    }

    /// A timer of `kind` due at `due` fired, committed now.
    pub(crate) fn timer_fired(&self, kind: &str, due: i64) {
        let labels = [("kind", kind.to_owned())];
        self.timers_fired.get_or_create(&labels).inc();
        let late = (crate::runtime::now_ms() - due).max(0) as f64 / 1000.0;
        self.timer_lateness.get_or_create(&labels).observe(late);
    }

    /// The workers present, and how many fetch each stone (`None`: the stones past the
    /// listed ones).
    pub(crate) fn set_workers(&self, count: usize, per_stone: &[(Option<String>, usize)]) {
        self.workers.set(i64::try_from(count).unwrap_or(i64::MAX));
        self.workers_polling.clear();
        for (stone, count) in per_stone {
            let stone = stone.clone().unwrap_or_else(|| "other".to_owned());
            self.workers_polling.get_or_create(&[("stone", stone)]).set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
    }

    /// The jobs waiting now, per stone (count, when the oldest was queued), as of `now`; stones
    /// with none left drop out.
    pub(crate) fn set_waiting(&self, waiting: &[(String, String, i64, i64)], now: i64) {
        self.jobs_waiting.clear();
        self.oldest_waiting.clear();
        for (stone, action, count, oldest) in waiting {
            let labels = [("stone", stone.clone()), ("action", action.clone())];
            self.jobs_waiting.get_or_create(&labels).set(*count);
            self.oldest_waiting.get_or_create(&labels).set((now - oldest).max(0) as f64 / 1000.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_are_counted_as_one_series() {
        let metrics = Metrics::default();
        for method in ["FOO", "BAR", "BAZ"] {
            metrics.request(method, "unmatched", 405, Duration::ZERO);
        }
        let text = metrics.render();
        assert!(
            text.contains(r#"flowstone_http_requests_total{method="other",route="unmatched",status="405"} 3"#),
            "{text}"
        );
        assert!(!text.contains("FOO"), "{text}");
    }
}
