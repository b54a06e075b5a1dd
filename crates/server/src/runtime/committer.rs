//! The committer: the one place where instances change.
//!
//! It takes every request waiting on its channel, applies them in order to the live
//! instances in memory (so commands for one instance never race inside a server), and writes
//! what they changed in one transaction. Every answer, a refusal included, is sent only once
//! that transaction has committed. While one group commits, the next is applied in memory;
//! on a database that takes concurrent writers (PostgreSQL), a group that shares no instance
//! with the one committing, and writes nothing beyond its instances, commits beside it.
//!
//! Across servers sharing a database, each instance write names the version it was based on:
//! if another server wrote the instance meanwhile, the commit writes nothing, the stale
//! instances are reloaded, and the group's requests are applied again.

mod calls;

use super::bk_sops;
use super::records::{PlanRan, Planned, Records, RecordsRequest, StartFired};
use super::user_tasks::{self, Outcome, Seen, TaskOp, TaskRequest};
use super::{ENDED, RuntimeError, new_id, now_ms, status_name};
use crate::runtime::stones::StoneRunner;
use flowstone_engine::{
    Caller, Command, Ctx, Effect, EngineError, Instance, Limits, MigrationPlan, PARTS_FROM, Phase, StartOptions,
    Stored, TaskRecord, TaskStatus,
};
use flowstone_model::Definition;
use flowstone_store::{
    BkTaskEdit, BkTaskStart, ChangedUserTask, ClosedUserTask, InstanceRow, JobRow, LeaseChange, LeaseUpdate, ModelRow,
    NewUserTask, OutboxRow, PassageRow, PruneFamily, Store, StoreError, SubscriptionRow, TaskLink, TaskRow, TimerMove,
    TimerRow, UserTaskRow, WriteBatch, json_text,
};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Maps keyed by instance id. foldhash, not SipHash: every request looks its instance up, and
/// every group indexes its rows.
type ById<V> = std::collections::HashMap<String, V, foldhash::fast::RandomState>;

/// How many requests one transaction takes at most.
const MAX_BATCH: usize = 1024;
/// How many requests wait for the commit under way at most before the committer stops taking more.
const MAX_PENDING: usize = 4 * MAX_BATCH;
/// How many live instances the committer keeps in memory before it starts over from the store.
const CACHE_LIMIT: usize = 50_000;
/// How many bytes of state the cached instances may hold together: a few instances with big
/// variables must not hold the memory that thousands of small ones would.
const CACHE_BYTES: usize = 512 * 1024 * 1024;

