//! JSON values whose strings may hold `${…}` expressions: the inputs of pipeline-tree
//! components and the values of their constants, which bk-sops renders against the task's
//! constants when a node runs.

use flowstone_expr::{EvalError, Expression, ParseError, Variables};
use serde_json::{Map, Value};

/// A JSON value with its expressions parsed once, at deploy time.
#[derive(Debug, Clone)]
pub enum Template {
    /// A value with no expression in it.
    Literal(Value),
    /// A string holding `${…}`: one expression keeps its value's type, text around it makes text.
    Expr(Expression),
    /// A list with expressions inside.
    List(Vec<Template>),
    /// An object with expressions inside.
    Map(Vec<(String, Template)>),
}

impl Template {
    /// Parses every string of `value` that holds `${`.
    ///
    /// # Errors
    /// The first expression that does not parse.
    pub fn parse(value: &Value) -> Result<Template, ParseError> {
        if !has_expression(value) {
            return Ok(Template::Literal(value.clone()));
        }
        Ok(match value {
            Value::String(s) => Template::Expr(Expression::parse(s)?),
            Value::Array(items) => Template::List(items.iter().map(Template::parse).collect::<Result<_, _>>()?),
            Value::Object(map) => Template::Map(
                map.iter().map(|(k, v)| Ok((k.clone(), Template::parse(v)?))).collect::<Result<_, ParseError>>()?,
            ),
            other => Template::Literal(other.clone()),
        })
    }

    /// The value, its expressions evaluated against `vars`.
    ///
    /// # Errors
    /// The first expression that fails.
    pub fn eval(&self, vars: &dyn Variables) -> Result<Value, EvalError> {
        Ok(match self {
            Template::Literal(v) => v.clone(),
            Template::Expr(e) => e.eval(vars)?,
            Template::List(items) => Value::Array(items.iter().map(|t| t.eval(vars)).collect::<Result<_, _>>()?),
            Template::Map(fields) => Value::Object(
                fields.iter().map(|(k, t)| Ok((k.clone(), t.eval(vars)?))).collect::<Result<Map<_, _>, EvalError>>()?,
            ),
        })
    }
}

impl Template {
    /// The value as bk-sops renders it: an expression that cannot be evaluated (a constant
    /// nobody defined) stays as it was written.
    pub fn render(&self, vars: &dyn Variables) -> Value {
        match self {
            Template::Literal(v) => v.clone(),
            Template::Expr(e) => e.eval(vars).unwrap_or_else(|_| Value::String(e.source().to_owned())),
            Template::List(items) => Value::Array(items.iter().map(|t| t.render(vars)).collect()),
            Template::Map(fields) => Value::Object(fields.iter().map(|(k, t)| (k.clone(), t.render(vars))).collect()),
        }
    }
}

fn has_expression(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("${"),
        Value::Array(items) => items.iter().any(has_expression),
        Value::Object(map) => map.values().any(has_expression),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expressions_anywhere_in_a_value_are_evaluated_and_the_rest_kept() {
        let t =
            Template::parse(&json!({"n": "${count}", "text": "host ${ip}", "list": ["${count + 1}", 7], "flag": true}))
                .unwrap_or_else(|e| panic!("{e}"));
        let vars = json!({"count": 2, "ip": "10.0.0.1"}).as_object().cloned().unwrap_or_default();
        let value = t.eval(&vars).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value, json!({"n": 2, "text": "host 10.0.0.1", "list": [3, 7], "flag": true}));
        assert!(matches!(Template::parse(&json!("plain")), Ok(Template::Literal(_))));
        let unknown = Template::parse(&json!(["${nobody}", "${count}"])).unwrap_or_else(|e| panic!("{e}"));
        assert!(unknown.eval(&vars).is_err());
        assert_eq!(unknown.render(&vars), json!(["${nobody}", 2]), "bk-sops leaves what it cannot resolve");
        assert!(Template::parse(&json!({"bad": "${a +}"})).is_err());
    }
}
