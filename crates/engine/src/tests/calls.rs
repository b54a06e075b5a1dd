//! Call activities: the child asked for with its mapped variables, its end taken back through
//! the out mappings, a BPMN error it ends with thrown at the call, an early close ending it.

use super::*;
use flowstone_model::NodeKind;

impl Harness {
    /// The calls asked for so far.
    fn calls(&self) -> Vec<Call> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Call(call) => Some((**call).clone()),
                _ => None,
            })
            .collect()
    }

    /// The children ended with their call.
    fn ended_calls(&self) -> Vec<String> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::EndCall { child } => Some(child.clone()),
                _ => None,
            })
            .collect()
    }

    /// Tells the one call asked for how its child ended.
    fn child_ended(&mut self, end: CallEnd) -> Result<(), EngineError> {
        let record = self.calls().pop().unwrap_or_else(|| panic!("no call was asked for")).record_id;
        self.apply(Command::Return { record, end })
    }
}

const CAMUNDA: &str = r#"xmlns:camunda="http://camunda.org/schema/1.0/bpmn""#;

fn call_model(call: &str, after: &str) -> Definition {
    let xml = format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn" {CAMUNDA}>
        <error id="bad" errorCode="BAD"/>
        <process id="p"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="call"/>{call}
        <sequenceFlow sourceRef="call" targetRef="e"/><endEvent id="e"/>{after}</process></definitions>"#
    );
    parse_bpmn(&xml).unwrap_or_else(|e| panic!("{e}")).remove(0)
}

