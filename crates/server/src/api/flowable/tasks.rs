//! `runtime/tasks`: get, list, query, create, update, act on (complete, claim, delegate,
//! resolve) and delete user tasks (seed 003, 15.7.1–15.7.6).

use super::filters::{Filter, Kind, PAGING, described, filter, sort};
use super::variables::{ProcessVariables, RestVariable, Scope, Variable, shown, variables};
use super::{FlowableResult, Listed, Paging, Params, SERVICE, iso_time, origin, query_map, service_url};
use crate::api::input::Query;
use crate::api::input::{Body, json_object};
use crate::auth::Caller;
use crate::error::{ApiError, FlowableErrorBody};
use crate::runtime::{Runtime, TaskFields, TaskOp, now_ms};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use flowstone_engine::{Delegation, TaskChange};
use flowstone_store::{TaskOrder, UserTaskQuery, UserTaskRow, VariableFilter, VariableOp, VariableScope};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new()
        .route(&format!("{SERVICE}/runtime/tasks"), get(list).post(create))
        .route(&format!("{SERVICE}/query/tasks"), post(query))
        .route(&format!("{SERVICE}/runtime/tasks/{{id}}"), get(get_task).put(update).post(act).delete(delete))
}

/// The tasks' part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(list, query, get_task, create, update, act, delete))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}

/// Sort properties of the task list, the default first.
const SORTS: [&str; 11] = [
    "id",
    "name",
    "description",
    "priority",
    "assignee",
    "owner",
    "createTime",
    "dueDate",
    "processInstanceId",
    "taskDefinitionKey",
    "tenantId",
];

/// The store's order for a sort property of the task list or of the task history (which
/// says `taskInstanceId` and `startTime`).
pub(super) fn order(sort: &str) -> TaskOrder {
    match sort {
        "name" => TaskOrder::Name,
        "description" => TaskOrder::Description,
        "priority" => TaskOrder::Priority,
        "assignee" => TaskOrder::Assignee,
        "owner" => TaskOrder::Owner,
        "createTime" | "startTime" => TaskOrder::CreateTime,
        "dueDate" => TaskOrder::DueDate,
        "processInstanceId" => TaskOrder::ProcessInstanceId,
        "taskDefinitionKey" => TaskOrder::TaskDefinitionKey,
        "tenantId" => TaskOrder::TenantId,
        _ => TaskOrder::Id,
    }
}

