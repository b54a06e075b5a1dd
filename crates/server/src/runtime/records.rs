//! What the committer writes for a request beside instances: models, bk-sops templates and
//! tasks, a task's start — all of one request in one commit, with the instances it starts.

use super::bk_sops::{BkStart, Tree};
use super::{Runtime, RuntimeError, new_id, now_ms};
use flowstone_model::{Definition, NodeId, parse_pipeline};
use flowstone_store::{
    BkTaskEdit, BkTaskRow, ClockedRow, ClockedRun, DeploymentWrite, ModelRow, NewDeployment, NewModel, PeriodicChange,
    PeriodicRow, PeriodicRun, SubscriptionRow, TemplateRow, TimerMove, TimerRow,
};
use std::sync::Arc;
use tokio::sync::oneshot;

/// What one request writes, in one commit.
#[derive(Clone, Default)]
pub(super) struct Records {
    /// Models of pipeline trees, each in a deployment of its own.
    pub(super) deployments: Vec<DeploymentWrite>,
    /// Templates.
    pub(super) templates: Vec<TemplateRow>,
    /// A new task.
    pub(super) task: Option<BkTaskRow>,
    /// A start of a task (the new one, or one created before).
    pub(super) start: Option<BkStart>,
    /// A new name and constants of a task not started.
    pub(super) edit: Option<BkTaskEdit>,
    /// Timer start events' timers of models deployed (a new version's replaces the old one's).
    pub(super) timers: Vec<TimerRow>,
    /// Timer start events' timers of keys whose new version has none.
    pub(super) dropped_timers: Vec<String>,
    /// Message and signal start events' waits of models deployed.
    pub(super) starts: Vec<SubscriptionRow>,
    /// Model keys (after their tenant) whose start events' waits the new versions replace.
    pub(super) replaced_starts: Vec<String>,
    /// A firing of a timer start event's timer: the instance it starts.
    pub(super) fired: Option<StartFired>,
    /// A periodic or clocked task made, changed, or come due (the task it makes is `task`,
    /// started by `start`).
    pub(super) planned: Option<Planned>,
}

/// What a request writes of a bk-sops periodic or clocked task.
#[derive(Clone)]
pub(super) enum Planned {
    /// A new periodic task.
    Periodic(PeriodicRow),
    /// A change of a periodic task (its timer set or dropped beside it).
    PeriodicChange(PeriodicChange),
    /// A new clocked task (its timer set beside it).
    Clocked(ClockedRow),
    /// A periodic or clocked task came due: its timer moves on from the due time it fired for
    /// (refused when a commit here or on another server moved it first), and what it made is
    /// written.
    Fired {
        /// How the timer moves on.
        moved: TimerMove,
        /// What it made.
        ran: PlanRan,
    },
}

/// What a periodic or clocked task's firing made.
#[derive(Clone)]
pub(super) enum PlanRan {
    /// A periodic task made a task.
    Periodic(PeriodicRun),
    /// A clocked task made its task, or failed to.
    Clocked(ClockedRun),
    /// A periodic task could not make its task (its model is gone, its constants are past the
    /// bounds): the timer moves on all the same, as bk-sops' beat goes on.
    Missed,
}

/// A timer start event's timer fired: an instance starts at the event, and the timer moves on
/// from the due time it fired for, in one commit.
#[derive(Clone)]
pub(super) struct StartFired {
    /// How the timer moves on.
    pub(super) moved: TimerMove,
    /// The model to start.
    pub(super) model: Arc<ModelRow>,
    /// Its definition.
    pub(super) def: Arc<Definition>,
    /// Its timer start event.
    pub(super) node: NodeId,
}

/// A request with where its answer goes.
pub(super) struct RecordsRequest {
    pub(super) write: Records,
    pub(super) reply: oneshot::Sender<Result<(), RuntimeError>>,
}

/// A checked model of a tree: its deployment, its row (version 0 until committed: the commit
/// numbers it) and its definition.
pub(super) fn model_of(t: &Tree<'_>) -> Result<(DeploymentWrite, Arc<ModelRow>, Arc<Definition>), RuntimeError> {
    let def = parse_pipeline(t.tree, t.key, Some(t.name), &|_| None)?;
    let now = now_ms();
    let deployment = NewDeployment {
        id: new_id(),
        name: Some(t.name.to_owned()),
        category: Some("bk-sops".into()),
        tenant_id: None,
    };
    let model = NewModel {
        id: new_id(),
        key: t.key.to_owned(),
        name: Some(t.name.to_owned()),
        source: t.tree.to_string(),
        resource: format!("{}.json", t.key),
    };
    let row = ModelRow {
        id: model.id.clone(),
        deployment_id: deployment.id.clone(),
        key: model.key.clone(),
        name: model.name.clone(),
        version: 0,
        source: model.source.clone(),
        created_at: now,
        resource: model.resource.clone(),
        tenant_id: None,
    };
    Ok((DeploymentWrite { deployment, models: vec![model], at: now }, Arc::new(row), Arc::new(def)))
}

/// The model of `tree`, when one is given, added to `write` in a deployment of its own: its id
/// and definition, to keep at hand once committed ([`Runtime::keep_model`]).
pub(super) fn add_model(
    tree: Option<&Tree<'_>>,
    write: &mut Records,
) -> Result<Option<(String, Arc<Definition>)>, RuntimeError> {
    let Some(tree) = tree else { return Ok(None) };
    let (deployment, row, def) = model_of(tree)?;
    write.deployments.push(deployment);
    Ok(Some((row.id.clone(), def)))
}

/// The timer of a bk-sops plan (`periodic:<id>`, `clocked:<id>`): of no instance and no model.
pub(super) fn plan_timer(record_id: String, due: i64) -> TimerRow {
    TimerRow {
        record_id,
        instance_id: String::new(),
        element: String::new(),
        due,
        owner: None,
        locked_until: None,
        model_id: None,
        fired: 0,
    }
}

impl Runtime {
    /// Keeps a model [`add_model`] added at hand, once its commit is done.
    pub(super) async fn keep_model(&self, added: Option<(String, Arc<Definition>)>) -> Result<(), RuntimeError> {
        if let Some((id, def)) = added {
            self.committed_model(&id, def).await?;
        }
        Ok(())
    }

    /// Sends a request to the committer; answers once it is committed.
    pub(super) async fn write_records(&self, write: Records) -> Result<(), RuntimeError> {
        self.ask(|reply| super::committer::Request::Records(Box::new(RecordsRequest { write, reply }))).await
    }

    /// A model a commit stored, as stored (numbered), kept at hand with its definition.
    pub(super) async fn committed_model(&self, id: &str, def: Arc<Definition>) -> Result<ModelRow, RuntimeError> {
        let row = self
            .store
            .model(id)
            .await?
            .ok_or_else(|| RuntimeError::NotCommitted(format!("model {id} is missing after its commit")))?;
        self.deployed(&row, def);
        Ok(row)
    }
}
