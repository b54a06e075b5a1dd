//! Link events: an `<intermediateThrowEvent>` with a `<linkEventDefinition>` goes on at the
//! `<intermediateCatchEvent>` whose link has the same name in the same scope — a sequence flow
//! drawn as two off-page connectors. The model gives each throw a flow to its catch, so the
//! engine runs links as the flows they stand for.

use super::{Builder, is_bpmn};
use crate::error::ModelError;
use crate::ir::{Flow, FlowId, NodeKind};
use roxmltree::Node as XmlNode;
use std::collections::HashMap;

/// A link throw passes its token on (along the flow to its catch); a link catch passes it on
/// along its own flows.
pub(super) fn link_event(el: XmlNode<'_, '_>, definition: XmlNode<'_, '_>) -> Result<NodeKind, ModelError> {
    if link_name(el, definition).is_none() {
        return Err(ModelError::at(el, "a link event needs a name (on its linkEventDefinition or itself)"));
    }
    Ok(if el.tag_name().name() == "intermediateThrowEvent" {
        NodeKind::Throw { trigger: None, send_task: false }
    } else {
        NodeKind::LinkCatch
    })
}

/// The link's name: its definition's, else the event's.
fn link_name<'a>(el: XmlNode<'a, '_>, definition: XmlNode<'a, '_>) -> Option<&'a str> {
    [definition, el].into_iter().find_map(|n| n.attribute("name")).map(str::trim).filter(|n| !n.is_empty())
}

/// The link events directly in `container`: (event, its name).
fn links<'a, 'i>(container: XmlNode<'a, 'i>, tag: &str) -> Vec<(XmlNode<'a, 'i>, &'a str)> {
    container
        .children()
        .filter(|c| is_bpmn(*c, tag))
        .filter_map(|el| {
            let definition = el.children().find(|d| is_bpmn(*d, "linkEventDefinition"))?;
            Some((el, link_name(el, definition)?))
        })
        .collect()
}

impl Builder<'_> {
    /// Gives each link throw in `container` its flow to the catch of its name, checking that
    /// a name has one catch, that every throw finds it, and that no flow leaves a throw or
    /// reaches a catch.
    pub(super) fn link_flows(&mut self, container: XmlNode<'_, '_>) -> Result<(), ModelError> {
        let mut catches = HashMap::new();
        for (el, name) in links(container, "intermediateCatchEvent") {
            let node = self.index[el.attribute("id").unwrap_or_default()];
            if !self.nodes[node as usize].incoming.is_empty() {
                return Err(ModelError::at(el, "no sequence flow leads into a link catch event: link throw events do"));
            }
            if catches.insert(name, node).is_some() {
                return Err(ModelError::at(el, format!("two link catch events in one scope are named `{name}`")));
            }
        }
        for (el, name) in links(container, "intermediateThrowEvent") {
            let source = self.index[el.attribute("id").unwrap_or_default()];
            if !self.nodes[source as usize].outgoing.is_empty() {
                return Err(ModelError::at(
                    el,
                    "no sequence flow leaves a link throw event: it goes on at its catch event",
                ));
            }
            let target = *catches.get(name).ok_or_else(|| {
                ModelError::at(el, format!("no link catch event in the same scope is named `{name}`"))
            })?;
            let flow_id = self.flows.len() as FlowId;
            let id = format!("link-{}", self.nodes[source as usize].id);
            self.flows.push(Flow { id, source, target, condition: None });
            self.nodes[source as usize].outgoing.push(flow_id);
            self.nodes[target as usize].incoming.push(flow_id);
        }
        Ok(())
    }
}
