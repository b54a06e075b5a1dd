//! What hangs on a task: variables, identity links, comments, events and attachments
//! (seed 003, 15.7.7–15.7.32).

use super::tasks::{open_task, task_path};
use super::variables::Variable;
use super::variables::{ProcessVariables, RestVariable, Scope, Shown, scope, shown};
use super::{FlowableResult, SERVICE, iso_time, origin, service_url};
use crate::api::input::Query;
use crate::api::input::json_object;
use crate::auth::Caller;
use crate::error::{ApiError, FlowableErrorBody};
use crate::runtime::{Part, Runtime, TaskFields, TaskOp, new_id, now_ms};
use axum::body::Bytes;
use axum::extract::{Extension, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use flowstone_store::{AttachmentRow, CommentRow, TaskLink, TaskVariable, UserTaskRow};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

pub(super) fn routes() -> Router<crate::api::App> {
    let task = format!("{SERVICE}/runtime/tasks/{{id}}");
    Router::new()
        .route(&format!("{task}/variables"), get(list_variables).post(create_variables).delete(delete_locals))
        .route(&format!("{task}/variables/{{name}}"), get(get_variable).put(update_variable).delete(delete_variable))
        .route(&format!("{task}/variables/{{name}}/data"), get(variable_data))
        .route(&format!("{task}/identitylinks"), get(all_links).post(create_link))
        .route(&format!("{task}/identitylinks/{{family}}"), get(family_links))
        .route(&format!("{task}/identitylinks/{{family}}/{{identity}}/{{kind}}"), get(get_link).delete(delete_link))
        .route(&format!("{task}/comments"), get(list_comments).post(create_comment))
        .route(&format!("{task}/comments/{{comment}}"), get(get_comment).delete(delete_comment))
        .route(&format!("{task}/events"), get(list_events))
        .route(&format!("{task}/events/{{event}}"), get(get_event))
        .route(&format!("{task}/attachments"), get(list_attachments).post(create_attachment))
        .route(&format!("{task}/attachments/{{attachment}}"), get(get_attachment).delete(delete_attachment))
        .route(&format!("{task}/attachments/{{attachment}}/content"), get(attachment_content))
        // Seed 003 (15.7.31) spells this path with `attachment`.
        .route(&format!("{task}/attachment/{{attachment}}/content"), get(attachment_content))
}

/// The task parts' part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        list_variables,
        create_variables,
        delete_locals,
        get_variable,
        update_variable,
        delete_variable,
        variable_data,
        all_links,
        create_link,
        family_links,
        get_link,
        delete_link,
        list_comments,
        create_comment,
        get_comment,
        delete_comment,
        list_events,
        get_event,
        list_attachments,
        create_attachment,
        get_attachment,
        delete_attachment,
        attachment_content
    ))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}

/// The path parameter naming a task.
const TASK: &str = "The task";

// ---- variables ----------------------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ScopeParam {
    /// `local` (the task's own) or `global` (its process's); both when none, locals first.
    scope: Option<String>,
}

fn scope_param(q: Result<Query<ScopeParam>, ApiError>) -> Result<Option<Scope>, ApiError> {
    let Query(q) = q?;
    scope(q.scope.as_deref())
}

async fn one_variable(rt: &Runtime, task: &UserTaskRow, name: &str, scope: Option<Scope>) -> Result<Shown, ApiError> {
    shown(rt, task, scope, &mut ProcessVariables::default())
        .await?
        .into_iter()
        .find(|v| v.name == name)
        .ok_or_else(|| ApiError::not_found(format!("Task '{}' does not have a variable with name: '{name}'", task.id)))
}

#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks/{id}/variables", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK), ScopeParam),
    responses(
        (status = 200, description = "The task's variables", body = Vec<Variable>),
        (status = 400, description = "An unknown scope", body = FlowableErrorBody),
        (status = 404, description = "No open task of this id", body = FlowableErrorBody),
    ))]
async fn list_variables(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<ScopeParam>, ApiError>,
) -> FlowableResult<Json<Vec<Variable>>> {
    let scope = scope_param(q)?;
    let task = open_task(&rt, &id).await?;
    let origin = origin(&headers);
    let vars = shown(&rt, &task, scope, &mut ProcessVariables::default()).await?;
    Ok(Json(vars.into_iter().map(|v| v.answer(&origin, &id)).collect()))
}

#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks/{id}/variables/{name}", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK), ("name" = String, Path, description = "The variable"), ScopeParam),
    responses(
        (status = 200, description = "The variable", body = Variable),
        (status = 400, description = "An unknown scope", body = FlowableErrorBody),
        (status = 404, description = "No open task of this id, or no variable of this name", body = FlowableErrorBody),
    ))]
