//! The runtime: drives the engine with the store.
//!
//! One committer task owns every live instance. Requests queue on a channel; the committer
//! takes as many as are waiting, applies them one after another (so commands for one
//! instance never race), writes everything they changed in one transaction (group commit),
//! and only then answers each request and hands new jobs to the stone runner.

use crate::models::ModelCache;
use crate::stones::StoneRunner;
use flowstone_engine::{Command, Ctx, Effect, EngineError, Instance, InstanceStatus};
use flowstone_model::{Definition, ModelError, parse_bpmn};
use flowstone_store::{InstanceRow, JobRow, ModelRow, NewModel, Store, StoreError, TaskRow, WriteBatch};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// How many requests one transaction takes at most.
const MAX_BATCH: usize = 1024;
/// How many requests wait for the commit under way at most before the committer stops taking more.
const MAX_PENDING: usize = 4 * MAX_BATCH;
/// How many live instances the committer keeps in memory before it starts over from the store.
const CACHE_LIMIT: usize = 50_000;

/// Why a runtime request failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The model is not valid.
    #[error("{0}")]
    Model(#[from] ModelError),
    /// No such model, instance or task.
    #[error("{0}")]
    NotFound(String),
    /// The command does not fit the current state.
    #[error("{0}")]
    Conflict(#[from] EngineError),
    /// The database failed; nothing of the request was committed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The runtime is shutting down.
    #[error("the server is shutting down")]
    Stopped,
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

enum Request {
    Start {
        model: Arc<ModelRow>,
        def: Arc<Definition>,
        name: String,
        variables: Map<String, Value>,
        reply: oneshot::Sender<Result<InstanceRow, RuntimeError>>,
    },
    Apply {
        instance: String,
        command: Command,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
}

/// Shared handle to the runtime; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    store: Arc<dyn Store>,
    models: Arc<ModelCache>,
    tx: mpsc::Sender<Request>,
    stop: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Runtime {
    /// Starts the committer and the in-process stones, and re-dispatches the jobs they had
    /// queued before a restart.
    ///
    /// # Errors
    /// When the queued jobs cannot be read.
    pub async fn start(store: Arc<dyn Store>) -> Result<Self, RuntimeError> {
        let (tx, rx) = mpsc::channel(8192);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let runtime = Runtime { store: store.clone(), models: Arc::default(), tx, stop: Arc::new(stop) };
        let stones = StoneRunner::new(runtime.clone());
        let pending = store.jobs_for(&stones.names()).await?;
        // The committer has a thread and a runtime of its own: its commits are dozens of
        // round trips to the database, and each must not wait behind thousands of request
        // tasks for a turn on the shared workers.
        // Commits run on a second such thread, so they proceed while the next batch is applied.
        let commits = dedicated_runtime("flowstone-commit", stopped.clone())?;
        let committer = Committer { runtime: runtime.clone(), live: HashMap::new(), stones: stones.clone(), commits };
        dedicated_runtime("flowstone-committer", stopped.clone())?.spawn(committer.run(rx, stopped));
        for job in pending {
            stones.dispatch(job);
        }
        Ok(runtime)
    }

    /// Stops the committer after the batch in hand; later requests answer [`RuntimeError::Stopped`].
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// The store behind the runtime, for reads.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Parses a BPMN document and stores its executable processes as one deployment.
    ///
    /// # Errors
    /// [`RuntimeError::Model`] naming the element at fault, or a store failure.
    pub async fn deploy(&self, source: &str) -> Result<Vec<ModelRow>, RuntimeError> {
        let defs = parse_bpmn(source)?;
        let models: Vec<NewModel> = defs
            .iter()
            .map(|d| NewModel { id: new_id(), key: d.key.clone(), name: d.name.clone(), source: source.to_owned() })
            .collect();
        let rows = self.store.deploy(&new_id(), models, now_ms()).await?;
        for (row, def) in rows.iter().zip(defs) {
            self.models.remember(Arc::new(row.clone()), Some(Arc::new(def)), true);
        }
        Ok(rows)
    }

    /// A model version by id.
    ///
    /// # Errors
    /// A store failure.
    pub async fn model(&self, id: &str) -> Result<Option<Arc<ModelRow>>, RuntimeError> {
        if let Some(row) = self.models.row(id) {
            return Ok(Some(row));
        }
        let row = self.store.model(id).await?.map(Arc::new);
        if let Some(row) = &row {
            self.models.remember(row.clone(), None, false);
        }
        Ok(row)
    }

    /// The newest version of a key.
    ///
    /// # Errors
    /// A store failure.
    pub async fn latest_model(&self, key: &str) -> Result<Option<Arc<ModelRow>>, RuntimeError> {
        if let Some(row) = self.models.latest(key) {
            return Ok(Some(row));
        }
        let row = self.store.latest_model(key).await?.map(Arc::new);
        if let Some(row) = &row {
            self.models.remember(row.clone(), None, true);
        }
        Ok(row)
    }

    /// The parsed definition of a stored model, parsed once and cached.
    ///
    /// # Errors
    /// When the stored source no longer parses (a model stored by an older version).
    pub fn definition(&self, model: &ModelRow) -> Result<Arc<Definition>, RuntimeError> {
        if let Some(def) = self.models.definition(&model.id) {
            return Ok(def);
        }
        let def = parse_bpmn(&model.source)?.into_iter().find(|d| d.key == model.key).ok_or_else(|| {
            RuntimeError::NotFound(format!("model {} no longer holds process {}", model.id, model.key))
        })?;
        let def = Arc::new(def);
        self.models.remember(Arc::new(model.clone()), Some(def.clone()), false);
        Ok(def)
    }

    /// Starts an instance of `model`; answers once it is committed.
    ///
    /// # Errors
    /// A store failure, or [`RuntimeError::Stopped`].
    pub async fn start_instance(
        &self,
        model: Arc<ModelRow>,
        name: String,
        variables: Map<String, Value>,
    ) -> Result<InstanceRow, RuntimeError> {
        let def = self.definition(&model)?;
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Start { model, def, name, variables, reply }).await.map_err(|_| RuntimeError::Stopped)?;
        rx.await.map_err(|_| RuntimeError::Stopped)?
    }

    /// Applies a command to an instance; answers once its effects are committed.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] for an unknown instance, [`RuntimeError::Conflict`] when the
    /// command does not fit its state, or a store failure.
    pub async fn apply(&self, instance: &str, command: Command) -> Result<(), RuntimeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Apply { instance: instance.to_owned(), command, reply })
            .await
            .map_err(|_| RuntimeError::Stopped)?;
        rx.await.map_err(|_| RuntimeError::Stopped)?
    }
}

