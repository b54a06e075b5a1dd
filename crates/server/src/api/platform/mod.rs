//! The platform dialect (seeds 000–002): `/model`, `/process`, `/task`.

mod events;
mod history;
pub(crate) mod requests;
mod stuck;
mod views;

use super::input::{Body, Paging, Query};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::runtime::{Runtime, TaskOp};
use axum::extract::{Extension, FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::routing::{get, put};
use axum::{Json, Router};
use flowstone_engine::{Command, EngineError, StartOptions, TaskChange};
use flowstone_store::{InstanceFilter, InstanceRow, ModelRow, Outcome, Page, TaskRow};
use requests::{Bpmn, DeployForm, ModelChoice, ReRun, StartProcess};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
pub(crate) use views::{Deployed, Listing, ModelView, ProcessStatus, ProcessView, TaskView};

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
        .route("/history/prune", axum::routing::post(history::prune))
        .route("/stuck", get(stuck::stuck))
        .merge(events::routes())
}

/// The platform operations' part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(
        paths(
            deploy,
            list_models,
            get_model,
            model_source,
            start_process,
            list_processes,
            get_process,
            operate_process,
            list_tasks,
            get_task,
            operate_task,
            events::send_message,
            events::send_signal,
            history::prune,
            stuck::stuck
        ),
        components(schemas(ReRun))
    )]
    struct Api;
    let mut doc = <Api as utoipa::OpenApi>::openapi();
    // A task's operation may come without a body (`resume` takes none, `complete` may set no
    // variable); utoipa marks a body of two content types required.
    let operate = doc.paths.paths.get_mut("/task/{id}/{operate}").and_then(|p| p.put.as_mut());
    if let Some(body) = operate.and_then(|op| op.request_body.as_mut()) {
        body.required = Some(utoipa::openapi::Required::False);
    }
    doc
}

/// The process records of `rows`, each with the status it shows: its own, or while (or
/// once) its delete, cancel or rollback process runs, `deleting`/`deleted`, `canceling`,
/// `rollingBack`/`rolledBack` — the store's rule, the one `GET /process?status=` filters by.
async fn process_views(rt: &Runtime, rows: &[InstanceRow]) -> ApiResult<Vec<ProcessView>> {
    let linked: Vec<&str> = rows
        .iter()
        .filter(|r| r.rollback_id.is_some() || r.cancel_id.is_some() || r.delete_id.is_some())
        .map(|r| r.id.as_str())
        .collect();
    let outcomes: std::collections::HashMap<String, Outcome> =
        if linked.is_empty() { Default::default() } else { rt.store().outcomes(&linked).await?.into_iter().collect() };
    Ok(rows.iter().map(|row| ProcessView::of(row, outcomes.get(&row.id).copied().unwrap_or(Outcome::Own))).collect())
}

async fn process_view(rt: &Runtime, row: &InstanceRow) -> ApiResult<ProcessView> {
    let mut views = process_views(rt, std::slice::from_ref(row)).await?;
    Ok(views.pop().unwrap_or_else(|| ProcessView::of(row, Outcome::Own)))
}

/// `POST /model`: the BPMN XML as the body, or as the multipart field `file`.
#[utoipa::path(post, path = "/model", tag = "platform",
    request_body(description = "The BPMN 2.0 XML document", content(
        (Bpmn = "application/xml"),
        (DeployForm = "multipart/form-data"),
    )),
    responses(
        (status = 201, description = "Deployed: the first model, and all the deployment holds", body = Deployed),
        (status = 400, description = "Not a BPMN document Flowstone runs; the message names what", body = ErrorBody),
    ))]
async fn deploy(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Deployed>)> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let Bpmn(source) = if multipart {
        DeployForm::read(Multipart::from_request(req, &rt).await.map_err(ApiError::rejected)?).await?.file
    } else {
        Bpmn::read(Body::from_request(req, &rt).await?.0)?
    };
    let rows = rt.deploy_for(&source, caller.tenant.clone()).await?;
    let deployed = Deployed::of(&rows).ok_or_else(|| ApiError::bad_request("the document holds no process"))?;
    Ok((StatusCode::CREATED, Json(deployed)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ModelQuery {
    /// Only the versions of this process key, newest first.
    key: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    paging: Paging,
}

#[utoipa::path(get, path = "/model", tag = "platform", params(ModelQuery, Paging),
    responses(
        (status = 200, description = "A page of the models the caller's tenant sees", body = Listing<ModelView>),
        (status = 400, description = "A malformed `page` or `size`", body = ErrorBody),
    ))]
