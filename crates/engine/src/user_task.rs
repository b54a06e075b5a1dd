//! User tasks: the model's assignment expressions evaluated when a task is created.

use crate::effect::{DEFAULT_PRIORITY, UserTaskInfo};
use crate::instance::{Fail, Instance};
use crate::scope::ScopeId;
use flowstone_expr::Expression;
use flowstone_model::{Node, UserTaskSpec, parse_instant};
use serde_json::Value;

impl Instance {
    /// Evaluates a user task's name, people, priority and due date in its scope; a value of
    /// the wrong shape fails the instance, naming the attribute.
    pub(crate) fn user_task_info(
        &self,
        spec: &UserTaskSpec,
        node: &Node,
        scope: Option<ScopeId>,
        now: i64,
    ) -> Result<UserTaskInfo, Fail> {
        let text = |expr: &Option<Expression>| -> Result<Option<String>, Fail> {
            expr.as_ref().map(|e| self.eval(e, scope)).transpose().map(|v| v.and_then(text_value))
        };
        let list = |expr: &Option<Expression>| -> Result<Vec<String>, Fail> {
            Ok(expr.as_ref().map(|e| self.eval(e, scope)).transpose()?.map(list_value).unwrap_or_default())
        };
        let priority = match spec.priority.as_ref().map(|e| self.eval(e, scope)).transpose()? {
            None | Some(Value::Null) => DEFAULT_PRIORITY,
            Some(v) => priority_value(&v)
                .ok_or_else(|| Fail(format!("priority of user task '{}' is not a whole number: {v}", node.id)))?,
        };
        let due_date =
            match spec.due_date.as_ref().map(|e| self.eval(e, scope)).transpose()? {
                None | Some(Value::Null) => None,
                Some(v) => Some(due_value(&v, now).ok_or_else(|| {
                    Fail(format!("dueDate of user task '{}' is not a date or a duration: {v}", node.id))
                })?),
            };
        Ok(UserTaskInfo {
            name: match &spec.name {
                Some(_) => text(&spec.name)?,
                None => node.name.clone(),
            },
            description: text(&spec.description)?,
            assignee: text(&spec.assignee)?,
            owner: text(&spec.owner)?,
            candidate_users: list(&spec.candidate_users)?,
            candidate_groups: list(&spec.candidate_groups)?,
            priority,
            due_date,
            form_key: spec.form_key.clone(),
            category: spec.category.clone(),
        })
    }
}

/// A string attribute's value: none when empty or null.
fn text_value(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// Candidates given as `a, b`, as a list, or as one name.
fn list_value(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.into_iter().filter_map(text_value).collect(),
        Value::String(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        other => text_value(other).into_iter().collect(),
    }
}

fn priority_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A due date given as milliseconds, an ISO-8601 date-time (UTC when it has no offset), a
/// date, or an ISO-8601 duration from now.
pub(crate) fn due_value(v: &Value, now: i64) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => parse_instant(s.trim()).or_else(|| {
            let span: jiff::Span = s.trim().parse().ok()?;
            let start = jiff::Timestamp::from_millisecond(now).ok()?;
            start.to_zoned(jiff::tz::TimeZone::UTC).checked_add(span).ok().map(|z| z.timestamp().as_millisecond())
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_dates_are_dates_millis_or_durations_from_now() {
        assert_eq!(due_value(&Value::from("PT1H"), 1_000), Some(3_601_000));
        assert_eq!(due_value(&Value::from("P2D"), 0), Some(2 * 86_400_000));
        assert_eq!(due_value(&Value::from(5), 0), Some(5));
        assert_eq!(due_value(&Value::from(true), 0), None);
    }

    #[test]
    fn candidates_come_from_comma_lists_arrays_and_single_names() {
        assert_eq!(list_value(Value::from(" kermit, gonzo ,")), ["kermit", "gonzo"]);
        assert_eq!(list_value(serde_json::json!(["a", null, "b"])), ["a", "b"]);
        assert_eq!(list_value(Value::Null), Vec::<String>::new());
    }
}
