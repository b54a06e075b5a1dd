//! Hostile input through the real server, on SQLite and PostgreSQL: each request below once
//! took the server down or made it work without bound. Each test sends it, then shows the
//! server still answers and other work goes on.

mod common;

use common::{TestServer, must};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BK: &str = "/api/c/compapi/v2/sops";

/// A model whose one flow carries `condition`.
fn with_condition(key: &str, condition: &str) -> String {
    format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="{key}">
        <startEvent id="s"/><sequenceFlow id="f" sourceRef="s" targetRef="e"><conditionExpression>{condition}</conditionExpression></sequenceFlow>
        <endEvent id="e"/></process></definitions>"#
    )
}

async fn a_billion_items_fail_their_instance_and_the_server_comes_back_after_a_restart(s: TestServer) {
    let started = s
        .start_process(
            "cluster",
            json!({"slaveNum": "1000000000", "master-1a": {}, "slave-": {}, "Bingo::RS::FRONT::RSBILLING": {}}),
        )
        .await;
    let id = started["processInstanceId"].as_str().unwrap_or_default().to_owned();
    let failed = s.wait_for(&id, "rolledBack").await;
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("`slaves`") && reason.contains("at most 10000"), "{failed}");
    let s = s.restart().await;
    assert_eq!(s.process(&id).await["processStatus"], "rolledBack");
    let fine = s.start_process("cluster", json!({"slaveNum": "2"})).await;
    let fine = s.settle(fine["processInstanceId"].as_str().unwrap_or_default()).await;
    assert_eq!(fine["processStatus"], "success", "{fine}");
}

/// A multi-instance of many items is stored in parts (each commit writes what changed); read
/// back after a restart, it goes on where it was, its items' values included.
async fn a_multi_instance_of_many_items_goes_on_after_a_restart_where_it_was(s: TestServer) {
    const TASKS: &str = "/flowable-rest/service/runtime/tasks";
    s.deploy(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn">
        <process id="many"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/>
        <userTask id="u" name="review ${who}"><multiInstanceLoopCharacteristics flowable:collection="${people}"
          flowable:elementVariable="who"/></userTask>
        <sequenceFlow sourceRef="u" targetRef="e"/><endEvent id="e"/></process></definitions>"#,
    )
    .await;
    let people: Vec<String> = (0..150).map(|i| format!("p{i}")).collect();
    let started = s.start_process("many", json!({"people": people})).await;
    let id = started["processInstanceId"].as_str().unwrap_or_default().to_owned();
    let open = async |s: &TestServer| {
        let (status, body) = s.get(&format!("{TASKS}?processInstanceId={id}&size=1000")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().cloned().unwrap_or_default()
    };
    let complete = async |s: &TestServer, tasks: &[Value]| {
        for task in tasks {
            let path = format!("{TASKS}/{}", task["id"].as_str().unwrap_or_default());
            let (status, body) = s.post(&path, json!({"action": "complete"})).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
        }
    };
    let tasks = open(&s).await;
    assert_eq!(tasks.len(), 150);
    complete(&s, &tasks[..100]).await;
    let s = s.restart().await;
    let rest = open(&s).await;
    let mut names: Vec<String> = rest.iter().map(|t| t["name"].as_str().unwrap_or_default().to_owned()).collect();
    let mut expected: Vec<String> =
        tasks[100..].iter().map(|t| t["name"].as_str().unwrap_or_default().to_owned()).collect();
    names.sort();
    expected.sort();
    assert_eq!(names, expected, "the open items are the ones left");
    complete(&s, &rest[..49]).await;
    // The last item ends the activity from a state read back once more.
    let s = s.restart().await;
    assert_eq!(s.process(&id).await["processStatus"], "running");
    complete(&s, &open(&s).await).await;
    assert_eq!(s.settle(&id).await["processStatus"], "success");
}

async fn expressions_nested_deep_anywhere_are_refused_at_deploy_time_naming_the_element(s: TestServer) {
    let deep = format!("${{{}x{}}}", "(".repeat(5_000), ")".repeat(5_000));
    let long_chain = format!("${{x{}}}", "+x".repeat(20_000));
    for (what, source) in [("parentheses", &deep), ("a long chain", &long_chain)] {
        let (status, body) = s.post_raw("/model", with_condition("deep", source), "application/xml").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert!(body["message"].as_str().unwrap_or_default().contains(r#"id="f""#), "{what}: {body}");
    }
    let not = format!("${{{}true}}", "!".repeat(100_000));
    let user_task = format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="named">
        <startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="u"/><userTask id="u" name="{not}"/></process></definitions>"#
    );
    let (status, body) = s.post_raw("/model", user_task, "application/xml").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let tree = json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "incoming": "", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f2"], "outgoing": ""},
        "activities": {"a": {"id": "a", "type": "ServiceActivity", "name": "A", "incoming": ["f1"], "outgoing": "f2",
            "component": {"code": "sleep_timer", "data": {"x": {"hook": false, "value": deep}}}}},
        "gateways": {},
        "flows": {"f1": {"id": "f1", "source": "s", "target": "a", "is_default": false},
                  "f2": {"id": "f2", "source": "a", "target": "e", "is_default": false}},
        "constants": {}, "outputs": []
    });
    let body = json!({"bk_app_code": common::BK_APP.0, "bk_app_secret": common::BK_APP.1, "bk_username": "ops",
        "bk_biz_id": 2, "name": "deep", "pipeline_tree": tree});
    let resp = must(reqwest::Client::new().post(format!("{}{BK}/create_template/", s.base)).json(&body).send().await);
    let answer: Value = must(resp.json().await);
    assert_eq!(answer["result"], false, "{answer}");
    assert!(answer["message"].as_str().unwrap_or_default().contains("nests more than 64"), "{answer}");
    let (status, _) = s.get("/health").await;
    assert_eq!(status, StatusCode::OK);
}

