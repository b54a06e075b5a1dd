//! Flowable REST variables: `{name, type, value, scope}` read into JSON values by their
//! declared type, and JSON values written back with the type Flowable would name.

use super::service_url;
use super::tasks::task_path;
use crate::error::ApiError;
use crate::runtime::Runtime;
use flowstone_store::{TaskVariable, UserTaskRow};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// A Flowable REST variable: `{name, type, value, scope}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct RestVariable {
    pub(super) name: Option<String>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) value: Option<Value>,
    pub(super) scope: Option<String>,
}

/// Types a value may be declared with.
const TYPES: &str = "string, short, integer, long, double, boolean, date or json";

impl RestVariable {
    /// Its name; a missing or empty one answers Flowable's 400.
    pub(super) fn name(&self) -> Result<&str, ApiError> {
        self.name.as_deref().filter(|n| !n.is_empty()).ok_or_else(|| ApiError::bad_request("Variable name is required"))
    }

    /// Its value read by its declared type, and that type (the value's own JSON type when
    /// none was declared).
    pub(super) fn typed(&self) -> Result<(Value, String), ApiError> {
        let name = self.name()?;
        let value = self.value.clone().unwrap_or(Value::Null);
        let bad = |kind: &str| ApiError::bad_request(format!("variable `{name}`: {value} is not a valid {kind}"));
        let Some(kind) = self.kind.as_deref() else {
            let kind = type_name(&value).as_str().unwrap_or("null").to_owned();
            return Ok((value, kind));
        };
        let read = match (kind, &value) {
            (_, Value::Null) => Value::Null,
            ("string", Value::String(_)) => value.clone(),
            ("string", other) => Value::String(other.to_string()),
            ("date", Value::String(s)) => {
                flowstone_engine::parse_instant(s).ok_or_else(|| bad("ISO-8601 date"))?;
                value.clone()
            }
            ("integer" | "long" | "short", Value::Number(n)) if n.is_i64() => value.clone(),
            ("integer" | "long" | "short", Value::String(s)) => {
                json!(s.trim().parse::<i64>().map_err(|_| bad("whole number"))?)
            }
            ("double", Value::Number(_)) => value.clone(),
            ("double", Value::String(s)) => json!(s.trim().parse::<f64>().map_err(|_| bad("number"))?),
            ("boolean", Value::Bool(_)) => value.clone(),
            ("boolean", Value::String(s)) if s == "true" || s == "false" => json!(s == "true"),
            ("json", Value::String(s)) => serde_json::from_str(s).map_err(|_| bad("JSON text"))?,
            ("json", _) => value.clone(),
            (kind @ ("integer" | "long" | "short" | "double" | "boolean" | "date"), _) => return Err(bad(kind)),
            (other, _) => {
                return Err(ApiError::bad_request(format!("variable `{name}`: unknown type `{other}` (use {TYPES})")));
            }
        };
        Ok((read, kind.to_owned()))
    }
}

/// Flowable REST variables as JSON values, by their declared type.
pub(super) fn variables(list: Vec<RestVariable>) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for v in list {
        let (value, _) = v.typed()?;
        out.insert(v.name()?.to_owned(), value);
    }
    Ok(out)
}

/// Flowable REST's type name of a JSON value.
pub(super) fn type_name(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::Bool(_) => json!("boolean"),
        Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => json!("integer"),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!("long"),
        Value::Number(_) => json!("double"),
        Value::String(_) => json!("string"),
        Value::Array(_) | Value::Object(_) => json!("json"),
    }
}

/// Which variables of a task: its own, or its process's.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Scope {
    /// The task's own.
    Local,
    /// The process's, through the task's scope.
    Global,
}

pub(super) fn scope(text: Option<&str>) -> Result<Option<Scope>, ApiError> {
    match text {
        None => Ok(None),
        Some("local") => Ok(Some(Scope::Local)),
        Some("global") => Ok(Some(Scope::Global)),
        Some(other) => Err(ApiError::bad_request(format!("Invalid variable scope: '{other}' (use local or global)"))),
    }
}

