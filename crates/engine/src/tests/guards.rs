//! The guards of pipeline-tree component nodes on a clock the tests drive: a timeout fails a
//! run that takes too long (and skips it when asked); an automatic retry runs a failed node
//! again after its interval, as many times as allowed.

use super::*;

const SECOND: i64 = 1000;

/// start → a → b → end as a pipeline tree, `a` with the fields `guards`, run in debug mode as
/// bk-sops runs its tasks.
fn guarded(guards: Value) -> Harness {
    let mut a = json!({"id": "a", "type": "ServiceActivity", "incoming": ["f1"], "outgoing": "f2",
                       "component": {"code": "work", "data": {}}});
    if let (Some(a), Value::Object(guards)) = (a.as_object_mut(), guards) {
        a.extend(guards);
    }
    let tree = json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f3"]},
        "activities": {
            "a": a,
            "b": {"id": "b", "type": "ServiceActivity", "incoming": ["f2"], "outgoing": "f3", "component": {"code": "work", "data": {}}}
        },
        "gateways": {},
        "flows": {"f1": {"id": "f1", "source": "s", "target": "a"}, "f2": {"id": "f2", "source": "a", "target": "b"},
                  "f3": {"id": "f3", "source": "b", "target": "e"}}
    });
    let def = flowstone_model::parse_pipeline(&tree, "guarded", None, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    Harness::start_with(def, json!({}), StartOptions { debug: true, ..StartOptions::default() })
}

fn timeout(seconds: u64, action: &str) -> Value {
    json!({"timeout_config": {"enable": true, "seconds": seconds, "action": action}})
}

impl Harness {
    fn record_of(&self, element: &str) -> TaskRecord {
        self.inst
            .open
            .values()
            .find(|r| r.element == element)
            .cloned()
            .unwrap_or_else(|| panic!("{element} is not open"))
    }

    fn jobs_queued(&self, record: &str) -> usize {
        self.effects.iter().filter(|e| matches!(e, Effect::QueueJob(j) if j.record_id == record)).count()
    }
}

#[test]
fn a_run_past_its_timeout_is_failed_and_waits_for_an_operator() {
    let mut h = guarded(timeout(30, "forced_fail"));
    let a = h.record_of("a").id;
    let set = h.timers();
    let (_, (element, due)) = set.iter().next().unwrap_or_else(|| panic!("no timeout set"));
    assert_eq!((element.as_str(), *due), ("a", 1000 + 30 * SECOND), "the timer names the node and its due time");
    h.advance(*due - 1);
    assert!(!h.record_of("a").status.step_failed(), "not before its time");
    h.advance(*due);
    let rec = h.record_of("a");
    assert!(rec.status.step_failed(), "{:?}", rec.status);
    assert!(rec.reason.as_deref().is_some_and(|r| r.contains("timeout (PT30S)")), "{:?}", rec.reason);
    assert_eq!(h.inst.status, InstanceStatus::Debug);
    assert!(h.effects.contains(&Effect::DropJob { record_id: a.clone() }), "its job left the queue");
    assert!(h.timers().is_empty());

    // An operator's retry runs it again, under a new timeout.
    h.now = 100 * SECOND;
    h.apply(Command::ReRun { task: a.clone(), action: None, parameters: Map::new(), outputs: Map::new() })
        .unwrap_or_else(|e| panic!("{e}"));
    let dues: Vec<i64> = h.timers().values().map(|(_, due)| *due).collect();
    assert_eq!(dues, [130 * SECOND]);
    h.succeed("a");
    assert!(h.timers().is_empty(), "a run done in time drops its timeout");
    h.succeed("b");
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

#[test]
fn a_run_past_a_fail_and_skip_timeout_is_skipped_and_the_flow_goes_on() {
    let mut h = guarded(timeout(5, "forced_fail_and_skip"));
    h.advance(1000 + 5 * SECOND);
    let a = h.records().into_iter().find(|r| r.element == "a").unwrap_or_else(|| panic!("a ran"));
    assert_eq!(a.status, TaskStatus::Skipped);
    assert!(a.reason.as_deref().is_some_and(|r| r.contains("timeout")), "{:?}", a.reason);
    assert_eq!(h.inst.status, InstanceStatus::Running);
    h.succeed("b");
    assert_eq!(h.inst.status, InstanceStatus::Completed);
}

#[test]
fn a_timeout_that_may_not_skip_leaves_the_node_failed() {
    let mut guards = timeout(5, "forced_fail_and_skip");
    guards["skippable"] = json!(false);
    let mut h = guarded(guards);
    h.advance(1000 + 5 * SECOND);
    assert!(h.record_of("a").status.step_failed());
    assert_eq!(h.inst.status, InstanceStatus::Debug);
}

#[test]
fn a_failed_node_is_retried_after_its_interval_as_many_times_as_allowed() {
    let mut h = guarded(json!({"auto_retry": {"enable": true, "interval": 5, "times": 2}}));
    let a = h.record_of("a").id;
    for round in 1..=2 {
        h.now += SECOND;
        h.fail_stone("a");
        assert_eq!(h.inst.status, InstanceStatus::Debug);
        let dues: Vec<i64> = h.timers().values().map(|(_, due)| *due).collect();
        assert_eq!(dues, [h.now + 5 * SECOND], "round {round}: a retry waits its interval");
        let now = h.now + 5 * SECOND;
        h.advance(now);
        assert_eq!(h.inst.status, InstanceStatus::Running, "round {round}");
        assert!(!h.record_of("a").status.step_failed(), "round {round}: it runs again");
        assert_eq!(h.jobs_queued(&a), 1 + round, "round {round}: a new job");
    }
    h.fail_stone("a");
    assert!(h.timers().is_empty(), "two retries were allowed, no third is set");
    assert_eq!(h.inst.status, InstanceStatus::Debug, "the node waits for an operator");
    let attempts = h.records().into_iter().filter(|r| r.element == "a" && r.id != a).count();
    assert_eq!(attempts, 2, "the runs retried are kept under ids of their own; the last waits failed");
    assert!(h.record_of("a").status.step_failed());
}

#[test]
fn an_operator_who_skips_before_the_retry_fires_wins() {
    let mut h = guarded(json!({"auto_retry": {"enable": true, "interval": 60, "times": 3}}));
    let a = h.fail_stone("a");
    let (timer, (_, due)) = h.timers().into_iter().next().unwrap_or_else(|| panic!("no retry set"));
    h.apply(Command::Skip { task: a.clone() }).unwrap_or_else(|e| panic!("{e}"));
    assert!(h.timers().is_empty(), "the skip dropped the retry");
    assert!(h.apply(Command::FireTimer { timer, due }).is_err(), "a late firing finds no timer");
    assert_eq!(h.open_at("b").len(), 1);
    assert_eq!(h.jobs_queued(&a), 1, "a never ran again");
}

#[test]
fn guards_survive_serialization() {
    let mut h = guarded(json!({"auto_retry": {"enable": true, "interval": 1, "times": 1}}));
    h.fail_stone("a");
    h.inst = h.read_back();
    h.advance(h.now + SECOND);
    assert_eq!(h.inst.status, InstanceStatus::Running, "the retry read back fired");
}
