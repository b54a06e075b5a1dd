//! Rollback, cancel and delete: instances that send one action to the stone tasks of another.
//!
//! A process remembers every stone task that started, in order of completion. When it fails
//! (outside debug mode) a rollback instance sends `rollback` to each of them, newest first;
//! a cancel instance sends `cancel` to those still running when it was canceled; a delete
//! instance sends `delete` to all of them once it has ended. Each is an instance of its own,
//! with task records, so operators follow it through the same API.

use crate::effect::{Action, Effect, Phase, Spawned, TaskRecord, TaskStatus};
use crate::instance::{EngineError, Instance, InstanceKind, InstanceStatus, Step};
use flowstone_model::{Definition, NodeKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A stone task that started: what undoing it needs. A called instance that completed hands
/// its own to its caller, so that the caller's rollback undoes them too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ran {
    element: String,
    name: String,
    stone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    params: Value,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    outputs: Map<String, Value>,
    /// The called instance it ran in, for one handed over by a child: the child's own delete
    /// undoes it, not the caller's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) called: Option<String>,
}

impl Ran {
    /// Whether its model's task is one a rollback, cancel or delete sends its action to.
    pub(crate) fn compensated(&self, def: &Definition) -> bool {
        let node = def.node_by_element(&self.element).map(|n| &def.node(n).kind);
        !matches!(node, Some(NodeKind::StoneTask(spec)) if !spec.compensated)
    }

    pub(crate) fn of(rec: &TaskRecord) -> Ran {
        Self::with_outputs(rec, rec.outputs.as_ref())
    }

    /// What undoing `rec` needs, had it put out `outputs` (a record about to close with them).
    pub(crate) fn with_outputs(rec: &TaskRecord, outputs: Option<&Value>) -> Ran {
        Ran {
            element: rec.element.clone(),
            name: rec.name.clone(),
            stone: rec.stone.clone().unwrap_or_default(),
            namespace: rec.namespace.clone(),
            params: rec.params.clone().unwrap_or(Value::Null),
            outputs: match outputs {
                Some(Value::Object(map)) => map.clone(),
                _ => Map::new(),
            },
            called: None,
        }
    }
}

/// The steps of a rollback, cancel or delete instance, run one at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Plan {
    pub(crate) action: Action,
    pub(crate) steps: Vec<Ran>,
    pub(crate) next: usize,
}

impl Instance {
    /// Ends a command: an instance that failed during it closes what is open and, when stone
    /// work had started, starts its rollback.
    pub(crate) fn settle(&mut self, step: &mut Step<'_, '_>, before: InstanceStatus) {
        debug_assert!(self.index_is_current(), "the index drifted from the state");
        self.sweep_timers(step);
        self.sweep_waits(step);
        if self.active()
            && let Err(reason) = self.check_size(step.ctx.limits)
        {
            self.fail(reason);
        }
        if self.status != InstanceStatus::Failed || before == InstanceStatus::Failed {
            return;
        }
        self.close_all(step);
        if self.kind == InstanceKind::Process && !self.ran.is_empty() {
            let steps = self.ran.iter().rev().cloned().collect();
            self.rollback = Some(self.spawn_compensation(step, InstanceKind::Rollback, Action::Rollback, steps));
        }
    }

    /// Cancels a running instance; stone tasks that had begun get `cancel`.
    pub(crate) fn cancel(&mut self, step: &mut Step<'_, '_>) {
        let begun = self.close_all(step);
        self.status = InstanceStatus::Canceled;
        if self.kind == InstanceKind::Process {
            let steps = begun.into_iter().rev().collect();
            self.cancel = Some(self.spawn_compensation(step, InstanceKind::Cancel, Action::Cancel, steps));
        }
    }

    /// Starts the delete instance of an ended process.
    pub(crate) fn delete(&mut self, step: &mut Step<'_, '_>) -> Result<(), EngineError> {
        if self.kind != InstanceKind::Process {
            return Err(EngineError::NotAProcess(self.kind));
        }
        if self.active() {
            return Err(EngineError::StillRunning(self.status));
        }
        if let Some(id) = &self.delete {
            return Err(EngineError::AlreadyDeleted(id.clone()));
        }
        // What its called instances ran, their own deletes undo: they are deleted with it.
        let steps = self.ran.iter().rev().filter(|r| r.called.is_none()).cloned().collect();
        self.delete = Some(self.spawn_compensation(step, InstanceKind::Delete, Action::Delete, steps));
        for child in &self.children {
            step.effects.push(Effect::DeleteCall { child: child.clone() });
        }
        Ok(())
    }

    /// Closes every open record: failed ones keep their status, the others become
    /// `canceled` and their jobs leave the queue. Stone tasks that had begun are remembered
    /// as run, and returned in the order they were created.
    fn close_all(&mut self, step: &mut Step<'_, '_>) -> Vec<Ran> {
        let mut begun = Vec::new();
        let ids: Vec<String> = self.open.keys().cloned().collect();
        for id in ids {
            let rec = &self.open[&id];
            let started = rec.action.is_some_and(|a| a != Action::Mock) && !rec.status.producing();
            if started && self.kind == InstanceKind::Process {
                let ran = Ran::of(rec);
                if ran.compensated(step.def) {
                    begun.push(ran);
                }
            }
            if rec.status.step_failed() {
                // Written when it failed; its job left the queue then.
                self.take_record(&id);
            } else {
                self.close_record(step, &id, TaskStatus::Canceled, None, None);
            }
        }
        self.joins.clear();
        self.remove_flow(|_| true, |_| true);
        for ran in &begun {
            self.push_ran(step.def, ran.clone());
        }
        begun
    }

    /// Starts an instance that sends `action` to `steps` in turn; returns its id.
    fn spawn_compensation(
        &self,
        step: &mut Step<'_, '_>,
        kind: InstanceKind,
        action: Action,
        steps: Vec<Ran>,
    ) -> String {
        let id = (step.ctx.ids)();
        let mut child = Instance::new(kind, Map::new());
        child.debug = self.debug;
        child.plan = Some(Plan { action, steps, next: 0 });
        let mut sub = Step::new(step.def, &mut *step.ctx);
        child.advance_plan(&mut sub);
        let effects = sub.effects;
        step.effects.push(Effect::Spawn(Box::new(Spawned { id: id.clone(), instance: child, effects })));
        id
    }

    /// Queues the next step of a plan once the one before has ended; completes after the last.
    pub(crate) fn advance_plan(&mut self, step: &mut Step<'_, '_>) {
        if !self.active() || !self.open.is_empty() {
            return;
        }
        let Some(plan) = &self.plan else { return };
        let Some(ran) = plan.steps.get(plan.next) else {
            self.status = InstanceStatus::Completed;
            return;
        };
        let id = (step.ctx.ids)();
        let mut rec = TaskRecord {
            task_id: id.clone(),
            id,
            element: ran.element.clone(),
            name: ran.name.clone(),
            kind: "serviceTask".into(),
            namespace: ran.namespace.clone(),
            stone: Some(ran.stone.clone()),
            create_time: step.ctx.now,
            end_time: None,
            // Set as it is queued.
            status: TaskStatus::Produce(Phase::Begin),
            reason: None,
            params: Some(ran.params.clone()),
            outputs: None,
            progress: None,
            action: None,
            user: None,
        };
        Self::queue(step, &mut rec, plan.action, ran.outputs.clone());
        step.effects.push(Effect::Task(Box::new(rec.clone())));
        self.open_record(rec);
    }
}
