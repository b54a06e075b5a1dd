//! Script tasks: a script in an expression language (`juel`, Flowstone's own) is an
//! expression whose value is the result variable's; a JavaScript script runs in the sandboxed
//! interpreter of `flowstone-script`, and is parsed at deploy so that a syntax error refuses
//! the model. Scripts in languages that need a JVM or another runtime (Groovy, Python —
//! SpiffWorkflow's, when no format is given) are refused naming the language.

use super::{child, expr, result_variable, text_of};
use crate::error::ModelError;
use crate::ir::NodeKind;
use roxmltree::Node as XmlNode;

/// The `scriptFormat` names Flowable's and Camunda's JavaScript engines answer to.
const JAVASCRIPT: [&str; 5] = ["javascript", "js", "ecmascript", "graal.js", "nashorn"];

pub(super) fn script_task(el: XmlNode<'_, '_>) -> Result<NodeKind, ModelError> {
    let format = el.attribute("scriptFormat").map(str::trim).unwrap_or_default();
    let lower = format.to_ascii_lowercase();
    let javascript = JAVASCRIPT.contains(&lower.as_str());
    if !javascript && !matches!(lower.as_str(), "juel" | "flowstone" | "expression" | "el") {
        let language =
            if format.is_empty() { "none given (SpiffWorkflow runs such scripts as Python)" } else { format };
        return Err(ModelError::at(
            el,
            format!(
                "script language `{language}` is not supported: write the script in JavaScript (scriptFormat=\"javascript\") or as a ${{…}} expression (scriptFormat=\"juel\"), or make the work a stone"
            ),
        ));
    }
    let text = child(el, "script").map(text_of).unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ModelError::at(el, "a script task needs a <script>"));
    }
    if javascript {
        flowstone_script::check(&text)
            .map_err(|e| ModelError::at(el, format!("its JavaScript does not parse: {e}")))?;
        return Ok(NodeKind::JavaScriptTask { source: text, result_variable: result_variable(el) });
    }
    Ok(NodeKind::ExpressionTask {
        expression: expr(el, "script", &text)?,
        result_variable: result_variable(el),
        script: true,
    })
}