/// The filters of the task list and query.
const FILTERS: [Filter; 48] = [
    filter("taskId", Kind::Text, "Only the task of this id"),
    filter("name", Kind::Text, "Only tasks of this name"),
    filter("nameLike", Kind::Text, "Only tasks whose name is like this (`%` any run, `_` any character)"),
    filter("description", Kind::Text, "Only tasks of this description"),
    filter("priority", Kind::Whole, "Only tasks of this priority"),
    filter("minimumPriority", Kind::Whole, "Only tasks of this priority or more"),
    filter("maximumPriority", Kind::Whole, "Only tasks of this priority or less"),
    filter("assignee", Kind::Text, "Only tasks of this assignee"),
    filter("assigneeLike", Kind::Text, "Only tasks whose assignee is like this"),
    filter("owner", Kind::Text, "Only tasks of this owner"),
    filter("ownerLike", Kind::Text, "Only tasks whose owner is like this"),
    filter("unassigned", Kind::Flag, "Only tasks without an assignee"),
    filter("delegationState", Kind::OneOf(&["pending", "resolved"]), "Only tasks in this delegation state"),
    filter("candidateUser", Kind::Text, "Only tasks this user is a candidate for (directly or by a group)"),
    filter("candidateGroup", Kind::Text, "Only tasks this group is a candidate for"),
    filter("candidateGroups", Kind::Text, "Only tasks one of these groups (comma-separated) is a candidate for"),
    filter("candidateGroupIn", Kind::Texts, "Only tasks one of these groups is a candidate for"),
    filter("involvedUser", Kind::Text, "Only tasks this user is involved in (assignee, owner or a link)"),
    filter("candidateOrAssigned", Kind::Text, "Only tasks this user is assigned or a candidate for"),
    filter("taskDefinitionKey", Kind::Text, "Only tasks of this model element"),
    filter("taskDefinitionKeyLike", Kind::Text, "Only tasks of a model element like this"),
    filter("processInstanceId", Kind::Text, "Only tasks of this process instance"),
    filter("executionId", Kind::Text, "Only tasks of this execution (a process instance here)"),
    filter("processDefinitionId", Kind::Text, "Only tasks of this process definition"),
    filter("processDefinitionKey", Kind::Text, "Only tasks of process definitions of this key"),
    filter("processDefinitionKeyLike", Kind::Text, "Only tasks of process definitions of a key like this"),
    filter("processDefinitionName", Kind::Text, "Only tasks of process definitions of this name"),
    filter("processDefinitionNameLike", Kind::Text, "Only tasks of process definitions of a name like this"),
    filter("processInstanceBusinessKey", Kind::Text, "Only tasks of instances of this business key"),
    filter("processInstanceBusinessKeyLike", Kind::Text, "Only tasks of instances of a business key like this"),
    filter("createdOn", Kind::Date, "Only tasks created at this instant"),
    filter("createdBefore", Kind::Date, "Only tasks created before this instant"),
    filter("createdAfter", Kind::Date, "Only tasks created after this instant"),
    filter("dueOn", Kind::Date, "Only tasks due at this instant"),
    filter("dueBefore", Kind::Date, "Only tasks due before this instant"),
    filter("dueAfter", Kind::Date, "Only tasks due after this instant"),
    filter("withoutDueDate", Kind::Flag, "Only tasks without a due date"),
    filter("excludeSubTasks", Kind::Flag, "Leave subtasks out"),
    filter("parentTaskId", Kind::Text, "Only subtasks of this task"),
    filter("tenantId", Kind::Text, "Only tasks of this tenant"),
    filter("tenantIdLike", Kind::Text, "Only tasks of a tenant like this"),
    filter("withoutTenantId", Kind::Flag, "Only tasks of no tenant"),
    filter("category", Kind::Text, "Only tasks of this category"),
    filter("active", Kind::Flag, "false: only tasks of suspended instances (none: nothing is suspended here)"),
    filter("includeTaskLocalVariables", Kind::Flag, "Answer each task with its own variables"),
    filter("includeProcessVariables", Kind::Flag, "Answer each task with its process's variables"),
    filter("taskVariables", Kind::Variables, "Only tasks whose own variables match all of these"),
    filter("processInstanceVariables", Kind::Variables, "Only tasks whose process's variables match all of these"),
];

described!(
    /// The filters of the task list (query parameters) and query (a JSON body).
    checked TaskFilters: FILTERS, PAGING, [sort(&SORTS)]
);

/// Flowable's 404 for a task that is not (or no longer) open.
pub(super) fn task_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Could not find a task with id '{id}'."))
}

/// An open task, or Flowable's 404.
pub(super) async fn open_task(rt: &Runtime, id: &str) -> Result<UserTaskRow, ApiError> {
    match rt.store().user_task(id).await? {
        Some(task) if task.end_time.is_none() => Ok(task),
        _ => Err(task_not_found(id)),
    }
}

/// The task URL's path under the service root.
pub(super) fn task_path(id: &str) -> String {
    format!("runtime/tasks/{id}")
}

