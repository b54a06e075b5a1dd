//! Flowable's external worker REST API (`/flowable-rest/external-job-api/`) through the real
//! server: acquire, complete with typed variables, BPMN errors caught by an error boundary
//! event, failures with retries, and Flowable's error answers.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

const API: &str = "/flowable-rest/external-job-api";

/// An external-worker task on topic `orders`; error `E1` goes to `onError`, success to `after`.
const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn">
  <error id="orderError" errorCode="E1"/>
  <process id="orders"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="work"/>
  <serviceTask id="work" name="Work" flowable:type="external-worker" flowable:topic="orders"/>
  <boundaryEvent id="caught" attachedToRef="work"><errorEventDefinition errorRef="orderError"/></boundaryEvent>
  <sequenceFlow sourceRef="caught" targetRef="onError"/><userTask id="onError"/>
  <sequenceFlow sourceRef="work" targetRef="after"/><userTask id="after"/></process></definitions>"#;

async fn started(s: &TestServer) -> String {
    s.deploy(MODEL).await;
    let p = s.start_process("orders", json!({"amount": 42, "customer": "kermit"})).await;
    p["processInstanceId"].as_str().unwrap_or_default().to_owned()
}

async fn acquire(s: &TestServer, worker: &str) -> Vec<Value> {
    let body = json!({"topic": "orders", "lockDuration": "PT10M", "numberOfTasks": 5, "workerId": worker});
    let (status, jobs) = s.post(&format!("{API}/acquire/jobs"), body).await;
    assert_eq!(status, StatusCode::OK, "{jobs}");
    jobs.as_array().cloned().unwrap_or_default()
}

/// Whether `time` is `2026-12-03T17:01:27.897Z`: what the Python client parses.
fn written_as_flowables_job_api_does(time: &str) -> bool {
    let b = time.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    b.len() == 24
        && [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (23, b'Z')]
            .iter()
            .all(|(i, c)| b[*i] == *c)
        && [0..4, 5..7, 8..10, 11..13, 14..16, 17..19, 20..23].into_iter().all(digits)
}

async fn null_variables_complete_and_raise_errors_as_none_do(s: TestServer) {
    let id = started(&s).await;
    let job = acquire(&s, "w1").await[0]["id"].as_str().unwrap_or_default().to_owned();
    let done = json!({"workerId": "w1", "variables": null});
    let (status, body) = s.post(&format!("{API}/acquire/jobs/{job}/complete"), done).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(active(&s, &id).await, ["after"]);

    let id = started(&s).await;
    let job = acquire(&s, "w1").await[0]["id"].as_str().unwrap_or_default().to_owned();
    let error = json!({"workerId": "w1", "errorCode": "E1", "variables": null});
    let (status, body) = s.post(&format!("{API}/acquire/jobs/{job}/bpmnError"), error).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(active(&s, &id).await, ["onError"]);
}

async fn metrics_text(s: &TestServer) -> String {
    common::must(common::must(s.client.get(format!("{}/metrics", s.base)).send().await).text().await)
}

