//! The functions and methods expressions may call: the few that models of the three
//! dialects use in practice. Flowable and Activiti models call Java's string and collection
//! methods (`${name.equals('x')}`, `${list.size() > 0}`); bk-sops templates are Mako, so
//! their constants use Python's (`${len(hosts.split(","))}`). Names are checked when an
//! expression is parsed, so a misspelt call fails at deploy time.

use crate::eval::{grown, to_text};
use serde_json::Value;

/// A callable: its name, whether it takes a receiver (`x.name(…)`) or not (`name(…)`), and
/// how many arguments it takes.
struct Callable {
    name: &'static str,
    method: bool,
    args: std::ops::RangeInclusive<usize>,
}

const fn function(name: &'static str, args: std::ops::RangeInclusive<usize>) -> Callable {
    Callable { name, method: false, args }
}

const fn method(name: &'static str, args: std::ops::RangeInclusive<usize>) -> Callable {
    Callable { name, method: true, args }
}

const CALLABLES: &[Callable] = &[
    function("len", 1..=1),
    function("int", 1..=1),
    function("float", 1..=1),
    function("str", 1..=1),
    function("abs", 1..=1),
    function("min", 1..=usize::MAX),
    function("max", 1..=usize::MAX),
    method("split", 0..=1),
    method("strip", 0..=0),
    method("lower", 0..=0),
    method("upper", 0..=0),
    method("replace", 2..=2),
    method("startswith", 1..=1),
    method("endswith", 1..=1),
    method("join", 1..=1),
    method("equals", 1..=1),
    method("equalsIgnoreCase", 1..=1),
    method("contains", 1..=1),
    method("isEmpty", 0..=0),
    method("size", 0..=0),
    method("length", 0..=0),
    method("startsWith", 1..=1),
    method("endsWith", 1..=1),
    method("toUpperCase", 0..=0),
    method("toLowerCase", 0..=0),
    method("trim", 0..=0),
    method("substring", 1..=2),
    method("indexOf", 1..=1),
    // On `execution` / `task` only (see `eval::context_call`).
    method("getVariable", 1..=1),
    method("getVariableLocal", 1..=1),
    method("setVariable", 2..=2),
    method("setVariableLocal", 2..=2),
];

/// Whether `name` may be called this way with `args` arguments; the message says why not.
pub(crate) fn check(name: &str, method: bool, args: usize) -> Result<(), String> {
    let kind = if method { "method" } else { "function" };
    let Some(c) = CALLABLES.iter().find(|c| c.name == name && c.method == method) else {
        let known: Vec<&str> = CALLABLES.iter().filter(|c| c.method == method).map(|c| c.name).collect();
        return Err(format!("unknown {kind} `{name}`; the {kind}s are {}", known.join(", ")));
    };
    if c.args.contains(&args) { Ok(()) } else { Err(format!("{kind} `{name}` does not take {args} argument(s)")) }
}

fn text_arg(args: &[Value], i: usize) -> String {
    args.get(i).map(to_text).unwrap_or_default()
}

fn number(v: &Value, what: &str) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{what}: {n} is not a number")),
        Value::String(s) => s.trim().parse().map_err(|_| format!("{what}: `{s}` is not a number")),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        other => Err(format!("{what}: {other} is not a number")),
    }
}

fn whole(f: f64, what: &str) -> Result<Value, String> {
    if f.is_finite() && f.abs() < 9.0e15 {
        Ok(Value::from(f.trunc() as i64))
    } else {
        Err(format!("{what}: {f} is out of range"))
    }
}

fn float(f: f64) -> Result<Value, String> {
    serde_json::Number::from_f64(f).map(Value::Number).ok_or_else(|| "result is not a finite number".to_owned())
}

fn size(v: &Value) -> Option<usize> {
    match v {
        Value::String(s) => Some(s.chars().count()),
        Value::Array(a) => Some(a.len()),
        Value::Object(o) => Some(o.len()),
        Value::Null => Some(0),
        _ => None,
    }
}

