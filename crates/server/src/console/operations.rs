//! The console's views across instances: incidents (failed stone tasks waiting for an
//! operator, and work that has not moved — jobs no worker takes, callbacks awaited, timers
//! overdue), with a one-click reRun; and the stones (jobs waiting per stone, workers present,
//! jobs held per holder, actions ended per minute).

use super::Session;
use super::html::{escape, page, percent};
use crate::api::format::platform_date;
use crate::error::ApiError;
use crate::runtime::{Runtime, now_ms};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use flowstone_store::{InstanceFilter, Page};
use std::fmt::Write;

/// Instances in debug mode looked at, and items of each stuck kind listed, at most.
const LISTED: u64 = 100;
/// What has not moved for this long is an incident.
const STUCK_AFTER_MS: i64 = 10 * 60 * 1000;

fn instance_link(id: &str) -> String {
    format!("<a href=\"/console/instances/{}\">{}</a>", percent(id), escape(id))
}

/// `GET /console/incidents`.
pub(crate) async fn incidents(State(rt): State<Runtime>, session: Session) -> Response {
    match incidents_page(&rt, &session.csrf).await {
        Ok(body) => page("Incidents", session.who(), &body).into_response(),
        Err(e) => session.error(e),
    }
}

async fn incidents_page(rt: &Runtime, csrf: &str) -> Result<String, ApiError> {
    let store = rt.store();
    let filter = InstanceFilter { status: Some("debug".into()), ..InstanceFilter::default() };
    let (debugging, total) = store.list_instances(&filter, Page { offset: 0, limit: LISTED }).await?;
    let mut out = format!("<h1>Incidents</h1><h2>Failed stone tasks waiting for an operator ({total})</h2>");
    out.push_str(
        "<table id=\"failed\"><thead><tr><th>Process instance</th><th>Task</th><th>Stone</th><th>Status</th><th>Since</th><th>Reason</th><th></th></tr></thead><tbody>",
    );
    for instance in &debugging {
        let tasks = store.tasks_of_instance(&instance.id).await?;
        for r in super::actions::failed_stones(&tasks) {
            let retry = super::html::button(&format!("/console/tasks/{}/rerun", percent(&r.id)), "reRun", csrf, "");
            let _ = write!(
                out,
                "<tr data-task=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"error\">{}</td><td>{retry}</td></tr>",
                escape(&r.id),
                instance_link(&instance.id),
                escape(&r.name),
                escape(r.stone.as_deref().unwrap_or("")),
                escape(&r.status.text()),
                platform_date(r.end_time.unwrap_or(r.create_time)),
                escape(r.reason.as_deref().unwrap_or(""))
            );
        }
    }
    out.push_str("</tbody></table>");
    let work = rt.stuck(now_ms() - STUCK_AFTER_MS, LISTED).await?;
    let stuck = &work.stuck;
    let _ = write!(
        out,
        "<h2>Stone jobs no worker took for 10 minutes ({})</h2><table id=\"stuck-jobs\"><thead><tr><th>Process instance</th><th>Stone</th><th>Action</th><th>Queued</th><th>Why</th></tr></thead><tbody>",
        stuck.jobs.len()
    );
    for job in &stuck.jobs {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            instance_link(&job.instance_id),
            escape(&job.job.stone),
            job.job.action.name(),
            platform_date(job.created_at),
            escape(&work.why_waiting(&job.job.stone))
        );
    }
    let _ = write!(
        out,
        "</tbody></table><h2>Callbacks awaited for 10 minutes ({})</h2><table id=\"stuck-callbacks\"><thead><tr><th>Process instance</th><th>Task</th><th>Stone</th><th>Since</th></tr></thead><tbody>",
        stuck.callbacks.len()
    );
    for task in &stuck.callbacks {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            instance_link(&task.instance_id),
            escape(&task.record.name),
            escape(task.record.stone.as_deref().unwrap_or("")),
            platform_date(task.record.create_time)
        );
    }
    let _ = write!(
        out,
        "</tbody></table><h2>Timers overdue by 10 minutes ({} of {} set)</h2><table id=\"stuck-timers\"><thead><tr><th>Process instance</th><th>Element</th><th>Due</th><th>Held by</th></tr></thead><tbody>",
        stuck.timers.len(),
        stuck.pending_timers
    );
    for timer in &stuck.timers {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if timer.instance_id.is_empty() { escape(&timer.record_id) } else { instance_link(&timer.instance_id) },
            escape(&timer.element),
            platform_date(timer.due),
            escape(timer.owner.as_deref().unwrap_or("nobody"))
        );
    }
    out.push_str("</tbody></table>");
    Ok(out)
}

