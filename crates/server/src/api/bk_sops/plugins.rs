//! `get_plugin_list` and `get_plugin_detail`: bk-sops' components are stones, and the plugins
//! are the stones this server runs or publishes and the topics its workers fetch.

use super::Call;
use crate::error::ApiError;
use crate::runtime::{KnownStone, StoneHome};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// A plugin (`get_plugin_list`, `get_plugin_detail`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Plugin {
    pub(super) code: String,
    pub(super) name: String,
    /// What the stone says it does.
    pub(super) desc: String,
    /// Where its jobs go: `Flowstone (in-process)`, `Flowstone (RabbitMQ)` or `Flowstone (workers)`.
    pub(super) group_name: String,
    /// Always `legacy`.
    pub(super) version: String,
    pub(super) form: String,
    /// Stones do not declare their inputs: always empty.
    #[schema(value_type = Vec<Object>)]
    pub(super) inputs: Vec<Value>,
    pub(super) outputs: Vec<PluginOutput>,
}

/// An output every node of the plugin gives.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PluginOutput {
    pub(super) name: String,
    pub(super) key: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[schema(value_type = Object)]
    pub(super) schema: Value,
}

/// A plugin's code and name (`get_plugin_base_info`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PluginBase {
    pub(super) code: String,
    pub(super) name: String,
}

/// Every stone known, by name.
pub(super) fn plugin_list(c: &Call<'_>) -> Value {
    json!(c.rt.known_stones().iter().map(plugin).collect::<Vec<_>>())
}

/// `get_plugin_base_info`: the code and name of every stone known.
pub(super) fn plugin_base_info(c: &Call<'_>) -> Value {
    let known = c.rt.known_stones();
    json!(known.into_iter().map(|s| PluginBase { code: s.name.clone(), name: s.name }).collect::<Vec<_>>())
}

/// The stone named `code` (every stone has the one version `legacy`).
pub(super) fn plugin_detail(c: &Call<'_>) -> Result<Value, ApiError> {
    let code = c.required("code")?;
    let known = c.rt.known_stones();
    known.iter().find(|s| s.name == code).map(|s| json!(plugin(s))).ok_or_else(|| {
        let names: Vec<&str> = known.iter().map(|s| s.name.as_str()).collect();
        ApiError::not_found(format!("there is no plugin `{code}`; the stones known are {}", names.join(", ")))
    })
}

/// A stone as bk-sops describes a plugin. Stones do not declare their inputs: a component's
/// `data` is what its stone gets. Every node outputs `_loop`, as bamboo-engine's do.
fn plugin(stone: &KnownStone) -> Plugin {
    let group = match stone.home {
        StoneHome::InProcess => "Flowstone (in-process)",
        StoneHome::Broker => "Flowstone (RabbitMQ)",
        StoneHome::Workers => "Flowstone (workers)",
    };
    Plugin {
        code: stone.name.clone(),
        name: stone.name.clone(),
        desc: stone.summary.clone(),
        group_name: group.to_owned(),
        version: "legacy".to_owned(),
        form: String::new(),
        inputs: Vec::new(),
        outputs: vec![PluginOutput {
            name: "loop_time".to_owned(),
            key: "_loop".to_owned(),
            kind: "int".to_owned(),
            schema: json!({"type": "int", "description": "how many times the node has run", "enum": []}),
        }],
    }
}
