//! Flowable REST variables: `{name, type, value, scope}` read into JSON values by their
//! declared type, and JSON values written back with the type Flowable would name.

use super::service_url;
use super::tasks::task_path;
use crate::error::ApiError;
use crate::runtime::Runtime;
use flowstone_store::{TaskVariable, UserTaskRow};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use utoipa::ToSchema;

/// A Flowable REST variable: `{name, type, value, scope}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct RestVariable {
    /// Its name. Required.
    #[schema(required = true, value_type = String, min_length = 1)]
    pub(super) name: Option<String>,
    /// The type its value is read as (the value's own JSON type when none); the value must
    /// fit it.
    #[serde(rename = "type")]
    #[schema(pattern = "^(string|short|integer|long|double|boolean|date|json)$")]
    pub(super) kind: Option<String>,
    pub(super) value: Option<Value>,
    /// `local` (the default) or `global`, where a scope is taken.
    #[schema(pattern = "^(local|global)$")]
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
        scope(self.scope.as_deref())?;
        let value = self.value.clone().unwrap_or(Value::Null);
        let bad = |kind: &str| ApiError::bad_request(format!("variable `{name}`: {value} is not a valid {kind}"));
        let Some(kind) = self.kind.as_deref() else {
            let kind = type_name(&value).unwrap_or("null").to_owned();
            return Ok((value, kind));
        };
        let unknown = || ApiError::bad_request(format!("variable `{name}`: unknown type `{kind}` (use {TYPES})"));
        let read = match (kind, &value) {
            ("string" | "short" | "integer" | "long" | "double" | "boolean" | "date" | "json", Value::Null) => {
                Value::Null
            }
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
            _ => return Err(unknown()),
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

/// Flowable REST's type name of a JSON value (none for null).
pub(super) fn type_name(value: &Value) -> Option<&'static str> {
    match value {
        Value::Null => None,
        Value::Bool(_) => Some("boolean"),
        Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => Some("integer"),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some("long"),
        Value::Number(_) => Some("double"),
        Value::String(_) => Some("string"),
        Value::Array(_) | Value::Object(_) => Some("json"),
    }
}

/// A variable as Flowable REST answers it, on a task, an instance, the history or a job.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Variable {
    pub(super) name: String,
    /// `string`, `integer`, `long`, `double`, `boolean`, `date`, `json`, `binary` or
    /// `serializable`; null for a null value.
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    /// The value (null for a binary one, or one left out of a list for its size: then
    /// `valueUrl` says where to read it).
    pub(super) value: Value,
    /// `local` or `global`, on a task or a running instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) scope: Option<&'static str>,
    /// `local` or `global`, in the history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) variable_scope: Option<&'static str>,
    /// Where the value is read, when it is not here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) value_url: Option<String>,
}

impl Variable {
    /// A JSON value named `name`, its type read from the value.
    pub(super) fn of(name: String, value: Value) -> Variable {
        let kind = type_name(&value).map(str::to_owned);
        Variable { name, kind, value, scope: None, variable_scope: None, value_url: None }
    }

    /// Without its value when that is over [`LISTED_VALUE_BYTES`]; `url` names where the
    /// whole variable is read.
    pub(super) fn left_out_if_big(mut self, url: impl FnOnce() -> String) -> Variable {
        let big = serde_json::to_string(&self.value).map_or(0, |t| t.len()) > LISTED_VALUE_BYTES;
        if big {
            self.value = Value::Null;
            self.value_url = Some(url());
        }
        self
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

/// A task's variable, read from where it is kept.
pub(super) struct Shown {
    pub(super) name: String,
    pub(super) scope: Scope,
    pub(super) kind: Option<String>,
    pub(super) value: Value,
    pub(super) binary: bool,
}

impl Shown {
    pub(super) fn local(v: TaskVariable) -> Shown {
        let binary = v.bytes.is_some();
        let value = v.value.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
        Shown { name: v.name, scope: Scope::Local, kind: Some(v.kind), value, binary }
    }

    pub(super) fn global(name: String, value: Value) -> Shown {
        Shown { name, scope: Scope::Global, kind: type_name(&value).map(str::to_owned), value, binary: false }
    }

    /// As the task's variable resources answer it.
    pub(super) fn answer(self, origin: &str, task: &str) -> Variable {
        let scope = if self.scope == Scope::Local { "local" } else { "global" };
        let data = self.binary.then(|| variable_url(origin, task, &format!("{}/data", self.name)));
        let (name, kind, value) = (self.name, self.kind, self.value);
        Variable { name, kind, value, scope: Some(scope), variable_scope: None, value_url: data }
    }

    /// As [`Shown::answer`], in a list: a value over [`LISTED_VALUE_BYTES`] is left out, and
    /// `valueUrl` says where to read it.
    pub(super) fn listed(self, origin: &str, task: &str) -> Variable {
        let url = variable_url(origin, task, &self.name);
        self.answer(origin, task).left_out_if_big(|| url)
    }
}

/// The URL of a task's variable `path` (its name, or its name and `/data`).
fn variable_url(origin: &str, task: &str, path: &str) -> String {
    service_url(origin, &format!("{}/variables/{path}", task_path(task)))
}

/// How large a variable's value may be, as JSON, to be shown in a list: a list of a thousand
/// items, each with variables of megabytes, would take gigabytes to answer.
pub(super) const LISTED_VALUE_BYTES: usize = 64 * 1024;

/// The process variables of the tasks of one answer, read once per instance.
#[derive(Default)]
pub(super) struct ProcessVariables(HashMap<String, Map<String, Value>>);

impl ProcessVariables {
    /// The variables of `task`'s instance (none for a standalone task).
    pub(super) async fn of(&mut self, rt: &Runtime, task: &UserTaskRow) -> Result<Map<String, Value>, ApiError> {
        let Some(instance) = &task.instance_id else { return Ok(Map::new()) };
        if let Some(vars) = self.0.get(instance) {
            return Ok(vars.clone());
        }
        let vars = rt.variables(instance).await?.unwrap_or_default();
        self.0.insert(instance.clone(), vars.clone());
        Ok(vars)
    }
}

/// The task's variables in `scope` (both when none, locals first, a local hiding a process
/// variable of its name); `process` holds the process variables read so far.
pub(super) async fn shown(
    rt: &Runtime,
    task: &UserTaskRow,
    scope: Option<Scope>,
    process: &mut ProcessVariables,
) -> Result<Vec<Shown>, ApiError> {
    let mut out = Vec::new();
    if scope != Some(Scope::Global) {
        out.extend(rt.store().task_variables(&task.id).await?.into_iter().map(Shown::local));
    }
    if scope != Some(Scope::Local) {
        let vars = process.of(rt, task).await?;
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
        assert!(typed(json!({"name": "a", "type": "", "value": null})).is_err(), "a null of an unknown type");
        assert!(typed(json!({"type": "string", "value": "x"})).is_err(), "a name is required");
    }
}
