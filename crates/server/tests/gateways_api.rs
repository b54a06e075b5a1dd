//! Inclusive gateways through the HTTP API on both databases: the split takes the flows whose
//! condition holds, the join goes on once when nothing else can reach it, and Flowable's
//! history shows each gateway passed as an `inclusiveGateway` activity.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">
  <process id="review" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f0" sourceRef="s" targetRef="split"/>
  <inclusiveGateway id="split" default="fC"/>
  <sequenceFlow id="fA" sourceRef="split" targetRef="legal"><conditionExpression>${amount > 100}</conditionExpression></sequenceFlow>
  <sequenceFlow id="fB" sourceRef="split" targetRef="tax"><conditionExpression>${foreign}</conditionExpression></sequenceFlow>
  <sequenceFlow id="fC" sourceRef="split" targetRef="plain"/>
  <userTask id="legal" name="Legal"/><userTask id="tax" name="Tax"/><userTask id="plain" name="Plain"/>
  <sequenceFlow id="j1" sourceRef="legal" targetRef="join"/><sequenceFlow id="j2" sourceRef="tax" targetRef="join"/>
  <sequenceFlow id="j3" sourceRef="plain" targetRef="join"/><inclusiveGateway id="join"/>
  <sequenceFlow id="f9" sourceRef="join" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

/// The names of the instance's active tasks, sorted.
async fn active(s: &TestServer, id: &str) -> Vec<(String, String)> {
    let mut open: Vec<(String, String)> = s
        .tasks(id)
        .await
        .into_iter()
        .filter(|t| t["status"] == "active")
        .map(|t| (t["name"].as_str().unwrap_or_default().to_owned(), t["id"].as_str().unwrap_or_default().to_owned()))
        .collect();
    open.sort();
    open
}

async fn an_inclusive_join_waits_for_the_branches_taken_and_goes_on_once(s: TestServer) {
    s.deploy(MODEL).await;
    let id = s.start_process("review", json!({"amount": 500, "foreign": true})).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let open = active(&s, &id).await;
    assert_eq!(open.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["Legal", "Tax"]);
    let (status, body) = s.put(&format!("/task/{}/complete", open[0].1), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.settle_or_wait(&id).await["processStatus"], "running", "the join waits for Tax");
    let (status, body) = s.put(&format!("/task/{}/complete", open[1].1), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.settle_or_wait(&id).await["processStatus"], "success");
    let history = format!(
        "/flowable-rest/service/history/historic-activity-instances?processInstanceId={id}&activityType=inclusiveGateway"
    );
    let (status, passed) = s.get(&history).await;
    assert_eq!(status, StatusCode::OK, "{passed}");
    let ids: Vec<&Value> = passed["data"].as_array().into_iter().flatten().map(|a| &a["activityId"]).collect();
    assert_eq!(ids, [&json!("split"), &json!("join")], "each gateway passed once: {passed}");
}

backend_tests!(server = TestServer::start;
    an_inclusive_join_waits_for_the_branches_taken_and_goes_on_once,
);
