//! Engine semantics, fed commands with no IO.

mod calls;
mod compensation_events;
mod conditions;
mod escalations;
mod event_gateways;
mod event_subprocesses;
mod events;
mod guards;
mod inclusive;
mod lifecycle;
mod limits;
mod migration;
mod properties;
mod scripts;
mod timers;
mod user_tasks;

use super::*;
use flowstone_model::{Definition, parse_bpmn};
use serde_json::{Map, Value, json};

fn model(body: &str) -> Definition {
    let xml = format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn"
          xmlns:flowstone="http://flowstone.dev/bpmn"><process id="p">{body}</process></definitions>"#
    );
    parse_bpmn(&xml).unwrap_or_else(|e| panic!("{e}")).remove(0)
}

fn vars(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

struct Harness {
    def: Definition,
    inst: Instance,
    effects: Vec<Effect>,
    counter: u32,
    limits: Limits,
    /// The time commands are applied at (the start is at 1000).
    now: i64,
}

impl Harness {
    fn start(def: Definition, variables: Value) -> Self {
        Self::start_with(def, variables, StartOptions::default())
    }

    fn start_with(def: Definition, variables: Value, options: StartOptions) -> Self {
        Self::start_limited(def, variables, options, Limits::default())
    }

    fn start_limited(def: Definition, variables: Value, options: StartOptions, limits: Limits) -> Self {
        let mut counter = 0;
        let mut ids = || {
            counter += 1;
            format!("id{counter}")
        };
        let (inst, effects) = Instance::start(
            &def,
            vars(variables),
            options,
            &mut Ctx { now: 1000, ids: &mut ids, brokered: &no_broker, limits: &limits },
        );
        Harness { def, inst, effects, counter, limits, now: 2000 }
    }

    fn apply(&mut self, cmd: Command) -> Result<(), EngineError> {
        let mut counter = self.counter;
        let mut ids = || {
            counter += 1;
            format!("id{counter}")
        };
        let effects = self.inst.apply(
            &self.def,
            cmd,
            &mut Ctx { now: self.now, ids: &mut ids, brokered: &no_broker, limits: &self.limits },
        )?;
        self.counter = counter;
        self.effects.extend(effects);
        Ok(())
    }

    /// Open tasks at `element`, by record id, in creation order.
    fn open_at(&self, element: &str) -> Vec<String> {
        let mut open: Vec<_> = self.inst.open.values().filter(|r| r.element == element).collect();
        open.sort_by_key(|r| r.id[2..].parse::<u32>().unwrap_or_default());
        open.into_iter().map(|r| r.id.clone()).collect()
    }

    fn complete(&mut self, element: &str, variables: Value) {
        let id = self.open_at(element).into_iter().next().unwrap_or_else(|| panic!("no open task at {element}"));
        self.apply(Command::CompleteUserTask { task: id, variables: vars(variables), transient: Map::new() })
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The final state of every task record, in the order they were first written.
    fn records(&self) -> Vec<TaskRecord> {
        let mut order: Vec<String> = Vec::new();
        let mut last = std::collections::HashMap::new();
        for e in &self.effects {
            if let Effect::Task(r) = e {
                if !last.contains_key(&r.id) {
                    order.push(r.id.clone());
                }
                last.insert(r.id.clone(), (**r).clone());
            }
        }
        order.into_iter().filter_map(|id| last.remove(&id)).collect()
    }

    /// The instance written as the store keeps it and read back as the committer does, its
    /// records filled from what the effects wrote.
    fn read_back(&self) -> Instance {
        let text = serde_json::to_string(&self.inst).unwrap_or_else(|e| panic!("{e}"));
        let mut back: Instance = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let records = self.records();
        back.fill_records(|id| records.iter().find(|r| r.id == id)).unwrap_or_else(|id| panic!("{id} never written"));
        back
    }

    fn elements_run(&self) -> Vec<String> {
        self.records().into_iter().map(|r| r.element).collect()
    }
}

const W1: &str = r#"<startEvent id="start"/><sequenceFlow sourceRef="start" targetRef="t1"/>
    <serviceTask id="t1" flowable:expression="${1}" flowable:resultVariable="t1"/><sequenceFlow sourceRef="t1" targetRef="t2"/>
    <serviceTask id="t2" flowable:expression="${t1 + 1}" flowable:resultVariable="t2"/><sequenceFlow sourceRef="t2" targetRef="t3"/>
    <serviceTask id="t3" flowable:expression="${t2 + 1}" flowable:resultVariable="t3"/><sequenceFlow sourceRef="t3" targetRef="end"/>
    <endEvent id="end"/>"#;

#[test]
fn expression_tasks_run_straight_through_to_completion() {
    let h = Harness::start(model(W1), json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.inst.variables.get("t3"), Some(&json!(3)));
    let records = h.records();
    assert_eq!(h.elements_run(), ["t1", "t2", "t3"], "one record per task, none for events");
    assert!(records.iter().all(|r| r.status == TaskStatus::Completed && r.end_time == Some(1000)));
    assert_eq!(records[2].outputs, Some(json!({"t3": 3})));
    assert!(h.inst.open.is_empty());
}

#[test]
fn expression_script_tasks_set_their_result_variable_and_other_languages_are_refused() {
    let def = model(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sum"/>
        <scriptTask id="sum" scriptFormat="juel" flowable:resultVariable="total"><script>${a + b}</script></scriptTask>
        <sequenceFlow sourceRef="sum" targetRef="e"/><endEvent id="e"/>"#,
    );
    let h = Harness::start(def, json!({"a": 2, "b": 3}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.inst.variables.get("total"), Some(&json!(5)));
    assert_eq!(h.records()[0].kind, "scriptTask");
    for (format, named) in [("groovy", "`groovy`"), ("python", "`python`"), ("", "Python")] {
        let xml = format!(
            r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p"><startEvent id="s"/>
            <sequenceFlow sourceRef="s" targetRef="t"/><scriptTask id="t" scriptFormat="{format}"><script>x = 1</script></scriptTask>
            </process></definitions>"#
        );
        let err = parse_bpmn(&xml).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("scriptTask") && err.contains(named), "{format}: {err}");
    }
}

#[test]
fn events_and_gateways_passed_are_reported_in_order_with_their_time() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="start" name="Begin"/><sequenceFlow sourceRef="start" targetRef="wait"/>
            <userTask id="wait"/><sequenceFlow sourceRef="wait" targetRef="x"/>
            <exclusiveGateway id="x"/><sequenceFlow sourceRef="x" targetRef="end"/><endEvent id="end"/>"#,
        ),
        json!({}),
    );
    h.complete("wait", json!({}));
    let passed: Vec<_> = h
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Passed(p) => Some((p.element.as_str(), p.name.as_deref(), p.kind, p.time)),
            _ => None,
        })
        .collect();
    assert_eq!(
        passed,
        [
            ("start", Some("Begin"), "startEvent", 1000),
            ("x", None, "exclusiveGateway", 2000),
            ("end", None, "endEvent", 2000)
        ]
    );
    assert_eq!(h.elements_run(), ["wait"], "events and gateways make no task records");
}

