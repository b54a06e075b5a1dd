//! Flowable's job management (`management/timer-jobs`, `management/jobs`,
//! `management/deadletter-jobs`) over the engine's timers.
//!
//! Flowable keeps a timer in its timer-job table until it is due, then moves it to the
//! executable jobs, which its executor runs. Here a timer not yet due is a timer job; one
//! that is due (and being fired) is an executable job. Moving a timer job (`{"action":
//! "move"}`) or executing a job (`{"action": "execute"}`) fires it now, through the committer,
//! as its due time would. A firing that fails fails its instance, so no job is ever parked
//! for an operator: the dead-letter list is empty, as Flowable's is when nothing failed.

use super::filters::{Filter, Kind, PAGING, described, filter, sort};
use super::repository::model_tenant;
use super::{FlowableResult, Listed, Paging, Params, SERVICE, iso_time, origin, query_map, service_url};
use crate::api::input::Body;
use crate::error::{ApiError, FlowableErrorBody};
use crate::runtime::{Runtime, RuntimeError, now_ms};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use flowstone_engine::{Command, EngineError};
use flowstone_store::{Page, TimerJobRow, TimerOrder, TimerQuery};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub(super) fn routes() -> Router<crate::api::App> {
    let at = |path: &str| format!("{SERVICE}/management/{path}");
    Router::new()
        .route(&at("timer-jobs"), get(list_timer_jobs))
        .route(&at("timer-jobs/{id}"), get(get_timer_job).post(move_timer_job).delete(delete_timer_job))
        .route(&at("jobs"), get(list_jobs))
        .route(&at("jobs/{id}"), get(get_job).post(execute_job).delete(delete_job))
        .route(&at("deadletter-jobs"), get(list_deadletter_jobs))
        .route(&at("deadletter-jobs/{id}"), get(get_deadletter_job))
}

/// The job management part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        list_timer_jobs,
        get_timer_job,
        move_timer_job,
        delete_timer_job,
        list_jobs,
        get_job,
        execute_job,
        delete_job,
        list_deadletter_jobs,
        get_deadletter_job
    ))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}

/// Which of Flowable's job tables a list or a job is read from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    /// Timers not yet due.
    Timers,
    /// Timers due, being fired.
    Executable,
}

impl Table {
    /// Its path under `management/`.
    fn path(self) -> &'static str {
        match self {
            Table::Timers => "timer-jobs",
            Table::Executable => "jobs",
        }
    }

    /// The due times it holds at `now`, as (after, before) bounds.
    fn due(self, now: i64) -> (Option<i64>, Option<i64>) {
        match self {
            Table::Timers => (Some(now), None),
            Table::Executable => (None, Some(now + 1)),
        }
    }
}

/// A job: a timer, with where it waits.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Job {
    id: String,
    url: String,
    /// Null for a timer start event's timer (it starts instances).
    process_instance_id: Option<String>,
    process_instance_url: Option<String>,
    process_definition_id: String,
    process_definition_url: String,
    /// The execution of the timer event (its activity's execution in `runtime/executions`);
    /// null for a timer start event's timer.
    execution_id: Option<String>,
    execution_url: Option<String>,
    /// The timer event's element.
    element_id: String,
    element_name: String,
    /// How many more times a failing firing is retried: none is, a failure fails the instance.
    retries: i32,
    /// Always null: a firing that fails fails its instance instead.
    exception_message: Option<String>,
    due_date: Option<String>,
    create_time: Option<String>,
    tenant_id: Option<String>,
    /// The server firing it, while it does.
    lock_owner: Option<String>,
    lock_expiration_time: Option<String>,
}

impl Job {
    async fn of(rt: &Runtime, origin: &str, table: Table, row: &TimerJobRow) -> Result<Job, ApiError> {
        let t = &row.timer;
        let url = |path: &str| service_url(origin, path);
        let of_instance = (!t.instance_id.is_empty()).then_some(t);
        Ok(Job {
            id: t.record_id.clone(),
            url: url(&format!("management/{}/{}", table.path(), t.record_id)),
            process_instance_id: of_instance.map(|t| t.instance_id.clone()),
            process_instance_url: of_instance.map(|t| url(&format!("runtime/process-instances/{}", t.instance_id))),
            process_definition_id: row.model_id.clone(),
            process_definition_url: url(&format!("repository/process-definitions/{}", row.model_id)),
            execution_id: of_instance.map(|t| t.record_id.clone()),
            execution_url: of_instance.map(|t| url(&format!("runtime/executions/{}", t.record_id))),
            element_id: t.element.clone(),
            element_name: row.name.clone(),
            retries: 0,
            exception_message: None,
            due_date: iso_time(t.due),
            create_time: iso_time(row.created_at),
            tenant_id: model_tenant(rt, &row.model_id).await?,
            lock_owner: t.owner.clone(),
            lock_expiration_time: t.locked_until.and_then(iso_time),
        })
    }
}

