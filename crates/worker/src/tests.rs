//! The driver's lifecycle, seen through a reporter that records.

use super::*;
use serde_json::json;
use std::sync::Mutex;

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
    refuse_after: Option<usize>,
}

impl Recorder {
    fn seen(&self) -> Vec<String> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Progress for Recorder {
    async fn progress(&self, percent: u8) {
        if let Ok(mut e) = self.events.lock() {
            e.push(format!("progress {percent}"));
        }
    }
}

#[async_trait::async_trait]
impl Reporter for Recorder {
    async fn report(&self, event: StoneEvent) -> Result<(), Refused> {
        let mut events = self.events.lock().map_err(|_| Refused("poisoned".into()))?;
        if self.refuse_after.is_some_and(|n| events.len() >= n) {
            return Err(Refused("canceled".into()));
        }
        events.push(match event {
            StoneEvent::Begin(a) => format!("{}.begin", a.name()),
            StoneEvent::Success { action, outputs, monitor } => {
                format!(
                    "{}.success {}{}",
                    action.name(),
                    Value::Object(outputs),
                    if monitor { " +monitor" } else { "" }
                )
            }
            StoneEvent::Failed { action, reason } => format!("{}.failed {reason}", action.name()),
            StoneEvent::Passed => "mock.passed".into(),
            StoneEvent::Progress(p) => format!("progress {p}"),
            other => format!("{other:?}"),
        });
        Ok(())
    }
}

/// Starts with `{"n": 1}`, monitors in two steps adding `{"m": 2}`.
struct Watched;

#[async_trait::async_trait]
impl Stone for Watched {
    fn name(&self) -> &str {
        "Watched"
    }
    fn monitors(&self) -> bool {
        true
    }
    async fn start(&self, work: &Work) -> StoneResult {
        injected_failure(&work.params, Action::Start)?;
        Ok(Map::from_iter([("n".to_owned(), json!(1))]))
    }
    async fn monitor(&self, work: &Work, progress: &dyn Progress) -> StoneResult {
        assert_eq!(work.outputs.get("n"), Some(&json!(1)), "monitor sees the start's outputs");
        progress.progress(50).await;
        injected_failure(&work.params, Action::Monitor)?;
        Ok(Map::from_iter([("m".to_owned(), json!(2))]))
    }
}

fn work(params: Value) -> Work {
    Work { params, outputs: Map::new(), queued_at: None }
}

#[tokio::test]
async fn a_monitoring_start_reports_start_then_monitor_in_one_job() {
    let r = Recorder::default();
    assert_eq!(drive(&Watched, Action::Start, work(json!({})), false, &r).await, Ok(()));
    assert_eq!(
        r.seen(),
        [
            "start.begin",
            r#"start.success {"n":1} +monitor"#,
            "monitor.begin",
            "progress 50",
            r#"monitor.success {"m":2}"#
        ]
    );
}

#[tokio::test]
async fn pause_node_gives_its_job_back_to_wait_for_a_callback() {
    let r = Recorder::default();
    assert_eq!(drive(&PauseNodeStone, Action::Start, work(json!({})), false, &r).await, Ok(()));
    assert_eq!(r.seen(), ["start.begin", "AwaitCallback"]);
}

#[tokio::test]
async fn failures_are_reported_with_their_reason_and_end_the_job() {
    let r = Recorder::default();
    let _ = drive(&Watched, Action::Start, work(json!({"fail": {"monitor": "lost"}})), false, &r).await;
    assert_eq!(r.seen().last().map(String::as_str), Some("monitor.failed lost"));
    let r = Recorder::default();
    let _ = drive(&Watched, Action::Start, work(json!({"fail": true})), false, &r).await;
    assert_eq!(r.seen(), ["start.begin", "start.failed start failure injected by the `fail` param"]);
}

#[tokio::test]
async fn a_job_begun_when_it_was_handed_out_reports_no_begin() {
    let r = Recorder::default();
    assert_eq!(drive(&Watched, Action::Rollback, work(json!({})), true, &r).await, Ok(()));
    assert_eq!(r.seen(), ["rollback.success {}"]);
}

#[tokio::test]
async fn a_refused_report_stops_the_job() {
    let r = Recorder { refuse_after: Some(2), ..Recorder::default() };
    assert!(drive(&Watched, Action::Start, work(json!({})), false, &r).await.is_err());
    assert_eq!(r.seen().len(), 2, "nothing runs after the refusal");
}

#[tokio::test]
async fn default_actions_succeed_and_mock_passes() {
    let r = Recorder::default();
    for action in [Action::Rollback, Action::Cancel, Action::Delete, Action::Mock] {
        assert_eq!(drive(&Watched, action, work(json!({})), false, &r).await, Ok(()));
    }
    assert_eq!(
        r.seen(),
        [
            "rollback.begin",
            "rollback.success {}",
            "cancel.begin",
            "cancel.success {}",
            "delete.begin",
            "delete.success {}",
            "mock.begin",
            "mock.passed"
        ]
    );
}

#[test]
fn injected_failures_name_their_action() {
    assert!(injected_failure(&json!({"fail": "disk full"}), Action::Start).is_err());
    assert!(injected_failure(&json!({"fail": "disk full"}), Action::Rollback).is_ok());
    assert_eq!(injected_failure(&json!({"fail": {"delete": "busy"}}), Action::Delete), Err("busy".into()));
    assert!(injected_failure(&json!({"fail": false}), Action::Start).is_ok());
}

#[test]
fn a_jobs_trace_is_its_processs_and_its_span_its_own() {
    use crate::protocol::{trace_id, traceparent};
    let process = "01a245d1-af7c-7260-b119-bc971bedd94d";
    assert_eq!(trace_id(process), "01a245d1af7c7260b119bc971bedd94d");
    let a = traceparent(process, "01a245d1-af7c-7261-8000-000000000001");
    let b = traceparent(process, "01a245d1-af7c-7261-8000-000000000002");
    assert!(a.starts_with("00-01a245d1af7c7260b119bc971bedd94d-") && a.ends_with("-01"), "{a}");
    assert_ne!(a, b, "each job its own span");
    // Ids that are not UUIDs still give 32 hex digits, the same each time.
    let other = trace_id("bk-42");
    assert!(other.len() == 32 && other.chars().all(|c| c.is_ascii_hexdigit()), "{other}");
    assert_eq!(other, trace_id("bk-42"));
    let odd = traceparent("bk-42", "r");
    assert_eq!(odd.split('-').map(str::len).collect::<Vec<_>>(), [2, 32, 16, 2], "{odd}");
}
