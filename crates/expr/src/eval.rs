//! Evaluation with JUEL's coercions over JSON values.

use crate::parser::{Ast, Step};
use serde_json::{Number, Value};
use std::cmp::Ordering;

/// Where an expression finds its variables: the engine passes a scope chain, tests a map.
pub trait Variables {
    /// The value of `name`, or `None` when no such variable exists.
    fn get(&self, name: &str) -> Option<&Value>;

    /// Every visible variable, for `${variables['master-1a']}`: the way to reach variables
    /// whose names are not identifiers.
    fn all(&self) -> serde_json::Map<String, Value>;

    /// Sets a variable, for `${execution.setVariable('name', value)}` as Flowable's scripts and
    /// listeners write it. Where an expression only reads (a condition, an input), it cannot.
    ///
    /// # Errors
    /// A message saying why the variable cannot be set here.
    fn set(&self, name: &str, value: Value) -> Result<(), String> {
        let _ = value;
        Err(format!(
            "`{name}` cannot be set here: execution.setVariable works in script tasks, expression service tasks and listeners"
        ))
    }
}

/// The objects Flowable hands expressions, whose `getVariable` / `setVariable` (and `…Local`)
/// read and set the instance's variables.
const CONTEXTS: [&str; 2] = ["execution", "task"];

/// `execution.setVariable(name, value)`, `execution.getVariable(name)` and their `Local`
/// forms on an object no variable of that name hides: the value, or none when `ast` is not one.
fn context_call(ast: &Ast, steps: &[Step], vars: &dyn Variables) -> Option<Result<Value, String>> {
    let Ast::Var(object) = ast else { return None };
    let Some(Step::Method(method, args)) = steps.first() else { return None };
    if !CONTEXTS.contains(&object.as_str()) || vars.get(object).is_some() {
        return None;
    }
    let run = || -> Result<Value, String> {
        let args = args.iter().map(|a| eval(a, vars)).collect::<Result<Vec<_>, _>>()?;
        let name = match args.first() {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            other => {
                return Err(format!(
                    "{object}.{method} needs a variable name, not {}",
                    other.map_or("nothing".into(), show)
                ));
            }
        };
        match (method.as_str(), &args[1..]) {
            ("getVariable" | "getVariableLocal", []) => Ok(vars.get(&name).cloned().unwrap_or(Value::Null)),
            ("setVariable" | "setVariableLocal", [value]) => vars.set(&name, value.clone()).map(|()| Value::Null),
            _ => Err(format!("`{object}.{method}` takes other arguments")),
        }
    };
    Some(run())
}

impl Variables for serde_json::Map<String, Value> {
    fn get(&self, name: &str) -> Option<&Value> {
        serde_json::Map::get(self, name)
    }

    fn all(&self) -> serde_json::Map<String, Value> {
        self.clone()
    }
}

/// JUEL's coercion to boolean: `null` is false, strings `"true"`/`"false"` count.
///
/// # Errors
/// A message naming the value when it is a number, array or object.
pub fn is_truthy(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.is_empty() || s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(format!("{} is not a boolean", show(other))),
    }
}

/// JUEL's coercion to text: `null` is empty, strings are unquoted, the rest is JSON.
pub fn to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 40 { format!("{}…", &text[..text.floor_char_boundary(40)]) } else { text }
}

#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

fn num_value(n: Num) -> Result<Value, String> {
    match n {
        Num::Int(i) => Ok(Value::from(i)),
        Num::Float(f) => {
            Number::from_f64(f).map(Value::Number).ok_or_else(|| "result is not a finite number".to_owned())
        }
    }
}

/// A number, or a string that reads as one; `None` otherwise.
fn as_num(value: &Value) -> Option<Num> {
    match value {
        Value::Number(n) => n.as_i64().map(Num::Int).or_else(|| n.as_f64().map(Num::Float)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .map(Num::Int)
                .ok()
                .or_else(|| s.parse::<f64>().ok().filter(|f| f.is_finite()).map(Num::Float))
        }
        _ => None,
    }
}

