//! BPMN 2.0 XML (plain, `activiti:`, `flowable:`, `camunda:` and `flowstone:` extensions)
//! into [`Definition`]s.

use crate::diagram::{Bounds, Diagram, Edge, Point, Shape};
use crate::error::ModelError;
use crate::event::Trigger;
use crate::ir::{
    Definition, EndKind, Flow, FlowId, MAX_SUBPROCESS_DEPTH, MiOutput, MultiInstance, Node, NodeId, NodeKind,
    OutputParam, StoneSpec, UserTaskSpec,
};
use crate::timer::{Schedule, TimerDef, TimerKind, TimerTime, parse_instant};
use flowstone_expr::Expression;
use roxmltree::{Document, Node as XmlNode};
use std::collections::HashMap;

mod call;
mod compensation;
mod event_gateway;
mod form;
mod implicit_start;
mod link;
mod listeners;
mod script;

const BPMN_NS: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";
const BPMNDI_NS: &str = "http://www.omg.org/spec/BPMN/20100524/DI";
/// The namespace of Flowstone's own extension attributes (`flowstone:stone`, `flowstone:namespace`)
/// and elements (`flowstone:output`).
pub const FLOWSTONE_NS: &str = "http://flowstone.dev/bpmn";
/// Extension namespaces whose attributes mean the same thing (`flowable:expression`, …).
const ENGINE_NS: [&str; 4] =
    ["http://flowable.org/bpmn", "http://activiti.org/bpmn", "http://camunda.org/schema/1.0/bpmn", FLOWSTONE_NS];

/// Elements inside a process that carry no execution semantics and are kept out of the graph
/// (a subprocess's `incoming` and `outgoing` repeat what its sequence flows say).
const DECORATION: [&str; 16] = [
    "incoming",
    "outgoing",
    "documentation",
    "extensionElements",
    "textAnnotation",
    "association",
    "group",
    "dataObject",
    "dataObjectReference",
    "dataStoreReference",
    "laneSet",
    "ioSpecification",
    "property",
    "dataInputAssociation",
    "dataOutputAssociation",
    "category",
];

/// Parses every executable process of a BPMN document.
///
/// # Errors
/// A [`ModelError`] for malformed XML, a document that is not BPMN, no executable process,
/// an element outside the supported subset (naming it, its id and its line), a dangling
/// flow reference or a malformed expression.
pub fn parse_bpmn(xml: &str) -> Result<Vec<Definition>, ModelError> {
    let doc = Document::parse(xml).map_err(|e| ModelError::new(format!("malformed XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "definitions" || root.tag_name().namespace() != Some(BPMN_NS) {
        return Err(ModelError::at(
            root,
            format!("not a BPMN 2.0 document: the root element must be <definitions> in namespace {BPMN_NS}"),
        ));
    }
    let codes = |tag: &str, attr: &str| -> HashMap<&str, &str> {
        root.children()
            .filter(|n| is_bpmn(*n, tag))
            .filter_map(|n| Some((n.attribute("id")?, n.attribute(attr).unwrap_or_default())))
            .collect()
    };
    let errors = codes("error", "errorCode");
    let escalations = codes("escalation", "escalationCode");
    let events = Events::of(root)?;
    let processes: Vec<_> = root.children().filter(|n| is_bpmn(*n, "process")).collect();
    if processes.is_empty() {
        return Err(ModelError::at(root, "the document has no <process>"));
    }
    // Processes marked non-executable are skipped beside executable ones (a partner pool in a
    // collaboration); a document with no executable process at all is deployed whole, so that
    // models drawn for documentation (the flag is a modeler's default) still load and run.
    let executable: Vec<_> = processes.iter().filter(|p| p.attribute("isExecutable") != Some("false")).collect();
    let executable = if executable.is_empty() { processes.iter().collect() } else { executable };
    let diagram = parse_diagram(root);
    executable
        .into_iter()
        .map(|process| {
            let mut builder = Builder {
                errors: &errors,
                escalations: &escalations,
                events: &events,
                nodes: Vec::new(),
                flows: Vec::new(),
                index: HashMap::new(),
                drawn: process.attribute("isExecutable") != Some("true"),
            };
            let start = builder.scope(*process, None)?;
            let key = process
                .attribute("id")
                .ok_or_else(|| ModelError::at(*process, "a process needs an id: it is the model key"))?;
            let ids: std::collections::HashSet<&str> = builder
                .nodes
                .iter()
                .map(|n| n.id.as_str())
                .chain(builder.flows.iter().map(|f| f.id.as_str()))
                .collect();
            let start_id = builder.nodes[start as usize].id.as_str();
            let start_el =
                process.children().find(|c| is_bpmn(*c, "startEvent") && c.attribute("id") == Some(start_id));
            let initiator = start_el.and_then(|el| ext(el, "initiator")).map(str::to_owned);
            let start_form = start_el.map(form::form_properties).transpose()?.unwrap_or_default();
            Ok(Definition {
                key: key.to_owned(),
                initiator,
                start_form,
                name: process.attribute("name").map(str::to_owned),
                start,
                timer_start: builder
                    .nodes
                    .iter()
                    .position(|n| matches!(n.kind, NodeKind::TimerStart(_)) && n.scope.is_none())
                    .map(|i| i as NodeId),
                outputs: output_template(*process)?,
                constants: Vec::new(),
                diagram: Diagram {
                    shapes: diagram.shapes.iter().filter(|s| ids.contains(s.element.as_str())).cloned().collect(),
                    edges: diagram.edges.iter().filter(|e| ids.contains(e.element.as_str())).cloned().collect(),
                },
                event_subprocesses: (0..builder.nodes.len() as NodeId)
                    .filter(|n| matches!(builder.nodes[*n as usize].kind, NodeKind::EventSubProcess { .. }))
                    .collect(),
                listeners: listeners::listeners(*process)?,
                event_starts: (0..builder.nodes.len() as NodeId)
                    .filter(|n| {
                        let node = &builder.nodes[*n as usize];
                        matches!(node.kind, NodeKind::EventStart(_)) && node.scope.is_none()
                    })
                    .collect(),
                nodes: builder.nodes,
                flows: builder.flows,
            })
        })
        .collect()
}

/// The `<message>` and `<signal>` elements of a document, by id: (name, the message's
/// correlation key or whether the signal stays in its instance).
struct Events {
    messages: HashMap<String, (String, Option<Expression>)>,
    signals: HashMap<String, (String, bool)>,
}

/// Zeebe's namespace: a message's `<zeebe:subscription correlationKey="=…">`.
const ZEEBE_NS: &str = "http://camunda.org/schema/zeebe/1.0";

impl Events {
    fn of(root: XmlNode<'_, '_>) -> Result<Events, ModelError> {
        let mut events = Events { messages: HashMap::new(), signals: HashMap::new() };
        for el in root.children().filter(|n| is_bpmn(*n, "message") || is_bpmn(*n, "signal")) {
            let Some(id) = el.attribute("id") else { continue };
            let name = el.attribute("name").unwrap_or(id).to_owned();
            if el.tag_name().name() == "signal" {
                events.signals.insert(id.to_owned(), (name, ext(el, "scope") == Some("processInstance")));
            } else {
                events.messages.insert(id.to_owned(), (name, correlation_key(el)?));
            }
        }
        Ok(events)
    }
}

/// A correlation key an element gives: `flowstone:correlationKey="${…}"` (or another engine's
/// namespace), or a Zeebe subscription's `correlationKey="=…"`, whose FEEL is read as an
/// expression of ours (a variable or a path, as most models write it).
fn correlation_key(el: XmlNode<'_, '_>) -> Result<Option<Expression>, ModelError> {
    if let Some(text) = ext(el, "correlationKey") {
        return expr(el, "correlation key", text).map(Some);
    }
    let zeebe =
        el.descendants().find(|n| n.tag_name().namespace() == Some(ZEEBE_NS) && n.tag_name().name() == "subscription");
    match zeebe.and_then(|z| z.attribute("correlationKey")) {
        Some(text) => Expression::parse_bare(text.strip_prefix('=').unwrap_or(text))
            .map(Some)
            .map_err(|e| ModelError::at(el, format!("malformed correlation key expression: {e}"))),
        None => Ok(None),
    }
}

/// The id a reference names: as written, else without its namespace prefix (`tns:newInvoice`).
fn resolve<'m, T>(map: &'m HashMap<String, T>, reference: &str) -> Option<&'m T> {
    map.get(reference).or_else(|| map.get(reference.rsplit_once(':')?.1))
}

