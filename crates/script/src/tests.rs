use super::*;
use serde_json::json;

fn vars(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

fn ok(source: &str, variables: Value) -> Outcome {
    run(source, &vars(variables), &Bounds::default()).unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn fails(source: &str, bounds: &Bounds) -> String {
    run(source, &Map::new(), bounds).expect_err("the script should fail")
}

#[test]
fn the_last_statement_is_the_value_and_variables_are_globals() {
    let out = ok("var total = a + b.n; total * 2", json!({"a": 1, "b": {"n": 2}}));
    assert_eq!(out.value, json!(6));
    assert!(out.set.is_empty());
}

#[test]
fn execution_set_variable_answers_what_was_set_in_order_and_reads_it_back() {
    let out = ok(
        "execution.setVariable('z', [1, 'two']); execution.setVariable('a', {k: true}); execution.setVariable('z', 3);\
         execution.getVariable('z') + execution.getVariable('n')",
        json!({"n": 10}),
    );
    assert_eq!(out.set, vec![("a".to_owned(), json!({"k": true})), ("z".to_owned(), json!(3))]);
    assert_eq!(out.value, json!(13));
}

#[test]
fn a_variable_named_like_a_built_in_leaves_the_built_in_and_is_read_through_execution() {
    let out = ok("[Math.max(1, 2), execution.getVariable('Math'), execution.hasVariable('nope')]", json!({"Math": 7}));
    assert_eq!(out.value, json!([2, 7, false]));
}

#[test]
fn values_json_cannot_hold_are_null() {
    assert_eq!(ok("undefined", json!({})).value, Value::Null);
    assert_eq!(ok("(function () {})", json!({})).value, Value::Null);
    assert_eq!(ok("", json!({})).value, Value::Null);
}

#[test]
fn a_thrown_error_names_its_kind_and_message() {
    let reason = fails("null.x", &Bounds::default());
    assert!(reason.starts_with("TypeError"), "{reason}");
    let reason = fails("throw new Error('no stock')", &Bounds::default());
    assert!(reason.contains("Error: no stock"), "{reason}");
    let reason = fails("throw 'plain'", &Bounds::default());
    assert_eq!(reason, "the script threw plain");
}

#[test]
fn a_script_that_loops_forever_is_stopped_at_its_time_limit() {
    let bounds = Bounds { time: Duration::from_millis(50), ..Bounds::default() };
    let reason = fails("while (true) {}", &bounds);
    assert_eq!(reason, "the script ran past its time limit of 50 ms and was stopped");
    let reason = fails("for (;;) { try { while (true) {} } catch (e) {} }", &bounds);
    assert!(reason.contains("time limit"), "an interrupt cannot be caught: {reason}");
}

#[test]
fn a_script_that_allocates_without_bound_is_stopped_at_its_memory_limit() {
    // Time enough for any machine to reach the memory bound first.
    let bounds = Bounds { memory: 4 * 1024 * 1024, time: Duration::from_secs(30), ..Bounds::default() };
    let reason = fails("let s = 'x'; while (true) { s = s.repeat(2); }", &bounds);
    assert!(reason.contains("memory limit of 4096 KiB"), "{reason}");
    let reason = fails("const a = []; while (true) { a.push({}); }", &bounds);
    assert!(reason.contains("memory limit"), "{reason}");
}

#[test]
fn unbounded_recursion_is_a_range_error_not_a_crash() {
    let bounds = Bounds { time: Duration::from_secs(30), ..Bounds::default() };
    let reason = fails("function f(n) { return f(n + 1) + 1; } f(0)", &bounds);
    assert!(reason.contains("stack"), "{reason}");
}

#[test]
fn a_script_reaches_nothing_outside_it() {
    let out =
        ok("[typeof require, typeof process, typeof std, typeof os, typeof fetch, typeof XMLHttpRequest]", json!({}));
    assert_eq!(out.value, json!(["undefined", "undefined", "undefined", "undefined", "undefined", "undefined"]));
}

#[test]
fn check_refuses_a_syntax_error_and_runs_nothing() {
    let reason = check("var x = ;").expect_err("a syntax error");
    assert!(reason.starts_with("SyntaxError"), "{reason}");
    check("while (true) {}").expect("parsing does not run the loop");
}

#[test]
#[ignore = "a measurement, run by hand: cargo test -p flowstone-script --release -- --ignored --nocapture"]
fn measure_one_run() {
    let variables = vars(json!({"items": [1, 2, 3], "order": {"id": "o-1"}}));
    let n = 2000;
    let start = Instant::now();
    for _ in 0..n {
        run("items.reduce((a, b) => a + b, 0)", &variables, &Bounds::default()).unwrap_or_else(|e| panic!("{e}"));
    }
    println!("{:?} per run", start.elapsed() / n);
}
