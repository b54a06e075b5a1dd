//! The console's buttons. Each posts a form carrying the session's CSRF token and runs the
//! command the platform or bk-sops API runs for the same thing — cancel, delete, pause; reRun
//! with edited parameters, resume, skip, take a gateway's flow, call back, force a failure;
//! complete a user task — then shows the instance again; a refusal (a task in the wrong state,
//! malformed parameters) is a page saying why.

use super::{Session, field, found};
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
        session.form_of(&body)?;
        found(&rt, &id).await?;
        rt.apply(&id, command).await.map_err(runtime_error)
    };
    match done.await {
        Ok(()) => back(&id),
        Err(e) => session.error(e),
    }
}

/// `POST /console/instances/{id}/variables`: sets the variables of a JSON object (typed as
/// JSON types them) and removes those named in `remove` (comma-separated) on the process.
pub(crate) async fn set_variables(
    State(rt): State<Runtime>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let done = async {
        let fields = session.form_of(&body)?;
        let variables = object(&fields, "variables")?;
        let removed: Vec<String> = field(&fields, "remove")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        if variables.is_empty() && removed.is_empty() {
            return Err(ApiError::bad_request("give variables to set (a JSON object) or names to remove"));
        }
        found(&rt, &id).await?;
        rt.apply(&id, Command::SetVariables { task: None, variables, removed }).await.map_err(runtime_error)
    };
    match done.await {
        Ok(()) => back(&id),
        Err(e) => session.error(e),
    }
}

/// How many instances one bulk action takes at most: a page of the list.
const BULK: usize = 50;

/// `POST /console/bulk`: `action` (cancel, delete or rerun: run again the failed stone tasks
/// of instances in debug mode) on each `id` of a selection, one after another; answers a page
/// saying what was done to each and why any was refused.
pub(crate) async fn bulk(State(rt): State<Runtime>, session: Session, body: axum::body::Bytes) -> Response {
    let fields = match session.form_of(&body) {
        Ok(fields) => fields,
        Err(e) => return session.error(e),
    };
    let ids: Vec<&str> = fields.iter().filter(|(k, _)| k == "id").map(|(_, v)| v.as_str()).collect();
    let action = field(&fields, "action").unwrap_or("");
    if !matches!(action, "cancel" | "delete" | "rerun") {
        return session.error(ApiError::bad_request(format!("`{action}` is not cancel, delete or rerun")));
    }
    if ids.is_empty() || ids.len() > BULK {
        return session.error(ApiError::bad_request(format!("select from 1 to {BULK} instances, not {}", ids.len())));
    }
    let mut lines = String::new();
    let mut done = 0;
    for id in &ids {
        let outcome = match action {
            "cancel" => rt.apply(id, Command::Cancel).await.map_err(runtime_error),
            "delete" => rt.apply(id, Command::Delete).await.map_err(runtime_error),
            _ => rerun_failed(&rt, id).await,
        };
        let said = match outcome {
            Ok(()) => {
                done += 1;
                "done".to_owned()
            }
            Err(e) => e.line(),
        };
        lines.push_str(&format!(
            "<tr><td><a href=\"/console/instances/{}\">{}</a></td><td>{}</td></tr>",
            super::html::percent(id),
            super::html::escape(id),
            super::html::escape(&said)
        ));
    }
    let body = format!(
        "<h1>{action}: {done} of {} done</h1><table id=\"bulk\"><thead><tr><th>Instance</th><th>Outcome</th></tr></thead><tbody>{lines}</tbody></table><p><a href=\"/console\">Back to the instances</a></p>",
        ids.len()
    );
    super::html::page("Bulk action", session.who(), &body).into_response()
}