fn is_bpmn(node: XmlNode<'_, '_>, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(BPMN_NS)
}

/// An extension attribute in any engine namespace (`flowable:topic`, `camunda:topic`, …).
fn ext<'a>(node: XmlNode<'a, '_>, name: &str) -> Option<&'a str> {
    ENGINE_NS.iter().find_map(|ns| node.attribute((*ns, name)))
}

/// A boolean extension attribute, false when absent.
fn flag(el: XmlNode<'_, '_>, name: &str) -> Result<bool, ModelError> {
    match ext(el, name) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ModelError::at(el, format!("`{name}` is true or false, not `{other}`"))),
    }
}

fn expr(node: XmlNode<'_, '_>, what: &str, text: &str) -> Result<Expression, ModelError> {
    Expression::parse(text).map_err(|e| ModelError::at(node, format!("malformed {what} expression: {e}")))
}

fn opt_expr(node: XmlNode<'_, '_>, what: &str, text: Option<&str>) -> Result<Option<Expression>, ModelError> {
    text.map(|t| expr(node, what, t)).transpose()
}

fn child<'a, 'i>(node: XmlNode<'a, 'i>, name: &str) -> Option<XmlNode<'a, 'i>> {
    node.children().find(|c| is_bpmn(*c, name))
}

fn text_of(node: XmlNode<'_, '_>) -> String {
    node.descendants().filter(|n| n.is_text()).filter_map(|n| n.text()).collect::<String>().trim().to_owned()
}

struct Builder<'e> {
    errors: &'e HashMap<&'e str, &'e str>,
    /// Escalation id → escalation code.
    escalations: &'e HashMap<&'e str, &'e str>,
    events: &'e Events,
    nodes: Vec<Node>,
    flows: Vec<Flow>,
    /// Element id → node, per scope (ids are unique per document, but flows must stay in scope).
    index: HashMap<String, NodeId>,
    /// The process is not marked executable (`isExecutable="true"`): drawn for documentation,
    /// its service tasks need not say how they run, and pass.
    drawn: bool,
}