async fn a_string_doubled_in_a_loop_fails_its_instance_and_others_run(s: TestServer) {
    s.deploy(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn">
        <process id="doubling"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="double"/>
        <serviceTask id="double" flowable:expression="${text + text}" flowable:resultVariable="text"/>
        <sequenceFlow sourceRef="double" targetRef="double"/></process></definitions>"#,
    )
    .await;
    let (status, started) = s
        .call(
            Method::POST,
            "/process",
            Some(json!({"key": "doubling", "processName": "grow", "variables": {"text": "ab"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(started["processStatus"], "failed", "{started}");
    assert!(started["reason"].as_str().unwrap_or_default().contains("at `double`"), "{started}");
    let w1 = s.start_process("w1_straight", json!({})).await;
    assert_eq!(w1["processStatus"], "success", "{w1}");
}

/// A model whose one script task runs `source` as JavaScript, its value set as `result`.
fn javascript(key: &str, source: &str) -> String {
    format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn">
        <process id="{key}"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="calc"/>
        <scriptTask id="calc" scriptFormat="javascript" flowable:resultVariable="result"><script><![CDATA[{source}]]></script></scriptTask>
        <sequenceFlow sourceRef="calc" targetRef="e"/><endEvent id="e"/></process></definitions>"#
    )
}

async fn javascript_that_loops_or_allocates_without_bound_fails_its_instance_and_others_run(s: TestServer) {
    s.deploy(&javascript("js_sum", "execution.setVariable('count', items.length); items.reduce((a, b) => a + b, 0)"))
        .await;
    let summed = s.start_process("js_sum", json!({"items": [1, 2, 3.5]})).await;
    assert_eq!(summed["processStatus"], "success", "{summed}");
    let tasks = s.tasks(summed["processInstanceId"].as_str().unwrap_or_default()).await;
    assert_eq!((tasks.len(), tasks[0]["outputs"].as_str()), (1, Some(r#"{"result":6.5}"#)), "{tasks:?}");
    for (key, source, bound) in [
        ("js_loop", "while (true) {}", "time limit"),
        // Past the 32 MiB bound at its first string: a busy machine cannot reach the time bound first.
        ("js_alloc", "var all = []; for (;;) all.push('x'.repeat(1 << 25) + all.length);", "memory limit"),
        ("js_deep", "function f(n) { return f(n + 1) + 1; } f(0)", "stack"),
    ] {
        s.deploy(&javascript(key, source)).await;
        let failed = s.start_process(key, json!({})).await;
        let reason = failed["reason"].as_str().unwrap_or_default();
        assert_eq!(failed["processStatus"], "failed", "{key}: {failed}");
        assert!(reason.contains("`calc`") && reason.contains(bound), "{key}: {reason}");
        let w1 = s.start_process("w1_straight", json!({})).await;
        assert_eq!(w1["processStatus"], "success", "{key}: {w1}");
    }
    let (status, refused) = s.post_raw("/model", javascript("js_bad", "if (ready {"), "application/xml").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused.to_string().contains("its JavaScript does not parse: SyntaxError"), "{refused}");
}

/// Calls the bk-sops `api` as the test application.
async fn bk(s: &TestServer, api: &str, params: Value) -> Value {
    let mut body = params.as_object().cloned().unwrap_or_default();
    body.insert("bk_app_code".into(), json!(common::BK_APP.0));
    body.insert("bk_app_secret".into(), json!(common::BK_APP.1));
    let resp = must(reqwest::Client::new().post(format!("{}{BK}/{api}/", s.base)).json(&body).send().await);
    must(resp.json().await)
}

async fn bk_sops_constants_that_double_each_other_stop_at_the_bounds(s: TestServer) {
    // c0 = "ab", c1 = "${c0}${c0}", … c60: 2^61 bytes if nothing stopped it.
    let mut constants = serde_json::Map::new();
    for i in 0..=60 {
        let value = if i == 0 { "ab".to_owned() } else { format!("${{c{}}}${{c{}}}", i - 1, i - 1) };
        constants.insert(
            format!("${{c{i}}}"),
            json!({"key": format!("${{c{i}}}"), "source_type": "custom", "value": value}),
        );
    }
    let tree = json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "incoming": "", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f2"], "outgoing": ""},
        "activities": {"a": {"id": "a", "type": "ServiceActivity", "name": "A", "incoming": ["f1"], "outgoing": "f2",
            "component": {"code": "sleep_timer", "data": {"bk_timing": {"hook": false, "value": "0"}}}}},
        "gateways": {},
        "flows": {"f1": {"id": "f1", "source": "s", "target": "a", "is_default": false},
                  "f2": {"id": "f2", "source": "a", "target": "e", "is_default": false}},
        "constants": constants, "outputs": []
    });
    let made = bk(&s, "create_template", json!({"bk_biz_id": 2, "name": "doubling", "pipeline_tree": tree})).await;
    assert_eq!(made["result"], true, "{made}");
    let task = bk(
        &s,
        "create_and_start_task",
        json!({"bk_biz_id": 2, "template_id": made["data"]["template_id"], "name": "run"}),
    )
    .await;
    assert_eq!(task["result"], true, "{task}");
    let id = task["data"]["task_id"].clone();
    let mut state = Value::Null;
    for _ in 0..200 {
        state = bk(&s, "get_task_status", json!({"bk_biz_id": 2, "task_id": id})).await["data"]["state"].clone();
        if state != "RUNNING" && state != "CREATED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(state, "FAILED", "the instance's variables outgrew their bound");
    let w1 = s.start_process("w1_straight", json!({})).await;
    assert_eq!(w1["processStatus"], "success", "{w1}");
}

async fn variables_past_the_limits_are_refused_with_400_naming_them(s: TestServer) {
    let big = "x".repeat(5 * 1024 * 1024);
    let (status, body) = s
        .call(
            Method::POST,
            "/process",
            Some(json!({"key": "w2_usertask", "processName": "big", "variables": {"blob": big}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("variable `blob`"), "{body}");
}

/// Starts `n` W1 instances at once (each answers `success` when committed).
async fn others_at_work(s: &TestServer, n: usize) -> Vec<(StatusCode, Value)> {
    let calls = (0..n).map(|_| {
        s.call(Method::POST, "/process", Some(json!({"key": "w1_straight", "processName": "ok", "variables": {}})))
    });
    futures_util::future::join_all(calls).await
}

async fn nul_in_any_text_is_400_in_the_dialects_shape_while_other_clients_commit(s: TestServer) {
    let worker = common::signed_in(&format!("admin:{}", common::PASSWORD));
    let nul_basic = common::signed_in("ad\0min:x");
    let hostile = async {
        let mut answers = Vec::new();
        for (method, path, body) in [
            (Method::POST, "/process", Some(json!({"key": "w1_straight", "processName": "a\u{0}b", "variables": {}}))),
            (Method::GET, "/process/a%00b", None),
            (Method::GET, "/task?processInstanceId=%00", None),
            (
                Method::POST,
                "/flowable-rest/service/runtime/process-instances",
                Some(json!({"processDefinitionKey": "w2_usertask", "businessKey": "k\u{0}"})),
            ),
            (Method::GET, "/flowable-rest/service/runtime/tasks?nameLike=%00%25", None),
            (Method::POST, "/worker/jobs/x/fail", Some(json!({"workerId": "w", "reason": "bad\u{0}"}))),
        ] {
            let (status, answer) = s.call_with(&worker, method, path, body).await;
            answers.push((path, status, answer));
        }
        let (status, answer) = s.call_with(&nul_basic, Method::GET, "/process", None).await;
        answers.push(("basic", status, answer));
        answers
    };
    let (answers, others) = tokio::join!(hostile, others_at_work(&s, 40));
    for (path, status, answer) in answers {
        let expected = if path == "basic" { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
        assert_eq!(status, expected, "{path}: {answer}");
        if path.starts_with("/flowable-rest/") {
            assert_eq!(answer["message"], "Bad request", "{path}: {answer}");
        } else if path != "basic" {
            assert!(answer["message"].as_str().unwrap_or_default().contains("NUL"), "{path}: {answer}");
        }
    }
    assert!(others.iter().all(|(status, body)| *status == StatusCode::OK && body["processStatus"] == "success"));
    let bk = json!({"bk_app_code": common::BK_APP.0, "bk_app_secret": common::BK_APP.1, "bk_username": "ops\u{0}"});
    let resp = must(reqwest::Client::new().post(format!("{}{BK}/get_template_list/", s.base)).json(&bk).send().await);
    let (status, answer) = common::bk_answer(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["result"], false, "bk-sops' envelope: {answer}");
}

async fn a_like_filter_ending_in_a_backslash_is_a_literal_backslash(s: TestServer) {
    for path in [
        "/flowable-rest/service/runtime/tasks?nameLike=a%5C",
        "/flowable-rest/service/identity/users?firstNameLike=x%5C",
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["total"], 0, "{path}: {body}");
    }
}

/// A value the database refuses, sent past the HTTP checks, fails its own request alone:
/// the group it shared is committed again request by request.
async fn a_value_the_database_refuses_fails_only_the_request_that_carried_it(s: TestServer) {
    let rt = s.server.as_ref().map(|server| server.runtime().clone()).expect("running");
    let model = must(rt.latest_model("w1_straight").await).expect("deployed");
    let start = |name: &str| {
        rt.start_instance(model.clone(), name.to_owned(), None, serde_json::Map::new(), Default::default())
    };
    let mut calls = vec![start("bad\0name")];
    calls.extend((0..40).map(|i| start(&format!("good {i}"))));
    let mut results = futures_util::future::join_all(calls).await.into_iter();
    let bad = results.next().expect("first");
    if s.database.is_some() {
        assert!(matches!(bad, Err(flowstone_server::RuntimeError::NotValid(_))), "{bad:?}");
    }
    for good in results {
        assert_eq!(must(good).status, "completed");
    }
}

async fn lists_leave_big_variables_out_and_say_where_to_read_them(s: TestServer) {
    let big = "x".repeat(1024 * 1024);
    s.start_process("w2_usertask", json!({"blob": big, "small": 1})).await;
    for path in [
        "/flowable-rest/service/runtime/tasks?includeProcessVariables=true&size=100000".to_owned(),
        "/flowable-rest/service/runtime/process-instances?includeProcessVariables=true&size=100000".to_owned(),
    ] {
        let (status, body) = s.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let vars = body["data"][0]["variables"].as_array().cloned().unwrap_or_default();
        let blob = vars.iter().find(|v| v["name"] == "blob").cloned().unwrap_or_default();
        assert!(blob["value"].is_null(), "{path}: the big value is left out");
        let url = blob["valueUrl"].as_str().unwrap_or_default();
        let (status, whole) = s.get(url.trim_start_matches(&s.base)).await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert_eq!(whole["value"].as_str().map(str::len), Some(1024 * 1024), "{url} gives the whole value");
        let small = vars.iter().find(|v| v["name"] == "small").cloned().unwrap_or_default();
        assert_eq!(small["value"], 1, "{path}: small values stay");
    }
}

/// Every variable filter is a subquery and every candidate group a bound value: a query of
/// thousands is refused with 400 naming the bound, not failed by the database with a 503.
async fn a_task_query_of_thousands_of_filters_or_groups_is_400_naming_the_bound(s: TestServer) {
    let query = "/flowable-rest/service/query/tasks";
    let filters = |n: usize| (0..n).map(|i| json!({"name": format!("v{i}"), "value": i})).collect::<Vec<_>>();
    let groups = (0..40_000).map(|i| format!("g{i}")).collect::<Vec<_>>();
    for (body, bound) in [
        (json!({"taskVariables": filters(3000)}), "at most 20 variable filters"),
        (json!({"taskVariables": filters(11), "processInstanceVariables": filters(10)}), "at most 20 variable filters"),
        (json!({"candidateGroupIn": groups.clone()}), "at most 1000 candidate groups"),
    ] {
        let (status, answer) = s.post(query, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["exception"].as_str().unwrap_or_default().contains(bound), "{answer}");
    }
    let listed = format!("/flowable-rest/service/runtime/tasks?candidateGroups={}", groups[..2000].join(","));
    assert_eq!(s.get(&listed).await.0, StatusCode::BAD_REQUEST);
    let (status, answer) =
        s.post(query, json!({"taskVariables": filters(20), "candidateGroupIn": groups[..1000]})).await;
    assert_eq!((status, answer["total"].as_u64()), (StatusCode::OK, Some(0)), "at the bounds: {answer}");
}

backend_tests!(server = TestServer::start;
    a_task_query_of_thousands_of_filters_or_groups_is_400_naming_the_bound,
    lists_leave_big_variables_out_and_say_where_to_read_them,
    nul_in_any_text_is_400_in_the_dialects_shape_while_other_clients_commit,
    a_like_filter_ending_in_a_backslash_is_a_literal_backslash,
    a_value_the_database_refuses_fails_only_the_request_that_carried_it,
    a_billion_items_fail_their_instance_and_the_server_comes_back_after_a_restart,
    a_multi_instance_of_many_items_goes_on_after_a_restart_where_it_was,
    expressions_nested_deep_anywhere_are_refused_at_deploy_time_naming_the_element,
    a_string_doubled_in_a_loop_fails_its_instance_and_others_run,
    javascript_that_loops_or_allocates_without_bound_fails_its_instance_and_others_run,
    variables_past_the_limits_are_refused_with_400_naming_them,
    bk_sops_constants_that_double_each_other_stop_at_the_bounds,
);
