//! Messages and signals through the platform API on both databases: `POST /message`
//! correlates by name and key to one waiting instance or starts one, `POST /signal` reaches
//! every wait, a process's throw reaches another process, and waits outlive a restart.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn model(key: &str, body: &str) -> String {
    format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowstone="http://flowstone.dev/bpmn" targetNamespace="t">
        <message id="pay" name="payment" flowstone:correlationKey="${{orderId}}"/><signal id="alert" name="alert"/>
        <process id="{key}" isExecutable="true">{body}</process></definitions>"#
    )
}

/// start → a catch event of `definition` → end.
fn waiting(key: &str, definition: &str) -> String {
    model(
        key,
        &format!(
            r#"<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
            <intermediateCatchEvent id="wait" name="Wait">{definition}</intermediateCatchEvent>
            <sequenceFlow id="f2" sourceRef="wait" targetRef="e"/><endEvent id="e"/>"#
        ),
    )
}

const PAYMENT: &str = r#"<messageEventDefinition messageRef="pay"/>"#;
const ALERT: &str = r#"<signalEventDefinition signalRef="alert"/>"#;

async fn start(s: &TestServer, key: &str, variables: Value) -> String {
    s.start_process(key, variables).await["id"].as_str().unwrap_or_default().to_owned()
}

