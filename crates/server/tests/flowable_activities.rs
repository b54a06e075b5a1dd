//! Flowable's `runtime/executions` and `history/historic-activity-instances` through the
//! real server on SQLite and PostgreSQL: a running instance has its own execution and one per
//! open activity; its history lists every event, gateway and task it passed, with filters,
//! sorts, paging and every error code.

mod common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SERVICE: &str = "/flowable-rest/service";

/// start → fork → two user tasks in parallel → join → exclusive gateway → end.
const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn">
  <process id="review" name="Review"><startEvent id="start" name="Submitted"/>
  <sequenceFlow sourceRef="start" targetRef="fork"/><parallelGateway id="fork"/>
  <sequenceFlow sourceRef="fork" targetRef="legal"/><sequenceFlow sourceRef="fork" targetRef="money"/>
  <userTask id="legal" name="Legal check" flowable:assignee="kermit"/>
  <userTask id="money" name="Budget check" flowable:assignee="fozzie"/>
  <sequenceFlow sourceRef="legal" targetRef="join"/><sequenceFlow sourceRef="money" targetRef="join"/>
  <parallelGateway id="join"/><sequenceFlow sourceRef="join" targetRef="decide"/>
  <exclusiveGateway id="decide"/><sequenceFlow sourceRef="decide" targetRef="end"/>
  <endEvent id="end" name="Done"/></process></definitions>"#;

async fn start(s: &TestServer) -> String {
    s.deploy(MODEL).await;
    let (status, p) =
        s.post(&format!("{SERVICE}/runtime/process-instances"), json!({"processDefinitionKey": "review"})).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    p["id"].as_str().unwrap_or_default().to_owned()
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    list["data"].as_array().into_iter().flatten().map(|e| e[field].as_str().unwrap_or("-").to_owned()).collect()
}