/// A task as Flowable answers it. Both the field names of seed 003 (`processInstance`,
/// `execution`, `parentTask`, `processDefinition`) and those of Flowable's own responses
/// (`…Url`, `…Id`) are present, so clients of either shape read it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Task {
    id: String,
    url: String,
    owner: Option<String>,
    assignee: Option<String>,
    /// `pending` while delegated, `resolved` once given back.
    delegation_state: Option<String>,
    name: Option<String>,
    description: Option<String>,
    create_time: Option<String>,
    due_date: Option<String>,
    priority: i64,
    /// Always false: nothing is suspended here.
    suspended: bool,
    claim_time: Option<String>,
    /// The model element it stands for.
    task_definition_key: Option<String>,
    #[schema(value_type = Option<String>)]
    scope_definition_id: (),
    #[schema(value_type = Option<String>)]
    scope_id: (),
    #[schema(value_type = Option<String>)]
    sub_scope_id: (),
    #[schema(value_type = Option<String>)]
    scope_type: (),
    #[schema(value_type = Option<String>)]
    propagated_stage_instance_id: (),
    tenant_id: Option<String>,
    category: Option<String>,
    form_key: Option<String>,
    parent_task_id: Option<String>,
    parent_task_url: Option<String>,
    parent_task: Option<String>,
    execution_id: Option<String>,
    execution_url: Option<String>,
    execution: Option<String>,
    process_instance_id: Option<String>,
    process_instance_url: Option<String>,
    process_instance: Option<String>,
    process_definition_id: Option<String>,
    process_definition_url: Option<String>,
    process_definition: Option<String>,
    /// Its variables, when the query asked for them.
    variables: Vec<Variable>,
}

impl Task {
    pub(super) fn of(origin: &str, t: &UserTaskRow, variables: Vec<Variable>) -> Task {
        let url = |path: Option<String>| path.map(|p| service_url(origin, &p));
        let instance_url = url(t.instance_id.as_ref().map(|i| format!("runtime/process-instances/{i}")));
        let execution_url = url(t.instance_id.as_ref().map(|i| format!("runtime/executions/{i}")));
        let parent_url = url(t.parent_task_id.as_deref().map(task_path));
        let definition_url = url(t.model_id.as_ref().map(|m| format!("repository/process-definitions/{m}")));
        Task {
            id: t.id.clone(),
            url: service_url(origin, &task_path(&t.id)),
            owner: t.owner.clone(),
            assignee: t.assignee.clone(),
            delegation_state: t.delegation.clone(),
            name: t.name.clone(),
            description: t.description.clone(),
            create_time: iso_time(t.create_time),
            due_date: t.due_date.and_then(iso_time),
            priority: t.priority,
            suspended: false,
            claim_time: t.claim_time.and_then(iso_time),
            task_definition_key: t.element.clone(),
            scope_definition_id: (),
            scope_id: (),
            sub_scope_id: (),
            scope_type: (),
            propagated_stage_instance_id: (),
            tenant_id: t.tenant_id.clone(),
            category: t.category.clone(),
            form_key: t.form_key.clone(),
            parent_task_id: t.parent_task_id.clone(),
            parent_task_url: parent_url.clone(),
            parent_task: parent_url,
            execution_id: t.instance_id.clone(),
            execution_url: execution_url.clone(),
            execution: execution_url,
            process_instance_id: t.instance_id.clone(),
            process_instance_url: instance_url.clone(),
            process_instance: instance_url,
            process_definition_id: t.model_id.clone(),
            process_definition_url: definition_url.clone(),
            process_definition: definition_url,
            variables,
        }
    }
}

/// The path parameter naming a task.
const ID: &str = "The task";

#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks/{id}", tag = "flowable-tasks",
    params(("id" = String, Path, description = ID)),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 404, description = "No open task of this id", body = FlowableErrorBody),
    ))]
async fn get_task(State(rt): State<Runtime>, headers: HeaderMap, Path(id): Path<String>) -> FlowableResult<Json<Task>> {
    let task = open_task(&rt, &id).await?;
    Ok(Json(Task::of(&origin(&headers), &task, Vec::new())))
}

