//! `form/form-data`: the form properties of a user task or of a process's start event, as
//! Flowable's form service gives them (the readable ones, each with its variable's value as
//! text), and their submission — typed and checked as the console's forms are — completing
//! the task (204) or starting the process (200 with the instance). Properties sent that the
//! form does not have are set as text variables, as Flowable does.

use super::instances::{Instance, definition_url, instance_answer};
use super::repository::visible_definition;
use super::tasks::{open_task, task_path};
use super::{FlowableResult, SERVICE, origin, service_url};
use crate::api::input::Body;
use crate::auth::Caller;
use crate::error::{ApiError, FlowableErrorBody};
use crate::runtime::{Runtime, TaskOp};
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use flowstone_engine::{StartOptions, TaskChange};
use flowstone_model::{FormKind, FormProperty};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new().route(&format!("{SERVICE}/form/form-data"), get(form_data).post(submit))
}

/// The forms' part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(form_data, submit))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}

/// Whose form: exactly one of the two.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct Whose {
    /// An open user task.
    task_id: Option<String>,
    /// A process definition: its start event's form.
    process_definition_id: Option<String>,
}

/// A form as Flowable's form service gives it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct FormData {
    form_key: Option<String>,
    deployment_id: Option<String>,
    process_definition_id: Option<String>,
    process_definition_url: Option<String>,
    task_id: Option<String>,
    task_url: Option<String>,
    form_properties: Vec<RestFormProperty>,
}

/// One readable property of a form.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RestFormProperty {
    id: String,
    name: Option<String>,
    /// `string`, `long`, `double`, `boolean`, `date`, `enum`, or the model's own type name.
    #[serde(rename = "type")]
    kind: String,
    /// Its variable's value as text, else its default; none when neither is set.
    value: Option<String>,
    readable: bool,
    writable: bool,
    required: bool,
    date_pattern: Option<String>,
    enum_values: Vec<EnumValue>,
}

/// A value an `enum` property may take.
#[derive(Serialize, ToSchema)]
struct EnumValue {
    id: String,
    name: String,
}

impl RestFormProperty {
    fn of(p: &FormProperty, values: &Map<String, Value>) -> RestFormProperty {
        RestFormProperty {
            id: p.id.clone(),
            name: p.name.clone(),
            kind: p.kind.name().to_owned(),
            value: crate::forms::shown(p, values),
            readable: p.readable,
            writable: p.writable,
            required: p.required,
            date_pattern: match &p.kind {
                FormKind::Date(pattern) => pattern.clone(),
                _ => None,
            },
            enum_values: match &p.kind {
                FormKind::Enum(options) => {
                    options.iter().map(|(id, name)| EnumValue { id: id.clone(), name: name.clone() }).collect()
                }
                _ => Vec::new(),
            },
        }
    }
}

/// The one of `task` and `definition` given, or Flowable's 400.
fn one_of<T>(task: Option<T>, definition: Option<T>, what: &str) -> Result<Result<T, T>, ApiError> {
    match (task, definition) {
        (Some(task), None) => Ok(Ok(task)),
        (None, Some(definition)) => Ok(Err(definition)),
        (None, None) => {
            Err(ApiError::bad_request(format!("The taskId or processDefinitionId {what} has to be provided")))
        }
        (Some(_), Some(_)) => {
            Err(ApiError::bad_request(format!("Not both a taskId and a processDefinitionId {what} can be provided")))
        }
    }
}

/// The start form of a process definition: its model and its start event's properties.
async fn start_form(
    rt: &Runtime,
    caller: &Caller,
    id: &str,
) -> Result<(std::sync::Arc<flowstone_store::ModelRow>, Vec<FormProperty>), ApiError> {
    let model = visible_definition(rt, caller, id).await?;
    let form = rt.definition(&model)?.start_form.clone();
    Ok((model, form))
}

#[utoipa::path(get, path = "/flowable-rest/service/form/form-data", tag = "flowable-forms", params(Whose),
    responses(
        (status = 200, description = "The form's readable properties with their values", body = FormData),
        (status = 400, description = "Neither or both of taskId and processDefinitionId", body = FlowableErrorBody),
        (status = 404, description = "No open task or process definition of this id", body = FlowableErrorBody),
    ))]
