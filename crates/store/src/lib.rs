//! Persistence behind one trait: what the runtime writes and what the APIs read.
//!
//! The runtime applies engine commands in memory and hands the store one [`WriteBatch`] per
//! group of commands, committed in one transaction, so throughput is not one fsync per step
//! and an answer is sent only once its writes are durable. Implementations hold no execution
//! rules; `tests/contract.rs` is the suite every implementation must pass.

mod activities;
mod bk_plans;
mod bk_sops;
mod identity;
mod postgres;
mod repository;
mod retention;
mod rows;
mod sql;
mod sqlite;
mod stuck;
mod subscriptions;
mod timers;
mod user_tasks;
mod user_tasks_sql;
mod variable_filter;

pub use activities::{ActivityOrder, ActivityQuery, ActivityRow, ExecutionQuery, ExecutionRow};
pub use bk_plans::{BkPlanStore, ClockedQuery, ClockedRow, ClockedRun, PeriodicChange, PeriodicRow, PeriodicRun};
pub use bk_sops::{
    BkIds, BkSopsStore, BkTaskEdit, BkTaskGroup, BkTaskQuery, BkTaskRow, BkTaskStart, TemplateRow, TimeSpan,
};
pub use identity::{AppRow, GroupRow, IdentityColumn, IdentityQuery, IdentityStore, TokenRow, UserRow};
pub use postgres::PgStore;
pub use repository::{DeploymentOrder, DeploymentQuery, ModelOrder, ModelQuery, TenantFilter, TextFilter};
pub use retention::{PruneFamily, PruneQuery, RetentionStore};
pub use rows::{
    Acquire, DeploymentRow, DeploymentWrite, InstanceFilter, InstanceOrder, InstanceRow, JobFilter, JobLease, JobRow,
    LeaseChange, LeaseUpdate, ModelRow, NewDeployment, NewModel, Outcome, Page, PassageRow, TaskRow, WaitingFor,
    WriteBatch,
};
pub use sqlite::SqliteStore;
pub use stuck::{Stuck, StuckStore};
pub use subscriptions::{
    BufferedMessage, EventQuery, OutboxRow, SubscriptionQuery, SubscriptionRow, SubscriptionStore,
};
pub use timers::{TimerJobRow, TimerLease, TimerMove, TimerOrder, TimerQuery, TimerRow, TimerStore};
pub use user_tasks::{
    AttachmentRow, ChangedUserTask, ClosedUserTask, CommentRow, NewUserTask, TaskLink, TaskOrder, TaskPartWrite,
    TaskVariable, UserTaskQuery, UserTaskRow, UserTaskStore,
};
pub use variable_filter::{VariableFilter, VariableOp, VariableScope};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused the statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Schema migration failed at start.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored JSON value could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Some of these instances were changed by another writer since they were read; nothing
    /// of the batch was written.
    #[error("instances changed concurrently: {0:?}")]
    Conflict(Vec<String>),
    /// The failure of one read made for several requests at once, told to each of them.
    #[error("database error: {0}")]
    Shared(String),
}

/// A `LIKE` pattern as both databases read it after [`LIKE_ESCAPE`]: `%` and `_` match
/// anything, `\` makes the next character literal, as in Flowable; a lone `\` at the end
/// (which PostgreSQL refuses) stands for itself.
pub(crate) fn like_pattern(pattern: &str) -> String {
    let trailing = pattern.bytes().rev().take_while(|b| *b == b'\\').count();
    if trailing % 2 == 1 { format!("{pattern}\\") } else { pattern.to_owned() }
}

