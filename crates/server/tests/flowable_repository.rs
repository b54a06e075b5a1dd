//! Flowable's repository, process-instance and history APIs through the real server on
//! SQLite and PostgreSQL: deploy as multipart, read definitions and resources, start by id or
//! key with variables and a business key, work the instance's variables, finish it through its
//! task, find it in the history, and remove the deployment; with every error code.

mod common;

use common::{TestServer, must};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SERVICE: &str = "/flowable-rest/service";

const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn">
  <process id="oneTask" name="One task"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/>
  <userTask id="t" name="Do ${what}" flowable:assignee="kermit"/><sequenceFlow sourceRef="t" targetRef="e"/>
  <endEvent id="e"/></process></definitions>"#;

/// Deploys `files` (name, content) as multipart with `fields`; the status and the answer.
async fn deploy(s: &TestServer, files: &[(&str, &str)], fields: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = reqwest::multipart::Form::new();
    for (name, content) in files {
        form = form.part("file", reqwest::multipart::Part::text(content.to_string()).file_name(name.to_string()));
    }
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    let resp = must(s.client.post(format!("{}{SERVICE}/repository/deployments", s.base)).multipart(form).send().await);
    let status = resp.status();
    (status, must(resp.json().await))
}

async fn deployments_definitions_and_resources(s: TestServer) {
    let (status, d) =
        deploy(&s, &[("one-task.bpmn20.xml", MODEL)], &[("tenantId", "acme"), ("category", "examples")]).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    assert_eq!(
        (d["name"].as_str(), d["tenantId"].as_str(), d["category"].as_str()),
        (Some("one-task.bpmn20.xml"), Some("acme"), Some("examples"))
    );
    let id = d["id"].as_str().unwrap_or_default();
    assert_eq!(d["url"], format!("{}{SERVICE}/repository/deployments/{id}", s.base));
    assert!(d["deploymentTime"].as_str().is_some_and(|t| t.ends_with("+0000")), "{d}");

    let (_, list) = s.get(&format!("{SERVICE}/repository/deployments?tenantId=acme")).await;
    assert_eq!((list["total"].as_u64(), &list["data"][0]["id"]), (Some(1), &json!(id)));
    let (_, none) = s.get(&format!("{SERVICE}/repository/deployments?nameLike=zzz%25")).await;
    assert_eq!(none["total"], 0);
    assert_eq!(s.get(&format!("{SERVICE}/repository/deployments/nope")).await.0, StatusCode::NOT_FOUND);

    let (_, resources) = s.get(&format!("{SERVICE}/repository/deployments/{id}/resources")).await;
    assert_eq!(resources[0]["id"], "one-task.bpmn20.xml", "{resources}");
    let data_url = resources[0]["dataUrl"].as_str().unwrap_or_default().to_owned();
    let xml = must(must(s.client.get(&data_url).send().await).text().await);
    assert!(xml.contains("oneTask"), "{xml}");
    let resource = format!("{SERVICE}/repository/deployments/{id}/resources/one-task.bpmn20.xml");
    assert_eq!(s.get(&resource).await.0, StatusCode::OK);
    assert_eq!(
        s.get(&format!("{SERVICE}/repository/deployments/{id}/resources/other.xml")).await.0,
        StatusCode::NOT_FOUND
    );

    let (_, defs) = s.get(&format!("{SERVICE}/repository/process-definitions?key=oneTask&latest=true")).await;
    assert_eq!(defs["total"], 1, "{defs}");
    let def = &defs["data"][0];
    assert_eq!(
        (def["version"].as_i64(), def["name"].as_str(), def["tenantId"].as_str()),
        (Some(1), Some("One task"), Some("acme"))
    );
    assert_eq!(def["deploymentId"], id);
    let def_id = def["id"].as_str().unwrap_or_default();
    assert_eq!(s.get(&format!("{SERVICE}/repository/process-definitions/{def_id}")).await.1["key"], "oneTask");
    assert_eq!(s.get(&format!("{SERVICE}/repository/process-definitions/nope")).await.0, StatusCode::NOT_FOUND);
    let xml = must(
        must(
            s.client
                .get(format!("{}{SERVICE}/repository/process-definitions/{def_id}/resourcedata", s.base))
                .send()
                .await,
        )
        .text()
        .await,
    );
    assert!(xml.contains("oneTask"));
    assert_eq!(s.get(&format!("{SERVICE}/repository/process-definitions?sort=color")).await.0, StatusCode::BAD_REQUEST);
    for malformed in ["categoryLike=x&latest=maybe", "suspended=true&version=99999999999999999999"] {
        let (status, body) = s.get(&format!("{SERVICE}/repository/process-definitions?{malformed}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "refused even where no definition could match: {body}");
    }

    let (status, again) = deploy(&s, &[("one-task.bpmn", MODEL)], &[("deploymentName", "second")]).await;
    assert_eq!((status, again["name"].as_str()), (StatusCode::CREATED, Some("second")));
    let (_, defs) =
        s.get(&format!("{SERVICE}/repository/process-definitions?key=oneTask&sort=version&order=desc")).await;
    assert_eq!((defs["total"].as_u64(), defs["data"][0]["version"].as_i64()), (Some(2), Some(2)));

    let (status, body) = deploy(&s, &[("diagram.png", "not xml")], &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = deploy(&s, &[("broken.bpmn", "<definitions")], &[]).await;
    assert_eq!((status, body["message"].as_str()), (StatusCode::BAD_REQUEST, Some("Bad request")), "{body}");
    let (status, _) = deploy(&s, &[], &[("tenantId", "x")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a deployment needs a file");
}

async fn process_instances_from_start_to_history(s: TestServer) {
    let (_, d) = deploy(&s, &[("one.bpmn20.xml", MODEL)], &[]).await;
    let deployment = d["id"].as_str().unwrap_or_default().to_owned();
    let start = json!({
        "processDefinitionKey": "oneTask", "businessKey": "order-7", "returnVariables": true,
        "variables": [{"name": "what", "value": "dishes"}, {"name": "n", "type": "integer", "value": "3"}]
    });
    let (status, p) = s.post(&format!("{SERVICE}/runtime/process-instances"), start).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(
        (p["businessKey"].as_str(), p["startUserId"].as_str(), p["suspended"].as_bool()),
        (Some("order-7"), Some("admin"), Some(false))
    );
    assert!(p["variables"].as_array().is_some_and(|v| v.iter().any(|v| v["name"] == "n" && v["value"] == 3)), "{p}");
    let id = p["id"].as_str().unwrap_or_default().to_owned();
    let instance = format!("{SERVICE}/runtime/process-instances/{id}");
    assert_eq!(s.get(&instance).await.1["processDefinitionKey"], "oneTask");

    let bad = [
        json!({}),
        json!({"processDefinitionKey": "oneTask", "processDefinitionId": "x"}),
        json!({"processDefinitionKey": "oneTask", "variables": [{"name": "n", "type": "integer", "value": "x"}]}),
    ];
    for body in bad {
        assert_eq!(
            s.post(&format!("{SERVICE}/runtime/process-instances"), body.clone()).await.0,
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }
    let (status, body) = s.post(&format!("{SERVICE}/runtime/process-instances"), json!({"message": "newOrder"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no definition starts with that message: {body}");
    let (status, _) =
        s.post(&format!("{SERVICE}/runtime/process-instances"), json!({"processDefinitionKey": "nope"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, list) = s.get(&format!("{SERVICE}/runtime/process-instances?businessKey=order-7")).await;
    assert_eq!((list["total"].as_u64(), &list["data"][0]["id"]), (Some(1), &json!(id)));
    let (_, queried) =
        s.post(&format!("{SERVICE}/query/process-instances"), json!({"processDefinitionKey": "oneTask"})).await;
    assert_eq!(queried["total"], 1);
    for (filter, total) in [
        ("processInstanceBusinessKey=order-7", 1),
        ("processInstanceBusinessKeyLike=order%25", 1),
        ("processInstanceBusinessKey=order-8", 0),
    ] {
        let (_, tasks) = s.get(&format!("{SERVICE}/runtime/tasks?{filter}")).await;
        assert_eq!(tasks["total"], total, "{filter}: {tasks}");
    }

    let vars = format!("{instance}/variables");
    let (_, all) = s.get(&vars).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
    let (status, one) = s.get(&format!("{vars}/what")).await;
    assert_eq!(
        (status, one),
        (StatusCode::OK, json!({"name": "what", "type": "string", "value": "dishes", "scope": "local"}))
    );
    assert_eq!(s.get(&format!("{vars}/nope")).await.0, StatusCode::NOT_FOUND);
    let (status, _) = s.post(&vars, json!([{"name": "what", "value": "x"}])).await;
    assert_eq!(status, StatusCode::CONFLICT, "creating an existing variable");
    let (status, _) = s.post(&vars, json!([{"name": "extra", "type": "boolean", "value": true}])).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, changed) = s.put(&format!("{vars}/what"), Some(json!({"name": "what", "value": "laundry"}))).await;
    assert_eq!((status, changed["value"].as_str()), (StatusCode::OK, Some("laundry")));
    assert_eq!(
        s.put(&format!("{vars}/what"), Some(json!({"name": "other", "value": 1}))).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(s.call(Method::DELETE, &format!("{vars}/extra"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.call(Method::DELETE, &format!("{vars}/extra"), None).await.0, StatusCode::NOT_FOUND);

    let (_, tasks) = s.get(&format!("{SERVICE}/runtime/tasks?processInstanceId={id}")).await;
    assert_eq!(tasks["data"][0]["name"], "Do dishes", "the name was evaluated at creation");
    let task = tasks["data"][0]["id"].as_str().unwrap_or_default().to_owned();
    let (status, _) = s.post(&format!("{SERVICE}/runtime/tasks/{task}"), json!({"action": "complete"})).await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(s.get(&instance).await.0, StatusCode::NOT_FOUND, "an ended instance is history only");
    let (status, h) = s.get(&format!("{SERVICE}/history/historic-process-instances/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert!(h["endTime"].as_str().is_some() && h["durationInMillis"].as_i64().is_some(), "{h}");
    assert_eq!((h["businessKey"].as_str(), h["startUserId"].as_str()), (Some("order-7"), Some("admin")));
    assert_eq!(h["endActivityId"], "e", "the end event that completed it");
    let (_, finished) = s
        .get(&format!("{SERVICE}/history/historic-process-instances?finished=true&processDefinitionKey=oneTask"))
        .await;
    assert_eq!(finished["total"], 1);
    let (_, open) = s.post(&format!("{SERVICE}/query/historic-process-instances"), json!({"finished": false})).await;
    assert_eq!(open["total"], 0, "{open}");
    let (_, ht) =
        s.get(&format!("{SERVICE}/history/historic-task-instances?processInstanceId={id}&finished=true")).await;
    assert_eq!((ht["total"].as_u64(), ht["data"][0]["assignee"].as_str()), (Some(1), Some("kermit")), "{ht}");
    let (status, one) = s.get(&format!("{SERVICE}/history/historic-task-instances/{task}")).await;
    assert!(status == StatusCode::OK && one["endTime"].as_str().is_some(), "{one}");
    assert_eq!(s.get(&format!("{SERVICE}/history/historic-task-instances/nope")).await.0, StatusCode::NOT_FOUND);

    // A running instance is deleted through the runtime API; the deployment then goes with
    // its ended instances only with cascade.
    let (_, second) = s
        .post(
            &format!("{SERVICE}/runtime/process-instances"),
            json!({"processDefinitionKey": "oneTask", "variables": [{"name": "what", "value": "it"}]}),
        )
        .await;
    let second_id = second["id"].as_str().unwrap_or_default();
    assert!(!second_id.is_empty(), "{second}");
    let deployments = format!("{SERVICE}/repository/deployments/{deployment}");
    assert_eq!(
        s.call(Method::DELETE, &format!("{deployments}?cascade=true"), None).await.0,
        StatusCode::CONFLICT,
        "one still runs"
    );
    let second_url = format!("{SERVICE}/runtime/process-instances/{second_id}");
    assert_eq!(s.call(Method::DELETE, &second_url, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.call(Method::DELETE, &second_url, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.call(Method::DELETE, &deployments, None).await.0, StatusCode::CONFLICT, "ended ones need cascade");
    assert_eq!(s.call(Method::DELETE, &format!("{deployments}?cascade=true"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&deployments).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.get(&format!("{SERVICE}/history/historic-process-instances/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.call(Method::DELETE, &deployments, None).await.0, StatusCode::NOT_FOUND);
}

async fn platform_models_are_flowable_definitions(s: TestServer) {
    let (_, defs) = s.get(&format!("{SERVICE}/repository/process-definitions?key=w2_usertask")).await;
    assert_eq!(defs["total"], 1, "the bundled example, deployed through the platform: {defs}");
    let model = s.deploy(MODEL).await;
    let (_, def) = s
        .get(&format!("{SERVICE}/repository/process-definitions/{}", model["modelId"].as_str().unwrap_or_default()))
        .await;
    assert_eq!(def["key"], "oneTask");
}

async fn the_user_tasks_of_a_tenants_deployment_belong_to_the_tenant(s: TestServer) {
    let (status, _) = deploy(&s, &[("one-task.bpmn20.xml", MODEL)], &[("tenantId", "acme")]).await;
    assert_eq!(status, StatusCode::CREATED);
    let body =
        json!({"processDefinitionKey": "oneTask", "tenantId": "acme", "variables": [{"name": "what", "value": "it"}]});
    let (status, started) = s.post(&format!("{SERVICE}/runtime/process-instances"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let (_, tasks) = s.get(&format!("{SERVICE}/runtime/tasks?tenantId=acme")).await;
    assert_eq!(tasks["total"], 1, "{tasks}");
    assert_eq!(tasks["data"][0]["tenantId"], "acme", "{tasks}");
    let (_, none) = s.get(&format!("{SERVICE}/runtime/tasks?withoutTenantId=true")).await;
    assert_eq!(none["total"], 0, "{none}");
}

/// The pixels of a PNG answer, after checking it is one.
async fn png(s: &TestServer, path: &str) -> resvg::tiny_skia::Pixmap {
    let resp = must(s.client.get(format!("{}{path}", s.base)).send().await);
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    let kind = resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(kind.as_deref(), Some("image/png"), "{path}");
    let bytes = must(resp.bytes().await);
    resvg::tiny_skia::Pixmap::decode_png(&bytes).unwrap_or_else(|e| panic!("{path} is no PNG: {e}"))
}

/// How many pixels have exactly this colour.
fn painted(image: &resvg::tiny_skia::Pixmap, rgb: (u8, u8, u8)) -> usize {
    image.pixels().iter().filter(|p| (p.red(), p.green(), p.blue()) == rgb).count()
}

async fn definitions_and_running_instances_are_drawn_as_png_images(s: TestServer) {
    let (status, d) = deploy(&s, &[("one-task.bpmn20.xml", MODEL)], &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let (_, defs) = s.get(&format!("{SERVICE}/repository/process-definitions?key=oneTask")).await;
    let definition = defs["data"][0]["id"].as_str().unwrap_or_default().to_owned();
    let waiting = (0xfe, 0xf9, 0xc3);
    let model = png(&s, &format!("{SERVICE}/repository/process-definitions/{definition}/image")).await;
    assert!(model.width() >= 200 && model.height() >= 100, "{}×{}", model.width(), model.height());
    assert_eq!(painted(&model, waiting), 0, "a definition has no states");
    let body = json!({"processDefinitionId": definition, "variables": [{"name": "what", "value": "it"}]});
    let (_, started) = s.post(&format!("{SERVICE}/runtime/process-instances"), body).await;
    let instance = started["id"].as_str().unwrap_or_default().to_owned();
    let drawn = png(&s, &format!("{SERVICE}/runtime/process-instances/{instance}/diagram")).await;
    assert_eq!((drawn.width(), drawn.height()), (model.width(), model.height()), "the same drawing");
    assert!(painted(&drawn, waiting) > 500, "the task it waits on is filled as waiting");

    let missing = s.get(&format!("{SERVICE}/repository/process-definitions/nothing/image")).await;
    assert_eq!(missing.0, StatusCode::NOT_FOUND, "{}", missing.1);
    let (_, tasks) = s.get(&format!("{SERVICE}/runtime/tasks?processInstanceId={instance}")).await;
    let task = tasks["data"][0]["id"].as_str().unwrap_or_default().to_owned();
    let (status, _) = s.post(&format!("{SERVICE}/runtime/tasks/{task}"), json!({"action": "complete"})).await;
    assert_eq!(status, StatusCode::OK);
    let ended = s.get(&format!("{SERVICE}/runtime/process-instances/{instance}/diagram")).await;
    assert_eq!(ended.0, StatusCode::NOT_FOUND, "an ended instance is no runtime one: {}", ended.1);
}

backend_tests!(server = TestServer::start;
    definitions_and_running_instances_are_drawn_as_png_images,
    the_user_tasks_of_a_tenants_deployment_belong_to_the_tenant,
    deployments_definitions_and_resources,
    process_instances_from_start_to_history,
    platform_models_are_flowable_definitions,
);