/// A live instance as the committer holds it.
struct Live {
    def: Arc<Definition>,
    row: InstanceRow,
    instance: Instance,
}

enum Reply {
    Started(oneshot::Sender<Result<InstanceRow, RuntimeError>>, Box<InstanceRow>),
    Applied(oneshot::Sender<Result<(), RuntimeError>>),
}

/// A group of applied commands whose writes are ready to commit.
struct Prepared {
    batch: WriteBatch,
    replies: Vec<Reply>,
    touched: Vec<String>,
}

impl Prepared {
    /// Adds a later group of writes (the store keeps the last write of each row).
    fn absorb(&mut self, later: Prepared) {
        let Prepared { batch, replies, touched } = later;
        self.batch.instances.extend(batch.instances);
        self.batch.tasks.extend(batch.tasks);
        self.batch.jobs.extend(batch.jobs);
        self.batch.dropped_jobs.extend(batch.dropped_jobs);
        self.replies.extend(replies);
        self.touched.extend(touched);
    }

    /// Tells every requester that nothing of theirs was committed.
    fn fail(self, message: &str) {
        let err = || RuntimeError::Store(StoreError::Corrupt(format!("not committed: {message}")));
        for reply in self.replies {
            match reply {
                Reply::Started(tx, _) => drop(tx.send(Err(err()))),
                Reply::Applied(tx) => drop(tx.send(Err(err()))),
            }
        }
    }
}

struct Committer {
    runtime: Runtime,
    live: HashMap<String, Live>,
    stones: StoneRunner,
    /// Where commits run.
    commits: tokio::runtime::Handle,
}

/// A single-threaded runtime on a thread of its own, kept until `stopped` turns true.
fn dedicated_runtime(
    name: &str,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::runtime::Handle, RuntimeError> {
    let failed = |e: std::io::Error| RuntimeError::Store(StoreError::Corrupt(format!("cannot start {name}: {e}")));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(failed)?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            rt.block_on(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
        })
        .map_err(failed)?;
    Ok(handle)
}

