//! Leaving optional activities out of a pipeline tree, as bk-sops does when a task is created
//! without some nodes (`exclude_task_nodes_id`) or previewed (`preview_task_tree`).
//!
//! A left-out activity's incoming flows go straight to the node after it; a parallel gateway
//! whose branches all became empty disappears with its converge gateway; constants nothing
//! refers to any more are dropped (output constants stay), and the caller learns which.

use super::{parse_pipeline, text};
use crate::error::ModelError;
use crate::ir::NodeKind;
use flowstone_expr::Expression;
use serde_json::{Map, Value};

/// The tree without the activities `exclude`, and the constants it no longer refers to.
///
/// # Errors
/// An id that is no activity of the tree, an activity that is not optional, or a tree that
/// does not parse.
pub fn exclude_nodes(tree: &Value, exclude: &[String]) -> Result<(Value, Map<String, Value>), ModelError> {
    let def = parse_pipeline(tree, "preview", None, &|_| None)?;
    let forks: Vec<(String, String)> = def
        .nodes
        .iter()
        .filter(|n| n.scope.is_none())
        .filter_map(|n| match n.kind {
            NodeKind::Fork { conditional: false, converge, .. } => {
                Some((n.id.clone(), def.nodes[converge as usize].id.clone()))
            }
            _ => None,
        })
        .collect();
    let mut t = Tree(tree.clone());
    for id in exclude {
        let act = t.map("activities").remove(id).ok_or_else(|| not_excludable(id, "is no activity of the template"))?;
        if act.get("optional").and_then(Value::as_bool) != Some(true) {
            return Err(not_excludable(id, "is not optional: it always runs"));
        }
        t.drop_shape(id);
        t.bypass(&act);
    }
    loop {
        let before = t.map("gateways").len();
        for (fork, converge) in &forks {
            if t.map("gateways").contains_key(fork) {
                t.drop_empty_fork(fork, converge);
            }
        }
        if t.map("gateways").len() == before {
            break;
        }
    }
    let unreferred = t.drop_unreferred_constants(exclude);
    Ok((t.0, unreferred))
}

fn not_excludable(id: &str, why: &str) -> ModelError {
    ModelError { element: Some("ServiceActivity".into()), id: Some(id.into()), ..ModelError::new(why) }
}

