//! Message and signal events: catch events and receive tasks that wait, boundary events
//! that interrupt or not, event subprocesses they start, and throws.

use super::*;
use std::collections::BTreeMap;

impl Harness {
    /// The subscriptions open after every effect so far: record → (kind, name, key).
    pub(super) fn subscriptions(&self) -> BTreeMap<String, (String, String, Option<String>)> {
        let mut open = BTreeMap::new();
        for e in &self.effects {
            match e {
                Effect::Subscribe(s) => {
                    open.insert(s.record_id.clone(), (s.kind.name().to_owned(), s.name.clone(), s.key.clone()));
                }
                Effect::Unsubscribe { record_id } => {
                    open.remove(record_id);
                }
                _ => {}
            }
        }
        open
    }

    /// Delivers to the one open subscription for `name`.
    pub(super) fn deliver(&mut self, name: &str, variables: Value) -> Result<(), EngineError> {
        let record = self
            .subscriptions()
            .into_iter()
            .find(|(_, (_, n, _))| n == name)
            .map(|(id, _)| id)
            .unwrap_or_else(|| panic!("nothing waits for {name}"));
        self.apply(Command::Deliver { record, variables: vars(variables) })
    }

    fn thrown(&self) -> Vec<Thrown> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Throw(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }
}

const MESSAGES: &str = r#"<message id="pay" name="payment" flowstone:correlationKey="${orderId}"/><signal id="alert" name="alert"/>
  <signal id="local" name="local" flowable:scope="processInstance"/>"#;

/// A model with the document's messages and signals declared.
fn events_model(body: &str) -> Definition {
    let xml = format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn"
          xmlns:flowstone="http://flowstone.dev/bpmn">{MESSAGES}<process id="p">{body}</process></definitions>"#
    );
    parse_bpmn(&xml).unwrap_or_else(|e| panic!("{e}")).remove(0)
}

#[test]
fn a_catch_event_waits_for_its_message_keyed_by_the_correlation_key_and_sets_its_variables() {
    let mut h = Harness::start(
        events_model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="m"/>
            <intermediateCatchEvent id="m"><messageEventDefinition messageRef="pay"/></intermediateCatchEvent>
            <sequenceFlow sourceRef="m" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({"orderId": 42}),
    );
    let subs: Vec<_> = h.subscriptions().into_values().collect();
    assert_eq!(subs, [("message".to_owned(), "payment".to_owned(), Some("42".to_owned()))]);
    let rec = &h.records()[0];
    assert_eq!((rec.kind.as_str(), rec.status), ("intermediateCatchEvent", TaskStatus::Active));
    assert_eq!(rec.params, Some(json!({"eventType": "message", "eventName": "payment", "correlationKey": "42"})));
    h.deliver("payment", json!({"paid": true})).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.inst.variables.get("paid"), Some(&json!(true)));
    assert!(h.subscriptions().is_empty(), "the wait is over");
    let again = h.apply(Command::Deliver { record: "id1".into(), variables: Map::new() });
    assert!(matches!(again, Err(EngineError::NotRunning(_))), "{again:?}");
}

#[test]
fn a_correlation_key_that_is_null_fails_the_instance_naming_the_message() {
    let h = Harness::start(
        events_model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="m"/>
            <intermediateCatchEvent id="m"><messageEventDefinition messageRef="pay"/></intermediateCatchEvent>
            <sequenceFlow sourceRef="m" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({"orderId": null}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    let failure = h.inst.failure.clone().unwrap_or_default();
    assert!(failure.contains("`${orderId}` of message `payment` is null"), "{failure}");
}

#[test]
fn a_receive_task_without_a_message_waits_for_a_trigger() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="r"/><receiveTask id="r"/>
            <sequenceFlow sourceRef="r" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({}),
    );
    let subs: Vec<_> = h.subscriptions().into_values().collect();
    assert_eq!(subs, [("trigger".to_owned(), String::new(), None)]);
    assert_eq!(h.records()[0].kind, "receiveTask");
    let record = h.open_at("r").remove(0);
    h.apply(Command::Deliver { record, variables: Map::new() }).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

/// start → user task `work` (with `boundary` attached, leading to `handle`) → end.
fn work_with_boundary(boundary: &str, interrupting: bool) -> Definition {
    events_model(&format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="work"/><userTask id="work"/>
        <sequenceFlow sourceRef="work" targetRef="e"/><endEvent id="e"/>
        <boundaryEvent id="b" attachedToRef="work" cancelActivity="{interrupting}">{boundary}</boundaryEvent>
        <sequenceFlow sourceRef="b" targetRef="handle"/><userTask id="handle"/>
        <sequenceFlow sourceRef="handle" targetRef="e2"/><endEvent id="e2"/>"#
    ))
}

#[test]
fn an_interrupting_message_boundary_cancels_its_task_and_takes_the_flow_on() {
    let mut h = Harness::start(
        work_with_boundary(r#"<messageEventDefinition messageRef="pay"/>"#, true),
        json!({"orderId": "A-1"}),
    );
    assert_eq!(h.open_elements(), ["b", "work"]);
    h.deliver("payment", json!({"reason": "paid"})).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.open_elements(), ["handle"]);
    assert_eq!(h.records().iter().find(|r| r.element == "work").map(|r| r.status), Some(TaskStatus::Canceled));
    assert_eq!(h.inst.variables.get("reason"), Some(&json!("paid")));
    assert!(h.subscriptions().is_empty());
    let again = h.apply(Command::Deliver { record: "id2".into(), variables: Map::new() });
    assert!(matches!(again, Err(EngineError::NotWaiting(_))), "a second message finds no wait: {again:?}");
}

