//! The bk-sops open API at the paths of bk-sops' ESB gateway,
//! `/api/c/compapi/v2/sops/{api}/`: GET with query parameters or POST with a JSON body, the
//! app's credentials (`bk_app_code` + `bk_app_secret`) and the acting user (`bk_username`)
//! among the parameters, and every answer in bk-sops' `{result, data, code, message,
//! trace_id}` envelope. A template is a pipeline tree deployed as a model; a task is made from
//! a template with constants, and once started it is a process instance like any other.
//!
//! A refused call answers, as bk-sops does, HTTP 200 with `result: false`, a message that
//! says why and a code of bk-sops' `err_code` that says what kind of refusal it is.

mod answers;
mod clocked;
mod counts;
mod document;
mod effective_time;
mod intervention;
mod periodic;
mod plugins;
mod projects;
mod status;
mod task_edit;

pub(super) use document::api;

use super::input::json_object;
use crate::error::ApiError;
use crate::runtime::{Runtime, RuntimeError, Tree, now_ms, pipeline_key};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use flowstone_engine::{Command, TaskStatus};
use flowstone_model::{constant_variable, exclude_nodes, inline_subprocesses};
use flowstone_store::{BkTaskRow, InstanceRow, TemplateRow};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Where the gateway serves bk-sops' APIs.
const BASE: &str = "/api/c/compapi/v2/sops";

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new()
        .route(&format!("{BASE}/{{api}}/"), get(call).post(call))
        .route(&format!("{BASE}/{{api}}"), get(call).post(call))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// A refusal in bk-sops' envelope, for checks made before a call reaches its API.
/// A call's answer: its data, and for a page of a list the count of all (beside `data`, as
/// bk-sops' lists answer).
struct Reply {
    data: Value,
    count: Option<u64>,
}

pub(super) fn refusal(e: ApiError) -> Response {
    envelope(Err(e))
}

/// bk-sops' code for a refusal of this HTTP status (`gcloud.err_code`: `35` and five digits),
/// or `None` for a failure of the transport (a body over the limit, too many wrong secrets, a
/// store that does not answer), which keeps its HTTP status so that a client retries.
fn refusal_code(status: StatusCode) -> Option<u32> {
    Some(match status {
        StatusCode::BAD_REQUEST => 3_540_000,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => 3_540_100,
        StatusCode::NOT_FOUND => 3_540_400,
        StatusCode::CONFLICT => 3_545_000,
        StatusCode::NOT_IMPLEMENTED => 3_545_100,
        _ => return None,
    })
}

/// bk-sops' envelope of an answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Envelope {
    /// True for an answer, false for a refusal.
    result: bool,
    /// The answer (null for a refusal).
    data: Value,
    /// 0 for an answer; for a refusal a code of bk-sops' `gcloud.err_code` (3540000 bad
    /// parameters or tree, 3540100 credentials or a business the app may not reach, 3540400
    /// no such template, task or API, 3545000 wrong state, 3545100 not built), or the HTTP
    /// status of a refusal of the transport (413, 429, 503).
    code: u32,
    /// `success`, or what was wrong.
    message: String,
    trace_id: String,
    /// For a page of a list: how many there are in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
}

/// bk-sops' answer. As bk-sops' API views (Django `JsonResponse`) answer, a refusal is HTTP 200
/// with `result: false` and a code of `gcloud.err_code`: BlueKing's SDK (`bkapi-component-open`)
/// raises on any other status instead of returning the envelope.
fn envelope(result: Result<Reply, ApiError>) -> Response {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    match result {
        Ok(Reply { data, count }) => {
            Json(Envelope { result: true, data, code: 0, message: "success".into(), trace_id, count }).into_response()
        }
        Err(e) => e.respond(|status, message| {
            let code = refusal_code(status);
            let body = Envelope {
                result: false,
                data: Value::Null,
                code: code.unwrap_or_else(|| u32::from(status.as_u16())),
                message,
                trace_id,
                count: None,
            };
            (if code.is_some() { StatusCode::OK } else { status }, Json(body)).into_response()
        }),
    }
}

/// One call's parameters and who makes it.
struct Call<'a> {
    rt: &'a Runtime,
    params: Map<String, Value>,
    user: String,
    /// The businesses the app may reach (none: every business).
    businesses: Option<Vec<String>>,
    origin: String,
}

