//! The tasks inbox, for anyone signed in: the open user tasks assigned to them or that they
//! may claim (as a candidate, or through a group), to claim and to complete with variables —
//! under the rules of user tasks, as through Flowable's task API.

use super::Person;
use super::html::{escape, page, percent};
use crate::api::format::platform_date;
use crate::error::ApiError;
use crate::runtime::Runtime;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use flowstone_store::{Page, UserTaskQuery};
use std::fmt::Write;

/// Tasks shown at most.
const SHOWN: u64 = 200;

/// `GET /console/inbox`.
pub(crate) async fn list(State(rt): State<Runtime>, Person(session): Person) -> Response {
    let user = session.caller.user.clone();
    let query =
        UserTaskQuery { finished: Some(false), candidate_or_assigned: Some(user.clone()), ..UserTaskQuery::default() };
    let (tasks, total) = match rt.store().list_user_tasks(&query, Some(Page { offset: 0, limit: SHOWN })).await {
        Ok(found) => found,
        Err(e) => return session.error(e.into()),
    };
    let mut out = format!("<h1>Inbox</h1><p>{total} open task(s) for {} and their groups</p>", escape(&user));
    out.push_str(
        "<table id=\"inbox\"><thead><tr><th>Task</th><th>Process instance</th><th>Assignee</th><th>Created</th><th>Due</th><th></th></tr></thead><tbody>",
    );
    for task in &tasks {
        let path = format!("/console/inbox/{}", percent(&task.id));
        let action = if task.assignee.as_deref() == Some(user.as_str()) {
            let form = match super::forms::filled(&rt, task).await {
                Ok(form) => form,
                Err(e) => return session.error(e),
            };
            super::forms::complete_button(&format!("{path}/complete"), &form, &session.csrf)
        } else {
            super::html::button(&format!("{path}/claim"), "Claim", &session.csrf, "")
        };
        let _ = write!(
            out,
            "<tr data-task=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
            escape(&task.id),
            escape(task.name.as_deref().unwrap_or("")),
            escape(task.instance_id.as_deref().unwrap_or("")),
            escape(task.assignee.as_deref().unwrap_or("")),
            platform_date(task.create_time),
            task.due_date.map(platform_date).unwrap_or_default()
        );
    }
    out.push_str("</tbody></table>");
    page("Inbox", session.who(), &out).into_response()
}

/// `POST /console/inbox/{task}/{claim|unclaim|delegate|resolve|complete}`: then the inbox again.
pub(crate) async fn act(
    State(rt): State<Runtime>,
    Person(session): Person,
    Path((task, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let done = async {
        let fields = session.form_of(&body)?;
        let changed = super::actions::change_user_task(&rt, &session, &task, &action, &fields).await?;
        changed.ok_or_else(|| ApiError::not_found(format!("a task of the inbox has no action `{action}`")))
    };
    match done.await {
        Ok(()) => Redirect::to("/console/inbox").into_response(),
        Err(e) => session.error(e),
    }
}
