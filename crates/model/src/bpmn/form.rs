//! Reads a user task's form properties from its extension elements.

use super::{ENGINE_NS, is_bpmn};
use crate::error::ModelError;
use crate::form::{FormKind, FormProperty};
use roxmltree::Node as XmlNode;

/// Whether `c` is an engine extension element named `name`.
fn engine_element(c: XmlNode<'_, '_>, name: &str) -> bool {
    c.is_element() && c.tag_name().name() == name && c.tag_name().namespace().is_some_and(|ns| ENGINE_NS.contains(&ns))
}

/// A `true`/`false` attribute of a form property, `default` when absent.
fn switch(p: XmlNode<'_, '_>, name: &str, default: bool) -> Result<bool, ModelError> {
    match p.attribute(name) {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ModelError::at(p, format!("the form property's `{name}` is true or false, not `{v}`"))),
    }
}

/// The form properties of `el` (a user task), in the order the model lists them.
pub(super) fn form_properties(el: XmlNode<'_, '_>) -> Result<Vec<FormProperty>, ModelError> {
    let mut form = Vec::new();
    let elements = el.children().filter(|c| is_bpmn(*c, "extensionElements")).flat_map(|x| x.children());
    for p in elements.filter(|c| engine_element(*c, "formProperty")) {
        let Some(id) = p.attribute("id").filter(|id| !id.trim().is_empty()) else {
            return Err(ModelError::at(p, "a form property needs an id"));
        };
        if form.iter().any(|f: &FormProperty| f.id == id) {
            return Err(ModelError::at(p, format!("the form property `{id}` is declared twice")));
        }
        let kind = match p.attribute("type").unwrap_or("string") {
            "string" => FormKind::Text,
            "long" => FormKind::Long,
            "double" => FormKind::Double,
            "boolean" => FormKind::Boolean,
            "date" => FormKind::Date(p.attribute("datePattern").map(str::to_owned)),
            "enum" => FormKind::Enum(
                p.children()
                    .filter(|c| engine_element(*c, "value"))
                    .map(|v| {
                        let id = v.attribute("id").unwrap_or_default().to_owned();
                        (id.clone(), v.attribute("name").map_or(id, str::to_owned))
                    })
                    .collect(),
            ),
            other => FormKind::Other(other.to_owned()),
        };
        form.push(FormProperty {
            id: id.to_owned(),
            name: p.attribute("name").map(str::to_owned),
            kind,
            required: switch(p, "required", false)?,
            readable: switch(p, "readable", true)?,
            writable: switch(p, "writable", true)?,
            variable: p.attribute("variable").map(str::to_owned),
            default: p.attribute("default").map(str::to_owned),
        });
    }
    Ok(form)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(properties: &str) -> Result<Vec<FormProperty>, ModelError> {
        let xml = format!(
            r#"<userTask xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:activiti="http://activiti.org/bpmn" id="t"><extensionElements>{properties}</extensionElements></userTask>"#
        );
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}"));
        form_properties(doc.root_element())
    }

    #[test]
    fn form_properties_keep_their_types_values_and_switches_in_order() {
        let form = task(
            r#"<activiti:formProperty id="amount" name="Amount" type="long" required="true"/>
            <activiti:formProperty id="ok" name="Agree?" type="enum" variable="agreed" writable="false">
              <activiti:value id="yes" name="Yes"/><activiti:value id="no"/></activiti:formProperty>
            <activiti:formProperty id="note" default="none"/><activiti:formProperty id="who" type="user" readable="false"/>"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = form.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["amount", "ok", "note", "who"]);
        assert_eq!((&form[0].kind, form[0].required, form[0].label()), (&FormKind::Long, true, "Amount"));
        let values = vec![("yes".to_owned(), "Yes".to_owned()), ("no".to_owned(), "no".to_owned())];
        assert_eq!((&form[1].kind, form[1].variable(), form[1].writable), (&FormKind::Enum(values), "agreed", false));
        assert_eq!(
            (&form[2].kind, form[2].default.as_deref(), form[2].variable()),
            (&FormKind::Text, Some("none"), "note")
        );
        assert_eq!((form[3].kind.name(), form[3].readable), ("user", false));
    }

    #[test]
    fn a_form_property_without_an_id_twice_or_with_a_wrong_switch_is_refused() {
        let no_id = task(r#"<activiti:formProperty name="x"/>"#).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(no_id.contains("needs an id"), "{no_id}");
        let twice = task(r#"<activiti:formProperty id="a"/><activiti:formProperty id="a"/>"#);
        assert!(twice.err().is_some_and(|e| e.to_string().contains("declared twice")));
        let wrong = task(r#"<activiti:formProperty id="a" required="yes"/>"#);
        assert!(wrong.err().is_some_and(|e| e.to_string().contains("`required` is true or false, not `yes`")));
    }
}
