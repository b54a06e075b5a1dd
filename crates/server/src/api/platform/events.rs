//! `POST /message` and `POST /signal`: events sent to the processes that wait for them.

use super::ApiResult;
use crate::api::input::Body;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::runtime::{EventIn, Reached, Runtime};
use axum::extract::{Extension, State};
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
}

impl EventRequest {
    fn read(body: &[u8], caller: &Caller, signal: bool) -> ApiResult<EventIn> {
        let req: EventRequest = crate::api::worker::parse(body)?;
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
        Ok(EventIn {
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
        })
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

/// `POST /message`: correlates a message to one waiting instance, or starts one.
#[utoipa::path(post, path = "/message", tag = "platform", request_body = EventRequest,
    responses(
        (status = 200, description = "The instance that got the message, or that it started", body = MessageReached),
        (status = 400, description = "A malformed message; the message names what", body = ErrorBody),
        (status = 404, description = "No instance waits for it and no model starts with it", body = ErrorBody),
    ))]
pub(super) async fn send_message(
    State(rt): State<Runtime>,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<MessageReached>> {
    let message = EventRequest::read(&body, &caller, false)?;
    Ok(Json(match rt.correlate(&message, true).await? {
        Reached::Waiting { instance_id, record_id } => {
            MessageReached { instance_id, task_id: Some(record_id), started: false }
        }
        Reached::Started(row) => MessageReached { instance_id: row.id, task_id: None, started: true },
    }))
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
    let signal = EventRequest::read(&body, &caller, true)?;
    let done = rt.broadcast(&signal).await?;
    Ok(Json(SignalReached { reached: done.waits, started: done.started.into_iter().map(|r| r.id).collect() }))
}
