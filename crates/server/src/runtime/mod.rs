//! The runtime: drives the engine with the store.
//!
//! Requests queue on a channel for the [committer](committer), which owns every live instance,
//! applies them in order, commits what they changed in groups and only then answers. The
//! in-process stones run the jobs it commits.

mod bk_sops;
pub(crate) mod broker;
mod clocked;
mod committer;
mod events;
pub(crate) mod jobs;
mod kept;
mod lookups;
mod migration;
mod periodic;
mod reads;
mod records;
mod retention;
pub(crate) mod stones;
mod stuck;
mod timers;
mod user_tasks;
mod watchers;

use crate::models::ModelCache;
use crate::runtime::jobs::JobBoard;
use crate::runtime::stones::StoneRunner;
pub use bk_sops::{Tree, pipeline_key};
use committer::{Committer, Request};
pub use events::{Broadcast, EventIn, Reached};
use flowstone_engine::{Command, EngineError, InstanceStatus, Limits, StartOptions};
use flowstone_model::{Definition, ModelError, parse_bpmn, parse_pipeline};
use flowstone_store::{
    DeploymentWrite, InstanceRow, JobRow, LeaseChange, LeaseUpdate, ModelRow, NewDeployment, NewModel, Store,
    StoreError, UserTaskRow,
};
use flowstone_worker::Stone;
pub use kept::{MAX_TTL_MS, Sent};
pub use periodic::Crontab;
pub use retention::Pruned;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
pub use stuck::StuckWork;
use tokio::sync::{mpsc, oneshot, watch};
pub use user_tasks::{Part, Person, TaskFields, TaskOp};
pub use watchers::MAX_WAIT;

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
    /// A request that is not valid, with what is wrong (a deployment of several files).
    #[error("{0}")]
    NotValid(String),
    /// The thing is still used by others (a deployment whose models have instances).
    #[error("{0}")]
    InUse(String),
    /// What a request would create exists already (a task's variable).
    #[error("{0}")]
    Exists(String),
    /// The caller may not do this (delete another's comment, delete a process's task).
    #[error("{0}")]
    Forbidden(String),
    /// The database failed; nothing of the request was committed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The request's group of writes was not committed (the database failed, or a write it
    /// depended on did); nothing of it was written.
    #[error("not committed: {0}")]
    NotCommitted(String),
    /// The runtime could not start a thread it needs.
    #[error("cannot start the runtime: {0}")]
    Start(String),
    /// The runtime is shutting down.
    #[error("the server is shutting down")]
    Stopped,
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A new time-ordered id (UUIDv7, hyphenated), written without the formatting machinery: a
/// started instance takes one for itself and one for every task record and passage.
pub(crate) fn new_id() -> String {
    let mut text = uuid::Uuid::encode_buffer();
    uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text).to_owned()
}

/// How this server runs stones and takes part in a shared database.
#[derive(Clone)]
pub struct RuntimeOptions {
    /// This server's name among those sharing the database; it owns the jobs it runs.
    pub node: String,
    /// How long a job stays with the server running it without a heartbeat before another
    /// server takes it over.
    pub lease: Duration,
    /// How long the `begin` of a job handed out waits in memory for the job's outcome before
    /// it is written alone: a job that ends sooner writes its instance once, begin and outcome
    /// together; a slower one shows it began after this long.
    pub begin_wait: Duration,
    /// The stones run in-process; jobs of other stones wait for workers.
    pub stones: Vec<Arc<dyn Stone>>,
    /// Stones whose jobs are published to RabbitMQ instead.
    pub broker: Option<BrokerOptions>,
    /// The bounds every instance runs within.
    pub limits: Limits,
    /// Instances that ended longer ago than this are deleted in the background (none: kept).
    pub history_ttl: Option<Duration>,
    /// Work that has not moved for this long is counted and logged as stuck (none: not
    /// looked for).
    pub stuck_after: Option<Duration>,
}

/// Jobs of some stones published to RabbitMQ: one durable queue per stone, named after it
/// (behind `prefix`), and events coming back on the queue `<prefix>flowstone.events`.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// `amqp://user:password@host:5672/%2f`.
    pub url: String,
    /// The stones whose jobs go to the broker.
    pub stones: Vec<String>,
    /// Put before every queue name (to keep environments apart on one broker).
    pub prefix: String,
}