#[test]
fn plain_and_manual_tasks_pass_through() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="a"/><task id="a" name="Plain"/>
        <sequenceFlow sourceRef="a" targetRef="b"/><manualTask id="b"/><sequenceFlow sourceRef="b" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    let records = h.records();
    assert_eq!(records[0].name, "Plain");
    assert_eq!(records[1].name, "b", "a task without a name shows its id");
}

#[test]
fn user_task_waits_then_completes_with_variables() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/><userTask id="u" name="Approve"/>
        <sequenceFlow sourceRef="u" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Running);
    assert_eq!(h.records()[0].status, TaskStatus::Active);
    h.complete("u", json!({"approved": true}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.inst.variables.get("approved"), Some(&json!(true)));
    let rec = &h.records()[0];
    assert_eq!((rec.status.text().as_str(), rec.end_time), ("completed", Some(2000)));
}

#[test]
fn completing_by_activity_instance_id_works_too() {
    let mut h = Harness::start(
        model(r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/><userTask id="u"/>"#),
        json!({}),
    );
    let task_id = h.records()[0].task_id.clone();
    h.apply(Command::CompleteUserTask { task: task_id, variables: Map::new(), transient: Map::new() })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Completed, "an activity with no outgoing flow ends implicitly");
}

#[test]
fn wrong_commands_are_rejected_without_change() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/><userTask id="u"/>
        <sequenceFlow sourceRef="s" targetRef="j"/><serviceTask id="j" flowstone:stone="noop"/>"#,
        ),
        json!({}),
    );
    let before = h.inst.clone();
    assert_eq!(
        h.apply(Command::CompleteUserTask { task: "nope".into(), variables: Map::new(), transient: Map::new() }),
        Err(EngineError::TaskNotOpen("nope".into()))
    );
    let job = h.open_at("j")[0].clone();
    assert!(matches!(
        h.apply(Command::CompleteUserTask { task: job, variables: Map::new(), transient: Map::new() }),
        Err(EngineError::WrongTaskKind { expected: "userTask", .. })
    ));
    let user = h.open_at("u")[0].clone();
    assert!(matches!(
        h.apply(Command::Stone { record: user, event: StoneEvent::Begin(Action::Start) }),
        Err(EngineError::WrongTaskKind { expected: "stone task", .. })
    ));
    assert_eq!(h.inst, before);
    h.apply(Command::Cancel).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.apply(Command::Cancel), Err(EngineError::NotRunning(InstanceStatus::Canceled)));
}

