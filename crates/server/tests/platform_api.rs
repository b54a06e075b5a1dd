//! The platform dialect (seeds 000–002) through the real HTTP server on SQLite: deploy,
//! start by each selector, the seed's field sets, error answers, user tasks, both W3 routes,
//! and a restart that keeps every instance.

mod common;

use common::{TestServer, must};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const USER_TASK: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">
  <process id="approval" name="Approval"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="review"/>
  <userTask id="review" name="Review"/><sequenceFlow sourceRef="review" targetRef="g"/>
  <exclusiveGateway id="g" default="no"/>
  <sequenceFlow id="yes" sourceRef="g" targetRef="ok"><conditionExpression>${approved}</conditionExpression></sequenceFlow>
  <sequenceFlow id="no" sourceRef="g" targetRef="ko"/>
  <endEvent id="ok"/><endEvent id="ko"/></process></definitions>"#;

const SEED_PROCESS_FIELDS: [&str; 16] = [
    "id",
    "processInstanceId",
    "modelId",
    "modelKey",
    "processName",
    "processType",
    "processStatus",
    "processContent",
    "startTime",
    "endTime",
    "activitiFileId",
    "outputs",
    "nativeOutputs",
    "rollbackProcessInstanceId",
    "cancelProcessInstanceId",
    "deleteProcessInstanceId",
];

const SEED_TASK_FIELDS: [&str; 13] = [
    "id",
    "processInstanceId",
    "taskId",
    "name",
    "namespace",
    "stone",
    "createTime",
    "endTime",
    "status",
    "reason",
    "params",
    "outputs",
    "progress",
];

fn is_platform_date(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 19 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b' ' && s.as_bytes()[13] == b':'
    })
}

async fn deploy_answers_ids_and_versions_a_key_again(s: TestServer) {
    let first = s.deploy(USER_TASK).await;
    assert_eq!(first["key"], "approval");
    assert_eq!(first["name"], "Approval");
    assert_eq!(first["version"], 1);
    assert!(first["modelId"].is_string() && first["deploymentId"].is_string());
    let second = s.deploy(USER_TASK).await;
    assert_eq!(second["version"], 2);
    let (status, listed) = s.get("/model?key=approval").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["total"], 2);
    let (status, one) = s.get(&format!("/model/{}", first["modelId"].as_str().unwrap_or_default())).await;
    assert_eq!((status, &one["version"]), (StatusCode::OK, &json!(1)));
    let (status, _) = s.get("/model/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn deploy_accepts_a_multipart_file_field(s: TestServer) {
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::text(USER_TASK).file_name("a.bpmn"));
    let resp = must(s.client.post(format!("{}/model", s.base)).multipart(form).send().await);
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = must(resp.json().await);
    assert_eq!(body["key"], "approval");
    let form = reqwest::multipart::Form::new().text("other", "x");
    let resp = must(s.client.post(format!("{}/model", s.base)).multipart(form).send().await);
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = must(resp.json().await);
    assert!(body["message"].as_str().unwrap_or_default().contains("`file`"));
}

async fn malformed_or_unsupported_bpmn_is_a_400_naming_the_element(s: TestServer) {
    let (status, body) = s.post_raw("/model", "<definitions", "application/xml").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap_or_default().contains("malformed XML"), "{body}");
    let script = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p">
<startEvent id="s"/>
<businessRuleTask id="calc"/></process></definitions>"#;
    let (status, body) = s.post_raw("/model", script, "application/xml").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "line 3: <businessRuleTask id=\"calc\">: <businessRuleTask> is not supported yet (see the README for the supported BPMN subset)"
    );
    let (status, _) = s.post_raw("/model", "", "application/xml").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = s.get("/model").await;
    let examples = json!(flowstone_server::EXAMPLES.len());
    assert_eq!((status, &body["total"]), (StatusCode::OK, &examples), "only the examples: nothing half-deployed");
}