impl Default for RuntimeOptions {
    /// Every built-in stone in-process, with machines under the temporary directory.
    fn default() -> Self {
        let machines = std::env::temp_dir().join("flowstone-machines");
        Self {
            node: "flowstone".into(),
            lease: Duration::from_secs(30),
            begin_wait: Duration::from_millis(50),
            stones: flowstone_worker::builtin(&machines),
            broker: None,
            limits: Limits::default(),
            history_ttl: None,
            stuck_after: Some(Duration::from_secs(600)),
        }
    }
}

impl std::fmt::Debug for RuntimeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stones: Vec<&str> = self.stones.iter().map(|s| s.name()).collect();
        f.debug_struct("RuntimeOptions")
            .field("node", &self.node)
            .field("lease", &self.lease)
            .field("begin_wait", &self.begin_wait)
            .field("stones", &stones)
            .field("broker", &self.broker)
            .field("limits", &self.limits)
            .field("history_ttl", &self.history_ttl)
            .field("stuck_after", &self.stuck_after)
            .finish()
    }
}

/// Shared handle to the runtime; cheap to clone: one reference count, as every request's
/// handlers and layers clone it.
#[derive(Clone)]
pub struct Runtime(Arc<Shared>);

/// What every handle of the runtime reaches.
pub struct Shared {
    store: Arc<dyn Store>,
    models: Arc<ModelCache>,
    tx: mpsc::Sender<Request>,
    stop: Arc<tokio::sync::watch::Sender<bool>>,
    node: Arc<str>,
    /// The stone runner's loop, awaited on a clean stop before jobs are handed back.
    runner: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// Stops the stone runner's loop alone (the committer keeps going meanwhile).
    runner_stop: Arc<watch::Sender<bool>>,
    /// Where workers wait for jobs.
    board: Arc<JobBoard>,
    /// The bounds every instance runs within.
    limits: Arc<Limits>,
    /// What the server counts (`GET /metrics`).
    metrics: Arc<crate::metrics::Metrics>,
    /// The stones this server runs or publishes, by name.
    stones: Arc<[KnownStone]>,
    /// Wakes the timer service when a commit set timers.
    timer_bell: Arc<timers::TimerBell>,
    /// When the last message kept for a time to live runs out (a new wait looks for kept
    /// messages only before then, or always on a shared database).
    kept_until: Arc<std::sync::atomic::AtomicI64>,
    /// Where messages sent by key ask for their wait, read for many at once.
    lookups: mpsc::UnboundedSender<lookups::Lookup>,
    /// Where one-instance reads go, answered for many at once.
    reads: mpsc::UnboundedSender<reads::Read>,
    /// Requests waiting for a status change.
    watchers: Arc<watchers::Watchers>,
    /// Live views waiting for any change of an instance.
    progress: Arc<watchers::Watchers>,
}

impl std::ops::Deref for Runtime {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// A stone this server knows of: one it runs, one whose jobs it publishes to RabbitMQ, or a
/// topic workers fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownStone {
    /// Its name (the topic of its jobs).
    pub name: String,
    /// What it does, when it says.
    pub summary: String,
    /// Where its jobs go.
    pub home: StoneHome,
}

/// Where a stone's jobs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoneHome {
    /// Run in this server.
    InProcess,
    /// Published to RabbitMQ.
    Broker,
    /// Fetched by workers (seen in the last minute).
    Workers,
}

impl Runtime {
    /// The stones this server runs or publishes and the topics its workers fetch, by name
    /// (a name served two ways is listed as the first of these).
    pub fn known_stones(&self) -> Vec<KnownStone> {
        let mut known = self.stones.to_vec();
        for topic in self.board.roster.topics() {
            if !known.iter().any(|k| k.name == topic) {
                known.push(KnownStone { name: topic, summary: String::new(), home: StoneHome::Workers });
            }
        }
        known.sort_by(|a, b| a.name.cmp(&b.name));
        known
    }

