//! bk-sops' YAML template format into pipeline trees.
//!
//! bk-sops exports templates as YAML documents (`schema_version: v1`, one document per
//! template, `meta` and `spec.nodes`) written for people: a node without `next` flows to the
//! node listed after it, gateway conditions are keyed by the node they lead to, and a
//! component input written with a `key` is hooked to the constant of that key. This module
//! turns such a file back into the pipeline trees bk-sops itself would build on import, so
//! that they run like any other tree.

use super::{constant_variable, text};
use crate::error::ModelError;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet, VecDeque};

/// One template of a YAML file, as a pipeline tree.
#[derive(Debug, Clone)]
pub struct YamlTemplate {
    /// The document's `meta.id`: what its parents' `template_id` name.
    pub id: String,
    /// The template's name.
    pub name: String,
    /// The template's description, when it has one.
    pub description: Option<String>,
    /// The tree; a subprocess names its template by the YAML id in `template_id`.
    pub tree: Value,
}

/// Fields each node type must have, as bk-sops checks them on import.
const NECESSARY: [(&str, &[&str]); 8] = [
    ("ServiceActivity", &["name", "component"]),
    ("SubProcess", &["name", "template_id"]),
    ("EmptyEndEvent", &[]),
    ("EmptyStartEvent", &[]),
    ("ExclusiveGateway", &["conditions"]),
    ("ConditionalParallelGateway", &["conditions"]),
    ("ConvergeGateway", &[]),
    ("ParallelGateway", &["converge_gateway_id"]),
];

/// The YAML names of activity flags, and the tree's.
const FIELD_NAMES: [(&str, &str); 3] =
    [("ignore_error", "error_ignorable"), ("can_retry", "retryable"), ("can_skip", "skippable")];

fn node_err(kind: &str, id: &str, message: impl Into<String>) -> ModelError {
    ModelError { element: Some(kind.to_owned()), id: Some(id.to_owned()), ..ModelError::new(message) }
}

fn template_err(id: &str, message: impl Into<String>) -> ModelError {
    node_err("template", id, message)
}

/// Parses every document of a bk-sops YAML export, subprocess templates before the templates
/// that use them.
///
/// # Errors
/// Text that is not YAML, a document without `meta.id`, `meta.name` or `spec.nodes`, a node
/// without a field its type needs, a `next` or condition naming no node, a subprocess whose
/// template is not in the file, templates that include each other.
pub fn parse_yaml_templates(source: &str) -> Result<Vec<YamlTemplate>, ModelError> {
    let mut docs: Vec<(String, Value)> = Vec::new();
    for doc in serde_norway::Deserializer::from_str(source) {
        let value = Value::deserialize(doc).map_err(|e| ModelError::new(format!("the text is no YAML: {e}")))?;
        if value.is_null() {
            continue;
        }
        let id = match &value["meta"]["id"] {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(ModelError::new("every YAML document needs `meta.id`")),
        };
        if docs.iter().any(|(d, _)| *d == id) {
            return Err(template_err(&id, "appears twice in the file"));
        }
        if text(&value["meta"], "name").is_empty() {
            return Err(template_err(&id, "has no `meta.name`"));
        }
        if !value["spec"]["nodes"].is_array() {
            return Err(template_err(&id, "needs `spec.nodes`, a list"));
        }
        if let Some(version) = value.get("schema_version").and_then(Value::as_str).filter(|v| *v != "v1") {
            return Err(template_err(&id, format!("schema_version `{version}` is not known (v1 is)")));
        }
        docs.push((id, value));
    }
    if docs.is_empty() {
        return Err(ModelError::new("the YAML holds no template"));
    }
    let mut done: Vec<YamlTemplate> = Vec::new();
    for i in 0..docs.len() {
        convert_with_children(i, &docs, &mut done, &mut Vec::new())?;
    }
    Ok(done)
}

