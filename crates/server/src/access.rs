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

use crate::api::{ApiError, FLOWABLE_PREFIX, in_dialect};
use crate::auth::Caller;
use crate::runtime::{Person, Runtime};
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use flowstone_store::{InstanceRow, UserTaskRow};

/// What a signed-in user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    /// Their own processes and tasks.
    User,
    /// Deploys models; sees and operates every instance and task.
    Operator,
    /// Everything, users and groups included.
    Admin,
}

/// The group whose members are administrators.
pub(crate) const ADMIN_GROUP: &str = "admin";
/// The group whose members are operators.
pub(crate) const OPERATOR_GROUP: &str = "operator";

impl Role {
    /// The role of `user`, a member of `groups`.
    pub(crate) fn of(user: &str, groups: &[String]) -> Role {
        if user == crate::auth::ADMIN || groups.iter().any(|g| g == ADMIN_GROUP) {
            Role::Admin
        } else if groups.iter().any(|g| g == OPERATOR_GROUP) {
            Role::Operator
        } else {
            Role::User
        }
    }
}

impl Caller {
    /// Whether they see and operate everything of their tenant (operators and administrators).
    pub(crate) fn operates(&self) -> bool {
        self.role >= Role::Operator
    }

    /// The tenant they are held to: their own, unless they are an administrator.
    pub(crate) fn tenant_limit(&self) -> Option<&str> {
        self.tenant.as_deref().filter(|_| self.role != Role::Admin)
    }

    /// Whether something of `tenant` is within their reach.
    pub(crate) fn within(&self, tenant: Option<&str>) -> bool {
        self.tenant_limit().is_none_or(|mine| tenant == Some(mine))
    }

    /// For lists of instances: the starter they are limited to (none for operators).
    pub(crate) fn own_instances(&self) -> Option<String> {
        (!self.operates()).then(|| self.user.clone())
    }

    /// For lists of user tasks: the user whose part they are limited to (none for operators).
    pub(crate) fn own_tasks(&self) -> Option<String> {
        (!self.operates()).then(|| self.user.clone())
    }

    /// Who they are to the rules of user tasks.
    pub(crate) fn person(&self) -> Person {
        Person { user: self.user.clone(), groups: self.groups.clone(), admin: self.role == Role::Admin }
    }

    fn forbidden(&self, what: &str) -> ApiError {
        ApiError::forbidden(format!("user '{}' may not {what}", self.user))
    }
}

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
        (None, Some(parent)) => rt.store().instance(parent).await?.and_then(|p| p.start_user),
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
        Some(instance) => match rt.store().instance(instance).await? {
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
    /// Stone jobs: the worker protocol, Flowable's external worker API and job lists.
    Jobs,
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
            ["management", "jobs", ..] => Reaches::Jobs,
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
        _ => Reaches::Other,
    }
}

/// Whether `caller` may reach the instance of task record `id` (an unknown id: the handler's 404).
async fn record_reach(rt: &Runtime, caller: &Caller, id: &str) -> Result<(), ApiError> {
    let Some(record) = rt.store().task(id).await? else { return Ok(()) };
    match rt.store().instance(&record.instance_id).await? {
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
        Reaches::Instance(id) | Reaches::AcrossInstances(Some(id)) => match rt.store().instance(&id).await? {
            Some(row) => may_reach(rt, caller, &row).await,
            None => Ok(()),
        },
        Reaches::Record(id) => record_reach(rt, caller, &id).await,
        Reaches::Execution(id) => match rt.store().instance(&id).await? {
            Some(row) => may_reach(rt, caller, &row).await,
            None => record_reach(rt, caller, &id).await,
        },
        Reaches::UserTask(id) => match rt.store().user_task(&id).await? {
            Some(task) => may_see_task(rt, caller, &task).await,
            None => Ok(()),
        },
        Reaches::Jobs if caller.operates() && caller.tenant_limit().is_none() => Ok(()),
        Reaches::Jobs => Err(caller.forbidden("work stone jobs: operators and administrators of every tenant do")),
        Reaches::AcrossInstances(None) => Err(caller.forbidden(
            "list across every instance: name one they may reach as `processInstanceId` in the query string",
        )),
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
        assert_eq!(reaches(&Method::GET, &format!("{service}/management/jobs"), None), Reaches::Jobs);
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

    #[test]
    fn roles_come_from_the_admin_user_and_the_well_known_groups() {
        assert_eq!(Role::of("admin", &[]), Role::Admin);
        assert_eq!(Role::of("kermit", &["admin".into()]), Role::Admin);
        assert_eq!(Role::of("kermit", &["operator".into(), "muppets".into()]), Role::Operator);
        assert_eq!(Role::of("kermit", &["muppets".into()]), Role::User);
    }
}
