//! `runtime/process-instances` (start, get, list, delete, variables) and the history of
//! process instances, `history/historic-process-instances`.
//!
//! A running instance is a runtime process instance; once it ended only the history shows
//! it, as in Flowable.

use super::filters::{Filter, Kind, PAGING, described, filter, sort};
use super::repository::{definition_not_found, model_tenant, visible_definition};
use super::variables::{RestVariable, Variable, variables};
use super::{FlowableResult, Listed, Paging, Params, SERVICE, iso_time, origin, query_map, service_url};
use crate::api::input::{Body, json_object};
use crate::auth::Caller;
use crate::error::{ApiError, FlowableErrorBody};
use crate::runtime::{EventIn, Runtime, status_named};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use flowstone_engine::{Command, InstanceStatus, StartOptions};
use flowstone_store::{InstanceFilter, InstanceOrder, InstanceRow};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub(super) fn routes() -> Router<crate::api::App> {
    let at = |path: &str| format!("{SERVICE}/{path}");
    Router::new()
        .route(&at("runtime/process-instances"), get(list_running).post(start))
        .route(&at("query/process-instances"), post(query_running))
        .route(&at("runtime/process-instances/{id}"), get(get_running).delete(delete_running))
        .route(&at("runtime/process-instances/{id}/diagram"), get(diagram))
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
        .route(&at("history/historic-process-instances/{id}"), get(get_history).delete(delete_history))
}

/// The process instances' part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        start,
        list_running,
        query_running,
        get_running,
        delete_running,
        diagram,
        list_variables,
        put_variables,
        create_variables,
        get_variable,
        put_variable,
        delete_variable,
        list_history,
        query_history,
        get_history,
        delete_history
    ))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}

/// The path parameter naming an instance.
const INSTANCE: &str = "The process instance";

/// The filters of the instance lists and queries.
const FILTERS: [Filter; 9] = [
    filter("processInstanceId", Kind::Text, "Only the instance of this id"),
    filter("id", Kind::Text, "Only the instance of this id"),
    filter("processDefinitionKey", Kind::Text, "Only instances of process definitions of this key"),
    filter("processDefinitionId", Kind::Text, "Only instances of this process definition"),
    filter("businessKey", Kind::Text, "Only instances of this business key"),
    filter("processBusinessKey", Kind::Text, "Only instances of this business key"),
    filter("startedBy", Kind::Text, "Only instances this user started"),
    filter("suspended", Kind::Flag, "true: only suspended instances (none: nothing is suspended here)"),
    filter("includeProcessVariables", Kind::Flag, "Answer each instance with its variables"),
];

/// The filter only the history takes.
const FINISHED: [Filter; 1] = [filter("finished", Kind::Flag, "Only ended instances (true) or running ones (false)")];

/// Sort properties of the running instances, the default first.
const SORTS: [&str; 5] = ["id", "processDefinitionId", "processDefinitionKey", "tenantId", "startTime"];

/// Sort properties of the instances' history, the default first.
const HISTORY_SORTS: [&str; 9] = [
    "id",
    "processInstanceId",
    "processDefinitionId",
    "processDefinitionKey",
    "businessKey",
    "startTime",
    "endTime",
    "duration",
    "tenantId",
];

/// The store's order for a sort property of [`SORTS`] or [`HISTORY_SORTS`].
fn order(sort: &str) -> InstanceOrder {
    match sort {
        "processDefinitionId" => InstanceOrder::ModelId,
        "processDefinitionKey" => InstanceOrder::ModelKey,
        "businessKey" => InstanceOrder::BusinessKey,
        "startTime" => InstanceOrder::StartTime,
        "endTime" => InstanceOrder::EndTime,
        "duration" => InstanceOrder::Duration,
        "tenantId" => InstanceOrder::TenantId,
        _ => InstanceOrder::Id,
    }
}

described!(
    /// The filters of the running instances' list (query parameters) and query (a JSON body).
    checked InstanceFilters: FILTERS, PAGING, [sort(&SORTS)]
);

described!(
    /// The filters of the instances' history list (query parameters) and query (a JSON body).
    checked HistoricInstanceFilters: FILTERS, FINISHED, PAGING, [sort(&HISTORY_SORTS)]
);

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Could not find a process instance with id '{id}'."))
}