#[test]
fn a_call_activity_asks_for_its_child_with_the_in_mappings_and_takes_the_out_mappings_back() {
    let mut h = Harness::start(
        call_model(
            r#"<callActivity id="call" calledElement="${'check' + kind}" flowable:businessKey="${order}">
              <extensionElements><flowable:in source="order" target="orderId"/>
                <flowable:in sourceExpression="${amount * 2}" target="doubled"/><flowable:in source="missing" target="m"/>
                <flowable:out source="verdict" target="checked"/><flowable:out sourceExpression="${score + 1}" target="score"/>
              </extensionElements></callActivity>"#,
            "",
        ),
        json!({"order": "o-1", "amount": 21, "kind": "Credit", "secret": true}),
    );
    let call = h.calls().pop().unwrap_or_else(|| panic!("no call"));
    assert_eq!(call.key, "checkCredit");
    assert_eq!(call.binding, flowstone_model::Binding::Latest);
    assert_eq!(call.variables, vars(json!({"orderId": "o-1", "doubled": 42})), "only what the mappings name");
    assert_eq!(call.business_key.as_deref(), Some("o-1"));
    let rec = &h.records()[0];
    assert_eq!((rec.kind.as_str(), rec.status), ("callActivity", TaskStatus::Active));
    assert_eq!(rec.params, Some(json!({"calledElement": "checkCredit", "calledInstance": call.child})));
    h.child_ended(CallEnd::Completed {
        variables: vars(json!({"verdict": "ok", "score": 9, "noise": 1})),
        ran: Vec::new(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.inst.variables.get("checked"), Some(&json!("ok")));
    assert_eq!(h.inst.variables.get("score"), Some(&json!(10)));
    assert!(!h.inst.variables.contains_key("noise"), "only what the out mappings name comes back");
    assert_eq!(h.records()[0].status, TaskStatus::Completed);
    assert!(h.ended_calls().is_empty(), "a child that ended is not canceled");
}

#[test]
fn variables_all_passes_every_variable_both_ways_and_the_binding_is_read() {
    let mut h = Harness::start(
        call_model(
            r#"<callActivity id="call" calledElement="child" camunda:calledElementBinding="version" camunda:calledElementVersion="3">
              <extensionElements><camunda:in variables="all"/><camunda:out variables="all"/>
                <camunda:in businessKey="&#35;{execution.processBusinessKey}"/></extensionElements></callActivity>"#,
            "",
        ),
        json!({"a": 1, "b": [2]}),
    );
    let call = h.calls().pop().unwrap_or_else(|| panic!("no call"));
    assert_eq!(call.variables, vars(json!({"a": 1, "b": [2]})));
    assert_eq!(call.binding, flowstone_model::Binding::Version(3));
    assert!(call.inherit_business_key && call.business_key.is_none());
    h.child_ended(CallEnd::Completed { variables: vars(json!({"a": 5, "c": 3})), ran: Vec::new() })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.variables, vars(json!({"a": 5, "b": [2], "c": 3})));
}

#[test]
fn a_bpmn_error_the_child_ended_with_is_caught_by_an_error_boundary_on_the_call() {
    let boundary = r#"<boundaryEvent id="caught" attachedToRef="call"><errorEventDefinition errorRef="bad"/></boundaryEvent>
        <sequenceFlow sourceRef="caught" targetRef="handled"/><userTask id="handled"/>"#;
    let mut h = Harness::start(call_model(r#"<callActivity id="call" calledElement="child"/>"#, boundary), json!({}));
    h.child_ended(CallEnd::Error(Some("BAD".into()))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Running);
    assert_eq!(h.open_at("handled").len(), 1, "the flow goes on from the boundary event");
    let call = &h.records()[0];
    assert_eq!(call.status, TaskStatus::Failed);
    assert!(call.reason.as_deref().is_some_and(|r| r.contains("BAD")), "{call:?}");

    let mut uncaught = Harness::start(call_model(r#"<callActivity id="call" calledElement="child"/>"#, ""), json!({}));
    uncaught.child_ended(CallEnd::Error(Some("OTHER".into()))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(uncaught.inst.status, InstanceStatus::Failed);
    let reason = uncaught.inst.failure.clone().unwrap_or_default();
    assert!(reason.contains("`call`") && reason.contains("OTHER") && reason.contains("no error boundary"), "{reason}");
}

#[test]
fn a_failed_child_fails_its_call_and_the_caller_naming_both() {
    let mut h = Harness::start(call_model(r#"<callActivity id="call" calledElement="child"/>"#, ""), json!({}));
    let child = h.calls()[0].child.clone();
    h.child_ended(CallEnd::Failed("failed: boom".into())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    let reason = h.inst.failure.clone().unwrap_or_default();
    assert!(reason.contains("`call`") && reason.contains(&child) && reason.contains("boom"), "{reason}");
    let again = h.child_ended(CallEnd::Completed { variables: Map::new(), ran: Vec::new() });
    assert!(matches!(again, Err(EngineError::NotRunning(_))), "{again:?}");
}

#[test]
fn in_debug_mode_a_failed_child_holds_its_call_for_an_operator_and_rerun_calls_a_new_child() {
    let debug = StartOptions { debug: true, ..StartOptions::default() };
    let mut h =
        Harness::start_with(call_model(r#"<callActivity id="call" calledElement="child"/>"#, ""), json!({}), debug);
    let first = h.calls().pop().unwrap_or_else(|| panic!("no call")).child;
    h.child_ended(CallEnd::Failed("failed: disk full".into())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Debug, "{:?}", h.inst.failure);
    let held = h.records().into_iter().find(|r| r.element == "call").unwrap_or_else(|| panic!("no call record"));
    assert!(held.status.step_failed() && held.reason.as_deref().unwrap_or_default().contains("disk full"));
    let rerun = Command::ReRun { task: held.id.clone(), action: None, parameters: Map::new(), outputs: Map::new() };
    h.apply(rerun).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Running);
    let second = h.calls().pop().unwrap_or_else(|| panic!("no second call")).child;
    assert_ne!(first, second, "a new child is called");
    h.child_ended(CallEnd::Completed { variables: Map::new(), ran: Vec::new() }).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    let statuses: Vec<TaskStatus> = h.records().into_iter().filter(|r| r.element == "call").map(|r| r.status).collect();
    assert_eq!(statuses.len(), 2, "the failed attempt stays in the history: {statuses:?}");

    let mut skipped = Harness::start_with(
        call_model(r#"<callActivity id="call" calledElement="child"/>"#, ""),
        json!({}),
        StartOptions { debug: true, ..StartOptions::default() },
    );
    skipped.child_ended(CallEnd::Failed("failed: no".into())).unwrap_or_else(|e| panic!("{e}"));
    let held = skipped.records().into_iter().find(|r| r.element == "call").unwrap_or_else(|| panic!("no record"));
    skipped.apply(Command::Skip { task: held.id }).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(skipped.inst.status, InstanceStatus::Completed, "skip goes on past the call");
}

#[test]
fn a_call_closed_early_ends_its_child_and_a_late_return_is_refused() {
    let timer = r#"<boundaryEvent id="late" attachedToRef="call"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></boundaryEvent>
        <sequenceFlow sourceRef="late" targetRef="e2"/><endEvent id="e2"/>"#;
    let mut h = Harness::start(call_model(r#"<callActivity id="call" calledElement="child"/>"#, timer), json!({}));
    let call = h.calls()[0].clone();
    let fired = h.inst.open.values().find(|r| r.element == "late").map(|r| r.id.clone()).unwrap_or_default();
    h.apply(Command::FireTimer { timer: fired, due: 1000 + 3_600_000 }).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.ended_calls(), [call.child], "the interrupted call ends its child");
    assert_eq!(h.inst.status, InstanceStatus::Completed);

    let mut canceled = Harness::start(call_model(r#"<callActivity id="call" calledElement="child"/>"#, ""), json!({}));
    canceled.apply(Command::Cancel).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(canceled.ended_calls(), [canceled.calls()[0].child.clone()], "a cancel of the caller reaches the child");

    let mut moved_on =
        Harness::start(call_model(r#"<callActivity id="call" calledElement="child"/>"#, timer), json!({}));
    let record = moved_on.calls()[0].record_id.clone();
    let fired = moved_on.inst.open.values().find(|r| r.element == "late").map(|r| r.id.clone()).unwrap_or_default();
    moved_on.apply(Command::FireTimer { timer: fired, due: 1000 + 3_600_000 }).unwrap_or_else(|e| panic!("{e}"));
    let late =
        moved_on.apply(Command::Return { record, end: CallEnd::Completed { variables: Map::new(), ran: Vec::new() } });
    assert!(late.is_err(), "a child that ends after its call closed is not taken: {late:?}");
}

#[test]
fn calls_nest_only_so_deep_and_a_called_instance_remembers_the_error_it_ended_with() {
    let def = call_model(r#"<callActivity id="call" calledElement="p"/>"#, "");
    let deep = Caller { instance: "parent".into(), record: "r".into(), depth: MAX_CALL_DEPTH };
    let h = Harness::start_with(def, json!({}), StartOptions { caller: Some(deep), ..StartOptions::default() });
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    assert!(h.inst.failure.clone().unwrap_or_default().contains("nest deeper"), "{:?}", h.inst.failure);
    assert!(h.calls().is_empty());

    let child = model(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="x"/><endEvent id="x"><errorEventDefinition errorRef="BAD"/></endEvent>"#,
    );
    let caller = Caller { instance: "parent".into(), record: "r".into(), depth: 1 };
    let called =
        Harness::start_with(child.clone(), json!({}), StartOptions { caller: Some(caller), ..StartOptions::default() });
    assert_eq!(called.inst.status, InstanceStatus::Failed);
    assert_eq!(called.inst.uncaught_error.as_deref(), Some("BAD"));
    let alone = Harness::start(child, json!({}));
    assert_eq!(alone.inst.uncaught_error, None, "only a called instance passes its error on");
}

#[test]
fn call_activities_are_read_from_flowable_and_camunda_and_bad_ones_are_refused() {
    let def = call_model(
        r#"<callActivity id="call" calledElement="child" flowable:sameDeployment="true" flowable:inheritVariables="true" flowable:inheritBusinessKey="true"/>"#,
        "",
    );
    let Some(NodeKind::Call(spec)) = def.nodes.iter().find(|n| n.id == "call").map(|n| &n.kind) else {
        panic!("not a call")
    };
    assert!(spec.all_in && spec.inherit_business_key && spec.binding == flowstone_model::Binding::Deployment);
    for (bad, says) in [
        (r#"<callActivity id="call"/>"#, "calledElement"),
        (r#"<callActivity id="call" calledElement="c" flowable:calledElementType="id"/>"#, "calledElementType"),
        (r#"<callActivity id="call" calledElement="c" camunda:calledElementBinding="versionTag"/>"#, "versionTag"),
        (
            r#"<callActivity id="call" calledElement="c" camunda:calledElementBinding="version"/>"#,
            "calledElementVersion",
        ),
        (
            r#"<callActivity id="call" calledElement="c"><extensionElements><flowable:out target="x"/></extensionElements></callActivity>"#,
            "source",
        ),
        (r#"<callActivity id="call" calledElement="${"/>"#, "calledElement"),
    ] {
        let xml = format!(
            r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn" {CAMUNDA}>
            <process id="p"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="call"/>{bad}
            <sequenceFlow sourceRef="call" targetRef="e"/><endEvent id="e"/></process></definitions>"#
        );
        let err = parse_bpmn(&xml).err().unwrap_or_else(|| panic!("{bad} was accepted")).to_string();
        assert!(err.contains("callActivity") || err.contains("<out>"), "{err}");
        assert!(err.contains(says), "{bad}: {err}");
    }
}
