//! The stone lifecycle: monitoring, mock runs, debug mode, rollback, cancel and delete.

use super::*;

/// Three stone tasks in a row: `a` and `b` on `MachineStone`, `c` on `BillingStone`.
fn chain() -> Definition {
    model(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="a"/>
        <serviceTask id="a" flowstone:stone="MachineStone" flowstone:namespace="na"/><sequenceFlow sourceRef="a" targetRef="b"/>
        <serviceTask id="b" flowstone:stone="MachineStone" flowstone:namespace="nb"/><sequenceFlow sourceRef="b" targetRef="c"/>
        <serviceTask id="c" flowstone:stone="BillingStone" flowstone:namespace="nc"/><sequenceFlow sourceRef="c" targetRef="e"/>
        <endEvent id="e"/>"#,
    )
}

fn ok(r: Result<(), EngineError>) {
    r.unwrap_or_else(|e| panic!("{e}"));
}

fn success(action: Action, outputs: Value) -> StoneEvent {
    StoneEvent::Success { action, outputs: vars(outputs), monitor: false }
}

fn failed(action: Action, reason: &str) -> StoneEvent {
    StoneEvent::Failed { action, reason: reason.into() }
}

impl Harness {
    fn event(&mut self, element: &str, event: StoneEvent) -> Result<(), EngineError> {
        let record = self.open_at(element).into_iter().next().unwrap_or_else(|| panic!("no open task at {element}"));
        self.apply(Command::Stone { record, event })
    }

    /// The jobs queued so far, as (element of their record, action, params, outputs).
    fn jobs(&self) -> Vec<(String, Action, Value, Map<String, Value>)> {
        let element =
            |id: &str| self.records().into_iter().find(|r| r.id == *id).map(|r| r.element).unwrap_or_default();
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::QueueJob(j) => Some((element(&j.record_id), j.action, j.params.clone(), j.outputs.clone())),
                _ => None,
            })
            .collect()
    }

    /// The compensation instance spawned last, as a harness of its own.
    fn spawned(&self) -> (String, Harness) {
        let spawned = self.effects.iter().rev().find_map(|e| match e {
            Effect::Spawn(s) => Some(s.clone()),
            _ => None,
        });
        let s = spawned.unwrap_or_else(|| panic!("nothing spawned"));
        let harness = Harness {
            def: self.def.clone(),
            inst: s.instance,
            effects: s.effects,
            counter: self.counter + 1000,
            limits: self.limits.clone(),
            now: self.now,
        };
        (s.id, harness)
    }

    fn run_chain_to(&mut self, elements: &[&str]) {
        for element in elements {
            ok(self.event(element, StoneEvent::Begin(Action::Start)));
            ok(self.event(element, success(Action::Start, json!({"made": element}))));
        }
    }
}

/// The chain run through `a` and `b`, its `c` failed for `reason`.
fn failed_at_c(reason: &str) -> Harness {
    let mut h = Harness::start(chain(), json!({}));
    h.run_chain_to(&["a", "b"]);
    ok(h.event("c", StoneEvent::Begin(Action::Start)));
    ok(h.event("c", failed(Action::Start, reason)));
    h
}

/// The chain with `a` started: it put out machine `m1` and is to be monitored.
fn monitoring_machine() -> Harness {
    let mut h = Harness::start(chain(), json!({}));
    ok(h.event("a", StoneEvent::Begin(Action::Start)));
    ok(h.event(
        "a",
        StoneEvent::Success { action: Action::Start, outputs: vars(json!({"machineId": "m1"})), monitor: true },
    ));
    h
}

