//! What the store reads and writes.

use flowstone_engine::{Job, TaskRecord};

/// A model to deploy.
#[derive(Debug, Clone)]
pub struct NewModel {
    /// Its id.
    pub id: String,
    /// The process key.
    pub key: String,
    /// The process name.
    pub name: Option<String>,
    /// The source document.
    pub source: String,
    /// The name of the file it came in.
    pub resource: String,
}

/// A new deployment's own fields.
#[derive(Debug, Clone, Default)]
pub struct NewDeployment {
    /// Its id.
    pub id: String,
    /// A name for people.
    pub name: Option<String>,
    /// A category.
    pub category: Option<String>,
    /// The tenant it belongs to.
    pub tenant_id: Option<String>,
}

/// A deployment a commit writes, with its models (each the next version of its key).
#[derive(Debug, Clone, Default)]
pub struct DeploymentWrite {
    /// The deployment.
    pub deployment: NewDeployment,
    /// Its models.
    pub models: Vec<NewModel>,
    /// When it is deployed.
    pub at: i64,
}

/// A stored deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRow {
    /// Its id.
    pub id: String,
    /// A name for people.
    pub name: Option<String>,
    /// A category.
    pub category: Option<String>,
    /// The tenant it belongs to.
    pub tenant_id: Option<String>,
    /// When it was deployed (ms since the epoch).
    pub deployed_at: i64,
}

/// A stored model version.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    /// Its id.
    pub id: String,
    /// The deployment it came with.
    pub deployment_id: String,
    /// The process key.
    pub key: String,
    /// The process name.
    pub name: Option<String>,
    /// 1 for the first deployment of a key, then counting up.
    pub version: i64,
    /// The source document.
    pub source: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// The name of the file it came in.
    pub resource: String,
    /// The tenant of its deployment.
    pub tenant_id: Option<String>,
}

/// A stored process instance, without its engine state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstanceRow {
    /// The instance id (UUIDv7: ordered by start time).
    pub id: String,
    /// The model it runs.
    pub model_id: String,
    /// That model's key.
    pub model_key: String,
    /// The name it was started with.
    pub name: String,
    /// The engine status (`running`, `completed`, `failed`, `canceled`).
    pub status: String,
    /// The start variables as JSON text.
    pub variables: String,
    /// Milliseconds since the epoch.
    pub start_time: i64,
    /// When it ended.
    pub end_time: Option<i64>,
    /// The output template's values as JSON text.
    pub outputs: Option<String>,
    /// The final process variables as JSON text.
    pub final_vars: Option<String>,
    /// Why it failed.
    pub failure: Option<String>,
    /// The element it ended at: the end event that completed it, or the element that failed it.
    pub end_element: Option<String>,
    /// The business key it was started with.
    pub business_key: Option<String>,
    /// Who started it.
    pub start_user: Option<String>,
    /// Bumped by every write: a write must name the version after the one it read.
    pub version: i64,
    /// `process`, or `rollback`, `cancel`, `delete` for the instances that undo a process's stone work.
    pub kind: String,
    /// For a rollback, cancel or delete instance: the process it works for.
    pub parent_id: Option<String>,
    /// The rollback instance started when it failed.
    pub rollback_id: Option<String>,
    /// The cancel instance started when it was canceled.
    pub cancel_id: Option<String>,
    /// The delete instance started for it.
    pub delete_id: Option<String>,
}

/// Filters of the instance list.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    /// Only this instance.
    pub id: Option<String>,
    /// Only this engine status.
    pub status: Option<String>,
    /// Only instances of this model key.
    pub model_key: Option<String>,
    /// Only instances of this model version.
    pub model_id: Option<String>,
    /// Only instances with this business key.
    pub business_key: Option<String>,
    /// Only instances of this kind (`process`, `rollback`, …).
    pub kind: Option<String>,
    /// Only ended instances (true) or running ones (false).
    pub ended: Option<bool>,
    /// Only instances this user started.
    pub start_user: Option<String>,
    /// Only instances working for this one: the processes it called, its rollback, cancel
    /// and delete instances.
    pub parent_id: Option<String>,
    /// Only instances of models deployed for this tenant.
    pub tenant_id: Option<String>,
    /// Only instances whose rollback, cancel or delete instance stands so.
    pub outcome: Option<Outcome>,
    /// Only instances started at or after this time (milliseconds since the epoch). Instance
    /// ids must then be UUIDv7 made within an hour of the start, as the runtime makes them:
    /// the list walks the ids of that time only.
    pub started_from: Option<i64>,
    /// Only instances started before this time (milliseconds since the epoch); ids as for
    /// `started_from`.
    pub started_before: Option<i64>,
    /// Only instances waiting for this.
    pub waiting_for: Option<WaitingFor>,
    /// What the list is sorted by (ties by id).
    pub order: InstanceOrder,
    /// Ascending (oldest first, by id) instead of descending.
    pub ascending: bool,
}

