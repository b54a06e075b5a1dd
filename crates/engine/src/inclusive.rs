//! Inclusive gateways: a split takes every flow whose condition holds (a flow without one
//! always, the default only when none holds); a join counts the tokens that arrive and goes on
//! once, for all of them, when no token of its scope can reach it any more — so a branch the
//! split did not take, or one that ended elsewhere, is not waited for.

use crate::instance::{Instance, Join, Step};
use crate::scope::ScopeId;
use flowstone_model::{Definition, NodeId, NodeKind};

impl Instance {
    /// A token arrived at inclusive join `node`: it is counted there and waits for the others.
    pub(crate) fn arrive_inclusive(&mut self, token: u32, node: NodeId) {
        let scope = self.tokens[&token].scope;
        self.drop_token(token);
        match self.joins.iter_mut().find(|j| j.scope == scope && j.node == node) {
            Some(join) => join.arrived += 1,
            None => self.joins.push(Join { scope, node, arrived: 1, expected: None }),
        }
    }

    /// Whether an inclusive join holds tokens in `scope` (which is then not done).
    pub(crate) fn inclusive_waiting(&self, def: &Definition, scope: Option<ScopeId>) -> bool {
        self.joins.iter().any(|j| j.scope == scope && is_inclusive(def, j.node))
    }

    /// Sends on the inclusive joins that no token can reach any more, each as one token;
    /// whether one went on.
    pub(crate) fn fire_inclusive_joins(&mut self, step: &mut Step<'_, '_>) -> bool {
        let def = step.def;
        let boundaries = error_boundaries(def);
        let ready: Vec<(Option<ScopeId>, NodeId)> = self
            .joins
            .iter()
            .filter(|j| is_inclusive(def, j.node) && !self.reachable(def, &boundaries, j.scope, j.node))
            .map(|j| (j.scope, j.node))
            .collect();
        for (scope, node) in &ready {
            self.joins.retain(|j| !(j.scope == *scope && j.node == *node));
            let token = self.spawn(*node, *scope);
            if let Err(fail) = self.leave(step, token) {
                self.fail_at(step, *node, fail);
            }
        }
        !ready.is_empty()
    }

    /// Whether some token can still reach `target` in `scope`: from where it stands there (a
    /// token inside a subprocess stands at that subprocess), along flows and boundary events.
    fn reachable(&self, def: &Definition, boundaries: &[Vec<NodeId>], scope: Option<ScopeId>, target: NodeId) -> bool {
        let mut todo: Vec<NodeId> =
            self.tokens.values().filter_map(|t| self.position_in(t.node, t.scope, scope)).collect();
        let mut seen = vec![false; def.nodes.len()];
        while let Some(at) = todo.pop() {
            if at == target {
                return true;
            }
            if std::mem::replace(&mut seen[at as usize], true) {
                continue;
            }
            let node = def.node(at);
            todo.extend(node.outgoing.iter().map(|f| def.flow(*f).target));
            todo.extend(node.boundaries.iter().chain(&boundaries[at as usize]).copied());
        }
        false
    }

    /// Where a token at `node` in scope `at` stands in `scope`: its node, or the activity in
    /// `scope` whose subprocess or multi-instance body holds it; none when it is elsewhere.
    fn position_in(&self, node: NodeId, at: Option<ScopeId>, scope: Option<ScopeId>) -> Option<NodeId> {
        let (mut node, mut at) = (node, at);
        while at != scope {
            let s = self.scopes.get(&at?)?;
            (node, at) = (s.node, s.parent);
        }
        Some(node)
    }
}

fn is_inclusive(def: &Definition, node: NodeId) -> bool {
    matches!(def.node(node).kind, NodeKind::InclusiveGateway { .. })
}

/// The error boundary events of each node, by node.
fn error_boundaries(def: &Definition) -> Vec<Vec<NodeId>> {
    let mut by_node = vec![Vec::new(); def.nodes.len()];
    for (i, node) in def.nodes.iter().enumerate() {
        if let NodeKind::ErrorBoundary { attached_to, .. } = node.kind
            && let Some(list) = by_node.get_mut(attached_to as usize)
        {
            list.push(i as NodeId);
        }
    }
    by_node
}
