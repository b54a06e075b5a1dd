//! The console's pages: the instances, paged and filtered in the store, with a count per
//! status; one instance with its diagram, its task records and its variables.

use super::diagram;
use super::html::{button, escape, page, percent};
use super::{Session, found};
use crate::api::format::platform_date;
use crate::error::ApiError;
use crate::runtime::Runtime;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use flowstone_engine::TaskStatus;
use flowstone_model::Definition;
use flowstone_store::{InstanceFilter, ModelQuery, Page, TextFilter, UserTaskQuery, UserTaskRow, WaitingFor};
use serde::Deserialize;
use std::fmt::Write;

/// Instances per page.
const PER_PAGE: u64 = 50;
/// Counts stop here ("10000+"): an exact count over millions of rows is a scan of them all.
const COUNTED: u64 = 10_000;
/// The engine statuses a list filters by.
const STATUSES: [&str; 5] = ["running", "debug", "completed", "failed", "canceled"];

/// What the instance list is asked for.
#[derive(Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    model: Option<String>,
    version: Option<String>,
    #[serde(rename = "businessKey")]
    business_key: Option<String>,
    tenant: Option<String>,
    /// Started at or after (a date, or a date and time, in the server's time zone).
    from: Option<String>,
    /// Started before (a date means before its end).
    to: Option<String>,
    waiting: Option<String>,
    page: Option<u64>,
}

fn nonempty(text: Option<&String>) -> Option<String> {
    text.map(|t| t.trim()).filter(|t| !t.is_empty()).map(str::to_owned)
}

/// The moment a list filter's `date` or `dateTtime` names, in milliseconds, in the server's
/// time zone (as the list shows its times); a date alone is its first moment, or with
/// `end` the first moment of the day after.
fn moment(name: &str, text: &str, end: bool) -> Result<i64, ApiError> {
    let wrong = |e: &dyn std::fmt::Display| {
        ApiError::bad_request(format!("`{name}` is not a date (2026-12-05) or a date and time (2026-12-05T14:30): {e}"))
    };
    let civil = match text.parse::<jiff::civil::DateTime>() {
        Ok(at) => at,
        Err(e) => {
            let day = text.parse::<jiff::civil::Date>().map_err(|_| wrong(&e))?;
            if end { day.tomorrow().map_err(|e| wrong(&e))?.into() } else { day.into() }
        }
    };
    let at = civil.to_zoned(jiff::tz::TimeZone::system()).map_err(|e| wrong(&e))?;
    Ok(at.timestamp().as_millisecond())
}

/// The store's filter for what `q` asks; the status apart, as the counts per status share
/// the rest.
async fn filter_of(rt: &Runtime, q: &ListQuery) -> Result<InstanceFilter, ApiError> {
    let model_key = nonempty(q.model.as_ref());
    let model_id = match (nonempty(q.version.as_ref()), &model_key) {
        (None, _) => None,
        (Some(_), None) => return Err(ApiError::bad_request("a version is of a model: give the model key too")),
        (Some(version), Some(key)) => {
            let number: i64 = version
                .parse()
                .map_err(|_| ApiError::bad_request(format!("the version `{version}` is not a whole number")))?;
            let query = ModelQuery {
                key: TextFilter { equals: Some(key.clone()), like: None },
                version: Some(number),
                ..ModelQuery::default()
            };
            let (models, _) = rt.store().query_models(&query, Page { offset: 0, limit: 1 }).await?;
            // No such version: a filter nothing passes, as a search for it finds nothing.
            Some(models.into_iter().next().map_or_else(String::new, |m| m.id))
        }
    };
    let waiting_for = match nonempty(q.waiting.as_ref()) {
        None => None,
        Some(name) => Some(WaitingFor::parse(&name).ok_or_else(|| {
            let names: Vec<&str> = WaitingFor::ALL.iter().map(|w| w.name()).collect();
            ApiError::bad_request(format!("`{name}` is nothing an instance waits for; one of {}", names.join(", ")))
        })?),
    };
    let started_from = nonempty(q.from.as_ref()).map(|t| moment("from", &t, false)).transpose()?;
    let started_before = nonempty(q.to.as_ref()).map(|t| moment("to", &t, true)).transpose()?;
    Ok(InstanceFilter {
        kind: Some("process".into()),
        model_key,
        model_id,
        business_key: nonempty(q.business_key.as_ref()),
        tenant_id: nonempty(q.tenant.as_ref()),
        started_from,
        started_before,
        waiting_for,
        ..InstanceFilter::default()
    })
}