/// Converts template `i` after the templates its subprocesses name.
fn convert_with_children(
    i: usize,
    docs: &[(String, Value)],
    done: &mut Vec<YamlTemplate>,
    path: &mut Vec<usize>,
) -> Result<(), ModelError> {
    let (id, doc) = &docs[i];
    if done.iter().any(|t| t.id == *id) {
        return Ok(());
    }
    if path.contains(&i) {
        return Err(template_err(id, "includes itself through its subprocesses"));
    }
    path.push(i);
    for node in doc["spec"]["nodes"].as_array().into_iter().flatten() {
        if text(node, "type") != "SubProcess" {
            continue;
        }
        let child = scalar(&node["template_id"]);
        let Some(j) = docs.iter().position(|(d, _)| *d == child) else {
            return Err(node_err(
                "SubProcess",
                text(node, "id"),
                format!("its template_id `{child}` is no template of this file"),
            ));
        };
        convert_with_children(j, docs, done, path)?;
    }
    path.pop();
    let tree = Converter::new(id).tree(&doc["spec"], done)?;
    done.push(YamlTemplate {
        id: id.clone(),
        name: text(&doc["meta"], "name").to_owned(),
        description: doc["meta"].get("description").and_then(Value::as_str).filter(|d| !d.is_empty()).map(Into::into),
        tree,
    });
    Ok(())
}

/// A string or number field as text.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Builds one template's tree.
struct Converter<'a> {
    template: &'a str,
    constants: Map<String, Value>,
    activities: Map<String, Value>,
    gateways: Map<String, Value>,
    start: Option<Value>,
    end: Option<Value>,
    /// Each node's targets, in the order the YAML lists the nodes.
    targets: Vec<(String, Vec<String>)>,
}

impl<'a> Converter<'a> {
    fn new(template: &'a str) -> Self {
        Self {
            template,
            constants: Map::new(),
            activities: Map::new(),
            gateways: Map::new(),
            start: None,
            end: None,
            targets: Vec::new(),
        }
    }

