//! Where instances are and have been: `runtime/executions` (a running instance's own
//! execution and one per open activity) and `history/historic-activity-instances` (every task
//! run and every pass through an event or a gateway).

use super::filters::{Filter, Kind, PAGING, described, filter, sort};
use super::repository::model_tenant;
use super::variables::{RestVariable, variables};
use super::{FlowableResult, Listed, Paging, Params, SERVICE, iso_time, origin, query_map, service_url};
use crate::api::input::{Body, json_object};
use crate::error::{ApiError, FlowableErrorBody};
use crate::runtime::Runtime;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use flowstone_model::EventKind;
use flowstone_store::{
    ActivityOrder, ActivityQuery, ActivityRow, ExecutionQuery, ExecutionRow, Page, SubscriptionQuery,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub(super) fn routes() -> Router<crate::api::App> {
    let at = |path: &str| format!("{SERVICE}/{path}");
    Router::new()
        .route(&at("runtime/executions"), get(list_executions))
        .route(&at("query/executions"), post(query_executions))
        .route(&at("runtime/executions/{id}"), get(get_execution).put(act_on_execution))
        .route(&at("runtime/executions/{id}/activities"), get(execution_activities))
        .route(&at("history/historic-activity-instances"), get(list_activities))
        .route(&at("query/historic-activity-instances"), post(query_activities))
}

/// The executions' and activities' part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        list_executions,
        query_executions,
        get_execution,
        act_on_execution,
        execution_activities,
        list_activities,
        query_activities
    ))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}

// ---- executions ----------------------------------------------------------------------------

/// A running instance's own execution, or one of an activity it waits in.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Execution {
    id: String,
    url: String,
    /// The instance's own execution, for an activity's.
    parent_id: Option<String>,
    parent_url: Option<String>,
    process_instance_id: String,
    process_instance_url: String,
    /// Always false: nothing is suspended here.
    suspended: bool,
    /// The element it waits in (none for the instance's own execution).
    activity_id: Option<String>,
    tenant_id: Option<String>,
}

impl Execution {
    fn of(origin: &str, e: &ExecutionRow, tenant: Option<String>) -> Execution {
        let url = |id: &str| service_url(origin, &format!("runtime/executions/{id}"));
        Execution {
            id: e.id.clone(),
            url: url(&e.id),
            parent_id: e.parent_id.clone(),
            parent_url: e.parent_id.as_deref().map(url),
            process_instance_id: e.instance_id.clone(),
            process_instance_url: service_url(origin, &format!("runtime/process-instances/{}", e.instance_id)),
            suspended: false,
            activity_id: e.activity.clone(),
            tenant_id: tenant,
        }
    }
}

const EXECUTION_SORTS: [&str; 2] = ["processInstanceId", "processDefinitionId"];

/// The filters of the execution list and query.
const EXECUTION_FILTERS: [Filter; 8] = [
    filter("id", Kind::Text, "Only the execution of this id"),
    filter("activityId", Kind::Text, "Only executions waiting in this element"),
    filter("processInstanceId", Kind::Text, "Only executions of this process instance"),
    filter("parentId", Kind::Text, "Only executions under this one"),
    filter("processDefinitionId", Kind::Text, "Only executions of this process definition"),
    filter("processDefinitionKey", Kind::Text, "Only executions of process definitions of this key"),
    filter("messageEventSubscriptionName", Kind::Text, "Only executions waiting for a message of this name"),
    filter("signalEventSubscriptionName", Kind::Text, "Only executions waiting for a signal of this name"),
];

described!(
    /// The filters of the execution list (query parameters) and query (a JSON body); variable
    /// filters are refused (filter instances or tasks instead).
    checked ExecutionFilters: EXECUTION_FILTERS, PAGING, [sort(&EXECUTION_SORTS)]
);

async fn executions(rt: &Runtime, origin: &str, params: &Map<String, Value>) -> Result<Listed<Execution>, ApiError> {
    ExecutionFilters::check(params)?;
    let p = Params(params);
    let paging = Paging::read(&p, &EXECUTION_SORTS)?;
    for unsupported in ["variables", "processInstanceVariables"] {
        if params.get(unsupported).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::bad_request(format!(
                "Filter '{unsupported}' is not supported on executions; filter the process instances or tasks instead"
            )));
        }
    }
    let query = ExecutionQuery {
        id: p.text("id"),
        activity: p.text("activityId"),
        instance_id: p.text("processInstanceId"),
        parent_id: p.text("parentId"),
        model_id: p.text("processDefinitionId"),
        model_key: p.text("processDefinitionKey"),
        event: match (p.text("messageEventSubscriptionName"), p.text("signalEventSubscriptionName")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "Give messageEventSubscriptionName or signalEventSubscriptionName, not both",
                ));
            }
            (Some(name), None) => Some(("message".to_owned(), name)),
            (None, Some(name)) => Some(("signal".to_owned(), name)),
            (None, None) => None,
        },
        by_model: paging.sort == "processDefinitionId",
        descending: paging.descending,
    };
    let (rows, total) = rt.store().list_executions(&query, paging.page()).await?;
    let mut data = Vec::with_capacity(rows.len());
    for e in &rows {
        data.push(Execution::of(origin, e, model_tenant(rt, &e.model_id).await?));
    }
    Ok(paging.envelope(data, total))
}

