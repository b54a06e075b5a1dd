//! `runtime/tasks`: get, list, query, create, update, act on (complete, claim, delegate,
//! resolve) and delete user tasks (seed 003, 15.7.1–15.7.6).

use super::variables::{RestVariable, Scope, Shown, shown, variables};
use super::{FlowableResult, Paging, Params, SERVICE, iso_time, origin, query_map, service_url};
use crate::api::input::Query;
use crate::api::input::{Body, json_object};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::runtime::{Runtime, TaskFields, TaskOp, now_ms};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use flowstone_engine::{Delegation, TaskChange};
use flowstone_store::{TaskOrder, UserTaskQuery, UserTaskRow};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new()
        .route(&format!("{SERVICE}/runtime/tasks"), get(list).post(create))
        .route(&format!("{SERVICE}/query/tasks"), post(query))
        .route(&format!("{SERVICE}/runtime/tasks/{{id}}"), get(get_task).put(update).post(act).delete(delete))
}

/// Sort properties of the task list, the default first.
const SORTS: [(&str, TaskOrder); 11] = [
    ("id", TaskOrder::Id),
    ("name", TaskOrder::Name),
    ("description", TaskOrder::Description),
    ("priority", TaskOrder::Priority),
    ("assignee", TaskOrder::Assignee),
    ("owner", TaskOrder::Owner),
    ("createTime", TaskOrder::CreateTime),
    ("dueDate", TaskOrder::DueDate),
    ("processInstanceId", TaskOrder::ProcessInstanceId),
    ("taskDefinitionKey", TaskOrder::TaskDefinitionKey),
    ("tenantId", TaskOrder::TenantId),
];

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
pub(super) fn task_json(origin: &str, t: &UserTaskRow, variables: Option<Vec<Value>>) -> Value {
    let url = |path: Option<String>| path.map_or(Value::Null, |p| json!(service_url(origin, &p)));
    let instance_url = url(t.instance_id.as_ref().map(|i| format!("runtime/process-instances/{i}")));
    let execution_url = url(t.instance_id.as_ref().map(|i| format!("runtime/executions/{i}")));
    let parent_url = url(t.parent_task_id.as_deref().map(task_path));
    let definition_url = url(t.model_id.as_ref().map(|m| format!("repository/process-definitions/{m}")));
    json!({
        "id": t.id,
        "url": service_url(origin, &task_path(&t.id)),
        "owner": t.owner,
        "assignee": t.assignee,
        "delegationState": t.delegation,
        "name": t.name,
        "description": t.description,
        "createTime": iso_time(t.create_time),
        "dueDate": t.due_date.map_or(Value::Null, iso_time),
        "priority": t.priority,
        "suspended": false,
        "claimTime": t.claim_time.map_or(Value::Null, iso_time),
        "taskDefinitionKey": t.element,
        "scopeDefinitionId": null,
        "scopeId": null,
        "subScopeId": null,
        "scopeType": null,
        "propagatedStageInstanceId": null,
        "tenantId": t.tenant_id,
        "category": t.category,
        "formKey": t.form_key,
        "parentTaskId": t.parent_task_id,
        "parentTaskUrl": parent_url,
        "parentTask": parent_url,
        "executionId": t.instance_id,
        "executionUrl": execution_url,
        "execution": execution_url,
        "processInstanceId": t.instance_id,
        "processInstanceUrl": instance_url,
        "processInstance": instance_url,
        "processDefinitionId": t.model_id,
        "processDefinitionUrl": definition_url,
        "processDefinition": definition_url,
        "variables": variables.unwrap_or_default(),
    })
}