async fn a_message_reaches_the_instance_whose_key_it_carries_and_only_once(s: TestServer) {
    s.deploy(&waiting("orders", PAYMENT)).await;
    let first = start(&s, "orders", json!({"orderId": 1})).await;
    let second = start(&s, "orders", json!({"orderId": 2})).await;
    let p = s.settle_or_wait(&second).await;
    assert_eq!(p["waitingFor"][0]["type"], "intermediateCatchEvent", "{p}");
    let (status, reached) =
        s.post("/message", json!({"name": "payment", "correlationKey": 2, "variables": {"paid": true}})).await;
    assert_eq!(status, StatusCode::OK, "{reached}");
    assert_eq!((&reached["instanceId"], &reached["started"]), (&Value::from(second.clone()), &Value::from(false)));
    let done = s.wait_for(&second, "success").await;
    assert_eq!(s.settle_or_wait(&first).await["processStatus"], "running", "the other key still waits: {done}");
    let (status, body) = s.post("/message", json!({"name": "payment", "correlationKey": "2"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing waits with that key any more: {body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("`payment` with correlation key `2`")), "{body}");
    let (status, _) = s.post("/message", json!({"name": "payment", "correlationKey": "1"})).await;
    assert_eq!(status, StatusCode::OK);
    s.wait_for(&first, "success").await;
}

async fn a_message_start_event_starts_an_instance_with_the_message_variables(s: TestServer) {
    s.deploy(&model(
        "invoices",
        r#"<startEvent id="ms"><messageEventDefinition messageRef="newInvoice"/></startEvent>
        <sequenceFlow id="f1" sourceRef="ms" targetRef="t"/><userTask id="t" name="Check"/>
        <sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/>"#,
    ))
    .await;
    let (status, reached) = s.post("/message", json!({"name": "newInvoice", "variables": {"amount": 12}})).await;
    assert_eq!((status, &reached["started"]), (StatusCode::OK, &Value::from(true)), "{reached}");
    let id = reached["instanceId"].as_str().unwrap_or_default().to_owned();
    let p = s.settle_or_wait(&id).await;
    assert_eq!(p["processContent"], r#"{"amount":12}"#, "{p}");
}

async fn a_signal_reaches_every_wait_and_starts_the_models_that_start_with_it(s: TestServer) {
    s.deploy(&waiting("alerted", ALERT)).await;
    s.deploy(&model(
        "on-alert",
        r#"<startEvent id="ss"><signalEventDefinition signalRef="alert"/></startEvent>
        <sequenceFlow id="f1" sourceRef="ss" targetRef="e"/><endEvent id="e"/>"#,
    ))
    .await;
    let ids = [start(&s, "alerted", json!({})).await, start(&s, "alerted", json!({})).await];
    for id in &ids {
        s.settle_or_wait(id).await;
    }
    let (status, body) = s.post("/signal", json!({"name": "alert"})).await;
    assert_eq!((status, &body["reached"]), (StatusCode::OK, &Value::from(2)), "{body}");
    assert_eq!(body["started"].as_array().map(Vec::len), Some(1), "{body}");
    for id in &ids {
        s.wait_for(id, "success").await;
    }
    let (_, again) = s.post("/signal", json!({"name": "alert"})).await;
    assert_eq!(again["reached"], 0, "nothing waits any more: {again}");
}

async fn a_message_thrown_by_one_process_reaches_another_that_waits(s: TestServer) {
    s.deploy(&waiting("receiver", PAYMENT)).await;
    s.deploy(&model(
        "sender",
        r#"<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="send"/>
        <intermediateThrowEvent id="send"><messageEventDefinition messageRef="pay"/></intermediateThrowEvent>
        <sequenceFlow id="f2" sourceRef="send" targetRef="e"/><endEvent id="e"/>"#,
    ))
    .await;
    let receiver = start(&s, "receiver", json!({"orderId": "A-7"})).await;
    s.settle_or_wait(&receiver).await;
    let sender = start(&s, "sender", json!({"orderId": "A-7"})).await;
    s.wait_for(&sender, "success").await;
    s.wait_for(&receiver, "success").await;
}

async fn a_wait_outlives_a_restart_of_the_server(s: TestServer) {
    s.deploy(&waiting("durable", PAYMENT)).await;
    let id = start(&s, "durable", json!({"orderId": "x"})).await;
    s.settle_or_wait(&id).await;
    let s = s.restart().await;
    let (status, body) = s.post("/message", json!({"name": "payment", "correlationKey": "x"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.wait_for(&id, "success").await;
}

async fn a_message_with_a_ttl_is_kept_for_the_first_instance_that_comes_to_wait_for_it(s: TestServer) {
    s.deploy(&waiting("late", PAYMENT)).await;
    let kept = json!({"name": "payment", "correlationKey": "k1", "ttl": "PT1H", "variables": {"paid": "early"}});
    let (status, body) = s.post("/message", kept).await;
    assert_eq!(status, StatusCode::ACCEPTED, "nothing waits yet: {body}");
    assert!(body["messageId"].is_string() && body["expiresAt"].is_string(), "{body}");
    let (status, _) = s.post("/message", json!({"name": "payment", "correlationKey": "k2", "ttl": 60})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let s = s.restart().await;
    let first = start(&s, "late", json!({"orderId": "k1"})).await;
    let done = s.wait_for(&first, "success").await;
    assert_eq!(done["nativeOutputs"].as_str().map(|o| o.contains("early")), Some(true), "{done}");
    let second = start(&s, "late", json!({"orderId": "k1"})).await;
    assert_eq!(s.settle_or_wait(&second).await["processStatus"], "running", "a kept message is taken once");
    let other = start(&s, "late", json!({"orderId": "k2"})).await;
    s.wait_for(&other, "success").await;
    let (status, body) = s.post("/message", json!({"name": "payment", "correlationKey": "k1", "ttl": 60})).await;
    assert_eq!(status, StatusCode::OK, "something waits: it is delivered at once, not kept: {body}");
    s.wait_for(&second, "success").await;
}

async fn a_thrown_message_left_unsent_by_a_stop_is_sent_when_the_server_starts_again(s: TestServer) {
    s.deploy(&waiting("outboxed", PAYMENT)).await;
    let id = start(&s, "outboxed", json!({"orderId": "o-1"})).await;
    s.settle_or_wait(&id).await;
    // What a commit leaves when the server stops between the commit and the send.
    let unsent = flowstone_store::OutboxRow {
        id: "thrown-1".into(),
        node: flowstone_server::RuntimeOptions::default().node,
        kind: "message".into(),
        name: "payment".into(),
        correlation_key: Some("o-1".into()),
        tenant_id: None,
        created_at: 1,
    };
    let batch = flowstone_store::WriteBatch { outbox: vec![unsent], ..flowstone_store::WriteBatch::default() };
    s.runtime().store().commit(&batch).await.unwrap_or_else(|e| panic!("{e}"));
    let s = s.restart().await;
    s.wait_for(&id, "success").await;
    let left = s.runtime().store().unsent(&flowstone_server::RuntimeOptions::default().node).await;
    assert!(left.is_ok_and(|l| l.is_empty()), "sent, it left the outbox");
}

async fn an_event_based_gateway_takes_the_first_event_that_comes_and_drops_the_others(s: TestServer) {
    s.deploy(&model(
        "race",
        r#"<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="gw"/><eventBasedGateway id="gw"/>
        <sequenceFlow id="f2" sourceRef="gw" targetRef="paid"/><sequenceFlow id="f3" sourceRef="gw" targetRef="alerted"/>
        <intermediateCatchEvent id="paid">{PAYMENT}</intermediateCatchEvent>
        <intermediateCatchEvent id="alerted">{ALERT}</intermediateCatchEvent>
        <sequenceFlow id="f4" sourceRef="paid" targetRef="e1"/><endEvent id="e1"/>
        <sequenceFlow id="f5" sourceRef="alerted" targetRef="e2"/><endEvent id="e2"/>"#
            .replace("{PAYMENT}", PAYMENT)
            .replace("{ALERT}", ALERT)
            .as_str(),
    ))
    .await;
    let id = start(&s, "race", json!({"orderId": 5})).await;
    let p = s.settle_or_wait(&id).await;
    assert_eq!(p["waitingFor"].as_array().map(Vec::len), Some(2), "both events wait: {p}");
    let (status, body) = s.post("/signal", json!({"name": "alert"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let done = s.wait_for(&id, "success").await;
    let (status, body) = s.post("/message", json!({"name": "payment", "correlationKey": 5})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the message's wait went with the race: {body} {done}");
    let (_, history) = s.get(&format!("/flowable-rest/service/history/historic-process-instances/{id}")).await;
    assert_eq!(history["endActivityId"], "e2", "the signal's path ended it: {history}");
}

async fn malformed_messages_and_signals_are_refused_naming_what_is_wrong(s: TestServer) {
    let cases = [
        ("/message", json!({"correlationKey": "1"}), "name"),
        ("/message", json!({"name": " "}), "`name` is required"),
        ("/message", json!({"name": "m", "correlationKey": {"a": 1}}), "`correlationKey` must be text or a number"),
        ("/message", json!({"name": "m", "variables": [1]}), "variables"),
        ("/message", json!({"name": "m", "ttl": "soon"}), "`ttl` must be an ISO-8601 duration"),
        ("/message", json!({"name": "m", "ttl": 0}), "above zero"),
        ("/message", json!({"name": "m", "ttl": "P40D"}), "at most 30 days"),
        ("/signal", json!({"name": "s", "ttl": 5}), "a signal has no `ttl`"),
        ("/signal", json!({"name": "s", "correlationKey": "1"}), "a signal has no `correlationKey`"),
    ];
    for (path, body, named) in cases {
        let (status, answer) = s.post(path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| m.contains(named)), "{path} {body}: {answer}");
    }
    let (status, answer) = s.post("/message", json!({"name": "nobody-waits"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}

/// A review whose interrupting conditional boundary event escalates it once `escalate` holds.
const ESCALATING: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">
  <process id="escalating" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="review"/>
  <userTask id="review" name="Review"/><sequenceFlow id="f2" sourceRef="review" targetRef="e"/><endEvent id="e"/>
  <boundaryEvent id="b" attachedToRef="review"><conditionalEventDefinition><condition>${escalate == true}</condition></conditionalEventDefinition></boundaryEvent>
  <sequenceFlow id="f3" sourceRef="b" targetRef="boss"/><userTask id="boss" name="Boss"/>
  <sequenceFlow id="f4" sourceRef="boss" targetRef="e2"/><endEvent id="e2"/></process></definitions>"#;

async fn variables_set_through_the_api_make_a_conditional_boundary_event_interrupt_its_task(s: TestServer) {
    s.deploy(ESCALATING).await;
    let id =
        s.start_process("escalating", json!({"escalate": false})).await["id"].as_str().unwrap_or_default().to_owned();
    let status_of = |tasks: &[Value], name: &str| {
        tasks.iter().find(|t| t["name"] == name).map(|t| t["status"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(status_of(&s.tasks(&id).await, "Review").as_deref(), Some("active"));
    let waits = format!("/flowable-rest/service/runtime/event-subscriptions?processInstanceId={id}");
    let (status, listed) = s.get(&waits).await;
    assert_eq!((status, &listed["total"]), (StatusCode::OK, &json!(0)), "a condition has no subscription: {listed}");
    let vars = format!("/flowable-rest/service/runtime/process-instances/{id}/variables");
    let (status, body) = s.put(&vars, Some(json!([{"name": "escalate", "value": true}]))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let tasks = s.tasks(&id).await;
    assert_eq!(status_of(&tasks, "Review").as_deref(), Some("canceled"), "{tasks:?}");
    assert_eq!(status_of(&tasks, "Boss").as_deref(), Some("active"), "{tasks:?}");
    let condition =
        tasks.iter().find(|t| t["name"] == "b").unwrap_or_else(|| panic!("no record of the event: {tasks:?}"));
    assert_eq!(condition["status"], "completed", "{condition}");
    assert!(condition["params"].as_str().is_some_and(|p| p.contains("conditional")), "{condition}");
}

/// Booking then paying, each with a user task that undoes it, then a compensation end event.
const REFUND: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">
  <process id="refund" isExecutable="true"><startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="book"/>
  <task id="book" name="Book"/><sequenceFlow id="f2" sourceRef="book" targetRef="pay"/><task id="pay" name="Pay"/>
  <sequenceFlow id="f3" sourceRef="pay" targetRef="undo"/><endEvent id="undo"><compensateEventDefinition/></endEvent>
  <boundaryEvent id="cb1" attachedToRef="book"><compensateEventDefinition/></boundaryEvent>
  <userTask id="unbook" name="Cancel booking" isForCompensation="true"/><association id="a1" sourceRef="cb1" targetRef="unbook"/>
  <boundaryEvent id="cb2" attachedToRef="pay"><compensateEventDefinition/></boundaryEvent>
  <userTask id="refund_it" name="Refund" isForCompensation="true"/><association id="a2" sourceRef="cb2" targetRef="refund_it"/>
  </process></definitions>"#;

async fn a_compensation_end_event_runs_the_handlers_newest_first_through_the_api(s: TestServer) {
    s.deploy(REFUND).await;
    let id = s.start_process("refund", json!({})).await["id"].as_str().unwrap_or_default().to_owned();
    for expected in ["Refund", "Cancel booking"] {
        let tasks = s.tasks(&id).await;
        let active: Vec<&Value> = tasks.iter().filter(|t| t["status"] == "active" && t["name"] != "undo").collect();
        assert_eq!(active.len(), 1, "one handler at a time: {tasks:?}");
        assert_eq!(active[0]["name"], expected, "{tasks:?}");
        let task = active[0]["id"].as_str().unwrap_or_default();
        let (status, body) = s.put(&format!("/task/{task}/complete"), Some(json!({}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(s.settle_or_wait(&id).await["processStatus"], "success");
    let tasks = s.tasks(&id).await;
    let throw =
        tasks.iter().find(|t| t["name"] == "undo").unwrap_or_else(|| panic!("no record of the end event: {tasks:?}"));
    assert_eq!(throw["status"], "completed", "{throw}");
    assert_eq!(throw["params"], json!(r#"{"compensating":["pay","book"]}"#), "{throw}");
}

backend_tests!(server = TestServer::start;
    a_compensation_end_event_runs_the_handlers_newest_first_through_the_api,
    variables_set_through_the_api_make_a_conditional_boundary_event_interrupt_its_task,
    a_message_reaches_the_instance_whose_key_it_carries_and_only_once,
    a_message_start_event_starts_an_instance_with_the_message_variables,
    a_signal_reaches_every_wait_and_starts_the_models_that_start_with_it,
    a_message_thrown_by_one_process_reaches_another_that_waits,
    a_wait_outlives_a_restart_of_the_server,
    malformed_messages_and_signals_are_refused_naming_what_is_wrong,
    an_event_based_gateway_takes_the_first_event_that_comes_and_drops_the_others,
    a_message_with_a_ttl_is_kept_for_the_first_instance_that_comes_to_wait_for_it,
    a_thrown_message_left_unsent_by_a_stop_is_sent_when_the_server_starts_again,
);
