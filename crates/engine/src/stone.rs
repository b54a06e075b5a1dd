//! The lifecycle of a stone task: events from its stone, and the operator's debug controls.

use crate::compensation::Ran;
use crate::effect::{Action, Effect, Phase, TaskRecord, TaskStatus};
use crate::errors::Thrower;
use crate::instance::{EngineError, Instance, InstanceKind, InstanceStatus, Step, StoneEvent};
use crate::limits::Limits;
use flowstone_model::{ActivityOptions, NodeKind};
use serde_json::{Map, Value};

impl Instance {
    /// Applies a stone's report to the open record it addresses.
    pub(crate) fn stone_event(
        &mut self,
        step: &mut Step<'_, '_>,
        record: &str,
        event: StoneEvent,
    ) -> Result<(), EngineError> {
        let (id, job, monitoring) = self.stone_job(record)?;
        let rec = &self.open[&id];
        let event = bounded(event, step.ctx.limits);
        // The action an event that does not name one belongs to.
        let under_way = if monitoring { Action::Monitor } else { job };
        let (action, phase) = match &event {
            StoneEvent::Begin(a) => (*a, Phase::Begin),
            StoneEvent::AwaitCallback => (Action::Start, Phase::Begin),
            StoneEvent::Success { action, .. } => (*action, Phase::Success),
            StoneEvent::Failed { action, .. } => (*action, Phase::Failed),
            StoneEvent::Passed => (Action::Mock, Phase::Passed),
            StoneEvent::Completed { .. } => (under_way, Phase::Success),
            StoneEvent::BpmnError { .. } | StoneEvent::Fault(_) => (under_way, Phase::Failed),
            StoneEvent::Progress(_) => (current_action(rec).unwrap_or(job), Phase::Begin),
            // The broker's word on the publish, not the stone's.
            StoneEvent::Produced | StoneEvent::ProduceFailed(_) => return self.produced(step, &id, event),
        };
        let status = TaskStatus::Stone(action, phase);
        let unexpected = || EngineError::UnexpectedEvent {
            task: record.to_owned(),
            status: rec.status.text(),
            event: match &event {
                StoneEvent::Progress(p) => format!("progress {p}"),
                _ => status.text(),
            },
        };
        if rec.status.step_failed() {
            // A failed task waiting in debug mode: the same failure again changes nothing.
            return if rec.status == status { Ok(()) } else { Err(unexpected()) };
        }
        let fits = action == job
            || (action == Action::Monitor && monitoring)
            || (phase == Phase::Passed && job == Action::Mock);
        if !fits {
            return Err(unexpected());
        }
        match event {
            StoneEvent::Begin(_) => {
                // A late or repeated `begin` after the action moved on is harmless.
                let first = rec.status.producing();
                if first || (action == Action::Monitor && current_action(rec) == Some(Action::Start)) {
                    self.update(step, &id, |r| r.status = status);
                }
            }
            StoneEvent::AwaitCallback => {
                let under_way = rec.status.producing() || rec.status == status;
                if !under_way {
                    return Err(unexpected());
                }
                self.update(step, &id, |r| r.status = status);
                step.effects.push(Effect::DropJob { record_id: id.clone() });
            }
            StoneEvent::Progress(p) => self.update(step, &id, |r| {
                r.progress = Some(p.min(100));
                if r.status == TaskStatus::Stone(Action::Start, Phase::Success) {
                    r.status = TaskStatus::Stone(Action::Monitor, Phase::Begin);
                }
            }),
            StoneEvent::Success { outputs, monitor, .. } => {
                let outputs = self.keep_outputs(&id, outputs);
                if monitor && action == Action::Start {
                    step.effects.push(Effect::MonitorJob { record_id: id.clone(), outputs: outputs.clone() });
                    self.update(step, &id, |r| {
                        r.status = status;
                        r.outputs = Some(Value::Object(outputs));
                    });
                } else {
                    self.finish(step, &id, status, Some(Value::Object(outputs)), action != Action::Mock);
                }
            }
            StoneEvent::Passed => self.finish(step, &id, status, None, false),
            StoneEvent::Failed { reason, .. } | StoneEvent::Fault(reason) => {
                self.stone_failed(step, &id, status, reason)
            }
            StoneEvent::Completed { variables } => {
                self.set_vars_at(&id, &variables);
                self.finish(step, &id, status, Some(Value::Object(variables)), action != Action::Mock);
            }
            StoneEvent::BpmnError { code, variables } => self.bpmn_error(step, &id, status, code, variables),
            StoneEvent::Produced | StoneEvent::ProduceFailed(_) => {}
        }
        Ok(())
    }