/// A commit under way; gives the batch back with the result.
type Commit = tokio::task::JoinHandle<(WriteBatch, Result<(), StoreError>)>;

impl Committer {
    /// Double-buffered: while one batch commits, the next is applied in memory. Commits stay
    /// in order, and a batch prepared on top of one that failed is discarded, not committed.
    async fn run(mut self, mut rx: mpsc::Receiver<Request>, mut stopped: tokio::sync::watch::Receiver<bool>) {
        let mut requests = Vec::with_capacity(MAX_BATCH);
        let mut committing: Option<(Commit, Prepared)> = None;
        let mut next: Option<Prepared> = None;
        let mut open = true;
        while open || committing.is_some() || next.is_some() {
            if committing.is_none()
                && let Some(mut prepared) = next.take()
            {
                let (store, batch) = (self.runtime.store.clone(), std::mem::take(&mut prepared.batch));
                let commit = self.commits.spawn(async move {
                    let result = store.commit(&batch).await;
                    (batch, result)
                });
                committing = Some((commit, prepared));
            }
            tokio::select! {
                biased;
                _ = stopped.changed() => return,
                result = async { committing.as_mut().map(|(h, _)| h).expect("guarded by the branch condition").await },
                    if committing.is_some() =>
                {
                    let Some((_, mut prepared)) = committing.take() else { continue };
                    let result = match result {
                        Ok((batch, result)) => {
                            prepared.batch = batch;
                            result
                        }
                        Err(e) => Err(StoreError::Corrupt(format!("commit task failed: {e}"))),
                    };
                    if let Err(e) = self.finish(prepared, result)
                        && let Some(built_on_it) = next.take()
                    {
                        self.forget(&built_on_it.touched);
                        built_on_it.fail(&e);
                    }
                }
                // While a commit runs, requests keep joining the next batch, up to a bound.
                n = rx.recv_many(&mut requests, MAX_BATCH), if open && next.as_ref().is_none_or(|n| n.replies.len() < MAX_PENDING) => {
                    if n == 0 {
                        open = false;
                    } else {
                        let prepared = self.prepare(std::mem::take(&mut requests)).await;
                        match next.as_mut() {
                            Some(next) => next.absorb(prepared),
                            None => next = Some(prepared),
                        }
                    }
                }
            }
            if committing.is_none() && next.is_none() && self.live.len() > CACHE_LIMIT {
                self.live.clear();
            }
        }
    }

