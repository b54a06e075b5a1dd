//! `POST /history/prune`: history retention, an addition to the platform dialect. Ended
//! processes go with everything they own (task records, passes, user tasks and their parts,
//! the processes they called, their rollback, cancel and delete instances).

use super::ApiResult;
use crate::api::input::Body;
use crate::error::{ApiError, ErrorBody};
use crate::runtime::{Pruned, Runtime, now_ms};
use axum::Json;
use axum::extract::State;
use flowstone_store::PruneQuery;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Top-level processes one request removes at most: a request answers within seconds, and a
/// client asks again while `more` is true.
const MAX_LIMIT: u64 = 100_000;
/// What one request removes when it names no `limit`.
const DEFAULT_LIMIT: u64 = 10_000;

/// Which ended processes to remove.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PruneRequest {
    /// Only processes that ended longer ago than this: `30d`, `12h`, `1h 30m` or an ISO-8601
    /// duration (`P30D`, `PT12H`). Required; `0s` is every ended one.
    #[schema(value_type = String)]
    older_than: Value,
    /// Only processes of this model key.
    #[serde(default)]
    model: Option<String>,
    /// Only processes that ended so: `success`, `failed` or `canceled`.
    #[serde(default)]
    status: Option<String>,
    /// Only processes of models deployed for this tenant.
    #[serde(default)]
    tenant_id: Option<String>,
    /// At most this many top-level processes (10,000 when not given, at most 100,000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100_000)]
    limit: Option<u64>,
    /// Count what would go, and remove nothing.
    #[serde(default)]
    dry_run: bool,
}

/// What a prune removed (or, dry, would remove).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PruneAnswer {
    #[serde(flatten)]
    pruned: Pruned,
    /// Whether nothing was removed, only counted.
    dry_run: bool,
}

/// The time `age` (`30d`, `12h`, `P30D`) before `now`; a refusal names `field`.
pub(super) fn time_ago(age: &Value, now: i64, field: &str) -> ApiResult<i64> {
    let refused =
        || ApiError::bad_request(format!("`{field}` must be a duration such as `30d`, `12h` or `P30D`, not {age}"));
    let ago = match age {
        Value::String(text) => text.trim().parse::<jiff::Span>().map_err(|_| refused())?,
        _ => return Err(refused()),
    };
    if ago.is_negative() {
        return Err(refused());
    }
    let from = jiff::Timestamp::from_millisecond(now).map_err(|_| refused())?.to_zoned(jiff::tz::TimeZone::UTC);
    let before = from.checked_sub(ago).map_err(|_| refused())?;
    Ok(before.timestamp().as_millisecond())
}

/// The engine status a platform status of an ended process stands for.
fn ended_status(status: &str) -> ApiResult<&'static str> {
    match status {
        "success" | "completed" => Ok("completed"),
        "failed" => Ok("failed"),
        "canceled" => Ok("canceled"),
        other => Err(ApiError::bad_request(format!(
            "`status` must be one an ended process has: success, failed or canceled, not `{other}`"
        ))),
    }
}

/// `POST /history/prune`: removes ended processes and everything they own, in batches that
/// queue with live traffic, and answers how many went. Operators and administrators of
/// every tenant only.
#[utoipa::path(post, path = "/history/prune", tag = "platform", request_body = PruneRequest,
    responses(
        (status = 200, description = "How many processes went (or would go), and whether more are left past `limit`", body = PruneAnswer),
        (status = 400, description = "A malformed request; the message names what", body = ErrorBody),
        (status = 403, description = "The caller is not an operator or administrator of every tenant", body = ErrorBody),
    ))]
pub(super) async fn prune(State(rt): State<Runtime>, Body(body): Body) -> ApiResult<Json<PruneAnswer>> {
    let req: PruneRequest = crate::api::worker::parse(&body)?;
    let limit = req.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!("`limit` must be between 1 and {MAX_LIMIT}, not {limit}")));
    }
    let query = PruneQuery {
        id: None,
        ended_before: time_ago(&req.older_than, now_ms(), "olderThan")?,
        model_key: req.model,
        status: req.status.as_deref().map(ended_status).transpose()?.map(str::to_owned),
        tenant_id: req.tenant_id,
    };
    let pruned = rt.prune_history(&query, Some(limit), req.dry_run, |_| {}).await?;
    Ok(Json(PruneAnswer { pruned, dry_run: req.dry_run }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_764_892_800_000; // 2025-12-05T00:00:00Z

    #[test]
    fn ages_read_as_friendly_or_iso_durations() {
        let day = 86_400_000;
        assert_eq!(time_ago(&json!("30d"), NOW, "olderThan").ok(), Some(NOW - 30 * day));
        assert_eq!(time_ago(&json!("P30D"), NOW, "olderThan").ok(), Some(NOW - 30 * day));
        assert_eq!(time_ago(&json!("1h 30m"), NOW, "olderThan").ok(), Some(NOW - 5_400_000));
        assert_eq!(time_ago(&json!("0s"), NOW, "olderThan").ok(), Some(NOW));
        // A month back from the 5th of December is the 5th of November.
        assert_eq!(time_ago(&json!("1 month"), NOW, "olderThan").ok(), Some(NOW - 30 * day));
    }

    #[test]
    fn ages_that_are_not_durations_are_refused_naming_the_field() {
        for bad in [json!("soon"), json!(90), json!("-1d"), json!(true), json!(null), json!("9999999999y")] {
            let err = time_ago(&bad, NOW, "olderThan").err().map(|e| format!("{e:?}")).unwrap_or_default();
            assert!(err.contains("olderThan"), "{bad}: {err}");
        }
    }

    #[test]
    fn only_the_statuses_of_ended_processes_are_taken() {
        assert_eq!(ended_status("success").ok(), Some("completed"));
        assert_eq!(ended_status("canceled").ok(), Some("canceled"));
        assert!(
            ended_status("running").err().is_some_and(|e| format!("{e:?}").contains("success, failed or canceled"))
        );
    }
}
