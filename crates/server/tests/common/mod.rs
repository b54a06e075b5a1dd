//! A real server on a free port over a fresh SQLite file, and a client for it.
#![allow(dead_code, unreachable_pub)]

use flowstone_server::{Anonymous, BkApp, Config, HttpLimits, RuntimeOptions, Server};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which database a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub server: Option<Server>,
    pub base: String,
    pub client: Client,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database URL, or `None` for SQLite in `dir`.
    pub database: Option<String>,
}

/// The password of the test servers' `admin`.
pub const PASSWORD: &str = "test-admin";
/// The bk-sops application every test server knows (code, secret).
pub const BK_APP: (&str, &str) = ("esb_test", "test-secret");
/// A bk-sops application of every test server that may reach one business (code, secret, business).
pub const LIMITED_APP: (&str, &str, &str) = ("esb_limited", "limited-secret", "2");

/// A client that sends HTTP Basic `user:password` with every request.
pub fn signed_in(user_password: &str) -> Client {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(user_password);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, must(format!("Basic {basic}").parse()));
    must(Client::builder().default_headers(headers).build())
}

/// A bk-sops answer read as the refusal it is: bk-sops answers a refusal with HTTP 200, its
/// envelope's `result: false` and a code of its `gcloud.err_code`; this names that code by the
/// HTTP status it stands for (and checks the HTTP status was 200), so that tests say "404".
pub async fn bk_answer(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let body: Value = must(resp.json().await);
    if body["result"] != Value::Bool(false) || status != StatusCode::OK {
        return (status, body);
    }
    let stands_for = match body["code"].as_u64() {
        Some(3_540_000) => StatusCode::BAD_REQUEST,
        Some(3_540_100) if body["message"].as_str().is_some_and(|m| m.contains("may not")) => StatusCode::FORBIDDEN,
        Some(3_540_100) => StatusCode::UNAUTHORIZED,
        Some(3_540_400) => StatusCode::NOT_FOUND,
        Some(3_545_000) => StatusCode::CONFLICT,
        Some(3_545_100) => StatusCode::NOT_IMPLEMENTED,
        other => panic!("a refusal with HTTP 200 and an unknown code {other:?}: {body}"),
    };
    (stands_for, body)
}

impl TestServer {
    /// Calls bk-sops' `api` with the test app's credentials added to `params` (acting as `ops`
    /// unless `bk_username` is given).
    pub async fn bk_call(&self, api: &str, params: Value) -> (StatusCode, Value) {
        let mut body = params.as_object().cloned().unwrap_or_default();
        body.insert("bk_app_code".into(), json!(BK_APP.0));
        body.insert("bk_app_secret".into(), json!(BK_APP.1));
        body.entry("bk_username").or_insert(json!("ops"));
        let url = format!("{}/api/c/compapi/v2/sops/{api}/", self.base);
        bk_answer(must(reqwest::Client::new().post(url).json(&body).send().await)).await
    }

    /// The data of bk-sops' answer to `api`, which must be an answer.
    pub async fn bk_ok(&self, api: &str, params: Value) -> Value {
        let (status, body) = self.bk_call(api, params).await;
        assert_eq!((status, &body["result"]), (StatusCode::OK, &json!(true)), "{api}: {body}");
        body["data"].clone()
    }
}

pub fn must<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// A new database on the test PostgreSQL (see `PgStore::test_database`).
pub async fn postgres_database() -> Option<String> {
    flowstone_store::PgStore::test_database("flowstone_http").await
}