#[test]
fn a_monitored_stone_stays_open_until_monitor_success_and_keeps_both_outputs() {
    let mut h = monitoring_machine();
    assert_eq!(h.records()[0].status.text(), "start.success");
    assert_eq!(h.open_at("a").len(), 1, "monitoring keeps the task open");
    let record_id = h.open_at("a")[0].clone();
    let outputs = vars(json!({"machineId": "m1"}));
    assert!(h.effects.contains(&Effect::MonitorJob { record_id, outputs }), "a worker taking over monitors");
    ok(h.event("a", StoneEvent::Progress(40)));
    assert_eq!((h.records()[0].status.text().as_str(), h.records()[0].progress), ("monitor.begin", Some(40)));
    ok(h.event("a", StoneEvent::Begin(Action::Monitor)));
    ok(h.event("a", success(Action::Monitor, json!({"state": "running"}))));
    let a = &h.records()[0];
    assert_eq!(a.status.text(), "monitor.success");
    assert_eq!(a.outputs, Some(json!({"machineId": "m1", "state": "running"})));
    assert_eq!(h.inst.variables["na"], json!({"machineId": "m1", "state": "running"}));
    assert_eq!(h.open_at("b").len(), 1, "the token moved on");
}

#[test]
fn a_stone_task_whose_record_holds_what_undoing_it_needs_is_stored_as_the_record_id() {
    let mut h = Harness::start(chain(), json!({}));
    ok(h.event("a", StoneEvent::Begin(Action::Start)));
    ok(h.event("a", success(Action::Start, json!({"machineId": "m1"}))));
    let a = h.records()[0].clone();
    assert_eq!(a.outputs, Some(json!({"machineId": "m1"})));
    let state = serde_json::to_value(&h.inst).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state["ran"], json!([{"record": a.id}]), "params and outputs live on the record alone");
    let mut back: Instance = serde_json::from_value(state).unwrap_or_else(|e| panic!("{e}"));
    let b = h.records()[1].clone();
    assert_eq!(back.records_to_fill(), [b.id.as_str(), a.id.as_str()], "b is open, a ran");
    assert_ne!(back, h.inst, "read back, it lacks what the records hold");
    let records = [a.clone(), b];
    back.fill_records(|id| records.iter().find(|r| r.id == id)).unwrap_or_else(|id| panic!("{id} missing"));
    assert!(back.records_to_fill().is_empty());
    assert_eq!(back, h.inst, "filled from its record, it is what ran");
    let mut bare: Instance = serde_json::from_value(serde_json::to_value(&h.inst).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        bare.fill_records(|id| (id != a.id).then_some(&records[1])),
        Err(a.id),
        "a record that is gone is named"
    );
}

#[test]
fn an_ended_instance_is_stored_without_its_variables_which_its_row_holds_as_its_final_ones() {
    let mut h = Harness::start(chain(), json!({"k": 1}));
    let core = |stored: &Stored| serde_json::from_str::<Value>(&stored.core).unwrap_or_else(|e| panic!("{e}"));
    let running = h.inst.store(crate::PARTS_FROM).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(core(&running)["variables"], json!({"k": 1}), "a running instance's state holds them");
    for element in ["a", "b", "c"] {
        ok(h.event(element, StoneEvent::Begin(Action::Start)));
        ok(h.event(element, success(Action::Start, json!({"done": element}))));
    }
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert!(h.inst.keeps_state(), "its stones are kept for a delete to undo");
    let variables = h.inst.variables.clone();
    let ended = h.inst.store(crate::PARTS_FROM).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(core(&ended)["variables"], json!({}), "the row's final variables are not written twice");
    assert_eq!(h.inst.variables, variables, "storing leaves the instance as it was");
    let back = Instance::from_stored(&ended).unwrap_or_else(|e| panic!("{e}"));
    assert!(back.variables.is_empty(), "the reader puts the final ones back");
    assert_eq!(back.ran.len(), 3, "what a delete undoes is kept");
}

#[test]
fn a_rollback_read_back_fills_its_steps_from_the_records_of_what_it_undoes() {
    let h = failed_at_c("card declined");
    let (_, rollback) = h.spawned();
    let state = serde_json::to_value(&rollback.inst).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<String> = h.records().iter().rev().map(|r| r.id.clone()).collect();
    let stored: Vec<Value> = ids.iter().map(|id| json!({"record": id})).collect();
    assert_eq!(state["plan"]["steps"], json!(stored), "newest first, each its record's id");
    let mut back: Instance = serde_json::from_value(state).unwrap_or_else(|e| panic!("{e}"));
    let records = [h.records(), rollback.records()].concat();
    back.fill_records(|id| records.iter().find(|r| r.id == id)).unwrap_or_else(|id| panic!("{id} missing"));
    assert_eq!(back, rollback.inst);
}