const JOB_SORTS: [&str; 6] = ["id", "dueDate", "executionId", "processInstanceId", "retries", "tenantId"];

/// The filters of the job lists.
const JOB_FILTERS: [Filter; 15] = [
    filter("id", Kind::Text, "Only the job of this id"),
    filter("processInstanceId", Kind::Text, "Only jobs of this process instance"),
    filter("executionId", Kind::Text, "Only the job of this execution"),
    filter("processDefinitionId", Kind::Text, "Only jobs of instances of this process definition"),
    filter("timersOnly", Kind::Flag, "Only timers (every job is one)"),
    filter("messagesOnly", Kind::Flag, "Only messages (there are none)"),
    filter("withException", Kind::Flag, "Only jobs whose execution failed (there are none)"),
    filter("dueBefore", Kind::Date, "Only jobs due before this time"),
    filter("dueAfter", Kind::Date, "Only jobs due after this time"),
    filter("exceptionMessage", Kind::Text, "Only jobs that failed with this message (there are none)"),
    filter("tenantId", Kind::Text, "Refused: filter by process instance or definition"),
    filter("tenantIdLike", Kind::Text, "Refused: filter by process instance or definition"),
    filter("withoutTenantId", Kind::Flag, "Refused: filter by process instance or definition"),
    filter("locked", Kind::Flag, "Only jobs a server is firing now"),
    filter("unlocked", Kind::Flag, "Only jobs no server is firing now"),
];

described!(
    /// The filters of the job lists (query parameters).
    checked JobFilters: JOB_FILTERS, PAGING, [sort(&JOB_SORTS)]
);

/// One page of the jobs of `table` the filters leave.
async fn jobs(rt: &Runtime, origin: &str, table: Table, params: &Map<String, Value>) -> Result<Listed<Job>, ApiError> {
    JobFilters::check(params)?;
    let p = Params(params);
    let paging = Paging::read(&p, &JOB_SORTS)?;
    if p.flag("timersOnly")? == Some(true) && p.flag("messagesOnly")? == Some(true) {
        return Err(ApiError::bad_request("Only one of 'timersOnly' or 'messagesOnly' can be provided."));
    }
    for tenant in ["tenantId", "tenantIdLike", "withoutTenantId"] {
        // Refused whatever its value (`withoutTenantId=null` too): jobs have no tenant filter.
        if params.contains_key(tenant) {
            return Err(ApiError::bad_request(format!(
                "Filter '{tenant}' is not supported on jobs; filter by processInstanceId or processDefinitionId"
            )));
        }
    }
    let nothing = p.flag("messagesOnly")? == Some(true)
        || p.flag("withException")? == Some(true)
        || p.text("exceptionMessage").is_some();
    let locked = match (p.flag("locked")?, p.flag("unlocked")?) {
        (Some(true), Some(true)) => {
            return Err(ApiError::bad_request("Only one of 'locked' or 'unlocked' can be provided."));
        }
        (Some(true), _) => Some(true),
        (_, Some(true)) => Some(false),
        _ => None,
    };
    let now = now_ms();
    let (after, before) = table.due(now);
    let narrower = |a: Option<i64>, b: Option<i64>, pick: fn(i64, i64) -> i64| match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    };
    let query = TimerQuery {
        id: p.text("id").or_else(|| p.text("executionId")),
        instance_id: p.text("processInstanceId"),
        model_id: p.text("processDefinitionId"),
        due_before: narrower(before, p.date("dueBefore")?, i64::min),
        due_after: narrower(after, p.date("dueAfter")?, i64::max),
        locked,
        now,
        order: match paging.sort {
            "dueDate" => TimerOrder::Due,
            "processInstanceId" => TimerOrder::Instance,
            _ => TimerOrder::Id,
        },
        descending: paging.descending,
    };
    if nothing {
        // Every parameter was read first: a malformed one is refused.
        return Ok(paging.envelope(Vec::new(), 0));
    }
    let (rows, total) = rt.store().list_timers(&query, paging.page()).await?;
    let mut data = Vec::with_capacity(rows.len());
    for row in &rows {
        data.push(Job::of(rt, origin, table, row).await?);
    }
    Ok(paging.envelope(data, total))
}

