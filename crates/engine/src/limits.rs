//! Bounds on what data can make one instance do.
//!
//! A model, its variables and its stones' outputs come from users; without bounds a
//! `loopCardinality` of a billion, a loop that doubles a string or a variable of gigabytes
//! would take the whole server down, and, stored, keep it down at every restart. Each bound
//! hit at run time fails the instance that hit it, with a reason naming the element and the
//! limit; the server goes on.

use crate::instance::Instance;
use serde_json::{Map, Value};
use std::io;

/// The bounds one command works within. The server sets them from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The most items one multi-instance activity may run.
    pub max_items: u32,
    /// How far one command may move tokens before the instance is failed as looping.
    pub max_steps: u32,
    /// The largest value one variable may hold, as JSON bytes.
    pub max_variable_bytes: usize,
    /// The most JSON bytes all variables of an instance (its scopes' included) may hold.
    pub max_instance_bytes: usize,
    /// The most JSON bytes of stone parameters one command may write: what many items of a
    /// multi-instance, each copying the visible variables, can add up to.
    pub max_command_bytes: usize,
    /// The time, heap and stack one JavaScript script task may use.
    pub script: flowstone_script::Bounds,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_items: 10_000,
            max_steps: 100_000,
            max_variable_bytes: 4 * 1024 * 1024,
            max_instance_bytes: 16 * 1024 * 1024,
            max_command_bytes: 64 * 1024 * 1024,
            script: flowstone_script::Bounds::default(),
        }
    }
}

/// Counts JSON bytes and stops the serializer once past its cap.
struct Counter {
    bytes: usize,
    cap: usize,
}

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes += buf.len();
        if self.bytes > self.cap { Err(io::Error::other("past the cap")) } else { Ok(buf.len()) }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The size of `value` as JSON, counted up to just past `cap` (so a huge value costs no more
/// than `cap` bytes of work).
pub(crate) fn json_size(value: &Value, cap: usize) -> usize {
    let mut counter = Counter { bytes: 0, cap };
    // The only error is the counter's own stop.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.bytes
}

/// The JSON size of named values, names included, counted to just past `cap`.
pub(crate) fn vars_size(values: &Map<String, Value>, cap: usize) -> usize {
    let mut total = 0usize;
    for (name, value) in values {
        total += name.len() + json_size(value, cap - total.min(cap));
        if total > cap {
            break;
        }
    }
    total
}

/// Whether named values add up (names and JSON) to at most `max` bytes; each value may be
/// at most `each` bytes, else its name is answered. Counting stops at the first excess.
fn add_up<'a>(
    values: impl Iterator<Item = (&'a String, &'a Value)>,
    each: usize,
    max: usize,
) -> Result<bool, &'a String> {
    let mut total = 0usize;
    for (name, value) in values {
        let size = json_size(value, each);
        if size > each {
            return Err(name);
        }
        total += name.len() + size;
        if total > max {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Limits {
    /// Checks one value against [`Limits::max_variable_bytes`]; the message names it.
    pub(crate) fn check_value(&self, what: &str, value: &Value) -> Result<(), String> {
        if json_size(value, self.max_variable_bytes) > self.max_variable_bytes {
            Err(self.too_large(what))
        } else {
            Ok(())
        }
    }

    fn too_large(&self, what: &str) -> String {
        let max = self.max_variable_bytes;
        format!("{what} is over {max} bytes; at most {max} are allowed")
    }

    /// Checks variables given from outside (a start, a completion, a stone's outputs): each
    /// against [`Limits::max_variable_bytes`], together against [`Limits::max_instance_bytes`].
    ///
    /// # Errors
    /// A message naming the first variable past its bound, or the total.
    pub fn check_variables(&self, variables: &Map<String, Value>) -> Result<(), String> {
        let max = self.max_instance_bytes;
        match add_up(variables.iter(), self.max_variable_bytes, max) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("the variables are over {max} bytes together; at most {max} are allowed")),
            Err(name) => Err(self.too_large(&format!("variable `{name}`"))),
        }
    }
}

impl Instance {
    /// Checks all variables of the instance, its scopes' included, against
    /// [`Limits::max_instance_bytes`]: what many steps added up to.
    pub(crate) fn check_size(&mut self, limits: &Limits) -> Result<(), String> {
        let max = limits.max_instance_bytes;
        if self.variables_size(max) <= max {
            Ok(())
        } else {
            Err(format!("the variables of the process instance are over {max} bytes; at most {max} are allowed"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_are_counted_as_json_and_stop_past_the_cap() {
        assert_eq!(json_size(&json!({"a": [1, "xy"]}), 100), r#"{"a":[1,"xy"]}"#.len());
        let big = json!("x".repeat(10_000));
        assert!(json_size(&big, 100) > 100);
        assert!(json_size(&big, 100) <= 10_002, "stops at the chunk that passed the cap");
    }

    #[test]
    fn variables_past_either_bound_are_refused_naming_which() {
        let limits = Limits { max_variable_bytes: 10, max_instance_bytes: 20, ..Limits::default() };
        let one = Map::from_iter([("big".to_owned(), json!("x".repeat(20)))]);
        assert!(limits.check_variables(&one).expect_err("too big").contains("variable `big` is over 10 bytes"));
        let many = (0..5).map(|i| (format!("v{i}"), json!("abcd"))).collect();
        assert!(limits.check_variables(&many).expect_err("too many").contains("together"));
        let fine = Map::from_iter([("a".to_owned(), json!(1))]);
        assert_eq!(limits.check_variables(&fine), Ok(()));
    }
}