impl Call<'_> {
    fn text(&self, name: &str) -> Option<String> {
        match self.params.get(name)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn required(&self, name: &str) -> Result<String, ApiError> {
        self.text(name).ok_or_else(|| bad(format!("parameter `{name}` is required")))
    }

    fn number(&self, name: &str) -> Result<i64, ApiError> {
        let text = self.required(name)?;
        text.trim().parse().map_err(|_| bad(format!("parameter `{name}` must be a whole number, not `{text}`")))
    }

    /// A flag: `true` or `false`, as JSON or as text (`True`, `1`, … from a query string).
    fn flag(&self, name: &str) -> Result<Option<bool>, ApiError> {
        if let Some(Value::Bool(b)) = self.params.get(name) {
            return Ok(Some(*b));
        }
        match self.text(name).as_deref() {
            None => Ok(None),
            Some("true" | "True" | "1") => Ok(Some(true)),
            Some("false" | "False" | "0") => Ok(Some(false)),
            Some(other) => Err(bad(format!("parameter `{name}` must be true or false, not `{other}`"))),
        }
    }

    /// `task_id_list`: at most `most` task ids, numbers or text holding one.
    fn task_ids(&self, most: usize) -> Result<Vec<i64>, ApiError> {
        let Some(Value::Array(ids)) = self.json("task_id_list")? else {
            return Err(bad("parameter `task_id_list` must be a list of task ids"));
        };
        if ids.len() > most {
            return Err(bad(format!("`task_id_list` may hold at most {most} task ids, not {}", ids.len())));
        }
        ids.iter()
            .map(|id| {
                id.as_i64()
                    .or_else(|| id.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| bad(format!("task id {id} is not a number")))
            })
            .collect()
    }

    /// A JSON parameter that may also come as a string holding JSON (GET, or older clients).
    fn json(&self, name: &str) -> Result<Option<Value>, ApiError> {
        match self.params.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                serde_json::from_str(s).map(Some).map_err(|e| bad(format!("parameter `{name}` is not JSON: {e}")))
            }
            Some(other) => Ok(Some(other.clone())),
        }
    }
}

async fn call(
    State(rt): State<Runtime>,
    State(auth): State<std::sync::Arc<crate::auth::Authenticator>>,
    Path(api): Path<String>,
    headers: HeaderMap,
    who: Option<axum::Extension<crate::access_log::Who>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    envelope(dispatch(&rt, &auth, &api, &headers, who.as_deref(), query.as_deref(), &body).await)
}

async fn dispatch(
    rt: &Runtime,
    auth: &crate::auth::Authenticator,
    api: &str,
    headers: &HeaderMap,
    who: Option<&crate::access_log::Who>,
    query: Option<&str>,
    body: &Bytes,
) -> Result<Reply, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| bad(format!("malformed query string: {e}")))?;
    let mut params: Map<String, Value> = pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    params.extend(json_object(body, true)?);
    // BlueKing's SDK signs in with a header; credentials in the call's data serve as well.
    if let Some(signed) = headers.get(BKAPI_AUTHORIZATION) {
        params.extend(signed_in(signed)?);
    }
    let Signed { app: code, user, businesses } = sign_in(auth, &params).await?;
    if let Some(who) = who {
        who.set(&code);
    }
    // A call of no business (the list of those the app may reach) passes.
    if let Some(allowed) = businesses.as_ref().filter(|_| api != "get_user_project_list") {
        let business = ["bk_biz_id", "project_id"].iter().find_map(|k| match params.get(*k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        });
        if !business.as_ref().is_some_and(|b| allowed.contains(b)) {
            let named = business.map_or_else(|| "no business (bk_biz_id)".to_owned(), |b| format!("business {b}"));
            return Err(ApiError::forbidden(format!(
                "app '{code}' may not reach {named}; it may reach {}",
                allowed.join(", ")
            )));
        }
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let c = Call { rt, params, user, businesses, origin: format!("http://{host}") };
    match api {
        "get_task_list" => return task_list(&c).await,
        "get_clocked_task_list" => return clocked::list(&c).await,
        _ => {}
    }
    let data = match api {
        "get_template_list" => template_list(&c).await,
        "create_template" => create_template(&c).await,
        "get_template_info" => template_info(&c).await,
        "create_task" | "fast_create_task" => create_task(&c, false).await,
        "start_task" => start_task(&c, c.number("task_id")?).await.map(|()| json!({})),
        "create_and_start_task" => create_task(&c, true).await,
        "operate_task" => operate_task(&c).await,
        "get_task_status" => status::task_status(&c).await,
        "get_task_detail" => task_detail(&c).await,
        "operate_node" => operate_node(&c).await.map(|()| json!("success")),
        "node_callback" => {
            let data = c.json("callback_data")?.unwrap_or_else(|| json!({}));
            node_command(&c, "callback", data).await.map(|()| json!({}))
        }
        "get_tasks_status" => tasks_status(&c).await,
        "get_task_node_detail" => node_detail(&c, true).await,
        "get_task_node_data" => node_detail(&c, false).await,
        "import" | "import_project_template" => import(&c).await,
        "preview_task_tree" => preview_task_tree(&c).await,
        "modify_constants_for_task" => task_edit::modify_constants(&c).await,
        "query_task_count" => counts::task_count(&c).await,
        "get_tasks_manual_intervention_state" => intervention::manual_intervention_state(&c).await,
        "get_plugin_list" => Ok(plugins::plugin_list(&c)),
        "get_plugin_detail" => plugins::plugin_detail(&c),
        "get_plugin_base_info" => Ok(plugins::plugin_base_info(&c)),
        "get_task_effective_time" => effective_time::effective_time(&c).await,
        "get_user_project_list" => projects::project_list(&c).await,
        "get_user_project_detail" => projects::project_detail(&c),
        "create_clocked_task" => clocked::create(&c).await,
        "create_periodic_task" => periodic::create(&c).await,
        "get_periodic_task_list" => periodic::list(&c).await,
        "get_periodic_task_info" => periodic::info(&c).await,
        "set_periodic_task_enabled" => periodic::set_enabled(&c).await,
        "modify_cron_for_periodic_task" => periodic::modify_cron(&c).await,
        "modify_constants_for_periodic_task" => periodic::modify_constants(&c).await,
        other => match NOT_SERVED.iter().find(|(name, _)| *name == other) {
            Some((_, why)) => Err(ApiError::not_implemented(format!("bk-sops' `{other}` is not served: {why}"))),
            None => Err(ApiError::not_found(format!("there is no bk-sops API `{other}`"))),
        },
    }?;
    Ok(Reply { data, count: None })
}

