//! The platform dialect (seeds 000–002): `/model`, `/process`, `/task`.

use super::format::platform_date;
use super::input::{Body, Paging, json_object, kind};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::runtime::{Runtime, TaskOp};
use axum::extract::{Extension, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::routing::{get, put};
use axum::{Json, Router};
use flowstone_engine::{Action, Command, EngineError, StartOptions, TaskChange};
use flowstone_store::{InstanceFilter, InstanceRow, ModelRow, Outcome, Page, TaskRow};
use serde::Deserialize;
use serde_json::{Map, Value, json};

type ApiResult<T> = Result<T, ApiError>;

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new()
        .route("/model", get(list_models).post(deploy))
        .route("/model/{id}", get(get_model))
        .route("/model/{id}/source", get(model_source))
        .route("/process", get(list_processes).post(start_process))
        .route("/process/{id}", get(get_process))
        .route("/process/{id}/{operate}", put(operate_process))
        .route("/task", get(list_tasks))
        .route("/task/{id}", get(get_task))
        .route("/task/{id}/{operate}", put(operate_task))
}

/// Platform process statuses, and the engine status each stands for (`None`: a status told
/// by the rollback, cancel or delete instance of the process, see [`process_views`]).
const PROCESS_STATUSES: [(&str, Option<&str>); 10] = [
    ("running", Some("running")),
    ("success", Some("completed")),
    ("failed", Some("failed")),
    ("canceled", Some("canceled")),
    ("debug", Some("debug")),
    ("rollingBack", None),
    ("rolledBack", None),
    ("canceling", None),
    ("deleting", None),
    ("deleted", None),
];

fn platform_status(engine: &str) -> &str {
    PROCESS_STATUSES.iter().find(|(_, e)| *e == Some(engine)).map_or(engine, |(p, _)| p)
}

/// What `GET /process?status=` asks of the store for a platform status: the engine status
/// and where its rollback, cancel or delete process stands (the same rule as [`process_views`]).
fn status_filter(platform: &str) -> Option<(Option<&'static str>, Option<Outcome>)> {
    Some(match platform {
        // A running process has no rollback, cancel or delete process yet.
        "running" => (Some("running"), None),
        "debug" => (Some("debug"), None),
        "success" => (Some("completed"), Some(Outcome::Own)),
        "failed" => (Some("failed"), Some(Outcome::Own)),
        "canceled" => (Some("canceled"), Some(Outcome::Own)),
        "rollingBack" => (Some("failed"), Some(Outcome::RollingBack)),
        "rolledBack" => (Some("failed"), Some(Outcome::RolledBack)),
        "canceling" => (Some("canceled"), Some(Outcome::Canceling)),
        "deleting" => (None, Some(Outcome::Deleting)),
        "deleted" => (None, Some(Outcome::Deleted)),
        _ => return None,
    })
}

/// The process records of `rows`, each with the status it shows: its own, or while (or
/// once) its delete, cancel or rollback process runs, `deleting`/`deleted`, `canceling`,
/// `rollingBack`/`rolledBack` — the store's rule, the one `GET /process?status=` filters by.
async fn process_views(rt: &Runtime, rows: &[InstanceRow]) -> ApiResult<Vec<Value>> {
    let linked: Vec<&str> = rows
        .iter()
        .filter(|r| r.rollback_id.is_some() || r.cancel_id.is_some() || r.delete_id.is_some())
        .map(|r| r.id.as_str())
        .collect();
    let outcomes: std::collections::HashMap<String, Outcome> =
        if linked.is_empty() { Default::default() } else { rt.store().outcomes(&linked).await?.into_iter().collect() };
    Ok(rows
        .iter()
        .map(|row| {
            let mut view = process_json(row);
            if let Some(outcome) = outcomes.get(&row.id).filter(|o| **o != Outcome::Own) {
                view["processStatus"] = Value::String(outcome.name().to_owned());
            }
            view
        })
        .collect())
}

async fn process_view(rt: &Runtime, row: &InstanceRow) -> ApiResult<Value> {
    Ok(process_views(rt, std::slice::from_ref(row)).await?.pop().unwrap_or_default())
}

fn model_json(m: &ModelRow) -> Value {
    json!({
        "modelId": m.id,
        "deploymentId": m.deployment_id,
        "key": m.key,
        "name": m.name,
        "version": m.version,
        "createTime": platform_date(m.created_at),
    })
}

