//! The worker protocol through the real server, with no stone in-process: long-poll
//! fetch-and-lock, lifecycle reports, progress, heartbeats, lock expiry, retries and
//! refusals.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A one-task model on stone `Probe`.
const PROBE: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowstone="http://flowstone.dev/bpmn">
  <process id="probe"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/>
  <serviceTask id="t" name="probe" flowstone:stone="Probe" flowstone:namespace="p"/><sequenceFlow sourceRef="t" targetRef="e"/>
  <endEvent id="e"/></process></definitions>"#;

fn fetch_body(worker: &str, wait_ms: u64, lock_ms: u64) -> Value {
    json!({"workerId": worker, "topics": ["Probe"], "maxJobs": 5, "lockDuration": lock_ms, "waitTime": wait_ms})
}

async fn fetch(s: &TestServer, worker: &str, wait_ms: u64, lock_ms: u64) -> Vec<Value> {
    let (status, jobs) = s.post("/worker/fetch", fetch_body(worker, wait_ms, lock_ms)).await;
    assert_eq!(status, StatusCode::OK, "{jobs}");
    jobs.as_array().cloned().unwrap_or_default()
}

async fn event(s: &TestServer, job: &str, worker: &str, status: &str, extra: Value) -> (StatusCode, Value) {
    let mut body = json!({"workerId": worker, "status": status});
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    s.post(&format!("/worker/jobs/{job}/event"), body).await
}

/// The id of the first job a fetch of worker `w1` gets, locked for 30 s.
async fn first_job(s: &TestServer) -> String {
    fetch(s, "w1", 0, 30_000).await[0]["id"].as_str().unwrap_or_default().to_owned()
}

async fn started(s: &TestServer) -> String {
    s.deploy(PROBE).await;
    let p = s.start_process("probe", json!({"p": {"size": 3}})).await;
    p["processInstanceId"].as_str().unwrap_or_default().to_owned()
}

/// A fetch of worker `w1` waiting up to 20 s on `s`: the jobs it got, and how long it waited.
fn waiting_fetch(s: &TestServer) -> tokio::task::JoinHandle<(Value, Duration)> {
    let (client, base) = (s.client.clone(), s.base.clone());
    tokio::spawn(async move {
        let began = Instant::now();
        let resp = client.post(format!("{base}/worker/fetch")).json(&fetch_body("w1", 20_000, 30_000)).send().await;
        let jobs: Value = match resp {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(e) => panic!("{e}"),
        };
        (jobs, began.elapsed())
    })
}

async fn a_waiting_fetch_gets_a_job_as_soon_as_it_is_committed(s: TestServer) {
    s.deploy(PROBE).await;
    let waiting = waiting_fetch(&s);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = s.start_process("probe", json!({"p": {"size": 3}})).await;
    let (jobs, waited) = waiting.await.unwrap_or_else(|e| panic!("{e}"));
    assert!(waited < Duration::from_secs(10), "answered at the commit, long before the wait ended ({waited:?})");
    let job = &jobs[0];
    assert_eq!(job["processInstanceId"], p["processInstanceId"]);
    assert_eq!((job["stone"].as_str(), job["action"].as_str()), (Some("Probe"), Some("start")));
    assert_eq!(job["params"]["size"], 3);
    assert!(job["lockedUntil"].as_i64().is_some_and(|t| t > 0));
    let queued = job["queuedAt"].as_i64().unwrap_or_default();
    let age = jiff::Timestamp::now().as_millisecond() - queued;
    assert!((0..60_000).contains(&age), "the job says when it was queued (a wait counts from then): {job}");
    // Its trace context: the process's trace (its id's 32 hex digits), a span of its own.
    let process: String = p["processInstanceId"].as_str().unwrap_or_default().replace('-', "");
    let traceparent = job["traceparent"].as_str().unwrap_or_else(|| panic!("no traceparent in {job}"));
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!((parts.len(), parts[0], parts[1], parts[3]), (4, "00", process.as_str(), "01"), "{traceparent}");
    assert!(parts[2].len() == 16 && parts[2] != "0000000000000000", "{traceparent}");
}

async fn an_empty_fetch_answers_when_the_wait_ends(s: TestServer) {
    let began = Instant::now();
    assert!(fetch(&s, "w1", 300, 1000).await.is_empty());
    assert!(began.elapsed() >= Duration::from_millis(300));
}