#[test]
fn a_stone_that_failed_after_putting_out_outputs_is_stored_in_full_for_its_rollback() {
    let mut h = monitoring_machine();
    ok(h.event("a", StoneEvent::Begin(Action::Monitor)));
    ok(h.event("a", failed(Action::Monitor, "lost")));
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    assert_eq!(h.records()[0].outputs, None, "the failed record closed without outputs");
    let state = serde_json::to_value(&h.inst).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state["ran"][0]["outputs"], json!({"machineId": "m1"}), "the rollback still gets the machine");
    assert_eq!(state["ran"][0].get("record"), None);
}

#[test]
fn a_start_that_awaits_its_callback_gives_the_job_back_and_stays_under_way() {
    let mut h = Harness::start(chain(), json!({}));
    let record_id = h.open_at("a")[0].clone();
    ok(h.event("a", StoneEvent::AwaitCallback));
    assert_eq!(h.records()[0].status.text(), "start.begin");
    assert!(h.effects.contains(&Effect::DropJob { record_id }), "no worker holds the job any more");
    assert_eq!(h.open_at("a").len(), 1, "the task waits for its callback");
    ok(h.event("a", success(Action::Start, json!({"answer": 42}))));
    assert_eq!(h.inst.variables["na"], json!({"answer": 42}));
    assert_eq!(h.open_at("b").len(), 1);
    // A start that went on to monitoring cannot hand over to a callback.
    ok(h.event("b", StoneEvent::Success { action: Action::Start, outputs: Map::new(), monitor: true }));
    assert!(matches!(h.event("b", StoneEvent::AwaitCallback), Err(EngineError::UnexpectedEvent { .. })));
}

#[test]
fn a_callback_and_a_forced_failure_act_on_the_action_under_way_whatever_its_phase() {
    let mut h = Harness::start(chain(), json!({}));
    // A callback while the start runs finishes the start.
    let a = h.open_at("a")[0].clone();
    ok(h.apply(Command::Callback { task: a, outputs: vars(json!({"answer": 1})) }));
    assert_eq!(h.records()[0].status.text(), "start.success");
    // A callback while the start's work is monitored finishes the monitoring.
    let b = h.open_at("b")[0].clone();
    ok(h.event("b", StoneEvent::Success { action: Action::Start, outputs: Map::new(), monitor: true }));
    ok(h.apply(Command::Callback { task: b, outputs: vars(json!({"state": "done"})) }));
    assert_eq!(h.records()[1].status.text(), "monitor.success");
    assert_eq!(h.inst.variables["nb"], json!({"state": "done"}));
    // A forced failure while monitoring fails the monitoring, with its reason.
    let c = h.open_at("c")[0].clone();
    ok(h.event("c", StoneEvent::Success { action: Action::Start, outputs: Map::new(), monitor: true }));
    ok(h.apply(Command::ForceFail { task: c.clone(), reason: "forced by ops".into() }));
    let failed = h.records().into_iter().find(|r| r.id == c).unwrap_or_else(|| panic!("no record {c}"));
    assert_eq!((failed.status.text().as_str(), failed.reason.as_deref()), ("monitor.failed", Some("forced by ops")));
}

#[test]
fn events_that_do_not_fit_the_job_are_refused_and_repeats_are_harmless() {
    let mut h = Harness::start(chain(), json!({}));
    let refused = h.event("a", StoneEvent::Begin(Action::Rollback));
    assert!(matches!(refused, Err(EngineError::UnexpectedEvent { .. })), "{refused:?}");
    assert!(matches!(h.event("a", StoneEvent::Passed), Err(EngineError::UnexpectedEvent { .. })));
    assert!(
        matches!(h.event("a", success(Action::Monitor, json!({}))), Err(EngineError::UnexpectedEvent { .. })),
        "monitor events need a start that monitors"
    );
    ok(h.event("a", StoneEvent::Begin(Action::Start)));
    let written = h.effects.len();
    ok(h.event("a", StoneEvent::Begin(Action::Start)));
    assert_eq!(h.effects.len(), written, "a repeated begin writes nothing");
}

