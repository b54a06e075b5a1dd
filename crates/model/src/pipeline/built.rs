//! The "built" form of a tree (bamboo-engine's `builder.build_tree()`, and what bk-sops hands
//! bamboo after formatting its web tree): global variables under `data.inputs` instead of
//! `constants`, the process outputs under `data.outputs`, a component's outputs copied to
//! global variables by its `global_outputs`, a subprocess's values under `params`. Read here
//! into the web form's terms, so that both forms run alike.

use super::{component_outputs, constant_variable, err, object};
use crate::error::ModelError;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The global variables of a built tree (`data.inputs`) as web-form constants; none for a tree
/// that has `constants` or no `data`.
pub(super) fn constants(tree: &Value) -> Result<Option<Map<String, Value>>, ModelError> {
    if tree.get("constants").is_some_and(|c| !c.is_null()) {
        return Ok(None);
    }
    let Some(inputs) = tree.get("data").and_then(|d| d.get("inputs")).filter(|i| !i.is_null()) else {
        return Ok(None);
    };
    let mut constants = Map::new();
    for (key, input) in object(inputs, "data.inputs")? {
        let kind = input.get("type").and_then(Value::as_str).unwrap_or("plain");
        if !matches!(kind, "plain" | "splice" | "lazy") {
            return Err(err(
                "data input",
                key,
                format!("has type `{kind}`; a built tree's inputs are plain, splice or lazy"),
            ));
        }
        let value = input.get("value").cloned().unwrap_or(Value::Null);
        let source = input.get("source_act").and_then(Value::as_str).filter(|a| !a.is_empty());
        let constant = match (source, input.get("source_key").and_then(Value::as_str)) {
            (Some(act), Some(field)) => json!({
                "value": value, "source_type": "component_outputs", "source_info": {act: [field]}
            }),
            (Some(_), None) => return Err(err("data input", key, "names a source_act without a source_key")),
            _ => json!({"value": value}),
        };
        constants.insert(key.clone(), constant);
    }
    Ok(Some(constants))
}

/// For each node, the component outputs copied to global variables: the constants' (see
/// [`component_outputs`]) and a built tree's `global_outputs` (`{output: "${var}"}`), once each.
pub(super) fn outputs_of(
    tree: &Value,
    constants: &Map<String, Value>,
) -> Result<HashMap<String, Vec<(String, String)>>, ModelError> {
    let mut out = component_outputs(constants);
    for (id, activity) in tree.get("activities").and_then(Value::as_object).into_iter().flatten() {
        let Some(globals) = activity.get("component").and_then(|c| c.get("global_outputs")) else { continue };
        if globals.is_null() {
            continue;
        }
        for (field, key) in object(globals, "global_outputs")? {
            let key = key.as_str().ok_or_else(|| {
                err("ServiceActivity", id, format!("global output `{field}` must name a variable key"))
            })?;
            let pair = (field.clone(), constant_variable(key).to_owned());
            let node = out.entry(id.clone()).or_default();
            if !node.contains(&pair) {
                node.push(pair);
            }
        }
    }
    Ok(out)
}

/// The process outputs a tree lists: `outputs`, else a built tree's `data.outputs`.
pub(super) fn output_keys(tree: &Value) -> impl Iterator<Item = &str> {
    let listed = tree.get("outputs").or_else(|| tree.get("data").and_then(|d| d.get("outputs")));
    listed.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
}

/// The values a subprocess node gives its tree's variables: `constants`, else a built tree's
/// `params`.
pub(super) fn given(node: &Value) -> Option<&Value> {
    node.get("constants").filter(|c| !c.is_null()).or_else(|| node.get("params")).filter(|p| !p.is_null())
}