/// A running process instance as `runtime/process-instances` shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Instance {
    id: String,
    url: String,
    name: String,
    business_key: Option<String>,
    /// Always false: nothing is suspended here.
    suspended: bool,
    ended: bool,
    completed: bool,
    process_definition_id: String,
    process_definition_url: String,
    process_definition_key: String,
    #[schema(value_type = Option<String>)]
    activity_id: (),
    start_user_id: Option<String>,
    start_time: Option<String>,
    /// The instance whose call activity started it.
    super_process_instance_id: Option<String>,
    tenant_id: Option<String>,
    /// Its variables, when asked for.
    variables: Vec<Variable>,
}

/// The URL of a process definition.
pub(super) fn definition_url(origin: &str, model: &str) -> String {
    service_url(origin, &format!("repository/process-definitions/{model}"))
}

impl Instance {
    fn of(origin: &str, p: &InstanceRow, tenant: Option<String>, variables: Vec<Variable>) -> Instance {
        Instance {
            id: p.id.clone(),
            url: service_url(origin, &format!("runtime/process-instances/{}", p.id)),
            name: p.name.clone(),
            business_key: p.business_key.clone(),
            suspended: false,
            ended: p.end_time.is_some(),
            completed: status_named(&p.status) == Some(InstanceStatus::Completed),
            process_definition_id: p.model_id.clone(),
            process_definition_url: definition_url(origin, &p.model_id),
            process_definition_key: p.model_key.clone(),
            activity_id: (),
            start_user_id: p.start_user.clone(),
            start_time: iso_time(p.start_time),
            super_process_instance_id: p.parent_id.clone().filter(|_| p.kind == "process"),
            tenant_id: tenant,
            variables,
        }
    }
}

/// An instance as `history/historic-process-instances` shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct HistoricInstance {
    id: String,
    url: String,
    name: String,
    business_key: Option<String>,
    process_definition_id: String,
    process_definition_url: String,
    process_definition_key: String,
    start_time: Option<String>,
    end_time: Option<String>,
    duration_in_millis: Option<i64>,
    start_user_id: Option<String>,
    #[schema(value_type = Option<String>)]
    start_activity_id: (),
    end_activity_id: Option<String>,
    /// How it ended other than at an end event: `canceled`, or the failure that stopped it.
    delete_reason: Option<String>,
    /// The process a rollback, cancel or delete process works for.
    super_process_instance_id: Option<String>,
    variables: Vec<Variable>,
    tenant_id: Option<String>,
}

impl HistoricInstance {
    fn of(origin: &str, p: &InstanceRow, tenant: Option<String>, variables: Vec<Variable>) -> HistoricInstance {
        HistoricInstance {
            id: p.id.clone(),
            url: service_url(origin, &format!("history/historic-process-instances/{}", p.id)),
            name: p.name.clone(),
            business_key: p.business_key.clone(),
            process_definition_id: p.model_id.clone(),
            process_definition_url: definition_url(origin, &p.model_id),
            process_definition_key: p.model_key.clone(),
            start_time: iso_time(p.start_time),
            end_time: p.end_time.and_then(iso_time),
            duration_in_millis: p.end_time.map(|e| e - p.start_time),
            start_user_id: p.start_user.clone(),
            start_activity_id: (),
            end_activity_id: p.end_element.clone(),
            delete_reason: match status_named(&p.status) {
                Some(InstanceStatus::Canceled) => Some("canceled".into()),
                Some(InstanceStatus::Failed) => Some(p.failure.clone().unwrap_or_else(|| "failed".into())),
                _ => None,
            },
            super_process_instance_id: p.parent_id.clone(),
            variables,
            tenant_id: tenant,
        }
    }
}

/// Process variables as Flowable lists them on a running instance.
fn variable_list(vars: Map<String, Value>) -> Vec<Variable> {
    vars.into_iter().map(|(name, value)| Variable { scope: Some("local"), ..Variable::of(name, value) }).collect()
}

/// Variables as the history lists them: `variableScope` instead of `scope`.
pub(super) fn history_variables(vars: Map<String, Value>, scope: &'static str) -> Vec<Variable> {
    vars.into_iter()
        .map(|(name, value)| Variable { variable_scope: Some(scope), ..Variable::of(name, value) })
        .collect()
}

async fn tenant_of(rt: &Runtime, p: &InstanceRow) -> Result<Option<String>, ApiError> {
    model_tenant(rt, &p.model_id).await
}

/// A running process instance (kind `process`), or 404.
async fn running(rt: &Runtime, id: &str) -> Result<InstanceRow, ApiError> {
    let p = rt.instance(id).await?.filter(|p| p.kind == "process" && p.end_time.is_none());
    p.ok_or_else(|| not_found(id))
}

