//! JavaScript script tasks: the script sees the instance's variables, sets what it sets with
//! `execution.setVariable`, and its last value is the result variable; a script that throws,
//! loops or allocates without bound fails its task and instance, naming the element.

use super::*;
use std::time::Duration;

fn script(source: &str, result: &str) -> String {
    format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="calc"/>
        <scriptTask id="calc" scriptFormat="javascript" {result}><script><![CDATA[{source}]]></script></scriptTask>
        <sequenceFlow sourceRef="calc" targetRef="after"/><userTask id="after"/>
        <sequenceFlow sourceRef="after" targetRef="e"/><endEvent id="e"/>"#
    )
}

#[test]
fn a_javascript_task_sets_its_result_variable_and_what_it_sets_through_execution() {
    let source = "var items = order.lines.map(function (l) { return l.qty * l.price; });\n\
                  execution.setVariable('lineCount', items.length);\n\
                  items.reduce(function (a, b) { return a + b; }, 0)";
    let h = Harness::start(
        model(&script(source, r#"flowable:resultVariable="total""#)),
        json!({"order": {"lines": [{"qty": 2, "price": 5}, {"qty": 1, "price": 7}]}}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Running, "{:?}", h.inst.failure);
    assert_eq!((h.inst.variables["total"].clone(), h.inst.variables["lineCount"].clone()), (json!(17), json!(2)));
    let rec = h.records().into_iter().find(|r| r.element == "calc").unwrap_or_else(|| panic!("no record of calc"));
    assert_eq!((rec.kind.as_str(), rec.status), ("scriptTask", TaskStatus::Completed));
    assert_eq!(rec.outputs, Some(json!({"total": 17})));
    assert_eq!(h.open_at("after").len(), 1);
}

#[test]
fn a_script_that_throws_fails_its_task_and_the_instance_naming_the_element() {
    let h = Harness::start(model(&script("throw new TypeError('no customer')", "")), json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    let failure = h.inst.failure.as_deref().unwrap_or_default();
    assert!(failure.contains("`calc`") && failure.contains("TypeError: no customer"), "{failure}");
    let rec = h.records().into_iter().find(|r| r.element == "calc").unwrap_or_else(|| panic!("no record of calc"));
    assert_eq!(rec.status, TaskStatus::Failed);
}

#[test]
fn a_script_that_loops_forever_is_stopped_at_the_script_time_limit_and_fails_the_instance() {
    let mut limits = Limits::default();
    limits.script.time = Duration::from_millis(30);
    let h = Harness::start_limited(model(&script("while (true) {}", "")), json!({}), StartOptions::default(), limits);
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    let failure = h.inst.failure.as_deref().unwrap_or_default();
    assert!(failure.contains("`calc`") && failure.contains("time limit of 30 ms"), "{failure}");
}

#[test]
fn a_script_that_sets_a_variable_past_the_variable_limit_fails_naming_it() {
    let limits = Limits { max_variable_bytes: 1000, ..Limits::default() };
    let h = Harness::start_limited(
        model(&script("execution.setVariable('blob', 'x'.repeat(5000)); 1", "")),
        json!({}),
        StartOptions::default(),
        limits,
    );
    let failure = h.inst.failure.as_deref().unwrap_or_default();
    assert!(failure.contains("`blob`") && failure.contains("at most 1000"), "{failure}");
    assert!(!h.inst.variables.contains_key("blob"), "nothing past the bound is kept");
}

#[test]
fn a_javascript_task_takes_boundary_events_and_runs_once_per_multi_instance_item() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="calc"/>
            <scriptTask id="calc" scriptFormat="javascript"><multiInstanceLoopCharacteristics isSequential="true"
              flowable:collection="${items}" flowable:elementVariable="item"/>
              <script>execution.setVariable('sum', (execution.getVariable('sum') || 0) + item)</script></scriptTask>
            <sequenceFlow sourceRef="calc" targetRef="e"/><endEvent id="e"/>
            <boundaryEvent id="b" attachedToRef="calc"><messageEventDefinition messageRef="stop"/></boundaryEvent>
            <sequenceFlow sourceRef="b" targetRef="e2"/><endEvent id="e2"/>"#,
        ),
        json!({"items": [1, 2, 3]}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Completed, "{:?}", h.inst.failure);
    assert_eq!(h.inst.variables["sum"], json!(6));
    assert_eq!(h.elements_run().iter().filter(|e| *e == "calc").count(), 3);
}
