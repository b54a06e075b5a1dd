//! `history/historic-task-instances`: user tasks, open and ended, as the history shows them.

use super::filters::{Filter, Kind, PAGING, described, filter, sort};
use super::instances::history_variables;
use super::tasks::order;
use super::variables::{ProcessVariables, Scope, Variable, shown as shown_variables};
use super::{FlowableResult, Listed, Paging, Params, SERVICE, iso_time, origin, query_map, service_url};
use crate::api::input::{Body, json_object};
use crate::error::{ApiError, FlowableErrorBody};
use crate::runtime::Runtime;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use flowstone_store::{UserTaskQuery, UserTaskRow};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new()
        .route(&format!("{SERVICE}/history/historic-task-instances"), get(list_task_history))
        .route(&format!("{SERVICE}/query/historic-task-instances"), post(query_task_history))
        .route(&format!("{SERVICE}/history/historic-task-instances/{{id}}"), get(get_task_history))
}

/// The task history's part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(list_task_history, query_task_history, get_task_history))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}

/// A user task, open or ended, as the history shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct HistoricTask {
    id: String,
    url: String,
    process_definition_id: Option<String>,
    process_definition_url: Option<String>,
    process_instance_id: Option<String>,
    process_instance_url: Option<String>,
    execution_id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    /// Why it ended other than by completion.
    delete_reason: Option<String>,
    owner: Option<String>,
    assignee: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    duration_in_millis: Option<i64>,
    /// From its claim to its end.
    work_time_in_millis: Option<i64>,
    claim_time: Option<String>,
    task_definition_key: Option<String>,
    form_key: Option<String>,
    priority: i64,
    due_date: Option<String>,
    parent_task_id: Option<String>,
    category: Option<String>,
    #[schema(value_type = Option<Vec<Variable>>)]
    variables: (),
    tenant_id: Option<String>,
    /// Its own variables, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    task_variables: Option<Vec<Variable>>,
    /// Its process's variables, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    process_variables: Option<Vec<Variable>>,
}

impl HistoricTask {
    fn of(origin: &str, t: &UserTaskRow) -> HistoricTask {
        let url = |path: Option<String>| path.map(|p| service_url(origin, &p));
        HistoricTask {
            id: t.id.clone(),
            url: service_url(origin, &format!("history/historic-task-instances/{}", t.id)),
            process_definition_id: t.model_id.clone(),
            process_definition_url: url(t.model_id.as_ref().map(|m| format!("repository/process-definitions/{m}"))),
            process_instance_id: t.instance_id.clone(),
            process_instance_url: url(t
                .instance_id
                .as_ref()
                .map(|i| format!("history/historic-process-instances/{i}"))),
            execution_id: t.instance_id.clone(),
            name: t.name.clone(),
            description: t.description.clone(),
            delete_reason: t.delete_reason.clone(),
            owner: t.owner.clone(),
            assignee: t.assignee.clone(),
            start_time: iso_time(t.create_time),
            end_time: t.end_time.and_then(iso_time),
            duration_in_millis: t.end_time.map(|e| e - t.create_time),
            work_time_in_millis: t.end_time.zip(t.claim_time).map(|(e, c)| e - c),
            claim_time: t.claim_time.and_then(iso_time),
            task_definition_key: t.element.clone(),
            form_key: t.form_key.clone(),
            priority: t.priority,
            due_date: t.due_date.and_then(iso_time),
            parent_task_id: t.parent_task_id.clone(),
            category: t.category.clone(),
            variables: (),
            tenant_id: t.tenant_id.clone(),
            task_variables: None,
            process_variables: None,
        }
    }
}

/// Sort properties of the task history, the default first.
const SORTS: [&str; 7] = ["taskInstanceId", "name", "description", "priority", "assignee", "owner", "startTime"];