/// Who makes a call: the app (or, signed in by an access token alone, the user), the acting
/// user, and the businesses the call may reach (none: every business).
struct Signed {
    app: String,
    user: String,
    businesses: Option<Vec<String>>,
}

/// Checks a call's credentials: an app's `bk_app_code` and `bk_app_secret`, the acting user
/// named by `bk_username` or by an `access_token` (a Flowstone bearer token). As BlueKing's
/// SDK sends an access token alone (it stands for app and user there), a token alone signs in
/// its user when they operate (operators, administrators): they reach every business.
async fn sign_in(auth: &crate::auth::Authenticator, params: &Map<String, Value>) -> Result<Signed, ApiError> {
    let text = |key: &str| params.get(key).and_then(Value::as_str).filter(|v| !v.is_empty());
    let code = text("bk_app_code").or_else(|| text("app_code"));
    let token = match text("access_token") {
        Some(token) => Some(auth.token_caller(token).await?),
        None => None,
    };
    match (code, text("bk_app_secret"), token) {
        (Some(code), Some(secret), token) => {
            let businesses = auth.app(code, secret).await?;
            let user = token.map(|t| t.user).or_else(|| text("bk_username").map(str::to_owned));
            Ok(Signed { app: code.to_owned(), user: user.unwrap_or_else(|| code.to_owned()), businesses })
        }
        (_, _, Some(caller)) if caller.operates() => {
            Ok(Signed { app: caller.user.clone(), user: caller.user, businesses: None })
        }
        (_, _, Some(caller)) => Err(ApiError::forbidden(format!(
            "'{}' does not operate and so may not sign in with an access_token alone: send bk_app_code and \
             bk_app_secret beside it",
            caller.user
        ))),
        _ => Err(ApiError::unauthorized(
            "bk_app_code and bk_app_secret are required (in the X-Bkapi-Authorization header or the call's data), \
             or an access_token",
        )),
    }
}

/// bk-sops' documented APIs (`docs/apidoc`, and those BlueKing's SDK offers) that are not
/// served, and why.
const NOT_SERVED: [(&str, &str); 14] = [
    ("claim_functionalization_task", "functionalization (a task claimed by another team) is not built"),
    ("get_functionalization_task_list", "functionalization (a task claimed by another team) is not built"),
    ("get_common_template_list", "common (cross-business) templates are not built"),
    ("get_common_template_info", "common (cross-business) templates are not built"),
    ("import_common_template", "common (cross-business) templates are not built"),
    ("preview_common_task_tree", "common (cross-business) templates are not built"),
    ("get_template_schemes", "execution schemes are not kept (create_task chooses nodes with execute_task_nodes_id)"),
    ("register_project", "a project is a business id here, there whenever it is named"),
    ("get_mini_app_list", "mini apps (app maker) are not built"),
    ("get_task_node_log", "stones keep no log; a node's failure is the ex_data of get_task_node_detail"),
    ("get_task_plugin_log", "stones keep no log; a node's failure is the ex_data of get_task_node_detail"),
    ("dispatch_plugin_query", "plugins have no remote queries: stones run on workers of their own"),
    ("apply_job_file_upload_ticket", "BlueKing JOB's file upload is not built"),
    ("job_file_upload", "BlueKing JOB's file upload is not built"),
];

/// `get_task_list`: a business's tasks, newest first, `limit` (default 100, at most 200) from
/// `offset`, filtered by `keyword` (in the name), `is_started` and `is_finished`.
async fn task_list(c: &Call<'_>) -> Result<Reply, ApiError> {
    let flag = |name: &str| c.flag(name);
    let query = flowstone_store::BkTaskQuery {
        biz_id: c.number("bk_biz_id").or_else(|_| c.number("project_id"))?,
        keyword: c.text("keyword"),
        started: flag("is_started")?,
        finished: flag("is_finished")?,
        ..flowstone_store::BkTaskQuery::default()
    };
    let limit = c.text("limit").map_or(Ok(100), |_| c.number("limit"))?;
    let offset = c.text("offset").map_or(Ok(0), |_| c.number("offset"))?;
    if !(1..=200).contains(&limit) || offset < 0 {
        return Err(bad(format!("`limit` must be from 1 to 200 and `offset` not negative, not {limit} and {offset}")));
    }
    let page = flowstone_store::Page { offset: offset as u64, limit: limit as u64 };
    let (tasks, count) = c.rt.store().bk_tasks(&query, page).await?;
    let mut data = Vec::with_capacity(tasks.len());
    for task in &tasks {
        let instance = instance_of(c, task).await?;
        let (start, end, _) = times(instance.as_ref());
        data.push(answers::TaskListed {
            id: task.id,
            name: task.name.clone(),
            category: "Default".into(),
            create_time: time(task.created_at),
            creator: task.creator.clone(),
            executor: task.executor.clone().unwrap_or_default(),
            start_time: start.map(time),
            finish_time: end.map(time),
            is_started: task.instance_id.is_some(),
            is_finished: end.is_some(),
            template_source: "project".into(),
            template_id: task.template_id.map(|t| t.to_string()).unwrap_or_default(),
            bk_biz_id: task.biz_id,
            bk_biz_name: task.biz_id.to_string(),
            project_id: task.biz_id,
            project_name: task.biz_id.to_string(),
        });
    }
    Ok(Reply { data: json!(data), count: Some(count) })
}

