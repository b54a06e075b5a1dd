//! Operations through the HTTP API on both databases: history retention — `POST /history/prune` removes
//! ended processes with everything they own (the processes they called, their user tasks and
//! task records) and leaves running ones; Flowable's `DELETE history/historic-process-instances/{id}`
//! removes one; `--history-ttl` prunes in the background. `GET /stuck` lists work that has not
//! moved, and the sweep counts it.

mod common;

use common::{TestServer, signed_in};
use flowstone_server::RuntimeOptions;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const SERVICE: &str = "/flowable-rest/service";

/// `order` calls `review`, which waits at a user task; `quick` ends at once.
const MODELS: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">
  <process id="review" isExecutable="true"><startEvent id="cs"/><sequenceFlow id="c1" sourceRef="cs" targetRef="check"/>
    <userTask id="check" name="Check"/><sequenceFlow id="c2" sourceRef="check" targetRef="ce"/><endEvent id="ce"/></process>
  <process id="order" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
    <callActivity id="call" name="Review" calledElement="review"/>
    <sequenceFlow id="f2" sourceRef="call" targetRef="e"/><endEvent id="e"/></process>
  <process id="quick" isExecutable="true"><startEvent id="qs"/><sequenceFlow id="q1" sourceRef="qs" targetRef="qe"/>
    <endEvent id="qe"/></process>
</definitions>"#;

fn id_of(record: &Value) -> String {
    record["id"].as_str().unwrap_or_else(|| panic!("no id in {record}")).to_owned()
}

/// Starts `order`; answers its id and its child's.
async fn start_order(s: &TestServer) -> (String, String) {
    let parent = id_of(&s.start_process("order", json!({})).await);
    let tasks = s.tasks(&parent).await;
    let call = tasks.iter().find(|t| t["name"] == "Review").unwrap_or_else(|| panic!("no call in {tasks:?}"));
    let params: Value = serde_json::from_str(call["params"].as_str().unwrap_or("{}")).unwrap_or_default();
    (parent, params["calledInstance"].as_str().unwrap_or_else(|| panic!("{call}")).to_owned())
}

