//! The console's buttons. Each posts a form carrying the session's CSRF token and runs the
//! command the platform or bk-sops API runs for the same thing — cancel, delete, pause; reRun
//! with edited parameters, resume, skip, take a gateway's flow, call back, force a failure;
//! complete a user task — then shows the instance again; a refusal (a task in the wrong state,
//! malformed parameters) is a page saying why.

use super::{Session, field, form};
use crate::api::platform::requests::ReRun;
use crate::api::platform::runtime_error;
use crate::error::ApiError;
use crate::runtime::{Runtime, TaskOp};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use flowstone_engine::{Command, TaskChange};
use serde_json::{Map, Value};

/// Back to the instance's page.
fn back(instance: &str) -> Response {
    Redirect::to(&format!("/console/instances/{}", super::html::percent(instance))).into_response()
}

/// `POST /console/instances/{id}/{cancel|delete}`.
pub(crate) async fn on_instance(
    State(rt): State<Runtime>,
    session: Session,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let command = match action.as_str() {
        "cancel" => Command::Cancel,
        "delete" => Command::Delete,
        "pause" => Command::Pause { subprocess: None },
        "unpause" => Command::Unpause { subprocess: None },
        other => return session.error(ApiError::not_found(format!("an instance has no action `{other}`"))),
    };
    let done = async {
        session.check(&body)?;
        rt.store().instance(&id).await?.ok_or_else(|| ApiError::not_found(format!("no instance {id}")))?;
        rt.apply(&id, command).await.map_err(runtime_error)
    };
    match done.await {
        Ok(()) => back(&id),
        Err(e) => session.error(e),
    }
}

/// A form field holding a JSON object as text (empty: none).
pub(super) fn object(fields: &[(String, String)], name: &str) -> Result<Map<String, Value>, ApiError> {
    match field(fields, name).map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(Map::new()),
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(ApiError::bad_request(format!("`{name}` must be a JSON object, not {other}"))),
            Err(e) => Err(ApiError::bad_request(format!("`{name}` is not JSON: {e}"))),
        },
    }
}

/// `POST /console/tasks/{record}/{rerun|resume|complete}`.
pub(crate) async fn on_task(
    State(rt): State<Runtime>,
    session: Session,
    Path((record, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let done = async {
        session.check(&body)?;
        let fields = form(&body);
        let task = rt.store().task(&record).await?.ok_or_else(|| ApiError::not_found(format!("no task {record}")))?;
        let command = match action.as_str() {
            "rerun" => {
                let mut input = Map::new();
                if let Some(queue) = field(&fields, "queueType").filter(|q| !q.is_empty()) {
                    input.insert("queueType".into(), Value::String(queue.to_owned()));
                }
                input.insert("parameters".into(), Value::Object(object(&fields, "parameters")?));
                let rerun = ReRun::read(&input)?;
                Command::ReRun {
                    task: task.record.task_id.clone(),
                    action: rerun.queue_type,
                    parameters: rerun.parameters,
                    outputs: rerun.outputs,
                }
            }
            "resume" => Command::Resume { task: task.record.task_id.clone() },
            "skip" => Command::Skip { task: task.record.task_id.clone() },
            "choose" => {
                let flow = field(&fields, "flow").filter(|f| !f.is_empty());
                let flow = flow.ok_or_else(|| ApiError::bad_request("choose the flow to take"))?.to_owned();
                Command::ChooseFlow { task: task.record.id.clone(), flow }
            }
            "callback" => Command::Callback { task: task.record.id.clone(), outputs: object(&fields, "outputs")? },
            "forcefail" => {
                let reason = field(&fields, "reason").map(str::trim).filter(|r| !r.is_empty());
                let reason = reason.map_or_else(|| format!("forced to fail by {}", session.caller.user), str::to_owned);
                Command::ForceFail { task: task.record.id.clone(), reason }
            }
            "complete" => {
                let variables = object(&fields, "variables")?;
                let op = TaskOp::Change { change: TaskChange::Complete, variables, transient: Map::new() };
                rt.change_task(&task.record.id, op, session.caller.person()).await.map_err(runtime_error)?;
                return Ok(task.instance_id);
            }
            other => return Err(ApiError::not_found(format!("a task has no action `{other}`"))),
        };
        rt.apply(&task.instance_id, command).await.map_err(runtime_error)?;
        Ok(task.instance_id)
    };
    match done.await {
        Ok(instance) => back(&instance),
        Err(e) => session.error(e),
    }
}
