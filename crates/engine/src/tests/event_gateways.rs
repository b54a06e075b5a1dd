//! Event-based gateways: every event after one waits at once, the first that comes wins and
//! the others' waits go; what may follow a gateway is checked at deploy.

use super::*;

const HOUR: i64 = 3_600_000;

/// A gateway racing the message `payment`, the signal `alert` and a one-hour timer, each
/// leading to a user task of its own.
fn racing() -> Definition {
    model(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="gw"/><eventBasedGateway id="gw"/>
        <sequenceFlow sourceRef="gw" targetRef="paid"/><sequenceFlow sourceRef="gw" targetRef="alerted"/>
        <sequenceFlow sourceRef="gw" targetRef="late"/>
        <intermediateCatchEvent id="paid"><messageEventDefinition messageRef="payment"/></intermediateCatchEvent>
        <intermediateCatchEvent id="alerted"><signalEventDefinition signalRef="alert"/></intermediateCatchEvent>
        <intermediateCatchEvent id="late"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></intermediateCatchEvent>
        <sequenceFlow sourceRef="paid" targetRef="ship"/><userTask id="ship"/>
        <sequenceFlow sourceRef="alerted" targetRef="check"/><userTask id="check"/>
        <sequenceFlow sourceRef="late" targetRef="remind"/><userTask id="remind"/>"#,
    )
}

#[test]
fn every_event_after_the_gateway_waits_and_the_first_message_wins_ending_the_others() {
    let mut h = Harness::start(racing(), json!({}));
    assert_eq!(h.open_elements(), ["alerted", "late", "paid"], "all three wait at once");
    assert_eq!(h.subscriptions().len(), 2);
    assert_eq!(h.timers().len(), 1);
    h.deliver("payment", json!({"amount": 3})).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.open_elements(), ["ship"], "the message won");
    assert!(h.subscriptions().is_empty() && h.timers().is_empty(), "the signal's wait and the timer are gone");
    assert_eq!(h.inst.variables.get("amount"), Some(&json!(3)));
    let canceled: Vec<_> =
        h.records().into_iter().filter(|r| r.status == TaskStatus::Canceled).map(|r| r.element).collect();
    assert_eq!(canceled.len(), 2, "{canceled:?}");
    h.complete("ship", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed, "no token of the race is left waiting");
}

#[test]
fn a_timer_that_fires_first_wins_the_race_and_a_late_message_finds_nothing() {
    let mut h = Harness::start(racing(), json!({}));
    let waits: Vec<String> = h.subscriptions().into_keys().collect();
    h.advance(1000 + HOUR);
    assert_eq!(h.open_elements(), ["remind"], "the timer won");
    assert!(h.subscriptions().is_empty());
    for record in waits {
        let late = h.apply(Command::Deliver { record, variables: Map::new() });
        assert!(matches!(late, Err(EngineError::NotWaiting(_))), "{late:?}");
    }
}

#[test]
fn a_race_survives_a_round_trip_through_the_stored_state() {
    let h = Harness::start(racing(), json!({}));
    let stored = serde_json::to_value(&h.inst).unwrap_or_default();
    let mut back: Instance = serde_json::from_value(stored).unwrap_or_else(|e| panic!("{e}"));
    back.reindex();
    let mut h = Harness { inst: back, ..h };
    h.deliver("alert", json!({})).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.open_elements(), ["check"]);
    assert!(h.timers().is_empty());
}

#[test]
fn a_gateway_must_lead_to_catch_events_only() {
    for (bad, says) in [
        (r#"<sequenceFlow sourceRef="gw" targetRef="t"/><userTask id="t"/>"#, "`t` is not one"),
        (
            r#"<sequenceFlow sourceRef="gw" targetRef="c"><conditionExpression>${x}</conditionExpression></sequenceFlow>
            <intermediateCatchEvent id="c"><signalEventDefinition signalRef="a"/></intermediateCatchEvent>"#,
            "without a condition",
        ),
        ("", "needs outgoing flows"),
    ] {
        let xml = format!(
            r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p"><startEvent id="s"/>
            <sequenceFlow sourceRef="s" targetRef="gw"/><eventBasedGateway id="gw"/>{bad}</process></definitions>"#
        );
        let err = parse_bpmn(&xml).err().unwrap_or_else(|| panic!("{bad} was accepted")).to_string();
        assert!(err.contains("eventBasedGateway") && err.contains(says), "{err}");
    }
    let xml = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p"><startEvent id="s"/>
        <sequenceFlow sourceRef="s" targetRef="gw"/><eventBasedGateway id="gw" instantiate="true"/></process></definitions>"#;
    let err = parse_bpmn(xml).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("instantiate"), "{err}");
}
