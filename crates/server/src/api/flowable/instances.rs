//! `runtime/process-instances` (start, get, list, delete, variables) and the history queries
//! `history/historic-process-instances` and `history/historic-task-instances`.
//!
//! A running instance is a runtime process instance; once it ended only the history shows
//! it, as in Flowable.

use super::repository::{definition_not_found, model_tenant};
use super::tasks::{instance_values, local_values};
use super::variables::{RestVariable, left_out_if_big, type_name, variables};
use super::{FlowableResult, Paging, Params, SERVICE, iso_time, origin, query_map, service_url};
use crate::api::input::{Body, json_object};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::runtime::Runtime;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use flowstone_engine::{Command, StartOptions};
use flowstone_store::{InstanceFilter, InstanceRow, TaskOrder, UserTaskQuery, UserTaskRow};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub(super) fn routes() -> Router<crate::api::App> {
    let at = |path: &str| format!("{SERVICE}/{path}");
    Router::new()
        .route(&at("runtime/process-instances"), get(list_running).post(start))
        .route(&at("query/process-instances"), post(query_running))
        .route(&at("runtime/process-instances/{id}"), get(get_running).delete(delete_running))
        .route(
            &at("runtime/process-instances/{id}/variables"),
            get(list_variables).put(put_variables).post(create_variables),
        )
        .route(
            &at("runtime/process-instances/{id}/variables/{name}"),
            get(get_variable).put(put_variable).delete(delete_variable),
        )
        .route(&at("history/historic-process-instances"), get(list_history))
        .route(&at("query/historic-process-instances"), post(query_history))
        .route(&at("history/historic-process-instances/{id}"), get(get_history))
        .route(&at("history/historic-task-instances"), get(list_task_history))
        .route(&at("query/historic-task-instances"), post(query_task_history))
        .route(&at("history/historic-task-instances/{id}"), get(get_task_history))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Could not find a process instance with id '{id}'."))
}

/// A running process instance as `runtime/process-instances` shows it.
fn instance_json(origin: &str, p: &InstanceRow, tenant: Option<&str>, variables: Option<Vec<Value>>) -> Value {
    json!({
        "id": p.id,
        "url": service_url(origin, &format!("runtime/process-instances/{}", p.id)),
        "name": p.name,
        "businessKey": p.business_key,
        "suspended": false,
        "ended": p.end_time.is_some(),
        "completed": p.status == "completed",
        "processDefinitionId": p.model_id,
        "processDefinitionUrl": service_url(origin, &format!("repository/process-definitions/{}", p.model_id)),
        "processDefinitionKey": p.model_key,
        "activityId": null,
        "startUserId": p.start_user,
        "startTime": iso_time(p.start_time),
        "superProcessInstanceId": null,
        "tenantId": tenant,
        "variables": variables.unwrap_or_default(),
    })
}

/// An instance as `history/historic-process-instances` shows it.
fn history_json(origin: &str, p: &InstanceRow, tenant: Option<&str>, variables: Option<Vec<Value>>) -> Value {
    json!({
        "id": p.id,
        "url": service_url(origin, &format!("history/historic-process-instances/{}", p.id)),
        "name": p.name,
        "businessKey": p.business_key,
        "processDefinitionId": p.model_id,
        "processDefinitionUrl": service_url(origin, &format!("repository/process-definitions/{}", p.model_id)),
        "processDefinitionKey": p.model_key,
        "startTime": iso_time(p.start_time),
        "endTime": p.end_time.map_or(Value::Null, iso_time),
        "durationInMillis": p.end_time.map(|e| e - p.start_time),
        "startUserId": p.start_user,
        "startActivityId": null,
        "endActivityId": p.end_element,
        // How it ended other than at an end event: canceled, or the failure that stopped it.
        "deleteReason": match p.status.as_str() {
            "canceled" => json!("canceled"),
            "failed" => json!(p.failure.clone().unwrap_or_else(|| "failed".into())),
            _ => Value::Null,
        },
        // A rollback, cancel or delete process is found under the process it works for.
        "superProcessInstanceId": p.parent_id,
        "variables": variables,
        "tenantId": tenant,
    })
}

