//! `modify_constants_for_task`: a task that has not started takes other constants and a new
//! name.

use super::{Call, bad, task_of, tree_of};
use crate::error::ApiError;
use crate::runtime::RuntimeError;
use flowstone_store::BkTaskEdit;
use serde_json::{Map, Value, json};

/// Sets the values of the task's constants that its tree defines (others are ignored, as
/// bk-sops ignores them) over those it has, and renames it when `name` is given. As in bk-sops,
/// a started task refuses with "task is started" (code 3540000).
pub(super) async fn modify_constants(c: &Call<'_>) -> Result<Value, ApiError> {
    let task = task_of(c, c.number("task_id")?).await?;
    let started = || bad(format!("task is started: task {} can no longer change its constants", task.id));
    if task.instance_id.is_some() {
        return Err(started());
    }
    let given = match c.json("constants")? {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(bad("parameter `constants` must be an object of `${KEY}: value`")),
    };
    let tree = tree_of(c, &task.model_id).await?;
    let defined = tree.get("constants").and_then(Value::as_object);
    let mut constants: Map<String, Value> = serde_json::from_str(&task.constants).unwrap_or_default();
    constants.extend(given.into_iter().filter(|(key, _)| defined.is_some_and(|d| d.contains_key(key))));
    let edit = BkTaskEdit {
        id: task.id,
        name: c.text("name").unwrap_or_else(|| task.name.clone()),
        constants: Value::Object(constants).to_string(),
    };
    match c.rt.edit_bk_task(edit).await {
        Ok(()) => Ok(json!("success")),
        // Started meanwhile.
        Err(RuntimeError::Exists(_)) => Err(started()),
        Err(e) => Err(e.into()),
    }
}
