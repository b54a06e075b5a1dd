//! Flowable REST against the outside world's view of it, from `../shared/conformance/`:
//! the response examples of Flowable's REST documentation (`flowable-rest-docs/
//! ch14-REST.examples.json`) must have the same fields, with the same JSON types, in our
//! answers to the same endpoints; and the models of Flowable's own REST tests
//! (`flowable/rest/`) that need only user tasks and gateways deploy through
//! `repository/deployments` and behave as those tests expect.

mod common;

use common::{Backend, TestServer, differences, must, shared_dir};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SERVICE: &str = "/flowable-rest/service";

const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn">
  <process id="oneTaskProcess" name="The One Task Process"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/>
  <userTask id="t" name="my task" flowable:assignee="fozzie" flowable:owner="kermit" flowable:candidateGroups="sales"/>
  <sequenceFlow sourceRef="t" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

async fn deploy(s: &TestServer, name: &str, xml: &str) -> (StatusCode, Value) {
    let part = reqwest::multipart::Part::text(xml.to_owned()).file_name(name.to_owned());
    let form = reqwest::multipart::Form::new().part("file", part);
    let resp = must(s.client.post(format!("{}{SERVICE}/repository/deployments", s.base)).multipart(form).send().await);
    let status = resp.status();
    (status, must(resp.json().await))
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// Our answer to each documented endpoint (by its `endpoint` line), made on a fresh server.
async fn our_answers(s: &TestServer) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    let (_, d) = deploy(s, "one.bpmn20.xml", MODEL).await;
    let dep = text(&d["id"]);
    out.push(("POST repository/deployments", d.clone()));
    out.push(("GET repository/deployments", s.get(&format!("{SERVICE}/repository/deployments")).await.1));
    out.push((
        "GET repository/deployments/{deploymentId}",
        s.get(&format!("{SERVICE}/repository/deployments/{dep}")).await.1,
    ));
    let resources = s.get(&format!("{SERVICE}/repository/deployments/{dep}/resources")).await.1;
    out.push(("GET repository/deployments/{deploymentId}/resources", resources));
    let resource = s.get(&format!("{SERVICE}/repository/deployments/{dep}/resources/one.bpmn20.xml")).await.1;
    out.push(("GET repository/deployments/{deploymentId}/resources/{resourceId}", resource));
    let defs = s.get(&format!("{SERVICE}/repository/process-definitions?deploymentId={dep}")).await.1;
    let def = text(&defs["data"][0]["id"]);
    out.push(("GET repository/process-definitions", defs));
    let one_def = s.get(&format!("{SERVICE}/repository/process-definitions/{def}")).await.1;
    out.push(("GET repository/process-definitions/{processDefinitionId}", one_def));

    let start = json!({"processDefinitionId": def, "businessKey": "myBusinessKey",
        "variables": [{"name": "intProcVar", "type": "integer", "value": 123}, {"name": "test", "value": "myTest"},
            {"name": "stringProcVar", "value": "This is a ProcVariable"}, {"name": "processTest", "value": "myProcessTest"}]});
    let (_, p) = s.post(&format!("{SERVICE}/runtime/process-instances"), start).await;
    let pid = text(&p["id"]);
    out.push(("POST runtime/process-instances", p));
    let runtime = format!("{SERVICE}/runtime/process-instances");
    out.push(("GET runtime/process-instances/{processInstanceId}", s.get(&format!("{runtime}/{pid}")).await.1));
    out.push(("GET runtime/process-instances", s.get(&runtime).await.1));
    out.push((
        "POST query/process-instances",
        s.post(&format!("{SERVICE}/query/process-instances"), json!({})).await.1,
    ));
    out.push((
        "GET runtime/process-instances/{processInstanceId}/variables",
        s.get(&format!("{runtime}/{pid}/variables")).await.1,
    ));
    let var = s.get(&format!("{runtime}/{pid}/variables/intProcVar")).await.1;
    out.push(("GET runtime/process-instances/{processInstanceId}/variables/{variableName}", var));

    let tasks = format!("{SERVICE}/runtime/tasks");
    let list = s.get(&format!("{tasks}?processInstanceId={pid}")).await.1;
    let tid = text(&list["data"][0]["id"]);
    out.push(("GET runtime/tasks", list));
    out.push((
        "POST query/tasks",
        s.post(&format!("{SERVICE}/query/tasks"), json!({"processInstanceId": pid})).await.1,
    ));
    out.push(("GET runtime/tasks/{taskId}", s.get(&format!("{tasks}/{tid}")).await.1));
    s.post(
        &format!("{tasks}/{tid}/variables"),
        json!([{"name": "myTaskVariable", "value": "Hello", "scope": "local"},
        {"name": "doubleTaskVar", "type": "double", "value": 99.99, "scope": "local"},
        {"name": "test", "value": "myTest", "scope": "local"}]),
    )
    .await;
    out.push((
        "GET runtime/tasks/{taskId}/variables?scope={scope}",
        s.get(&format!("{tasks}/{tid}/variables")).await.1,
    ));
    let tvar = s.get(&format!("{tasks}/{tid}/variables/myTaskVariable")).await.1;
    out.push(("GET runtime/tasks/{taskId}/variables/{variableName}?scope={scope}", tvar));
    out.push(("GET runtime/tasks/{taskId}/identitylinks", s.get(&format!("{tasks}/{tid}/identitylinks")).await.1));
    let link = s.get(&format!("{tasks}/{tid}/identitylinks/groups/sales/candidate")).await.1;
    out.push(("GET runtime/tasks/{taskId}/identitylinks/{family}/{identityId}/{type}", link));
    let (_, comment) = s
        .post(
            &format!("{tasks}/{tid}/comments"),
            json!({"message": "This is a comment", "saveProcessInstanceId": true}),
        )
        .await;
    out.push(("POST runtime/tasks/{taskId}/comments", comment.clone()));
    out.push(("GET runtime/tasks/{taskId}/comments", s.get(&format!("{tasks}/{tid}/comments")).await.1));
    out.push((
        "GET runtime/tasks/{taskId}/comments/{commentId}",
        s.get(&format!("{tasks}/{tid}/comments/{}", text(&comment["id"]))).await.1,
    ));
    let events = s.get(&format!("{tasks}/{tid}/events")).await.1;
    out.push((
        "GET runtime/tasks/{taskId}/events/{eventId}",
        s.get(&format!("{tasks}/{tid}/events/{}", text(&events[0]["id"]))).await.1,
    ));
    out.push(("GET runtime/tasks/{taskId}/events", events));
    let attachment = json!({"name": "Simple attachment", "description": "Simple attachment description", "type": "simpleType", "externalUrl": "https://flowable.org"});
    let (_, a) = s.post(&format!("{tasks}/{tid}/attachments"), attachment).await;
    out.push(("POST runtime/tasks/{taskId}/attachments", a.clone()));
    out.push(("GET runtime/tasks/{taskId}/attachments", s.get(&format!("{tasks}/{tid}/attachments")).await.1));
    out.push((
        "GET runtime/tasks/{taskId}/attachments/{attachmentId}",
        s.get(&format!("{tasks}/{tid}/attachments/{}", text(&a["id"]))).await.1,
    ));

    let executions = format!("{SERVICE}/runtime/executions");
    out.push(("GET runtime/executions/{executionId}", s.get(&format!("{executions}/{pid}")).await.1));
    out.push(("GET runtime/executions", s.get(&format!("{executions}?processInstanceId={pid}")).await.1));
    out.push((
        "POST query/executions",
        s.post(&format!("{SERVICE}/query/executions"), json!({"processInstanceId": pid})).await.1,
    ));
    out.push((
        "GET runtime/executions/{executionId}/activities",
        s.get(&format!("{executions}/{pid}/activities")).await.1,
    ));

    s.post(&format!("{tasks}/{tid}"), json!({"action": "complete"})).await;
    let history = format!("{SERVICE}/history");
    out.push((
        "GET history/historic-activity-instances",
        s.get(&format!("{history}/historic-activity-instances?activityType=userTask")).await.1,
    ));
    out.push((
        "POST query/historic-activity-instances",
        s.post(&format!("{SERVICE}/query/historic-activity-instances"), json!({"processInstanceId": pid})).await.1,
    ));
    out.push((
        "GET history/historic-process-instances/{processInstanceId}",
        s.get(&format!("{history}/historic-process-instances/{pid}")).await.1,
    ));
    out.push((
        "GET history/historic-process-instances",
        s.get(&format!("{history}/historic-process-instances?includeProcessVariables=true")).await.1,
    ));
    out.push((
        "POST query/historic-process-instances",
        s.post(&format!("{SERVICE}/query/historic-process-instances"), json!({})).await.1,
    ));
    out.push((
        "GET history/historic-task-instances/{taskId}",
        s.get(&format!("{history}/historic-task-instances/{tid}")).await.1,
    ));
    out.push((
        "GET history/historic-task-instances",
        s.get(&format!(
            "{history}/historic-task-instances?includeTaskLocalVariables=true&includeProcessVariables=true"
        ))
        .await
        .1,
    ));
    out.push((
        "POST query/historic-task-instances",
        s.post(
            &format!("{SERVICE}/query/historic-task-instances"),
            json!({"includeProcessVariables": true, "includeTaskLocalVariables": true}),
        )
        .await
        .1,
    ));

    let identity = format!("{SERVICE}/identity");
    s.post(
        &format!("{identity}/users"),
        json!({"id": "testuser", "firstName": "Fred", "lastName": "McDonald", "email": "no-reply@flowable.org"}),
    )
    .await;
    out.push(("GET identity/users/{userId}", s.get(&format!("{identity}/users/testuser")).await.1));
    out.push(("GET identity/users", s.get(&format!("{identity}/users")).await.1));
    s.post(&format!("{identity}/groups"), json!({"id": "testgroup", "name": "Test group", "type": "Test type"})).await;
    out.push(("GET identity/groups/{groupId}", s.get(&format!("{identity}/groups/testgroup")).await.1));
    out.push(("GET identity/groups", s.get(&format!("{identity}/groups")).await.1));
    let (_, member) = s.post(&format!("{identity}/groups/testgroup/members"), json!({"userId": "testuser"})).await;
    out.push(("POST identity/groups/{groupId}/members", member));
    out
}