/// `POST runtime/process-instances`'s body.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct StartRequest {
    /// The process definition to start (exactly one of this, `processDefinitionKey` and
    /// `message`).
    process_definition_id: Option<String>,
    /// The newest process definition of this key (within `tenantId`, when given).
    process_definition_key: Option<String>,
    /// A start message: the newest process definition with a message start event of this
    /// name (within `tenantId`, when given) starts there.
    message: Option<String>,
    tenant_id: Option<String>,
    /// Its name (the definition's name, else its key).
    name: Option<String>,
    business_key: Option<String>,
    #[serde(default)]
    variables: Option<Vec<RestVariable>>,
    /// Answer with its variables.
    return_variables: Option<bool>,
}

/// `POST runtime/process-instances`: by `processDefinitionId`, `processDefinitionKey`
/// (optionally within `tenantId`) or `message`.
#[utoipa::path(post, path = "/flowable-rest/service/runtime/process-instances", tag = "flowable-instances",
    request_body = StartRequest,
    responses(
        (status = 201, description = "The instance started", body = Instance),
        (status = 400, description = "Not exactly one of processDefinitionId, processDefinitionKey and message; \
            a malformed variable; or a model that does not start", body = FlowableErrorBody),
        (status = 404, description = "No such process definition, or none starts with the message",
            body = FlowableErrorBody),
    ))]
async fn start(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<(StatusCode, Json<Instance>)> {
    let req: StartRequest = crate::api::worker::parse(&body)?;
    let (by_id, by_key, message) = (req.process_definition_id, req.process_definition_key, req.message);
    let given = [&by_id, &by_key, &message].iter().filter(|v| v.is_some()).count();
    if given != 1 {
        return Err(ApiError::bad_request(
            "Either processDefinitionId, processDefinitionKey or message is required, and only one of them",
        )
        .into());
    }
    let tenant = caller.tenant_limit().map(str::to_owned).or(req.tenant_id);
    let vars = variables(req.variables.unwrap_or_default())?;
    if let Some(name) = message {
        let message = EventIn {
            name,
            variables: vars,
            tenant,
            business_key: req.business_key,
            sender: Some(caller.user),
            ..EventIn::default()
        };
        let row = rt.start_by_message(&message).await?;
        return started(&rt, &headers, row, req.return_variables).await;
    }
    let model = match (by_id, by_key) {
        (Some(id), _) => visible_definition(&rt, &caller, &id).await?,
        (None, Some(key)) => latest_in_tenant(&rt, &key, tenant.as_deref()).await?,
        (None, None) => {
            return Err(ApiError::bad_request("processDefinitionId or processDefinitionKey is required").into());
        }
    };
    let options = StartOptions { initiator: Some(caller.user), ..StartOptions::default() };
    let name = req.name.unwrap_or_else(|| model.name.clone().unwrap_or_else(|| model.key.clone()));
    let row = rt.start_instance(model, name, req.business_key, vars, options).await?;
    started(&rt, &headers, row, req.return_variables).await
}

/// The answer to a start: the instance, with its variables when asked.
async fn started(
    rt: &Runtime,
    headers: &HeaderMap,
    row: InstanceRow,
    return_variables: Option<bool>,
) -> FlowableResult<(StatusCode, Json<Instance>)> {
    let shown = if return_variables == Some(true) {
        variable_list(rt.variables(&row.id).await?.unwrap_or_default())
    } else {
        Vec::new()
    };
    let tenant = tenant_of(rt, &row).await?;
    Ok((StatusCode::CREATED, Json(Instance::of(&origin(headers), &row, tenant, shown))))
}

/// A process instance as Flowable answers it, without its variables.
pub(super) async fn instance_answer(
    rt: &Runtime,
    headers: &HeaderMap,
    row: &InstanceRow,
) -> Result<Instance, ApiError> {
    let tenant = tenant_of(rt, row).await?;
    Ok(Instance::of(&origin(headers), row, tenant, Vec::new()))
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

#[utoipa::path(get, path = "/flowable-rest/service/runtime/process-instances/{id}", tag = "flowable-instances",
    params(("id" = String, Path, description = INSTANCE)),
    responses(
        (status = 200, description = "The running instance", body = Instance),
        (status = 404, description = "No running process instance of this id", body = FlowableErrorBody),
    ))]
