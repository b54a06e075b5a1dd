//! bk-sops / bamboo-engine `pipeline_tree` JSON into the graph IR.
//!
//! A tree holds `start_event`, `end_event`, `activities` (ServiceActivity, SubProcess),
//! `gateways` (ExclusiveGateway, ParallelGateway, ConditionalParallelGateway,
//! ConvergeGateway), `flows` and `constants`. Component codes name stones; `${KEY}`
//! constants become variables named `KEY`; a gateway condition such as
//! `${a} == "1"` is one expression over them. A subprocess's tree comes inline
//! (`pipeline`) or from its `template_id` through the caller's lookup. Trees in bamboo-engine's
//! built form (`data.inputs`, `data.outputs`, `global_outputs`, `params`) are read alike.

use crate::diagram::{Bounds, Diagram, Shape};
use crate::error::ModelError;
use crate::ir::{
    Definition, EndKind, Flow, FlowId, MAX_SUBPROCESS_DEPTH as MAX_DEPTH, Node, NodeId, NodeKind, OutputParam,
    StoneSpec,
};
use crate::template::Template;
use flowstone_expr::Expression;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};

mod built;
mod guards;
mod preview;
mod yaml;

pub use preview::exclude_nodes;
pub use yaml::{YamlTemplate, parse_yaml_templates};

/// Finds the tree of a subprocess's `template_id`.
pub type TemplateLookup<'a> = &'a dyn Fn(&str) -> Option<Value>;

/// Parses a pipeline tree into a definition with model key `key`.
///
/// # Errors
/// A [`ModelError`] naming the node or flow that is wrong: a dangling flow, no start or end
/// event, an unknown node type, a gateway whose branches never converge, a condition or
/// input that does not parse, a subprocess whose template cannot be found.
pub fn parse_pipeline(
    tree: &Value,
    key: &str,
    name: Option<&str>,
    lookup: TemplateLookup<'_>,
) -> Result<Definition, ModelError> {
    let mut b = Builder { nodes: Vec::new(), flows: Vec::new(), index: HashMap::new(), shapes: Vec::new() };
    let (start, constants, outputs) = b.tree(tree, None, lookup, 0)?;
    Ok(Definition {
        key: key.to_owned(),
        name: name.map(str::to_owned),
        nodes: b.nodes,
        flows: b.flows,
        start,
        timer_start: None,
        initiator: None,
        start_form: Vec::new(),
        outputs,
        constants,
        diagram: Diagram { shapes: b.shapes, edges: Vec::new() },
        event_subprocesses: Vec::new(),
        event_starts: Vec::new(),
        listeners: Vec::new(),
    })
}

/// The variable a constant key `${KEY}` stands for.
pub fn constant_variable(key: &str) -> &str {
    key.strip_prefix("${").and_then(|k| k.strip_suffix('}')).unwrap_or(key)
}

fn err(kind: &str, id: &str, message: impl Into<String>) -> ModelError {
    ModelError { element: Some(kind.to_owned()), id: Some(id.to_owned()), ..ModelError::new(message) }
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ModelError> {
    match v {
        Value::Object(m) => Ok(m),
        Value::Null => Err(ModelError::new(format!("the tree has no `{what}`"))),
        _ => Err(ModelError::new(format!("`{what}` must be an object"))),
    }
}

/// An object field that may be missing (read as empty).
fn optional_object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, ModelError> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match v.get(field) {
        None | Some(Value::Null) => Ok(EMPTY.get_or_init(Map::new)),
        Some(other) => object(other, field),
    }
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// A gateway condition (`${a} == "1"`, `${len(x.split(","))} > 2`): each `${…}` becomes a
/// parenthesised part of one expression.
fn condition(source: &str) -> Result<Expression, flowstone_expr::ParseError> {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(open) = rest.find("${") {
        out.push_str(&rest[..open]);
        let body = &rest[open + 2..];
        let Some(close) = closing_brace(body) else { return Expression::parse(source) };
        out.push('(');
        out.push_str(&body[..close]);
        out.push(')');
        rest = &body[close + 1..];
    }
    out.push_str(rest);
    Expression::parse_bare(out.trim()).map_err(|e| flowstone_expr::ParseError { source_text: source.to_owned(), ..e })
}

/// The `}` closing a `${` whose body is `body`, skipping nested braces and strings.
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote = None;
    for (i, c) in body.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '{') => depth += 1,
            (None, '}') if depth == 0 => return Some(i),
            (None, '}') => depth -= 1,
            _ => {}
        }
    }
    None
}

