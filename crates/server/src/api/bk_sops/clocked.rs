//! bk-sops' clocked tasks: `create_clocked_task` plans a task of a template for a time,
//! `get_clocked_task_list` lists a business's plans, with bk-sops' parameters and answers. A
//! planned time without an offset is UTC.

use super::{Call, Reply, bad, template_of, tree_of, trimmed, zoned_time};
use crate::error::ApiError;
use crate::runtime::{Tree, now_ms, pipeline_key};
use flowstone_store::{ClockedQuery, ClockedRow, Page};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// What the user may do with a clocked task (every caller may do all of it here).
const AUTH_ACTIONS: [&str; 4] = ["clocked_task_view", "clocked_task_edit", "clocked_task_delete", "flow_view"];

/// The states of a clocked task.
const STATES: [&str; 3] = ["not_started", "started", "start_failed"];

/// The ways `task_parameters` may name the nodes a task runs; one at most.
const NODE_CHOICES: [&str; 3] = ["exclude_task_nodes_id", "template_schemes_id", "appoint_task_nodes_id"];

/// A clocked task as bk-sops shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Clocked {
    id: i64,
    /// What its task is made with: `constants`, `template_schemes_id`, …, as given.
    #[schema(value_type = Object)]
    task_parameters: Value,
    creator: String,
    editor: String,
    /// `not_started`, `started` or `start_failed`.
    state: String,
    /// When its task is made: `YYYY-MM-DD HH:MM:SS+0000` (lists: `… +0000`).
    plan_start_time: String,
    create_time: String,
    edit_time: String,
    /// The business.
    project_id: i64,
    /// The task it made, once it did.
    task_id: Option<i64>,
    task_name: String,
    template_id: i64,
    template_name: String,
    /// Always `project`.
    template_source: String,
    /// In lists: the id of its timer's schedule (its own id here).
    #[serde(skip_serializing_if = "Option::is_none")]
    clocked_task_id: Option<i64>,
    /// In lists: what the caller may do with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_actions: Option<Vec<String>>,
}

/// `create_clocked_task`: plans a task of a template (`task_name`, `plan_start_time`, and
/// `task_parameters` with `constants` and the nodes left out) for a time to come.
pub(super) async fn create(c: &Call<'_>) -> Result<Value, ApiError> {
    let task_name = c.required("task_name")?;
    let planned = plan_time(&c.required("plan_start_time")?)?;
    if planned <= now_ms() {
        return Err(bad("plan_start_time: Plan start time should be later than the time to create the plan"));
    }
    let params = match c.json("task_parameters")? {
        None => json!({"constants": {}, "template_schemes_id": []}),
        Some(Value::Object(p)) => Value::Object(p),
        Some(_) => return Err(bad("parameter `task_parameters` must be an object of constants and nodes")),
    };
    if !params.get("constants").is_none_or(Value::is_object) {
        return Err(bad("`task_parameters.constants` must be an object of `${KEY}: value`"));
    }
    let chosen: Vec<&str> = NODE_CHOICES.into_iter().filter(|k| params.get(*k).is_some_and(non_empty)).collect();
    match chosen.as_slice() {
        [] | ["exclude_task_nodes_id"] => {}
        [_] => {
            return Err(ApiError::not_implemented(format!(
                "`task_parameters.{}` is not served: execution schemes and appointed nodes are not kept; leave nodes \
                 out with `exclude_task_nodes_id`",
                chosen[0]
            )));
        }
        _ => return Err(bad("can not use multiple method to appoint execute nodes")),
    }
    let template = template_of(c).await?;
    let tree = tree_of(c, &template.model_id).await?;
    let left_out: Vec<String> = match params.get("exclude_task_nodes_id") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| id.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("`task_parameters.exclude_task_nodes_id` must list node ids"))?,
        Some(_) => return Err(bad("`task_parameters.exclude_task_nodes_id` must be a list of node ids")),
    };
    let (tree, model_id, own) = trimmed(tree, Some(template.model_id.clone()), &left_out)?;
    let now = now_ms();
    let row = ClockedRow {
        id: 0,
        biz_id: template.biz_id,
        template_id: template.id,
        template_name: template.name.clone(),
        task_name,
        creator: c.user.clone(),
        editor: String::new(),
        model_id,
        task_params: params.to_string(),
        plan_start_time: planned,
        state: STATES[0].into(),
        task_id: None,
        created_at: now,
        edited_at: now,
    };
    let (key, name) = (pipeline_key(), row.task_name.clone());
    let own = own.then(|| Tree { tree: &tree, key: &key, name: &name });
    let row = c.rt.create_clocked(own, row).await?;
    Ok(json!(shown(&row, offset_time)))
}

