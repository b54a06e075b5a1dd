//! A task's state tree (`get_task_status`, `get_tasks_status`): bamboo-engine's states of the
//! task and of each node it ran, nested under their subprocesses, as typed values written as
//! bk-sops writes them only when the answer is serialised.

use super::{Call, instance_of, task_of, times, zoned_time};
use crate::error::ApiError;
use crate::runtime::status_named;
use flowstone_engine::{InstanceStatus, TaskStatus};
use flowstone_model::{Definition, NodeId, NodeKind};
use flowstone_store::{ActivityQuery, BkTaskRow, InstanceRow, Page};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;

/// bamboo-engine's state of a task or a node. `BLOCKED` is never shown: bamboo-engine names it
/// but no step of it sets it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum State {
    /// A task not started.
    #[default]
    Created,
    /// A node whose job waits in the queue for a stone.
    Ready,
    /// Running (a node: a stone took its job).
    Running,
    /// A task or subprocess paused.
    Suspended,
    /// Done.
    Finished,
    /// Failed (a task whose failed node waits for an operator shows this too).
    Failed,
    /// Revoked.
    Revoked,
}

/// The state of a task, or of a node and the nodes under it.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub(super) struct StateTree {
    /// The instance's id (the task's), or the node's.
    pub(super) id: String,
    pub(super) state: State,
    pub(super) name: String,
    /// Failed runs of the node run again.
    pub(super) retry: i64,
    /// How many times the node ran (a gateway may lead back to it).
    #[serde(rename = "loop")]
    pub(super) loops: i64,
    pub(super) skip: bool,
    pub(super) error_ignorable: bool,
    pub(super) version: String,
    pub(super) state_refresh_at: String,
    /// Seconds, until now while it runs.
    pub(super) elapsed_time: i64,
    /// The nodes under it, by id.
    #[schema(no_recursion)]
    pub(super) children: BTreeMap<String, StateTree>,
    pub(super) start_time: String,
    pub(super) finish_time: String,
    /// The task's failure (`{message}`), on the task's own tree only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub(super) ex_data: Option<Value>,
    /// With `with_failed_node_info`: each failed node, with its automatic retries when it
    /// has `auto_retry` (else empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) failed_node_info: Option<BTreeMap<String, FailedNode>>,
    /// With `with_auto_retry_status`: the failed nodes the engine will still retry on their own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) auto_retry_status: Option<AutoRetryStatus>,
}

/// A failed node's automatic retries (all absent for a node without `auto_retry`).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub(super) struct FailedNode {
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<String>,
    /// How many times the engine retried it on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    auto_retry_times: Option<u32>,
    /// How many times it may (its `auto_retry.times`).
    #[serde(skip_serializing_if = "Option::is_none")]
    max_auto_retry_times: Option<u32>,
}

/// Whether failed nodes wait for an automatic retry, and which.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub(super) struct AutoRetryStatus {
    exist_auto_retry_nodes: bool,
    auto_retry_nodes: Vec<String>,
}

impl StateTree {
    /// Whether this node or one under it (at any depth) holds.
    pub(super) fn any(&self, holds: &dyn Fn(&str, &StateTree) -> bool) -> bool {
        self.children.iter().any(|(id, child)| holds(id, child) || child.any(holds))
    }
}

/// bamboo-engine's state of an instance.
fn instance_state(row: Option<&InstanceRow>) -> State {
    let Some(row) = row else { return State::Created };
    match status_named(&row.status) {
        Some(InstanceStatus::Running) => State::Running,
        // A failed node waits for an operator: bk-sops shows the task failed meanwhile.
        Some(InstanceStatus::Debug | InstanceStatus::Failed) | None => State::Failed,
        Some(InstanceStatus::Completed) => State::Finished,
        Some(InstanceStatus::Canceled) => State::Revoked,
    }
}

/// bamboo-engine's state of one node run, from its record's status: `READY` while its job
/// waits in the queue for a stone, `RUNNING` once a stone took it.
pub(super) fn node_state(status: TaskStatus, ended: bool) -> State {
    if status.step_failed() || status == TaskStatus::Failed {
        State::Failed
    } else if status == TaskStatus::Canceled {
        State::Revoked
    } else if ended {
        State::Finished
    } else if status.producing() {
        State::Ready
    } else {
        State::Running
    }
}

