//! Flowable's external worker REST API (`/flowable-rest/external-job-api/`) over the same
//! stone jobs, so that Flowable external workers run against Flowstone unchanged: acquire
//! jobs of a topic, then complete them (setting process variables), fail them (with retries
//! and a retry timeout), or end them with a BPMN error.

use super::variables::{RestVariable, type_name, variables};
use super::{FlowableResult, origin, time_as};
use crate::api::input::Body;
use crate::api::input::Query;
use crate::api::worker::{fail_or_retry, held, parse, report, require};
use crate::error::ApiError;
use crate::runtime::jobs::Wanted;
use crate::runtime::{Runtime, RuntimeError};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use flowstone_engine::{Action, StoneEvent};
use flowstone_store::{JobFilter, JobRow, Page};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Where Flowable REST serves the external worker API.
const BASE: &str = "/flowable-rest/external-job-api";

/// Retries of a job no worker has failed yet, as Flowable's job executor counts them.
const DEFAULT_RETRIES: i64 = 3;

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new()
        .route(&format!("{BASE}/acquire/jobs"), post(acquire))
        .route(&format!("{BASE}/acquire/jobs/{{id}}/complete"), post(complete))
        .route(&format!("{BASE}/acquire/jobs/{{id}}/fail"), post(fail))
        .route(&format!("{BASE}/acquire/jobs/{{id}}/bpmnError"), post(bpmn_error))
        .route(&format!("{BASE}/jobs"), get(list_jobs))
        .route(&format!("{BASE}/jobs/{{id}}"), get(get_job))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AcquireRequest {
    topic: Option<String>,
    lock_duration: Option<String>,
    number_of_tasks: Option<u32>,
    worker_id: Option<String>,
    scope_type: Option<String>,
    /// Flowable retries optimistic-lock failures this often; acquisitions here do not fail so.
    #[serde(rename = "numberOfRetries")]
    _number_of_retries: Option<u32>,
}

/// A time as Flowable's external-job API writes it (Jackson's default, `…T17:01:27.897Z`,
/// unlike the `+0000` of its other REST resources): its Python client parses this form only.
fn job_time(ms: i64) -> Value {
    time_as(ms, "%Y-%m-%dT%H:%M:%S%.3fZ")
}

/// Variables sent with a completion or an error: none given, or `null` (as the JavaScript
/// client sends when a handler returns nothing), is none.
type SentVariables = Option<Vec<RestVariable>>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompleteRequest {
    worker_id: Option<String>,
    #[serde(default)]
    variables: SentVariables,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailRequest {
    worker_id: Option<String>,
    error_message: Option<String>,
    error_details: Option<String>,
    retries: Option<i64>,
    retry_timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorRequest {
    worker_id: Option<String>,
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

async fn acquire(State(rt): State<Runtime>, headers: HeaderMap, Body(body): Body) -> FlowableResult<Json<Vec<Value>>> {
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
async fn acquired(rt: &Runtime, origin: &str, job: JobRow) -> Result<Value, ApiError> {
    let mut shown: Map<String, Value> = job.job.params.as_object().cloned().unwrap_or_default();
    shown.retain(|name, _| name != "namespace" && name != "queue");
    shown.extend(job.job.outputs.clone());
    let variables: Vec<Value> =
        shown.iter().map(|(name, value)| json!({"name": name, "type": type_name(value), "value": value})).collect();
    let mut answer = job_json(rt, origin, &job).await?;
    answer["variables"] = Value::Array(variables);
    Ok(answer)
}

/// An external worker job as Flowable describes it.
async fn job_json(rt: &Runtime, origin: &str, job: &JobRow) -> Result<Value, ApiError> {
    let task = rt.store().task(&job.job.record_id).await?;
    let instance = rt.store().instance(&job.instance_id).await?;
    let id = &job.job.record_id;
    Ok(json!({
        "id": id,
        "url": format!("{origin}{BASE}/jobs/{id}"),
        "correlationId": id,
        "processInstanceId": job.instance_id,
        "processDefinitionId": instance.as_ref().map(|i| i.model_id.clone()),
        "executionId": task.as_ref().map(|t| t.record.task_id.clone()),
        "scopeId": null,
        "subScopeId": null,
        "scopeDefinitionId": null,
        "scopeType": "bpmn",
        "elementId": task.as_ref().map(|t| t.record.element.clone()),
        "elementName": task.as_ref().map(|t| t.record.name.clone()),
        "retries": job.retries.unwrap_or(DEFAULT_RETRIES),
        "exceptionMessage": null,
        "dueDate": null,
        "createTime": job_time(job.created_at),
        "tenantId": "",
        "lockOwner": job.owner,
        "lockExpirationTime": job.locked_until.map_or(Value::Null, job_time),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobQuery {
    id: Option<String>,
    process_instance_id: Option<String>,
    topic: Option<String>,
    lock_owner: Option<String>,
    locked: Option<bool>,
    unlocked: Option<bool>,
    start: Option<u64>,
    size: Option<u64>,
}

/// `GET …/jobs`: Flowable's paged list `{data, total, start, sort, order, size}`, oldest first.
async fn list_jobs(
    State(rt): State<Runtime>,
    headers: HeaderMap,
    query: Result<Query<JobQuery>, ApiError>,
) -> FlowableResult<Json<Value>> {
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
    let (start, size) = (q.start.unwrap_or(0), q.size.unwrap_or(10).clamp(1, super::MAX_PAGE_SIZE));
    let (jobs, total) = rt.store().list_jobs(&filter, Page { offset: start, limit: size }).await?;
    let origin = origin(&headers);
    let mut data = Vec::with_capacity(jobs.len());
    for job in &jobs {
        data.push(job_json(&rt, &origin, job).await?);
    }
    let size = data.len();
    Ok(Json(json!({"data": data, "total": total, "start": start, "sort": "createTime", "order": "asc", "size": size})))
}

/// `GET …/jobs/{id}`.
async fn get_job(State(rt): State<Runtime>, headers: HeaderMap, Path(id): Path<String>) -> FlowableResult<Json<Value>> {
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

async fn complete(State(rt): State<Runtime>, Path(id): Path<String>, Body(body): Body) -> FlowableResult<StatusCode> {
    let req: CompleteRequest = parse(&body)?;
    let job = locked_by(&rt, &id, &req.worker_id).await?;
    let event = StoneEvent::Completed { variables: variables(req.variables.unwrap_or_default())? };
    report(&rt, &job, &req.worker_id.unwrap_or_default(), event).await.map_err(not_held)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn bpmn_error(State(rt): State<Runtime>, Path(id): Path<String>, Body(body): Body) -> FlowableResult<StatusCode> {
    let req: ErrorRequest = parse(&body)?;
    let job = locked_by(&rt, &id, &req.worker_id).await?;
    let code = required(&req.error_code, "errorCode")?.to_owned();
    let event = StoneEvent::BpmnError { code, variables: variables(req.variables.unwrap_or_default())? };
    report(&rt, &job, &req.worker_id.unwrap_or_default(), event).await.map_err(not_held)?;
    Ok(StatusCode::NO_CONTENT)
}

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
