//! Compensation: a `<boundaryEvent>` with a `<compensateEventDefinition>` names, through an
//! `<association>`, the activity (`isForCompensation="true"`) that undoes the one it is
//! attached to; an `<intermediateThrowEvent>` or `<endEvent>` with one runs the handlers of
//! what completed in its scope (or of its `activityRef` only). Checked once the scope's nodes
//! and flows exist.

use super::{Builder, is_activity, is_bpmn};
use crate::error::ModelError;
use crate::ir::{EndKind, NodeId, NodeKind};
use roxmltree::Node as XmlNode;

/// The node of an event with a compensate event definition (its references resolved later).
pub(super) fn compensation_event(
    el: XmlNode<'_, '_>,
    tag: &str,
    definition: XmlNode<'_, '_>,
) -> Result<NodeKind, ModelError> {
    let wait = match definition.attribute("waitForCompletion") {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ModelError::at(definition, format!("`waitForCompletion` is true or false, not `{other}`")));
        }
    };
    Ok(match tag {
        "boundaryEvent" => NodeKind::CompensationBoundary { attached_to: NodeId::MAX, handler: NodeId::MAX },
        "intermediateThrowEvent" => NodeKind::CompensationThrow { activity: None, wait },
        "endEvent" => NodeKind::EndEvent(EndKind::Compensation { activity: None }),
        "startEvent" => {
            return Err(ModelError::at(
                el,
                "compensation event subprocesses are not supported: attach a compensation boundary event to the activity to undo",
            ));
        }
        _ => return Err(ModelError::at(el, format!("<{tag}> cannot hold a compensate event definition"))),
    })
}

impl Builder<'_> {
    /// Links each compensation boundary event in `container` to its handler, resolves the
    /// `activityRef` of compensation throws, and checks that handlers stand outside the flow.
    pub(super) fn compensation_links(&mut self, container: XmlNode<'_, '_>) -> Result<(), ModelError> {
        for el in container.children().filter(|c| c.is_element() && c.attribute("isForCompensation") == Some("true")) {
            let Some(&node) = el.attribute("id").and_then(|id| self.index.get(id)) else { continue };
            let n = &self.nodes[node as usize];
            if !n.incoming.is_empty() || !n.outgoing.is_empty() {
                return Err(ModelError::at(
                    el,
                    "a compensation handler (isForCompensation=\"true\") has no sequence flows: its compensation boundary event's association leads to it",
                ));
            }
        }
        for el in container.children().filter(|c| is_bpmn(*c, "boundaryEvent")) {
            let node = self.index[el.attribute("id").unwrap_or_default()];
            if !matches!(self.nodes[node as usize].kind, NodeKind::CompensationBoundary { .. }) {
                continue;
            }
            if !self.nodes[node as usize].outgoing.is_empty() {
                return Err(ModelError::at(
                    el,
                    "no sequence flow leaves a compensation boundary event: an association leads to its handler",
                ));
            }
            let handler = self.handler_of(container, el)?;
            if let NodeKind::CompensationBoundary { handler: h, .. } = &mut self.nodes[node as usize].kind {
                *h = handler;
            }
        }
        for el in container.children().filter(|c| is_bpmn(*c, "intermediateThrowEvent") || is_bpmn(*c, "endEvent")) {
            let Some(definition) = el.children().find(|d| is_bpmn(*d, "compensateEventDefinition")) else { continue };
            let Some(reference) = definition.attribute("activityRef") else { continue };
            let activity = self
                .index
                .get(reference)
                .copied()
                .filter(|n| {
                    self.nodes[*n as usize].scope
                        == self.nodes[self.index[el.attribute("id").unwrap_or_default()] as usize].scope
                })
                .filter(|n| is_activity(&self.nodes[*n as usize].kind))
                .ok_or_else(|| {
                    ModelError::at(definition, format!("activityRef `{reference}` names no activity in the same scope"))
                })?;
            let node = self.index[el.attribute("id").unwrap_or_default()];
            match &mut self.nodes[node as usize].kind {
                NodeKind::CompensationThrow { activity: a, .. }
                | NodeKind::EndEvent(EndKind::Compensation { activity: a }) => *a = Some(activity),
                _ => {}
            }
        }
        Ok(())
    }

    /// The handler the association from compensation boundary event `el` leads to.
    fn handler_of(&self, container: XmlNode<'_, '_>, el: XmlNode<'_, '_>) -> Result<NodeId, ModelError> {
        let id = el.attribute("id").unwrap_or_default();
        let target = container
            .children()
            .filter(|c| is_bpmn(*c, "association"))
            .find(|a| a.attribute("sourceRef") == Some(id))
            .and_then(|a| a.attribute("targetRef"))
            .ok_or_else(|| {
                ModelError::at(
                    el,
                    "a compensation boundary event needs an association to its handler (an activity with isForCompensation=\"true\")",
                )
            })?;
        let handler = self.index.get(target).copied().filter(|n| is_activity(&self.nodes[*n as usize].kind));
        let marked = container
            .children()
            .find(|c| c.is_element() && c.attribute("id") == Some(target))
            .is_some_and(|c| c.attribute("isForCompensation") == Some("true"));
        match handler {
            Some(h) if marked => Ok(h),
            _ => Err(ModelError::at(
                el,
                format!(
                    "the association of a compensation boundary event leads to `{target}`, which is no activity of the same scope with isForCompensation=\"true\""
                ),
            )),
        }
    }
}