/// A `LIKE` pattern that matches text containing `text` literally (bk-sops' keyword filters).
pub(crate) fn contains_pattern(text: &str) -> String {
    format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

/// Follows every bound [`like_pattern`], so that SQLite escapes as PostgreSQL does.
pub(crate) const LIKE_ESCAPE: &str = " ESCAPE '\\'";

impl StoreError {
    /// Whether the database refused a value the request carried (a byte sequence it cannot
    /// store, a value too long) rather than failing by itself: retried alone, the other
    /// requests of its group commit.
    pub fn refused_data(&self) -> bool {
        match self {
            // SQLSTATE class 22: data exception (PostgreSQL); SQLITE_TOOBIG (18).
            StoreError::Database(sqlx::Error::Database(db)) => {
                db.code().is_some_and(|code| code.starts_with("22") || code == "18")
            }
            StoreError::Database(sqlx::Error::Encode(_)) | StoreError::Corrupt(_) => true,
            _ => false,
        }
    }
}

/// Result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Durable state of models, instances, task records and jobs, and (through its supertraits)
/// of user tasks and identities.
#[async_trait::async_trait]
pub trait Store:
    UserTaskStore
    + IdentityStore
    + BkSopsStore
    + BkPlanStore
    + TimerStore
    + SubscriptionStore
    + RetentionStore
    + StuckStore
    + Send
    + Sync
    + 'static
{
    /// A deployment by id.
    async fn deployment(&self, id: &str) -> Result<Option<DeploymentRow>>;
    /// A page of the deployments `query` asks for, with the count of all it asks for.
    async fn query_deployments(&self, query: &DeploymentQuery, page: Page) -> Result<(Vec<DeploymentRow>, u64)>;
    /// Removes a deployment and its models, with the ended instances of those models and
    /// everything recorded about them when `cascade`. Answers how many instances of its
    /// models exist (running ones, or any without `cascade`); when there are some, nothing
    /// was removed.
    async fn delete_deployment(&self, id: &str, cascade: bool) -> Result<u64>;
    /// A model by id.
    async fn model(&self, id: &str) -> Result<Option<ModelRow>>;
    /// The models of a deployment.
    async fn models_of_deployment(&self, deployment_id: &str) -> Result<Vec<ModelRow>>;
    /// The latest version of a key.
    async fn latest_model(&self, key: &str) -> Result<Option<ModelRow>>;
    /// A page of the models `query` asks for, with the count of all it asks for.
    async fn query_models(&self, query: &ModelQuery, page: Page) -> Result<(Vec<ModelRow>, u64)>;
    /// Models, newest first, with the total count.
    async fn list_models(&self, key: Option<&str>, tenant: Option<&str>, page: Page) -> Result<(Vec<ModelRow>, u64)>;

    /// Commits a group of instance, task and job writes in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] naming instances among which a stored version moved on.
    async fn commit(&self, batch: &WriteBatch) -> Result<()>;

    /// The stored versions of these instances (missing ones are left out).
    async fn instance_versions(&self, ids: &[&str]) -> Result<Vec<(String, i64)>>;

    /// Whether other servers may write the same database, so that cached state must be
    /// checked against it.
    fn shared(&self) -> bool;

    /// Whether two commits of batches that share no instance may run at once (see
    /// [`WriteBatch::own_instances_only`]): a database that takes concurrent writers then
    /// works on one while the other waits for its round trips. Where writers take turns
    /// anyway, one commit at a time gathers larger groups.
    fn commits_side_by_side(&self) -> bool {
        false
    }

    /// Whether the database answers a query now: what a readiness probe asks.
    async fn ping(&self) -> Result<()>;

    /// An instance by its id.
    async fn instance(&self, id: &str) -> Result<Option<InstanceRow>>;
    /// Many instances by their ids, in a few statements; ids not found are left out. What
    /// the runtime reads for many requests asking for one instance each at once.
    async fn instances(&self, ids: &[&str]) -> Result<Vec<InstanceRow>>;
    /// The engine state of an instance as stored: its core document and its parts.
    async fn instance_state(&self, id: &str) -> Result<Option<flowstone_engine::Stored>>;
    /// Many instances with their engine states, read in a few statements where
    /// [`Store::instance`] and [`Store::instance_state`] take two per instance: what the
    /// committer reads for a group of requests to instances it does not hold. Each state is
    /// read in one statement, as [`Store::instance_state`] reads it; ids not found are left out.
    async fn instances_with_state(&self, ids: &[String]) -> Result<Vec<(InstanceRow, flowstone_engine::Stored)>>;
    /// Instances, newest first, with the total count.
    async fn list_instances(&self, filter: &InstanceFilter, page: Page) -> Result<(Vec<InstanceRow>, u64)>;
    /// One page of [`Store::list_instances`], not counted: a count over millions of rows costs
    /// a scan a page does not.
    async fn instances_page(&self, filter: &InstanceFilter, page: Page) -> Result<Vec<InstanceRow>>;
    /// How many instances `filter` leaves, counting no further than `cap`: an answer of `cap`
    /// means at least that many, read in time bounded by `cap` whatever the table holds.
    async fn count_instances(&self, filter: &InstanceFilter, cap: u64) -> Result<u64>;

    /// Where these instances stand with their rollback, cancel and delete instances counted
    /// (missing ones are left out).
    async fn outcomes(&self, ids: &[&str]) -> Result<Vec<(String, Outcome)>>;

    /// The task records of an instance, oldest first.
    async fn tasks_of_instance(&self, instance_id: &str) -> Result<Vec<TaskRow>> {
        self.tasks_of_instances(&[instance_id], false).await
    }

    /// The task records of these instances, each instance's oldest first, for many instances
    /// in a few statements: what the runtime reads for many requests asking for one
    /// instance's each at once. With `open`, only those still open: what they wait for, read
    /// without the records they closed (a client polling a long process reads only these).
    async fn tasks_of_instances(&self, instance_ids: &[&str], open: bool) -> Result<Vec<TaskRow>>;
    /// A task record by its id (the current attempt's id is its activity-instance id).
    async fn task(&self, id: &str) -> Result<Option<TaskRow>>;
    /// Task records by their ids, in a few statements; ids not found are left out. What the
    /// runtime reads for many requests asking for one record each at once.
    async fn tasks(&self, ids: &[&str]) -> Result<Vec<TaskRow>>;
    /// The activity history (task records and passes through events and gateways) with the
    /// total count.
    async fn list_activities(&self, query: &ActivityQuery, page: Page) -> Result<(Vec<ActivityRow>, u64)>;
    /// The executions of running process instances with the total count.
    async fn list_executions(&self, query: &ExecutionQuery, page: Page) -> Result<(Vec<ExecutionRow>, u64)>;

    /// Takes a lease on free jobs (never leased, or whose lease ended), oldest first; on a
    /// shared database concurrent callers never get the same job.
    async fn acquire_jobs(&self, acquire: Acquire<'_>) -> Result<Vec<JobRow>>;

    /// Extends the leases `owner` holds on these jobs; returns how many it extended. With
    /// `skip_busy`, a job whose row a commit holds at that moment is passed over instead of
    /// waited for: a statement that locks many jobs' rows while a commit locks some of them in
    /// another order would deadlock with it, and a heartbeat's next round extends what it
    /// passed over long before the lease ends.
    async fn extend_jobs(&self, owner: &str, record_ids: &[&str], until: i64, skip_busy: bool) -> Result<u64>;

    /// A queued job by its task record id.
    async fn job(&self, record_id: &str) -> Result<Option<JobRow>>;

    /// Queued jobs, oldest first, with the total count.
    async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<(Vec<JobRow>, u64)>;

    /// Who holds the queued jobs among these task record ids: what a worker's report is
    /// checked against, without the jobs' params.
    async fn leases(&self, record_ids: &[&str]) -> Result<Vec<JobLease>>;

    /// Hands a job `owner` holds back to the queue, to be taken again from `available_at`
    /// (with `retries` left, when given); false when `owner` does not hold it.
    async fn retry_job(&self, record_id: &str, owner: &str, retries: Option<i64>, available_at: i64) -> Result<bool>;

    /// Hands back every job `owner` holds (a clean stop), telling servers that listen.
    async fn release_jobs(&self, owner: &str) -> Result<u64>;

    /// The jobs no one holds at `now`, per stone and action: how many, and when the oldest
    /// was queued.
    async fn waiting_jobs(&self, now: i64) -> Result<Vec<(String, String, i64, i64)>>;

    /// The jobs held at `now`, per holder (a server or a worker) and stone: how many, and
    /// when the latest of their leases ends.
    async fn held_jobs(&self, now: i64) -> Result<Vec<(String, String, i64, i64)>>;

    /// Wakes up when another server hands jobs back; `None` where no other server can.
    async fn job_signal(&self) -> Result<Option<std::sync::Arc<tokio::sync::Notify>>>;
}

/// The JSON text of a value for a text column, serialised straight into a string (`Display`
/// goes through the formatting machinery token by token, which showed on the commit path).
pub fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Values and maps of JSON values always serialise.
    serde_json::to_string(value).unwrap_or_default()
}