/// The job `id` of `table`, or Flowable's 404.
async fn job(rt: &Runtime, table: Table, id: &str) -> Result<TimerJobRow, ApiError> {
    let now = now_ms();
    let (due_after, due_before) = table.due(now);
    let query = TimerQuery { id: Some(id.to_owned()), due_after, due_before, now, ..TimerQuery::default() };
    let (mut rows, _) = rt.store().list_timers(&query, Page { offset: 0, limit: 1 }).await?;
    rows.pop().ok_or_else(|| {
        let what = if table == Table::Timers { "timer job" } else { "job" };
        ApiError::not_found(format!("Could not find a {what} with id '{id}'."))
    })
}

/// Applies `command` to the timer's instance (a timer start event's timer: fires it now or
/// drops its schedule); a timer that fired or went meanwhile is a 404.
async fn act(rt: &Runtime, row: &TimerJobRow, command: Command) -> Result<StatusCode, ApiError> {
    let done = match &command {
        _ if !row.timer.instance_id.is_empty() => rt.apply(&row.timer.instance_id, command).await,
        Command::FireTimer { .. } => rt.fire_timer_now(&row.timer).await,
        _ => rt.drop_start_timer(&row.timer.record_id).await,
    };
    match done {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(RuntimeError::Conflict(EngineError::TimerNotSet(_) | EngineError::NotRunning(_))) => {
            Err(ApiError::not_found(format!("Could not find a job with id '{}'.", row.timer.record_id)))
        }
        Err(e) => Err(e.into()),
    }
}

/// The body of a job action.
#[derive(Deserialize, ToSchema)]
struct JobAction {
    /// `move` for a timer job, `execute` for a job. Required.
    action: Option<String>,
}

/// Fires the job `id` of `table` now, if the body asks for `expected`.
async fn fire_now(rt: &Runtime, table: Table, id: &str, body: &[u8], expected: &str) -> FlowableResult<StatusCode> {
    let req: JobAction = crate::api::worker::parse(body)?;
    if req.action.as_deref() != Some(expected) {
        return Err(ApiError::bad_request(format!("Invalid action, only '{expected}' is supported.")).into());
    }
    let row = job(rt, table, id).await?;
    let command = Command::FireTimer { timer: row.timer.record_id.clone(), due: row.timer.due };
    Ok(act(rt, &row, command).await?)
}

/// Deletes the job `id` of `table`: its timer never fires.
async fn delete(rt: &Runtime, table: Table, id: &str) -> FlowableResult<StatusCode> {
    let row = job(rt, table, id).await?;
    Ok(act(rt, &row, Command::DropTimer { timer: row.timer.record_id.clone() }).await?)
}

/// The path parameter naming a job.
const JOB: &str = "The job (its timer's task record)";

#[utoipa::path(get, path = "/flowable-rest/service/management/timer-jobs", tag = "flowable-management", params(JobFilters),
    responses(
        (status = 200, description = "A page of the timers not yet due", body = Listed<Job>),
        (status = 400, description = "A malformed or refused filter", body = FlowableErrorBody),
    ))]
async fn list_timer_jobs(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Listed<Job>>> {
    Ok(Json(jobs(&rt, &origin(&headers), Table::Timers, &query_map(q.as_deref())?).await?))
}

#[utoipa::path(get, path = "/flowable-rest/service/management/timer-jobs/{id}", tag = "flowable-management",
    params(("id" = String, Path, description = JOB)),
    responses(
        (status = 200, description = "The timer job", body = Job),
        (status = 404, description = "No timer not yet due has this id", body = FlowableErrorBody),
    ))]
async fn get_timer_job(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<Job>> {
    let row = job(&rt, Table::Timers, &id).await?;
    Ok(Json(Job::of(&rt, &origin(&headers), Table::Timers, &row).await?))
}

#[utoipa::path(post, path = "/flowable-rest/service/management/timer-jobs/{id}", tag = "flowable-management",
    params(("id" = String, Path, description = JOB)), request_body = JobAction,
    responses(
        (status = 204, description = "Moved to the executable jobs: fired now"),
        (status = 400, description = "An action other than `move`", body = FlowableErrorBody),
        (status = 404, description = "No timer not yet due has this id", body = FlowableErrorBody),
    ))]
