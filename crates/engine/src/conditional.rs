//! Conditional events: an intermediate conditional catch event holds its token until its
//! condition holds; a conditional boundary event takes the flow on from its activity, and a
//! conditional start event starts its event subprocess, when theirs holds while what they are
//! attached to runs.
//!
//! A condition is a wait like a message's (an open record, kind and condition in its params),
//! read by the instance itself instead of delivered from outside: every time the instance has
//! moved as far as it can — after a start, a completed task, variables set through an API, a
//! stone's outputs — each waiting condition is read again, so a change of variables is seen
//! in the step that made it. One that holds is delivered as an event would be. One that does
//! not interrupt (a non-interrupting boundary event or event subprocess) comes once each time
//! its condition turns from not holding to holding, not again at every step while it holds.
//!
//! A condition that cannot be read yet (a variable not set, a type mismatch) does not hold:
//! modelers write `${approved}` for a variable a later task sets, and failing the instance
//! for reading it early would punish a well-formed model.

use crate::event::{Wait, node_trigger};
use crate::instance::{Instance, Step};
use crate::scope::ScopeId;
use crate::timer::Owner;
use flowstone_model::{Definition, NodeKind, Trigger};
use serde_json::Map;

/// Whether a wait is for a condition (it has no subscription outside the instance).
pub(crate) fn is_condition(def: &Definition, wait: &Wait) -> bool {
    matches!(node_trigger(&def.node(wait.node).kind), Some(Trigger::Condition { .. }))
}

impl Instance {
    /// Reads every waiting condition again and delivers those that came; whether one did.
    pub(crate) fn fire_conditions(&mut self, step: &mut Step<'_, '_>) -> bool {
        if self.waits.is_empty() {
            return false;
        }
        let def = step.def;
        let mut came = Vec::new();
        for (id, wait) in &self.waits {
            let Some(Trigger::Condition { condition }) = node_trigger(&def.node(wait.node).kind) else { continue };
            let Some(scope) = self.wait_scope(id, wait) else { continue };
            let holds = self.eval_bool(condition, scope).unwrap_or(false);
            if holds || wait.held {
                came.push((id.clone(), holds));
            }
        }
        let mut fired = false;
        for (id, holds) in came {
            let Some(wait) = self.waits.get_mut(&id) else { continue };
            if stays_open(def, wait) && std::mem::replace(&mut wait.held, holds) {
                continue;
            }
            if holds {
                // A wait that an earlier one's delivery ended is gone by now.
                fired |= self.deliver(step, &id, Map::new()).is_ok();
            }
        }
        fired
    }

    /// The scope a waiting condition is read in: the token's at a catch event, the
    /// activity's run at a boundary event, the scope of an event subprocess's start; none
    /// when what it waits on has ended.
    fn wait_scope(&self, id: &str, wait: &Wait) -> Option<Option<ScopeId>> {
        match wait.owner {
            None => self.token_waiting_on(id).map(|t| self.tokens[&t].scope),
            Some(Owner::Token(t)) => self.tokens.get(&t).map(|t| t.scope),
            Some(Owner::Scope(s)) => self.scopes.contains_key(&s).then_some(Some(s)),
            Some(Owner::Process) => Some(None),
        }
    }
}

/// Whether a wait stays open once its condition came: a boundary event or an event
/// subprocess's start that does not interrupt.
fn stays_open(def: &Definition, wait: &Wait) -> bool {
    match def.node(wait.node).kind {
        NodeKind::EventBoundary { interrupting, .. } => !interrupting,
        NodeKind::EventStart(_) => {
            let esp = def.node(wait.node).scope;
            !esp.is_some_and(|n| matches!(def.node(n).kind, NodeKind::EventSubProcess { interrupting: true, .. }))
        }
        _ => false,
    }
}
