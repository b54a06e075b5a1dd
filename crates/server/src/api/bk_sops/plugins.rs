//! `get_plugin_list` and `get_plugin_detail`: bk-sops' components are stones, and the plugins
//! are the stones this server runs or publishes and the topics its workers fetch.

use super::Call;
use crate::error::ApiError;
use crate::runtime::{KnownStone, StoneHome};
use serde_json::{Value, json};

/// Every stone known, by name.
pub(super) fn plugin_list(c: &Call<'_>) -> Value {
    Value::Array(c.rt.known_stones().iter().map(plugin).collect())
}

/// `get_plugin_base_info`: the code and name of every stone known.
pub(super) fn plugin_base_info(c: &Call<'_>) -> Value {
    Value::Array(c.rt.known_stones().iter().map(|s| json!({"code": s.name, "name": s.name})).collect())
}

/// The stone named `code` (every stone has the one version `legacy`).
pub(super) fn plugin_detail(c: &Call<'_>) -> Result<Value, ApiError> {
    let code = c.required("code")?;
    let known = c.rt.known_stones();
    known.iter().find(|s| s.name == code).map(plugin).ok_or_else(|| {
        let names: Vec<&str> = known.iter().map(|s| s.name.as_str()).collect();
        ApiError::not_found(format!("there is no plugin `{code}`; the stones known are {}", names.join(", ")))
    })
}

/// A stone as bk-sops describes a plugin. Stones do not declare their inputs: a component's
/// `data` is what its stone gets. Every node outputs `_loop`, as bamboo-engine's do.
fn plugin(stone: &KnownStone) -> Value {
    let group = match stone.home {
        StoneHome::InProcess => "Flowstone (in-process)",
        StoneHome::Broker => "Flowstone (RabbitMQ)",
        StoneHome::Workers => "Flowstone (workers)",
    };
    json!({
        "code": stone.name,
        "name": stone.name,
        "desc": stone.summary,
        "group_name": group,
        "version": "legacy",
        "form": "",
        "inputs": [],
        "outputs": [{"name": "loop_time", "key": "_loop", "type": "int",
                     "schema": {"type": "int", "description": "how many times the node has run", "enum": []}}],
    })
}