async fn get_running(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Instance>> {
    let p = running(&rt, &id).await?;
    let tenant = tenant_of(&rt, &p).await?;
    Ok(Json(Instance::of(&origin(&headers), &p, tenant, Vec::new())))
}

#[utoipa::path(get, path = "/flowable-rest/service/runtime/process-instances/{id}/diagram", tag = "flowable-instances",
    params(("id" = String, Path, description = INSTANCE)),
    responses(
        (status = 200, description = "Its model's diagram with each element's state: where it waits, what ran, the flows taken", body = Vec<u8>, content_type = "image/png"),
        (status = 404, description = "No running process instance of this id", body = FlowableErrorBody),
    ))]
async fn diagram(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<axum::response::Response> {
    let p = running(&rt, &id).await?;
    let model = rt.model(&p.model_id).await?.ok_or_else(|| definition_not_found(&p.model_id))?;
    let def = rt.definition(&model)?;
    let tasks = rt.tasks_of_instance(&p.id).await?;
    let drawn = crate::console::diagram::of_instance(&def, &p, &tasks);
    Ok(super::repository::png(crate::console::image::png(drawn).await?))
}

/// `DELETE runtime/process-instances/{id}`: stops it; its open tasks are canceled.
#[utoipa::path(delete, path = "/flowable-rest/service/runtime/process-instances/{id}", tag = "flowable-instances",
    params(("id" = String, Path, description = INSTANCE)),
    responses(
        (status = 204, description = "Canceled"),
        (status = 404, description = "No running process instance of this id", body = FlowableErrorBody),
    ))]