async fn jobs_waiting_for_a_worker_are_counted_per_stone_with_the_oldest_age(s: TestServer) {
    started(&s).await;
    started(&s).await;
    let text = metrics_text(&s).await;
    assert!(text.lines().any(|l| l == r#"flowstone_jobs_waiting{stone="orders",action="start"} 2"#), "{text}");
    let age = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"flowstone_jobs_oldest_waiting_seconds{stone="orders",action="start"} "#));
    assert!(age.and_then(|a| a.parse::<f64>().ok()).is_some_and(|a| a >= 0.0), "{text}");
    let jobs = acquire(&s, "w1").await;
    assert_eq!(jobs.len(), 2);
    let text = metrics_text(&s).await;
    assert!(!text.contains(r#"flowstone_jobs_waiting{stone="orders""#), "held jobs are not waiting: {text}");
    assert!(text.lines().any(|l| l == r#"flowstone_workers_polling{stone="orders"} 1"#), "{text}");
    let has = |text: &str, line: &str| text.lines().any(|l| l == line);
    assert!(has(&text, r#"flowstone_jobs_handed_out_total{stone="orders",action="start"} 2"#), "{text}");
    assert!(has(&text, r#"flowstone_job_handout_seconds_count{stone="orders"} 2"#), "{text}");
    let job = jobs[0]["id"].as_str().unwrap_or_default();
    let done = json!({"workerId": "w1", "variables": []});
    let (status, body) = s.post(&format!("{API}/acquire/jobs/{job}/complete"), done).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let text = metrics_text(&s).await;
    assert!(
        has(&text, r#"flowstone_jobs_finished_total{stone="orders",action="start",outcome="success"} 1"#),
        "{text}"
    );
    assert!(has(&text, r#"flowstone_job_lifetime_seconds_count{stone="orders"} 1"#), "{text}");
}

async fn active(s: &TestServer, id: &str) -> Vec<String> {
    s.tasks(id)
        .await
        .into_iter()
        .filter(|t| t["status"] == "active")
        .map(|t| t["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn acquired_jobs_carry_flowables_fields_and_complete_sets_variables(s: TestServer) {
    let id = started(&s).await;
    let jobs = acquire(&s, "w1").await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!((job["processInstanceId"].as_str(), job["elementId"].as_str()), (Some(id.as_str()), Some("work")));
    assert_eq!((job["elementName"].as_str(), job["scopeType"].as_str()), (Some("Work"), Some("bpmn")));
    assert_eq!((job["lockOwner"].as_str(), job["retries"].as_i64()), (Some("w1"), Some(3)));
    assert!(
        job["url"].as_str().is_some_and(|u| u.starts_with("http://") && u.ends_with(job["id"].as_str().unwrap_or("?")))
    );
    for field in ["lockExpirationTime", "createTime"] {
        let time = job[field].as_str().unwrap_or_default();
        assert!(written_as_flowables_job_api_does(time), "{field} `{time}` reads as `%Y-%m-%dT%H:%M:%S.%fZ`");
    }
    let vars = job["variables"].as_array().cloned().unwrap_or_default();
    assert!(vars.contains(&json!({"name": "amount", "type": "integer", "value": 42})), "{vars:?}");
    assert!(acquire(&s, "w2").await.is_empty(), "a locked job is not acquired twice");

    let job_id = job["id"].as_str().unwrap_or_default();
    let done = json!({"workerId": "w1", "variables": [
        {"name": "approved", "type": "boolean", "value": true},
        {"name": "total", "type": "long", "value": "1200"},
        {"name": "order", "type": "json", "value": {"id": 7}}
    ]});
    let (status, body) = s.post(&format!("{API}/acquire/jobs/{job_id}/complete"), done).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(active(&s, &id).await, ["after"]);
    let task = s.tasks(&id).await.into_iter().find(|t| t["name"] == "Work").unwrap_or_default();
    assert_eq!(task["status"], "start.success");
    let after = s.tasks(&id).await.into_iter().find(|t| t["name"] == "after").unwrap_or_default();
    let (status, _) = s.put(&format!("/task/{}/complete", after["id"].as_str().unwrap_or_default()), None).await;
    assert_eq!(status, StatusCode::OK);
    let p = s.process(&id).await;
    let native: Value = serde_json::from_str(p["nativeOutputs"].as_str().unwrap_or_default()).unwrap_or_default();
    assert_eq!((native["approved"].clone(), native["total"].clone()), (json!(true), json!(1200)));
    assert_eq!(native["order"], json!({"id": 7}), "variables land in the process, not under a namespace");
}

async fn a_bpmn_error_is_caught_by_the_boundary_event(s: TestServer) {
    let id = started(&s).await;
    let job = acquire(&s, "w1").await[0]["id"].as_str().unwrap_or_default().to_owned();
    let error = json!({"workerId": "w1", "errorCode": "E1", "variables": [{"name": "cause", "type": "string", "value": "stock"}]});
    let (status, body) = s.post(&format!("{API}/acquire/jobs/{job}/bpmnError"), error).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(active(&s, &id).await, ["onError"]);
    let task = s.tasks(&id).await.into_iter().find(|t| t["name"] == "Work").unwrap_or_default();
    assert_eq!((task["status"].as_str(), task["reason"].as_str()), (Some("start.failed"), Some("BPMN error `E1`")));
}

async fn failures_count_retries_down_then_fail_the_process(s: TestServer) {
    let id = started(&s).await;
    let job = acquire(&s, "w1").await[0]["id"].as_str().unwrap_or_default().to_owned();
    let fail = json!({"workerId": "w1", "errorMessage": "db down", "retryTimeout": "PT0S"});
    assert_eq!(s.post(&format!("{API}/acquire/jobs/{job}/fail"), fail).await.0, StatusCode::NO_CONTENT);
    let again = acquire(&s, "w2").await;
    assert_eq!((again[0]["id"].as_str(), again[0]["retries"].as_i64()), (Some(job.as_str()), Some(2)));
    let last = json!({"workerId": "w2", "errorMessage": "db down", "errorDetails": "for good", "retries": 0});
    assert_eq!(s.post(&format!("{API}/acquire/jobs/{job}/fail"), last).await.0, StatusCode::NO_CONTENT);
    let p = s.process(&id).await;
    assert_eq!(p["processStatus"], "failed", "a Flowable task is not compensated unless its model asks");
    assert_eq!(p["rollbackProcessInstanceId"], Value::Null);
    assert!(p["reason"].as_str().unwrap_or_default().contains("db down: for good"), "{p}");
    assert!(acquire(&s, "w3").await.is_empty(), "no worker of the topic is handed anything more");
}

/// `ship` undoes its work when asked (`flowstone:compensate`), `charge` does not.
const COMPENSATED: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn" xmlns:flowstone="http://flowstone.dev/bpmn">
  <process id="shipping"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="ship"/>
  <serviceTask id="ship" name="Ship" flowable:type="external-worker" flowable:topic="ship" flowstone:compensate="true"/>
  <sequenceFlow sourceRef="ship" targetRef="charge"/>
  <serviceTask id="charge" name="Charge" flowable:type="external-worker" flowable:topic="charge"/>
  <sequenceFlow sourceRef="charge" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

async fn take(s: &TestServer, topic: &str) -> Vec<Value> {
    let body = json!({"topic": topic, "lockDuration": "PT10M", "numberOfTasks": 5, "workerId": "w"});
    let (status, jobs) = s.post(&format!("{API}/acquire/jobs"), body).await;
    assert_eq!(status, StatusCode::OK, "{jobs}");
    jobs.as_array().cloned().unwrap_or_default()
}

async fn a_compensating_job_reaches_only_a_worker_subscribed_to_it(s: TestServer) {
    s.deploy(COMPENSATED).await;
    let id = s.start_process("shipping", json!({"parcel": "p1"})).await["id"].as_str().unwrap_or_default().to_owned();
    let ship = take(&s, "ship").await[0]["id"].as_str().unwrap_or_default().to_owned();
    let shipped = json!({"workerId": "w", "variables": [{"name": "tracking", "type": "string", "value": "T-9"}]});
    assert_eq!(s.post(&format!("{API}/acquire/jobs/{ship}/complete"), shipped).await.0, StatusCode::NO_CONTENT);
    let charge = take(&s, "charge").await[0]["id"].as_str().unwrap_or_default().to_owned();
    let failed = json!({"workerId": "w", "errorMessage": "card declined", "retries": 0});
    assert_eq!(s.post(&format!("{API}/acquire/jobs/{charge}/fail"), failed).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.process(&id).await["processStatus"], "rollingBack");

    for topic in ["ship", "charge", "charge:rollback", "ship:cancel"] {
        assert!(take(&s, topic).await.is_empty(), "{topic} hands out no compensating job");
    }
    let undo = take(&s, "ship:rollback").await;
    assert_eq!(undo.len(), 1, "{undo:?}");
    assert_eq!(undo[0]["elementId"], "ship");
    let vars: Vec<(String, Value)> = undo[0]["variables"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| (v["name"].as_str().unwrap_or_default().to_owned(), v["value"].clone()))
        .collect();
    assert!(vars.contains(&("tracking".into(), json!("T-9"))), "what the start put out: {vars:?}");
    assert!(vars.contains(&("parcel".into(), json!("p1"))), "what it saw: {vars:?}");
    let job = undo[0]["id"].as_str().unwrap_or_default();
    assert_eq!(
        s.post(&format!("{API}/acquire/jobs/{job}/complete"), json!({"workerId": "w"})).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.process(&id).await["processStatus"], "rolledBack");

    let (status, history) = s.get(&format!("/flowable-rest/service/history/historic-process-instances/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert_eq!(history["deleteReason"], "task charge failed: card declined", "the failure that stopped it");
    assert_eq!(history["endActivityId"], "charge", "the element that failed it");
    let (_, all) =
        s.get("/flowable-rest/service/history/historic-process-instances?processDefinitionKey=shipping").await;
    assert_eq!(all["total"], 2, "the rollback is in the history too: {all}");
    let rollback = all["data"].as_array().into_iter().flatten().find(|h| h["id"] != id.as_str());
    assert_eq!(rollback.map(|h| h["superProcessInstanceId"].clone()), Some(json!(id)), "{all}");
}

async fn jobs_are_listed_and_read_as_flowable_describes_them(s: TestServer) {
    let id = started(&s).await;
    let (status, list) = s.get(&format!("{API}/jobs?processInstanceId={id}")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!((list["total"].as_u64(), list["start"].as_u64(), list["size"].as_u64()), (Some(1), Some(0), Some(1)));
    let job = list["data"][0].clone();
    assert_eq!((job["elementId"].as_str(), job["lockOwner"].as_str()), (Some("work"), None));
    let (_, unlocked) = s.get(&format!("{API}/jobs?unlocked=true")).await;
    assert_eq!(unlocked["total"], 1);
    acquire(&s, "w1").await;
    let (_, locked) = s.get(&format!("{API}/jobs?locked=true&lockOwner=w1")).await;
    assert_eq!(locked["total"], 1);
    let (_, unlocked) = s.get(&format!("{API}/jobs?unlocked=true")).await;
    assert_eq!(unlocked["total"], 0);
    let (status, one) = s.get(&format!("{API}/jobs/{}", job["id"].as_str().unwrap_or_default())).await;
    assert_eq!((status, one["lockOwner"].as_str()), (StatusCode::OK, Some("w1")));
    let (status, missing) = s.get(&format!("{API}/jobs/nope")).await;
    assert_eq!((status, missing["message"].as_str()), (StatusCode::NOT_FOUND, Some("Not found")));
    let (status, _) = s.get(&format!("{API}/jobs?locked=true&unlocked=true")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, answer) = s.get(&format!("{API}/jobs?locked=maybe")).await;
    assert_eq!((status, answer["message"].as_str()), (StatusCode::BAD_REQUEST, Some("Bad request")), "{answer}");
    for page in ["start=-1", "size=0", "start=9223372036854775808"] {
        let (status, answer) = s.get(&format!("{API}/jobs?{page}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{page}: {answer}");
    }
}

async fn bad_requests_get_flowables_error_answers(s: TestServer) {
    let cases = [
        (json!({"lockDuration": "PT1M", "workerId": "w"}), "topic is required"),
        (json!({"topic": "orders", "workerId": "w"}), "lockDuration is required"),
        (json!({"topic": "orders", "lockDuration": "PT1M"}), "workerId is required"),
        (json!({"topic": "orders", "lockDuration": "ten minutes", "workerId": "w"}), "ISO-8601"),
    ];
    for (body, says) in cases {
        let (status, answer) = s.post(&format!("{API}/acquire/jobs"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["message"], "Bad request");
        assert!(answer["exception"].as_str().unwrap_or_default().contains(says), "{says}: {answer}");
    }
    started(&s).await;
    let job = acquire(&s, "w1").await[0]["id"].as_str().unwrap_or_default().to_owned();
    let (status, answer) = s.post(&format!("{API}/acquire/jobs/{job}/complete"), json!({"workerId": "w2"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["exception"], "w2 does not hold a lock on the requested job");
    let (status, answer) = s.post(&format!("{API}/acquire/jobs/nope/complete"), json!({"workerId": "w1"})).await;
    assert_eq!((status, answer["message"].as_str()), (StatusCode::NOT_FOUND, Some("Not found")));
    let bad_var = json!({"workerId": "w1", "variables": [{"name": "n", "type": "integer", "value": "many"}]});
    let (status, answer) = s.post(&format!("{API}/acquire/jobs/{job}/complete"), bad_var).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, _) = s.post(&format!("{API}/acquire/jobs/{job}/bpmnError"), json!({"workerId": "w1"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "errorCode is required");
}

backend_tests!(server = TestServer::start_for_workers;
    acquired_jobs_carry_flowables_fields_and_complete_sets_variables,
    a_bpmn_error_is_caught_by_the_boundary_event,
    failures_count_retries_down_then_fail_the_process,
    jobs_are_listed_and_read_as_flowable_describes_them,
    bad_requests_get_flowables_error_answers,
    null_variables_complete_and_raise_errors_as_none_do,
    jobs_waiting_for_a_worker_are_counted_per_stone_with_the_oldest_age,
    a_compensating_job_reaches_only_a_worker_subscribed_to_it
);