pub(super) enum Request {
    Start {
        model: Arc<ModelRow>,
        def: Arc<Definition>,
        name: String,
        business_key: Option<String>,
        variables: Map<String, Value>,
        options: StartOptions,
        reply: oneshot::Sender<Result<InstanceRow, RuntimeError>>,
    },
    Apply {
        instance: String,
        command: Command,
        /// For a worker's report on a job: the worker, who must hold the job's lock.
        holder: Option<String>,
        /// Whether the sender read the lock just before (an API's check of the report): then
        /// the commit's check of it is enough, unless the group gave the lock back. A lock that
        /// passed to another worker meanwhile fails the commit, and the group is applied again
        /// with every lock read.
        checked: bool,
        /// Answered once applied in memory; its writes wait for the instance's next write (see
        /// [`Live::unwritten`]): a stone job's `begin`, which nobody was promised (a crash
        /// before its commit runs the job again, as a crash while it ran would).
        lazy: bool,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    Task(Box<TaskRequest>),
    Records(Box<RecordsRequest>),
    /// A worker's change of the lock it holds on a job.
    Lease {
        change: LeaseChange,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    /// A move of a running instance to another version of its model.
    Migrate(Box<MigrateRequest>),
    /// Ended families to delete (history retention); answers how many families and how many
    /// instances in all went.
    Prune {
        families: Vec<PruneFamily>,
        reply: oneshot::Sender<Result<(u64, u64), RuntimeError>>,
    },
}

/// A live instance as the committer holds it.
struct Live {
    def: Arc<Definition>,
    row: InstanceRow,
    instance: Instance,
    /// The version the store holds.
    committed: i64,
    /// When a request last used it, on the committer's clock: the least recent go first
    /// when the cache is full.
    touched: u64,
    /// The size of its state as last written or read, in bytes.
    bytes: usize,
    /// The tenant of its model's deployment, which its user tasks belong to.
    tenant: Option<String>,
    /// What lazy requests changed, applied to `instance` but in no group yet: written with the
    /// instance's next write, or alone once [`Committer::begin_wait`] passed. A job's `begin`
    /// and its outcome reported soon after are one write of the instance, not two.
    unwritten: Vec<Effect>,
}

/// A request applied in memory, waiting for its commit before it is answered.
enum Entry {
    Started {
        model: Arc<ModelRow>,
        def: Arc<Definition>,
        /// The started instance; its row is the group's (see [`Prepared::take_row`]).
        id: String,
        options: StartOptions,
        reply: oneshot::Sender<Result<InstanceRow, RuntimeError>>,
    },
    Applied {
        instance: String,
        command: Box<Command>,
        holder: Option<String>,
        answer: Result<(), RuntimeError>,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    /// A change to a user task; `instance` is the process it completed a task of, if any.
    Task { request: Box<TaskRequest>, instance: String, answer: Box<Result<UserTaskRow, RuntimeError>> },
    /// Records written; `instance` is the one a bk-sops task's start began, if any.
    Records { request: Box<RecordsRequest>, instance: String, answer: Result<(), RuntimeError> },
    /// A change of a job's lock.
    Lease { change: LeaseChange, answer: Result<(), RuntimeError>, reply: oneshot::Sender<Result<(), RuntimeError>> },
    /// Families and instances deleted, how many.
    Pruned { count: (u64, u64), reply: oneshot::Sender<Result<(u64, u64), RuntimeError>> },
    /// An instance moved (or, dry, checked) to another version.
    Migrated { request: Box<MigrateRequest>, answer: Result<MigrationPlan, RuntimeError> },
}

/// Moves `instance` to version `model` of its key (see [`Instance::plan_migration`]).
pub(super) struct MigrateRequest {
    pub(super) instance: String,
    pub(super) model: Arc<ModelRow>,
    pub(super) def: Arc<Definition>,
    pub(super) mappings: std::collections::BTreeMap<String, String>,
    /// Check only; change nothing.
    pub(super) dry: bool,
    pub(super) reply: oneshot::Sender<Result<MigrationPlan, RuntimeError>>,
}

impl Entry {
    /// Whether it is a start or a command of one instance, checked against nothing but that
    /// instance (a worker's report is checked against its lock).
    fn own_instance_only(&self) -> bool {
        matches!(self, Entry::Started { .. } | Entry::Applied { holder: None, .. })
    }

    /// The instance it applies to.
    fn instance(&self) -> &str {
        match self {
            Entry::Started { id, .. } => id,
            Entry::Applied { instance, .. } | Entry::Task { instance, .. } | Entry::Records { instance, .. } => {
                instance
            }
            Entry::Migrated { request, .. } => &request.instance,
            Entry::Lease { .. } | Entry::Pruned { .. } => "",
        }
    }

    /// The request again, to be applied anew (its instance changed under it); a start takes
    /// what it was started with from the row it wrote.
    fn into_request(self, row: Option<InstanceRow>) -> Option<Request> {
        match (self, row) {
            (Entry::Started { model, def, options, reply, .. }, Some(row)) => {
                let variables = serde_json::from_str(&row.variables).unwrap_or_default();
                Some(Request::Start {
                    model,
                    def,
                    name: row.name,
                    business_key: row.business_key,
                    variables,
                    options,
                    reply,
                })
            }
            (entry @ Entry::Started { .. }, None) => {
                entry.fail(LOST_ROW);
                None
            }
            (Entry::Applied { instance, command, holder, reply, .. }, _) => {
                Some(Request::Apply { instance, command: *command, holder, checked: false, lazy: false, reply })
            }
            (Entry::Task { request, .. }, _) => Some(Request::Task(request)),
            (Entry::Records { request, .. }, _) => Some(Request::Records(request)),
            (Entry::Lease { change, reply, .. }, _) => Some(Request::Lease { change, reply }),
            (Entry::Migrated { request, .. }, _) => Some(Request::Migrate(request)),
            (entry @ Entry::Pruned { .. }, _) => {
                // Read again before trying again: the versions it named are stale.
                entry.fail(PRUNE_STALE);
                None
            }
        }
    }

    fn fail(self, message: &str) {
        self.fail_with(RuntimeError::NotCommitted(message.to_owned()));
    }

    fn fail_with(self, err: RuntimeError) {
        match self {
            Entry::Started { reply, .. } => drop(reply.send(Err(err))),
            Entry::Applied { reply, .. } => drop(reply.send(Err(err))),
            Entry::Task { request, .. } => drop(request.reply.send(Err(err))),
            Entry::Records { request, .. } => drop(request.reply.send(Err(err))),
            Entry::Lease { reply, .. } => drop(reply.send(Err(err))),
            Entry::Pruned { reply, .. } => drop(reply.send(Err(err))),
            Entry::Migrated { request, .. } => drop(request.reply.send(Err(err))),
        }
    }
}

/// Why a prune wrote nothing when its group is applied again.
pub(super) const PRUNE_STALE: &str = "instances to prune changed since they were read";

/// Why a start could not be answered or applied again (the group always holds the row of an
/// instance it started; this guards the impossible instead of panicking).
const LOST_ROW: &str = "the started instance's row is missing from its group";

/// A group of applied requests whose writes are ready to commit.
#[derive(Default)]
struct Prepared {
    batch: WriteBatch,
    entries: Vec<Entry>,
    /// Where each instance's row stands in `batch.instances`: an instance is written once per
    /// group, at one version above the last one written.
    rows: ById<usize>,
    /// What the group's instances went through, logged once it commits.
    events: Vec<Lifecycle>,
    /// Call activities' children to start in this group, and what they tell their callers.
    calls: calls::Calls,
}

impl Prepared {
    /// Whether the group has nothing to write nor anyone to answer.
    fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.rows.is_empty()
    }

    /// Whether it writes and reads nothing but its own instances (see
    /// [`WriteBatch::own_instances_only`]), so that it may commit beside a group that shares none.
    fn stands_alone(&self) -> bool {
        self.batch.own_instances_only() && self.entries.iter().all(Entry::own_instance_only)
    }

    /// The instances it writes or answers about (a refusal read its instance too).
    fn touched(&self) -> impl Iterator<Item = &str> {
        self.rows.keys().map(String::as_str).chain(self.entries.iter().map(Entry::instance))
    }
}

/// An instance that started or changed status.
struct Lifecycle {
    id: String,
    key: String,
    kind: &'static str,
    /// The instance a rollback, cancel or delete instance works for.
    parent: Option<String>,
    /// Its status before, empty for a new instance.
    from: String,
    to: &'static str,
    failure: Option<String>,
}

impl Lifecycle {
    /// One line at `info` (target `flowstone::lifecycle`), a failure at `warn`; and counted.
    fn log(&self, metrics: &crate::metrics::Metrics) {
        let Lifecycle { id, key, kind, parent, from, to, failure } = self;
        if from.is_empty() {
            metrics.instance_started(key, kind);
        }
        if matches!(*to, "completed" | "failed" | "canceled") {
            metrics.instance_ended(key, kind, to);
        }
        let parent = parent.as_deref().unwrap_or("-");
        // Each event is also a span of the instance's trace, for an exporter (the lines below
        // are outside it: their text names the instance already).
        let reason = failure.as_deref().unwrap_or("-");
        let span = tracing::info_span!("lifecycle", instance = %id, %key, %kind, status = %to, %reason);
        flowstone_worker::trace::follow_process(&span, id);
        drop(span);
        if from.is_empty() {
            let trace_id = flowstone_worker::protocol::trace_id(id);
            tracing::info!(target: "flowstone::lifecycle", %id, %key, %kind, %parent, status = %to, %trace_id, "{kind} started");
        }
        match *to {
            "failed" => {
                tracing::warn!(target: "flowstone::lifecycle", %id, %key, %kind, %parent, %reason, "{kind} failed");
            }
            "completed" | "canceled" => {
                tracing::info!(target: "flowstone::lifecycle", %id, %key, %kind, %parent, "{kind} {to}");
            }
            _ if !from.is_empty() => {
                tracing::debug!(target: "flowstone::lifecycle", %id, %key, %kind, %from, %to, "{kind} is {to}");
            }
            _ => {}
        }
    }
}

impl Prepared {
    /// Takes the row written for instance `id` out of the group.
    fn take_row(batch: &mut WriteBatch, rows: &ById<usize>, id: &str) -> Option<InstanceRow> {
        let at = *rows.get(id)?;
        batch.instances.get_mut(at).map(|(row, _)| std::mem::take(row))
    }

    /// The group's requests again, to be applied anew.
    fn into_requests(self) -> Vec<Request> {
        let Prepared { mut batch, entries, rows, .. } = self;
        entries
            .into_iter()
            .filter_map(|entry| {
                let row = match &entry {
                    Entry::Started { id, .. } => Self::take_row(&mut batch, &rows, id),
                    Entry::Applied { .. }
                    | Entry::Task { .. }
                    | Entry::Records { .. }
                    | Entry::Lease { .. }
                    | Entry::Pruned { .. }
                    | Entry::Migrated { .. } => None,
                };
                entry.into_request(row)
            })
            .collect()
    }
}

/// Why a group's commit wrote nothing.
enum Failure {
    /// Another server wrote some of these instances since they were read.
    Conflict(Vec<String>),
    /// The database refused a value some request of the group carried.
    Data(String),
    /// The database (or the commit itself) failed.
    Other(String),
}

/// A commit under way; gives the batch back with the result.
type Commit = tokio::task::JoinHandle<(WriteBatch, Result<(), StoreError>)>;

/// A group whose commit is under way.
struct Committing {
    commit: Commit,
    prepared: Prepared,
    /// The instances it touched, where another group may commit beside it (see
    /// [`Committer::may_begin_beside`]).
    touched: Option<std::collections::HashSet<String, foldhash::fast::RandomState>>,
}

impl Committing {
    /// The end of the commit in `slot`, which holds one.
    async fn wait(
        slot: &mut Option<Committing>,
    ) -> Result<(WriteBatch, Result<(), StoreError>), tokio::task::JoinError> {
        match slot {
            Some(committing) => (&mut committing.commit).await,
            None => std::future::pending().await,
        }
    }
}

pub(super) struct Committer {
    pub(super) store: Arc<dyn Store>,
    pub(super) runtime: super::Runtime,
    pub(super) stones: StoneRunner,
    /// Where commits run.
    pub(super) commits: tokio::runtime::Handle,
    /// Identifies this server as the owner of the jobs it runs.
    pub(super) node: String,
    /// How long a job stays with its owner without a heartbeat.
    pub(super) lease: Duration,
    /// How long a lazy request's writes wait for their instance's next write before they are
    /// written alone: a stone that ends sooner has its `begin` written with its outcome; a
    /// slower one shows it began after this long.
    begin_wait: Duration,
    live: ById<Live>,
    /// Instances with [`Live::unwritten`] changes, by when they are due to be written alone
    /// (in that order: every change waits as long).
    unwritten_due: std::collections::VecDeque<(tokio::time::Instant, String)>,
    /// Counts requests: the cache's notion of time.
    clock: u64,
    /// Whether a stone's jobs go through the broker.
    brokered: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// The bounds every instance runs within.
    limits: Arc<Limits>,
    /// The rows per request of the last group committed.
    shape: Shape,
    /// User tasks as changed by groups not yet committed: a change reads them before the store.
    pending_tasks: ById<UserTaskRow>,
    /// User tasks closed by groups not yet committed (their instance completed or ended them).
    closing: std::collections::HashSet<String, foldhash::fast::RandomState>,
    /// Changes of tasks' parts waiting for an earlier change of their task to commit.
    deferred: Vec<Request>,
    /// bk-sops tasks started by groups not yet committed.
    starting_bk: std::collections::HashSet<i64, foldhash::fast::RandomState>,
    /// Timer start events' timers fired by groups not yet committed.
    firing: std::collections::HashSet<String, foldhash::fast::RandomState>,
    /// bk-sops tasks edited by groups not yet committed, as edited: a start reads them before
    /// the store.
    editing_bk: std::collections::HashMap<i64, BkTaskEdit, foldhash::fast::RandomState>,
    /// Instances deleted by groups not yet committed: no request may read them again.
    pruning: std::collections::HashSet<String, foldhash::fast::RandomState>,
}

/// How many rows of each kind a group wrote for how many requests. Groups in a steady stream
/// are alike: a group makes room for its rows up front, as the last one needed, instead of
/// growing vectors of wide rows one doubling (and copy) at a time.
#[derive(Clone, Copy, Default)]
struct Shape {
    requests: usize,
    tasks: usize,
    passages: usize,
    jobs: usize,
}

impl Shape {
    fn of(group: &Prepared) -> Self {
        let b = &group.batch;
        Self { requests: group.entries.len(), tasks: b.tasks.len(), passages: b.passages.len(), jobs: b.jobs.len() }
    }

    /// Makes room in `group` for `requests` more requests.
    fn reserve(self, group: &mut Prepared, requests: usize) {
        let scaled = |rows: usize| rows * requests / self.requests.max(1);
        group.entries.reserve(requests);
        group.rows.reserve(requests);
        group.batch.instances.reserve(requests);
        group.batch.tasks.reserve(scaled(self.tasks));
        group.batch.passages.reserve(scaled(self.passages));
        group.batch.jobs.reserve(scaled(self.jobs));
    }
}

impl Committer {
    pub(super) fn new(
        runtime: super::Runtime,
        stones: StoneRunner,
        commits: tokio::runtime::Handle,
        options: &super::RuntimeOptions,
        brokered: Arc<dyn Fn(&str) -> bool + Send + Sync>,
        limits: Arc<Limits>,
    ) -> Self {
        Self {
            store: runtime.store().clone(),
            runtime,
            stones,
            commits,
            node: options.node.clone(),
            lease: options.lease,
            begin_wait: options.begin_wait,
            live: ById::default(),
            unwritten_due: std::collections::VecDeque::new(),
            clock: 0,
            brokered,
            limits,
            shape: Shape::default(),
            pending_tasks: ById::default(),
            closing: Default::default(),
            deferred: Vec::new(),
            starting_bk: Default::default(),
            firing: Default::default(),
            editing_bk: Default::default(),
            pruning: Default::default(),
        }
    }

    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Request>, mut stopped: watch::Receiver<bool>) {
        let mut requests = Vec::with_capacity(MAX_BATCH);
        // Two commits may be under way: a second only beside a first it shares no instance with.
        let (mut first, mut second): (Option<Committing>, Option<Committing>) = (None, None);
        let mut next: Option<Prepared> = None;
        let mut open = true;
        while open || first.is_some() || second.is_some() || next.is_some() {
            if first.is_none() {
                first = second.take();
            }
            if first.is_none() {
                self.begin_next(&mut first, None, &mut next);
            } else if second.is_none() {
                self.begin_next(&mut second, first.as_ref(), &mut next);
            }
            let due = self.unwritten_due.front().map(|(at, _)| *at);
            tokio::select! {
                biased;
                _ = stopped.changed() => return,
                result = Committing::wait(&mut first), if first.is_some() => {
                    next = self.finished(&mut first, result, &mut second, next.take()).await;
                }
                result = Committing::wait(&mut second), if second.is_some() => {
                    next = self.finished(&mut second, result, &mut first, next.take()).await;
                }
                // While a commit runs, requests keep joining the next group, up to a bound.
                n = rx.recv_many(&mut requests, MAX_BATCH), if open && next.as_ref().is_none_or(|n| n.entries.len() < MAX_PENDING) => {
                    if n == 0 {
                        open = false;
                    } else {
                        let into = next.get_or_insert_with(Prepared::default);
                        self.prepare(std::mem::take(&mut requests), into).await;
                        // Lazy requests alone make no group.
                        if into.is_empty() {
                            next = None;
                        }
                    }
                }
                // Lazy requests whose instance was not written since are written alone.
                () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                    let into = next.get_or_insert_with(Prepared::default);
                    self.write_unwritten(into);
                    if into.is_empty() {
                        next = None;
                    }
                }
            }
            if first.is_none() && second.is_none() && next.is_none() && self.cache_full() {
                self.evict();
            }
        }
    }