async fn executions_show_the_instance_and_its_open_activities(s: TestServer) {
    let id = start(&s).await;
    let (status, list) = s.get(&format!("{SERVICE}/runtime/executions?processInstanceId={id}")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 3, "the instance's own and one per open user task: {list}");
    let root = &list["data"][0];
    assert_eq!(
        (root["id"].as_str(), &root["parentId"], &root["activityId"]),
        (Some(id.as_str()), &Value::Null, &Value::Null)
    );
    assert_eq!(root["url"], format!("{}{SERVICE}/runtime/executions/{id}", s.base));
    let mut activities = ids(&list, "activityId")[1..].to_vec();
    activities.sort();
    assert_eq!(activities, ["legal", "money"]);
    let child = &list["data"][1];
    assert_eq!(
        (child["parentId"].as_str(), child["processInstanceId"].as_str()),
        (Some(id.as_str()), Some(id.as_str()))
    );
    assert_eq!(child["parentUrl"], root["url"]);

    let (_, one) = s.get(&format!("{SERVICE}/runtime/executions/{id}")).await;
    assert_eq!((one["id"].as_str(), one["suspended"].as_bool()), (Some(id.as_str()), Some(false)));
    let (_, active) = s.get(&format!("{SERVICE}/runtime/executions/{id}/activities")).await;
    let mut active: Vec<String> = serde_json::from_value(active).unwrap_or_default();
    active.sort();
    assert_eq!(active, ["legal", "money"]);
    let (_, legal) = s.get(&format!("{SERVICE}/runtime/executions?activityId=legal")).await;
    assert_eq!(legal["total"], 1);
    let (_, queried) =
        s.post(&format!("{SERVICE}/query/executions"), json!({"processDefinitionKey": "review", "parentId": id})).await;
    assert_eq!(queried["total"], 2, "{queried}");

    let missing = format!("{SERVICE}/runtime/executions/nope");
    assert_eq!(s.get(&missing).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.get(&format!("{missing}/activities")).await.0, StatusCode::NOT_FOUND);
    let act = format!("{SERVICE}/runtime/executions/{id}");
    assert_eq!(
        s.put(&act, Some(json!({"action": "signal"}))).await.0,
        StatusCode::BAD_REQUEST,
        "the instance waits for no trigger"
    );
    assert_eq!(s.put(&act, Some(json!({"action": "dance"}))).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(s.put(&act, Some(json!({}))).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(s.get(&format!("{SERVICE}/runtime/executions?sort=nope")).await.0, StatusCode::BAD_REQUEST);
    let with_vars = json!({"variables": [{"name": "a", "value": 1, "operation": "equals"}]});
    assert_eq!(s.post(&format!("{SERVICE}/query/executions"), with_vars).await.0, StatusCode::BAD_REQUEST);

    // Once it ended, the instance has no executions left.
    for task in ["legal", "money"] {
        let (_, tasks) =
            s.get(&format!("{SERVICE}/runtime/tasks?processInstanceId={id}&taskDefinitionKey={task}")).await;
        let task_id = tasks["data"][0]["id"].as_str().unwrap_or_default().to_owned();
        let (status, _) = s
            .call(Method::POST, &format!("{SERVICE}/runtime/tasks/{task_id}"), Some(json!({"action": "complete"})))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, after) = s.get(&format!("{SERVICE}/runtime/executions?processInstanceId={id}")).await;
    assert_eq!(after["total"], 0, "{after}");
    assert_eq!(s.get(&act).await.0, StatusCode::NOT_FOUND);
}

async fn the_activity_history_lists_every_event_gateway_and_task_passed(s: TestServer) {
    let id = start(&s).await;
    let history = format!("{SERVICE}/history/historic-activity-instances?processInstanceId={id}");
    let (status, running) = s.get(&format!("{history}&sort=activityId")).await;
    assert_eq!(status, StatusCode::OK, "{running}");
    assert_eq!(ids(&running, "activityId"), ["fork", "legal", "money", "start"], "{running}");
    let (_, open) = s.get(&format!("{history}&finished=false")).await;
    assert_eq!(open["total"], 2);
    let legal =
        open["data"].as_array().into_iter().flatten().find(|a| a["activityId"] == "legal").cloned().unwrap_or_default();
    assert_eq!(
        (legal["activityType"].as_str(), legal["assignee"].as_str(), &legal["endTime"], legal["activityName"].as_str()),
        (Some("userTask"), Some("kermit"), &Value::Null, Some("Legal check"))
    );
    let task_id = legal["taskId"].as_str().unwrap_or_default().to_owned();
    let (status, _) = s.get(&format!("{SERVICE}/runtime/tasks/{task_id}")).await;
    assert_eq!(status, StatusCode::OK, "an activity's taskId is its user task");

    for task in ["legal", "money"] {
        let (_, tasks) =
            s.get(&format!("{SERVICE}/runtime/tasks?processInstanceId={id}&taskDefinitionKey={task}")).await;
        let task_id = tasks["data"][0]["id"].as_str().unwrap_or_default().to_owned();
        s.call(Method::POST, &format!("{SERVICE}/runtime/tasks/{task_id}"), Some(json!({"action": "complete"}))).await;
    }
    let (_, all) = s.get(&format!("{history}&size=20")).await;
    assert_eq!(all["total"], 8, "start, fork, two tasks, the join passed by each branch, the gateway, end: {all}");
    assert_eq!(ids(&all, "activityId").first().map(String::as_str), Some("start"), "by start time by default");
    assert_eq!(ids(&all, "activityId").last().map(String::as_str), Some("end"));
    let start_event = &all["data"][0];
    assert_eq!(
        (
            start_event["activityType"].as_str(),
            start_event["activityName"].as_str(),
            start_event["durationInMillis"].as_i64()
        ),
        (Some("startEvent"), Some("Submitted"), Some(0))
    );
    assert_eq!(
        start_event["processInstanceUrl"],
        format!("{}{SERVICE}/history/historic-process-instances/{id}", s.base)
    );
    assert!(all["data"].as_array().into_iter().flatten().all(|a| a["endTime"].is_string()), "{all}");

    let (_, joins) = s.get(&format!("{history}&activityType=parallelGateway&activityId=join")).await;
    assert_eq!(joins["total"], 2, "{joins}");
    let (_, fozzie) = s.get(&format!("{history}&taskAssignee=fozzie")).await;
    assert_eq!(ids(&fozzie, "activityId"), ["money"]);
    let (_, paged) = s.get(&format!("{history}&sort=activityId&order=desc&start=1&size=2")).await;
    assert_eq!(
        (paged["total"].as_u64(), ids(&paged, "activityId")),
        (Some(8), vec!["money".to_owned(), "legal".to_owned()])
    );
    let (_, queried) = s
        .post(
            &format!("{SERVICE}/query/historic-activity-instances"),
            json!({"activityName": "Done", "processInstanceId": id}),
        )
        .await;
    assert_eq!(ids(&queried, "activityType"), ["endEvent"]);
    let (_, by_definition) = s
        .post(
            &format!("{SERVICE}/query/historic-activity-instances"),
            json!({"processDefinitionId": all["data"][0]["processDefinitionId"], "activityType": "userTask"}),
        )
        .await;
    assert_eq!(by_definition["total"], 2);
    let (_, none) = s.get(&format!("{SERVICE}/history/historic-activity-instances?tenantId=acme")).await;
    assert_eq!(none["total"], 0);

    for bad in ["sort=nope", "order=up", "finished=maybe", "start=-1"] {
        assert_eq!(s.get(&format!("{history}&{bad}")).await.0, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, _) = s.post(&format!("{SERVICE}/query/historic-activity-instances"), json!([1])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

backend_tests!(server = TestServer::start;
    executions_show_the_instance_and_its_open_activities,
    the_activity_history_lists_every_event_gateway_and_task_passed,
);
