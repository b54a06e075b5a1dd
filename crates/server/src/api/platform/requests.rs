//! What the platform dialect is sent: one type per request, read with messages that name the
//! field that was wrong (serde's would name a line and column).

use super::super::input::{json_object, kind};
use crate::error::ApiError;
use axum::body::Bytes;
use flowstone_engine::Action;
use serde_json::{Map, Value};
use utoipa::ToSchema;

type ApiResult<T> = Result<T, ApiError>;

/// A BPMN 2.0 document: UTF-8 XML, not blank.
pub(crate) struct Bpmn(pub(crate) String);

impl utoipa::PartialSchema for Bpmn {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{ObjectBuilder, Type};
        let text = ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"\S"));
        text.description(Some("A BPMN 2.0 document: UTF-8 XML, not blank")).into()
    }
}

impl ToSchema for Bpmn {}

impl Bpmn {
    pub(crate) fn read(bytes: Bytes) -> ApiResult<Self> {
        let source =
            String::from_utf8(bytes.into()).map_err(|_| ApiError::bad_request("the model is not UTF-8 text"))?;
        if source.trim().is_empty() {
            return Err(ApiError::bad_request("the request body is empty; send the BPMN XML"));
        }
        Ok(Bpmn(source))
    }
}

/// The multipart form of a deployment.
#[derive(ToSchema)]
pub(crate) struct DeployForm {
    /// The BPMN document.
    pub(crate) file: Bpmn,
}

impl DeployForm {
    pub(crate) async fn read(mut form: axum::extract::Multipart) -> ApiResult<Self> {
        let mut file = None;
        while let Some(field) = form.next_field().await.map_err(ApiError::rejected)? {
            if field.name() == Some("file") {
                file = Some(field.bytes().await.map_err(ApiError::rejected)?);
            }
        }
        let file = file
            .ok_or_else(|| ApiError::bad_request("the multipart form has no `file` field holding the BPMN document"))?;
        Ok(DeployForm { file: Bpmn::read(file)? })
    }
}

/// `POST /process`: which model to run, under what name, with what variables.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct StartProcess {
    /// The model to run; give exactly one of `modelId`, `deploymentId` or `key`.
    #[schema(pattern = r"\S")]
    model_id: Option<String>,
    /// The deployment whose only model to run.
    #[schema(pattern = r"\S")]
    deployment_id: Option<String>,
    /// The newest model of this key (within the caller's tenant).
    #[schema(pattern = r"\S")]
    key: Option<String>,
    #[schema(pattern = r"\S")]
    pub(crate) process_name: String,
    /// The process variables.
    pub(crate) variables: Map<String, Value>,
    /// Stop at a failed stone task and wait for `reRun` or `resume` instead of failing.
    #[schema(default = false)]
    pub(crate) debug: bool,
    /// Stones do not run; each task's `mock` action answers for it.
    #[schema(default = false)]
    pub(crate) mock: bool,
    /// Answer once the process has ended, or after this many milliseconds (at most 60,000),
    /// with the record as it stands then; as the header `Prefer: wait=SECONDS` does. Without
    /// it the answer comes once the start is committed.
    #[schema(maximum = 60000)]
    pub(crate) wait: Option<u64>,
}

/// Which model a start names.
pub(crate) enum ModelChoice<'a> {
    Id(&'a str),
    Deployment(&'a str),
    Key(&'a str),
}

impl ModelChoice<'_> {
    /// The field that named it, and its value, for messages.
    pub(crate) fn named(&self) -> (&'static str, &str) {
        match self {
            ModelChoice::Id(v) => ("modelId", v),
            ModelChoice::Deployment(v) => ("deploymentId", v),
            ModelChoice::Key(v) => ("key", v),
        }
    }
}

impl StartProcess {
    pub(crate) fn read(body: &Bytes) -> ApiResult<Self> {
        let body = json_object(body, false)?;
        let owned = |field| opt_str(&body, field).map(|v| v.map(str::to_owned));
        let start = StartProcess {
            model_id: owned("modelId")?,
            deployment_id: owned("deploymentId")?,
            key: owned("key")?,
            process_name: owned("processName")?.ok_or_else(|| ApiError::bad_request("`processName` is required"))?,
            variables: match body.get("variables") {
                Some(Value::Object(v)) => v.clone(),
                None | Some(Value::Null) => {
                    return Err(ApiError::bad_request("`variables` is required: a JSON object of process variables"));
                }
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "`variables` must be a JSON object, not {}",
                        kind(other)
                    )));
                }
            },
            debug: flag(&body, "debug")?,
            mock: flag(&body, "mock")?,
            wait: wait_ms(body.get("wait"))?,
        };
        start.model()?;
        Ok(start)
    }

    /// The one model selector given.
    pub(crate) fn model(&self) -> ApiResult<ModelChoice<'_>> {
        let given: Vec<ModelChoice<'_>> = [
            self.model_id.as_deref().map(ModelChoice::Id),
            self.deployment_id.as_deref().map(ModelChoice::Deployment),
            self.key.as_deref().map(ModelChoice::Key),
        ]
        .into_iter()
        .flatten()
        .collect();
        match <[_; 1]>::try_from(given) {
            Ok([one]) => Ok(one),
            Err(given) if given.is_empty() => {
                Err(ApiError::bad_request("one of `modelId`, `deploymentId` or `key` is required"))
            }
            Err(many) => {
                let names: Vec<_> = many.iter().map(|c| format!("`{}`", c.named().0)).collect();
                Err(ApiError::bad_request(format!(
                    "give only one of `modelId`, `deploymentId` or `key`, not {}",
                    names.join(" and ")
                )))
            }
        }
    }
}