impl Builder<'_> {
    /// Builds the nodes and flows of a process or subprocess; returns its none start event
    /// (an event subprocess's: its timer or error start event).
    fn scope(&mut self, container: XmlNode<'_, '_>, scope: Option<NodeId>) -> Result<NodeId, ModelError> {
        let event_sub = scope.is_some_and(|n| matches!(self.nodes[n as usize].kind, NodeKind::EventSubProcess { .. }));
        let depth = std::iter::successors(scope, |n| self.nodes[*n as usize].scope).count();
        if depth > MAX_SUBPROCESS_DEPTH {
            return Err(ModelError::at(
                container,
                format!("subprocesses nest deeper than {MAX_SUBPROCESS_DEPTH} levels"),
            ));
        }
        if event_sub && !container.children().any(|c| is_bpmn(c, "startEvent")) {
            return Err(ModelError::at(container, "no start event: an event subprocess needs its start event"));
        }
        let mut pending_flows = Vec::new();
        let mut attachments = Vec::new();
        let mut starts = Vec::new();
        let mut timer_starts = Vec::new();
        let mut event_starts = Vec::new();
        let mut subprocesses = Vec::new();
        for el in container.children().filter(XmlNode::is_element) {
            let ns = el.tag_name().namespace();
            if ns != Some(BPMN_NS) {
                continue; // foreign extension elements outside extensionElements carry no semantics for us
            }
            let tag = el.tag_name().name();
            if DECORATION.contains(&tag) || tag == "multiInstanceLoopCharacteristics" {
                continue;
            }
            if tag == "sequenceFlow" {
                pending_flows.push(el);
                continue;
            }
            let kind = self.node_kind(el)?;
            let node_id = self.nodes.len() as NodeId;
            // No flow can name a node without an id; one no flow names (an event subprocess)
            // gets one, as Flowable gives it.
            let id = match el.attribute("id") {
                Some(id) => id.to_owned(),
                None if matches!(kind, NodeKind::EventSubProcess { .. }) => format!("{tag}-{}", node_id + 1),
                None => return Err(ModelError::at(el, "a flow node needs an id")),
            };
            if self.index.insert(id.clone(), node_id).is_some() {
                return Err(ModelError::at(el, format!("duplicate id `{id}`")));
            }
            match kind {
                NodeKind::StartEvent if event_sub => {
                    return Err(ModelError::at(
                        el,
                        "an event subprocess starts at a timer, error, message or signal start event",
                    ));
                }
                NodeKind::StartEvent => starts.push(node_id),
                NodeKind::TimerStart(_) | NodeKind::ErrorStart { .. } | NodeKind::EventStart(_) if event_sub => {
                    starts.push(node_id);
                }
                NodeKind::EventStart(_) if scope.is_some() => {
                    return Err(ModelError::at(
                        el,
                        "a message or signal start event belongs to a process or an event subprocess, not to an embedded subprocess",
                    ));
                }
                NodeKind::EventStart(ref trigger) if matches!(**trigger, Trigger::Condition { .. }) => {
                    return Err(ModelError::at(
                        el,
                        "a conditional start event belongs to an event subprocess: a condition is read in a running instance, and a process has none before it starts",
                    ));
                }
                NodeKind::EventStart(_) => event_starts.push(node_id),
                NodeKind::TimerStart(_) if scope.is_some() => {
                    return Err(ModelError::at(
                        el,
                        "a timer start event belongs to a process or an event subprocess, not to an embedded subprocess",
                    ));
                }
                NodeKind::ErrorStart { .. } => {
                    return Err(ModelError::at(el, "an error start event belongs to an event subprocess"));
                }
                NodeKind::TimerStart(_) => timer_starts.push(node_id),
                _ => {}
            }
            if tag == "subProcess" {
                subprocesses.push((node_id, el));
            }
            if tag == "boundaryEvent" {
                attachments.push((node_id, el));
            }
            let pos = el.document().text_pos_at(el.range().start);
            self.nodes.push(Node {
                id: id.clone(),
                name: el.attribute("name").map(str::to_owned),
                kind,
                scope,
                incoming: Vec::new(),
                outgoing: Vec::new(),
                multi: multi_instance(el, self.drawn)?,
                line: pos.row,
                options: None,
                boundaries: Vec::new(),
                listeners: listeners::listeners(el)?,
            });
        }
        for (node_id, el) in subprocesses {
            let start = self.scope(el, Some(node_id))?;
            self.nodes[node_id as usize].kind = match self.nodes[node_id as usize].kind {
                NodeKind::EventSubProcess { .. } => {
                    let start_el = el.children().find(|c| is_bpmn(*c, "startEvent"));
                    let interrupting = start_el.and_then(|s| s.attribute("isInterrupting")) != Some("false");
                    if !interrupting
                        && matches!(self.nodes[start as usize].kind, NodeKind::ErrorStart { escalation: false, .. })
                    {
                        return Err(ModelError::at(
                            el,
                            "an error start event always interrupts (isInterrupting=\"false\")",
                        ));
                    }
                    NodeKind::EventSubProcess { start, interrupting }
                }
                _ => NodeKind::SubProcess { start, locals: Vec::new() },
            };
        }
        for (node_id, el) in attachments {
            let target = el.attribute("attachedToRef").unwrap_or_default();
            let activity = self
                .index
                .get(target)
                .copied()
                .filter(|n| self.nodes[*n as usize].scope == scope)
                .filter(|n| is_activity(&self.nodes[*n as usize].kind))
                .ok_or_else(|| {
                    ModelError::at(el, format!("attachedToRef `{target}` names no activity in the same scope"))
                })?;
            match &mut self.nodes[node_id as usize].kind {
                NodeKind::ErrorBoundary { attached_to, .. } => *attached_to = activity,
                NodeKind::TimerBoundary { attached_to, .. }
                | NodeKind::EventBoundary { attached_to, .. }
                | NodeKind::CompensationBoundary { attached_to, .. } => {
                    *attached_to = activity;
                    self.nodes[activity as usize].boundaries.push(node_id);
                }
                _ => {}
            }
        }
        for el in pending_flows {
            self.flow(el, scope)?;
        }
        self.link_flows(container)?;
        self.compensation_links(container)?;
        self.check_defaults(container)?;
        self.check_event_gateways(container)?;
        if let [_, second, ..] = timer_starts[..] {
            let line = self.nodes[second as usize].line;
            return Err(ModelError {
                line: Some(line),
                ..ModelError::at(container, "more than one timer start event")
            });
        }
        match starts.as_slice() {
            [one] => Ok(*one),
            [] if !timer_starts.is_empty() => Ok(timer_starts[0]),
            [] if !event_starts.is_empty() => Ok(event_starts[0]),
            [] => self.implicit_start(container, scope),
            [_, second, ..] => {
                let line = self.nodes[*second as usize].line;
                Err(ModelError { line: Some(line), ..ModelError::at(container, "more than one none start event") })
            }
        }
    }

    fn flow(&mut self, el: XmlNode<'_, '_>, scope: Option<NodeId>) -> Result<(), ModelError> {
        listeners::none_on_flow(el)?;
        let endpoint =
            |attr: &str| -> Result<NodeId, ModelError> {
                let target =
                    el.attribute(attr).ok_or_else(|| ModelError::at(el, format!("a sequence flow needs a {attr}")))?;
                self.index.get(target).copied().filter(|n| self.nodes[*n as usize].scope == scope).ok_or_else(|| {
                    ModelError::at(el, format!("{attr} `{target}` names no flow node in the same scope"))
                })
            };
        let (source, target) = (endpoint("sourceRef")?, endpoint("targetRef")?);
        if [source, target].iter().any(|n| matches!(self.nodes[*n as usize].kind, NodeKind::EventSubProcess { .. })) {
            return Err(ModelError::at(el, "no sequence flow leads into or out of an event subprocess"));
        }
        let condition = match child(el, "conditionExpression") {
            Some(c) => {
                if let Some(lang) = c.attribute("language").filter(|l| !is_juel(l)) {
                    return Err(ModelError::at(
                        c,
                        format!("condition language `{lang}` is not supported; write a ${{...}} expression"),
                    ));
                }
                let text = text_of(c);
                if text.is_empty() {
                    None
                } else {
                    Some(
                        Expression::parse_bare(&text)
                            .map_err(|e| ModelError::at(el, format!("malformed condition: {e}")))?,
                    )
                }
            }
            None => None,
        };
        let id = el.attribute("id").map_or_else(|| format!("flow-{}", self.flows.len() + 1), str::to_owned);
        let flow_id = self.flows.len() as FlowId;
        self.flows.push(Flow { id, source, target, condition });
        self.nodes[source as usize].outgoing.push(flow_id);
        self.nodes[target as usize].incoming.push(flow_id);
        Ok(())
    }

    /// Resolves `default="flowId"` on exclusive and inclusive gateways once the flows exist.
    fn check_defaults(&mut self, container: XmlNode<'_, '_>) -> Result<(), ModelError> {
        for el in container.children().filter(|c| is_bpmn(*c, "exclusiveGateway") || is_bpmn(*c, "inclusiveGateway")) {
            let Some(default) = el.attribute("default") else { continue };
            let node = self.index[el.attribute("id").unwrap_or_default()];
            let flow = self.nodes[node as usize]
                .outgoing
                .iter()
                .copied()
                .find(|f| self.flows[*f as usize].id == default)
                .ok_or_else(|| {
                    ModelError::at(el, format!("default flow `{default}` is not an outgoing flow of this gateway"))
                })?;
            self.nodes[node as usize].kind = match self.nodes[node as usize].kind {
                NodeKind::InclusiveGateway { .. } => NodeKind::InclusiveGateway { default: Some(flow) },
                _ => NodeKind::ExclusiveGateway { default: Some(flow) },
            };
        }
        Ok(())
    }

    /// The code an `errorEventDefinition` names: the `errorCode` of the `<error>` its
    /// `errorRef` refers to (its id when it has no code), else the reference itself.
    fn error_code(&self, definition: XmlNode<'_, '_>) -> Option<String> {
        code(definition.attribute("errorRef")?, self.errors)
    }

    /// The code an `escalationEventDefinition` names, as [`Builder::error_code`] does.
    fn escalation_code(&self, definition: XmlNode<'_, '_>) -> Option<String> {
        code(definition.attribute("escalationRef")?, self.escalations)
    }

    /// What a message or signal event definition names; none for other definitions.
    fn trigger(&self, el: XmlNode<'_, '_>, definition: XmlNode<'_, '_>) -> Result<Option<Trigger>, ModelError> {
        Ok(match definition.tag_name().name() {
            "messageEventDefinition" => Some(self.message(el, definition.attribute("messageRef"), definition)?),
            "signalEventDefinition" => {
                let reference = definition.attribute("signalRef");
                let (name, instance_only) = match reference.and_then(|r| resolve(&self.events.signals, r)) {
                    Some((name, scope)) => (name.clone(), *scope),
                    None => (reference.map_or_else(|| event_name(el), str::to_owned), false),
                };
                Some(Trigger::Signal { name, instance_only })
            }
            "conditionalEventDefinition" => Some(condition(definition)?),
            _ => None,
        })
    }

    /// The message `reference` names (as Flowable does, a reference to no `<message>` is the
    /// message's name; no reference: the event's name), with the correlation key the event or
    /// else the message gives.
    fn message(
        &self,
        el: XmlNode<'_, '_>,
        reference: Option<&str>,
        definition: XmlNode<'_, '_>,
    ) -> Result<Trigger, ModelError> {
        let own = match correlation_key(definition)? {
            Some(key) => Some(key),
            None if definition != el => correlation_key(el)?,
            None => None,
        };
        let (name, correlation) = match reference.and_then(|r| resolve(&self.events.messages, r)) {
            Some((name, key)) => (name.clone(), own.or_else(|| key.clone())),
            None => (reference.map_or_else(|| event_name(el), str::to_owned), own),
        };
        Ok(Trigger::Message { name, correlation })
    }

    fn node_kind(&self, el: XmlNode<'_, '_>) -> Result<NodeKind, ModelError> {
        let tag = el.tag_name().name();
        let definitions: Vec<_> =
            el.children().filter(|c| c.is_element() && c.tag_name().name().ends_with("EventDefinition")).collect();
        if let Some(trigger) = definitions.first().map(|d| self.trigger(el, *d)).transpose()?.flatten() {
            return event_kind(el, tag, Box::new(trigger));
        }
        if let Some(d) = definitions.first().copied() {
            match (d.tag_name().name(), tag) {
                ("timerEventDefinition", _) => return timer_event(el, tag, d),
                ("compensateEventDefinition", _) => return compensation::compensation_event(el, tag, d),
                ("linkEventDefinition", "intermediateThrowEvent" | "intermediateCatchEvent") => {
                    return link::link_event(el, d);
                }
                ("escalationEventDefinition", "intermediateThrowEvent") => {
                    return Ok(NodeKind::EscalationThrow { code: self.escalation_code(d) });
                }
                _ => {}
            }
        }
        Ok(match tag {
            "intermediateThrowEvent" if definitions.is_empty() => NodeKind::Throw { trigger: None, send_task: false },
            "receiveTask" => NodeKind::EventCatch {
                trigger: el.attribute("messageRef").map(|r| self.message(el, Some(r), el)).transpose()?.map(Box::new),
                receive_task: true,
            },
            "sendTask" => send_task(el, self)?,
            "startEvent" => match definitions.first() {
                None => NodeKind::StartEvent,
                Some(d) if d.tag_name().name() == "errorEventDefinition" => {
                    NodeKind::ErrorStart { code: self.error_code(*d), escalation: false }
                }
                Some(d) if d.tag_name().name() == "escalationEventDefinition" => {
                    NodeKind::ErrorStart { code: self.escalation_code(*d), escalation: true }
                }
                Some(d) => {
                    return Err(ModelError::at(
                        el,
                        format!(
                            "start events with <{}> are not supported yet; only none, timer, error, escalation, message and signal start events",
                            d.tag_name().name()
                        ),
                    ));
                }
            },
            "endEvent" => match definitions.first() {
                None => NodeKind::EndEvent(EndKind::None),
                Some(d) if d.tag_name().name() == "terminateEventDefinition" => NodeKind::EndEvent(EndKind::Terminate),
                Some(d) if d.tag_name().name() == "errorEventDefinition" => {
                    NodeKind::EndEvent(EndKind::Error { code: self.error_code(*d) })
                }
                Some(d) if d.tag_name().name() == "escalationEventDefinition" => {
                    NodeKind::EndEvent(EndKind::Escalation { code: self.escalation_code(*d) })
                }
                Some(d) => {
                    return Err(ModelError::at(
                        el,
                        format!("end events with <{}> are not supported yet", d.tag_name().name()),
                    ));
                }
            },
            "boundaryEvent" => match definitions.first() {
                Some(d) if d.tag_name().name() == "errorEventDefinition" => NodeKind::ErrorBoundary {
                    attached_to: NodeId::MAX,
                    code: self.error_code(*d),
                    escalation: false,
                    interrupting: true,
                },
                Some(d) if d.tag_name().name() == "escalationEventDefinition" => NodeKind::ErrorBoundary {
                    attached_to: NodeId::MAX,
                    code: self.escalation_code(*d),
                    escalation: true,
                    interrupting: el.attribute("cancelActivity") != Some("false"),
                },
                Some(d) => {
                    return Err(ModelError::at(
                        el,
                        format!(
                            "boundary events with <{}> are not supported yet; only timer, error, escalation, message and signal boundary events",
                            d.tag_name().name()
                        ),
                    ));
                }
                None => return Err(ModelError::at(el, "a boundary event needs an event definition")),
            },
            "exclusiveGateway" => NodeKind::ExclusiveGateway { default: None },
            "inclusiveGateway" => NodeKind::InclusiveGateway { default: None },
            "eventBasedGateway" => event_gateway::event_gateway(el)?,
            "parallelGateway" => NodeKind::ParallelGateway,
            "task" | "manualTask" => NodeKind::Task,
            "serviceTask" => service_task(el, self.drawn)?,
            "scriptTask" => script::script_task(el)?,
            "callActivity" => call::call_activity(el)?,
            "userTask" => NodeKind::UserTask(Box::new(user_task(el)?)),
            "subProcess" if el.attribute("triggeredByEvent") == Some("true") => {
                NodeKind::EventSubProcess { start: NodeId::MAX, interrupting: true }
            }
            "subProcess" => NodeKind::SubProcess { start: 0, locals: Vec::new() },
            other => {
                return Err(ModelError::at(
                    el,
                    format!("<{other}> is not supported yet (see the README for the supported BPMN subset)"),
                ));
            }
        })
    }
}

