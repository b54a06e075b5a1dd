//! The console's pages: the instances, paged and filtered in the store, with a count per
//! status; one instance with its diagram, its task records and its variables.

use super::Session;
use super::diagram;
use super::html::{escape, page};
use crate::api::format::platform_date;
use crate::error::ApiError;
use crate::runtime::Runtime;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use flowstone_store::{InstanceFilter, Page};
use serde::Deserialize;
use std::fmt::Write;

/// Instances per page.
const PER_PAGE: u64 = 50;
/// The engine statuses a list filters by.
const STATUSES: [&str; 5] = ["running", "debug", "completed", "failed", "canceled"];

/// What the instance list is asked for.
#[derive(Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    model: Option<String>,
    #[serde(rename = "businessKey")]
    business_key: Option<String>,
    page: Option<u64>,
}

fn nonempty(text: Option<&String>) -> Option<String> {
    text.map(|t| t.trim()).filter(|t| !t.is_empty()).map(str::to_owned)
}

/// `GET /console`: the processes, newest first.
pub(crate) async fn instances(State(rt): State<Runtime>, session: Session, RawQuery(query): RawQuery) -> Response {
    let q = match serde_urlencoded::from_str::<ListQuery>(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return session.error(ApiError::bad_request(format!("a malformed filter: {e}"))),
    };
    match list(&rt, &q).await {
        Ok(body) => page("Instances", session.who(), &body).into_response(),
        Err(e) => session.error(e),
    }
}

async fn list(rt: &Runtime, q: &ListQuery) -> Result<String, ApiError> {
    let status = nonempty(q.status.as_ref());
    if let Some(status) = status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(ApiError::bad_request(format!("`{status}` is no status; one of {}", STATUSES.join(", "))));
    }
    let filter = InstanceFilter {
        kind: Some("process".into()),
        model_key: nonempty(q.model.as_ref()),
        business_key: nonempty(q.business_key.as_ref()),
        ..InstanceFilter::default()
    };
    let store = rt.store();
    let number = q.page.unwrap_or(1).max(1);
    let page = Page { offset: (number - 1).saturating_mul(PER_PAGE), limit: PER_PAGE };
    let shown = InstanceFilter { status: status.clone(), ..filter.clone() };
    let (rows, total) = store.list_instances(&shown, page).await?;
    // The filters other than the status, kept by every link.
    let kept: String = [("model", &filter.model_key), ("businessKey", &filter.business_key)]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("&{k}={}", percent(v))))
        .collect();
    let mut out = String::from("<h1>Instances</h1><div class=\"counts\">");
    let none = Page { offset: 0, limit: 0 };
    let all = store.list_instances(&filter, none).await?.1;
    let on = |s: Option<&str>| if status.as_deref() == s { " class=\"on\"" } else { "" };
    let _ = write!(out, "<a href=\"/console?{}\"{}>all {all}</a>", kept.trim_start_matches('&'), on(None));
    for s in STATUSES {
        let count = store.list_instances(&InstanceFilter { status: Some(s.into()), ..filter.clone() }, none).await?.1;
        let _ = write!(out, "<a href=\"/console?status={s}{kept}\"{}>{s} {count}</a>", on(Some(s)));
    }
    out.push_str("</div>");
    let value = |v: &Option<String>| escape(v.as_deref().unwrap_or(""));
    let _ = write!(
        out,
        "<form class=\"filter\" method=\"get\" action=\"/console\"><input type=\"hidden\" name=\"status\" value=\"{}\">\
<input name=\"model\" placeholder=\"model key\" value=\"{}\"><input name=\"businessKey\" placeholder=\"business key\" value=\"{}\">\
<button>Filter</button></form>",
        value(&status),
        value(&filter.model_key),
        value(&filter.business_key)
    );
    out.push_str(
        "<table id=\"instances\"><thead><tr><th>Instance</th><th>Name</th><th>Model</th><th>Status</th><th>Business key</th><th>Started</th><th>Ended</th></tr></thead><tbody>",
    );
    for row in &rows {
        let _ = write!(
            out,
            "<tr><td><a href=\"/console/instances/{}\">{}</a></td><td>{}</td><td>{}</td><td class=\"status s-{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            percent(&row.id),
            escape(&row.id),
            escape(&row.name),
            escape(&row.model_key),
            escape(&row.status),
            escape(&row.status),
            escape(row.business_key.as_deref().unwrap_or("")),
            platform_date(row.start_time),
            row.end_time.map(platform_date).unwrap_or_default()
        );
    }
    out.push_str("</tbody></table>");
    let pages = total.div_ceil(PER_PAGE).max(1);
    let status_arg = status.as_deref().map_or(String::new(), |s| format!("&status={s}"));
    out.push_str("<div class=\"pager\">");
    if number > 1 {
        let _ = write!(out, "<a href=\"/console?page={}{status_arg}{kept}\">← newer</a>", number - 1);
    }
    let _ = write!(out, "<span>page {number} of {pages} ({total} instances)</span>");
    if number < pages {
        let _ = write!(out, "<a href=\"/console?page={}{status_arg}{kept}\">older →</a>", number + 1);
    }
    out.push_str("</div>");
    Ok(out)
}