    /// Finishes the action under way of stone task `record` with `outputs`, as its stone would.
    pub(crate) fn callback(
        &mut self,
        step: &mut Step<'_, '_>,
        record: &str,
        outputs: Map<String, Value>,
    ) -> Result<(), EngineError> {
        let (_, job, monitoring) = self.stone_job(record)?;
        let action = if monitoring { Action::Monitor } else { job };
        self.stone_event(step, record, StoneEvent::Success { action, outputs, monitor: false })
    }

    /// The open stone task `record`: its record id, its job's action, and whether the job is
    /// watching what its start began.
    fn stone_job(&self, record: &str) -> Result<(String, Action, bool), EngineError> {
        let id = self.find_open(record)?;
        let rec = &self.open[&id];
        let Some(job) = rec.action else {
            let kind = rec.kind.clone();
            return Err(EngineError::WrongTaskKind { task: record.to_owned(), kind, expected: "stone task" });
        };
        let monitoring = job == Action::Start
            && (rec.status == TaskStatus::Stone(Action::Start, Phase::Success)
                || matches!(rec.status, TaskStatus::Stone(Action::Monitor, _)));
        Ok((id, job, monitoring))
    }

    /// The broker confirmed (or failed) the publish of a job; once the stone reported on it,
    /// that changes nothing.
    fn produced(&mut self, step: &mut Step<'_, '_>, id: &str, event: StoneEvent) -> Result<(), EngineError> {
        if self.open[id].status.producing() {
            self.update(step, id, |r| match event {
                StoneEvent::ProduceFailed(reason) => {
                    r.status = TaskStatus::Produce(Phase::Failed);
                    r.reason = Some(reason);
                }
                _ => {
                    r.status = TaskStatus::Produce(Phase::Success);
                    r.reason = None;
                }
            });
        }
        Ok(())
    }

    /// Replaces an open record through `change`, writing it out.
    fn update(&mut self, step: &mut Step<'_, '_>, id: &str, change: impl FnOnce(&mut TaskRecord)) {
        if let Some(rec) = self.record_mut(id) {
            change(rec);
            step.effects.push(Effect::Task(Box::new(rec.clone())));
        }
    }

    /// Merges a stone's outputs into what the task put out before and, in a process, into
    /// the variables under its namespace; returns the task's outputs so far.
    fn keep_outputs(&mut self, id: &str, outputs: Map<String, Value>) -> Map<String, Value> {
        let rec = &self.open[id];
        let mut all = match &rec.outputs {
            Some(Value::Object(before)) => before.clone(),
            _ => Map::new(),
        };
        all.extend(outputs.iter().map(|(k, v)| (k.clone(), v.clone())));
        if self.kind == InstanceKind::Process {
            let namespace = rec.namespace.clone().unwrap_or_default();
            let mut merged = match self.remove_process_var(&namespace) {
                Some(Value::Object(existing)) => existing,
                _ => Map::new(),
            };
            merged.extend(outputs);
            self.set_process_var(namespace, Value::Object(merged));
        }
        all
    }

