//! `flowable:executionListener` / `flowable:taskListener` (and Activiti's and Camunda's) whose
//! work is an expression: run on the element's start and end, the process's start and end,
//! a user task's create and complete. Listeners that run a Java class, a delegate expression
//! or a script are refused naming it — a Rust engine cannot run them, and skipping them would
//! silently drop behaviour the modeler relies on.

use super::{ENGINE_NS, is_bpmn};
use crate::error::ModelError;
use crate::ir::{Listener, ListenerEvent};
use flowstone_expr::Expression;
use roxmltree::Node as XmlNode;

/// The listener elements among `el`'s extension elements.
fn listener_elements<'a, 'i>(el: XmlNode<'a, 'i>) -> impl Iterator<Item = XmlNode<'a, 'i>> {
    el.children().filter(|c| is_bpmn(*c, "extensionElements")).flat_map(|x| x.children()).filter(|c| {
        c.is_element()
            && matches!(c.tag_name().name(), "executionListener" | "taskListener")
            && c.tag_name().namespace().is_some_and(|ns| ENGINE_NS.contains(&ns))
    })
}

/// The listeners of a flow node or process.
pub(super) fn listeners(el: XmlNode<'_, '_>) -> Result<Vec<Listener>, ModelError> {
    let user_task = el.tag_name().name() == "userTask";
    listener_elements(el)
        .map(|l| match l.tag_name().name() {
            "taskListener" if !user_task => Err(ModelError::at(l, "a task listener belongs to a user task")),
            _ => listener(l),
        })
        .collect()
}

/// A sequence flow's `take` listeners are not run: refused, naming them.
pub(super) fn none_on_flow(el: XmlNode<'_, '_>) -> Result<(), ModelError> {
    match listener_elements(el).next() {
        Some(l) => Err(ModelError::at(
            l,
            "listeners on sequence flows (event `take`) are not run: put an expression listener on the element the flow leads to",
        )),
        None => Ok(()),
    }
}

fn listener(l: XmlNode<'_, '_>) -> Result<Listener, ModelError> {
    let task = l.tag_name().name() == "taskListener";
    for attr in ["class", "delegateExpression"] {
        if let Some(what) = l.attribute(attr) {
            return Err(ModelError::at(
                l,
                format!(
                    "a listener with {attr} `{what}` runs Java code, which Flowstone cannot run: write it as expression=\"${{…}}\" (execution.setVariable sets variables) or model the work as a stone task"
                ),
            ));
        }
    }
    let Some(text) = l.attribute("expression") else {
        let kind = l.attribute("type").unwrap_or("script");
        return Err(ModelError::at(
            l,
            format!("a {kind} listener is not run: only listeners with expression=\"${{…}}\" are"),
        ));
    };
    let event = match (task, l.attribute("event").unwrap_or_default()) {
        (false, "start") => ListenerEvent::Start,
        (false, "end") => ListenerEvent::End,
        (true, "create") => ListenerEvent::Create,
        (true, "complete") => ListenerEvent::Complete,
        (_, other) => {
            let known = if task { "create and complete" } else { "start and end" };
            return Err(ModelError::at(l, format!("listener event `{other}` is not run; the events run are {known}")));
        }
    };
    let expression =
        Expression::parse(text).map_err(|e| ModelError::at(l, format!("malformed listener expression: {e}")))?;
    Ok(Listener { event, expression })
}
