//! Flowable's event API through the real server on SQLite and PostgreSQL: executions found by
//! the event they wait for and moved on with `messageEventReceived`, `signalEventReceived` and
//! `trigger`; `runtime/signals`; a start by message; `runtime/event-subscriptions`.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SERVICE: &str = "/flowable-rest/service";

/// Flowable's REST test model: a message catch event, then a receive task; and a model that
/// starts on a message, and one whose catch event waits for a signal.
const MODELS: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="Examples">
  <message id="payment" name="paymentMessage"/><message id="newInvoice" name="newInvoiceMessage"/>
  <signal id="alert" name="alert"/>
  <process id="processOne"><startEvent id="theStart"/><sequenceFlow id="f1" sourceRef="theStart" targetRef="waitState"/>
    <intermediateCatchEvent id="waitState"><messageEventDefinition messageRef="payment"/></intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="waitState" targetRef="anotherWaitState"/><receiveTask id="anotherWaitState"/>
    <sequenceFlow id="f3" sourceRef="anotherWaitState" targetRef="theEnd"/><endEvent id="theEnd"/></process>
  <process id="invoices"><startEvent id="msgStart"><messageEventDefinition messageRef="tns:newInvoice"/></startEvent>
    <sequenceFlow id="g1" sourceRef="msgStart" targetRef="check"/><userTask id="check"/>
    <sequenceFlow id="g2" sourceRef="check" targetRef="done"/><endEvent id="done"/></process>
  <process id="alerted"><startEvent id="s"/><sequenceFlow id="h1" sourceRef="s" targetRef="onAlert"/>
    <intermediateCatchEvent id="onAlert"><signalEventDefinition signalRef="alert"/></intermediateCatchEvent>
    <sequenceFlow id="h2" sourceRef="onAlert" targetRef="e"/><endEvent id="e"/></process>
</definitions>"#;