/// The code of the declaration `reference` names (its id when it has no code), else the
/// reference itself.
fn code(reference: &str, declared: &HashMap<&str, &str>) -> Option<String> {
    Some(match declared.get(reference) {
        Some(code) if !code.is_empty() => (*code).to_owned(),
        _ => reference.to_owned(),
    })
}

/// The name of a message or signal an event refers to none of: the event's name, else its id.
fn event_name(el: XmlNode<'_, '_>) -> String {
    el.attribute("name").filter(|n| !n.trim().is_empty()).or(el.attribute("id")).unwrap_or_default().to_owned()
}

/// The condition of a `<conditionalEventDefinition>`, in the language flow conditions are in.
fn condition(definition: XmlNode<'_, '_>) -> Result<Trigger, ModelError> {
    let el = child(definition, "condition")
        .ok_or_else(|| ModelError::at(definition, "a conditional event needs a <condition>"))?;
    if let Some(lang) = el.attribute("language").filter(|l| !is_juel(l)) {
        return Err(ModelError::at(
            el,
            format!("condition language `{lang}` is not supported; write a ${{...}} expression"),
        ));
    }
    let text = text_of(el);
    if text.is_empty() {
        return Err(ModelError::at(el, "the condition of a conditional event is empty"));
    }
    let condition =
        Expression::parse_bare(&text).map_err(|e| ModelError::at(el, format!("malformed condition: {e}")))?;
    Ok(Trigger::Condition { condition })
}

