//! Flowable's external worker REST API (`/flowable-rest/external-job-api/`) over the same
//! stone jobs, so that Flowable external workers run against Flowstone unchanged: acquire
//! jobs of a topic, then complete them (setting process variables), fail them (with retries
//! and a retry timeout), or end them with a BPMN error.

use super::variables::{RestVariable, Variable, variables};
use super::{FlowableResult, Listed, origin, time_as};
use crate::api::input::Body;
use crate::api::input::Query;
use crate::api::worker::{fail_or_retry, held, parse, report, require};
use crate::error::ApiError;
use crate::error::FlowableErrorBody;
use crate::runtime::jobs::Wanted;
use crate::runtime::{Runtime, RuntimeError};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use flowstone_engine::{Action, StoneEvent};
use flowstone_store::{JobFilter, JobRow, Page};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// Where Flowable REST serves the external worker API.
const BASE: &str = "/flowable-rest/external-job-api";

/// Retries of a job no worker has failed yet, as Flowable's job executor counts them.
const DEFAULT_RETRIES: i64 = 3;

/// The external-job API's part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(acquire, complete, fail, bpmn_error, list_jobs, get_job), components(schemas(FlowableErrorBody)))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new()
        .route(&format!("{BASE}/acquire/jobs"), post(acquire))
        .route(&format!("{BASE}/acquire/jobs/{{id}}/complete"), post(complete))
        .route(&format!("{BASE}/acquire/jobs/{{id}}/fail"), post(fail))
        .route(&format!("{BASE}/acquire/jobs/{{id}}/bpmnError"), post(bpmn_error))
        .route(&format!("{BASE}/jobs"), get(list_jobs))
        .route(&format!("{BASE}/jobs/{{id}}"), get(get_job))
}

/// `POST …/acquire/jobs`'s body.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AcquireRequest {
    /// The topic: a stone's name (its start jobs), or `stone:rollback`, `:cancel`, `:delete`,
    /// `:mock` (its compensating jobs). Required.
    topic: Option<String>,
    /// How long the jobs stay locked, ISO-8601 (`PT10M`). Required.
    lock_duration: Option<String>,
    /// How many jobs at most, 1 to 1000 (1).
    #[schema(minimum = 1, maximum = 1000)]
    number_of_tasks: Option<u32>,
    /// The worker. Required.
    worker_id: Option<String>,
    /// `bpmn` (another scope acquires nothing).
    scope_type: Option<String>,
    /// Flowable retries optimistic-lock failures this often; acquisitions here do not fail so.
    #[serde(rename = "numberOfRetries")]
    _number_of_retries: Option<u32>,
}

/// A time as Flowable's external-job API writes it (Jackson's default, `…T17:01:27.897Z`,
/// unlike the `+0000` of its other REST resources): its Python client parses this form only.
fn job_time(ms: i64) -> String {
    time_as(ms, "%Y-%m-%dT%H:%M:%S%.3fZ").unwrap_or_default()
}

/// Variables sent with a completion or an error: none given, or `null` (as the JavaScript
/// client sends when a handler returns nothing), is none.
type SentVariables = Option<Vec<RestVariable>>;

/// `POST …/acquire/jobs/{id}/complete`'s body.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CompleteRequest {
    /// The worker holding the job. Required.
    worker_id: Option<String>,
    #[serde(default)]
    variables: SentVariables,
}

/// `POST …/acquire/jobs/{id}/fail`'s body.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct FailRequest {
    /// The worker holding the job. Required.
    worker_id: Option<String>,
    error_message: Option<String>,
    error_details: Option<String>,
    /// Retries left (one fewer than the job had when not given); none left fails the task.
    retries: Option<i64>,
    /// How long to wait before the job is handed out again, ISO-8601.
    retry_timeout: Option<String>,
}

/// `POST …/acquire/jobs/{id}/bpmnError`'s body.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ErrorRequest {
    /// The worker holding the job. Required.
    worker_id: Option<String>,
    /// The BPMN error's code (a boundary event of that code catches it). Required.
    error_code: Option<String>,
    #[serde(default)]
    variables: SentVariables,
}

/// An ISO-8601 duration (`PT10M`, `P1D` with days of 24 hours).
fn iso_duration(field: &str, text: &str) -> Result<Duration, ApiError> {
    let bad = || ApiError::bad_request(format!("`{field}` must be an ISO-8601 duration such as PT10M, not `{text}`"));
    let span: jiff::Span = text.parse().map_err(|_| bad())?;
    let signed = span.to_duration(jiff::SpanRelativeTo::days_are_24_hours()).map_err(|_| bad())?;
    Duration::try_from(signed).map_err(|_| bad())
}

fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, ApiError> {
    let value = value.as_deref().unwrap_or_default();
    require(value, field).map_err(|_| ApiError::bad_request(format!("{field} is required")))?;
    Ok(value)
}

/// The stone and action a Flowable topic hands out. A Flowable worker knows one thing, "do
/// this task": topic `T` hands out the `start` jobs of stone `T` only. The compensating actions
/// of a task whose model asks for them (`flowstone:compensate="true"`) are handed out on topics
/// of their own, `T:rollback`, `T:cancel` and `T:delete` (and a mock run's on `T:mock`), to a
/// worker that subscribes to them on purpose.
fn topic_jobs(topic: &str) -> (&str, Action) {
    let compensating = topic
        .rsplit_once(':')
        .and_then(|(stone, suffix)| Some((stone, Action::parse(suffix)?)))
        .filter(|(stone, action)| !stone.is_empty() && !matches!(action, Action::Start | Action::Monitor));
    compensating.unwrap_or((topic, Action::Start))
}

/// An external worker job as Flowable describes it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ExternalJob {
    id: String,
    url: String,
    correlation_id: String,
    process_instance_id: String,
    process_definition_id: Option<String>,
    execution_id: Option<String>,
    scope_id: Option<String>,
    sub_scope_id: Option<String>,
    scope_definition_id: Option<String>,
    /// Always `bpmn`.
    scope_type: String,
    element_id: Option<String>,
    element_name: Option<String>,
    retries: i64,
    exception_message: Option<String>,
    due_date: Option<String>,
    /// `…T17:01:27.897Z`.
    create_time: String,
    tenant_id: String,
    lock_owner: Option<String>,
    lock_expiration_time: Option<String>,
    /// The job's variables (an acquisition's answer only).
    #[serde(skip_serializing_if = "Option::is_none")]
    variables: Option<Vec<Variable>>,
}

/// `POST …/acquire/jobs`: locks up to `numberOfTasks` jobs of the topic for the worker and
/// answers them with their variables (none waiting: an empty list at once).
#[utoipa::path(post, path = "/flowable-rest/external-job-api/acquire/jobs", tag = "flowable-external-jobs",
    request_body = AcquireRequest,
    responses(
        (status = 200, description = "The jobs locked for the worker", body = Vec<ExternalJob>),
        (status = 400, description = "A field missing or malformed", body = FlowableErrorBody),
    ))]
async fn acquire(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Body(body): Body,
) -> FlowableResult<Json<Vec<ExternalJob>>> {
    let req: AcquireRequest = parse(&body)?;
    let topic = required(&req.topic, "topic")?;
    let lock = iso_duration("lockDuration", required(&req.lock_duration, "lockDuration")?)?;
    let worker = required(&req.worker_id, "workerId")?;
    if req.scope_type.as_deref().is_some_and(|s| s != "bpmn") {
        return Ok(Json(Vec::new())); // no CMMN here: nothing of another scope to acquire
    }
    let max = req.number_of_tasks.unwrap_or(1);
    if !(1..=1000).contains(&max) {
        return Err(ApiError::bad_request(format!("numberOfTasks must be from 1 to 1000, not {max}")).into());
    }
    let (stone, action) = topic_jobs(topic);
    let topics = [stone];
    let wanted =
        Wanted { topics: &topics, worker, max: u64::from(max), lock, wait: Duration::ZERO, action: Some(action) };
    let jobs = rt.fetch_jobs(wanted).await?;
    let origin = origin(&headers);
    let mut answer = Vec::with_capacity(jobs.len());
    for job in jobs {
        answer.push(acquired(&rt, &origin, job).await?);
    }
    Ok(Json(answer))
}

/// A job as Flowable answers an acquisition: its fields and its variables (for a compensating
/// job, also what the task put out, over its params).
async fn acquired(rt: &Runtime, origin: &str, job: JobRow) -> Result<ExternalJob, ApiError> {
    let mut shown: Map<String, Value> = job.job.params.as_object().cloned().unwrap_or_default();
    shown.retain(|name, _| name != "namespace" && name != "queue");
    shown.extend(job.job.outputs.clone());
    let variables = shown.into_iter().map(|(name, value)| Variable::of(name, value));
    Ok(ExternalJob { variables: Some(variables.collect()), ..job_json(rt, origin, &job).await? })
}

