//! bk-sops' periodic tasks: `create_periodic_task`, `get_periodic_task_list`,
//! `get_periodic_task_info`, `set_periodic_task_enabled`, `modify_cron_for_periodic_task` and
//! `modify_constants_for_periodic_task`, with bk-sops' parameters and answers. As bk-sops
//! makes them, a new periodic task is disabled until `set_periodic_task_enabled` enables it;
//! its crontab runs in UTC.

use super::{Call, bad, left_out_nodes, template_of, tree_of, trimmed, with_constants, zoned_time};
use crate::error::ApiError;
use crate::runtime::{Crontab, Tree, now_ms, pipeline_key};
use flowstone_store::{PeriodicChange, PeriodicRow};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// The most periodic tasks a business may have (bk-sops' default
/// `PERIODIC_TASK_PROJECT_MAX_NUMBER`).
const MOST_PER_BUSINESS: usize = 50;

/// What the user may do with a periodic task (every caller may do all of it here).
const AUTH_ACTIONS: [&str; 3] = ["periodic_task_view", "periodic_task_delete", "periodic_task_edit"];

/// A periodic task as bk-sops shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Periodic {
    id: i64,
    name: String,
    /// The template, as text (bk-sops keeps it so).
    template_id: String,
    /// Always `project` (a business's template).
    template_source: String,
    creator: String,
    /// `minute hour day_of_week day_of_month month_of_year (m/h/d/dM/MY)`.
    cron: String,
    enabled: bool,
    /// `YYYY-MM-DD HH:MM:SS +0000`, empty before the first run.
    last_run_at: String,
    total_run_count: i64,
    /// With `include_edit_info`: who changed it last.
    #[serde(skip_serializing_if = "Option::is_none")]
    editor: Option<String>,
    /// With `include_edit_info`: when.
    #[serde(skip_serializing_if = "Option::is_none")]
    edit_time: Option<String>,
    /// With `include_edit_info`: whether its template is as it was when it was made (always).
    #[serde(skip_serializing_if = "Option::is_none")]
    is_latest: Option<bool>,
    /// In lists: what the caller may do with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_actions: Option<Vec<String>>,
    /// In details: the constants a user sets (those shown), by key.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    form: Option<Value>,
    /// In details: the tree its tasks run, with its constants' values.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pipeline_tree: Option<Value>,
}

/// `create_periodic_task`: a periodic task of a template with a crontab, constants and nodes
/// left out; answers it in detail.
pub(super) async fn create(c: &Call<'_>) -> Result<Value, ApiError> {
    let name = c.required("name")?;
    let biz_id = c.number("bk_biz_id")?;
    if let Some(source) = c.text("template_source").filter(|s| !matches!(s.as_str(), "business" | "project")) {
        return Err(ApiError::not_implemented(format!(
            "template_source `{source}` is not served: common (cross-business) templates are not built"
        )));
    }
    let cron = crontab(c)?;
    let constants = constants(c)?;
    let template = template_of(c).await?;
    if c.rt.store().periodic_tasks_of(biz_id).await?.len() >= MOST_PER_BUSINESS {
        return Err(ApiError::conflict(format!("Periodic task number reaches limit: {MOST_PER_BUSINESS}")));
    }
    let tree = tree_of(c, &template.model_id).await?;
    let left_out = left_out_nodes(c, &tree)?;
    let (tree, model_id, own) = trimmed(tree, Some(template.model_id.clone()), &left_out)?;
    let defined = tree.get("constants").and_then(Value::as_object);
    let constants: Map<String, Value> =
        constants.into_iter().filter(|(key, _)| defined.is_some_and(|d| d.contains_key(key))).collect();
    let now = now_ms();
    let row = PeriodicRow {
        id: 0,
        biz_id,
        template_id: template.id,
        name,
        creator: c.user.clone(),
        model_id,
        constants: Value::Object(constants).to_string(),
        cron: serde_json::to_string(&cron).map_err(|e| bad(e.to_string()))?,
        enabled: false,
        total_run_count: 0,
        last_run_at: None,
        editor: Some(String::new()),
        edited_at: Some(now),
        created_at: now,
    };
    let (key, name) = (pipeline_key(), row.name.clone());
    let own = own.then(|| Tree { tree: &tree, key: &key, name: &name });
    let row = c.rt.create_periodic(own, row).await?;
    detail(c, &row).await
}

/// `get_periodic_task_list`: a business's periodic tasks, by id.
pub(super) async fn list(c: &Call<'_>) -> Result<Value, ApiError> {
    let biz_id = c.number("bk_biz_id")?;
    let edit_info = c.flag("include_edit_info")?.unwrap_or(false);
    let rows = c.rt.store().periodic_tasks_of(biz_id).await?;
    let listed = rows.iter().map(|row| {
        let mut p = shown(row, edit_info);
        p.auth_actions = Some(AUTH_ACTIONS.map(str::to_owned).to_vec());
        p
    });
    Ok(json!(listed.collect::<Vec<_>>()))
}