    /// Whether `next` may start committing beside the commit under way, `busy`: where the
    /// store takes concurrent writers, both groups write only their own instances, and they
    /// share none. A group that builds on another's instances waits for its answer, as does
    /// one whose refusals read them.
    fn may_begin_beside(busy: Option<&Committing>, next: Option<&Prepared>) -> bool {
        let (Some(busy), Some(next)) = (busy, next) else { return false };
        // Only a group that stands alone, on such a store, keeps what it touched.
        let Some(touched) = &busy.touched else { return false };
        next.stands_alone() && next.touched().all(|id| !touched.contains(id))
    }

    /// Starts committing `next` in the free `slot`: at once when no commit is under way, or
    /// beside the one that is, `busy`, when it may (see [`Self::may_begin_beside`]).
    fn begin_next(&mut self, slot: &mut Option<Committing>, busy: Option<&Committing>, next: &mut Option<Prepared>) {
        if busy.is_some() {
            if !Self::may_begin_beside(busy, next.as_ref()) {
                return;
            }
            self.runtime.metrics().committing_beside();
        }
        if let Some(prepared) = next.take() {
            *slot = Some(self.begin_commit(prepared));
        }
    }

    /// Handles the commit of `slot` that ended with `result`, `other` being the one under way
    /// beside it, if any; returns what is to be committed next.
    async fn finished(
        &mut self,
        slot: &mut Option<Committing>,
        result: Result<(WriteBatch, Result<(), StoreError>), tokio::task::JoinError>,
        other: &mut Option<Committing>,
        mut next: Option<Prepared>,
    ) -> Option<Prepared> {
        let Some(Committing { mut prepared, .. }) = slot.take() else { return next };
        let result = Self::outcome(result, &mut prepared);
        if result.is_err() {
            // What a failed group held is applied again from memory and the store: the commit
            // beside it is answered first (or fails too), so none of its writes is in flight.
            if let Some(Committing { commit, mut prepared, .. }) = other.take() {
                let beside = Self::outcome(commit.await, &mut prepared);
                next = self.settle(prepared, next, beside).await;
            }
        } else {
            // The next group's commit starts before this one's answers go out.
            self.begin_next(slot, other.as_ref(), &mut next);
        }
        self.settle(prepared, next, result).await
    }

    /// What a commit's task gave back, the batch put back into its group.
    fn outcome(
        result: Result<(WriteBatch, Result<(), StoreError>), tokio::task::JoinError>,
        prepared: &mut Prepared,
    ) -> Result<(), Failure> {
        match result {
            Ok((batch, result)) => {
                prepared.batch = batch;
                result.map_err(|e| match e {
                    StoreError::Conflict(ids) => Failure::Conflict(ids),
                    other if other.refused_data() => Failure::Data(other.to_string()),
                    other => Failure::Other(other.to_string()),
                })
            }
            Err(e) => Err(Failure::Other(format!("the commit task failed: {e}"))),
        }
    }

    /// Starts committing a group on the commits' runtime.
    fn begin_commit(&mut self, mut prepared: Prepared) -> Committing {
        self.shape = Shape::of(&prepared);
        // What another group must not touch to commit beside this one.
        let touched = (self.store.commits_side_by_side() && prepared.stands_alone())
            .then(|| prepared.touched().map(str::to_owned).collect());
        let written = self.write_states(&mut prepared.batch);
        let (store, batch) = (self.store.clone(), std::mem::take(&mut prepared.batch));
        let (runtime, requests) = (self.runtime.clone(), prepared.entries.len());
        let commit = self.commits.spawn(async move {
            let started = std::time::Instant::now();
            let result = match written {
                Ok(()) => store.commit(&batch).await,
                Err(e) => Err(e),
            };
            if result.is_ok() {
                runtime.metrics().committed(requests, started.elapsed());
            }
            (batch, result)
        });
        Committing { commit, prepared, touched }
    }

    /// Puts each instance's state, as it stands after the group's last request, beside its row.
    /// An instance with many requests in one group (the items of a multi-instance completing
    /// one by one) is serialized once, so a group costs the size of its instances, not that
    /// size times its requests. A finished instance is loaded again only to be deleted: it
    /// keeps its state only when that has something to tell.
    fn write_states(&mut self, batch: &mut WriteBatch) -> Result<(), StoreError> {
        for (row, state) in &mut batch.instances {
            // Instances a group touched stay live until it commits (only a failed commit
            // forgets them, and then the group is not written).
            let live = self
                .live
                .get_mut(&row.id)
                .ok_or_else(|| StoreError::Corrupt(format!("instance {} left memory before its commit", row.id)))?;
            *state = live
                .instance
                .store(PARTS_FROM)
                .map_err(|e| StoreError::Corrupt(format!("instance {}: {e}", row.id)))?;
            live.bytes = live.instance.stored_bytes();
        }
        Ok(())
    }

    /// Whether the cached instances are too many or too large.
    fn cache_full(&self) -> bool {
        self.live.len() > CACHE_LIMIT || self.live.values().map(|l| l.bytes).sum::<usize>() > CACHE_BYTES
    }