async fn form_data(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Query(whose): Query<Whose>,
) -> FlowableResult<Json<FormData>> {
    let origin = origin(&headers);
    let data = match one_of(whose.task_id, whose.process_definition_id, "parameter")? {
        Ok(task_id) => {
            let task = open_task(&rt, &task_id).await?;
            let model = match task.model_id.as_deref() {
                Some(id) => rt.model(id).await?,
                None => None,
            };
            let form = match (&model, task.element.as_deref()) {
                (Some(model), Some(element)) => crate::forms::properties(rt.definition(model)?.as_ref(), element),
                _ => Vec::new(),
            };
            let values = crate::forms::values_of(&rt, &task).await?;
            FormData {
                form_key: task.form_key.clone(),
                deployment_id: model.map(|m| m.deployment_id.clone()),
                process_definition_url: task.model_id.as_ref().map(|m| definition_url(&origin, m)),
                process_definition_id: task.model_id.clone(),
                task_url: Some(service_url(&origin, &task_path(&task.id))),
                task_id: Some(task.id),
                form_properties: form.iter().filter(|p| p.readable).map(|p| RestFormProperty::of(p, &values)).collect(),
            }
        }
        Err(definition) => {
            let (model, form) = start_form(&rt, &caller, &definition).await?;
            FormData {
                form_key: None,
                deployment_id: Some(model.deployment_id.clone()),
                process_definition_url: Some(definition_url(&origin, &model.id)),
                process_definition_id: Some(model.id.clone()),
                task_id: None,
                task_url: None,
                form_properties: form
                    .iter()
                    .filter(|p| p.readable)
                    .map(|p| RestFormProperty::of(p, &Map::new()))
                    .collect(),
            }
        }
    };
    Ok(Json(data))
}

/// `POST form/form-data`'s body.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SubmitRequest {
    /// The open user task to complete (exactly one of this and `processDefinitionId`).
    task_id: Option<String>,
    /// The process definition to start.
    process_definition_id: Option<String>,
    /// The started process's business key.
    business_key: Option<String>,
    /// The values filled in, as text.
    #[serde(default)]
    properties: Vec<SubmittedProperty>,
}

/// A value filled in.
#[derive(Deserialize, ToSchema)]
struct SubmittedProperty {
    id: String,
    value: Option<String>,
}

/// The variables `properties` set through `form`: its properties typed and checked, any other
/// as text.
fn variables_of(form: &[FormProperty], properties: &[SubmittedProperty]) -> Result<Map<String, Value>, ApiError> {
    let mut variables = crate::forms::read(form, |id| {
        properties.iter().filter(|p| p.id == id).filter_map(|p| p.value.as_deref()).collect()
    })?;
    for extra in properties.iter().filter(|p| !form.iter().any(|f| f.id == p.id)) {
        variables.insert(extra.id.clone(), extra.value.clone().map_or(Value::Null, Value::String));
    }
    Ok(variables)
}

#[utoipa::path(post, path = "/flowable-rest/service/form/form-data", tag = "flowable-forms", request_body = SubmitRequest,
    responses(
        (status = 200, description = "The start form was submitted: the process started", body = Instance),
        (status = 204, description = "The task form was submitted: the task is completed"),
        (status = 400, description = "Neither or both of taskId and processDefinitionId; a required property \
            left out, a value of the wrong type or a property that is not writable", body = FlowableErrorBody),
        (status = 404, description = "No open task or process definition of this id", body = FlowableErrorBody),
        (status = 409, description = "The task is claimed by another, or delegated and not resolved yet", body = FlowableErrorBody),
    ))]
async fn submit(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<Response> {
    let req: SubmitRequest = crate::api::worker::parse(&body)?;
    match one_of(req.task_id, req.process_definition_id, "property")? {
        Ok(task_id) => {
            let task = open_task(&rt, &task_id).await?;
            let form = crate::forms::of(&rt, task.model_id.as_deref(), task.element.as_deref()).await?;
            let variables = variables_of(&form, &req.properties)?;
            let op = TaskOp::Change { change: TaskChange::Complete, variables, transient: Map::new() };
            rt.change_task(&task.id, op, caller.person()).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(definition) => {
            let (model, form) = start_form(&rt, &caller, &definition).await?;
            let variables = variables_of(&form, &req.properties)?;
            let options = StartOptions { initiator: Some(caller.user.clone()), ..StartOptions::default() };
            let name = model.name.clone().unwrap_or_else(|| model.key.clone());
            let row = rt.start_instance(model, name, req.business_key, variables, options).await?;
            Ok(Json(instance_answer(&rt, &headers, &row).await?).into_response())
        }
    }
}
