//! The stones lifecycle through the platform API, with the built-in stones in-process:
//! rollback after a failure, debug mode (`reRun`, `resume`), cancel, delete and mock runs
//! of the cluster example, checking the machines `MachineStone` leaves behind.

mod common;

use common::{TestServer, must};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BILLING: &str = "Bingo::RS::FRONT::RSBILLING";

/// Seed 002's variables for a two-slave cluster, with `change` merged in.
fn cluster(change: Value) -> Value {
    let mut vars = json!({
        "projectId": "11111", "regionId": "bcc", "slaveNum": "2", "buyNum": "1",
        BILLING: {}, "master-1a": {"instanceType": "m2.large", "bootMillis": 40},
        "slave-": {"instanceType": "m2.large", "bootMillis": 40}
    });
    if let (Some(vars), Value::Object(change)) = (vars.as_object_mut(), change) {
        vars.extend(change);
    }
    vars
}

async fn start(s: &TestServer, key: &str, extra: Value, variables: Value) -> String {
    let mut body = json!({"key": key, "processName": "test", "variables": variables});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let (status, p) = s.call(Method::POST, "/process", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    p["processInstanceId"].as_str().unwrap_or_default().to_owned()
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The ids of the processes `GET /process?status=` lists.
async fn listed(s: &TestServer, status: &str) -> Vec<String> {
    let (code, body) = s.get(&format!("/process?status={status}&size=1000")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["data"].as_array().into_iter().flatten().map(|p| text(&p["processInstanceId"]).to_owned()).collect()
}

/// (namespace, status) of each task record, oldest first.
async fn statuses(s: &TestServer, id: &str) -> Vec<(String, String)> {
    s.tasks(id).await.iter().map(|t| (text(&t["namespace"]).to_owned(), text(&t["status"]).to_owned())).collect()
}

async fn a_failure_rolls_back_every_machine_it_made_newest_first(s: TestServer) {
    let id = start(&s, "cluster", json!({}), cluster(json!({BILLING: {"fail": "no credit"}}))).await;
    let p = s.wait_for(&id, "rolledBack").await;
    assert!(text(&p["reason"]).contains("no credit"), "{p}");
    let rollback = text(&p["rollbackProcessInstanceId"]).to_owned();
    let rb = s.process(&rollback).await;
    assert_eq!((rb["processType"].as_str(), rb["processStatus"].as_str()), (Some("rollback"), Some("success")));
    assert_eq!(rb["parentProcessInstanceId"], json!(id));
    let steps = statuses(&s, &rollback).await;
    assert_eq!(steps.len(), 4, "billing, both slaves and the master: {steps:?}");
    assert_eq!(steps[0], (BILLING.to_owned(), "rollback.success".to_owned()), "the failed task first");
    assert_eq!(steps[3], ("master-1a".to_owned(), "rollback.success".to_owned()), "the first to finish last");
    assert!(steps.iter().all(|(_, status)| status == "rollback.success"));
    assert_eq!(s.machines(), 0, "the rollback removed every machine");
    assert_eq!(listed(&s, "rolledBack").await, std::slice::from_ref(&id), "listed by the status it shows");
    assert!(listed(&s, "failed").await.is_empty(), "a rolled back process is not listed as failed");
}

async fn debug_mode_waits_at_the_failure_and_rerun_with_fixed_params_completes(s: TestServer) {
    let id = start(&s, "cluster", json!({"debug": true}), cluster(json!({BILLING: {"fail": "no credit"}}))).await;
    let p = s.wait_for(&id, "debug").await;
    assert_eq!(p["rollbackProcessInstanceId"], Value::Null, "no rollback in debug mode");
    let failed = s.tasks(&id).await.into_iter().find(|t| t["status"] == "start.failed");
    let failed = failed.unwrap_or_else(|| panic!("no failed task"));
    assert_eq!(failed["reason"], "no credit");
    // Seed 001's reRun: form fields, `parameters` as JSON text.
    let task = text(&failed["taskId"]).to_owned();
    let form = "queueType=start&parameters=%7B%22fail%22%3Afalse%7D&outputs=%7B%7D";
    let resp = must(
        s.client
            .put(format!("{}/task/{task}/reRun", s.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await,
    );
    assert_eq!(resp.status(), StatusCode::OK);
    let again: Value = must(resp.json().await);
    assert_eq!(again["id"], json!(task), "the current attempt keeps the task id");
    s.wait_for(&id, "success").await;
    let attempts: Vec<_> =
        s.tasks(&id).await.into_iter().filter(|t| t["taskId"] == json!(task)).map(|t| t["status"].clone()).collect();
    assert_eq!(attempts.len(), 2, "the failed attempt is kept: {attempts:?}");
    assert!(attempts.contains(&json!("start.failed")) && attempts.contains(&json!("start.success")));
    assert_eq!(s.machines(), 3);
    let (status, body) = s.put(&format!("/task/{task}/reRun"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

async fn resume_leaves_debug_mode_and_rolls_back(s: TestServer) {
    let id = start(&s, "cluster", json!({"debug": true}), cluster(json!({BILLING: {"fail": true}}))).await;
    s.wait_for(&id, "debug").await;
    let failed = s.tasks(&id).await.into_iter().find(|t| t["status"] == "start.failed");
    let task = text(&failed.unwrap_or_default()["id"]).to_owned();
    let (status, body) = s.put(&format!("/task/{task}/reRun"), Some(json!({"queueType": "rollback"}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "a process task reruns start, monitor or mock: {body}");
    let (status, body) = s.put(&format!("/task/{task}/resume"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.wait_for(&id, "rolledBack").await;
    assert_eq!(s.machines(), 0);
}

async fn cancel_during_the_run_then_delete_leaves_no_machine(s: TestServer) {
    let slow = json!({"slave-": {"instanceType": "m2.large", "bootMillis": 20_000}});
    let id = start(&s, "cluster", json!({}), cluster(slow)).await;
    for _ in 0..200 {
        if statuses(&s, &id).await.iter().filter(|(ns, st)| ns.starts_with("slave-") && st != "produce.success").count()
            == 2
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, p) = s.put(&format!("/process/{id}/cancel"), None).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    let p = s.wait_for(&id, "canceled").await;
    let cancel = text(&p["cancelProcessInstanceId"]).to_owned();
    let steps = statuses(&s, &cancel).await;
    assert_eq!(steps.len(), 2, "the running slaves get cancel: {steps:?}");
    assert!(steps.iter().all(|(ns, st)| ns.starts_with("slave-") && st == "cancel.success"), "{steps:?}");
    assert_eq!(s.machines(), 1, "the master had finished");
    let (status, p) = s.put(&format!("/process/{id}/delete"), None).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    s.wait_for(&id, "deleted").await;
    assert_eq!(s.machines(), 0);
}

async fn delete_after_the_run_removes_every_machine_once(s: TestServer) {
    let id = start(&s, "cluster", json!({}), cluster(json!({}))).await;
    s.wait_for(&id, "success").await;
    assert_eq!(s.machines(), 3);
    let (status, p) = s.put(&format!("/process/{id}/delete"), None).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    let p = s.wait_for(&id, "deleted").await;
    let delete = text(&p["deleteProcessInstanceId"]).to_owned();
    let steps = statuses(&s, &delete).await;
    assert_eq!(steps.first().map(|s| s.0.as_str()), Some(BILLING), "newest first: {steps:?}");
    assert!(steps.iter().all(|(_, st)| st == "delete.success"), "{steps:?}");
    assert_eq!(s.machines(), 0);
    assert_eq!(listed(&s, "deleted").await, std::slice::from_ref(&id));
    assert!(!listed(&s, "success").await.contains(&id), "a deleted process shows deleted, not success");
    let (status, body) = s.put(&format!("/process/{id}/delete"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(text(&body["message"]).contains("already deleted"), "{body}");
    let (status, _) = s.put(&format!("/process/{delete}/delete"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "a delete instance is not deleted");
}

/// A restart reads the process back with what its stones ran kept as their records' ids:
/// the delete still gets each machine to remove. Its final variables, which its stored state
/// leaves to its row, come back with it and are written again unchanged.
async fn a_delete_after_a_restart_removes_every_machine(s: TestServer) {
    let id = start(&s, "cluster", json!({}), cluster(json!({}))).await;
    let ended = s.wait_for(&id, "success").await;
    assert_eq!(s.machines(), 3);
    assert!(text(&ended["nativeOutputs"]).contains("master-1a"), "{ended}");
    let s = s.restart().await;
    let (status, p) = s.put(&format!("/process/{id}/delete"), None).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    let deleted = s.wait_for(&id, "deleted").await;
    assert_eq!(s.machines(), 0, "each delete job carried its machine");
    assert_eq!(deleted["nativeOutputs"], ended["nativeOutputs"], "the final variables outlive the delete");
}

async fn a_mock_run_makes_no_machine(s: TestServer) {
    let id = start(&s, "cluster", json!({"mock": true}), cluster(json!({}))).await;
    s.wait_for(&id, "success").await;
    let steps = statuses(&s, &id).await;
    assert_eq!(steps[0].1, "mock.success");
    assert_eq!(steps.last().map(|s| s.1.as_str()), Some("mock.passed"), "billing has nothing to pretend");
    assert_eq!(s.machines(), 0);
    let one = start(&s, "cluster", json!({}), cluster(json!({"MachineStone::Mock": true}))).await;
    s.wait_for(&one, "success").await;
    let steps = statuses(&s, &one).await;
    assert_eq!(steps.last().map(|s| s.1.as_str()), Some("start.success"), "only the flagged stone is mocked");
    assert_eq!(s.machines(), 0);
}

/// How many groups the committer has committed (`/metrics`).
async fn commits(s: &TestServer) -> u64 {
    let (_, metrics) = s.get("/metrics").await;
    let text = metrics.as_str().unwrap_or_default().to_owned();
    let line = text.lines().find(|l| l.starts_with("flowstone_commit_duration_seconds_count"));
    line.and_then(|l| l.split_whitespace().last()?.parse().ok()).unwrap_or_else(|| panic!("no commit count in {text}"))
}

/// Three fast stones cost four commits: the start with the first job, then each outcome with
/// the next job (or the end); a fast stone's `begin` is not committed on its own.
/// (Seven before: each `begin` was a commit of its own. The fewest of three runs counts, so
/// that a stone held up past the lazy wait on a loaded machine does not decide.)
async fn a_fast_stone_step_is_one_commit(s: TestServer) {
    let mut fewest = u64::MAX;
    for _ in 0..3 {
        let before = commits(&s).await;
        let body = json!({"key": "w1_stones", "processName": "t", "wait": 20_000,
            "variables": {"s1": {"t": 1}, "s2": {"t": 2}, "s3": {"t": 3}}});
        let (status, p) = s.call(Method::POST, "/process", Some(body)).await;
        assert_eq!((status, text(&p["processStatus"])), (StatusCode::OK, "success"), "{p}");
        fewest = fewest.min(commits(&s).await - before);
        let id = text(&p["processInstanceId"]);
        let steps: Vec<_> = statuses(&s, id).await.into_iter().map(|(ns, status)| format!("{ns} {status}")).collect();
        assert_eq!(steps, ["s1 start.success", "s2 start.success", "s3 start.success"]);
    }
    assert_eq!(fewest, 4);
}

/// A stone that takes longer shows that it began while it runs.
async fn a_slow_stone_shows_it_began_while_it_runs(s: TestServer) {
    s.deploy(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowstone="http://flowstone.dev/bpmn">
        <process id="slow" isExecutable="true"><startEvent id="a"/><sequenceFlow id="f1" sourceRef="a" targetRef="s"/>
        <serviceTask id="s" flowstone:stone="sleep" flowstone:namespace="nap"/>
        <sequenceFlow id="f2" sourceRef="s" targetRef="b"/><endEvent id="b"/></process></definitions>"#,
    )
    .await;
    let id = start(&s, "slow", json!({}), json!({"nap": {"duration": 2}})).await;
    let began = async {
        loop {
            if statuses(&s, &id).await.iter().any(|(_, status)| status == "start.begin") {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    must(tokio::time::timeout(std::time::Duration::from_secs(1), began).await);
    s.wait_for(&id, "success").await;
    assert_eq!(statuses(&s, &id).await, [("nap".to_owned(), "start.success".to_owned())]);
}

backend_tests!(server = TestServer::start;
    a_fast_stone_step_is_one_commit,
    a_slow_stone_shows_it_began_while_it_runs,
    a_failure_rolls_back_every_machine_it_made_newest_first,
    debug_mode_waits_at_the_failure_and_rerun_with_fixed_params_completes,
    resume_leaves_debug_mode_and_rolls_back,
    cancel_during_the_run_then_delete_leaves_no_machine,
    delete_after_the_run_removes_every_machine_once,
    a_delete_after_a_restart_removes_every_machine,
    a_mock_run_makes_no_machine
);