/// A flow list as trees write it: one id, or a list.
fn ids(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) if !s.is_empty() => vec![s.clone()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

struct Tree(Value);

impl Tree {
    fn map(&mut self, field: &str) -> &mut Map<String, Value> {
        if !self.0[field].is_object() {
            self.0[field] = Value::Object(Map::new());
        }
        self.0[field].as_object_mut().unwrap_or_else(|| unreachable!("set to an object above"))
    }

    /// The activity, gateway or end event `id`.
    fn node(&mut self, id: &str) -> Option<&mut Value> {
        if self.0["activities"].get(id).is_some() {
            return self.0["activities"].get_mut(id);
        }
        if self.0["gateways"].get(id).is_some() {
            return self.0["gateways"].get_mut(id);
        }
        Some(&mut self.0["end_event"]).filter(|e| text(e, "id") == id)
    }

    fn flow_target(&self, flow: &str) -> String {
        text(&self.0["flows"][flow], "target").to_owned()
    }

    /// Points flow `flow` (and its drawn line) at `target`.
    fn retarget(&mut self, flow: &str, target: &str) {
        if let Some(f) = self.map("flows").get_mut(flow) {
            f["target"] = Value::from(target);
        }
        for line in self.0["line"].as_array_mut().into_iter().flatten().filter(|l| text(l, "id") == flow) {
            line["target"]["id"] = Value::from(target);
        }
    }

    fn drop_flow(&mut self, flow: &str) {
        self.map("flows").remove(flow);
        if let Some(lines) = self.0["line"].as_array_mut() {
            lines.retain(|l| text(l, "id") != flow);
        }
    }

    fn drop_shape(&mut self, id: &str) {
        if let Some(locations) = self.0["location"].as_array_mut() {
            locations.retain(|l| text(l, "id") != id);
        }
    }

    /// In node `id`'s incoming flows, `replaced` becomes `new`.
    fn replace_incoming(&mut self, id: &str, replaced: &str, new: &[String]) {
        let Some(node) = self.node(id) else { return };
        node["incoming"] = match &node["incoming"] {
            Value::Array(items) => {
                let mut items: Vec<Value> = items.iter().filter(|f| f.as_str() != Some(replaced)).cloned().collect();
                items.extend(new.iter().map(|f| Value::from(f.as_str())));
                Value::Array(items)
            }
            _ if new.len() == 1 => Value::from(new[0].as_str()),
            _ => Value::from(new.to_vec()),
        };
    }

    /// Sends what led into `act` to the node after it, dropping the flow that left it.
    fn bypass(&mut self, act: &Value) {
        let incoming = ids(&act["incoming"]);
        let Some(outgoing) = ids(&act["outgoing"]).into_iter().next() else { return };
        let next = self.flow_target(&outgoing);
        self.replace_incoming(&next, &outgoing, &incoming);
        for flow in &incoming {
            self.retarget(flow, &next);
        }
        self.drop_flow(&outgoing);
    }

    /// Drops the branches of parallel gateway `fork` that lead straight to its `converge`; when
    /// none is left, both gateways go and what led into them goes to the node after them.
    fn drop_empty_fork(&mut self, fork: &str, converge: &str) {
        let mut whole = true;
        for flow in ids(&self.0["gateways"][fork]["outgoing"]) {
            if self.flow_target(&flow) != converge {
                whole = false;
                continue;
            }
            for (gateway, field) in [(converge, "incoming"), (fork, "outgoing")] {
                let list = ids(&self.0["gateways"][gateway][field]);
                self.0["gateways"][gateway][field] =
                    Value::from(list.into_iter().filter(|f| *f != flow).collect::<Vec<_>>());
            }
            self.drop_flow(&flow);
        }
        if !whole {
            return;
        }
        let Some(out) = ids(&self.0["gateways"][converge]["outgoing"]).into_iter().next() else { return };
        let next = self.flow_target(&out);
        self.drop_flow(&out);
        let mut led_in = ids(&self.0["gateways"][converge]["incoming"]);
        led_in.extend(ids(&self.0["gateways"][fork]["incoming"]));
        for flow in &led_in {
            self.retarget(flow, &next);
        }
        self.replace_incoming(&next, &out, &led_in);
        for gateway in [fork, converge] {
            self.map("gateways").remove(gateway);
            self.drop_shape(gateway);
        }
    }

    /// Keeps the constants the remaining nodes refer to (directly or through other constants)
    /// and the output constants; answers the others.
    fn drop_unreferred_constants(&mut self, excluded: &[String]) -> Map<String, Value> {
        let mut pending: Vec<Value> = Vec::new();
        for act in self.0["activities"].as_object().into_iter().flatten().map(|(_, a)| a) {
            if text(act, "type") == "SubProcess" {
                let shown = act["constants"].as_object().into_iter().flatten().map(|(_, c)| c);
                pending.extend(shown.filter(|c| text(c, "show_type") != "hide").map(|c| c["value"].clone()));
            } else {
                let data = act["component"]["data"].as_object().into_iter().flatten().map(|(_, d)| d);
                pending.extend(data.map(|d| d.get("value").unwrap_or(d).clone()));
            }
        }
        for gateway in self.0["gateways"].as_object().into_iter().flatten().map(|(_, g)| g) {
            let conditions = gateway["conditions"].as_object().into_iter().flatten().map(|(_, c)| c);
            pending.extend(conditions.map(|c| c["evaluate"].clone()));
        }
        let constants = std::mem::take(self.map("constants"));
        let mut referenced: Vec<String> = Vec::new();
        while let Some(value) = pending.pop() {
            let mut names = Vec::new();
            variables(&value, &mut names);
            for key in names.into_iter().map(|n| format!("${{{n}}}")) {
                if let Some(c) = constants.get(&key).filter(|_| !referenced.contains(&key)) {
                    pending.push(c["value"].clone());
                    referenced.push(key);
                }
            }
        }
        let mut kept = Map::new();
        let mut unreferred = Map::new();
        for (key, mut c) in constants {
            if !referenced.contains(&key) && text(&c, "source_type") != "component_outputs" {
                unreferred.insert(key, c);
                continue;
            }
            c["index"] = Value::from(kept.len());
            if let Some(info) = c.get_mut("source_info").and_then(Value::as_object_mut) {
                info.retain(|node, _| !excluded.contains(node));
            }
            kept.insert(key, c);
        }
        let outputs: Vec<Value> =
            ids(&self.0["outputs"]).into_iter().filter(|k| kept.contains_key(k)).map(Value::from).collect();
        self.0["outputs"] = Value::Array(outputs);
        *self.map("constants") = kept;
        unreferred
    }
}

/// The variables the `${…}` of every string inside `v` read.
fn variables(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.contains("${") => {
            if let Ok(e) = Expression::parse(s) {
                out.extend(e.variables().into_iter().map(str::to_owned));
            }
        }
        Value::Array(items) => items.iter().for_each(|x| variables(x, out)),
        Value::Object(map) => map.values().for_each(|x| variables(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
