//! Flowable's `runtime/tasks` API (seed 003) through the real server on SQLite and
//! PostgreSQL: user tasks of processes and standalone ones, the task list's filters and
//! envelope, update, actions, variables, identity links, comments, events, attachments, and
//! every error code of the seed's tables.

mod common;

use common::{TestServer, must};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TASKS: &str = "/flowable-rest/service/runtime/tasks";

/// A review task with people and a due date; `approved` decides the way out.
const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn">
  <process id="review" name="Review process"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="check"/>
  <userTask id="check" name="Check ${doc}" flowable:candidateUsers="kermit" flowable:candidateGroups="sales"
      flowable:priority="70" flowable:dueDate="2030-01-02T03:04:05.000Z" flowable:formKey="checkForm" flowable:category="docs">
    <documentation>Look at ${doc}</documentation></userTask>
  <sequenceFlow sourceRef="check" targetRef="gw"/><exclusiveGateway id="gw" default="no"/>
  <sequenceFlow id="yes" sourceRef="gw" targetRef="publish"><conditionExpression>${approved}</conditionExpression></sequenceFlow>
  <sequenceFlow id="no" sourceRef="gw" targetRef="rework"/>
  <userTask id="publish" name="Publish" flowable:assignee="${author}"/><sequenceFlow sourceRef="publish" targetRef="e"/>
  <userTask id="rework" name="Rework"/><sequenceFlow sourceRef="rework" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

async fn started(s: &TestServer, doc: &str) -> String {
    s.deploy(MODEL).await;
    let p = s.start_process("review", json!({"doc": doc, "author": "fozzie"})).await;
    p["processInstanceId"].as_str().unwrap_or_default().to_owned()
}