fn need_num(value: &Value, op: &str) -> Result<Num, String> {
    match value {
        Value::Null => Ok(Num::Int(0)),
        other => as_num(other).ok_or_else(|| format!("operator `{op}` needs numbers, got {}", show(other))),
    }
}

pub(crate) fn eval(ast: &Ast, vars: &dyn Variables) -> Result<Value, String> {
    match ast {
        Ast::Lit(v) => Ok(v.clone()),
        Ast::Var(name) => match vars.get(name) {
            Some(v) => Ok(v.clone()),
            None if name == "variables" => Ok(Value::Object(vars.all())),
            None => Err(format!("unknown variable `{name}`")),
        },
        Ast::Path(base, steps) => {
            let (mut value, steps) = match context_call(base, steps, vars) {
                Some(value) => (value?, &steps[1..]),
                None => (eval(base, vars)?, &steps[..]),
            };
            for step in steps {
                value = match step {
                    Step::Member(name) => member(&value, name),
                    Step::Index(index) => index_of(&value, &eval(index, vars)?),
                    Step::Method(name, args) => {
                        let args = args.iter().map(|a| eval(a, vars)).collect::<Result<Vec<_>, _>>()?;
                        crate::calls::call(name, Some(&value), &args)?
                    }
                };
            }
            Ok(value)
        }
        Ast::Unary(op, inner) => {
            let v = eval(inner, vars)?;
            match *op {
                "!" => Ok(Value::Bool(!is_truthy(&v)?)),
                "empty" => Ok(Value::Bool(match &v {
                    Value::Null => true,
                    Value::String(s) => s.is_empty(),
                    Value::Array(a) => a.is_empty(),
                    Value::Object(o) => o.is_empty(),
                    _ => false,
                })),
                _ => match need_num(&v, "-")? {
                    Num::Int(i) => i.checked_neg().map(Value::from).ok_or_else(|| "integer overflow".to_owned()),
                    Num::Float(f) => num_value(Num::Float(-f)),
                },
            }
        }
        Ast::Cond(cond, yes, no) => {
            if is_truthy(&eval(cond, vars)?)? {
                eval(yes, vars)
            } else {
                eval(no, vars)
            }
        }
        Ast::Chain(first, rest) => {
            let mut acc = eval(first, vars)?;
            for (op, operand) in rest {
                acc = match *op {
                    // Short-circuit: the right side is evaluated only when it decides.
                    "&&" => Value::Bool(is_truthy(&acc)? && is_truthy(&eval(operand, vars)?)?),
                    "||" => Value::Bool(is_truthy(&acc)? || is_truthy(&eval(operand, vars)?)?),
                    op => binary(op, &acc, &eval(operand, vars)?)?,
                };
            }
            Ok(acc)
        }
        Ast::Call(name, args) => {
            let args = args.iter().map(|a| eval(a, vars)).collect::<Result<Vec<_>, _>>()?;
            crate::calls::call(name, None, &args)
        }
    }
}

fn index_of(base: &Value, index: &Value) -> Value {
    match (base, index) {
        (Value::Array(items), idx) => as_num(idx)
            .and_then(|n| match n {
                Num::Int(i) if i >= 0 => items.get(i as usize).cloned(),
                // Python's negative indexes count from the end (bk-sops templates are Mako).
                Num::Int(i) => items.len().checked_sub(i.unsigned_abs() as usize).and_then(|j| items.get(j).cloned()),
                _ => None,
            })
            .unwrap_or(Value::Null),
        (_, idx) => member(base, &to_text(idx)),
    }
}

fn member(base: &Value, name: &str) -> Value {
    match base {
        Value::Object(map) => map.get(name).cloned().unwrap_or(Value::Null),
        Value::Array(items) if name == "size" || name == "length" => Value::from(items.len()),
        Value::String(s) if name == "length" => Value::from(s.chars().count()),
        _ => Value::Null,
    }
}