/// The header BlueKing's API SDK signs in with: a JSON object of `bk_app_code`,
/// `bk_app_secret` and `bk_username` or an `access_token` (a Flowstone bearer token, which
/// names the user).
const BKAPI_AUTHORIZATION: &str = "x-bkapi-authorization";

/// The credentials of an `X-Bkapi-Authorization` header.
fn signed_in(header: &axum::http::HeaderValue) -> Result<Map<String, Value>, ApiError> {
    let unauthorized = |why: &str| ApiError::unauthorized(format!("X-Bkapi-Authorization {why}"));
    let text = header.to_str().map_err(|_| unauthorized("is not text"))?;
    let fields: Map<String, Value> = match serde_json::from_str(text) {
        Ok(Value::Object(fields)) => fields,
        _ => return Err(unauthorized("must be a JSON object of bk_app_code, bk_app_secret and bk_username")),
    };
    let kept = ["bk_app_code", "bk_app_secret", "bk_username", "access_token"];
    Ok(fields.into_iter().filter(|(k, v)| kept.contains(&k.as_str()) && v.is_string()).collect())
}

/// A time as bk-sops' lists and details write it.
fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

/// A time as bk-sops' node states write it.
fn zoned_time(ms: Option<i64>) -> String {
    ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S +0000").to_string())
        .unwrap_or_default()
}

async fn template_of(c: &Call<'_>) -> Result<TemplateRow, ApiError> {
    let id = c.number("template_id")?;
    let template = c.rt.store().template(id).await?;
    let biz = c.number("bk_biz_id")?;
    template
        .filter(|t| t.biz_id == biz)
        .ok_or_else(|| ApiError::not_found(format!("template {id} of business {biz} does not exist")))
}

/// The stored tree of a model (pipeline trees are stored as JSON).
async fn tree_of(c: &Call<'_>, model_id: &str) -> Result<Value, ApiError> {
    let model = c.rt.model(model_id).await?.ok_or_else(|| bad(format!("model {model_id} is gone")))?;
    serde_json::from_str(&model.source).map_err(|_| bad(format!("model {model_id} is not a pipeline tree")))
}

fn template_json(t: &TemplateRow) -> answers::Template {
    answers::Template {
        id: t.id,
        name: t.name.clone(),
        creator: t.creator.clone(),
        create_time: time(t.created_at),
        editor: t.creator.clone(),
        edit_time: time(t.edited_at),
        category: "Default".into(),
        bk_biz_id: t.biz_id.to_string(),
        bk_biz_name: t.biz_id.to_string(),
        project_id: t.biz_id,
        project_name: t.biz_id.to_string(),
    }
}

async fn template_list(c: &Call<'_>) -> Result<Value, ApiError> {
    let templates = c.rt.store().templates_of(c.number("bk_biz_id")?).await?;
    Ok(json!(templates.iter().map(template_json).collect::<Vec<_>>()))
}

async fn template_info(c: &Call<'_>) -> Result<Value, ApiError> {
    let t = template_of(c).await?;
    Ok(json!(answers::TemplateInfo { pipeline_tree: tree_of(c, &t.model_id).await?, template: template_json(&t) }))
}

/// The trees of the templates a tree's subprocesses name, at any depth, for the parser's lookup.
async fn referenced_templates(c: &Call<'_>, tree: &Value, into: &mut HashMap<String, Value>) -> Result<(), ApiError> {
    let mut pending = vec![tree.clone()];
    while let Some(tree) = pending.pop() {
        for activity in tree.get("activities").and_then(Value::as_object).into_iter().flatten().map(|(_, a)| a) {
            if let Some(inline) = activity.get("pipeline").filter(|p| p.is_object()) {
                pending.push(inline.clone());
                continue;
            }
            let Some(id) = activity.get("template_id").map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            else {
                continue;
            };
            if into.contains_key(&id) {
                continue;
            }
            let Ok(number) = id.parse::<i64>() else { continue };
            if let Some(t) = c.rt.store().template(number).await? {
                into.insert(id, tree_of(c, &t.model_id).await?);
            }
        }
    }
    Ok(())
}

/// The call's `pipeline_tree`, the trees of the templates its subprocesses name inlined.
async fn call_tree(c: &Call<'_>) -> Result<Value, ApiError> {
    let tree = c.json("pipeline_tree")?.ok_or_else(|| bad("parameter `pipeline_tree` is required"))?;
    let mut templates = HashMap::new();
    referenced_templates(c, &tree, &mut templates).await?;
    Ok(inline_subprocesses(&tree, &|id| templates.get(id).cloned()).map_err(RuntimeError::Model)?)
}