/// The filters of the task history's list and query.
const FILTERS: [Filter; 19] = [
    filter("finished", Kind::Flag, "Only ended tasks (true) or open ones (false)"),
    filter("taskId", Kind::Text, "Only the task of this id"),
    filter("taskName", Kind::Text, "Only tasks of this name"),
    filter("taskNameLike", Kind::Text, "Only tasks whose name is like this (`%` any run, `_` any character)"),
    filter("taskDescription", Kind::Text, "Only tasks of this description"),
    filter("taskAssignee", Kind::Text, "Only tasks of this assignee"),
    filter("taskAssigneeLike", Kind::Text, "Only tasks whose assignee is like this"),
    filter("taskOwner", Kind::Text, "Only tasks of this owner"),
    filter("taskOwnerLike", Kind::Text, "Only tasks whose owner is like this"),
    filter("taskPriority", Kind::Whole, "Only tasks of this priority"),
    filter("taskDefinitionKey", Kind::Text, "Only tasks of this model element"),
    filter("processInstanceId", Kind::Text, "Only tasks of this process instance"),
    filter("processDefinitionId", Kind::Text, "Only tasks of this process definition"),
    filter("processDefinitionKey", Kind::Text, "Only tasks of process definitions of this key"),
    filter("parentTaskId", Kind::Text, "Only subtasks of this task"),
    filter("taskInvolvedUser", Kind::Text, "Only tasks this user is involved in"),
    filter("tenantId", Kind::Text, "Only tasks of this tenant"),
    filter("includeTaskLocalVariables", Kind::Flag, "Answer each task with its own variables"),
    filter("includeProcessVariables", Kind::Flag, "Answer each task with its process's variables"),
];

described!(
    /// The filters of the task history's list (query parameters) and query (a JSON body).
    checked HistoricTaskFilters: FILTERS, PAGING, [sort(&SORTS)]
);

async fn task_history(
    rt: &Runtime,
    origin: &str,
    params: &Map<String, Value>,
) -> Result<Listed<HistoricTask>, ApiError> {
    HistoricTaskFilters::check(params)?;
    let p = Params(params);
    let paging = Paging::read(&p, &SORTS)?;
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
        order: order(paging.sort),
        descending: paging.descending,
        ..UserTaskQuery::default()
    };
    let (tasks, total) = rt.store().list_user_tasks(&query, Some(paging.page())).await?;
    let with_local = p.flag("includeTaskLocalVariables")? == Some(true);
    let with_global = p.flag("includeProcessVariables")? == Some(true);
    let mut process = ProcessVariables::default();
    let mut data = Vec::with_capacity(tasks.len());
    for t in &tasks {
        let mut shown = HistoricTask::of(origin, t);
        if with_local {
            let locals = shown_variables(rt, t, Some(Scope::Local), &mut process).await?;
            let locals = locals.into_iter().map(|v| (v.name, v.value)).collect();
            shown.task_variables = Some(history_variables(locals, "local"));
        }
        if with_global && t.instance_id.is_some() {
            let globals = process.of(rt, t).await?;
            shown.process_variables = Some(history_variables(globals, "global"));
        }
        data.push(shown);
    }
    Ok(paging.envelope(data, total))
}

#[utoipa::path(get, path = "/flowable-rest/service/history/historic-task-instances", tag = "flowable-tasks",
    params(HistoricTaskFilters),
    responses(
        (status = 200, description = "A page of the tasks, open and ended, the filters leave", body = Listed<HistoricTask>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn list_task_history(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Listed<HistoricTask>>> {
    Ok(Json(task_history(&rt, &origin(&headers), &query_map(q.as_deref())?).await?))
}

#[utoipa::path(post, path = "/flowable-rest/service/query/historic-task-instances", tag = "flowable-tasks",
    request_body = Option<HistoricTaskFilters>,
    responses(
        (status = 200, description = "A page of the tasks, open and ended, the filters leave", body = Listed<HistoricTask>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn query_task_history(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<Json<Listed<HistoricTask>>> {
    Ok(Json(task_history(&rt, &origin(&headers), &json_object(&body, true)?).await?))
}

#[utoipa::path(get, path = "/flowable-rest/service/history/historic-task-instances/{id}", tag = "flowable-tasks",
    params(("id" = String, Path, description = "The task")),
    responses(
        (status = 200, description = "The task, open or ended", body = HistoricTask),
        (status = 404, description = "No task of this id", body = FlowableErrorBody),
    ))]
async fn get_task_history(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<HistoricTask>> {
    let task = rt
        .store()
        .user_task(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Could not find a task instance with id '{id}'.")))?;
    Ok(Json(HistoricTask::of(&origin(&headers), &task)))
}