fn process_json(row: &InstanceRow) -> Value {
    json!({
        "id": row.id,
        "processInstanceId": row.id,
        "modelId": row.model_id,
        "modelKey": row.model_key,
        "processName": row.name,
        "processType": (row.kind != "process").then_some(row.kind.as_str()),
        "processStatus": platform_status(&row.status),
        "processContent": row.variables,
        "startTime": platform_date(row.start_time),
        "endTime": row.end_time.map(platform_date),
        "activitiFileId": null,
        "outputs": row.outputs,
        "nativeOutputs": row.final_vars.as_deref().unwrap_or(""),
        "rollbackProcessInstanceId": row.rollback_id,
        "cancelProcessInstanceId": row.cancel_id,
        "deleteProcessInstanceId": row.delete_id,
        "parentProcessInstanceId": row.parent_id,
        "reason": row.failure,
    })
}

fn task_json(t: &TaskRow) -> Value {
    let r = &t.record;
    json!({
        "id": r.id,
        "processInstanceId": t.instance_id,
        "taskId": r.task_id,
        "name": r.name,
        "namespace": r.namespace,
        "stone": r.stone,
        "createTime": platform_date(r.create_time),
        "endTime": r.end_time.map(platform_date),
        "status": r.status,
        "reason": r.reason,
        "params": r.params.as_ref().map(Value::to_string),
        "outputs": r.outputs.as_ref().map(Value::to_string),
        "progress": r.progress,
    })
}

fn listing(items: Vec<Value>, total: u64, page: u64, size: u64) -> Json<Value> {
    Json(json!({ "total": total, "page": page, "size": size, "data": items }))
}

/// `POST /model`: the BPMN XML as the body, or as the multipart field `file`.
async fn deploy(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let bytes = if multipart {
        let mut form = Multipart::from_request(req, &rt).await.map_err(ApiError::rejected)?;
        let mut file = None;
        while let Some(field) = form.next_field().await.map_err(ApiError::rejected)? {
            if field.name() == Some("file") {
                file = Some(field.bytes().await.map_err(ApiError::rejected)?);
            }
        }
        file.ok_or_else(|| ApiError::bad_request("the multipart form has no `file` field holding the BPMN document"))?
    } else {
        Body::from_request(req, &rt).await?.0
    };
    let source = std::str::from_utf8(&bytes).map_err(|_| ApiError::bad_request("the model is not UTF-8 text"))?;
    if source.trim().is_empty() {
        return Err(ApiError::bad_request("the request body is empty; send the BPMN XML"));
    }
    let rows = rt.deploy_for(source, caller.tenant.clone()).await?;
    let mut body = model_json(&rows[0]);
    body["models"] = rows.iter().map(model_json).collect();
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Deserialize)]
struct ModelQuery {
    key: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

async fn list_models(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ModelQuery>,
) -> ApiResult<Json<Value>> {
    let (page, size) = q.paging.resolve()?;
    let page_of = Page { offset: (page - 1) * size, limit: size };
    let (rows, total) = rt.store().list_models(q.key.as_deref(), caller.tenant_limit(), page_of).await?;
    Ok(listing(rows.iter().map(model_json).collect(), total, page, size))
}

async fn find_model(rt: &Runtime, id: &str) -> ApiResult<ModelRow> {
    rt.store().model(id).await?.ok_or_else(|| ApiError::not_found(format!("model {id} not found")))
}

async fn get_model(State(rt): State<Runtime>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(model_json(&find_model(&rt, &id).await?)))
}

async fn model_source(
    State(rt): State<Runtime>,
    Path(id): Path<String>,
) -> ApiResult<([(header::HeaderName, &'static str); 1], String)> {
    Ok(([(header::CONTENT_TYPE, "application/xml")], find_model(&rt, &id).await?.source))
}

/// Reads an optional string field, refusing other types by name.
fn opt_str<'a>(body: &'a Map<String, Value>, field: &str) -> ApiResult<Option<&'a str>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Err(ApiError::bad_request(format!("`{field}` is empty"))),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ApiError::bad_request(format!("`{field}` must be a string, not {}", kind(other)))),
    }
}

