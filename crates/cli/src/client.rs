//! The commands that talk to a running server over its platform API.

use serde_json::{Map, Value, json};
use std::path::Path;

/// Which server to talk to.
#[derive(clap::Args)]
pub(crate) struct ServerArg {
    /// Base URL of the server.
    #[arg(long = "server", env = "FLOWSTONE_SERVER", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The user to sign in as (HTTP Basic).
    #[arg(long = "user", env = "FLOWSTONE_USER", default_value = "admin")]
    user: String,
    /// The user's password.
    #[arg(long = "password", env = "FLOWSTONE_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// A bearer token (`POST /auth/tokens`) to sign in with instead of a password.
    #[arg(long = "token", env = "FLOWSTONE_TOKEN", hide_env_values = true, conflicts_with = "password")]
    token: Option<String>,
}

impl ServerArg {
    /// The base URL.
    pub(crate) fn base(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }

    /// The `Authorization` header for the credentials given, if any, and where they came
    /// from. Without a token or password, `admin` signs in with the password a server on this
    /// machine was started with (`FLOWSTONE_ADMIN_PASSWORD`, as the README's first command sets).
    fn credentials(&self) -> Option<(String, &'static str)> {
        match (&self.token, &self.password) {
            (Some(token), _) => Some((format!("Bearer {token}"), "the token of --token / FLOWSTONE_TOKEN")),
            (None, Some(password)) => {
                Some((basic(&self.user, password), "the password of --password / FLOWSTONE_PASSWORD"))
            }
            (None, None) if self.user == "admin" => std::env::var(ADMIN_PASSWORD)
                .ok()
                .map(|password| (basic(&self.user, &password), "the password of FLOWSTONE_ADMIN_PASSWORD")),
            (None, None) => None,
        }
    }

    /// The `Authorization` header for the credentials given, if any.
    pub(crate) fn authorization(&self) -> Option<String> {
        self.credentials().map(|(header, _)| header)
    }

    fn client(&self) -> Result<reqwest::Client, String> {
        signed_in(reqwest::Client::builder(), self.authorization().as_deref())
    }

    /// Sends a request (see [`call`]); a refused sign-in says which credentials were sent.
    async fn call(&self, req: reqwest::RequestBuilder) -> Result<Value, String> {
        call(req).await.map_err(|e| {
            if !e.starts_with("401") {
                return e;
            }
            let user = &self.user;
            match self.credentials() {
                Some((_, source)) => format!("{e} (signed in as `{user}` with {source})"),
                None => format!(
                    "{e} (no credentials: give --password or FLOWSTONE_PASSWORD, --token or FLOWSTONE_TOKEN, \
                     or for `admin` {ADMIN_PASSWORD})"
                ),
            }
        })
    }
}

/// The variable the server reads its first `admin` password from.
const ADMIN_PASSWORD: &str = "FLOWSTONE_ADMIN_PASSWORD";

/// The HTTP Basic `Authorization` header value of `user` and `password`.
pub(crate) fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// A client that sends `authorization` with every request.
pub(crate) fn signed_in(
    builder: reqwest::ClientBuilder,
    authorization: Option<&str>,
) -> Result<reqwest::Client, String> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(value) = authorization {
        let value =
            reqwest::header::HeaderValue::from_str(value).map_err(|_| "the credentials are not valid header text")?;
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    builder.default_headers(headers).build().map_err(|e| e.to_string())
}