fn w3(route: &str) -> Harness {
    Harness::start(
        model(
            r#"<startEvent id="start"/><sequenceFlow sourceRef="start" targetRef="fork"/><parallelGateway id="fork"/>
        <sequenceFlow sourceRef="fork" targetRef="pa"/><sequenceFlow sourceRef="fork" targetRef="pb"/><sequenceFlow sourceRef="fork" targetRef="pc"/>
        <serviceTask id="pa" flowable:expression="${1}" flowable:resultVariable="pa"/>
        <serviceTask id="pb" flowable:expression="${1}" flowable:resultVariable="pb"/>
        <serviceTask id="pc" flowable:expression="${1}" flowable:resultVariable="pc"/>
        <sequenceFlow sourceRef="pa" targetRef="join"/><sequenceFlow sourceRef="pb" targetRef="join"/><sequenceFlow sourceRef="pc" targetRef="join"/>
        <parallelGateway id="join"/><sequenceFlow sourceRef="join" targetRef="choose"/>
        <exclusiveGateway id="choose" default="fb"/>
        <sequenceFlow id="fa" sourceRef="choose" targetRef="ra"><conditionExpression>${route == 'a'}</conditionExpression></sequenceFlow>
        <sequenceFlow id="fb" sourceRef="choose" targetRef="rb"/>
        <serviceTask id="ra" flowable:expression="${'a'}" flowable:resultVariable="taken"/>
        <serviceTask id="rb" flowable:expression="${'b'}" flowable:resultVariable="taken"/>
        <sequenceFlow sourceRef="ra" targetRef="end"/><sequenceFlow sourceRef="rb" targetRef="end"/><endEvent id="end"/>"#,
        ),
        json!({ "route": route }),
    )
}

#[test]
fn parallel_fork_joins_once_then_exclusive_takes_the_matching_route() {
    for (route, taken) in [("a", "a"), ("b", "b"), ("zzz", "b")] {
        let h = w3(route);
        assert_eq!(h.inst.status, InstanceStatus::Completed);
        assert_eq!(h.inst.variables.get("taken"), Some(&json!(taken)), "route {route}");
        assert_eq!(h.elements_run(), ["pa", "pb", "pc", format!("r{taken}").as_str()], "the join fires once");
    }
}

#[test]
fn join_waits_for_every_branch() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="f"/><parallelGateway id="f"/>
        <sequenceFlow sourceRef="f" targetRef="u1"/><sequenceFlow sourceRef="f" targetRef="u2"/><userTask id="u1"/><userTask id="u2"/>
        <sequenceFlow sourceRef="u1" targetRef="j"/><sequenceFlow sourceRef="u2" targetRef="j"/><parallelGateway id="j"/>
        <sequenceFlow sourceRef="j" targetRef="after"/><userTask id="after"/>"#,
        ),
        json!({}),
    );
    h.complete("u1", json!({}));
    assert!(h.open_at("after").is_empty(), "join must wait for u2");
    h.complete("u2", json!({}));
    assert_eq!(h.open_at("after").len(), 1);
}

#[test]
fn exclusive_gateway_without_match_or_default_fails_the_instance() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="g"/><exclusiveGateway id="g"/>
        <sequenceFlow sourceRef="g" targetRef="a"><conditionExpression>${input == 1}</conditionExpression></sequenceFlow><task id="a"/>"#,
        ),
        json!({"input": 2}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    let failure = h.inst.failure.unwrap_or_default();
    assert!(failure.contains("`g`") && failure.contains("no outgoing sequence flow"), "{failure}");
}

#[test]
fn expression_errors_fail_the_instance_and_the_task() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/>
        <serviceTask id="t" flowable:expression="${missing + 1}" flowable:resultVariable="x"/>"#,
        ),
        json!({}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    assert!(h.inst.failure.as_deref().unwrap_or_default().contains("unknown variable `missing`"));
    let rec = &h.records()[0];
    assert_eq!(rec.status, TaskStatus::Failed);
    assert!(rec.reason.as_deref().unwrap_or_default().contains("missing"));
}

#[test]
fn condition_that_is_not_boolean_fails_clearly() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="g"/><exclusiveGateway id="g"/>
        <sequenceFlow id="bad" sourceRef="g" targetRef="a"><conditionExpression>${n}</conditionExpression></sequenceFlow><task id="a"/>"#,
        ),
        json!({"n": 5}),
    );
    let failure = h.inst.failure.unwrap_or_default();
    assert!(failure.contains("flow `bad`") && failure.contains("not a boolean"), "{failure}");
}

#[test]
fn stone_task_queues_a_job_with_namespaced_params_and_writes_outputs_back() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="m"/>
        <serviceTask id="m" name="machine" flowstone:stone="MachineStone" flowstone:namespace="master"/>
        <sequenceFlow sourceRef="m" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({"regionId": "bcc", "master": {"instanceType": "m2.large"}}),
    );
    let job = h.effects.iter().find_map(|e| match e {
        Effect::QueueJob(j) => Some(j.clone()),
        _ => None,
    });
    let job = job.unwrap_or_else(|| panic!("no job queued"));
    assert_eq!(job.stone, "MachineStone");
    assert_eq!(job.params["instanceType"], json!("m2.large"));
    assert_eq!(job.params["regionId"], json!("bcc"));
    assert_eq!(job.params["namespace"], json!("master"));
    assert_eq!(job.params["queue"], json!("MachineStone"));
    assert_eq!(h.records()[0].status, TaskStatus::Produce(Phase::Success));
    h.apply(Command::Stone { record: job.record_id.clone(), event: StoneEvent::Begin(Action::Start) })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.records()[0].status.text(), "start.begin");
    let outputs = vars(json!({"machineId": "m-1"}));
    h.apply(Command::Stone {
        record: job.record_id,
        event: StoneEvent::Success { action: Action::Start, outputs, monitor: false },
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.inst.variables["master"], json!({"instanceType": "m2.large", "machineId": "m-1"}));
    assert_eq!(h.records()[0].status.text(), "start.success");
}