async fn delete_running(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<StatusCode> {
    running(&rt, &id).await?;
    rt.apply(&id, Command::Cancel).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How a list shows an instance: as it runs, or as the history does.
type Shape<T> = fn(&str, &InstanceRow, Option<String>, Vec<Variable>) -> T;

/// Lists instances: `history` shows every kind (the rollback, cancel and delete processes too)
/// and reads `finished`. Only those `caller` may see: their own unless they operate, of their
/// tenant if they have one.
async fn list_instances<T>(
    rt: &Runtime,
    origin: &str,
    params: &Map<String, Value>,
    history: bool,
    caller: &Caller,
    shape: Shape<T>,
) -> Result<Listed<T>, ApiError> {
    if history {
        HistoricInstanceFilters::check(params)?
    } else {
        InstanceFilters::check(params)?
    };
    let p = Params(params);
    let paging = Paging::read(&p, if history { &HISTORY_SORTS } else { &SORTS })?;
    let suspended = p.flag("suspended")? == Some(true);
    let filter = InstanceFilter {
        id: p.text("processInstanceId").or_else(|| p.text("id")),
        model_key: p.text("processDefinitionKey"),
        model_id: p.text("processDefinitionId"),
        business_key: p.text("businessKey").or_else(|| p.text("processBusinessKey")),
        kind: if history { None } else { Some("process".into()) },
        ended: if history { p.flag("finished")? } else { Some(false) },
        start_user: caller.own_instances().or_else(|| p.text("startedBy")),
        tenant_id: caller.tenant_limit().map(str::to_owned),
        order: order(paging.sort),
        ascending: !paging.descending,
        ..InstanceFilter::default()
    };
    let with_vars = p.flag("includeProcessVariables")? == Some(true);
    if suspended {
        // No instance is ever suspended (every parameter was read first: a malformed one is refused).
        return Ok(paging.envelope(Vec::new(), 0));
    }
    let (rows, total) = rt.store().list_instances(&filter, paging.page()).await?;
    let mut data = Vec::with_capacity(rows.len());
    for row in &rows {
        let tenant = model_tenant(rt, &row.model_id).await?;
        let mut vars = Vec::new();
        if with_vars {
            let values = rt.variables(&row.id).await?.unwrap_or_default();
            let listed = if history { history_variables(values, "local") } else { variable_list(values) };
            let url =
                |name: &str| service_url(origin, &format!("runtime/process-instances/{}/variables/{name}", row.id));
            vars = listed
                .into_iter()
                .map(|v| {
                    let url = url(&v.name);
                    v.left_out_if_big(|| url)
                })
                .collect();
        }
        data.push(shape(origin, row, tenant, vars));
    }
    Ok(paging.envelope(data, total))
}

#[utoipa::path(get, path = "/flowable-rest/service/runtime/process-instances", tag = "flowable-instances", params(InstanceFilters),
    responses(
        (status = 200, description = "A page of the running instances the filters leave", body = Listed<Instance>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn list_running(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Listed<Instance>>> {
    let params = query_map(q.as_deref())?;
    Ok(Json(list_instances(&rt, &origin(&headers), &params, false, &caller, Instance::of).await?))
}

#[utoipa::path(post, path = "/flowable-rest/service/query/process-instances", tag = "flowable-instances",
    request_body = Option<InstanceFilters>,
    responses(
        (status = 200, description = "A page of the running instances the filters leave", body = Listed<Instance>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn query_running(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<Json<Listed<Instance>>> {
    let params = json_object(&body, true)?;
    Ok(Json(list_instances(&rt, &origin(&headers), &params, false, &caller, Instance::of).await?))
}

#[utoipa::path(get, path = "/flowable-rest/service/history/historic-process-instances", tag = "flowable-instances", params(HistoricInstanceFilters),
    responses(
        (status = 200, description = "A page of the instances, running and ended, the filters leave",
            body = Listed<HistoricInstance>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn list_history(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Listed<HistoricInstance>>> {
    let params = query_map(q.as_deref())?;
    Ok(Json(list_instances(&rt, &origin(&headers), &params, true, &caller, HistoricInstance::of).await?))
}

#[utoipa::path(post, path = "/flowable-rest/service/query/historic-process-instances", tag = "flowable-instances",
    request_body = Option<HistoricInstanceFilters>,
    responses(
        (status = 200, description = "A page of the instances, running and ended, the filters leave",
            body = Listed<HistoricInstance>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn query_history(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<Json<Listed<HistoricInstance>>> {
    let params = json_object(&body, true)?;
    Ok(Json(list_instances(&rt, &origin(&headers), &params, true, &caller, HistoricInstance::of).await?))
}

#[utoipa::path(get, path = "/flowable-rest/service/history/historic-process-instances/{id}", tag = "flowable-instances",
    params(("id" = String, Path, description = INSTANCE)),
    responses(
        (status = 200, description = "The instance, running or ended, with its variables", body = HistoricInstance),
        (status = 404, description = "No process instance of this id", body = FlowableErrorBody),
    ))]
async fn get_history(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<HistoricInstance>> {
    let p = rt.instance(&id).await?.ok_or_else(|| not_found(&id))?;
    let tenant = tenant_of(&rt, &p).await?;
    let vars = history_variables(rt.variables(&id).await?.unwrap_or_default(), "local");
    Ok(Json(HistoricInstance::of(&origin(&headers), &p, tenant, vars)))
}

/// `DELETE history/historic-process-instances/{id}`: removes an ended instance with everything
/// it owns (the processes it called, its rollback, cancel and delete instances).
#[utoipa::path(delete, path = "/flowable-rest/service/history/historic-process-instances/{id}", tag = "flowable-instances",
    params(("id" = String, Path, description = INSTANCE)),
    responses(
        (status = 204, description = "Removed with everything it owned"),
        (status = 404, description = "No process instance of this id", body = FlowableErrorBody),
        (status = 409, description = "It is still running, or belongs to another instance (called by it, or its rollback), or a process it called still runs", body = FlowableErrorBody),
    ))]
async fn delete_history(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<StatusCode> {
    rt.delete_history(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- variables -----------------------------------------------------------------------------

async fn current_variables(rt: &Runtime, id: &str) -> Result<Map<String, Value>, ApiError> {
    running(rt, id).await?;
    Ok(rt.variables(id).await?.unwrap_or_default())
}

#[utoipa::path(get, path = "/flowable-rest/service/runtime/process-instances/{id}/variables", tag = "flowable-instances",
    params(("id" = String, Path, description = INSTANCE)),
    responses(
        (status = 200, description = "The instance's variables", body = Vec<Variable>),
        (status = 404, description = "No running process instance of this id", body = FlowableErrorBody),
    ))]
async fn list_variables(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<Json<Vec<Variable>>> {
    Ok(Json(variable_list(current_variables(&rt, &id).await?)))
}

fn variable_not_found(id: &str, name: &str) -> ApiError {
    ApiError::not_found(format!("Process instance '{id}' does not have a variable with name: '{name}'."))
}

/// The path parameter naming a variable.
const NAME: &str = "The variable";

#[utoipa::path(get, path = "/flowable-rest/service/runtime/process-instances/{id}/variables/{name}", tag = "flowable-instances",
    params(("id" = String, Path, description = INSTANCE), ("name" = String, Path, description = NAME)),
    responses(
        (status = 200, description = "The variable", body = Variable),
        (status = 404, description = "No running process instance of this id, or no variable of this name",
            body = FlowableErrorBody),
    ))]
async fn get_variable(
    State(rt): State<Runtime>,
    Path((id, name)): Path<(String, String)>,
) -> FlowableResult<Json<Variable>> {
    let mut vars = current_variables(&rt, &id).await?;
    let value = vars.remove(&name).ok_or_else(|| variable_not_found(&id, &name))?;
    Ok(Json(Variable { scope: Some("local"), ..Variable::of(name, value) }))
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

async fn set(rt: &Runtime, id: &str, vars: Map<String, Value>) -> Result<Vec<Variable>, ApiError> {
    rt.apply(id, Command::SetVariables { task: None, variables: vars.clone(), removed: Vec::new() }).await?;
    Ok(variable_list(vars))
}

/// `PUT …/variables`: creates or updates each.
#[utoipa::path(put, path = "/flowable-rest/service/runtime/process-instances/{id}/variables", tag = "flowable-instances",
    params(("id" = String, Path, description = INSTANCE)), request_body = Vec<RestVariable>,
    responses(
        (status = 201, description = "The variables as written", body = Vec<Variable>),
        (status = 400, description = "No variables, or a malformed one", body = FlowableErrorBody),
        (status = 404, description = "No running process instance of this id", body = FlowableErrorBody),
    ))]
async fn put_variables(
    State(rt): State<Runtime>,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<(StatusCode, Json<Vec<Variable>>)> {
    running(&rt, &id).await?;
    let vars = body_variables(&body)?;
    Ok((StatusCode::CREATED, Json(set(&rt, &id, vars).await?)))
}

/// `POST …/variables`: creates them; 409 when one exists.
#[utoipa::path(post, path = "/flowable-rest/service/runtime/process-instances/{id}/variables", tag = "flowable-instances",
    params(("id" = String, Path, description = INSTANCE)), request_body = Vec<RestVariable>,
    responses(
        (status = 201, description = "The variables made", body = Vec<Variable>),
        (status = 400, description = "No variables, or a malformed one", body = FlowableErrorBody),
        (status = 404, description = "No running process instance of this id", body = FlowableErrorBody),
        (status = 409, description = "A variable of one of these names exists already", body = FlowableErrorBody),
    ))]
async fn create_variables(
    State(rt): State<Runtime>,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<(StatusCode, Json<Vec<Variable>>)> {
    let existing = current_variables(&rt, &id).await?;
    let vars = body_variables(&body)?;
    if let Some(name) = vars.keys().find(|n| existing.contains_key(*n)) {
        return Err(ApiError::conflict(format!(
            "Variable '{name}' is already present on process instance '{id}'; update it with PUT instead."
        ))
        .into());
    }
    Ok((StatusCode::CREATED, Json(set(&rt, &id, vars).await?)))
}

#[utoipa::path(put, path = "/flowable-rest/service/runtime/process-instances/{id}/variables/{name}", tag = "flowable-instances",
    params(("id" = String, Path, description = INSTANCE), ("name" = String, Path, description = NAME)),
    request_body = RestVariable,
    responses(
        (status = 200, description = "The variable as written", body = Variable),
        (status = 400, description = "A malformed variable, or one of another name", body = FlowableErrorBody),
        (status = 404, description = "No running process instance of this id", body = FlowableErrorBody),
    ))]
async fn put_variable(
    State(rt): State<Runtime>,
    Path((id, name)): Path<(String, String)>,
    Body(body): Body,
) -> FlowableResult<Json<Variable>> {
    running(&rt, &id).await?;
    let v: RestVariable = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body must be one {{name, type, value}}: {e}")))?;
    if v.name()? != name {
        return Err(ApiError::bad_request(
            "Variable name in the body should be equal to the name used in the requested URL.",
        )
        .into());
    }
    let vars = variables(vec![v])?;
    let written = set(&rt, &id, vars).await?.pop();
    written.map(Json).ok_or_else(|| ApiError::bad_request("no variable in the request body").into())
}

#[utoipa::path(delete, path = "/flowable-rest/service/runtime/process-instances/{id}/variables/{name}", tag = "flowable-instances",
    params(("id" = String, Path, description = INSTANCE), ("name" = String, Path, description = NAME)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No running process instance of this id, or no variable of this name",
            body = FlowableErrorBody),
    ))]
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