async fn get_variable(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
    q: Result<Query<ScopeParam>, ApiError>,
) -> FlowableResult<Json<Variable>> {
    let scope = scope_param(q)?;
    let task = open_task(&rt, &id).await?;
    Ok(Json(one_variable(&rt, &task, &name, scope).await?.answer(&origin(&headers), &id)))
}

/// The bytes of a binary variable.
#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks/{id}/variables/{name}/data", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK), ("name" = String, Path, description = "The variable"), ScopeParam),
    responses(
        (status = 200, description = "Its bytes (`application/x-java-serialized-object` for a serializable one)",
            content_type = "application/octet-stream"),
        (status = 400, description = "An unknown scope", body = FlowableErrorBody),
        (status = 404, description = "No open task, no variable of this name, or not a binary one", body = FlowableErrorBody),
    ))]
async fn variable_data(
    State(rt): State<Runtime>,
    Path((id, name)): Path<(String, String)>,
    q: Result<Query<ScopeParam>, ApiError>,
) -> FlowableResult<Response> {
    let scope = scope_param(q)?;
    let task = open_task(&rt, &id).await?;
    let no_data = || ApiError::not_found(format!("The variable '{name}' of task '{id}' does not have a binary stream"));
    if scope == Some(Scope::Global) {
        return Err(no_data().into());
    }
    let var = rt.store().task_variables(&task.id).await?.into_iter().find(|v| v.name == name);
    let Some(var) = var else {
        // A global variable has no binary stream; no variable at all is its own 404.
        one_variable(&rt, &task, &name, scope).await?;
        return Err(no_data().into());
    };
    let Some(bytes) = var.bytes else { return Err(no_data().into()) };
    let content_type =
        if var.kind == "serializable" { "application/x-java-serialized-object" } else { "application/octet-stream" };
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

/// A variable to write, with the scope it goes to.
struct Incoming {
    scope: Scope,
    var: TaskVariable,
    value: Value,
}

fn incoming(v: &RestVariable) -> Result<Incoming, ApiError> {
    let scope = scope(v.scope.as_deref())?.unwrap_or(Scope::Local);
    let (value, kind) = v.typed()?;
    let name = v.name()?.to_owned();
    Ok(Incoming { scope, var: TaskVariable { name, kind, value: Some(value.to_string()), bytes: None }, value })
}

/// A multipart body's text fields and the content of its file part.
async fn read_form(mut form: Multipart) -> Result<(Map<String, Value>, Option<Vec<u8>>), ApiError> {
    let malformed =
        |e: axum::extract::multipart::MultipartError| ApiError::bad_request(format!("malformed multipart body: {e}"));
    let mut fields = Map::new();
    let mut file = None;
    while let Some(field) = form.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some();
        let data = field.bytes().await.map_err(malformed)?;
        if is_file {
            file = Some(data.to_vec());
        } else {
            fields.insert(name, Value::String(String::from_utf8_lossy(&data).into_owned()));
        }
    }
    Ok((fields, file))
}

/// A binary variable from a multipart body: a file part, and `name`, `scope`, `type` fields.
async fn multipart_variable(form: Multipart) -> Result<Incoming, ApiError> {
    let (fields, bytes) = read_form(form).await?;
    let Some(bytes) = bytes else { return Err(ApiError::bad_request("No file content was found in the request body")) };
    let name = fields
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("No variable name was found in the request body"))?
        .to_owned();
    let kind = fields.get("type").and_then(Value::as_str).unwrap_or("binary").to_owned();
    if kind != "binary" && kind != "serializable" {
        return Err(ApiError::bad_request(format!(
            "Unsupported binary variable type: '{kind}' (use binary or serializable)"
        )));
    }
    let scope = scope(fields.get("scope").and_then(Value::as_str))?.unwrap_or(Scope::Local);
    if scope == Scope::Global {
        return Err(ApiError::bad_request("Binary variables are kept on the task only: use scope local"));
    }
    Ok(Incoming { scope, var: TaskVariable { name, kind, value: None, bytes: Some(bytes) }, value: Value::Null })
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("multipart/"))
}