#[test]
fn failed_stone_fails_the_instance() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="m"/><serviceTask id="m" flowstone:stone="X"/>"#,
        ),
        json!({}),
    );
    let id = h.open_at("m")[0].clone();
    h.apply(Command::Stone { record: id, event: StoneEvent::Failed { action: Action::Start, reason: "boom".into() } })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    assert_eq!(h.records()[0].status.text(), "start.failed");
    assert_eq!(h.records()[0].reason.as_deref(), Some("boom"));
}

#[test]
fn parallel_multi_instance_by_cardinality_text() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="slave"/>
        <serviceTask id="slave" flowstone:stone="MachineStone" flowstone:namespace="slave-">
          <multiInstanceLoopCharacteristics isSequential="false"><loopCardinality>${slaveNum}</loopCardinality></multiInstanceLoopCharacteristics>
        </serviceTask><sequenceFlow sourceRef="slave" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({"slaveNum": "3", "slave-": {"instanceType": "m2.large"}}),
    );
    let open = h.open_at("slave");
    assert_eq!(open.len(), 3, "all instances start at once");
    let namespaces: Vec<_> = h.records().into_iter().filter_map(|r| r.namespace).collect();
    assert_eq!(namespaces, ["slave-1", "slave-2", "slave-3"]);
    for (i, id) in open.into_iter().enumerate() {
        assert_eq!(h.inst.status, InstanceStatus::Running);
        let outputs = vars(json!({"ip": format!("10.0.0.{i}")}));
        h.apply(Command::Stone {
            record: id,
            event: StoneEvent::Success { action: Action::Start, outputs, monitor: false },
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.inst.variables["slave-2"], json!({"ip": "10.0.0.1"}));
}

#[test]
fn sequential_multi_instance_over_a_collection_runs_one_at_a_time() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/>
        <userTask id="u"><multiInstanceLoopCharacteristics isSequential="true" flowable:collection="${people}" flowable:elementVariable="who"/></userTask>
        <sequenceFlow sourceRef="u" targetRef="after"/><userTask id="after"/>"#,
        ),
        json!({"people": ["ann", "bob"]}),
    );
    for who in ["ann", "bob"] {
        let open = h.open_at("u");
        assert_eq!(open.len(), 1, "one at a time");
        let scope = h.inst.tokens.values().find(|t| t.wait.as_deref() == Some(open[0].as_str())).and_then(|t| t.scope);
        let seen = crate::scope::ScopeVars { instance: &h.inst, scope };
        assert_eq!(flowstone_expr::Variables::get(&seen, "who"), Some(&json!(who)));
        h.complete("u", json!({}));
    }
    assert_eq!(h.open_at("after").len(), 1);
}

#[test]
fn multi_instance_with_zero_items_passes_at_once() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/>
        <userTask id="u"><multiInstanceLoopCharacteristics><loopCardinality>0</loopCardinality></multiInstanceLoopCharacteristics></userTask>
        <sequenceFlow sourceRef="u" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert!(h.records().is_empty());
}

#[test]
fn completion_condition_ends_the_loop_early_and_cancels_the_rest() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/>
        <userTask id="u"><multiInstanceLoopCharacteristics><loopCardinality>3</loopCardinality>
        <completionCondition>${nrOfCompletedInstances >= 2}</completionCondition></multiInstanceLoopCharacteristics></userTask>
        <sequenceFlow sourceRef="u" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({}),
    );
    h.complete("u", json!({}));
    h.complete("u", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    let statuses: Vec<_> = h.records().into_iter().map(|r| r.status.text()).collect();
    assert_eq!(statuses, ["completed", "completed", "canceled"]);
}

#[test]
fn bad_cardinality_fails_at_run_time() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/>
        <userTask id="u"><multiInstanceLoopCharacteristics><loopCardinality>${n}</loopCardinality></multiInstanceLoopCharacteristics></userTask>"#,
        ),
        json!({"n": "many"}),
    );
    assert!(h.inst.failure.unwrap_or_default().contains("not a whole number"));
}