    /// A stone action ended well: the record closes and its token (or the plan) moves on.
    fn finish(&mut self, step: &mut Step<'_, '_>, id: &str, status: TaskStatus, mut outputs: Option<Value>, ran: bool) {
        let token = self.token_waiting_on(id);
        // A pipeline-tree component also puts out `_loop`, how many times its node has run
        // (bamboo-engine's system output, which loop conditions read).
        if let Some(t) = token {
            let node = self.tokens[&t].node;
            let component = matches!(&step.def.node(node).kind, NodeKind::StoneTask(spec) if spec.inputs.is_some());
            if let (true, Some(Value::Object(out))) = (component, &mut outputs) {
                let runs = self.runs.get(&node).copied().unwrap_or(1);
                out.entry("_loop").or_insert(Value::from(runs));
            }
        }
        if ran && self.kind == InstanceKind::Process {
            self.push_ran(step.def, Ran::closing(&self.open[id], outputs.as_ref(), outputs.as_ref()));
        }
        // A pipeline-tree component's outputs that feed constants.
        if let (Some(t), Some(Value::Object(out))) = (token, &outputs) {
            let (node, scope) = (self.tokens[&t].node, self.tokens[&t].scope);
            if let NodeKind::StoneTask(spec) = &step.def.node(node).kind {
                for (key, variable) in &spec.outputs {
                    if let Some(value) = out.get(key) {
                        self.set_var(scope, variable.clone(), value.clone());
                    }
                }
            }
        }
        self.close_record(step, id, status, None, outputs);
        if let Some(plan) = &mut self.plan {
            plan.next += 1;
        }
        if let Some(t) = token {
            self.resume(step, t);
        }
    }

    /// Sets variables where the token waiting on a record stands (only in a process).
    fn set_vars_at(&mut self, id: &str, variables: &Map<String, Value>) {
        if self.kind != InstanceKind::Process {
            return;
        }
        let scope = self.token_waiting_on(id).and_then(|t| self.tokens[&t].scope);
        for (name, value) in variables {
            self.set_var(scope, name.clone(), value.clone());
        }
    }

    /// A business error from the stone: caught by an error boundary event, the record fails
    /// and the flow goes on from the boundary; uncaught, the task fails like any failure.
    fn bpmn_error(
        &mut self,
        step: &mut Step<'_, '_>,
        id: &str,
        status: TaskStatus,
        code: String,
        variables: Map<String, Value>,
    ) {
        let reason = format!("BPMN error `{code}`");
        let token = self.token_waiting_on(id).filter(|_| self.kind == InstanceKind::Process);
        let catcher = token.and_then(|t| self.catcher(step.def, Thrower::Token(t), Some(&code)));
        let Some(catcher) = catcher else {
            self.stone_failed(step, id, status, format!("{reason}, which no error boundary event catches"));
            // A called instance failed by it throws it at its call activity, as an error end
            // event would.
            if self.caller.is_some() && self.status == InstanceStatus::Failed {
                self.uncaught_error = Some(code);
            }
            return;
        };
        self.set_vars_at(id, &variables);
        if self.open[id].action != Some(Action::Mock) {
            self.push_ran(step.def, Ran::closing(&self.open[id], self.open[id].outputs.as_ref(), None));
        }
        self.close_record(step, id, status, Some(reason), None);
        self.caught(step, catcher);
    }