/// The node of an event that waits for or sends a message or signal, or waits for a condition.
fn event_kind(el: XmlNode<'_, '_>, tag: &str, trigger: Box<Trigger>) -> Result<NodeKind, ModelError> {
    let condition = matches!(*trigger, Trigger::Condition { .. });
    Ok(match tag {
        "intermediateThrowEvent" | "endEvent" if condition => {
            return Err(ModelError::at(
                el,
                format!("a <{tag}> cannot throw a condition: conditional events only catch"),
            ));
        }
        "intermediateCatchEvent" => NodeKind::EventCatch { trigger: Some(trigger), receive_task: false },
        "boundaryEvent" => NodeKind::EventBoundary {
            attached_to: NodeId::MAX,
            trigger,
            interrupting: el.attribute("cancelActivity") != Some("false"),
        },
        "startEvent" => NodeKind::EventStart(trigger),
        "intermediateThrowEvent" => NodeKind::Throw { trigger: Some(trigger), send_task: false },
        "endEvent" => NodeKind::EndEvent(EndKind::Throw(trigger)),
        _ => {
            return Err(ModelError::at(
                el,
                format!("<{tag}> cannot hold a message, signal or conditional event definition"),
            ));
        }
    })
}

/// Whether a boundary event may be attached to a node of this kind.
fn is_activity(kind: &NodeKind) -> bool {
    match kind {
        NodeKind::Task
        | NodeKind::ExpressionTask { .. }
        | NodeKind::JavaScriptTask { .. }
        | NodeKind::StoneTask(_)
        | NodeKind::UserTask(_)
        | NodeKind::Call(_)
        | NodeKind::SubProcess { .. } => true,
        NodeKind::EventCatch { receive_task, .. } => *receive_task,
        NodeKind::Throw { send_task, .. } => *send_task,
        _ => false,
    }
}

