//! Reading request bodies and queries with messages that name what was wrong.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};

/// The raw request body; a body over the limit answers 413 in the dialect's error shape.
pub(crate) struct Body(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state).await.map(Body).map_err(ApiError::rejected)
    }
}

/// Parses a JSON body; an empty body reads as `{}` when `empty_ok`.
pub(crate) fn json_object(body: &Bytes, empty_ok: bool) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if empty_ok {
            Ok(Map::new())
        } else {
            Err(ApiError::bad_request("the request body is empty; a JSON object is required"))
        };
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => {
            Err(ApiError::bad_request(format!("the request body must be a JSON object, not {}", kind(&other))))
        }
        Err(e) => Err(ApiError::bad_request(format!("malformed JSON in the request body: {e}"))),
    }
}

/// A JSON type's name for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Paging of list endpoints: `page` from 1, `size` from 1 to 1000 (default 20).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Paging {
    page: Option<String>,
    size: Option<String>,
}

impl Paging {
    pub(crate) fn resolve(&self) -> Result<(u64, u64), ApiError> {
        let num = |name: &str, v: &Option<String>, default: u64, max: u64| -> Result<u64, ApiError> {
            match v {
                None => Ok(default),
                Some(t) => t.parse::<u64>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
                    ApiError::bad_request(format!("`{name}` must be a whole number from 1 to {max}, not `{t}`"))
                }),
            }
        };
        Ok((num("page", &self.page, 1, u64::MAX / 2000)?, num("size", &self.size, 20, 1000)?))
    }
}