    /// A stone action failed: in debug mode the task waits for an operator, else the
    /// instance fails (and its rollback starts).
    fn stone_failed(&mut self, step: &mut Step<'_, '_>, id: &str, status: TaskStatus, reason: String) {
        let element = self.open[id].element.clone();
        let message = format!("task {element} failed: {reason}");
        let token = self.token_waiting_on(id);
        let ignorable = token
            .is_some_and(|t| step.def.node(self.tokens[&t].node).options.as_ref().is_some_and(|o| o.error_ignorable));
        if ignorable {
            // A pipeline-tree activity whose errors are ignorable fails forward.
            if self.kind == InstanceKind::Process && self.open[id].action != Some(Action::Mock) {
                self.push_ran(step.def, Ran::closing(&self.open[id], self.open[id].outputs.as_ref(), None));
            }
            self.close_record(step, id, status, Some(reason), None);
            if let Some(t) = token {
                self.resume(step, t);
            }
            return;
        }
        if self.debug {
            step.effects.push(Effect::DropJob { record_id: id.to_owned() });
            self.hold_for_operator(step, id, status, reason);
            self.arm_retry(step, id);
            return;
        }
        if self.kind == InstanceKind::Process && self.open[id].action != Some(Action::Mock) {
            self.push_ran(step.def, Ran::closing(&self.open[id], self.open[id].outputs.as_ref(), None));
        }
        self.close_record(step, id, status, Some(reason), None);
        self.fail_in(&element, message);
    }

    /// The failed task `task` of an instance in debug mode (not a gateway that waits for a
    /// flow to be chosen: skip and reRun do not fit it).
    fn failed_task(&self, task: &str) -> Result<String, EngineError> {
        let id = self.failed_record(task)?;
        if self.open[&id].kind == crate::choice::GATEWAY {
            return Err(EngineError::WrongTaskKind {
                task: task.to_owned(),
                kind: crate::choice::GATEWAY.into(),
                expected: "task",
            });
        }
        Ok(id)
    }

    /// The failed record `task` of an instance in debug mode.
    pub(crate) fn failed_record(&self, task: &str) -> Result<String, EngineError> {
        if self.status != InstanceStatus::Debug {
            return Err(EngineError::NotDebugging(self.status));
        }
        let id = self.find_open(task)?;
        let status = self.open[&id].status;
        if !status.step_failed() {
            return Err(EngineError::NotFailed { task: task.to_owned(), status: status.text() });
        }
        Ok(id)
    }

    /// `skip`: the failed task closes as skipped and its token moves on.
    pub(crate) fn skip(&mut self, step: &mut Step<'_, '_>, task: &str) -> Result<(), EngineError> {
        let id = self.failed_task(task)?;
        self.check_operable(step, &id, "skipped", "skippable", |o| o.skippable)?;
        let token = self.token_waiting_on(&id);
        let reason = self.open[&id].reason.clone();
        self.close_record(step, &id, TaskStatus::Skipped, reason, None);
        self.settle_debug();
        if let Some(t) = token {
            self.resume(step, t);
        }
        Ok(())
    }

    /// Refuses an operator's skip or retry of a pipeline-tree node whose `flag` is false.
    fn check_operable(
        &self,
        step: &Step<'_, '_>,
        id: &str,
        what: &'static str,
        flag: &'static str,
        allowed: impl Fn(&ActivityOptions) -> bool,
    ) -> Result<(), EngineError> {
        let node = self.token_waiting_on(id).map(|t| self.tokens[&t].node);
        if node.and_then(|n| step.def.node(n).options.as_deref()).is_some_and(|o| !allowed(o)) {
            return Err(EngineError::NotOperable { task: id.to_owned(), what, flag });
        }
        Ok(())
    }

    /// Debug mode: a failed step stays open, failed, and the instance waits for an operator's
    /// `reRun`, `skip` or `resume`.
    pub(crate) fn hold_for_operator(&mut self, step: &mut Step<'_, '_>, id: &str, status: TaskStatus, reason: String) {
        let now = step.ctx.now;
        let element = self.open[id].element.clone();
        self.failure = Some(format!("task {element} failed: {reason}"));
        self.update(step, id, |r| {
            r.status = status;
            r.reason = Some(reason);
            r.end_time = Some(now);
        });
        self.status = InstanceStatus::Debug;
    }