    /// Starts the committer and the in-process stones; they take back the jobs this node
    /// held before a restart, and any whose lease has ended.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub async fn start(store: Arc<dyn Store>, options: RuntimeOptions) -> Result<Self, RuntimeError> {
        let (tx, rx) = mpsc::channel(8192);
        let (stop, stopped) = watch::channel(false);
        let (runner_stop, runner_stopped) = watch::channel(false);
        let brokered: Vec<String> = options.broker.iter().flat_map(|b| b.stones.clone()).collect();
        // A brokered stone's jobs go to the broker, even when a built-in of that name exists.
        let in_process: Vec<Arc<dyn Stone>> =
            options.stones.iter().filter(|s| !brokered.iter().any(|b| b == s.name())).cloned().collect();
        let known = in_process
            .iter()
            .map(|s| KnownStone {
                name: s.name().to_owned(),
                summary: s.summary().to_owned(),
                home: StoneHome::InProcess,
            })
            .chain(brokered.iter().map(|name| {
                let summary = options.stones.iter().find(|s| s.name() == name).map_or("", |s| s.summary());
                KnownStone { name: name.clone(), summary: summary.to_owned(), home: StoneHome::Broker }
            }))
            .collect();
        let runtime = Runtime(Arc::new(Shared {
            store: store.clone(),
            models: Arc::default(),
            tx,
            stop: Arc::new(stop),
            node: options.node.as_str().into(),
            runner: Arc::default(),
            runner_stop: Arc::new(runner_stop),
            board: Arc::default(),
            limits: Arc::new(options.limits.clone()),
            metrics: Arc::default(),
            stones: known,
            timer_bell: Arc::default(),
            kept_until: Arc::new(store.buffered_until().await?.unwrap_or(0).into()),
            lookups: lookups::start(store.clone()),
            reads: reads::start(store.clone()),
            watchers: Arc::default(),
            progress: Arc::default(),
        }));
        runtime.forward_job_signals(stopped.clone()).await;
        let board = runtime.board.clone();
        let watching = stopped.clone();
        tokio::spawn(async move { board.roster.watch(watching).await });
        let stones =
            StoneRunner::new(runtime.clone(), &in_process, options.node.clone(), options.lease, runner_stopped);
        // The committer has a thread and a runtime of its own: its commits are dozens of
        // round trips to the database, and each must not wait behind thousands of request
        // tasks for a turn on the shared workers. Commits run on a second such thread, so
        // they proceed while the next group is applied.
        let commits = dedicated_runtime("flowstone-write", stopped.clone())?;
        let committer = Committer::new(
            runtime.clone(),
            stones.clone(),
            commits,
            &options,
            Arc::new(move |stone: &str| brokered.iter().any(|b| b == stone)),
            runtime.limits.clone(),
        );
        dedicated_runtime("flowstone-apply", stopped.clone())?.spawn(committer.run(rx, stopped.clone()));
        *runtime.runner.lock().unwrap_or_else(|p| p.into_inner()) = Some(stones.start());
        timers::start(runtime.clone(), options.node.clone(), options.lease, stopped.clone());
        if let Some(ttl) = options.history_ttl {
            runtime.keep_history_for(ttl);
        }
        if let Some(after) = options.stuck_after {
            runtime.sweep_stuck(after);
        }
        if let Some(broker) = options.broker {
            crate::runtime::broker::start(runtime.clone(), broker, &options.node, options.lease, stopped)?;
        }
        // What this server's processes threw before it stopped, and it had not sent.
        let unsent = runtime.store.unsent(&options.node).await?;
        if !unsent.is_empty() {
            runtime.send_thrown(unsent);
        }
        Ok(runtime)
    }

    /// A clean stop: stops the runtime, waits until this node takes no more jobs, then hands
    /// its jobs back so that servers sharing the database take them over at once.
    ///
    /// # Errors
    /// A store failure (the jobs then pass on when their leases end).
    pub async fn stop_and_hand_back(&self) -> Result<u64, RuntimeError> {
        // The runner stops first, so that it cannot take back what is handed back; the rest
        // keeps running until then (database connections may belong to its threads).
        self.runner_stop.send_replace(true);
        let runner = self.runner.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(runner) = runner {
            let _ = runner.await;
        }
        let released = self.store.release_jobs(&self.node).await;
        let timers = self.store.release_timers(&self.node).await;
        self.shutdown();
        timers?;
        Ok(released?)
    }

    /// On a shared database, jobs committed or handed back by other servers wake this one's
    /// waiting workers.
    async fn forward_job_signals(&self, mut stopped: watch::Receiver<bool>) {
        let signal = match self.store.job_signal().await {
            Ok(Some(signal)) => signal,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "no job notifications from other servers; waiting workers look every second");
                return;
            }
        };
        let board = self.board.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => return,
                    () = signal.notified() => board.wake(),
                }
            }
        });
    }

    /// What the server counts.
    pub(crate) fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// Where workers wait for jobs.
    pub(crate) fn board(&self) -> &JobBoard {
        &self.board
    }

    /// Hands jobs to a worker, each locked for it, waiting for some as long as it asks. Handing
    /// a job out is its `<action>.begin`: applied meanwhile, not waited for (a job reported on
    /// before is taken from where it stands), and written with the job's outcome when that
    /// comes within [`RuntimeOptions::begin_wait`].
    ///
    /// # Errors
    /// A store failure.
    pub(crate) async fn fetch_jobs(
        &self,
        wanted: crate::runtime::jobs::Wanted<'_>,
    ) -> Result<Vec<JobRow>, RuntimeError> {
        let jobs = self.board.fetch(self.store.as_ref(), wanted).await?;
        for job in &jobs {
            self.metrics().job_handed_out(&job.job.stone, job.job.action.name(), job.created_at);
            let (rt, instance) = (self.clone(), job.instance_id.clone());
            let event = flowstone_engine::StoneEvent::Begin(job.job.action);
            let command = Command::Stone { record: job.job.record_id.clone(), event };
            tokio::spawn(async move {
                if let Err(e) = rt.apply_lazily(&instance, command).await {
                    tracing::debug!(error = %e, "begin of a handed-out job not recorded");
                }
            });
        }
        Ok(jobs)
    }

    /// Jobs for workers were committed.
    pub(crate) fn jobs_committed(&self) {
        self.board.wake();
    }

    /// Stops the committer after the batch in hand; later requests answer [`RuntimeError::Stopped`].
    pub fn shutdown(&self) {
        self.board.close();
        self.runner_stop.send_replace(true);
        self.stop.send_replace(true);
    }

    /// Why the runtime cannot take work now (its committer stopped, or the database does not
    /// answer), or nothing when it can: what `GET /health/ready` answers.
    pub async fn unready(&self) -> Option<String> {
        if self.tx.is_closed() || *self.stop.borrow() {
            return Some("the runtime is stopping".into());
        }
        // A probe answers in time even when the database hangs instead of refusing.
        match tokio::time::timeout(Duration::from_secs(2), self.store.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("the database does not answer: {e}")),
            Err(_) => Some("the database does not answer within 2 s".into()),
        }
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
        self.deploy_for(source, None).await
    }

    /// As [`Runtime::deploy`], for `tenant`.
    ///
    /// # Errors
    /// As [`Runtime::deploy`].
    pub async fn deploy_for(&self, source: &str, tenant: Option<String>) -> Result<Vec<ModelRow>, RuntimeError> {
        let resource = parse_bpmn(source)?.first().map_or_else(|| "model".to_owned(), |d| d.key.clone());
        let deployment = NewDeployment { tenant_id: tenant, ..NewDeployment::default() };
        self.deploy_files(deployment, &[(format!("{resource}.bpmn20.xml"), source.to_owned())]).await
    }

    /// Parses BPMN files (name, source) and stores their executable processes as one
    /// deployment with the given name, category and tenant (its id is made here).
    ///
    /// # Errors
    /// [`RuntimeError::Model`] naming the file and the element at fault, or a store failure.
    pub async fn deploy_files(
        &self,
        deployment: NewDeployment,
        files: &[(String, String)],
    ) -> Result<Vec<ModelRow>, RuntimeError> {
        let mut defs = Vec::new();
        let mut models = Vec::new();
        for (resource, source) in files {
            let parsed = parse_bpmn(source).map_err(|e| {
                if files.len() > 1 {
                    RuntimeError::NotValid(format!("{resource}: {e}"))
                } else {
                    RuntimeError::Model(e)
                }
            })?;
            for d in parsed {
                models.push(NewModel {
                    id: new_id(),
                    key: d.key.clone(),
                    name: d.name.clone(),
                    source: source.clone(),
                    resource: resource.clone(),
                });
                defs.push(d);
            }
        }
        let id = new_id();
        let deployment = NewDeployment { id: id.clone(), ..deployment };
        let ids: Vec<String> = models.iter().map(|m| m.id.clone()).collect();
        let tenant = deployment.tenant_id.as_deref();
        let (timers, dropped_timers) = timers::start_timers(&models, &defs, tenant, now_ms());
        let (starts, replaced_starts) = events::start_subscriptions(&models, &defs, tenant, now_ms());
        let write = DeploymentWrite { deployment, models, at: now_ms() };
        let records = records::Records {
            deployments: vec![write],
            timers,
            dropped_timers,
            starts,
            replaced_starts,
            ..Default::default()
        };
        self.write_records(records).await?;
        // As stored (numbered), read at once, in the order of the files.
        let mut stored = self.store.models_of_deployment(&id).await?;
        let mut rows = Vec::with_capacity(ids.len());
        for (model, def) in ids.iter().zip(defs) {
            let at = stored
                .iter()
                .position(|m| &m.id == model)
                .ok_or_else(|| RuntimeError::NotCommitted(format!("model {model} is missing after its commit")))?;
            let row = stored.swap_remove(at);
            self.deployed(&row, Arc::new(def));
            rows.push(row);
        }
        Ok(rows)
    }

    /// Keeps a model just deployed at hand, and says so in the log.
    fn deployed(&self, row: &ModelRow, def: Arc<Definition>) {
        let (model, key, version) = (&row.id, &row.key, row.version);
        tracing::info!(target: "flowstone::lifecycle", %model, %key, version, deployment = %row.deployment_id, "model deployed");
        self.models.remember(Arc::new(row.clone()), Some(def), true);
    }

    /// Removes a deployment (see [`Store::delete_deployment`]) and forgets its models.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] for an unknown deployment, [`RuntimeError::NotValid`] when
    /// instances of its models stand in the way, or a store failure.
    pub async fn delete_deployment(&self, id: &str, cascade: bool) -> Result<(), RuntimeError> {
        if self.store.deployment(id).await?.is_none() {
            return Err(RuntimeError::NotFound(format!("Could not find a deployment with id '{id}'.")));
        }
        match self.store.delete_deployment(id, cascade).await? {
            0 => {
                self.models.forget_deployment(id);
                Ok(())
            }
            n if cascade => Err(RuntimeError::InUse(format!(
                "Deployment '{id}' has {n} running process instance(s); cancel or delete them first"
            ))),
            n => Err(RuntimeError::InUse(format!(
                "Deployment '{id}' has {n} process instance(s); delete with cascade=true to remove the ended ones with it"
            ))),
        }
    }

    /// A model version by id.
    ///
    /// # Errors
    /// A store failure.
    pub async fn model(&self, id: &str) -> Result<Option<Arc<ModelRow>>, RuntimeError> {
        self.through_cache(self.models.row(id), self.store.model(id), false).await
    }

    /// The newest version of a key.
    ///
    /// # Errors
    /// A store failure.
    pub async fn latest_model(&self, key: &str) -> Result<Option<Arc<ModelRow>>, RuntimeError> {
        self.through_cache(self.models.latest(key), self.store.latest_model(key), true).await
    }

    /// The cached row, else the stored one (then remembered; `latest` when it is its key's newest).
    async fn through_cache(
        &self,
        cached: Option<Arc<ModelRow>>,
        stored: impl std::future::Future<Output = flowstone_store::Result<Option<ModelRow>>>,
        latest: bool,
    ) -> Result<Option<Arc<ModelRow>>, RuntimeError> {
        if cached.is_some() {
            return Ok(cached);
        }
        let row = stored.await?.map(Arc::new);
        if let Some(row) = &row {
            self.models.remember(row.clone(), None, latest);
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
        let def = if model.source.trim_start().starts_with('{') {
            // A pipeline tree, stored with its subprocesses inlined.
            let tree: Value = serde_json::from_str(&model.source)
                .map_err(|e| RuntimeError::NotValid(format!("model {} holds no JSON: {e}", model.id)))?;
            parse_pipeline(&tree, &model.key, model.name.as_deref(), &|_| None)?
        } else {
            parse_bpmn(&model.source)?.into_iter().find(|d| d.key == model.key).ok_or_else(|| {
                RuntimeError::NotFound(format!("model {} no longer holds process {}", model.id, model.key))
            })?
        };
        let def = Arc::new(def);
        self.models.remember(Arc::new(model.clone()), Some(def.clone()), false);
        Ok(def)
    }

    /// Starts an instance of `model`, named `name` and found by `business_key`; answers once
    /// it is committed.
    ///
    /// # Errors
    /// [`RuntimeError::NotValid`] for variables past the bounds of [`Limits`], a store
    /// failure, or [`RuntimeError::Stopped`].
    pub async fn start_instance(
        &self,
        model: Arc<ModelRow>,
        name: String,
        business_key: Option<String>,
        variables: Map<String, Value>,
        options: StartOptions,
    ) -> Result<InstanceRow, RuntimeError> {
        self.limits.check_variables(&variables).map_err(RuntimeError::NotValid)?;
        let def = self.definition(&model)?;
        self.ask(|reply| Request::Start { model, def, name, business_key, variables, options, reply }).await
    }

    /// Sends the committer a request made with where its answer goes; answers what it
    /// answers, once committed.
    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, RuntimeError>>) -> Request,
    ) -> Result<T, RuntimeError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(request(reply)).await.map_err(|_| RuntimeError::Stopped)?;
        rx.await.map_err(|_| RuntimeError::Stopped)?
    }

    /// The process variables of an instance as committed (its final ones once it ended);
    /// none for an unknown instance.
    ///
    /// # Errors
    /// A store failure, or a stored state that cannot be read.
    pub async fn variables(&self, instance_id: &str) -> Result<Option<Map<String, Value>>, RuntimeError> {
        let Some(row) = self.instance(instance_id).await? else { return Ok(None) };
        let corrupt = |e: serde_json::Error| RuntimeError::Store(StoreError::Corrupt(e.to_string()));
        if let Some(vars) = &row.final_vars {
            return serde_json::from_str(vars).map(Some).map_err(corrupt);
        }
        Ok(self.engine_state(instance_id).await?.map(|inst| inst.variables))
    }

    /// The engine's state of an instance as last committed (none once it ended without
    /// keeping it), to read. Its open records hold their ids and elements alone, and the
    /// stone tasks it ran may be their records' ids: only the committer, which runs
    /// instances, fills them (see [`flowstone_engine::Instance::fill_records`]). An ended
    /// instance's variables may be left out of it: [`Runtime::variables`] reads them.
    ///
    /// # Errors
    /// A store failure, or a stored state that cannot be read.
    pub async fn engine_state(&self, instance_id: &str) -> Result<Option<flowstone_engine::Instance>, RuntimeError> {
        match self.store().instance_state(instance_id).await? {
            Some(stored) if !stored.core.is_empty() => {
                flowstone_engine::Instance::from_stored(&stored).map(Some).map_err(|e| corrupt(instance_id, e))
            }
            _ => Ok(None),
        }
    }

    /// Applies a command to an instance; answers once its effects are committed.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] for an unknown instance, [`RuntimeError::Conflict`] when the
    /// command does not fit its state, or a store failure.
    pub async fn apply(&self, instance: &str, command: Command) -> Result<(), RuntimeError> {
        self.send_apply(instance, command, None, false).await
    }

    /// Applies a stone job's `begin`; answers once it is applied, and writes it with the
    /// instance's next change (the job's outcome, when it ends within
    /// [`RuntimeOptions::begin_wait`]) or alone after that: one instance write per fast step,
    /// while a cancel or a failure meanwhile still knows the stone began.
    pub(crate) async fn apply_lazily(&self, instance: &str, command: Command) -> Result<(), RuntimeError> {
        self.send_apply(instance, command, None, true).await
    }

    /// Applies a worker's report on a job (a [`Command::Stone`]) that the caller found the
    /// worker holding the lock of just before, if it still does when the report commits: a lock
    /// that passed to another worker meanwhile (or was given back earlier in its group) refuses it.
    ///
    /// # Errors
    /// [`RuntimeError::InUse`] when another worker (or none) holds the lock,
    /// [`RuntimeError::NotFound`] when the job is closed, or as [`Runtime::apply`].
    pub async fn apply_held(&self, instance: &str, command: Command, worker: &str) -> Result<(), RuntimeError> {
        self.send_apply(instance, command, Some(worker.to_owned()), false).await
    }

    /// Changes the lock `worker` holds on a job (see [`LeaseUpdate`]), if it still holds it
    /// when the change is applied and committed.
    ///
    /// # Errors
    /// [`RuntimeError::InUse`] when another worker (or none) holds the lock,
    /// [`RuntimeError::NotFound`] when the job is closed, or a store failure.
    pub async fn change_lease(&self, record: &str, worker: &str, update: LeaseUpdate) -> Result<(), RuntimeError> {
        let change = LeaseChange { record_id: record.to_owned(), owner: worker.to_owned(), update };
        self.ask(|reply| Request::Lease { change, reply }).await
    }

    /// Sends a command to the committer inside a `command` span of its instance's trace.
    async fn send_apply(
        &self,
        instance: &str,
        command: Command,
        holder: Option<String>,
        lazy: bool,
    ) -> Result<(), RuntimeError> {
        use tracing::Instrument;
        let span = tracing::info_span!("command", command = command.name(), instance);
        flowstone_worker::trace::follow_process(&span, instance);
        let checked = holder.is_some();
        self.ask(|reply| Request::Apply { instance: instance.to_owned(), command, holder, checked, lazy, reply })
            .instrument(span)
            .await
    }

    /// Applies a person's change to a user task; answers the task as changed once committed.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] for a task that is not open, [`RuntimeError::Conflict`] when
    /// a rule refuses the change (claimed by someone else, delegated, not theirs), or a store
    /// failure.
    pub async fn change_task(&self, task: &str, op: TaskOp, by: Person) -> Result<UserTaskRow, RuntimeError> {
        let task = task.to_owned();
        self.ask(|reply| Request::Task(Box::new(user_tasks::TaskRequest { task, op, by, reply }))).await
    }
}

