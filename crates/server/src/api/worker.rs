//! The worker protocol (see `flowstone_worker::protocol`): long-poll fetch-and-lock of stone
//! jobs, and the reports of the workers that hold them.

use super::input::Body;
use crate::error::{ApiError, ErrorBody};
use crate::runtime::jobs::Wanted;
use crate::runtime::{Runtime, RuntimeError, now_ms};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use flowstone_engine::{Command, StoneEvent};
use flowstone_store::{JobLease, JobRow, LeaseUpdate};
use flowstone_worker::protocol::{
    EventBatch, EventOutcome, EventReport, FailureReport, FetchRequest, LockExtended, LockReport, LockedJob,
    MAX_BACKOFF_MS, MAX_LOCK_MS, ProgressReport,
};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

type ApiResult<T> = Result<T, ApiError>;

/// The longest a fetch may wait.
const MAX_WAIT_MS: u64 = 60_000;

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new()
        .route("/worker/fetch", post(fetch))
        .route("/worker/events", post(events))
        .route("/worker/jobs/{id}/event", post(event))
        .route("/worker/jobs/{id}/progress", post(progress))
        .route("/worker/jobs/{id}/heartbeat", post(heartbeat))
        .route("/worker/jobs/{id}/fail", post(fail))
        .route("/worker/jobs/{id}/release", post(release))
}

/// The worker protocol's part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(fetch, events, event, progress, heartbeat, fail, release))]
    struct Api;
    <Api as utoipa::OpenApi>::openapi()
}

/// Parses a JSON body into `T`, naming what was wrong. A whole number written with a
/// fraction (`5000.0`, as some JSON encoders write every number) reads as the number it is.
pub(super) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let malformed = |e: serde_json::Error| ApiError::bad_request(format!("malformed request body: {e}"));
    serde_json::from_slice(body).or_else(|first| {
        let mut value: serde_json::Value = serde_json::from_slice(body).map_err(malformed)?;
        if whole_numbers(&mut value) { serde_json::from_value(value).map_err(malformed) } else { Err(malformed(first)) }
    })
}

/// Rewrites every number with a zero fraction as an integer; whether any was.
fn whole_numbers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            let whole = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15);
            if let Some(f) = whole {
                *value = Value::from(f as i64);
            }
            whole.is_some()
        }
        Value::Array(items) => items.iter_mut().fold(false, |any, v| whole_numbers(v) | any),
        Value::Object(map) => map.values_mut().fold(false, |any, v| whole_numbers(v) | any),
        _ => false,
    }
}

pub(super) fn require(value: &str, field: &str) -> ApiResult<()> {
    if value.trim().is_empty() { Err(ApiError::bad_request(format!("`{field}` is required"))) } else { Ok(()) }
}

/// `POST /worker/fetch`: jobs of the worker's stones, locked to it.
#[utoipa::path(post, path = "/worker/fetch", tag = "worker", request_body = FetchRequest,
    responses(
        (status = 200, description = "The jobs locked to the worker (none when none came within `waitTime`)", body = Vec<LockedJob>),
        (status = 400, description = "A malformed request: no topics, `maxJobs` outside 1–1000, a lock under 100 ms, a wait over a minute", body = ErrorBody),
    ))]
async fn fetch(State(rt): State<Runtime>, Body(body): Body) -> ApiResult<Json<Vec<LockedJob>>> {
    let req: FetchRequest = parse(&body)?;
    require(&req.worker_id, "workerId")?;
    if req.topics.is_empty() || req.topics.iter().any(|t| t.trim().is_empty()) {
        return Err(ApiError::bad_request("`topics` must name at least one stone, and no empty names"));
    }
    if !(1..=1000).contains(&req.max_jobs) {
        return Err(ApiError::bad_request(format!("`maxJobs` must be from 1 to 1000, not {}", req.max_jobs)));
    }
    lock_bound(req.lock_duration)?;
    if req.wait_time > MAX_WAIT_MS {
        return Err(ApiError::bad_request(format!(
            "`waitTime` must be at most {MAX_WAIT_MS} ms, not {}",
            req.wait_time
        )));
    }
    let topics: Vec<&str> = req.topics.iter().map(String::as_str).collect();
    let wanted = Wanted {
        topics: &topics,
        worker: &req.worker_id,
        max: u64::from(req.max_jobs),
        lock: Duration::from_millis(req.lock_duration),
        wait: Duration::from_millis(req.wait_time),
        action: None,
    };
    let jobs = rt.fetch_jobs(wanted).await?;
    Ok(Json(jobs.into_iter().map(locked).collect()))
}