fn binary(op: &str, l: &Value, r: &Value) -> Result<Value, String> {
    match op {
        "==" => Ok(Value::Bool(equals(l, r))),
        "!=" => Ok(Value::Bool(!equals(l, r))),
        "<" | ">" | "<=" | ">=" => {
            let ord = compare(l, r).ok_or_else(|| format!("cannot compare {} with {}", show(l), show(r)))?;
            Ok(Value::Bool(match op {
                "<" => ord == Ordering::Less,
                ">" => ord == Ordering::Greater,
                "<=" => ord != Ordering::Greater,
                _ => ord != Ordering::Less,
            }))
        }
        "+" if is_text(l) || is_text(r) => {
            // Numeric text adds as numbers (JUEL); any other text concatenates.
            match (as_num(l).or(l.is_null().then_some(Num::Int(0))), as_num(r).or(r.is_null().then_some(Num::Int(0)))) {
                (Some(a), Some(b)) => arith("+", a, b),
                _ => {
                    let (l, r) = (to_text(l), to_text(r));
                    grown(l.len() + r.len())?;
                    Ok(Value::String(l + &r))
                }
            }
        }
        _ => arith(op, need_num(l, op)?, need_num(r, op)?),
    }
}

/// The most bytes of text one evaluation step may produce: a value that doubles at every
/// step of a loop, or grows by `replace` and `join`, stops here instead of exhausting memory.
pub const MAX_TEXT_LENGTH: usize = 16 * 1024 * 1024;

/// Refuses a text result of `len` bytes past [`MAX_TEXT_LENGTH`], before it is made.
pub(crate) fn grown(len: usize) -> Result<(), String> {
    if len > MAX_TEXT_LENGTH {
        Err(format!("the result would be {len} bytes of text; at most {MAX_TEXT_LENGTH} are allowed"))
    } else {
        Ok(())
    }
}

fn is_text(v: &Value) -> bool {
    matches!(v, Value::String(_))
}

fn arith(op: &str, a: Num, b: Num) -> Result<Value, String> {
    if op == "/" {
        let d = b.as_f64();
        if d == 0.0 {
            return Err("division by zero".into());
        }
        return num_value(Num::Float(a.as_f64() / d));
    }
    if let (Num::Int(x), Num::Int(y)) = (a, b) {
        let result = match op {
            "+" => x.checked_add(y),
            "-" => x.checked_sub(y),
            "*" => x.checked_mul(y),
            _ if y == 0 => return Err("division by zero".into()),
            _ => x.checked_rem(y),
        };
        return result.map(Value::from).ok_or_else(|| "integer overflow".to_owned());
    }
    let (x, y) = (a.as_f64(), b.as_f64());
    num_value(Num::Float(match op {
        "+" => x + y,
        "-" => x - y,
        "*" => x * y,
        _ => x % y,
    }))
}

/// JUEL equality: numbers compare numerically with numeric text, booleans with boolean text,
/// everything else by value.
fn equals(l: &Value, r: &Value) -> bool {
    match (l, r) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Number(_), _) | (_, Value::Number(_)) => match (as_num(l), as_num(r)) {
            (Some(a), Some(b)) => num_cmp(a, b) == Some(Ordering::Equal),
            _ => false,
        },
        (Value::Bool(b), Value::String(s)) | (Value::String(s), Value::Bool(b)) => {
            s.eq_ignore_ascii_case(if *b { "true" } else { "false" })
        }
        _ => l == r,
    }
}

fn num_cmp(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        _ => a.as_f64().partial_cmp(&b.as_f64()),
    }
}

fn compare(l: &Value, r: &Value) -> Option<Ordering> {
    match (l, r) {
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => num_cmp(as_num(l)?, as_num(r)?),
    }
}