/// Whether `worker` holds the lock of job `record`, whose holder is `owner` (`None`: no open
/// job; `Some(None)`: held by nobody).
///
/// # Errors
/// [`RuntimeError::NotFound`] for no open job, [`RuntimeError::InUse`] for a lock that is not
/// the worker's.
pub(crate) fn lock_held(record: &str, owner: Option<Option<&str>>, worker: &str) -> Result<(), RuntimeError> {
    match owner {
        None => Err(RuntimeError::NotFound(format!("no open job {record}"))),
        Some(Some(owner)) if owner == worker => Ok(()),
        Some(Some(owner)) => {
            Err(RuntimeError::InUse(format!("job {record} is locked by worker {owner}, not {worker}")))
        }
        Some(None) => {
            Err(RuntimeError::InUse(format!("job {record} is not locked by worker {worker}; fetch it first")))
        }
    }
}

/// A single-threaded runtime on a thread of its own, kept until `stopped` turns true.
fn dedicated_runtime(name: &str, mut stopped: watch::Receiver<bool>) -> Result<tokio::runtime::Handle, RuntimeError> {
    let failed = |e: std::io::Error| RuntimeError::Start(format!("{name}: {e}"));
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

/// Statuses an instance never leaves.
const ENDED: [InstanceStatus; 3] = [InstanceStatus::Completed, InstanceStatus::Failed, InstanceStatus::Canceled];

/// The stored name of an engine status.
pub fn status_name(status: InstanceStatus) -> &'static str {
    flowstone_engine::status_text(status)
}

/// The engine status a stored name stands for.
pub fn status_named(text: &str) -> Option<InstanceStatus> {
    [InstanceStatus::Running, InstanceStatus::Debug].into_iter().chain(ENDED).find(|s| status_name(*s) == text)
}

/// An instance whose stored state cannot be read back, and why.
fn corrupt(instance_id: &str, why: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Store(StoreError::Corrupt(format!("instance {instance_id}: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_read_back_from_its_stored_name() {
        for status in [InstanceStatus::Running, InstanceStatus::Debug].into_iter().chain(ENDED) {
            assert_eq!(status_named(status_name(status)), Some(status));
        }
        assert_eq!(status_named("success"), None);
    }
}
