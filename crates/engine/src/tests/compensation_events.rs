//! Compensation events: handlers of what completed run newest first, one at a time, before
//! the throw goes on.

use super::*;

/// Tasks `book` and `pay` (each with a user-task handler `undo_…`), then `throw` (the body),
/// then the end.
fn booking(throw: &str) -> Definition {
    model(&format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="book"/>
        <task id="book"/><sequenceFlow sourceRef="book" targetRef="pay"/><task id="pay"/>
        <sequenceFlow sourceRef="pay" targetRef="th"/>{throw}
        <boundaryEvent id="cb1" attachedToRef="book"><compensateEventDefinition/></boundaryEvent>
        <userTask id="undo_book" isForCompensation="true"/><association sourceRef="cb1" targetRef="undo_book"/>
        <boundaryEvent id="cb2" attachedToRef="pay"><compensateEventDefinition/></boundaryEvent>
        <userTask id="undo_pay" isForCompensation="true"/><association sourceRef="cb2" targetRef="undo_pay"/>"#
    ))
}

const THROW_ALL: &str = r#"<intermediateThrowEvent id="th"><compensateEventDefinition/></intermediateThrowEvent>
    <sequenceFlow sourceRef="th" targetRef="after"/><userTask id="after"/><sequenceFlow sourceRef="after" targetRef="e"/><endEvent id="e"/>"#;

#[test]
fn a_compensation_throw_runs_the_handlers_newest_first_one_at_a_time_then_goes_on() {
    let mut h = Harness::start(booking(THROW_ALL), json!({}));
    assert_eq!(h.open_at("undo_pay").len(), 1, "the newest is undone first");
    assert!(h.open_at("undo_book").is_empty(), "one handler at a time");
    assert!(h.open_at("after").is_empty(), "the throw waits for its handlers");
    let throw = h.records().into_iter().find(|r| r.element == "th").unwrap_or_else(|| panic!("no record of the throw"));
    assert_eq!((throw.kind.as_str(), throw.status), ("intermediateThrowEvent", TaskStatus::Active));
    assert_eq!(throw.params, Some(json!({"compensating": ["pay", "book"]})));
    h.complete("undo_pay", json!({}));
    assert_eq!(h.open_at("undo_book").len(), 1);
    assert!(h.open_at("after").is_empty());
    h.complete("undo_book", json!({}));
    assert_eq!(h.open_at("after").len(), 1);
    let throw = h.records().into_iter().find(|r| r.element == "th").unwrap_or_else(|| panic!("no record"));
    assert_eq!(throw.status, TaskStatus::Completed);
    h.complete("after", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

#[test]
fn an_activity_ref_compensates_that_activity_only_and_each_activity_is_undone_once() {
    let throws = r#"<intermediateThrowEvent id="th"><compensateEventDefinition activityRef="book"/></intermediateThrowEvent>
        <sequenceFlow sourceRef="th" targetRef="th2"/>
        <intermediateThrowEvent id="th2"><compensateEventDefinition/></intermediateThrowEvent>
        <sequenceFlow sourceRef="th2" targetRef="th3"/>
        <intermediateThrowEvent id="th3"><compensateEventDefinition/></intermediateThrowEvent>
        <sequenceFlow sourceRef="th3" targetRef="e"/><endEvent id="e"/>"#;
    let mut h = Harness::start(booking(throws), json!({}));
    assert_eq!(h.open_at("undo_book").len(), 1);
    assert!(h.open_at("undo_pay").is_empty());
    h.complete("undo_book", json!({}));
    assert_eq!(h.open_at("undo_pay").len(), 1, "the second throw undoes what is left");
    h.complete("undo_pay", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed, "the third has nothing left to undo and passes");
}

#[test]
fn a_throw_that_does_not_wait_goes_on_beside_its_handlers() {
    let throw = r#"<intermediateThrowEvent id="th"><compensateEventDefinition waitForCompletion="false"/></intermediateThrowEvent>
        <sequenceFlow sourceRef="th" targetRef="after"/><userTask id="after"/><sequenceFlow sourceRef="after" targetRef="e"/><endEvent id="e"/>"#;
    let mut h = Harness::start(booking(throw), json!({}));
    assert_eq!((h.open_at("after").len(), h.open_at("undo_pay").len()), (1, 1));
    h.complete("after", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Running, "the handlers still run");
    h.complete("undo_pay", json!({}));
    h.complete("undo_book", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

#[test]
fn a_compensation_end_event_ends_the_instance_once_its_handlers_are_done() {
    let end = r#"<endEvent id="th"><compensateEventDefinition/></endEvent>"#;
    let mut h = Harness::start(booking(end), json!({}));
    h.complete("undo_pay", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Running);
    h.complete("undo_book", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.inst.end_element.as_deref(), Some("th"));
}

#[test]
fn what_completed_in_a_subprocess_is_undone_from_around_it_unless_the_subprocess_has_its_own_handler() {
    let body = |own: &str| {
        format!(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sp"/>
            <subProcess id="sp"><startEvent id="ss"/><sequenceFlow sourceRef="ss" targetRef="inner"/><task id="inner"/>
              <sequenceFlow sourceRef="inner" targetRef="se"/><endEvent id="se"/>
              <boundaryEvent id="cb" attachedToRef="inner"><compensateEventDefinition/></boundaryEvent>
              <userTask id="undo_inner" isForCompensation="true"/><association sourceRef="cb" targetRef="undo_inner"/>
            </subProcess>{own}
            <sequenceFlow sourceRef="sp" targetRef="th"/><endEvent id="th"><compensateEventDefinition/></endEvent>"#
        )
    };
    let mut h = Harness::start(model(&body("")), json!({}));
    assert_eq!(h.open_at("undo_inner").len(), 1, "the inner handler runs, in the scope around the subprocess");
    h.complete("undo_inner", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);

    let own = r#"<boundaryEvent id="cbs" attachedToRef="sp"><compensateEventDefinition/></boundaryEvent>
        <userTask id="undo_sp" isForCompensation="true"/><association sourceRef="cbs" targetRef="undo_sp"/>"#;
    let mut h = Harness::start(model(&body(own)), json!({}));
    assert_eq!((h.open_at("undo_sp").len(), h.open_at("undo_inner").len()), (1, 0));
    h.complete("undo_sp", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

#[test]
fn an_activity_that_did_not_complete_is_not_undone() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="work"/><userTask id="work"/>
            <sequenceFlow sourceRef="work" targetRef="e"/><endEvent id="e"/>
            <boundaryEvent id="cb" attachedToRef="work"><compensateEventDefinition/></boundaryEvent>
            <userTask id="undo" isForCompensation="true"/><association sourceRef="cb" targetRef="undo"/>
            <boundaryEvent id="stop" attachedToRef="work"><messageEventDefinition messageRef="stop"/></boundaryEvent>
            <sequenceFlow sourceRef="stop" targetRef="th"/><endEvent id="th"><compensateEventDefinition/></endEvent>"#,
        ),
        json!({}),
    );
    let record = h.open_at("stop").into_iter().next().unwrap_or_else(|| panic!("no wait for the message"));
    h.apply(Command::Deliver { record, variables: Map::new() }).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Completed, "nothing to undo: the work was interrupted");
    assert!(h.records().iter().all(|r| r.element != "undo"));
}

#[test]
fn a_compensation_state_survives_serialization_mid_way() {
    let h = Harness::start(booking(THROW_ALL), json!({}));
    let back = h.read_back();
    let mut h = Harness { inst: back, ..h };
    h.complete("undo_pay", json!({}));
    h.complete("undo_book", json!({}));
    h.complete("after", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}
