//! `POST /message` and `POST /signal`: events sent to the processes that wait for them.

use super::ApiResult;
use crate::api::format::platform_date;
use crate::api::input::Body;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::runtime::{EventIn, MAX_TTL_MS, Reached, Runtime, Sent};
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new().route("/message", post(send_message)).route("/signal", post(send_signal))
}

/// A message or signal for the processes that wait for it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EventRequest {
    /// The message's or signal's name, as the model's `<message name>` or `<signal name>`.
    #[schema(min_length = 1)]
    name: String,
    /// A message's correlation key (text or a number): only an instance whose wait has this
    /// key gets it. Without one, the oldest wait for the name does.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    correlation_key: Option<Value>,
    /// Variables set where the event is caught (the variables of an instance it starts).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    variables: Option<Value>,
    /// A message's time to live: when nothing waits for it (and no model starts with it), it
    /// is kept this long for the first wait that begins — an ISO-8601 duration (`PT10M`) or
    /// a number of seconds, at most 30 days. Without one, such a message is refused (404).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    ttl: Option<Value>,
}

impl EventRequest {
    /// The event, and for a message with a time to live when it runs out.
    fn read(body: &[u8], caller: &Caller, signal: bool) -> ApiResult<(EventIn, Option<i64>)> {
        let req: EventRequest = crate::api::worker::parse(body)?;
        let expires_at = match &req.ttl {
            None | Some(Value::Null) => None,
            Some(_) if signal => return Err(ApiError::bad_request("a signal has no `ttl`: it is never kept")),
            Some(ttl) => Some(expiry(ttl)?),
        };
        if req.name.trim().is_empty() {
            return Err(ApiError::bad_request("`name` is required: the message's or signal's name"));
        }
        let key = match req.correlation_key {
            None | Some(Value::Null) => None,
            Some(_) if signal => {
                return Err(ApiError::bad_request("a signal has no `correlationKey`: it reaches every wait"));
            }
            Some(Value::String(text)) => Some(text),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                return Err(ApiError::bad_request(format!("`correlationKey` must be text or a number, not {other}")));
            }
        };
        let event = EventIn {
            name: req.name,
            key,
            variables: match req.variables {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(vars)) => vars,
                Some(other) => {
                    return Err(ApiError::bad_request(format!("`variables` must be a JSON object, not {other}")));
                }
            },
            tenant: caller.tenant_limit().map(str::to_owned),
            business_key: None,
            sender: Some(caller.user.clone()),
        };
        Ok((event, expires_at))
    }
}

/// When a message sent now with time to live `ttl` runs out.
fn expiry(ttl: &Value) -> ApiResult<i64> {
    let now = crate::runtime::now_ms();
    let refused = || {
        ApiError::bad_request(format!(
            "`ttl` must be an ISO-8601 duration (PT10M) or a number of seconds, above zero and at most 30 days, not {ttl}"
        ))
    };
    let ms = match ttl {
        Value::Number(n) => n.as_f64().filter(|s| s.is_finite()).map(|s| (s * 1000.0) as i64),
        Value::String(text) => flowstone_model::Schedule::parse(flowstone_model::TimerKind::Duration, text)
            .ok()
            .and_then(|d| d.first(now))
            .map(|at| at - now),
        _ => None,
    };
    match ms {
        Some(ms) if ms > 0 && ms <= MAX_TTL_MS => Ok(now + ms),
        _ => Err(refused()),
    }
}

/// Where a message went.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct MessageReached {
    /// The instance that got it, or that it started.
    instance_id: String,
    /// The waiting task record that got it; none when it started an instance.
    task_id: Option<String>,
    /// Whether a message start event started the instance.
    started: bool,
}

/// A message nothing waited for, kept for its time to live.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct MessageKept {
    /// The kept message's id.
    message_id: String,
    /// When it runs out, taken or not (`yyyy-MM-dd HH:mm:ss`).
    expires_at: String,
}

/// `POST /message`: correlates a message to one waiting instance, or starts one; with a
/// `ttl`, keeps one nothing takes for the first wait that begins.
#[utoipa::path(post, path = "/message", tag = "platform", request_body = EventRequest,
    responses(
        (status = 200, description = "The instance that got the message, or that it started", body = MessageReached),
        (status = 202, description = "Nothing took it: it is kept for its time to live", body = MessageKept),
        (status = 400, description = "A malformed message; the message names what", body = ErrorBody),
        (status = 404, description = "No instance waits for it, no model starts with it, and it has no ttl", body = ErrorBody),
    ))]
pub(super) async fn send_message(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Response> {
    let (message, expires_at) = EventRequest::read(&body, &caller, false)?;
    let sent = match expires_at {
        Some(at) => rt.correlate_or_keep(&message, at).await?,
        None => Sent::Reached(rt.correlate(&message, true).await?),
    };
    Ok(match sent {
        Sent::Reached(Reached::Waiting { instance_id, record_id }) => {
            Json(MessageReached { instance_id, task_id: Some(record_id), started: false }).into_response()
        }
        Sent::Reached(Reached::Started(row)) => {
            Json(MessageReached { instance_id: row.id, task_id: None, started: true }).into_response()
        }
        Sent::Kept(kept) => {
            let answer = MessageKept { message_id: kept.id, expires_at: platform_date(kept.expires_at) };
            (StatusCode::ACCEPTED, Json(answer)).into_response()
        }
    })
}

/// What a signal reached.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct SignalReached {
    /// How many waits of running instances got it.
    reached: u64,
    /// The instances its start events started.
    started: Vec<String>,
}

/// `POST /signal`: broadcasts a signal to every wait for it, and starts the models that
/// start with it.
#[utoipa::path(post, path = "/signal", tag = "platform", request_body = EventRequest,
    responses(
        (status = 200, description = "How many waits it reached, and the instances it started", body = SignalReached),
        (status = 400, description = "A malformed signal; the message names what", body = ErrorBody),
    ))]
pub(super) async fn send_signal(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<SignalReached>> {
    let (signal, _) = EventRequest::read(&body, &caller, true)?;
    let done = rt.broadcast(&signal).await?;
    Ok(Json(SignalReached { reached: done.waits, started: done.started.into_iter().map(|r| r.id).collect() }))
}