async fn get_task(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Value>> {
    let task = open_task(&rt, &id).await?;
    Ok(Json(task_json(&origin(&headers), &task, None)))
}

/// `GET runtime/tasks`: the filters as query parameters.
async fn list(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Value>> {
    let params = query_map(q.as_deref())?;
    Ok(Json(run_query(&rt, &origin(&headers), &params, &caller).await?))
}

/// `POST query/tasks`: the same filters in a JSON body, plus variable filters.
async fn query(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<Json<Value>> {
    let params = json_object(&body, true)?;
    Ok(Json(run_query(&rt, &origin(&headers), &params, &caller).await?))
}

/// A variable filter of a task query.
#[derive(Deserialize)]
struct VariableFilter {
    name: Option<String>,
    value: Value,
    operation: Option<String>,
    #[serde(rename = "type")]
    _kind: Option<String>,
}

fn variable_filters(params: &Map<String, Value>, field: &str) -> Result<Vec<VariableFilter>, ApiError> {
    match params.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => {
            let filters: Vec<VariableFilter> = serde_json::from_value(v.clone()).map_err(|e| {
                ApiError::bad_request(format!("`{field}` must be a list of {{name, value, operation}}: {e}"))
            })?;
            for f in &filters {
                let op = f.operation.as_deref().unwrap_or("equals");
                if !OPERATIONS.contains(&op) {
                    return Err(ApiError::bad_request(format!(
                        "Unsupported variable query operation: {op} (use one of {})",
                        OPERATIONS.join(", ")
                    )));
                }
                if f.name.is_none() && op != "equals" {
                    return Err(ApiError::bad_request(format!("Variable name is required for operation {op}")));
                }
            }
            Ok(filters)
        }
    }
}

const OPERATIONS: [&str; 10] = [
    "equals",
    "notEquals",
    "equalsIgnoreCase",
    "notEqualsIgnoreCase",
    "lessThan",
    "greaterThan",
    "lessThanOrEquals",
    "greaterThanOrEquals",
    "like",
    "likeIgnoreCase",
];

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
        order: SORTS.iter().find(|(name, _)| *name == paging.sort).map_or(TaskOrder::Id, |(_, o)| *o),
        descending: paging.descending,
    })
}

async fn run_query(
    rt: &Runtime,
    origin: &str,
    params: &Map<String, Value>,
    caller: &Caller,
) -> Result<Value, ApiError> {
    let p = Params(params);
    let sorts: Vec<&str> = SORTS.iter().map(|(name, _)| *name).collect();
    let paging = Paging::read(&p, &sorts)?;
    let mut query = UserTaskQuery { visible_to: caller.own_tasks(), ..task_query(&p, &paging)? };
    if let Some(tenant) = caller.tenant_limit() {
        query.tenant_id = Some(tenant.to_owned());
    }
    if p.flag("active")? == Some(false) {
        // `active=false` asks for tasks of suspended instances, and none is ever suspended.
        return Ok(paging.envelope(Vec::new(), 0));
    }
    let local = variable_filters(params, "taskVariables")?;
    let global = variable_filters(params, "processInstanceVariables")?;
    let with_local = p.flag("includeTaskLocalVariables")?.unwrap_or(false);
    let with_global = p.flag("includeProcessVariables")?.unwrap_or(false);
    let store = rt.store();
    let mut process_vars: HashMap<String, Map<String, Value>> = HashMap::new();
    let (tasks, total) = if local.is_empty() && global.is_empty() {
        store.list_user_tasks(&query, Some(paging.page())).await?
    } else {
        // Variable filters are checked here, on every task the other filters leave.
        let (all, _) = store.list_user_tasks(&query, None).await?;
        let mut kept = Vec::new();
        for task in all {
            let locals = local_values(rt, &task.id).await?;
            let globals = instance_values(rt, &task, &mut process_vars).await?;
            if local.iter().all(|f| matches(f, &locals)) && global.iter().all(|f| matches(f, &globals)) {
                kept.push(task);
            }
        }
        let total = kept.len() as u64;
        let page = kept.into_iter().skip(paging.start as usize).take(paging.size as usize).collect();
        (page, total)
    };
    let mut data = Vec::with_capacity(tasks.len());
    for task in &tasks {
        let mut vars = Vec::new();
        for (include, scope) in [(with_local, Scope::Local), (with_global, Scope::Global)] {
            if include {
                vars.extend(shown(rt, task, Some(scope)).await?.iter().map(|v| v.listed(origin, &task.id)));
            }
        }
        data.push(task_json(origin, task, Some(vars)));
    }
    Ok(paging.envelope(data, total))
}

/// A task's local variables as JSON values (binary ones as null).
pub(super) async fn local_values(rt: &Runtime, task_id: &str) -> Result<Map<String, Value>, ApiError> {
    let vars = rt.store().task_variables(task_id).await?;
    Ok(vars.into_iter().map(Shown::local).map(|v| (v.name, v.value)).collect())
}

/// The process variables of a task's instance (none for a standalone task), loaded once per instance.
pub(super) async fn instance_values(
    rt: &Runtime,
    task: &UserTaskRow,
    cache: &mut HashMap<String, Map<String, Value>>,
) -> Result<Map<String, Value>, ApiError> {
    let Some(instance) = &task.instance_id else { return Ok(Map::new()) };
    if !cache.contains_key(instance) {
        let vars = rt.variables(instance).await?.unwrap_or_default();
        cache.insert(instance.clone(), vars);
    }
    Ok(cache.get(instance).cloned().unwrap_or_default())
}

/// Whether the variables hold a value the filter matches (any variable, for an unnamed `equals`).
fn matches(f: &VariableFilter, vars: &Map<String, Value>) -> bool {
    let op = f.operation.as_deref().unwrap_or("equals");
    match &f.name {
        Some(name) => vars.get(name).is_some_and(|v| compare(op, v, &f.value)),
        None => vars.values().any(|v| compare(op, v, &f.value)),
    }
}