#[test]
fn a_failure_rolls_back_every_started_task_newest_first() {
    let h = failed_at_c("no credit");
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    assert_eq!(h.inst.failure.as_deref(), Some("task c failed: no credit"));
    let (id, mut rb) = h.spawned();
    assert_eq!(h.inst.rollback.as_deref(), Some(id.as_str()));
    assert_eq!(rb.inst.kind, InstanceKind::Rollback);
    for (element, made) in [("c", None), ("b", Some("b")), ("a", Some("a"))] {
        let job = rb.jobs().pop().unwrap_or_else(|| panic!("no job"));
        assert_eq!((job.0.as_str(), job.1), (element, Action::Rollback));
        assert_eq!(job.3.get("made").and_then(Value::as_str), made, "the rollback gets what the start put out");
        ok(rb.event(element, StoneEvent::Begin(Action::Rollback)));
        assert_eq!(rb.inst.status, InstanceStatus::Running);
        ok(rb.event(element, success(Action::Rollback, json!({}))));
    }
    assert_eq!(rb.inst.status, InstanceStatus::Completed);
    let statuses: Vec<_> = rb.records().into_iter().map(|r| (r.element, r.status.text())).collect();
    assert_eq!(
        statuses,
        [
            ("c".into(), "rollback.success".into()),
            ("b".into(), "rollback.success".into()),
            ("a".into(), "rollback.success".into())
        ]
    );
}

#[test]
fn a_failed_rollback_step_fails_the_rollback() {
    let mut h = Harness::start(chain(), json!({}));
    h.run_chain_to(&["a"]);
    ok(h.event("b", failed(Action::Start, "boom")));
    let (_, mut rb) = h.spawned();
    ok(rb.event("b", failed(Action::Rollback, "cannot")));
    assert_eq!(rb.inst.status, InstanceStatus::Failed);
    assert!(rb.open_at("a").is_empty(), "no later step runs");
    assert!(!rb.effects.iter().any(|e| matches!(e, Effect::Spawn(_))), "a rollback is not rolled back");
}

#[test]
fn an_expression_failure_before_any_stone_ran_starts_no_rollback() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="x"/><serviceTask id="x" flowable:expression="${nope.x}"/>"#,
        ),
        json!({}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    assert_eq!(h.inst.rollback, None);
}