async fn start(s: &TestServer, body: Value) -> String {
    let (status, p) = s.post(&format!("{SERVICE}/runtime/process-instances"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    p["id"].as_str().unwrap_or_default().to_owned()
}

async fn the_one_execution(s: &TestServer, filter: &str) -> String {
    let (status, list) = s.get(&format!("{SERVICE}/runtime/executions?{filter}")).await;
    assert_eq!((status, &list["total"]), (StatusCode::OK, &Value::from(1)), "{filter}: {list}");
    list["data"][0]["id"].as_str().unwrap_or_default().to_owned()
}

async fn a_message_then_a_trigger_move_an_instance_through_its_waits(s: TestServer) {
    s.deploy(MODELS).await;
    let id = start(&s, json!({"processDefinitionKey": "processOne"})).await;
    let waiting = the_one_execution(&s, "messageEventSubscriptionName=paymentMessage").await;
    let act = format!("{SERVICE}/runtime/executions/{waiting}");
    let (status, body) = s.put(&act, Some(json!({"action": "messageEventReceived", "messageName": "other"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["exception"].as_str().is_some_and(|m| m.contains("message event with name 'other'")), "{body}");
    let (status, body) = s.put(&act, Some(json!({"action": "messageEventReceived"}))).await;
    assert_eq!((status, &body["exception"]), (StatusCode::BAD_REQUEST, &Value::from("Message name is required")));
    let received = json!({"action": "messageEventReceived", "messageName": "paymentMessage",
        "variables": [{"name": "paid", "value": true}]});
    let (status, body) = s.put(&act, Some(received)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "its execution ended: {body}");
    let (status, vars) = s.get(&format!("{SERVICE}/runtime/process-instances/{id}/variables/paid")).await;
    assert_eq!((status, &vars["value"]), (StatusCode::OK, &Value::from(true)), "{vars}");

    let receive = the_one_execution(&s, &format!("activityId=anotherWaitState&processInstanceId={id}")).await;
    let (status, body) =
        s.put(&format!("{SERVICE}/runtime/executions/{receive}"), Some(json!({"action": "trigger"}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = s.get(&format!("{SERVICE}/runtime/process-instances/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the instance ended");
}

async fn a_signal_reaches_every_waiting_instance_or_the_one_execution_named(s: TestServer) {
    s.deploy(MODELS).await;
    let ids = [
        start(&s, json!({"processDefinitionKey": "alerted"})).await,
        start(&s, json!({"processDefinitionKey": "alerted"})).await,
        start(&s, json!({"processDefinitionKey": "alerted"})).await,
    ];
    let one = the_one_execution(&s, &format!("signalEventSubscriptionName=alert&processInstanceId={}", ids[0])).await;
    let signal = json!({"action": "signalEventReceived", "signalName": "alert"});
    let (status, body) = s.put(&format!("{SERVICE}/runtime/executions/{one}"), Some(signal)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = s
        .post(
            &format!("{SERVICE}/runtime/signals"),
            json!({"signalName": "alert", "async": true,
        "variables": [{"name": "a", "value": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = s.post(&format!("{SERVICE}/runtime/signals"), json!({"signalName": "alert"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for id in &ids {
        let (status, _) = s.get(&format!("{SERVICE}/runtime/process-instances/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id} ended");
    }
    let (status, body) = s.post(&format!("{SERVICE}/runtime/signals"), json!({})).await;
    assert_eq!((status, &body["exception"]), (StatusCode::BAD_REQUEST, &Value::from("signalName is required")));
}

async fn an_instance_starts_by_message_and_subscriptions_are_listed(s: TestServer) {
    s.deploy(MODELS).await;
    let (status, subs) = s.get(&format!("{SERVICE}/runtime/event-subscriptions?eventType=message")).await;
    assert_eq!((status, &subs["total"]), (StatusCode::OK, &Value::from(1)), "the start event's: {subs}");
    let start_sub = &subs["data"][0];
    assert_eq!(
        (&start_sub["eventName"], &start_sub["activityId"], &start_sub["processInstanceId"]),
        (&Value::from("newInvoiceMessage"), &Value::from("msgStart"), &Value::Null),
        "{subs}"
    );
    let id = start(&s, json!({"message": "newInvoiceMessage", "businessKey": "inv-1"})).await;
    let (_, p) = s.get(&format!("{SERVICE}/runtime/process-instances/{id}")).await;
    assert_eq!((&p["businessKey"], &p["activityId"]), (&Value::from("inv-1"), &Value::Null), "{p}");
    let (status, body) = s.post(&format!("{SERVICE}/runtime/process-instances"), json!({"message": "nobody"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let waiting = start(&s, json!({"processDefinitionKey": "processOne"})).await;
    let (_, subs) = s.get(&format!("{SERVICE}/runtime/event-subscriptions?processInstanceId={waiting}")).await;
    assert_eq!(subs["total"], 1, "{subs}");
    let sub = &subs["data"][0];
    assert_eq!((&sub["eventType"], &sub["activityId"]), (&Value::from("message"), &Value::from("waitState")));
    let one = format!("{SERVICE}/runtime/event-subscriptions/{}", sub["id"].as_str().unwrap_or_default());
    let (status, got) = s.get(&one).await;
    assert_eq!((status, &got["executionId"]), (StatusCode::OK, &sub["executionId"]), "{got}");
    assert_eq!(s.get(&format!("{SERVICE}/runtime/event-subscriptions/nope")).await.0, StatusCode::NOT_FOUND);
    let (_, none) = s.get(&format!("{SERVICE}/runtime/event-subscriptions?eventType=compensate")).await;
    assert_eq!(none["total"], 0, "{none}");
    assert_eq!(s.get(&format!("{SERVICE}/runtime/event-subscriptions?size=x")).await.0, StatusCode::BAD_REQUEST);
    let (_, sorted) = s.get(&format!("{SERVICE}/runtime/event-subscriptions?sort=created&order=desc")).await;
    assert_eq!((&sorted["total"], &sorted["data"][0]["activityId"]), (&Value::from(2), &Value::from("waitState")));
}

backend_tests!(server = TestServer::start;
    a_message_then_a_trigger_move_an_instance_through_its_waits,
    a_signal_reaches_every_waiting_instance_or_the_one_execution_named,
    an_instance_starts_by_message_and_subscriptions_are_listed,
);