impl TestServer {
    /// A server with the example models deployed, on a database of its own.
    pub async fn start(backend: Backend) -> Option<Self> {
        let dir = must(tempfile::tempdir());
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres_database().await?),
        };
        Some(Self::start_on(dir, database).await)
    }

    /// A server whose stone jobs all wait for workers.
    pub async fn start_for_workers(backend: Backend) -> Option<Self> {
        Self::start_configured(backend, |_| RuntimeOptions { stones: Vec::new(), ..RuntimeOptions::default() }).await
    }

    /// A server whose runtime options `configure` makes, given the test's directory.
    pub async fn start_configured(backend: Backend, configure: impl FnOnce(&Path) -> RuntimeOptions) -> Option<Self> {
        let dir = must(tempfile::tempdir());
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres_database().await?),
        };
        let options = configure(dir.path());
        Some(Self::start_with(dir, database, options).await)
    }

    /// A server on `database` (SQLite in `dir` when `None`), with the examples deployed.
    pub async fn start_on(dir: tempfile::TempDir, database: Option<String>) -> Self {
        let stones = flowstone_worker::builtin(&dir.path().join("machines"));
        Self::start_with(dir, database, RuntimeOptions { stones, ..RuntimeOptions::default() }).await
    }

    /// A server whose HTTP bounds are `http`.
    pub async fn start_http(backend: Backend, http: HttpLimits) -> Option<Self> {
        let dir = must(tempfile::tempdir());
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres_database().await?),
        };
        let stones = flowstone_worker::builtin(&dir.path().join("machines"));
        Some(Self::start_full(dir, database, RuntimeOptions { stones, ..RuntimeOptions::default() }, http).await)
    }

    async fn start_with(dir: tempfile::TempDir, database: Option<String>, runtime: RuntimeOptions) -> Self {
        Self::start_full(dir, database, runtime, HttpLimits::default()).await
    }

    /// A server on SQLite where requests without credentials act as `anonymous`.
    pub async fn start_anonymous(anonymous: Anonymous) -> Self {
        let dir = must(tempfile::tempdir());
        Self::start_config(dir, None, RuntimeOptions::default(), HttpLimits::default(), Some(anonymous)).await
    }

    async fn start_full(
        dir: tempfile::TempDir,
        database: Option<String>,
        runtime: RuntimeOptions,
        http: HttpLimits,
    ) -> Self {
        Self::start_config(dir, database, runtime, http, None).await
    }

    async fn start_config(
        dir: tempfile::TempDir,
        database: Option<String>,
        runtime: RuntimeOptions,
        http: HttpLimits,
        anonymous: Option<Anonymous>,
    ) -> Self {
        let config = Config {
            listen: must("127.0.0.1:0".parse()),
            data_dir: dir.path().to_owned(),
            database: database.clone(),
            load_examples: true,
            runtime,
            admin_password: Some(PASSWORD.into()),
            bk_apps: vec![
                BkApp { code: BK_APP.0.into(), secret: BK_APP.1.into(), businesses: None },
                BkApp {
                    code: LIMITED_APP.0.into(),
                    secret: LIMITED_APP.1.into(),
                    businesses: Some(vec![LIMITED_APP.2.into()]),
                },
            ],
            http,
            anonymous,
        };
        let server = must(Server::start(&config).await);
        let base = format!("http://{}", server.addr());
        Self { server: Some(server), base, client: signed_in(&format!("admin:{PASSWORD}")), dir, database }
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// The server's runtime, for what a test must reach below the API.
    pub fn runtime(&self) -> &flowstone_server::Runtime {
        self.server.as_ref().map(|s| s.runtime()).unwrap_or_else(|| panic!("the server is stopped"))
    }

    /// Stops the server and starts a new one on the same database.
    pub async fn restart(mut self) -> Self {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        Self::start_on(self.dir, self.database).await
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_with(&self.client, method, path, body).await
    }

    /// A request sent by `client` (another user's, or one without credentials).
    pub async fn call_with(
        &self,
        client: &Client,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = must(req.send().await);
        let status = resp.status();
        let text = must(resp.text().await);
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn put(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(Method::PUT, path, body).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        content_type: &str,
    ) -> (StatusCode, Value) {
        let resp = must(
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await,
        );
        let status = resp.status();
        let text = must(resp.text().await);
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn deploy(&self, xml: &str) -> Value {
        let (status, body) = self.post_raw("/model", xml.to_owned(), "application/xml").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn start_process(&self, key: &str, variables: Value) -> Value {
        let (status, body) = self
            .call(Method::POST, "/process", Some(json!({"key": key, "processName": "t", "variables": variables})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn process(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/process/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn tasks(&self, id: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/task?processInstanceId={id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().cloned().unwrap_or_default()
    }

    /// Polls until the process leaves `running` or has been unchanged for 200 ms (it waits
    /// for a person or an absent worker).
    pub async fn settle_or_wait(&self, id: &str) -> Value {
        let mut last = self.process(id).await;
        let mut same = 0;
        while last["processStatus"] == "running" && same < 4 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.process(id).await;
            same = if now == last { same + 1 } else { 0 };
            last = now;
        }
        last
    }

    /// The machines `MachineStone` has made and not removed.
    pub fn machines(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("machines")).map(|d| d.count()).unwrap_or(0)
    }

    /// Polls until the process shows `status`, at most 10 s.
    pub async fn wait_for(&self, id: &str, status: &str) -> Value {
        let mut p = Value::Null;
        for _ in 0..200 {
            p = self.process(id).await;
            if p["processStatus"] == status {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("process {id} is not {status} after 10 s: {p}");
    }

    /// Polls until the process leaves `running` (stones run asynchronously), at most 10 s.
    pub async fn settle(&self, id: &str) -> Value {
        for _ in 0..200 {
            let p = self.process(id).await;
            if p["processStatus"] != "running" {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("process {id} still running after 10 s");
    }
}

/// The shared conformance and bench material, beside the repository. `None` (after saying so
/// loudly) when it is absent on a user's clone; in CI its absence fails the test.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FLOWSTONE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("../shared is missing, and CI=true: the conformance material must be there");
    }
    eprintln!("SKIPPED: {} is absent, so tests over the shared material did not run", dir.display());
    None
}

/// One test per named function, in `mod sqlite` and in `mod postgres`. With
/// `server = START`, each function takes a `TestServer` made by `START(backend)` (its `None`
/// skips the test); with `backend`, each takes the `Backend` itself.
#[macro_export]
macro_rules! backend_tests {
    (server = $start:expr; $($name:ident),* $(,)?) => {
        $crate::backend_tests!(@server sqlite, Sqlite, $start, $($name),*);
        $crate::backend_tests!(@server postgres, Postgres, $start, $($name),*);
    };
    (backend; $($name:ident),* $(,)?) => {
        $crate::backend_tests!(@backend sqlite, Sqlite, $($name),*);
        $crate::backend_tests!(@backend postgres, Postgres, $($name),*);
    };
    (@server $module:ident, $backend:ident, $start:expr, $($name:ident),*) => {
        mod $module {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(s) = ($start)($crate::common::Backend::$backend).await else { return };
                    super::$name(s).await;
                }
            )*
        }
    };
    (@backend $module:ident, $backend:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::$backend).await;
                }
            )*
        }
    };
}

/// The JSON type of a value, numbers as one type.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Where `ours` lacks a field of `example` or has it with another type (a null in the example,
/// or in ours where the example has a value that may be absent, says nothing of the type).
/// Lists are compared by their first elements (named ones with ours of that name).
pub fn differences(path: &str, example: &Value, ours: &Value, out: &mut Vec<String>) {
    match (example, ours) {
        (Value::Object(e), Value::Object(o)) => {
            for (field, ev) in e {
                match o.get(field) {
                    None => out.push(format!("{path}.{field} is missing")),
                    Some(ov) => differences(&format!("{path}.{field}"), ev, ov, out),
                }
            }
        }
        (Value::Array(e), Value::Array(o)) => {
            // Named items (variables) are compared with ours of the same name, when we have one.
            let ev = e.first();
            let named =
                ev.and_then(|ev| o.iter().find(|ov| ev.get("name").is_some() && ov.get("name") == ev.get("name")));
            if let (Some(ev), Some(ov)) = (ev, named.or(o.first())) {
                differences(&format!("{path}[0]"), ev, ov, out);
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (e, o) if kind(e) != kind(o) => out.push(format!("{path} is {} here, {} in the example", kind(o), kind(e))),
        _ => {}
    }
}

/// Whether `value` conforms to `schema` of the OpenAPI document `doc` (the JSON Schema the
/// document uses: `$ref`, `type`, `enum`, `required`, `properties`, `additionalProperties`,
/// `items`, `allOf`, `oneOf`); answers where it does not. A field an object's schema does not
/// name is a misfit too: an answer says nothing its document does not.
pub fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    walk(doc, schema, value, at, true)
}

/// The schema `$ref` names, or `schema` itself.
fn resolved<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    }
}

/// The properties `schema` names, its `allOf` parts' among them; none when it names none.
fn named(doc: &Value, schema: &Value) -> Option<Vec<String>> {
    let schema = resolved(doc, schema);
    let own = schema["properties"].as_object().map(|p| p.keys().cloned().collect::<Vec<_>>());
    let parts = schema["allOf"].as_array().into_iter().flatten().filter_map(|p| named(doc, p));
    parts.fold(own, |all, more| Some(all.unwrap_or_default().into_iter().chain(more).collect()))
}

/// As [`conforms`]; `strict`: a field the schema (with its `allOf` parts) does not name is a
/// misfit.
fn walk(doc: &Value, schema: &Value, value: &Value, at: &str, strict: bool) -> Result<(), String> {
    let schema = resolved(doc, schema);
    for part in schema["allOf"].as_array().into_iter().flatten() {
        walk(doc, part, value, at, false)?;
    }
    if let (true, Value::Object(fields), Some(names)) = (strict, value, named(doc, schema))
        && schema["additionalProperties"].is_null()
        && let Some(name) = fields.keys().find(|f| !names.contains(f))
    {
        return Err(format!("{at}: `{name}` is not in the schema"));
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let errors: Vec<String> = options.iter().filter_map(|o| walk(doc, o, value, at, strict).err()).collect();
        if errors.len() == options.len() {
            return Err(format!("{at}: fits no option: {errors:?}"));
        }
    }
    let kind = |t: &str| match t {
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => false,
    };
    let fits = match &schema["type"] {
        Value::String(t) => kind(t),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(kind),
        _ => true,
    };
    if !fits {
        return Err(format!("{at}: {value} is not of type {}", schema["type"]));
    }
    if let Some(allowed) = schema["enum"].as_array().filter(|a| !a.contains(value)) {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Value::Object(fields) = value {
        for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !fields.contains_key(name) {
                return Err(format!("{at}: `{name}` is missing"));
            }
        }
        for (name, field) in fields {
            let declared = &schema["properties"][name.as_str()];
            let rule = if declared.is_null() { &schema["additionalProperties"] } else { declared };
            if rule.is_object() {
                walk(doc, rule, field, &format!("{at}.{name}"), true)?;
            }
        }
    }
    if let (Value::Array(items), Some(rule)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            walk(doc, rule, item, &format!("{at}[{i}]"), true)?;
        }
    }
    Ok(())
}

/// A bk-sops tree: `a` fails with "disk full" (unless run again without its `fail` input), then
/// `b` (`pause_node`) waits for a callback.
pub fn bk_fail_then_callback() -> Value {
    json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f3"]},
        "activities": {
            "a": {"id": "a", "type": "ServiceActivity", "incoming": ["f1"], "outgoing": "f2",
                  "component": {"code": "noop", "data": {"fail": {"hook": false, "value": "disk full"}}}},
            "b": {"id": "b", "type": "ServiceActivity", "incoming": ["f2"], "outgoing": "f3",
                  "component": {"code": "pause_node", "data": {}}}
        },
        "gateways": {},
        "flows": {"f1": {"id": "f1", "source": "s", "target": "a"}, "f2": {"id": "f2", "source": "a", "target": "b"},
                  "f3": {"id": "f3", "source": "b", "target": "e"}}
    })
}