/// `PUT /task/{id}/reRun`'s body, as JSON or as a form.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct ReRun {
    /// The action to run again (default: the one that failed).
    #[schema(value_type = Option<String>, example = "start")]
    pub(crate) queue_type: Option<Action>,
    /// Parameters replacing the task's (a JSON object, or its text in a form).
    pub(crate) parameters: Map<String, Value>,
    /// Outputs for monitor, rollback, cancel and delete (a JSON object, or its text).
    pub(crate) outputs: Map<String, Value>,
}

impl ReRun {
    /// The command that runs `task` (its record or activity-instance id) again as asked.
    pub(crate) fn command(self, task: String) -> flowstone_engine::Command {
        flowstone_engine::Command::ReRun {
            task,
            action: self.queue_type,
            parameters: self.parameters,
            outputs: self.outputs,
        }
    }

    pub(crate) fn read(input: &Map<String, Value>) -> ApiResult<Self> {
        let queue_type = match opt_str(input, "queueType")? {
            None => None,
            Some(name) => Some(Action::parse(name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`queueType` must be start, monitor, mock, rollback, cancel or delete, not `{name}`"
                ))
            })?),
        };
        Ok(ReRun {
            queue_type,
            parameters: embedded_object(input, "parameters")?,
            outputs: embedded_object(input, "outputs")?,
        })
    }
}

/// Reads an optional string field, refusing other types by name.
fn opt_str<'a>(body: &'a Map<String, Value>, field: &str) -> ApiResult<Option<&'a str>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Err(ApiError::bad_request(format!("`{field}` is empty"))),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ApiError::bad_request(format!("`{field}` must be a string, not {}", kind(other)))),
    }
}

/// Reads a wait in milliseconds (`"wait"`, `?wait=`): at most [`MAX_WAIT`](crate::runtime::MAX_WAIT).
pub(crate) fn wait_ms(value: Option<&Value>) -> ApiResult<Option<u64>> {
    let max = crate::runtime::MAX_WAIT.as_millis() as u64;
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|ms| ms <= max) => Ok(n.as_u64()),
        Some(other) => Err(ApiError::bad_request(format!("`wait` must be milliseconds from 0 to {max}, not {other}"))),
    }
}

/// The wait a `Prefer: wait=SECONDS` header asks for (RFC 7240), in milliseconds, at most
/// [`MAX_WAIT`](crate::runtime::MAX_WAIT); other preferences are ignored, as the RFC says.
pub(crate) fn preferred_wait(headers: &axum::http::HeaderMap) -> Option<u64> {
    let max = crate::runtime::MAX_WAIT.as_millis() as u64;
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|p| p.trim().strip_prefix("wait=")?.trim().parse::<u64>().ok())
        .map(|seconds| seconds.saturating_mul(1000).min(max))
        .next()
}

/// Reads an optional boolean field (absent is false).
fn flag(body: &Map<String, Value>, field: &str) -> ApiResult<bool> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(ApiError::bad_request(format!("`{field}` must be true or false, not {}", kind(other)))),
    }
}

/// A body of a task operation: a JSON object (empty reads as `{}`), or a form, read as an
/// object of strings.
pub(crate) fn operation_body(body: &Bytes, form: bool) -> ApiResult<Map<String, Value>> {
    if form { form_object(body) } else { json_object(body, true) }
}

/// A form-encoded body as an object of strings.
fn form_object(body: &[u8]) -> ApiResult<Map<String, Value>> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| ApiError::bad_request(format!("malformed form body: {e}")))?;
    Ok(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

/// A field holding a JSON object, or its text (as form fields carry it); absent reads as `{}`.
fn embedded_object(input: &Map<String, Value>, field: &str) -> ApiResult<Map<String, Value>> {
    let bad = |what: String| ApiError::bad_request(format!("`{field}` must be a JSON object, not {what}"));
    match input.get(field) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(Map::new()),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(bad(kind(&other).to_owned())),
            Err(e) => Err(bad(format!("malformed JSON ({e})"))),
        },
        Some(other) => Err(bad(kind(other).to_owned())),
    }
}