/// A `<sendTask>`: sends the message its `messageRef` names (none: sends nothing, as a
/// documentation model's send task does); one that needs an implementation of an engine
/// (a mail or HTTP type, a Java class) is refused, naming it.
fn send_task(el: XmlNode<'_, '_>, builder: &Builder<'_>) -> Result<NodeKind, ModelError> {
    for attr in ["type", "class", "delegateExpression", "expression"] {
        if let Some(value) = ext(el, attr) {
            return Err(ModelError::at(
                el,
                format!(
                    "a send task with {attr} `{value}` needs its engine's implementation; send a message with messageRef"
                ),
            ));
        }
    }
    Ok(NodeKind::Throw {
        trigger: el.attribute("messageRef").map(|r| builder.message(el, Some(r), el)).transpose()?.map(Box::new),
        send_task: true,
    })
}

/// Reads a timer event definition: one of `timeDate`, `timeDuration` and `timeCycle`, whose
/// text is an expression (`${…}`) or a time of its kind (see [`Schedule::parse`]).
fn timer(event: XmlNode<'_, '_>, definition: XmlNode<'_, '_>) -> Result<TimerDef, ModelError> {
    let times: Vec<_> = [TimerKind::Date, TimerKind::Duration, TimerKind::Cycle]
        .into_iter()
        .filter_map(|kind| definition.children().find(|c| is_bpmn(*c, kind.element())).map(|c| (kind, c)))
        .collect();
    let [(kind, time)] = times[..] else {
        return Err(ModelError::at(
            event,
            "a <timerEventDefinition> needs exactly one of <timeDate>, <timeDuration> and <timeCycle>",
        ));
    };
    let text = time.text().unwrap_or_default().trim();
    let what = format!("{} of <{}>", kind.element(), event.tag_name().name());
    if text.is_empty() {
        return Err(ModelError::at(time, format!("{what} is empty: write a time of its kind, or ${{…}}")));
    }
    let time_text = if text.contains("${") || text.contains("#{") {
        TimerTime::Expr(expr(time, &what, text)?)
    } else {
        Schedule::parse(kind, text).map_err(|e| ModelError::at(time, format!("{what}: {e}")))?;
        TimerTime::Fixed(text.to_owned())
    };
    let end =
        match ext(time, "endDate") {
            Some(end) => Some(parse_instant(end).ok_or_else(|| {
                ModelError::at(time, format!("endDate `{end}` of {what} is not an ISO-8601 date-time"))
            })?),
            None => None,
        };
    Ok(TimerDef { kind, time: time_text, end })
}

fn is_juel(lang: &str) -> bool {
    let l = lang.to_ascii_lowercase();
    l.contains("juel") || l.contains("xpath") || l.contains("tformalexpression") || l.is_empty()
}