/// `get_clocked_task_list`: a business's clocked tasks, newest first, filtered by `id`,
/// `task_name`, `creator`, `editor` (each contained, any case) and `state`, `limit` (default
/// 100) from `offset`, with `count` beside `data`.
pub(super) async fn list(c: &Call<'_>) -> Result<Reply, ApiError> {
    let state = c.text("state");
    if let Some(state) = state.as_deref().filter(|s| !STATES.contains(s)) {
        return Err(bad(format!("parameter `state` is `{state}`; it is one of {}", STATES.join(", "))));
    }
    let query = ClockedQuery {
        biz_id: c.number("bk_biz_id")?,
        id: c.text("id").map(|_| c.number("id")).transpose()?,
        task_name: c.text("task_name"),
        creator: c.text("creator"),
        editor: c.text("editor"),
        state,
    };
    let limit = c.text("limit").map_or(Ok(100), |_| c.number("limit"))?;
    let offset = c.text("offset").map_or(Ok(0), |_| c.number("offset"))?;
    if !(1..=1000).contains(&limit) || offset < 0 {
        return Err(bad(format!("`limit` must be from 1 to 1000 and `offset` not negative, not {limit} and {offset}")));
    }
    let page = Page { offset: offset as u64, limit: limit as u64 };
    let (rows, count) = c.rt.store().clocked_tasks(&query, page).await?;
    let listed: Vec<Clocked> = rows
        .iter()
        .map(|row| Clocked {
            clocked_task_id: Some(row.id),
            auth_actions: Some(AUTH_ACTIONS.map(str::to_owned).to_vec()),
            ..shown(row, |ms| zoned_time(Some(ms)))
        })
        .collect();
    Ok(Reply { data: json!(listed), count: Some(count) })
}

/// Whether a parameter of `task_parameters` names anything.
fn non_empty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// A clocked task, its times written by `time`.
fn shown(row: &ClockedRow, time: fn(i64) -> String) -> Clocked {
    Clocked {
        id: row.id,
        task_parameters: serde_json::from_str(&row.task_params).unwrap_or_else(|_| json!({})),
        creator: row.creator.clone(),
        editor: row.editor.clone(),
        state: row.state.clone(),
        plan_start_time: time(row.plan_start_time),
        create_time: time(row.created_at),
        edit_time: time(row.edited_at),
        project_id: row.biz_id,
        task_id: row.task_id,
        task_name: row.task_name.clone(),
        template_id: row.template_id,
        template_name: row.template_name.clone(),
        template_source: "project".into(),
        clocked_task_id: None,
        auth_actions: None,
    }
}

/// A time as bk-sops' clocked task serializer writes it: `YYYY-MM-DD HH:MM:SS+0000`.
fn offset_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.strftime("%Y-%m-%d %H:%M:%S+0000").to_string()).unwrap_or_default()
}

/// A planned time: `2022-05-16 20:26:40+0800` (bk-sops' form), an ISO-8601 date-time with an
/// offset, or one without (UTC).
fn plan_time(text: &str) -> Result<i64, ApiError> {
    let text = text.trim();
    let zoned = jiff::fmt::strtime::parse("%Y-%m-%d %H:%M:%S%z", text).and_then(|t| t.to_timestamp());
    let at = zoned
        .or_else(|_| text.parse::<jiff::Timestamp>())
        .or_else(|_| {
            text.parse::<jiff::civil::DateTime>()
                .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
                .map(|z| z.timestamp())
        })
        .map_err(|_| bad(format!("plan_start_time `{text}` is not a time such as `2022-05-16 20:26:40+0800`")))?;
    Ok(at.as_millisecond())
}
