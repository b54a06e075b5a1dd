//! Call activities through the HTTP API on both databases: the child is an instance of its
//! own, visible with its caller in the platform and Flowable dialects; its end moves the
//! caller on with the out mappings; a BPMN error it ends with reaches a boundary event on the
//! call; a cancel of the caller cancels the child, a delete deletes it; a called key nobody
//! deployed fails the call; in debug mode a failed child holds the call for `reRun`.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn definitions(processes: &str) -> String {
    format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn" targetNamespace="t">
        <error id="rejected" errorCode="REJECTED"/>{processes}</definitions>"#
    )
}

/// A child that waits at a user task, then ends (with error `REJECTED` when `reject` is set).
const CHILD: &str = r#"<process id="review" isExecutable="true"><startEvent id="cs"/>
    <sequenceFlow id="c1" sourceRef="cs" targetRef="check"/><userTask id="check" name="Check"/>
    <sequenceFlow id="c2" sourceRef="check" targetRef="gw"/><exclusiveGateway id="gw" default="c4"/>
    <sequenceFlow id="c3" sourceRef="gw" targetRef="no"><conditionExpression>${reject == true}</conditionExpression></sequenceFlow>
    <sequenceFlow id="c4" sourceRef="gw" targetRef="ok"/><endEvent id="ok"/>
    <endEvent id="no"><errorEventDefinition errorRef="rejected"/></endEvent></process>"#;

/// A caller of `called` that maps `order` in and `verdict` out, with an error boundary.
fn caller(called: &str) -> String {
    format!(
        r#"<process id="order" isExecutable="true"><startEvent id="s"/>
        <sequenceFlow id="f1" sourceRef="s" targetRef="call"/>
        <callActivity id="call" name="Review" calledElement="{called}" flowable:businessKey="${{order}}">
          <extensionElements><flowable:in source="order" target="orderId"/><flowable:in source="reject" target="reject"/>
            <flowable:out sourceExpression="${{orderId}}-done" target="verdict"/></extensionElements></callActivity>
        <sequenceFlow id="f2" sourceRef="call" targetRef="after"/><userTask id="after" name="After"/>
        <sequenceFlow id="f3" sourceRef="after" targetRef="e"/><endEvent id="e"/>
        <boundaryEvent id="caught" attachedToRef="call"><errorEventDefinition errorRef="rejected"/></boundaryEvent>
        <sequenceFlow id="f4" sourceRef="caught" targetRef="handle"/><userTask id="handle" name="Handle"/>
        <sequenceFlow id="f5" sourceRef="handle" targetRef="e2"/><endEvent id="e2"/></process>"#
    )
}

/// Starts the caller; the child's id, read from the call's task.
async fn start_with_child(s: &TestServer, variables: Value) -> (String, String) {
    let parent = s.start_process("order", variables).await["id"].as_str().unwrap_or_default().to_owned();
    let p = s.settle_or_wait(&parent).await;
    assert_eq!(p["processStatus"], "running", "{p}");
    let tasks = s.tasks(&parent).await;
    let call = tasks.iter().find(|t| t["name"] == "Review").unwrap_or_else(|| panic!("no call task in {tasks:?}"));
    // The platform shows a task's params as the JSON text it stores.
    let params: Value = serde_json::from_str(call["params"].as_str().unwrap_or("{}")).unwrap_or_default();
    let child = params["calledInstance"].as_str().unwrap_or_else(|| panic!("{call}")).to_owned();
    (parent, child)
}