/// Process variables as Flowable lists them on an instance.
fn variable_list(vars: &Map<String, Value>) -> Vec<Value> {
    vars.iter().map(|(name, value)| variable_json(name, value)).collect()
}

/// Variables as the history lists them: `variableScope` instead of `scope`.
fn history_variables(vars: &Map<String, Value>, scope: &str) -> Vec<Value> {
    vars.iter()
        .map(|(name, value)| json!({"name": name, "type": type_name(value), "value": value, "variableScope": scope}))
        .collect()
}

fn variable_json(name: &str, value: &Value) -> Value {
    json!({"name": name, "type": type_name(value), "value": value, "scope": "local"})
}

async fn tenant_of(rt: &Runtime, p: &InstanceRow) -> Result<Option<String>, ApiError> {
    model_tenant(rt, &p.model_id).await
}

/// A running process instance (kind `process`), or 404.
async fn running(rt: &Runtime, id: &str) -> Result<InstanceRow, ApiError> {
    let p = rt.store().instance(id).await?.filter(|p| p.kind == "process" && p.end_time.is_none());
    p.ok_or_else(|| not_found(id))
}

/// `POST runtime/process-instances`: by `processDefinitionId`, `processDefinitionKey`
/// (optionally within `tenantId`) or `message`.
async fn start(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<(StatusCode, Json<Value>)> {
    let body = json_object(&body, false)?;
    let p = Params(&body);
    let by_id = p.text("processDefinitionId");
    let by_key = p.text("processDefinitionKey");
    let message = p.text("message");
    let given = [&by_id, &by_key, &message].iter().filter(|v| v.is_some()).count();
    if given != 1 {
        return Err(ApiError::bad_request(
            "Either processDefinitionId, processDefinitionKey or message is required, and only one of them",
        )
        .into());
    }
    if let Some(message) = message {
        return Err(ApiError::bad_request(format!(
            "No process definition starts with message '{message}': message start events are not supported"
        ))
        .into());
    }
    let tenant = caller.tenant_limit().map(str::to_owned).or_else(|| p.text("tenantId"));
    let model = match (by_id, by_key) {
        (Some(id), _) => rt
            .model(&id)
            .await?
            .filter(|m| caller.within(m.tenant_id.as_deref()))
            .ok_or_else(|| definition_not_found(&id))?,
        (None, Some(key)) => latest_in_tenant(&rt, &key, tenant.as_deref()).await?,
        (None, None) => {
            return Err(ApiError::bad_request("processDefinitionId or processDefinitionKey is required").into());
        }
    };
    let list: Vec<RestVariable> = match body.get("variables") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| ApiError::bad_request(format!("'variables' must be a list of {{name, type, value}}: {e}")))?,
    };
    let vars = variables(list)?;
    let options = StartOptions { initiator: Some(caller.user), ..StartOptions::default() };
    let name = p.text("name").unwrap_or_else(|| model.name.clone().unwrap_or_else(|| model.key.clone()));
    let row = rt.start_instance(model, name, p.text("businessKey"), vars, options).await?;
    let shown = if p.flag("returnVariables")? == Some(true) {
        Some(variable_list(&rt.variables(&row.id).await?.unwrap_or_default()))
    } else {
        None
    };
    let tenant = tenant_of(&rt, &row).await?;
    Ok((StatusCode::CREATED, Json(instance_json(&origin(&headers), &row, tenant.as_deref(), shown))))
}

/// The newest version of `key`; within `tenant` when one is given.
async fn latest_in_tenant(
    rt: &Runtime,
    key: &str,
    tenant: Option<&str>,
) -> Result<std::sync::Arc<flowstone_store::ModelRow>, ApiError> {
    let missing = || ApiError::not_found(format!("No process definition found with key '{key}'"));
    let Some(tenant) = tenant else { return rt.latest_model(key).await?.ok_or_else(missing) };
    let newest = flowstone_store::Page { offset: 0, limit: 1 };
    let (mut models, _) = rt.store().list_models(Some(key), Some(tenant), newest).await?;
    models.pop().map(std::sync::Arc::new).ok_or_else(|| {
        ApiError::not_found(format!("No process definition found with key '{key}' in tenant '{tenant}'"))
    })
}

