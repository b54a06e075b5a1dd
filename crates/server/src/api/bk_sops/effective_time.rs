//! `get_task_effective_time`: how long a finished task worked, without the time its nodes
//! spent waiting for people or for the clock.

use super::{Call, instance_of, task_of, time, times};
use crate::error::ApiError;
use crate::runtime::status_named;
use flowstone_engine::InstanceStatus;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// The components whose time is waiting, as bk-sops leaves them out by default.
const WAITING: [&str; 4] = ["bk_approve", "pause_node", "sleep_timer", "bot-approval"];

/// How long a finished task worked (`get_task_effective_time`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EffectiveTime {
    pub(super) task_instance_id: i64,
    /// The process instance.
    pub(super) instance_id: String,
    /// The template's `pipeline_template_id`.
    pub(super) template_id: String,
    pub(super) task_template_id: String,
    pub(super) project_id: i64,
    pub(super) creator: String,
    pub(super) create_method: String,
    pub(super) create_time: String,
    pub(super) start_time: String,
    pub(super) finish_time: String,
    /// Seconds from start to finish.
    pub(super) total_elapsed_time: i64,
    /// Seconds without the runs of waiting components.
    pub(super) effective_time: i64,
    pub(super) excluded_node_count: usize,
    pub(super) total_node_count: usize,
    pub(super) excluded_component_codes: Vec<String>,
    pub(super) category: String,
}

/// A finished task's `total_elapsed_time` and `effective_time` (seconds): the latter without
/// the runs of [`WAITING`] components. A task not finished, or revoked, is refused (409), as in
/// bk-sops.
pub(super) async fn effective_time(c: &Call<'_>) -> Result<Value, ApiError> {
    let task = task_of(c, c.number("task_id")?).await?;
    let instance = instance_of(c, &task).await?;
    let Some(instance) = instance.filter(|p| p.end_time.is_some()) else {
        return Err(ApiError::conflict(format!("task {} is not finished", task.id)));
    };
    if status_named(&instance.status) != Some(InstanceStatus::Completed) {
        return Err(ApiError::conflict(format!(
            "task {} ended {} instead of finishing: its effective time cannot be told",
            task.id, instance.status
        )));
    }
    let records = c.rt.tasks_of_instance(&instance.id).await?;
    let mut waited_ms = 0;
    let (mut runs, mut excluded) = (0, 0);
    for r in records.iter().map(|r| &r.record) {
        runs += 1;
        if r.stone.as_deref().is_some_and(|s| WAITING.contains(&s)) {
            excluded += 1;
            waited_ms += r.end_time.unwrap_or(r.create_time) - r.create_time;
        }
    }
    let template = match task.template_id {
        Some(id) => c.rt.store().template(id).await?,
        None => None,
    };
    let (start, end, elapsed) = times(Some(&instance));
    Ok(json!(EffectiveTime {
        task_instance_id: task.id,
        instance_id: instance.id,
        template_id: template.map(|t| t.pipeline_template_id).unwrap_or_default(),
        task_template_id: task.template_id.map(|t| t.to_string()).unwrap_or_default(),
        project_id: task.biz_id,
        creator: task.creator,
        create_method: task.create_method,
        create_time: time(task.created_at),
        start_time: start.map(time).unwrap_or_default(),
        finish_time: end.map(time).unwrap_or_default(),
        total_elapsed_time: elapsed,
        effective_time: (elapsed - waited_ms / 1000).max(0),
        excluded_node_count: excluded,
        total_node_count: runs,
        excluded_component_codes: WAITING.map(str::to_owned).into(),
        category: "Default".to_owned(),
    }))
}