#[test]
fn embedded_subprocess_runs_and_continues_after() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/>
        <subProcess id="sub"><startEvent id="ss"/><sequenceFlow sourceRef="ss" targetRef="inner"/><userTask id="inner"/>
          <sequenceFlow sourceRef="inner" targetRef="se"/><endEvent id="se"/></subProcess>
        <sequenceFlow sourceRef="sub" targetRef="after"/><userTask id="after"/>"#,
        ),
        json!({}),
    );
    h.complete("inner", json!({"x": 1}));
    assert_eq!(h.inst.variables.get("x"), Some(&json!(1)), "variables set inside reach the process");
    assert_eq!(h.open_at("after").len(), 1);
    h.complete("after", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

#[test]
fn sequential_multi_instance_subprocess_runs_each_body_in_turn() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/>
        <subProcess id="sub"><multiInstanceLoopCharacteristics isSequential="true"><loopCardinality>2</loopCardinality></multiInstanceLoopCharacteristics>
          <startEvent id="ss"/><sequenceFlow sourceRef="ss" targetRef="f"/><parallelGateway id="f"/>
          <sequenceFlow sourceRef="f" targetRef="a"/><sequenceFlow sourceRef="f" targetRef="b"/><userTask id="a"/><userTask id="b"/>
          <sequenceFlow sourceRef="a" targetRef="j"/><sequenceFlow sourceRef="b" targetRef="j"/><parallelGateway id="j"/>
          <sequenceFlow sourceRef="j" targetRef="se"/><endEvent id="se"/></subProcess>
        <sequenceFlow sourceRef="sub" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({}),
    );
    for _ in 0..2 {
        assert_eq!((h.open_at("a").len(), h.open_at("b").len()), (1, 1));
        h.complete("a", json!({}));
        h.complete("b", json!({}));
    }
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

#[test]
fn terminate_end_event_ends_everything_and_cancels_open_tasks() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="f"/><parallelGateway id="f"/>
        <sequenceFlow sourceRef="f" targetRef="u"/><userTask id="u"/>
        <sequenceFlow sourceRef="f" targetRef="t"/><endEvent id="t"><terminateEventDefinition/></endEvent>"#,
        ),
        json!({}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.records()[0].status, TaskStatus::Canceled);
    assert!(h.inst.open.is_empty());
    assert_eq!(h.inst.end_element.as_deref(), Some("t"), "it ended at the terminate end event");
}

#[test]
fn error_end_event_fails_with_its_code() {
    let xml = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><error id="e1" errorCode="NOPE"/>
      <process id="p"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="e"/><endEvent id="e"><errorEventDefinition errorRef="e1"/></endEvent></process></definitions>"#;
    let h = Harness::start(parse_bpmn(xml).unwrap_or_else(|e| panic!("{e}")).remove(0), json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    let failure = h.inst.failure.unwrap_or_default();
    assert!(failure.contains("`NOPE`"), "{failure}");
    assert!(failure.starts_with("at `e`: error end event reached"), "names the end event: {failure}");
    assert_eq!(h.inst.end_element.as_deref(), Some("e"), "it ended at the error end event");
}

#[test]
fn cancel_closes_open_tasks_and_drops_jobs() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="f"/><parallelGateway id="f"/>
        <sequenceFlow sourceRef="f" targetRef="u"/><userTask id="u"/><sequenceFlow sourceRef="f" targetRef="j"/><serviceTask id="j" flowstone:stone="X"/>"#,
        ),
        json!({}),
    );
    let job = h.open_at("j")[0].clone();
    h.apply(Command::Cancel).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Canceled);
    assert!(h.records().iter().all(|r| r.status == TaskStatus::Canceled));
    assert!(h.effects.contains(&Effect::DropJob { record_id: job }));
}

#[test]
fn output_template_fills_outputs_on_completion() {
    let xml = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowstone="http://flowstone.dev/bpmn">
      <process id="p"><extensionElements><flowstone:output name="sum" value="${a + b}"/></extensionElements>
      <startEvent id="s"/></process></definitions>"#;
    let h = Harness::start(parse_bpmn(xml).unwrap_or_else(|e| panic!("{e}")).remove(0), json!({"a": 1, "b": 2}));
    assert_eq!(h.inst.outputs, Some(vars(json!({"sum": 3}))));
}

#[test]
fn a_loop_without_wait_state_is_stopped() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="a"/><task id="a"/>
        <sequenceFlow sourceRef="a" targetRef="b"/><task id="b"/><sequenceFlow sourceRef="b" targetRef="a"/>"#,
        ),
        json!({}),
    );
    assert!(h.inst.failure.unwrap_or_default().contains("loops"));
}

#[test]
fn state_survives_serialization() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/>
        <userTask id="u"><multiInstanceLoopCharacteristics><loopCardinality>2</loopCardinality></multiInstanceLoopCharacteristics></userTask>"#,
        ),
        json!({}),
    );
    let back = h.read_back();
    assert_eq!(back, h.inst);
}

#[test]
fn an_instance_read_back_finds_the_token_of_each_open_task_and_completes() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/>
        <userTask id="u"><multiInstanceLoopCharacteristics><loopCardinality>3</loopCardinality></multiInstanceLoopCharacteristics></userTask>
        <sequenceFlow sourceRef="u" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({}),
    );
    for _ in 0..3 {
        h.inst = h.read_back();
        assert_eq!(h.inst.status, InstanceStatus::Running, "the last item is still open");
        h.complete("u", json!({}));
    }
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

