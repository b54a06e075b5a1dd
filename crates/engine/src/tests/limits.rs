//! The bounds of [`Limits`]: data past them fails the instance (or refuses the command), with
//! a reason naming the element and the limit, and never makes the engine work without end.

use super::*;

const SLAVES: &str = r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="slave"/>
    <serviceTask id="slave" flowstone:stone="MachineStone" flowstone:namespace="slave-">
      <multiInstanceLoopCharacteristics isSequential="false"><loopCardinality>${slaveNum}</loopCardinality></multiInstanceLoopCharacteristics>
    </serviceTask><sequenceFlow sourceRef="slave" targetRef="e"/><endEvent id="e"/>"#;

fn limited(body: &str, variables: Value, limits: Limits) -> Harness {
    Harness::start_limited(model(body), variables, StartOptions::default(), limits)
}

#[test]
fn a_billion_multi_instance_items_fail_the_instance_at_once_naming_the_element_and_the_limit() {
    let h = Harness::start(model(SLAVES), json!({"slaveNum": "1000000000"}));
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    let failure = h.inst.failure.as_deref().unwrap_or_default();
    assert!(failure.contains("`slave`") && failure.contains("at most 10000"), "{failure}");
    assert!(h.inst.open.is_empty() && h.inst.tokens.is_empty(), "no item was made");
    let huge = Harness::start(model(SLAVES), json!({"slaveNum": 1e15}));
    assert!(huge.inst.failure.as_deref().unwrap_or_default().contains("1000000000000000"));
}

#[test]
fn a_collection_longer_than_the_limit_fails_the_instance() {
    let limits = Limits { max_items: 2, ..Limits::default() };
    let h = limited(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/>
        <userTask id="u"><multiInstanceLoopCharacteristics flowable:collection="${people}" flowable:elementVariable="who"/></userTask>"#,
        json!({"people": ["a", "b", "c"]}),
        limits,
    );
    assert!(h.inst.failure.as_deref().unwrap_or_default().contains("multi-instance of 3 items; at most 2"));
}

#[test]
fn a_loop_without_a_wait_state_fails_at_the_step_limit() {
    let limits = Limits { max_steps: 50, ..Limits::default() };
    let h = limited(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/>
        <serviceTask id="t" flowable:expression="${1}" flowable:resultVariable="x"/><sequenceFlow sourceRef="t" targetRef="t"/>"#,
        json!({}),
        limits,
    );
    assert!(h.inst.failure.as_deref().unwrap_or_default().contains("more than 50 steps"));
}

#[test]
fn a_string_doubled_in_a_loop_fails_at_the_variable_limit_naming_the_task() {
    let limits = Limits { max_variable_bytes: 1024, ..Limits::default() };
    let h = limited(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="double"/>
        <serviceTask id="double" flowable:expression="${s + s}" flowable:resultVariable="s"/>
        <sequenceFlow sourceRef="double" targetRef="double"/>"#,
        json!({"s": "ab"}),
        limits,
    );
    let failure = h.inst.failure.as_deref().unwrap_or_default();
    assert!(failure.contains("at `double`") && failure.contains("at most 1024"), "{failure}");
    assert!(h.inst.variables["s"].as_str().unwrap_or_default().len() <= 1024);
}

#[test]
fn stone_outputs_past_the_variable_limit_fail_the_task_instead_of_being_kept() {
    let limits = Limits { max_variable_bytes: 100, ..Limits::default() };
    let mut h = limited(SLAVES, json!({"slaveNum": 1}), limits);
    let id = h.open_at("slave").remove(0);
    let outputs = vars(json!({"log": "x".repeat(500)}));
    h.apply(Command::Stone {
        record: id,
        event: StoneEvent::Success { action: Action::Start, outputs, monitor: false },
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    let failure = h.inst.failure.as_deref().unwrap_or_default();
    assert!(failure.contains("outputs cannot be kept") && failure.contains("`log`"), "{failure}");
    assert!(!h.inst.variables.contains_key("slave-1"), "nothing of the outputs was kept");
}

#[test]
fn a_completion_with_variables_past_the_limits_is_refused_and_changes_nothing() {
    let limits = Limits { max_variable_bytes: 100, ..Limits::default() };
    let mut h = limited(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/><userTask id="u"/>"#,
        json!({}),
        limits,
    );
    let id = h.open_at("u").remove(0);
    let before = h.inst.clone();
    let big = vars(json!({"note": "x".repeat(500)}));
    let err = h.apply(Command::CompleteUserTask { task: id, variables: big.clone(), transient: Map::new() });
    assert!(matches!(err, Err(EngineError::TooLarge(m)) if m.contains("`note`")));
    assert_eq!(h.inst, before);
    let err = h.apply(Command::SetVariables { task: None, variables: big, removed: Vec::new() });
    assert!(matches!(err, Err(EngineError::TooLarge(_))));
}

#[test]
fn variables_adding_up_past_the_instance_limit_fail_the_instance() {
    let limits = Limits { max_instance_bytes: 2_000, ..Limits::default() };
    let h = limited(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/>
        <serviceTask id="u" flowable:expression="${s}${s}" flowable:resultVariable="s">
          <multiInstanceLoopCharacteristics><loopCardinality>3</loopCardinality></multiInstanceLoopCharacteristics>
        </serviceTask><sequenceFlow sourceRef="u" targetRef="w"/><userTask id="w"/>"#,
        json!({"s": "x".repeat(300)}),
        limits,
    );
    assert!(h.inst.failure.as_deref().unwrap_or_default().contains("over 2000 bytes"), "{:?}", h.inst.failure);
}

#[test]
fn stone_parameters_of_many_items_past_the_command_limit_fail_the_instance() {
    let limits = Limits { max_command_bytes: 10_000, ..Limits::default() };
    let h = limited(SLAVES, json!({"slaveNum": 100, "payload": "x".repeat(200)}), limits);
    let failure = h.inst.failure.as_deref().unwrap_or_default();
    assert!(failure.contains("at `slave`") && failure.contains("over 10000 bytes of parameters"), "{failure}");
}