/// The variables of a create or update body: a JSON list (or one object) or one multipart file.
async fn read_incoming(request: Request, list: bool) -> Result<Vec<Incoming>, ApiError> {
    if is_multipart(request.headers()) {
        let form = Multipart::from_request(request, &()).await.map_err(ApiError::rejected)?;
        return Ok(vec![multipart_variable(form).await?]);
    }
    let body = Bytes::from_request(request, &()).await.map_err(ApiError::rejected)?;
    let parsed: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON in the request body: {e}")))?;
    let items = match (parsed, list) {
        (Value::Array(items), true) => items,
        (Value::Object(one), false) => vec![Value::Object(one)],
        (_, true) => return Err(ApiError::bad_request("Request did not contain a list of variables to create.")),
        (_, false) => return Err(ApiError::bad_request("The request body must be one variable object")),
    };
    if items.is_empty() {
        return Err(ApiError::bad_request("Request didn't contain a list of variables to create."));
    }
    items
        .into_iter()
        .map(|item| {
            let v: RestVariable =
                serde_json::from_value(item).map_err(|e| ApiError::bad_request(format!("malformed variable: {e}")))?;
            incoming(&v)
        })
        .collect()
}

/// Writes variables (locals to the task, globals to its process) as one change.
async fn write(rt: &Runtime, caller: &Caller, task: &str, vars: &[Incoming], create: bool) -> Result<(), ApiError> {
    let locals = vars.iter().filter(|v| v.scope == Scope::Local).map(|v| v.var.clone()).collect();
    let globals =
        vars.iter().filter(|v| v.scope == Scope::Global).map(|v| (v.var.name.clone(), v.value.clone())).collect();
    let part = Part::SetVariables { locals, globals, create };
    rt.change_task(task, TaskOp::Part(part), caller.person()).await?;
    Ok(())
}

/// What a create answers: one binary variable as itself, a JSON list as a list.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum Created {
    One(Variable),
    Many(Vec<Variable>),
}

/// A JSON list of variables (or a multipart form of one binary variable: a file part, and
/// `name`, `type` (`binary` or `serializable`) and `scope` fields).
#[utoipa::path(post, path = "/flowable-rest/service/runtime/tasks/{id}/variables", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK)), request_body = Vec<RestVariable>,
    responses(
        (status = 201, description = "The variables made", body = Created),
        (status = 400, description = "No variables, a malformed one, or an unknown type or scope", body = FlowableErrorBody),
        (status = 404, description = "No open task of this id", body = FlowableErrorBody),
        (status = 409, description = "A variable of one of these names exists already", body = FlowableErrorBody),
    ))]
async fn create_variables(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    request: Request,
) -> FlowableResult<(StatusCode, Json<Created>)> {
    let origin = origin(request.headers());
    let binary = is_multipart(request.headers());
    open_task(&rt, &id).await?;
    let vars = read_incoming(request, !binary).await?;
    write(&rt, &caller, &id, &vars, true).await?;
    let mut made: Vec<Variable> = vars.into_iter().map(|v| written(v).answer(&origin, &id)).collect();
    let body = match made.pop() {
        Some(one) if binary => Created::One(one),
        last => Created::Many(made.into_iter().chain(last).collect()),
    };
    Ok((StatusCode::CREATED, Json(body)))
}

fn written(v: Incoming) -> Shown {
    Shown { binary: v.var.bytes.is_some(), name: v.var.name, scope: v.scope, kind: Some(v.var.kind), value: v.value }
}

/// One variable in JSON, or a multipart form of one binary variable.
#[utoipa::path(put, path = "/flowable-rest/service/runtime/tasks/{id}/variables/{name}", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK), ("name" = String, Path, description = "The variable")),
    request_body = RestVariable,
    responses(
        (status = 200, description = "The variable as written", body = Variable),
        (status = 400, description = "A malformed variable, or one of another name", body = FlowableErrorBody),
        (status = 404, description = "No open task of this id, or no variable of this name", body = FlowableErrorBody),
    ))]
async fn update_variable(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path((id, name)): Path<(String, String)>,
    request: Request,
) -> FlowableResult<Json<Variable>> {
    let origin = origin(request.headers());
    open_task(&rt, &id).await?;
    let mut vars = read_incoming(request, false).await?;
    let Some(var) = vars.pop() else { return Err(ApiError::bad_request("no variable in the request body").into()) };
    if var.var.name != name {
        return Err(ApiError::bad_request(
            "Variable name in the body should be equal to the name used in the requested URL.",
        )
        .into());
    }
    write(&rt, &caller, &id, std::slice::from_ref(&var), false).await?;
    Ok(Json(written(var).answer(&origin, &id)))
}

#[utoipa::path(delete, path = "/flowable-rest/service/runtime/tasks/{id}/variables/{name}", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK), ("name" = String, Path, description = "The variable"), ScopeParam),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "An unknown scope", body = FlowableErrorBody),
        (status = 404, description = "No open task of this id, or no variable of this name", body = FlowableErrorBody),
    ))]