/// `POST /process` (seed 002): exactly one of modelId / deploymentId / key, and
/// `processName` and `variables`.
async fn start_process(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    let body = json_object(&body, false)?;
    let selectors: Vec<(&str, &str)> = ["modelId", "deploymentId", "key"]
        .into_iter()
        .map(|f| opt_str(&body, f).map(|v| v.map(|v| (f, v))))
        .collect::<ApiResult<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let (field, value) = match selectors.as_slice() {
        [one] => *one,
        [] => return Err(ApiError::bad_request("one of `modelId`, `deploymentId` or `key` is required")),
        many => {
            let names: Vec<_> = many.iter().map(|(f, _)| format!("`{f}`")).collect();
            return Err(ApiError::bad_request(format!(
                "give only one of `modelId`, `deploymentId` or `key`, not {}",
                names.join(" and ")
            )));
        }
    };
    let name =
        opt_str(&body, "processName")?.ok_or_else(|| ApiError::bad_request("`processName` is required"))?.to_owned();
    let variables = match body.get("variables") {
        Some(Value::Object(v)) => v.clone(),
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request("`variables` is required: a JSON object of process variables"));
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!("`variables` must be a JSON object, not {}", kind(other))));
        }
    };
    let flag = |field: &str| match body.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(ApiError::bad_request(format!("`{field}` must be true or false, not {}", kind(other)))),
    };
    let options = StartOptions { debug: flag("debug")?, mock: flag("mock")?, initiator: Some(caller.user.clone()) };
    let model = match field {
        "modelId" => rt.model(value).await?,
        "key" => match caller.tenant_limit() {
            Some(tenant) => {
                let newest = Page { offset: 0, limit: 1 };
                rt.store().list_models(Some(value), Some(tenant), newest).await?.0.pop().map(std::sync::Arc::new)
            }
            None => rt.latest_model(value).await?,
        },
        _ => {
            let mut models = rt.store().models_of_deployment(value).await?;
            if models.len() > 1 {
                let keys: Vec<_> = models.iter().map(|m| m.key.as_str()).collect();
                return Err(ApiError::bad_request(format!(
                    "deployment {value} holds {} models ({}); start by `modelId` or `key`",
                    models.len(),
                    keys.join(", ")
                )));
            }
            models.pop().map(std::sync::Arc::new)
        }
    };
    let model = model
        .filter(|m| caller.within(m.tenant_id.as_deref()))
        .ok_or_else(|| ApiError::not_found(format!("no model with {field} {value}")))?;
    let row = rt.start_instance(model, name, None, variables, options).await?;
    Ok(Json(process_view(&rt, &row).await?))
}

#[derive(Deserialize)]
struct ProcessQuery {
    status: Option<String>,
    key: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

async fn list_processes(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ProcessQuery>,
) -> ApiResult<Json<Value>> {
    let (page, size) = q.paging.resolve()?;
    let (status, outcome) = match q.status.as_deref() {
        None => (None, None),
        Some(s) => status_filter(s).ok_or_else(|| {
            let names: Vec<_> = PROCESS_STATUSES.iter().map(|(p, _)| *p).collect();
            ApiError::bad_request(format!("unknown status `{s}`; use one of {}", names.join(", ")))
        })?,
    };
    let filter = InstanceFilter {
        status: status.map(str::to_owned),
        model_key: q.key,
        outcome,
        start_user: caller.own_instances(),
        tenant_id: caller.tenant_limit().map(str::to_owned),
        ..InstanceFilter::default()
    };
    let (rows, total) = rt.store().list_instances(&filter, Page { offset: (page - 1) * size, limit: size }).await?;
    Ok(listing(process_views(&rt, &rows).await?, total, page, size))
}

async fn find_process(rt: &Runtime, id: &str) -> ApiResult<InstanceRow> {
    rt.store().instance(id).await?.ok_or_else(|| ApiError::not_found(format!("process instance {id} not found")))
}

async fn get_process(State(rt): State<Runtime>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(process_view(&rt, &find_process(&rt, &id).await?).await?))
}

/// Words for a conflict, in the platform's status names.
fn conflict(e: EngineError) -> ApiError {
    match e {
        EngineError::NotRunning(s) => {
            let status = platform_status(crate::runtime::status_name(s));
            ApiError::conflict(format!("the process instance is {status}, not running"))
        }
        other @ EngineError::NotYours { .. } => crate::runtime::RuntimeError::Conflict(other).into(),
        other => ApiError::conflict(other.to_string()),
    }
}

fn runtime_error(e: crate::runtime::RuntimeError) -> ApiError {
    match e {
        crate::runtime::RuntimeError::Conflict(e) => conflict(e),
        other => other.into(),
    }
}

