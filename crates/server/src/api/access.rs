//! Who may do what, as Flowable and Camunda users expect.
//!
//! Three roles: an **administrator** (the user `admin`, and members of the group `admin`) may do
//! everything; an **operator** (members of the group `operator`) deploys models and sees and
//! operates every process instance and task; an ordinary **user** sees and operates the
//! process instances they started, and the user tasks they have a part in (assignee, owner,
//! an identity link of theirs, a candidate group they belong to) or whose instance they
//! started. Completing or claiming a user task is for its assignee, owner or candidates (a
//! task with none of them is for whoever may reach it); an administrator may override.
//! Refusals are 403s naming the user and what they may not do.

use super::{ApiError, FLOWABLE_PREFIX, in_dialect};
use crate::auth::{Authenticator, Caller};
use crate::runtime::Runtime;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use flowstone_store::{InstanceRow, UserTaskRow};
use std::net::SocketAddr;
use std::sync::Arc;

/// Whether `caller` may reach `row`: it is of their tenant, and they operate or started it
/// (or, for a rollback, cancel or delete instance, the process it works for).
async fn may_reach(rt: &Runtime, caller: &Caller, row: &InstanceRow) -> Result<(), ApiError> {
    if caller.tenant_limit().is_some() {
        let tenant = rt.model(&row.model_id).await?.and_then(|m| m.tenant_id.clone());
        if !caller.within(tenant.as_deref()) {
            return Err(caller.forbidden(&format!("reach process instance '{}': it is of another tenant", row.id)));
        }
    }
    if caller.operates() {
        return Ok(());
    }
    let starter = match (&row.start_user, &row.parent_id) {
        (Some(user), _) => Some(user.clone()),
        (None, Some(parent)) => rt.instance(parent).await?.and_then(|p| p.start_user),
        (None, None) => None,
    };
    if starter.as_deref() == Some(caller.user.as_str()) {
        Ok(())
    } else {
        Err(caller.forbidden(&format!("reach process instance '{}': they did not start it", row.id)))
    }
}

/// Whether `caller` may see user task `task` (they have a part in it, or may reach its
/// instance).
async fn may_see_task(rt: &Runtime, caller: &Caller, task: &UserTaskRow) -> Result<(), ApiError> {
    if !caller.within(task.tenant_id.as_deref()) {
        return Err(caller.forbidden(&format!("see task '{}': it is of another tenant", task.id)));
    }
    if caller.operates() {
        return Ok(());
    }
    let me = Some(caller.user.as_str());
    if task.assignee.as_deref() == me || task.owner.as_deref() == me {
        return Ok(());
    }
    let links = rt.store().task_links(&task.id).await?;
    let linked = links
        .iter()
        .any(|l| l.user_id.as_deref() == me || l.group_id.as_ref().is_some_and(|g| caller.groups.contains(g)));
    if linked {
        return Ok(());
    }
    match &task.instance_id {
        Some(instance) => match rt.instance(instance).await? {
            Some(row) => may_reach(rt, caller, &row).await,
            None => Ok(()),
        },
        None => Err(caller.forbidden(&format!("see task '{}': they have no part in it", task.id))),
    }
}

/// What a request reaches, as far as who may do it goes (ids as the handlers read them:
/// percent-decoded).
#[derive(Debug, PartialEq, Eq)]
enum Reaches {
    /// Deploys or removes models.
    Models,
    /// One process instance.
    Instance(String),
    /// One task record of the platform API.
    Record(String),
    /// One of Flowable's executions: an instance, or a task record under way in it.
    Execution(String),
    /// One model version (a Flowable process definition).
    Model(String),
    /// One deployment, read or (`change`) removed.
    Deployment { id: String, change: bool },
    /// Stone jobs: the worker protocol, Flowable's external worker API and its job list.
    Jobs,
    /// Flowable's job management: the timers of every instance, fired or deleted at will.
    Management,
    /// A list across instances (executions, historic activities, historic tasks), which a
    /// caller held to some instances reads only for one of them, named by `processInstanceId`.
    AcrossInstances(Option<String>),
    /// One user task.
    UserTask(String),
    /// Nothing guarded here (lists filter by the caller themselves).
    Other,
}

