//! Inclusive gateways: the split takes every flow whose condition holds; the join waits only
//! for tokens that can still reach it — after a loop, beside a branch that ended elsewhere,
//! inside a subprocess.

use super::*;

/// split → a (if a) / b (if b) / default c → join → done (a user task), each branch a user task.
fn diamond() -> Definition {
    model(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="split"/>
        <inclusiveGateway id="split" default="toC"/>
        <sequenceFlow sourceRef="split" targetRef="a"><conditionExpression>${a}</conditionExpression></sequenceFlow>
        <sequenceFlow sourceRef="split" targetRef="b"><conditionExpression>${b}</conditionExpression></sequenceFlow>
        <sequenceFlow id="toC" sourceRef="split" targetRef="c"/>
        <userTask id="a"/><userTask id="b"/><userTask id="c"/>
        <sequenceFlow sourceRef="a" targetRef="join"/><sequenceFlow sourceRef="b" targetRef="join"/>
        <sequenceFlow sourceRef="c" targetRef="join"/><inclusiveGateway id="join"/>
        <sequenceFlow sourceRef="join" targetRef="done"/><userTask id="done"/>"#,
    )
}

#[test]
fn the_split_takes_every_flow_whose_condition_holds_and_the_join_waits_for_all_of_them() {
    let mut h = Harness::start(diamond(), json!({"a": true, "b": true}));
    assert_eq!(h.open_elements(), ["a", "b"], "the default is not taken when a condition holds");
    h.complete("a", json!({}));
    assert_eq!(h.open_elements(), ["b"], "the join waits for b, which can still reach it");
    h.complete("b", json!({}));
    assert_eq!(h.open_elements(), ["done"], "one token goes on, once");
    let passed: Vec<_> = h
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Passed(p) => Some(p.element.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(passed.iter().filter(|e| *e == "join").count(), 1, "{passed:?}");
}

#[test]
fn the_join_does_not_wait_for_a_branch_the_split_did_not_take() {
    let mut h = Harness::start(diamond(), json!({"a": false, "b": true}));
    assert_eq!(h.open_elements(), ["b"]);
    h.complete("b", json!({}));
    assert_eq!(h.open_elements(), ["done"]);
    let mut fallback = Harness::start(diamond(), json!({"a": false, "b": false}));
    assert_eq!(fallback.open_elements(), ["c"], "no condition holds: the default");
    fallback.complete("c", json!({}));
    assert_eq!(fallback.open_elements(), ["done"]);
}

#[test]
fn a_split_with_no_condition_holding_and_no_default_fails_naming_the_gateway() {
    let def = model(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="split"/><inclusiveGateway id="split"/>
        <sequenceFlow sourceRef="split" targetRef="a"><conditionExpression>${x == 1}</conditionExpression></sequenceFlow>
        <userTask id="a"/>"#,
    );
    let h = Harness::start(def, json!({"x": 2}));
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    let reason = h.inst.failure.clone().unwrap_or_default();
    assert!(reason.contains("`split`") && reason.contains("inclusive gateway"), "{reason}");
}

#[test]
fn a_join_after_a_loop_waits_while_the_looping_token_can_still_come_back() {
    let def = model(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="fork"/><parallelGateway id="fork"/>
        <sequenceFlow sourceRef="fork" targetRef="quick"/><sequenceFlow sourceRef="fork" targetRef="work"/>
        <userTask id="quick"/><sequenceFlow sourceRef="quick" targetRef="join"/>
        <userTask id="work"/><sequenceFlow sourceRef="work" targetRef="again"/>
        <exclusiveGateway id="again" default="out"/>
        <sequenceFlow sourceRef="again" targetRef="work"><conditionExpression>${retry}</conditionExpression></sequenceFlow>
        <sequenceFlow id="out" sourceRef="again" targetRef="join"/>
        <inclusiveGateway id="join"/><sequenceFlow sourceRef="join" targetRef="done"/><userTask id="done"/>"#,
    );
    let mut h = Harness::start(def, json!({"retry": true}));
    h.complete("quick", json!({}));
    assert_eq!(h.open_elements(), ["work"]);
    h.complete("work", json!({}));
    assert_eq!(h.open_elements(), ["work"], "it looped, and can still reach the join");
    h.complete("work", json!({"retry": false}));
    assert_eq!(h.open_elements(), ["done"]);
}

#[test]
fn a_join_goes_on_when_the_branch_it_waited_for_ends_elsewhere() {
    let def = model(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/>
        <subProcess id="sub"><startEvent id="ss"/><sequenceFlow sourceRef="ss" targetRef="split"/>
          <inclusiveGateway id="split"/>
          <sequenceFlow sourceRef="split" targetRef="a"/><sequenceFlow sourceRef="split" targetRef="b"/>
          <userTask id="a"/><sequenceFlow sourceRef="a" targetRef="join"/>
          <userTask id="b"/><sequenceFlow sourceRef="b" targetRef="which"/>
          <exclusiveGateway id="which" default="toJoin"/>
          <sequenceFlow sourceRef="which" targetRef="gone"><conditionExpression>${stop}</conditionExpression></sequenceFlow>
          <sequenceFlow id="toJoin" sourceRef="which" targetRef="join"/><endEvent id="gone"/>
          <inclusiveGateway id="join"/><sequenceFlow sourceRef="join" targetRef="inner"/><userTask id="inner"/>
          <sequenceFlow sourceRef="inner" targetRef="se"/><endEvent id="se"/></subProcess>
        <sequenceFlow sourceRef="sub" targetRef="after"/><userTask id="after"/>"#,
    );
    let mut h = Harness::start(def, json!({"stop": true}));
    h.complete("a", json!({}));
    assert_eq!(h.open_elements(), ["b"], "the subprocess is not done while the join holds a token");
    h.complete("b", json!({}));
    assert_eq!(h.open_elements(), ["inner"], "b ended elsewhere: nothing can reach the join, which goes on");
    h.complete("inner", json!({}));
    assert_eq!(h.open_elements(), ["after"]);
}