/// `GET runtime/tasks`: the filters as query parameters.
#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks", tag = "flowable-tasks", params(TaskFilters),
    responses(
        (status = 200, description = "A page of the open tasks the filters leave", body = Listed<Task>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn list(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Listed<Task>>> {
    let params = query_map(q.as_deref())?;
    Ok(Json(run_query(&rt, &origin(&headers), &params, &caller).await?))
}

/// `POST query/tasks`: the same filters in a JSON body, plus variable filters.
#[utoipa::path(post, path = "/flowable-rest/service/query/tasks", tag = "flowable-tasks", request_body = Option<TaskFilters>,
    responses(
        (status = 200, description = "A page of the open tasks the filters leave", body = Listed<Task>),
        (status = 400, description = "A malformed filter", body = FlowableErrorBody),
    ))]
async fn query(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<Json<Listed<Task>>> {
    let params = json_object(&body, true)?;
    Ok(Json(run_query(&rt, &origin(&headers), &params, &caller).await?))
}

/// A variable filter of a task query, as sent.
#[derive(Deserialize)]
struct SentFilter {
    name: Option<String>,
    value: Value,
    operation: Option<String>,
    #[serde(rename = "type")]
    _kind: Option<String>,
}

/// The variable filters of `field` (of `scope`'s variables), checked.
fn variable_filters(
    params: &Map<String, Value>,
    field: &str,
    scope: VariableScope,
) -> Result<Vec<VariableFilter>, ApiError> {
    let Some(sent) = params.get(field).filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let sent: Vec<SentFilter> = serde_json::from_value(sent.clone())
        .map_err(|e| ApiError::bad_request(format!("`{field}` must be a list of {{name, value, operation}}: {e}")))?;
    sent.into_iter()
        .map(|f| {
            let name = f.operation.as_deref().unwrap_or("equals");
            let op = VariableOp::parse(name).ok_or_else(|| {
                let known: Vec<&str> = VariableOp::ALL.iter().map(|(n, _)| *n).collect();
                ApiError::bad_request(format!(
                    "Unsupported variable query operation: {name} (use one of {})",
                    known.join(", ")
                ))
            })?;
            if f.name.is_none() && op != VariableOp::Equals {
                return Err(ApiError::bad_request(format!("Variable name is required for operation {name}")));
            }
            Ok(VariableFilter { scope, name: f.name, op, value: f.value })
        })
        .collect()
}

/// How many candidate groups one task query may name: each is a bound value of its SQL.
const MAX_GROUPS: usize = 1000;

/// How many variable filters one task query may hold: each is a subquery of its SQL. SQLite
/// nests a condition at most 1,000 deep, and PostgreSQL's planner takes time that grows
/// faster than the count (measured on an empty database: 20 filters with 1,000 candidate
/// groups 0.4 s, 100 filters with them two minutes).
const MAX_VARIABLE_FILTERS: usize = 20;

/// A delegation state as given: `pending`, `resolved` or none; anything else is Flowable's 400.
fn delegation_state(text: Option<String>) -> Result<Option<Delegation>, ApiError> {
    match text.as_deref() {
        None => Ok(None),
        Some(d) => Delegation::parse(d).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!("Illegal value for delegationState: '{d}' (use pending or resolved)"))
        }),
    }
}

