//! The bk-sops open API through the real server on SQLite and PostgreSQL: app credentials,
//! templates, tasks made, started and revoked, their status and detail; each documented
//! example request of the served APIs (from `../shared/conformance/bk-sops/apidoc-examples/`)
//! gets an answer with the fields and types of its documented answer.

mod common;

use common::{BK_APP, TestServer, conforms, differences, must, shared_dir};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

const BASE: &str = "/api/c/compapi/v2/sops";

/// start → sleep (a stone standing in for the component) → exclusive gateway on `${go}` → end.
fn tree() -> Value {
    json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "incoming": "", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f3"], "outgoing": ""},
        "activities": {"wait": {"id": "wait", "type": "ServiceActivity", "name": "Wait", "incoming": ["f1"], "outgoing": "f2",
            "component": {"code": "no_such_component", "data": {"who": {"hook": true, "value": "${who}"}}}}},
        "gateways": {"x": {"id": "x", "type": "ExclusiveGateway", "incoming": ["f2"], "outgoing": ["f3"],
            "conditions": {"f3": {"evaluate": "${go} == \"yes\""}}}},
        "flows": {"f1": {"id": "f1", "source": "s", "target": "wait", "is_default": false},
                  "f2": {"id": "f2", "source": "wait", "target": "x", "is_default": false},
                  "f3": {"id": "f3", "source": "x", "target": "e", "is_default": false}},
        "constants": {"${who}": {"key": "${who}", "name": "who", "source_type": "custom", "value": "nobody"},
                      "${go}": {"key": "${go}", "name": "go", "source_type": "custom", "value": "yes"}},
        "outputs": ["${who}"]
    })
}

/// Calls `api` with the test app's credentials added to `params`.
async fn call(s: &TestServer, api: &str, params: Value) -> (StatusCode, Value) {
    s.bk_call(api, params).await
}

async fn ok(s: &TestServer, api: &str, params: Value) -> Value {
    s.bk_ok(api, params).await
}