/// Completes the one open user task of `instance`.
async fn complete_open(s: &TestServer, instance: &str, variables: Value) {
    let open: Vec<Value> = s.tasks(instance).await.into_iter().filter(|t| t["status"] == "active").collect();
    let task = open.iter().find(|t| t["type"] == "userTask" || t["taskType"] == "userTask").or(open.first());
    let id = task.and_then(|t| t["id"].as_str()).unwrap_or_else(|| panic!("nothing open in {instance}: {open:?}"));
    let (status, body) = s.put(&format!("/task/{id}/complete"), Some(variables)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a_called_process_runs_as_its_own_instance_and_its_end_moves_the_caller_on(s: TestServer) {
    s.deploy(&definitions(&format!("{CHILD}{}", caller("review")))).await;
    let (parent, child) = start_with_child(&s, json!({"order": "o-7", "reject": false})).await;
    let c = s.process(&child).await;
    assert_eq!(c["processStatus"], "running", "{c}");
    assert_eq!(c["parentProcessInstanceId"], Value::from(parent.clone()), "{c}");
    assert_eq!(c["processContent"], r#"{"orderId":"o-7","reject":false}"#, "only the mapped variables: {c}");
    let (status, flowable) = s.get(&format!("/flowable-rest/service/runtime/process-instances/{child}")).await;
    assert_eq!(status, StatusCode::OK, "{flowable}");
    assert_eq!(
        (&flowable["superProcessInstanceId"], &flowable["businessKey"]),
        (&Value::from(parent.clone()), &json!("o-7"))
    );
    complete_open(&s, &child, json!({})).await;
    assert_eq!(s.settle_or_wait(&child).await["processStatus"], "success");
    let p = s.settle_or_wait(&parent).await;
    assert_eq!(p["processStatus"], "running", "the caller waits at its next task: {p}");
    let after = s.tasks(&parent).await.into_iter().find(|t| t["status"] == "active");
    assert!(after.as_ref().is_some_and(|t| t["name"] == "After"), "{after:?}");
    let (_, vars) =
        s.get(&format!("/flowable-rest/service/runtime/process-instances/{parent}/variables/verdict")).await;
    assert_eq!(vars["value"], "o-7-done", "{vars}");
}

async fn a_bpmn_error_the_child_ends_with_reaches_the_boundary_event_of_the_call(s: TestServer) {
    s.deploy(&definitions(&format!("{CHILD}{}", caller("review")))).await;
    let (parent, child) = start_with_child(&s, json!({"order": "o-8", "reject": true})).await;
    complete_open(&s, &child, json!({})).await;
    let c = s.settle_or_wait(&child).await;
    assert_eq!(c["processStatus"], "failed", "{c}");
    let p = s.settle_or_wait(&parent).await;
    assert_eq!(p["processStatus"], "running", "{p}");
    let open: Vec<Value> = s.tasks(&parent).await.into_iter().filter(|t| t["status"] == "active").collect();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["name"], "Handle", "the error boundary took the flow: {open:?}");
}

async fn a_cancel_of_the_caller_cancels_its_child(s: TestServer) {
    s.deploy(&definitions(&format!("{CHILD}{}", caller("review")))).await;
    let (parent, child) = start_with_child(&s, json!({"order": "o-9", "reject": false})).await;
    let (status, body) = s.put(&format!("/process/{parent}/cancel"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.settle_or_wait(&parent).await["processStatus"], "canceled");
    assert_eq!(s.settle_or_wait(&child).await["processStatus"], "canceled", "the child ends with its call");
}

async fn a_call_of_a_process_nobody_deployed_fails_the_caller_naming_it(s: TestServer) {
    s.deploy(&definitions(&caller("nowhere"))).await;
    let parent = s.start_process("order", json!({"order": "o-1"})).await["id"].as_str().unwrap_or_default().to_owned();
    let p = s.settle_or_wait(&parent).await;
    assert_eq!(p["processStatus"], "failed", "{p}");
    let reason = p["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("`call`") && reason.contains("`nowhere`"), "{reason}");
}

async fn a_delete_of_the_caller_deletes_its_children_in_the_same_commit(s: TestServer) {
    s.deploy(&definitions(&format!("{CHILD}{}", caller("review")))).await;
    let (parent, child) = start_with_child(&s, json!({"order": "o-10", "reject": false})).await;
    complete_open(&s, &child, json!({})).await;
    complete_open(&s, &parent, json!({})).await;
    assert_eq!(s.settle_or_wait(&parent).await["processStatus"], "success");
    let (status, body) = s.put(&format!("/process/{parent}/delete"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.wait_for(&parent, "deleted").await;
    let c = s.wait_for(&child, "deleted").await;
    assert!(c["deleteProcessInstanceId"].as_str().is_some_and(|d| !d.is_empty()), "{c}");
    let (status, again) = s.put(&format!("/process/{child}/delete"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "deleted once, with its caller: {again}");
}

/// A child whose JavaScript fails at once.
const BROKEN: &str = r#"<process id="broken" isExecutable="true"><startEvent id="bs"/>
    <sequenceFlow id="b1" sourceRef="bs" targetRef="js"/>
    <scriptTask id="js" scriptFormat="javascript"><script>throw new Error('no stock for ' + orderId)</script></scriptTask>
    <sequenceFlow id="b2" sourceRef="js" targetRef="be"/><endEvent id="be"/></process>"#;

/// The children the call records of `parent` called, oldest first.
async fn called(s: &TestServer, parent: &str) -> Vec<(String, String)> {
    let mut calls: Vec<(String, String, String)> = s
        .tasks(parent)
        .await
        .into_iter()
        .filter(|t| t["name"] == "Review")
        .map(|t| {
            let params: Value = serde_json::from_str(t["params"].as_str().unwrap_or("{}")).unwrap_or_default();
            let child = params["calledInstance"].as_str().unwrap_or_default().to_owned();
            let status = t["status"].as_str().unwrap_or_default().to_owned();
            (t["createTime"].as_str().unwrap_or_default().to_owned(), child, status)
        })
        .collect();
    calls.sort();
    calls.into_iter().map(|(_, child, status)| (child, status)).collect()
}

async fn in_debug_mode_a_failed_child_holds_the_call_and_rerun_calls_a_new_child(s: TestServer) {
    s.deploy(&definitions(&format!("{BROKEN}{}", caller("broken")))).await;
    let start = json!({"key": "order", "processName": "t", "variables": {"order": "o-7"}, "debug": true});
    let (status, started) = s.post("/process", start).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let parent = started["id"].as_str().unwrap_or_default().to_owned();
    let held = s.wait_for(&parent, "debug").await;
    assert!(held["reason"].as_str().unwrap_or_default().contains("no stock for o-7"), "{held}");
    let first = called(&s, &parent).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].1, "start.failed");
    assert_eq!(s.process(&first[0].0).await["processStatus"], "failed", "the child itself failed");
    let call = s.tasks(&parent).await.into_iter().find(|t| t["name"] == "Review").unwrap_or_default();
    let task = call["taskId"].as_str().unwrap_or_default().to_owned();
    let (status, body) = s.put(&format!("/task/{task}/reRun"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The new child fails as the first did: the caller holds at its call once more.
    s.wait_for(&parent, "debug").await;
    let again = called(&s, &parent).await;
    assert_eq!(again.len(), 2, "the failed attempt stays beside the new one: {again:?}");
    assert_ne!(again[0].0, again[1].0, "a new child was called");
    let (status, body) = s.put(&format!("/task/{task}/resume"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ended = s.settle_or_wait(&parent).await;
    assert_ne!(ended["processStatus"], "debug", "resume gave up: {ended}");
}

backend_tests!(server = TestServer::start;
    in_debug_mode_a_failed_child_holds_the_call_and_rerun_calls_a_new_child,
    a_delete_of_the_caller_deletes_its_children_in_the_same_commit,
    a_called_process_runs_as_its_own_instance_and_its_end_moves_the_caller_on,
    a_bpmn_error_the_child_ends_with_reaches_the_boundary_event_of_the_call,
    a_cancel_of_the_caller_cancels_its_child,
    a_call_of_a_process_nobody_deployed_fails_the_caller_naming_it,
);