async fn create_template(c: &Call<'_>) -> Result<Value, ApiError> {
    let biz = c.number("bk_biz_id")?;
    let name = c.required("name")?;
    let tree = call_tree(c).await?;
    let key = pipeline_key();
    let made = vec![(Tree { tree: &tree, key: &key, name: &name }, new_template(c, biz, &name, c.text("description")))];
    Ok(json!(template_made(&c.rt.create_templates(made).await?[0], None)))
}

/// A template of business `biz` the caller makes now (its id, model and key are the runtime's).
fn new_template(c: &Call<'_>, biz: i64, name: &str, description: Option<String>) -> TemplateRow {
    let now = now_ms();
    TemplateRow {
        id: 0,
        biz_id: biz,
        name: name.to_owned(),
        description,
        creator: c.user.clone(),
        model_id: String::new(),
        pipeline_template_id: String::new(),
        created_at: now,
        edited_at: now,
    }
}

/// What bk-sops answers for a new template.
fn template_made(t: &TemplateRow, old_id: Option<String>) -> answers::TemplateMade {
    answers::TemplateMade {
        template_id: t.id,
        template_name: t.name.clone(),
        pipeline_template_id: t.pipeline_template_id.clone(),
        old_id,
    }
}

/// The activities a task leaves out: `exclude_task_nodes_id`, or every optional activity not
/// in `execute_task_nodes_id` when that is given (nodes that are not optional always run).
fn left_out_nodes(c: &Call<'_>, tree: &Value) -> Result<Vec<String>, ApiError> {
    let list = |name: &str| -> Result<Option<Vec<String>>, ApiError> {
        match c.json(name)? {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| bad(format!("`{name}` must list node ids"))))
                .collect::<Result<Vec<_>, _>>()
                .map(|ids| Some(ids).filter(|ids| !ids.is_empty())),
            Some(_) => Err(bad(format!("parameter `{name}` must be a list of node ids"))),
        }
    };
    if let Some(execute) = list("execute_task_nodes_id")? {
        let activities = tree["activities"].as_object().into_iter().flatten();
        return Ok(activities
            .filter(|(id, a)| !execute.contains(id) && a["optional"] == Value::Bool(true))
            .map(|(id, _)| id.clone())
            .collect());
    }
    Ok(list("exclude_task_nodes_id")?.unwrap_or_default())
}

/// `preview_task_tree`: the tree a task of the template would run without the nodes left out,
/// and the template's constants it no longer refers to.
async fn preview_task_tree(c: &Call<'_>) -> Result<Value, ApiError> {
    let template = template_of(c).await?;
    let tree = tree_of(c, &template.model_id).await?;
    let left_out = left_out_nodes(c, &tree)?;
    let (tree, unreferred) =
        exclude_nodes(&tree, &left_out).map_err(|e| bad(format!("cannot leave nodes out: {e}")))?;
    Ok(json!(answers::Preview { pipeline_tree: tree, constants_not_referred: unreferred }))
}

/// `import`: the templates of a bk-sops export (`template_data`: the exported JSON or YAML,
/// as text, base64 text, or an object), their subprocesses found among the export's own trees.
async fn import(c: &Call<'_>) -> Result<Value, ApiError> {
    let biz = c.number("bk_biz_id").or_else(|_| c.number("project_id"))?;
    let raw = c.params.get("template_data").ok_or_else(|| bad("parameter `template_data` is required"))?;
    let imported = match raw {
        Value::String(text) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            let text = decoded.as_deref().unwrap_or(text);
            match serde_json::from_str::<Value>(text) {
                Ok(export) if export.is_object() => import_export(c, biz, &export).await?,
                _ => import_yaml(c, biz, text).await?,
            }
        }
        export => import_export(c, biz, export).await?,
    };
    Ok(json!(answers::Imported { count: imported.len(), templates: imported }))
}

/// The templates of a JSON export, under the model keys the export gives them.
async fn import_export(c: &Call<'_>, biz: i64, export: &Value) -> Result<Vec<answers::TemplateMade>, ApiError> {
    let trees = export["pipeline_template_data"]["template"]
        .as_object()
        .ok_or_else(|| bad("`template_data` has no `pipeline_template_data.template`"))?;
    let templates = export["template"].as_object().ok_or_else(|| bad("`template_data` has no `template`"))?;
    let lookup = |id: &str| trees.get(id).map(|t| t["tree"].clone());
    let mut found = Vec::new();
    for (old_id, template) in templates {
        let key = template["pipeline_template_id"].as_str().unwrap_or_default();
        let pipeline =
            trees.get(key).ok_or_else(|| bad(format!("template {old_id} names no tree `{key}` in the export")))?;
        let name = pipeline["name"].as_str().filter(|n| !n.is_empty()).unwrap_or(key).to_owned();
        let description = pipeline["description"].as_str().filter(|d| !d.is_empty()).map(str::to_owned);
        let tree = inline_subprocesses(&pipeline["tree"], &lookup).map_err(RuntimeError::Model)?;
        found.push(Imported { old_id: old_id.clone(), key: key.to_owned(), name, description, tree });
    }
    import_all(c, biz, found).await
}