/// The variable an expression's or script's value is set as.
fn result_variable(el: XmlNode<'_, '_>) -> Option<String> {
    ext(el, "resultVariable").or_else(|| ext(el, "resultVariableName")).map(str::to_owned)
}

fn service_task(el: XmlNode<'_, '_>, drawn: bool) -> Result<NodeKind, ModelError> {
    let id = el.attribute("id").unwrap_or_default();
    if let Some(stone) = ext(el, "stone") {
        let namespace = ext(el, "namespace").unwrap_or(id);
        return Ok(NodeKind::StoneTask(StoneSpec::named(stone, namespace)));
    }
    match ext(el, "type") {
        Some("external-worker" | "external") => {
            let topic = ext(el, "topic")
                .ok_or_else(|| ModelError::at(el, "an external task needs a topic: it names the stone that runs it"))?;
            let namespace = ext(el, "namespace").unwrap_or(id);
            let compensated = flag(el, "compensate")?;
            return Ok(NodeKind::StoneTask(StoneSpec { compensated, ..StoneSpec::named(topic, namespace) }));
        }
        Some(other) => {
            return Err(ModelError::at(
                el,
                format!("service task type `{other}` is not supported; use an expression or a stone"),
            ));
        }
        None => {}
    }
    if let Some(text) = ext(el, "expression") {
        return Ok(NodeKind::ExpressionTask {
            expression: expr(el, "service task", text)?,
            result_variable: result_variable(el),
            script: false,
        });
    }
    if ext(el, "class").is_some() || ext(el, "delegateExpression").is_some() {
        return Err(ModelError::at(
            el,
            "service tasks backed by a Java class or delegate cannot run here; make it a stone (flowable:type=\"external-worker\" flowable:topic=…)",
        ));
    }
    if drawn {
        // Drawn for documentation (the MIWG's models, bpmn.io's default): the task is passed.
        return Ok(NodeKind::Task);
    }
    Err(ModelError::at(
        el,
        "the service task has no implementation: give it an expression, an external-worker topic or a flowstone:stone (in a process not marked isExecutable=\"true\", it passes as a plain task)",
    ))
}

fn user_task(el: XmlNode<'_, '_>) -> Result<UserTaskSpec, ModelError> {
    let description = child(el, "documentation").map(text_of).filter(|t| !t.trim().is_empty());
    let mut spec = UserTaskSpec {
        name: opt_expr(el, "name", el.attribute("name").filter(|n| n.contains("${") || n.contains("#{")))?,
        description: opt_expr(el, "documentation", description.as_deref())?,
        assignee: opt_expr(el, "assignee", ext(el, "assignee"))?,
        owner: opt_expr(el, "owner", ext(el, "owner"))?,
        candidate_users: opt_expr(el, "candidateUsers", ext(el, "candidateUsers"))?,
        candidate_groups: opt_expr(el, "candidateGroups", ext(el, "candidateGroups"))?,
        form_key: ext(el, "formKey").map(str::to_owned),
        form: form::form_properties(el)?,
        priority: opt_expr(el, "priority", ext(el, "priority"))?,
        due_date: opt_expr(el, "dueDate", ext(el, "dueDate"))?,
        category: ext(el, "category").map(str::to_owned),
    };
    for role in el.children().filter(|c| is_bpmn(*c, "potentialOwner") || is_bpmn(*c, "humanPerformer")) {
        let text = role.descendants().find(|c| is_bpmn(*c, "formalExpression")).map(text_of).unwrap_or_default();
        if role.tag_name().name() == "humanPerformer" {
            spec.assignee = Some(expr(role, "humanPerformer", &text)?);
        } else if let Some(groups) = text.strip_prefix("group(").and_then(|t| t.strip_suffix(')')) {
            spec.candidate_groups = Some(expr(role, "potentialOwner", groups)?);
        } else {
            let users = text.strip_prefix("user(").and_then(|t| t.strip_suffix(')')).unwrap_or(&text);
            spec.candidate_users = Some(expr(role, "potentialOwner", users)?);
        }
    }
    Ok(spec)
}

fn multi_instance(el: XmlNode<'_, '_>, drawn: bool) -> Result<Option<MultiInstance>, ModelError> {
    if let Some(std_loop) = el.children().find(|c| is_bpmn(*c, "standardLoopCharacteristics")) {
        return standard_loop(std_loop, drawn).map(Some);
    }
    let Some(mi) = el.children().find(|c| is_bpmn(*c, "multiInstanceLoopCharacteristics")) else { return Ok(None) };
    let cardinality = child(mi, "loopCardinality").map(text_of).filter(|t| !t.is_empty());
    let collection = ext(mi, "collection")
        .map(str::to_owned)
        .or_else(|| child(mi, "loopDataInputRef").map(text_of))
        .filter(|t| !t.is_empty());
    let data_item =
        |tag: &str| child(mi, tag).and_then(|i| i.attribute("name").or(i.attribute("id"))).map(str::to_owned);
    let element_variable = ext(mi, "elementVariable").map(str::to_owned).or_else(|| data_item("inputDataItem"));
    let output = match child(mi, "loopDataOutputRef").map(text_of).filter(|t| !t.is_empty()) {
        Some(collection) => {
            let item = data_item("outputDataItem").or_else(|| element_variable.clone()).ok_or_else(|| {
                ModelError::at(
                    mi,
                    "loopDataOutputRef needs an outputDataItem: the variable each instance sets its result in",
                )
            })?;
            Some(MiOutput { collection, item })
        }
        None => None,
    };
    if cardinality.is_none() && collection.is_none() {
        return Err(ModelError::at(mi, "multi-instance needs a loopCardinality or a collection"));
    }
    let as_expr = |what: &str, text: &str| {
        Expression::parse_bare(text).map_err(|e| ModelError::at(mi, format!("malformed {what}: {e}")))
    };
    Ok(Some(MultiInstance {
        sequential: mi.attribute("isSequential") == Some("true"),
        cardinality: cardinality.map(|t| as_expr("loopCardinality", &t)).transpose()?,
        collection: collection.map(|t| as_expr("collection", &t)).transpose()?,
        element_variable,
        completion_condition: child(mi, "completionCondition")
            .map(text_of)
            .filter(|t| !t.is_empty())
            .map(|t| as_expr("completionCondition", &t))
            .transpose()?,
        output,
        loop_while: None,
        test_before: false,
    }))
}