async fn start_by_model_id_deployment_id_or_key(s: TestServer) {
    let m = s.deploy(USER_TASK).await;
    for (field, value) in [("modelId", &m["modelId"]), ("deploymentId", &m["deploymentId"]), ("key", &m["key"])] {
        let body = json!({ field: value, "processName": "test", "variables": {"a": 1} });
        let (status, p) = s.call(Method::POST, "/process", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{field}: {p}");
        assert_eq!(p["modelId"], m["modelId"], "{field}");
        assert_eq!(p["processStatus"], "running");
    }
}

async fn start_by_key_takes_the_latest_version(s: TestServer) {
    s.deploy(USER_TASK).await;
    let v2 = s.deploy(USER_TASK).await;
    let p = s.start_process("approval", json!({})).await;
    assert_eq!(p["modelId"], v2["modelId"]);
}

async fn an_ended_process_lists_its_task_records_and_waits_for_nothing(s: TestServer) {
    s.deploy(USER_TASK).await;
    let p = s.start_process("approval", json!({})).await;
    let id = p["id"].as_str().unwrap_or_default();
    let task = s.tasks(id).await[0]["id"].as_str().unwrap_or_default().to_owned();
    let (status, body) = s.put(&format!("/task/{task}/complete"), Some(json!({"approved": true}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let records = s.tasks(id).await;
    assert_eq!((records.len(), &records[0]["status"]), (1, &json!("completed")), "{records:?}");
    let ended = s.process(id).await;
    assert_eq!((&ended["processStatus"], &ended["waitingFor"]), (&json!("success"), &json!([])), "{ended}");
}

async fn process_record_has_every_seed_field(s: TestServer) {
    s.deploy(USER_TASK).await;
    let vars =
        json!({"projectId": "11111", "slaveNum": "6", "master-1a": {"instanceType": "m2.large"}, "SipRS::Mock": true});
    let p = s.start_process("approval", vars.clone()).await;
    for field in SEED_PROCESS_FIELDS {
        assert!(p.get(field).is_some(), "missing {field} in {p}");
    }
    assert_eq!(p["processName"], "t");
    assert_eq!(p["modelKey"], "approval");
    assert!(p["processType"].is_null() && p["activitiFileId"].is_null() && p["endTime"].is_null());
    assert!(p["rollbackProcessInstanceId"].is_null());
    assert_eq!(p["nativeOutputs"], "");
    assert!(is_platform_date(&p["startTime"]), "{}", p["startTime"]);
    let content: Value = must(serde_json::from_str(p["processContent"].as_str().unwrap_or_default()));
    assert_eq!(content, vars, "processContent is the start variables as a JSON string");
    let mut again = s.process(p["processInstanceId"].as_str().unwrap_or_default()).await;
    let waiting = again.as_object_mut().and_then(|o| o.remove("waitingFor")).unwrap_or_default();
    assert_eq!(again, p, "the process asked for is the one started, and says what it waits for");
    assert_eq!((&waiting[0]["name"], &waiting[0]["type"]), (&json!("Review"), &json!("userTask")), "{waiting}");
    let by_record = s.process(p["id"].as_str().unwrap_or_default()).await;
    assert_eq!(by_record["processInstanceId"], p["processInstanceId"]);
}

async fn start_rejects_missing_doubled_and_malformed_input(s: TestServer) {
    let m = s.deploy(USER_TASK).await;
    let cases = [
        (
            json!({"processName": "t", "variables": {}}),
            StatusCode::BAD_REQUEST,
            "one of `modelId`, `deploymentId` or `key` is required",
        ),
        (
            json!({"key": "approval", "modelId": m["modelId"], "processName": "t", "variables": {}}),
            StatusCode::BAD_REQUEST,
            "not `modelId` and `key`",
        ),
        (json!({"key": "approval", "variables": {}}), StatusCode::BAD_REQUEST, "`processName` is required"),
        (json!({"key": "approval", "processName": "t"}), StatusCode::BAD_REQUEST, "`variables` is required"),
        (
            json!({"key": "approval", "processName": "t", "variables": [1]}),
            StatusCode::BAD_REQUEST,
            "must be a JSON object, not an array",
        ),
        (json!({"key": 5, "processName": "t", "variables": {}}), StatusCode::BAD_REQUEST, "`key` must be a string"),
        (json!({"key": "nope", "processName": "t", "variables": {}}), StatusCode::NOT_FOUND, "no model with key nope"),
        (
            json!({"modelId": "nope", "processName": "t", "variables": {}}),
            StatusCode::NOT_FOUND,
            "no model with modelId nope",
        ),
        (
            json!({"deploymentId": "nope", "processName": "t", "variables": {}}),
            StatusCode::NOT_FOUND,
            "no model with deploymentId",
        ),
    ];
    for (body, want, message) in cases {
        let (status, answer) = s.call(Method::POST, "/process", Some(body.clone())).await;
        assert_eq!(status, want, "{body} → {answer}");
        assert!(answer["message"].as_str().unwrap_or_default().contains(message), "{body} → {answer}");
    }
    for raw in ["{not json", "[1,2]", ""] {
        let (status, answer) = s.post_raw("/process", raw, "application/json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw:?} → {answer}");
    }
    let (_, list) = s.get("/process").await;
    assert_eq!(list["total"], 0, "no bad request started anything");
}

async fn unknown_ids_are_404(s: TestServer) {
    for path in ["/process/nope", "/task/nope", "/task?processInstanceId=nope", "/nowhere"] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(body["message"].is_string());
    }
    let (status, _) = s.put("/process/nope/cancel", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.put("/task/nope/complete", Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = s.get("/task").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap_or_default().contains("processInstanceId"));
}

async fn user_task_completes_with_variables_and_steers_the_gateway(s: TestServer) {
    s.deploy(USER_TASK).await;
    let p = s.start_process("approval", json!({})).await;
    let id = p["processInstanceId"].as_str().unwrap_or_default().to_owned();
    let tasks = s.tasks(&id).await;
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    for field in SEED_TASK_FIELDS {
        assert!(task.get(field).is_some(), "missing {field} in {task}");
    }
    assert_eq!((task["name"].as_str(), task["status"].as_str()), (Some("Review"), Some("active")));
    assert!(is_platform_date(&task["createTime"]));
    let task_id = task["taskId"].as_str().unwrap_or_default();
    let (status, single) = s.get(&format!("/task/{task_id}")).await;
    assert_eq!((status, &single["id"]), (StatusCode::OK, &task["id"]));

    let (status, body) = s.put(&format!("/task/{task_id}/complete"), Some(json!([1]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, done) = s.put(&format!("/task/{task_id}/complete"), Some(json!({"approved": true}))).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "completed");
    assert!(is_platform_date(&done["endTime"]));
    let p = s.process(&id).await;
    assert_eq!(p["processStatus"], "success");
    assert!(is_platform_date(&p["endTime"]));
    let native: Value = must(serde_json::from_str(p["nativeOutputs"].as_str().unwrap_or_default()));
    assert_eq!(native["approved"], true);

    let (status, body) = s.put(&format!("/task/{task_id}/complete"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "completing twice: {body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("success, not running"), "{body}");
}

async fn debug_controls_that_do_not_fit_answer_409_and_unknown_ones_400(s: TestServer) {
    s.deploy(USER_TASK).await;
    let p = s.start_process("approval", json!({})).await;
    let id = p["processInstanceId"].as_str().unwrap_or_default();
    let task = s.tasks(id).await[0]["id"].as_str().unwrap_or_default().to_owned();
    for op in ["reRun", "resume"] {
        let (status, body) = s.put(&format!("/task/{task}/{op}"), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{op}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains("not in debug mode"), "{body}");
    }
    let (status, _) = s.put(&format!("/task/{task}/explode"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = s.put(&format!("/process/{id}/delete"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("cancel it before deleting"), "{body}");
    let (status, _) = s.put(&format!("/process/{id}/explode"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let start = json!({"key": "approval", "processName": "t", "variables": {}, "debug": "yes"});
    let (status, body) = s.call(Method::POST, "/process", Some(start)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap_or_default().contains("`debug` must be true or false"), "{body}");
}

async fn cancel_stops_a_running_process_once(s: TestServer) {
    s.deploy(USER_TASK).await;
    let p = s.start_process("approval", json!({})).await;
    let id = p["processInstanceId"].as_str().unwrap_or_default();
    let (status, canceled) = s.put(&format!("/process/{id}/cancel"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(canceled["processStatus"], "canceled");
    assert_eq!(s.tasks(id).await[0]["status"], "canceled");
    let (status, body) = s.put(&format!("/process/{id}/cancel"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["message"].as_str().unwrap_or_default().contains("canceled, not running"));
}

async fn w3_takes_each_route(s: TestServer) {
    for (route, taken) in [("a", "a"), ("b", "b")] {
        let p = s.start_process("w3_gateways", json!({"route": route})).await;
        assert_eq!(p["processStatus"], "success");
        let native: Value = must(serde_json::from_str(p["nativeOutputs"].as_str().unwrap_or_default()));
        assert_eq!(native["taken"], taken);
        let names: Vec<_> = s
            .tasks(p["processInstanceId"].as_str().unwrap_or_default())
            .await
            .iter()
            .map(|t| t["name"].clone())
            .collect();
        assert_eq!(names, [json!("pa"), json!("pb"), json!("pc"), json!(format!("route_{taken}"))]);
    }
}

async fn cluster_example_runs_with_seed_002_body(s: TestServer) {
    let body = json!({
        "key": "cluster", "processName": "test",
        "variables": {
            "projectId": "11111", "regionId": "bcc", "vpcId": "vpc-509A87BA", "slaveNum": "6", "buyNum": "1",
            "Bingo::RS::FRONT::RSBILLING": {}, "master-1a": {"instanceType": "m2.large"},
            "slave-": {"instanceType": "m2.large"}, "SipRS::Mock": true, "subnetId": "subnet-439A34CC"
        }
    });
    let (status, p) = s.call(Method::POST, "/process", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    let id = p["processInstanceId"].as_str().unwrap_or_default();
    let p = s.settle(id).await;
    assert_eq!(p["processStatus"], "success", "{p}");
    let outputs: Value = must(serde_json::from_str(p["outputs"].as_str().unwrap_or_default()));
    assert_eq!(outputs["slaveCount"], "6");
    assert!(outputs["masterIp"].as_str().is_some_and(|ip| ip.starts_with("10.")));
    let tasks = s.tasks(id).await;
    let namespaces: Vec<_> = tasks.iter().map(|t| t["namespace"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(
        namespaces,
        ["master-1a", "slave-1", "slave-2", "slave-3", "slave-4", "slave-5", "slave-6", "Bingo::RS::FRONT::RSBILLING"]
    );
    for t in &tasks {
        let done = if t["stone"] == "MachineStone" { "monitor.success" } else { "start.success" };
        assert_eq!(t["status"], done, "machines are monitored to running, billing is done at once: {t}");
    }
    assert_eq!(tasks[0]["progress"], 100);
    let params: Value = must(serde_json::from_str(tasks[1]["params"].as_str().unwrap_or_default()));
    assert_eq!((params["instanceType"].as_str(), params["namespace"].as_str()), (Some("m2.large"), Some("slave-1")));
}

async fn process_list_filters_by_status_and_key_and_pages(s: TestServer) {
    for _ in 0..3 {
        s.start_process("w1_straight", json!({})).await;
    }
    s.start_process("w2_usertask", json!({})).await;
    let (_, all) = s.get("/process?size=2").await;
    assert_eq!((all["total"].as_u64(), all["data"].as_array().map(Vec::len)), (Some(4), Some(2)));
    let (_, page2) = s.get("/process?size=2&page=2").await;
    assert_eq!(page2["data"].as_array().map(Vec::len), Some(2));
    let (_, running) = s.get("/process?status=running").await;
    assert_eq!(running["total"], 1);
    let (_, w1) = s.get("/process?key=w1_straight&status=success").await;
    assert_eq!(w1["total"], 3);
    let (_, debug) = s.get("/process?status=debug").await;
    assert_eq!(debug["total"], 0);
    let (status, rolled_back) = s.get("/process?status=rolledBack").await;
    assert_eq!((status, rolled_back["total"].as_u64()), (StatusCode::OK, Some(0)));
    let (status, body) = s.get("/process?status=bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = s.get("/process?size=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn a_restart_keeps_every_instance_and_waiting_task(s: TestServer) {
    let done = s.start_process("w1_straight", json!({})).await;
    let waiting = s.start_process("w2_usertask", json!({})).await;
    let waiting_id = waiting["processInstanceId"].as_str().unwrap_or_default().to_owned();
    let s = s.restart().await;
    assert_eq!(s.process(done["processInstanceId"].as_str().unwrap_or_default()).await["processStatus"], "success");
    assert_eq!(s.process(&waiting_id).await["processStatus"], "running");
    let task = s.tasks(&waiting_id).await[0]["id"].as_str().unwrap_or_default().to_owned();
    let (status, _) = s.put(&format!("/task/{task}/complete"), Some(json!({"ok": 1}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.process(&waiting_id).await["processStatus"], "success");
    let (_, models) = s.get("/model").await;
    assert_eq!(models["total"], flowstone_server::EXAMPLES.len(), "examples are deployed on first start only");
}

async fn a_huge_body_is_refused_with_413(s: TestServer) {
    let huge = "x".repeat(flowstone_server::MAX_BODY_BYTES + 10);
    let (status, _) = s.post_raw("/model", huge, "application/xml").await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

async fn run_time_failure_shows_failed_with_reason(s: TestServer) {
    s.deploy(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn">
        <process id="bad"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/>
        <serviceTask id="t" flowable:expression="${nope * 2}" flowable:resultVariable="x"/></process></definitions>"#,
    )
    .await;
    let p = s.start_process("bad", json!({})).await;
    assert_eq!(p["processStatus"], "failed");
    assert!(p["reason"].as_str().unwrap_or_default().contains("unknown variable `nope`"), "{p}");
    let task = &s.tasks(p["processInstanceId"].as_str().unwrap_or_default()).await[0];
    assert_eq!(task["status"], "failed");
}

async fn health_probes_answer_without_credentials_with_the_version(s: TestServer) {
    let nobody = reqwest::Client::new();
    let version = env!("CARGO_PKG_VERSION");
    for path in ["/health", "/health/live"] {
        let (status, body) = s.call_with(&nobody, Method::GET, path, None).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok", "version": version})), "{path}");
    }
    let (status, body) = s.call_with(&nobody, Method::GET, "/health/ready", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready", "version": version})));
}

async fn a_wrong_method_or_path_is_answered_in_the_dialects_shape(s: TestServer) {
    let response = must(s.client.delete(format!("{}/process", s.base)).send().await);
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.headers().get("allow").and_then(|a| a.to_str().ok()).unwrap_or_default().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "Allow: {allow}");
    let body: Value = must(response.json().await);
    assert_eq!(body["status"], 405, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("DELETE is not allowed on /process")), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.ends_with(&format!("it takes {allow}"))), "names them: {body}");

    let tasks = "/flowable-rest/service/runtime/tasks";
    let (status, body) = s.call(Method::PATCH, tasks, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["exception"].as_str().is_some_and(|m| m.contains("PATCH is not allowed")), "Flowable's shape: {body}");
    let (status, body) = s.get("/flowable-rest/service/no/such/thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["exception"].as_str().is_some_and(|m| m.contains("no endpoint")), "Flowable's shape: {body}");
}

/// The value of the sample `line` starts with in a Prometheus text answer.
fn sample(text: &str, line: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
}

async fn metrics_count_requests_instances_and_commits_for_signed_in_users(s: TestServer) {
    s.start_process("w1_straight", json!({})).await;
    s.start_process("w1_straight", json!({})).await;
    assert_eq!(s.get("/process/nope").await.0, StatusCode::NOT_FOUND);
    let nobody = reqwest::Client::new();
    assert_eq!(s.call_with(&nobody, Method::GET, "/metrics", None).await.0, StatusCode::UNAUTHORIZED);

    let response = must(s.client.get(format!("{}/metrics", s.base)).send().await);
    assert_eq!(response.status(), StatusCode::OK);
    let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let text = must(response.text().await);
    let started = r#"flowstone_instances_started_total{model="w1_straight",kind="process"}"#;
    assert_eq!(sample(&text, started), Some(2.0), "{text}");
    let ended = r#"flowstone_instances_ended_total{model="w1_straight",kind="process",status="completed"}"#;
    assert_eq!(sample(&text, ended), Some(2.0), "{text}");
    let posts = r#"flowstone_http_requests_total{method="POST",route="/process",status="200"}"#;
    assert_eq!(sample(&text, posts), Some(2.0), "{text}");
    let missing = r#"flowstone_http_requests_total{method="GET",route="/process/{id}",status="404"}"#;
    assert_eq!(sample(&text, missing), Some(1.0), "counted by the route's template: {text}");
    assert!(sample(&text, "flowstone_commit_group_requests_count").is_some_and(|n| n >= 2.0), "{text}");
    assert!(text.contains("flowstone_http_request_duration_seconds_bucket{"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

/// Starts of `w1_straight` from 256 loops at once, `rounds` of 8 each per loop, with a start
/// whose name the database refuses (a NUL) in each round: answers the good starts' statuses
/// and the bad ones' answers.
async fn starts_with_refused_values(
    rt: &flowstone_server::Runtime,
    round: usize,
) -> (Vec<String>, Vec<Result<flowstone_store::InstanceRow, flowstone_server::RuntimeError>>) {
    let model = must(rt.latest_model("w1_straight").await).expect("deployed");
    let loops = (0..256).map(|lane| {
        let (rt, model) = (rt.clone(), model.clone());
        async move {
            let mut good = Vec::new();
            for i in 0..8 {
                let name = format!("r{round} l{lane} i{i}");
                let row = rt.start_instance(model.clone(), name, None, serde_json::Map::new(), Default::default());
                good.push(must(row.await).status);
            }
            good
        }
    });
    let bad = (0..8).map(|i| {
        let (rt, model) = (rt.clone(), model.clone());
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(i * 3)).await;
            let name = format!("bad\0{round} {i}");
            rt.start_instance(model, name, None, serde_json::Map::new(), Default::default()).await
        }
    });
    let (good, bad) = tokio::join!(futures_util::future::join_all(loops), futures_util::future::join_all(bad));
    (good.into_iter().flatten().collect(), bad)
}

/// On PostgreSQL, a group whose instances no commit under way touches commits beside that
/// commit; a group with a value the database refuses still fails only that request, once the
/// commit beside it is answered. SQLite's writers take turns: its groups commit one by one.
async fn groups_sharing_no_instance_commit_side_by_side_and_a_refused_value_fails_alone(s: TestServer) {
    let rt = s.server.as_ref().map(|server| server.runtime().clone()).expect("running");
    let beside = || async {
        let text = must(must(s.client.get(format!("{}/metrics", s.base)).send().await).text().await);
        sample(&text, "flowstone_commits_beside_total").unwrap_or(0.0)
    };
    let mut good = 0;
    // Commits overlap when requests keep coming while one runs; a few rounds make that sure.
    for round in 0..if s.database.is_some() { 10 } else { 1 } {
        let (statuses, bad) = starts_with_refused_values(&rt, round).await;
        assert!(statuses.iter().all(|status| status == "completed"), "{statuses:?}");
        good += statuses.len() as u64;
        for refused in bad {
            match (&s.database, refused) {
                (Some(_), Err(flowstone_server::RuntimeError::NotValid(message))) => {
                    assert!(message.contains("the database refused a value"), "{message}");
                }
                // SQLite stores a NUL in text as it is.
                (None, Ok(row)) => assert_eq!(row.status, "completed"),
                (_, other) => panic!("a refused value answered {other:?}"),
            }
        }
        if beside().await > 0.0 {
            break;
        }
    }
    let side_by_side = beside().await;
    match s.database {
        Some(_) => assert!(side_by_side > 0.0, "no two commits overlapped in ten rounds"),
        None => assert_eq!(side_by_side, 0.0, "SQLite commits one group at a time"),
    }
    let filter = flowstone_store::InstanceFilter { status: Some("completed".into()), ..Default::default() };
    let page = flowstone_store::Page { offset: 0, limit: 1 };
    let (_, stored) = must(rt.store().list_instances(&filter, page).await);
    let refused_stored = if s.database.is_some() { 0 } else { 8 };
    assert_eq!(stored, good + refused_stored, "every answered start is stored, and only those");
}

async fn a_stopping_runtime_is_not_ready_but_still_live(s: TestServer) {
    let runtime = s.server.as_ref().map(|server| server.runtime().clone()).unwrap_or_else(|| panic!("no server"));
    must(runtime.stop_and_hand_back().await);
    let (status, body) = s.get("/health/ready").await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")), "{body}");
    assert!(body["reason"].as_str().unwrap_or_default().contains("stopping"), "{body}");
    assert_eq!(s.get("/health/live").await.0, StatusCode::OK);
}

/// Runs `statement` on the PostgreSQL server beside the test database `url`.
async fn on_postgres_server(url: &str, statement: String) {
    let root = url.rsplit_once('/').map_or(url, |(root, _)| root);
    let pool = must(sqlx::PgPool::connect(&format!("{root}/postgres")).await);
    must(sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await);
    pool.close().await;
}

#[tokio::test]
async fn a_database_that_does_not_answer_makes_the_server_unready_until_it_answers_again() {
    let Some(s) = TestServer::start(common::Backend::Postgres).await else { return };
    let url = s.database.clone().unwrap_or_default();
    let name = url.rsplit('/').next().unwrap_or_default().to_owned();
    on_postgres_server(&url, format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false")).await;
    let cut = format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'");
    on_postgres_server(&url, cut).await;
    let (status, body) = s.get("/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["reason"].as_str().unwrap_or_default().contains("the database does not answer"), "{body}");
    assert_eq!(s.get("/health/live").await.0, StatusCode::OK, "the process itself still answers");
    on_postgres_server(&url, format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")).await;
    assert_eq!(s.get("/health/ready").await.0, StatusCode::OK);
}

/// Ends one second after it starts.
const TIMED: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="timed">
  <startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/>
  <intermediateCatchEvent id="t"><timerEventDefinition><timeDuration>PT1S</timeDuration></timerEventDefinition></intermediateCatchEvent>
  <sequenceFlow sourceRef="t" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

async fn a_start_or_a_read_may_wait_for_the_end_or_a_status_change(s: TestServer) {
    s.deploy(TIMED).await;
    let started = std::time::Instant::now();
    let body = json!({"key": "timed", "processName": "t", "variables": {}, "wait": 20_000});
    let (status, ended) = s.post("/process", body).await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(ended["processStatus"], "success", "answered once it ended: {ended}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "it waited for the timer");
    // The waiter is answered from the row the ending commit wrote: the same record a read
    // gives (which adds what the process waits for).
    let id = ended["processInstanceId"].as_str().unwrap_or_default();
    let mut read = s.get(&format!("/process/{id}")).await.1;
    assert_eq!(read.as_object_mut().and_then(|r| r.remove("waitingFor")), Some(json!([])), "{read}");
    assert_eq!(read, ended);

    // A wait that runs out answers the record as it stands.
    let started = std::time::Instant::now();
    let body = json!({"key": "w2_usertask", "processName": "w", "variables": {}, "wait": 300});
    let (status, waiting) = s.post("/process", body).await;
    assert_eq!((status, &waiting["processStatus"]), (StatusCode::OK, &json!("running")), "{waiting}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(250), "{:?}", started.elapsed());

    // A read waits for the next status change: here, the user task completed meanwhile.
    let id = waiting["processInstanceId"].as_str().unwrap_or_default().to_owned();
    let task = s.tasks(&id).await[0]["id"].as_str().unwrap_or_default().to_owned();
    let reader = {
        let (client, url) = (s.client.clone(), format!("{}/process/{id}", s.base));
        tokio::spawn(async move { client.get(url).header("prefer", "wait=20").send().await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (status, body) = s.put(&format!("/task/{task}/complete"), Some(json!({"approved": true}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let read: Value = must(must(must(reader.await).map_err(|e| e.to_string())).json().await);
    assert_eq!(read["processStatus"], "success", "{read}");

    for bad in [json!(-1), json!("soon"), json!(60_001)] {
        let body = json!({"key": "timed", "processName": "t", "variables": {}, "wait": bad});
        let (status, answer) = s.post("/process", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["message"].as_str().is_some_and(|m| m.contains("`wait`")), "{answer}");
    }
    assert_eq!(s.get(&format!("/process/{id}?wait=soon")).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(s.get("/process/nope?wait=5000").await.0, StatusCode::NOT_FOUND, "an unknown id answers at once");
}

backend_tests!(server = TestServer::start;
    an_ended_process_lists_its_task_records_and_waits_for_nothing,
    deploy_answers_ids_and_versions_a_key_again,
    deploy_accepts_a_multipart_file_field,
    malformed_or_unsupported_bpmn_is_a_400_naming_the_element,
    start_by_model_id_deployment_id_or_key,
    start_by_key_takes_the_latest_version,
    process_record_has_every_seed_field,
    start_rejects_missing_doubled_and_malformed_input,
    unknown_ids_are_404,
    user_task_completes_with_variables_and_steers_the_gateway,
    debug_controls_that_do_not_fit_answer_409_and_unknown_ones_400,
    cancel_stops_a_running_process_once,
    w3_takes_each_route,
    cluster_example_runs_with_seed_002_body,
    process_list_filters_by_status_and_key_and_pages,
    a_restart_keeps_every_instance_and_waiting_task,
    a_huge_body_is_refused_with_413,
    run_time_failure_shows_failed_with_reason,
    health_probes_answer_without_credentials_with_the_version,
    a_stopping_runtime_is_not_ready_but_still_live,
    a_wrong_method_or_path_is_answered_in_the_dialects_shape,
    metrics_count_requests_instances_and_commits_for_signed_in_users,
    groups_sharing_no_instance_commit_side_by_side_and_a_refused_value_fails_alone,
    a_start_or_a_read_may_wait_for_the_end_or_a_status_change
);