/// A template of an export, read.
struct Imported {
    old_id: String,
    key: String,
    name: String,
    description: Option<String>,
    tree: Value,
}

/// Stores the templates of an export, all in one commit (none when one is refused); answers
/// each as bk-sops does, with the id it had in the export.
async fn import_all(c: &Call<'_>, biz: i64, found: Vec<Imported>) -> Result<Vec<answers::TemplateMade>, ApiError> {
    let made = found
        .iter()
        .map(|t| {
            let tree = Tree { tree: &t.tree, key: &t.key, name: &t.name };
            (tree, new_template(c, biz, &t.name, t.description.clone()))
        })
        .collect();
    let templates = c.rt.create_templates(made).await?;
    Ok(templates.iter().zip(found).map(|(t, f)| template_made(t, Some(f.old_id))).collect())
}

/// The templates of a YAML export (bk-sops' `schema_version: v1` documents), each under a new
/// model key; subprocesses name templates of the same file by their `meta.id`.
async fn import_yaml(c: &Call<'_>, biz: i64, text: &str) -> Result<Vec<answers::TemplateMade>, ApiError> {
    let templates = flowstone_model::parse_yaml_templates(text)
        .map_err(|e| bad(format!("`template_data` is neither a JSON export nor bk-sops YAML: {e}")))?;
    let lookup = |id: &str| templates.iter().find(|t| t.id == id).map(|t| t.tree.clone());
    let trees = templates
        .iter()
        .map(|t| inline_subprocesses(&t.tree, &lookup))
        .collect::<Result<Vec<_>, _>>()
        .map_err(RuntimeError::Model)?;
    let found = templates
        .iter()
        .zip(trees)
        .map(|(t, tree)| Imported {
            old_id: t.id.clone(),
            key: pipeline_key(),
            name: t.name.clone(),
            description: t.description.clone(),
            tree,
        })
        .collect();
    import_all(c, biz, found).await
}

/// The tree with the task's constant values in place of the template's.
fn with_constants(mut tree: Value, constants: &Map<String, Value>) -> Value {
    if let Some(Value::Object(defined)) = tree.get_mut("constants") {
        for (key, value) in constants {
            if let Some(Value::Object(c)) = defined.get_mut(key) {
                c.insert("value".into(), value.clone());
            }
        }
    }
    tree
}

fn task_url(c: &Call<'_>, t: &BkTaskRow) -> String {
    format!("{}{BASE}/get_task_detail/?bk_biz_id={}&task_id={}", c.origin, t.biz_id, t.id)
}

/// `create_task`: a task of a template (or, from `fast_create_task`, of a raw tree) with
/// constants, started at once by `create_and_start_task` (`start`); answers what it shows.
async fn create_task(c: &Call<'_>, start: bool) -> Result<Value, ApiError> {
    let name = c.required("name")?;
    let biz_id = c.number("bk_biz_id")?;
    let constants = match c.json("constants")? {
        None => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(bad("parameter `constants` must be an object of `${KEY}: value`")),
    };
    let flow_type = c.text("flow_type").unwrap_or_else(|| "common".into());
    // Every parameter is checked before a model is deployed: a refused call leaves none behind.
    let (template_id, template_model, tree) = if c.text("template_id").is_some() {
        let template = template_of(c).await?;
        let tree = tree_of(c, &template.model_id).await?;
        (Some(template.id), Some(template.model_id), tree)
    } else if c.params.contains_key("pipeline_tree") {
        (None, None, call_tree(c).await?)
    } else {
        return Err(bad("a task needs a `template_id` (or, with fast_create_task, a `pipeline_tree`)"));
    };
    let left_out = left_out_nodes(c, &tree)?;
    let (tree, model_id, own) = trimmed(tree, template_model, &left_out)?;
    let task = BkTaskRow {
        id: 0,
        biz_id,
        template_id,
        name,
        creator: c.user.clone(),
        executor: None,
        model_id: model_id.clone(),
        instance_id: None,
        constants: Value::Object(constants.clone()).to_string(),
        create_method: "api".into(),
        flow_type,
        created_at: now_ms(),
        started_at: None,
    };
    let key = pipeline_key();
    let own = own.then(|| Tree { tree: &tree, key: &key, name: &task.name });
    let task = c.rt.create_bk_task(own, task.clone(), start.then(|| c.user.clone())).await?;
    let tree = with_constants(tree, &constants);
    Ok(json!(answers::TaskMade { task_id: task.id, task_url: task_url(c, &task), pipeline_tree: tree }))
}

/// The tree a task runs without the nodes `left_out`, with the model it runs: that
/// of its template (`template_model`) when none is left out, else one of its own (`true`, to
/// deploy: its id is empty).
fn trimmed(
    tree: Value,
    template_model: Option<String>,
    left_out: &[String],
) -> Result<(Value, String, bool), ApiError> {
    Ok(match template_model {
        Some(model_id) if left_out.is_empty() => (tree, model_id, false),
        // A raw tree, or one without the nodes left out: the task runs a model of its own.
        _ if left_out.is_empty() => (tree, String::new(), true),
        _ => {
            let tree = exclude_nodes(&tree, left_out).map_err(|e| bad(format!("cannot leave nodes out: {e}")))?.0;
            (tree, String::new(), true)
        }
    })
}