fn compare(op: &str, actual: &Value, wanted: &Value) -> bool {
    use std::cmp::Ordering;
    let order = match (actual, wanted) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    let lower = |v: &Value| v.as_str().map(str::to_lowercase);
    match op {
        "equals" => order == Some(Ordering::Equal) || actual == wanted,
        "notEquals" => !(order == Some(Ordering::Equal) || actual == wanted),
        "equalsIgnoreCase" => lower(actual).is_some() && lower(actual) == lower(wanted),
        "notEqualsIgnoreCase" => lower(actual).is_some() && lower(actual) != lower(wanted),
        "lessThan" => order == Some(Ordering::Less),
        "greaterThan" => order == Some(Ordering::Greater),
        "lessThanOrEquals" => matches!(order, Some(Ordering::Less | Ordering::Equal)),
        "greaterThanOrEquals" => matches!(order, Some(Ordering::Greater | Ordering::Equal)),
        "like" => actual.as_str().zip(wanted.as_str()).is_some_and(|(a, p)| like(a, p)),
        "likeIgnoreCase" => lower(actual).zip(lower(wanted)).is_some_and(|(a, p)| like(&a, &p)),
        _ => false,
    }
}

/// SQL `LIKE`: `%` any run, `_` any one character.
pub(super) fn like(text: &str, pattern: &str) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = (text.chars().collect(), pattern.chars().collect());
    // matched[j]: the text so far matches the first j pattern characters.
    let mut matched = vec![false; p.len() + 1];
    matched[0] = true;
    for j in 0..p.len() {
        matched[j + 1] = matched[j] && p[j] == '%';
    }
    for c in t {
        let mut next = vec![false; p.len() + 1];
        for j in 0..p.len() {
            next[j + 1] = match p[j] {
                '%' => next[j] || matched[j + 1],
                '_' => matched[j],
                pc => matched[j] && pc == c,
            };
        }
        matched = next;
    }
    matched[p.len()]
}

/// The task fields a create or update body may set; a field present as null clears it.
const FIELDS: [&str; 11] = [
    "name",
    "description",
    "assignee",
    "owner",
    "delegationState",
    "dueDate",
    "priority",
    "parentTaskId",
    "category",
    "formKey",
    "tenantId",
];

/// The fields present in `body`, checked (`task`: the id of the task they are for).
async fn task_fields(rt: &Runtime, task: &str, body: &Map<String, Value>) -> Result<TaskFields, ApiError> {
    let p = Params(body);
    let mut fields = TaskFields::default();
    for field in FIELDS.iter().filter(|f| body.contains_key(**f)) {
        let text = p.text(field);
        match *field {
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
async fn create(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<(StatusCode, Json<Value>)> {
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
    Ok((StatusCode::CREATED, Json(task_json(&origin(&headers), &task, None))))
}

async fn update(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<Json<Value>> {
    let body = json_object(&body, false)?;
    open_task(&rt, &id).await?;
    let fields = Box::new(task_fields(&rt, &id, &body).await?);
    let task = rt.change_task(&id, TaskOp::Fields { fields, event: None }, caller.person()).await?;
    Ok(Json(task_json(&origin(&headers), &task, None)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionRequest {
    action: Option<String>,
    assignee: Option<String>,
    #[serde(default)]
    variables: Vec<RestVariable>,
    #[serde(default)]
    transient_variables: Vec<RestVariable>,
}

/// `POST runtime/tasks/{id}`: complete, claim, delegate or resolve.
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteParams {
    cascade_history: Option<bool>,
    delete_reason: Option<String>,
}

/// `DELETE runtime/tasks/{id}`: only standalone tasks; a process's task ends with its process.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_match_as_sql_does() {
        assert!(like("kermit", "k%"));
        assert!(like("kermit", "%mi_"));
        assert!(like("", "%"));
        assert!(!like("kermit", "k_"));
        assert!(!like("gonzo", "k%"));
    }

    #[test]
    fn variable_comparisons_follow_their_operation() {
        assert!(compare("equals", &json!(1234), &json!(1234.0)));
        assert!(compare("greaterThan", &json!(5), &json!(3)));
        assert!(!compare("lessThan", &json!("b"), &json!("a")));
        assert!(compare("equalsIgnoreCase", &json!("Hello"), &json!("hello")));
        assert!(compare("likeIgnoreCase", &json!("Hello"), &json!("he%")));
        assert!(!compare("greaterThan", &json!("5"), &json!(3)), "a string is not compared with a number");
    }
}
