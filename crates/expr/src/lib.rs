//! The expression language of models: JUEL-style `${...}` over JSON variables.
//!
//! Flowable, Activiti and bk-sops models write conditions, inputs and outputs as
//! `${amount > 100 && approved}`, `${machine.ip}`, `${a} == "1"`. Their meaning depends
//! on JUEL's coercion rules (a string `"6"` is a fine loop cardinality, `1 == "1"` holds),
//! so this crate implements those rules rather than a strictly typed language.
//!
//! An expression is parsed once ([`Expression::parse`]) when a model is deployed, so that
//! syntax errors surface at deploy time, and evaluated many times against a [`Variables`]
//! lookup.

mod calls;
mod eval;
mod lexer;
mod parser;

use std::fmt;

pub use eval::{MAX_TEXT_LENGTH, Variables, is_truthy, to_text};
pub use parser::{MAX_CODE_LENGTH, MAX_NESTING};

/// The longest text an expression (a template with its `${…}` parts) may have, in bytes.
pub const MAX_SOURCE_LENGTH: usize = 1024 * 1024;

/// A syntax error, with the byte offset in the source text where it was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at offset {offset} of `{source_text}`")]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// Byte offset into the expression text.
    pub offset: usize,
    /// The whole expression text.
    pub source_text: String,
}

/// A failure while evaluating a well-formed expression (unknown variable, type mismatch).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} in `{source_text}`")]
pub struct EvalError {
    /// What went wrong.
    pub message: String,
    /// The whole expression text.
    pub source_text: String,
}

/// A parsed expression: either one `${...}` whose value keeps its JSON type, or a template
/// mixing literal text and `${...}` parts, whose value is their concatenation as text.
#[derive(Clone, PartialEq)]
pub struct Expression {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Code(parser::Ast),
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expression({:?})", self.source)
    }
}

impl Expression {
    /// Parses a template such as `${a + 1}`, `#{x}`, `Hello ${name}!` or plain text.
    ///
    /// # Errors
    /// A [`ParseError`] naming the offset of the first syntax error, an unclosed `${`,
    /// an empty `${}`, or a text longer or nesting deeper than the limits allow
    /// ([`MAX_SOURCE_LENGTH`], [`MAX_CODE_LENGTH`], [`MAX_NESTING`]).
    pub fn parse(source: &str) -> Result<Self, ParseError> {
        if source.len() > MAX_SOURCE_LENGTH {
            return Err(ParseError {
                message: format!("the text is {} bytes long; at most {MAX_SOURCE_LENGTH} are allowed", source.len()),
                offset: 0,
                source_text: shorten(source),
            });
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let bytes = source.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let opens = (bytes[i] == b'$' || bytes[i] == b'#') && bytes.get(i + 1) == Some(&b'{');
            if !opens {
                let ch = source[i..].chars().next().unwrap_or_default();
                text.push(ch);
                i += ch.len_utf8();
                continue;
            }
            let body_start = i + 2;
            let body_end = parser::find_closing_brace(source, body_start).ok_or_else(|| ParseError {
                message: "unclosed `${`".into(),
                offset: i,
                source_text: shorten(source),
            })?;
            let ast = parser::parse(&source[body_start..body_end]).map_err(|(message, off)| ParseError {
                message,
                offset: body_start + off,
                source_text: shorten(source),
            })?;
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Code(ast));
            i = body_end + 1;
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self { source: source.to_owned(), parts })
    }

    /// Parses `source` as the body of one `${...}` even without the delimiters, for
    /// conditions written bare (`x == 1`) as some modelers export them.
    ///
    /// # Errors
    /// As [`Expression::parse`].
    pub fn parse_bare(source: &str) -> Result<Self, ParseError> {
        if source.contains("${") || source.contains("#{") {
            return Self::parse(source);
        }
        let ast = parser::parse(source).map_err(|(message, offset)| ParseError {
            message,
            offset,
            source_text: shorten(source),
        })?;
        Ok(Self { source: source.to_owned(), parts: vec![Part::Code(ast)] })
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression against `vars`.
    ///
    /// # Errors
    /// An [`EvalError`] for an unknown variable, an operator applied to values it does not
    /// take, or arithmetic overflow.
    pub fn eval(&self, vars: &dyn Variables) -> Result<serde_json::Value, EvalError> {
        let wrap = |message: String| EvalError { message, source_text: shorten(&self.source) };
        match self.parts.as_slice() {
            [] => Ok(serde_json::Value::String(String::new())),
            [Part::Code(ast)] => eval::eval(ast, vars).map_err(wrap),
            parts => {
                let mut out = String::new();
                for part in parts {
                    let piece = match part {
                        Part::Text(t) => std::borrow::Cow::Borrowed(t.as_str()),
                        Part::Code(ast) => to_text(&eval::eval(ast, vars).map_err(wrap)?).into(),
                    };
                    eval::grown(out.len() + piece.len()).map_err(wrap)?;
                    out.push_str(&piece);
                }
                Ok(serde_json::Value::String(out))
            }
        }
    }

    /// The variables the expression reads (not the functions it calls), each once, in the
    /// order they first appear: what a model must define for it to evaluate.
    pub fn variables(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for part in &self.parts {
            if let Part::Code(ast) = part {
                ast.variables(&mut out);
            }
        }
        out
    }

    /// Evaluates the expression as a condition: its value must coerce to a boolean.
    ///
    /// # Errors
    /// As [`Expression::eval`], and when the value is not a boolean (nor `"true"`/`"false"`).
    pub fn eval_bool(&self, vars: &dyn Variables) -> Result<bool, EvalError> {
        let value = self.eval(vars)?;
        is_truthy(&value).map_err(|message| EvalError { message, source_text: shorten(&self.source) })
    }
}

/// The start of a long expression text, for error messages: they name the expression, and
/// must stay small whatever its size.
fn shorten(source: &str) -> String {
    const SHOWN: usize = 200;
    if source.len() <= SHOWN {
        source.to_owned()
    } else {
        format!("{}…", &source[..source.floor_char_boundary(SHOWN)])
    }
}

#[cfg(test)]
mod tests;