async fn task_of(c: &Call<'_>, id: i64) -> Result<BkTaskRow, ApiError> {
    let biz = c.number("bk_biz_id")?;
    task_in(c, id).await?.ok_or_else(|| ApiError::not_found(format!("task {id} of business {biz} does not exist")))
}

/// Task `id`, when it is of the call's business.
async fn task_in(c: &Call<'_>, id: i64) -> Result<Option<BkTaskRow>, ApiError> {
    let biz = c.number("bk_biz_id")?;
    Ok(c.rt.store().bk_task(id).await?.filter(|t| t.biz_id == biz))
}

async fn start_task(c: &Call<'_>, id: i64) -> Result<(), ApiError> {
    let task = task_of(c, id).await?;
    Ok(c.rt.start_bk_task(&task, c.user.clone()).await?)
}

async fn operate_task(c: &Call<'_>) -> Result<Value, ApiError> {
    let id = c.number("task_id")?;
    match c.required("action")?.as_str() {
        "start" => start_task(c, id).await.map(|()| json!({})),
        "revoke" => {
            let instance = started_instance(&task_of(c, id).await?)?;
            c.rt.apply(&instance, Command::Cancel).await?;
            Ok(json!({}))
        }
        action @ ("pause" | "resume") => {
            let instance = started_instance(&task_of(c, id).await?)?;
            let command = if action == "pause" {
                Command::Pause { subprocess: None }
            } else {
                Command::Unpause { subprocess: None }
            };
            c.rt.apply(&instance, command).await?;
            Ok(json!({}))
        }
        other => Err(bad(format!("action `{other}` is not one of start, pause, resume, revoke"))),
    }
}

/// `operate_node`: `callback` and `resume` (with `data`) finish a waiting node, `retry`
/// runs a failed one again (with `data.inputs` over its inputs), `skip` goes on past a failed
/// one, `forced_fail` fails a running one.
async fn operate_node(c: &Call<'_>) -> Result<(), ApiError> {
    let action = c.required("action")?;
    let data = c.json("data")?.unwrap_or_else(|| json!({}));
    node_command(c, &action, data).await
}

/// The process instance of a task, once started.
async fn instance_of(c: &Call<'_>, task: &BkTaskRow) -> Result<Option<InstanceRow>, ApiError> {
    match &task.instance_id {
        Some(id) => Ok(c.rt.instance(id).await?),
        None => Ok(None),
    }
}

/// An instance's start, end and seconds elapsed (until now while it runs).
fn times(instance: Option<&InstanceRow>) -> (Option<i64>, Option<i64>, i64) {
    let (start, end) = (instance.map(|p| p.start_time), instance.and_then(|p| p.end_time));
    (start, end, start.map_or(0, |s| (end.unwrap_or_else(now_ms) - s) / 1000))
}

/// The process instance of a started task.
fn started_instance(task: &BkTaskRow) -> Result<String, ApiError> {
    task.instance_id.clone().ok_or_else(|| ApiError::conflict(format!("task {} has not been started", task.id)))
}

async fn node_command(c: &Call<'_>, action: &str, data: Value) -> Result<(), ApiError> {
    let task = task_of(c, c.number("task_id")?).await?;
    let node = c.required("node_id")?;
    let instance = started_instance(&task)?;
    // A subprocess has no record of its own: it is paused and resumed by its node id.
    let subprocess = match action {
        "pause_subproc" => Some(Command::Pause { subprocess: Some(node.clone()) }),
        "resume_subproc" => Some(Command::Unpause { subprocess: Some(node.clone()) }),
        _ => None,
    };
    if let Some(command) = subprocess {
        c.rt.apply(&instance, command).await?;
        return Ok(());
    }
    let records = c.rt.tasks_of_instance(&instance).await?;
    let record = records
        .iter()
        .rev()
        .find(|r| r.record.element == node)
        .map(|r| r.record.id.clone())
        .ok_or_else(|| ApiError::not_found(format!("node `{node}` has not run in task {}", task.id)))?;
    let object = |v: &Value| v.as_object().cloned().unwrap_or_default();
    let command = match action {
        "callback" | "resume" => Command::Callback { task: record, outputs: object(&data) },
        "retry" => Command::ReRun {
            task: record,
            action: None,
            parameters: object(data.get("inputs").unwrap_or(&data)),
            outputs: Map::new(),
        },
        "skip" => Command::Skip { task: record },
        "forced_fail" => Command::ForceFail { task: record, reason: format!("forced to fail by {}", c.user) },
        "skip_exg" => {
            let flow = data
                .get("flow_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| c.text("flow_id"))
                .ok_or_else(|| bad("skip_exg needs the `flow_id` to take (in `data` or beside it)"))?;
            Command::ChooseFlow { task: record, flow }
        }
        other => {
            return Err(bad(format!(
                "action `{other}` is not one of callback, resume, retry, skip, forced_fail, skip_exg, pause_subproc, resume_subproc"
            )));
        }
    };
    c.rt.apply(&instance, command).await?;
    Ok(())
}

/// How many tasks' state trees one `get_tasks_status` reads at most (each is a few store reads).
const MOST_STATUSES: usize = 200;

/// `get_tasks_status`: the status of each task of `task_id_list`.
async fn tasks_status(c: &Call<'_>) -> Result<Value, ApiError> {
    let ids = c.task_ids(MOST_STATUSES)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let task = task_of(c, id).await?;
        out.push(answers::TaskStatusOf {
            id: task.id,
            start_time: task.started_at.map(time).unwrap_or_default(),
            url: task_url(c, &task),
            status: status::status_of(c, &task).await?,
            create_time: time(task.created_at),
            name: task.name,
            flow_type: task.flow_type,
        });
    }
    Ok(json!(out))
}