async fn list_models(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ModelQuery>,
) -> ApiResult<Json<Listing<ModelView>>> {
    let (page, size) = q.paging.resolve()?;
    let page_of = Page { offset: (page - 1) * size, limit: size };
    let (rows, total) = rt.store().list_models(q.key.as_deref(), caller.tenant_limit(), page_of).await?;
    Ok(Json(Listing::new(rows.iter().map(ModelView::from).collect(), total, page, size)))
}

async fn find_model(rt: &Runtime, id: &str) -> ApiResult<ModelRow> {
    rt.store().model(id).await?.ok_or_else(|| ApiError::not_found(format!("model {id} not found")))
}

#[utoipa::path(get, path = "/model/{id}", tag = "platform", params(("id" = String, Path, description = "The model id")),
    responses(
        (status = 200, description = "The model", body = ModelView),
        (status = 404, description = "No such model", body = ErrorBody),
    ))]
async fn get_model(State(rt): State<Runtime>, Path(id): Path<String>) -> ApiResult<Json<ModelView>> {
    Ok(Json((&find_model(&rt, &id).await?).into()))
}

#[utoipa::path(get, path = "/model/{id}/source", tag = "platform", params(("id" = String, Path, description = "The model id")),
    responses(
        (status = 200, description = "The BPMN document as deployed", body = String, content_type = "application/xml"),
        (status = 404, description = "No such model", body = ErrorBody),
    ))]
async fn model_source(
    State(rt): State<Runtime>,
    Path(id): Path<String>,
) -> ApiResult<([(header::HeaderName, &'static str); 1], String)> {
    Ok(([(header::CONTENT_TYPE, "application/xml")], find_model(&rt, &id).await?.source))
}

/// `POST /process` (seed 002): exactly one of modelId / deploymentId / key, and
/// `processName` and `variables`.
#[utoipa::path(post, path = "/process", tag = "platform", request_body = StartProcess,
    responses(
        (status = 200, description = "Started: the process as it stands once its first steps are committed", body = ProcessView),
        (status = 400, description = "A missing or malformed field, or a deployment of several models", body = ErrorBody),
        (status = 404, description = "No model with that id, deployment or key", body = ErrorBody),
    ))]