#[test]
fn a_non_interrupting_signal_boundary_runs_beside_its_task_each_time_and_ends_with_it() {
    let mut h = Harness::start(work_with_boundary(r#"<signalEventDefinition signalRef="alert"/>"#, false), json!({}));
    h.deliver("alert", json!({})).unwrap_or_else(|e| panic!("{e}"));
    h.deliver("alert", json!({})).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.open_elements(), ["b", "handle", "handle", "work"]);
    h.complete("work", json!({}));
    assert!(h.subscriptions().is_empty(), "the boundary's wait ended with its task");
    assert_eq!(h.records().iter().find(|r| r.element == "b").map(|r| r.status), Some(TaskStatus::Canceled));
    h.complete("handle", json!({}));
    h.complete("handle", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

#[test]
fn a_message_event_subprocess_interrupts_its_scope_and_one_that_does_not_runs_beside_it() {
    for (interrupting, open) in [(true, vec!["handle"]), (false, vec!["es", "handle", "work"])] {
        let mut h = Harness::start(
            events_model(&format!(
                r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="work"/><userTask id="work"/>
                <sequenceFlow sourceRef="work" targetRef="e"/><endEvent id="e"/>
                <subProcess id="esp" triggeredByEvent="true">
                  <startEvent id="es" isInterrupting="{interrupting}"><messageEventDefinition messageRef="pay"/></startEvent>
                  <sequenceFlow sourceRef="es" targetRef="handle"/><userTask id="handle"/>
                  <sequenceFlow sourceRef="handle" targetRef="ee"/><endEvent id="ee"/>
                </subProcess>"#
            )),
            json!({"orderId": 7}),
        );
        assert_eq!(h.subscriptions().len(), 1);
        h.deliver("payment", json!({"amount": 3})).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.open_elements(), open, "interrupting: {interrupting}");
        assert_eq!(h.inst.variables.get("amount"), Some(&json!(3)));
    }
}

#[test]
fn throws_send_messages_and_signals_out_and_a_signal_of_the_instance_reaches_its_own_waits() {
    let h = Harness::start(
        events_model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="fork"/><parallelGateway id="fork"/>
            <sequenceFlow sourceRef="fork" targetRef="wait"/><sequenceFlow sourceRef="fork" targetRef="t1"/>
            <intermediateCatchEvent id="wait"><signalEventDefinition signalRef="local"/></intermediateCatchEvent>
            <sequenceFlow sourceRef="wait" targetRef="join"/>
            <intermediateThrowEvent id="t1"><messageEventDefinition messageRef="pay"/></intermediateThrowEvent>
            <sequenceFlow sourceRef="t1" targetRef="t2"/>
            <intermediateThrowEvent id="t2"><signalEventDefinition signalRef="local"/></intermediateThrowEvent>
            <sequenceFlow sourceRef="t2" targetRef="join"/><parallelGateway id="join"/>
            <sequenceFlow sourceRef="join" targetRef="e"/>
            <endEvent id="e"><signalEventDefinition signalRef="alert"/></endEvent>"#,
        ),
        json!({"orderId": "x"}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Completed, "the local signal released the wait");
    let thrown: Vec<_> = h.thrown().into_iter().map(|t| (t.kind.name(), t.name, t.key)).collect();
    assert_eq!(
        thrown,
        [("message", "payment".to_owned(), Some("x".to_owned())), ("signal", "alert".to_owned(), None)],
        "the instance-only signal did not go out"
    );
}

#[test]
fn a_message_start_event_begins_an_instance_started_from_it() {
    let def = events_model(
        r#"<startEvent id="ms"><messageEventDefinition messageRef="pay"/></startEvent>
        <sequenceFlow sourceRef="ms" targetRef="t"/><userTask id="t"/><sequenceFlow sourceRef="t" targetRef="e"/><endEvent id="e"/>"#,
    );
    let from = def.event_starts.first().copied();
    let h = Harness::start_with(def, json!({"orderId": 1}), StartOptions { from, ..StartOptions::default() });
    assert_eq!(h.open_elements(), ["t"]);
    assert!(h.subscriptions().is_empty(), "a start event waits in no instance");
}

#[test]
fn waits_survive_the_state_being_stored_and_read_back() {
    let mut h = Harness::start(work_with_boundary(r#"<signalEventDefinition signalRef="alert"/>"#, false), json!({}));
    h.inst = h.read_back();
    h.deliver("alert", json!({})).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.open_elements(), ["b", "handle", "work"]);
}

#[test]
fn a_canceled_instance_drops_its_waits() {
    let mut h = Harness::start(work_with_boundary(r#"<signalEventDefinition signalRef="alert"/>"#, true), json!({}));
    h.apply(Command::Cancel).unwrap_or_else(|e| panic!("{e}"));
    assert!(h.subscriptions().is_empty());
}