#[tokio::test]
async fn documented_responses_have_the_fields_and_types_of_the_examples() {
    let Some(shared) = shared_dir() else { return };
    let examples: Vec<Value> = must(serde_json::from_str(&must(std::fs::read_to_string(
        shared.join("conformance/flowable-rest-docs/ch14-REST.examples.json"),
    ))));
    let Some(s) = TestServer::start(Backend::Sqlite).await else { return };
    let answers = our_answers(&s).await;
    let mut compared = 0;
    let mut problems = Vec::new();
    for example in &examples {
        let endpoint = example["endpoint"].as_str().unwrap_or_default();
        let label = example["label"].as_str().unwrap_or_default();
        if !label.contains("response") && !label.contains("Response") {
            continue;
        }
        let Some((_, ours)) = answers.iter().find(|(e, _)| *e == endpoint) else { continue };
        compared += 1;
        let mut out = Vec::new();
        differences("", &example["json"], ours, &mut out);
        problems.extend(out.into_iter().map(|d| format!("{endpoint} (line {}): {d}", example["line"])));
    }
    assert!(compared >= 41, "only {compared} documented responses were compared");
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
}

/// Deploys a model of Flowable's REST tests, starts `key`, checks the first open tasks'
/// names, then completes every task (with `vars`) until the instance is in the history as
/// finished.
async fn runs_through(s: &TestServer, file: &str, key: &str, first: &[&str]) {
    let Some(shared) = shared_dir() else { return };
    let xml = must(std::fs::read_to_string(shared.join("conformance/flowable/rest").join(file)));
    let (status, d) = deploy(s, file, &xml).await;
    assert_eq!(status, StatusCode::CREATED, "{file}: {d}");
    let (status, p) =
        s.post(&format!("{SERVICE}/runtime/process-instances"), json!({"processDefinitionKey": key})).await;
    assert_eq!(status, StatusCode::CREATED, "{file}: {p}");
    let pid = text(&p["id"]);
    let mut seen_first = false;
    for _ in 0..20 {
        let (_, tasks) = s.get(&format!("{SERVICE}/runtime/tasks?processInstanceId={pid}&sort=name")).await;
        let open = tasks["data"].as_array().cloned().unwrap_or_default();
        if !seen_first {
            let names: Vec<&str> = open.iter().map(|t| t["name"].as_str().unwrap_or("")).collect();
            assert_eq!(names, first, "{file}: the first open tasks");
            seen_first = true;
        }
        if open.is_empty() {
            break;
        }
        for t in open {
            let (status, body) =
                s.post(&format!("{SERVICE}/runtime/tasks/{}", text(&t["id"])), json!({"action": "complete"})).await;
            assert_eq!(status, StatusCode::OK, "{file}: {body}");
        }
    }
    let (_, h) = s.get(&format!("{SERVICE}/history/historic-process-instances/{pid}")).await;
    assert!(h["endTime"].as_str().is_some(), "{file}: the instance ended: {h}");
}