/// The store query the parameters ask for.
fn task_query(p: &Params<'_>, paging: &Paging<'_>) -> Result<UserTaskQuery, ApiError> {
    let delegation = delegation_state(p.text("delegationState"))?.map(|d| d.text().to_owned());
    let mut candidate_groups = p.text("candidateGroup").map(|g| vec![g]);
    if let Some(list) = p.text("candidateGroups") {
        candidate_groups = Some(list.split(',').map(|g| g.trim().to_owned()).filter(|g| !g.is_empty()).collect());
    }
    if let Some(Value::Array(items)) = p.0.get("candidateGroupIn") {
        candidate_groups = Some(items.iter().filter_map(|g| g.as_str().map(str::to_owned)).collect());
    }
    if let Some(groups) = candidate_groups.as_ref().filter(|g| g.len() > MAX_GROUPS) {
        return Err(ApiError::bad_request(format!(
            "A task query names at most {MAX_GROUPS} candidate groups, not {}",
            groups.len()
        )));
    }
    Ok(UserTaskQuery {
        finished: Some(false),
        id: p.text("taskId"),
        name: p.text("name"),
        name_like: p.text("nameLike"),
        description: p.text("description"),
        priority: p.int("priority")?,
        min_priority: p.int("minimumPriority")?,
        max_priority: p.int("maximumPriority")?,
        assignee: p.text("assignee"),
        assignee_like: p.text("assigneeLike"),
        owner: p.text("owner"),
        owner_like: p.text("ownerLike"),
        unassigned: p.flag("unassigned")?.unwrap_or(false),
        delegation,
        candidate_user: p.text("candidateUser"),
        candidate_groups,
        involved_user: p.text("involvedUser"),
        candidate_or_assigned: p.text("candidateOrAssigned"),
        visible_to: None,
        element: p.text("taskDefinitionKey"),
        element_like: p.text("taskDefinitionKeyLike"),
        instance_id: p.text("processInstanceId").or_else(|| p.text("executionId")),
        model_id: p.text("processDefinitionId"),
        model_key: p.text("processDefinitionKey"),
        model_key_like: p.text("processDefinitionKeyLike"),
        model_name: p.text("processDefinitionName"),
        model_name_like: p.text("processDefinitionNameLike"),
        business_key: p.text("processInstanceBusinessKey"),
        business_key_like: p.text("processInstanceBusinessKeyLike"),
        created_on: p.date("createdOn")?,
        created_before: p.date("createdBefore")?,
        created_after: p.date("createdAfter")?,
        due_on: p.date("dueOn")?,
        due_before: p.date("dueBefore")?,
        due_after: p.date("dueAfter")?,
        without_due_date: p.flag("withoutDueDate")?.unwrap_or(false),
        exclude_subtasks: p.flag("excludeSubTasks")?.unwrap_or(false),
        parent_task_id: p.text("parentTaskId"),
        tenant_id: p.text("tenantId"),
        tenant_id_like: p.text("tenantIdLike"),
        without_tenant: p.flag("withoutTenantId")?.unwrap_or(false),
        category: p.text("category"),
        ended_before: None,
        ended_after: None,
        variables: Vec::new(),
        order: order(paging.sort),
        descending: paging.descending,
    })
}

async fn run_query(
    rt: &Runtime,
    origin: &str,
    params: &Map<String, Value>,
    caller: &Caller,
) -> Result<Listed<Task>, ApiError> {
    TaskFilters::check(params)?;
    let p = Params(params);
    let paging = Paging::read(&p, &SORTS)?;
    let mut query = UserTaskQuery { visible_to: caller.own_tasks(), ..task_query(&p, &paging)? };
    if let Some(tenant) = caller.tenant_limit() {
        query.tenant_id = Some(tenant.to_owned());
    }
    let suspended_only = p.flag("active")? == Some(false);
    query.variables = variable_filters(params, "taskVariables", VariableScope::Task)?;
    query.variables.extend(variable_filters(params, "processInstanceVariables", VariableScope::Process)?);
    if query.variables.len() > MAX_VARIABLE_FILTERS {
        return Err(ApiError::bad_request(format!(
            "A task query holds at most {MAX_VARIABLE_FILTERS} variable filters, not {}",
            query.variables.len()
        )));
    }
    let with_local = p.flag("includeTaskLocalVariables")?.unwrap_or(false);
    let with_global = p.flag("includeProcessVariables")?.unwrap_or(false);
    if suspended_only {
        // `active=false` asks for tasks of suspended instances, and none is ever suspended
        // (every parameter was read first: a malformed one is refused).
        return Ok(paging.envelope(Vec::new(), 0));
    }
    let (tasks, total) = rt.store().list_user_tasks(&query, Some(paging.page())).await?;
    let mut process = ProcessVariables::default();
    let mut data = Vec::with_capacity(tasks.len());
    for task in &tasks {
        let mut vars = Vec::new();
        for (include, scope) in [(with_local, Scope::Local), (with_global, Scope::Global)] {
            if include {
                let listed = shown(rt, task, Some(scope), &mut process).await?;
                vars.extend(listed.into_iter().map(|v| v.listed(origin, &task.id)));
            }
        }
        data.push(Task::of(origin, task, vars));
    }
    Ok(paging.envelope(data, total))
}