/// `get_task_node_detail` (with the node's earlier runs) and `get_task_node_data`: a node's
/// inputs, outputs and failure.
async fn node_detail(c: &Call<'_>, with_history: bool) -> Result<Value, ApiError> {
    let task = task_of(c, c.number("task_id")?).await?;
    let node = c.required("node_id")?;
    let instance = started_instance(&task)?;
    let records = c.rt.tasks_of_instance(&instance).await?;
    let runs: Vec<_> = records.iter().map(|r| &r.record).filter(|r| r.element == node).collect();
    let current = runs
        .iter()
        .rev()
        .find(|r| r.id == r.task_id)
        .ok_or_else(|| ApiError::not_found(format!("node `{node}` has not run in task {}", task.id)))?;
    let inputs = |r: &flowstone_engine::TaskRecord| {
        let mut p = r.params.as_ref().and_then(Value::as_object).cloned().unwrap_or_default();
        p.remove("namespace");
        p.remove("queue");
        Value::Object(p)
    };
    let outputs = current
        .outputs
        .as_ref()
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| answers::NodeOutput { key: k.clone(), name: k.clone(), value: v.clone(), preset: false })
        .collect();
    let histories = with_history.then(|| {
        runs.iter()
            .filter(|r| r.id != r.task_id)
            .map(|r| answers::NodeRun {
                state: status::node_state(r.status, r.end_time.is_some()),
                inputs: inputs(r),
                ex_data: r.reason.clone().unwrap_or_default(),
                start_time: zoned_time(Some(r.create_time)),
                finish_time: zoned_time(r.end_time),
            })
            .collect()
    });
    Ok(json!(answers::NodeDetail {
        name: current.name.clone(),
        state: status::node_state(current.status, current.end_time.is_some()),
        inputs: inputs(current),
        outputs,
        ex_data: current.reason.clone().unwrap_or_default(),
        start_time: zoned_time(Some(current.create_time)),
        finish_time: zoned_time(current.end_time),
        elapsed_time: (current.end_time.unwrap_or_else(now_ms) - current.create_time) / 1000,
        retry: runs.iter().filter(|r| r.id != r.task_id).count(),
        skip: current.status == TaskStatus::Skipped,
        loops: runs.iter().filter(|r| r.id == r.task_id).count(),
        component_code: current.stone.clone().unwrap_or_default(),
        histories,
        id: node,
    }))
}

async fn task_detail(c: &Call<'_>) -> Result<Value, ApiError> {
    let task = task_of(c, c.number("task_id")?).await?;
    let instance = instance_of(c, &task).await?;
    let given: Map<String, Value> = serde_json::from_str(&task.constants).unwrap_or_default();
    let tree = with_constants(tree_of(c, &task.model_id).await?, &given);
    let variables: Map<String, Value> = match &instance {
        Some(p) => c.rt.variables(&p.id).await?.unwrap_or_default(),
        None => Map::new(),
    };
    let constants = tree.get("constants").and_then(Value::as_object).cloned().unwrap_or_default();
    let outputs = tree
        .get("outputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|key| answers::TaskOutput {
            key: key.to_owned(),
            name: constants.get(key).and_then(|c| c.get("name")).cloned().unwrap_or_else(|| json!(key)),
            value: variables.get(constant_variable(key)).cloned().unwrap_or(Value::Null),
        })
        .collect();
    let (start, end, elapsed) = times(instance.as_ref());
    Ok(json!(answers::TaskDetail {
        id: task.id,
        instance_name: task.name.clone(),
        executor: task.executor.clone().unwrap_or_default(),
        create_time: time(task.created_at),
        start_time: start.map(time).unwrap_or_default(),
        end_time: end.map(time).unwrap_or_default(),
        finish_time: end.map(time).unwrap_or_default(),
        elapsed_time: elapsed,
        project_id: task.biz_id,
        project_name: task.biz_id.to_string(),
        business_id: task.biz_id,
        business_name: task.biz_id.to_string(),
        template_id: task.template_id.map(|t| t.to_string()).unwrap_or_default(),
        task_url: task_url(c, &task),
        constants,
        outputs,
        ex_data: instance.as_ref().and_then(|p| p.failure.clone()).unwrap_or_default(),
        pipeline_tree: tree,
        name: task.name,
        creator: task.creator,
        create_method: task.create_method,
    }))
}