fn reaches(method: &Method, path: &str, query: Option<&str>) -> Reaches {
    let decoded: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let id = |s: &str| s.to_owned();
    let named_instance = || {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or_default();
        pairs.into_iter().find(|(k, _)| k == "processInstanceId").map(|(_, v)| v)
    };
    if segments.first() == Some(&"worker") || segments.get(..2) == Some(&["flowable-rest", "external-job-api"]) {
        return Reaches::Jobs;
    }
    if path.starts_with(FLOWABLE_PREFIX) {
        // `/flowable-rest/service/…`
        return match segments.get(2..).unwrap_or_default() {
            ["management", "jobs" | "timer-jobs" | "deadletter-jobs", ..]
            | ["runtime", "process-instances", _, "migrate"]
            | ["repository", "process-definitions", _, "migrate"] => Reaches::Management,
            ["runtime", "executions"]
            | ["history", "historic-activity-instances"]
            | ["history", "historic-task-instances"] => Reaches::AcrossInstances(named_instance()),
            ["query", "executions" | "historic-activity-instances" | "historic-task-instances"] => {
                Reaches::AcrossInstances(None)
            }
            ["repository", "deployments", i, ..] => Reaches::Deployment { id: id(i), change: method != Method::GET },
            ["repository", "deployments", ..] if method != Method::GET => Reaches::Models,
            ["repository", "process-definitions", _] if method == Method::PUT => Reaches::Models,
            ["repository", "process-definitions", i, ..] => Reaches::Model(id(i)),
            ["runtime", "process-instances", i, ..] | ["history", "historic-process-instances", i, ..] => {
                Reaches::Instance(id(i))
            }
            ["runtime", "tasks", i, ..] | ["history", "historic-task-instances", i, ..] => Reaches::UserTask(id(i)),
            ["runtime", "executions", i, ..] => Reaches::Execution(id(i)),
            _ => Reaches::Other,
        };
    }
    match segments.as_slice() {
        ["model", ..] if method != Method::GET => Reaches::Models,
        ["model", i, ..] => Reaches::Model(id(i)),
        ["process", i, ..] => Reaches::Instance(id(i)),
        ["task", i, ..] => Reaches::Record(id(i)),
        ["task"] => named_instance().map_or(Reaches::Other, Reaches::Instance),
        ["history", ..] | ["stuck"] => Reaches::Management,
        _ => Reaches::Other,
    }
}

/// Whether `caller` may reach the instance of task record `id` (an unknown id: the handler's 404).
async fn record_reach(rt: &Runtime, caller: &Caller, id: &str) -> Result<(), ApiError> {
    let Some(record) = rt.task(id).await? else { return Ok(()) };
    match rt.instance(&record.instance_id).await? {
        Some(row) => may_reach(rt, caller, &row).await,
        None => Ok(()),
    }
}

/// The middleware: refuses a request for what its caller may not reach (403, in the
/// dialect's shape); an unknown id goes on to the handler's own 404.
pub(crate) async fn authorize(State(rt): State<Runtime>, req: Request, next: Next) -> Response {
    let held = |c: &&Caller| !c.operates() || c.tenant_limit().is_some();
    let Some(caller) = req.extensions().get::<Caller>().filter(held).cloned() else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_owned();
    match verdict(&rt, &caller, reaches(req.method(), &path, req.uri().query())).await {
        Ok(()) => next.run(req).await,
        Err(e) => in_dialect(&path, e),
    }
}

/// Whether `caller` (held to their own work or tenant) may do what a request reaches; an
/// unknown id is let through to the handler's own 404.
async fn verdict(rt: &Runtime, caller: &Caller, reaches: Reaches) -> Result<(), ApiError> {
    const MODELS: &str = "deploy or remove models: operators and administrators do";
    match reaches {
        Reaches::Models | Reaches::Deployment { change: true, .. } if !caller.operates() => {
            Err(caller.forbidden(MODELS))
        }
        Reaches::Models | Reaches::Other => Ok(()),
        Reaches::Model(id) => match rt.model(&id).await? {
            Some(model) if !caller.within(model.tenant_id.as_deref()) => {
                Err(caller.forbidden(&format!("reach model '{id}': it is of another tenant")))
            }
            _ => Ok(()),
        },
        Reaches::Deployment { id, .. } => match rt.store().deployment(&id).await? {
            Some(d) if !caller.within(d.tenant_id.as_deref()) => {
                Err(caller.forbidden(&format!("reach deployment '{id}': it is of another tenant")))
            }
            _ => Ok(()),
        },
        Reaches::Instance(id) | Reaches::AcrossInstances(Some(id)) => match rt.instance(&id).await? {
            Some(row) => may_reach(rt, caller, &row).await,
            None => Ok(()),
        },
        Reaches::Record(id) => record_reach(rt, caller, &id).await,
        Reaches::Execution(id) => match rt.instance(&id).await? {
            Some(row) => may_reach(rt, caller, &row).await,
            None => record_reach(rt, caller, &id).await,
        },
        Reaches::UserTask(id) => match rt.store().user_task(&id).await? {
            Some(task) => may_see_task(rt, caller, &task).await,
            None => Ok(()),
        },
        Reaches::Jobs if caller.operates() && caller.tenant_limit().is_none() => Ok(()),
        Reaches::Jobs => Err(caller.forbidden("work stone jobs: operators and administrators of every tenant do")),
        Reaches::Management if caller.operates() && caller.tenant_limit().is_none() => Ok(()),
        Reaches::Management => {
            Err(caller.forbidden("manage jobs and timers: operators and administrators of every tenant do"))
        }
        Reaches::AcrossInstances(None) => Err(caller.forbidden(
            "list across every instance: name one they may reach as `processInstanceId` in the query string",
        )),
    }
}

