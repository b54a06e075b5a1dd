//! Where instances are and have been: `runtime/executions` (a running instance's own
//! execution and one per open activity) and `history/historic-activity-instances` (every task
//! run and every pass through an event or a gateway).

use super::repository::model_tenant;
use super::{FlowableResult, Paging, Params, SERVICE, iso_time, origin, query_map, service_url};
use crate::api::input::{Body, json_object};
use crate::error::ApiError;
use crate::runtime::Runtime;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use flowstone_store::{ActivityOrder, ActivityQuery, ActivityRow, ExecutionQuery, ExecutionRow, Page};
use serde_json::{Map, Value, json};

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

// ---- executions ----------------------------------------------------------------------------

fn execution_json(origin: &str, e: &ExecutionRow, tenant: Option<String>) -> Value {
    let url = |id: &str| service_url(origin, &format!("runtime/executions/{id}"));
    json!({
        "id": e.id,
        "url": url(&e.id),
        "parentId": e.parent_id,
        "parentUrl": e.parent_id.as_deref().map(url),
        "processInstanceId": e.instance_id,
        "processInstanceUrl": service_url(origin, &format!("runtime/process-instances/{}", e.instance_id)),
        "suspended": false,
        "activityId": e.activity,
        "tenantId": tenant,
    })
}

const EXECUTION_SORTS: [&str; 2] = ["processInstanceId", "processDefinitionId"];

async fn executions(rt: &Runtime, origin: &str, params: &Map<String, Value>) -> Result<Value, ApiError> {
    let p = Params(params);
    let paging = Paging::read(&p, &EXECUTION_SORTS)?;
    for unsupported in
        ["variables", "processInstanceVariables", "messageEventSubscriptionName", "signalEventSubscriptionName"]
    {
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
        by_model: paging.sort == "processDefinitionId",
        descending: paging.descending,
    };
    let (rows, total) = rt.store().list_executions(&query, paging.page()).await?;
    let mut data = Vec::with_capacity(rows.len());
    for e in &rows {
        data.push(execution_json(origin, e, model_tenant(rt, &e.model_id).await?));
    }
    Ok(paging.envelope(data, total))
}

async fn list_executions(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Value>> {
    Ok(Json(executions(&rt, &origin(&headers), &query_map(q.as_deref())?).await?))
}

async fn query_executions(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<Json<Value>> {
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

async fn get_execution(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Value>> {
    let (execution, _) = execution_family(&rt, &id).await?;
    let tenant = model_tenant(&rt, &execution.model_id).await?;
    Ok(Json(execution_json(&origin(&headers), &execution, tenant)))
}

/// `GET runtime/executions/{id}/activities`: the elements the execution and those under it wait in.
async fn execution_activities(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<Json<Value>> {
    let (execution, children) = execution_family(&rt, &id).await?;
    let mut active: Vec<String> =
        execution.activity.into_iter().chain(children.into_iter().filter_map(|c| c.activity)).collect();
    active.dedup();
    Ok(Json(json!(active)))
}

/// `PUT runtime/executions/{id}`: signals and messages need receive tasks and catching events,
/// which the engine does not have; user tasks move on through `runtime/tasks`.
async fn act_on_execution(
    State(rt): State<Runtime>,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<Json<Value>> {
    execution_family(&rt, &id).await?;
    let body = json_object(&body, false)?;
    match body.get("action").and_then(Value::as_str) {
        Some(action @ ("signal" | "trigger" | "signalEventReceived" | "messageEventReceived")) => {
            Err(ApiError::not_implemented(format!(
                "Action '{action}' needs receive tasks or catching events, which Flowstone does not run yet; \
                 complete user tasks through runtime/tasks"
            ))
            .into())
        }
        Some(other) => Err(ApiError::bad_request(format!("Invalid action: '{other}'.")).into()),
        None => Err(ApiError::bad_request("Action is required").into()),
    }
}

// ---- historic activity instances -----------------------------------------------------------

fn activity_json(origin: &str, a: &ActivityRow, tenant: Option<String>) -> Value {
    json!({
        "id": a.id,
        "activityId": a.element,
        "activityName": a.name,
        "activityType": a.kind,
        "processDefinitionId": a.model_id,
        "processDefinitionUrl": service_url(origin, &format!("repository/process-definitions/{}", a.model_id)),
        "processInstanceId": a.instance_id,
        "processInstanceUrl": service_url(origin, &format!("history/historic-process-instances/{}", a.instance_id)),
        "executionId": a.instance_id,
        "taskId": a.user_task_id,
        "calledProcessInstanceId": null,
        "assignee": a.assignee,
        "startTime": iso_time(a.start_time),
        "endTime": a.end_time.map_or(Value::Null, iso_time),
        "durationInMillis": a.end_time.map(|e| e - a.start_time),
        "tenantId": tenant,
    })
}

const ACTIVITY_SORTS: [(&str, ActivityOrder); 9] = [
    ("startTime", ActivityOrder::StartTime),
    ("activityId", ActivityOrder::Element),
    ("activityName", ActivityOrder::Name),
    ("activityType", ActivityOrder::Kind),
    ("duration", ActivityOrder::Duration),
    ("endTime", ActivityOrder::EndTime),
    ("activityInstanceId", ActivityOrder::Id),
    ("processDefinitionId", ActivityOrder::Model),
    ("processInstanceId", ActivityOrder::Instance),
];

async fn activities(rt: &Runtime, origin: &str, params: &Map<String, Value>) -> Result<Value, ApiError> {
    let p = Params(params);
    let paging = Paging::read(&p, &ACTIVITY_SORTS.map(|(name, _)| name))?;
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
        order: ACTIVITY_SORTS
            .iter()
            .find(|(name, _)| *name == paging.sort)
            .map_or_else(ActivityOrder::default, |(_, o)| *o),
        descending: paging.descending,
    };
    let (rows, total) = rt.store().list_activities(&query, paging.page()).await?;
    let mut data = Vec::with_capacity(rows.len());
    for a in &rows {
        data.push(activity_json(origin, a, model_tenant(rt, &a.model_id).await?));
    }
    Ok(paging.envelope(data, total))
}

async fn list_activities(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Value>> {
    Ok(Json(activities(&rt, &origin(&headers), &query_map(q.as_deref())?).await?))
}

async fn query_activities(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<Json<Value>> {
    Ok(Json(activities(&rt, &origin(&headers), &json_object(&body, true)?).await?))
}