/// `GET /console/stones`: stone jobs waiting per stone and action, the workers present, the
/// jobs held per holder and stone, and each stone's actions ended per minute over the hour.
pub(crate) async fn stones(State(rt): State<Runtime>, session: Session) -> Response {
    let now = now_ms();
    let waiting = match rt.store().waiting_jobs(now).await {
        Ok(waiting) => waiting,
        Err(e) => return session.error(e.into()),
    };
    let mut out = String::from(
        "<h1>Stones</h1><h2>Jobs waiting for a stone</h2><table id=\"waiting\"><thead><tr><th>Stone</th><th>Action</th><th>Waiting</th><th>Oldest for</th></tr></thead><tbody>",
    );
    for (stone, action, count, oldest) in &waiting {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{count}</td><td>{} s</td></tr>",
            escape(stone),
            escape(action),
            (now - oldest).max(0) / 1000
        );
    }
    let present = rt.board().roster.present();
    let _ = write!(
        out,
        "</tbody></table><h2>Workers present ({})</h2><table id=\"workers\"><thead><tr><th>Worker</th><th>Stones</th><th>Fetching now</th><th>Last fetch</th></tr></thead><tbody>",
        present.len()
    );
    for (worker, topics, fetching, since) in &present {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} s ago</td></tr>",
            escape(worker),
            escape(&topics.join(", ")),
            if *fetching { "yes" } else { "no" },
            since.as_secs()
        );
    }
    out.push_str("</tbody></table><p>Stones run in-process take their jobs at once and are not listed as waiting.</p>");
    let held = match rt.store().held_jobs(now).await {
        Ok(held) => held,
        Err(e) => return session.error(e.into()),
    };
    out.push_str(
        "<h2>Jobs held</h2><table id=\"held\"><thead><tr><th>Held by</th><th>Stone</th><th>Jobs</th><th>Latest lease ends in</th></tr></thead><tbody>",
    );
    for (owner, stone, count, until) in &held {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{count}</td><td>{} s</td></tr>",
            escape(owner),
            escape(stone),
            (until - now).max(0) / 1000
        );
    }
    out.push_str(
        "</tbody></table><h2>Throughput on this server</h2><table id=\"throughput\"><thead><tr><th>Stone</th><th>Last minute</th><th>Last hour</th><th>Per minute, the hour up to now</th></tr></thead><tbody>",
    );
    for (stone, counts) in rt.metrics().throughput().hour(now.div_euclid(60_000)) {
        let hour: u32 = counts.iter().sum();
        let last = counts.last().copied().unwrap_or(0);
        let _ =
            write!(out, "<tr><td>{}</td><td>{last}</td><td>{hour}</td><td>{}</td></tr>", escape(&stone), bars(&counts));
    }
    out.push_str("</tbody></table><p>Actions of stone tasks ended (each start, monitor, rollback … counts once). Totals since the server started, for a monitoring system to rate: <code>flowstone_jobs_finished_total</code> at <code>/metrics</code>.</p>");
    page("Stones", session.who(), &out).into_response()
}

/// Counts per minute as a small bar chart (SVG), the latest minute right; each bar says its
/// count on hover, and a minute without any has none.
fn bars(counts: &[u32]) -> String {
    const HEIGHT: f64 = 32.0;
    let top = f64::from(counts.iter().copied().max().unwrap_or(0).max(1));
    let width = counts.len() * 4;
    let mut svg = format!(
        "<svg class=\"bars\" width=\"{width}\" height=\"{HEIGHT}\" viewBox=\"0 0 {width} {HEIGHT}\" role=\"img\" aria-label=\"actions per minute\">\
<line x1=\"0\" y1=\"{HEIGHT}\" x2=\"{width}\" y2=\"{HEIGHT}\" stroke=\"#cbd5e1\"/>"
    );
    for (i, count) in counts.iter().enumerate().filter(|(_, count)| **count > 0) {
        let height = (f64::from(*count) / top * HEIGHT).max(1.0);
        let ago = counts.len() - 1 - i;
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{:.1}\" width=\"3\" height=\"{height:.1}\" fill=\"#2563eb\"><title>{count} ({ago} min ago)</title></rect>",
            i * 4,
            HEIGHT - height
        );
    }
    svg + "</svg>"
}