/// Sends a request and returns the JSON answer, or the server's message on an error status.
async fn call(req: reqwest::RequestBuilder) -> Result<Value, String> {
    let resp = req.send().await.map_err(|e| format!("cannot reach the server: {e}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.map_err(|e| format!("the server answered {status} with no JSON: {e}"))?;
    if status.is_success() {
        Ok(body)
    } else {
        let message = body.get("message").and_then(Value::as_str).unwrap_or("no message");
        Err(format!("{status}: {message}"))
    }
}

fn print(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// Prints `rows` under headers: each column is `(header, field, width)`; the last one is not padded.
fn print_table(columns: &[(&str, &str)], rows: &[Value]) {
    print!("{}", table(columns, rows));
}

/// `rows` under headers, each column `(header, field)` as wide as its widest cell (the last
/// one not padded); a missing field shows `-`.
fn table(columns: &[(&str, &str)], rows: &[Value]) -> String {
    let mut lines = vec![columns.iter().map(|(h, _)| (*h).to_owned()).collect::<Vec<_>>()];
    lines.extend(rows.iter().map(|row| columns.iter().map(|(_, f)| cell(&row[*f])).collect()));
    let widths: Vec<usize> =
        (0..columns.len()).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for line in lines {
        let last = line.len().saturating_sub(1);
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| if i == last { c.clone() } else { format!("{c:<w$}") })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub(crate) async fn deploy(server: &ServerArg, file: &Path) -> Result<(), String> {
    let source = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let client = server.client()?;
    let body =
        server.call(client.post(server.url("/model")).header("content-type", "application/xml").body(source)).await?;
    print(&body);
    Ok(())
}

/// `name=value`: JSON when the value parses as JSON, else text.
fn parse_var(text: &str) -> Result<(String, Value), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("`{text}` is not NAME=VALUE"))?;
    if name.is_empty() {
        return Err(format!("`{text}` has no variable name"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((name.to_owned(), value))
}

/// Variables given as `name=value`, each read by [`parse_var`].
pub(crate) fn parse_vars(vars: &[String]) -> Result<Map<String, Value>, String> {
    vars.iter().map(|v| parse_var(v)).collect()
}

/// `PUT path` with an optional JSON body; prints the answer.
pub(crate) async fn put(server: &ServerArg, path: &str, body: Option<Value>) -> Result<(), String> {
    let mut req = server.client()?.put(server.url(path));
    if let Some(body) = body {
        req = req.json(&body);
    }
    print(&server.call(req).await?);
    Ok(())
}

pub(crate) async fn start(server: &ServerArg, key: &str, vars: &[String], name: Option<String>) -> Result<(), String> {
    let variables = parse_vars(vars)?;
    let body = json!({ "key": key, "processName": name.unwrap_or_else(|| key.to_owned()), "variables": variables });
    let answer = server.call(server.client()?.post(server.url("/process")).json(&body)).await?;
    print(&answer);
    Ok(())
}

pub(crate) async fn ps(
    server: &ServerArg,
    status: Option<String>,
    key: Option<String>,
    limit: u32,
) -> Result<(), String> {
    let mut query = vec![("size", limit.to_string())];
    query.extend(status.map(|s| ("status", s)));
    query.extend(key.map(|k| ("key", k)));
    let answer = server.call(server.client()?.get(server.url("/process")).query(&query)).await?;
    let rows = answer["data"].as_array().cloned().unwrap_or_default();
    print_table(
        &[
            ("PROCESS INSTANCE", "processInstanceId"),
            ("MODEL", "modelKey"),
            ("STATUS", "processStatus"),
            ("STARTED", "startTime"),
            ("NAME", "processName"),
        ],
        &rows,
    );
    println!("({} of {})", rows.len(), answer["total"]);
    Ok(())
}

pub(crate) async fn tasks(server: &ServerArg, process: &str) -> Result<(), String> {
    let answer =
        server.call(server.client()?.get(server.url("/task")).query(&[("processInstanceId", process)])).await?;
    let rows = answer.as_array().cloned().unwrap_or_default();
    print_table(
        &[
            ("TASK", "id"),
            ("NAME", "name"),
            ("NAMESPACE", "namespace"),
            ("STONE", "stone"),
            ("STATUS", "status"),
            ("PROGRESS", "progress"),
            ("ENDED", "endTime"),
            ("REASON", "reason"),
        ],
        &rows,
    );
    println!("({} tasks)", rows.len());
    Ok(())
}

/// A process's variables (its final ones once it ended), as Flowable's history shows them.
pub(crate) async fn vars(server: &ServerArg, process: &str) -> Result<(), String> {
    let path = format!("/flowable-rest/service/history/historic-process-instances/{process}");
    let answer = server.call(server.client()?.get(server.url(&path))).await?;
    let mut rows: Vec<Value> = answer["variables"].as_array().cloned().unwrap_or_default();
    rows.sort_by(|a, b| cell(&a["name"]).cmp(&cell(&b["name"])));
    for row in &mut rows {
        // Objects and lists as the JSON they are, on one line.
        if row["value"].is_object() || row["value"].is_array() {
            row["value"] = Value::String(row["value"].to_string());
        }
    }
    print_table(&[("NAME", "name"), ("TYPE", "type"), ("VALUE", "value")], &rows);
    println!("({} variables)", rows.len());
    Ok(())
}

/// Moves a running process to another version of its key, through Flowable's migration API.
pub(crate) async fn migrate(
    server: &ServerArg,
    process: &str,
    to_version: Option<u32>,
    mappings: &[String],
    dry_run: bool,
) -> Result<(), String> {
    let client = server.client()?;
    let p = server.call(client.get(server.url(&format!("/process/{process}")))).await?;
    let key = cell(&p["modelKey"]);
    let mut mapped = Vec::new();
    for pair in mappings {
        let (from, to) = pair.split_once('=').ok_or_else(|| format!("`{pair}` is not OLD=NEW"))?;
        mapped.push(json!({"fromActivityId": from, "toActivityId": to}));
    }
    let mut doc = json!({"toProcessDefinitionKey": key, "activityMappings": mapped});
    if let Some(version) = to_version {
        doc["toProcessDefinitionVersion"] = json!(version);
    }
    let dry = if dry_run { "?dryRun=true" } else { "" };
    let path = format!("/flowable-rest/service/runtime/process-instances/{process}/migrate{dry}");
    let resp =
        client.post(server.url(&path)).json(&doc).send().await.map_err(|e| format!("cannot reach the server: {e}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!(
            "{status}: {}",
            body["exception"].as_str().or(body["message"].as_str()).unwrap_or("no message")
        ));
    }
    if dry_run {
        let moves = body["moves"].as_array().cloned().unwrap_or_default();
        println!("{process} would move to {} ({} element(s)):", cell(&body["toProcessDefinitionId"]), moves.len());
        print_table(&[("FROM", "from"), ("TO", "to")], &moves);
    } else {
        println!(
            "{process} moved to the {} version of `{key}`",
            to_version.map_or("latest".to_owned(), |v| format!("v{v}"))
        );
    }
    Ok(())
}

/// Statuses a process shows while it may still move.
const MOVING: [&str; 5] = ["running", "debug", "rollingBack", "canceling", "deleting"];

/// A bar of `width` cells for `percent`.
fn bar(percent: u64, width: usize) -> String {
    let full = (percent.min(100) as usize * width).div_ceil(100).min(width);
    format!("[{}{}] {percent:>3}%", "#".repeat(full), "-".repeat(width - full))
}

/// The task records of a process as lines with progress bars (a task that ended shows full).
fn watch_lines(process: &Value, tasks: &[Value]) -> String {
    let mut out = format!(
        "{}  {}  {}\n",
        cell(&process["processInstanceId"]),
        cell(&process["processName"]),
        cell(&process["processStatus"])
    );
    let rows: Vec<Value> = tasks
        .iter()
        .map(|t| {
            let done = !t["endTime"].is_null() || t["status"].as_str().is_some_and(|s| s.ends_with("success"));
            let percent = if done { 100 } else { t["progress"].as_u64().unwrap_or(0) };
            let mut row = t.clone();
            row["bar"] = Value::String(bar(percent, 20));
            row
        })
        .collect();
    out.push_str(&table(
        &[
            ("TASK", "name"),
            ("NAMESPACE", "namespace"),
            ("STATUS", "status"),
            ("PROGRESS", "bar"),
            ("REASON", "reason"),
        ],
        &rows,
    ));
    out
}

/// Shows a process's tasks with progress bars until it ends (redrawn in place on a terminal,
/// printed when it changes otherwise); fails unless it ends in `success`.
pub(crate) async fn watch(server: &ServerArg, process: &str, every: std::time::Duration) -> Result<(), String> {
    use std::io::IsTerminal;
    let client = server.client()?;
    let terminal = std::io::stdout().is_terminal();
    let mut last = String::new();
    loop {
        let p = server.call(client.get(server.url(&format!("/process/{process}")))).await?;
        let query = [("processInstanceId", process)];
        let tasks = server.call(client.get(server.url("/task")).query(&query)).await?;
        let lines = watch_lines(&p, tasks.as_array().map_or(&[][..], Vec::as_slice));
        if lines != last {
            if terminal {
                // Home and clear: the view redrawn in place.
                print!("\x1b[H\x1b[2J");
            }
            print!("{lines}");
            last = lines;
        }
        let status = p["processStatus"].as_str().unwrap_or_default();
        if !MOVING.contains(&status) {
            return if status == "success" {
                Ok(())
            } else {
                Err(format!("process {process} ended {status}: {}", cell(&p["reason"])))
            };
        }
        tokio::time::sleep(every).await;
    }
}

/// Which ended processes `flowstone history prune` removes.
pub(crate) struct Prune {
    pub(crate) older_than: String,
    pub(crate) key: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) dry_run: bool,
}

/// Processes one request of `history prune` removes: each answers within seconds, and the
/// running total shows between them.
const PRUNE_STEP: u64 = 10_000;
/// Processes a dry run counts at most (the most one request takes).
const DRY_STEP: u64 = 100_000;

/// `POST /history/prune` until nothing is left, with the running total on standard error.
pub(crate) async fn prune(server: &ServerArg, query: &Prune) -> Result<(), String> {
    let client = server.client()?;
    // A dry run deletes nothing, so a second request would count the same again: it asks for
    // as many as one request counts.
    let step = if query.dry_run { DRY_STEP } else { PRUNE_STEP };
    let mut body = json!({"olderThan": query.older_than, "limit": step, "dryRun": query.dry_run});
    for (field, value) in [("model", &query.key), ("status", &query.status), ("tenantId", &query.tenant)] {
        if let Some(value) = value {
            body[field] = json!(value);
        }
    }
    let (mut processes, mut instances) = (0, 0);
    let more = loop {
        let answer = server.call(client.post(server.url("/history/prune")).json(&body)).await?;
        processes += answer["processes"].as_u64().unwrap_or(0);
        instances += answer["instances"].as_u64().unwrap_or(0);
        let more = answer["more"] == json!(true);
        if query.dry_run || !more {
            break more;
        }
        eprintln!("… {processes} processes ({instances} instances) deleted so far");
    };
    let verb = if query.dry_run { "would delete" } else { "deleted" };
    let more = if more { " (and more)" } else { "" };
    println!(
        "{verb} {processes} processes{more}, {instances} instances with the processes they called and their rollbacks"
    );
    Ok(())
}

/// `GET /stuck`: three tables, oldest first.
pub(crate) async fn stuck(server: &ServerArg, after: &str) -> Result<(), String> {
    let answer = server.call(server.client()?.get(server.url("/stuck")).query(&[("after", after)])).await?;
    let rows = |field: &str| answer[field].as_array().cloned().unwrap_or_default();
    println!("Not moved since {}:", cell(&answer["since"]));
    let jobs = rows("jobs");
    println!("\n{} stone job(s) no worker took", jobs.len());
    print_table(
        &[
            ("TASK", "taskId"),
            ("PROCESS INSTANCE", "processInstanceId"),
            ("STONE", "stone"),
            ("ACTION", "action"),
            ("QUEUED", "queuedAt"),
            ("WHY", "why"),
        ],
        &jobs,
    );
    let callbacks = rows("callbacks");
    println!("\n{} callback(s) awaited", callbacks.len());
    print_table(
        &[
            ("TASK", "taskId"),
            ("PROCESS INSTANCE", "processInstanceId"),
            ("NAME", "name"),
            ("STONE", "stone"),
            ("SINCE", "since"),
        ],
        &callbacks,
    );
    let processes = rows("processes");
    println!("\n{} process(es) without a step", processes.len());
    print_table(
        &[
            ("PROCESS INSTANCE", "processInstanceId"),
            ("MODEL", "modelKey"),
            ("STATUS", "processStatus"),
            ("LAST STEP", "lastStep"),
            ("IDLE S", "idleSeconds"),
        ],
        &processes,
    );
    let timers = rows("timers");
    println!("\n{} timer(s) overdue, of {} set", timers.len(), cell(&answer["pendingTimers"]));
    print_table(
        &[
            ("TIMER", "timerId"),
            ("PROCESS INSTANCE", "processInstanceId"),
            ("ELEMENT", "element"),
            ("DUE", "due"),
            ("HELD BY", "heldBy"),
        ],
        &timers,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_as_wide_as_their_widest_cells() {
        let rows = [json!({"a": "x", "b": "long value", "c": 7}), json!({"a": "wider a", "c": null})];
        let text = table(&[("A", "a"), ("B", "b"), ("C", "c")], &rows);
        assert_eq!(text, "A        B           C\nx        long value  7\nwider a  -           -\n");
    }

    #[test]
    fn progress_bars_fill_by_percent_and_ended_tasks_show_full() {
        assert_eq!(bar(0, 10), "[----------]   0%");
        assert_eq!(bar(45, 10), "[#####-----]  45%");
        assert_eq!(bar(100, 10), "[##########] 100%");
        let process = json!({"processInstanceId": "P", "processName": "n", "processStatus": "running"});
        let tasks = [
            json!({"name": "a", "status": "start.success", "endTime": "x", "progress": null}),
            json!({"name": "b", "status": "start.begin", "endTime": null, "progress": 30}),
        ];
        let text = watch_lines(&process, &tasks);
        assert!(text.starts_with("P  n  running\n"), "{text}");
        assert!(text.contains("[####################] 100%") && text.contains("[######--------------]  30%"), "{text}");
    }

    #[test]
    fn vars_read_json_else_text() {
        assert_eq!(parse_var("n=3"), Ok(("n".into(), json!(3))));
        assert_eq!(parse_var("route=a"), Ok(("route".into(), json!("a"))));
        assert_eq!(parse_var("m={\"ip\":\"x\"}"), Ok(("m".into(), json!({"ip": "x"}))));
        assert_eq!(parse_var("s=\"6\""), Ok(("s".into(), json!("6"))));
        assert!(parse_var("novalue").is_err());
        assert!(parse_var("=1").is_err());
    }
}
