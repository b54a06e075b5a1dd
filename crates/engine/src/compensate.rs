//! Compensation events: an activity with a compensation boundary event that completes is
//! remembered with the scope it ran in; a compensation thrown in that scope (an intermediate
//! throw or end event) runs the handlers of the activities remembered there — or of its
//! `activityRef` only — newest first, one after another, each as an activity of the scope,
//! and each activity once. The throwing token waits on an open record of the event (its
//! params name the activities undone) until the last handler is done, unless the event says
//! not to wait; an end event ends once they are.
//!
//! This is the order the platform's rollback undoes stone tasks in (newest first), and one
//! handler at a time, so a handler may rely on the ones after it in the flow being undone.
//! What completed inside a subprocess is remembered in the scope around it once the
//! subprocess completes, unless the subprocess has a handler of its own (which undoes it
//! all); what was canceled with its scope is forgotten. A multi-instance activity is
//! remembered once, when all its items completed.

use crate::effect::TaskStatus;
use crate::instance::{Fail, Instance, Step};
use crate::scope::ScopeId;
use flowstone_model::{NodeId, NodeKind};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// An activity with a compensation handler that completed in `scope`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Compensable {
    pub(crate) node: NodeId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<ScopeId>,
}

/// A compensation under way in `scope`: the handler running now and those after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Compensating {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<ScopeId>,
    current: NodeId,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    next: Vec<NodeId>,
    /// The throwing token waiting for the handlers, on its record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    waiting: Option<u32>,
}

impl Instance {
    /// Activity `node` completed in `scope`: it is remembered when it has a compensation
    /// handler; whether it was itself a handler of a compensation under way (its token then
    /// goes no further: the next handler starts, or the throw goes on).
    pub(crate) fn activity_completed(&mut self, step: &mut Step<'_, '_>, node: NodeId, scope: Option<ScopeId>) -> bool {
        if let Some(i) = self.compensating.iter().position(|c| c.scope == scope && c.current == node) {
            self.next_handler(step, i);
            return true;
        }
        if step.def.compensation_handler(node).is_some() {
            self.compensable.push(Compensable { node, scope });
        }
        false
    }

    /// Scope `id` (a run of `node`, in `parent`) completed: what was remembered in it is
    /// remembered around it, unless `node` has a handler of its own.
    pub(crate) fn scope_completed(&mut self, step: &Step<'_, '_>, id: ScopeId, node: NodeId, parent: Option<ScopeId>) {
        if self.compensable.is_empty() {
            return;
        }
        if step.def.compensation_handler(node).is_some() {
            self.compensable.retain(|c| c.scope != Some(id));
        } else {
            for c in self.compensable.iter_mut().filter(|c| c.scope == Some(id)) {
                c.scope = parent;
            }
        }
    }

    /// A token reached a compensation throw or end event at `node`: the handlers of what
    /// completed in its scope (of `activity` only, when it names one) run, newest first.
    pub(crate) fn compensate(
        &mut self,
        step: &mut Step<'_, '_>,
        token: u32,
        activity: Option<NodeId>,
        wait: bool,
    ) -> Result<(), Fail> {
        let (node, scope) = (self.tokens[&token].node, self.tokens[&token].scope);
        let def = step.def;
        // What was canceled with its scope is not undone.
        self.compensable.retain(|c| c.scope.is_none_or(|s| self.scopes.contains_key(&s)));
        let mut undone = Vec::new();
        self.compensable.retain(|c| {
            let ours = c.scope == scope && activity.is_none_or(|a| a == c.node);
            if ours {
                undone.push(c.node);
            }
            !ours
        });
        undone.reverse();
        let end = matches!(def.node(node).kind, NodeKind::EndEvent(_));
        let handlers: Vec<NodeId> = undone.iter().filter_map(|n| def.compensation_handler(*n)).collect();
        let Some((&first, rest)) = handlers.split_first() else {
            self.passed(step, node);
            return if end { self.end_compensation(step, token) } else { self.leave(step, token) };
        };
        let mut rec = self.new_record(step, node, None);
        let activities: Vec<Value> = undone.iter().map(|n| def.node(*n).id.clone().into()).collect();
        rec.params = Some(json!({"compensating": activities}));
        let waiting = if wait || end {
            self.wait(step, token, rec);
            Some(token)
        } else {
            self.emit_closed(step, rec, TaskStatus::Completed, None, None);
            None
        };
        self.compensating.push(Compensating { scope, current: first, next: rest.to_vec(), waiting });
        let t = self.spawn(first, scope);
        step.ready.push_back(t);
        if waiting.is_none() {
            self.leave(step, token)?;
        }
        Ok(())
    }

    /// The handler of compensation `i` is done: the next starts, or the throw goes on.
    fn next_handler(&mut self, step: &mut Step<'_, '_>, i: usize) {
        let run = &mut self.compensating[i];
        if !run.next.is_empty() {
            run.current = run.next.remove(0);
            let (node, scope) = (run.current, run.scope);
            let t = self.spawn(node, scope);
            step.ready.push_back(t);
            return;
        }
        let run = self.compensating.remove(i);
        let Some(token) = run.waiting.filter(|t| self.tokens.contains_key(t)) else { return };
        if let Some(record) = self.tokens[&token].wait.clone() {
            self.close_record(step, &record, TaskStatus::Completed, None, None);
        }
        let end = matches!(step.def.node(self.tokens[&token].node).kind, NodeKind::EndEvent(_));
        let done = if end {
            self.set_wait(token, None);
            self.end_compensation(step, token)
        } else {
            self.resume(step, token);
            Ok(())
        };
        if let Err(fail) = done {
            let node = self.tokens.get(&token).map(|t| t.node);
            if let Some(node) = node {
                self.fail_at(step, node, fail);
            } else {
                self.fail(fail.0);
            }
        }
    }

    /// A compensation end event's token ends, as a none end event's does.
    fn end_compensation(&mut self, step: &mut Step<'_, '_>, token: u32) -> Result<(), Fail> {
        let Some(t) = self.drop_token(token) else { return Ok(()) };
        if t.scope.is_none() {
            self.end_element = Some(step.def.node(t.node).id.clone());
        }
        self.check_scope_done(step, t.scope)
    }
}