/// The open user task of `instance`, commented on and then completed through Flowable's API.
async fn comment_and_complete(s: &TestServer, instance: &str) -> String {
    let (_, open) = s.get(&format!("{SERVICE}/runtime/tasks?processInstanceId={instance}")).await;
    let task = open["data"][0]["id"].as_str().unwrap_or_else(|| panic!("no open task: {open}")).to_owned();
    let (status, body) = s.post(&format!("{SERVICE}/runtime/tasks/{task}/comments"), json!({"message": "ok"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = s.post(&format!("{SERVICE}/runtime/tasks/{task}"), json!({"action": "complete"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    task
}

async fn prune(s: &TestServer, body: Value) -> Value {
    let (status, answer) = s.post("/history/prune", body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn ended_processes_go_with_what_they_own_and_running_ones_stay(s: TestServer) {
    s.deploy(MODELS).await;
    let (parent, child) = start_order(&s).await;
    let user_task = comment_and_complete(&s, &child).await;
    assert_eq!(s.settle_or_wait(&parent).await["processStatus"], "success");
    let quick = id_of(&s.start_process("quick", json!({})).await);
    assert_eq!(s.settle_or_wait(&quick).await["processStatus"], "success");
    let (running, running_child) = start_order(&s).await;

    let dry = prune(&s, json!({"olderThan": "0s", "dryRun": true})).await;
    assert_eq!(dry, json!({"processes": 2, "instances": 3, "more": false, "dryRun": true}));
    assert_eq!(s.process(&parent).await["processStatus"], "success", "a dry run deletes nothing");

    let young = prune(&s, json!({"olderThan": "1d"})).await;
    assert_eq!((&young["processes"], &young["instances"]), (&json!(0), &json!(0)), "{young}");
    let failed = prune(&s, json!({"olderThan": "0s", "status": "failed"})).await;
    assert_eq!(failed["processes"], 0, "{failed}");

    let by_key = prune(&s, json!({"olderThan": "0s", "model": "order"})).await;
    assert_eq!(by_key, json!({"processes": 1, "instances": 2, "more": false, "dryRun": false}));
    for gone in [&parent, &child] {
        let (status, body) = s.get(&format!("/process/{gone}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{gone}: {body}");
        let (status, _) = s.get(&format!("{SERVICE}/history/historic-process-instances/{gone}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (_, records) = s.get(&format!("/task?processInstanceId={parent}")).await;
    assert_eq!(records.as_array().map_or(0, Vec::len), 0, "its task records went: {records}");
    let (status, _) = s.get(&format!("{SERVICE}/history/historic-task-instances/{user_task}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "its child's user task went");
    let (_, comments) = s.get(&format!("{SERVICE}/history/historic-task-instances/{user_task}/comments")).await;
    assert!(comments.as_array().is_none_or(Vec::is_empty), "and its comments: {comments}");

    for stays in [&quick, &running, &running_child] {
        let (status, body) = s.get(&format!("/process/{stays}")).await;
        assert_eq!(status, StatusCode::OK, "{stays} stays: {body}");
    }
    let rest = prune(&s, json!({"olderThan": "0s", "limit": 5})).await;
    assert_eq!((&rest["processes"], &rest["instances"]), (&json!(1), &json!(1)), "{rest}");
    assert_eq!(s.process(&running).await["processStatus"], "running", "running processes stay");
    let (_, metrics) = s.get("/metrics").await;
    let text = metrics.as_str().unwrap_or_default();
    assert!(text.lines().any(|l| l == "flowstone_instances_pruned_total 3"), "{text}");
}

async fn a_prune_that_is_malformed_or_not_an_operators_is_refused_naming_why(s: TestServer) {
    for (body, names) in [
        (json!({}), "olderThan"),
        (json!({"olderThan": "soon"}), "olderThan"),
        (json!({"olderThan": "-3d"}), "olderThan"),
        (json!({"olderThan": "1d", "status": "running"}), "success, failed or canceled"),
        (json!({"olderThan": "1d", "limit": 0}), "limit"),
        (json!({"olderThan": "1d", "limit": 1_000_000}), "limit"),
        (json!({"olderThan": "1d", "everything": true}), "everything"),
    ] {
        let (status, answer) = s.post("/history/prune", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| m.contains(names)), "{body}: {answer}");
    }
    let (status, body) = s.post(&format!("{SERVICE}/identity/users"), json!({"id": "kermit", "password": "pw"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let kermit = signed_in("kermit:pw");
    let (status, body) = s.call_with(&kermit, Method::POST, "/history/prune", Some(json!({"olderThan": "0s"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

async fn flowable_deletes_an_ended_process_history_but_not_a_running_one_or_a_part_of_another(s: TestServer) {
    s.deploy(MODELS).await;
    let (parent, child) = start_order(&s).await;
    let at = |id: &str| format!("{SERVICE}/history/historic-process-instances/{id}");
    let (status, body) = s.call(Method::DELETE, &at(&parent), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["exception"].as_str().is_some_and(|m| m.contains("still running")), "{body}");
    comment_and_complete(&s, &child).await;
    assert_eq!(s.settle_or_wait(&parent).await["processStatus"], "success");
    let (status, body) = s.call(Method::DELETE, &at(&child), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["exception"].as_str().is_some_and(|m| m.contains(&parent)), "names its caller: {body}");
    let (status, body) = s.call(Method::DELETE, &at(&parent), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for gone in [&parent, &child] {
        let (status, _) = s.get(&at(gone)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, body) = s.call(Method::DELETE, &at(&parent), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["exception"].as_str().is_some_and(|m| m.contains(&parent)), "{body}");
}

/// A server that deletes what ended more than a second ago.
async fn with_ttl(backend: common::Backend) -> Option<TestServer> {
    TestServer::start_configured(backend, |_| RuntimeOptions {
        stones: Vec::new(),
        history_ttl: Some(Duration::from_secs(1)),
        ..RuntimeOptions::default()
    })
    .await
}

async fn a_history_ttl_prunes_ended_processes_in_the_background(s: TestServer) {
    s.deploy(MODELS).await;
    let quick = id_of(&s.start_process("quick", json!({})).await);
    let (running, _) = start_order(&s).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = s.get(&format!("/process/{quick}")).await;
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{quick} was not pruned within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(s.process(&running).await["processStatus"], "running");
}

backend_tests!(server = TestServer::start;
    ended_processes_go_with_what_they_own_and_running_ones_stay,
    a_prune_that_is_malformed_or_not_an_operators_is_refused_naming_why,
    flowable_deletes_an_ended_process_history_but_not_a_running_one_or_a_part_of_another,
    a_running_instance_moves_to_a_new_version_with_its_renamed_elements_mapped,
);

mod ttl {
    use super::*;
    backend_tests!(server = with_ttl; a_history_ttl_prunes_ended_processes_in_the_background);
}

/// `waits` runs a stone no worker of these servers fetches.
const STONE: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowstone="http://flowstone.dev/bpmn" targetNamespace="t">
  <process id="waits" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="work"/>
    <serviceTask id="work" name="Work" flowstone:stone="nobody"/><sequenceFlow id="f2" sourceRef="work" targetRef="e"/>
    <endEvent id="e"/></process></definitions>"#;

async fn work_that_has_not_moved_is_listed_with_why_and_counted_by_the_sweep(s: TestServer) {
    s.deploy(STONE).await;
    let waiting = id_of(&s.start_process("waits", json!({})).await);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (status, stuck) = s.get("/stuck?after=0s").await;
    assert_eq!(status, StatusCode::OK, "{stuck}");
    assert_eq!(stuck["jobs"][0]["processInstanceId"], Value::from(waiting.clone()), "{stuck}");
    assert_eq!(stuck["jobs"][0]["stone"], "nobody");
    assert_eq!(stuck["jobs"][0]["why"], "no worker fetches `nobody`");
    assert_eq!(stuck["processes"][0]["processInstanceId"], Value::from(waiting.clone()), "{stuck}");
    assert_eq!(stuck["callbacks"], json!([]));
    let (_, recent) = s.get("/stuck?after=1h").await;
    assert_eq!((&recent["jobs"], &recent["processes"]), (&json!([]), &json!([])), "{recent}");
    for bad in ["/stuck?after=later", "/stuck?limit=0", "/stuck?limit=5000"] {
        let (status, body) = s.get(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    // The sweep (every second here) counts it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, metrics) = s.get("/metrics").await;
        let text = metrics.as_str().unwrap_or_default().to_owned();
        if text.lines().any(|l| l == r#"flowstone_stuck{kind="job"} 1"#) {
            assert!(text.lines().any(|l| l == r#"flowstone_stuck{kind="instance"} 1"#), "{text}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the sweep did not count the stuck job: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `pause` waits a tenth of a second on a timer.
const PAUSE: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">
  <process id="pause" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>PT0.1S</timeDuration></timerEventDefinition>
    </intermediateCatchEvent><sequenceFlow id="f2" sourceRef="wait" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

async fn timers_are_counted_as_they_fire_and_an_overdue_one_is_listed_and_counted(s: TestServer) {
    s.deploy(PAUSE).await;
    let paused = id_of(&s.start_process("pause", json!({})).await);
    // A timer due an hour ago that another server leased and never fired.
    let store = s.runtime().store().clone();
    let hour_ago = flowstone_server::now_ms() - 3_600_000;
    for attempt in 0.. {
        // This server may take it first (and forget it: no such instance); it is set again,
        // due a moment earlier so that forgetting the first cannot take the second.
        let timer = flowstone_store::TimerRow {
            record_id: "t-lost".into(),
            instance_id: "elsewhere-instance".into(),
            element: "wait".into(),
            due: hour_ago - attempt,
            owner: None,
            locked_until: None,
            model_id: None,
            fired: 0,
        };
        let batch = flowstone_store::WriteBatch { timers: vec![timer], ..Default::default() };
        store.commit(&batch).await.unwrap_or_else(|e| panic!("{e}"));
        let lease = flowstone_store::TimerLease { owner: "gone", now: hour_ago, until: i64::MAX, limit: 1 };
        if !store.lease_timers(lease).await.unwrap_or_else(|e| panic!("{e}")).is_empty() {
            break;
        }
    }
    s.wait_for(&paused, "success").await;
    let (_, stuck) = s.get("/stuck?after=1m").await;
    assert_eq!(stuck["timers"][0]["timerId"], "t-lost", "{stuck}");
    assert_eq!(stuck["timers"][0]["heldBy"], "gone", "{stuck}");
    assert!(stuck["timers"][0]["lateSeconds"].as_i64() >= Some(3_600), "{stuck}");
    assert_eq!(stuck["pendingTimers"], 1, "the fired timer is gone: {stuck}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, metrics) = s.get("/metrics").await;
        let text = metrics.as_str().unwrap_or_default().to_owned();
        if text.lines().any(|l| l == r#"flowstone_stuck{kind="timer"} 1"#) {
            assert!(text.lines().any(|l| l == "flowstone_timers_pending 1"), "{text}");
            assert!(text.lines().any(|l| l == r#"flowstone_timers_fired_total{kind="instance"} 1"#), "{text}");
            assert!(
                text.lines().any(|l| l == r#"flowstone_timer_lateness_seconds_count{kind="instance"} 1"#),
                "{text}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the sweep did not count the overdue timer: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A server with no stones in-process, which looks for stuck work every second.
async fn sweeping(backend: common::Backend) -> Option<TestServer> {
    TestServer::start_configured(backend, |_| RuntimeOptions {
        stones: Vec::new(),
        stuck_after: Some(Duration::from_secs(1)),
        ..RuntimeOptions::default()
    })
    .await
}

mod stuck {
    use super::*;
    backend_tests!(server = sweeping;
        work_that_has_not_moved_is_listed_with_why_and_counted_by_the_sweep,
        timers_are_counted_as_they_fire_and_an_overdue_one_is_listed_and_counted,
    );
}

/// `mig` version 1: a review, then an approval.
const MIG_V1: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn" targetNamespace="t">
  <process id="mig" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
    <userTask id="review" name="Review" flowable:candidateGroups="staff"/><sequenceFlow id="f2" sourceRef="review" targetRef="approve"/>
    <userTask id="approve" name="Approve"/><sequenceFlow id="f3" sourceRef="approve" targetRef="e"/><endEvent id="e"/></process>
</definitions>"#;

/// Version 2: the review renamed `check`, and an archiving step at the end.
const MIG_V2: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn" targetNamespace="t">
  <process id="mig" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="check"/>
    <userTask id="check" name="Check"/><sequenceFlow id="f2" sourceRef="check" targetRef="approve"/>
    <userTask id="approve" name="Approve"/><sequenceFlow id="f3" sourceRef="approve" targetRef="archive"/>
    <serviceTask id="archive" flowable:expression="${'yes'}" flowable:resultVariable="archived"/>
    <sequenceFlow id="f4" sourceRef="archive" targetRef="e"/><endEvent id="e"/></process>
</definitions>"#;

/// Completes the open user task of `instance` through the platform API.
async fn complete_open(s: &TestServer, instance: &str) {
    let tasks = s.tasks(instance).await;
    let open = tasks.iter().find(|t| t["status"] == "active").unwrap_or_else(|| panic!("nothing open: {tasks:?}"));
    let (status, body) = s.put(&format!("/task/{}/complete", open["id"].as_str().unwrap_or_default()), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a_running_instance_moves_to_a_new_version_with_its_renamed_elements_mapped(s: TestServer) {
    let v1 = s.deploy(MIG_V1).await["modelId"].as_str().unwrap_or_default().to_owned();
    let moved = id_of(&s.start_process("mig", json!({})).await);
    let v2 = s.deploy(MIG_V2).await["modelId"].as_str().unwrap_or_default().to_owned();
    let at = format!("{SERVICE}/runtime/process-instances/{moved}/migrate");

    let (status, refused) = s.post(&at, json!({"toProcessDefinitionId": v2})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let why = refused["exception"].as_str().unwrap_or_default();
    assert!(why.contains("`review`") && why.contains("activityMappings"), "{refused}");

    let doc = json!({"toProcessDefinitionKey": "mig", "toProcessDefinitionVersion": 2,
        "activityMappings": [{"fromActivityId": "review", "toActivityId": "check"}]});
    let (status, dry) = s.post(&format!("{at}?dryRun=true"), doc.clone()).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry, json!({"toProcessDefinitionId": v2, "moves": [{"from": "review", "to": "check"}]}));
    let runtime = format!("{SERVICE}/runtime/process-instances/{moved}");
    assert_eq!(s.get(&runtime).await.1["processDefinitionId"], Value::from(v1.clone()), "a dry run moves nothing");

    let (status, body) = s.post(&at, doc).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Its user task names the new version and element, as moved, its candidates once.
    let user_task = async |s: &TestServer| {
        let (_, tasks) = s.get(&format!("{SERVICE}/runtime/tasks?processInstanceId={moved}")).await;
        let task = tasks["data"][0].clone();
        assert_eq!(
            (&task["taskDefinitionKey"], &task["processDefinitionId"], &tasks["total"]),
            (&Value::from("check"), &Value::from(v2.clone()), &Value::from(1)),
            "{tasks}"
        );
        let (_, links) =
            s.get(&format!("{SERVICE}/runtime/tasks/{}/identitylinks", task["id"].as_str().unwrap_or_default())).await;
        assert_eq!(links.as_array().map(Vec::len), Some(1), "{links}");
    };
    user_task(&s).await;
    // Read back after a restart, its open record is filled from the task record the move
    // wrote, under the new element.
    let s = s.restart().await;
    assert_eq!(s.get(&runtime).await.1["processDefinitionId"], Value::from(v2.clone()));
    let (_, history) = s.get(&format!("{SERVICE}/history/historic-activity-instances?processInstanceId={moved}")).await;
    let open: Vec<&Value> =
        history["data"].as_array().into_iter().flatten().filter(|a| a["endTime"].is_null()).collect();
    assert_eq!(open.len(), 1, "{history}");
    assert_eq!(open[0]["activityId"], "check", "the open run took the new element's id: {history}");
    user_task(&s).await;
    complete_open(&s, &moved).await;
    complete_open(&s, &moved).await;
    let ended = s.settle_or_wait(&moved).await;
    assert_eq!(ended["processStatus"], "success", "{ended}");
    assert!(
        ended["nativeOutputs"].as_str().is_some_and(|v| v.contains(r#""archived":"yes""#)),
        "v2's step ran: {ended}"
    );

    // A whole version: every running instance checked, then moved.
    let start_v1 = async || {
        let (status, p) = s.post("/process", json!({"modelId": v1, "processName": "t", "variables": {}})).await;
        assert_eq!(status, StatusCode::OK, "{p}");
        id_of(&p)
    };
    let v1_ids = [start_v1().await, start_v1().await];
    let whole = format!("{SERVICE}/repository/process-definitions/{v1}/migrate");
    let mapping = json!({"toProcessDefinitionId": v2, "activityMappings": [{"fromActivityIds": ["review"], "toActivityIds": ["check"]}]});
    let (status, dry) = s.post(&format!("{whole}?dryRun=true"), mapping.clone()).await;
    assert_eq!((status, dry["moves"].as_array().map(Vec::len)), (StatusCode::OK, Some(2)), "{dry}");
    let (status, body) = s.post(&whole, mapping).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for id in &v1_ids {
        let (_, p) = s.get(&format!("{SERVICE}/runtime/process-instances/{id}")).await;
        assert_eq!(p["processDefinitionId"], Value::from(v2.clone()), "{p}");
    }

    let (status, _) = s
        .post(&format!("{SERVICE}/runtime/process-instances/nope/migrate"), json!({"toProcessDefinitionId": v2}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, ended) = s.post(&at, json!({"toProcessDefinitionId": v1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{ended}");
    assert!(ended["exception"].as_str().is_some_and(|m| m.contains("only a running instance")), "{ended}");
    let (status, bad) = s
        .post(
            &format!("{SERVICE}/runtime/process-instances/{}/migrate", v1_ids[0]),
            json!({"toProcessDefinitionId": v2, "postUpgradeScript": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
}