#[test]
fn in_debug_mode_a_failure_waits_and_rerun_runs_a_new_attempt_with_fixed_params() {
    let options = StartOptions { debug: true, ..StartOptions::default() };
    let mut h = Harness::start_with(chain(), json!({"nb": {"fail": true, "size": 1}}), options);
    h.run_chain_to(&["a"]);
    ok(h.event("b", StoneEvent::Begin(Action::Start)));
    ok(h.event("b", failed(Action::Start, "boom")));
    assert_eq!(h.inst.status, InstanceStatus::Debug);
    let task = h.open_at("b")[0].clone();
    assert_eq!(h.records().iter().find(|r| r.id == task).map(|r| r.status.text()).as_deref(), Some("start.failed"));
    assert_eq!(h.effects.iter().filter(|e| matches!(e, Effect::Spawn(_))).count(), 0, "no rollback in debug mode");

    let parameters = vars(json!({"fail": null, "size": 2}));
    ok(h.apply(Command::ReRun { task: task.clone(), action: None, parameters, outputs: Map::new() }));
    assert_eq!(h.inst.status, InstanceStatus::Running);
    let attempts: Vec<_> =
        h.records().into_iter().filter(|r| r.task_id == task).map(|r| (r.id == task, r.status.text())).collect();
    assert_eq!(attempts, [(true, "produce.success".to_owned()), (false, "start.failed".to_owned())]);
    let job = h.jobs().pop().unwrap_or_else(|| panic!("no job"));
    assert_eq!((job.0.as_str(), job.1), ("b", Action::Start));
    assert_eq!((job.2.get("fail"), &job.2["size"]), (None, &json!(2)));
    h.run_chain_to(&["b", "c"]);
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

#[test]
fn rerun_of_the_monitor_step_passes_the_start_outputs() {
    let mut h = Harness::start_with(chain(), json!({}), StartOptions { debug: true, ..StartOptions::default() });
    ok(h.event(
        "a",
        StoneEvent::Success { action: Action::Start, outputs: vars(json!({"machineId": "m1"})), monitor: true },
    ));
    ok(h.event("a", failed(Action::Monitor, "timeout")));
    let task = h.open_at("a")[0].clone();
    let outputs = vars(json!({"zone": "z"}));
    ok(h.apply(Command::ReRun { task, action: None, parameters: Map::new(), outputs }));
    let job = h.jobs().pop().unwrap_or_else(|| panic!("no job"));
    assert_eq!(job.1, Action::Monitor);
    assert_eq!(Value::Object(job.3), json!({"machineId": "m1", "zone": "z"}));
    ok(h.event("a", success(Action::Monitor, json!({"state": "running"}))));
    assert_eq!(h.open_at("b").len(), 1);
}

#[test]
fn resume_leaves_debug_mode_and_rolls_back_the_failed_task_too() {
    let mut h = Harness::start_with(chain(), json!({}), StartOptions { debug: true, ..StartOptions::default() });
    h.run_chain_to(&["a"]);
    ok(h.event("b", failed(Action::Start, "boom")));
    let task = h.open_at("b")[0].clone();
    ok(h.apply(Command::Resume { task }));
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    let (_, rb) = h.spawned();
    assert!(rb.inst.debug, "the rollback runs in debug mode too");
    assert_eq!(rb.jobs()[0].0, "b");
}

#[test]
fn debug_operations_that_do_not_fit_answer_why() {
    let mut h = Harness::start_with(chain(), json!({}), StartOptions { debug: true, ..StartOptions::default() });
    let task = h.open_at("a")[0].clone();
    let rerun =
        |task: &str, action| Command::ReRun { task: task.into(), action, parameters: Map::new(), outputs: Map::new() };
    assert_eq!(h.apply(rerun(&task, None)), Err(EngineError::NotDebugging(InstanceStatus::Running)));
    h.run_chain_to(&["a"]);
    ok(h.event("b", failed(Action::Start, "boom")));
    let failed_task = h.open_at("b")[0].clone();
    assert!(matches!(h.apply(rerun(&failed_task, Some(Action::Rollback))), Err(EngineError::WrongAction { .. })));
    assert!(matches!(h.apply(Command::Resume { task: "nope".into() }), Err(EngineError::TaskNotOpen(_))));
    let mut plain = Harness::start(chain(), json!({}));
    let t = plain.open_at("a")[0].clone();
    assert_eq!(plain.apply(rerun(&t, None)), Err(EngineError::NotDebugging(InstanceStatus::Running)));
}

#[test]
fn cancel_cancels_queued_tasks_and_sends_cancel_to_running_ones() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="f"/><parallelGateway id="f"/>
            <sequenceFlow sourceRef="f" targetRef="x"/><sequenceFlow sourceRef="f" targetRef="y"/>
            <serviceTask id="x" flowstone:stone="MachineStone"/><serviceTask id="y" flowstone:stone="MachineStone"/>"#,
        ),
        json!({}),
    );
    ok(h.event("x", StoneEvent::Begin(Action::Start)));
    ok(h.apply(Command::Cancel));
    assert_eq!(h.inst.status, InstanceStatus::Canceled);
    assert!(h.records().iter().all(|r| r.status == TaskStatus::Canceled));
    let (id, c) = h.spawned();
    assert_eq!(h.inst.cancel.as_deref(), Some(id.as_str()));
    let jobs: Vec<_> = c.jobs().into_iter().map(|j| (j.0, j.1)).collect();
    assert_eq!(jobs, [("x".to_owned(), Action::Cancel)], "only the running task gets cancel");
}