/// Text safe in a URL's path segment or query value (the unreserved characters stay).
fn percent(text: &str) -> String {
    const KEPT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(text, KEPT).to_string()
}

/// `GET /console/instances/{id}`: one instance — its diagram with each element's state, its
/// task records, its variables, and the instance it works for.
pub(crate) async fn instance(State(rt): State<Runtime>, session: Session, Path(id): Path<String>) -> Response {
    match one(&rt, &id).await {
        Ok((title, body)) => page(&title, session.who(), &body).into_response(),
        Err(e) => session.error(e),
    }
}

async fn one(rt: &Runtime, id: &str) -> Result<(String, String), ApiError> {
    let store = rt.store();
    let row = store.instance(id).await?.ok_or_else(|| ApiError::not_found(format!("no instance {id}")))?;
    let tasks = store.tasks_of_instance(id).await?;
    let mut out = String::new();
    let _ = write!(
        out,
        "<h1>{} <span class=\"status s-{}\" id=\"status\">{}</span></h1><table><tbody>\
<tr><th>Instance</th><td>{}</td></tr><tr><th>Model</th><td>{} (version {})</td></tr>\
<tr><th>Business key</th><td>{}</td></tr><tr><th>Started</th><td>{}</td></tr><tr><th>Ended</th><td>{}</td></tr>{}</tbody></table>",
        escape(&row.name),
        escape(&row.status),
        escape(&row.status),
        escape(&row.id),
        escape(&row.model_key),
        row.version,
        escape(row.business_key.as_deref().unwrap_or("")),
        platform_date(row.start_time),
        row.end_time.map(platform_date).unwrap_or_default(),
        row.failure
            .as_deref()
            .map_or(String::new(), |f| format!("<tr><th>Failure</th><td class=\"error\">{}</td></tr>", escape(f)))
    );
    if let Some(model) = rt.model(&row.model_id).await? {
        let def = rt.definition(&model)?;
        let mut states = diagram::states(tasks.iter().map(|t| &t.record));
        // Events keep no records: the start ran as the instance began, and the end it reached.
        let ran = diagram::State { mark: diagram::Mark::Done, runs: 1 };
        states.entry(def.node(def.start).id.clone()).or_insert(ran);
        if let Some(end) = &row.end_element {
            states.entry(end.clone()).or_insert(ran);
        }
        let _ = write!(out, "<h2>Diagram</h2><div class=\"diagram-box\">{}</div>", diagram::svg(&def, &states));
    }
    out.push_str(
        "<h2>Tasks</h2><table id=\"tasks\"><thead><tr><th>Element</th><th>Name</th><th>Status</th><th>Began</th><th>Ended</th><th>Reason</th></tr></thead><tbody>",
    );
    for task in &tasks {
        let r = &task.record;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.element),
            escape(&r.name),
            escape(&r.status.text()),
            platform_date(r.create_time),
            r.end_time.map(platform_date).unwrap_or_default(),
            escape(r.reason.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody></table>");
    let variables = serde_json::from_str::<serde_json::Value>(&row.variables)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| row.variables.clone());
    let _ = write!(out, "<h2>Variables</h2><pre id=\"variables\">{}</pre>", escape(&variables));
    Ok((row.name.clone(), out))
}
