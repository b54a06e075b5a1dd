//! JavaScript for script tasks, as Flowable and Camunda 7 models write it, run in an embedded
//! interpreter (QuickJS) that can reach nothing outside the script: no files, no network, no
//! clock but `Date`, and no module loader.
//!
//! A model is user input, so a script is bounded like every other input: each run gets a
//! fresh interpreter whose heap, stack and running time are capped; a script that loops or
//! allocates without bound is stopped and answered as an error, and the server goes on.
//!
//! A script sees the instance's variables as globals (a variable named like a built-in, say
//! `Math`, stays reachable through `execution.getVariable`), and Flowable's `execution`
//! object: `getVariable`, `setVariable` (and their `Local` forms), `hasVariable`,
//! `getVariables`. What it sets and the value of its last statement (Flowable's
//! `resultVariable`) are answered as JSON values; the caller applies them.

use rquickjs::context::EvalOptions;
use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Function, Object, Runtime, Value as JsValue};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// What one script run may use. A script runs in the step that reaches it, so its time is
/// time every other commit of its server waits: the default is generous for a script's work
/// (most take well under a millisecond) and short for a loop's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The longest a run may take before it is stopped.
    pub time: Duration,
    /// The most heap the interpreter may allocate, its own start-up included (about 200 KiB).
    pub memory: usize,
    /// The deepest the interpreter's stack may grow, in bytes.
    pub stack: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds { time: Duration::from_millis(100), memory: 32 * 1024 * 1024, stack: 256 * 1024 }
    }
}

/// What a script did: its value and the variables it set, in the order it set them.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The value of the script's last statement (`null` when it has none, or none JSON holds).
    pub value: Value,
    /// `execution.setVariable(name, value)` calls; a later one of a name replaces an earlier.
    pub set: Vec<(String, Value)>,
}

/// Builds Flowable's `execution` over the variables, and the function that answers what the
/// script set, as JSON. Set variables are read back first, so a script sees its own writes.
const PRELUDE: &str = r"(function (vars) {
  const sets = new Map();
  const has = (name) => sets.has(name) || Object.prototype.hasOwnProperty.call(vars, name);
  const get = (name) => (sets.has(name) ? sets.get(name) : vars[name]);
  const set = (name, value) => { sets.delete(String(name)); sets.set(String(name), value); };
  const execution = {
    getVariable: get, getVariableLocal: get, hasVariable: has, hasVariableLocal: has,
    setVariable: set, setVariableLocal: set,
    getVariables() { const all = Object.assign({}, vars); for (const [k, v] of sets) all[k] = v; return all; },
  };
  return { execution, sets: () => JSON.stringify(Array.from(sets)) };
})";

/// Whether `source` parses as a script: a model whose script does not is refused at deploy.
///
/// # Errors
/// The interpreter's syntax error, with its line.
pub fn check(source: &str) -> Result<(), String> {
    with_context(&Bounds::default(), |ctx| {
        // The Function constructor parses its body without running it.
        let constructor: Function<'_> = ctx.globals().get("Function").map_err(|e| e.to_string())?;
        constructor.call::<_, JsValue<'_>>((source,)).catch(ctx).map(drop).map_err(|e| caught(&e))
    })
}