#[test]
fn delete_sends_delete_to_every_task_that_ran_newest_first_once() {
    let mut h = Harness::start(chain(), json!({}));
    assert_eq!(h.apply(Command::Delete), Err(EngineError::StillRunning(InstanceStatus::Running)));
    h.run_chain_to(&["a", "b", "c"]);
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    ok(h.apply(Command::Delete));
    let (id, mut d) = h.spawned();
    assert_eq!(h.inst.delete.as_deref(), Some(id.as_str()));
    assert_eq!(h.apply(Command::Delete), Err(EngineError::AlreadyDeleted(id)));
    for element in ["c", "b", "a"] {
        assert_eq!(d.jobs().pop().map(|j| (j.0, j.1)), Some((element.to_owned(), Action::Delete)));
        ok(d.event(element, success(Action::Delete, json!({}))));
    }
    assert_eq!(d.inst.status, InstanceStatus::Completed);
    assert_eq!(d.apply(Command::Delete), Err(EngineError::NotAProcess(InstanceKind::Delete)));
}

#[test]
fn mock_runs_send_mock_and_leave_nothing_to_delete() {
    let mut h = Harness::start(chain(), json!({"BillingStone::Mock": true}));
    assert_eq!(h.jobs()[0].1, Action::Start, "only the flagged stone is mocked");
    h.run_chain_to(&["a", "b"]);
    assert_eq!(h.jobs().pop().map(|j| (j.0, j.1)), Some(("c".to_owned(), Action::Mock)));
    ok(h.event("c", StoneEvent::Passed));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.records()[2].status.text(), "mock.passed");

    let mut all = Harness::start_with(chain(), json!({}), StartOptions { mock: true, ..StartOptions::default() });
    for element in ["a", "b", "c"] {
        ok(all.event(element, StoneEvent::Begin(Action::Mock)));
        ok(all.event(element, success(Action::Mock, json!({}))));
    }
    assert_eq!(all.inst.status, InstanceStatus::Completed);
    ok(all.apply(Command::Delete));
    let (_, d) = all.spawned();
    assert_eq!(d.inst.status, InstanceStatus::Completed, "nothing really ran, so nothing to delete");
}

/// A stone task `t` with error boundaries: `E1` goes to `handled`, anything else unmatched.
fn guarded(catch_all: bool) -> Definition {
    let other = if catch_all {
        r#"<boundaryEvent id="any" attachedToRef="t"><errorEventDefinition/></boundaryEvent>
        <sequenceFlow sourceRef="any" targetRef="fallback"/><userTask id="fallback"/>"#
    } else {
        ""
    };
    model(&format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/>
        <serviceTask id="t" flowstone:stone="X"/><sequenceFlow sourceRef="t" targetRef="e"/><endEvent id="e"/>
        <boundaryEvent id="b1" attachedToRef="t"><errorEventDefinition errorRef="E1"/></boundaryEvent>
        <sequenceFlow sourceRef="b1" targetRef="handled"/><userTask id="handled"/>{other}"#
    ))
}

fn bpmn_error(code: &str) -> StoneEvent {
    StoneEvent::BpmnError { code: code.into(), variables: vars(json!({"why": code})) }
}

#[test]
fn a_bpmn_error_is_caught_by_the_matching_boundary_event() {
    let mut h = Harness::start(guarded(true), json!({}));
    ok(h.event("t", bpmn_error("E1")));
    assert_eq!(h.open_at("handled").len(), 1, "the matching boundary wins over the catch-all");
    assert_eq!(h.records()[0].status.text(), "start.failed");
    assert_eq!(h.inst.variables["why"], json!("E1"), "the error's variables are set");
    let mut h = Harness::start(guarded(true), json!({}));
    ok(h.event("t", bpmn_error("E9")));
    assert_eq!(h.open_at("fallback").len(), 1, "a boundary without a code catches every error");
}

#[test]
fn an_uncaught_bpmn_error_fails_the_task() {
    let mut h = Harness::start(guarded(false), json!({}));
    ok(h.event("t", bpmn_error("E9")));
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    assert!(h.inst.failure.as_deref().is_some_and(|f| f.contains("E9") && f.contains("no error boundary")));
}