/// How far an instance's start time may lie from the time in its UUIDv7 id (made just
/// before, as its start was queued): far more than any queue holds a start.
pub(crate) const ID_SKEW_MS: i64 = 3_600_000;

/// The lowest hyphenated UUIDv7 text of the millisecond `ms`: every id made at or after `ms`
/// sorts at or after it, every id made before sorts before.
pub(crate) fn id_at(ms: i64) -> String {
    let ms = ms.clamp(0, (1 << 48) - 1);
    format!("{:08x}-{:04x}-0000-0000-000000000000", ms >> 16, ms & 0xffff)
}

/// What an instance may be waiting for, as an operator looks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingFor {
    /// A stone job no worker has finished: queued, or taken and at work.
    Worker,
    /// A timer not yet fired.
    Timer,
    /// An open user task.
    Person,
}

impl WaitingFor {
    /// Every kind, in the order a form lists them.
    pub const ALL: [WaitingFor; 3] = [WaitingFor::Worker, WaitingFor::Timer, WaitingFor::Person];

    /// Its name in URLs and forms.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            WaitingFor::Worker => "worker",
            WaitingFor::Timer => "timer",
            WaitingFor::Person => "person",
        }
    }

    /// The kind of this name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.name() == name)
    }

    /// The instances waiting so, as SQL selecting their ids: each a set built once per query
    /// (open jobs, timers and tasks are few beside the instances a page walks).
    pub(crate) fn instances(self) -> &'static str {
        match self {
            WaitingFor::Worker => "SELECT j.instance_id FROM jobs j",
            WaitingFor::Timer => "SELECT t.instance_id FROM timers t",
            WaitingFor::Person => {
                "SELECT u.instance_id FROM user_tasks u WHERE u.end_time IS NULL AND u.instance_id IS NOT NULL"
            }
        }
    }
}

/// What an instance list is sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InstanceOrder {
    /// By id: by start, as ids are time-ordered.
    #[default]
    Id,
    /// By model version.
    ModelId,
    /// By model key.
    ModelKey,
    /// By business key.
    BusinessKey,
    /// By start time.
    StartTime,
    /// By end time (running ones last).
    EndTime,
    /// By how long it ran (running ones last).
    Duration,
    /// By the tenant its model was deployed for.
    TenantId,
}

impl InstanceOrder {
    /// The SQL it sorts on, of the instance `p`.
    pub(crate) fn column(self) -> &'static str {
        match self {
            InstanceOrder::Id => "p.id",
            InstanceOrder::ModelId => "p.model_id",
            InstanceOrder::ModelKey => "p.model_key",
            InstanceOrder::BusinessKey => "p.business_key",
            InstanceOrder::StartTime => "p.start_time",
            InstanceOrder::EndTime => "p.end_time",
            InstanceOrder::Duration => "(p.end_time - p.start_time)",
            InstanceOrder::TenantId => {
                "(SELECT d.tenant_id FROM models m JOIN deployments d ON d.id = m.deployment_id WHERE m.id = p.model_id)"
            }
        }
    }
}

/// Where an instance stands once its rollback, cancel and delete instances are counted: the
/// delete's state shows over the cancel's and the rollback's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// None of them is running or has completed (there are none, or they failed).
    Own,
    /// Its rollback runs.
    RollingBack,
    /// Its rollback completed.
    RolledBack,
    /// Its cancel runs.
    Canceling,
    /// Its delete runs.
    Deleting,
    /// Its delete completed.
    Deleted,
}

impl Outcome {
    /// The outcome of this name.
    pub fn parse(name: &str) -> Option<Outcome> {
        [
            Outcome::Own,
            Outcome::RollingBack,
            Outcome::RolledBack,
            Outcome::Canceling,
            Outcome::Deleting,
            Outcome::Deleted,
        ]
        .into_iter()
        .find(|o| o.name() == name)
    }

    /// Its name in the store's outcome expression.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Own => "own",
            Outcome::RollingBack => "rollingBack",
            Outcome::RolledBack => "rolledBack",
            Outcome::Canceling => "canceling",
            Outcome::Deleting => "deleting",
            Outcome::Deleted => "deleted",
        }
    }
}