/// The task fields a create or update body may set; a field present as null clears it.
const FIELDS: [Filter; 11] = [
    filter("name", Kind::Text, "Its name"),
    filter("description", Kind::Text, "Its description"),
    filter("assignee", Kind::Text, "Who works on it"),
    filter("owner", Kind::Text, "Who is responsible for it"),
    filter("delegationState", Kind::OneOf(&["pending", "resolved"]), "Its delegation state"),
    filter("dueDate", Kind::Date, "When it is due"),
    filter("priority", Kind::Whole, "How urgent it is (50 when null)"),
    filter("parentTaskId", Kind::Text, "The task it is a subtask of (an existing task, not itself)"),
    filter("category", Kind::Text, "Its category"),
    filter("formKey", Kind::Text, "The form a client shows for it"),
    filter("tenantId", Kind::Text, "Its tenant"),
];

described!(
    /// The fields of a task to create or update: those present are set (null clears one).
    checked TaskBody: FIELDS
);

/// The fields present in `body`, checked (`task`: the id of the task they are for).
async fn task_fields(rt: &Runtime, task: &str, body: &Map<String, Value>) -> Result<TaskFields, ApiError> {
    TaskBody::check(body)?;
    let p = Params(body);
    let mut fields = TaskFields::default();
    for field in FIELDS.iter().map(|f| f.name).filter(|f| body.contains_key(*f)) {
        let text = p.text(field);
        match field {
            "name" => fields.name = Some(text),
            "description" => fields.description = Some(text),
            "assignee" => fields.assignee = Some(text),
            "owner" => fields.owner = Some(text),
            "category" => fields.category = Some(text),
            "formKey" => fields.form_key = Some(text),
            "tenantId" => fields.tenant_id = Some(text),
            "delegationState" => fields.delegation = Some(delegation_state(text)?),
            "dueDate" => fields.due_date = Some(p.date("dueDate")?),
            "priority" => fields.priority = Some(p.int("priority")?.unwrap_or(flowstone_engine::DEFAULT_PRIORITY)),
            "parentTaskId" => {
                if let Some(parent) = &text {
                    if parent == task {
                        return Err(ApiError::bad_request("a task cannot be its own parent"));
                    }
                    if rt.store().user_task(parent).await?.is_none() {
                        return Err(ApiError::bad_request(format!("parent task '{parent}' does not exist")));
                    }
                }
                fields.parent_task_id = Some(text);
            }
            _ => {}
        }
    }
    Ok(fields)
}

/// `POST runtime/tasks`: a standalone task (a subtask with `parentTaskId`).
#[utoipa::path(post, path = "/flowable-rest/service/runtime/tasks", tag = "flowable-tasks", request_body = TaskBody,
    responses(
        (status = 201, description = "The task made", body = Task),
        (status = 400, description = "A malformed field, or a parent task that does not exist", body = FlowableErrorBody),
    ))]
async fn create(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<(StatusCode, Json<Task>)> {
    let body = json_object(&body, false)?;
    let mut task = UserTaskRow {
        id: crate::runtime::new_id(),
        priority: flowstone_engine::DEFAULT_PRIORITY,
        create_time: now_ms(),
        version: 1,
        ..UserTaskRow::default()
    };
    task_fields(&rt, &task.id, &body).await?.apply(&mut task);
    let task = rt.change_task(&task.id.clone(), TaskOp::Create(Box::new(task)), caller.person()).await?;
    Ok((StatusCode::CREATED, Json(Task::of(&origin(&headers), &task, Vec::new()))))
}

#[utoipa::path(put, path = "/flowable-rest/service/runtime/tasks/{id}", tag = "flowable-tasks",
    params(("id" = String, Path, description = ID)), request_body = TaskBody,
    responses(
        (status = 200, description = "The task as changed", body = Task),
        (status = 400, description = "A malformed field, or a parent task that does not exist", body = FlowableErrorBody),
        (status = 404, description = "No open task of this id", body = FlowableErrorBody),
    ))]
