//! `query_task_count`: how many of a business's tasks fall in each group of one dimension,
//! counted by the database.

use super::{Call, bad};
use crate::error::ApiError;
use flowstone_store::{BkTaskGroup, BkTaskQuery, Page};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// The conditions bk-sops documents for task counts, and the task fields it also filters on.
const CONDITIONS: &str = "template_id, name, creator, executor, create_method, flow_type, is_started, is_finished, \
                          create_time__gte, create_time__lte, start_time__gte, start_time__lte";

/// How many tasks, in all and in each group (`query_task_count`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TaskCounts {
    pub(super) total: u64,
    pub(super) groups: Vec<TaskGroup>,
}

/// The tasks of one group.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TaskGroup {
    pub(super) code: String,
    pub(super) name: String,
    pub(super) value: u64,
}

impl TaskGroup {
    fn of(code: &str, value: u64) -> Self {
        TaskGroup { code: code.to_owned(), name: code.to_owned(), value }
    }
}

/// `group_by` is `status` (`CREATED`, `EXECUTING`, `FINISHED`, each listed), `create_method`,
/// `flow_type` or `category` (every task is in `Default`); `conditions` filter the tasks
/// counted. `data` is `{total, groups: [{code, name, value}]}`.
pub(super) async fn task_count(c: &Call<'_>) -> Result<Value, ApiError> {
    let biz_id = c.number("bk_biz_id").or_else(|_| c.number("project_id"))?;
    let conditions = match c.json("conditions")? {
        None => Map::new(),
        Some(Value::Object(conditions)) => conditions,
        Some(other) => return Err(bad(format!("parameter `conditions` must be an object of filters, not {other}"))),
    };
    let group = match c.text("group_by").as_deref() {
        Some("status") => Some(BkTaskGroup::Status),
        Some("create_method") => Some(BkTaskGroup::CreateMethod),
        Some("flow_type") => Some(BkTaskGroup::FlowType),
        Some("category") => None,
        other => {
            return Err(bad(format!(
                "parameter `group_by` must be one of category, create_method, flow_type, status, not {}",
                other.map_or_else(|| "nothing".to_owned(), |o| format!("`{o}`"))
            )));
        }
    };
    let query = query_of(biz_id, &conditions)?;
    let store = c.rt.store();
    let counts = match group {
        Some(group) => store.bk_task_counts(&query, group).await?,
        None => vec![("Default".to_owned(), store.bk_tasks(&query, Page { offset: 0, limit: 0 }).await?.1)],
    };
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let groups: Vec<TaskGroup> = if group == Some(BkTaskGroup::Status) {
        let count = |code: &str| counts.iter().find(|(c, _)| c == code).map_or(0, |(_, n)| *n);
        ["CREATED", "EXECUTING", "FINISHED"].map(|code| TaskGroup::of(code, count(code))).into()
    } else {
        counts.iter().map(|(code, n)| TaskGroup::of(code, *n)).collect()
    };
    Ok(json!(TaskCounts { total, groups }))
}

/// The tasks of business `biz_id` that meet the conditions; as bk-sops, a condition whose
/// value is `""` or `"None"` is left out.
fn query_of(biz_id: i64, conditions: &Map<String, Value>) -> Result<BkTaskQuery, ApiError> {
    let mut query = BkTaskQuery { biz_id, ..BkTaskQuery::default() };
    for (key, value) in conditions {
        if matches!(value, Value::Null) || matches!(value.as_str(), Some("" | "None")) {
            continue;
        }
        let text = || match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(bad(format!("condition `{key}` must be text, not {value}"))),
        };
        let flag = || match value {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if matches!(s.as_str(), "true" | "True" | "1") => Ok(true),
            Value::String(s) if matches!(s.as_str(), "false" | "False" | "0") => Ok(false),
            _ => Err(bad(format!("condition `{key}` must be true or false, not {value}"))),
        };
        let moment = || text().and_then(|t| moment(key, &t));
        match key.as_str() {
            "template_id" => {
                let t = text()?;
                query.template_id =
                    Some(t.parse().map_err(|_| bad(format!("condition `template_id` must be a number, not `{t}`")))?);
            }
            "name" => query.name = Some(text()?),
            "creator" => query.creator = Some(text()?),
            "executor" => query.executor = Some(text()?),
            "create_method" => query.create_method = Some(text()?),
            "flow_type" => query.flow_type = Some(text()?),
            "is_started" => query.started = Some(flag()?),
            "is_finished" => query.finished = Some(flag()?),
            "create_time__gte" => query.created.from = Some(moment()?),
            "create_time__lte" => query.created.to = Some(moment()?),
            "start_time__gte" => query.started_span.from = Some(moment()?),
            "start_time__lte" => query.started_span.to = Some(moment()?),
            other => return Err(bad(format!("condition `{other}` is not one of {CONDITIONS}"))),
        }
    }
    Ok(query)
}

/// A time as bk-sops' conditions write it (`2018-07-12 10:00:00` or `2018-07-12`, in UTC), in
/// milliseconds since the epoch.
fn moment(key: &str, text: &str) -> Result<i64, ApiError> {
    let civil = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", text).or_else(|_| {
        jiff::civil::Date::strptime("%Y-%m-%d", text).map(|d| d.to_datetime(jiff::civil::Time::midnight()))
    });
    civil
        .and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC))
        .map(|t| t.timestamp().as_millisecond())
        .map_err(|_| bad(format!("condition `{key}` must be a time such as `2018-07-12 10:00:00`, not `{text}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_become_a_query_and_unknown_or_malformed_ones_are_refused() {
        let conditions = json!({"is_started": true, "creator": "ops", "template_id": "7", "name": "",
                                "create_time__gte": "2018-07-12 10:00:00", "start_time__lte": "2018-07-13"});
        let query = query_of(2, conditions.as_object().unwrap_or(&Map::new())).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((query.started, query.creator.as_deref(), query.template_id), (Some(true), Some("ops"), Some(7)));
        assert_eq!(query.name, None, "an empty value is left out");
        assert_eq!(query.created.from, Some(1_531_389_600_000));
        assert_eq!(query.started_span.to, Some(1_531_440_000_000));
        for bad in [json!({"colour": "red"}), json!({"is_started": "maybe"}), json!({"create_time__gte": "noon"})] {
            assert!(query_of(2, bad.as_object().unwrap_or(&Map::new())).is_err(), "{bad}");
        }
    }
}