async fn delete_variable(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path((id, name)): Path<(String, String)>,
    q: Result<Query<ScopeParam>, ApiError>,
) -> FlowableResult<StatusCode> {
    let global = scope_param(q)? == Some(Scope::Global);
    open_task(&rt, &id).await?;
    rt.change_task(&id, TaskOp::Part(Part::DeleteVariable { name, global }), caller.person()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the task's own variables (its process's stay).
#[utoipa::path(delete, path = "/flowable-rest/service/runtime/tasks/{id}/variables", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No open task of this id", body = FlowableErrorBody),
    ))]
async fn delete_locals(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> FlowableResult<StatusCode> {
    open_task(&rt, &id).await?;
    rt.change_task(&id, TaskOp::Part(Part::DeleteLocals), caller.person()).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- identity links -----------------------------------------------------------------------

/// An identity link of a task: a user or a group, and how it is involved.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Link {
    user_id: Option<String>,
    group_id: Option<String>,
    /// `assignee`, `owner`, `candidate`, `participant`, or another word.
    #[serde(rename = "type")]
    kind: String,
    url: String,
}

impl Link {
    fn of(origin: &str, link: &TaskLink) -> Link {
        let (family, identity) = match (&link.user_id, &link.group_id) {
            (Some(user), _) => ("users", user.as_str()),
            (None, Some(group)) => ("groups", group.as_str()),
            (None, None) => ("users", ""),
        };
        let path = format!("{}/identitylinks/{family}/{identity}/{}", task_path(&link.task_id), link.kind);
        let url = service_url(origin, &path);
        Link { user_id: link.user_id.clone(), group_id: link.group_id.clone(), kind: link.kind.clone(), url }
    }
}

/// The stored links, with the assignee and owner as links of those types, as Flowable lists them.
async fn links(rt: &Runtime, task: &UserTaskRow) -> Result<Vec<TaskLink>, ApiError> {
    let person = |user: &Option<String>, kind: &str| {
        user.as_ref().map(|u| TaskLink {
            task_id: task.id.clone(),
            user_id: Some(u.clone()),
            group_id: None,
            kind: kind.into(),
        })
    };
    let mut out: Vec<TaskLink> =
        person(&task.assignee, "assignee").into_iter().chain(person(&task.owner, "owner")).collect();
    out.extend(rt.store().task_links(&task.id).await?);
    Ok(out)
}

/// The task's links, its assignee and owner among them.
#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks/{id}/identitylinks", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK)),
    responses(
        (status = 200, description = "The task's identity links", body = Vec<Link>),
        (status = 404, description = "No open task of this id", body = FlowableErrorBody),
    ))]
async fn all_links(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Vec<Link>>> {
    let task = open_task(&rt, &id).await?;
    let origin = origin(&headers);
    Ok(Json(links(&rt, &task).await?.iter().map(|l| Link::of(&origin, l)).collect()))
}

fn family_is_users(family: &str) -> Result<bool, ApiError> {
    match family {
        "users" => Ok(true),
        "groups" => Ok(false),
        other => Err(ApiError::not_found(format!("No identity links of family '{other}' (use users or groups)"))),
    }
}

/// The path parameter naming a family of links.
const FAMILY: &str = "`users` or `groups`";

#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks/{id}/identitylinks/{family}", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK), ("family" = String, Path, description = FAMILY)),
    responses(
        (status = 200, description = "The task's links of users, or of groups", body = Vec<Link>),
        (status = 404, description = "No open task of this id, or another family", body = FlowableErrorBody),
    ))]
async fn family_links(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path((id, family)): Path<(String, String)>,
) -> FlowableResult<Json<Vec<Link>>> {
    let users = family_is_users(&family)?;
    let task = open_task(&rt, &id).await?;
    let origin = origin(&headers);
    let found = links(&rt, &task).await?;
    Ok(Json(found.iter().filter(|l| l.user_id.is_some() == users).map(|l| Link::of(&origin, l)).collect()))
}

async fn find_link(
    rt: &Runtime,
    id: &str,
    family: &str,
    identity: &str,
    kind: &str,
) -> Result<(UserTaskRow, TaskLink), ApiError> {
    let users = family_is_users(family)?;
    let task = open_task(rt, id).await?;
    let found = links(rt, &task).await?.into_iter().find(|l| {
        l.kind == kind
            && if users { l.user_id.as_deref() == Some(identity) } else { l.group_id.as_deref() == Some(identity) }
    });
    let link = found.ok_or_else(|| {
        ApiError::not_found(format!(
            "Could not find the requested identity link: {family}/{identity}/{kind} on task '{id}'"
        ))
    })?;
    Ok((task, link))
}