#[utoipa::path(get, path = "/flowable-rest/service/runtime/executions", tag = "flowable-instances", params(ExecutionFilters),
    responses(
        (status = 200, description = "A page of the executions the filters leave", body = Listed<Execution>),
        (status = 400, description = "A malformed or refused filter", body = FlowableErrorBody),
    ))]
async fn list_executions(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Listed<Execution>>> {
    Ok(Json(executions(&rt, &origin(&headers), &query_map(q.as_deref())?).await?))
}

#[utoipa::path(post, path = "/flowable-rest/service/query/executions", tag = "flowable-instances",
    request_body = Option<ExecutionFilters>,
    responses(
        (status = 200, description = "A page of the executions the filters leave", body = Listed<Execution>),
        (status = 400, description = "A malformed or refused filter", body = FlowableErrorBody),
    ))]
async fn query_executions(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<Json<Listed<Execution>>> {
    Ok(Json(executions(&rt, &origin(&headers), &json_object(&body, true)?).await?))
}

/// The execution `id` and the executions under it.
async fn execution_family(rt: &Runtime, id: &str) -> Result<(ExecutionRow, Vec<ExecutionRow>), ApiError> {
    let all = Page { offset: 0, limit: u64::MAX };
    let by_id = ExecutionQuery { id: Some(id.to_owned()), ..ExecutionQuery::default() };
    let (mut found, _) = rt.store().list_executions(&by_id, all).await?;
    let execution =
        found.pop().ok_or_else(|| ApiError::not_found(format!("Could not find an execution with id '{id}'.")))?;
    let children = ExecutionQuery { parent_id: Some(id.to_owned()), ..ExecutionQuery::default() };
    let (children, _) = rt.store().list_executions(&children, all).await?;
    Ok((execution, children))
}

/// The path parameter naming an execution.
const EXECUTION: &str = "The execution";

/// The answer when no execution has the id.
const NO_EXECUTION: &str = "No execution of this id";

#[utoipa::path(get, path = "/flowable-rest/service/runtime/executions/{id}", tag = "flowable-instances",
    params(("id" = String, Path, description = EXECUTION)),
    responses(
        (status = 200, description = "The execution", body = Execution),
        (status = 404, description = NO_EXECUTION, body = FlowableErrorBody),
    ))]
async fn get_execution(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Execution>> {
    let (execution, _) = execution_family(&rt, &id).await?;
    let tenant = model_tenant(&rt, &execution.model_id).await?;
    Ok(Json(Execution::of(&origin(&headers), &execution, tenant)))
}

/// `GET runtime/executions/{id}/activities`: the elements the execution and those under it wait in.
#[utoipa::path(get, path = "/flowable-rest/service/runtime/executions/{id}/activities", tag = "flowable-instances",
    params(("id" = String, Path, description = EXECUTION)),
    responses(
        (status = 200, description = "The ids of the elements it waits in", body = Vec<String>),
        (status = 404, description = NO_EXECUTION, body = FlowableErrorBody),
    ))]
async fn execution_activities(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<Json<Vec<String>>> {
    let (execution, children) = execution_family(&rt, &id).await?;
    let mut active: Vec<String> =
        execution.activity.into_iter().chain(children.into_iter().filter_map(|c| c.activity)).collect();
    active.dedup();
    Ok(Json(active))
}

/// `PUT runtime/executions/{id}`'s body.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ExecutionAction {
    /// `signal` or `trigger` (a receive task without a message goes on), `signalEventReceived`
    /// or `messageEventReceived` (the execution's wait for that signal or message gets it).
    /// Required.
    action: Option<String>,
    /// The signal, for `signalEventReceived`.
    signal_name: Option<String>,
    /// The message, for `messageEventReceived`.
    message_name: Option<String>,
    /// Variables set where the event is caught.
    #[serde(default)]
    variables: Option<Vec<RestVariable>>,
    /// Refused: every variable set here is kept.
    #[serde(default)]
    transient_variables: Option<Vec<RestVariable>>,
}

