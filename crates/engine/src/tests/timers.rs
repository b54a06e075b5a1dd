//! Timer events on a clock the tests drive: catch events, boundary events (interrupting and
//! not, cycles, cron, end dates), and timers that go when what they wait in ends.

use super::*;
use std::collections::BTreeMap;

const MINUTE: i64 = 60_000;

impl Harness {
    /// The timers set now, by record id: (element, due).
    pub(super) fn timers(&self) -> BTreeMap<String, (String, i64)> {
        let mut set = BTreeMap::new();
        for e in &self.effects {
            match e {
                Effect::SetTimer(t) => {
                    set.insert(t.record_id.clone(), (t.element.clone(), t.due));
                }
                Effect::DropTimer { record_id } => {
                    set.remove(record_id);
                }
                _ => {}
            }
        }
        set
    }

    /// Moves the clock to `now` and fires every timer due by then, earliest first, as the
    /// runtime's timer service does (a cycle's next firing too, when it is due by then).
    pub(super) fn advance(&mut self, now: i64) {
        self.now = now;
        loop {
            let due = self.timers().into_iter().filter(|(_, (_, due))| *due <= now).min_by_key(|(_, (_, due))| *due);
            let Some((timer, (_, due))) = due else { return };
            self.apply(Command::FireTimer { timer, due }).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    pub(super) fn open_elements(&self) -> Vec<String> {
        let mut open: Vec<String> = self.inst.open.values().map(|r| r.element.clone()).collect();
        open.sort();
        open
    }
}

fn timer(kind: &str, text: &str) -> String {
    format!("<timerEventDefinition><{kind}>{text}</{kind}></timerEventDefinition>")
}

/// A user task `task` with a boundary timer `b` leading to the user task `after`.
fn guarded(time: &str, interrupting: bool, task: &str) -> Definition {
    model(&format!(
        r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="task"/>
        {task}
        <boundaryEvent id="b" attachedToRef="task" cancelActivity="{interrupting}">{time}</boundaryEvent>
        <sequenceFlow sourceRef="b" targetRef="after"/><userTask id="after"/>
        <sequenceFlow sourceRef="task" targetRef="e"/><endEvent id="e"/>"#
    ))
}

#[test]
fn an_intermediate_timer_holds_its_token_until_it_fires_for_its_due_time() {
    let mut h = Harness::start(
        model(&format!(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="wait"/>
            <intermediateCatchEvent id="wait">{}</intermediateCatchEvent>
            <sequenceFlow sourceRef="wait" targetRef="e"/><endEvent id="e"/>"#,
            timer("timeDuration", "PT5M")
        )),
        json!({}),
    );
    let set = h.timers();
    let (id, (element, due)) = set.iter().next().unwrap_or_else(|| panic!("no timer set"));
    assert_eq!((element.as_str(), *due), ("wait", 1000 + 5 * MINUTE));
    let rec = &h.inst.open[id];
    assert_eq!(rec.kind, "intermediateCatchEvent");
    assert_eq!(rec.params, Some(json!({"timeDuration": "PT5M", "dueDate": "1970-01-01T00:05:01Z"})));
    let early = h.apply(Command::FireTimer { timer: id.clone(), due: due - 1 });
    assert_eq!(early, Err(EngineError::TimerNotSet(id.clone())), "a firing for another time changes nothing");
    assert_eq!(h.inst.status, InstanceStatus::Running);
    h.advance(*due);
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert!(h.timers().is_empty());
    let rec = h.records().into_iter().find(|r| r.id == *id).unwrap_or_else(|| panic!("no record"));
    assert_eq!((rec.status, rec.create_time, rec.end_time), (TaskStatus::Completed, 1000, Some(*due)));
    let again = h.apply(Command::FireTimer { timer: id.clone(), due: *due });
    assert!(again.is_err(), "a timer fires once");
}

#[test]
fn an_interrupting_boundary_timer_cancels_the_task_and_its_job() {
    let mut h = Harness::start(
        guarded(&timer("timeDuration", "PT1H"), true, r#"<serviceTask id="task" flowstone:stone="slow"/>"#),
        json!({}),
    );
    assert_eq!(h.open_elements(), ["b", "task"]);
    let job = h.open_at("task")[0].clone();
    h.advance(1000 + 60 * MINUTE);
    assert_eq!(h.open_elements(), ["after"], "the flow went on from the boundary event");
    let task = h.records().into_iter().find(|r| r.id == job).unwrap_or_else(|| panic!("no record"));
    assert_eq!(task.status, TaskStatus::Canceled);
    assert!(h.effects.contains(&Effect::DropJob { record_id: job.clone() }), "its job left the queue");
    let boundary = h.records().into_iter().find(|r| r.element == "b").unwrap_or_else(|| panic!("no record"));
    assert_eq!((boundary.kind.as_str(), boundary.status), ("boundaryEvent", TaskStatus::Completed));
    let late = h.apply(Command::Stone { record: job, event: StoneEvent::Begin(Action::Start) });
    assert!(late.is_err(), "the stone's late report finds no task");
}

#[test]
fn a_task_done_before_its_boundary_timer_drops_the_timer() {
    let mut h = Harness::start(guarded(&timer("timeDuration", "PT1H"), true, r#"<userTask id="task"/>"#), json!({}));
    let (id, _) = h.timers().into_iter().next().unwrap_or_else(|| panic!("no timer set"));
    h.complete("task", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert!(h.timers().is_empty());
    assert!(h.effects.contains(&Effect::DropTimer { record_id: id.clone() }));
    let rec = h.records().into_iter().find(|r| r.id == id).unwrap_or_else(|| panic!("no record"));
    assert_eq!(rec.status, TaskStatus::Canceled);
}

#[test]
fn a_non_interrupting_cycle_fires_its_count_and_leaves_the_task_open() {
    let mut h = Harness::start(guarded(&timer("timeCycle", "R3/PT10S"), false, r#"<userTask id="task"/>"#), json!({}));
    h.advance(1000 + 10 * MINUTE);
    assert_eq!(h.open_at("after").len(), 3, "one token per firing");
    assert_eq!(h.open_at("task").len(), 1, "the task goes on");
    assert!(h.timers().is_empty(), "the cycle is over");
    let boundary = h.records().into_iter().find(|r| r.element == "b").unwrap_or_else(|| panic!("no record"));
    assert_eq!((boundary.status, boundary.end_time), (TaskStatus::Completed, Some(1000 + 10 * MINUTE)));
}

#[test]
fn each_firing_of_a_cycle_is_due_one_interval_after_the_last() {
    let mut h = Harness::start(guarded(&timer("timeCycle", "R3/PT10S"), false, r#"<userTask id="task"/>"#), json!({}));
    let mut dues = Vec::new();
    for _ in 0..3 {
        let (timer, (_, due)) = h.timers().into_iter().next().unwrap_or_else(|| panic!("no timer set"));
        dues.push(due);
        h.now = due + 5;
        h.apply(Command::FireTimer { timer, due }).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(dues, [11_000, 21_000, 31_000], "firing late does not move the cycle");
    assert_eq!(h.open_at("after").len(), 3);
}

#[test]
fn a_cycle_ends_at_its_end_date() {
    let time = r#"<timerEventDefinition><timeCycle flowable:endDate="1970-01-01T00:00:26Z">R/PT10S</timeCycle></timerEventDefinition>"#;
    let mut h = Harness::start(guarded(time, false, r#"<userTask id="task"/>"#), json!({}));
    h.advance(10 * MINUTE);
    assert_eq!(h.open_at("after").len(), 2, "at 11 s and 21 s; 31 s is past the end");
    assert!(h.timers().is_empty());
}

#[test]
fn a_cron_cycle_fires_at_the_times_it_names() {
    let mut h =
        Harness::start(guarded(&timer("timeCycle", "0 0/5 * * * ?"), false, r#"<userTask id="task"/>"#), json!({}));
    assert_eq!(h.timers().values().map(|(_, due)| *due).collect::<Vec<_>>(), [5 * MINUTE]);
    h.advance(12 * MINUTE);
    assert_eq!(h.open_at("after").len(), 2, "at 5 and 10 minutes");
    assert_eq!(h.timers().values().map(|(_, due)| *due).collect::<Vec<_>>(), [15 * MINUTE]);
}

#[test]
fn a_boundary_timer_on_a_multi_instance_activity_is_one_timer_and_ends_every_item() {
    let mut h = Harness::start(
        guarded(
            &timer("timeDuration", "PT1M"),
            true,
            r#"<userTask id="task"><multiInstanceLoopCharacteristics isSequential="false">
                <loopCardinality>3</loopCardinality></multiInstanceLoopCharacteristics></userTask>"#,
        ),
        json!({}),
    );
    assert_eq!(h.open_at("task").len(), 3);
    assert_eq!(h.timers().len(), 1, "one timer for the whole activity");
    h.complete("task", json!({}));
    h.advance(1000 + MINUTE);
    assert!(h.open_at("task").is_empty(), "the items still open were canceled");
    assert_eq!(h.open_elements(), ["after"]);
    let canceled = h.records().into_iter().filter(|r| r.element == "task" && r.status == TaskStatus::Canceled);
    assert_eq!(canceled.count(), 2);
}

#[test]
fn a_timer_inside_a_subprocess_goes_when_the_subprocess_ends() {
    let mut h = Harness::start(
        model(&format!(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/>
            <subProcess id="sub">
              <startEvent id="ss"/><sequenceFlow sourceRef="ss" targetRef="fork"/><parallelGateway id="fork"/>
              <sequenceFlow sourceRef="fork" targetRef="wait"/>
              <intermediateCatchEvent id="wait">{}</intermediateCatchEvent>
              <sequenceFlow sourceRef="wait" targetRef="se1"/><endEvent id="se1"/>
              <sequenceFlow sourceRef="fork" targetRef="work"/><userTask id="work"/>
              <sequenceFlow sourceRef="work" targetRef="stop"/>
              <endEvent id="stop"><terminateEventDefinition/></endEvent>
            </subProcess>
            <sequenceFlow sourceRef="sub" targetRef="e"/><endEvent id="e"/>"#,
            timer("timeDuration", "PT1H")
        )),
        json!({}),
    );
    let (id, _) = h.timers().into_iter().next().unwrap_or_else(|| panic!("no timer set"));
    h.complete("work", json!({}));
    assert_eq!(h.inst.status, InstanceStatus::Completed);
    assert!(h.timers().is_empty());
    assert!(h.effects.contains(&Effect::DropTimer { record_id: id }));
}

#[test]
fn an_interrupting_timer_on_a_subprocess_ends_what_runs_in_it() {
    let mut h = Harness::start(
        model(&format!(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="sub"/>
            <subProcess id="sub"><startEvent id="ss"/><sequenceFlow sourceRef="ss" targetRef="inner"/>
              <userTask id="inner"/></subProcess>
            <boundaryEvent id="b" attachedToRef="sub">{}</boundaryEvent>
            <sequenceFlow sourceRef="b" targetRef="after"/><userTask id="after"/>"#,
            timer("timeDate", "1970-01-02T00:00:00Z")
        )),
        json!({}),
    );
    assert_eq!(h.timers().values().map(|(_, due)| *due).collect::<Vec<_>>(), [86_400_000]);
    h.advance(86_400_000);
    assert_eq!(h.open_elements(), ["after"]);
    let inner = h.records().into_iter().find(|r| r.element == "inner").unwrap_or_else(|| panic!("no record"));
    assert_eq!(inner.status, TaskStatus::Canceled);
}

#[test]
fn a_timer_expression_is_read_when_the_timer_is_set_and_a_bad_value_fails_the_instance() {
    let catch = |time: &str| {
        model(&format!(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="wait"/>
            <intermediateCatchEvent id="wait">{time}</intermediateCatchEvent>"#
        ))
    };
    let h = Harness::start(catch(&timer("timeDuration", "${delay}")), json!({"delay": "PT2M"}));
    assert_eq!(h.timers().values().map(|(_, due)| *due).collect::<Vec<_>>(), [1000 + 2 * MINUTE]);
    let h = Harness::start(catch(&timer("timeDuration", "${delay}")), json!({"delay": "soon"}));
    assert_eq!(h.inst.status, InstanceStatus::Failed);
    let failure = h.inst.failure.clone().unwrap_or_default();
    assert!(failure.contains("`wait`") && failure.contains("soon"), "{failure}");
    let h = Harness::start(catch(&timer("timeDuration", "${delay}")), json!({"delay": 5}));
    assert!(h.inst.failure.clone().unwrap_or_default().contains("is 5, not a time"));
    let h = Harness::start(catch(&timer("timeDate", "${at}")), json!({"at": 86_400_000}));
    assert_eq!(h.timers().values().map(|(_, due)| *due).collect::<Vec<_>>(), [86_400_000], "a date in millis");
}

#[test]
fn zero_and_negative_durations_and_past_dates_are_due_at_once() {
    for (kind, text) in [("timeDuration", "PT0S"), ("timeDuration", "-PT5M"), ("timeDate", "1969-01-01T00:00:00Z")] {
        let h = Harness::start(
            model(&format!(
                r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="wait"/>
                <intermediateCatchEvent id="wait">{}</intermediateCatchEvent>"#,
                timer(kind, text)
            )),
            json!({}),
        );
        assert_eq!(h.timers().values().map(|(_, due)| *due).collect::<Vec<_>>(), [1000], "{text}");
    }
}

#[test]
fn a_canceled_instance_drops_its_timers() {
    let mut h = Harness::start(guarded(&timer("timeCycle", "R/PT1M"), false, r#"<userTask id="task"/>"#), json!({}));
    assert_eq!(h.timers().len(), 1);
    h.apply(Command::Cancel).unwrap_or_else(|e| panic!("{e}"));
    assert!(h.timers().is_empty());
}

#[test]
fn timers_survive_the_state_being_stored_and_read_back() {
    let mut h = Harness::start(guarded(&timer("timeCycle", "R2/PT1M"), false, r#"<userTask id="task"/>"#), json!({}));
    h.advance(1000 + MINUTE);
    h.inst = h.read_back();
    h.advance(1000 + 2 * MINUTE);
    assert_eq!(h.open_at("after").len(), 2);
    assert!(h.timers().is_empty());
}

#[test]
fn a_deleted_timer_never_fires_and_a_deleted_catch_timer_leaves_its_token_waiting() {
    let mut h = Harness::start(guarded(&timer("timeDuration", "PT1M"), true, r#"<userTask id="task"/>"#), json!({}));
    let (id, (_, due)) = h.timers().into_iter().next().unwrap_or_else(|| panic!("no timer set"));
    h.apply(Command::DropTimer { timer: id.clone() }).unwrap_or_else(|e| panic!("{e}"));
    assert!(h.timers().is_empty());
    assert_eq!(h.open_elements(), ["task"], "the boundary's record closed, the task goes on");
    assert_eq!(h.apply(Command::FireTimer { timer: id.clone(), due }), Err(EngineError::TimerNotSet(id.clone())));
    assert_eq!(h.apply(Command::DropTimer { timer: id.clone() }), Err(EngineError::TimerNotSet(id)));

    let mut h = Harness::start(
        model(&format!(
            r#"<startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="wait"/>
            <intermediateCatchEvent id="wait">{}</intermediateCatchEvent>"#,
            timer("timeDuration", "PT1M")
        )),
        json!({}),
    );
    let (id, _) = h.timers().into_iter().next().unwrap_or_else(|| panic!("no timer set"));
    h.apply(Command::DropTimer { timer: id }).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((h.inst.status, h.open_elements()), (InstanceStatus::Running, vec!["wait".to_owned()]));
    h.apply(Command::Cancel).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.inst.status, InstanceStatus::Canceled);
}