async fn reports_need_the_lock_and_repeats_are_harmless(s: TestServer) {
    let id = started(&s).await;
    let job = first_job(&s).await;
    assert!(fetch(&s, "w2", 0, 30_000).await.is_empty(), "a locked job is not handed out twice");
    let (status, body) = event(&s, &job, "w2", "start.begin", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("locked by worker w1"), "{body}");
    for _ in 0..2 {
        assert_eq!(event(&s, &job, "w1", "start.begin", json!({})).await.0, StatusCode::NO_CONTENT);
    }
    let (status, body) = event(&s, &job, "w1", "rollback.begin", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let done = json!({"outputs": {"made": "x"}, "monitor": true});
    assert_eq!(event(&s, &job, "w1", "start.success", done).await.0, StatusCode::NO_CONTENT);
    let (status, _) = s.post(&format!("/worker/jobs/{job}/progress"), json!({"workerId": "w1", "progress": 60})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let task = &s.tasks(&id).await[0];
    assert_eq!((task["status"].as_str(), task["progress"].as_u64()), (Some("monitor.begin"), Some(60)));
    let finished = json!({"outputs": {"state": "ok"}});
    for _ in 0..2 {
        let (status, body) = event(&s, &job, "w1", "monitor.success", finished.clone()).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "the same last event again is harmless: {body}");
    }
    let (status, _) = event(&s, &job, "w1", "monitor.failed", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "a closed job takes no other event");
    let p = s.process(&id).await;
    assert_eq!(p["processStatus"], "success");
    let native: Value = serde_json::from_str(p["nativeOutputs"].as_str().unwrap_or_default()).unwrap_or_default();
    assert_eq!(native["p"], json!({"size": 3, "made": "x", "state": "ok"}), "outputs land under the namespace");
}

/// Heartbeats every 500 ms keep a 1.5 s lock for 2 s: a second past its first end, with a
/// second's room for a slow commit on a loaded machine (a 400 ms lock beaten every 200 ms
/// once lost its lock under CI's load).
async fn an_expired_lock_is_handed_out_again_and_heartbeats_keep_it(s: TestServer) {
    started(&s).await;
    let job = fetch(&s, "w1", 0, 1_500).await[0]["id"].as_str().unwrap_or_default().to_owned();
    let beat = |worker: &str| json!({"workerId": worker, "lockDuration": 1_500});
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (status, body) = s.post(&format!("/worker/jobs/{job}/heartbeat"), beat("w1")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(fetch(&s, "w2", 0, 400).await.is_empty(), "a heartbeat keeps the lock");
    }
    let again = fetch(&s, "w2", 5_000, 30_000).await;
    assert_eq!(again[0]["id"], json!(job), "handed out again once the lock ended");
    let (status, _) = s.post(&format!("/worker/jobs/{job}/heartbeat"), beat("w1")).await;
    assert_eq!(status, StatusCode::CONFLICT, "the old holder lost it");
}

async fn a_failure_with_retries_waits_its_back_off_then_fails_the_task_and_rolls_back(s: TestServer) {
    let id = started(&s).await;
    let job = first_job(&s).await;
    assert_eq!(event(&s, &job, "w1", "start.begin", json!({})).await.0, StatusCode::NO_CONTENT);
    let retry = json!({"workerId": "w1", "reason": "flaky", "retries": 1, "retryBackoff": 500});
    assert_eq!(s.post(&format!("/worker/jobs/{job}/fail"), retry).await.0, StatusCode::NO_CONTENT);
    assert!(fetch(&s, "w2", 0, 30_000).await.is_empty(), "the back-off holds");
    let again = fetch(&s, "w2", 5_000, 30_000).await;
    assert_eq!((again[0]["id"].as_str(), again[0]["retries"].as_i64()), (Some(job.as_str()), Some(1)));
    let last = json!({"workerId": "w2", "reason": "still flaky"});
    assert_eq!(s.post(&format!("/worker/jobs/{job}/fail"), last).await.0, StatusCode::NO_CONTENT);
    let p = s.process(&id).await;
    assert_eq!(p["processStatus"], "rollingBack");
    let task = &s.tasks(&id).await[0];
    assert_eq!((task["status"].as_str(), task["reason"].as_str()), (Some("start.failed"), Some("still flaky")));
    let rollback = fetch(&s, "w1", 0, 30_000).await;
    assert_eq!(rollback[0]["action"], "rollback");
    assert_eq!(rollback[0]["processInstanceId"], p["rollbackProcessInstanceId"]);
}

async fn malformed_protocol_requests_are_400_naming_the_fault(s: TestServer) {
    let cases = [
        ("/worker/fetch", json!({"workerId": "", "topics": ["Probe"]}), "workerId"),
        ("/worker/fetch", json!({"workerId": "w", "topics": []}), "topics"),
        ("/worker/fetch", json!({"workerId": "w", "topics": ["Probe"], "maxJobs": 0}), "maxJobs"),
        ("/worker/fetch", json!({"workerId": "w", "topics": ["Probe"], "waitTime": 600_000}), "waitTime"),
        ("/worker/fetch", json!({"workerId": "w", "topic": ["Probe"]}), "unknown field"),
    ];
    for (path, body, named) in cases {
        let (status, answer) = s.post(path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["message"].as_str().unwrap_or_default().contains(named), "{named}: {answer}");
    }
    started(&s).await;
    let job = first_job(&s).await;
    let (status, answer) = event(&s, &job, "w1", "start.done", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["message"].as_str().unwrap_or_default().contains("start.done"), "{answer}");
    let (status, _) = s.post(&format!("/worker/jobs/{job}/progress"), json!({"workerId": "w1", "progress": 101})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = event(&s, "no-such-job", "w1", "start.begin", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A worker's report and heartbeat sent as its lock ends, while another worker fetches, over
/// and over: either the report lands while the lock is the first worker's (and the second
/// gets nothing), or the second gets the job and the first is refused — never both, whatever
/// moment the lock passes (the report is checked again where it is applied and committed).
async fn a_report_racing_the_end_of_its_lock_lands_only_while_the_lock_is_held(s: TestServer) {
    s.deploy(PROBE).await;
    let (mut landed, mut taken) = (0, 0);
    for round in 0..12 {
        s.start_process("probe", json!({"p": {"size": round}})).await;
        let job = fetch(&s, "w1", 3_000, 100).await[0]["id"].as_str().unwrap_or_default().to_owned();
        tokio::time::sleep(Duration::from_millis(85 + round % 4 * 5)).await;
        let done = json!({"outputs": {"made": round}});
        let beat = json!({"workerId": "w1", "lockDuration": 100});
        let beat_path = format!("/worker/jobs/{job}/heartbeat");
        let (report, heartbeat, other) = tokio::join!(
            event(&s, &job, "w1", "start.success", done),
            s.post(&beat_path, beat),
            fetch(&s, "w2", 400, 30_000)
        );
        let got = other.iter().any(|j| j["id"] == json!(job));
        match (report.0, got) {
            (StatusCode::NO_CONTENT, false) => landed += 1,
            (StatusCode::CONFLICT, true) => {
                taken += 1;
                let (status, body) = event(&s, &job, "w2", "start.success", json!({})).await;
                assert_eq!(status, StatusCode::NO_CONTENT, "the new holder reports: {body}");
            }
            other => panic!("round {round}: report {report:?}, heartbeat {heartbeat:?}, fetched {got}: {other:?}"),
        }
        // A heartbeat kept a lock only while nobody else had taken it.
        assert!(!(heartbeat.0 == StatusCode::OK && got && report.0 != StatusCode::CONFLICT), "{heartbeat:?}");
    }
    assert_eq!(landed + taken, 12);
}

/// The runtime trusts the API's check of a report's lock, and the commit checks it again: a
/// report of a worker that does not hold the lock (as when it passed to another worker after
/// the check) is refused, and the holder's report still lands.
async fn a_report_whose_lock_is_not_held_at_its_commit_is_refused(s: TestServer) {
    let id = started(&s).await;
    let job = first_job(&s).await;
    let success = || flowstone_engine::StoneEvent::Success {
        action: flowstone_engine::Action::Start,
        outputs: serde_json::Map::new(),
        monitor: false,
    };
    let command = flowstone_engine::Command::Stone { record: job.clone(), event: success() };
    let refused = s.runtime().apply_held(&id, command, "w2").await;
    assert!(matches!(refused, Err(flowstone_server::RuntimeError::InUse(_))), "{refused:?}");
    assert_eq!(s.tasks(&id).await[0]["status"], "produce.success", "nothing of the refused report landed");
    assert_eq!(event(&s, &job, "w1", "start.success", json!({})).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.settle(&id).await["processStatus"], "success");
}

backend_tests!(server = TestServer::start_for_workers;
    a_report_whose_lock_is_not_held_at_its_commit_is_refused,
    a_report_racing_the_end_of_its_lock_lands_only_while_the_lock_is_held,
    a_waiting_fetch_gets_a_job_as_soon_as_it_is_committed,
    an_empty_fetch_answers_when_the_wait_ends,
    reports_need_the_lock_and_repeats_are_harmless,
    an_expired_lock_is_handed_out_again_and_heartbeats_keep_it,
    a_failure_with_retries_waits_its_back_off_then_fails_the_task_and_rolls_back,
    malformed_protocol_requests_are_400_naming_the_fault
);

/// Two servers on one PostgreSQL: a worker waiting on one gets a job the other commits, at
/// once (the commit's NOTIFY wakes it), not when its wait ends.
#[tokio::test]
async fn a_worker_waiting_on_one_server_gets_a_job_committed_by_another() {
    let Some(url) = common::postgres_database().await else { return };
    let committing = TestServer::start_on(common::must(tempfile::tempdir()), Some(url.clone())).await;
    let waiting = TestServer::start_on(common::must(tempfile::tempdir()), Some(url)).await;
    committing.deploy(PROBE).await;
    let fetch = waiting_fetch(&waiting);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p = committing.start_process("probe", json!({})).await;
    let (jobs, waited) = fetch.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(jobs[0]["processInstanceId"], p["processInstanceId"]);
    assert!(waited < Duration::from_secs(10), "woken by the other server's commit ({waited:?})");
}

/// Handing a job out is its `begin`: applied at once, and written with the job's outcome when
/// that comes within the begin's wait, or alone once the wait is over.
mod begins {
    use super::*;
    use flowstone_server::RuntimeOptions;

    async fn server(backend: common::Backend, wait: Duration) -> Option<TestServer> {
        let options =
            |_: &std::path::Path| RuntimeOptions { stones: Vec::new(), begin_wait: wait, ..RuntimeOptions::default() };
        TestServer::start_configured(backend, options).await
    }

    /// How many times the instance was written.
    async fn version(s: &TestServer, id: &str) -> i64 {
        common::must(s.runtime().store().instance(id).await).map_or(0, |row| row.version)
    }

    async fn handed_out(s: &TestServer) -> (String, String) {
        let id = started(s).await;
        assert_eq!(version(s, &id).await, 1, "written once as it started");
        (id, first_job(s).await)
    }

    async fn a_job_reported_within_its_begins_wait_writes_its_instance_once(backend: common::Backend) {
        let Some(s) = server(backend, Duration::from_secs(600)).await else { return };
        let (id, job) = handed_out(&s).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(version(&s, &id).await, 1, "the begin waits for the outcome");
        assert_eq!(event(&s, &job, "w1", "start.success", json!({})).await.0, StatusCode::NO_CONTENT);
        assert_eq!(s.settle(&id).await["processStatus"], "success");
        assert_eq!(version(&s, &id).await, 2, "begin and outcome in one write");
        assert_eq!(s.tasks(&id).await[0]["status"], "start.success");
    }

    async fn a_begin_whose_outcome_does_not_come_is_written_once_its_wait_is_over(backend: common::Backend) {
        let Some(s) = server(backend, Duration::from_millis(50)).await else { return };
        let (id, job) = handed_out(&s).await;
        let mut status = Value::Null;
        for _ in 0..200 {
            status = s.tasks(&id).await[0]["status"].clone();
            if status == "start.begin" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status, "start.begin", "written alone while the worker works");
        assert_eq!(version(&s, &id).await, 2);
        assert_eq!(event(&s, &job, "w1", "start.success", json!({})).await.0, StatusCode::NO_CONTENT);
        assert_eq!(s.settle(&id).await["processStatus"], "success");
        assert_eq!(version(&s, &id).await, 3);
    }

    crate::backend_tests!(backend;
        a_job_reported_within_its_begins_wait_writes_its_instance_once,
        a_begin_whose_outcome_does_not_come_is_written_once_its_wait_is_over
    );
}
