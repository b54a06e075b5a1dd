//! `<eventBasedGateway>`: what may follow one, checked once the flows exist.

use super::{Builder, is_bpmn};
use crate::error::ModelError;
use crate::ir::NodeKind;
use roxmltree::Node as XmlNode;

/// Reads an event-based gateway; an instantiating one (a process started by whichever event
/// comes first) is refused, naming the attribute.
pub(super) fn event_gateway(el: XmlNode<'_, '_>) -> Result<NodeKind, ModelError> {
    if el.attribute("instantiate") == Some("true") {
        return Err(ModelError::at(
            el,
            "an instantiating event-based gateway (instantiate=\"true\") is not supported: start the process with a message or signal start event",
        ));
    }
    if el.attribute("eventGatewayType") == Some("Parallel") {
        return Err(ModelError::at(
            el,
            "a parallel event-based gateway (eventGatewayType=\"Parallel\") is not supported",
        ));
    }
    Ok(NodeKind::EventGateway)
}

impl Builder<'_> {
    /// Every flow out of an event-based gateway leads, without a condition, to an intermediate
    /// message, signal or timer catch event or a receive task with nothing else leading in.
    pub(super) fn check_event_gateways(&self, container: XmlNode<'_, '_>) -> Result<(), ModelError> {
        for el in container.children().filter(|c| is_bpmn(*c, "eventBasedGateway")) {
            let node = &self.nodes[self.index[el.attribute("id").unwrap_or_default()] as usize];
            if node.outgoing.is_empty() {
                return Err(ModelError::at(
                    el,
                    "an event-based gateway needs outgoing flows to the events it waits for",
                ));
            }
            for flow in node.outgoing.iter().map(|f| &self.flows[*f as usize]) {
                let target = &self.nodes[flow.target as usize];
                let waits = matches!(
                    target.kind,
                    NodeKind::TimerCatch(_)
                        | NodeKind::EventCatch { trigger: Some(_), .. }
                        | NodeKind::EventCatch { receive_task: true, .. }
                );
                if flow.condition.is_some() || !waits || target.incoming.len() > 1 {
                    return Err(ModelError::at(
                        el,
                        format!(
                            "flow `{}` of an event-based gateway must lead, without a condition, to a message, signal or timer catch event or a receive task that no other flow leads to; `{}` is not one",
                            flow.id, target.id
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