async fn start_process(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: axum::http::HeaderMap,
    Body(body): Body,
) -> ApiResult<Json<ProcessView>> {
    let start = StartProcess::read(&body)?;
    let wait = start.wait.or_else(|| requests::preferred_wait(&headers));
    let options = StartOptions {
        debug: start.debug,
        mock: start.mock,
        initiator: Some(caller.user.clone()),
        ..StartOptions::default()
    };
    let choice = start.model()?;
    let model = match choice {
        ModelChoice::Id(value) => rt.model(value).await?,
        ModelChoice::Key(value) => match caller.tenant_limit() {
            Some(tenant) => {
                let newest = Page { offset: 0, limit: 1 };
                rt.store().list_models(Some(value), Some(tenant), newest).await?.0.pop().map(std::sync::Arc::new)
            }
            None => rt.latest_model(value).await?,
        },
        ModelChoice::Deployment(value) => {
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
    let model = model.filter(|m| caller.within(m.tenant_id.as_deref())).ok_or_else(|| {
        let (field, value) = choice.named();
        ApiError::not_found(format!("no model with {field} {value}"))
    })?;
    let mut row = rt.start_instance(model, start.process_name.clone(), None, start.variables.clone(), options).await?;
    if let Some(ms) = wait.filter(|_| row.end_time.is_none()) {
        let ended = rt.wait_for(&row.id, Duration::from_millis(ms), |r| r.end_time.is_some()).await?;
        row = ended.unwrap_or(row);
    }
    Ok(Json(process_view(&rt, &row).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ProcessQuery {
    /// Only processes showing this status.
    #[param(inline, value_type = Option<ProcessStatus>)]
    status: Option<String>,
    /// Only processes of this model key.
    key: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    paging: Paging,
}

#[utoipa::path(get, path = "/process", tag = "platform", params(ProcessQuery, Paging),
    responses(
        (status = 200, description = "A page of processes, newest first", body = Listing<ProcessView>),
        (status = 400, description = "An unknown status, or a malformed `page` or `size`", body = ErrorBody),
    ))]
async fn list_processes(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ProcessQuery>,
) -> ApiResult<Json<Listing<ProcessView>>> {
    let (page, size) = q.paging.resolve()?;
    let (status, outcome) = match q.status.as_deref() {
        None => (None, None),
        Some(s) => ProcessStatus::parse(s).map(ProcessStatus::filter).ok_or_else(|| {
            let names: Vec<_> = ProcessStatus::ALL.iter().map(|p| p.name()).collect();
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
    Ok(Json(Listing::new(process_views(&rt, &rows).await?, total, page, size)))
}

async fn find_process(rt: &Runtime, id: &str) -> ApiResult<InstanceRow> {
    rt.instance(id).await?.ok_or_else(|| ApiError::not_found(format!("process instance {id} not found")))
}

/// A wait for a change, in milliseconds.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct WaitQuery {
    /// Answer once the process's status changes (it moves on, or its rollback, cancel or
    /// delete process does), or after this many milliseconds (at most 60,000); as the header
    /// `Prefer: wait=SECONDS` does.
    #[param(maximum = 60000)]
    wait: Option<u64>,
}

#[utoipa::path(get, path = "/process/{id}", tag = "platform", params(("id" = String, Path, description = "The process instance id"), WaitQuery),
    responses(
        (status = 200, description = "The process", body = ProcessView),
        (status = 404, description = "No such process", body = ErrorBody),
    ))]
async fn get_process(
    State(rt): State<Runtime>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    Query(q): Query<WaitQuery>,
) -> ApiResult<Json<ProcessView>> {
    let wait = requests::wait_ms(q.wait.map(Value::from).as_ref())?.or_else(|| requests::preferred_wait(&headers));
    if let Some(ms) = wait {
        find_process(&rt, &id).await?;
        rt.status_change(&id, Duration::from_millis(ms)).await;
    }
    // Both reads go in one batch; an ended process waits for nothing, so its records go unused.
    let (row, open) = tokio::join!(find_process(&rt, &id), rt.open_tasks(&id));
    let row = row?;
    let open = if row.end_time.is_none() { open? } else { Vec::new() };
    Ok(Json(process_view(&rt, &row).await?.waiting(&open)))
}

/// Words for a conflict, in the platform's status names.
fn conflict(e: EngineError) -> ApiError {
    match e {
        EngineError::NotRunning(s) => {
            let status = ProcessStatus::of(crate::runtime::status_name(s), Outcome::Own).name();
            ApiError::conflict(format!("the process instance is {status}, not running"))
        }
        other @ EngineError::NotYours { .. } => crate::runtime::RuntimeError::Conflict(other).into(),
        other => ApiError::conflict(other.to_string()),
    }
}

pub(crate) fn runtime_error(e: crate::runtime::RuntimeError) -> ApiError {
    match e {
        crate::runtime::RuntimeError::Conflict(e) => conflict(e),
        other => other.into(),
    }
}

/// What `PUT /process/{id}/{operate}` does.
#[derive(Clone, Copy, ToSchema)]
#[schema(rename_all = "camelCase")]
enum ProcessOperation {
    /// Stop it; a cancel process undoes its stone work.
    Cancel,
    /// Remove it; a delete process undoes its stone work.
    Delete,
}

impl ProcessOperation {
    fn parse(word: &str) -> ApiResult<Self> {
        match word {
            "cancel" => Ok(ProcessOperation::Cancel),
            "delete" => Ok(ProcessOperation::Delete),
            other => Err(ApiError::bad_request(format!("unknown operation `{other}`; use cancel or delete"))),
        }
    }
}

#[utoipa::path(put, path = "/process/{id}/{operate}", tag = "platform",
    params(("id" = String, Path, description = "The process instance id"), ("operate" = inline(ProcessOperation), Path)),
    responses(
        (status = 200, description = "Done: the process as it stands now", body = ProcessView),
        (status = 400, description = "An unknown operation", body = ErrorBody),
        (status = 404, description = "No such process", body = ErrorBody),
        (status = 409, description = "The process is not running", body = ErrorBody),
    ))]
async fn operate_process(
    State(rt): State<Runtime>,
    Path((id, operate)): Path<(String, String)>,
) -> ApiResult<Json<ProcessView>> {
    let operation = ProcessOperation::parse(&operate)?;
    let row = find_process(&rt, &id).await?;
    let command = match operation {
        ProcessOperation::Cancel => Command::Cancel,
        ProcessOperation::Delete => Command::Delete,
    };
    rt.apply(&row.id, command).await.map_err(runtime_error)?;
    Ok(Json(process_view(&rt, &find_process(&rt, &row.id).await?).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TaskQuery {
    /// The process whose task records to list (required).
    #[serde(rename = "processInstanceId")]
    #[param(rename = "processInstanceId", required = true)]
    process_instance_id: Option<String>,
}

#[utoipa::path(get, path = "/task", tag = "platform", params(TaskQuery),
    responses(
        (status = 200, description = "Every task record of the process, in the order they were made", body = Vec<TaskView>),
        (status = 400, description = "No `processInstanceId`", body = ErrorBody),
        (status = 404, description = "No such process", body = ErrorBody),
    ))]
async fn list_tasks(State(rt): State<Runtime>, Query(q): Query<TaskQuery>) -> ApiResult<Json<Vec<TaskView>>> {
    let id = q
        .process_instance_id
        .ok_or_else(|| ApiError::bad_request("the query parameter `processInstanceId` is required"))?;
    let row = find_process(&rt, &id).await?;
    let tasks = rt.tasks_of_instance(&row.id).await?;
    Ok(Json(tasks.iter().map(TaskView::from).collect()))
}

async fn find_task(rt: &Runtime, id: &str) -> ApiResult<TaskRow> {
    rt.task(id).await?.ok_or_else(|| ApiError::not_found(format!("task {id} not found")))
}

#[utoipa::path(get, path = "/task/{id}", tag = "platform", params(("id" = String, Path, description = "A task record id or activity-instance id")),
    responses(
        (status = 200, description = "The task record", body = TaskView),
        (status = 404, description = "No such task", body = ErrorBody),
    ))]
