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
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// A stone task that started: what undoing it needs. A called instance that completed hands
/// its own to its caller, so that the caller's rollback undoes them too.
///
/// Where the task's record closed holding all of it (its params and the outputs a rollback
/// gets), it is stored as the record's id alone: a process would otherwise write every
/// stone's params and outputs again at each of its steps, and keep them twice once ended.
/// Read back so, it is [filled](Instance::fill_records) from the record before it is used.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "StoredRan<'static>")]
pub struct Ran {
    /// The record that holds the rest, when it does.
    record: Option<String>,
    pub(crate) element: String,
    name: String,
    stone: String,
    namespace: Option<String>,
    params: Value,
    outputs: Map<String, Value>,
    /// The called instance it ran in, for one handed over by a child: the child's own delete
    /// undoes it, not the caller's.
    pub(crate) called: Option<String>,
    /// False for one read back as its record's id, until it is filled.
    filled: bool,
}

/// How a [`Ran`] is stored: its record's id, or in full.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredRan<'a> {
    Recorded { record: Cow<'a, str> },
    Full(Box<Full<'a>>),
}

#[derive(Serialize, Deserialize)]
struct Full<'a> {
    element: Cow<'a, str>,
    name: Cow<'a, str>,
    stone: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<Cow<'a, str>>,
    params: Cow<'a, Value>,
    #[serde(default, skip_serializing_if = "no_outputs")]
    outputs: Cow<'a, Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    called: Option<Cow<'a, str>>,
}

fn no_outputs(outputs: &Map<String, Value>) -> bool {
    outputs.is_empty()
}

impl From<StoredRan<'_>> for Ran {
    fn from(stored: StoredRan<'_>) -> Ran {
        match stored {
            StoredRan::Recorded { record } => Ran {
                record: Some(record.into_owned()),
                element: String::new(),
                name: String::new(),
                stone: String::new(),
                namespace: None,
                params: Value::Null,
                outputs: Map::new(),
                called: None,
                filled: false,
            },
            StoredRan::Full(full) => Ran {
                record: None,
                element: full.element.into_owned(),
                name: full.name.into_owned(),
                stone: full.stone.into_owned(),
                namespace: full.namespace.map(Cow::into_owned),
                params: full.params.into_owned(),
                outputs: full.outputs.into_owned(),
                called: full.called.map(Cow::into_owned),
                filled: true,
            },
        }
    }
}

impl Serialize for Ran {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A child's records are not the caller's: its deployment may go without the caller.
        match (&self.record, &self.called) {
            (Some(record), None) => StoredRan::Recorded { record: Cow::Borrowed(record) },
            _ => StoredRan::Full(Box::new(Full {
                element: Cow::Borrowed(&self.element),
                name: Cow::Borrowed(&self.name),
                stone: Cow::Borrowed(&self.stone),
                namespace: self.namespace.as_deref().map(Cow::Borrowed),
                params: Cow::Borrowed(&self.params),
                outputs: Cow::Borrowed(&self.outputs),
                called: self.called.as_deref().map(Cow::Borrowed),
            })),
        }
        .serialize(serializer)
    }
}

impl Ran {
    /// Whether its model's task is one a rollback, cancel or delete sends its action to.
    pub(crate) fn compensated(&self, def: &Definition) -> bool {
        let node = def.node_by_element(&self.element).map(|n| &def.node(n).kind);
        !matches!(node, Some(NodeKind::StoneTask(spec)) if !spec.compensated)
    }

    /// What undoing `rec` needs, had it put out `outputs`, as it closes keeping `kept` as its
    /// outputs: pointing at the record when the record holds it all.
    pub(crate) fn closing(rec: &TaskRecord, outputs: Option<&Value>, kept: Option<&Value>) -> Ran {
        let mut ran = Self::with_outputs(rec, outputs);
        let holds = match kept {
            Some(Value::Object(map)) => *map == ran.outputs,
            _ => ran.outputs.is_empty(),
        };
        if holds {
            ran.record = Some(rec.id.clone());
        }
        ran
    }

    /// The details of one read back as its record's id, from that record.
    fn fill(&mut self, rec: &TaskRecord) {
        let called = self.called.take();
        *self = Ran { record: Some(rec.id.clone()), called, ..Self::with_outputs(rec, rec.outputs.as_ref()) };
    }

    /// What undoing `rec` needs, had it put out `outputs` (a record about to close with them).
    fn with_outputs(rec: &TaskRecord, outputs: Option<&Value>) -> Ran {
        Ran {
            record: None,
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
            filled: true,
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
                // A failed record was written as it stands; the others close without outputs.
                let kept = if rec.status.step_failed() { rec.outputs.as_ref() } else { None };
                let ran = Ran::closing(rec, rec.outputs.as_ref(), kept);
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
        debug_assert!(ran.filled, "a step of {:?} read back and not filled", plan.action);
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

impl Instance {
    /// The task records it holds by id alone, as read back from the store (its open records,
    /// and the stone tasks it remembers): [`Instance::fill_records`] needs them before the
    /// instance runs again.
    pub fn records_to_fill(&self) -> Vec<&str> {
        let ran = self.remembered().filter(|r| !r.filled).filter_map(|r| r.record.as_deref());
        self.open_to_fill().chain(ran).collect()
    }

    /// Fills what it holds by record id from the records, as `find` finds them by id.
    ///
    /// # Errors
    /// The id of a record that `find` does not find.
    pub fn fill_records<'r>(&mut self, find: impl Fn(&str) -> Option<&'r TaskRecord>) -> Result<(), String> {
        self.fill_open(&find)?;
        let steps = self.plan.iter_mut().flat_map(|p| p.steps.iter_mut());
        for ran in self.ran.iter_mut().chain(steps).filter(|r| !r.filled) {
            let Some(id) = &ran.record else { continue };
            let rec = find(id).ok_or_else(|| id.clone())?;
            ran.fill(rec);
        }
        Ok(())
    }

    /// The stone tasks it ran and, for a rollback, cancel or delete, those it undoes.
    fn remembered(&self) -> impl Iterator<Item = &Ran> {
        self.ran.iter().chain(self.plan.iter().flat_map(|p| p.steps.iter()))
    }
}