/// Runs again the failed stone tasks of an instance in debug mode, with their parameters.
async fn rerun_failed(rt: &Runtime, id: &str) -> Result<(), ApiError> {
    let tasks = rt.tasks_of_instance(id).await?;
    let failed = failed_stones(&tasks);
    if failed.is_empty() {
        return Err(ApiError::conflict(format!("instance {id} has no failed stone task to run again")));
    }
    for record in failed {
        let again = ReRun { queue_type: None, parameters: Map::new(), outputs: Map::new() };
        rt.apply(id, again.command(record.task_id.clone())).await.map_err(runtime_error)?;
    }
    Ok(())
}

/// The stone tasks of an instance whose latest attempt failed and waits for an operator, in
/// the order they were made: one pass over the records, newest first.
pub(super) fn failed_stones(tasks: &[flowstone_store::TaskRow]) -> Vec<&flowstone_engine::TaskRecord> {
    let mut seen = std::collections::HashSet::new();
    let mut failed: Vec<_> = tasks
        .iter()
        .rev()
        .map(|t| &t.record)
        .filter(|r| seen.insert(r.task_id.as_str()) && r.stone.is_some() && r.status.step_failed())
        .collect();
    failed.reverse();
    failed
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

/// Applies the change of the user task `task` that a console button asks for (`action`), as
/// the signed-in user under the rules of user tasks (the engine's, as through the APIs);
/// `None` for an action that is no change of a user task. Completing sets what the task's
/// form was filled in with (see [`crate::forms::of_task`]), then a JSON object of variables.
pub(super) async fn change_user_task(
    rt: &Runtime,
    session: &Session,
    task: &str,
    action: &str,
    fields: &[(String, String)],
) -> Result<Option<()>, ApiError> {
    let change = match action {
        "claim" => TaskChange::Claim(Some(session.caller.user.clone())),
        "unclaim" => TaskChange::Claim(None),
        "delegate" => {
            let to = field(fields, "to").map(str::trim).filter(|t| !t.is_empty());
            TaskChange::Delegate(to.ok_or_else(|| ApiError::bad_request("name the user to delegate to"))?.to_owned())
        }
        "resolve" => TaskChange::Resolve,
        "complete" => TaskChange::Complete,
        _ => return Ok(None),
    };
    let mut variables = Map::new();
    if change == TaskChange::Complete {
        let row =
            rt.store().user_task(task).await?.ok_or_else(|| ApiError::not_found(format!("no user task {task}")))?;
        let (form, _) = crate::forms::of_task(rt, &row).await?;
        variables = super::forms::read(&form.fields, fields)?;
        variables.extend(object(fields, "variables")?);
    }
    let op = TaskOp::Change { change, variables, transient: Map::new() };
    rt.change_task(task, op, session.caller.person()).await.map_err(runtime_error)?;
    Ok(Some(()))
}

/// `POST /console/tasks/{record}/{action}`: reRun, resume, skip, choose, callback, forcefail
/// on a stone or gateway; claim, unclaim, delegate, resolve, complete on a user task.
pub(crate) async fn on_task(
    State(rt): State<Runtime>,
    session: Session,
    Path((record, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let done = async {
        let fields = session.form_of(&body)?;
        let task = rt.task(&record).await?.ok_or_else(|| ApiError::not_found(format!("no task {record}")))?;
        let command = match action.as_str() {
            "rerun" => {
                let mut input = Map::new();
                if let Some(queue) = field(&fields, "queueType").filter(|q| !q.is_empty()) {
                    input.insert("queueType".into(), Value::String(queue.to_owned()));
                }
                input.insert("parameters".into(), Value::Object(object(&fields, "parameters")?));
                ReRun::read(&input)?.command(task.record.task_id.clone())
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
            other => {
                return match change_user_task(&rt, &session, &task.record.id, other, &fields).await? {
                    Some(()) => Ok(task.instance_id),
                    None => Err(ApiError::not_found(format!("a task has no action `{other}`"))),
                };
            }
        };
        rt.apply(&task.instance_id, command).await.map_err(runtime_error)?;
        Ok(task.instance_id)
    };
    match done.await {
        Ok(instance) => back(&instance),
        Err(e) => session.error(e),
    }
}
