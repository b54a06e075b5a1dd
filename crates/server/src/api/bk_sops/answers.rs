//! What bk-sops' template, task and node APIs answer in `data`, as types: the OpenAPI
//! document is made from them, and every field is written as bk-sops writes it.

use super::status::{State, StateTree};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A template in a list (`get_template_list`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Template {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) creator: String,
    /// `YYYY-MM-DD HH:MM:SS` (UTC).
    pub(super) create_time: String,
    pub(super) editor: String,
    pub(super) edit_time: String,
    /// Always `Default`.
    pub(super) category: String,
    /// The business, as text (bk-sops writes it so in template lists).
    pub(super) bk_biz_id: String,
    pub(super) bk_biz_name: String,
    pub(super) project_id: i64,
    pub(super) project_name: String,
}

/// A template with its tree (`get_template_info`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TemplateInfo {
    #[serde(flatten)]
    pub(super) template: Template,
    #[schema(value_type = Object)]
    pub(super) pipeline_tree: Value,
}

/// A template made (`create_template`) or imported (`import`, with the id it had in the export).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TemplateMade {
    pub(super) template_id: i64,
    pub(super) template_name: String,
    pub(super) pipeline_template_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) old_id: Option<String>,
}

/// The templates of an export (`import`, `import_project_template`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Imported {
    pub(super) count: usize,
    pub(super) templates: Vec<TemplateMade>,
}

/// A tree without the nodes left out (`preview_task_tree`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Preview {
    #[schema(value_type = Object)]
    pub(super) pipeline_tree: Value,
    /// The template's constants the tree no longer refers to, by key.
    #[schema(value_type = Object)]
    pub(super) constants_not_referred: Map<String, Value>,
}

/// A task made (`create_task`, `fast_create_task`, `create_and_start_task`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TaskMade {
    pub(super) task_id: i64,
    pub(super) task_url: String,
    /// The tree the task runs, with its constant values.
    #[schema(value_type = Object)]
    pub(super) pipeline_tree: Value,
}

/// A task in a list (`get_task_list`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TaskListed {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) category: String,
    pub(super) create_time: String,
    pub(super) creator: String,
    pub(super) executor: String,
    pub(super) start_time: Option<String>,
    pub(super) finish_time: Option<String>,
    pub(super) is_started: bool,
    pub(super) is_finished: bool,
    /// Always `project`.
    pub(super) template_source: String,
    pub(super) template_id: String,
    pub(super) bk_biz_id: i64,
    pub(super) bk_biz_name: String,
    pub(super) project_id: i64,
    pub(super) project_name: String,
}

/// A task's status among others (`get_tasks_status`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TaskStatusOf {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) flow_type: String,
    pub(super) create_time: String,
    pub(super) start_time: String,
    pub(super) url: String,
    pub(super) status: StateTree,
}

/// A task with its tree, constants and outputs (`get_task_detail`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TaskDetail {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) instance_name: String,
    pub(super) creator: String,
    pub(super) executor: String,
    pub(super) create_method: String,
    pub(super) create_time: String,
    pub(super) start_time: String,
    pub(super) end_time: String,
    pub(super) finish_time: String,
    /// Seconds, until now while it runs.
    pub(super) elapsed_time: i64,
    pub(super) project_id: i64,
    pub(super) project_name: String,
    pub(super) business_id: i64,
    pub(super) business_name: String,
    pub(super) template_id: String,
    pub(super) task_url: String,
    /// The tree's constants with the task's values, by key.
    #[schema(value_type = Object)]
    pub(super) constants: Map<String, Value>,
    pub(super) outputs: Vec<TaskOutput>,
    /// The failure that stopped it, if any.
    pub(super) ex_data: String,
    #[schema(value_type = Object)]
    pub(super) pipeline_tree: Value,
}

/// One of the outputs a tree names, with its value in the task.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TaskOutput {
    pub(super) key: String,
    /// The constant's name (its key when it has none).
    #[schema(value_type = String)]
    pub(super) name: Value,
    pub(super) value: Value,
}

/// A node's latest run (`get_task_node_data`, and with its earlier runs `get_task_node_detail`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct NodeDetail {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) state: State,
    /// Its inputs, by name.
    #[schema(value_type = Object)]
    pub(super) inputs: Value,
    pub(super) outputs: Vec<NodeOutput>,
    /// Its failure, if it failed.
    pub(super) ex_data: String,
    pub(super) start_time: String,
    pub(super) finish_time: String,
    pub(super) elapsed_time: i64,
    /// Failed runs run again.
    pub(super) retry: usize,
    pub(super) skip: bool,
    /// How many times it ran.
    #[serde(rename = "loop")]
    pub(super) loops: usize,
    pub(super) component_code: String,
    /// Its earlier failed runs (`get_task_node_detail` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) histories: Option<Vec<NodeRun>>,
}

/// One output of a node.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct NodeOutput {
    pub(super) key: String,
    pub(super) name: String,
    pub(super) value: Value,
    pub(super) preset: bool,
}

/// An earlier, failed run of a node.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct NodeRun {
    pub(super) state: State,
    #[schema(value_type = Object)]
    pub(super) inputs: Value,
    pub(super) ex_data: String,
    pub(super) start_time: String,
    pub(super) finish_time: String,
}