/// start → conditional fork → b (level >= 1) | c (level >= 2) → converge → d → end, as a pipeline tree.
fn conditional_fork() -> Definition {
    let flow = |id: &str, s: &str, t: &str| json!({"id": id, "source": s, "target": t, "is_default": false});
    let task = |id: &str, i: &str, o: &str| {
        json!({"id": id, "type": "ServiceActivity", "incoming": [i], "outgoing": o,
               "component": {"code": "work", "data": {"who": {"hook": true, "value": "${who}-${level}"}}}})
    };
    let tree = json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f7"]},
        "activities": {"b": task("b", "f2", "f4"), "c": task("c", "f3", "f5"), "d": task("d", "f6", "f7")},
        "gateways": {
            "p": {"id": "p", "type": "ConditionalParallelGateway", "incoming": ["f1"], "outgoing": ["f2", "f3"],
                  "conditions": {"f2": {"evaluate": "${level} >= 1"}, "f3": {"evaluate": "${level} >= 2"}}},
            "v": {"id": "v", "type": "ConvergeGateway", "incoming": ["f4", "f5"], "outgoing": "f6"}
        },
        "flows": {"f1": flow("f1", "s", "p"), "f2": flow("f2", "p", "b"), "f3": flow("f3", "p", "c"),
                  "f4": flow("f4", "b", "v"), "f5": flow("f5", "c", "v"), "f6": flow("f6", "v", "d"), "f7": flow("f7", "d", "e")},
        "constants": {"${who}": {"source_type": "custom", "value": "ops"}, "${level}": {"source_type": "custom", "value": "1"}}
    });
    flowstone_model::parse_pipeline(&tree, "fork", None, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

impl Harness {
    /// Completes the open stone task at `element` with a start success.
    fn succeed(&mut self, element: &str) {
        let id = self.open_at(element).into_iter().next().unwrap_or_else(|| panic!("no open task at {element}"));
        let event = StoneEvent::Success { action: Action::Start, outputs: Map::new(), monitor: false };
        self.apply(Command::Stone { record: id, event }).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn a_conditional_fork_takes_the_branches_that_hold_and_its_converge_waits_for_those_only() {
    let mut h = Harness::start(conditional_fork(), json!({}));
    assert_eq!((h.open_at("b").len(), h.open_at("c").len()), (1, 0), "level 1 (a constant) takes one branch");
    let params = h.inst.open.values().next().and_then(|r| r.params.clone()).unwrap_or_default();
    assert_eq!(params["who"], json!("ops-1"), "component inputs render the constants");
    h.succeed("b");
    assert_eq!(h.open_at("d").len(), 1, "the converge gateway let the only branch through");
    h.succeed("d");
    assert_eq!(h.inst.status, InstanceStatus::Completed);

    let mut h = Harness::start(conditional_fork(), json!({"level": 2}));
    h.succeed("c");
    assert!(h.open_at("d").is_empty(), "the converge gateway waits for both branches");
    h.succeed("b");
    h.succeed("d");
    assert_eq!(h.inst.status, InstanceStatus::Completed);

    let h = Harness::start(conditional_fork(), json!({"level": 0}));
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    assert!(h.inst.failure.as_deref().is_some_and(|f| f.contains("no condition")), "{:?}", h.inst.failure);
}

/// start → a → b → end as a pipeline tree; `a` ignores its errors when `ignorable`.
fn two_steps(ignorable: bool) -> Definition {
    let tree = json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f3"]},
        "activities": {
            "a": {"id": "a", "type": "ServiceActivity", "incoming": ["f1"], "outgoing": "f2", "error_ignorable": ignorable,
                  "component": {"code": "work", "data": {}}},
            "b": {"id": "b", "type": "ServiceActivity", "incoming": ["f2"], "outgoing": "f3", "component": {"code": "work", "data": {}}}
        },
        "gateways": {},
        "flows": {"f1": {"id": "f1", "source": "s", "target": "a"}, "f2": {"id": "f2", "source": "a", "target": "b"},
                  "f3": {"id": "f3", "source": "b", "target": "e"}}
    });
    flowstone_model::parse_pipeline(&tree, "two", None, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

impl Harness {
    fn fail_stone(&mut self, element: &str) -> String {
        let id = self.open_at(element).into_iter().next().unwrap_or_else(|| panic!("no open task at {element}"));
        let event = StoneEvent::Failed { action: Action::Start, reason: "boom".into() };
        self.apply(Command::Stone { record: id.clone(), event }).unwrap_or_else(|e| panic!("{e}"));
        id
    }
}

#[test]
fn an_error_ignorable_activity_fails_forward() {
    let mut h = Harness::start(two_steps(true), json!({}));
    h.fail_stone("a");
    assert_eq!(h.open_at("b").len(), 1, "the flow went on past the failure");
    let a = h.records().into_iter().find(|r| r.element == "a").unwrap_or_else(|| panic!("a ran"));
    assert_eq!((a.status.text().as_str(), a.reason.as_deref()), ("start.failed", Some("boom")));
    h.succeed("b");
    assert_eq!(h.inst.status, InstanceStatus::Completed);

    let mut h = Harness::start(two_steps(false), json!({}));
    h.fail_stone("a");
    assert_eq!(h.inst.status, InstanceStatus::Failed, "without error_ignorable a failure stops the process");
}

#[test]
fn a_failed_task_skipped_in_debug_mode_lets_the_flow_go_on() {
    let debug = StartOptions { debug: true, ..StartOptions::default() };
    let mut h = Harness::start_with(two_steps(false), json!({}), debug);
    let failed = h.fail_stone("a");
    assert_eq!(h.inst.status, InstanceStatus::Debug);
    assert!(matches!(h.apply(Command::Skip { task: "nope".into() }), Err(EngineError::TaskNotOpen(_))));
    h.apply(Command::Skip { task: failed }).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Running);
    let a = h.records().into_iter().find(|r| r.element == "a").unwrap_or_else(|| panic!("a ran"));
    assert_eq!(a.status, TaskStatus::Skipped);
    h.succeed("b");
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert!(h.apply(Command::Skip { task: "x".into() }).is_err(), "nothing to skip once completed");
}

#[test]
fn a_paused_instance_starts_no_new_node_until_it_is_resumed() {
    let mut h = Harness::start(two_steps(false), json!({}));
    h.apply(Command::Pause { subprocess: None }).unwrap_or_else(|e| panic!("{e}"));
    assert!(h.inst.is_paused());
    h.succeed("a");
    assert!(h.open_at("b").is_empty(), "the token waits while the instance is paused");
    assert!(matches!(h.apply(Command::Pause { subprocess: Some("a".into()) }), Err(EngineError::NotASubprocess(_))));
    h.apply(Command::Unpause { subprocess: None }).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.open_at("b").len(), 1);
    assert!(matches!(h.apply(Command::Unpause { subprocess: None }), Err(EngineError::NotPaused(_))));
    h.succeed("b");
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

/// start → x (exclusive: `${go} == "yes"` to b, `${go} == "maybe"` to c, no default) → b | c → end.
fn undecided() -> Definition {
    let flow = |id: &str, s: &str, t: &str| json!({"id": id, "source": s, "target": t});
    let task = |id: &str, i: &str, o: &str| json!({"id": id, "type": "ServiceActivity", "incoming": [i], "outgoing": o, "component": {"code": "work", "data": {}}});
    let tree = json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f4", "f5"]},
        "activities": {"b": task("b", "f2", "f4"), "c": task("c", "f3", "f5")},
        "gateways": {"x": {"id": "x", "type": "ExclusiveGateway", "incoming": ["f1"], "outgoing": ["f2", "f3"],
            "conditions": {"f2": {"evaluate": "${go} == \"yes\""}, "f3": {"evaluate": "${go} == \"maybe\""}}}},
        "flows": {"f1": flow("f1", "s", "x"), "f2": flow("f2", "x", "b"), "f3": flow("f3", "x", "c"),
                  "f4": flow("f4", "b", "e"), "f5": flow("f5", "c", "e")}
    });
    flowstone_model::parse_pipeline(&tree, "undecided", None, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_gateway_that_cannot_choose_waits_in_debug_mode_for_an_operator_to_choose() {
    let debug = StartOptions { debug: true, ..StartOptions::default() };
    let mut h = Harness::start_with(undecided(), json!({"go": "no"}), debug);
    assert_eq!(h.inst.status, InstanceStatus::Debug);
    let waiting = h.open_at("x").into_iter().next().unwrap_or_else(|| panic!("the gateway waits"));
    assert_eq!(h.inst.open[&waiting].kind, "exclusiveGateway");
    assert!(matches!(h.apply(Command::Skip { task: waiting.clone() }), Err(EngineError::WrongTaskKind { .. })));
    let wrong = Command::ChooseFlow { task: waiting.clone(), flow: "f4".into() };
    assert!(matches!(h.apply(wrong), Err(EngineError::NoSuchFlow { .. })));
    h.apply(Command::ChooseFlow { task: waiting, flow: "f3".into() }).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((h.inst.status, h.open_at("c").len(), h.open_at("b").len()), (InstanceStatus::Running, 1, 0));
    h.succeed("c");
    assert_eq!(h.inst.status, InstanceStatus::Completed);

    let h = Harness::start(undecided(), json!({"go": "no"}));
    assert_eq!(h.inst.status, InstanceStatus::Failed, "without debug mode the failure stands");
}

#[test]
fn a_component_puts_out_how_many_times_its_node_ran() {
    let mut h = Harness::start(two_steps(false), json!({}));
    h.succeed("a");
    let a = h.records().into_iter().find(|r| r.element == "a").unwrap_or_else(|| panic!("a ran"));
    assert_eq!(a.outputs, Some(json!({"_loop": 1})));
}

#[test]
fn a_multi_instance_output_collection_gathers_each_items_result_in_item_order() {
    let def = model(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="review"/>
        <userTask id="review"><multiInstanceLoopCharacteristics isSequential="false">
          <loopDataInputRef>docs</loopDataInputRef><loopDataOutputRef>verdicts</loopDataOutputRef>
          <inputDataItem name="doc"/><outputDataItem name="verdict"/></multiInstanceLoopCharacteristics></userTask>
        <sequenceFlow sourceRef="review" targetRef="after"/><userTask id="after"/>"#,
    );
    let mut h = Harness::start(def, json!({"docs": ["a", "b", "c"]}));
    assert_eq!(h.inst.variables.get("verdicts"), Some(&json!([null, null, null])), "one place per item");
    let items = h.open_at("review");
    for (record, verdict) in [(&items[2], "no"), (&items[0], "yes")] {
        h.apply(Command::CompleteUserTask {
            task: record.clone(),
            variables: vars(json!({"verdict": verdict})),
            transient: Map::new(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(h.inst.variables.get("verdicts"), Some(&json!(["yes", null, "no"])), "filled as items complete");
    h.apply(Command::CompleteUserTask { task: items[1].clone(), variables: Map::new(), transient: Map::new() })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        h.inst.variables.get("verdicts"),
        Some(&json!(["yes", null, "no"])),
        "an item that set none leaves null"
    );
    assert!(!h.inst.variables.contains_key("verdict"), "each item's result stays the item's");
    assert_eq!(h.open_elements(), ["after"]);
    let xml = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p"><startEvent id="s"/>
        <sequenceFlow sourceRef="s" targetRef="t"/><task id="t"><multiInstanceLoopCharacteristics>
        <loopCardinality>2</loopCardinality><loopDataOutputRef>out</loopDataOutputRef></multiInstanceLoopCharacteristics></task>
        </process></definitions>"#;
    let err = parse_bpmn(xml).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("outputDataItem"), "{err}");
}

#[test]
fn a_subprocess_without_a_start_event_begins_at_each_element_nothing_leads_to() {
    let def = model(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/>
        <subProcess id="sub"><userTask id="a"/><userTask id="b"/><sequenceFlow sourceRef="b" targetRef="c"/><userTask id="c"/></subProcess>
        <sequenceFlow sourceRef="sub" targetRef="after"/><userTask id="after"/>"#,
    );
    let mut h = Harness::start(def, json!({}));
    assert_eq!(h.open_elements(), ["a", "b"]);
    h.complete("a", json!({}));
    h.complete("b", json!({}));
    assert_eq!(h.open_elements(), ["c"], "the subprocess ends when all its paths have");
    h.complete("c", json!({}));
    assert_eq!(h.open_elements(), ["after"]);
}

#[test]
fn a_token_thrown_at_a_link_goes_on_at_its_catch_event() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="out"/>
            <intermediateThrowEvent id="out"><linkEventDefinition name="next"/></intermediateThrowEvent>
            <intermediateCatchEvent id="in"><linkEventDefinition name="next"/></intermediateCatchEvent>
            <sequenceFlow sourceRef="in" targetRef="t"/><task id="t"/><sequenceFlow sourceRef="t" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    let passed: Vec<(String, &str)> = h
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Passed(p) => Some((p.element.clone(), p.kind)),
            _ => None,
        })
        .collect();
    assert!(passed.contains(&("out".to_owned(), "intermediateThrowEvent")), "{passed:?}");
    assert!(passed.contains(&("in".to_owned(), "intermediateCatchEvent")), "{passed:?}");
    assert_eq!(h.elements_run(), ["t"]);
}

fn standard_loop(attributes: &str, condition: &str) -> Definition {
    model(&format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="try"/>
        <userTask id="try"><standardLoopCharacteristics {attributes}>{condition}</standardLoopCharacteristics></userTask>
        <sequenceFlow sourceRef="try" targetRef="e"/><endEvent id="e"/>"#
    ))
}

#[test]
fn a_standard_loop_runs_its_activity_again_while_its_condition_holds_after_a_run() {
    let mut h = Harness::start(standard_loop("", "<loopCondition>${!done}</loopCondition>"), json!({"done": true}));
    assert_eq!(h.open_at("try").len(), 1, "without testBefore it runs once before the condition is read");
    h.complete("try", json!({"done": false}));
    assert_eq!(h.open_at("try").len(), 1, "the condition holds: once more");
    h.complete("try", json!({"done": true}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.elements_run(), ["try", "try"]);
}

#[test]
fn a_standard_loop_that_tests_before_may_not_run_at_all_and_stops_at_its_maximum() {
    let h = Harness::start(
        standard_loop(r#"testBefore="true""#, "<loopCondition>not done</loopCondition>"),
        json!({"done": true}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert!(h.elements_run().is_empty());
    let mut h = Harness::start(
        standard_loop(r#"testBefore="true" loopMaximum="3""#, "<loopCondition>not done</loopCondition>"),
        json!({"done": false}),
    );
    for _ in 0..3 {
        h.complete("try", json!({}));
    }
    assert_eq!(h.inst.status, InstanceStatus::Completed, "three runs at most");
    assert_eq!(h.elements_run().len(), 3);
}
