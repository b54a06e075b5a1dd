//! Why a model was refused, located precisely enough to fix it.

use std::fmt;

/// A model that cannot be deployed: which element, its id, its line, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    /// What is wrong, in words a modeler understands.
    pub message: String,
    /// The element's tag name (`scriptTask`), when the error belongs to one.
    pub element: Option<String>,
    /// The element's `id` attribute, when it has one.
    pub id: Option<String>,
    /// 1-based line in the source document.
    pub line: Option<u32>,
}

impl ModelError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), element: None, id: None, line: None }
    }

    pub(crate) fn at(node: roxmltree::Node<'_, '_>, message: impl Into<String>) -> Self {
        let pos = node.document().text_pos_at(node.range().start);
        Self {
            message: message.into(),
            element: Some(node.tag_name().name().to_owned()),
            id: node.attribute("id").map(str::to_owned),
            line: Some(pos.row),
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        match (&self.element, &self.id) {
            (Some(el), Some(id)) => write!(f, "<{el} id=\"{id}\">: ")?,
            (Some(el), None) => write!(f, "<{el}>: ")?,
            _ => {}
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ModelError {}