async fn update(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<Json<Task>> {
    let body = json_object(&body, false)?;
    open_task(&rt, &id).await?;
    let fields = Box::new(task_fields(&rt, &id, &body).await?);
    let task = rt.change_task(&id, TaskOp::Fields { fields, event: None }, caller.person()).await?;
    Ok(Json(Task::of(&origin(&headers), &task, Vec::new())))
}

/// `POST runtime/tasks/{id}`'s body.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ActionRequest {
    /// `complete`, `claim`, `delegate` or `resolve`. Required.
    action: Option<String>,
    /// Who claims the task (none: it is unclaimed), or whom it is delegated to.
    assignee: Option<String>,
    /// Process variables a completion sets.
    #[serde(default)]
    variables: Vec<RestVariable>,
    /// Variables a completion hands to the rest of this step only.
    #[serde(default)]
    transient_variables: Vec<RestVariable>,
}

/// `POST runtime/tasks/{id}`: complete, claim, delegate or resolve.
#[utoipa::path(post, path = "/flowable-rest/service/runtime/tasks/{id}", tag = "flowable-tasks",
    params(("id" = String, Path, description = ID)), request_body = ActionRequest,
    responses(
        (status = 200, description = "Done"),
        (status = 400, description = "No action, an unknown one, or a malformed variable", body = FlowableErrorBody),
        (status = 404, description = "No open task of this id", body = FlowableErrorBody),
        (status = 409, description = "The task is not in a state for it: claimed by another, or delegated and \
            not resolved yet", body = FlowableErrorBody),
    ))]
async fn act(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<StatusCode> {
    let req: ActionRequest = crate::api::worker::parse(&body)?;
    open_task(&rt, &id).await?;
    let (mut variables_in, mut transient_in) = (Map::new(), Map::new());
    let change = match req.action.as_deref() {
        Some("complete") => {
            transient_in = variables(req.transient_variables)?;
            variables_in = variables(req.variables)?;
            TaskChange::Complete
        }
        Some("claim") => TaskChange::Claim(req.assignee),
        Some("delegate") => match req.assignee.filter(|a| !a.is_empty()) {
            Some(delegate) => TaskChange::Delegate(delegate),
            None => return Err(ApiError::bad_request("An assignee is required when delegating a task.").into()),
        },
        Some("resolve") => TaskChange::Resolve,
        Some(other) => return Err(ApiError::bad_request(format!("Invalid action: '{other}'.")).into()),
        None => {
            return Err(ApiError::bad_request("An action is required (complete, claim, delegate or resolve).").into());
        }
    };
    let op = TaskOp::Change { change, variables: variables_in, transient: transient_in };
    rt.change_task(&id, op, caller.person()).await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct DeleteParams {
    /// Forget the task (else it stays in the history, ended).
    cascade_history: Option<bool>,
    /// Why it was deleted, kept in the history.
    delete_reason: Option<String>,
}

/// `DELETE runtime/tasks/{id}`: only standalone tasks; a process's task ends with its process.
#[utoipa::path(delete, path = "/flowable-rest/service/runtime/tasks/{id}", tag = "flowable-tasks",
    params(("id" = String, Path, description = ID), DeleteParams),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No open task of this id", body = FlowableErrorBody),
        (status = 403, description = "A process's task: it ends with its process", body = FlowableErrorBody),
    ))]
async fn delete(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    params: Result<Query<DeleteParams>, ApiError>,
) -> FlowableResult<StatusCode> {
    let Query(params) = params?;
    open_task(&rt, &id).await?;
    let op = TaskOp::Delete { keep_history: !params.cascade_history.unwrap_or(false), reason: params.delete_reason };
    rt.change_task(&id, op, caller.person()).await?;
    Ok(StatusCode::NO_CONTENT)
}