/// A `<standardLoopCharacteristics>`: the activity runs again while its `loopCondition` holds
/// after a run (before each run too with `testBefore="true"`), at most `loopMaximum` times.
/// Drawn for documentation with neither, it runs once.
fn standard_loop(el: XmlNode<'_, '_>, drawn: bool) -> Result<MultiInstance, ModelError> {
    let condition = match child(el, "loopCondition") {
        Some(c) => {
            if let Some(lang) = c.attribute("language").filter(|l| !is_juel(l)) {
                return Err(ModelError::at(
                    c,
                    format!("loop condition language `{lang}` is not supported; write a ${{...}} expression"),
                ));
            }
            Some(text_of(c)).filter(|t| !t.is_empty())
        }
        None => None,
    };
    let maximum = el.attribute("loopMaximum").map(str::trim).filter(|m| !m.is_empty());
    let maximum = maximum.or((drawn && condition.is_none()).then_some("1"));
    if let Some(m) = maximum.filter(|m| m.parse::<u32>().is_err()) {
        return Err(ModelError::at(el, format!("loopMaximum `{m}` is not a whole number ≥ 0")));
    }
    if condition.is_none() && maximum.is_none() {
        return Err(ModelError::at(
            el,
            "a standard loop needs a loopCondition or a loopMaximum: without either it would never end (in a process not marked isExecutable=\"true\", it runs once)",
        ));
    }
    let as_expr = |what: &str, text: &str| {
        Expression::parse_bare(text).map_err(|e| ModelError::at(el, format!("malformed {what}: {e}")))
    };
    Ok(MultiInstance {
        sequential: true,
        cardinality: maximum.map(|m| as_expr("loopMaximum", m)).transpose()?,
        collection: None,
        element_variable: None,
        completion_condition: None,
        output: None,
        loop_while: condition.map(|c| as_expr("loopCondition", &c)).transpose()?,
        test_before: el.attribute("testBefore") == Some("true"),
    })
}

/// `<extensionElements><flowstone:output name="ip" value="${machine.ip}"/></extensionElements>`.
fn output_template(process: XmlNode<'_, '_>) -> Result<Vec<OutputParam>, ModelError> {
    let Some(ext_el) = process.children().find(|c| is_bpmn(*c, "extensionElements")) else { return Ok(Vec::new()) };
    ext_el
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "output" && c.tag_name().namespace() == Some(FLOWSTONE_NS))
        .map(|o| {
            let name = o.attribute("name").ok_or_else(|| ModelError::at(o, "an output needs a name"))?;
            let value = o.attribute("value").map_or_else(|| text_of(o), str::to_owned);
            Ok(OutputParam { name: name.to_owned(), value: expr(o, "output", &value)? })
        })
        .collect()
}

fn parse_diagram(root: XmlNode<'_, '_>) -> Diagram {
    let num = |n: XmlNode<'_, '_>, a: &str| n.attribute(a).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let mut diagram = Diagram::default();
    for n in root.descendants().filter(|n| n.tag_name().namespace() == Some(BPMNDI_NS)) {
        let Some(element) = n.attribute("bpmnElement") else { continue };
        match n.tag_name().name() {
            "BPMNShape" => {
                if let Some(b) = n.children().find(|c| c.tag_name().name() == "Bounds") {
                    diagram.shapes.push(Shape {
                        element: element.to_owned(),
                        bounds: Bounds {
                            x: num(b, "x"),
                            y: num(b, "y"),
                            width: num(b, "width"),
                            height: num(b, "height"),
                        },
                    });
                }
            }
            "BPMNEdge" => diagram.edges.push(Edge {
                element: element.to_owned(),
                waypoints: n
                    .children()
                    .filter(|c| c.tag_name().name() == "waypoint")
                    .map(|w| Point { x: num(w, "x"), y: num(w, "y") })
                    .collect(),
            }),
            _ => {}
        }
    }
    diagram
}

#[cfg(test)]
mod tests;

/// A timer event: where it may stand decides what it becomes.
fn timer_event(el: XmlNode<'_, '_>, tag: &str, definition: XmlNode<'_, '_>) -> Result<NodeKind, ModelError> {
    let timer = Box::new(timer(el, definition)?);
    Ok(match tag {
        "intermediateCatchEvent" => NodeKind::TimerCatch(timer),
        "startEvent" if matches!(timer.time, TimerTime::Expr(_)) => {
            return Err(ModelError::at(
                el,
                "a timer start event's time cannot be an expression: there is no instance to read it in yet",
            ));
        }
        "startEvent" => NodeKind::TimerStart(timer),
        "boundaryEvent" => NodeKind::TimerBoundary {
            attached_to: NodeId::MAX,
            timer,
            interrupting: el.attribute("cancelActivity") != Some("false"),
        },
        _ => {
            return Err(ModelError::at(
                el,
                format!("timer events (<{tag}> with <timerEventDefinition>) are read but not run yet"),
            ));
        }
    })
}