fn locked(row: JobRow) -> LockedJob {
    crate::runtime::jobs::locked_job(row)
}

/// A lock lasts from 100 ms to a day.
fn lock_bound(ms: u64) -> ApiResult<()> {
    if (100..=MAX_LOCK_MS).contains(&ms) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("`lockDuration` must be from 100 to {MAX_LOCK_MS} ms, not {ms}")))
    }
}

/// The job, if `worker` holds its lock; 404 for a job that is not queued, 409 for a lock
/// held by another worker (or by none).
pub(super) async fn held(rt: &Runtime, id: &str, worker: &str) -> ApiResult<JobLease> {
    require(worker, "workerId")?;
    holding(id, rt.store().leases(&[id]).await?.pop(), worker)
}

fn holding(id: &str, job: Option<JobLease>, worker: &str) -> ApiResult<JobLease> {
    crate::runtime::lock_held(id, job.as_ref().map(|j| j.owner.as_deref()), worker)?;
    job.ok_or_else(|| ApiError::not_found(format!("no open job {id}")))
}

/// Applies the stone event `worker` reports on the job it holds (checked again where it is
/// applied: [`RuntimeError::InUse`] when the lock passed to another worker).
pub(super) async fn report(rt: &Runtime, job: &JobLease, worker: &str, event: StoneEvent) -> Result<(), RuntimeError> {
    let command = Command::Stone { record: job.record_id.clone(), event };
    rt.apply_held(&job.instance_id, command, worker).await
}

/// The worker protocol's refusal: a closed job or one the engine no longer waits for is a
/// conflict with the job's state.
fn refusal(e: RuntimeError) -> ApiError {
    match e {
        RuntimeError::NotFound(m) => ApiError::conflict(m),
        other => other.into(),
    }
}

async fn apply(rt: &Runtime, job: &JobLease, worker: &str, event: StoneEvent) -> ApiResult<()> {
    report(rt, job, worker, event).await.map_err(refusal)
}

/// `POST /worker/jobs/{id}/event`: a lifecycle event of a job the worker holds.
#[utoipa::path(post, path = "/worker/jobs/{id}/event", tag = "worker", params(("id" = String, Path, description = "The job id")),
    request_body = EventReport,
    responses(
        (status = 204, description = "Applied, or a repeat of the event that closed the job"),
    ))]
async fn event(State(rt): State<Runtime>, Path(id): Path<String>, Body(body): Body) -> ApiResult<StatusCode> {
    let report: EventReport = parse(&body)?;
    require(&report.worker_id, "workerId")?;
    let job = rt.store().leases(&[id.as_str()]).await?.pop();
    let worker = report.worker_id.clone();
    if let Some((job, event)) = checked(&rt, &id, job, report).await? {
        apply(&rt, &job, &worker, event).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The job and event to apply, or `None` for a harmless repeat of the event that closed it.
async fn checked(
    rt: &Runtime,
    id: &str,
    job: Option<JobLease>,
    report: EventReport,
) -> ApiResult<Option<(JobLease, StoneEvent)>> {
    let closed = job.is_none();
    match holding(id, job, &report.worker_id) {
        Ok(job) => Ok(Some((job, report.event().map_err(ApiError::bad_request)?))),
        // The job may have closed with this very event: a repeat is harmless.
        Err(refused) if closed => match rt.task(id).await? {
            Some(task) if task.record.status.text() == report.status => Ok(None),
            Some(task) => Err(ApiError::conflict(format!("job {id} is closed; its task is `{}`", task.record.status))),
            None => Err(refused),
        },
        Err(refused) => Err(refused),
    }
}

/// `POST /worker/events`: many events in one request, applied together (they share a
/// commit), one per job; answers each event's outcome in order.
#[utoipa::path(post, path = "/worker/events", tag = "worker", request_body = EventBatch,
    responses(
        (status = 200, description = "Each event's outcome, in order", body = Vec<EventOutcome>),
        (status = 400, description = "A malformed batch, or more than 10,000 events", body = ErrorBody),
    ))]