#[test]
fn an_uncaught_bpmn_error_of_a_called_instance_is_thrown_at_its_call() {
    let caller = Caller { instance: "parent".into(), record: "r".into(), depth: 1 };
    let mut called = Harness::start_with(
        guarded(false),
        json!({}),
        StartOptions { caller: Some(caller), ..StartOptions::default() },
    );
    ok(called.event("t", bpmn_error("E9")));
    assert_eq!(called.inst.status, InstanceStatus::Failed);
    assert_eq!(called.inst.call_end(), CallEnd::Error(Some("E9".into())), "the caller's boundary events see E9");
    let mut alone = Harness::start(guarded(false), json!({}));
    ok(alone.event("t", bpmn_error("E9")));
    assert_eq!(alone.inst.uncaught_error, None, "only a called instance passes its error on");
    let mut caught = Harness::start_with(
        guarded(false),
        json!({}),
        StartOptions {
            caller: Some(Caller { instance: "p".into(), record: "r".into(), depth: 1 }),
            ..StartOptions::default()
        },
    );
    ok(caught.event("t", bpmn_error("E1")));
    assert_eq!(
        (caught.inst.status, caught.inst.uncaught_error.clone()),
        (InstanceStatus::Running, None),
        "caught inside"
    );
}

#[test]
fn a_completion_sets_process_variables() {
    let mut h = Harness::start(guarded(false), json!({}));
    ok(h.event("t", StoneEvent::Completed { variables: vars(json!({"approved": true})) }));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert_eq!(h.inst.variables["approved"], json!(true));
    assert_eq!(h.records()[0].status.text(), "start.success");
}

#[test]
fn an_error_end_event_in_a_subprocess_is_caught_on_the_subprocess() {
    let h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/>
            <subProcess id="sub"><startEvent id="ss"/><sequenceFlow sourceRef="ss" targetRef="f"/><parallelGateway id="f"/>
              <sequenceFlow sourceRef="f" targetRef="wait"/><userTask id="wait"/>
              <sequenceFlow sourceRef="f" targetRef="boom"/><endEvent id="boom"><errorEventDefinition errorRef="BROKEN"/></endEvent>
            </subProcess><sequenceFlow sourceRef="sub" targetRef="e"/><endEvent id="e"/>
            <boundaryEvent id="caught" attachedToRef="sub"><errorEventDefinition errorRef="BROKEN"/></boundaryEvent>
            <sequenceFlow sourceRef="caught" targetRef="after"/><userTask id="after"/>"#,
        ),
        json!({}),
    );
    assert_eq!(h.inst.status, InstanceStatus::Running);
    assert_eq!(h.open_at("after").len(), 1);
    assert!(h.open_at("wait").is_empty(), "the subprocess ended with everything in it");
    assert_eq!(h.records().iter().find(|r| r.element == "wait").map(|r| r.status.text()).as_deref(), Some("canceled"));
}

#[test]
fn a_bpmn_error_in_one_item_ends_the_whole_multi_instance_activity() {
    let mut h = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/>
            <serviceTask id="t" flowstone:stone="X"><multiInstanceLoopCharacteristics isSequential="false">
              <loopCardinality>3</loopCardinality></multiInstanceLoopCharacteristics></serviceTask>
            <sequenceFlow sourceRef="t" targetRef="e"/><endEvent id="e"/>
            <boundaryEvent id="b" attachedToRef="t"><errorEventDefinition/></boundaryEvent>
            <sequenceFlow sourceRef="b" targetRef="handled"/><userTask id="handled"/>"#,
        ),
        json!({}),
    );
    assert_eq!(h.open_at("t").len(), 3);
    ok(h.event("t", bpmn_error("E1")));
    assert!(h.open_at("t").is_empty(), "the other items were canceled");
    assert_eq!(h.open_at("handled").len(), 1);
}

/// Stone `a`, a call of `child`, then stone `c`.
fn calling() -> Definition {
    model(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="a"/>
        <serviceTask id="a" flowstone:stone="MachineStone"/><sequenceFlow sourceRef="a" targetRef="call"/>
        <callActivity id="call" calledElement="child"/><sequenceFlow sourceRef="call" targetRef="c"/>
        <serviceTask id="c" flowstone:stone="BillingStone"/><sequenceFlow sourceRef="c" targetRef="e"/><endEvent id="e"/>"#,
    )
}

