//! Flowable's `form/form-data` through the real server on SQLite and PostgreSQL: a start
//! event's and a user task's form properties read with their values, then submitted — typed,
//! checked, and starting the process or completing the task.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SERVICE: &str = "/flowable-rest/service";

/// A start form asking for days and a reason; a task form choosing yes or no, showing the days
/// without letting them change, and keeping one property unreadable.
const LEAVE: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn" targetNamespace="t">
  <process id="leave" name="Leave" isExecutable="true">
    <startEvent id="s"><extensionElements>
      <flowable:formProperty id="days" name="Days" type="long" required="true"/>
      <flowable:formProperty id="reason" type="string"/>
    </extensionElements></startEvent>
    <sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <userTask id="t" name="Approve" flowable:formKey="approve-form"><extensionElements>
      <flowable:formProperty id="approved" name="Approved?" type="enum" required="true">
        <flowable:value id="yes" name="Yes"/><flowable:value id="no" name="No"/>
      </flowable:formProperty>
      <flowable:formProperty id="days" type="long" writable="false"/>
      <flowable:formProperty id="secret" readable="false"/>
    </extensionElements></userTask>
    <sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>
  </process></definitions>"#;

fn message(body: &Value) -> &str {
    body["exception"].as_str().unwrap_or_default()
}

async fn start_and_task_forms_are_read_and_submitted_typed(s: TestServer) {
    let deployed = s.deploy(LEAVE).await;
    let definition = deployed["models"][0]["modelId"].as_str().unwrap_or_default().to_owned();
    let form = format!("{SERVICE}/form/form-data");

    for query in ["", "?taskId=a&processDefinitionId=b"] {
        let (status, body) = s.get(&format!("{form}{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
    let (status, start) = s.get(&format!("{form}?processDefinitionId={definition}")).await;
    assert_eq!(status, StatusCode::OK, "{start}");
    assert_eq!((start["processDefinitionId"].as_str(), &start["taskId"]), (Some(definition.as_str()), &Value::Null));
    let days = &start["formProperties"][0];
    assert_eq!(
        (days["id"].as_str(), days["type"].as_str(), days["required"].as_bool()),
        (Some("days"), Some("long"), Some(true))
    );
    assert_eq!((&days["value"], start["formProperties"].as_array().map(Vec::len)), (&Value::Null, Some(2)));

    let submit = async |body: Value| s.post(&format!("{SERVICE}/form/form-data"), body).await;
    let wrong = json!({"processDefinitionId": definition, "properties": [{"id": "days", "value": "many"}]});
    let (status, body) = submit(wrong).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).contains("`Days` must be a whole number, not `many`"), "{body}");
    let (status, body) = submit(json!({"processDefinitionId": definition, "properties": []})).await;
    assert!(status == StatusCode::BAD_REQUEST && message(&body).contains("`Days` is required"), "{body}");
    let filled = json!({"processDefinitionId": definition, "businessKey": "leave-1", "properties": [
        {"id": "days", "value": "3"}, {"id": "reason", "value": "sun"}, {"id": "note", "value": "hi"}]});
    let (status, started) = submit(filled).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(started["businessKey"], "leave-1", "{started}");
    let instance = started["id"].as_str().unwrap_or_default().to_owned();

    let (_, tasks) = s.get(&format!("{SERVICE}/runtime/tasks?processInstanceId={instance}")).await;
    let task = tasks["data"][0]["id"].as_str().unwrap_or_default().to_owned();
    let (status, data) = s.get(&format!("{form}?taskId={task}")).await;
    assert_eq!(status, StatusCode::OK, "{data}");
    assert_eq!(data["formKey"], "approve-form");
    assert!(data["taskUrl"].as_str().is_some_and(|u| u.ends_with(&format!("/runtime/tasks/{task}"))), "{data}");
    let ids: Vec<&str> =
        data["formProperties"].as_array().into_iter().flatten().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(ids, ["approved", "days"], "an unreadable property is not shown");
    assert_eq!(
        data["formProperties"][0]["enumValues"],
        json!([{"id": "yes", "name": "Yes"}, {"id": "no", "name": "No"}])
    );
    assert_eq!(
        (data["formProperties"][1]["value"].as_str(), data["formProperties"][1]["writable"].as_bool()),
        (Some("3"), Some(false))
    );

    let answer = |properties: Value| json!({"taskId": task, "properties": properties});
    let (status, body) =
        submit(answer(json!([{"id": "approved", "value": "yes"}, {"id": "days", "value": "5"}]))).await;
    assert!(status == StatusCode::BAD_REQUEST && message(&body).contains("`days` is not writable"), "{body}");
    let (status, body) = submit(answer(json!([{"id": "approved", "value": "maybe"}]))).await;
    assert!(status == StatusCode::BAD_REQUEST && message(&body).contains("one of yes, no"), "{body}");
    let (status, body) = submit(answer(json!([{"id": "approved", "value": "yes"}]))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let ended = s.wait_for(&instance, "success").await;
    let outputs: Value = serde_json::from_str(ended["nativeOutputs"].as_str().unwrap_or("{}")).unwrap_or_default();
    assert_eq!(outputs, json!({"days": 3, "reason": "sun", "note": "hi", "approved": "yes"}), "{ended}");
    let (status, body) = s.get(&format!("{form}?taskId={task}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a completed task has no form: {body}");
}

backend_tests!(server = TestServer::start;
    start_and_task_forms_are_read_and_submitted_typed,
);
