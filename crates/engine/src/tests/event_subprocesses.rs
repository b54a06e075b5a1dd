//! Event subprocesses on a clock the tests drive: started by a timer (interrupting or not, a
//! cycle, in the process or in a subprocess) or by a BPMN error thrown in their scope.

use super::*;

const MINUTE: i64 = 60_000;

/// An event subprocess `esp` whose start event `es` has `definition` and interrupts unless
/// `interrupting` is false, leading to the user task `handle`.
fn event_sub(definition: &str, interrupting: bool) -> String {
    format!(
        r#"<subProcess id="esp" triggeredByEvent="true">
            <startEvent id="es" isInterrupting="{interrupting}">{definition}</startEvent>
            <sequenceFlow sourceRef="es" targetRef="handle"/><userTask id="handle"/>
            <sequenceFlow sourceRef="handle" targetRef="ee"/><endEvent id="ee"/>
        </subProcess>"#
    )
}

fn timer(kind: &str, text: &str) -> String {
    format!("<timerEventDefinition><{kind}>{text}</{kind}></timerEventDefinition>")
}

/// start → user task `work` → end, with `extra` beside it in the process.
fn waiting_on_work(extra: &str) -> Definition {
    model(&format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="work"/><userTask id="work"/>
        <sequenceFlow sourceRef="work" targetRef="e"/><endEvent id="e"/>{extra}"#
    ))
}