/// The child the call asked for, run to completion through its stone `b`: how it ended.
fn completed_child() -> CallEnd {
    let mut child = Harness::start(
        model(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="b"/>
            <serviceTask id="b" flowstone:stone="MachineStone"/><sequenceFlow sourceRef="b" targetRef="e"/><endEvent id="e"/>"#,
        ),
        json!({}),
    );
    child.run_chain_to(&["b"]);
    assert_eq!(child.inst.status, InstanceStatus::Completed);
    child.inst.call_end()
}

/// The elements a rollback, cancel or delete instance's plan sends its action to, in order.
fn plan_elements(inst: &Instance) -> Vec<String> {
    inst.plan.iter().flat_map(|p| &p.steps).map(|s| s.element.clone()).collect()
}

#[test]
fn a_caller_that_fails_rolls_back_what_its_completed_children_ran_in_order() {
    let mut h = Harness::start(calling(), json!({}));
    h.run_chain_to(&["a"]);
    let record = h.open_at("call").into_iter().next().unwrap_or_else(|| panic!("no call"));
    ok(h.apply(Command::Return { record, end: completed_child() }));
    ok(h.event("c", StoneEvent::Begin(Action::Start)));
    ok(h.event("c", failed(Action::Start, "card declined")));
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    let (_, rollback) = h.spawned();
    assert_eq!(plan_elements(&rollback.inst), ["c", "b", "a"], "newest first, the child's stone in its place");
}

#[test]
fn deleting_a_caller_deletes_its_children_which_undo_their_own_stones() {
    let mut h = Harness::start(calling(), json!({}));
    h.run_chain_to(&["a"]);
    let record = h.open_at("call").into_iter().next().unwrap_or_else(|| panic!("no call"));
    let child = h.inst.children.first().cloned().unwrap_or_else(|| panic!("no child remembered"));
    ok(h.apply(Command::Return { record, end: completed_child() }));
    h.run_chain_to(&["c"]);
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert!(h.inst.keeps_state());
    ok(h.apply(Command::Delete));
    let (_, delete) = h.spawned();
    assert_eq!(plan_elements(&delete.inst), ["c", "a"], "the child's own delete undoes `b`");
    let deleted: Vec<&Effect> = h.effects.iter().filter(|e| matches!(e, Effect::DeleteCall { .. })).collect();
    assert!(matches!(deleted.as_slice(), [Effect::DeleteCall { child: c }] if *c == child), "{deleted:?}");
}

#[test]
fn an_open_stone_task_is_stored_as_its_element_and_action_and_filled_from_its_record() {
    let mut h = Harness::start(chain(), json!({}));
    ok(h.event("a", StoneEvent::Begin(Action::Start)));
    let a = h.records()[0].clone();
    let state = serde_json::to_value(&h.inst).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        state["open"],
        json!({ &a.id: {"element": "a", "action": "start"} }),
        "its params, status and times live on the record alone"
    );
    let mut back: Instance = serde_json::from_value(state).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.records_to_fill(), [a.id.as_str()]);
    assert_eq!(back.automatic_retries("a"), 0, "a reader that does not fill still finds its element");
    back.fill_records(|id| (id == a.id).then_some(&a)).unwrap_or_else(|id| panic!("{id} missing"));
    assert_eq!(back, h.inst, "filled from its record, with its job's action, it is what is open");
}

#[test]
fn a_state_written_with_its_open_records_in_full_reads_back_as_it_was() {
    let mut h = Harness::start(chain(), json!({}));
    ok(h.event("a", StoneEvent::Begin(Action::Start)));
    let mut state = serde_json::to_value(&h.inst).unwrap_or_else(|e| panic!("{e}"));
    let full: serde_json::Map<String, Value> = h
        .inst
        .open
        .iter()
        .map(|(id, rec)| (id.clone(), serde_json::to_value(rec).unwrap_or_else(|e| panic!("{e}"))))
        .collect();
    state["open"] = Value::Object(full);
    let back: Instance = serde_json::from_value(state).unwrap_or_else(|e| panic!("{e}"));
    assert!(back.records_to_fill().is_empty(), "nothing to fill");
    assert_eq!(back, h.inst);
}