    /// Applies each request to its live instance and collects the writes.
    async fn prepare(&mut self, requests: Vec<Request>) -> Prepared {
        let now = now_ms();
        let mut ids = new_id;
        let mut batch = WriteBatch::default();
        let mut replies = Vec::with_capacity(requests.len());
        let mut touched = Vec::new();
        let mut rows = HashMap::new();
        for request in requests {
            match request {
                Request::Start { model, def, name, variables, reply } => {
                    let id = new_id();
                    let start_vars = Value::Object(variables.clone()).to_string();
                    let (instance, effects) = Instance::start(&def, variables, &mut Ctx { now, ids: &mut ids });
                    let row = InstanceRow {
                        id: id.clone(),
                        model_id: model.id.clone(),
                        model_key: model.key.clone(),
                        name,
                        status: String::new(),
                        variables: start_vars,
                        start_time: now,
                        end_time: None,
                        outputs: None,
                        final_vars: None,
                        failure: None,
                    };
                    let mut live = Live { def, row, instance };
                    record(&mut batch, &mut rows, &mut live, effects, now);
                    replies.push(Reply::Started(reply, Box::new(live.row.clone())));
                    touched.push(id.clone());
                    self.live.insert(id, live);
                }
                Request::Apply { instance, command, reply } => {
                    let live = match self.load(&instance).await {
                        Ok(live) => live,
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            continue;
                        }
                    };
                    match live.instance.apply(&live.def, command, &mut Ctx { now, ids: &mut ids }) {
                        Ok(effects) => {
                            record(&mut batch, &mut rows, live, effects, now);
                            replies.push(Reply::Applied(reply));
                            touched.push(live.row.id.clone());
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e.into()));
                        }
                    }
                }
            }
        }
        Prepared { batch, replies, touched }
    }

    /// Answers a committed batch and hands its jobs to the stones; on failure forgets its
    /// in-memory changes, tells its requesters, and returns the error.
    fn finish(&mut self, prepared: Prepared, result: Result<(), StoreError>) -> Result<(), String> {
        if let Err(e) = result {
            tracing::error!(error = %e, "commit failed");
            self.forget(&prepared.touched);
            let message = e.to_string();
            prepared.fail(&message);
            return Err(message);
        }
        let Prepared { batch, replies, touched } = prepared;
        for reply in replies {
            match reply {
                Reply::Started(tx, row) => drop(tx.send(Ok(*row))),
                Reply::Applied(tx) => drop(tx.send(Ok(()))),
            }
        }
        for job in batch.jobs.into_iter().filter(|j| !batch.dropped_jobs.contains(&j.job.record_id)) {
            self.stones.dispatch(job);
        }
        for id in touched {
            if self.live.get(&id).is_some_and(|l| l.instance.status != InstanceStatus::Running) {
                self.live.remove(&id);
            }
        }
        Ok(())
    }

    /// Drops in-memory state that was never committed; the store has the last committed one.
    fn forget(&mut self, touched: &[String]) {
        for id in touched {
            self.live.remove(id);
        }
    }

    /// The live instance, from memory or else from the store. Memory wins: it may hold
    /// changes whose commit is still under way.
    async fn load(&mut self, id: &str) -> Result<&mut Live, RuntimeError> {
        let key = if self.live.contains_key(id) {
            id.to_owned()
        } else {
            let store = &self.runtime.store;
            let row = store
                .instance(id)
                .await?
                .ok_or_else(|| RuntimeError::NotFound(format!("process instance {id} not found")))?;
            if !self.live.contains_key(&row.id) {
                if let Some(ended) = ENDED.into_iter().find(|s| status_name(*s) == row.status) {
                    return Err(EngineError::NotRunning(ended).into());
                }
                let state = store.instance_state(&row.id).await?.unwrap_or_default();
                let instance: Instance =
                    serde_json::from_str(&state).map_err(|e| StoreError::Corrupt(format!("instance {id}: {e}")))?;
                let model = store
                    .model(&row.model_id)
                    .await?
                    .ok_or_else(|| RuntimeError::NotFound(format!("model {} not found", row.model_id)))?;
                let def = self.runtime.definition(&model)?;
                self.live.insert(row.id.clone(), Live { def, row: row.clone(), instance });
            }
            row.id
        };
        self.live.get_mut(&key).ok_or_else(|| RuntimeError::NotFound(format!("process instance {id} not found")))
    }
}

/// Statuses an instance never leaves.
const ENDED: [InstanceStatus; 3] = [InstanceStatus::Completed, InstanceStatus::Failed, InstanceStatus::Canceled];

/// Adds an instance's new state and its effects to the batch; `rows` remembers where each
/// instance already stands in it, so several commands on one instance write it once.
fn record(batch: &mut WriteBatch, rows: &mut HashMap<String, usize>, live: &mut Live, effects: Vec<Effect>, now: i64) {
    let inst = &live.instance;
    let row = &mut live.row;
    row.status = status_name(inst.status).to_owned();
    row.failure = inst.failure.clone();
    if inst.status != InstanceStatus::Running {
        row.end_time.get_or_insert(now);
        row.outputs = inst.outputs.as_ref().map(|o| Value::Object(o.clone()).to_string());
        row.final_vars = Some(Value::Object(inst.variables.clone()).to_string());
    }
    // A finished instance is never loaded again: its row and final variables tell all.
    let state = if inst.status == InstanceStatus::Running {
        serde_json::to_string(inst).unwrap_or_default()
    } else {
        String::new()
    };
    match rows.get(&row.id) {
        Some(i) => batch.instances[*i] = (row.clone(), state),
        None => {
            rows.insert(row.id.clone(), batch.instances.len());
            batch.instances.push((row.clone(), state));
        }
    }
    for effect in effects {
        match effect {
            Effect::Task(record) => batch.tasks.push(TaskRow { instance_id: row.id.clone(), record: *record }),
            Effect::QueueJob(job) => batch.jobs.push(JobRow { instance_id: row.id.clone(), job, created_at: now }),
            Effect::DropJob { record_id } => batch.dropped_jobs.push(record_id),
        }
    }
}

/// The stored name of an engine status.
pub fn status_name(status: InstanceStatus) -> &'static str {
    match status {
        InstanceStatus::Running => "running",
        InstanceStatus::Completed => "completed",
        InstanceStatus::Failed => "failed",
        InstanceStatus::Canceled => "canceled",
    }
}
