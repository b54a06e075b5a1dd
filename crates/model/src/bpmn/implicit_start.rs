//! A process or subprocess without a start event (BPMN allows it, and bpmn.io and the MIWG
//! models draw it so): it begins at every activity, gateway or event that no flow leads to,
//! as if a start event led to each. An empty one (a collapsed subprocess drawn for
//! documentation) ends as soon as it begins.

use super::Builder;
use crate::error::ModelError;
use crate::ir::{Flow, FlowId, Node, NodeId, NodeKind};
use roxmltree::Node as XmlNode;

impl Builder<'_> {
    /// A none start event for `container` (of scope `scope`), with a flow to each of its
    /// nodes that nothing leads to.
    pub(super) fn implicit_start(
        &mut self,
        container: XmlNode<'_, '_>,
        scope: Option<NodeId>,
    ) -> Result<NodeId, ModelError> {
        // A compensation handler begins only when a compensation is thrown.
        let handlers: Vec<NodeId> = self
            .nodes
            .iter()
            .filter_map(|n| match n.kind {
                NodeKind::CompensationBoundary { handler, .. } => Some(handler),
                _ => None,
            })
            .collect();
        let entries: Vec<NodeId> = (0..self.nodes.len() as NodeId)
            .filter(|n| {
                let node = &self.nodes[*n as usize];
                node.scope == scope && node.incoming.is_empty() && begins(&node.kind) && !handlers.contains(n)
            })
            .collect();
        let empty = !self.nodes.iter().any(|n| n.scope == scope);
        if entries.is_empty() && !empty {
            return Err(ModelError::at(
                container,
                "no start event, and nothing it could begin at: every element has an incoming flow",
            ));
        }
        let owner = container.attribute("id").unwrap_or("process");
        let mut id = format!("{owner}-start");
        while self.index.contains_key(&id) {
            id.push('_');
        }
        let start = self.nodes.len() as NodeId;
        self.index.insert(id.clone(), start);
        self.nodes.push(Node {
            id: id.clone(),
            name: None,
            kind: NodeKind::StartEvent,
            scope,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            multi: None,
            line: container.document().text_pos_at(container.range().start).row,
            options: None,
            boundaries: Vec::new(),
            listeners: Vec::new(),
        });
        for target in entries {
            let flow = self.flows.len() as FlowId;
            self.flows.push(Flow {
                id: format!("{id}-{}", self.nodes[target as usize].id),
                source: start,
                target,
                condition: None,
            });
            self.nodes[start as usize].outgoing.push(flow);
            self.nodes[target as usize].incoming.push(flow);
        }
        Ok(start)
    }
}

/// Whether a node with no incoming flow is where the work begins: not a boundary event, an
/// event subprocess or a start event (which begin otherwise).
fn begins(kind: &NodeKind) -> bool {
    !matches!(
        kind,
        NodeKind::ErrorBoundary { .. }
            | NodeKind::TimerBoundary { .. }
            | NodeKind::EventBoundary { .. }
            | NodeKind::CompensationBoundary { .. }
            | NodeKind::EventSubProcess { .. }
            | NodeKind::StartEvent
            | NodeKind::TimerStart(_)
            | NodeKind::ErrorStart { .. }
            | NodeKind::EventStart(_)
    )
}