/// `get_task_status`; `with_failed_node_info` and `with_auto_retry_status` add what bk-sops
/// adds about failed nodes and their automatic retries.
pub(super) async fn task_status(c: &Call<'_>) -> Result<Value, ApiError> {
    let task = task_of(c, c.number("task_id")?).await?;
    let mut tree = status_of(c, &task).await?;
    let with_info = c.flag("with_failed_node_info")?.unwrap_or(false);
    let with_retries = c.flag("with_auto_retry_status")?.unwrap_or(false);
    if with_info || with_retries {
        let failed = failed_nodes(c, &task, &tree).await?;
        if with_retries {
            let waiting: Vec<String> = failed
                .iter()
                .filter(|(_, f)| f.max_auto_retry_times.is_some_and(|max| f.auto_retry_times.unwrap_or(0) < max))
                .map(|(id, _)| id.clone())
                .collect();
            tree.auto_retry_status =
                Some(AutoRetryStatus { exist_auto_retry_nodes: !waiting.is_empty(), auto_retry_nodes: waiting });
        }
        tree.failed_node_info = with_info.then_some(failed);
    }
    Ok(json!(tree))
}

/// The failed nodes of a task's tree (at any depth), each with its automatic retries.
async fn failed_nodes(
    c: &Call<'_>,
    task: &BkTaskRow,
    tree: &StateTree,
) -> Result<BTreeMap<String, FailedNode>, ApiError> {
    let mut ids = Vec::new();
    let mut todo: Vec<&StateTree> = vec![tree];
    while let Some(t) = todo.pop() {
        for (id, child) in &t.children {
            if child.state == State::Failed {
                ids.push(id.clone());
            }
            todo.push(child);
        }
    }
    let Some(instance) = instance_of(c, task).await? else { return Ok(BTreeMap::new()) };
    let engine = c.rt.engine_state(&instance.id).await?;
    let def = match c.rt.model(&instance.model_id).await? {
        Some(model) => Some(c.rt.definition(&model)?),
        None => None,
    };
    Ok(ids
        .into_iter()
        .map(|id| {
            let retry =
                def.as_ref().and_then(|d| d.node_by_element(&id).and_then(|n| d.node(n).options.as_ref()?.auto_retry));
            let info = match retry {
                Some(r) => FailedNode {
                    node_id: Some(id.clone()),
                    auto_retry_times: Some(engine.as_ref().map_or(0, |e| e.automatic_retries(&id))),
                    max_auto_retry_times: Some(r.times),
                },
                None => FailedNode::default(),
            };
            (id, info)
        })
        .collect())
}

/// A task's state tree: its own state and a child per node (nested for subprocesses).
pub(super) async fn status_of(c: &Call<'_>, task: &BkTaskRow) -> Result<StateTree, ApiError> {
    let store = c.rt.store();
    let instance = instance_of(c, task).await?;
    let mut children = BTreeMap::new();
    let mut state = instance_state(instance.as_ref());
    if let Some(p) = &instance {
        let engine = c.rt.engine_state(&p.id).await?;
        if state == State::Running && engine.as_ref().is_some_and(flowstone_engine::Instance::is_paused) {
            state = State::Suspended;
        }
        let paused = engine.map(|e| e.paused_subprocesses()).unwrap_or_default();
        let query = ActivityQuery { instance_id: Some(p.id.clone()), ..ActivityQuery::default() };
        let (runs, _) = store.list_activities(&query, Page { offset: 0, limit: 10_000 }).await?;
        // Read after the runs, the records are as new as they or newer: a run's state and
        // times come from its record when it has one (passes through events have none).
        let records = store.tasks_of_instance(&p.id).await?;
        // Failed attempts that were run again keep ids of their own: they count as retries.
        let mut retries: HashMap<&str, i64> = HashMap::new();
        for r in records.iter().filter(|r| r.record.id != r.record.task_id) {
            *retries.entry(r.record.element.as_str()).or_default() += 1;
        }
        let by_id: HashMap<&str, &flowstone_engine::TaskRecord> =
            records.iter().map(|r| (r.record.id.as_str(), &r.record)).collect();
        // The latest run of each node shows; `loop` counts the node's runs.
        let mut loops: HashMap<String, i64> = HashMap::new();
        for mut a in runs {
            let record = by_id.get(a.id.as_str()).copied();
            if record.is_some_and(|r| r.id != r.task_id) {
                continue;
            }
            let loop_count = loops.entry(a.element.clone()).or_default();
            *loop_count += 1;
            let loops = *loop_count;
            if let Some(r) = record {
                (a.start_time, a.end_time) = (r.create_time, r.end_time);
            }
            let status = record.map(|r| r.status);
            children.insert(
                a.element.clone(),
                StateTree {
                    id: a.element.clone(),
                    state: node_state(status.unwrap_or(TaskStatus::Completed), a.end_time.is_some()),
                    name: a.name.clone().unwrap_or_default(),
                    retry: retries.get(a.element.as_str()).copied().unwrap_or(0),
                    loops,
                    skip: status == Some(TaskStatus::Skipped),
                    version: a.id.clone(),
                    state_refresh_at: zoned_time(Some(a.end_time.unwrap_or(a.start_time))),
                    elapsed_time: (a.end_time.unwrap_or_else(crate::runtime::now_ms) - a.start_time) / 1000,
                    start_time: zoned_time(Some(a.start_time)),
                    finish_time: zoned_time(a.end_time),
                    ..StateTree::default()
                },
            );
        }
        if let Some(model) = c.rt.model(&p.model_id).await? {
            nest_subprocesses(&*c.rt.definition(&model)?, &mut children, &paused);
        }
    }
    let (start, end, elapsed) = times(instance.as_ref());
    let failure = instance.as_ref().and_then(|p| p.failure.clone());
    Ok(StateTree {
        id: instance.as_ref().map_or_else(String::new, |p| p.id.clone()),
        state,
        name: task.name.clone(),
        loops: 1,
        state_refresh_at: zoned_time(end.or(start)),
        elapsed_time: elapsed,
        children,
        start_time: zoned_time(start),
        finish_time: zoned_time(end),
        ex_data: Some(failure.map_or(json!({}), |f| json!({"message": f}))),
        ..StateTree::default()
    })
}