async fn events(State(rt): State<Runtime>, Body(body): Body) -> ApiResult<Json<Vec<EventOutcome>>> {
    let batch: EventBatch = parse(&body)?;
    require(&batch.worker_id, "workerId")?;
    if batch.events.len() > 10_000 {
        return Err(ApiError::bad_request(format!("at most 10000 events at once, not {}", batch.events.len())));
    }
    // A malformed event refuses the batch, before any is applied; a refusal of one event for
    // the state of its job is that event's outcome.
    if let Some(e) = batch.events.iter().find(|e| e.progress.is_some_and(|p| p > 100)) {
        return Err(ApiError::bad_request(format!(
            "`progress` must be from 0 to 100, not {:?} (job {})",
            e.progress.unwrap_or_default(),
            e.job_id
        )));
    }
    let ids: Vec<&str> = batch.events.iter().map(|e| e.job_id.as_str()).collect();
    let mut queued: HashMap<String, JobLease> =
        rt.store().leases(&ids).await?.into_iter().map(|j| (j.record_id.clone(), j)).collect();
    let mut seen = HashSet::new();
    let mut outcomes = Vec::with_capacity(batch.events.len());
    let mut applying = tokio::task::JoinSet::new();
    for (i, e) in batch.events.into_iter().enumerate() {
        let id = e.job_id.clone();
        outcomes.push(EventOutcome { job_id: id.clone(), status: StatusCode::NO_CONTENT.as_u16(), message: None });
        let checked = if seen.insert(id.clone()) {
            checked(&rt, &id, queued.remove(&id), e.report(&batch.worker_id)).await
        } else {
            Err(ApiError::bad_request(format!("job {id} is named twice in one batch; send its later event after")))
        };
        match checked {
            Ok(Some((job, event))) => {
                let (rt, worker) = (rt.clone(), batch.worker_id.clone());
                applying.spawn(async move { (i, apply(&rt, &job, &worker, event).await) });
            }
            Ok(None) => {}
            Err(refused) => refuse(&mut outcomes[i], refused),
        }
    }
    while let Some(done) = applying.join_next().await {
        let (i, result) = done.map_err(|e| ApiError::from(RuntimeError::NotCommitted(e.to_string())))?;
        if let Err(refused) = result {
            refuse(&mut outcomes[i], refused);
        }
    }
    Ok(Json(outcomes))
}

fn refuse(outcome: &mut EventOutcome, refused: ApiError) {
    let (status, message) = refused.parts();
    outcome.status = status.as_u16();
    outcome.message = Some(message);
}
/// `POST /worker/jobs/{id}/progress`: how far a monitored job is.
#[utoipa::path(post, path = "/worker/jobs/{id}/progress", tag = "worker", params(("id" = String, Path, description = "The job id")),
    request_body = ProgressReport,
    responses(
        (status = 204, description = "Recorded"),
    ))]
