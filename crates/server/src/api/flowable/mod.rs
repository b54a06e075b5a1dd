//! Flowable REST: the external worker API (`/flowable-rest/external-job-api/`) and the
//! service API (`/flowable-rest/service/`), in Flowable's field names, dates, status codes
//! and error bodies, so that Flowable clients run against Flowstone unchanged.

mod activities;
mod events;
mod filters;
mod forms;
mod identity;
mod instances;
mod jobs;
mod management;
mod migration;
mod repository;
mod task_history;
mod task_parts;
mod tasks;
mod variables;

use crate::error::{ApiError, FlowableError};
use axum::Router;
use axum::http::{HeaderMap, header};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

type FlowableResult<T> = Result<T, FlowableError>;

/// Where Flowable REST serves its service API.
const SERVICE: &str = "/flowable-rest/service";

/// Flowable REST's part of the OpenAPI document.
pub(super) fn api() -> utoipa::openapi::OpenApi {
    let mut doc = jobs::api();
    for part in [
        tasks::api(),
        task_parts::api(),
        task_history::api(),
        instances::api(),
        activities::api(),
        events::api(),
        repository::api(),
        identity::api(),
        management::api(),
        migration::api(),
        forms::api(),
    ] {
        doc.merge(part);
    }
    doc
}

pub(super) fn routes() -> Router<crate::api::App> {
    Router::new()
        .merge(jobs::routes())
        .merge(identity::routes())
        .merge(repository::routes())
        .merge(instances::routes())
        .merge(activities::routes())
        .merge(events::routes())
        .merge(tasks::routes())
        .merge(task_parts::routes())
        .merge(task_history::routes())
        .merge(management::routes())
        .merge(migration::routes())
        .merge(forms::routes())
}

/// `http://host` of the request, for the `url` fields.
fn origin(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

/// The absolute URL of a service API path.
fn service_url(origin: &str, path: &str) -> String {
    format!("{origin}{SERVICE}/{path}")
}

/// A time as Flowable REST writes it: `2013-04-17T10:17:43.902+0000`, in UTC (none for a
/// time no calendar holds).
fn iso_time(ms: i64) -> Option<String> {
    time_as(ms, "%Y-%m-%dT%H:%M:%S%.3f+0000")
}

/// A time in milliseconds since the epoch, in UTC, written with `pattern`.
fn time_as(ms: i64, pattern: &str) -> Option<String> {
    jiff::Timestamp::from_millisecond(ms).ok().map(|t| t.strftime(pattern).to_string())
}

/// A request's parameters, from a query string or a JSON body, read with Flowable's rules
/// and messages: strings, numbers and booleans are taken in either form.
struct Params<'a>(&'a Map<String, Value>);

impl Params<'_> {
    fn text(&self, name: &str) -> Option<String> {
        match self.0.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => Ok(s.trim().parse().ok()),
            Some(other) => {
                Err(ApiError::bad_request(format!("Parameter '{name}' must be a whole number, not {other}")))
            }
        }
    }

    fn flag(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(other) => Err(ApiError::bad_request(format!("Parameter '{name}' must be true or false, not {other}"))),
        }
    }

    fn date(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.text(name) {
            None => Ok(None),
            Some(text) => flowstone_engine::parse_instant(&text).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!("Parameter '{name}' must be an ISO-8601 date, not '{text}'"))
            }),
        }
    }
}

/// The most items one page holds: a larger `size` gets this many (the answer's `size` says
/// how many came, `total` how many there are), so no list answer can grow without bound.
pub(crate) const MAX_PAGE_SIZE: u64 = 1000;

/// Flowable's paging: `start` (from 0), `size` (default 10, at most [`MAX_PAGE_SIZE`]),
/// `sort` among `allowed` (the first is the default), `order` `asc` or `desc`.
struct Paging<'a> {
    start: u64,
    size: u64,
    sort: &'a str,
    descending: bool,
}

impl<'a> Paging<'a> {
    fn read(params: &Params<'_>, allowed: &[&'a str]) -> Result<Paging<'a>, ApiError> {
        let start = params.int("start")?.unwrap_or(0);
        let size = params.int("size")?.unwrap_or(10);
        if start < 0 || size < 0 {
            return Err(ApiError::bad_request("Parameters 'start' and 'size' must not be negative"));
        }
        let sort = match params.text("sort") {
            None => allowed[0],
            Some(s) => allowed.iter().copied().find(|a| *a == s).ok_or_else(|| {
                ApiError::bad_request(format!("Value for param 'sort' is not valid, '{s}' is not a valid property"))
            })?,
        };
        let descending = match params.text("order").as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Value for param 'order' is not valid : '{other}', must be 'asc' or 'desc'"
                )));
            }
        };
        Ok(Paging { start: start as u64, size: (size as u64).min(MAX_PAGE_SIZE), sort, descending })
    }

    fn page(&self) -> flowstone_store::Page {
        flowstone_store::Page { offset: self.start, limit: self.size }
    }

    /// Flowable's list envelope around one page of `data`.
    fn envelope<T>(&self, data: Vec<T>, total: u64) -> Listed<T> {
        let order = if self.descending { "desc" } else { "asc" };
        Listed { size: data.len(), data, total, start: self.start, sort: self.sort.to_owned(), order: order.to_owned() }
    }
}

/// One page of a list, as Flowable pages its lists.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Listed<T> {
    data: Vec<T>,
    /// How many items the filters leave, on every page.
    total: u64,
    /// The first item of the page.
    start: u64,
    /// The property the list is sorted by.
    sort: String,
    /// `asc` or `desc`.
    order: String,
    /// How many items this page holds.
    size: usize,
}

/// A query string as a parameter map (every value a string).
fn query_map(query: Option<&str>) -> Result<Map<String, Value>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    Ok(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_have_the_seed_shape() {
        assert_eq!(iso_time(1_366_193_863_902).as_deref(), Some("2013-04-17T10:17:43.902+0000"));
    }

    #[test]
    fn params_take_strings_and_typed_values_alike() {
        let map = query_map(Some("size=5&active=true&priority=x")).unwrap_or_default();
        let p = Params(&map);
        assert_eq!(p.int("size").ok().flatten(), Some(5));
        assert_eq!(p.flag("active").ok().flatten(), Some(true));
        assert!(p.int("priority").is_err());
        let body = json!({"size": 3, "active": false}).as_object().cloned().unwrap_or_default();
        assert_eq!(Params(&body).int("size").ok().flatten(), Some(3));
    }

    #[test]
    fn a_page_holds_at_most_the_cap_whatever_size_is_asked() {
        let map = query_map(Some("size=100000")).unwrap_or_default();
        assert_eq!(Paging::read(&Params(&map), &["id"]).map(|p| p.size).ok(), Some(MAX_PAGE_SIZE));
        let map = query_map(Some("size=7")).unwrap_or_default();
        assert_eq!(Paging::read(&Params(&map), &["id"]).map(|p| p.size).ok(), Some(7));
    }

    #[test]
    fn paging_refuses_unknown_sorts_and_orders() {
        let map = query_map(Some("sort=color")).unwrap_or_default();
        assert!(Paging::read(&Params(&map), &["id"]).is_err());
        let map = query_map(Some("order=up")).unwrap_or_default();
        assert!(Paging::read(&Params(&map), &["id"]).is_err());
    }
}