async fn operate_process(
    State(rt): State<Runtime>,
    Path((id, operate)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let row = find_process(&rt, &id).await?;
    let command = match operate.as_str() {
        "cancel" => Command::Cancel,
        "delete" => Command::Delete,
        other => return Err(ApiError::bad_request(format!("unknown operation `{other}`; use cancel or delete"))),
    };
    rt.apply(&row.id, command).await.map_err(runtime_error)?;
    Ok(Json(process_view(&rt, &find_process(&rt, &row.id).await?).await?))
}

#[derive(Deserialize)]
struct TaskQuery {
    #[serde(rename = "processInstanceId")]
    process_instance_id: Option<String>,
}

async fn list_tasks(State(rt): State<Runtime>, Query(q): Query<TaskQuery>) -> ApiResult<Json<Value>> {
    let id = q
        .process_instance_id
        .ok_or_else(|| ApiError::bad_request("the query parameter `processInstanceId` is required"))?;
    let row = find_process(&rt, &id).await?;
    let tasks = rt.store().tasks_of_instance(&row.id).await?;
    Ok(Json(Value::Array(tasks.iter().map(task_json).collect())))
}

async fn find_task(rt: &Runtime, id: &str) -> ApiResult<TaskRow> {
    rt.store().task(id).await?.ok_or_else(|| ApiError::not_found(format!("task {id} not found")))
}

async fn get_task(State(rt): State<Runtime>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(task_json(&find_task(&rt, &id).await?)))
}

/// `PUT /task/{id}/complete` with a JSON object of variables completes a user task;
/// `reRun` and `resume` work on a failed stone task of a process in debug mode.
async fn operate_task(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path((id, operate)): Path<(String, String)>,
    req: Request,
) -> ApiResult<Json<Value>> {
    let task = find_task(&rt, &id).await?;
    // An open user task is completed under the rules of user tasks, as through Flowable's API.
    let user_task = match operate.as_str() {
        "complete" => rt.store().user_task(&task.record.id).await?.filter(|u| u.end_time.is_none()),
        _ => None,
    };
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let Body(body) = Body::from_request(req, &rt).await?;
    let command = match operate.as_str() {
        "complete" => {
            let variables = json_object(&body, true)?;
            if user_task.is_some() {
                let op = TaskOp::Change { change: TaskChange::Complete, variables, transient: Map::new() };
                rt.change_task(&task.record.id, op, caller.person()).await.map_err(runtime_error)?;
                return Ok(Json(task_json(&find_task(&rt, &task.record.task_id).await?)));
            }
            Command::CompleteUserTask { task: task.record.id.clone(), variables, transient: Map::new() }
        }
        "reRun" => {
            let input = if form { form_object(&body)? } else { json_object(&body, true)? };
            let action = match opt_str(&input, "queueType")? {
                None => None,
                Some(name) => Some(Action::parse(name).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`queueType` must be start, monitor, mock, rollback, cancel or delete, not `{name}`"
                    ))
                })?),
            };
            Command::ReRun {
                task: task.record.task_id.clone(),
                action,
                parameters: embedded_object(&input, "parameters")?,
                outputs: embedded_object(&input, "outputs")?,
            }
        }
        "resume" => Command::Resume { task: task.record.task_id.clone() },
        other => {
            return Err(ApiError::bad_request(format!("unknown operation `{other}`; use complete, reRun or resume")));
        }
    };
    rt.apply(&task.instance_id, command).await.map_err(runtime_error)?;
    Ok(Json(task_json(&find_task(&rt, &task.record.task_id).await?)))
}

/// A form-encoded body as an object of strings.
fn form_object(body: &[u8]) -> ApiResult<Map<String, Value>> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| ApiError::bad_request(format!("malformed form body: {e}")))?;
    Ok(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

/// A field holding a JSON object, or its text (as form fields carry it); absent reads as `{}`.
fn embedded_object(input: &Map<String, Value>, field: &str) -> ApiResult<Map<String, Value>> {
    let bad = |what: String| ApiError::bad_request(format!("`{field}` must be a JSON object, not {what}"));
    match input.get(field) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(Map::new()),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(bad(kind(&other).to_owned())),
            Err(e) => Err(bad(format!("malformed JSON ({e})"))),
        },
        Some(other) => Err(bad(kind(other).to_owned())),
    }
}