async fn progress(State(rt): State<Runtime>, Path(id): Path<String>, Body(body): Body) -> ApiResult<StatusCode> {
    let report: ProgressReport = parse(&body)?;
    if report.progress > 100 {
        return Err(ApiError::bad_request(format!("`progress` must be from 0 to 100, not {}", report.progress)));
    }
    let job = held(&rt, &id, &report.worker_id).await?;
    apply(&rt, &job, &report.worker_id, StoneEvent::Progress(report.progress)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /worker/jobs/{id}/heartbeat`: the worker keeps the job for `lockDuration` more.
#[utoipa::path(post, path = "/worker/jobs/{id}/heartbeat", tag = "worker", params(("id" = String, Path, description = "The job id")),
    request_body = LockReport,
    responses(
        (status = 200, description = "The lock's new end", body = LockExtended),
    ))]
async fn heartbeat(
    State(rt): State<Runtime>,
    Path(id): Path<String>,
    Body(body): Body,
) -> ApiResult<Json<LockExtended>> {
    let report: LockReport = parse(&body)?;
    lock_bound(report.lock_duration.max(100))?;
    held(&rt, &id, &report.worker_id).await?;
    let until = now_ms() + report.lock_duration.max(100) as i64;
    rt.change_lease(&id, &report.worker_id, LeaseUpdate::Extend { until }).await.map_err(refusal)?;
    Ok(Json(LockExtended { locked_until: until }))
}

/// `POST /worker/jobs/{id}/fail`: the work failed; retried after a back-off while retries last.
#[utoipa::path(post, path = "/worker/jobs/{id}/fail", tag = "worker", params(("id" = String, Path, description = "The job id")),
    request_body = FailureReport,
    responses(
        (status = 204, description = "Retried later, or the task's action failed"),
    ))]
async fn fail(State(rt): State<Runtime>, Path(id): Path<String>, Body(body): Body) -> ApiResult<StatusCode> {
    let report: FailureReport = parse(&body)?;
    if report.retry_backoff > MAX_BACKOFF_MS {
        return Err(ApiError::bad_request(format!(
            "`retryBackoff` must be at most {MAX_BACKOFF_MS} ms (a week), not {}",
            report.retry_backoff
        )));
    }
    let job = held(&rt, &id, &report.worker_id).await?;
    let retries = report.retries.or(job.retries.map(|r| r - 1)).unwrap_or(0);
    fail_or_retry(&rt, &job, &report.worker_id, retries, report.retry_backoff, report.reason).await.map_err(refusal)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A worker's failure: with `retries` left the job is handed out again after `backoff_ms`;
/// with none the task's current action fails.
pub(super) async fn fail_or_retry(
    rt: &Runtime,
    job: &JobLease,
    worker: &str,
    retries: i64,
    backoff_ms: u64,
    reason: String,
) -> Result<(), RuntimeError> {
    let id = &job.record_id;
    if retries > 0 {
        let update = LeaseUpdate::Free { retries: Some(retries), available_at: now_ms() + backoff_ms as i64 };
        return rt.change_lease(id, worker, update).await;
    }
    report(rt, job, worker, StoneEvent::Fault(reason)).await
}

/// `POST /worker/jobs/{id}/release`: the worker hands the job back unfinished.
#[utoipa::path(post, path = "/worker/jobs/{id}/release", tag = "worker", params(("id" = String, Path, description = "The job id")),
    request_body = LockReport,
    responses(
        (status = 204, description = "Free for any worker at once"),
    ))]
async fn release(State(rt): State<Runtime>, Path(id): Path<String>, Body(body): Body) -> ApiResult<StatusCode> {
    let report: LockReport = parse(&body)?;
    held(&rt, &id, &report.worker_id).await?;
    let update = LeaseUpdate::Free { retries: None, available_at: now_ms() };
    rt.change_lease(&id, &report.worker_id, update).await.map_err(refusal)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_written_with_a_fraction_read_as_integers_and_fractions_stay_refused() {
        let lock: LockReport = parse(br#"{"workerId": "w", "lockDuration": 5000.0}"#).unwrap();
        assert_eq!(lock.lock_duration, 5000);
        let (status, message) =
            parse::<LockReport>(br#"{"workerId": "w", "lockDuration": 5000.5}"#).unwrap_err().parts();
        assert_eq!(status, axum::http::StatusCode::BAD_REQUEST);
        assert!(message.contains("5000.5"), "{message}");
        assert!(parse::<LockReport>(br#"{"workerId": "w", "lockDuration": -1.0}"#).is_err());
    }
}