/// A node of the tree before its flows are known.
struct Raw<'a> {
    id: &'a str,
    kind: &'a str,
    value: &'a Value,
    node: NodeId,
}

struct Builder {
    nodes: Vec<Node>,
    flows: Vec<Flow>,
    index: HashMap<String, NodeId>,
    shapes: Vec<Shape>,
}

type Parsed = (NodeId, Vec<(String, Template)>, Vec<OutputParam>);

impl Builder {
    /// Adds one tree's nodes and flows under `scope`; answers its start, constants and outputs.
    fn tree(
        &mut self,
        tree: &Value,
        scope: Option<NodeId>,
        lookup: TemplateLookup<'_>,
        depth: usize,
    ) -> Result<Parsed, ModelError> {
        if depth > MAX_DEPTH {
            return Err(ModelError::new(format!(
                "subprocesses nest deeper than {MAX_DEPTH} levels (a template that includes itself?)"
            )));
        }
        let tree = match tree {
            Value::Object(_) => tree,
            _ => return Err(ModelError::new("a pipeline tree must be a JSON object")),
        };
        let mut raws = Vec::new();
        let start = &tree["start_event"];
        if !start.is_object() {
            return Err(ModelError::new("the tree has no `start_event`"));
        }
        if text(start, "type") != "EmptyStartEvent" {
            return Err(err(text(start, "type"), text(start, "id"), "the start event must be an EmptyStartEvent"));
        }
        let end = &tree["end_event"];
        if !end.is_object() {
            return Err(ModelError::new("the tree has no `end_event`"));
        }
        raws.push((text(start, "id"), "EmptyStartEvent", start));
        raws.push((text(end, "id"), text(end, "type"), end));
        for (field, what) in [("activities", "activities"), ("gateways", "gateways")] {
            for (id, v) in object(&tree[field], what)? {
                let kind = text(v, "type");
                if !text(v, "id").is_empty() && text(v, "id") != id {
                    return Err(err(kind, id, format!("is listed under `{id}` but its id is `{}`", text(v, "id"))));
                }
                raws.push((id.as_str(), kind, v));
            }
        }
        let built = built::constants(tree)?;
        let constants = match &built {
            Some(inputs) => inputs,
            None => optional_object(tree, "constants")?,
        };
        let outputs_of = built::outputs_of(tree, constants)?;
        let mut nodes = Vec::new();
        for (id, kind, value) in raws {
            if id.is_empty() {
                return Err(ModelError::new(format!("a {kind} has no id")));
            }
            let node = self.add_node(id, kind, value, scope, &outputs_of)?;
            nodes.push(Raw { id, kind, value, node });
        }
        let flows = object(&tree["flows"], "flows")?;
        let mut by_id = HashMap::new();
        for (id, f) in flows {
            let endpoint = |field: &str| -> Result<NodeId, ModelError> {
                let target = text(f, field);
                nodes
                    .iter()
                    .find(|n| n.id == target)
                    .map(|n| n.node)
                    .ok_or_else(|| err("flow", id, format!("its {field} `{target}` is no node of this tree")))
            };
            let (source, target) = (endpoint("source")?, endpoint("target")?);
            let flow_id = self.flows.len() as FlowId;
            self.flows.push(Flow { id: id.clone(), source, target, condition: None });
            self.nodes[source as usize].outgoing.push(flow_id);
            self.nodes[target as usize].incoming.push(flow_id);
            by_id.insert(id.as_str(), (flow_id, f));
        }
        for raw in &nodes {
            self.check_listed_flows(raw, &by_id)?;
        }
        for raw in &nodes {
            self.gateway(raw, &by_id)?;
        }
        for raw in &nodes {
            self.check_reachability(raw)?;
        }
        for raw in &nodes {
            if raw.kind == "SubProcess" {
                let sub = subprocess_tree(raw.id, raw.value, lookup)?;
                let (sub_start, sub_constants, _) = self.tree(&sub, Some(raw.node), lookup, depth + 1)?;
                let given = match built::given(raw.value) {
                    Some(values) => object(values, "constants")?,
                    None => optional_object(raw.value, "constants")?,
                };
                let mut locals = Vec::new();
                for (name, default) in sub_constants {
                    let key = format!("${{{name}}}");
                    let value = match given.get(&key).map(|c| c.get("value").unwrap_or(c)) {
                        Some(v) => Template::parse(v)
                            .map_err(|e| err("SubProcess", raw.id, format!("constant `{key}`: {e}")))?,
                        None => default,
                    };
                    locals.push((name, value));
                }
                self.nodes[raw.node as usize].kind = NodeKind::SubProcess { start: sub_start, locals };
            }
        }
        self.locations(tree);
        let mut values = Vec::new();
        // Output constants start at their value too, until their component sets them.
        for (key, c) in constants {
            let value = Template::parse(c.get("value").unwrap_or(&Value::Null))
                .map_err(|e| err("constant", key, format!("its value does not parse: {e}")))?;
            values.push((constant_variable(key).to_owned(), value));
        }
        let mut outputs = Vec::new();
        for key in built::output_keys(tree) {
            let value = Expression::parse(&format!("${{{}}}", constant_variable(key)))
                .map_err(|e| err("output", key, format!("is no constant key: {e}")))?;
            outputs.push(OutputParam { name: key.to_owned(), value });
        }
        Ok((nodes[0].node, values, outputs))
    }