/// Offset paging.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return at most.
    pub limit: u64,
}

impl Page {
    /// Its limit and offset as SQL takes them: a request's page far past any table is the
    /// largest SQL reads, never a negative one the database refuses.
    pub(crate) fn sql(self) -> (i64, i64) {
        let at_most = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        (at_most(self.limit), at_most(self.offset))
    }
}

/// A stored task record.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// The instance it belongs to.
    pub instance_id: String,
    /// The record.
    pub record: TaskRecord,
}

/// A pass through an event or a gateway, with its instance.
#[derive(Debug, Clone, PartialEq)]
pub struct PassageRow {
    /// The instance whose token passed.
    pub instance_id: String,
    /// The pass.
    pub passage: flowstone_engine::Passage,
}

/// A queued job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    /// The instance it belongs to.
    pub instance_id: String,
    /// The job.
    pub job: Job,
    /// When it was queued.
    pub created_at: i64,
    /// The server that runs it, while its lease holds.
    pub owner: Option<String>,
    /// When the lease ends (milliseconds since the epoch); for a job waiting to be retried,
    /// when it may be taken again.
    pub locked_until: Option<i64>,
    /// How many more times a failing worker may retry it, once one has said.
    pub retries: Option<i64>,
}

/// Filters of the job list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only this job.
    pub record_id: Option<String>,
    /// Only jobs of this instance.
    pub instance_id: Option<String>,
    /// Only jobs of this stone.
    pub stone: Option<String>,
    /// Only jobs this owner holds.
    pub owner: Option<String>,
    /// Only jobs held (`true`) or free (`false`) at `now`.
    pub locked: Option<bool>,
    /// Now, in milliseconds since the epoch, for `locked`.
    pub now: i64,
}

/// Who holds a queued job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobLease {
    /// The job's task record.
    pub record_id: String,
    /// The instance it belongs to.
    pub instance_id: String,
    /// What it asks of its stone.
    pub action: flowstone_engine::Action,
    /// Who holds it, if anyone.
    pub owner: Option<String>,
    /// Retries left, once a worker has said.
    pub retries: Option<i64>,
}

/// Which jobs to take over, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Acquire<'a> {
    /// Only jobs of these stones.
    pub stones: &'a [&'a str],
    /// The server taking them.
    pub owner: &'a str,
    /// Now, in milliseconds since the epoch: leases that end by now are free (a job released
    /// for a retry at once is free in the same millisecond).
    pub now: i64,
    /// The new lease's end.
    pub until: i64,
    /// Also jobs this owner held before (after its restart).
    pub include_own: bool,
    /// At most this many.
    pub limit: u64,
    /// Only jobs asking for this action (`start`, `rollback`, …); any when none.
    pub action: Option<&'a str>,
}