async fn get_task(State(rt): State<Runtime>, Path(id): Path<String>) -> ApiResult<Json<TaskView>> {
    Ok(Json((&find_task(&rt, &id).await?).into()))
}

/// What `PUT /task/{id}/{operate}` does.
#[derive(Clone, Copy, ToSchema)]
#[schema(rename_all = "camelCase")]
enum TaskOperation {
    /// Complete a user task; the body is a JSON object of variables.
    Complete,
    /// Run a failed stone task of a debug process again (body: [`ReRun`]).
    ReRun,
    /// Pass over a failed stone task of a debug process.
    Resume,
}

impl TaskOperation {
    fn parse(word: &str) -> ApiResult<Self> {
        match word {
            "complete" => Ok(TaskOperation::Complete),
            "reRun" => Ok(TaskOperation::ReRun),
            "resume" => Ok(TaskOperation::Resume),
            other => Err(ApiError::bad_request(format!("unknown operation `{other}`; use complete, reRun or resume"))),
        }
    }
}

/// `PUT /task/{id}/complete` with a JSON object of variables completes a user task;
/// `reRun` and `resume` work on a failed stone task of a process in debug mode.
#[utoipa::path(put, path = "/task/{id}/{operate}", tag = "platform",
    params(("id" = String, Path, description = "A task record id or activity-instance id"), ("operate" = inline(TaskOperation), Path)),
    request_body(description = "`complete`: the variables to set; `reRun`: a `ReRun`; `resume`: nothing. \
        A form's fields are read as strings.", content(
        (Option<Map<String, Value>> = "application/json"),
        (Map<String, String> = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Done: the task record as it stands now", body = TaskView),
        (status = 400, description = "An unknown operation or a malformed body", body = ErrorBody),
        (status = 403, description = "The user task is assigned to someone else", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The task or its process is not in a state for the operation", body = ErrorBody),
    ))]
async fn operate_task(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path((id, operate)): Path<(String, String)>,
    req: Request,
) -> ApiResult<Json<TaskView>> {
    let operation = TaskOperation::parse(&operate)?;
    let task = find_task(&rt, &id).await?;
    // An open user task is completed under the rules of user tasks, as through Flowable's API.
    let user_task = match operation {
        TaskOperation::Complete => rt.store().user_task(&task.record.id).await?.filter(|u| u.end_time.is_none()),
        _ => None,
    };
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let Body(body) = Body::from_request(req, &rt).await?;
    let input = requests::operation_body(&body, form)?;
    let command = match operation {
        TaskOperation::Complete => {
            let variables = input;
            if user_task.is_some() {
                let op = TaskOp::Change { change: TaskChange::Complete, variables, transient: Map::new() };
                rt.change_task(&task.record.id, op, caller.person()).await.map_err(runtime_error)?;
                return Ok(Json((&find_task(&rt, &task.record.task_id).await?).into()));
            }
            Command::CompleteUserTask { task: task.record.id.clone(), variables, transient: Map::new() }
        }
        TaskOperation::ReRun => ReRun::read(&input)?.command(task.record.task_id.clone()),
        TaskOperation::Resume => Command::Resume { task: task.record.task_id.clone() },
    };
    rt.apply(&task.instance_id, command).await.map_err(runtime_error)?;
    Ok(Json((&find_task(&rt, &task.record.task_id).await?).into()))
}