#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks/{id}/identitylinks/{family}/{identity}/{kind}", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK), ("family" = String, Path, description = FAMILY),
        ("identity" = String, Path, description = "The user or group"), ("kind" = String, Path, description = "The link's type")),
    responses(
        (status = 200, description = "The link", body = Link),
        (status = 404, description = "No open task of this id, or no such link", body = FlowableErrorBody),
    ))]
async fn get_link(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path((id, family, identity, kind)): Path<(String, String, String, String)>,
) -> FlowableResult<Json<Link>> {
    let (_, link) = find_link(&rt, &id, &family, &identity, &kind).await?;
    Ok(Json(Link::of(&origin(&headers), &link)))
}

/// A link to make: a user or a group (one of them), and its type.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct LinkRequest {
    user_id: Option<String>,
    group_id: Option<String>,
    /// Required.
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// A user link of type `assignee` or `owner` sets that field of the task.
#[utoipa::path(post, path = "/flowable-rest/service/runtime/tasks/{id}/identitylinks", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK)), request_body = LinkRequest,
    responses(
        (status = 201, description = "The link made", body = Link),
        (status = 400, description = "No type, or not exactly one of userId and groupId", body = FlowableErrorBody),
        (status = 404, description = "No open task of this id", body = FlowableErrorBody),
    ))]
async fn create_link(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
    crate::api::input::Body(body): crate::api::input::Body,
) -> FlowableResult<(StatusCode, Json<Link>)> {
    let req: LinkRequest = crate::api::worker::parse(&body)?;
    let task = open_task(&rt, &id).await?;
    let kind = req
        .kind
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::bad_request("The identity link type is required."))?;
    match (&req.user_id, &req.group_id) {
        (Some(_), None) | (None, Some(_)) => {}
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("Only one of userId or groupId can be provided.").into());
        }
        (None, None) => return Err(ApiError::bad_request("Either userId or groupId is required.").into()),
    }
    let link = TaskLink { task_id: id.clone(), user_id: req.user_id, group_id: req.group_id, kind };
    change_link(&rt, &caller, &task, &link, true).await?;
    Ok((StatusCode::CREATED, Json(Link::of(&origin(&headers), &link))))
}

/// Adds (`add`) or removes a link. Flowable keeps the assignee and the owner on the task
/// itself, not as links: a user link of those kinds sets the field.
async fn change_link(
    rt: &Runtime,
    caller: &Caller,
    task: &UserTaskRow,
    link: &TaskLink,
    add: bool,
) -> Result<(), ApiError> {
    let user = link.user_id.clone().filter(|_| add);
    let fields = match (link.user_id.is_some(), link.kind.as_str()) {
        (true, "assignee") => Some(TaskFields { assignee: Some(user), ..TaskFields::default() }),
        (true, "owner") => Some(TaskFields { owner: Some(user), ..TaskFields::default() }),
        _ => None,
    };
    let op = match fields {
        Some(fields) => {
            let action = if add { "AddUserLink" } else { "DeleteUserLink" };
            let who = link.user_id.clone().unwrap_or_default();
            TaskOp::Fields { fields: Box::new(fields), event: Some((action, vec![who, link.kind.clone()])) }
        }
        None if add => TaskOp::Part(Part::AddLink(link.clone())),
        None => TaskOp::Part(Part::RemoveLink(link.clone())),
    };
    rt.change_task(&task.id, op, caller.person()).await?;
    Ok(())
}

#[utoipa::path(delete, path = "/flowable-rest/service/runtime/tasks/{id}/identitylinks/{family}/{identity}/{kind}", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK), ("family" = String, Path, description = FAMILY),
        ("identity" = String, Path, description = "The user or group"), ("kind" = String, Path, description = "The link's type")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No open task of this id, or no such link", body = FlowableErrorBody),
    ))]
