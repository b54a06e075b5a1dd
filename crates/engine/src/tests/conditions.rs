//! Conditional events: catch events that wait for a condition, boundary events and event
//! subprocesses it starts, read again whenever the instance moved.

use super::*;

fn set(h: &mut Harness, variables: Value) {
    h.apply(Command::SetVariables { task: None, variables: vars(variables), removed: Vec::new() })
        .unwrap_or_else(|e| panic!("{e}"));
}

const CATCH: &str = r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="c"/>
    <intermediateCatchEvent id="c"><conditionalEventDefinition><condition>${ready == true}</condition></conditionalEventDefinition></intermediateCatchEvent>
    <sequenceFlow sourceRef="c" targetRef="e"/><endEvent id="e"/>"#;

#[test]
fn a_conditional_catch_event_waits_until_variables_make_its_condition_hold() {
    let mut h = Harness::start(model(CATCH), json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Running, "`ready` is not set: the condition does not hold yet");
    let rec = &h.records()[0];
    assert_eq!((rec.kind.as_str(), rec.status), ("intermediateCatchEvent", TaskStatus::Active));
    assert_eq!(rec.params, Some(json!({"eventType": "conditional", "condition": "${ready == true}"})));
    set(&mut h, json!({"ready": false}));
    assert_eq!(h.inst.status, InstanceStatus::Running);
    set(&mut h, json!({"ready": true}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.records()[0].status, TaskStatus::Completed);
    assert!(
        !h.effects.iter().any(|e| matches!(e, Effect::Subscribe(_) | Effect::Unsubscribe { .. })),
        "nothing outside waits for a condition"
    );
}

#[test]
fn a_conditional_catch_event_whose_condition_already_holds_passes_at_once() {
    let h = Harness::start(model(CATCH), json!({"ready": true}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

fn boundary(interrupting: bool) -> Definition {
    model(&format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="work"/>
        <userTask id="work"/><sequenceFlow sourceRef="work" targetRef="e"/><endEvent id="e"/>
        <boundaryEvent id="b" attachedToRef="work" cancelActivity="{interrupting}">
          <conditionalEventDefinition><condition>${{level > 3}}</condition></conditionalEventDefinition></boundaryEvent>
        <sequenceFlow sourceRef="b" targetRef="alarm"/><userTask id="alarm"/>
        <sequenceFlow sourceRef="alarm" targetRef="e2"/><endEvent id="e2"/>"#
    ))
}

#[test]
fn an_interrupting_conditional_boundary_event_cancels_its_activity_when_its_condition_comes_to_hold() {
    let mut h = Harness::start(boundary(true), json!({"level": 1}));
    assert_eq!(h.open_at("work").len(), 1);
    set(&mut h, json!({"level": 5}));
    assert!(h.open_at("work").is_empty(), "the task was interrupted");
    assert_eq!(h.open_at("alarm").len(), 1);
    let work = h.records().into_iter().find(|r| r.element == "work").unwrap_or_else(|| panic!("no record"));
    assert_eq!(work.status, TaskStatus::Canceled);
}

#[test]
fn a_non_interrupting_conditional_boundary_event_comes_once_each_time_its_condition_turns_true() {
    let mut h = Harness::start(boundary(false), json!({"level": 1}));
    set(&mut h, json!({"level": 5}));
    assert_eq!(h.open_at("alarm").len(), 1);
    set(&mut h, json!({"level": 6}));
    assert_eq!(h.open_at("alarm").len(), 1, "it still holds: no second alarm");
    set(&mut h, json!({"level": 2}));
    set(&mut h, json!({"level": 9}));
    assert_eq!(h.open_at("alarm").len(), 2, "it held anew");
    assert_eq!(h.open_at("work").len(), 1, "the task runs on");
    h.complete("work", json!({}));
    for _ in 0..2 {
        h.complete("alarm", json!({}));
    }
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

#[test]
fn a_conditional_boundary_event_whose_condition_holds_when_its_activity_starts_fires_at_once() {
    let h = Harness::start(boundary(true), json!({"level": 10}));
    assert!(h.open_at("work").is_empty());
    assert_eq!(h.open_at("alarm").len(), 1);
}

#[test]
fn a_conditional_event_subprocess_interrupts_parallel_work_when_a_completed_task_sets_its_variable() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="f"/><parallelGateway id="f"/>
            <sequenceFlow sourceRef="f" targetRef="a"/><sequenceFlow sourceRef="f" targetRef="b"/>
            <userTask id="a"/><userTask id="b"/>
            <sequenceFlow sourceRef="a" targetRef="j"/><sequenceFlow sourceRef="b" targetRef="j"/>
            <parallelGateway id="j"/><sequenceFlow sourceRef="j" targetRef="e"/><endEvent id="e"/>
            <subProcess id="esp" triggeredByEvent="true">
              <startEvent id="cs"><conditionalEventDefinition><condition>${abort}</condition></conditionalEventDefinition></startEvent>
              <sequenceFlow sourceRef="cs" targetRef="cleanup"/><userTask id="cleanup"/>
              <sequenceFlow sourceRef="cleanup" targetRef="ce"/><endEvent id="ce"/>
            </subProcess>"#,
        ),
        json!({}),
    );
    h.complete("a", json!({"abort": true}));
    assert!(h.open_at("b").is_empty(), "the other branch was canceled");
    assert_eq!(h.open_at("cleanup").len(), 1);
    h.complete("cleanup", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

#[test]
fn a_condition_looping_back_to_itself_is_stopped_by_the_step_limit() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="c"/>
            <intermediateCatchEvent id="c"><conditionalEventDefinition><condition>${true}</condition></conditionalEventDefinition></intermediateCatchEvent>
            <sequenceFlow sourceRef="c" targetRef="c2"/>
            <intermediateCatchEvent id="c2"><conditionalEventDefinition><condition>${true}</condition></conditionalEventDefinition></intermediateCatchEvent>
            <sequenceFlow sourceRef="c2" targetRef="c"/>"#,
        ),
        json!({}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    assert!(h.inst.failure.as_deref().is_some_and(|f| f.contains("steps in one go")), "{:?}", h.inst.failure);
}
