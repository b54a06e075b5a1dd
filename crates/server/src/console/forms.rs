//! A user task's form as the console draws it: a field for each property of its form (see
//! [`crate::forms`]), filled from its process's values.

use super::html::escape;
use crate::error::ApiError;
use crate::forms::{TaskForm, of_task};
use crate::runtime::Runtime;
use flowstone_model::{FormKind, FormProperty};
use flowstone_store::UserTaskRow;
use serde_json::{Map, Value};
use std::fmt::Write;

/// The fields of a user task's form, filled in (see [`drawn`]).
pub(super) async fn filled(rt: &Runtime, task: &UserTaskRow) -> Result<String, ApiError> {
    let (form, values) = of_task(rt, task).await?;
    Ok(drawn(task, &form, &values))
}

/// The fields of `task`'s `form`, filled from its process's `values`; a task naming a
/// `formKey` its model gives no properties for says that form is not read.
pub(super) fn drawn(task: &UserTaskRow, form: &TaskForm, values: &Map<String, Value>) -> String {
    let drawn = inputs(&form.fields, values);
    match task.form_key.as_deref().filter(|_| !form.modelled) {
        Some(key) => {
            format!(
                "<p class=\"held\">form <code>{}</code> is not read here; the process's variables:</p>{drawn}",
                escape(key)
            )
        }
        None => drawn,
    }
}

/// The button completing a task through `action`, with its form's `fields` (HTML) and a JSON
/// object of further variables.
pub(super) fn complete_button(action: &str, fields: &str, csrf: &str) -> String {
    let fields = format!(
        "{fields}<textarea name=\"variables\" rows=\"2\" placeholder=\"variables as JSON\" aria-label=\"variables\">{{}}</textarea>"
    );
    super::html::button(action, "Complete", csrf, &fields)
}

/// The name of the field of the property `id` in a form.
fn name(id: &str) -> String {
    format!("form:{id}")
}

/// What a console form filled in for `form` sets (see [`crate::forms::read`]): its fields are
/// named `form:ID`.
pub(super) fn read(form: &[FormProperty], fields: &[(String, String)]) -> Result<Map<String, Value>, ApiError> {
    crate::forms::read(form, |id| {
        let name = name(id);
        fields.iter().filter(|(k, _)| *k == name).map(|(_, v)| v.as_str()).collect()
    })
}

/// The fields of `form` (HTML), filled from `values` (the process's variables) or each
/// property's default; properties neither readable nor writable are left out.
pub(super) fn inputs(form: &[FormProperty], values: &Map<String, Value>) -> String {
    let mut out = String::new();
    for p in form.iter().filter(|p| p.readable || p.writable) {
        let value = crate::forms::shown(p, values).unwrap_or_default();
        let (name, value) = (escape(&name(&p.id)), escape(&value));
        let fixed = if p.writable { "" } else { " disabled" };
        let required = if p.required && p.writable { " required" } else { "" };
        let control = match &p.kind {
            FormKind::Boolean => {
                // The hidden field says the box was shown, so that unticked reads as false.
                let on = if value == "true" { " checked" } else { "" };
                format!(
                    "<input type=\"hidden\" name=\"{name}\" value=\"false\"{fixed}><input type=\"checkbox\" name=\"{name}\" value=\"true\"{on}{fixed}>"
                )
            }
            FormKind::Enum(options) => {
                let mut select = format!("<select name=\"{name}\"{required}{fixed}><option value=\"\"></option>");
                for (id, label) in options {
                    let chosen = if escape(id) == value { " selected" } else { "" };
                    let _ = write!(select, "<option value=\"{}\"{chosen}>{}</option>", escape(id), escape(label));
                }
                select + "</select>"
            }
            kind => {
                let input = match kind {
                    FormKind::Long => "number\" step=\"1",
                    FormKind::Double => "number\" step=\"any",
                    FormKind::Date(_) => "date",
                    _ => "text",
                };
                format!("<input type=\"{input}\" name=\"{name}\" value=\"{value}\"{required}{fixed}>")
            }
        };
        let mark = if p.required { " *" } else { "" };
        let _ = write!(out, "<label class=\"field\">{}{mark} {control}</label>", escape(p.label()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::tests::form;

    #[test]
    fn fields_show_the_process_values_or_defaults_and_leave_out_what_is_neither_read_nor_written() {
        let values = serde_json::json!({"amount": 7, "agreed": true, "choice": "a", "fixed": "<kept>"});
        let Value::Object(values) = values else { return };
        let mut with_default = form();
        with_default[1].default = Some("0.5".into());
        let html = inputs(&with_default, &values);
        assert!(html.contains(r#"<input type="number" step="1" name="form:amount" value="7" required>"#), "{html}");
        assert!(html.contains(r#"name="form:rate" value="0.5""#), "the default: {html}");
        assert!(html.contains(r#"<input type="hidden" name="form:ok" value="false"><input type="checkbox" name="form:ok" value="true" checked>"#), "{html}");
        assert!(html.contains(r#"<option value="a" selected>A</option>"#), "{html}");
        assert!(html.contains(r#"name="form:fixed" value="&lt;kept&gt;" disabled>"#), "{html}");
        assert!(!html.contains("form:hidden"), "{html}");
        assert!(html.contains("Amount *"), "{html}");
    }
}
