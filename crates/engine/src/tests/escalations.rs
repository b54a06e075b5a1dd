//! Escalations: thrown by end and intermediate events, caught by boundary events (which may
//! leave the work running) and event subprocesses; one nothing catches changes nothing.

use super::*;

fn escalating(body: &str) -> Definition {
    let xml = format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><escalation id="late" escalationCode="LATE"/>
        <process id="p">{body}</process></definitions>"#
    );
    parse_bpmn(&xml).unwrap_or_else(|e| panic!("{e}")).remove(0)
}

/// A subprocess whose work is `inner`, with a boundary event of `boundary` attributes leading
/// to the user task `handle`; after the subprocess, the user task `after`.
fn guarded_sub(inner: &str, boundary: &str) -> Definition {
    escalating(&format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/>
        <subProcess id="sub"><startEvent id="ss"/>{inner}</subProcess>
        <boundaryEvent id="b" attachedToRef="sub" {boundary}><escalationEventDefinition escalationRef="late"/></boundaryEvent>
        <sequenceFlow sourceRef="b" targetRef="handle"/><userTask id="handle"/>
        <sequenceFlow sourceRef="sub" targetRef="after"/><userTask id="after"/>"#
    ))
}

#[test]
fn an_escalation_end_event_is_caught_by_an_interrupting_boundary_which_ends_the_subprocess() {
    let def = guarded_sub(
        r#"<sequenceFlow sourceRef="ss" targetRef="fork"/><parallelGateway id="fork"/>
        <sequenceFlow sourceRef="fork" targetRef="work"/><userTask id="work"/>
        <sequenceFlow sourceRef="fork" targetRef="up"/><endEvent id="up"><escalationEventDefinition escalationRef="late"/></endEvent>"#,
        "",
    );
    let h = Harness::start(def, json!({}));
    assert_eq!(h.open_elements(), ["handle"], "the subprocess and its work ended");
    assert!(h.records().iter().any(|r| r.element == "work" && r.status == TaskStatus::Canceled));
}

#[test]
fn a_non_interrupting_boundary_leaves_the_subprocess_running_and_the_thrower_goes_on() {
    let def = guarded_sub(
        r#"<sequenceFlow sourceRef="ss" targetRef="raise"/>
        <intermediateThrowEvent id="raise"><escalationEventDefinition escalationRef="late"/></intermediateThrowEvent>
        <sequenceFlow sourceRef="raise" targetRef="work"/><userTask id="work"/>
        <sequenceFlow sourceRef="work" targetRef="se"/><endEvent id="se"/>"#,
        r#"cancelActivity="false""#,
    );
    let mut h = Harness::start(def, json!({}));
    assert_eq!(h.open_elements(), ["handle", "work"], "both go on");
    h.complete("work", json!({}));
    assert_eq!(h.open_elements(), ["after", "handle"]);
}

#[test]
fn an_escalation_event_subprocess_catches_one_thrown_in_its_scope_and_an_uncaught_one_changes_nothing() {
    let def = escalating(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/>
        <subProcess id="sub"><startEvent id="ss"/><sequenceFlow sourceRef="ss" targetRef="up"/>
          <endEvent id="up"><escalationEventDefinition escalationRef="late"/></endEvent>
          <subProcess id="esp" triggeredByEvent="true"><startEvent id="es"><escalationEventDefinition/></startEvent>
            <sequenceFlow sourceRef="es" targetRef="escalated"/><userTask id="escalated"/></subProcess></subProcess>
        <sequenceFlow sourceRef="sub" targetRef="e"/><endEvent id="e"/>"#,
    );
    let mut h = Harness::start(def, json!({}));
    assert_eq!(h.open_elements(), ["escalated"]);
    h.complete("escalated", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);

    let uncaught = escalating(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="up"/>
        <intermediateThrowEvent id="up"><escalationEventDefinition escalationRef="late"/></intermediateThrowEvent>
        <sequenceFlow sourceRef="up" targetRef="e"/><endEvent id="e"><escalationEventDefinition escalationRef="late"/></endEvent>"#,
    );
    let h = Harness::start(uncaught, json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed, "{:?}", h.inst.failure);
}

#[test]
fn an_escalation_boundary_catches_escalations_only_and_an_error_one_errors_only() {
    let def = guarded_sub(
        r#"<sequenceFlow sourceRef="ss" targetRef="x"/><endEvent id="x"><errorEventDefinition errorRef="LATE"/></endEvent>"#,
        "",
    );
    let h = Harness::start(def, json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Failed, "an error is not an escalation");
}
