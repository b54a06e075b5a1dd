//! `<callActivity>`: the called key, its version binding and the variables passed each way,
//! in Flowable's and Camunda 7's extensions.

use super::{ENGINE_NS, expr, ext, flag, is_bpmn};
use crate::call::{Binding, CallSpec, Mapping, Source};
use crate::error::ModelError;
use crate::ir::NodeKind;
use roxmltree::Node as XmlNode;

/// Reads a call activity; a called element that is not a key (`flowable:calledElementType="id"`
/// is a definition id, which differs per server) or a binding no engine of ours can honour is
/// refused, naming it.
pub(super) fn call_activity(el: XmlNode<'_, '_>) -> Result<NodeKind, ModelError> {
    let called =
        el.attribute("calledElement").map(str::trim).filter(|c| !c.is_empty()).ok_or_else(|| {
            ModelError::at(el, "a call activity needs a calledElement: the key of the process it starts")
        })?;
    if let Some(kind) = ext(el, "calledElementType").filter(|k| *k != "key") {
        return Err(ModelError::at(
            el,
            format!("calledElementType `{kind}` is not supported: name the called process by its key"),
        ));
    }
    let mut spec = CallSpec {
        called: expr(el, "calledElement", called)?,
        binding: binding(el)?,
        inputs: Vec::new(),
        outputs: Vec::new(),
        all_in: flag(el, "inheritVariables")?,
        all_out: false,
        business_key: ext(el, "businessKey").map(|k| expr(el, "business key", k)).transpose()?,
        inherit_business_key: flag(el, "inheritBusinessKey")?,
    };
    let mappings = el
        .children()
        .filter(|c| is_bpmn(*c, "extensionElements"))
        .flat_map(|x| x.children())
        .filter(|c| c.is_element() && c.tag_name().namespace().is_some_and(|ns| ENGINE_NS.contains(&ns)));
    for m in mappings {
        let inward = match m.tag_name().name() {
            "in" => true,
            "out" => false,
            _ => continue,
        };
        if let Some(key) = m.attribute("businessKey") {
            // Camunda passes the caller's key on as `#{execution.processBusinessKey}`.
            if inward && key.contains("processBusinessKey") {
                spec.inherit_business_key = true;
            } else if inward {
                spec.business_key = Some(expr(m, "business key", key)?);
            }
            continue;
        }
        if m.attribute("variables") == Some("all") {
            if inward {
                spec.all_in = true;
            } else {
                spec.all_out = true;
            }
            continue;
        }
        let mapping = mapping(m)?;
        if inward {
            spec.inputs.push(mapping);
        } else {
            spec.outputs.push(mapping);
        }
    }
    Ok(NodeKind::Call(Box::new(spec)))
}

/// One `<flowable:in>` / `<camunda:out>`: `source` or `sourceExpression`, and `target`
/// (the source's name when absent, as Camunda allows).
fn mapping(m: XmlNode<'_, '_>) -> Result<Mapping, ModelError> {
    let tag = m.tag_name().name();
    let source = match (m.attribute("source"), m.attribute("sourceExpression")) {
        (Some(name), None) if !name.trim().is_empty() => Source::Variable(name.trim().to_owned()),
        (None, Some(text)) => Source::Expression(expr(m, &format!("{tag} sourceExpression"), text)?),
        _ => {
            return Err(ModelError::at(
                m,
                format!("<{tag}> needs exactly one of source and sourceExpression, or variables=\"all\""),
            ));
        }
    };
    let target = match (m.attribute("target").map(str::trim), &source) {
        (Some(t), _) if !t.is_empty() => t.to_owned(),
        (None, Source::Variable(name)) => name.clone(),
        _ => return Err(ModelError::at(m, format!("<{tag}> needs a target: the variable it sets"))),
    };
    Ok(Mapping { source, target })
}

/// Which version the call starts.
fn binding(el: XmlNode<'_, '_>) -> Result<Binding, ModelError> {
    if flag(el, "sameDeployment")? {
        return Ok(Binding::Deployment);
    }
    Ok(match ext(el, "calledElementBinding") {
        None | Some("latest") => Binding::Latest,
        Some("deployment") => Binding::Deployment,
        Some("version") => {
            let version = ext(el, "calledElementVersion").unwrap_or_default();
            Binding::Version(version.trim().parse().ok().filter(|v| *v > 0).ok_or_else(|| {
                ModelError::at(el, format!("calledElementVersion `{version}` is not a version number (1, 2, …)"))
            })?)
        }
        Some(other) => {
            return Err(ModelError::at(
                el,
                format!("calledElementBinding `{other}` is not supported; use latest, deployment or version"),
            ));
        }
    })
}
