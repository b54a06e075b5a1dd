//! What hangs on a task: variables, identity links, comments, events and attachments
//! (seed 003, 15.7.7–15.7.32).

use super::tasks::{open_task, task_path};
use super::variables::{RestVariable, Scope, Shown, scope, shown};
use super::{FlowableResult, SERVICE, iso_time, origin, service_url};
use crate::api::input::Query;
use crate::api::input::json_object;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::runtime::{Part, Runtime, TaskFields, TaskOp, new_id, now_ms};
use axum::body::Bytes;
use axum::extract::{Extension, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use flowstone_store::{AttachmentRow, CommentRow, TaskLink, TaskVariable, UserTaskRow};
use serde::Deserialize;
use serde_json::{Map, Value, json};

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

// ---- variables ----------------------------------------------------------------------------

#[derive(Deserialize)]
struct ScopeParam {
    scope: Option<String>,
}

fn scope_param(q: Result<Query<ScopeParam>, ApiError>) -> Result<Option<Scope>, ApiError> {
    let Query(q) = q?;
    scope(q.scope.as_deref())
}

async fn one_variable(rt: &Runtime, task: &UserTaskRow, name: &str, scope: Option<Scope>) -> Result<Shown, ApiError> {
    shown(rt, task, scope)
        .await?
        .into_iter()
        .find(|v| v.name == name)
        .ok_or_else(|| ApiError::not_found(format!("Task '{}' does not have a variable with name: '{name}'", task.id)))
}

async fn list_variables(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<ScopeParam>, ApiError>,
) -> FlowableResult<Json<Vec<Value>>> {
    let scope = scope_param(q)?;
    let task = open_task(&rt, &id).await?;
    let origin = origin(&headers);
    Ok(Json(shown(&rt, &task, scope).await?.iter().map(|v| v.json(&origin, &id)).collect()))
}

async fn get_variable(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
    q: Result<Query<ScopeParam>, ApiError>,
) -> FlowableResult<Json<Value>> {
    let scope = scope_param(q)?;
    let task = open_task(&rt, &id).await?;
    Ok(Json(one_variable(&rt, &task, &name, scope).await?.json(&origin(&headers), &id)))
}

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

async fn create_variables(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    request: Request,
) -> FlowableResult<(StatusCode, Json<Value>)> {
    let origin = origin(request.headers());
    let binary = is_multipart(request.headers());
    open_task(&rt, &id).await?;
    let vars = read_incoming(request, !binary).await?;
    write(&rt, &caller, &id, &vars, true).await?;
    let shown: Vec<Value> = vars.into_iter().map(|v| written(v).json(&origin, &id)).collect();
    // One binary variable answers as itself; a JSON list as a list.
    let body = if binary { shown.into_iter().next().unwrap_or(Value::Null) } else { Value::Array(shown) };
    Ok((StatusCode::CREATED, Json(body)))
}

fn written(v: Incoming) -> Shown {
    Shown { binary: v.var.bytes.is_some(), name: v.var.name, scope: v.scope, kind: json!(v.var.kind), value: v.value }
}

async fn update_variable(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path((id, name)): Path<(String, String)>,
    request: Request,
) -> FlowableResult<Json<Value>> {
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
    Ok(Json(written(var).json(&origin, &id)))
}

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

fn link_json(origin: &str, link: &TaskLink) -> Value {
    let (family, identity) = match (&link.user_id, &link.group_id) {
        (Some(user), _) => ("users", user.as_str()),
        (None, Some(group)) => ("groups", group.as_str()),
        (None, None) => ("users", ""),
    };
    let path = format!("{}/identitylinks/{family}/{identity}/{}", task_path(&link.task_id), link.kind);
    json!({"userId": link.user_id, "groupId": link.group_id, "type": link.kind, "url": service_url(origin, &path)})
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

async fn all_links(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Vec<Value>>> {
    let task = open_task(&rt, &id).await?;
    let origin = origin(&headers);
    Ok(Json(links(&rt, &task).await?.iter().map(|l| link_json(&origin, l)).collect()))
}

fn family_is_users(family: &str) -> Result<bool, ApiError> {
    match family {
        "users" => Ok(true),
        "groups" => Ok(false),
        other => Err(ApiError::not_found(format!("No identity links of family '{other}' (use users or groups)"))),
    }
}

async fn family_links(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path((id, family)): Path<(String, String)>,
) -> FlowableResult<Json<Vec<Value>>> {
    let users = family_is_users(&family)?;
    let task = open_task(&rt, &id).await?;
    let origin = origin(&headers);
    let found = links(&rt, &task).await?;
    Ok(Json(found.iter().filter(|l| l.user_id.is_some() == users).map(|l| link_json(&origin, l)).collect()))
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

async fn get_link(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path((id, family, identity, kind)): Path<(String, String, String, String)>,
) -> FlowableResult<Json<Value>> {
    let (_, link) = find_link(&rt, &id, &family, &identity, &kind).await?;
    Ok(Json(link_json(&origin(&headers), &link)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LinkRequest {
    user_id: Option<String>,
    group_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

async fn create_link(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
    crate::api::input::Body(body): crate::api::input::Body,
) -> FlowableResult<(StatusCode, Json<Value>)> {
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
    Ok((StatusCode::CREATED, Json(link_json(&origin(&headers), &link))))
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

fn comment_json(origin: &str, c: &CommentRow) -> Value {
    let task = c.task_id.clone().unwrap_or_default();
    let instance_url = c
        .instance_id
        .as_ref()
        .map(|i| service_url(origin, &format!("history/historic-process-instances/{i}/comments/{}", c.id)));
    json!({
        "id": c.id,
        "url": service_url(origin, &format!("{}/comments/{}", task_path(&task), c.id)),
        "taskUrl": service_url(origin, &format!("{}/comments/{}", task_path(&task), c.id)),
        "processInstanceUrl": instance_url,
        "message": c.message,
        "author": c.author,
        "time": iso_time(c.time),
        "taskId": c.task_id,
        "processInstanceId": c.instance_id,
    })
}

fn event_json(origin: &str, c: &CommentRow) -> Value {
    let task = c.task_id.clone().unwrap_or_default();
    let message: Value = serde_json::from_str(&c.message).unwrap_or_else(|_| json!([c.message]));
    json!({
        "action": c.action,
        "id": c.id,
        "message": message,
        "taskUrl": service_url(origin, &task_path(&task)),
        "time": iso_time(c.time),
        "url": service_url(origin, &format!("{}/events/{}", task_path(&task), c.id)),
        "userId": c.author,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommentRequest {
    message: Option<String>,
    save_process_instance_id: Option<bool>,
}

async fn create_comment(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Path(id): Path<String>,
    crate::api::input::Body(body): crate::api::input::Body,
) -> FlowableResult<(StatusCode, Json<Value>)> {
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
    Ok((StatusCode::CREATED, Json(comment_json(&origin(&headers), &comment))))
}

async fn list_comments(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Vec<Value>>> {
    open_task(&rt, &id).await?;
    let origin = origin(&headers);
    Ok(Json(rt.store().comments_of_task(&id, "comment").await?.iter().map(|c| comment_json(&origin, c)).collect()))
}

/// A comment or event of this task, or Flowable's 404.
async fn task_comment(rt: &Runtime, id: &str, comment: &str, kind: &str) -> Result<CommentRow, ApiError> {
    open_task(rt, id).await?;
    match rt.store().comment(comment).await? {
        Some(c) if c.task_id.as_deref() == Some(id) && c.kind == kind => Ok(c),
        _ => Err(ApiError::not_found(format!("Task '{id}' does not have a {kind} with id '{comment}'."))),
    }
}

async fn get_comment(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path((id, comment)): Path<(String, String)>,
) -> FlowableResult<Json<Value>> {
    let c = task_comment(&rt, &id, &comment, "comment").await?;
    Ok(Json(comment_json(&origin(&headers), &c)))
}

async fn delete_comment(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path((id, comment)): Path<(String, String)>,
) -> FlowableResult<StatusCode> {
    open_task(&rt, &id).await?;
    rt.change_task(&id, TaskOp::Part(Part::DeleteComment(comment)), caller.person()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_events(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Vec<Value>>> {
    open_task(&rt, &id).await?;
    let origin = origin(&headers);
    Ok(Json(rt.store().comments_of_task(&id, "event").await?.iter().map(|c| event_json(&origin, c)).collect()))
}

async fn get_event(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path((id, event_id)): Path<(String, String)>,
) -> FlowableResult<Json<Value>> {
    let c = task_comment(&rt, &id, &event_id, "event").await?;
    Ok(Json(event_json(&origin(&headers), &c)))
}

// ---- attachments --------------------------------------------------------------------------

fn attachment_json(origin: &str, a: &AttachmentRow) -> Value {
    let task = a.task_id.clone().unwrap_or_default();
    let url = service_url(origin, &format!("{}/attachments/{}", task_path(&task), a.id));
    json!({
        "id": a.id,
        "url": url,
        "name": a.name,
        "userId": a.author,
        "description": a.description,
        "type": a.kind,
        "taskUrl": service_url(origin, &task_path(&task)),
        "processInstanceUrl": a.instance_id.as_ref().map(|i| service_url(origin, &format!("history/historic-process-instances/{i}"))),
        "externalUrl": a.url,
        "contentUrl": a.has_content.then(|| format!("{url}/content")),
        "time": iso_time(a.time),
    })
}

async fn create_attachment(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    request: Request,
) -> FlowableResult<(StatusCode, Json<Value>)> {
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
    let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
    let name =
        text("name").filter(|n| !n.is_empty()).ok_or_else(|| ApiError::bad_request("Attachment name is required."))?;
    let attachment = AttachmentRow {
        id: new_id(),
        task_id: Some(id.clone()),
        instance_id: task.instance_id.clone(),
        name: name.clone(),
        description: text("description"),
        kind: text("type"),
        url: if content.is_some() { None } else { text("externalUrl") },
        has_content: content.is_some(),
        content,
        author: Some(caller.user.clone()),
        time: now_ms(),
    };
    rt.change_task(&id, TaskOp::Part(Part::AddAttachment(attachment.clone())), caller.person()).await?;
    Ok((StatusCode::CREATED, Json(attachment_json(&origin, &attachment))))
}

async fn list_attachments(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Vec<Value>>> {
    open_task(&rt, &id).await?;
    let origin = origin(&headers);
    Ok(Json(rt.store().attachments(&id).await?.iter().map(|a| attachment_json(&origin, a)).collect()))
}

async fn task_attachment(rt: &Runtime, id: &str, attachment: &str) -> Result<(UserTaskRow, AttachmentRow), ApiError> {
    let task = open_task(rt, id).await?;
    match rt.store().attachment(attachment).await? {
        Some(a) if a.task_id.as_deref() == Some(id) => Ok((task, a)),
        _ => Err(ApiError::not_found(format!("Task '{id}' does not have an attachment with id '{attachment}'."))),
    }
}

async fn get_attachment(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path((id, attachment)): Path<(String, String)>,
) -> FlowableResult<Json<Value>> {
    let (_, a) = task_attachment(&rt, &id, &attachment).await?;
    Ok(Json(attachment_json(&origin(&headers), &a)))
}

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

async fn delete_attachment(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Path((id, attachment)): Path<(String, String)>,
) -> FlowableResult<StatusCode> {
    open_task(&rt, &id).await?;
    rt.change_task(&id, TaskOp::Part(Part::DeleteAttachment(attachment)), caller.person()).await?;
    Ok(StatusCode::NO_CONTENT)
}
