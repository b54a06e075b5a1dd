//! BPMN errors: thrown by error end events and by stones (`bpmnError`), caught by error
//! boundary events on the activity that threw or on a subprocess around it.

use crate::instance::{Instance, Step};
use crate::scope::{ScopeId, ScopeKind};
use flowstone_model::{Definition, NodeId};

/// Where a BPMN error comes from.
pub(crate) enum Thrower {
    /// The activity this token stands at (a stone task whose stone reported the error).
    Token(u32),
    /// An error end event inside this scope (its token is gone).
    Scope(Option<ScopeId>),
}

/// The error boundary event that catches an error, what it ends, and the scope the flow
/// goes on in.
pub(crate) struct Catcher {
    boundary: NodeId,
    ending: Ending,
    parent: Option<ScopeId>,
}

/// What ends when an activity catches an error: the token at it, or the scope it runs.
enum Ending {
    Token(u32),
    Scope(ScopeId),
}

impl Instance {
    /// Catches a BPMN error if an error boundary event catches `code` (see [`Catcher`]);
    /// returns whether one did.
    pub(crate) fn catch_error(&mut self, step: &mut Step<'_, '_>, thrower: Thrower, code: Option<&str>) -> bool {
        match self.catcher(step.def, thrower, code) {
            Some(catcher) => {
                self.caught(step, catcher);
                true
            }
            None => false,
        }
    }

    /// The error boundary event that catches `code`: on the activity that threw, then on
    /// each subprocess around it, innermost first.
    pub(crate) fn catcher(&self, def: &Definition, thrower: Thrower, code: Option<&str>) -> Option<Catcher> {
        let mut candidates: Vec<(NodeId, Ending, Option<ScopeId>)> = Vec::new();
        let mut scope = match thrower {
            Thrower::Scope(scope) => scope,
            Thrower::Token(token) => {
                let t = self.tokens.get(&token)?;
                let (node, at) = (t.node, t.scope);
                match self.item_of(at, node) {
                    // One item of a multi-instance activity threw: the whole activity ends.
                    Some(body) => {
                        let up = self.scopes[&body].parent;
                        candidates.push((node, Ending::Scope(body), up));
                        up
                    }
                    None => {
                        candidates.push((node, Ending::Token(token), at));
                        at
                    }
                }
            }
        };
        while let Some(id) = scope {
            let sc = &self.scopes[&id];
            let (node, parent) = (sc.node, sc.parent);
            match sc.kind {
                ScopeKind::SubProcess => match self.item_of(parent, node) {
                    Some(body) => {
                        let up = self.scopes[&body].parent;
                        candidates.push((node, Ending::Scope(body), up));
                        scope = up;
                    }
                    None => {
                        candidates.push((node, Ending::Scope(id), parent));
                        scope = parent;
                    }
                },
                ScopeKind::MiItem { .. } | ScopeKind::MiBody { .. } => scope = parent,
            }
        }
        candidates.into_iter().find_map(|(activity, ending, parent)| {
            let (boundary, _) = def.error_boundaries(activity).find(|(_, c)| c.is_none() || *c == code)?;
            Some(Catcher { boundary, ending, parent })
        })
    }

    /// Ends the activity that caught the error, with everything running in it, and goes on
    /// from its boundary event.
    pub(crate) fn caught(&mut self, step: &mut Step<'_, '_>, catcher: Catcher) {
        match catcher.ending {
            Ending::Token(token) => {
                self.drop_token(token);
            }
            Ending::Scope(scope) => self.remove_scope_trees(step, vec![scope]),
        }
        let token = self.spawn(catcher.boundary, catcher.parent);
        step.ready.push_back(token);
    }

    /// The multi-instance body of `node` when `scope` is one of its items.
    fn item_of(&self, scope: Option<ScopeId>, node: NodeId) -> Option<ScopeId> {
        let sc = self.scopes.get(&scope?)?;
        (sc.node == node && matches!(sc.kind, ScopeKind::MiItem { .. })).then_some(sc.parent).flatten()
    }
}