/// Everything a group of commands changed, committed together.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    /// Instances to insert or update, each with what changed in its engine state. A row's
    /// `version` must be one more than the stored one (1 for a new instance), else the commit
    /// fails with [`StoreError::Conflict`](crate::StoreError::Conflict) and writes nothing.
    pub instances: Vec<(InstanceRow, flowstone_engine::Stored)>,
    /// Task records to insert or replace.
    pub tasks: Vec<TaskRow>,
    /// Ids the batch made for its new task records: those records and their jobs are
    /// inserted, where the others are written over what the store holds. PostgreSQL inserts
    /// a row under `ON CONFLICT` speculatively (the unique index checked before, the row
    /// confirmed after), a third more work per row for rows that cannot be there yet. An id
    /// missing here only costs that work; one here whose record is stored fails the commit.
    pub new_records: std::collections::HashSet<String, foldhash::fast::RandomState>,
    /// Passes through events and gateways to insert.
    pub passages: Vec<PassageRow>,
    /// Jobs to queue.
    pub jobs: Vec<JobRow>,
    /// Jobs to remove, by task record id.
    pub dropped_jobs: Vec<String>,
    /// Timers set or moved to their next due time (the runtime leaves out those dropped
    /// later in the same batch).
    pub timers: Vec<crate::TimerRow>,
    /// Timers to remove, by task record id.
    pub dropped_timers: Vec<String>,
    /// Timer start events' timers that fired; one another server moved first fails the
    /// commit with [`StoreError::Conflict`](crate::StoreError::Conflict).
    pub moved_timers: Vec<crate::TimerMove>,
    /// Waits begun (the runtime leaves out those ended later in the same batch), and start
    /// events' written by a deployment.
    pub subscriptions: Vec<crate::SubscriptionRow>,
    /// Waits ended, by record id.
    pub dropped_subscriptions: Vec<String>,
    /// Messages and signals thrown, to send once committed.
    pub outbox: Vec<crate::OutboxRow>,
    /// Model keys (after their tenant and `:`) whose start events' waits go, before this
    /// batch's are written: a new version of the key was deployed.
    pub replaced_starts: Vec<String>,
    /// Jobs whose start is done, by task record id: they keep their lock, and whoever takes
    /// them next monitors with these outputs.
    pub monitoring_jobs: Vec<(String, serde_json::Map<String, serde_json::Value>)>,
    /// User tasks the engine created.
    pub user_tasks: Vec<crate::NewUserTask>,
    /// User tasks the engine closed.
    pub closed_user_tasks: Vec<crate::ClosedUserTask>,
    /// User tasks people changed (claimed, delegated, updated, commented, deleted, …), in
    /// order; see [`ChangedUserTask`](crate::ChangedUserTask).
    pub changed_user_tasks: Vec<crate::ChangedUserTask>,
    /// Deployments to insert, before the instances (a bk-sops template's or task's own model).
    pub deployments: Vec<DeploymentWrite>,
    /// bk-sops templates to insert.
    pub bk_templates: Vec<crate::TemplateRow>,
    /// bk-sops tasks to insert (one started in the same commit names its instance).
    pub bk_tasks: Vec<crate::BkTaskRow>,
    /// bk-sops tasks started.
    pub started_bk_tasks: Vec<crate::BkTaskStart>,
    /// bk-sops tasks renamed or given other constants before they start.
    pub edited_bk_tasks: Vec<crate::BkTaskEdit>,
    /// bk-sops periodic tasks to insert.
    pub periodic_tasks: Vec<crate::PeriodicRow>,
    /// Changes of periodic tasks, in order.
    pub periodic_changes: Vec<crate::PeriodicChange>,
    /// Tasks periodic tasks made.
    pub periodic_runs: Vec<crate::PeriodicRun>,
    /// bk-sops clocked tasks to insert.
    pub clocked_tasks: Vec<crate::ClockedRow>,
    /// Clocked tasks that came due.
    pub clocked_runs: Vec<crate::ClockedRun>,
    /// Jobs a worker reported on, by task record id and worker: each must still be locked by
    /// that worker when the commit writes, else it fails with
    /// [`StoreError::Conflict`](crate::StoreError::Conflict) (the lock passed to another
    /// worker after the report was checked).
    pub held_jobs: Vec<(String, String)>,
    /// Changes of the locks workers hold; a lock that is no longer the worker's fails the
    /// commit with [`StoreError::Conflict`](crate::StoreError::Conflict).
    pub lease_changes: Vec<LeaseChange>,
    /// Ended instances to delete with everything they own, each at the version read (see
    /// [`RetentionStore`](crate::RetentionStore)); one changed since, or running, fails the
    /// commit with [`StoreError::Conflict`](crate::StoreError::Conflict).
    pub pruned: Vec<(String, i64)>,
}

/// A change a worker makes to the lock it holds on a job.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseChange {
    /// The job's task record.
    pub record_id: String,
    /// The worker holding it.
    pub owner: String,
    /// What changes.
    pub update: LeaseUpdate,
}

/// How a worker's lock changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LeaseUpdate {
    /// It lasts until then.
    Extend {
        /// Milliseconds since the epoch.
        until: i64,
    },
    /// The worker gives the job back: handed out again from `available_at`, with `retries`
    /// left when given.
    Free {
        /// Retries left, when the worker says.
        retries: Option<i64>,
        /// When it may be handed out again.
        available_at: i64,
    },
}