async fn delete_link(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path((id, family, identity, kind)): Path<(String, String, String, String)>,
) -> FlowableResult<StatusCode> {
    let (task, link) = find_link(&rt, &id, &family, &identity, &kind).await?;
    change_link(&rt, &caller, &task, &link, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- comments and events ------------------------------------------------------------------

/// A comment on a task.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Comment {
    id: String,
    url: String,
    task_url: String,
    /// Where the comment is read under its process instance, when it was saved there too.
    process_instance_url: Option<String>,
    message: String,
    author: Option<String>,
    time: Option<String>,
    task_id: Option<String>,
    process_instance_id: Option<String>,
}

impl Comment {
    fn of(origin: &str, c: &CommentRow) -> Comment {
        let task = c.task_id.clone().unwrap_or_default();
        let instance_url = c
            .instance_id
            .as_ref()
            .map(|i| service_url(origin, &format!("history/historic-process-instances/{i}/comments/{}", c.id)));
        let url = service_url(origin, &format!("{}/comments/{}", task_path(&task), c.id));
        Comment {
            id: c.id.clone(),
            task_url: url.clone(),
            url,
            process_instance_url: instance_url,
            message: c.message.clone(),
            author: c.author.clone(),
            time: iso_time(c.time),
            task_id: c.task_id.clone(),
            process_instance_id: c.instance_id.clone(),
        }
    }
}

/// Something that happened to a task: a link added, a comment, an attachment.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Event {
    /// `AddUserLink`, `DeleteUserLink`, `AddGroupLink`, `AddComment`, `AddAttachment`, …
    action: String,
    id: String,
    /// Its words: the user and the link type, the comment, the attachment's name.
    message: Vec<String>,
    task_url: String,
    time: Option<String>,
    url: String,
    user_id: Option<String>,
}

impl Event {
    fn of(origin: &str, c: &CommentRow) -> Event {
        let task = c.task_id.clone().unwrap_or_default();
        let message = serde_json::from_str(&c.message).unwrap_or_else(|_| vec![c.message.clone()]);
        Event {
            action: c.action.clone(),
            id: c.id.clone(),
            message,
            task_url: service_url(origin, &task_path(&task)),
            time: iso_time(c.time),
            url: service_url(origin, &format!("{}/events/{}", task_path(&task), c.id)),
            user_id: c.author.clone(),
        }
    }
}

/// A comment to make.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CommentRequest {
    /// Required.
    message: Option<String>,
    /// Keep it on the task's process instance too.
    save_process_instance_id: Option<bool>,
}

#[utoipa::path(post, path = "/flowable-rest/service/runtime/tasks/{id}/comments", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK)), request_body = CommentRequest,
    responses(
        (status = 201, description = "The comment made, by the caller", body = Comment),
        (status = 400, description = "No message", body = FlowableErrorBody),
        (status = 404, description = "No open task of this id", body = FlowableErrorBody),
    ))]
async fn create_comment(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
    crate::api::input::Body(body): crate::api::input::Body,
) -> FlowableResult<(StatusCode, Json<Comment>)> {
    let req: CommentRequest = crate::api::worker::parse(&body)?;
    let task = open_task(&rt, &id).await?;
    let message =
        req.message.filter(|m| !m.is_empty()).ok_or_else(|| ApiError::bad_request("Comment text is required."))?;
    let comment = CommentRow {
        id: new_id(),
        kind: "comment".into(),
        task_id: Some(id),
        instance_id: if req.save_process_instance_id.unwrap_or(false) { task.instance_id.clone() } else { None },
        author: Some(caller.user.clone()),
        time: now_ms(),
        action: "AddComment".into(),
        message: message.clone(),
    };
    rt.change_task(&task.id, TaskOp::Part(Part::AddComment(comment.clone())), caller.person()).await?;
    Ok((StatusCode::CREATED, Json(Comment::of(&origin(&headers), &comment))))
}

#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks/{id}/comments", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK)),
    responses(
        (status = 200, description = "The task's comments", body = Vec<Comment>),
        (status = 404, description = "No open task of this id", body = FlowableErrorBody),
    ))]
async fn list_comments(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Vec<Comment>>> {
    open_task(&rt, &id).await?;
    let origin = origin(&headers);
    Ok(Json(rt.store().comments_of_task(&id, "comment").await?.iter().map(|c| Comment::of(&origin, c)).collect()))
}

/// A comment or event of this task, or Flowable's 404.
async fn task_comment(rt: &Runtime, id: &str, comment: &str, kind: &str) -> Result<CommentRow, ApiError> {
    open_task(rt, id).await?;
    match rt.store().comment(comment).await? {
        Some(c) if c.task_id.as_deref() == Some(id) && c.kind == kind => Ok(c),
        _ => Err(ApiError::not_found(format!("Task '{id}' does not have a {kind} with id '{comment}'."))),
    }
}

#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks/{id}/comments/{comment}", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK), ("comment" = String, Path, description = "The comment")),
    responses(
        (status = 200, description = "The comment", body = Comment),
        (status = 404, description = "No open task of this id, or no such comment on it", body = FlowableErrorBody),
    ))]