/// Moves the runs of nodes inside subprocesses under an entry of their subprocess (deepest
/// first, so that nested subprocesses nest), each entry's state following its children's
/// (`SUSPENDED` while one of `paused` runs).
fn nest_subprocesses(def: &Definition, children: &mut BTreeMap<String, StateTree>, paused: &[NodeId]) {
    let depth = |mut n: NodeId| {
        let mut d = 0;
        while let Some(s) = def.node(n).scope {
            d += 1;
            n = s;
        }
        d
    };
    let deepest = children.keys().filter_map(|e| def.node_by_element(e)).map(depth).max().unwrap_or(0);
    for level in (1..=deepest).rev() {
        let moving: Vec<(String, NodeId)> = children
            .keys()
            .filter_map(|e| def.node_by_element(e).map(|n| (e.clone(), n)))
            .filter(|(_, n)| depth(*n) == level)
            .filter_map(|(e, n)| def.node(n).scope.map(|s| (e, s)))
            .collect();
        for (element, scope) in moving {
            let Some(child) = children.remove(&element) else { continue };
            let sub = def.node(scope);
            let entry = children.entry(sub.id.clone()).or_insert_with(|| StateTree {
                id: sub.id.clone(),
                state: State::Running,
                name: sub.name.clone().unwrap_or_default(),
                loops: 1,
                start_time: child.start_time.clone(),
                ..StateTree::default()
            });
            entry.children.insert(element, child);
        }
    }
    settle_subprocess_states(def, children, paused);
}

/// A subprocess's state from its children's: failed when one failed, running (suspended
/// when paused) while one runs, finished once its end event was passed.
fn settle_subprocess_states(def: &Definition, children: &mut BTreeMap<String, StateTree>, paused: &[NodeId]) {
    for (element, entry) in children.iter_mut() {
        let Some(node) = def.node_by_element(element) else { continue };
        if !matches!(def.node(node).kind, NodeKind::SubProcess { .. }) {
            continue;
        }
        settle_subprocess_states(def, &mut entry.children, paused);
        let states: Vec<(Option<NodeId>, State)> =
            entry.children.iter().map(|(e, c)| (def.node_by_element(e), c.state)).collect();
        let ended = states.iter().any(|(n, s)| {
            *s == State::Finished && n.is_some_and(|n| matches!(def.node(n).kind, NodeKind::EndEvent(_)))
        });
        entry.state = if states.iter().any(|(_, s)| *s == State::Failed) {
            State::Failed
        } else if ended && !states.iter().any(|(_, s)| *s == State::Running) {
            State::Finished
        } else if paused.contains(&node) {
            State::Suspended
        } else {
            State::Running
        };
    }
}