/// Lets a request through only with credentials that name a user, whom it records as the
/// request's [`Caller`]; the health probes need none. Refusals are 401s in the dialect's own
/// error shape, with the challenge of HTTP Basic.
pub(crate) async fn require(State(auth): State<Arc<Authenticator>>, mut req: Request, next: Next) -> Response {
    // The bk-sops API carries its app credentials in the request; it checks them itself.
    let path = req.uri().path();
    if super::health::PATHS.contains(&path)
        || super::openapi::is_public(path)
        || path.starts_with(super::BK_SOPS_PREFIX)
        || crate::console::is_console(path)
    {
        return next.run(req).await;
    }
    let from = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    match auth.authenticate(req.headers().get(header::AUTHORIZATION), from).await {
        Ok(caller) => {
            if let Some(who) = req.extensions().get::<crate::access_log::Who>() {
                who.set(&caller.user);
            }
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            let mut response = in_dialect(req.uri().path(), e);
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Flowstone\""));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_for_what_they_reach() {
        let service = "/flowable-rest/service";
        assert_eq!(reaches(&Method::POST, "/model", None), Reaches::Models);
        assert_eq!(reaches(&Method::GET, "/model", None), Reaches::Other);
        assert_eq!(reaches(&Method::PUT, "/process/p1/cancel", None), Reaches::Instance("p1".into()));
        assert_eq!(reaches(&Method::GET, "/process/%70%31", None), Reaches::Instance("p1".into()), "as decoded");
        assert_eq!(
            reaches(&Method::GET, "/task", Some("x=1&processInstanceId=%70%32")),
            Reaches::Instance("p2".into())
        );
        assert_eq!(reaches(&Method::PUT, "/task/t1/reRun", None), Reaches::Record("t1".into()));
        let deploy = format!("{service}/repository/deployments");
        assert_eq!(reaches(&Method::POST, &deploy, None), Reaches::Models);
        let instance = format!("{service}/runtime/process-instances/p3/variables");
        assert_eq!(reaches(&Method::GET, &instance, None), Reaches::Instance("p3".into()));
        let task = format!("{service}/runtime/tasks/t2/comments/c1");
        assert_eq!(reaches(&Method::DELETE, &task, None), Reaches::UserTask("t2".into()));
        assert_eq!(reaches(&Method::GET, &format!("{service}/runtime/tasks"), None), Reaches::Other);
        assert_eq!(reaches(&Method::POST, "/worker/fetch", None), Reaches::Jobs);
        assert_eq!(reaches(&Method::POST, "/flowable-rest/external-job-api/acquire/jobs", None), Reaches::Jobs);
        assert_eq!(reaches(&Method::GET, &format!("{service}/management/jobs"), None), Reaches::Management);
        assert_eq!(reaches(&Method::POST, &format!("{service}/management/timer-jobs/t1"), None), Reaches::Management);
        let history = format!("{service}/history/historic-activity-instances");
        let one = Reaches::AcrossInstances(Some("p4".into()));
        assert_eq!(reaches(&Method::GET, &history, Some("processInstanceId=p4")), one);
        assert_eq!(
            reaches(&Method::POST, &format!("{service}/query/executions"), None),
            Reaches::AcrossInstances(None)
        );
        let execution = format!("{service}/runtime/executions/e1/activities");
        assert_eq!(reaches(&Method::GET, &execution, None), Reaches::Execution("e1".into()));
    }
}