async fn get_comment(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path((id, comment)): Path<(String, String)>,
) -> FlowableResult<Json<Comment>> {
    let c = task_comment(&rt, &id, &comment, "comment").await?;
    Ok(Json(Comment::of(&origin(&headers), &c)))
}

#[utoipa::path(delete, path = "/flowable-rest/service/runtime/tasks/{id}/comments/{comment}", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK), ("comment" = String, Path, description = "The comment")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No open task of this id, or no such comment on it", body = FlowableErrorBody),
    ))]
async fn delete_comment(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path((id, comment)): Path<(String, String)>,
) -> FlowableResult<StatusCode> {
    open_task(&rt, &id).await?;
    rt.change_task(&id, TaskOp::Part(Part::DeleteComment(comment)), caller.person()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks/{id}/events", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK)),
    responses(
        (status = 200, description = "What happened to the task", body = Vec<Event>),
        (status = 404, description = "No open task of this id", body = FlowableErrorBody),
    ))]
async fn list_events(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Vec<Event>>> {
    open_task(&rt, &id).await?;
    let origin = origin(&headers);
    Ok(Json(rt.store().comments_of_task(&id, "event").await?.iter().map(|c| Event::of(&origin, c)).collect()))
}

#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks/{id}/events/{event}", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK), ("event" = String, Path, description = "The event")),
    responses(
        (status = 200, description = "The event", body = Event),
        (status = 404, description = "No open task of this id, or no such event of it", body = FlowableErrorBody),
    ))]
async fn get_event(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path((id, event_id)): Path<(String, String)>,
) -> FlowableResult<Json<Event>> {
    let c = task_comment(&rt, &id, &event_id, "event").await?;
    Ok(Json(Event::of(&origin(&headers), &c)))
}

// ---- attachments --------------------------------------------------------------------------

/// An attachment of a task: content kept here, or a link elsewhere.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Attachment {
    id: String,
    url: String,
    name: String,
    user_id: Option<String>,
    description: Option<String>,
    /// Its type, as given (a media type serves its content as such).
    #[serde(rename = "type")]
    kind: Option<String>,
    task_url: String,
    process_instance_url: Option<String>,
    /// Where it links to, for one without content.
    external_url: Option<String>,
    /// Where its content is read, for one with content.
    content_url: Option<String>,
    time: Option<String>,
}

impl Attachment {
    fn of(origin: &str, a: &AttachmentRow) -> Attachment {
        let task = a.task_id.clone().unwrap_or_default();
        let url = service_url(origin, &format!("{}/attachments/{}", task_path(&task), a.id));
        Attachment {
            id: a.id.clone(),
            content_url: a.has_content.then(|| format!("{url}/content")),
            url,
            name: a.name.clone(),
            user_id: a.author.clone(),
            description: a.description.clone(),
            kind: a.kind.clone(),
            task_url: service_url(origin, &task_path(&task)),
            process_instance_url: a
                .instance_id
                .as_ref()
                .map(|i| service_url(origin, &format!("history/historic-process-instances/{i}"))),
            external_url: a.url.clone(),
            time: iso_time(a.time),
        }
    }
}

/// A link to make an attachment of (a multipart form with a file part, and `name`,
/// `description` and `type` fields, makes one with content).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AttachmentRequest {
    /// Required.
    name: Option<String>,
    description: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    external_url: Option<String>,
}

#[utoipa::path(post, path = "/flowable-rest/service/runtime/tasks/{id}/attachments", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK)), request_body = AttachmentRequest,
    responses(
        (status = 201, description = "The attachment made, by the caller", body = Attachment),
        (status = 400, description = "No name, or a form without a file part", body = FlowableErrorBody),
        (status = 404, description = "No open task of this id", body = FlowableErrorBody),
    ))]