async fn get_running(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Value>> {
    let p = running(&rt, &id).await?;
    let tenant = tenant_of(&rt, &p).await?;
    Ok(Json(instance_json(&origin(&headers), &p, tenant.as_deref(), None)))
}

/// `DELETE runtime/process-instances/{id}`: stops it; its open tasks are canceled.
async fn delete_running(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<StatusCode> {
    running(&rt, &id).await?;
    rt.apply(&id, Command::Cancel).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists instances: `history` shows them as the history does, and reads `finished`.
/// Only those `caller` may see: their own unless they operate, of their tenant if they have one.
async fn list_instances(
    rt: &Runtime,
    origin: &str,
    params: &Map<String, Value>,
    history: bool,
    caller: &Caller,
) -> Result<Value, ApiError> {
    let p = Params(params);
    let paging = Paging::read(&p, &["id"])?;
    if p.flag("suspended")? == Some(true) {
        // No instance is ever suspended.
        return Ok(paging.envelope(Vec::new(), 0));
    }
    let filter = InstanceFilter {
        id: p.text("processInstanceId").or_else(|| p.text("id")),
        model_key: p.text("processDefinitionKey"),
        model_id: p.text("processDefinitionId"),
        business_key: p.text("businessKey").or_else(|| p.text("processBusinessKey")),
        // The history holds every process, the rollback, cancel and delete ones too.
        kind: if history { None } else { Some("process".into()) },
        ended: if history { p.flag("finished")? } else { Some(false) },
        start_user: caller.own_instances().or_else(|| p.text("startedBy")),
        tenant_id: caller.tenant_limit().map(str::to_owned),
        oldest_first: !paging.descending,
        ..InstanceFilter::default()
    };
    let with_vars = p.flag("includeProcessVariables")? == Some(true);
    let (rows, total) = rt.store().list_instances(&filter, paging.page()).await?;
    let mut data = Vec::with_capacity(rows.len());
    for row in &rows {
        let tenant = model_tenant(rt, &row.model_id).await?;
        let vars = if with_vars {
            let vars = rt.variables(&row.id).await?.unwrap_or_default();
            let listed = if history { history_variables(&vars, "local") } else { variable_list(&vars) };
            let url = |name: &Value| {
                let name = name.as_str().unwrap_or_default();
                service_url(origin, &format!("runtime/process-instances/{}/variables/{name}", row.id))
            };
            Some(
                listed
                    .into_iter()
                    .map(|v| {
                        let name = v["name"].clone();
                        left_out_if_big(v, || url(&name))
                    })
                    .collect(),
            )
        } else {
            None
        };
        data.push(if history {
            history_json(origin, row, tenant.as_deref(), vars)
        } else {
            instance_json(origin, row, tenant.as_deref(), vars)
        });
    }
    Ok(paging.envelope(data, total))
}

async fn list_running(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Value>> {
    Ok(Json(list_instances(&rt, &origin(&headers), &query_map(q.as_deref())?, false, &caller).await?))
}

async fn query_running(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<Json<Value>> {
    Ok(Json(list_instances(&rt, &origin(&headers), &json_object(&body, true)?, false, &caller).await?))
}

async fn list_history(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Value>> {
    Ok(Json(list_instances(&rt, &origin(&headers), &query_map(q.as_deref())?, true, &caller).await?))
}

async fn query_history(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<Json<Value>> {
    Ok(Json(list_instances(&rt, &origin(&headers), &json_object(&body, true)?, true, &caller).await?))
}

async fn get_history(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Value>> {
    let p = rt.store().instance(&id).await?.ok_or_else(|| not_found(&id))?;
    let tenant = tenant_of(&rt, &p).await?;
    let vars = history_variables(&rt.variables(&id).await?.unwrap_or_default(), "local");
    Ok(Json(history_json(&origin(&headers), &p, tenant.as_deref(), Some(vars))))
}

// ---- variables -----------------------------------------------------------------------------

async fn current_variables(rt: &Runtime, id: &str) -> Result<Map<String, Value>, ApiError> {
    running(rt, id).await?;
    Ok(rt.variables(id).await?.unwrap_or_default())
}

async fn list_variables(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<Json<Value>> {
    Ok(Json(Value::Array(variable_list(&current_variables(&rt, &id).await?))))
}

fn variable_not_found(id: &str, name: &str) -> ApiError {
    ApiError::not_found(format!("Process instance '{id}' does not have a variable with name: '{name}'."))
}

async fn get_variable(
    State(rt): State<Runtime>,
    Path((id, name)): Path<(String, String)>,
) -> FlowableResult<Json<Value>> {
    let vars = current_variables(&rt, &id).await?;
    let value = vars.get(&name).ok_or_else(|| variable_not_found(&id, &name))?;
    Ok(Json(variable_json(&name, value)))
}

/// The variables of a body: a JSON list of `{name, type, value}`.
fn body_variables(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let list: Vec<RestVariable> = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body must be a list of {{name, type, value}}: {e}")))?;
    if list.is_empty() {
        return Err(ApiError::bad_request("Request didn't contain a list of variables to create."));
    }
    variables(list)
}

async fn set(rt: &Runtime, id: &str, vars: Map<String, Value>) -> Result<Vec<Value>, ApiError> {
    let shown = variable_list(&vars);
    rt.apply(id, Command::SetVariables { task: None, variables: vars, removed: Vec::new() }).await?;
    Ok(shown)
}

/// `PUT …/variables`: creates or updates each.
async fn put_variables(
    State(rt): State<Runtime>,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<(StatusCode, Json<Value>)> {
    current_variables(&rt, &id).await?;
    let vars = body_variables(&body)?;
    Ok((StatusCode::CREATED, Json(Value::Array(set(&rt, &id, vars).await?))))
}

/// `POST …/variables`: creates them; 409 when one exists.
async fn create_variables(
    State(rt): State<Runtime>,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<(StatusCode, Json<Value>)> {
    let existing = current_variables(&rt, &id).await?;
    let vars = body_variables(&body)?;
    if let Some(name) = vars.keys().find(|n| existing.contains_key(*n)) {
        return Err(ApiError::conflict(format!(
            "Variable '{name}' is already present on process instance '{id}'; update it with PUT instead."
        ))
        .into());
    }
    Ok((StatusCode::CREATED, Json(Value::Array(set(&rt, &id, vars).await?))))
}

async fn put_variable(
    State(rt): State<Runtime>,
    Path((id, name)): Path<(String, String)>,
    Body(body): Body,
) -> FlowableResult<Json<Value>> {
    current_variables(&rt, &id).await?;
    let v: RestVariable = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body must be one {{name, type, value}}: {e}")))?;
    if v.name()? != name {
        return Err(ApiError::bad_request(
            "Variable name in the body should be equal to the name used in the requested URL.",
        )
        .into());
    }
    let vars = variables(vec![v])?;
    let mut shown = set(&rt, &id, vars).await?;
    Ok(Json(shown.pop().unwrap_or(Value::Null)))
}

async fn delete_variable(
    State(rt): State<Runtime>,
    Path((id, name)): Path<(String, String)>,
) -> FlowableResult<StatusCode> {
    if !current_variables(&rt, &id).await?.contains_key(&name) {
        return Err(variable_not_found(&id, &name).into());
    }
    rt.apply(&id, Command::SetVariables { task: None, variables: Map::new(), removed: vec![name] }).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- historic task instances --------------------------------------------------------------

fn task_history_json(origin: &str, t: &UserTaskRow) -> Value {
    let url = |path: Option<String>| path.map_or(Value::Null, |p| json!(service_url(origin, &p)));
    json!({
        "id": t.id,
        "url": service_url(origin, &format!("history/historic-task-instances/{}", t.id)),
        "processDefinitionId": t.model_id,
        "processDefinitionUrl": url(t.model_id.as_ref().map(|m| format!("repository/process-definitions/{m}"))),
        "processInstanceId": t.instance_id,
        "processInstanceUrl": url(t.instance_id.as_ref().map(|i| format!("history/historic-process-instances/{i}"))),
        "executionId": t.instance_id,
        "name": t.name,
        "description": t.description,
        "deleteReason": t.delete_reason,
        "owner": t.owner,
        "assignee": t.assignee,
        "startTime": iso_time(t.create_time),
        "endTime": t.end_time.map_or(Value::Null, iso_time),
        "durationInMillis": t.end_time.map(|e| e - t.create_time),
        "workTimeInMillis": t.end_time.zip(t.claim_time).map(|(e, c)| e - c),
        "claimTime": t.claim_time.map_or(Value::Null, iso_time),
        "taskDefinitionKey": t.element,
        "formKey": t.form_key,
        "priority": t.priority,
        "dueDate": t.due_date.map_or(Value::Null, iso_time),
        "parentTaskId": t.parent_task_id,
        "category": t.category,
        "variables": null,
        "tenantId": t.tenant_id,
    })
}

const TASK_SORTS: [(&str, TaskOrder); 7] = [
    ("taskInstanceId", TaskOrder::Id),
    ("name", TaskOrder::Name),
    ("description", TaskOrder::Description),
    ("priority", TaskOrder::Priority),
    ("assignee", TaskOrder::Assignee),
    ("owner", TaskOrder::Owner),
    ("startTime", TaskOrder::CreateTime),
];

async fn task_history(rt: &Runtime, origin: &str, params: &Map<String, Value>) -> Result<Value, ApiError> {
    let p = Params(params);
    let paging = Paging::read(&p, &TASK_SORTS.map(|(name, _)| name))?;
    let query = UserTaskQuery {
        finished: p.flag("finished")?,
        id: p.text("taskId"),
        name: p.text("taskName"),
        name_like: p.text("taskNameLike"),
        description: p.text("taskDescription"),
        assignee: p.text("taskAssignee"),
        assignee_like: p.text("taskAssigneeLike"),
        owner: p.text("taskOwner"),
        owner_like: p.text("taskOwnerLike"),
        priority: p.int("taskPriority")?,
        element: p.text("taskDefinitionKey"),
        instance_id: p.text("processInstanceId"),
        model_id: p.text("processDefinitionId"),
        model_key: p.text("processDefinitionKey"),
        parent_task_id: p.text("parentTaskId"),
        involved_user: p.text("taskInvolvedUser"),
        tenant_id: p.text("tenantId"),
        order: TASK_SORTS.iter().find(|(name, _)| *name == paging.sort).map_or(TaskOrder::Id, |(_, o)| *o),
        descending: paging.descending,
        ..UserTaskQuery::default()
    };
    let (tasks, total) = rt.store().list_user_tasks(&query, Some(paging.page())).await?;
    let with_local = p.flag("includeTaskLocalVariables")? == Some(true);
    let with_global = p.flag("includeProcessVariables")? == Some(true);
    let mut process_vars = HashMap::new();
    let mut data = Vec::with_capacity(tasks.len());
    for t in &tasks {
        let mut shown = task_history_json(origin, t);
        if with_local {
            shown["taskVariables"] = json!(history_variables(&local_values(rt, &t.id).await?, "local"));
        }
        if with_global && t.instance_id.is_some() {
            let globals = instance_values(rt, t, &mut process_vars).await?;
            shown["processVariables"] = json!(history_variables(&globals, "global"));
        }
        data.push(shown);
    }
    Ok(paging.envelope(data, total))
}

async fn list_task_history(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Value>> {
    Ok(Json(task_history(&rt, &origin(&headers), &query_map(q.as_deref())?).await?))
}

async fn query_task_history(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<Json<Value>> {
    Ok(Json(task_history(&rt, &origin(&headers), &json_object(&body, true)?).await?))
}

async fn get_task_history(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Value>> {
    let task = rt
        .store()
        .user_task(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Could not find a task instance with id '{id}'.")))?;
    Ok(Json(task_history_json(&origin(&headers), &task)))
}