/// A variable as the REST API shows it.
pub(super) struct Shown {
    pub(super) name: String,
    pub(super) scope: Scope,
    pub(super) kind: Value,
    pub(super) value: Value,
    pub(super) binary: bool,
}

impl Shown {
    pub(super) fn local(v: TaskVariable) -> Shown {
        let binary = v.bytes.is_some();
        let value = v.value.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
        Shown { name: v.name, scope: Scope::Local, kind: json!(v.kind), value, binary }
    }

    pub(super) fn global(name: String, value: Value) -> Shown {
        Shown { name, scope: Scope::Global, kind: type_name(&value), value, binary: false }
    }

    pub(super) fn json(&self, origin: &str, task: &str) -> Value {
        let scope = if self.scope == Scope::Local { "local" } else { "global" };
        let mut out = json!({"name": self.name, "scope": scope, "type": self.kind, "value": self.value});
        if self.binary {
            out["valueUrl"] = json!(service_url(origin, &format!("{}/variables/{}/data", task_path(task), self.name)));
        }
        out
    }

    /// As [`Shown::json`], in a list: a value over [`LISTED_VALUE_BYTES`] is left out, and
    /// `valueUrl` says where to read it.
    pub(super) fn listed(&self, origin: &str, task: &str) -> Value {
        let out = self.json(origin, task);
        let url = || service_url(origin, &format!("{}/variables/{}", task_path(task), self.name));
        left_out_if_big(out, url)
    }
}

/// How large a variable's value may be, as JSON, to be shown in a list: a list of a thousand
/// items, each with variables of megabytes, would take gigabytes to answer.
pub(super) const LISTED_VALUE_BYTES: usize = 64 * 1024;

/// A listed variable (`{"name", "value", …}`) without its value when that is over
/// [`LISTED_VALUE_BYTES`]; `url` names where the whole variable is read.
pub(super) fn left_out_if_big(mut variable: Value, url: impl FnOnce() -> String) -> Value {
    let big =
        variable.get("value").is_some_and(|v| serde_json::to_string(v).map_or(0, |t| t.len()) > LISTED_VALUE_BYTES);
    if big {
        variable["value"] = Value::Null;
        variable["valueUrl"] = json!(url());
    }
    variable
}

/// The task's variables in `scope` (both when none, locals first).
pub(super) async fn shown(rt: &Runtime, task: &UserTaskRow, scope: Option<Scope>) -> Result<Vec<Shown>, ApiError> {
    let mut out = Vec::new();
    if scope != Some(Scope::Global) {
        out.extend(rt.store().task_variables(&task.id).await?.into_iter().map(Shown::local));
    }
    if scope != Some(Scope::Local)
        && let Some(instance) = &task.instance_id
    {
        let vars = rt.variables(instance).await?.unwrap_or_default();
        let seen: Vec<String> = out.iter().map(|s| s.name.clone()).collect();
        out.extend(vars.into_iter().filter(|(n, _)| !seen.contains(n)).map(|(n, v)| Shown::global(n, v)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(v: Value) -> RestVariable {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn declared_types_read_strings_and_refuse_what_does_not_fit() {
        let typed = |v: Value| var(v).typed().map_err(|e| e.parts().1);
        assert_eq!(typed(json!({"name": "a", "type": "long", "value": "12"})), Ok((json!(12), "long".into())));
        assert_eq!(typed(json!({"name": "a", "value": 1.5})), Ok((json!(1.5), "double".into())));
        assert_eq!(typed(json!({"name": "a", "type": "json", "value": "[1]"})), Ok((json!([1]), "json".into())));
        assert!(typed(json!({"name": "a", "type": "boolean", "value": 3})).is_err());
        assert!(typed(json!({"name": "a", "type": "date", "value": "soon"})).is_err());
        assert!(typed(json!({"name": "a", "type": "color", "value": "red"})).is_err());
        assert!(typed(json!({"type": "string", "value": "x"})).is_err(), "a name is required");
    }
}