async fn app_credentials_are_required_and_checked(s: TestServer) {
    let client = reqwest::Client::new();
    let url = format!("{}{BASE}/get_template_list/", s.base);
    let (status, body) = common::bk_answer(must(client.get(format!("{url}?bk_biz_id=2")).send().await)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!((body["result"].as_bool(), body["data"].is_null()), (Some(false), true), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("bk_app_code")), "{body}");
    let wrong = json!({"bk_app_code": BK_APP.0, "bk_app_secret": "nope", "bk_biz_id": 2});
    let (status, _) = common::bk_answer(must(client.post(&url).json(&wrong).send().await)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let query = format!("{url}?bk_app_code={}&bk_app_secret={}&bk_biz_id=2", BK_APP.0, BK_APP.1);
    let listed: Value = must(must(client.get(query).send().await).json().await);
    assert_eq!(
        (listed["result"].as_bool(), listed["data"].as_array().map(Vec::len)),
        (Some(true), Some(0)),
        "{listed}"
    );
    // The user API's credentials are not the app's.
    let basic = must(client.get(format!("{url}?bk_biz_id=2")).basic_auth("admin", Some(common::PASSWORD)).send().await);
    assert_eq!(common::bk_answer(basic).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = call(&s, "no_such_api", json!({})).await;
    assert_eq!((status, &body["result"]), (StatusCode::NOT_FOUND, &json!(false)));
    let (status, body) = call(&s, "preview_task_tree", json!({"bk_biz_id": 2})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

async fn a_template_becomes_tasks_that_run_and_report(s: TestServer) {
    let created = ok(&s, "create_template", json!({"bk_biz_id": "2", "name": "demo", "pipeline_tree": tree()})).await;
    let template = created["template_id"].as_i64().unwrap_or_default();
    assert!(template > 0 && created["pipeline_template_id"].is_string(), "{created}");
    let list = ok(&s, "get_template_list", json!({"bk_biz_id": "2"})).await;
    assert_eq!(list[0]["id"], template);
    assert_eq!(ok(&s, "get_template_list", json!({"bk_biz_id": "3"})).await, json!([]));
    let info = ok(&s, "get_template_info", json!({"bk_biz_id": "2", "template_id": template})).await;
    assert_eq!((info["name"].as_str(), info["creator"].as_str()), (Some("demo"), Some("ops")));
    assert!(info["pipeline_tree"]["activities"]["wait"].is_object(), "{info}");

    let task = ok(
        &s,
        "create_task",
        json!({"bk_biz_id": "2", "template_id": template, "name": "first",
        "constants": {"${who}": "kermit"}}),
    )
    .await;
    let task_id = task["task_id"].as_i64().unwrap_or_default();
    assert_eq!(task["pipeline_tree"]["constants"]["${who}"]["value"], "kermit");
    let status = ok(&s, "get_task_status", json!({"bk_biz_id": "2", "task_id": task_id})).await;
    assert_eq!(status["state"], "CREATED");
    ok(&s, "start_task", json!({"bk_biz_id": "2", "task_id": task_id})).await;
    let (again, body) = call(&s, "start_task", json!({"bk_biz_id": "2", "task_id": task_id})).await;
    assert_eq!((again, &body["result"]), (StatusCode::CONFLICT, &json!(false)), "{body}");

    // The component is a stone no worker runs here: the task waits in it.
    let status = ok(&s, "get_task_status", json!({"bk_biz_id": "2", "task_id": task_id})).await;
    assert_eq!(status["state"], "RUNNING", "{status}");
    assert_eq!(status["children"]["s"]["state"], "FINISHED", "{status}");
    assert_eq!(status["children"]["wait"]["state"], "READY", "{status}");
    let detail = ok(&s, "get_task_detail", json!({"bk_biz_id": "2", "task_id": task_id})).await;
    assert_eq!((detail["creator"].as_str(), detail["executor"].as_str()), (Some("ops"), Some("ops")));
    assert_eq!(detail["outputs"][0], json!({"key": "${who}", "name": "who", "value": "kermit"}));
    // The job carries the component's inputs, rendered with the task's constants.
    let instance = status["id"].as_str().unwrap_or_default().to_owned();
    let records = s.tasks(&instance).await;
    let wait =
        records.iter().find(|r| r["taskDefinitionKey"] == "wait" || r["name"] == "Wait").cloned().unwrap_or_default();
    let params: Value = serde_json::from_str(wait["params"].as_str().unwrap_or("null")).unwrap_or_default();
    assert_eq!(params["who"], "kermit", "{records:?}");

    ok(&s, "operate_task", json!({"bk_biz_id": "2", "task_id": task_id, "action": "revoke"})).await;
    let status = ok(&s, "get_task_status", json!({"bk_biz_id": "2", "task_id": task_id})).await;
    assert_eq!(status["state"], "REVOKED", "{status}");

    let started =
        ok(&s, "create_and_start_task", json!({"bk_biz_id": "2", "template_id": template, "name": "second"})).await;
    let second = started["task_id"].as_i64().unwrap_or_default();
    let status = ok(&s, "get_task_status", json!({"bk_biz_id": "2", "task_id": second})).await;
    assert_eq!(status["state"], "RUNNING");
    // bk-sops tasks are process instances of the other dialects too.
    let processes = s.get("/process").await.1;
    assert!(processes.to_string().contains("second"), "{processes}");

    for (api, params, code) in [
        ("get_template_info", json!({"bk_biz_id": "3", "template_id": template}), StatusCode::NOT_FOUND),
        ("get_task_status", json!({"bk_biz_id": "2", "task_id": 9999}), StatusCode::NOT_FOUND),
        ("create_task", json!({"bk_biz_id": "2", "template_id": template}), StatusCode::BAD_REQUEST),
        (
            "create_task",
            json!({"bk_biz_id": "2", "template_id": template, "name": "x", "exclude_task_nodes_id": ["wait"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "create_template",
            json!({"bk_biz_id": "2", "name": "x", "pipeline_tree": {"start_event": {}}}),
            StatusCode::BAD_REQUEST,
        ),
        ("get_task_status", json!({"bk_biz_id": "two", "task_id": second}), StatusCode::BAD_REQUEST),
        ("operate_task", json!({"bk_biz_id": "2", "task_id": second, "action": "dance"}), StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = call(&s, api, params.clone()).await;
        assert_eq!((status, &body["result"]), (code, &json!(false)), "{api} {params}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

/// start → `a` (built-in `noop`, failing with `fail` while that input is set; errors ignored
/// when `ignorable`) → `b` (`pause_node`, which no worker takes: it waits for its callback) → end.
fn operable(ignorable: bool) -> Value {
    let mut tree = common::bk_fail_then_callback();
    tree["activities"]["a"]["error_ignorable"] = json!(ignorable);
    tree
}

/// Starts a task of `tree`; answers its id.
async fn started(s: &TestServer, tree: Value) -> i64 {
    let made = ok(s, "create_template", json!({"bk_biz_id": 5, "name": "ops", "pipeline_tree": tree})).await;
    let task =
        ok(s, "create_and_start_task", json!({"bk_biz_id": 5, "template_id": made["template_id"], "name": "run"}))
            .await;
    task["task_id"].as_i64().unwrap_or_default()
}

/// The task's status once `node` is in `state` and the task in `task_state` (stones run on
/// their own, so the status is read until it shows them).
/// Waits until `node` (a path such as `sub/inner` for a node of a subprocess) is in `state`
/// with the task in `task_state`.
async fn when(s: &TestServer, task: i64, node: &str, state: &str, task_state: &str) -> Value {
    for _ in 0..200 {
        let status = ok(s, "get_task_status", json!({"bk_biz_id": 5, "task_id": task})).await;
        let found = node.split('/').fold(&status, |at, id| &at["children"][id]);
        if found["state"] == state && status["state"] == task_state {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("node {node} of task {task} never became {state} with the task {task_state}");
}

async fn node(s: &TestServer, task: i64, node: &str, action: &str, data: Value) {
    ok(s, "operate_node", json!({"bk_biz_id": 5, "task_id": task, "node_id": node, "action": action, "data": data}))
        .await;
}

async fn a_failed_node_retried_with_new_inputs_completes_the_task(s: TestServer) {
    let task = started(&s, operable(false)).await;
    // A failed node waits for an operator, the task failed meanwhile.
    when(&s, task, "a", "FAILED", "FAILED").await;
    node(&s, task, "a", "retry", json!({"inputs": {"fail": null}})).await;
    let status = when(&s, task, "b", "RUNNING", "RUNNING").await;
    assert_eq!(
        (status["children"]["a"]["state"].as_str(), status["children"]["a"]["retry"].as_i64()),
        (Some("FINISHED"), Some(1))
    );
    let detail = ok(&s, "get_task_node_detail", json!({"bk_biz_id": 5, "task_id": task, "node_id": "a"})).await;
    assert_eq!((detail["state"].as_str(), detail["retry"].as_u64()), (Some("FINISHED"), Some(1)), "{detail}");
    assert!(detail["inputs"].get("fail").is_none(), "the retry's inputs: {detail}");
    assert_eq!(detail["histories"][0]["ex_data"], "disk full", "{detail}");
    assert_eq!(detail["histories"][0]["inputs"]["fail"], "disk full");
    let data = ok(&s, "get_task_node_data", json!({"bk_biz_id": 5, "task_id": task, "node_id": "a"})).await;
    assert!(data["outputs"].is_array() && data.get("histories").is_none(), "{data}");
    let (code, _) = call(&s, "get_task_node_detail", json!({"bk_biz_id": 5, "task_id": task, "node_id": "zz"})).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // pause_node waits for its callback.
    ok(&s, "node_callback", json!({"bk_biz_id": 5, "task_id": task, "node_id": "b", "callback_data": {"ok": 1}})).await;
    when(&s, task, "b", "FINISHED", "FINISHED").await;
    let other = started(&s, operable(true)).await;
    let both = ok(&s, "get_tasks_status", json!({"bk_biz_id": 5, "task_id_list": [task, other]})).await;
    assert_eq!(
        (both[0]["status"]["state"].as_str(), both[1]["id"].as_i64()),
        (Some("FINISHED"), Some(other)),
        "{both}"
    );
    let (code, body) =
        call(&s, "operate_node", json!({"bk_biz_id": 5, "task_id": task, "node_id": "a", "action": "retry"})).await;
    assert_eq!((code, &body["result"]), (StatusCode::CONFLICT, &json!(false)), "nothing to retry: {body}");
}

async fn skip_error_ignorable_and_forced_fail_steer_the_run(s: TestServer) {
    let task = started(&s, operable(false)).await;
    when(&s, task, "a", "FAILED", "FAILED").await;
    node(&s, task, "a", "skip", json!({})).await;
    let status = when(&s, task, "b", "RUNNING", "RUNNING").await;
    assert_eq!(status["children"]["a"]["skip"], true, "{status}");
    node(&s, task, "b", "forced_fail", json!({})).await;
    when(&s, task, "b", "FAILED", "FAILED").await;

    let task = started(&s, operable(true)).await;
    let status = when(&s, task, "b", "RUNNING", "RUNNING").await;
    assert_eq!(status["children"]["a"]["state"], "FAILED", "an ignorable failure went on: {status}");
    node(&s, task, "b", "resume", json!({})).await;
    when(&s, task, "b", "FINISHED", "FINISHED").await;
    for (action, code) in [
        ("skip_exg", StatusCode::BAD_REQUEST),
        ("dance", StatusCode::BAD_REQUEST),
        ("resume_subproc", StatusCode::CONFLICT),
    ] {
        let (status, _) =
            call(&s, "operate_node", json!({"bk_biz_id": 5, "task_id": task, "node_id": "b", "action": action})).await;
        assert_eq!(status, code, "{action}");
    }
    let (status, _) =
        call(&s, "operate_node", json!({"bk_biz_id": 5, "task_id": task, "node_id": "zz", "action": "skip"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A node the tree makes neither skippable nor retryable can only be failed for good.
    let mut strict = operable(false);
    strict["activities"]["a"]["isSkipped"] = json!(false);
    strict["activities"]["a"]["can_retry"] = json!(false);
    let task = started(&s, strict).await;
    when(&s, task, "a", "FAILED", "FAILED").await;
    for (action, flag) in [("skip", "skippable"), ("retry", "retryable")] {
        let (status, body) =
            call(&s, "operate_node", json!({"bk_biz_id": 5, "task_id": task, "node_id": "a", "action": action})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains(flag)), "{body}");
    }
}

/// bk-sops' node guards run on the server's timers: a failing node with `auto_retry` is run
/// again on its own as many times as allowed, then waits; a node past its `timeout_config`
/// is failed and skipped; a timeout with automatic retries is refused at creation.
async fn node_timeouts_and_automatic_retries_act_on_their_own(s: TestServer) {
    let mut tree = operable(false);
    tree["activities"]["a"]["auto_retry"] = json!({"enable": true, "interval": 0, "times": 2});
    let task = started(&s, tree).await;
    let mut retried = Value::Null;
    for _ in 0..200 {
        let status = when(&s, task, "a", "FAILED", "FAILED").await;
        retried = status["children"]["a"]["retry"].clone();
        if retried == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(retried, 2, "two automatic retries, then the node waits for an operator");
    let status = ok(
        &s,
        "get_task_status",
        json!({"bk_biz_id": 5, "task_id": task, "with_failed_node_info": true, "with_auto_retry_status": "true"}),
    )
    .await;
    assert_eq!(
        status["failed_node_info"]["a"],
        json!({"node_id": "a", "auto_retry_times": 2, "max_auto_retry_times": 2}),
        "{status}"
    );
    assert_eq!(status["auto_retry_status"], json!({"exist_auto_retry_nodes": false, "auto_retry_nodes": []}));
    node(&s, task, "a", "retry", json!({"inputs": {"fail": null}})).await;
    when(&s, task, "b", "RUNNING", "RUNNING").await;

    let mut tree = operable(false);
    tree["activities"]["a"]["component"]["data"] = json!({});
    tree["activities"]["b"]["timeout_config"] = json!({"enable": true, "seconds": 1, "action": "forced_fail_and_skip"});
    let task = started(&s, tree).await;
    let status = when(&s, task, "b", "FINISHED", "FINISHED").await;
    assert_eq!(status["children"]["b"]["skip"], true, "the node past its timeout was skipped: {status}");
    let detail = ok(&s, "get_task_node_detail", json!({"bk_biz_id": 5, "task_id": task, "node_id": "b"})).await;
    assert!(detail["ex_data"].as_str().is_some_and(|e| e.contains("timeout")), "{detail}");

    let mut tree = operable(false);
    tree["activities"]["a"]["timeout_config"] = json!({"enable": true, "seconds": 5, "action": "forced_fail"});
    tree["activities"]["a"]["auto_retry"] = json!({"enable": true, "interval": 1, "times": 1});
    let (code, body) = call(&s, "create_template", json!({"bk_biz_id": 5, "name": "x", "pipeline_tree": tree})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("auto_retry") && m.contains("\"a\"")), "{body}");
}

async fn a_paused_task_starts_no_new_node_until_resumed(s: TestServer) {
    let mut tree = operable(false);
    tree["activities"]["a"]["component"] = json!({"code": "pause_node", "data": {}});
    let task = started(&s, tree).await;
    when(&s, task, "a", "RUNNING", "RUNNING").await;
    ok(&s, "operate_task", json!({"bk_biz_id": 5, "task_id": task, "action": "pause"})).await;
    node(&s, task, "a", "callback", json!({})).await;
    let status = when(&s, task, "a", "FINISHED", "SUSPENDED").await;
    assert!(status["children"]["b"].is_null(), "nothing new starts while paused: {status}");
    ok(&s, "operate_task", json!({"bk_biz_id": 5, "task_id": task, "action": "resume"})).await;
    when(&s, task, "b", "RUNNING", "RUNNING").await;
    let (code, _) = call(&s, "operate_task", json!({"bk_biz_id": 5, "task_id": task, "action": "resume"})).await;
    assert_eq!(code, StatusCode::CONFLICT, "not paused");
}

async fn a_node_a_gateway_leads_back_to_counts_its_loops(s: TestServer) {
    let tree = json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f3"]},
        "activities": {"ask": {"id": "ask", "type": "ServiceActivity", "incoming": ["f1", "f4"], "outgoing": "f2",
            "component": {"code": "pause_node", "data": {}}}},
        "gateways": {"x": {"id": "x", "type": "ExclusiveGateway", "incoming": ["f2"], "outgoing": ["f3", "f4"],
            "conditions": {"f3": {"evaluate": "${again} == \"no\""}, "f4": {"evaluate": "${again} == \"yes\""}}}},
        "flows": {"f1": {"id": "f1", "source": "s", "target": "ask"}, "f2": {"id": "f2", "source": "ask", "target": "x"},
                  "f3": {"id": "f3", "source": "x", "target": "e"}, "f4": {"id": "f4", "source": "x", "target": "ask"}},
        "constants": {"${again}": {"key": "${again}", "source_type": "component_outputs", "source_info": {"ask": ["again"]}, "value": ""}}
    });
    let task = started(&s, tree).await;
    when(&s, task, "ask", "RUNNING", "RUNNING").await;
    ok(
        &s,
        "node_callback",
        json!({"bk_biz_id": 5, "task_id": task, "node_id": "ask", "callback_data": {"again": "yes"}}),
    )
    .await;
    let status = when(&s, task, "x", "FINISHED", "RUNNING").await;
    assert_eq!(status["children"]["ask"]["loop"], 2, "the gateway led back to it: {status}");
    ok(
        &s,
        "node_callback",
        json!({"bk_biz_id": 5, "task_id": task, "node_id": "ask", "callback_data": {"again": "no"}}),
    )
    .await;
    let status = when(&s, task, "e", "FINISHED", "FINISHED").await;
    assert_eq!(
        (status["children"]["ask"]["loop"].as_i64(), status["children"]["x"]["loop"].as_i64()),
        (Some(2), Some(2))
    );
}

/// The template `import` made of the exported one `old_id`.
fn imported_as(imported: &Value, old_id: &str) -> Value {
    let templates = imported["templates"].as_array().into_iter().flatten();
    templates.into_iter().find(|t| t["old_id"] == old_id).cloned().unwrap_or_default()
}

async fn an_exported_set_of_templates_imports_with_its_subprocesses(s: TestServer) {
    let Some(shared) = shared_dir() else { return };
    let export = must(std::fs::read(shared.join("conformance/bk-sops/fixtures/test_complicated_data.json")));
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &export);
    let imported = ok(&s, "import", json!({"bk_biz_id": 7, "template_data": encoded})).await;
    assert_eq!(imported["count"], 3, "{imported}");
    let list = ok(&s, "get_template_list", json!({"bk_biz_id": 7})).await;
    assert_eq!(list.as_array().map(Vec::len), Some(3));
    let parent = imported_as(&imported, "9");
    let info = ok(&s, "get_template_info", json!({"bk_biz_id": 7, "template_id": parent["template_id"]})).await;
    let sub = &info["pipeline_tree"]["activities"]["n6c29ee96a093233a4052259eae107f5"];
    assert!(sub["pipeline"]["activities"].is_object(), "the subprocess's tree came from the export: {sub}");
    let (status, body) = call(&s, "import", json!({"bk_biz_id": 7, "template_data": "not an export"})).await;
    assert_eq!((status, &body["result"]), (StatusCode::BAD_REQUEST, &json!(false)));
}

async fn a_yaml_export_imports_and_its_templates_run(s: TestServer) {
    let Some(shared) = shared_dir() else { return };
    let yaml =
        must(std::fs::read_to_string(shared.join("conformance/bk-sops/fixtures/test_complicated_yaml_data.yaml")));
    let imported = ok(&s, "import", json!({"bk_biz_id": 5, "template_data": yaml})).await;
    assert_eq!(imported["count"], 3, "{imported}");
    let child = imported_as(&imported, "template3");
    assert_eq!(child["template_name"], "yaml导出样例子流程");
    let task =
        ok(&s, "create_and_start_task", json!({"bk_biz_id": 5, "template_id": child["template_id"], "name": "y"}))
            .await["task_id"]
            .as_i64()
            .unwrap_or_default();
    // `1 == 1` leads to the pause node, then two pause nodes in parallel.
    when(&s, task, "t3_node3", "RUNNING", "RUNNING").await;
    node(&s, task, "t3_node3", "callback", json!({})).await;
    when(&s, task, "t3_node6", "RUNNING", "RUNNING").await;
    node(&s, task, "t3_node6", "callback", json!({})).await;
    node(&s, task, "t3_node7", "callback", json!({})).await;
    let status = when(&s, task, "t3_node9", "FINISHED", "FINISHED").await;
    assert!(status["children"].get("t3_node4").is_none(), "the `1 == 0` branch never ran: {status}");
    let (code, body) = call(
        &s,
        "import",
        json!({"bk_biz_id": 5, "template_data": "schema_version: v1\nmeta: {id: x}\nspec: {nodes: []}"}),
    )
    .await;
    assert_eq!((code, &body["result"]), (StatusCode::BAD_REQUEST, &json!(false)));
    assert!(body["message"].as_str().unwrap_or_default().contains("meta.name"), "{body}");
}

async fn optional_nodes_left_out_are_bypassed_in_the_preview_and_the_task(s: TestServer) {
    let mut tree = operable(false);
    tree["activities"]["a"]["optional"] = json!(true);
    tree["activities"]["a"]["component"]["data"] = json!({"note": {"hook": true, "value": "${why}"}});
    tree["constants"] = json!({"${why}": {"key": "${why}", "name": "why", "source_type": "component_inputs",
        "source_info": {"a": ["note"]}, "value": "because", "index": 0}});
    let made = ok(&s, "create_template", json!({"bk_biz_id": 5, "name": "opt", "pipeline_tree": tree})).await;
    let template = made["template_id"].clone();
    let preview = |left_out: Value| json!({"bk_biz_id": 5, "template_id": template, "version": "", "exclude_task_nodes_id": left_out});
    let (_, previewed) = call(&s, "preview_task_tree", preview(json!(["a"]))).await;
    let data = &previewed["data"];
    assert!(data["pipeline_tree"]["activities"].get("a").is_none(), "{previewed}");
    assert_eq!(data["pipeline_tree"]["flows"]["f1"]["target"], "b", "{previewed}");
    assert_eq!(data["constants_not_referred"]["${why}"]["value"], "because", "{previewed}");
    if let Some(shared) = shared_dir() {
        let documented = shared.join("conformance/bk-sops/apidoc-examples/preview_task_tree.md.block01.json");
        let example: Value = must(serde_json::from_str(&must(std::fs::read_to_string(documented))));
        let mut problems = Vec::new();
        differences("", &comparable(&example), &previewed, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }
    let (status, body) = call(&s, "preview_task_tree", preview(json!(["b"]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("not optional"), "{body}");

    for left_out in [json!({"exclude_task_nodes_id": ["a"]}), json!({"execute_task_nodes_id": ["b"]})] {
        let mut params = json!({"bk_biz_id": 5, "template_id": template, "name": "without a"});
        params.as_object_mut().into_iter().for_each(|p| p.extend(left_out.as_object().cloned().unwrap_or_default()));
        let task = ok(&s, "create_and_start_task", params).await;
        assert!(task["pipeline_tree"]["activities"].get("a").is_none(), "{task}");
        let id = task["task_id"].as_i64().unwrap_or_default();
        let status = when(&s, id, "b", "RUNNING", "RUNNING").await;
        assert!(status["children"].get("a").is_none(), "the left-out node never ran: {status}");
    }
    // The template itself still has every node.
    let status = when(&s, started_of(&s, &template).await, "b", "RUNNING", "RUNNING").await;
    assert_eq!(status["children"]["a"]["state"], "FINISHED");
}

async fn started_of(s: &TestServer, template: &Value) -> i64 {
    let task = ok(s, "create_and_start_task", json!({"bk_biz_id": 5, "template_id": template, "name": "all"})).await;
    task["task_id"].as_i64().unwrap_or_default()
}

async fn skip_exg_takes_the_flow_a_gateway_could_not_choose(s: TestServer) {
    let mut tree = tree();
    tree["activities"]["wait"]["component"] = json!({"code": "noop", "data": {}});
    tree["constants"]["${go}"]["value"] = json!("no");
    let task = started(&s, tree).await;
    let status = when(&s, task, "x", "FAILED", "FAILED").await;
    assert_eq!(status["children"]["wait"]["state"], "FINISHED", "{status}");
    let detail = ok(&s, "get_task_node_detail", json!({"bk_biz_id": 5, "task_id": task, "node_id": "x"})).await;
    assert!(detail["ex_data"].as_str().is_some_and(|e| e.contains("no outgoing sequence flow")), "{detail}");
    let (code, _) = call(
        &s,
        "operate_node",
        json!({"bk_biz_id": 5, "task_id": task, "node_id": "x", "action": "skip_exg",
        "data": {"flow_id": "f1"}}),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "f1 does not leave the gateway");
    node(&s, task, "x", "skip_exg", json!({"flow_id": "f3"})).await;
    let status = when(&s, task, "e", "FINISHED", "FINISHED").await;
    assert_eq!(status["children"]["x"]["skip"], true, "{status}");
}

async fn subprocess_nodes_nest_under_their_subprocess_in_the_status(s: TestServer) {
    let child = json!({
        "start_event": {"id": "cs", "type": "EmptyStartEvent", "outgoing": "g1"},
        "end_event": {"id": "ce", "type": "EmptyEndEvent", "incoming": ["g2"]},
        "activities": {"ca": {"id": "ca", "type": "ServiceActivity", "incoming": ["g1"], "outgoing": "g2",
            "component": {"code": "pause_node", "data": {}}}},
        "gateways": {},
        "flows": {"g1": {"id": "g1", "source": "cs", "target": "ca"}, "g2": {"id": "g2", "source": "ca", "target": "ce"}}
    });
    let sub = ok(&s, "create_template", json!({"bk_biz_id": 5, "name": "child", "pipeline_tree": child})).await;
    let parent = json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f2"]},
        "activities": {"sub": {"id": "sub", "type": "SubProcess", "name": "Child", "template_id": sub["template_id"],
            "incoming": ["f1"], "outgoing": "f2"}},
        "gateways": {},
        "flows": {"f1": {"id": "f1", "source": "s", "target": "sub"}, "f2": {"id": "f2", "source": "sub", "target": "e"}}
    });
    let task = started(&s, parent).await;
    // The pause node is RUNNING once its stone has taken its job (READY before).
    let status = when(&s, task, "sub/ca", "RUNNING", "RUNNING").await;
    let inner = &status["children"]["sub"]["children"];
    assert_eq!(
        (inner["cs"]["state"].as_str(), inner["ca"]["state"].as_str()),
        (Some("FINISHED"), Some("RUNNING")),
        "{status}"
    );
    assert!(status["children"]["ca"].is_null(), "inner nodes are not listed at the top: {status}");
    node(&s, task, "sub", "pause_subproc", json!({})).await;
    node(&s, task, "ca", "callback", json!({})).await;
    let status = when(&s, task, "sub", "SUSPENDED", "RUNNING").await;
    assert_eq!(status["children"]["sub"]["children"]["ca"]["state"], "FINISHED");
    assert!(status["children"]["sub"]["children"]["ce"].is_null(), "the paused subprocess did not go on: {status}");
    node(&s, task, "sub", "resume_subproc", json!({})).await;
    let status = when(&s, task, "sub", "FINISHED", "FINISHED").await;
    assert_eq!(status["children"]["sub"]["children"]["ce"]["state"], "FINISHED");
}

/// The example with what changes from run to run (trees, constants, node maps) left out.
fn comparable(example: &Value) -> Value {
    let mut v = example.clone();
    if let Some(data) = v.get_mut("data").and_then(Value::as_object_mut) {
        for dynamic in ["pipeline_tree", "constants", "children", "ex_data"] {
            data.remove(dynamic);
        }
    }
    v.as_object_mut().map(|o| o.remove("trace_id"));
    v
}

async fn documented_examples_get_answers_of_their_shape(s: TestServer) {
    let Some(shared) = shared_dir() else { return };
    let dir = shared.join("conformance/bk-sops/apidoc-examples");
    let read = |name: &str| -> Value { must(serde_json::from_str(&must(std::fs::read_to_string(dir.join(name))))) };
    let create = read("create_template.md.block01.json");
    let (_, made) = call(&s, "create_template", create.clone()).await;
    let mut problems = Vec::new();
    let mut compare = |api: &str, example: Value, ours: &Value| {
        assert!(ours["result"] == json!(true) || !ours["data"].is_null(), "{api} failed: {ours}");
        let mut out = Vec::new();
        differences("", &comparable(&example), ours, &mut out);
        problems.extend(out.into_iter().map(|d| format!("{api}: {d}")));
    };
    compare("create_template", read("create_template.md.block02.json"), &made);
    let template = made["data"]["template_id"].clone();
    let ids = |mut request: Value, extra: &[(&str, Value)]| {
        let o = request.as_object_mut().map(std::mem::take).unwrap_or_default();
        let mut o: Map<String, Value> = o;
        o.insert("bk_biz_id".into(), create["bk_biz_id"].clone());
        o.insert("template_id".into(), template.clone());
        for (k, v) in extra {
            o.insert((*k).into(), v.clone());
        }
        Value::Object(o)
    };
    let (_, info) = call(&s, "get_template_info", ids(read("get_template_info.md.block01.json"), &[])).await;
    compare("get_template_info", read("get_template_info.md.block02.json"), &info);
    let (_, task) = call(&s, "create_task", ids(read("create_task.md.block01.json"), &[])).await;
    compare("create_task", read("create_task.md.block02.json"), &task);
    let task_id = task["data"]["task_id"].clone();
    let (_, operated) =
        call(&s, "operate_task", ids(read("operate_task.md.block01.json"), &[("task_id", task_id.clone())])).await;
    compare("operate_task", read("operate_task.md.block02.json"), &operated);
    let (_, status) =
        call(&s, "get_task_status", ids(read("get_task_status.md.block01.json"), &[("task_id", task_id.clone())]))
            .await;
    compare("get_task_status", read("get_task_status.md.block02.json"), &status);
    let example_child = read("get_task_status.md.block02.json")["data"]["children"]
        .as_object()
        .and_then(|c| c.values().nth(1).cloned());
    let our_child = status["data"]["children"].as_object().and_then(|c| c.values().next().cloned());
    if let (Some(e), Some(o)) = (example_child, our_child) {
        compare("get_task_status children", json!({"data": e}), &json!({"data": o}));
    }
    let (_, detail) =
        call(&s, "get_task_detail", ids(read("get_task_detail.md.block01.json"), &[("task_id", task_id.clone())]))
            .await;
    compare("get_task_detail", read("get_task_detail.md.block02.json"), &detail);
    let mut fast = read("fast_create_task.md.block01.json");
    fast["bk_biz_id"] = create["bk_biz_id"].clone();
    let (_, raw) = call(&s, "fast_create_task", fast).await;
    compare("fast_create_task", read("fast_create_task.md.block02.json"), &raw);
    let (_, both) = call(&s, "create_and_start_task", ids(read("create_and_start_task.md.block01.json"), &[])).await;
    compare("create_and_start_task", read("create_and_start_task.md.block02.json"), &both);

    // Node operations on a task of our own: its node `a` fails, `b` waits for a callback.
    let task = started(&s, operable(false)).await;
    let on = |request: Value, node: &str| {
        let mut o = request.as_object().cloned().unwrap_or_default();
        o.insert("bk_biz_id".into(), json!(5));
        o.insert("task_id".into(), json!(task));
        o.insert("node_id".into(), json!(node));
        o.remove("subprocess_stack");
        Value::Object(o)
    };
    when(&s, task, "a", "FAILED", "FAILED").await;
    let (_, skipped) = call(&s, "operate_node", on(read("operate_node.md.block01.json"), "a")).await;
    compare("operate_node", read("operate_node.md.block02.json"), &skipped);
    when(&s, task, "b", "RUNNING", "RUNNING").await;
    let (_, detail) = call(&s, "get_task_node_detail", on(read("get_task_node_detail.md.block01.json"), "b")).await;
    assert_eq!(detail["result"], true, "{detail}");
    let (_, called) = call(&s, "node_callback", on(read("node_callback.md.block01.json"), "b")).await;
    compare("node_callback", read("node_callback.md.block02.json"), &called);
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
}

/// An application limited to some businesses reaches only those.
async fn an_app_reaches_only_the_businesses_it_is_allowed(s: TestServer) {
    let (code, secret, allowed) = common::LIMITED_APP;
    let call_api = |api: &str, params: Value| {
        let mut body = params.as_object().cloned().unwrap_or_default();
        body.insert("bk_app_code".into(), json!(code));
        body.insert("bk_app_secret".into(), json!(secret));
        reqwest::Client::new().post(format!("{}{BASE}/{api}/", s.base)).json(&body).send()
    };
    let call = |params: Value| call_api("get_template_list", params);
    let (status, body) = common::bk_answer(must(call(json!({"bk_biz_id": 3})).await)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["result"], false, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("may not reach business 3"), "{body}");
    let nameless = common::bk_answer(must(call(json!({})).await)).await;
    assert_eq!(nameless.0, StatusCode::FORBIDDEN, "a call naming no business is refused");
    let fine = must(call(json!({"bk_biz_id": allowed})).await);
    assert_eq!(fine.status(), StatusCode::OK);
    let listed = ok(&s, "get_template_list", json!({"bk_biz_id": 3})).await;
    assert!(listed.is_array(), "an app without limits reaches every business: {listed}");
    // Its projects are the businesses it may reach; another's detail is refused.
    let (status, projects) = common::bk_answer(must(call_api("get_user_project_list", json!({})).await)).await;
    assert_eq!(status, StatusCode::OK, "{projects}");
    let only: i64 = allowed.parse().unwrap_or_default();
    assert_eq!(projects["data"], json!([{"project_id": only, "bk_biz_id": only, "name": allowed}]));
    let detail =
        common::bk_answer(must(call_api("get_user_project_detail", json!({"bk_biz_id": allowed})).await)).await;
    assert_eq!((detail.1["data"]["project_id"].as_i64(), &detail.1["data"]["from_cmdb"]), (Some(only), &json!(false)));
    let other = common::bk_answer(must(call_api("get_user_project_detail", json!({"bk_biz_id": 3})).await)).await;
    assert_eq!(other.0, StatusCode::FORBIDDEN);
    // An app without limits lists the businesses with a template or a task.
    ok(&s, "create_template", json!({"bk_biz_id": 31, "name": "p", "pipeline_tree": tree()})).await;
    let every = ok(&s, "get_user_project_list", json!({})).await;
    assert!(every.as_array().into_iter().flatten().any(|p| p["bk_biz_id"] == 31), "{every}");
}

/// How many process instances (running or ended) carry `business_key`.
async fn instances_with_key(s: &TestServer, business_key: &str) -> i64 {
    let path = format!("/flowable-rest/service/history/historic-process-instances?businessKey={business_key}");
    let (status, found) = s.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    found["total"].as_i64().unwrap_or(-1)
}

/// Two starts of one task sent at once, over and over: one starts it, the other is told it
/// started already, and the task has one instance (no second one started and stopped again).
async fn racing_starts_of_one_task_start_it_once(s: TestServer) {
    let made = ok(&s, "create_template", json!({"bk_biz_id": 5, "name": "once", "pipeline_tree": tree()})).await;
    for _ in 0..8 {
        let task =
            ok(&s, "create_task", json!({"bk_biz_id": 5, "template_id": made["template_id"], "name": "t"})).await;
        let start = json!({"bk_biz_id": 5, "task_id": task["task_id"]});
        let (a, b) = tokio::join!(call(&s, "start_task", start.clone()), call(&s, "start_task", start));
        let won: Vec<bool> = [&a, &b].iter().map(|(_, body)| body["result"] == json!(true)).collect();
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{a:?} {b:?}");
        let (status, lost) = if won[0] { &b } else { &a };
        assert_eq!(*status, StatusCode::CONFLICT, "{lost}");
        assert!(lost["message"].as_str().is_some_and(|m| m.contains("started already")), "{lost}");
        let id = task["task_id"].as_i64().unwrap_or_default();
        assert_eq!(instances_with_key(&s, &format!("bk-sops-task-{id}")).await, 1);
    }
}

/// `create_and_start_task` makes the task's model, the task and its instance in one commit: the
/// task answers as started with its instance, found by the task's id.
async fn create_and_start_makes_a_started_task_in_one_step(s: TestServer) {
    let deployments = async || s.get("/flowable-rest/service/repository/deployments").await.1["total"].as_i64();
    let before = deployments().await;
    let task = ok(&s, "create_and_start_task", json!({"bk_biz_id": 5, "name": "fast", "pipeline_tree": tree()})).await;
    let id = task["task_id"].as_i64().unwrap_or_default();
    assert_eq!(deployments().await, before.map(|n| n + 1), "the task's own model");
    assert_eq!(instances_with_key(&s, &format!("bk-sops-task-{id}")).await, 1);
    let (status, again) = call(&s, "start_task", json!({"bk_biz_id": 5, "task_id": id})).await;
    assert_eq!((status, &again["result"]), (StatusCode::CONFLICT, &json!(false)), "{again}");
    // A tree the engine refuses makes nothing: no model, no task.
    let broken = json!({"bk_biz_id": 5, "name": "broken", "pipeline_tree": {"start_event": {}}});
    let (status, refused) = call(&s, "create_and_start_task", broken).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(deployments().await, before.map(|n| n + 1));
}

/// BlueKing's SDK signs in with `X-Bkapi-Authorization`, a JSON object; refusals of it come
/// back in the envelope with HTTP 200, as bk-sops answers.
async fn the_sdks_sign_in_header_works_and_its_refusals_are_enveloped(s: TestServer) {
    let url = format!("{}{BASE}/get_template_list/?bk_biz_id=2", s.base);
    let send = |header: String| reqwest::Client::new().get(&url).header("X-Bkapi-Authorization", header).send();
    let signed = json!({"bk_app_code": BK_APP.0, "bk_app_secret": BK_APP.1, "bk_username": "ops"}).to_string();
    let (status, body) = common::bk_answer(must(send(signed).await)).await;
    assert_eq!((status, &body["result"]), (StatusCode::OK, &json!(true)), "{body}");
    let wrong = json!({"bk_app_code": BK_APP.0, "bk_app_secret": "nope"}).to_string();
    let resp = must(send(wrong).await);
    assert_eq!(resp.status(), StatusCode::OK, "a refusal is HTTP 200, as bk-sops answers");
    let (status, body) = common::bk_answer(resp).await;
    assert_eq!((status, body["code"].as_u64()), (StatusCode::UNAUTHORIZED, Some(3_540_100)), "{body}");
    for malformed in ["not json", r#"["a"]"#] {
        let (status, body) = common::bk_answer(must(send(malformed.into()).await)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{malformed}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains("X-Bkapi-Authorization"), "{body}");
    }
    // Beside the app's credentials, an access token (a Flowstone bearer token) names the user.
    let (status, issued) = s.post("/auth/tokens", json!({"expiresInSeconds": 600})).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let with_token = |token: &str| {
        let header = json!({"bk_app_code": BK_APP.0, "bk_app_secret": BK_APP.1, "access_token": token}).to_string();
        let body = json!({"bk_biz_id": 2, "name": "tokened", "pipeline_tree": tree()});
        reqwest::Client::new()
            .post(format!("{}{BASE}/create_template/", s.base))
            .header("X-Bkapi-Authorization", header)
            .json(&body)
            .send()
    };
    let (status, made) = common::bk_answer(must(with_token(issued["token"].as_str().unwrap_or_default()).await)).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    let info = ok(&s, "get_template_info", json!({"bk_biz_id": 2, "template_id": made["data"]["template_id"]})).await;
    assert_eq!(info["creator"], issued["userId"], "{info}");
    let (status, body) = common::bk_answer(must(with_token("not-a-token").await)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // BlueKing's SDK sends an access token alone: it signs in a user who operates, not others.
    let alone = |token: &str| send(json!({"access_token": token}).to_string());
    let (status, body) = common::bk_answer(must(alone(issued["token"].as_str().unwrap_or_default()).await)).await;
    assert_eq!(status, StatusCode::OK, "the administrator's token: {body}");
    let (status, _) = common::bk_answer(must(alone("t").await)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let user = json!({"id": "clerk", "password": "clerk-secret", "firstName": "C"});
    assert_eq!(s.post("/flowable-rest/service/identity/users", user).await.0, StatusCode::CREATED);
    let clerk = must(
        reqwest::Client::new()
            .post(format!("{}/auth/tokens", s.base))
            .basic_auth("clerk", Some("clerk-secret"))
            .json(&json!({}))
            .send()
            .await,
    );
    let clerk: Value = must(clerk.json().await);
    let (status, body) = common::bk_answer(must(alone(clerk["token"].as_str().unwrap_or_default()).await)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a user who does not operate needs an app: {body}");
}

/// `get_task_list`: newest first, filtered by name, start and end, paged, with the count of all.
async fn tasks_are_listed_newest_first_filtered_and_paged(s: TestServer) {
    let made = ok(&s, "create_template", json!({"bk_biz_id": 8, "name": "t", "pipeline_tree": tree()})).await;
    let template = made["template_id"].as_i64().unwrap_or_default();
    let mut ids = Vec::new();
    for name in ["alpha one", "beta", "alpha two"] {
        let task = ok(&s, "create_task", json!({"bk_biz_id": 8, "template_id": template, "name": name})).await;
        ids.push(task["task_id"].as_i64().unwrap_or_default());
    }
    ok(&s, "start_task", json!({"bk_biz_id": 8, "task_id": ids[1]})).await;
    let list = |params: Value| {
        let s = &s;
        async move {
            let (status, body) = call(s, "get_task_list", params).await;
            assert_eq!((status, &body["result"]), (StatusCode::OK, &json!(true)), "{body}");
            let names: Vec<String> = body["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect();
            (names, body["count"].as_u64())
        }
    };
    assert_eq!(
        list(json!({"bk_biz_id": 8})).await,
        (vec!["alpha two".into(), "beta".into(), "alpha one".into()], Some(3))
    );
    assert_eq!(
        list(json!({"bk_biz_id": 8, "keyword": "alpha", "limit": 1})).await,
        (vec!["alpha two".into()], Some(2))
    );
    assert_eq!(list(json!({"bk_biz_id": 8, "keyword": "alpha", "limit": 1, "offset": 1})).await.0, ["alpha one"]);
    assert_eq!(list(json!({"bk_biz_id": 8, "is_started": "true"})).await, (vec!["beta".into()], Some(1)));
    assert_eq!(list(json!({"bk_biz_id": 8, "is_finished": "false", "is_started": "false"})).await.1, Some(2));
    assert_eq!(list(json!({"bk_biz_id": 9})).await, (vec![], Some(0)));
    let (status, _) = call(&s, "get_task_list", json!({"bk_biz_id": 8, "limit": 500})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = call(&s, "get_common_template_list", json!({"bk_biz_id": 8})).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "documented but not served: {body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("common"), "{body}");
}

/// `modify_constants_for_task`: a task not started takes new values of the constants its tree
/// defines (others are ignored, as in bk-sops) and a new name, and runs with them; a started
/// task refuses as bk-sops does ("task is started", code 3540000).
async fn a_task_not_started_takes_new_constants_and_runs_with_them(s: TestServer) {
    let made = ok(&s, "create_template", json!({"bk_biz_id": 6, "name": "c", "pipeline_tree": tree()})).await;
    let new_task = async || {
        let params = json!({"bk_biz_id": 6, "template_id": made["template_id"], "name": "before",
                            "constants": {"${who}": "kermit"}});
        ok(&s, "create_task", params).await["task_id"].as_i64().unwrap_or_default()
    };
    let id = new_task().await;
    let edit = |id: i64| json!({"bk_biz_id": 6, "task_id": id, "name": "after", "constants": {"${who}": "piggy", "${nope}": 1}});
    assert_eq!(ok(&s, "modify_constants_for_task", edit(id)).await, json!("success"));
    let detail = ok(&s, "get_task_detail", json!({"bk_biz_id": 6, "task_id": id})).await;
    assert_eq!((&detail["name"], &detail["constants"]["${who}"]["value"]), (&json!("after"), &json!("piggy")));
    assert!(detail["constants"].get("${nope}").is_none(), "{detail}");
    ok(&s, "start_task", json!({"bk_biz_id": 6, "task_id": id})).await;
    let detail = ok(&s, "get_task_detail", json!({"bk_biz_id": 6, "task_id": id})).await;
    assert_eq!(detail["outputs"][0]["value"], "piggy", "the instance runs with the new constants: {detail}");
    let (status, body) = call(&s, "modify_constants_for_task", edit(id)).await;
    assert_eq!((status, body["code"].as_u64()), (StatusCode::BAD_REQUEST, Some(3_540_000)), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.starts_with("task is started")), "{body}");
    let (status, body) =
        call(&s, "modify_constants_for_task", json!({"bk_biz_id": 6, "task_id": new_task().await, "constants": [1]}))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // An edit racing a start either lands before it (the instance runs with it) or is refused.
    for _ in 0..6 {
        let id = new_task().await;
        let start = json!({"bk_biz_id": 6, "task_id": id});
        let ((_, edited), (_, started)) =
            tokio::join!(call(&s, "modify_constants_for_task", edit(id)), call(&s, "start_task", start));
        assert_eq!(started["result"], json!(true), "{started}");
        let detail = ok(&s, "get_task_detail", json!({"bk_biz_id": 6, "task_id": id})).await;
        let expected = if edited["result"] == json!(true) { "piggy" } else { "kermit" };
        assert_eq!(detail["outputs"][0]["value"], expected, "{edited} {detail}");
    }
}

/// `query_task_count`: a business's tasks counted by the database by status (each status
/// listed), flow type, creation method or category, filtered by conditions; a `group_by` or
/// condition it does not know is refused with code 3540000.
async fn task_counts_group_and_filter_a_businesss_tasks(s: TestServer) {
    let made = ok(&s, "create_template", json!({"bk_biz_id": 11, "name": "t", "pipeline_tree": tree()})).await;
    let mut ids = Vec::new();
    for (name, flow_type) in [("a", "common"), ("b", "common_func"), ("c", "common")] {
        let params = json!({"bk_biz_id": 11, "template_id": made["template_id"], "name": name, "flow_type": flow_type});
        ids.push(ok(&s, "create_task", params).await["task_id"].clone());
    }
    ok(&s, "start_task", json!({"bk_biz_id": 11, "task_id": ids[1]})).await;
    let count = |group_by: &str, conditions: Value| {
        let params = json!({"bk_biz_id": 11, "group_by": group_by, "conditions": conditions});
        let s = &s;
        async move {
            let data = ok(s, "query_task_count", params).await;
            let groups: Vec<(String, u64)> = data["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| (g["code"].as_str().unwrap_or_default().to_owned(), g["value"].as_u64().unwrap_or(99)))
                .collect();
            (data["total"].as_u64(), groups)
        }
    };
    let pairs = |p: &[(&str, u64)]| p.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect::<Vec<_>>();
    assert_eq!(
        count("status", json!({})).await,
        (Some(3), pairs(&[("CREATED", 2), ("EXECUTING", 1), ("FINISHED", 0)]))
    );
    assert_eq!(count("flow_type", json!({})).await, (Some(3), pairs(&[("common", 2), ("common_func", 1)])));
    assert_eq!(count("flow_type", json!({"is_started": true})).await, (Some(1), pairs(&[("common_func", 1)])));
    assert_eq!(count("create_method", json!({"name": "a", "creator": "ops"})).await, (Some(1), pairs(&[("api", 1)])));
    assert_eq!(count("category", json!({"name": ""})).await, (Some(3), pairs(&[("Default", 3)])));
    assert_eq!(count("flow_type", json!({"create_time__gte": "2999-01-01 00:00:00"})).await, (Some(0), vec![]));
    for (group_by, conditions) in [("colour", json!({})), ("status", json!({"colour": "red"})), ("status", json!([1]))]
    {
        let params = json!({"bk_biz_id": 11, "group_by": group_by, "conditions": conditions});
        let (status, body) = call(&s, "query_task_count", params).await;
        assert_eq!((status, body["code"].as_u64()), (StatusCode::BAD_REQUEST, Some(3_540_000)), "{body}");
    }
}

/// `get_tasks_manual_intervention_state`: a task wants an operator while a failed node waits,
/// while a `pause_node` runs or while it is paused; not before its start, not while a stone
/// works, not once it finished. Tasks of another business are left out; ten ids are refused.
async fn tasks_that_wait_for_an_operator_say_so(s: TestServer) {
    let wants = |ids: Value| {
        let s = &s;
        async move {
            let data = ok(s, "get_tasks_manual_intervention_state", json!({"bk_biz_id": 5, "task_id_list": ids})).await;
            data.as_array()
                .into_iter()
                .flatten()
                .map(|t| (t["id"].as_i64().unwrap_or_default(), t["manual_intervention_required"] == json!(true)))
                .collect::<Vec<_>>()
        }
    };
    let task = started(&s, operable(false)).await;
    when(&s, task, "a", "FAILED", "FAILED").await;
    assert_eq!(wants(json!([task])).await, [(task, true)], "a failed node waits");
    node(&s, task, "a", "retry", json!({"inputs": {"fail": null}})).await;
    when(&s, task, "b", "RUNNING", "RUNNING").await;
    assert_eq!(wants(json!([task])).await, [(task, true)], "a pause_node runs");
    ok(&s, "node_callback", json!({"bk_biz_id": 5, "task_id": task, "node_id": "b", "callback_data": {}})).await;
    when(&s, task, "b", "FINISHED", "FINISHED").await;
    let made = ok(&s, "create_template", json!({"bk_biz_id": 5, "name": "w", "pipeline_tree": tree()})).await;
    let created = ok(&s, "create_task", json!({"bk_biz_id": 5, "template_id": made["template_id"], "name": "c"})).await;
    let created = created["task_id"].as_i64().unwrap_or_default();
    let working =
        ok(&s, "create_and_start_task", json!({"bk_biz_id": 5, "template_id": made["template_id"], "name": "w"})).await
            ["task_id"]
            .as_i64()
            .unwrap_or_default();
    let elsewhere =
        ok(&s, "create_and_start_task", json!({"bk_biz_id": 6, "name": "x", "pipeline_tree": tree()})).await;
    let ids = json!([task, created, working, elsewhere["task_id"], "99999"]);
    assert_eq!(wants(ids).await, [(task, false), (created, false), (working, false)]);
    ok(&s, "operate_task", json!({"bk_biz_id": 5, "task_id": working, "action": "pause"})).await;
    assert_eq!(wants(json!([working])).await, [(working, true)], "a paused task");
    let (status, body) =
        call(&s, "get_tasks_manual_intervention_state", json!({"bk_biz_id": 5, "task_id_list": vec![1; 10]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// `get_plugin_list` / `get_plugin_detail`: the plugins are the stones the server runs and the
/// topics its workers fetch, each with bk-sops' plugin fields; an unknown code answers 3540400.
async fn plugins_are_the_stones_the_server_runs_and_its_workers_fetch(s: TestServer) {
    let acquire = json!({"topic": "deploy_app", "lockDuration": "PT1M", "numberOfTasks": 1, "workerId": "w1"});
    let (status, body) = s.post("/flowable-rest/external-job-api/acquire/jobs", acquire).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = ok(&s, "get_plugin_list", json!({"bk_biz_id": 2})).await;
    let find = |code: &str| list.as_array().into_iter().flatten().find(|p| p["code"] == code).cloned();
    let pause = find("pause_node").unwrap_or_else(|| panic!("a built-in stone: {list}"));
    assert_eq!((&pause["group_name"], &pause["version"]), (&json!("Flowstone (in-process)"), &json!("legacy")));
    assert!(pause["desc"].as_str().is_some_and(|d| d.contains("callback")), "{pause}");
    assert_eq!(pause["outputs"][0]["key"], "_loop");
    let fetched = find("deploy_app").unwrap_or_else(|| panic!("a topic a worker fetches: {list}"));
    assert_eq!(fetched["group_name"], "Flowstone (workers)");
    let detail = ok(&s, "get_plugin_detail", json!({"bk_biz_id": 2, "code": "noop", "version": "legacy"})).await;
    assert_eq!((&detail["code"], &detail["inputs"]), (&json!("noop"), &json!([])), "{detail}");
    let (status, body) = call(&s, "get_plugin_detail", json!({"bk_biz_id": 2, "code": "job_push_local_files"})).await;
    assert_eq!((status, body["code"].as_u64()), (StatusCode::NOT_FOUND, Some(3_540_400)), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("pause_node")), "names the known ones: {body}");
}

/// `get_task_effective_time`: a finished task's time without the time a `pause_node` waited;
/// a task not finished or revoked is refused. `get_plugin_base_info` names every stone.
async fn a_finished_tasks_effective_time_leaves_out_waiting(s: TestServer) {
    let mut tree = operable(false);
    tree["activities"]["a"]["component"]["data"] = json!({});
    let task = started(&s, tree).await;
    when(&s, task, "b", "RUNNING", "RUNNING").await;
    let (status, body) = call(&s, "get_task_effective_time", json!({"bk_biz_id": 5, "task_id": task})).await;
    assert_eq!(status, StatusCode::CONFLICT, "not finished: {body}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    ok(&s, "node_callback", json!({"bk_biz_id": 5, "task_id": task, "node_id": "b", "callback_data": {}})).await;
    when(&s, task, "b", "FINISHED", "FINISHED").await;
    let time = ok(&s, "get_task_effective_time", json!({"bk_biz_id": 5, "task_id": task})).await;
    let (total, effective) = (time["total_elapsed_time"].as_i64(), time["effective_time"].as_i64());
    assert!(total >= Some(1) && effective < total, "the pause is left out: {time}");
    assert_eq!((time["excluded_node_count"].as_i64(), time["total_node_count"].as_i64()), (Some(1), Some(2)), "{time}");
    let revoked = started(&s, operable(false)).await;
    ok(&s, "operate_task", json!({"bk_biz_id": 5, "task_id": revoked, "action": "revoke"})).await;
    let (status, body) = call(&s, "get_task_effective_time", json!({"bk_biz_id": 5, "task_id": revoked})).await;
    assert_eq!(status, StatusCode::CONFLICT, "revoked: {body}");
    let base = ok(&s, "get_plugin_base_info", json!({"bk_biz_id": 5})).await;
    assert!(base.as_array().into_iter().flatten().any(|p| p == &json!({"code": "noop", "name": "noop"})), "{base}");
}

/// Every bk-sops answer of a task's life (and a refusal) fits the schema its operation has in
/// `/openapi.json`.
async fn answers_fit_the_openapi_document(s: TestServer) {
    let doc = must(must(reqwest::get(format!("{}/openapi.json", s.base)).await).json::<Value>().await);
    let fits = |api: &str, body: &Value| {
        let op = &doc["paths"][format!("{BASE}/{api}/")]["post"];
        let schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{api} is not in the document");
        if let Err(e) = conforms(&doc, schema, body, api) {
            panic!("{api}: the answer does not fit the document: {e}\n{body}");
        }
    };
    // Each call answers (`result: true`) but those named here, which refuse.
    let refused = ["get_task_effective_time", "get_common_template_list"];
    let answer = async |api: &str, params: Value| {
        let (_, body) = call(&s, api, params).await;
        assert_eq!(body["result"], json!(!refused.contains(&api)), "{api}: {body}");
        fits(api, &body);
        body["data"].clone()
    };
    let made =
        answer("create_template", json!({"bk_biz_id": 5, "name": "doc", "pipeline_tree": operable(false)})).await;
    let template = json!({"bk_biz_id": 5, "template_id": made["template_id"]});
    answer("get_template_list", json!({"bk_biz_id": 5})).await;
    answer("get_template_info", template.clone()).await;
    answer("preview_task_tree", template.clone()).await;
    let mut params = template.clone();
    params["name"] = json!("doc task");
    let task = answer("create_and_start_task", params).await["task_id"].clone();
    let task = json!({"bk_biz_id": 5, "task_id": task});
    when(&s, task["task_id"].as_i64().unwrap_or_default(), "a", "FAILED", "FAILED").await;
    for api in ["get_task_status", "get_task_detail", "get_task_effective_time"] {
        answer(api, task.clone()).await;
    }
    let mut flags = task.clone();
    flags["with_failed_node_info"] = json!(true);
    flags["with_auto_retry_status"] = json!(true);
    let status = answer("get_task_status", flags).await;
    assert_eq!(status["failed_node_info"], json!({"a": {}}), "a failed node without auto_retry: {status}");
    let mut pause = task.clone();
    pause["action"] = json!("pause");
    answer("operate_task", pause).await;
    let mut node = task.clone();
    node["node_id"] = json!("a");
    answer("get_task_node_detail", node.clone()).await;
    answer("get_task_node_data", node).await;
    let ids = json!({"bk_biz_id": 5, "task_id_list": [task["task_id"]]});
    answer("get_tasks_status", ids.clone()).await;
    answer("get_tasks_manual_intervention_state", ids).await;
    answer("get_task_list", json!({"bk_biz_id": 5, "limit": 5})).await;
    answer("query_task_count", json!({"bk_biz_id": 5, "group_by": "status"})).await;
    answer("get_plugin_list", json!({"bk_biz_id": 5})).await;
    answer("get_plugin_base_info", json!({"bk_biz_id": 5})).await;
    answer("get_plugin_detail", json!({"bk_biz_id": 5, "code": "noop"})).await;
    answer("get_user_project_list", json!({})).await;
    answer("get_user_project_detail", json!({"bk_biz_id": 5})).await;
    answer("get_common_template_list", json!({"bk_biz_id": 5})).await;
    let mut params = template.clone();
    params["name"] = json!("every five minutes");
    params["cron"] = json!({"minute": "*/5"});
    let periodic = json!({"bk_biz_id": 5, "task_id": answer("create_periodic_task", params).await["id"]});
    answer("get_periodic_task_list", json!({"bk_biz_id": 5, "include_edit_info": true})).await;
    answer("get_periodic_task_info", periodic.clone()).await;
    let mut enable = periodic.clone();
    enable["enabled"] = json!(true);
    answer("set_periodic_task_enabled", enable).await;
    let mut cron = periodic.clone();
    cron["cron"] = json!({"hour": "3"});
    answer("modify_cron_for_periodic_task", cron).await;
    let mut constants = periodic.clone();
    constants["constants"] = json!({});
    answer("modify_constants_for_periodic_task", constants).await;
    let mut params = template.clone();
    params["task_name"] = json!("planned");
    params["plan_start_time"] = json!("2999-01-01 00:00:00+0000");
    answer("create_clocked_task", params).await;
    answer("get_clocked_task_list", json!({"bk_biz_id": 5})).await;
    let mut params = template.clone();
    params["name"] = json!("later");
    let later = json!({"bk_biz_id": 5, "task_id": answer("create_task", params).await["task_id"]});
    let mut edit = later.clone();
    edit["constants"] = json!({});
    answer("modify_constants_for_task", edit).await;
    answer("start_task", later).await;
}

backend_tests!(server = TestServer::start;
    answers_fit_the_openapi_document,
    a_finished_tasks_effective_time_leaves_out_waiting,
    plugins_are_the_stones_the_server_runs_and_its_workers_fetch,
    tasks_that_wait_for_an_operator_say_so,
    task_counts_group_and_filter_a_businesss_tasks,
    a_task_not_started_takes_new_constants_and_runs_with_them,
    tasks_are_listed_newest_first_filtered_and_paged,
    the_sdks_sign_in_header_works_and_its_refusals_are_enveloped,
    racing_starts_of_one_task_start_it_once,
    create_and_start_makes_a_started_task_in_one_step,
    an_app_reaches_only_the_businesses_it_is_allowed,
    app_credentials_are_required_and_checked,
    a_template_becomes_tasks_that_run_and_report,
    documented_examples_get_answers_of_their_shape,
    a_failed_node_retried_with_new_inputs_completes_the_task,
    skip_error_ignorable_and_forced_fail_steer_the_run,
    node_timeouts_and_automatic_retries_act_on_their_own,
    subprocess_nodes_nest_under_their_subprocess_in_the_status,
    a_paused_task_starts_no_new_node_until_resumed,
    a_node_a_gateway_leads_back_to_counts_its_loops,
    an_exported_set_of_templates_imports_with_its_subprocesses,
    a_yaml_export_imports_and_its_templates_run,
    optional_nodes_left_out_are_bypassed_in_the_preview_and_the_task,
    skip_exg_takes_the_flow_a_gateway_could_not_choose,
);
