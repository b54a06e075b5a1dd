//! BPMN errors: thrown by error end events and by stones (`bpmnError`), caught by error
//! boundary events on the activity that threw or on a subprocess around it, or by error event
//! subprocesses in a scope around it. Escalations travel the same way to escalation boundary
//! events and event subprocesses, which may leave the work running (non-interrupting); one
//! that nothing catches changes nothing.

use crate::instance::{Instance, Step};
use crate::scope::{ScopeId, ScopeKind};
use flowstone_model::{Definition, NodeId, NodeKind};

/// Where a BPMN error comes from.
pub(crate) enum Thrower {
    /// The activity this token stands at (a stone task whose stone reported the error).
    Token(u32),
    /// An error end event inside this scope (its token is gone).
    Scope(Option<ScopeId>),
}

/// What catches an error: an error boundary event (with what it ends, and the scope the flow
/// goes on in), or an event subprocess with an error start event in the scope it runs in.
pub(crate) enum Catcher {
    Boundary { boundary: NodeId, ending: Ending, parent: Option<ScopeId>, interrupting: bool },
    EventSub { esp: NodeId, start: NodeId, scope: Option<ScopeId> },
}

/// What ends when an activity catches an error: the token at it, or the scope it runs.
pub(crate) enum Ending {
    Token(u32),
    Scope(ScopeId),
}

/// A place an error may be caught, innermost first.
enum Candidate {
    /// An error boundary event of this activity.
    Boundary(NodeId, Ending, Option<ScopeId>),
    /// An error event subprocess directly in this container (none: the process), run in
    /// this scope.
    EventSub(Option<NodeId>, Option<ScopeId>),
}

impl Instance {
    /// Catches a BPMN error if something catches `code` (see [`Catcher`]); returns whether
    /// something did.
    pub(crate) fn catch_error(&mut self, step: &mut Step<'_, '_>, thrower: Thrower, code: Option<&str>) -> bool {
        match self.catcher(step.def, thrower, code) {
            Some(catcher) => {
                self.caught(step, catcher);
                true
            }
            None => false,
        }
    }

    /// What catches `code`: an error boundary event on the activity that threw, then an error
    /// event subprocess in its scope, then a boundary event on the subprocess around it, and
    /// so on outwards. An error thrown in an event subprocess is not caught by the event
    /// subprocesses beside it.
    pub(crate) fn catcher(&self, def: &Definition, thrower: Thrower, code: Option<&str>) -> Option<Catcher> {
        self.catcher_of(def, thrower, code, false)
    }

    /// An escalation with `code` thrown in `scope` reaches what catches it, if anything does
    /// (see [`Instance::catcher`]).
    pub(crate) fn escalate(&mut self, step: &mut Step<'_, '_>, scope: Option<ScopeId>, code: Option<&str>) {
        if let Some(catcher) = self.catcher_of(step.def, Thrower::Scope(scope), code, true) {
            self.caught(step, catcher);
        }
    }

    /// What catches an error (an escalation, with `escalation`) of `code`.
    fn catcher_of(&self, def: &Definition, thrower: Thrower, code: Option<&str>, escalation: bool) -> Option<Catcher> {
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut scope = match thrower {
            Thrower::Scope(scope) => scope,
            Thrower::Token(token) => {
                let t = self.tokens.get(&token)?;
                let (node, at) = (t.node, t.scope);
                match self.item_of(at, node) {
                    // One item of a multi-instance activity threw: the whole activity ends.
                    Some(body) => {
                        let up = self.scopes[&body].parent;
                        candidates.push(Candidate::Boundary(node, Ending::Scope(body), up));
                        up
                    }
                    None => {
                        candidates.push(Candidate::Boundary(node, Ending::Token(token), at));
                        at
                    }
                }
            }
        };
        let mut beside_event_sub = false;
        loop {
            if !beside_event_sub {
                match scope {
                    None => candidates.push(Candidate::EventSub(None, None)),
                    Some(id) if self.scopes[&id].kind == ScopeKind::SubProcess => {
                        candidates.push(Candidate::EventSub(Some(self.scopes[&id].node), scope));
                    }
                    Some(_) => {}
                }
            }
            let Some(id) = scope else { break };
            let sc = &self.scopes[&id];
            let (node, parent) = (sc.node, sc.parent);
            beside_event_sub = false;
            match sc.kind {
                ScopeKind::SubProcess if matches!(def.node(node).kind, NodeKind::EventSubProcess { .. }) => {
                    beside_event_sub = true;
                    scope = parent;
                }
                ScopeKind::SubProcess => match self.item_of(parent, node) {
                    Some(body) => {
                        let up = self.scopes[&body].parent;
                        candidates.push(Candidate::Boundary(node, Ending::Scope(body), up));
                        scope = up;
                    }
                    None => {
                        candidates.push(Candidate::Boundary(node, Ending::Scope(id), parent));
                        scope = parent;
                    }
                },
                ScopeKind::MiItem { .. } | ScopeKind::MiBody { .. } => scope = parent,
            }
        }
        let catches = |c: &Option<String>| c.is_none() || c.as_deref() == code;
        candidates.into_iter().find_map(|candidate| match candidate {
            Candidate::Boundary(activity, ending, parent) => {
                let (boundary, _) =
                    def.error_boundaries(activity, escalation).find(|(_, c)| c.is_none() || *c == code)?;
                let interrupting =
                    !matches!(def.node(boundary).kind, NodeKind::ErrorBoundary { interrupting: false, .. });
                Some(Catcher::Boundary { boundary, ending, parent, interrupting })
            }
            Candidate::EventSub(container, scope) => def.event_subprocesses_in(container).find_map(|esp| {
                let NodeKind::EventSubProcess { start, .. } = def.node(esp).kind else { return None };
                matches!(&def.node(start).kind, NodeKind::ErrorStart { code, escalation: e } if *e == escalation && catches(code))
                    .then_some(Catcher::EventSub { esp, start, scope })
            }),
        })
    }

    /// Ends what caught the error ends — the activity with everything running in it, or for
    /// an event subprocess everything else in its scope — and goes on from the catching event.
    pub(crate) fn caught(&mut self, step: &mut Step<'_, '_>, catcher: Catcher) {
        match catcher {
            Catcher::Boundary { boundary, ending, parent, interrupting } => {
                match ending {
                    _ if !interrupting => {}
                    Ending::Token(token) => {
                        self.drop_token(token);
                    }
                    Ending::Scope(scope) => self.remove_scope_trees(step, vec![scope]),
                }
                let token = self.spawn(boundary, parent);
                step.ready.push_back(token);
            }
            Catcher::EventSub { esp, start, scope } => {
                if !matches!(step.def.node(esp).kind, NodeKind::EventSubProcess { interrupting: false, .. }) {
                    self.clear_scope(step, scope);
                }
                self.start_event_subprocess(step, esp, start, scope);
            }
        }
    }

    /// The multi-instance body of `node` when `scope` is one of its items.
    fn item_of(&self, scope: Option<ScopeId>, node: NodeId) -> Option<ScopeId> {
        let sc = self.scopes.get(&scope?)?;
        (sc.node == node && matches!(sc.kind, ScopeKind::MiItem { .. })).then_some(sc.parent).flatten()
    }
}
