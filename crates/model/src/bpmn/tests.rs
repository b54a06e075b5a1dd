use super::*;

fn wrap(body: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:flowable="http://flowable.org/bpmn" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
  xmlns:flowstone="http://flowstone.dev/bpmn" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
  xmlns:di="http://www.omg.org/spec/DD/20100524/DI">
  <error id="err1" errorCode="E42"/>
  <process id="p" name="P">
{body}
  </process>
</definitions>"#
    )
}

fn parse_one(body: &str) -> Definition {
    let mut defs = parse_bpmn(&wrap(body)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(defs.len(), 1);
    defs.remove(0)
}

fn parse_err(body: &str) -> ModelError {
    parse_bpmn(&wrap(body)).expect_err("model should be rejected")
}

#[test]
fn a_process_without_a_start_event_begins_at_every_node_nothing_leads_to() {
    let d = parse_one(
        r#"<task id="a"/><sequenceFlow sourceRef="a" targetRef="e"/><task id="b"/><sequenceFlow sourceRef="b" targetRef="e"/>
        <endEvent id="e"/>"#,
    );
    let start = d.node(d.start);
    assert!(matches!(start.kind, NodeKind::StartEvent) && start.id == "p-start", "{}", start.id);
    let begun: Vec<&str> = start.outgoing.iter().map(|f| d.node(d.flow(*f).target).id.as_str()).collect();
    assert_eq!(begun, ["a", "b"]);
}

#[test]
fn straight_line_builds_nodes_and_flows() {
    let d = parse_one(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/>
        <serviceTask id="t" flowable:expression="${1}" flowable:resultVariable="x"/>
        <sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>"#,
    );
    assert_eq!(d.key, "p");
    assert_eq!(d.name.as_deref(), Some("P"));
    assert_eq!(d.nodes.len(), 3);
    assert_eq!(d.flows[0].id, "flow-1", "a flow without an id gets one");
    assert_eq!(d.node(d.start).id, "s");
    let t = d.node(d.node_by_element("t").unwrap_or_default());
    assert!(matches!(&t.kind, NodeKind::ExpressionTask { result_variable: Some(v), .. } if v == "x"));
    assert_eq!(t.outgoing.len(), 1);
}

#[test]
fn stone_tasks_from_every_dialect() {
    let d = parse_one(
        r#"<startEvent id="s"/>
        <serviceTask id="a" flowable:type="external-worker" flowable:topic="MachineStone"/>
        <serviceTask id="b" camunda:type="external" camunda:topic="Billing"/>
        <serviceTask id="c" flowstone:stone="MachineStone" flowstone:namespace="master"/>
        <endEvent id="e"/>"#,
    );
    let stones: Vec<_> = d
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::StoneTask(s) => Some((s.stone.as_str(), s.namespace.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(stones, [("MachineStone", "a"), ("Billing", "b"), ("MachineStone", "master")]);
}

#[test]
fn external_worker_tasks_are_compensated_only_when_their_model_asks() {
    let d = parse_one(
        r#"<startEvent id="s"/>
        <serviceTask id="a" flowable:type="external-worker" flowable:topic="T"/>
        <serviceTask id="b" flowable:type="external-worker" flowable:topic="T" flowstone:compensate="true"/>
        <serviceTask id="c" flowstone:stone="MachineStone"/>
        <endEvent id="e"/>"#,
    );
    let compensated = |id: &str| match &d.node(d.node_by_element(id).unwrap_or_default()).kind {
        NodeKind::StoneTask(spec) => spec.compensated,
        _ => panic!("{id} is not a stone task"),
    };
    assert_eq!([compensated("a"), compensated("b"), compensated("c")], [false, true, true]);
    let bad = parse_err(
        r#"<startEvent id="s"/><serviceTask id="x" flowable:type="external-worker" flowable:topic="T" flowstone:compensate="maybe"/>"#,
    );
    assert!(bad.to_string().contains("maybe"), "{bad}");
}

#[test]
fn gateways_conditions_and_default() {
    let d = parse_one(
        r#"<startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="g"/>
        <exclusiveGateway id="g" default="fb"/>
        <sequenceFlow id="fa" sourceRef="g" targetRef="a"><conditionExpression xsi:type="tFormalExpression"><![CDATA[${x > 1}]]></conditionExpression></sequenceFlow>
        <sequenceFlow id="fb" sourceRef="g" targetRef="b"/>
        <task id="a"/><manualTask id="b"/>"#,
    );
    let g = d.node(d.node_by_element("g").unwrap_or_default());
    let NodeKind::ExclusiveGateway { default: Some(def) } = g.kind else { panic!("default flow not resolved") };
    assert_eq!(d.flow(def).id, "fb");
    assert_eq!(d.flows[1].condition.as_ref().map(Expression::source), Some("${x > 1}"));
}

#[test]
fn end_events_terminate_and_error() {
    let d = parse_one(
        r#"<startEvent id="s"/><endEvent id="t"><terminateEventDefinition/></endEvent>
        <endEvent id="e"><errorEventDefinition errorRef="err1"/></endEvent>"#,
    );
    assert!(matches!(d.node(1).kind, NodeKind::EndEvent(EndKind::Terminate)));
    assert!(matches!(&d.node(2).kind, NodeKind::EndEvent(EndKind::Error { code: Some(c) }) if c == "E42"));
}

#[test]
fn subprocess_nodes_get_their_scope() {
    let d = parse_one(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/>
        <subProcess id="sub"><startEvent id="ss"/><sequenceFlow sourceRef="ss" targetRef="se"/><endEvent id="se"/></subProcess>"#,
    );
    let sub = d.node_by_element("sub").unwrap_or_default();
    let NodeKind::SubProcess { start, .. } = d.node(sub).kind else { panic!("not a subprocess") };
    assert_eq!(d.node(start).id, "ss");
    assert_eq!(d.node(start).scope, Some(sub));
}

#[test]
fn multi_instance_settings() {
    let d = parse_one(
        r#"<startEvent id="s"/>
        <userTask id="u"><multiInstanceLoopCharacteristics isSequential="true"><loopCardinality>${n}</loopCardinality>
          <completionCondition>${nrOfCompletedInstances == 2}</completionCondition></multiInstanceLoopCharacteristics></userTask>
        <userTask id="v"><multiInstanceLoopCharacteristics flowable:collection="items" flowable:elementVariable="item"/></userTask>"#,
    );
    let u = d.node(1).multi.as_ref().unwrap_or_else(|| panic!("no multi-instance"));
    assert!(u.sequential && u.cardinality.is_some() && u.completion_condition.is_some());
    let v = d.node(2).multi.as_ref().unwrap_or_else(|| panic!("no multi-instance"));
    assert!(!v.sequential);
    assert_eq!(v.collection.as_ref().map(Expression::source), Some("items"));
    assert_eq!(v.element_variable.as_deref(), Some("item"));
}

#[test]
fn user_task_assignment_attributes() {
    let d = parse_one(
        r#"<startEvent id="s"/><userTask id="u" flowable:assignee="${starter}" flowable:candidateGroups="mgmt,ops" flowable:formKey="f1"/>
        <userTask id="v"><potentialOwner><resourceAssignmentExpression><formalExpression>group(sales)</formalExpression></resourceAssignmentExpression></potentialOwner></userTask>"#,
    );
    let NodeKind::UserTask(u) = &d.node(1).kind else { panic!("not a user task") };
    assert_eq!(u.assignee.as_ref().map(Expression::source), Some("${starter}"));
    assert_eq!(u.form_key.as_deref(), Some("f1"));
    let NodeKind::UserTask(v) = &d.node(2).kind else { panic!("not a user task") };
    assert_eq!(v.candidate_groups.as_ref().map(Expression::source), Some("sales"));
}

#[test]
fn unsupported_elements_are_named_with_id_and_line() {
    let err = parse_err("<startEvent id=\"s\"/>\n<scriptTask id=\"script1\"/>");
    assert_eq!(err.element.as_deref(), Some("scriptTask"));
    assert_eq!(err.id.as_deref(), Some("script1"));
    assert_eq!(err.line, Some(10));
    assert!(err.to_string().starts_with("line 10: <scriptTask id=\"script1\">:"), "{err}");
}

#[test]
fn invalid_models_are_rejected() {
    assert!(
        parse_err(r#"<task id="a"/><sequenceFlow sourceRef="a" targetRef="a"/>"#).message.contains("no start event"),
        "without a start event, something must begin the work"
    );
    assert!(
        parse_err(r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="nowhere"/>"#)
            .message
            .contains("nowhere")
    );
    assert!(parse_err(r#"<startEvent id="s"/><task id="s"/>"#).message.contains("duplicate"));
    assert!(
        parse_err(r#"<startEvent id="s"/><serviceTask id="j" flowable:class="com.acme.X"/>"#).message.contains("Java")
    );
    let executable =
        wrap(r#"<startEvent id="s"/><serviceTask id="j"/>"#).replace(r#"name="P">"#, r#"isExecutable="true">"#);
    let err = parse_bpmn(&executable).expect_err("an executable service task must say how it runs");
    assert!(err.message.contains("no implementation"), "{err}");
    let drawn = parse_one(r#"<startEvent id="s"/><serviceTask id="j"/>"#);
    assert!(
        matches!(drawn.node(drawn.node_by_element("j").unwrap_or_default()).kind, NodeKind::Task),
        "in a process not marked executable (drawn for documentation) it passes"
    );
    assert!(
        parse_err(r#"<startEvent id="s"/><serviceTask id="j" flowable:expression="${a +}"/>"#)
            .message
            .contains("malformed")
    );
    assert!(
        parse_err(r#"<startEvent id="s"><timerEventDefinition/></startEvent>"#)
            .message
            .contains("timerEventDefinition")
    );
    let err = parse_err(r#"<startEvent id="s"/><exclusiveGateway id="g" default="nope"/>"#);
    assert!(err.message.contains("default flow `nope`"));
    let err = parse_err(
        r#"<startEvent id="s"/><userTask id="u"><extensionElements><flowable:taskListener event="create" class="X"/></extensionElements></userTask>"#,
    );
    assert!(err.message.contains("class `X` runs Java code"), "{err}");
    assert!(parse_bpmn("<not-xml").expect_err("malformed").message.contains("malformed XML"));
    assert!(parse_bpmn("<definitions/>").expect_err("no ns").message.contains("not a BPMN"));
}

#[test]
fn non_executable_processes_are_skipped_beside_executable_ones_and_kept_alone() {
    let alone = wrap(r#"<startEvent id="s"/>"#)
        .replace(r#"<process id="p" name="P">"#, r#"<process id="p" isExecutable="false">"#);
    assert_eq!(parse_bpmn(&alone).map(|d| d.len()), Ok(1), "a documentation-only model still loads");
    let beside = wrap(r#"<startEvent id="s"/>"#).replace(
        "</definitions>",
        r#"<process id="partner" isExecutable="false"><startEvent id="x"/></process></definitions>"#,
    );
    let keys: Vec<_> = parse_bpmn(&beside).unwrap_or_default().into_iter().map(|d| d.key).collect();
    assert_eq!(keys, ["p"]);
}

#[test]
fn output_template_and_diagram_are_kept() {
    let xml = wrap(
        r#"<extensionElements><flowstone:output name="ip" value="${m.ip}"/></extensionElements>
        <startEvent id="s"/><sequenceFlow id="f" sourceRef="s" targetRef="e"/><endEvent id="e"/>"#,
    )
    .replace(
        "</definitions>",
        r#"<bpmndi:BPMNDiagram><bpmndi:BPMNPlane bpmnElement="p">
        <bpmndi:BPMNShape bpmnElement="s"><dc:Bounds x="1" y="2" width="30" height="30"/></bpmndi:BPMNShape>
        <bpmndi:BPMNEdge bpmnElement="f"><di:waypoint x="31" y="17"/><di:waypoint x="90" y="17"/></bpmndi:BPMNEdge>
        </bpmndi:BPMNPlane></bpmndi:BPMNDiagram></definitions>"#,
    );
    let d = parse_bpmn(&xml).unwrap_or_else(|e| panic!("{e}")).remove(0);
    assert_eq!(d.outputs[0].name, "ip");
    assert_eq!(d.diagram.shapes[0].bounds, Bounds { x: 1.0, y: 2.0, width: 30.0, height: 30.0 });
    assert_eq!(d.diagram.edges[0].waypoints.len(), 2);
}

#[test]
fn error_boundary_events_attach_to_their_activity_with_the_error_code() {
    let d = parse_one(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/><serviceTask id="t" flowstone:stone="X"/>
        <boundaryEvent id="b" attachedToRef="t"><errorEventDefinition errorRef="err1"/></boundaryEvent>
        <boundaryEvent id="any" attachedToRef="t"><errorEventDefinition/></boundaryEvent>
        <boundaryEvent id="raw" attachedToRef="t"><errorEventDefinition errorRef="NOT_DECLARED"/></boundaryEvent>"#,
    );
    let t = d.node_by_element("t").unwrap_or_else(|| panic!("no t"));
    let codes: Vec<_> =
        d.error_boundaries(t, false).map(|(n, c)| (d.node(n).id.clone(), c.map(str::to_owned))).collect();
    assert_eq!(
        codes,
        [("b".into(), Some("E42".into())), ("any".into(), None), ("raw".into(), Some("NOT_DECLARED".into()))],
        "an errorRef names a declared error's code, or is the code itself"
    );
}

#[test]
fn timer_definitions_are_checked_where_they_are_written() {
    let flow = r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="w"/>
        <sequenceFlow sourceRef="w" targetRef="e"/><endEvent id="e"/>"#;
    let waiting = |time: &str| {
        parse_err(&format!(
            r#"{flow}<intermediateCatchEvent id="w"><timerEventDefinition>{time}</timerEventDefinition></intermediateCatchEvent>"#
        ))
    };
    let bad = waiting("<timeDuration>ten minutes</timeDuration>");
    assert_eq!((bad.element.as_deref(), bad.line.is_some()), (Some("timeDuration"), true), "{bad}");
    assert!(
        bad.message.contains("timeDuration of <intermediateCatchEvent>: `ten minutes` is not an ISO-8601 duration")
    );
    assert!(waiting("<timeCycle>0 0 25 * * ?</timeCycle>").message.contains("cron"));
    assert!(waiting("<timeDate></timeDate>").message.contains("is empty"));
    assert!(waiting("<timeDuration>${delay +}</timeDuration>").message.contains("malformed"));
    assert!(waiting("<timeDate>2026-12-02</timeDate><timeCycle>R/PT1H</timeCycle>").message.contains("exactly one"));
    let end = r#"<timeCycle xmlns:flowable="http://flowable.org/bpmn" flowable:endDate="never">R/PT1H</timeCycle>"#;
    assert!(waiting(end).message.contains("endDate `never`"));
    // Well written, in each form, they are read into a timer node.
    for good in [
        "<timeDuration>PT5M</timeDuration>",
        "<timeDuration>${delay}</timeDuration>",
        "<timeDate>2026-12-02T10:00:00Z</timeDate>",
        "<timeCycle>R3/PT10S</timeCycle>",
        "<timeCycle>0 0/5 * * * ?</timeCycle>",
    ] {
        let d = parse_one(&format!(
            r#"{flow}<intermediateCatchEvent id="w"><timerEventDefinition>{good}</timerEventDefinition></intermediateCatchEvent>"#
        ));
        let w = d.node_by_element("w").unwrap_or_default();
        assert!(matches!(d.node(w).kind, NodeKind::TimerCatch(_)), "{good}");
    }
}

#[test]
fn boundary_timers_are_attached_to_their_activity_and_interrupt_unless_told() {
    let d = parse_one(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/><userTask id="t"/>
        <boundaryEvent id="late" attachedToRef="t"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></boundaryEvent>
        <boundaryEvent id="remind" attachedToRef="t" cancelActivity="false"><timerEventDefinition><timeCycle>R/PT1H</timeCycle></timerEventDefinition></boundaryEvent>"#,
    );
    let t = d.node_by_element("t").unwrap_or_default();
    let timers: Vec<_> = d.node(t).boundaries.iter().map(|n| &d.node(*n).kind).collect();
    assert!(matches!(
        timers[..],
        [
            NodeKind::TimerBoundary { interrupting: true, attached_to: a, .. },
            NodeKind::TimerBoundary { interrupting: false, attached_to: b, .. }
        ] if *a == t && *b == t
    ));
}

#[test]
fn a_timer_start_event_is_the_start_of_a_process_without_a_none_start_event() {
    let cron = "<timerEventDefinition><timeCycle>0 0 * * * ?</timeCycle></timerEventDefinition>";
    let alone = parse_one(&format!(
        r#"<startEvent id="t">{cron}</startEvent><sequenceFlow sourceRef="t" targetRef="e"/><endEvent id="e"/>"#
    ));
    assert_eq!((alone.start, alone.timer_start), (0, Some(0)));
    let both = parse_one(&format!(
        r#"<startEvent id="t">{cron}</startEvent><startEvent id="s"/>
        <sequenceFlow sourceRef="t" targetRef="e"/><sequenceFlow sourceRef="s" targetRef="e"/><endEvent id="e"/>"#
    ));
    assert_eq!(
        (both.node(both.start).id.as_str(), both.timer_start),
        ("s", Some(0)),
        "requests start at the none start"
    );
    let twice = parse_err(&format!(r#"<startEvent id="t">{cron}</startEvent><startEvent id="u">{cron}</startEvent>"#));
    assert!(twice.message.contains("more than one timer start event"), "{twice}");
    let expr = "<timerEventDefinition><timeDate>${when}</timeDate></timerEventDefinition>";
    let read = parse_err(&format!(r#"<startEvent id="t">{expr}</startEvent>"#));
    assert!(read.message.contains("cannot be an expression"), "{read}");
    let inner = parse_err(&format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/>
        <subProcess id="sub"><startEvent id="t">{cron}</startEvent></subProcess>"#
    ));
    assert!(inner.message.contains("not to an embedded subprocess"), "{inner}");
}

#[test]
fn other_boundary_events_and_dangling_attachments_are_refused() {
    let timer = parse_err(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/><userTask id="t"/>
        <boundaryEvent id="late" attachedToRef="t"><timerEventDefinition/></boundaryEvent>"#,
    );
    assert!(timer.to_string().contains("timerEventDefinition") && timer.to_string().contains("late"), "{timer}");
    let dangling = parse_err(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/><userTask id="t"/>
        <boundaryEvent id="b" attachedToRef="nope"><errorEventDefinition/></boundaryEvent>"#,
    );
    assert!(dangling.to_string().contains("attachedToRef `nope`"), "{dangling}");
}

/// `levels` subprocesses, each inside the one before.
fn nested_subprocesses(levels: usize) -> String {
    let mut body = String::from(r#"<startEvent id="s0"/>"#);
    for i in 1..=levels {
        body.push_str(&format!(r#"<subProcess id="sub{i}"><startEvent id="s{i}"/>"#));
    }
    body.push_str(&"</subProcess>".repeat(levels));
    body
}

#[test]
fn subprocesses_nested_past_the_limit_are_refused_naming_the_subprocess() {
    let err = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(|| parse_err(&nested_subprocesses(20_000)))
        .expect("thread")
        .join()
        .expect("no stack overflow");
    assert_eq!(err.element.as_deref(), Some("subProcess"));
    assert_eq!(err.id.as_deref(), Some("sub17"));
    assert!(err.message.contains("deeper than 16 levels"), "{err}");
    parse_one(&nested_subprocesses(MAX_SUBPROCESS_DEPTH));
}

#[test]
fn an_expression_nested_too_deep_is_refused_naming_its_element() {
    let deep = format!("${{{}x{}}}", "(".repeat(500), ")".repeat(500));
    let err = parse_err(&format!(
        r#"<startEvent id="s"/><sequenceFlow id="f" sourceRef="s" targetRef="e"><conditionExpression>{deep}</conditionExpression></sequenceFlow><endEvent id="e"/>"#
    ));
    assert_eq!(err.id.as_deref(), Some("f"));
    assert!(err.message.contains("nests more than 64 levels"), "{err}");
}

/// A document with messages and signals declared beside the process.
fn with_events(body: &str) -> Definition {
    let xml = wrap(body).replace(
        "<error id=\"err1\" errorCode=\"E42\"/>",
        r#"<message id="pay" name="paymentMessage" flowstone:correlationKey="${orderId}"/>
  <message id="z" name="zeebeMessage"><extensionElements><zeebe:subscription xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" correlationKey="=order.id"/></extensionElements></message>
  <signal id="alert" name="alertSignal" flowable:scope="processInstance"/>"#,
    );
    let mut defs = parse_bpmn(&xml).unwrap_or_else(|e| panic!("{e}"));
    defs.remove(0)
}

fn trigger_of(d: &Definition, element: &str) -> Trigger {
    let node = d.node(d.node_by_element(element).unwrap_or_else(|| panic!("no {element}")));
    match &node.kind {
        NodeKind::EventCatch { trigger: Some(t), .. }
        | NodeKind::EventBoundary { trigger: t, .. }
        | NodeKind::EventStart(t)
        | NodeKind::Throw { trigger: Some(t), .. }
        | NodeKind::EndEvent(EndKind::Throw(t)) => (**t).clone(),
        other => panic!("{element} is {other:?}"),
    }
}

#[test]
fn message_references_resolve_to_message_names_and_their_correlation_keys() {
    let d = with_events(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="a"/>
        <intermediateCatchEvent id="a"><messageEventDefinition messageRef="tns:pay"/></intermediateCatchEvent>
        <sequenceFlow sourceRef="a" targetRef="b"/>
        <intermediateCatchEvent id="b" name="Named"><messageEventDefinition/></intermediateCatchEvent>
        <sequenceFlow sourceRef="b" targetRef="c"/>
        <intermediateCatchEvent id="c"><messageEventDefinition messageRef="undeclared" flowable:correlationKey="${k}"/></intermediateCatchEvent>
        <sequenceFlow sourceRef="c" targetRef="z1"/>
        <receiveTask id="z1" messageRef="z"/><sequenceFlow sourceRef="z1" targetRef="r"/>
        <receiveTask id="r"/><sequenceFlow sourceRef="r" targetRef="e"/><endEvent id="e"/>"#,
    );
    let Trigger::Message { name, correlation } = trigger_of(&d, "a") else { panic!("a message") };
    assert_eq!(name, "paymentMessage", "the prefixed reference finds the declared message");
    assert_eq!(correlation.map(|c| c.source().to_owned()).as_deref(), Some("${orderId}"));
    assert!(matches!(trigger_of(&d, "b"), Trigger::Message { name, correlation: None } if name == "Named"));
    let Trigger::Message { name, correlation } = trigger_of(&d, "c") else { panic!("a message") };
    assert_eq!(name, "undeclared", "an undeclared reference is the message's name, as in Flowable");
    assert!(correlation.is_some(), "the event definition gives its own key");
    let Trigger::Message { name, correlation } = trigger_of(&d, "z1") else { panic!("a message") };
    assert_eq!(name, "zeebeMessage");
    assert!(correlation.is_some(), "a Zeebe subscription's key is read");
    let r = d.node(d.node_by_element("r").unwrap_or_default());
    assert!(matches!(r.kind, NodeKind::EventCatch { trigger: None, receive_task: true }));
}

#[test]
fn signal_and_message_boundaries_starts_and_throws_are_read() {
    let d = with_events(
        r#"<startEvent id="s"><messageEventDefinition messageRef="pay"/></startEvent>
        <startEvent id="s2"><signalEventDefinition signalRef="alert"/></startEvent>
        <sequenceFlow sourceRef="s" targetRef="t"/><sequenceFlow sourceRef="s2" targetRef="t"/>
        <userTask id="t"/>
        <boundaryEvent id="b" attachedToRef="t" cancelActivity="false"><signalEventDefinition signalRef="alert"/></boundaryEvent>
        <boundaryEvent id="m" attachedToRef="t"><messageEventDefinition messageRef="pay"/></boundaryEvent>
        <sequenceFlow sourceRef="t" targetRef="th"/><sequenceFlow sourceRef="b" targetRef="th"/><sequenceFlow sourceRef="m" targetRef="th"/>
        <intermediateThrowEvent id="th"><signalEventDefinition signalRef="other"/></intermediateThrowEvent>
        <sequenceFlow sourceRef="th" targetRef="none"/><intermediateThrowEvent id="none"/>
        <sequenceFlow sourceRef="none" targetRef="e"/>
        <endEvent id="e"><messageEventDefinition messageRef="pay"/></endEvent>"#,
    );
    assert_eq!(d.event_starts.len(), 2);
    assert_eq!(d.node(d.start).id, "s", "with no none start event, an instance started by request begins at the first");
    let t = d.node_by_element("t").unwrap_or_default();
    assert_eq!(d.node(t).boundaries.len(), 2, "both boundary events are set when the task runs");
    let b = d.node(d.node_by_element("b").unwrap_or_default());
    assert!(matches!(&b.kind, NodeKind::EventBoundary { interrupting: false, attached_to, .. } if *attached_to == t));
    assert!(matches!(trigger_of(&d, "b"), Trigger::Signal { name, instance_only: true } if name == "alertSignal"));
    assert!(matches!(trigger_of(&d, "th"), Trigger::Signal { name, instance_only: false } if name == "other"));
    let none = d.node(d.node_by_element("none").unwrap_or_default());
    assert!(matches!(none.kind, NodeKind::Throw { trigger: None, send_task: false }));
    assert!(matches!(trigger_of(&d, "e"), Trigger::Message { name, .. } if name == "paymentMessage"));
}

#[test]
fn send_tasks_that_need_an_engine_implementation_are_refused_naming_it() {
    let err = parse_err(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="m"/>
        <sendTask id="m" flowable:type="mail"/><sequenceFlow sourceRef="m" targetRef="e"/><endEvent id="e"/>"#,
    );
    assert!(err.to_string().contains("type `mail`"), "{err}");
    let d = parse_one(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="m"/>
        <sendTask id="m"/><sequenceFlow sourceRef="m" targetRef="e"/><endEvent id="e"/>"#,
    );
    assert!(matches!(d.node(1).kind, NodeKind::Throw { trigger: None, send_task: true }));
    let err = parse_err(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/><subProcess id="t">
        <startEvent id="in"><messageEventDefinition messageRef="x"/></startEvent></subProcess>
        <sequenceFlow sourceRef="t" targetRef="e"/><endEvent id="e"/>"#,
    );
    assert!(err.to_string().contains("not to an embedded subprocess"), "{err}");
}

#[test]
fn an_empty_subprocess_begins_and_ends_at_an_implicit_start() {
    let d = parse_one(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/><subProcess id="sub"/>
        <sequenceFlow sourceRef="sub" targetRef="e"/><endEvent id="e"/>"#,
    );
    let sub = d.node_by_element("sub").unwrap_or_else(|| panic!("no sub"));
    let NodeKind::SubProcess { start, .. } = d.node(sub).kind else { panic!("not a subprocess") };
    assert!(d.node(start).outgoing.is_empty());
}

#[test]
fn an_event_subprocess_without_an_id_gets_one_and_other_nodes_need_theirs() {
    let d = parse_one(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="e"/><endEvent id="e"/>
        <subProcess triggeredByEvent="true"><startEvent id="es"><errorEventDefinition/></startEvent>
          <sequenceFlow sourceRef="es" targetRef="ee"/><endEvent id="ee"/></subProcess>"#,
    );
    assert_eq!(d.event_subprocesses.len(), 1);
    assert!(d.node(d.event_subprocesses[0]).id.starts_with("subProcess-"));
    assert!(parse_err(r#"<startEvent id="s"/><task/>"#).message.contains("needs an id"));
}

#[test]
fn conditional_events_catch_with_their_condition_and_are_refused_where_nothing_could_read_it() {
    let cond = r#"<conditionalEventDefinition><condition>${x > 1}</condition></conditionalEventDefinition>"#;
    let d = parse_one(&format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="c"/>
        <intermediateCatchEvent id="c">{cond}</intermediateCatchEvent><sequenceFlow sourceRef="c" targetRef="e"/><endEvent id="e"/>"#
    ));
    let Trigger::Condition { condition } = trigger_of(&d, "c") else { panic!("a condition") };
    assert_eq!(condition.source(), "${x > 1}");
    let bare = parse_one(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="c"/><intermediateCatchEvent id="c"><conditionalEventDefinition><condition>done</condition></conditionalEventDefinition></intermediateCatchEvent>"#,
    );
    assert!(
        matches!(trigger_of(&bare, "c"), Trigger::Condition { .. }),
        "a bare condition, as SpiffWorkflow writes it"
    );
    for (body, says) in [
        (format!(r#"<startEvent id="s">{cond}</startEvent>"#), "belongs to an event subprocess"),
        (format!(r#"<startEvent id="s"/><intermediateThrowEvent id="t">{cond}</intermediateThrowEvent>"#), "cannot throw a condition"),
        (format!(r#"<startEvent id="s"/><endEvent id="t">{cond}</endEvent>"#), "cannot throw a condition"),
        (r#"<startEvent id="s"/><intermediateCatchEvent id="c"><conditionalEventDefinition/></intermediateCatchEvent>"#.to_owned(), "needs a <condition>"),
        (r#"<startEvent id="s"/><intermediateCatchEvent id="c"><conditionalEventDefinition><condition> </condition></conditionalEventDefinition></intermediateCatchEvent>"#.to_owned(), "is empty"),
        (r#"<startEvent id="s"/><intermediateCatchEvent id="c"><conditionalEventDefinition><condition language="groovy">x</condition></conditionalEventDefinition></intermediateCatchEvent>"#.to_owned(), "`groovy` is not supported"),
        (r#"<startEvent id="s"/><intermediateCatchEvent id="c"><conditionalEventDefinition><condition>${x +}</condition></conditionalEventDefinition></intermediateCatchEvent>"#.to_owned(), "malformed condition"),
    ] {
        let err = parse_err(&body);
        assert!(err.message.contains(says), "{body}: {err}");
    }
}

#[test]
fn a_link_throw_event_goes_on_at_the_catch_event_of_its_name_and_broken_links_are_refused() {
    let link =
        |tag: &str, id: &str, name: &str| format!(r#"<{tag} id="{id}"><linkEventDefinition name="{name}"/></{tag}>"#);
    let d = parse_one(&format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="out"/>{}{}
        <sequenceFlow sourceRef="in" targetRef="e"/><endEvent id="e"/>"#,
        link("intermediateThrowEvent", "out", "page2"),
        link("intermediateCatchEvent", "in", "page2"),
    ));
    let out = d.node(d.node_by_element("out").unwrap_or_else(|| panic!("no throw")));
    let flow = d.flow(out.outgoing[0]);
    assert_eq!(d.node(flow.target).id, "in");
    assert!(matches!(d.node(flow.target).kind, NodeKind::LinkCatch));
    let named_on_event = parse_one(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="out"/>
        <intermediateThrowEvent id="out" name="A"><linkEventDefinition/></intermediateThrowEvent>
        <intermediateCatchEvent id="in" name="A"><linkEventDefinition/></intermediateCatchEvent>"#,
    );
    assert_eq!(named_on_event.flows.len(), 2, "the event's name names the link when its definition has none");
    for (body, says) in [
        (link("intermediateThrowEvent", "out", "nowhere"), "no link catch event in the same scope is named `nowhere`"),
        (
            format!("{}{}", link("intermediateCatchEvent", "a", "x"), link("intermediateCatchEvent", "b", "x")),
            "two link catch events",
        ),
        (
            r#"<intermediateThrowEvent id="t"><linkEventDefinition/></intermediateThrowEvent>"#.to_owned(),
            "needs a name",
        ),
        (
            format!(
                r#"{}{}<sequenceFlow sourceRef="t" targetRef="c"/>"#,
                link("intermediateThrowEvent", "t", "x"),
                link("intermediateCatchEvent", "c", "x")
            ),
            "no sequence flow leads into a link catch event",
        ),
        (
            format!(
                r#"{}{}<endEvent id="e"/><sequenceFlow sourceRef="t" targetRef="e"/>"#,
                link("intermediateThrowEvent", "t", "x"),
                link("intermediateCatchEvent", "c", "x")
            ),
            "no sequence flow leaves a link throw event",
        ),
        (
            format!(
                r#"{}<subProcess id="sp"><startEvent id="ss"/>{}</subProcess>"#,
                link("intermediateThrowEvent", "t", "x"),
                link("intermediateCatchEvent", "c", "x")
            ),
            "no link catch event in the same scope",
        ),
    ] {
        let err = parse_err(&format!(r#"<startEvent id="s0"/>{body}"#));
        assert!(err.message.contains(says), "{body}: {err}");
    }
}

#[test]
fn compensation_boundary_events_link_their_handlers_and_misdrawn_compensation_is_refused() {
    let handler = r#"<boundaryEvent id="cb" attachedToRef="t"><compensateEventDefinition/></boundaryEvent>
        <serviceTask id="undo" isForCompensation="true" flowable:expression="${1}"/><association sourceRef="cb" targetRef="undo"/>"#;
    let d = parse_one(&format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/><task id="t"/>
        <sequenceFlow sourceRef="t" targetRef="th"/>{handler}
        <intermediateThrowEvent id="th"><compensateEventDefinition activityRef="t" waitForCompletion="false"/></intermediateThrowEvent>
        <sequenceFlow sourceRef="th" targetRef="e"/><endEvent id="e"><compensateEventDefinition/></endEvent>"#
    ));
    let id = |e: &str| d.node_by_element(e).unwrap_or_else(|| panic!("no {e}"));
    assert_eq!(d.compensation_handler(id("t")), Some(id("undo")));
    assert!(
        matches!(d.node(id("th")).kind, NodeKind::CompensationThrow { activity: Some(a), wait: false } if a == id("t"))
    );
    assert!(matches!(d.node(id("e")).kind, NodeKind::EndEvent(EndKind::Compensation { activity: None })));
    let alone = parse_one(&format!(r#"<task id="t"/>{handler}"#));
    let start = alone.node(alone.start);
    let begins: Vec<&str> = start.outgoing.iter().map(|f| alone.node(alone.flow(*f).target).id.as_str()).collect();
    assert_eq!(begins, ["t"], "a handler is no place to begin");
    for (body, says) in [
        (
            r#"<task id="t"/><boundaryEvent id="cb" attachedToRef="t"><compensateEventDefinition/></boundaryEvent>"#.to_owned(),
            "needs an association to its handler",
        ),
        (
            r#"<task id="t"/><task id="u"/><boundaryEvent id="cb" attachedToRef="t"><compensateEventDefinition/></boundaryEvent><association sourceRef="cb" targetRef="u"/>"#.to_owned(),
            "isForCompensation",
        ),
        (format!(r#"<task id="t"/>{handler}<sequenceFlow sourceRef="t" targetRef="undo"/>"#), "has no sequence flows"),
        (
            r#"<intermediateThrowEvent id="th"><compensateEventDefinition activityRef="nope"/></intermediateThrowEvent>"#.to_owned(),
            "activityRef `nope` names no activity",
        ),
        (
            r#"<intermediateThrowEvent id="th"><compensateEventDefinition waitForCompletion="maybe"/></intermediateThrowEvent>"#.to_owned(),
            "`waitForCompletion` is true or false",
        ),
        (
            r#"<subProcess id="esp" triggeredByEvent="true"><startEvent id="cs"><compensateEventDefinition/></startEvent></subProcess>"#.to_owned(),
            "compensation event subprocesses are not supported",
        ),
    ] {
        let err = parse_err(&format!(r#"<startEvent id="s0"/>{body}"#));
        assert!(err.message.contains(says), "{body}: {err}");
    }
}

#[test]
fn standard_loops_need_a_condition_or_a_maximum() {
    let looped = |inner: &str| {
        wrap(&format!(
            r#"<startEvent id="s"/><task id="t"><standardLoopCharacteristics {inner}</standardLoopCharacteristics></task>"#
        ))
        .replace(r#"name="P">"#, r#"isExecutable="true">"#)
    };
    let loop_of = |d: &Definition| d.node(d.node_by_element("t").unwrap_or_default()).multi.clone();
    let d = parse_bpmn(&looped(r#"testBefore="true" loopMaximum="3"><loopCondition>${x}</loopCondition>"#))
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0);
    let mi = loop_of(&d).unwrap_or_else(|| panic!("no loop"));
    assert!(mi.sequential && mi.test_before && mi.loop_while.is_some());
    assert_eq!(mi.cardinality.map(|c| c.source().to_owned()).as_deref(), Some("3"));
    for (inner, says) in [
        (">", "needs a loopCondition or a loopMaximum"),
        (r#"loopMaximum="many">"#, "loopMaximum `many`"),
        (r#"><loopCondition language="python">x</loopCondition>"#, "`python` is not supported"),
        (r#"><loopCondition>${x +}</loopCondition>"#, "malformed loopCondition"),
    ] {
        let err = parse_bpmn(&looped(inner)).expect_err("refused");
        assert!(err.message.contains(says), "{inner}: {err}");
    }
    let drawn = parse_one(r#"<startEvent id="s"/><task id="t"><standardLoopCharacteristics/></task>"#);
    let mi = loop_of(&drawn).unwrap_or_else(|| panic!("no loop"));
    assert_eq!(mi.cardinality.map(|c| c.source().to_owned()).as_deref(), Some("1"), "drawn for documentation: once");
}

#[test]
fn expression_listeners_are_read_and_the_others_refused_naming_what_they_run() {
    let d = parse_one(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/>
        <userTask id="u"><extensionElements><flowable:executionListener event="start" expression="${a}"/>
          <flowable:taskListener event="complete" expression="${b}"/></extensionElements></userTask>"#,
    );
    let u = d.node(d.node_by_element("u").unwrap_or_default());
    let events: Vec<crate::ir::ListenerEvent> = u.listeners.iter().map(|l| l.event).collect();
    assert_eq!(events, [crate::ir::ListenerEvent::Start, crate::ir::ListenerEvent::Complete]);
    let listener = |tag: &str, attrs: &str| {
        format!(
            r#"<startEvent id="s"/><userTask id="u"><extensionElements><flowable:{tag} {attrs}/></extensionElements></userTask>"#
        )
    };
    for (body, says) in [
        (listener("executionListener", r#"event="end" delegateExpression="${bean}""#), "delegateExpression `${bean}` runs Java code"),
        (listener("executionListener", r#"event="end" type="script""#), "a script listener is not run"),
        (listener("executionListener", r#"event="take" expression="${a}""#), "listener event `take` is not run"),
        (listener("taskListener", r#"event="assignment" expression="${a}""#), "the events run are create and complete"),
        (listener("executionListener", r#"event="start" expression="${a +}""#), "malformed listener expression"),
        (
            r#"<startEvent id="s"/><task id="t"><extensionElements><flowable:taskListener event="create" expression="${a}"/></extensionElements></task>"#.to_owned(),
            "a task listener belongs to a user task",
        ),
        (
            r#"<startEvent id="s"/><task id="t"/><sequenceFlow sourceRef="s" targetRef="t"><extensionElements><flowable:executionListener event="take" expression="${a}"/></extensionElements></sequenceFlow>"#.to_owned(),
            "listeners on sequence flows",
        ),
    ] {
        let err = parse_err(&body);
        assert!(err.message.contains(says), "{body}: {err}");
    }
}

#[test]
fn an_intermediate_catch_event_without_a_definition_is_refused_not_a_panic() {
    let bad = parse_err(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="w"/>
        <intermediateCatchEvent id="w"/><sequenceFlow sourceRef="w" targetRef="e"/><endEvent id="e"/>"#,
    );
    assert!(bad.message.contains("intermediateCatchEvent"), "{}", bad.message);
}

#[test]
fn a_javascript_script_task_is_kept_whole_and_a_syntax_error_refuses_the_model() {
    let d = parse_one(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="js"/>
        <scriptTask id="js" scriptFormat="JavaScript" flowable:resultVariable="r"><script><![CDATA[var a = 1 < 2;
        a]]></script></scriptTask><sequenceFlow sourceRef="js" targetRef="e"/><endEvent id="e"/>"#,
    );
    let js = d.nodes.iter().find(|n| n.id == "js").unwrap_or_else(|| panic!("no js node"));
    assert!(
        matches!(&js.kind, NodeKind::JavaScriptTask { source, result_variable: Some(r) } if source.contains("1 < 2") && r == "r"),
        "{:?}",
        js.kind
    );
    let bad = parse_err(
        r#"<startEvent id="s"/><scriptTask id="js" scriptFormat="javascript"><script>if (</script></scriptTask>"#,
    );
    assert!(bad.message.contains("its JavaScript does not parse: SyntaxError"), "{}", bad.message);
}
