//! Form properties at work: a user task's form (its model's form properties, or where it has
//! none a form of its process's variables), the values it is filled from, and what was filled
//! in read back as typed variables — a whole number for `long`, a number for `double`, true or
//! false for `boolean`, one of its values for `enum`, the date as `YYYY-MM-DD` for `date`, text
//! otherwise. A required field left empty, a value of the wrong type or a non-writable field
//! are named in a 400, and nothing is set then. The console draws these forms; Flowable's
//! `form/form-data` answers and takes them.

use crate::error::ApiError;
use crate::runtime::Runtime;
use flowstone_model::{Definition, FormKind, FormProperty, NodeKind};
use flowstone_store::UserTaskRow;
use serde_json::{Map, Value};

/// The form properties of the user task `element` of `def` (none when it is no user task).
pub(crate) fn properties(def: &Definition, element: &str) -> Vec<FormProperty> {
    match def.node_by_element(element).map(|n| &def.node(n).kind) {
        Some(NodeKind::UserTask(spec)) => spec.form.clone(),
        _ => Vec::new(),
    }
}

/// The form properties of the user task `element` of model version `model_id` (none when the
/// model or the element is gone, or it has none).
pub(crate) async fn of(
    rt: &Runtime,
    model_id: Option<&str>,
    element: Option<&str>,
) -> Result<Vec<FormProperty>, ApiError> {
    let (Some(model_id), Some(element)) = (model_id, element) else { return Ok(Vec::new()) };
    let Some(model) = rt.model(model_id).await? else { return Ok(Vec::new()) };
    Ok(properties(rt.definition(&model)?.as_ref(), element))
}

/// The variables of a user task's process (none for a task of no process).
pub(crate) async fn values_of(rt: &Runtime, task: &UserTaskRow) -> Result<Map<String, Value>, ApiError> {
    Ok(match task.instance_id.as_deref() {
        Some(instance) => rt.variables(instance).await?.unwrap_or_default(),
        None => Map::new(),
    })
}

/// The most fields a form made of a process's variables shows.
const DERIVED: usize = 20;

/// A user task's form.
pub(crate) struct TaskForm {
    /// Its model's form properties, or where it has none a field for each of the process's
    /// variables that holds text, a number or true or false (at most [`DERIVED`], by name),
    /// typed as its value is.
    pub(crate) fields: Vec<FormProperty>,
    /// The fields are the model's.
    pub(crate) modelled: bool,
}

impl TaskForm {
    /// The form of a task whose model gives it `properties`, its process holding `values`.
    pub(crate) fn new(properties: Vec<FormProperty>, values: &Map<String, Value>) -> TaskForm {
        let modelled = !properties.is_empty();
        TaskForm { fields: if modelled { properties } else { derived(values) }, modelled }
    }
}

/// The form of a user task (see [`TaskForm`]) and the variables of its process it is filled
/// from.
pub(crate) async fn of_task(rt: &Runtime, task: &UserTaskRow) -> Result<(TaskForm, Map<String, Value>), ApiError> {
    let values = values_of(rt, task).await?;
    let properties = of(rt, task.model_id.as_deref(), task.element.as_deref()).await?;
    Ok((TaskForm::new(properties, &values), values))
}

/// A form of the scalar variables among `values`.
fn derived(values: &Map<String, Value>) -> Vec<FormProperty> {
    let mut names: Vec<(&String, FormKind)> = values
        .iter()
        .filter_map(|(name, value)| {
            let kind = match value {
                Value::String(_) => FormKind::Text,
                Value::Bool(_) => FormKind::Boolean,
                Value::Number(n) if n.is_i64() => FormKind::Long,
                Value::Number(_) => FormKind::Double,
                _ => return None,
            };
            Some((name, kind))
        })
        .collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    names.into_iter().take(DERIVED).map(|(name, kind)| FormProperty::plain(name, kind)).collect()
}

/// The value a property shows as text: its variable's where it is readable and set, else its
/// default.
pub(crate) fn shown(p: &FormProperty, values: &Map<String, Value>) -> Option<String> {
    match (values.get(p.variable()).filter(|v| p.readable && !v.is_null()), &p.default) {
        (Some(Value::String(text)), _) => Some(text.clone()),
        (Some(other), _) => Some(other.to_string()),
        (None, default) => default.clone(),
    }
}