    fn add_node(
        &mut self,
        id: &str,
        kind: &str,
        v: &Value,
        scope: Option<NodeId>,
        outputs_of: &HashMap<String, Vec<(String, String)>>,
    ) -> Result<NodeId, ModelError> {
        let mut options = None;
        let node_kind = match kind {
            "EmptyStartEvent" => NodeKind::StartEvent,
            "EmptyEndEvent" => NodeKind::EndEvent(EndKind::None),
            "ExecutableEndEvent" => NodeKind::EndEvent(EndKind::None),
            "ServiceActivity" => {
                options = Some(Box::new(guards::activity_options(id, v, true)?));
                NodeKind::StoneTask(self.component(id, v, outputs_of)?)
            }
            "SubProcess" => {
                options = Some(Box::new(guards::activity_options(id, v, false)?));
                NodeKind::SubProcess { start: 0, locals: Vec::new() }
            }
            "ExclusiveGateway" => NodeKind::ExclusiveGateway { default: None },
            "ParallelGateway" | "ConditionalParallelGateway" => {
                NodeKind::Fork { conditional: kind == "ConditionalParallelGateway", default: None, converge: 0 }
            }
            "ConvergeGateway" => NodeKind::Converge,
            "" => return Err(err("node", id, "has no `type`")),
            other => {
                return Err(err(
                    other,
                    id,
                    format!(
                        "unknown node type `{other}`; a tree holds EmptyStartEvent, EmptyEndEvent, ServiceActivity, \
                         SubProcess, ExclusiveGateway, ParallelGateway, ConditionalParallelGateway and ConvergeGateway"
                    ),
                ));
            }
        };
        let node_id = self.nodes.len() as NodeId;
        if self.index.insert(id.to_owned(), node_id).is_some() {
            return Err(err(kind, id, "appears twice (a subprocess template used twice keeps its node ids)"));
        }
        let name = text(v, "name");
        self.nodes.push(Node {
            id: id.to_owned(),
            name: (!name.is_empty()).then(|| name.to_owned()),
            kind: node_kind,
            scope,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            multi: None,
            line: 0,
            options,
            boundaries: Vec::new(),
            listeners: Vec::new(),
        });
        Ok(node_id)
    }