/// An external worker job as Flowable describes it.
async fn job_json(rt: &Runtime, origin: &str, job: &JobRow) -> Result<ExternalJob, ApiError> {
    // Asked at once, the two reads go in one batch.
    let (task, instance) = tokio::join!(rt.task(&job.job.record_id), rt.instance(&job.instance_id));
    let (task, instance) = (task?, instance?);
    let id = &job.job.record_id;
    Ok(ExternalJob {
        id: id.clone(),
        url: format!("{origin}{BASE}/jobs/{id}"),
        correlation_id: id.clone(),
        process_instance_id: job.instance_id.clone(),
        process_definition_id: instance.as_ref().map(|i| i.model_id.clone()),
        execution_id: task.as_ref().map(|t| t.record.task_id.clone()),
        scope_id: None,
        sub_scope_id: None,
        scope_definition_id: None,
        scope_type: "bpmn".into(),
        element_id: task.as_ref().map(|t| t.record.element.clone()),
        element_name: task.as_ref().map(|t| t.record.name.clone()),
        retries: job.retries.unwrap_or(DEFAULT_RETRIES),
        exception_message: None,
        due_date: None,
        create_time: job_time(job.created_at),
        tenant_id: String::new(),
        lock_owner: job.owner.clone(),
        lock_expiration_time: job.locked_until.map(job_time),
        variables: None,
    })
}

/// `GET …/jobs`'s filters and page.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct JobQuery {
    id: Option<String>,
    process_instance_id: Option<String>,
    topic: Option<String>,
    lock_owner: Option<String>,
    locked: Option<bool>,
    unlocked: Option<bool>,
    /// The first job of the page (0).
    #[param(minimum = 0)]
    start: Option<i64>,
    /// How many jobs a page holds (10; at most 1000).
    #[param(minimum = 1)]
    size: Option<i64>,
}

/// `GET …/jobs`: Flowable's paged list `{data, total, start, sort, order, size}`, oldest first.
#[utoipa::path(get, path = "/flowable-rest/external-job-api/jobs", tag = "flowable-external-jobs", params(JobQuery),
    responses(
        (status = 200, description = "A page of jobs, oldest first", body = Listed<ExternalJob>),
        (status = 400, description = "A malformed filter, or both locked and unlocked", body = FlowableErrorBody),
    ))]
async fn list_jobs(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    query: Result<Query<JobQuery>, ApiError>,
) -> FlowableResult<Json<Listed<ExternalJob>>> {
    let Query(q) = query?;
    let locked = match (q.locked, q.unlocked) {
        (Some(true), Some(true)) => {
            return Err(ApiError::bad_request("Only one of locked or unlocked can be provided").into());
        }
        (Some(true), _) => Some(true),
        (_, Some(true)) => Some(false),
        _ => None,
    };
    let filter = JobFilter {
        record_id: q.id,
        instance_id: q.process_instance_id,
        stone: q.topic,
        owner: q.lock_owner,
        locked,
        now: crate::runtime::now_ms(),
    };
    let (start, size) = (q.start.unwrap_or(0), q.size.unwrap_or(10));
    if start < 0 || size < 1 {
        return Err(ApiError::bad_request(format!(
            "start must not be negative and size positive, not {start} and {size}"
        ))
        .into());
    }
    let (start, size) = (start as u64, (size as u64).min(super::MAX_PAGE_SIZE));
    let (jobs, total) = rt.store().list_jobs(&filter, Page { offset: start, limit: size }).await?;
    let origin = origin(&headers);
    let mut data = Vec::with_capacity(jobs.len());
    for job in &jobs {
        data.push(job_json(&rt, &origin, job).await?);
    }
    let paging = super::Paging { start, size, sort: "createTime", descending: false };
    Ok(Json(paging.envelope(data, total)))
}

/// `GET …/jobs/{id}`.
#[utoipa::path(get, path = "/flowable-rest/external-job-api/jobs/{id}", tag = "flowable-external-jobs",
    params(("id" = String, Path, description = "The job")),
    responses(
        (status = 200, description = "The job", body = ExternalJob),
        (status = 404, description = "No such job", body = FlowableErrorBody),
    ))]
async fn get_job(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> FlowableResult<Json<ExternalJob>> {
    let filter = JobFilter { record_id: Some(id.clone()), ..JobFilter::default() };
    let (mut jobs, _) = rt.store().list_jobs(&filter, Page { offset: 0, limit: 1 }).await?;
    let job =
        jobs.pop().ok_or_else(|| ApiError::not_found(format!("Could not find external worker job with id '{id}'.")))?;
    Ok(Json(job_json(&rt, &origin(&headers), &job).await?))
}

/// The job `worker` holds, in Flowable's terms: 404 when there is none, 403 when another
/// worker holds it.
async fn locked_by(rt: &Runtime, id: &str, worker: &Option<String>) -> Result<flowstone_store::JobLease, ApiError> {
    let worker = required(worker, "workerId")?;
    held(rt, id, worker).await.map_err(|e| {
        let (status, _) = e.parts();
        match status {
            StatusCode::NOT_FOUND => ApiError::not_found(format!("Could not find external worker job with id '{id}'.")),
            _ => ApiError::forbidden(format!("{worker} does not hold a lock on the requested job")),
        }
    })
}

/// Flowable's refusals of a report: a lock found passed to another worker where the report is
/// applied is its 403 (as when the handler finds it so); a job closed meanwhile its 404.
fn not_held(e: RuntimeError) -> ApiError {
    match e {
        RuntimeError::InUse(m) => ApiError::forbidden(m),
        other => other.into(),
    }
}

/// `POST …/acquire/jobs/{id}/complete`: Completes the job: its variables become the process's.
#[utoipa::path(post, path = "/flowable-rest/external-job-api/acquire/jobs/{id}/complete", tag = "flowable-external-jobs",
    params(("id" = String, Path, description = "The job")),
    request_body = CompleteRequest,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "A field missing or malformed", body = FlowableErrorBody),
        (status = 403, description = "Another worker (or none) holds the job's lock", body = FlowableErrorBody),
        (status = 404, description = "No such job", body = FlowableErrorBody),
    ))]