    /// Forgets the least recently used cached instances until three quarters of the limits
    /// are left (nothing is being written meanwhile, so every cached state is the stored one,
    /// but for the changes of lazy requests, which stay).
    fn evict(&mut self) {
        let mut by_age: Vec<(u64, usize)> = self.live.values().map(|l| (l.touched, l.bytes)).collect();
        by_age.sort_unstable_by_key(|(touched, _)| std::cmp::Reverse(*touched));
        let (mut count, mut bytes, mut oldest_kept) = (0, 0usize, u64::MAX);
        for (touched, size) in by_age {
            if count >= CACHE_LIMIT * 3 / 4 || bytes + size > CACHE_BYTES * 3 / 4 {
                break;
            }
            count += 1;
            bytes += size;
            oldest_kept = touched;
        }
        // Changes not written yet stay with their instance.
        self.live.retain(|_, l| l.touched >= oldest_kept || !l.unwritten.is_empty());
    }

    /// Handles a finished commit; returns what is to be committed next.
    async fn settle(
        &mut self,
        done: Prepared,
        next: Option<Prepared>,
        result: Result<(), Failure>,
    ) -> Option<Prepared> {
        let mut next = self.settle_group(done, next, result).await;
        // Changes that waited for a task's earlier change go on now that it is written (or
        // forgotten); those still waiting for a group under way wait on, without a group.
        if !self.deferred.is_empty() {
            let deferred = std::mem::take(&mut self.deferred);
            let group = next.get_or_insert_with(Prepared::default);
            self.prepare(deferred, group).await;
            if group.is_empty() {
                next = None;
            }
        }
        next
    }

    /// Answers a committed group, or applies or fails again what a failed commit held.
    async fn settle_group(
        &mut self,
        done: Prepared,
        next: Option<Prepared>,
        result: Result<(), Failure>,
    ) -> Option<Prepared> {
        match result {
            Ok(()) => {
                self.answer(done);
                next
            }
            Err(Failure::Conflict(ids)) => {
                self.runtime.metrics().commit_failed("conflict");
                // Another server wrote these instances: forget everything built on the stale
                // state (this group and the next, which may build on this one) and apply
                // their requests again from the store.
                tracing::debug!(instances = ids.len(), "instances changed on another server; applying again");
                self.forget(&done);
                next.iter().for_each(|n| self.forget(n));
                let mut requests = done.into_requests();
                requests.extend(next.into_iter().flat_map(Prepared::into_requests));
                let mut again = Prepared::default();
                self.prepare(requests, &mut again).await;
                Some(again)
            }
            Err(Failure::Data(message)) => {
                self.runtime.metrics().commit_failed("data");
                // One request's value was refused: each request of both groups commits alone,
                // so only the one that carried it fails.
                tracing::warn!(error = %message, "a group's commit refused a value; committing its requests one by one");
                self.forget(&done);
                next.iter().for_each(|n| self.forget(n));
                let mut requests = done.into_requests();
                requests.extend(next.into_iter().flat_map(Prepared::into_requests));
                for request in requests {
                    self.commit_alone(request).await;
                }
                None
            }
            Err(Failure::Other(message)) => {
                self.runtime.metrics().commit_failed("database");
                tracing::error!(error = %message, "commit failed");
                self.forget(&done);
                next.iter().for_each(|n| self.forget(n));
                for entry in done.entries.into_iter().chain(next.into_iter().flat_map(|n| n.entries)) {
                    entry.fail(&message);
                }
                None
            }
        }
    }