#[test]
fn an_interrupting_timer_event_subprocess_ends_the_process_work_and_runs_instead() {
    let mut h = Harness::start(waiting_on_work(&event_sub(&timer("timeDuration", "PT1H"), true)), json!({}));
    assert_eq!(h.open_elements(), ["es", "work"], "its timer waits beside the work");
    let es = h.records().into_iter().find(|r| r.element == "es").unwrap_or_else(|| panic!("no timer"));
    assert_eq!((es.kind.as_str(), es.status), ("startEvent", TaskStatus::Active));
    h.advance(1000 + 60 * MINUTE);
    assert_eq!(h.open_elements(), ["handle"], "the work was canceled");
    let work = h.records().into_iter().find(|r| r.element == "work").unwrap_or_else(|| panic!("no work"));
    assert_eq!(work.status, TaskStatus::Canceled);
    h.complete("handle", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert!(h.timers().is_empty());
}

#[test]
fn a_non_interrupting_cycle_runs_beside_the_work_at_each_firing_and_the_process_waits_for_it() {
    let mut h = Harness::start(waiting_on_work(&event_sub(&timer("timeCycle", "R2/PT10M"), false)), json!({}));
    h.advance(1000 + 10 * MINUTE);
    assert_eq!(h.open_elements(), ["es", "handle", "work"]);
    h.advance(1000 + 20 * MINUTE);
    assert_eq!(h.open_elements(), ["handle", "handle", "work"], "the cycle fired twice, then its record closed");
    assert!(h.timers().is_empty());
    h.complete("work", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Running, "the process waits for its event subprocesses");
    h.complete("handle", json!({}));
    h.complete("handle", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

#[test]
fn a_process_that_ends_drops_the_timers_of_its_event_subprocesses() {
    let mut h = Harness::start(waiting_on_work(&event_sub(&timer("timeCycle", "R/PT10M"), false)), json!({}));
    h.complete("work", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert!(h.timers().is_empty());
    let es = h.records().into_iter().find(|r| r.element == "es").unwrap_or_else(|| panic!("no timer"));
    assert_eq!(es.status, TaskStatus::Canceled);
}

/// start → subprocess `sub` (user task `inner`, and `esp`) → user task `after` → end.
fn in_subprocess(esp: &str) -> Definition {
    model(&format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/>
        <subProcess id="sub"><startEvent id="ss"/><sequenceFlow sourceRef="ss" targetRef="inner"/><userTask id="inner"/>
            <sequenceFlow sourceRef="inner" targetRef="se"/><endEvent id="se"/>{esp}</subProcess>
        <sequenceFlow sourceRef="sub" targetRef="after"/><userTask id="after"/>
        <sequenceFlow sourceRef="after" targetRef="e"/><endEvent id="e"/>"#
    ))
}

#[test]
fn a_timer_event_subprocess_in_a_subprocess_lives_with_its_run() {
    let mut h = Harness::start(in_subprocess(&event_sub(&timer("timeDuration", "PT5M"), true)), json!({}));
    assert_eq!(h.open_elements(), ["es", "inner"]);
    h.advance(1000 + 5 * MINUTE);
    assert_eq!(h.open_elements(), ["handle"], "the subprocess's work was interrupted");
    h.complete("handle", json!({}));
    assert_eq!(h.open_elements(), ["after"], "the subprocess ended, the flow went on after it");

    let mut h = Harness::start(in_subprocess(&event_sub(&timer("timeDuration", "PT5M"), true)), json!({}));
    h.complete("inner", json!({}));
    assert_eq!(h.open_elements(), ["after"]);
    assert!(h.timers().is_empty(), "the subprocess ended before its timer");
}

#[test]
fn an_error_event_subprocess_catches_an_error_thrown_in_its_scope() {
    let throws = r#"<error id="boom" errorCode="BOOM"/>"#;
    let body = format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="fork"/><parallelGateway id="fork"/>
        <sequenceFlow sourceRef="fork" targetRef="slow"/><userTask id="slow"/>
        <sequenceFlow sourceRef="fork" targetRef="fails"/><userTask id="fails"/>
        <sequenceFlow sourceRef="fails" targetRef="thrown"/><endEvent id="thrown"><errorEventDefinition errorRef="boom"/></endEvent>
        <sequenceFlow sourceRef="slow" targetRef="e"/><endEvent id="e"/>
        {}"#,
        event_sub(r#"<errorEventDefinition errorRef="boom"/>"#, true)
    );
    let xml = format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">{throws}<process id="p">{body}</process></definitions>"#
    );
    let def = parse_bpmn(&xml).unwrap_or_else(|e| panic!("{e}")).remove(0);
    let mut h = Harness::start(def, json!({}));
    h.complete("fails", json!({}));
    assert_eq!(h.open_elements(), ["handle"], "the parallel work was ended");
    h.complete("handle", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

#[test]
fn an_error_in_a_subprocess_is_caught_by_its_event_subprocess_and_the_flow_goes_on_after_it() {
    // `inner` leads to an error end event.
    let xml = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p">
        <startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/>
        <subProcess id="sub"><startEvent id="ss"/><sequenceFlow sourceRef="ss" targetRef="inner"/><userTask id="inner"/>
            <sequenceFlow sourceRef="inner" targetRef="se"/><endEvent id="se"><errorEventDefinition/></endEvent>
            ESP</subProcess>
        <sequenceFlow sourceRef="sub" targetRef="after"/><userTask id="after"/>
        <sequenceFlow sourceRef="after" targetRef="e"/><endEvent id="e"/></process></definitions>"#
        .replace("ESP", &event_sub("<errorEventDefinition/>", true));
    let def = parse_bpmn(&xml).unwrap_or_else(|e| panic!("{e}")).remove(0);
    let mut h = Harness::start(def, json!({}));
    h.complete("inner", json!({}));
    assert_eq!(h.open_elements(), ["handle"]);
    h.complete("handle", json!({}));
    assert_eq!(h.open_elements(), ["after"]);
}

#[test]
fn an_error_thrown_in_an_event_subprocess_is_not_caught_by_itself() {
    let xml = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p">
        <startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="boom"/><endEvent id="boom"><errorEventDefinition/></endEvent>
        <subProcess id="esp" triggeredByEvent="true"><startEvent id="es"><errorEventDefinition/></startEvent>
            <sequenceFlow sourceRef="es" targetRef="again"/><endEvent id="again"><errorEventDefinition/></endEvent>
        </subProcess></process></definitions>"#;
    let def = parse_bpmn(xml).unwrap_or_else(|e| panic!("{e}")).remove(0);
    let h = Harness::start(def, json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Failed, "no loop: {:?}", h.inst.failure);
}

#[test]
fn event_subprocesses_that_cannot_run_are_refused_at_deploy() {
    let refused = |body: &str| {
        let xml = format!(
            r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p">
            <startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="e"/><endEvent id="e"/>{body}</process></definitions>"#
        );
        parse_bpmn(&xml).err().map(|e| e.to_string()).unwrap_or_else(|| panic!("accepted: {body}"))
    };
    assert!(refused(&event_sub("", true)).contains("timer, error, message or signal start event"));
    assert!(refused(&event_sub("<errorEventDefinition/>", false)).contains("always interrupts"));
    let flowing =
        format!(r#"{}<sequenceFlow sourceRef="e" targetRef="esp"/>"#, event_sub(&timer("timeDuration", "PT1M"), true));
    assert!(refused(&flowing).contains("event subprocess"));
    assert!(
        refused(r#"<subProcess id="x"><startEvent id="xs"><errorEventDefinition/></startEvent></subProcess>"#)
            .contains("belongs to an event subprocess")
    );
}