    /// `reRun`: the failed attempt is kept under a new id; the task runs again.
    pub(crate) fn rerun(
        &mut self,
        step: &mut Step<'_, '_>,
        task: &str,
        action: Option<Action>,
        parameters: Map<String, Value>,
        outputs: Map<String, Value>,
    ) -> Result<(), EngineError> {
        let id = self.failed_task(task)?;
        self.check_operable(step, &id, "run again", "retryable", |o| o.retryable)?;
        if self.open[&id].kind == "callActivity" {
            return self.call_again(step, &id);
        }
        self.disarm(step, &id);
        let rec = &self.open[&id];
        let failed = current_action(rec).unwrap_or(Action::Start);
        let allowed: &[Action] = match &self.plan {
            Some(plan) => std::slice::from_ref(&plan.action),
            None => &[Action::Start, Action::Monitor, Action::Mock],
        };
        let action = action.unwrap_or(failed);
        if !allowed.contains(&action) {
            let allowed = allowed.iter().map(|a| a.name()).collect::<Vec<_>>().join(" or ");
            return Err(EngineError::WrongAction { task: task.to_owned(), action: action.name(), allowed });
        }
        let mut attempt = rec.clone();
        attempt.id = (step.ctx.ids)();
        attempt.action = None;
        step.effects.push(Effect::Task(Box::new(attempt)));

        let Some(mut rec) = self.take_record(&id) else { return Err(EngineError::TaskNotOpen(task.to_owned())) };
        rec.params = Some(Value::Object(merge(rec.params.take(), parameters)));
        let job_outputs = match action {
            Action::Monitor => merge(rec.outputs.clone(), outputs),
            _ => {
                rec.outputs = None;
                Map::new()
            }
        };
        rec.create_time = step.ctx.now;
        rec.end_time = None;
        rec.reason = None;
        rec.progress = None;
        Self::queue(step, &mut rec, action, job_outputs);
        step.effects.push(Effect::Task(Box::new(rec.clone())));
        let id = rec.id.clone();
        self.open_record(rec);
        if let Some(token) = self.token_waiting_on(&id) {
            self.arm_timeout(step, token, &id);
        }
        self.settle_debug();
        Ok(())
    }

    /// `resume`: leaves debug mode at a failed task; the instance fails and rolls back.
    pub(crate) fn leave_debug(&mut self, task: &str) -> Result<(), EngineError> {
        let id = self.failed_record(task)?;
        let rec = &self.open[&id];
        let element = rec.element.clone();
        let message = format!("task {element} failed: {}", rec.reason.as_deref().unwrap_or_default());
        self.status = InstanceStatus::Running;
        self.fail_in(&element, message);
        Ok(())
    }
}

/// The action a record's status names, if a stone reported on it.
fn current_action(rec: &TaskRecord) -> Option<Action> {
    match rec.status {
        TaskStatus::Stone(action, _) => Some(action),
        _ => None,
    }
}

/// `changes` merged over the object `base`; a null removes a key.
fn merge(base: Option<Value>, changes: Map<String, Value>) -> Map<String, Value> {
    let mut out = match base {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for (k, v) in changes {
        if v.is_null() {
            out.remove(&k);
        } else {
            out.insert(k, v);
        }
    }
    out
}

/// A report whose outputs or variables are past the bounds of [`Limits`] becomes the failure
/// of its action: what the stone put out cannot be kept.
fn bounded(event: StoneEvent, limits: &Limits) -> StoneEvent {
    let given = match &event {
        StoneEvent::Success { outputs, .. } => outputs,
        StoneEvent::Completed { variables } | StoneEvent::BpmnError { variables, .. } => variables,
        _ => return event,
    };
    match limits.check_variables(given) {
        Ok(()) => event,
        Err(reason) => {
            let reason = format!("its outputs cannot be kept: {reason}");
            match event {
                StoneEvent::Success { action, .. } => StoneEvent::Failed { action, reason },
                _ => StoneEvent::Fault(reason),
            }
        }
    }
}