/// Calls `name` on `receiver` (for a method) with `args`, already evaluated.
pub(crate) fn call(name: &str, receiver: Option<&Value>, args: &[Value]) -> Result<Value, String> {
    let this = receiver.map(to_text).unwrap_or_default();
    let arg = |i: usize| text_arg(args, i);
    Ok(match (name, receiver) {
        ("len", None) => Value::from(size(&args[0]).ok_or_else(|| format!("len() of {} has no length", args[0]))?),
        ("int", None) => whole(number(&args[0], "int()")?, "int()")?,
        ("float", None) => float(number(&args[0], "float()")?)?,
        ("str", None) => Value::String(to_text(&args[0])),
        ("abs", None) => match &args[0] {
            Value::Number(n) if n.is_i64() => Value::from(n.as_i64().unwrap_or_default().unsigned_abs()),
            other => float(number(other, "abs()")?.abs())?,
        },
        ("min" | "max", None) => {
            let items: Vec<&Value> = match args {
                [Value::Array(items)] => items.iter().collect(),
                _ => args.iter().collect(),
            };
            let mut best: Option<(f64, &Value)> = None;
            for item in items {
                let n = number(item, name)?;
                let better = best.is_none_or(|(b, _)| if name == "min" { n < b } else { n > b });
                if better {
                    best = Some((n, item));
                }
            }
            best.map(|(_, v)| v.clone()).ok_or_else(|| format!("{name}() of nothing"))?
        }
        ("split", Some(_)) => {
            let parts: Vec<Value> = match args.first() {
                Some(sep) if !to_text(sep).is_empty() => {
                    this.split(&to_text(sep)).map(|p| Value::String(p.into())).collect()
                }
                _ => this.split_whitespace().map(|p| Value::String(p.into())).collect(),
            };
            Value::Array(parts)
        }
        ("strip" | "trim", Some(_)) => Value::String(this.trim().into()),
        ("lower" | "toLowerCase", Some(_)) => Value::String(this.to_lowercase()),
        ("upper" | "toUpperCase", Some(_)) => Value::String(this.to_uppercase()),
        ("replace", Some(_)) => {
            let (from, to) = (arg(0), arg(1));
            let hits = if from.is_empty() { this.chars().count() + 1 } else { this.matches(from.as_str()).count() };
            grown((this.len() - hits * from.len()).saturating_add(hits.saturating_mul(to.len())))?;
            Value::String(this.replace(&from, &to))
        }
        ("startswith" | "startsWith", Some(_)) => Value::Bool(this.starts_with(&arg(0))),
        ("endswith" | "endsWith", Some(_)) => Value::Bool(this.ends_with(&arg(0))),
        ("join", Some(_)) => match &args[0] {
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().map(to_text).collect();
                let len = parts.iter().map(String::len).sum::<usize>();
                grown(len.saturating_add(items.len().saturating_sub(1).saturating_mul(this.len())))?;
                Value::String(parts.join(&this))
            }
            other => return Err(format!("join() needs a list, got {other}")),
        },
        ("equals", Some(r)) => Value::Bool(r == &args[0] || (r.is_string() && this == arg(0))),
        ("equalsIgnoreCase", Some(_)) => Value::Bool(this.to_lowercase() == arg(0).to_lowercase()),
        ("contains", Some(Value::Array(items))) => Value::Bool(items.iter().any(|i| to_text(i) == arg(0))),
        ("contains", Some(Value::Object(map))) => Value::Bool(map.contains_key(&arg(0))),
        ("contains", Some(_)) => Value::Bool(this.contains(&arg(0))),
        ("isEmpty", Some(r)) => Value::Bool(size(r) == Some(0)),
        ("size" | "length", Some(r)) => Value::from(size(r).ok_or_else(|| format!("{name}() of {r} has no length"))?),
        ("substring", Some(_)) => {
            let chars: Vec<char> = this.chars().collect();
            let bound = |i: usize| -> Result<usize, String> {
                let n = number(&args[i], "substring()")?;
                if n < 0.0 || n > chars.len() as f64 {
                    Err(format!("substring(): index {n} is outside `{this}`"))
                } else {
                    Ok(n as usize)
                }
            };
            let from = bound(0)?;
            let to = if args.len() > 1 { bound(1)? } else { chars.len() };
            if from > to {
                return Err(format!("substring(): {from} is after {to}"));
            }
            Value::String(chars[from..to].iter().collect())
        }
        ("indexOf", Some(Value::Array(items))) => {
            Value::from(items.iter().position(|i| to_text(i) == arg(0)).map_or(-1, |p| p as i64))
        }
        ("indexOf", Some(_)) => Value::from(this.find(&arg(0)).map_or(-1, |byte| this[..byte].chars().count() as i64)),
        _ => return Err(format!("`{name}` cannot be called on {}", receiver.map_or("nothing".into(), to_text))),
    })
}
