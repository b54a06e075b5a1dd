//! Any text given as an expression is parsed or refused, and what parses evaluates to a value
//! or an error against variables of every JSON type; nothing panics or overflows the stack.
#![no_main]

use serde_json::{Map, Value, json};

libfuzzer_sys::fuzz_target!(|text: &str| {
    let vars: Map<String, Value> = json!({
        "n": 7, "f": 2.5, "s": "a,b", "t": true, "z": null, "l": [1, "x", [2]], "o": {"k": {"v": 1}},
        "big": 9_007_199_254_740_993_i64, "neg": -3
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    for parsed in [flowstone_expr::Expression::parse(text), flowstone_expr::Expression::parse_bare(text)] {
        if let Ok(expression) = parsed {
            let _ = expression.eval(&vars);
            let _ = expression.eval_bool(&vars);
            let _ = expression.variables();
        }
    }
});