    /// Applies and commits one request in a group of its own, and answers it; a value the
    /// database refuses is the request's mistake (400).
    async fn commit_alone(&mut self, request: Request) {
        let mut alone = Prepared::default();
        self.prepare(vec![request], &mut alone).await;
        let written = self.write_states(&mut alone.batch);
        let batch = std::mem::take(&mut alone.batch);
        let result = match written {
            Ok(()) => self.store.commit(&batch).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                alone.batch = batch;
                self.answer(alone);
            }
            Err(e) => {
                self.forget(&alone);
                let refused = e.refused_data();
                for entry in alone.entries {
                    entry.fail_with(if refused {
                        RuntimeError::NotValid(format!("the database refused a value of this request: {e}"))
                    } else {
                        RuntimeError::NotCommitted(e.to_string())
                    });
                }
            }
        }
    }

    /// Drops from memory every instance a group touched (the rollback, cancel and delete
    /// instances it started included): its writes did not land.
    fn forget(&mut self, group: &Prepared) {
        // What the failed groups changed of user tasks is read from the store again.
        self.pending_tasks.clear();
        self.closing.clear();
        self.starting_bk.clear();
        self.firing.clear();
        self.editing_bk.clear();
        for id in group.rows.keys() {
            self.live.remove(id);
        }
        for (id, _) in &group.batch.pruned {
            self.pruning.remove(id);
        }
        for entry in &group.entries {
            self.live.remove(entry.instance());
        }
    }

    /// Answers a committed group and hands its jobs to the stones.
    fn answer(&mut self, done: Prepared) {
        let Prepared { mut batch, entries, rows, events, .. } = done;
        let thrown = std::mem::take(&mut batch.outbox);
        if !thrown.is_empty() {
            self.runtime.send_thrown(thrown);
        }
        if self.runtime.keeps_messages() {
            let waits = batch.subscriptions.iter().filter(|s| s.kind == "message" && !s.instance_id.is_empty());
            self.runtime.hand_kept_messages(waits.cloned().collect());
        }
        let metrics = self.runtime.metrics();
        events.iter().for_each(|e| e.log(metrics));
        let written = batch.instances.iter().map(|(row, _)| row);
        self.runtime
            .watchers
            .changed(events.iter().flat_map(|e| std::iter::once(e.id.as_str()).chain(e.parent.as_deref())), written);
        // The console's live views read what they show again.
        self.runtime.progress.changed(batch.instances.iter().map(|(row, _)| row.id.as_str()), []);
        for job in &batch.jobs {
            metrics.job_created(&job.job.stone, job.job.action.name());
        }
        for task in &batch.tasks {
            let record = &task.record;
            let (Some(stone), TaskStatus::Stone(action, phase)) = (&record.stone, record.status) else { continue };
            let outcome = match phase {
                Phase::Success => "success",
                Phase::Failed => "failed",
                Phase::Passed => "passed",
                Phase::Begin => continue,
            };
            let took = record.end_time.map(|end| Duration::from_millis((end - record.create_time).max(0) as u64));
            metrics.job_finished(stone, action.name(), outcome, took);
        }
        for (row, _) in &batch.instances {
            let ended = match self.live.get_mut(&row.id) {
                Some(live) => {
                    live.committed = live.committed.max(row.version);
                    !live.instance.active()
                }
                None => false,
            };
            if ended {
                self.live.remove(&row.id);
            }
        }
        for entry in entries {
            match entry {
                Entry::Started { id, reply, .. } => {
                    let row = Prepared::take_row(&mut batch, &rows, &id);
                    drop(reply.send(row.ok_or_else(|| RuntimeError::NotCommitted(LOST_ROW.to_owned()))));
                }
                Entry::Applied { answer, reply, .. } => drop(reply.send(answer)),
                Entry::Task { request, answer, .. } => drop(request.reply.send(*answer)),
                Entry::Records { request, answer, .. } => drop(request.reply.send(answer)),
                Entry::Lease { answer, reply, .. } => drop(reply.send(answer)),
                Entry::Pruned { count, reply } => drop(reply.send(Ok(count))),
                Entry::Migrated { request, answer } => drop(request.reply.send(answer)),
            }
        }
        for (id, _) in &batch.pruned {
            self.pruning.remove(id);
        }
        for moved in &batch.moved_timers {
            self.firing.remove(&moved.record_id);
        }
        for started in &batch.started_bk_tasks {
            self.starting_bk.remove(&started.id);
        }
        for task in &batch.bk_tasks {
            self.starting_bk.remove(&task.id);
        }
        for edit in &batch.edited_bk_tasks {
            // A later edit of a group still on its way stays until its own commit.
            if self.editing_bk.get(&edit.id) == Some(edit) {
                self.editing_bk.remove(&edit.id);
            }
        }
        let written = batch.changed_user_tasks.iter().map(|c| &c.row).chain(batch.user_tasks.iter().map(|t| &t.row));
        for row in written {
            if self.pending_tasks.get(&row.id).is_some_and(|p| p.version <= row.version) {
                self.pending_tasks.remove(&row.id);
            }
        }
        for closed in &batch.closed_user_tasks {
            self.closing.remove(&closed.id);
        }
        let mut for_workers = batch.lease_changes.iter().any(|c| matches!(c.update, LeaseUpdate::Free { .. }));
        for job in batch.jobs {
            if job.owner.is_some() {
                self.stones.dispatch(job);
            } else {
                for_workers = true;
            }
        }
        if for_workers {
            self.runtime.jobs_committed();
        }
        if !batch.timers.is_empty() {
            self.runtime.timer_bell.ring();
        }
    }

    /// Applies requests to their live instances, adding the writes to `into`.
    async fn prepare(&mut self, requests: Vec<Request>, into: &mut Prepared) {
        self.apply_requests(requests, into).await;
        self.settle_calls(into).await;
    }

    /// Applies each request of a group.
    async fn apply_requests(&mut self, requests: Vec<Request>, into: &mut Prepared) {
        self.shape.reserve(into, requests.len());
        if self.store.shared() {
            self.drop_stale(&requests).await;
        }
        self.preload(&requests).await;
        let mut leases = self.leases(&requests).await;
        let now = now_ms();
        for request in requests {
            self.clock += 1;
            match request {
                Request::Start { model, def, name, business_key, variables, options, reply } => {
                    let id =
                        self.begin(new_id(), &model, def.clone(), name, business_key, variables, &options, into, now);
                    into.entries.push(Entry::Started { model, def, id, options, reply });
                }
                // A lazy request is answered once applied; its writes have nobody to tell.
                Request::Apply { instance, command, lazy: true, reply, .. } => {
                    drop(reply.send(self.apply_to(&instance, command, None, now).await));
                }
                Request::Apply { instance, command, holder, checked, lazy: false, reply } => {
                    let held = match (&holder, &command) {
                        (Some(worker), Command::Stone { record, .. }) if !checked || given_back(&leases, record) => {
                            holds(&leases, record, worker)
                        }
                        _ => Ok(()),
                    };
                    let answer = match held {
                        Ok(()) => self.apply_to(&instance, command.clone(), Some(&mut *into), now).await,
                        Err(refused) => Err(refused),
                    };
                    if let (Ok(()), Some(worker), Command::Stone { record, .. }) = (&answer, &holder, &command) {
                        into.batch.held_jobs.push((record.clone(), worker.clone()));
                    }
                    let command = Box::new(command);
                    into.entries.push(Entry::Applied { instance, command, holder, answer, reply });
                }
                Request::Task(request) => self.change_task(request, into, now).await,
                Request::Records(request) => self.write_records(request, into, now).await,
                Request::Lease { change, reply } => {
                    let answer = holds(&leases, &change.record_id, &change.owner);
                    if answer.is_ok() {
                        if let (LeaseUpdate::Free { .. }, Ok(leases)) = (change.update, &mut leases) {
                            // Given back: later requests of the group find it held by nobody.
                            leases.insert(change.record_id.clone(), None);
                        }
                        into.batch.lease_changes.push(change.clone());
                    }
                    into.entries.push(Entry::Lease { change, answer, reply });
                }
                Request::Prune { families, reply } => {
                    let count = self.prune(families, into);
                    into.entries.push(Entry::Pruned { count, reply });
                }
                Request::Migrate(request) => {
                    let answer = self.migrate(&request, into, now).await;
                    into.entries.push(Entry::Migrated { request, answer });
                }
            }
        }
    }

    /// Starts instance `id` of `model` (called by the call activity `options` names, if any);
    /// answers its id.
    #[allow(clippy::too_many_arguments)]
    fn begin(
        &mut self,
        id: String,
        model: &ModelRow,
        def: Arc<Definition>,
        name: String,
        business_key: Option<String>,
        variables: Map<String, Value>,
        options: &StartOptions,
        into: &mut Prepared,
        now: i64,
    ) -> String {
        let start_vars = json_text(&variables);
        let mut made = Vec::new();
        let (instance, effects) = Instance::start(
            &def,
            variables,
            options.clone(),
            &mut Ctx { now, ids: &mut noted(&mut made), brokered: &*self.brokered, limits: &self.limits },
        );
        into.batch.new_records.extend(made);
        let row = InstanceRow {
            business_key,
            start_user: options.initiator.clone(),
            parent_id: options.caller.as_ref().map(|c| c.instance.clone()),
            ..new_row(id.clone(), &model.id, &model.key, name, start_vars, now)
        };
        let tenant = model.tenant_id.clone();
        let mut live =
            Live { def, row, instance, committed: 0, touched: self.clock, bytes: 0, tenant, unwritten: Vec::new() };
        self.record(into, &mut live, effects, now);
        self.live.insert(id.clone(), live);
        id
    }

    /// Applies a request of records: its models, templates and task are written as they come;
    /// a bk-sops task's start or edit is refused when it started already (committed, or in a
    /// group on its way), and a start runs the task as last edited.
    async fn write_records(&mut self, request: Box<RecordsRequest>, into: &mut Prepared, now: i64) {
        let mut instance = String::new();
        let answer = async {
            let Records {
                deployments,
                templates,
                mut task,
                start,
                edit,
                timers,
                dropped_timers,
                starts,
                replaced_starts,
                fired,
                planned,
            } = request.write.clone();
            into.batch.replaced_starts.extend(replaced_starts);
            into.batch.subscriptions.extend(starts);
            match planned {
                Some(Planned::Periodic(row)) => into.batch.periodic_tasks.push(row),
                Some(Planned::PeriodicChange(change)) => into.batch.periodic_changes.push(change),
                Some(Planned::Clocked(row)) => into.batch.clocked_tasks.push(row),
                Some(Planned::Fired { moved, ran }) => {
                    self.move_fired(moved, into).await?;
                    match ran {
                        PlanRan::Periodic(run) => into.batch.periodic_runs.push(run),
                        PlanRan::Clocked(run) => into.batch.clocked_runs.push(run),
                        PlanRan::Missed => {}
                    }
                }
                None => {}
            }
            // A group's later deployment of a key wins over an earlier one's.
            for timer in timers {
                into.batch.dropped_timers.retain(|d| *d != timer.record_id);
                into.batch.timers.push(timer);
            }
            for dropped in dropped_timers {
                into.batch.timers.retain(|t| t.record_id != dropped);
                into.batch.dropped_timers.push(dropped);
            }
            if let Some(fired) = fired {
                instance = self.start_fired(fired, into, now).await?;
            }
            // A task created by this very request has not started; any other is read.
            let begun = match (&start, &task) {
                (Some(start), Some(new)) if new.id == start.task => Some((new.name.clone(), new.constants.clone())),
                (Some(start), _) => Some(self.unstarted_bk(start.task).await?),
                (None, _) => None,
            };
            if let Some(edit) = edit {
                self.unstarted_bk(edit.id).await?;
                self.editing_bk.insert(edit.id, edit.clone());
                into.batch.edited_bk_tasks.push(edit);
            }
            into.batch.deployments.extend(deployments);
            into.batch.bk_templates.extend(templates);
            if let (Some(start), Some((name, constants))) = (start, begun) {
                let (key, options) = (Some(start.business_key()), start.options());
                let variables = bk_sops::task_variables(&constants);
                let id = self.begin(new_id(), &start.model, start.def, name, key, variables, &options, into, now);
                match task.as_mut().filter(|t| t.id == start.task) {
                    Some(new) => {
                        new.instance_id = Some(id.clone());
                        new.executor = Some(start.executor);
                        new.started_at = Some(now);
                    }
                    None => into.batch.started_bk_tasks.push(BkTaskStart {
                        id: start.task,
                        instance_id: id.clone(),
                        executor: start.executor,
                        at: now,
                    }),
                }
                self.starting_bk.insert(start.task);
                instance = id;
            }
            into.batch.bk_tasks.extend(task);
            Ok(())
        }
        .await;
        into.entries.push(Entry::Records { request, instance, answer });
    }

    /// Starts the instance a timer start event's timer fired for, if no commit (here or on
    /// another server) moved the timer on from that due time yet; answers its id.
    async fn start_fired(&mut self, fired: StartFired, into: &mut Prepared, now: i64) -> Result<String, RuntimeError> {
        self.move_fired(fired.moved, into).await?;
        let name = fired.model.name.clone().unwrap_or_else(|| fired.model.key.clone());
        let options = StartOptions { from: Some(fired.node), ..StartOptions::default() };
        Ok(self.begin(new_id(), &fired.model, fired.def, name, None, Map::new(), &options, into, now))
    }

    /// Moves on a timer of no instance that fired, if no commit (here or on another server)
    /// moved it on from the due time it fired for yet.
    async fn move_fired(&mut self, moved: TimerMove, into: &mut Prepared) -> Result<(), RuntimeError> {
        let not_set = || RuntimeError::Conflict(EngineError::TimerNotSet(moved.record_id.clone()));
        let stored = self.store.timer(&moved.record_id).await?.ok_or_else(not_set)?;
        if stored.due != moved.from || self.firing.contains(&moved.record_id) {
            return Err(not_set());
        }
        self.firing.insert(moved.record_id.clone());
        into.batch.moved_timers.push(moved);
        Ok(())
    }

    /// The name and constants of a bk-sops task that has not started (nor is starting in a
    /// group on its way), as last edited.
    async fn unstarted_bk(&self, id: i64) -> Result<(String, String), RuntimeError> {
        let stored = self.store.bk_task(id).await?;
        let stored = stored.ok_or_else(|| RuntimeError::NotFound(format!("task {id} does not exist")))?;
        if stored.instance_id.is_some() || self.starting_bk.contains(&id) {
            return Err(bk_sops::started_already(id));
        }
        Ok(match self.editing_bk.get(&id) {
            Some(edit) => (edit.name.clone(), edit.constants.clone()),
            None => (stored.name, stored.constants),
        })
    }

    /// Applies a command to an instance, from memory or else from the store; its writes go to
    /// the group `into`, or with none wait for the instance's next write (see [`Live::unwritten`]).
    async fn apply_to(
        &mut self,
        instance: &str,
        command: Command,
        into: Option<&mut Prepared>,
        now: i64,
    ) -> Result<(), RuntimeError> {
        self.load(instance).await?;
        let mut live = self.live.remove(instance).expect("loaded just now");
        live.touched = self.clock;
        let mut made = Vec::new();
        let applied = live.instance.apply(
            &live.def,
            command,
            &mut Ctx { now, ids: &mut noted(&mut made), brokered: &*self.brokered, limits: &self.limits },
        );
        let answer = match (applied, into) {
            (Ok(effects), Some(into)) => {
                into.batch.new_records.extend(made);
                self.record(into, &mut live, effects, now);
                Ok(())
            }
            (Ok(effects), None) => {
                if live.unwritten.is_empty() {
                    self.unwritten_due.push_back((tokio::time::Instant::now() + self.begin_wait, instance.to_owned()));
                }
                live.unwritten.extend(effects);
                Ok(())
            }
            (Err(e), _) => Err(RuntimeError::from(e)),
        };
        self.live.insert(instance.to_owned(), live);
        answer
    }

    /// Writes in `into` the instances whose lazy changes waited their time.
    fn write_unwritten(&mut self, into: &mut Prepared) {
        let (now, at) = (tokio::time::Instant::now(), now_ms());
        while self.unwritten_due.front().is_some_and(|(due, _)| *due <= now) {
            let Some((_, id)) = self.unwritten_due.pop_front() else { break };
            // Written meanwhile with a later request, or forgotten: nothing waits.
            let Some(mut live) = self.live.remove(&id) else { continue };
            if !live.unwritten.is_empty() {
                self.record(into, &mut live, Vec::new(), at);
            }
            self.live.insert(id, live);
        }
    }

    /// Applies a person's change to a user task as it stands now (changed by a group still
    /// committing, or else as stored); a completion of a process's task is its instance's. A
    /// change of the task's parts waits while another change of the task is on its way to the
    /// store, so that its rule reads the parts as they will be.
    async fn change_task(&mut self, request: Box<TaskRequest>, into: &mut Prepared, now: i64) {
        if matches!(request.op, TaskOp::Part(_)) && self.pending_tasks.contains_key(&request.task) {
            self.deferred.push(Request::Task(request));
            return;
        }
        let mut instance = String::new();
        let answer = async {
            let id = request.task.as_str();
            if let TaskOp::Create(row) = &request.op {
                let row = UserTaskRow { id: id.to_owned(), version: 1, ..(**row).clone() };
                self.pending_tasks.insert(row.id.clone(), row.clone());
                into.batch.user_tasks.push(NewUserTask { row: row.clone(), links: Vec::new() });
                return Ok(row);
            }
            let mut row = self.user_task(id).await?.ok_or_else(|| user_tasks::not_found(id))?;
            // Closed already, or by a group not yet committed (its process went on or ended).
            if row.end_time.is_some() || self.closing.contains(id) {
                return Err(user_tasks::not_open(&row));
            }
            let seen = Seen::read(&*self.store, id, &request.op).await?;
            // Of the process's variables, those the change names that exist.
            let asked = user_tasks::process_vars_named(&request.op);
            let mut present = Vec::new();
            if let (Some(of), false) = (&row.instance_id, asked.is_empty()) {
                self.load(of).await?;
                if let Some(live) = self.live.get(of.as_str()) {
                    present.extend(
                        asked.into_iter().filter(|n| live.instance.variables.contains_key(*n)).map(str::to_owned),
                    );
                }
            }
            let process_vars = |name: &str| present.iter().any(|p| p == name);
            match user_tasks::apply(&mut row, seen, &process_vars, request.op.clone(), &request.by, now)? {
                Outcome::Changed { comments, parts, process } => {
                    // The process's part first: should the engine refuse it, nothing is written.
                    if let Some((of, command)) = process {
                        instance.clone_from(&of);
                        self.apply_to(&of, command, Some(&mut *into), now).await?;
                    }
                    self.pending_tasks.insert(row.id.clone(), row.clone());
                    into.batch.changed_user_tasks.push(ChangedUserTask { row: row.clone(), comments, parts });
                }
                Outcome::Complete { instance: of, variables, transient } => {
                    let command = Command::CompleteUserTask { task: row.id.clone(), variables, transient };
                    instance.clone_from(&of);
                    self.apply_to(&of, command, Some(&mut *into), now).await?;
                }
            }
            Ok(row)
        }
        .await;
        into.entries.push(Entry::Task { request, instance, answer: Box::new(answer) });
    }

    /// Moves a running instance to another version of its key (or, dry, only checks how),
    /// with its row naming the new version.
    async fn migrate(
        &mut self,
        request: &MigrateRequest,
        into: &mut Prepared,
        now: i64,
    ) -> Result<MigrationPlan, RuntimeError> {
        let id = request.instance.as_str();
        self.load(id).await?;
        let mut live = self.live.remove(id).expect("loaded just now");
        let (model, version) = (&request.model, request.model.version);
        let answer = if live.row.model_key != model.key {
            Err(RuntimeError::NotValid(format!(
                "process instance {id} runs model `{}`: it moves only to a version of that key, not to `{}`",
                live.row.model_key, model.key
            )))
        } else {
            live.instance.plan_migration(&live.def, &request.def, &request.mappings).map_err(|problems| {
                RuntimeError::NotValid(format!(
                    "process instance {id} cannot move to version {version}: {}",
                    problems.join("; ")
                ))
            })
        };
        let answer = match answer {
            Ok(plan) if !request.dry => {
                self.moved_user_tasks(&live, &plan, &model.id, &into.batch).await.map(|tasks| (plan, tasks))
            }
            other => other.map(|plan| (plan, Vec::new())),
        };
        if let (Ok((plan, tasks)), false) = (&answer, request.dry) {
            live.touched = self.clock;
            for row in tasks {
                self.pending_tasks.insert(row.id.clone(), row.clone());
                into.batch.changed_user_tasks.push(ChangedUserTask {
                    row: row.clone(),
                    comments: Vec::new(),
                    parts: Vec::new(),
                });
            }
            // Tasks this group creates are written as they move.
            for new in &mut into.batch.user_tasks {
                if new.row.instance_id.as_deref() == Some(id)
                    && let Some(record) = live.instance.open.get(&new.row.id)
                {
                    new.row.model_id = Some(model.id.clone());
                    new.row.element = Some(moved_to(plan, &record.element).to_owned());
                }
            }
            let renamed = live.instance.migrate(plan);
            live.def = request.def.clone();
            live.tenant.clone_from(&model.tenant_id);
            let from = std::mem::replace(&mut live.row.model_id, model.id.clone());
            tracing::info!(target: "flowstone::lifecycle", %id, key = %model.key, %from, to = %model.id, version, "process migrated");
            self.record(into, &mut live, renamed, now);
        }
        self.live.insert(id.to_owned(), live);
        answer.map(|(plan, _)| plan)
    }

    /// A user task as the next write of it finds it: as a group on its way left it, or as
    /// stored.
    async fn user_task(&self, id: &str) -> Result<Option<UserTaskRow>, RuntimeError> {
        match self.pending_tasks.get(id) {
            Some(row) => Ok(Some(row.clone())),
            None => Ok(self.store.user_task(id).await?),
        }
    }

    /// The open user tasks of `live` as a move by `plan` to model `to` leaves them: naming
    /// the new version and the elements they move to (Flowable's `processDefinitionId` and
    /// `taskDefinitionKey`), read before anything moves so that a failed read moves nothing.
    async fn moved_user_tasks(
        &self,
        live: &Live,
        plan: &MigrationPlan,
        to: &str,
        batch: &WriteBatch,
    ) -> Result<Vec<UserTaskRow>, RuntimeError> {
        let mut rows = Vec::new();
        let created_here = |id: &str| batch.user_tasks.iter().any(|t| t.row.id == id);
        for record in live.instance.open.values().filter(|r| r.kind == "userTask" && !created_here(&r.id)) {
            let id = record.id.as_str();
            let mut row = self.user_task(id).await?.ok_or_else(|| {
                RuntimeError::NotCommitted(format!(
                    "user task {id} of process instance {} is still being written; nothing moved, try again",
                    live.row.id
                ))
            })?;
            row.model_id = Some(to.to_owned());
            row.element = Some(moved_to(plan, &record.element).to_owned());
            row.version += 1;
            rows.push(row);
        }
        Ok(rows)
    }

    /// Adds ended families to the group's deletes; answers how many and how many instances
    /// they hold. A
    /// family one of whose members changed since it was read (memory holds a newer version,
    /// or this group writes it) stays: its next read sees why. The store checks the versions
    /// again as it deletes.
    fn prune(&mut self, families: Vec<PruneFamily>, into: &mut Prepared) -> (u64, u64) {
        let mut count = (0, 0);
        for family in families {
            let changed = family.members.iter().any(|(id, version)| {
                self.pruning.contains(id)
                    || into.rows.contains_key(id)
                    || self.live.get(id).is_some_and(|l| l.row.version != *version)
            });
            if changed {
                continue;
            }
            for (id, _) in &family.members {
                self.live.remove(id);
                self.pruning.insert(id.clone());
            }
            count = (count.0 + 1, count.1 + family.members.len() as u64);
            into.batch.pruned.extend(family.members);
        }
        count
    }

    /// Who holds the jobs workers report on in `requests`, read once for the group (the commit
    /// checks again that they still do); locks their senders checked are not read again.
    async fn leases(&self, requests: &[Request]) -> Result<ById<Option<String>>, RuntimeError> {
        let reported: Vec<&str> = requests
            .iter()
            .filter_map(|r| match r {
                Request::Apply { holder: Some(_), checked: false, command: Command::Stone { record, .. }, .. } => {
                    Some(record.as_str())
                }
                Request::Lease { change, .. } => Some(change.record_id.as_str()),
                _ => None,
            })
            .collect();
        if reported.is_empty() {
            return Ok(ById::default());
        }
        let found = self.store.leases(&reported).await?;
        Ok(found.into_iter().map(|l| (l.record_id, l.owner)).collect())
    }

    /// On a shared database, forgets cached instances that another server has written since.
    async fn drop_stale(&mut self, requests: &[Request]) {
        let cached: Vec<&str> = requests
            .iter()
            .filter_map(|r| match r {
                Request::Apply { instance, .. } => Some(instance.as_str()),
                // A completion's instance is checked by its commit (a stale one conflicts).
                Request::Start { .. }
                | Request::Task(_)
                | Request::Records(_)
                | Request::Lease { .. }
                | Request::Prune { .. }
                | Request::Migrate(_) => None,
            })
            // An instance with writes still on their way is ours to answer for.
            .filter(|id| self.live.get(*id).is_some_and(|l| l.row.version == l.committed))
            .collect();
        if cached.is_empty() {
            return;
        }
        match self.store.instance_versions(&cached).await {
            Ok(stored) => {
                for (id, version) in stored {
                    if self.live.get(&id).is_some_and(|l| l.committed != version) {
                        self.live.remove(&id);
                    }
                }
            }
            Err(e) => {
                // Cannot tell: trust nothing cached for these.
                tracing::warn!(error = %e, "could not check cached instances");
                let owned: Vec<String> = cached.iter().map(|s| (*s).to_owned()).collect();
                for id in owned {
                    self.live.remove(&id);
                }
            }
        }
    }

    /// Makes the instance live, from memory or else from the store. Memory wins: it may hold
    /// changes whose commit is still under way.
    async fn load(&mut self, id: &str) -> Result<(), RuntimeError> {
        let not_found = || RuntimeError::NotFound(format!("process instance {id} not found"));
        if self.pruning.contains(id) {
            return Err(not_found());
        }
        if self.live.contains_key(id) {
            return Ok(());
        }
        let row = self.store.instance(id).await?.ok_or_else(not_found)?;
        let state = self.store.instance_state(&row.id).await?.unwrap_or_default();
        self.make_live(vec![(row, state)]).await
    }

    /// Reads the instances a group's requests name and memory does not hold, in a few
    /// statements rather than two per instance. Any it cannot make live are left to
    /// [`Committer::load`], which answers why.
    async fn preload(&mut self, requests: &[Request]) {
        let mut ids: Vec<String> = requests
            .iter()
            .filter_map(|r| match r {
                Request::Apply { instance, .. }
                    if !self.live.contains_key(instance) && !self.pruning.contains(instance) =>
                {
                    Some(instance.clone())
                }
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() < 2 {
            return;
        }
        let Ok(found) = self.store.instances_with_state(&ids).await else { return };
        let _ = self.make_live(found).await;
    }

    /// Holds instances read from the store in memory, what they hold by record id (open
    /// records, stone tasks they ran) filled from the records in one read (see
    /// [`flowstone_engine::Instance::fill_records`]). Those
    /// it cannot hold it leaves out; the error is the first one's.
    async fn make_live(&mut self, found: Vec<(InstanceRow, Stored)>) -> Result<(), RuntimeError> {
        let mut first = None;
        let mut read = Vec::with_capacity(found.len());
        for (row, state) in found {
            let ended = ENDED.into_iter().find(|s| status_name(*s) == row.status);
            let final_vars = || row.final_vars.as_deref().and_then(|v| serde_json::from_str(v).ok());
            match ended {
                // An ended instance with nothing to undo keeps no state: its status and final
                // variables are all a command can see.
                Some(ended) if state.core.is_empty() => {
                    let mut inst = Instance::ended(ended, final_vars().unwrap_or_default());
                    inst.delete.clone_from(&row.delete_id);
                    read.push((row, inst));
                }
                _ => match Instance::from_stored(&state) {
                    Ok(mut inst) => {
                        // An ended instance's state leaves its variables to its row (one
                        // stored before it did holds them too).
                        if ended.is_some()
                            && let Some(variables) = final_vars()
                        {
                            inst.variables = variables;
                        }
                        read.push((row, inst));
                    }
                    Err(e) => {
                        first.get_or_insert(super::corrupt(&row.id, e));
                    }
                },
            }
        }
        let wanted: Vec<&str> = read.iter().flat_map(|(_, inst)| inst.records_to_fill()).collect();
        let records = if wanted.is_empty() { Vec::new() } else { self.store.tasks(&wanted).await? };
        let by_id: ById<&TaskRecord> = records.iter().map(|r| (r.record.id.clone(), &r.record)).collect();
        for (row, mut instance) in read {
            if let Err(record) = instance.fill_records(|id| by_id.get(id).copied()) {
                first.get_or_insert(super::corrupt(
                    &row.id,
                    format!("the task record {record} it holds by id is missing"),
                ));
                continue;
            }
            if let Err(e) = self.hold(row, instance).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Holds one instance in memory, with its model.
    async fn hold(&mut self, row: InstanceRow, instance: Instance) -> Result<(), RuntimeError> {
        let model = self
            .runtime
            .model(&row.model_id)
            .await?
            .ok_or_else(|| RuntimeError::NotFound(format!("model {} not found", row.model_id)))?;
        let def = self.runtime.definition(&model)?;
        let committed = row.version;
        let bytes = instance.stored_bytes();
        let tenant = model.tenant_id.clone();
        let id = row.id.clone();
        let live = Live { def, row, instance, committed, touched: self.clock, bytes, tenant, unwritten: Vec::new() };
        self.live.insert(id, live);
        Ok(())
    }

    /// Adds an instance's new state and its effects (and those of instances it spawned) to the group.
    fn record(&mut self, into: &mut Prepared, live: &mut Live, effects: Vec<Effect>, now: i64) {
        // Lazy changes first: the request's own writes of the same rows come after them.
        let effects = if live.unwritten.is_empty() {
            effects
        } else {
            let mut all = std::mem::take(&mut live.unwritten);
            all.extend(effects);
            all
        };
        let inst = &live.instance;
        let row = &mut live.row;
        let status = status_name(inst.status);
        if row.status != status {
            into.events.push(Lifecycle {
                id: row.id.clone(),
                key: row.model_key.clone(),
                kind: inst.kind.name(),
                parent: row.parent_id.clone(),
                from: std::mem::replace(&mut row.status, status.to_owned()),
                to: status,
                failure: inst.failure.clone(),
            });
            if let (false, Some(caller)) = (inst.active(), &inst.caller) {
                into.calls.returns.push((caller.clone(), inst.call_end()));
            }
        }
        row.failure = inst.failure.clone();
        row.end_element.clone_from(&inst.end_element);
        row.kind = inst.kind.name().to_owned();
        row.rollback_id.clone_from(&inst.rollback);
        row.cancel_id.clone_from(&inst.cancel);
        row.delete_id.clone_from(&inst.delete);
        if !inst.active() {
            row.end_time.get_or_insert(now);
            row.outputs = inst.outputs.as_ref().map(json_text);
            row.final_vars = Some(json_text(&inst.variables));
        }
        // The state is written as it stands when the group starts to commit (see
        // [`Committer::write_states`]): serialized once per group, not once per command.
        match into.rows.get(&row.id) {
            Some(i) => into.batch.instances[*i].0 = row.clone(),
            None => {
                row.version += 1;
                into.rows.insert(row.id.clone(), into.batch.instances.len());
                into.batch.instances.push((row.clone(), Stored::default()));
            }
        }
        let mut spawns = Vec::new();
        let closed_before = into.batch.closed_user_tasks.len();
        for effect in effects {
            match effect {
                Effect::Task(record) => {
                    user_task_writes(row, live.tenant.as_deref(), &record, &mut into.batch);
                    into.batch.tasks.push(TaskRow { instance_id: row.id.clone(), record: *record });
                }
                Effect::QueueJob(job) => {
                    // Jobs of in-process stones are leased to this server at once; the others wait for a worker.
                    let ours = self.stones.owns(&job.stone);
                    // Queued again after a drop in the same group (a reRun): the new job stands.
                    into.batch.dropped_jobs.retain(|d| *d != job.record_id);
                    into.batch.jobs.push(JobRow {
                        instance_id: row.id.clone(),
                        job,
                        created_at: now,
                        owner: ours.then(|| self.node.clone()),
                        locked_until: ours.then(|| now + self.lease.as_millis() as i64),
                        retries: None,
                    });
                }
                Effect::MonitorJob { record_id, outputs } => into.batch.monitoring_jobs.push((record_id, outputs)),
                Effect::DropJob { record_id } => {
                    into.batch.jobs.retain(|j| j.job.record_id != record_id);
                    into.batch.dropped_jobs.push(record_id);
                }
                Effect::Spawn(spawned) => spawns.push(*spawned),
                Effect::Passed(passage) => {
                    into.batch.passages.push(PassageRow { instance_id: row.id.clone(), passage });
                }
                Effect::SetTimer(timer) => into.batch.timers.push(TimerRow {
                    record_id: timer.record_id,
                    instance_id: row.id.clone(),
                    element: timer.element,
                    due: timer.due,
                    owner: None,
                    locked_until: None,
                    model_id: None,
                    fired: 0,
                }),
                Effect::DropTimer { record_id } => into.batch.dropped_timers.push(record_id),
                Effect::Subscribe(wait) => into.batch.subscriptions.push(SubscriptionRow {
                    record_id: wait.record_id,
                    instance_id: row.id.clone(),
                    model_id: row.model_id.clone(),
                    starts: None,
                    tenant_id: live.tenant.clone(),
                    element: wait.element,
                    kind: wait.kind.name().to_owned(),
                    name: wait.name,
                    correlation_key: wait.key,
                    created_at: now,
                }),
                Effect::Unsubscribe { record_id } => into.batch.dropped_subscriptions.push(record_id),
                // Written with the step, sent once it commits (see `answer`).
                Effect::Throw(thrown) => into.batch.outbox.push(OutboxRow {
                    id: new_id(),
                    node: self.node.clone(),
                    kind: thrown.kind.name().to_owned(),
                    name: thrown.name,
                    correlation_key: thrown.key,
                    tenant_id: live.tenant.clone(),
                    created_at: now,
                }),
                Effect::Call(call) => into.calls.asked.push(calls::Asked {
                    model_id: row.model_id.clone(),
                    tenant: live.tenant.clone(),
                    business_key: row.business_key.clone(),
                    start_user: row.start_user.clone(),
                    caller: Caller {
                        instance: row.id.clone(),
                        record: call.record_id.clone(),
                        depth: live.instance.caller.as_ref().map_or(0, |c| c.depth) + 1,
                    },
                    call: *call,
                }),
                Effect::EndCall { child } => into.calls.ended.push(child),
                Effect::DeleteCall { child } => into.calls.deleted.push(child),
            }
        }
        // A person's change of a task closed here must find it ended until the close commits.
        self.closing.extend(into.batch.closed_user_tasks[closed_before..].iter().map(|c| c.id.clone()));
        let parent = live.row.clone();
        for spawned in spawns {
            let row = InstanceRow {
                parent_id: Some(parent.id.clone()),
                ..new_row(
                    spawned.id.clone(),
                    &parent.model_id,
                    &parent.model_key,
                    parent.name.clone(),
                    "{}".into(),
                    now,
                )
            };
            let mut child = Live {
                def: live.def.clone(),
                row,
                instance: spawned.instance,
                committed: 0,
                touched: self.clock,
                bytes: 0,
                tenant: live.tenant.clone(),
                unwritten: Vec::new(),
            };
            self.record(into, &mut child, spawned.effects, now);
            self.live.insert(spawned.id, child);
        }
    }
}

/// New ids, each noted in `made`: the records a command makes with them are its group's to
/// insert (see [`WriteBatch::new_records`]). A lazy request's are not noted: its records are
/// written with a later group, as any other record written again.
fn noted(made: &mut Vec<String>) -> impl FnMut() -> String + '_ {
    move || {
        let id = new_id();
        made.push(id.clone());
        id
    }
}

/// The row of a new instance, before its first write.
fn new_row(id: String, model_id: &str, model_key: &str, name: String, variables: String, now: i64) -> InstanceRow {
    InstanceRow {
        id,
        model_id: model_id.to_owned(),
        model_key: model_key.to_owned(),
        name,
        status: String::new(),
        variables,
        start_time: now,
        end_time: None,
        outputs: None,
        final_vars: None,
        failure: None,
        end_element: None,
        version: 0,
        kind: String::new(),
        parent_id: None,
        rollback_id: None,
        cancel_id: None,
        delete_id: None,
        business_key: None,
        start_user: None,
    }
}

/// The element a move by `plan` takes `element` to.
fn moved_to<'a>(plan: &'a MigrationPlan, element: &'a str) -> &'a str {
    plan.moves.iter().find(|(from, _)| from == element).map_or(element, |(_, to)| to.as_str())
}

/// Whether an earlier request of the group gave the lock on job `record` back.
fn given_back(leases: &Result<ById<Option<String>>, RuntimeError>, record: &str) -> bool {
    leases.as_ref().is_ok_and(|l| l.get(record).is_some_and(Option::is_none))
}

/// Whether `worker` holds the lock of job `record`, as `leases` read it.
fn holds(leases: &Result<ById<Option<String>>, RuntimeError>, record: &str, worker: &str) -> Result<(), RuntimeError> {
    let leases = leases.as_ref().map_err(|e| RuntimeError::NotCommitted(e.to_string()))?;
    super::lock_held(record, leases.get(record).map(Option::as_deref), worker)
}

/// A user task the engine created or closed: its row for people's work, with its candidates.
fn user_task_writes(instance: &InstanceRow, tenant: Option<&str>, record: &TaskRecord, batch: &mut WriteBatch) {
    if record.kind != "userTask" {
        return;
    }
    if let Some(end_time) = record.end_time {
        let reason = (record.status != TaskStatus::Completed).then(|| record.status.text());
        batch.closed_user_tasks.push(ClosedUserTask { id: record.id.clone(), end_time, reason });
        return;
    }
    let Some(info) = &record.user else { return };
    let link = |user_id: Option<&String>, group_id: Option<&String>| TaskLink {
        task_id: record.id.clone(),
        user_id: user_id.cloned(),
        group_id: group_id.cloned(),
        kind: "candidate".into(),
    };
    let links = info
        .candidate_users
        .iter()
        .map(|u| link(Some(u), None))
        .chain(info.candidate_groups.iter().map(|g| link(None, Some(g))))
        .collect();
    let row = UserTaskRow {
        id: record.id.clone(),
        instance_id: Some(instance.id.clone()),
        model_id: Some(instance.model_id.clone()),
        element: Some(record.element.clone()),
        name: info.name.clone(),
        description: info.description.clone(),
        assignee: info.assignee.clone(),
        owner: info.owner.clone(),
        priority: info.priority,
        due_date: info.due_date,
        category: info.category.clone(),
        form_key: info.form_key.clone(),
        create_time: record.create_time,
        tenant_id: tenant.map(str::to_owned),
        version: 1,
        ..UserTaskRow::default()
    };
    batch.user_tasks.push(NewUserTask { row, links });
}
