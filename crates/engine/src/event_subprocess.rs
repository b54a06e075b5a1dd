//! Event subprocesses: a `<subProcess triggeredByEvent="true">` runs in the scope around it
//! (the process, or a run of an embedded subprocess) when the event of its start event comes
//! while that scope runs.
//!
//! A timer start's timer is set when the scope starts, as an open record (kind `startEvent`)
//! that lives as long as the scope; an error start catches a BPMN error thrown in the scope
//! that nothing closer caught. An interrupting event subprocess first ends everything else in
//! its scope (tasks, jobs, timers); a non-interrupting one runs beside it, once per firing of
//! a cycle. The scope ends once its event subprocesses that started have ended too, and its
//! timers that did not fire go with it.

use crate::effect::TaskStatus;
use crate::instance::{Fail, Instance, Step};
use crate::scope::{Scope, ScopeId, ScopeKind};
use crate::timer::{Owner, Timer};
use flowstone_model::{NodeId, NodeKind, TimerDef};
use serde_json::Map;

impl Instance {
    /// Sets the timers and opens the message and signal waits of the event subprocesses
    /// directly in `container` (a subprocess node; none: the process), whose run `scope`
    /// just started.
    pub(crate) fn arm_event_subprocesses(
        &mut self,
        step: &mut Step<'_, '_>,
        container: Option<NodeId>,
        scope: Option<ScopeId>,
    ) -> Result<(), Fail> {
        let def = step.def;
        if def.event_subprocesses.is_empty() {
            return Ok(());
        }
        let owner = scope.map_or(Owner::Process, Owner::Scope);
        for esp in def.event_subprocesses_in(container) {
            let NodeKind::EventSubProcess { start, .. } = def.node(esp).kind else { continue };
            let armed = match &def.node(start).kind {
                NodeKind::TimerStart(timer) => self.open_timer(step, start, timer, owner, scope),
                NodeKind::EventStart(trigger) => self.open_wait(step, start, trigger, owner, scope),
                _ => Ok(()),
            };
            armed.map_err(|Fail(reason)| Fail(format!("at `{}`: {reason}", def.node(start).id)))?;
        }
        Ok(())
    }

    /// The timer of an event subprocess's start event fired for the run of its scope
    /// `owner`: it starts there (ending the rest of the scope first when interrupting).
    pub(crate) fn fire_event_start(
        &mut self,
        step: &mut Step<'_, '_>,
        id: &str,
        timer: &Timer,
        time: &TimerDef,
        owner: Owner,
    ) {
        let scope = match owner {
            Owner::Process => None,
            Owner::Scope(s) if self.scopes.contains_key(&s) => Some(s),
            // Its scope ended: the sweep at the end of the step drops it.
            Owner::Scope(_) | Owner::Token(_) => return,
        };
        let def = step.def;
        let Some(esp) = def.node(timer.node).scope else { return };
        let NodeKind::EventSubProcess { interrupting, .. } = def.node(esp).kind else { return };
        if interrupting {
            self.close_record(step, id, TaskStatus::Completed, None, None);
            self.clear_scope(step, scope);
        } else {
            self.fired_again(step, id, timer, time);
        }
        self.start_event_subprocess(step, esp, timer.node, scope);
    }

    /// Runs event subprocess `esp` from its start event `start` in `scope`.
    pub(crate) fn start_event_subprocess(
        &mut self,
        step: &mut Step<'_, '_>,
        esp: NodeId,
        start: NodeId,
        scope: Option<ScopeId>,
    ) {
        let run = Scope { parent: scope, node: esp, kind: ScopeKind::SubProcess, vars: Map::new() };
        let sub = self.new_scope(run);
        let token = self.spawn(start, Some(sub));
        step.ready.push_back(token);
        // Event subprocesses inside it wait from now on.
        if let Err(Fail(reason)) = self.arm_event_subprocesses(step, Some(esp), Some(sub)) {
            self.fail(reason);
        }
    }
}