impl WriteBatch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
            && self.tasks.is_empty()
            && self.passages.is_empty()
            && self.jobs.is_empty()
            && self.dropped_jobs.is_empty()
            && self.timers.is_empty()
            && self.dropped_timers.is_empty()
            && self.moved_timers.is_empty()
            && self.subscriptions.is_empty()
            && self.dropped_subscriptions.is_empty()
            && self.outbox.is_empty()
            && self.replaced_starts.is_empty()
            && self.monitoring_jobs.is_empty()
            && self.user_tasks.is_empty()
            && self.closed_user_tasks.is_empty()
            && self.changed_user_tasks.is_empty()
            && self.deployments.is_empty()
            && self.bk_templates.is_empty()
            && self.bk_tasks.is_empty()
            && self.started_bk_tasks.is_empty()
            && self.edited_bk_tasks.is_empty()
            && self.periodic_tasks.is_empty()
            && self.periodic_changes.is_empty()
            && self.periodic_runs.is_empty()
            && self.clocked_tasks.is_empty()
            && self.clocked_runs.is_empty()
            && self.held_jobs.is_empty()
            && self.lease_changes.is_empty()
            && self.pruned.is_empty()
    }

    /// Whether everything the batch writes belongs to the instances it writes: their rows,
    /// records, passages, jobs, timers and waits. Such a batch may commit beside another that
    /// shares no instance with it, since neither reads nor writes a row of the other. Start
    /// events' waits, thrown messages, user tasks, deployments, bk-sops tasks, workers' locks
    /// and pruning all reach past one instance, so a batch holding any of them commits alone.
    pub fn own_instances_only(&self) -> bool {
        // Every field is named, so that a new one is sorted into one side or the other.
        let WriteBatch {
            instances: _,
            tasks: _,
            new_records: _,
            passages: _,
            jobs: _,
            dropped_jobs: _,
            timers: _,
            dropped_timers: _,
            moved_timers,
            subscriptions,
            dropped_subscriptions: _,
            outbox,
            replaced_starts,
            monitoring_jobs: _,
            user_tasks,
            closed_user_tasks,
            changed_user_tasks,
            deployments,
            bk_templates,
            bk_tasks,
            started_bk_tasks,
            edited_bk_tasks,
            periodic_tasks,
            periodic_changes,
            periodic_runs,
            clocked_tasks,
            clocked_runs,
            held_jobs,
            lease_changes,
            pruned,
        } = self;
        subscriptions.iter().all(|s| !s.instance_id.is_empty())
            && moved_timers.is_empty()
            && outbox.is_empty()
            && replaced_starts.is_empty()
            && user_tasks.is_empty()
            && closed_user_tasks.is_empty()
            && changed_user_tasks.is_empty()
            && deployments.is_empty()
            && bk_templates.is_empty()
            && bk_tasks.is_empty()
            && started_bk_tasks.is_empty()
            && edited_bk_tasks.is_empty()
            && periodic_tasks.is_empty()
            && periodic_changes.is_empty()
            && periodic_runs.is_empty()
            && clocked_tasks.is_empty()
            && clocked_runs.is_empty()
            && held_jobs.is_empty()
            && lease_changes.is_empty()
            && pruned.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::{InstanceRow, LeaseChange, LeaseUpdate, WriteBatch, id_at};
    use crate::SubscriptionRow;

    fn wait(instance_id: &str) -> SubscriptionRow {
        SubscriptionRow {
            record_id: "r1".into(),
            instance_id: instance_id.into(),
            model_id: "m".into(),
            starts: None,
            tenant_id: None,
            element: "catch".into(),
            kind: "message".into(),
            name: "paid".into(),
            correlation_key: None,
            created_at: 0,
        }
    }

    #[test]
    fn a_batch_of_instances_and_their_own_rows_stands_alone_and_one_reaching_past_them_does_not() {
        let mut own = WriteBatch::default();
        own.instances.push((InstanceRow { id: "i1".into(), ..InstanceRow::default() }, Default::default()));
        own.dropped_jobs.push("r0".into());
        own.subscriptions.push(wait("i1"));
        assert!(own.own_instances_only());

        let past: [fn(&mut WriteBatch); 5] = [
            |b| b.subscriptions.push(wait("")),
            |b| b.held_jobs.push(("r0".into(), "worker".into())),
            |b| {
                let update = LeaseUpdate::Extend { until: 1 };
                b.lease_changes.push(LeaseChange { record_id: "r0".into(), owner: "worker".into(), update });
            },
            |b| b.pruned.push(("i0".into(), 3)),
            |b| b.replaced_starts.push("key".into()),
        ];
        for (i, reach) in past.iter().enumerate() {
            let mut batch = own.clone();
            reach(&mut batch);
            assert!(!batch.own_instances_only(), "case {i}");
        }
    }

    #[test]
    fn a_time_bounds_the_uuidv7_ids_made_at_it() {
        let ms = 1_764_960_000_123_i64;
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, (ms / 1000) as u64, ((ms % 1000) * 1_000_000) as u32);
        let id = uuid::Uuid::new_v7(ts).hyphenated().to_string();
        assert!(id_at(ms).as_str() <= id.as_str() && id.as_str() < id_at(ms + 1).as_str(), "{id} within {}", id_at(ms));
        assert_eq!(id_at(-5), "00000000-0000-0000-0000-000000000000", "before the epoch: nothing earlier");
        assert_eq!(id_at(i64::MAX), "ffffffff-ffff-0000-0000-000000000000");
    }
}