/// The open tasks of an instance, by the task list.
async fn tasks_of(s: &TestServer, instance: &str) -> Vec<Value> {
    let (status, body) = s.get(&format!("{TASKS}?processInstanceId={instance}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

async fn one_task(s: &TestServer, instance: &str) -> (String, Value) {
    let tasks = tasks_of(s, instance).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    (tasks[0]["id"].as_str().unwrap_or_default().to_owned(), tasks[0].clone())
}

async fn a_process_user_task_shows_its_evaluated_fields_with_absolute_urls(s: TestServer) {
    let instance = started(&s, "spec").await;
    let (id, task) = one_task(&s, &instance).await;
    assert_eq!((task["name"].as_str(), task["description"].as_str()), (Some("Check spec"), Some("Look at spec")));
    assert_eq!((task["priority"].as_i64(), task["taskDefinitionKey"].as_str()), (Some(70), Some("check")));
    assert_eq!(task["dueDate"], json!("2030-01-02T03:04:05.000+0000"));
    assert_eq!((task["formKey"].as_str(), task["category"].as_str()), (Some("checkForm"), Some("docs")));
    assert_eq!((task["assignee"].clone(), task["suspended"].clone()), (Value::Null, json!(false)));
    let url = task["url"].as_str().unwrap_or_default();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with(&format!("{TASKS}/{id}")), "{url}");
    let instance_url = task["processInstanceUrl"].as_str().unwrap_or_default();
    assert!(instance_url.ends_with(&format!("/flowable-rest/service/runtime/process-instances/{instance}")));
    assert_eq!(task["processInstance"], task["processInstanceUrl"], "seed 003's field names too");
    let (status, got) = s.get(&format!("{TASKS}/{id}")).await;
    assert_eq!((status, got["id"].as_str()), (StatusCode::OK, Some(id.as_str())));
    let (status, body) = s.get(&format!("{TASKS}/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"message": "Not found", "exception": "Could not find a task with id 'nope'."}));
}

async fn the_task_list_filters_by_people_and_pages_in_flowables_envelope(s: TestServer) {
    let first = started(&s, "a").await;
    let second = started(&s, "b").await;
    let (status, page) = s.get(&format!("{TASKS}?candidateUser=kermit&size=1&sort=name&order=desc")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!((page["total"].as_u64(), page["size"].as_u64(), page["start"].as_u64()), (Some(2), Some(1), Some(0)));
    assert_eq!((page["sort"].as_str(), page["order"].as_str()), (Some("name"), Some("desc")));
    assert_eq!(page["data"][0]["name"], json!("Check b"));
    let (_, by_group) = s.get(&format!("{TASKS}?candidateGroup=sales")).await;
    assert_eq!(by_group["total"], json!(2));
    let (_, nobody) = s.get(&format!("{TASKS}?candidateUser=gonzo")).await;
    assert_eq!(nobody["total"], json!(0));
    let (_, by_key) = s.get(&format!("{TASKS}?processDefinitionKey=review&nameLike=Check%25")).await;
    assert_eq!(by_key["total"], json!(2));
    let (_, one) = s.get(&format!("{TASKS}?processInstanceId={second}&includeProcessVariables=true")).await;
    let vars = one["data"][0]["variables"].as_array().cloned().unwrap_or_default();
    assert!(vars.contains(&json!({"name": "doc", "scope": "global", "type": "string", "value": "b"})), "{vars:?}");
    let query = json!({"processInstanceVariables": [{"name": "doc", "value": "A", "operation": "equalsIgnoreCase"}]});
    let (status, found) = s.post("/flowable-rest/service/query/tasks", query).await;
    assert_eq!((status, found["total"].clone()), (StatusCode::OK, json!(1)), "{found}");
    assert_eq!(found["data"][0]["processInstanceId"].as_str(), Some(first.as_str()));
    for bad in ["delegationState=maybe", "sort=color", "order=up", "priority=high", "createdBefore=yesterday"] {
        let (status, body) = s.get(&format!("{TASKS}?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["message"], json!("Bad request"));
    }
    let bad_op = json!({"taskVariables": [{"name": "x", "value": 1, "operation": "near"}]});
    assert_eq!(s.post("/flowable-rest/service/query/tasks", bad_op).await.0, StatusCode::BAD_REQUEST);
}

async fn claim_delegate_resolve_and_complete_move_the_process_on(s: TestServer) {
    let instance = started(&s, "spec").await;
    let (id, _) = one_task(&s, &instance).await;
    let path = format!("{TASKS}/{id}");
    let act = |body: Value| s.post(&path, body);
    assert_eq!(act(json!({"action": "claim", "assignee": "kermit"})).await.0, StatusCode::OK);
    let (status, body) = act(json!({"action": "claim", "assignee": "gonzo"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "claimed by another: {body}");
    assert_eq!(act(json!({"action": "delegate"})).await.0, StatusCode::BAD_REQUEST, "a delegate is required");
    assert_eq!(act(json!({"action": "delegate", "assignee": "gonzo"})).await.0, StatusCode::OK);
    let (_, task) = s.get(&format!("{TASKS}/{id}")).await;
    assert_eq!(
        (task["assignee"].as_str(), task["owner"].as_str(), task["delegationState"].as_str()),
        (Some("gonzo"), Some("kermit"), Some("pending"))
    );
    let (_, delegated) = s.get(&format!("{TASKS}?delegationState=pending")).await;
    assert_eq!(delegated["total"], json!(1));
    assert_eq!(
        act(json!({"action": "complete"})).await.0,
        StatusCode::CONFLICT,
        "a pending delegation is resolved first"
    );
    assert_eq!(act(json!({"action": "resolve"})).await.0, StatusCode::OK);
    let (_, task) = s.get(&format!("{TASKS}/{id}")).await;
    assert_eq!((task["assignee"].as_str(), task["delegationState"].as_str()), (Some("kermit"), Some("resolved")));
    assert!(task["claimTime"].is_string());
    assert_eq!(act(json!({"action": "fly"})).await.0, StatusCode::BAD_REQUEST);
    let done = json!({"action": "complete", "variables": [{"name": "approved", "type": "boolean", "value": "true"}]});
    assert_eq!(act(done).await.0, StatusCode::OK);
    assert_eq!(s.get(&format!("{TASKS}/{id}")).await.0, StatusCode::NOT_FOUND, "a completed task is history");
    let (_, next) = one_task(&s, &instance).await;
    assert_eq!((next["name"].as_str(), next["assignee"].as_str()), (Some("Publish"), Some("fozzie")));
    let (_, mine) = s.get(&format!("{TASKS}?assignee=fozzie")).await;
    assert_eq!(mine["total"], json!(1));
    assert_eq!(act(json!({"action": "complete"})).await.0, StatusCode::NOT_FOUND);
}

async fn update_sets_present_fields_and_a_null_clears_one(s: TestServer) {
    let instance = started(&s, "spec").await;
    let (id, _) = one_task(&s, &instance).await;
    let body = json!({"name": "Renamed", "priority": 20, "dueDate": "2031-05-06T07:08:09.000+02:00", "owner": "boss"});
    let (status, task) = s.put(&format!("{TASKS}/{id}"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert_eq!((task["name"].as_str(), task["priority"].as_i64()), (Some("Renamed"), Some(20)));
    assert_eq!(task["dueDate"], json!("2031-05-06T05:08:09.000+0000"));
    assert_eq!(task["description"], json!("Look at spec"), "absent fields stay");
    let (_, task) = s.put(&format!("{TASKS}/{id}"), Some(json!({"dueDate": null}))).await;
    assert_eq!((task["dueDate"].clone(), task["owner"].as_str()), (Value::Null, Some("boss")));
    assert_eq!(s.put(&format!("{TASKS}/{id}"), Some(json!({"delegationState": "x"}))).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(s.put(&format!("{TASKS}/{id}"), Some(json!({"dueDate": "soon"}))).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(s.put(&format!("{TASKS}/nope"), Some(json!({"name": "x"}))).await.0, StatusCode::NOT_FOUND);
    let (status, _) = s.call(Method::DELETE, &format!("{TASKS}/{id}"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a process's task is not deleted alone");
}

async fn standalone_tasks_and_subtasks_are_created_completed_and_deleted(s: TestServer) {
    let (status, parent) = s.post(TASKS, json!({"name": "Plan", "assignee": "kermit"})).await;
    assert_eq!(status, StatusCode::CREATED, "{parent}");
    let parent_id = parent["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!((parent["priority"].as_i64(), parent["processInstanceId"].clone()), (Some(50), Value::Null));
    let (status, sub) = s.post(TASKS, json!({"name": "Step", "parentTaskId": parent_id})).await;
    assert_eq!(status, StatusCode::CREATED);
    let sub_id = sub["id"].as_str().unwrap_or_default().to_owned();
    assert!(sub["parentTaskUrl"].as_str().is_some_and(|u| u.ends_with(&parent_id)));
    assert_eq!(s.post(TASKS, json!({"name": "x", "parentTaskId": "nope"})).await.0, StatusCode::BAD_REQUEST);
    let (_, top) = s.get(&format!("{TASKS}?excludeSubTasks=true")).await;
    assert_eq!(top["total"], json!(1));
    assert_eq!(s.post(&format!("{TASKS}/{sub_id}"), json!({"action": "complete"})).await.0, StatusCode::OK);
    assert_eq!(s.get(&format!("{TASKS}/{sub_id}")).await.0, StatusCode::NOT_FOUND);
    let (status, _) = s.call(Method::DELETE, &format!("{TASKS}/{parent_id}?deleteReason=obsolete"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(s.call(Method::DELETE, &format!("{TASKS}/{parent_id}"), None).await.0, StatusCode::NOT_FOUND);
}

async fn task_variables_local_and_global_with_their_codes(s: TestServer) {
    let instance = started(&s, "spec").await;
    let (id, _) = one_task(&s, &instance).await;
    let vars = format!("{TASKS}/{id}/variables");
    let create = json!([
        {"name": "doubleTaskVar", "scope": "local", "type": "double", "value": 99.99},
        {"name": "when", "type": "date", "value": "2020-01-01T00:00:00.000+0000"},
        {"name": "procVar", "scope": "global", "value": "hello"}
    ]);
    let (status, made) = s.post(&vars, create).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made[0], json!({"name": "doubleTaskVar", "scope": "local", "type": "double", "value": 99.99}));
    let (status, _) = s.post(&vars, json!([{"name": "doubleTaskVar", "value": 1}])).await;
    assert_eq!(status, StatusCode::CONFLICT, "it exists");
    assert_eq!(
        s.post(&vars, json!([{"name": "procVar", "scope": "global", "value": 1}])).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(s.post(&vars, json!([])).await.0, StatusCode::BAD_REQUEST, "an empty list");
    assert_eq!(s.post(&vars, json!([{"value": 1}])).await.0, StatusCode::BAD_REQUEST, "no name");
    assert_eq!(s.post(&vars, json!({"name": "x"})).await.0, StatusCode::BAD_REQUEST, "not a list");
    let (_, all) = s.get(&vars).await;
    let names: Vec<&str> = all.as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect();
    assert!(names.contains(&"doubleTaskVar") && names.contains(&"procVar") && names.contains(&"doc"), "{names:?}");
    let (_, locals) = s.get(&format!("{vars}?scope=local")).await;
    assert_eq!(locals.as_array().map(Vec::len), Some(2));
    let (status, one) = s.get(&format!("{vars}/procVar")).await;
    assert_eq!((status, one["scope"].as_str(), one["value"].as_str()), (StatusCode::OK, Some("global"), Some("hello")));
    assert_eq!(s.get(&format!("{vars}/procVar?scope=local")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.get(&format!("{vars}/x?scope=sideways")).await.0, StatusCode::BAD_REQUEST);
    let (status, updated) = s
        .put(&format!("{vars}/doubleTaskVar"), Some(json!({"name": "doubleTaskVar", "type": "long", "value": 7})))
        .await;
    assert_eq!((status, updated["type"].as_str()), (StatusCode::OK, Some("long")));
    let wrong = json!({"name": "other", "value": 1});
    assert_eq!(s.put(&format!("{vars}/doubleTaskVar"), Some(wrong)).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.put(&format!("{vars}/missing"), Some(json!({"name": "missing", "value": 1}))).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = s.call(Method::DELETE, &format!("{vars}/procVar?scope=global"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&format!("{vars}/procVar")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.call(Method::DELETE, &format!("{vars}/procVar"), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.call(Method::DELETE, &vars, None).await.0, StatusCode::NO_CONTENT);
    let (_, locals) = s.get(&format!("{vars}?scope=local")).await;
    assert_eq!(locals, json!([]));
    assert_eq!(s.get(&format!("{TASKS}/nope/variables")).await.0, StatusCode::NOT_FOUND);

    let (_, standalone) = s.post(TASKS, json!({"name": "alone"})).await;
    let alone = standalone["id"].as_str().unwrap_or_default();
    let global = json!([{"name": "g", "scope": "global", "value": 1}]);
    assert_eq!(s.post(&format!("{TASKS}/{alone}/variables"), global).await.0, StatusCode::BAD_REQUEST);
}

async fn binary_variables_come_as_multipart_and_are_served_from_data(s: TestServer) {
    let (_, task) = s.post(TASKS, json!({"name": "files"})).await;
    let id = task["id"].as_str().unwrap_or_default();
    let form = reqwest::multipart::Form::new()
        .text("name", "blob")
        .part("file", reqwest::multipart::Part::bytes(vec![0u8, 159, 146, 150]).file_name("blob.bin"));
    let resp = must(s.client.post(format!("{}{TASKS}/{id}/variables", s.base)).multipart(form).send().await);
    assert_eq!(resp.status(), StatusCode::CREATED);
    let made: Value = must(resp.json().await);
    assert_eq!((made["type"].as_str(), made["value"].clone()), (Some("binary"), Value::Null));
    let data_url = made["valueUrl"].as_str().unwrap_or_default().to_owned();
    assert!(data_url.ends_with(&format!("{TASKS}/{id}/variables/blob/data")), "{data_url}");
    let resp = must(s.client.get(&data_url).send().await);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(must(resp.bytes().await).to_vec(), vec![0u8, 159, 146, 150]);
    let _ = s.post(&format!("{TASKS}/{id}/variables"), json!([{"name": "text", "value": "x"}])).await;
    assert_eq!(s.get(&format!("{TASKS}/{id}/variables/text/data")).await.0, StatusCode::NOT_FOUND, "not binary");
}

async fn identity_links_in_all_four_shapes(s: TestServer) {
    let instance = started(&s, "spec").await;
    let (id, _) = one_task(&s, &instance).await;
    let links = format!("{TASKS}/{id}/identitylinks");
    let (_, all) = s.get(&links).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2), "the model's candidates: {all}");
    let (status, made) = s.post(&links, json!({"userId": "gonzo", "type": "participant"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(made["url"].as_str().is_some_and(|u| u.ends_with(&format!("{links}/users/gonzo/participant"))));
    assert_eq!(
        s.post(&links, json!({"userId": "a", "groupId": "b", "type": "candidate"})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(s.post(&links, json!({"userId": "a"})).await.0, StatusCode::BAD_REQUEST, "a type is required");
    let (_, users) = s.get(&format!("{links}/users")).await;
    assert_eq!(users.as_array().map(Vec::len), Some(2));
    let (_, groups) = s.get(&format!("{links}/groups")).await;
    assert_eq!(groups, json!([{"userId": null, "groupId": "sales", "type": "candidate", "url": groups[0]["url"]}]));
    let (status, one) = s.get(&format!("{links}/groups/sales/candidate")).await;
    assert_eq!((status, one["groupId"].as_str()), (StatusCode::OK, Some("sales")));
    assert_eq!(s.get(&format!("{links}/groups/sales/owner")).await.0, StatusCode::NOT_FOUND);
    let (_, involved) = s.get(&format!("{TASKS}?involvedUser=gonzo")).await;
    assert_eq!(involved["total"], json!(1));
    assert_eq!(
        s.call(Method::DELETE, &format!("{links}/users/gonzo/participant"), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.call(Method::DELETE, &format!("{links}/users/gonzo/participant"), None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, events) = s.get(&format!("{TASKS}/{id}/events")).await;
    let actions: Vec<&str> = events.as_array().into_iter().flatten().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["AddUserLink", "DeleteUserLink"]);
    assert_eq!(events[0]["message"], json!(["gonzo", "participant"]));
    let event_id = events[0]["id"].as_str().unwrap_or_default();
    let (status, event) = s.get(&format!("{TASKS}/{id}/events/{event_id}")).await;
    assert_eq!((status, event["action"].as_str()), (StatusCode::OK, Some("AddUserLink")));
    assert_eq!(s.get(&format!("{TASKS}/{id}/events/nope")).await.0, StatusCode::NOT_FOUND);
}

async fn comments_and_attachments_with_their_codes(s: TestServer) {
    let instance = started(&s, "spec").await;
    let (id, _) = one_task(&s, &instance).await;
    let comments = format!("{TASKS}/{id}/comments");
    let (status, c) = s.post(&comments, json!({"message": "Looks good", "saveProcessInstanceId": true})).await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert_eq!((c["message"].as_str(), c["processInstanceId"].as_str()), (Some("Looks good"), Some(instance.as_str())));
    assert!(c["processInstanceUrl"].as_str().is_some_and(|u| u.contains("/history/historic-process-instances/")));
    assert_eq!(s.post(&comments, json!({})).await.0, StatusCode::BAD_REQUEST);
    let (_, list) = s.get(&comments).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let cid = c["id"].as_str().unwrap_or_default();
    assert_eq!(s.get(&format!("{comments}/{cid}")).await.0, StatusCode::OK);
    assert_eq!(s.call(Method::DELETE, &format!("{comments}/{cid}"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&format!("{comments}/{cid}")).await.0, StatusCode::NOT_FOUND);

    let attachments = format!("{TASKS}/{id}/attachments");
    let link = json!({"name": "Simple attachment", "type": "simpleType", "externalUrl": "http://flowable.org"});
    let (status, a) = s.post(&attachments, link).await;
    assert_eq!((status, a["contentUrl"].clone()), (StatusCode::CREATED, Value::Null));
    assert_eq!(s.post(&attachments, json!({"description": "no name"})).await.0, StatusCode::BAD_REQUEST);
    let form = reqwest::multipart::Form::new()
        .text("name", "notes")
        .text("type", "text/plain")
        .part("file", reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("notes.txt"));
    let resp = must(s.client.post(format!("{}{attachments}", s.base)).multipart(form).send().await);
    assert_eq!(resp.status(), StatusCode::CREATED);
    let file: Value = must(resp.json().await);
    let content_url = file["contentUrl"].as_str().unwrap_or_default().to_owned();
    let resp = must(s.client.get(&content_url).send().await);
    assert_eq!((resp.headers()["content-type"].to_str().ok(), resp.status()), (Some("text/plain"), StatusCode::OK));
    assert_eq!(must(resp.text().await), "hello");
    let empty = reqwest::multipart::Form::new().text("name", "nothing");
    let resp = must(s.client.post(format!("{}{attachments}", s.base)).multipart(empty).send().await);
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "no file part");
    let (_, list) = s.get(&attachments).await;
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let aid = a["id"].as_str().unwrap_or_default();
    assert_eq!(s.get(&format!("{attachments}/{aid}/content")).await.0, StatusCode::NOT_FOUND, "an external link");
    assert_eq!(s.call(Method::DELETE, &format!("{attachments}/{aid}"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&format!("{attachments}/{aid}")).await.0, StatusCode::NOT_FOUND);
    let (_, events) = s.get(&format!("{TASKS}/{id}/events")).await;
    let actions: Vec<&str> = events.as_array().into_iter().flatten().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["AddComment", "AddAttachment", "AddAttachment", "DeleteAttachment"]);
}

async fn malformed_bodies_answer_400_in_flowables_shape(s: TestServer) {
    let (_, task) = s.post(TASKS, json!({"name": "x"})).await;
    let id = task["id"].as_str().unwrap_or_default();
    let (status, body) = s.post_raw(&format!("{TASKS}/{id}"), "{not json", "application/json").await;
    assert_eq!((status, body["message"].as_str()), (StatusCode::BAD_REQUEST, Some("Bad request")));
    assert!(body["exception"].as_str().is_some_and(|e| e.contains("malformed")), "{body}");
    let (status, _) = s.post_raw(TASKS, "[1]", "application/json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A value of the wrong JSON type is refused by name, as Flowable's JSON reader refuses it.
    let query = "/flowable-rest/service/query/tasks";
    for (path, body) in [
        (TASKS.to_owned(), json!({"name": {"first": "x"}})),
        (query.to_owned(), json!({"assignee": ["kermit"]})),
        (query.to_owned(), json!({"candidateGroupIn": [1]})),
        (format!("{TASKS}/{id}/variables"), json!([{"name": "v", "value": 1, "scope": "nowhere"}])),
    ] {
        let (status, answer) = s.post(&path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let named = ["name", "assignee", "candidateGroupIn", "nowhere"]
            .iter()
            .any(|n| answer["exception"].as_str().unwrap_or_default().contains(n));
        assert!(named, "{body}: {answer}");
    }
}

/// Two changes of one task sent at once, over and over: each pair is serialised, the loser is
/// refused by the rule the winner's change brought into force (never a "was updated
/// simultaneously"), and the task ends as the winner left it.
async fn racing_changes_of_one_task_let_one_win_and_refuse_the_other_by_its_rule(s: TestServer) {
    let act = async |id: &str, body: Value| s.post(&format!("{TASKS}/{id}"), body).await;
    for round in 0..8 {
        let instance = started(&s, &format!("race {round}")).await;
        let (id, _) = one_task(&s, &instance).await;

        // Two claims: one assignee wins, the other is told the task is claimed.
        let (a, b) = tokio::join!(
            act(&id, json!({"action": "claim", "assignee": "kermit"})),
            act(&id, json!({"action": "claim", "assignee": "gonzo"}))
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "{a:?} {b:?}");
        let (loser, winner) = if a.0 == StatusCode::OK { (&b.1, "kermit") } else { (&a.1, "gonzo") };
        assert!(loser["exception"].as_str().unwrap_or_default().contains("already claimed"), "{loser}");
        let (_, task) = s.get(&format!("{TASKS}/{id}")).await;
        assert_eq!(task["assignee"], winner, "{task}");

        // A delegation and a completion: either the task is delegated and cannot be completed
        // until it is resolved, or it is completed and there is nothing left to delegate.
        let (d, c) = tokio::join!(
            act(&id, json!({"action": "delegate", "assignee": "piggy"})),
            act(&id, json!({"action": "complete", "variables": [{"name": "approved", "value": true}]}))
        );
        match (d.0, c.0) {
            (StatusCode::OK, StatusCode::CONFLICT) => {
                assert!(c.1["exception"].as_str().unwrap_or_default().contains("delegated"), "{c:?}");
                let (_, task) = s.get(&format!("{TASKS}/{id}")).await;
                assert_eq!(
                    (task["assignee"].as_str(), task["delegationState"].as_str()),
                    (Some("piggy"), Some("pending"))
                );
                assert_eq!(act(&id, json!({"action": "resolve"})).await.0, StatusCode::OK);
                let done = json!({"action": "complete", "variables": [{"name": "approved", "value": true}]});
                assert_eq!(act(&id, done).await.0, StatusCode::OK);
            }
            // Found ended by the handler (404) or by the committer (409, as a second completion).
            (StatusCode::NOT_FOUND | StatusCode::CONFLICT, StatusCode::OK) => {}
            other => panic!("a delegation and a completion ended {other:?}: {d:?} {c:?}"),
        }

        // A claim and a completion of the next task: the claim lands before (both pass) or
        // finds the task ended.
        let (next, _) = one_task(&s, &instance).await;
        let (claim, complete) = tokio::join!(
            act(&next, json!({"action": "claim", "assignee": "fozzie"})),
            act(&next, json!({"action": "complete"}))
        );
        assert_eq!(complete.0, StatusCode::OK, "{complete:?}");
        assert!(matches!(claim.0, StatusCode::OK | StatusCode::NOT_FOUND | StatusCode::CONFLICT), "{claim:?}");
        assert_eq!(s.process(&instance).await["processStatus"], "success");
    }
}

/// Sorted statuses of two answers.
fn both(a: &(StatusCode, Value), b: &(StatusCode, Value)) -> [StatusCode; 2] {
    let mut statuses = [a.0, b.0];
    statuses.sort();
    statuses
}

/// Two changes of what hangs on one task sent at once, over and over: the rule each must pass
/// reads the task as the other left it, so exactly one wins and the other gets Flowable's
/// refusal — never two creations of one variable, two deletions of one comment, or a write to a
/// task deleted under it.
async fn racing_changes_of_a_tasks_parts_let_exactly_one_win(s: TestServer) {
    let instance = started(&s, "parts race").await;
    let (id, _) = one_task(&s, &instance).await;
    let task = format!("{TASKS}/{id}");
    for round in 0..8 {
        // Two creations of one local variable: one 201, one 409; the stored value is the winner's.
        let var = |value: i64| json!([{"name": format!("v{round}"), "scope": "local", "value": value}]);
        let vars = format!("{task}/variables");
        let (a, b) = tokio::join!(s.post(&vars, var(1)), s.post(&vars, var(2)));
        assert_eq!(both(&a, &b), [StatusCode::CREATED, StatusCode::CONFLICT], "{a:?} {b:?}");
        let winner = if a.0 == StatusCode::CREATED { 1 } else { 2 };
        let (_, stored) = s.get(&format!("{task}/variables/v{round}")).await;
        assert_eq!(stored["value"], json!(winner), "{stored}");

        // Two creations of one global variable: the same, on the process.
        let global = |value: i64| json!([{"name": format!("g{round}"), "scope": "global", "value": value}]);
        let (a, b) = tokio::join!(s.post(&vars, global(1)), s.post(&vars, global(2)));
        assert_eq!(both(&a, &b), [StatusCode::CREATED, StatusCode::CONFLICT], "{a:?} {b:?}");

        // Two deletions of one comment: one 204, one 404.
        let (status, comment) = s.post(&format!("{task}/comments"), json!({"message": "hi"})).await;
        assert_eq!(status, StatusCode::CREATED, "{comment}");
        let path = format!("{task}/comments/{}", comment["id"].as_str().unwrap_or_default());
        let (a, b) = tokio::join!(s.call(Method::DELETE, &path, None), s.call(Method::DELETE, &path, None));
        assert_eq!(both(&a, &b), [StatusCode::NO_CONTENT, StatusCode::NOT_FOUND], "{a:?} {b:?}");

        // A link added twice at once is there once, with one event.
        let link = json!({"groupId": format!("g{round}"), "type": "candidate"});
        let links = format!("{task}/identitylinks");
        let (a, b) = tokio::join!(s.post(&links, link.clone()), s.post(&links, link));
        assert_eq!(both(&a, &b), [StatusCode::CREATED; 2], "{a:?} {b:?}");
        let (_, groups) = s.get(&format!("{task}/identitylinks/groups")).await;
        let mine = groups.as_array().map_or(0, |g| g.iter().filter(|l| l["groupId"] == format!("g{round}")).count());
        assert_eq!(mine, 1, "{groups}");
        let (_, events) = s.get(&format!("{task}/events")).await;
        let added = events.as_array().map_or(0, |e| {
            e.iter().filter(|e| e["action"] == "AddGroupLink" && e["message"][0] == format!("g{round}")).count()
        });
        assert_eq!(added, 1, "{events}");

        // A standalone task deleted while a comment is added: the comment lands before the
        // deletion (and goes with it) or finds the task gone; nothing of it is left.
        let (_, alone) = s.post(TASKS, json!({"name": format!("alone {round}")})).await;
        let alone_id = alone["id"].as_str().unwrap_or_default().to_owned();
        let (gone, comments) =
            (format!("{TASKS}/{alone_id}?cascadeHistory=true"), format!("{TASKS}/{alone_id}/comments"));
        let (d, c) = tokio::join!(s.call(Method::DELETE, &gone, None), s.post(&comments, json!({"message": "late"})));
        assert_eq!(d.0, StatusCode::NO_CONTENT, "{d:?}");
        assert!(matches!(c.0, StatusCode::CREATED | StatusCode::NOT_FOUND), "{c:?}");
        assert_eq!(s.get(&comments).await.0, StatusCode::NOT_FOUND);
    }
}

backend_tests!(server = TestServer::start;
    racing_changes_of_one_task_let_one_win_and_refuse_the_other_by_its_rule,
    racing_changes_of_a_tasks_parts_let_exactly_one_win,
    a_process_user_task_shows_its_evaluated_fields_with_absolute_urls,
    the_task_list_filters_by_people_and_pages_in_flowables_envelope,
    claim_delegate_resolve_and_complete_move_the_process_on,
    update_sets_present_fields_and_a_null_clears_one,
    standalone_tasks_and_subtasks_are_created_completed_and_deleted,
    task_variables_local_and_global_with_their_codes,
    binary_variables_come_as_multipart_and_are_served_from_data,
    identity_links_in_all_four_shapes,
    comments_and_attachments_with_their_codes,
    malformed_bodies_answer_400_in_flowables_shape,
);