    /// A ServiceActivity's component: the stone its code names, its inputs and outputs.
    fn component(
        &self,
        id: &str,
        v: &Value,
        outputs_of: &HashMap<String, Vec<(String, String)>>,
    ) -> Result<StoneSpec, ModelError> {
        let component = &v["component"];
        let code = text(component, "code");
        if code.is_empty() {
            return Err(err("ServiceActivity", id, "has no component code"));
        }
        let mut spec = StoneSpec::named(code, id);
        // Trees exported by bk-sops carry `data` ({key: {hook, value}}); built ones `inputs`.
        let data = component.get("data").or_else(|| component.get("inputs"));
        let mut inputs = Vec::new();
        for (key, input) in data.and_then(Value::as_object).into_iter().flatten() {
            let value = input.get("value").unwrap_or(input);
            let template = Template::parse(value)
                .map_err(|e| err("ServiceActivity", id, format!("input `{key}` does not parse: {e}")))?;
            inputs.push((key.clone(), template));
        }
        spec.inputs = Some(inputs);
        spec.outputs = outputs_of.get(id).cloned().unwrap_or_default();
        Ok(spec)
    }

    /// The flows a node lists as its `incoming` / `outgoing` exist and are the node's.
    fn check_listed_flows(&self, raw: &Raw<'_>, by_id: &HashMap<&str, (FlowId, &Value)>) -> Result<(), ModelError> {
        for (field, own) in [("incoming", "target"), ("outgoing", "source")] {
            let listed: Vec<&str> = match raw.value.get(field) {
                Some(Value::String(s)) if !s.is_empty() => vec![s.as_str()],
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for flow in listed {
                match by_id.get(flow) {
                    None => return Err(err(raw.kind, raw.id, format!("its {field} flow `{flow}` does not exist"))),
                    Some((_, f)) if text(f, own) != raw.id => {
                        return Err(err(
                            raw.kind,
                            raw.id,
                            format!("lists {field} flow `{flow}`, whose {own} is another node"),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Conditions and defaults of exclusive and conditional gateways; forks find their converge.
    fn gateway(&mut self, raw: &Raw<'_>, by_id: &HashMap<&str, (FlowId, &Value)>) -> Result<(), ModelError> {
        let node = &self.nodes[raw.node as usize];
        let outgoing = node.outgoing.clone();
        let (conditional, fork) = match &node.kind {
            NodeKind::ExclusiveGateway { .. } => (true, false),
            NodeKind::Fork { conditional, .. } => (*conditional, true),
            _ => return Ok(()),
        };
        if outgoing.is_empty() {
            return Err(err(raw.kind, raw.id, "has no outgoing flow"));
        }
        let mut default = None;
        if conditional {
            let conditions = raw.value.get("conditions").and_then(Value::as_object);
            let default_flow =
                raw.value.get("default_condition").and_then(|d| d.get("flow_id")).and_then(Value::as_str);
            for f in &outgoing {
                let flow_id = self.flows[*f as usize].id.clone();
                let is_default = by_id.get(flow_id.as_str()).is_some_and(|(_, v)| v["is_default"] == Value::Bool(true))
                    || default_flow == Some(flow_id.as_str());
                if is_default {
                    default = Some(*f);
                    continue;
                }
                let evaluate = conditions.and_then(|c| c.get(&flow_id)).map(|c| text(c, "evaluate"));
                let Some(source) = evaluate.filter(|e| !e.trim().is_empty()) else {
                    return Err(err(raw.kind, raw.id, format!("outgoing flow `{flow_id}` has no condition")));
                };
                let expr = condition(source)
                    .map_err(|e| err(raw.kind, raw.id, format!("condition of flow `{flow_id}` does not parse: {e}")))?;
                self.flows[*f as usize].condition = Some(expr);
            }
        }
        let converge = if fork { Some(self.converge_of(raw)?) } else { None };
        match &mut self.nodes[raw.node as usize].kind {
            NodeKind::ExclusiveGateway { default: d } => *d = default,
            NodeKind::Fork { default: d, converge: c, .. } => {
                *d = default;
                *c = converge.unwrap_or_default();
            }
            _ => {}
        }
        Ok(())
    }

    /// The converge gateway every branch of a fork reaches first: the one the tree names in
    /// `converge_gateway_id`, else the nearest that all branches reach (nested forks are
    /// stepped over through their own converge).
    fn converge_of(&self, raw: &Raw<'_>) -> Result<NodeId, ModelError> {
        if let Some(named) = raw.value.get("converge_gateway_id").and_then(Value::as_str) {
            return match self.index.get(named) {
                Some(n) if matches!(self.nodes[*n as usize].kind, NodeKind::Converge) => Ok(*n),
                _ => Err(err(raw.kind, raw.id, format!("its converge_gateway_id `{named}` is no converge gateway"))),
            };
        }
        self.nested_converge(raw.node, 0)
    }

    /// Converge gateways reachable from `from` with their distance, not walking back through `fork`.
    fn converges_reached(&self, from: NodeId, fork: NodeId, depth: usize) -> Result<Vec<(NodeId, usize)>, ModelError> {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([(from, 1usize)]);
        let mut found = Vec::new();
        while let Some((n, d)) = queue.pop_front() {
            if n == fork || !seen.insert(n) {
                continue;
            }
            let node = &self.nodes[n as usize];
            let next: Vec<NodeId> = match &node.kind {
                NodeKind::Converge => {
                    found.push((n, d));
                    continue;
                }
                // A nested fork's branches go on from its own converge.
                NodeKind::Fork { .. } if depth < MAX_DEPTH => {
                    let inner = self.nested_converge(n, depth)?;
                    self.nodes[inner as usize].outgoing.iter().map(|f| self.flows[*f as usize].target).collect()
                }
                _ => node.outgoing.iter().map(|f| self.flows[*f as usize].target).collect(),
            };
            queue.extend(next.into_iter().map(|m| (m, d + 1)));
        }
        Ok(found)
    }

    /// The nearest converge gateway every branch of `fork` reaches.
    fn nested_converge(&self, fork: NodeId, depth: usize) -> Result<NodeId, ModelError> {
        let node = &self.nodes[fork as usize];
        let branches: Vec<NodeId> = node.outgoing.iter().map(|f| self.flows[*f as usize].target).collect();
        let mut common: Option<Vec<(NodeId, usize)>> = None;
        for branch in branches {
            let reached = self.converges_reached(branch, fork, depth + 1)?;
            common = Some(match common {
                None => reached,
                Some(before) => before
                    .into_iter()
                    .filter_map(|(n, d)| reached.iter().find(|(m, _)| *m == n).map(|(_, e)| (n, d.max(*e))))
                    .collect(),
            });
        }
        common
            .unwrap_or_default()
            .into_iter()
            .min_by_key(|(_, d)| *d)
            .map(|(n, _)| n)
            .ok_or_else(|| err("gateway", &node.id, "its branches never meet at one converge gateway"))
    }

    /// Every node but the start has a way in, every node but the end a way out.
    fn check_reachability(&self, raw: &Raw<'_>) -> Result<(), ModelError> {
        let node = &self.nodes[raw.node as usize];
        let is_start = matches!(node.kind, NodeKind::StartEvent);
        let is_end = matches!(node.kind, NodeKind::EndEvent(_));
        if is_start && !node.incoming.is_empty() {
            return Err(err(raw.kind, raw.id, "the start event has an incoming flow"));
        }
        if !is_start && node.incoming.is_empty() {
            return Err(err(raw.kind, raw.id, "no flow leads here"));
        }
        if !is_end && node.outgoing.is_empty() {
            return Err(err(raw.kind, raw.id, "no flow leaves here"));
        }
        if !matches!(node.kind, NodeKind::ExclusiveGateway { .. } | NodeKind::Fork { .. }) && node.outgoing.len() > 1 {
            return Err(err(raw.kind, raw.id, "only gateways may have more than one outgoing flow"));
        }
        Ok(())
    }

    /// Diagram positions from `location` (bk-sops draws nodes at fixed sizes by type).
    fn locations(&mut self, tree: &Value) {
        for loc in tree.get("location").and_then(Value::as_array).into_iter().flatten() {
            let (width, height) = match text(loc, "type") {
                "tasknode" | "subflow" => (150.0, 54.0),
                "startpoint" | "endpoint" => (42.0, 42.0),
                _ => (32.0, 32.0),
            };
            let number = |field: &str| loc.get(field).and_then(Value::as_f64).unwrap_or_default();
            self.shapes.push(Shape {
                element: text(loc, "id").to_owned(),
                bounds: Bounds { x: number("x"), y: number("y"), width, height },
            });
        }
    }
}

/// For each node, the component outputs that feed `component_outputs` constants.
fn component_outputs(constants: &Map<String, Value>) -> HashMap<String, Vec<(String, String)>> {
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (key, c) in constants {
        if c.get("source_type").and_then(Value::as_str) != Some("component_outputs") {
            continue;
        }
        for (node, fields) in c.get("source_info").and_then(Value::as_object).into_iter().flatten() {
            for field in fields.as_array().into_iter().flatten().filter_map(Value::as_str) {
                out.entry(node.clone()).or_default().push((field.to_owned(), constant_variable(key).to_owned()));
            }
        }
    }
    out
}

/// A subprocess's own tree: inline, or its template's.
fn subprocess_tree(id: &str, value: &Value, lookup: TemplateLookup<'_>) -> Result<Value, ModelError> {
    if let Some(tree) = value.get("pipeline").filter(|p| p.is_object()) {
        return Ok(tree.clone());
    }
    let template = match value.get("template_id") {
        Some(Value::Number(n)) => n.to_string(),
        _ => text(value, "template_id").to_owned(),
    };
    if template.is_empty() {
        return Err(err("SubProcess", id, "has neither a `pipeline` nor a `template_id`"));
    }
    lookup(&template).ok_or_else(|| err("SubProcess", id, format!("its template `{template}` does not exist")))
}

/// The tree with the tree of every subprocess inlined as its `pipeline`, at every depth, so
/// that it parses later without the templates it came from.
///
/// # Errors
/// A subprocess whose template cannot be found, or nesting deeper than a template can.
pub fn inline_subprocesses(tree: &Value, lookup: TemplateLookup<'_>) -> Result<Value, ModelError> {
    inline(tree, lookup, 0)
}

fn inline(tree: &Value, lookup: TemplateLookup<'_>, depth: usize) -> Result<Value, ModelError> {
    if depth > MAX_DEPTH {
        return Err(ModelError::new(format!(
            "subprocesses nest deeper than {MAX_DEPTH} levels (a template that includes itself?)"
        )));
    }
    let mut tree = tree.clone();
    if let Some(Value::Object(activities)) = tree.get_mut("activities") {
        for (id, activity) in activities.iter_mut().filter(|(_, a)| text(a, "type") == "SubProcess") {
            let sub = inline(&subprocess_tree(id, activity, lookup)?, lookup, depth + 1)?;
            activity["pipeline"] = sub;
        }
    }
    Ok(tree)
}

#[cfg(test)]
mod tests;