/// The variables a filled-in `form` sets, typed; refused naming the first field that is wrong.
///
/// `given` answers every value sent for a property (by its id): a ticked checkbox sends
/// `false` then `true`, so that one shown and left unticked reads as false and a box not
/// sent at all changes nothing.
pub(crate) fn read<'a>(
    form: &[FormProperty],
    given: impl Fn(&str) -> Vec<&'a str>,
) -> Result<Map<String, Value>, ApiError> {
    let mut variables = Map::new();
    for p in form {
        let sent = given(&p.id);
        let given = sent.first().map(|g| g.trim());
        if !p.writable {
            if given.is_some_and(|g| !g.is_empty()) {
                return Err(ApiError::bad_request(format!("`{}` is not writable", p.label())));
            }
            continue;
        }
        if p.kind == FormKind::Boolean {
            if given.is_some() {
                let ticked = sent.iter().any(|v| v.trim() == "true");
                variables.insert(p.variable().to_owned(), Value::Bool(ticked));
            }
            continue;
        }
        let Some(text) = given.filter(|g| !g.is_empty()) else {
            if p.required {
                return Err(ApiError::bad_request(format!("`{}` is required", p.label())));
            }
            continue;
        };
        let wrong = |what: &str| ApiError::bad_request(format!("`{}` must be {what}, not `{text}`", p.label()));
        let value = match &p.kind {
            FormKind::Long => Value::from(text.parse::<i64>().map_err(|_| wrong("a whole number"))?),
            FormKind::Double => {
                let number = text.parse::<f64>().ok().filter(|n| n.is_finite()).ok_or_else(|| wrong("a number"))?;
                Value::from(number)
            }
            FormKind::Enum(options) => {
                if !options.iter().any(|(id, _)| id == text) {
                    let ids: Vec<&str> = options.iter().map(|(id, _)| id.as_str()).collect();
                    return Err(wrong(&format!("one of {}", ids.join(", "))));
                }
                Value::from(text)
            }
            FormKind::Date(_) => {
                text.parse::<jiff::civil::Date>().map_err(|_| wrong("a date (2026-12-05)"))?;
                Value::from(text)
            }
            FormKind::Text | FormKind::Boolean | FormKind::Other(_) => Value::from(text),
        };
        variables.insert(p.variable().to_owned(), value);
    }
    Ok(variables)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn form() -> Vec<FormProperty> {
        vec![
            FormProperty {
                required: true,
                name: Some("Amount".into()),
                ..FormProperty::plain("amount", FormKind::Long)
            },
            FormProperty::plain("rate", FormKind::Double),
            FormProperty { variable: Some("agreed".into()), ..FormProperty::plain("ok", FormKind::Boolean) },
            FormProperty::plain("choice", FormKind::Enum(vec![("a".into(), "A".into()), ("b".into(), "B".into())])),
            FormProperty::plain("when", FormKind::Date(None)),
            FormProperty { writable: false, ..FormProperty::plain("fixed", FormKind::Text) },
            FormProperty { readable: false, writable: false, ..FormProperty::plain("hidden", FormKind::Text) },
        ]
    }

    /// Reads `form()` from form fields named `form:ID`, as the console sends them.
    fn read_pairs(pairs: &[(&str, &str)]) -> Result<Map<String, Value>, ApiError> {
        read(&form(), |id| {
            let name = format!("form:{id}");
            pairs.iter().filter(|(k, _)| *k == name).map(|(_, v)| *v).collect()
        })
    }

    #[test]
    fn a_filled_form_sets_typed_variables_under_their_names() {
        let set = read_pairs(&[
            ("form:amount", " 42 "),
            ("form:rate", "1.5"),
            ("form:ok", "false"),
            ("form:ok", "true"),
            ("form:choice", "b"),
            ("form:when", "2026-12-05"),
        ])
        .unwrap_or_else(|e| panic!("{e:?}"));
        let want = serde_json::json!({"amount": 42, "rate": 1.5, "agreed": true, "choice": "b", "when": "2026-12-05"});
        assert_eq!(Value::Object(set), want);
        let unchecked = read_pairs(&[("form:amount", "1"), ("form:ok", "false")]).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(unchecked.get("agreed"), Some(&Value::Bool(false)), "a box shown and left unticked is false");
        assert!(!unchecked.contains_key("rate"), "an empty optional field sets nothing");
        let unsent = read_pairs(&[("form:amount", "1")]).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!unsent.contains_key("agreed"), "a box that was not sent changes nothing");
    }

    #[test]
    fn a_wrong_field_is_named_and_nothing_is_set() {
        for (pairs, says) in [
            (vec![], "`Amount` is required"),
            (vec![("form:amount", "4.5")], "`Amount` must be a whole number, not `4.5`"),
            (vec![("form:amount", "1"), ("form:rate", "NaN")], "`rate` must be a number"),
            (vec![("form:amount", "1"), ("form:choice", "c")], "`choice` must be one of a, b, not `c`"),
            (vec![("form:amount", "1"), ("form:when", "05/12/2026")], "`when` must be a date"),
            (vec![("form:amount", "1"), ("form:fixed", "x")], "`fixed` is not writable"),
        ] {
            let e = read_pairs(&pairs).err().map(|e| e.line()).unwrap_or_default();
            assert!(e.contains(says), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn a_form_of_the_variables_has_a_typed_field_for_each_scalar_by_name() {
        let values = serde_json::json!({"b": true, "a": "x", "n": 3, "f": 1.5, "o": {"k": 1}, "l": [1], "z": null});
        let Value::Object(values) = values else { return };
        let form = derived(&values);
        let fields: Vec<(&str, &str)> = form.iter().map(|p| (p.id.as_str(), p.kind.name())).collect();
        assert_eq!(fields, [("a", "string"), ("b", "boolean"), ("f", "double"), ("n", "long")]);
        let many: Map<String, Value> = (0..30).map(|i| (format!("v{i:02}"), Value::from(i))).collect();
        assert_eq!(derived(&many).len(), DERIVED);
    }
}