macro_rules! flowable_rest_models {
    ($($name:ident: $file:literal, $key:literal, [$($task:literal),*];)*) => {$(
        #[tokio::test]
        async fn $name() {
            let Some(s) = TestServer::start(Backend::Sqlite).await else { return };
            runs_through(&s, $file, $key, &[$($task),*]).await;
        }
    )*};
}

flowable_rest_models! {
    one_task_process_waits_at_my_task: "oneTaskProcess.bpmn20.xml", "oneTaskProcess", ["my task"];
    two_task_process_runs_its_tasks_in_turn: "twoTaskProcess.bpmn20.xml", "oneTaskProcess", ["Process task"];
    one_task_process_with_di_ignores_the_diagram: "oneTaskProcessWithDi.bpmn20.xml", "oneTaskProcessWithDi", ["theTask"];
    process_with_form_starts_without_its_form: "ProcessInstanceResourceTest.process-with-form.bpmn20.xml", "processOne", ["Process task"];
    two_tasks_run_in_turn: "two-tasks.bpmn20.xml", "one-task", ["Task 1"];
    complete_task_model_assigns_kermit: "TaskResourceTest.testCompleteTask.bpmn20.xml", "oneTaskProcess", ["my task"];
    reclaim_model_offers_the_task_to_sales: "TaskResourceTest.testReclaimTask.bpmn20.xml", "reclaimTest", ["my group task"];
    query_tasks_model_has_candidates: "TaskQueryResourceTest.testQueryTasks.bpmn20.xml", "oneTaskProcess", ["Process task"];
    identity_link_model_waits_at_my_task: "ProcessInstanceIdentityLinkResourceTest.process.bpmn20.xml", "oneTaskProcess", ["my task"];
    candidate_group_history_model_runs_two_tasks: "HistoricTaskInstanceCollectionResourceTest.testQueryTaskInstancesWithCandidateGroup.bpmn20.xml", "oneTaskProcess", ["Process task"];
    parallel_task_model_forks_after_the_first_task: "parallelTask.bpmn20.xml", "startParallelProcess", ["Task before sub process"];
}

/// The candidate and assignee attributes of those models become the task's people.
#[tokio::test]
async fn the_models_people_become_the_tasks_people() {
    let Some(s) = TestServer::start(Backend::Sqlite).await else { return };
    let Some(shared) = shared_dir() else { return };
    let xml = must(std::fs::read_to_string(
        shared.join("conformance/flowable/rest/TaskQueryResourceTest.testQueryTasks.bpmn20.xml"),
    ));
    deploy(&s, "q.bpmn20.xml", &xml).await;
    s.post(&format!("{SERVICE}/runtime/process-instances"), json!({"processDefinitionKey": "oneTaskProcess"})).await;
    let (_, by_user) = s.get(&format!("{SERVICE}/runtime/tasks?candidateUser=kermit")).await;
    let (_, by_group) = s.get(&format!("{SERVICE}/runtime/tasks?candidateGroup=sales")).await;
    assert_eq!((by_user["total"].as_u64(), by_group["total"].as_u64()), (Some(1), Some(1)));
}
