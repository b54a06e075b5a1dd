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

/// A query string read into `T`; a malformed one is a 400 naming what was wrong (axum's own
/// rejection is plain text, outside every dialect's error shape). A handler of a dialect with
/// another shape takes `Result<Query<T>, ApiError>` and converts.
pub(crate) struct Query<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(q)) => Ok(Query(q)),
            Err(e) => Err(ApiError::bad_request(format!("malformed query: {}", e.body_text()))),
        }
    }
}

/// Parses a JSON body; an empty body (or `null`) reads as `{}` when `empty_ok`.
pub(crate) fn json_object(body: &Bytes, empty_ok: bool) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) || (empty_ok && body.trim_ascii() == b"null") {
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
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Paging {
    /// The page, from 1 (default 1).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 9_223_372_036_854_775_u64)]
    page: Option<String>,
    /// Items per page, from 1 to 1000 (default 20).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    size: Option<String>,
}

/// The last page anyone may ask for: its end, at 1000 a page, still fits an i64.
const MAX_PAGE: u64 = 9_223_372_036_854_775;

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
        // The offset of the last page's end must fit an i64 (the stores' offsets).
        Ok((num("page", &self.page, 1, MAX_PAGE)?, num("size", &self.size, 20, 1000)?))
    }
}