/// Runs `source` over `variables` within `bounds`.
///
/// # Errors
/// What the script threw, or which bound it ran past.
pub fn run(source: &str, variables: &Map<String, Value>, bounds: &Bounds) -> Result<Outcome, String> {
    with_context(bounds, |ctx| {
        let vars = ctx.json_parse(serde_json::to_string(variables).map_err(|e| e.to_string())?).catch(ctx);
        let vars = vars.map_err(|e| caught(&e))?;
        let prelude: Function<'_> = ctx.eval(PRELUDE).catch(ctx).map_err(|e| caught(&e))?;
        let made: Object<'_> = prelude.call((vars.clone(),)).catch(ctx).map_err(|e| caught(&e))?;
        let execution: Object<'_> = made.get("execution").map_err(|e| e.to_string())?;
        let sets: Function<'_> = made.get("sets").map_err(|e| e.to_string())?;
        let globals = ctx.globals();
        globals.set("execution", execution).map_err(|e| e.to_string())?;
        if let Some(vars) = vars.as_object() {
            for name in variables.keys() {
                if !globals.contains_key(name.as_str()).unwrap_or(true) {
                    let value: JsValue<'_> = vars.get(name.as_str()).map_err(|e| e.to_string())?;
                    globals.set(name.as_str(), value).map_err(|e| e.to_string())?;
                }
            }
        }
        let mut options = EvalOptions::default();
        options.global = true;
        options.strict = false;
        let value: JsValue<'_> = ctx.eval_with_options(source, options).catch(ctx).map_err(|e| caught(&e))?;
        let value = to_json(ctx, value)?;
        let sets: String = sets.call(()).catch(ctx).map_err(|e| caught(&e))?;
        let sets: Vec<(String, Value)> = serde_json::from_str(&sets).map_err(|e| e.to_string())?;
        Ok(Outcome { value, set: sets })
    })
}

/// Runs `f` in a fresh interpreter held to `bounds`; the interpreter is gone when it returns.
/// A failure past a bound is answered as that bound, whatever the script made of it.
fn with_context<T>(bounds: &Bounds, f: impl FnOnce(&Ctx<'_>) -> Result<T, String>) -> Result<T, String> {
    let runtime = Runtime::new().map_err(|e| format!("the script interpreter cannot start: {e}"))?;
    runtime.set_memory_limit(bounds.memory);
    runtime.set_max_stack_size(bounds.stack);
    let deadline = Instant::now() + bounds.time;
    runtime.set_interrupt_handler(Some(Box::new(move || Instant::now() >= deadline)));
    let context = Context::full(&runtime).map_err(|e| format!("the script interpreter cannot start: {e}"))?;
    context.with(|ctx| f(&ctx)).map_err(|reason| {
        // Out of memory, QuickJS may have no room left to make an error and throws `null`.
        // An allocation refused is the memory bound even when the time ran out meanwhile (a
        // busy machine); an interrupt is the time bound.
        let used = usize::try_from(runtime.memory_usage().malloc_size).unwrap_or(usize::MAX);
        let memory = || format!("the script ran past its memory limit of {} KiB and was stopped", bounds.memory / 1024);
        if reason.contains("out of memory") {
            memory()
        } else if Instant::now() >= deadline {
            format!("the script ran past its time limit of {} ms and was stopped", bounds.time.as_millis())
        } else if used >= bounds.memory - bounds.memory / 8 {
            memory()
        } else {
            reason
        }
    })
}

/// A JavaScript value as JSON: `undefined`, functions and symbols are `null`.
fn to_json<'js>(ctx: &Ctx<'js>, value: JsValue<'js>) -> Result<Value, String> {
    match ctx.json_stringify(value).catch(ctx).map_err(|e| caught(&e))? {
        None => Ok(Value::Null),
        Some(text) => {
            let text = text.to_string().map_err(|e| e.to_string())?;
            serde_json::from_str(&text).map_err(|e| e.to_string())
        }
    }
}

/// What a script threw, as one line: an error's name and message and where, or the value.
fn caught(error: &CaughtError<'_>) -> String {
    match error {
        CaughtError::Exception(e) => {
            let message = e.message().unwrap_or_default();
            let name: Option<String> = e.get("name").ok();
            let line: Option<i32> = e.get("lineNumber").ok();
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            match name {
                Some(name) if !name.is_empty() => format!("{name}: {message}{at}"),
                _ => format!("{message}{at}"),
            }
        }
        CaughtError::Value(v) => {
            let text = v.as_string().and_then(|s| s.to_string().ok());
            format!("the script threw {}", text.unwrap_or_else(|| format!("a {}", v.type_name())))
        }
        CaughtError::Error(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests;
