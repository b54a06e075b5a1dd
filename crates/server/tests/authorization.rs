//! Who may do what, through the real server on SQLite and PostgreSQL: each rule of the README's
//! "Who may do what" is tried by a user who must be refused (403 in the dialect's shape) and by
//! one who may.

mod common;

use common::{TestServer, must, signed_in};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const SERVICE: &str = "/flowable-rest/service";

/// Users `kermit` and `piggy` (ordinary; piggy in group `muppets`) and `ops` (an operator).
async fn people(s: &TestServer) -> (Client, Client, Client) {
    for group in ["operator", "muppets"] {
        let (status, body) = s.post(&format!("{SERVICE}/identity/groups"), json!({"id": group})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for user in ["kermit", "piggy", "ops"] {
        let (status, body) = s.post(&format!("{SERVICE}/identity/users"), json!({"id": user, "password": "pw"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for (group, user) in [("operator", "ops"), ("muppets", "piggy")] {
        let (status, body) =
            s.post(&format!("{SERVICE}/identity/groups/{group}/members"), json!({"userId": user})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    (signed_in("kermit:pw"), signed_in("piggy:pw"), signed_in("ops:pw"))
}

const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn">
  <process id="guarded"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="f"/><parallelGateway id="f"/>
  <sequenceFlow sourceRef="f" targetRef="mine"/><sequenceFlow sourceRef="f" targetRef="theirs"/>
  <userTask id="mine" flowable:assignee="kermit"/><userTask id="theirs" flowable:candidateGroups="muppets"/>
  </process></definitions>"#;

async fn start_as(s: &TestServer, who: &Client, key: &str) -> String {
    let body = json!({"key": key, "processName": "p", "variables": {}});
    let (status, process) = s.call_with(who, Method::POST, "/process", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{process}");
    process["processInstanceId"].as_str().unwrap_or_default().to_owned()
}

async fn task_at(s: &TestServer, instance: &str, element: &str) -> String {
    let (_, tasks) =
        s.get(&format!("{SERVICE}/runtime/tasks?processInstanceId={instance}&taskDefinitionKey={element}")).await;
    tasks["data"][0]["id"].as_str().unwrap_or_default().to_owned()
}

async fn only_operators_deploy_models(s: TestServer) {
    let (kermit, _, ops) = people(&s).await;
    let deploy = |who: &Client| {
        who.post(format!("{}/model", s.base)).header("content-type", "application/xml").body(MODEL).send()
    };
    let refused = must(deploy(&kermit).await);
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = must(refused.json().await);
    assert!(body["message"].as_str().unwrap_or_default().contains("user 'kermit' may not deploy"), "{body}");
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::text(MODEL).file_name("guarded.bpmn20.xml"));
    let flowable =
        must(kermit.post(format!("{}{SERVICE}/repository/deployments", s.base)).multipart(form).send().await);
    assert_eq!(flowable.status(), StatusCode::FORBIDDEN);
    let body: Value = must(flowable.json().await);
    assert_eq!(body["message"], "Forbidden", "Flowable's shape: {body}");
    assert_eq!(must(deploy(&ops).await).status(), StatusCode::CREATED);
    let (status, _) = s.call_with(&kermit, Method::GET, "/model", None).await;
    assert_eq!(status, StatusCode::OK, "anyone reads the models");
}

async fn a_process_is_reached_by_its_starter_operators_and_administrators(s: TestServer) {
    let (kermit, piggy, ops) = people(&s).await;
    s.deploy(MODEL).await;
    let id = start_as(&s, &kermit, "guarded").await;
    let encoded: String = id.bytes().map(|b| format!("%{b:02X}")).collect();
    for (method, path) in [
        (Method::GET, format!("/process/{id}")),
        (Method::GET, format!("/process/{encoded}")),
        (Method::GET, format!("/task?processInstanceId={encoded}")),
        (Method::GET, format!("/task?processInstanceId={id}")),
        (Method::PUT, format!("/process/{id}/cancel")),
        (Method::GET, format!("{SERVICE}/runtime/process-instances/{id}")),
        (Method::GET, format!("{SERVICE}/runtime/process-instances/{id}/variables")),
        (Method::GET, format!("{SERVICE}/runtime/executions/{id}/activities")),
        (Method::DELETE, format!("{SERVICE}/runtime/process-instances/{id}")),
    ] {
        let (status, body) = s.call_with(&piggy, method.clone(), &path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
    }
    let (_, records) = s.get(&format!("/task?processInstanceId={id}")).await;
    let record = records[0]["id"].as_str().unwrap_or_default();
    assert_eq!(s.call_with(&piggy, Method::GET, &format!("/task/{record}"), None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(s.call_with(&kermit, Method::GET, &format!("/process/{id}"), None).await.0, StatusCode::OK);
    let (_, mine) = s.call_with(&kermit, Method::GET, "/process", None).await;
    let (_, none) = s.call_with(&piggy, Method::GET, "/process", None).await;
    let (_, all) = s.call_with(&ops, Method::GET, "/process", None).await;
    assert_eq!((mine["total"].as_u64(), none["total"].as_u64()), (Some(1), Some(0)), "{mine} {none}");
    assert_eq!(all["total"], 1, "{all}");
    let (_, flowable_none) =
        s.call_with(&piggy, Method::GET, &format!("{SERVICE}/runtime/process-instances"), None).await;
    assert_eq!(flowable_none["total"], 0, "{flowable_none}");
    for (method, path, body) in [
        (Method::POST, "/worker/fetch".to_owned(), Some(json!({"workerId": "w", "stones": ["MachineStone"]}))),
        (Method::GET, format!("{SERVICE}/management/jobs"), None),
        (Method::GET, format!("{SERVICE}/management/timer-jobs"), None),
        (Method::POST, format!("{SERVICE}/management/timer-jobs/t1"), Some(json!({"action": "move"}))),
        (Method::DELETE, format!("{SERVICE}/management/timer-jobs/t1"), None),
        (Method::GET, format!("{SERVICE}/management/deadletter-jobs"), None),
        (Method::GET, format!("{SERVICE}/history/historic-activity-instances"), None),
        (Method::GET, format!("{SERVICE}/history/historic-task-instances?processInstanceId={id}"), None),
        (Method::POST, format!("{SERVICE}/query/executions"), Some(json!({}))),
    ] {
        let (status, answer) = s.call_with(&piggy, method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
    }
    let own = format!("{SERVICE}/history/historic-activity-instances?processInstanceId={id}");
    let (status, body) = s.call_with(&kermit, Method::GET, &own, None).await;
    assert_eq!(status, StatusCode::OK, "the starter lists their instance's history: {body}");
    let (status, body) = s.call_with(&ops, Method::PUT, &format!("/process/{id}/cancel"), None).await;
    assert_eq!(status, StatusCode::OK, "an operator operates any process: {body}");
}

async fn user_tasks_are_completed_and_claimed_by_their_people(s: TestServer) {
    let (kermit, piggy, _) = people(&s).await;
    s.deploy(MODEL).await;
    let id = start_as(&s, &kermit, "guarded").await;
    let (mine, theirs) = (task_at(&s, &id, "mine").await, task_at(&s, &id, "theirs").await);
    let act = |task: &str| format!("{SERVICE}/runtime/tasks/{task}");
    // piggy is a candidate of `theirs` (group muppets) and has no part in `mine`.
    let complete = json!({"action": "complete"});
    let (status, body) = s.call_with(&piggy, Method::POST, &act(&mine), Some(complete.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) =
        s.call_with(&kermit, Method::POST, &act(&theirs), Some(json!({"action": "claim", "assignee": "kermit"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the starter may see it, but is no candidate: {body}");
    let (status, body) =
        s.call_with(&piggy, Method::POST, &act(&theirs), Some(json!({"action": "claim", "assignee": "piggy"}))).await;
    assert_eq!(status, StatusCode::OK, "a candidate claims: {body}");
    let (status, body) = s.call_with(&kermit, Method::PUT, &format!("/task/{theirs}/complete"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "claimed by piggy now: {body}");
    let (_, listed) = s.call_with(&piggy, Method::GET, &format!("{SERVICE}/runtime/tasks"), None).await;
    assert_eq!(listed["total"], 1, "piggy sees only her task: {listed}");
    assert_eq!(s.call_with(&piggy, Method::POST, &act(&theirs), Some(complete.clone())).await.0, StatusCode::OK);
    assert_eq!(
        s.call_with(&kermit, Method::PUT, &format!("/task/{mine}/complete"), Some(json!({}))).await.0,
        StatusCode::OK
    );
    assert_eq!(s.process(&id).await["processStatus"], "success");
}

async fn an_administrator_overrides_and_comments_are_deleted_by_their_author(s: TestServer) {
    let (kermit, _, ops) = people(&s).await;
    s.deploy(MODEL).await;
    let id = start_as(&s, &kermit, "guarded").await;
    let mine = task_at(&s, &id, "mine").await;
    let comments = format!("{SERVICE}/runtime/tasks/{mine}/comments");
    let (status, comment) = s.post(&comments, json!({"message": "admin was here"})).await;
    assert_eq!(status, StatusCode::CREATED, "{comment}");
    let one = format!("{comments}/{}", comment["id"].as_str().unwrap_or_default());
    let (status, body) = s.call_with(&kermit, Method::DELETE, &one, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not kermit's comment: {body}");
    let (status, body) = s
        .call_with(&ops, Method::POST, &format!("{SERVICE}/runtime/tasks/{mine}"), Some(json!({"action": "complete"})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an operator is no administrator: {body}");
    assert_eq!(s.call(Method::DELETE, &one, None).await.0, StatusCode::NO_CONTENT);
    let (status, body) = s.post(&format!("{SERVICE}/runtime/tasks/{mine}"), json!({"action": "complete"})).await;
    assert_eq!(status, StatusCode::OK, "admin overrides: {body}");
}

/// Users of two tenants: `acme_op` (an operator) and `acme_user` of `acme`, `zed_op` (an
/// operator) of `zed`.
async fn tenants(s: &TestServer) -> (Client, Client, Client) {
    let (status, body) = s.post(&format!("{SERVICE}/identity/groups"), json!({"id": "operator"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (user, tenant, operator) in [("acme_op", "acme", true), ("acme_user", "acme", false), ("zed_op", "zed", true)] {
        let body = json!({"id": user, "password": "pw", "tenantId": tenant});
        let (status, made) = s.post(&format!("{SERVICE}/identity/users"), body).await;
        assert_eq!((status, made["tenantId"].as_str()), (StatusCode::CREATED, Some(tenant)), "{made}");
        if operator {
            let member = json!({"userId": user});
            assert_eq!(
                s.post(&format!("{SERVICE}/identity/groups/operator/members"), member).await.0,
                StatusCode::CREATED
            );
        }
    }
    (signed_in("acme_op:pw"), signed_in("acme_user:pw"), signed_in("zed_op:pw"))
}

async fn users_of_a_tenant_see_and_act_within_it_only(s: TestServer) {
    let (acme_op, acme_user, zed_op) = tenants(&s).await;
    for who in [&acme_op, &zed_op] {
        let deployed = must(
            who.post(format!("{}/model", s.base)).header("content-type", "application/xml").body(MODEL).send().await,
        );
        assert_eq!(deployed.status(), StatusCode::CREATED);
    }
    let (_, zed_models) = s.call_with(&zed_op, Method::GET, "/model?key=guarded", None).await;
    assert_eq!(zed_models["total"], 1, "each tenant sees its own version: {zed_models}");
    let (_, all_models) = s.get("/model?key=guarded").await;
    assert_eq!(all_models["total"], 2, "the administrator sees both: {all_models}");
    let id = start_as(&s, &acme_user, "guarded").await;
    let (_, mine) = s.call_with(&acme_user, Method::GET, &format!("/process/{id}"), None).await;
    let model = mine["modelId"].as_str().unwrap_or_default().to_owned();
    let (_, definition) = s.get(&format!("{SERVICE}/repository/process-definitions/{model}")).await;
    assert_eq!(definition["tenantId"], "acme", "started from its tenant's version: {definition}");
    for (method, path) in [
        (Method::GET, format!("/process/{id}")),
        (Method::PUT, format!("/process/{id}/cancel")),
        (Method::GET, format!("{SERVICE}/runtime/process-instances/{id}")),
        (Method::GET, format!("/model/{model}")),
        (Method::GET, format!("{SERVICE}/repository/process-definitions/{model}")),
    ] {
        let (status, body) = s.call_with(&zed_op, method.clone(), &path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "an operator of another tenant: {method} {path}: {body}");
    }
    let task = task_at(&s, &id, "theirs").await;
    let (status, _) = s.call_with(&zed_op, Method::GET, &format!("{SERVICE}/runtime/tasks/{task}"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (path, who, total) in [
        ("/process", &zed_op, 0),
        ("/process", &acme_op, 1),
        ("/flowable-rest/service/runtime/tasks", &zed_op, 0),
        ("/flowable-rest/service/runtime/tasks", &acme_op, 2),
        ("/flowable-rest/service/runtime/process-instances", &zed_op, 0),
        ("/flowable-rest/service/repository/deployments", &zed_op, 1),
    ] {
        let (_, listed) = s.call_with(who, Method::GET, path, None).await;
        assert_eq!(listed["total"], total, "{path}: {listed}");
    }
    let form = reqwest::multipart::Form::new()
        .text("tenantId", "acme")
        .part("file", reqwest::multipart::Part::text(MODEL).file_name("guarded.bpmn20.xml"));
    let refused = must(zed_op.post(format!("{}{SERVICE}/repository/deployments", s.base)).multipart(form).send().await);
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "no deploying for another tenant");
    let (status, body) = s
        .call_with(
            &acme_user,
            Method::PUT,
            &format!("{SERVICE}/identity/users/acme_user"),
            Some(json!({"tenantId": "zed"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a user cannot move themselves to another tenant: {body}");
    assert_eq!(s.call_with(&acme_op, Method::PUT, &format!("/process/{id}/cancel"), None).await.0, StatusCode::OK);
}

backend_tests!(server = TestServer::start;
    users_of_a_tenant_see_and_act_within_it_only,
    only_operators_deploy_models,
    a_process_is_reached_by_its_starter_operators_and_administrators,
    user_tasks_are_completed_and_claimed_by_their_people,
    an_administrator_overrides_and_comments_are_deleted_by_their_author,
);