async fn complete(State(rt): State<Runtime>, Path(id): Path<String>, Body(body): Body) -> FlowableResult<StatusCode> {
    let req: CompleteRequest = parse(&body)?;
    let job = locked_by(&rt, &id, &req.worker_id).await?;
    let event = StoneEvent::Completed { variables: variables(req.variables.unwrap_or_default())? };
    report(&rt, &job, &req.worker_id.unwrap_or_default(), event).await.map_err(not_held)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/acquire/jobs/{id}/bpmnError`: Ends the job with a BPMN error a boundary event catches.
#[utoipa::path(post, path = "/flowable-rest/external-job-api/acquire/jobs/{id}/bpmnError", tag = "flowable-external-jobs",
    params(("id" = String, Path, description = "The job")),
    request_body = ErrorRequest,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "A field missing or malformed", body = FlowableErrorBody),
        (status = 403, description = "Another worker (or none) holds the job's lock", body = FlowableErrorBody),
        (status = 404, description = "No such job", body = FlowableErrorBody),
    ))]
async fn bpmn_error(State(rt): State<Runtime>, Path(id): Path<String>, Body(body): Body) -> FlowableResult<StatusCode> {
    let req: ErrorRequest = parse(&body)?;
    let job = locked_by(&rt, &id, &req.worker_id).await?;
    let code = required(&req.error_code, "errorCode")?.to_owned();
    let event = StoneEvent::BpmnError { code, variables: variables(req.variables.unwrap_or_default())? };
    report(&rt, &job, &req.worker_id.unwrap_or_default(), event).await.map_err(not_held)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/acquire/jobs/{id}/fail`: Fails the job: retried while retries are left, else the task fails.
#[utoipa::path(post, path = "/flowable-rest/external-job-api/acquire/jobs/{id}/fail", tag = "flowable-external-jobs",
    params(("id" = String, Path, description = "The job")),
    request_body = FailRequest,
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "A field missing or malformed", body = FlowableErrorBody),
        (status = 403, description = "Another worker (or none) holds the job's lock", body = FlowableErrorBody),
        (status = 404, description = "No such job", body = FlowableErrorBody),
    ))]
async fn fail(State(rt): State<Runtime>, Path(id): Path<String>, Body(body): Body) -> FlowableResult<StatusCode> {
    let req: FailRequest = parse(&body)?;
    let job = locked_by(&rt, &id, &req.worker_id).await?;
    let worker = req.worker_id.as_deref().unwrap_or_default();
    // Not given, the retries go down by one from what the job had (3 for a first failure).
    let retries = req.retries.unwrap_or_else(|| job.retries.unwrap_or(DEFAULT_RETRIES) - 1);
    let backoff = match &req.retry_timeout {
        Some(text) => iso_duration("retryTimeout", text)?.as_millis() as u64,
        None => 0,
    };
    let reason = match (req.error_message, req.error_details) {
        (Some(message), Some(details)) => format!("{message}: {details}"),
        (Some(message), None) => message,
        (None, Some(details)) => details,
        (None, None) => "the external worker reported a failure".into(),
    };
    fail_or_retry(&rt, &job, worker, retries, backoff, reason).await.map_err(not_held)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_topic_hands_out_starts_and_a_suffixed_one_its_compensating_action() {
        assert_eq!(topic_jobs("ship"), ("ship", Action::Start));
        assert_eq!(topic_jobs("ship:rollback"), ("ship", Action::Rollback));
        assert_eq!(topic_jobs("a:b:delete"), ("a:b", Action::Delete));
        assert_eq!(topic_jobs("ship:start"), ("ship:start", Action::Start), "start is the plain topic's");
        assert_eq!(topic_jobs("ship:later"), ("ship:later", Action::Start));
        assert_eq!(topic_jobs(":cancel"), (":cancel", Action::Start));
    }
}