async fn move_timer_job(
    State(rt): State<Runtime>,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<StatusCode> {
    fire_now(&rt, Table::Timers, &id, &body, "move").await
}

#[utoipa::path(delete, path = "/flowable-rest/service/management/timer-jobs/{id}", tag = "flowable-management",
    params(("id" = String, Path, description = JOB)),
    responses(
        (status = 204, description = "Deleted: the timer never fires (a catch event's instance waits until canceled)"),
        (status = 404, description = "No timer not yet due has this id", body = FlowableErrorBody),
    ))]
async fn delete_timer_job(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<StatusCode> {
    delete(&rt, Table::Timers, &id).await
}

#[utoipa::path(get, path = "/flowable-rest/service/management/jobs", tag = "flowable-management", params(JobFilters),
    responses(
        (status = 200, description = "A page of the timers that are due and being fired", body = Listed<Job>),
        (status = 400, description = "A malformed or refused filter", body = FlowableErrorBody),
    ))]
async fn list_jobs(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> FlowableResult<Json<Listed<Job>>> {
    Ok(Json(jobs(&rt, &origin(&headers), Table::Executable, &query_map(q.as_deref())?).await?))
}

#[utoipa::path(get, path = "/flowable-rest/service/management/jobs/{id}", tag = "flowable-management",
    params(("id" = String, Path, description = JOB)),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 404, description = "No due timer has this id", body = FlowableErrorBody),
    ))]
async fn get_job(State(rt): State<Runtime>, headers: HeaderMap, Path(id): Path<String>) -> FlowableResult<Json<Job>> {
    let row = job(&rt, Table::Executable, &id).await?;
    Ok(Json(Job::of(&rt, &origin(&headers), Table::Executable, &row).await?))
}

#[utoipa::path(post, path = "/flowable-rest/service/management/jobs/{id}", tag = "flowable-management",
    params(("id" = String, Path, description = JOB)), request_body = JobAction,
    responses(
        (status = 204, description = "Executed: the timer fired"),
        (status = 400, description = "An action other than `execute`", body = FlowableErrorBody),
        (status = 404, description = "No due timer has this id", body = FlowableErrorBody),
    ))]
async fn execute_job(
    State(rt): State<Runtime>,
    Path(id): Path<String>,
    Body(body): Body,
) -> FlowableResult<StatusCode> {
    fire_now(&rt, Table::Executable, &id, &body, "execute").await
}

#[utoipa::path(delete, path = "/flowable-rest/service/management/jobs/{id}", tag = "flowable-management",
    params(("id" = String, Path, description = JOB)),
    responses(
        (status = 204, description = "Deleted: the timer never fires"),
        (status = 404, description = "No due timer has this id", body = FlowableErrorBody),
    ))]
async fn delete_job(State(rt): State<Runtime>, Path(id): Path<String>) -> FlowableResult<StatusCode> {
    delete(&rt, Table::Executable, &id).await
}

#[utoipa::path(get, path = "/flowable-rest/service/management/deadletter-jobs", tag = "flowable-management",
    params(JobFilters),
    responses(
        (status = 200, description = "Always empty: a failed firing fails its instance, no job is parked", body = Listed<Job>),
        (status = 400, description = "A malformed or refused filter", body = FlowableErrorBody),
    ))]
async fn list_deadletter_jobs(RawQuery(q): RawQuery) -> FlowableResult<Json<Listed<Job>>> {
    let params = query_map(q.as_deref())?;
    JobFilters::check(&params)?;
    let paging = Paging::read(&Params(&params), &JOB_SORTS)?;
    Ok(Json(paging.envelope(Vec::new(), 0)))
}

#[utoipa::path(get, path = "/flowable-rest/service/management/deadletter-jobs/{id}", tag = "flowable-management",
    params(("id" = String, Path, description = JOB)),
    responses(
        (status = 200, description = "The dead-letter job (never answered: no job is ever parked here)", body = Job),
        (status = 404, description = "No job is ever parked here", body = FlowableErrorBody),
    ))]
async fn get_deadletter_job(Path(id): Path<String>) -> FlowableResult<Json<Job>> {
    Err(ApiError::not_found(format!("Could not find a deadletter job with id '{id}'.")).into())
}