#[utoipa::path(put, path = "/flowable-rest/service/runtime/executions/{id}", tag = "flowable-instances",
    params(("id" = String, Path, description = EXECUTION)), request_body = ExecutionAction,
    responses(
        (status = 200, description = "Done; the execution goes on", body = Execution),
        (status = 204, description = "Done; the execution ended"),
        (status = 400, description = "No action, an unknown one, a missing name, or an execution that does not \
            wait for that event", body = FlowableErrorBody),
        (status = 404, description = NO_EXECUTION, body = FlowableErrorBody),
    ))]
async fn act_on_execution(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let (execution, _) = execution_family(&rt, &id).await?;
    let req: ExecutionAction = crate::api::worker::parse(&body)?;
    let required = |name: Option<String>, what: &str| {
        name.filter(|n| !n.is_empty()).ok_or_else(|| ApiError::bad_request(format!("{what} name is required")))
    };
    let expected = match req.action.as_deref() {
        Some("signal" | "trigger") => (EventKind::Trigger, String::new()),
        Some("signalEventReceived") => (EventKind::Signal, required(req.signal_name, "Signal")?),
        Some("messageEventReceived") => (EventKind::Message, required(req.message_name, "Message")?),
        Some(other) => return Err(ApiError::bad_request(format!("Invalid action: '{other}'.")).into()),
        None => return Err(ApiError::bad_request("Action is required").into()),
    };
    if req.transient_variables.is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::bad_request("transientVariables are not supported: send them as variables").into());
    }
    let vars = variables(req.variables.unwrap_or_default())?;
    let wait = waiting_execution(&rt, &execution, expected.0, &expected.1).await?;
    rt.trigger(&wait, Some((expected.0, &expected.1)), vars).await?;
    let by_id = ExecutionQuery { id: Some(id.clone()), ..ExecutionQuery::default() };
    let (mut found, _) = rt.store().list_executions(&by_id, Page { offset: 0, limit: 1 }).await?;
    Ok(match found.pop() {
        Some(now) => {
            let tenant = model_tenant(&rt, &now.model_id).await?;
            Json(Execution::of(&origin(&headers), &now, tenant)).into_response()
        }
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// The wait an action on `execution` is for: the activity's own, or (on an instance's own
/// execution) its one wait for that event.
async fn waiting_execution(
    rt: &Runtime,
    execution: &ExecutionRow,
    kind: EventKind,
    name: &str,
) -> Result<String, ApiError> {
    let what = match kind {
        EventKind::Trigger => "is not waiting for a trigger (a receive task without a message)".to_owned(),
        other => format!("has not subscribed to a {} event with name '{name}'", other.name()),
    };
    let refused = || ApiError::bad_request(format!("Execution '{}' {what}", execution.id));
    if execution.activity.is_some() {
        let wait = rt.store().subscription(&execution.id).await?.ok_or_else(refused)?;
        return if wait.kind == kind.name() && wait.name == name { Ok(wait.record_id) } else { Err(refused()) };
    }
    let query = SubscriptionQuery {
        instance_id: Some(execution.instance_id.clone()),
        kind: Some(kind.name().to_owned()),
        name: Some(name.to_owned()),
        ..SubscriptionQuery::default()
    };
    let (mut waits, _) = rt.store().list_subscriptions(&query, Page { offset: 0, limit: 2 }).await?;
    match waits.len() {
        1 => Ok(waits.remove(0).record_id),
        0 => Err(refused()),
        _ => Err(ApiError::bad_request(format!(
            "Execution '{}' waits for that event in more than one activity: name the activity's execution",
            execution.id
        ))),
    }
}

// ---- historic activity instances -----------------------------------------------------------

/// A task run, or a pass through an event or a gateway.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Activity {
    id: String,
    /// The model element.
    activity_id: String,
    activity_name: Option<String>,
    /// `userTask`, `serviceTask`, `startEvent`, `exclusiveGateway`, …
    activity_type: String,
    process_definition_id: String,
    process_definition_url: String,
    process_instance_id: String,
    process_instance_url: String,
    execution_id: String,
    /// The user task it ran, for a user task.
    task_id: Option<String>,
    #[schema(value_type = Option<String>)]
    called_process_instance_id: (),
    assignee: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    duration_in_millis: Option<i64>,
    tenant_id: Option<String>,
}

impl Activity {
    fn of(origin: &str, a: &ActivityRow, tenant: Option<String>) -> Activity {
        Activity {
            id: a.id.clone(),
            activity_id: a.element.clone(),
            activity_name: a.name.clone(),
            activity_type: a.kind.clone(),
            process_definition_id: a.model_id.clone(),
            process_definition_url: service_url(origin, &format!("repository/process-definitions/{}", a.model_id)),
            process_instance_id: a.instance_id.clone(),
            process_instance_url: service_url(origin, &format!("history/historic-process-instances/{}", a.instance_id)),
            execution_id: a.instance_id.clone(),
            task_id: a.user_task_id.clone(),
            called_process_instance_id: (),
            assignee: a.assignee.clone(),
            start_time: iso_time(a.start_time),
            end_time: a.end_time.and_then(iso_time),
            duration_in_millis: a.end_time.map(|e| e - a.start_time),
            tenant_id: tenant,
        }
    }
}

/// Sort properties of the activity history, the default first.
const ACTIVITY_SORTS: [&str; 9] = [
    "startTime",
    "activityId",
    "activityName",
    "activityType",
    "duration",
    "endTime",
    "activityInstanceId",
    "processDefinitionId",
    "processInstanceId",
];

/// The store's order for a sort property of [`ACTIVITY_SORTS`].
fn activity_order(sort: &str) -> ActivityOrder {
    match sort {
        "activityId" => ActivityOrder::Element,
        "activityName" => ActivityOrder::Name,
        "activityType" => ActivityOrder::Kind,
        "duration" => ActivityOrder::Duration,
        "endTime" => ActivityOrder::EndTime,
        "activityInstanceId" => ActivityOrder::Id,
        "processDefinitionId" => ActivityOrder::Model,
        "processInstanceId" => ActivityOrder::Instance,
        _ => ActivityOrder::StartTime,
    }
}

/// The filters of the activity history's list and query.
const ACTIVITY_FILTERS: [Filter; 12] = [
    filter("activityInstanceId", Kind::Text, "Only the activity of this id"),
    filter("activityId", Kind::Text, "Only activities of this element"),
    filter("activityName", Kind::Text, "Only activities of this name"),
    filter("activityType", Kind::Text, "Only activities of this type"),
    filter("processInstanceId", Kind::Text, "Only activities of this process instance"),
    filter("executionId", Kind::Text, "Only activities of this execution (its process instance)"),
    filter("processDefinitionId", Kind::Text, "Only activities of this process definition"),
    filter("finished", Kind::Flag, "Only ended activities (true) or open ones (false)"),
    filter("taskAssignee", Kind::Text, "Only user tasks of this assignee"),
    filter("tenantId", Kind::Text, "Only activities of this tenant"),
    filter("tenantIdLike", Kind::Text, "Only activities of a tenant like this"),
    filter("withoutTenantId", Kind::Flag, "Only activities of no tenant"),
];

described!(
    /// The filters of the activity history's list (query parameters) and query (a JSON body).
    checked ActivityFilters: ACTIVITY_FILTERS, PAGING, [sort(&ACTIVITY_SORTS)]
);

async fn activities(rt: &Runtime, origin: &str, params: &Map<String, Value>) -> Result<Listed<Activity>, ApiError> {
    ActivityFilters::check(params)?;
    let p = Params(params);
    let paging = Paging::read(&p, &ACTIVITY_SORTS)?;
    let query = ActivityQuery {
        id: p.text("activityInstanceId"),
        element: p.text("activityId"),
        name: p.text("activityName"),
        kind: p.text("activityType"),
        instance_id: p.text("processInstanceId").or_else(|| p.text("executionId")),
        model_id: p.text("processDefinitionId"),
        finished: p.flag("finished")?,
        assignee: p.text("taskAssignee"),
        tenant_id: p.text("tenantId"),
        tenant_id_like: p.text("tenantIdLike"),
        without_tenant: p.flag("withoutTenantId")? == Some(true),
        order: activity_order(paging.sort),
        descending: paging.descending,
    };
    let (rows, total) = rt.store().list_activities(&query, paging.page()).await?;
    let mut data = Vec::with_capacity(rows.len());
    for a in &rows {
        data.push(Activity::of(origin, a, model_tenant(rt, &a.model_id).await?));
    }
    Ok(paging.envelope(data, total))
}

#[utoipa::path(get, path = "/flowable-rest/service/history/historic-activity-instances", tag = "flowable-instances", params(ActivityFilters),
    responses(
        (status = 200, description = "A page of the activities the filters leave", body = Listed<Activity>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn list_activities(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Listed<Activity>>> {
    Ok(Json(activities(&rt, &origin(&headers), &query_map(q.as_deref())?).await?))
}

#[utoipa::path(post, path = "/flowable-rest/service/query/historic-activity-instances", tag = "flowable-instances",
    request_body = Option<ActivityFilters>,
    responses(
        (status = 200, description = "A page of the activities the filters leave", body = Listed<Activity>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn query_activities(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<Json<Listed<Activity>>> {
    Ok(Json(activities(&rt, &origin(&headers), &json_object(&body, true)?).await?))
}