/// `get_periodic_task_info`: a periodic task with its form and tree.
pub(super) async fn info(c: &Call<'_>) -> Result<Value, ApiError> {
    let row = periodic_of(c).await?;
    detail(c, &row).await
}

/// `set_periodic_task_enabled`: enables it (its first task is made when its crontab next
/// comes due) or disables it (`enabled` left out: false, as in bk-sops).
pub(super) async fn set_enabled(c: &Call<'_>) -> Result<Value, ApiError> {
    let row = periodic_of(c).await?;
    let enabled = c.flag("enabled")?.unwrap_or(false);
    c.rt.change_periodic(&row, change(c, &row, |ch| ch.enabled = Some(enabled))).await?;
    Ok(json!({"enabled": enabled}))
}

/// `modify_cron_for_periodic_task`: a new crontab, from now on.
pub(super) async fn modify_cron(c: &Call<'_>) -> Result<Value, ApiError> {
    let row = periodic_of(c).await?;
    let cron = crontab(c)?;
    let text = serde_json::to_string(&cron).map_err(|e| bad(e.to_string()))?;
    c.rt.change_periodic(&row, change(c, &row, |ch| ch.cron = Some(text))).await?;
    Ok(json!({"cron": cron.text()}))
}

/// `modify_constants_for_periodic_task`: sets the values of the constants its tree defines
/// (others are ignored, as bk-sops ignores them); answers every constant of the tree.
pub(super) async fn modify_constants(c: &Call<'_>) -> Result<Value, ApiError> {
    let row = periodic_of(c).await?;
    let given = constants(c)?;
    let tree = tree_of(c, &row.model_id).await?;
    let defined = tree.get("constants").and_then(Value::as_object);
    let mut constants: Map<String, Value> = serde_json::from_str(&row.constants).unwrap_or_default();
    constants.extend(given.into_iter().filter(|(key, _)| defined.is_some_and(|d| d.contains_key(key))));
    let text = Value::Object(constants.clone()).to_string();
    c.rt.change_periodic(&row, change(c, &row, |ch| ch.constants = Some(text))).await?;
    Ok(with_constants(tree, &constants).get("constants").cloned().unwrap_or_else(|| json!({})))
}

/// The periodic task `task_id` of the call's business.
async fn periodic_of(c: &Call<'_>) -> Result<PeriodicRow, ApiError> {
    let id = c.number("task_id")?;
    let biz = c.number("bk_biz_id")?;
    let row = c.rt.store().periodic_task(id).await?.filter(|p| p.biz_id == biz);
    row.ok_or_else(|| ApiError::not_found(format!("task({id}) does not exist")))
}

/// A change of `row` by the caller, now.
fn change(c: &Call<'_>, row: &PeriodicRow, set: impl FnOnce(&mut PeriodicChange)) -> PeriodicChange {
    let mut change = PeriodicChange { id: row.id, editor: c.user.clone(), at: now_ms(), ..PeriodicChange::default() };
    set(&mut change);
    change
}

/// The call's `cron`: an object of crontab fields (or text holding one).
fn crontab(c: &Call<'_>) -> Result<Crontab, ApiError> {
    match c.json("cron")? {
        Some(Value::Object(fields)) => Crontab::from_fields(&fields).map_err(bad),
        Some(_) => {
            Err(bad("parameter `cron` must be an object of minute, hour, day_of_week, day_of_month, month_of_year"))
        }
        None => Err(bad("parameter `cron` is required")),
    }
}

/// The call's `constants`: `{"${KEY}": value}`.
fn constants(c: &Call<'_>) -> Result<Map<String, Value>, ApiError> {
    match c.json("constants")? {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(bad("parameter `constants` must be an object of `${KEY}: value`")),
    }
}

/// A periodic task as lists show it.
fn shown(row: &PeriodicRow, edit_info: bool) -> Periodic {
    let cron = Crontab::of(row).map(|c| c.text()).unwrap_or_default();
    Periodic {
        id: row.id,
        name: row.name.clone(),
        template_id: row.template_id.to_string(),
        template_source: "project".into(),
        creator: row.creator.clone(),
        cron,
        enabled: row.enabled,
        last_run_at: zoned_time(row.last_run_at),
        total_run_count: row.total_run_count,
        editor: edit_info.then(|| row.editor.clone().unwrap_or_default()),
        edit_time: edit_info.then(|| zoned_time(row.edited_at)),
        is_latest: edit_info.then_some(true),
        auth_actions: None,
        form: None,
        pipeline_tree: None,
    }
}

/// A periodic task in detail: its form (the constants shown) and its tree with its values.
async fn detail(c: &Call<'_>, row: &PeriodicRow) -> Result<Value, ApiError> {
    let constants: Map<String, Value> = serde_json::from_str(&row.constants).unwrap_or_default();
    let tree = with_constants(tree_of(c, &row.model_id).await?, &constants);
    let form: Map<String, Value> = tree["constants"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.get("show_type").is_none_or(|s| s == "show"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut p = shown(row, c.flag("include_edit_info")?.unwrap_or(false));
    p.form = Some(Value::Object(form));
    p.pipeline_tree = Some(tree);
    Ok(json!(p))
}