    fn tree(mut self, spec: &Value, done: &[YamlTemplate]) -> Result<Value, ModelError> {
        let nodes: Vec<&Map<String, Value>> = spec["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| n.as_object().ok_or_else(|| template_err(self.template, "a node is not a mapping")))
            .collect::<Result<_, _>>()?;
        let mut ids: HashSet<String> = HashSet::new();
        for id in nodes.iter().map(|n| scalar(n.get("id").unwrap_or(&Value::Null))).filter(|id| !id.is_empty()) {
            if !ids.insert(id.clone()) {
                return Err(node_err("node", &id, format!("appears twice in template `{}`", self.template)));
            }
        }
        for (i, node) in nodes.iter().enumerate() {
            let targets = self.node(i, &nodes, &ids, done)?;
            self.targets.push((scalar(&node["id"]), targets));
        }
        let (Some(start), Some(end)) = (self.start.take(), self.end.take()) else {
            return Err(template_err(self.template, "needs an EmptyStartEvent and an EmptyEndEvent"));
        };
        let mut all: HashMap<String, Value> = HashMap::new();
        for (id, node) in std::mem::take(&mut self.activities).into_iter().chain(std::mem::take(&mut self.gateways)) {
            all.insert(id, node);
        }
        let (start_id, end_id) = (text(&start, "id").to_owned(), text(&end, "id").to_owned());
        all.insert(start_id.clone(), start);
        all.insert(end_id.clone(), end);
        let flows = self.flows(&mut all, &start_id)?;
        let layout = layout(&self.targets, &start_id);
        for (key, value) in spec.get("constants").and_then(Value::as_object).into_iter().flatten() {
            let param = value.as_object().cloned().unwrap_or_default();
            self.constant(key, param, None);
        }
        for (index, constant) in self.constants.values_mut().enumerate() {
            constant["index"] = json!(index);
        }
        let mut activities = Map::new();
        let mut gateways = Map::new();
        for (id, _) in self.targets.iter().filter(|(id, _)| *id != start_id && *id != end_id) {
            let Some(node) = all.remove(id) else { continue };
            match text(&node, "type") {
                "ServiceActivity" | "SubProcess" => activities.insert(id.clone(), node),
                t if t.ends_with("Gateway") => gateways.insert(id.clone(), node),
                _ => None,
            };
        }
        let start = all.remove(&start_id).unwrap_or_default();
        let end = all.remove(&end_id).unwrap_or_default();
        let line: Vec<Value> = flows
            .values()
            .map(|f| {
                json!({"id": f["id"], "source": {"id": f["source"], "arrow": "Right"},
                       "target": {"id": f["target"], "arrow": "Left"}})
            })
            .collect();
        let location = self.locations(&layout, &activities, &gateways, &start_id, &end_id);
        Ok(json!({
            "activities": activities,
            "constants": self.constants,
            "end_event": end,
            "flows": flows,
            "gateways": gateways,
            "line": line,
            "location": location,
            "outputs": spec.get("outputs").cloned().filter(Value::is_array).unwrap_or_else(|| json!([])),
            "start_event": start,
        }))
    }

    /// Converts node `i`; answers the ids it flows to.
    fn node(
        &mut self,
        i: usize,
        nodes: &[&Map<String, Value>],
        ids: &HashSet<String>,
        done: &[YamlTemplate],
    ) -> Result<Vec<String>, ModelError> {
        let raw = nodes[i];
        let id = scalar(raw.get("id").unwrap_or(&Value::Null));
        let kind = raw.get("type").and_then(Value::as_str).unwrap_or_default();
        if id.is_empty() || kind.is_empty() {
            return Err(template_err(self.template, "every node needs an `id` and a `type`"));
        }
        let Some((_, necessary)) = NECESSARY.iter().find(|(k, _)| *k == kind) else {
            return Err(node_err(kind, &id, format!("unknown node type `{kind}`")));
        };
        if let Some(missing) = necessary.iter().find(|f| !raw.contains_key(**f)) {
            return Err(node_err(kind, &id, format!("a {kind} needs `{missing}`")));
        }
        let mut node = raw.clone();
        for (yaml, tree) in FIELD_NAMES {
            if let Some(v) = node.remove(yaml) {
                node.insert(tree.into(), v);
            }
        }
        let targets = match node.remove("next") {
            _ if kind == "EmptyEndEvent" => Vec::new(),
            Some(Value::Array(next)) => next.iter().map(scalar).collect(),
            Some(one @ (Value::String(_) | Value::Number(_))) => vec![scalar(&one)],
            _ => match nodes.get(i + 1) {
                Some(after) => vec![scalar(after.get("id").unwrap_or(&Value::Null))],
                None => return Err(node_err(kind, &id, "is the last node and has no `next`")),
            },
        };
        if targets.len() > 1 && !kind.ends_with("Gateway") {
            return Err(node_err(kind, &id, "only a gateway may have more than one `next` node"));
        }
        if let Some(unknown) = targets.iter().find(|t| !ids.contains(*t)) {
            return Err(node_err(kind, &id, format!("its next node `{unknown}` is no node of this template")));
        }
        match kind {
            "EmptyStartEvent" => {
                self.start = Some(json!({"id": id, "incoming": "", "labels": [], "name": "", "type": kind}));
            }
            "EmptyEndEvent" => {
                self.end = Some(json!({"id": id, "incoming": [], "labels": [], "name": "", "type": kind}));
            }
            "ServiceActivity" => {
                let activity = self.activity(&id, node)?;
                self.activities.insert(id.clone(), activity);
            }
            "SubProcess" => {
                let subprocess = self.subprocess(&id, node, done)?;
                self.activities.insert(id.clone(), subprocess);
            }
            _ => {
                for field in ["conditions", "default_condition"] {
                    for target in node.get(field).and_then(Value::as_object).into_iter().flatten().map(|(k, _)| k) {
                        if !targets.contains(target) {
                            return Err(node_err(
                                kind,
                                &id,
                                format!("has a condition for `{target}`, not a next node"),
                            ));
                        }
                    }
                }
                let mut gateway = Map::from_iter([("labels".into(), json!([])), ("name".into(), json!(""))]);
                gateway.extend(node);
                self.gateways.insert(id.clone(), Value::Object(gateway));
            }
        }
        Ok(targets)
    }

    fn activity(&mut self, id: &str, mut node: Map<String, Value>) -> Result<Value, ModelError> {
        let outputs = node.remove("output").and_then(|o| o.as_object().cloned()).unwrap_or_default();
        let code = text(&node["component"], "code").to_owned();
        if code.is_empty() {
            return Err(node_err("ServiceActivity", id, "its component has no `code`"));
        }
        let mut activity = activity_defaults(&[("skippable", json!(true))]);
        activity.extend(node);
        let mut activity = Value::Object(activity);
        let data = activity["component"]["data"].as_object().cloned().unwrap_or_default();
        let mut inputs = Map::new();
        for (form_key, param) in data {
            let param = param.as_object().cloned().unwrap_or_default();
            let entry = match param.get("key").and_then(Value::as_str).map(str::to_owned) {
                Some(key) => {
                    let tag = format!("{code}.{form_key}");
                    self.constant(
                        &key,
                        param,
                        Some(Source { node: id, form_key: &form_key, kind: INPUTS, tag: Some(tag) }),
                    );
                    json!({"hook": true, "value": key})
                }
                None => json!({"hook": false, "value": param.get("value").cloned().unwrap_or_else(|| json!(""))}),
            };
            inputs.insert(form_key, entry);
        }
        activity["component"]["data"] = Value::Object(inputs);
        for (form_key, param) in outputs {
            let param = param.as_object().cloned().unwrap_or_default();
            if let Some(key) = param.get("key").and_then(Value::as_str).map(str::to_owned) {
                let tag = format!("{code}.{form_key}");
                self.constant(
                    &key,
                    param,
                    Some(Source { node: id, form_key: &form_key, kind: OUTPUTS, tag: Some(tag) }),
                );
            }
        }
        Ok(activity)
    }

    /// A subprocess: its template's constants with the values this node gives them; inputs
    /// written with a `key` are hooked to constants of this template.
    fn subprocess(
        &mut self,
        id: &str,
        mut node: Map<String, Value>,
        done: &[YamlTemplate],
    ) -> Result<Value, ModelError> {
        let inputs = node.remove("data").and_then(|o| o.as_object().cloned()).unwrap_or_default();
        let outputs = node.remove("output").and_then(|o| o.as_object().cloned()).unwrap_or_default();
        let child_id = scalar(&node["template_id"]);
        let child = done
            .iter()
            .find(|t| t.id == child_id)
            .ok_or_else(|| node_err("SubProcess", id, format!("its template `{child_id}` is not converted")))?;
        let mut constants = Map::new();
        for (key, constant) in child.tree["constants"].as_object().into_iter().flatten() {
            if text(constant, "source_type") == OUTPUTS {
                continue;
            }
            let mut constant = constant.clone();
            if let Some(given) = inputs.get(key) {
                constant["value"] = match given.get("key") {
                    Some(hooked) => hooked.clone(),
                    None => given.get("value").cloned().unwrap_or_else(|| json!("")),
                };
            }
            constants.insert(key.clone(), constant);
        }
        let mut subprocess = activity_defaults(&[("isSkipped", json!(true)), ("hooked_constants", json!([]))]);
        subprocess.extend(node);
        subprocess.insert("constants".into(), Value::Object(constants));
        for (kind, params) in [(INPUTS, inputs), (OUTPUTS, outputs)] {
            for (form_key, param) in params {
                let param = param.as_object().cloned().unwrap_or_default();
                let Some(key) = param.get("key").and_then(Value::as_str).map(str::to_owned) else { continue };
                let tag = param.get("source_tag").and_then(Value::as_str).map(str::to_owned);
                self.constant(&key, param, Some(Source { node: id, form_key: &form_key, kind, tag }));
            }
        }
        Ok(Value::Object(subprocess))
    }

    /// Adds constant `key` (or, when it exists, records one more node field that uses it).
    fn constant(&mut self, key: &str, mut param: Map<String, Value>, source: Option<Source<'_>>) {
        if let Some(existing) = self.constants.get_mut(key) {
            if let Some(s) = source {
                let info = &mut existing["source_info"][s.node];
                match info.as_array_mut() {
                    Some(fields) => fields.push(json!(s.form_key)),
                    None => *info = json!([s.form_key]),
                }
            }
            return;
        }
        let mut constant = Map::from_iter(
            [
                ("desc", json!("")),
                ("validation", json!("")),
                ("version", json!("legacy")),
                ("is_meta", json!(false)),
                ("custom_type", json!("")),
                ("show_type", json!("show")),
                ("value", json!("")),
                ("source_tag", json!("")),
                ("source_info", json!({})),
                ("source_type", json!(source.as_ref().map_or("custom", |s| s.kind))),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        if let Some(custom_type) = param.remove("type") {
            constant.insert("custom_type".into(), custom_type);
        }
        if param.remove("hide").is_some() {
            constant.insert("show_type".into(), json!("hide"));
        }
        constant.extend(param);
        constant.insert("key".into(), json!(key));
        let custom_type = constant["custom_type"].as_str().unwrap_or_default().to_owned();
        let var_tag = if custom_type.is_empty() { String::new() } else { format!("{custom_type}.{custom_type}") };
        let tag = match &source {
            Some(s) => s.tag.clone().unwrap_or(var_tag),
            None => constant["source_tag"].as_str().filter(|t| !t.is_empty()).map_or(var_tag, str::to_owned),
        };
        constant.insert("source_tag".into(), json!(tag));
        if let Some(s) = source {
            constant.insert("source_info".into(), json!({ s.node: [s.form_key] }));
        }
        if !constant.contains_key("name") {
            constant.insert("name".into(), json!(constant_variable(key)));
        }
        self.constants.insert(key.to_owned(), Value::Object(constant));
    }

    /// The flows between the nodes, with gateway conditions keyed by flow as trees key them.
    fn flows(&self, all: &mut HashMap<String, Value>, start_id: &str) -> Result<Map<String, Value>, ModelError> {
        let prefix = start_id.split('_').next().unwrap_or(start_id);
        let mut flows = Map::new();
        for (id, targets) in &self.targets {
            let Some(mut node) = all.remove(id) else { continue };
            let kind = text(&node, "type").to_owned();
            let conditional = matches!(kind.as_str(), "ExclusiveGateway" | "ConditionalParallelGateway");
            let mut conditions = Map::new();
            let mut outgoing = Vec::new();
            for target in targets {
                let mut line = format!("{prefix}_line{}", flows.len() + 1);
                while all.contains_key(&line) || flows.contains_key(&line) || line == *id {
                    line.push('_');
                }
                flows.insert(line.clone(), json!({"id": line, "is_default": false, "source": id, "target": target}));
                outgoing.push(json!(line));
                if conditional {
                    let tag = format!("branch_{id}_{target}");
                    let mapping = |v: Value, what: &str| match v {
                        Value::Object(m) => Ok(m),
                        _ => Err(node_err(&kind, id, format!("its {what} for `{target}` must be a mapping"))),
                    };
                    if let Some(default) = node.get("default_condition").and_then(|d| d.get(target)).cloned() {
                        let mut default = mapping(default, "default condition")?;
                        default.insert("tag".into(), json!(tag));
                        default.insert("flow_id".into(), json!(line));
                        node["default_condition"] = Value::Object(default);
                    } else {
                        let condition = node["conditions"].get(target).cloned().ok_or_else(|| {
                            node_err(&kind, id, format!("has no condition for its next node `{target}`"))
                        })?;
                        let mut condition = mapping(condition, "condition")?;
                        condition.insert("tag".into(), json!(tag));
                        conditions.insert(line.clone(), Value::Object(condition));
                    }
                }
                if target == id {
                    push_incoming(&mut node, &line);
                } else if let Some(next) = all.get_mut(target) {
                    push_incoming(next, &line);
                }
            }
            if conditional {
                node["conditions"] = Value::Object(conditions);
            }
            node["outgoing"] = match kind.as_str() {
                "ExclusiveGateway" | "ParallelGateway" | "ConditionalParallelGateway" => Value::Array(outgoing),
                _ => outgoing.into_iter().next().unwrap_or_else(|| json!("")),
            };
            all.insert(id.clone(), node);
        }
        if let Some(start) = all.get_mut(start_id) {
            start["incoming"] = json!("");
        }
        Ok(flows)
    }

    /// Diagram positions: a column per step from the start, nodes of one step stacked.
    fn locations(
        &self,
        layout: &HashMap<String, (usize, usize)>,
        activities: &Map<String, Value>,
        gateways: &Map<String, Value>,
        start_id: &str,
        end_id: &str,
    ) -> Vec<Value> {
        let mut out = Vec::new();
        for (id, _) in &self.targets {
            let (kind, node) = if id == start_id {
                ("startpoint", None)
            } else if id == end_id {
                ("endpoint", None)
            } else if let Some(a) = activities.get(id) {
                (if text(a, "type") == "SubProcess" { "subflow" } else { "tasknode" }, Some(a))
            } else if let Some(g) = gateways.get(id) {
                let kind = match text(g, "type") {
                    "ExclusiveGateway" => "branchgateway",
                    "ParallelGateway" => "parallelgateway",
                    "ConditionalParallelGateway" => "conditionalparallelgateway",
                    _ => "convergegateway",
                };
                (kind, Some(g))
            } else {
                continue;
            };
            let (column, row) = layout.get(id).copied().unwrap_or_default();
            let mut location = json!({"id": id, "type": kind, "x": 80 + column * 200, "y": 150 + row * 120});
            if let Some(node) = node {
                location["name"] = node["name"].clone();
                if let Some(stage) = node.get("stage_name") {
                    location["stage_name"] = stage.clone();
                }
            }
            out.push(location);
        }
        out
    }
}

const INPUTS: &str = "component_inputs";
const OUTPUTS: &str = "component_outputs";

/// A node field a constant comes from.
struct Source<'a> {
    node: &'a str,
    form_key: &'a str,
    kind: &'static str,
    tag: Option<String>,
}

/// What an activity's fields are when the YAML leaves them out.
fn activity_defaults(extra: &[(&str, Value)]) -> Map<String, Value> {
    let mut m = Map::from_iter(
        [
            ("error_ignorable", json!(false)),
            ("labels", json!([])),
            ("loop", Value::Null),
            ("optional", json!(true)),
            ("retryable", json!(true)),
            ("stage_name", json!("")),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    m.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    m
}

fn push_incoming(node: &mut Value, line: &str) {
    match node.get_mut("incoming") {
        Some(Value::Array(items)) => items.push(json!(line)),
        _ => node["incoming"] = json!([line]),
    }
}

/// Each node's column (steps from the start, the first time it is reached) and row.
fn layout(targets: &[(String, Vec<String>)], start: &str) -> HashMap<String, (usize, usize)> {
    let next: HashMap<&str, &Vec<String>> = targets.iter().map(|(id, t)| (id.as_str(), t)).collect();
    let mut place = HashMap::new();
    let mut rows: Vec<usize> = Vec::new();
    let mut queue = VecDeque::from([(start, 0usize)]);
    while let Some((id, column)) = queue.pop_front() {
        if place.contains_key(id) {
            continue;
        }
        if rows.len() <= column {
            rows.resize(column + 1, 0);
        }
        place.insert(id.to_owned(), (column, rows[column]));
        rows[column] += 1;
        for t in next.get(id).into_iter().flat_map(|t| t.iter()) {
            queue.push_back((t.as_str(), column + 1));
        }
    }
    place
}

#[cfg(test)]
mod tests;
