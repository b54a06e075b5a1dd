//! `GET /stuck`: work that has not moved for a while (an addition to the platform dialect,
//! for operators): stone jobs no worker took, stone tasks awaiting a callback, running
//! processes without a step, timers that did not fire.

use super::ApiResult;
use super::history::time_ago;
use crate::api::format::platform_date;
use crate::api::input::Query;
use crate::error::ErrorBody;
use crate::runtime::{Runtime, now_ms};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// How many of each kind a request lists at most.
const MAX_LIMIT: u64 = 1_000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct StuckQuery {
    /// Not moved for this long: `10m`, `2h` or `P1D` (default `10m`).
    after: Option<String>,
    /// Of each kind at most this many, oldest first (default 100, at most 1,000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
}

/// A stone job no one took.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct StuckJob {
    /// Its task record.
    task_id: String,
    process_instance_id: String,
    stone: String,
    /// What it asks of the stone (`start`, `monitor`, `rollback`, …).
    action: String,
    /// When it was queued (`yyyy-MM-dd HH:mm:ss`).
    queued_at: String,
    /// Seconds since.
    waiting_seconds: i64,
    /// Why it waits, as far as the server can tell.
    why: String,
}

/// A stone task whose stone waits for the outside system to call back.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct StuckCallback {
    task_id: String,
    process_instance_id: String,
    name: String,
    stone: Option<String>,
    status: String,
    /// When the task began.
    since: String,
    waiting_seconds: i64,
}

/// A running process whose last step is old.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct IdleProcess {
    process_instance_id: String,
    model_key: String,
    /// `running` or `debug`.
    process_status: String,
    start_time: String,
    /// When its last task began or ended.
    last_step: String,
    idle_seconds: i64,
}

/// A timer due before `since` that has not fired.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct OverdueTimer {
    /// Its task record (`start:KEY` for a timer start event's).
    timer_id: String,
    /// Its process instance (empty for a timer start event's).
    process_instance_id: String,
    /// The timer event's element.
    element: String,
    /// When it was due.
    due: String,
    /// Seconds since.
    late_seconds: i64,
    /// The server that leased it to fire it, if one holds it.
    held_by: Option<String>,
}

/// Work that has not moved since `since`, oldest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct StuckAnswer {
    /// The time nothing listed has moved since.
    since: String,
    jobs: Vec<StuckJob>,
    callbacks: Vec<StuckCallback>,
    processes: Vec<IdleProcess>,
    timers: Vec<OverdueTimer>,
    /// How many timers are set, due or not.
    pending_timers: u64,
}

/// `GET /stuck`: what has not moved for `after` (operators and administrators of every
/// tenant): the same lists the server's own sweep counts in `flowstone_stuck` and logs.
#[utoipa::path(get, path = "/stuck", tag = "platform", params(StuckQuery),
    responses(
        (status = 200, description = "Stuck jobs, awaited callbacks, idle processes and overdue timers, oldest first", body = StuckAnswer),
        (status = 400, description = "A malformed `after` or `limit`", body = ErrorBody),
        (status = 403, description = "The caller is not an operator or administrator of every tenant", body = ErrorBody),
    ))]
pub(super) async fn stuck(State(rt): State<Runtime>, Query(q): Query<StuckQuery>) -> ApiResult<Json<StuckAnswer>> {
    let now = now_ms();
    let before = time_ago(&Value::String(q.after.unwrap_or_else(|| "10m".into())), now, "after")?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(crate::error::ApiError::bad_request(format!(
            "`limit` must be between 1 and {MAX_LIMIT}, not {limit}"
        )));
    }
    let work = rt.stuck(before, limit).await?;
    let seconds = |since: i64| (now - since).max(0) / 1000;
    let jobs = work
        .stuck
        .jobs
        .iter()
        .map(|j| StuckJob {
            task_id: j.job.record_id.clone(),
            process_instance_id: j.instance_id.clone(),
            stone: j.job.stone.clone(),
            action: j.job.action.name().to_owned(),
            queued_at: platform_date(j.created_at),
            waiting_seconds: seconds(j.created_at),
            why: work.why_waiting(&j.job.stone),
        })
        .collect();
    let callbacks = work
        .stuck
        .callbacks
        .iter()
        .map(|t| StuckCallback {
            task_id: t.record.id.clone(),
            process_instance_id: t.instance_id.clone(),
            name: t.record.name.clone(),
            stone: t.record.stone.clone(),
            status: t.record.status.text(),
            since: platform_date(t.record.create_time),
            waiting_seconds: seconds(t.record.create_time),
        })
        .collect();
    let processes = work
        .stuck
        .instances
        .iter()
        .map(|(row, last)| IdleProcess {
            process_instance_id: row.id.clone(),
            model_key: row.model_key.clone(),
            process_status: row.status.clone(),
            start_time: platform_date(row.start_time),
            last_step: platform_date(*last),
            idle_seconds: seconds(*last),
        })
        .collect();
    let timers = work
        .stuck
        .timers
        .iter()
        .map(|t| OverdueTimer {
            timer_id: t.record_id.clone(),
            process_instance_id: t.instance_id.clone(),
            element: t.element.clone(),
            due: platform_date(t.due),
            late_seconds: seconds(t.due),
            held_by: t.owner.clone(),
        })
        .collect();
    let pending_timers = work.stuck.pending_timers;
    Ok(Json(StuckAnswer { since: platform_date(before), jobs, callbacks, processes, timers, pending_timers }))
}