async fn create_attachment(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    request: Request,
) -> FlowableResult<(StatusCode, Json<Attachment>)> {
    let origin = origin(request.headers());
    let task = open_task(&rt, &id).await?;
    let (fields, content) = if is_multipart(request.headers()) {
        let form = Multipart::from_request(request, &()).await.map_err(ApiError::rejected)?;
        let (fields, content) = read_form(form).await?;
        if content.is_none() {
            return Err(ApiError::bad_request("Attachment content is required: the request has no file part.").into());
        }
        (fields, content)
    } else {
        let body = Bytes::from_request(request, &()).await.map_err(ApiError::rejected)?;
        (json_object(&body, false)?, None)
    };
    let req: AttachmentRequest = serde_json::from_value(Value::Object(fields))
        .map_err(|e| ApiError::bad_request(format!("malformed attachment: {e}")))?;
    let name =
        req.name.filter(|n| !n.is_empty()).ok_or_else(|| ApiError::bad_request("Attachment name is required."))?;
    let attachment = AttachmentRow {
        id: new_id(),
        task_id: Some(id.clone()),
        instance_id: task.instance_id.clone(),
        name,
        description: req.description,
        kind: req.kind,
        url: if content.is_some() { None } else { req.external_url },
        has_content: content.is_some(),
        content,
        author: Some(caller.user.clone()),
        time: now_ms(),
    };
    rt.change_task(&id, TaskOp::Part(Part::AddAttachment(attachment.clone())), caller.person()).await?;
    Ok((StatusCode::CREATED, Json(Attachment::of(&origin, &attachment))))
}

#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks/{id}/attachments", tag = "flowable-tasks",
    params(("id" = String, Path, description = TASK)),
    responses(
        (status = 200, description = "The task's attachments", body = Vec<Attachment>),
        (status = 404, description = "No open task of this id", body = FlowableErrorBody),
    ))]
async fn list_attachments(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Vec<Attachment>>> {
    open_task(&rt, &id).await?;
    let origin = origin(&headers);
    Ok(Json(rt.store().attachments(&id).await?.iter().map(|a| Attachment::of(&origin, a)).collect()))
}

async fn task_attachment(rt: &Runtime, id: &str, attachment: &str) -> Result<(UserTaskRow, AttachmentRow), ApiError> {
    let task = open_task(rt, id).await?;
    match rt.store().attachment(attachment).await? {
        Some(a) if a.task_id.as_deref() == Some(id) => Ok((task, a)),
        _ => Err(ApiError::not_found(format!("Task '{id}' does not have an attachment with id '{attachment}'."))),
    }
}

#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks/{id}/attachments/{attachment}", tag = "flowable-tasks", params(("id" = String, Path, description = TASK), ("attachment" = String, Path, description = "The attachment")),
    responses(
        (status = 200, description = "The attachment", body = Attachment),
        (status = 404, description = "No open task of this id, or no such attachment of it", body = FlowableErrorBody),
    ))]
async fn get_attachment(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path((id, attachment)): Path<(String, String)>,
) -> FlowableResult<Json<Attachment>> {
    let (_, a) = task_attachment(&rt, &id, &attachment).await?;
    Ok(Json(Attachment::of(&origin(&headers), &a)))
}

/// Its content (also at `…/attachment/{attachment}/content`, as seed 003 spells it).
#[utoipa::path(get, path = "/flowable-rest/service/runtime/tasks/{id}/attachments/{attachment}/content", tag = "flowable-tasks", params(("id" = String, Path, description = TASK), ("attachment" = String, Path, description = "The attachment")),
    responses(
        (status = 200, description = "Its bytes, as its type when that is a media type", content_type = "application/octet-stream"),
        (status = 404, description = "No open task, no such attachment, or one without content", body = FlowableErrorBody),
    ))]
async fn attachment_content(
    State(rt): State<Runtime>,
    Path((id, attachment)): Path<(String, String)>,
) -> FlowableResult<Response> {
    let (_, a) = task_attachment(&rt, &id, &attachment).await?;
    let Some(content) = a.content else {
        return Err(ApiError::not_found(format!(
            "Attachment '{attachment}' has no content: it links to {}",
            a.url.unwrap_or_default()
        ))
        .into());
    };
    // A type that is a media type is served as such.
    let media = a.kind.filter(|k| k.contains('/') && k.parse::<axum::http::HeaderValue>().is_ok());
    let content_type = media.unwrap_or_else(|| "application/octet-stream".into());
    Ok(([(header::CONTENT_TYPE, content_type)], content).into_response())
}

#[utoipa::path(delete, path = "/flowable-rest/service/runtime/tasks/{id}/attachments/{attachment}", tag = "flowable-tasks", params(("id" = String, Path, description = TASK), ("attachment" = String, Path, description = "The attachment")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No open task of this id, or no such attachment of it", body = FlowableErrorBody),
    ))]
async fn delete_attachment(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path((id, attachment)): Path<(String, String)>,
) -> FlowableResult<StatusCode> {
    open_task(&rt, &id).await?;
    rt.change_task(&id, TaskOp::Part(Part::DeleteAttachment(attachment)), caller.person()).await?;
    Ok(StatusCode::NO_CONTENT)
}