/// `GET /console`: the processes, newest first.
pub(crate) async fn instances(State(rt): State<Runtime>, session: Session, RawQuery(query): RawQuery) -> Response {
    let q = match serde_urlencoded::from_str::<ListQuery>(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return session.error(ApiError::bad_request(format!("a malformed filter: {e}"))),
    };
    match list(&rt, &q, &session.csrf).await {
        Ok(body) => page("Instances", session.who(), &body).into_response(),
        Err(e) => session.error(e),
    }
}

async fn list(rt: &Runtime, q: &ListQuery, csrf: &str) -> Result<String, ApiError> {
    let status = nonempty(q.status.as_ref());
    if let Some(status) = status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(ApiError::bad_request(format!("`{status}` is no status; one of {}", STATUSES.join(", "))));
    }
    let filter = filter_of(rt, q).await?;
    let store = rt.store();
    let number = q.page.unwrap_or(1).max(1);
    let page = Page { offset: (number - 1).saturating_mul(PER_PAGE), limit: PER_PAGE };
    let shown = InstanceFilter { status: status.clone(), ..filter.clone() };
    // One more than a page says whether an older page exists.
    let mut rows = store.instances_page(&shown, Page { limit: PER_PAGE + 1, ..page }).await?;
    let older = rows.len() as u64 > PER_PAGE;
    rows.truncate(PER_PAGE as usize);
    // The filters other than the status, as asked, kept by every link and shown in the form.
    let asked = [
        ("model", nonempty(q.model.as_ref())),
        ("version", nonempty(q.version.as_ref())),
        ("businessKey", nonempty(q.business_key.as_ref())),
        ("tenant", nonempty(q.tenant.as_ref())),
        ("from", nonempty(q.from.as_ref())),
        ("to", nonempty(q.to.as_ref())),
        ("waiting", nonempty(q.waiting.as_ref())),
    ];
    let kept: String = asked.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("&{k}={}", percent(v)))).collect();
    let value =
        |name: &str| escape(asked.iter().find(|(k, _)| *k == name).and_then(|(_, v)| v.as_deref()).unwrap_or(""));
    let mut out = String::from("<h1>Instances</h1><div class=\"counts\">");
    let counted = |n: u64| if n >= COUNTED { format!("{COUNTED}+") } else { n.to_string() };
    let all = counted(store.count_instances(&filter, COUNTED).await?);
    let on = |s: Option<&str>| if status.as_deref() == s { " class=\"on\"" } else { "" };
    let _ = write!(out, "<a href=\"/console?{}\"{}>all {all}</a>", kept.trim_start_matches('&'), on(None));
    for s in STATUSES {
        let count =
            store.count_instances(&InstanceFilter { status: Some(s.into()), ..filter.clone() }, COUNTED).await?;
        let _ = write!(out, "<a href=\"/console?status={s}{kept}\"{}>{s} {}</a>", on(Some(s)), counted(count));
    }
    out.push_str("</div>");
    let waits: String = WaitingFor::ALL
        .iter()
        .map(|w| {
            let chosen = if filter.waiting_for == Some(*w) { " selected" } else { "" };
            format!("<option value=\"{0}\"{chosen}>waiting for a {0}</option>", w.name())
        })
        .collect();
    let _ = write!(
        out,
        "<form class=\"filter\" method=\"get\" action=\"/console\"><input type=\"hidden\" name=\"status\" value=\"{}\">\
<input name=\"model\" placeholder=\"model key\" aria-label=\"model key\" value=\"{}\">\
<input name=\"version\" placeholder=\"version\" aria-label=\"version\" inputmode=\"numeric\" size=\"6\" value=\"{}\">\
<input name=\"businessKey\" placeholder=\"business key\" aria-label=\"business key\" value=\"{}\">\
<input name=\"tenant\" placeholder=\"tenant\" aria-label=\"tenant\" value=\"{}\">\
<label>started from <input type=\"datetime-local\" name=\"from\" value=\"{}\"></label>\
<label>to <input type=\"datetime-local\" name=\"to\" value=\"{}\"></label>\
<select name=\"waiting\" aria-label=\"waiting for\"><option value=\"\">waiting for anything</option>{waits}</select>\
<button>Filter</button></form>",
        escape(status.as_deref().unwrap_or("")),
        value("model"),
        value("version"),
        value("businessKey"),
        value("tenant"),
        value("from"),
        value("to"),
    );
    let _ = write!(
        out,
        "<form method=\"post\" action=\"/console/bulk\" id=\"bulk\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<select name=\"action\"><option value=\"cancel\">cancel</option><option value=\"delete\">delete</option>\
<option value=\"rerun\">reRun failed stones</option></select> <button>Apply to the selected</button>",
        escape(csrf)
    );
    out.push_str(
        "<table id=\"instances\"><thead><tr><th></th><th>Instance</th><th>Name</th><th>Model</th><th>Status</th><th>Business key</th><th>Started</th><th>Ended</th></tr></thead><tbody>",
    );
    for row in &rows {
        let _ = write!(
            out,
            "<tr><td><input type=\"checkbox\" name=\"id\" value=\"{}\"></td><td><a href=\"/console/instances/{}\">{}</a></td><td>{}</td><td>{}</td><td class=\"status s-{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&row.id),
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
    out.push_str(
        "</tbody></table></form><div id=\"progress\" hidden><progress></progress> <output role=\"status\" aria-live=\"polite\"></output>\
<table><thead><tr><th>Instance</th><th>Outcome</th></tr></thead><tbody></tbody></table></div><script src=\"/console/console.js\" defer></script>",
    );
    let status_arg = status.as_deref().map_or(String::new(), |s| format!("&status={s}"));
    out.push_str("<div class=\"pager\">");
    if number > 1 {
        let _ = write!(out, "<a href=\"/console?page={}{status_arg}{kept}\">← newer</a>", number - 1);
    }
    let _ = write!(out, "<span>page {number}</span>");
    if older {
        let _ = write!(out, "<a href=\"/console?page={}{status_arg}{kept}\">older →</a>", number + 1);
    }
    out.push_str("</div>");
    Ok(out)
}

/// `GET /console/instances/{id}`: one instance — its diagram with each element's state, its
/// task records, its variables — redrawn live as its changes are committed.
pub(crate) async fn instance(State(rt): State<Runtime>, session: Session, Path(id): Path<String>) -> Response {
    let row = match found(&rt, &id).await {
        Ok(row) => row,
        Err(e) => return session.error(e),
    };
    let live = match fragment(&rt, &row, &session.csrf).await {
        Ok(live) => live,
        Err(e) => return session.error(e),
    };
    let called =
        InstanceFilter { parent_id: Some(row.id.clone()), kind: Some("process".into()), ..InstanceFilter::default() };
    let called = match rt.store().instances_page(&called, Page { offset: 0, limit: CALLED }).await {
        Ok(called) => called,
        Err(e) => return session.error(e.into()),
    };
    let path = format!("/console/instances/{}", percent(&id));
    let body = format!(
        "<h1>{}</h1><table><tbody><tr><th>Instance</th><td>{}</td></tr><tr><th>Model</th><td>{} (version {})</td></tr>\
<tr><th>Business key</th><td>{}</td></tr><tr><th>Started</th><td>{}</td></tr>{}</tbody></table>\
<div id=\"live\" data-live=\"{path}/live\" data-events=\"{path}/events?since={}\">{live}</div><script src=\"/console/console.js\" defer></script>",
        escape(&row.name),
        escape(&row.id),
        escape(&row.model_key),
        row.version,
        escape(row.business_key.as_deref().unwrap_or("")),
        platform_date(row.start_time),
        kin(&row, &called),
        row.version,
    );
    page(&row.name, session.who(), &body).into_response()
}

/// The called processes an instance's page links at most (the newest).
const CALLED: u64 = 50;

/// The instances of an instance's family, linked: the process a rollback, cancel, delete or
/// called instance works for, the rollback, cancel and delete instances of a process, and the
/// processes it `called` (its call activities', newest first).
fn kin(row: &flowstone_store::InstanceRow, called: &[flowstone_store::InstanceRow]) -> String {
    let link = |id: &str| format!("<a href=\"/console/instances/{}\">{}</a>", percent(id), escape(id));
    let named = [
        ("Works for", &row.parent_id),
        ("Rollback", &row.rollback_id),
        ("Cancel", &row.cancel_id),
        ("Delete", &row.delete_id),
    ];
    let mut rows = format!("<tr><th>Kind</th><td>{}</td></tr>", escape(&row.kind));
    for (label, id) in named {
        if let Some(id) = id {
            let _ = write!(rows, "<tr><th>{label}</th><td>{}</td></tr>", link(id));
        }
    }
    if !called.is_empty() {
        let each: Vec<String> = called
            .iter()
            .map(|c| {
                format!(
                    "{} {} <span class=\"status s-{}\">{}</span>",
                    link(&c.id),
                    escape(&c.name),
                    escape(&c.status),
                    escape(&c.status)
                )
            })
            .collect();
        let _ = write!(rows, "<tr><th>Called</th><td>{}</td></tr>", each.join("<br>"));
    }
    rows
}

/// `GET /console/instances/{id}/live`: what changes of an instance's page, as the page
/// redraws it.
pub(crate) async fn live(State(rt): State<Runtime>, session: Session, Path(id): Path<String>) -> Response {
    let drawn = async { fragment(&rt, &found(&rt, &id).await?, &session.csrf).await };
    match drawn.await {
        Ok(live) => axum::response::Html(live).into_response(),
        Err(e) => session.error(e),
    }
}

/// A task record's parameters and outputs, folded away (none: nothing).
fn data(r: &flowstone_engine::TaskRecord) -> String {
    let shown = [("parameters", &r.params), ("outputs", &r.outputs)]
        .iter()
        .filter_map(|(what, value)| {
            let text = serde_json::to_string_pretty(value.as_ref()?).ok()?;
            Some(format!("<b>{what}</b><pre>{}</pre>", escape(&text)))
        })
        .collect::<String>();
    if shown.is_empty() { shown } else { format!("<details class=\"data\"><summary>show</summary>{shown}</details>") }
}

/// What can be done to an open user task, held as `person` says (with its form's fields): who
/// holds it, then claim or give back, delegate, resolve (for the delegate), complete — as
/// Flowable's task actions.
fn user_task_buttons(path: &str, person: Option<(&UserTaskRow, &str)>, csrf: &str) -> String {
    let (person, form) = (person.map(|(p, _)| p), person.map_or("", |(_, f)| f));
    let mut out = String::new();
    let assignee = person.and_then(|p| p.assignee.as_deref());
    if let Some(p) = person {
        let held = [("assignee", assignee), ("owner", p.owner.as_deref()), ("delegation", p.delegation.as_deref())];
        let said: Vec<String> =
            held.iter().filter_map(|(k, v)| v.map(|v| format!("{k} <b>{}</b>", escape(v)))).collect();
        let said = if said.is_empty() { "nobody has claimed it".to_owned() } else { said.join(", ") };
        let _ = write!(out, "<p class=\"held\">{said}</p>");
    }
    out.push_str(&match assignee {
        None => button(&format!("{path}/claim"), "Claim", csrf, ""),
        Some(_) => button(&format!("{path}/unclaim"), "Give back (unclaim)", csrf, ""),
    });
    let to = "<input name=\"to\" placeholder=\"user\" aria-label=\"delegate to\" size=\"10\">";
    out.push_str(&button(&format!("{path}/delegate"), "Delegate", csrf, to));
    if person.and_then(|p| p.delegation.as_deref()) == Some("pending") {
        out.push_str(&button(&format!("{path}/resolve"), "Resolve", csrf, ""));
    }
    out.push_str(&super::forms::complete_button(&format!("{path}/complete"), form, csrf));
    out
}

/// What an operator can do to a task record of an instance standing at `status`, running
/// `def`; `latest` when no later record of its element exists; `person` is the record's user
/// task, when it is one, with its form's fields.
fn task_buttons(
    r: &flowstone_engine::TaskRecord,
    latest: bool,
    status: &str,
    def: Option<&Definition>,
    person: Option<(&UserTaskRow, &str)>,
    csrf: &str,
) -> String {
    let path = format!("/console/tasks/{}", percent(&r.id));
    let open = r.end_time.is_none();
    if open && r.status == TaskStatus::Active {
        return user_task_buttons(&path, person, csrf);
    }
    // Its record ends as it is made: the latest one of the gateway still waits for a choice.
    if latest && r.status == TaskStatus::GatewayFailed && status == "debug" {
        // bk-sops' skip_exg: the operator takes one of the gateway's flows.
        let flows = def.and_then(|d| d.node_by_element(&r.element).map(|n| (d, n))).map_or(String::new(), |(d, n)| {
            d.node(n)
                .outgoing
                .iter()
                .map(|f| {
                    let flow = d.flow(*f);
                    let to = d.node(flow.target);
                    let label = format!("{} → {}", flow.id, to.name.as_deref().unwrap_or(&to.id));
                    format!("<option value=\"{}\">{}</option>", escape(&flow.id), escape(&label))
                })
                .collect()
        });
        let fields = format!("<select name=\"flow\">{flows}</select>");
        return button(&format!("{path}/choose"), "Take this flow", csrf, &fields);
    }
    if r.stone.is_none() {
        return String::new();
    }
    let failed = r.status.step_failed();
    if open && !failed && matches!(r.status, TaskStatus::Stone(..)) {
        // A stone at work, or waiting for the outside system to call back.
        let outputs = "<textarea name=\"outputs\" rows=\"2\" placeholder=\"outputs as JSON\">{}</textarea>";
        let reason = "<input name=\"reason\" placeholder=\"why\">";
        return format!(
            "<details class=\"do\"><summary>call back or fail</summary>{}{}</details>",
            button(&format!("{path}/callback"), "Call back", csrf, outputs),
            button(&format!("{path}/forcefail"), "Force a failure", csrf, reason)
        );
    }
    if status != "debug" || !failed {
        return String::new();
    }
    let params = r.params.as_ref().and_then(|p| serde_json::to_string_pretty(p).ok()).unwrap_or_else(|| "{}".into());
    let fields = format!(
        "<select name=\"queueType\"><option value=\"\">the action that failed</option><option>start</option><option>monitor</option>\
<option>rollback</option><option>mock</option></select><textarea name=\"parameters\" rows=\"6\">{}</textarea>",
        escape(&params)
    );
    format!(
        "<details class=\"do\"><summary>reRun, skip or resume</summary>{}{}{}</details>",
        button(&format!("{path}/rerun"), "reRun", csrf, &fields),
        button(&format!("{path}/skip"), "Skip (go on without it)", csrf, ""),
        button(&format!("{path}/resume"), "Resume (give up, roll back)", csrf, "")
    )
}

/// An instance's status (with what can be done to it), diagram, task records and variables.
async fn fragment(rt: &Runtime, row: &flowstone_store::InstanceRow, csrf: &str) -> Result<String, ApiError> {
    let tasks = rt.tasks_of_instance(&row.id).await?;
    let mut out = String::new();
    let path = format!("/console/instances/{}", percent(&row.id));
    let mut acts = String::new();
    if matches!(row.status.as_str(), "running" | "debug") {
        acts.push_str(&button(&format!("{path}/cancel"), "Cancel", csrf, ""));
        acts.push_str(&button(&format!("{path}/pause"), "Pause", csrf, ""));
        acts.push_str(&button(&format!("{path}/unpause"), "Go on (unpause)", csrf, ""));
    }
    acts.push_str(&button(&format!("{path}/delete"), "Delete", csrf, ""));
    let _ = write!(
        out,
        "<h2>Status <span class=\"status s-{}\" id=\"status\">{}</span></h2><div class=\"acts\">{acts}</div>{}{}",
        escape(&row.status),
        escape(&row.status),
        row.end_time.map_or(String::new(), |end| format!("<p>Ended {}</p>", platform_date(end))),
        row.failure.as_deref().map_or(String::new(), |f| format!("<p class=\"error\">{}</p>", escape(f)))
    );
    let def = match rt.model(&row.model_id).await? {
        Some(model) => Some(rt.definition(&model)?),
        None => None,
    };
    if let Some(def) = &def {
        let drawn = diagram::of_instance(def, row, &tasks);
        let _ = write!(out, "<h2>Diagram</h2><div class=\"diagram-box\">{drawn}</div>");
    }
    out.push_str(
        "<h2>Tasks</h2><table id=\"tasks\"><thead><tr><th>Element</th><th>Name</th><th>Status</th><th>Began</th><th>Ended</th><th>Progress</th><th>Reason</th><th>Data</th><th></th></tr></thead><tbody>",
    );
    // Who holds each open user task, for its buttons, read at once; its form's fields, drawn
    // once for each element from the variables read once (a multi-instance task has many).
    let variables = rt.variables(&row.id).await?.unwrap_or_default();
    let open = UserTaskQuery { finished: Some(false), instance_id: Some(row.id.clone()), ..UserTaskQuery::default() };
    let (open, _) = rt.store().list_user_tasks(&open, None).await?;
    let mut forms: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut people = std::collections::HashMap::new();
    for person in open {
        let element = person.element.clone().unwrap_or_default();
        if !forms.contains_key(&element) {
            let properties = def.as_deref().map_or_else(Vec::new, |d| crate::forms::properties(d, &element));
            let form = crate::forms::TaskForm::new(properties, &variables);
            forms.insert(element.clone(), super::forms::drawn(&person, &form, &variables));
        }
        people.insert(person.id.clone(), (person, element));
    }
    // The latest record of each element.
    let latest: std::collections::HashMap<&str, &str> =
        tasks.iter().map(|t| (t.record.element.as_str(), t.record.id.as_str())).collect();
    for task in &tasks {
        let r = &task.record;
        let _ = write!(
            out,
            "<tr data-task=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.id),
            escape(&r.element),
            escape(&r.name),
            escape(&r.status.text()),
            platform_date(r.create_time),
            r.end_time.map(platform_date).unwrap_or_default(),
            r.progress.map_or(String::new(), |p| format!("<progress value=\"{p}\" max=\"100\">{p}%</progress> {p}%")),
            escape(r.reason.as_deref().unwrap_or("")),
            data(r),
            task_buttons(
                r,
                latest.get(r.element.as_str()) == Some(&r.id.as_str()),
                &row.status,
                def.as_deref(),
                people.get(&r.id).map(|(p, element)| (p, forms.get(element).map_or("", String::as_str))),
                csrf
            )
        );
    }
    out.push_str("</tbody></table>");
    let variables = serde_json::to_string_pretty(&variables).unwrap_or_default();
    let _ = write!(out, "<h2>Variables</h2><pre id=\"variables\">{}</pre>", escape(&variables));
    if matches!(row.status.as_str(), "running" | "debug") {
        let fields = "<textarea name=\"variables\" rows=\"3\" placeholder='{\"name\": \"typed as JSON\"}'>{}</textarea>\
<input name=\"remove\" placeholder=\"names to remove, comma-separated\">";
        out.push_str(&button(&format!("{path}/variables"), "Set variables", csrf, fields));
    }
    Ok(out)
}

/// How long a live stream stays silent at most: a comment then keeps proxies from closing it.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(20);

/// `GET /console/instances/{id}/events?since=VERSION`: server-sent events, one `changed` each
/// time a change of the instance is committed (told by the committer, not polled). The stream
/// starts from the version the page was drawn at (`since`), so that a change committed before
/// the stream began is told at once; a change committed while the stream was between two waits
/// is caught by the same version check at the next wake, at most [`KEEP_ALIVE`] later. It ends
/// as the server stops, and the browser connects again.
pub(crate) async fn events(
    State(rt): State<Runtime>,
    _session: Session,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    use axum::response::sse::{Event, Sse};
    let since = query.as_deref().and_then(|q| q.strip_prefix("since=")).and_then(|v| v.parse::<i64>().ok());
    let closing = rt.board().closing();
    let version = |rt: Runtime, id: String| async move { rt.instance(&id).await.ok().flatten().map(|r| r.version) };
    let seen = match since {
        Some(since) => since,
        None => version(rt.clone(), id.clone()).await.unwrap_or(0),
    };
    let stream = futures_util::stream::unfold((rt, id, closing, seen), move |(rt, id, mut closing, seen)| async move {
        let mut now = version(rt.clone(), id.clone()).await.unwrap_or(seen);
        if now == seen {
            tokio::select! {
                _ = closing.wait_for(|c| *c) => return None,
                _ = rt.next_change(&id, KEEP_ALIVE) => {}
            }
            now = version(rt.clone(), id.clone()).await.unwrap_or(seen);
        }
        if *closing.borrow() {
            return None;
        }
        let event = if now == seen {
            Event::default().comment("still here")
        } else {
            Event::default().event("changed").data(now.to_string())
        };
        Some((Ok::<_, std::convert::Infallible>(event), (rt, id, closing, now)))
    });
    Sse::new(stream).into_response()
}
