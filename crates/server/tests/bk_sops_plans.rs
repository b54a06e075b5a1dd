//! bk-sops' periodic and clocked tasks through the real server on SQLite and PostgreSQL.
//! Periodic tasks are made disabled, listed and shown with bk-sops' fields, enabled and
//! disabled (setting and dropping their timer), given a new crontab and constants; clocked tasks
//! are planned and listed. When their timer comes due (the test moves it to now instead of
//! waiting) a task of the template is made and started with their constants.

mod common;

use common::TestServer;
use flowstone_store::{Store, TimerRow, WriteBatch};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

/// start → `a` (built-in `noop` echoing `${who}`) → end, `${who}` a constant shown to users.
fn tree() -> Value {
    json!({
        "start_event": {"id": "s", "type": "EmptyStartEvent", "outgoing": "f1"},
        "end_event": {"id": "e", "type": "EmptyEndEvent", "incoming": ["f2"]},
        "activities": {"a": {"id": "a", "type": "ServiceActivity", "incoming": ["f1"], "outgoing": "f2",
            "component": {"code": "noop", "data": {"who": {"hook": true, "value": "${who}"}}}}},
        "gateways": {},
        "flows": {"f1": {"id": "f1", "source": "s", "target": "a"}, "f2": {"id": "f2", "source": "a", "target": "e"}},
        "constants": {
            "${who}": {"key": "${who}", "name": "who", "source_type": "custom", "show_type": "show", "value": "nobody"},
            "${hidden}": {"key": "${hidden}", "name": "hidden", "source_type": "custom", "show_type": "hide", "value": "x"}
        }
    })
}

fn store(s: &TestServer) -> Arc<dyn Store> {
    s.server.as_ref().map(|server| server.runtime().store().clone()).unwrap_or_else(|| panic!("no server"))
}

/// Moves the timer `id` to now, as if its time came.
async fn come_due(s: &TestServer, id: &str) {
    let store = store(s);
    let timer = store.timer(id).await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("{id} is not set"));
    let now = jiff::Timestamp::now().as_millisecond();
    let batch = WriteBatch { timers: vec![TimerRow { due: now, ..timer }], ..WriteBatch::default() };
    store.commit(&batch).await.unwrap_or_else(|e| panic!("{e}"));
}

/// The periodic task once it counted `runs` runs.
async fn after_runs(s: &TestServer, periodic: i64, runs: i64) -> Value {
    for _ in 0..400 {
        let info = s.bk_ok("get_periodic_task_info", json!({"bk_biz_id": 5, "task_id": periodic})).await;
        if info["total_run_count"] == runs {
            return info;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("periodic task {periodic} never ran {runs} times");
}

async fn a_periodic_task_makes_and_starts_a_task_each_time_its_crontab_comes_due(s: TestServer) {
    let template =
        s.bk_ok("create_template", json!({"bk_biz_id": 5, "name": "nightly", "pipeline_tree": tree()})).await;
    // Midnight of January 1st: the test moves its timer instead of waiting for it.
    let cron = json!({"minute": "0", "hour": "0", "day_of_month": "1", "month_of_year": "1"});
    let made = s
        .bk_ok(
            "create_periodic_task",
            json!({"bk_biz_id": 5, "template_id": template["template_id"], "name": "nightly", "cron": cron,
                   "constants": {"${who}": "night", "${unknown}": 1}}),
        )
        .await;
    let id = made["id"].as_i64().unwrap_or_default();
    assert_eq!(
        (&made["enabled"], &made["cron"], &made["total_run_count"], &made["last_run_at"]),
        (&json!(false), &json!("0 0 * 1 1 (m/h/d/dM/MY)"), &json!(0), &json!("")),
        "made disabled, as bk-sops makes it: {made}"
    );
    assert_eq!(made["template_id"], template["template_id"].to_string(), "{made}");
    assert_eq!(made["form"]["${who}"]["value"], "night", "the form shows the constants shown: {made}");
    assert!(made["form"].get("${hidden}").is_none(), "{made}");
    assert_eq!(made["pipeline_tree"]["constants"]["${who}"]["value"], "night");
    assert!(store(&s).timer(&format!("periodic:{id}")).await.unwrap_or_else(|e| panic!("{e}")).is_none());

    let listed = s.bk_ok("get_periodic_task_list", json!({"bk_biz_id": 5, "include_edit_info": true})).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["auth_actions"].as_array().map(Vec::len), Some(3), "{listed}");
    assert!(listed[0].get("pipeline_tree").is_none() && listed[0]["is_latest"] == true, "{listed}");

    let enabled = s.bk_ok("set_periodic_task_enabled", json!({"bk_biz_id": 5, "task_id": id, "enabled": true})).await;
    assert_eq!(enabled, json!({"enabled": true}));
    come_due(&s, &format!("periodic:{id}")).await;
    let ran = after_runs(&s, id, 1).await;
    assert!(ran["last_run_at"].as_str().is_some_and(|t| t.ends_with("+0000")), "{ran}");
    let timer = store(&s).timer(&format!("periodic:{id}")).await.unwrap_or_else(|e| panic!("{e}"));
    let next = timer.map(|t| t.due).unwrap_or_default() - jiff::Timestamp::now().as_millisecond();
    assert!(next > 86_400_000, "the timer moved on to the next January 1st, {next} ms ahead");

    let tasks = s.bk_ok("get_task_list", json!({"bk_biz_id": 5})).await;
    let task = &tasks[0];
    assert!(task["name"].as_str().is_some_and(|n| n.starts_with("nightly_") && n.len() == 22), "{task}");
    let task = task["id"].as_i64().unwrap_or_default();
    assert_eq!(finished_node(&s, task, "a").await["inputs"]["who"], "night");
    let counts = s.bk_ok("query_task_count", json!({"bk_biz_id": 5, "group_by": "create_method"})).await;
    assert!(counts.to_string().contains("periodic"), "{counts}");

    // New constants apply to the next task; a new crontab moves the timer; disabling drops it.
    let constants = s
        .bk_ok(
            "modify_constants_for_periodic_task",
            json!({"bk_biz_id": 5, "task_id": id, "constants": {"${who}": "day"}}),
        )
        .await;
    assert_eq!((&constants["${who}"]["value"], &constants["${hidden}"]["value"]), (&json!("day"), &json!("x")));
    let cron = json!({"minute": "*/5"});
    let modified = s.bk_ok("modify_cron_for_periodic_task", json!({"bk_biz_id": 5, "task_id": id, "cron": cron})).await;
    assert_eq!(modified, json!({"cron": "*/5 * * * * (m/h/d/dM/MY)"}));
    let timer = store(&s).timer(&format!("periodic:{id}")).await.unwrap_or_else(|e| panic!("{e}"));
    let next = timer.map(|t| t.due).unwrap_or_default() - jiff::Timestamp::now().as_millisecond();
    assert!((0..=300_000).contains(&next), "due within five minutes, {next} ms ahead");
    come_due(&s, &format!("periodic:{id}")).await;
    after_runs(&s, id, 2).await;
    let tasks = s.bk_ok("get_task_list", json!({"bk_biz_id": 5})).await;
    let newest = tasks[0]["id"].as_i64().unwrap_or_default();
    let detail = s.bk_ok("get_task_detail", json!({"bk_biz_id": 5, "task_id": newest})).await;
    assert!(detail.to_string().contains("\"day\""), "the second task has the new constants: {detail}");
    s.bk_ok("set_periodic_task_enabled", json!({"bk_biz_id": 5, "task_id": id, "enabled": false})).await;
    assert!(store(&s).timer(&format!("periodic:{id}")).await.unwrap_or_else(|e| panic!("{e}")).is_none());
}

/// The state of the data of `node` of `task` once it finished.
async fn finished_node(s: &TestServer, task: i64, node: &str) -> Value {
    let mut data = Value::Null;
    for _ in 0..400 {
        data = s.bk_ok("get_task_node_data", json!({"bk_biz_id": 5, "task_id": task, "node_id": node})).await;
        if data["state"] == "FINISHED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(data["state"], "FINISHED", "{data}");
    data
}

async fn a_clocked_task_makes_and_starts_its_task_once_at_its_time(s: TestServer) {
    let template = s.bk_ok("create_template", json!({"bk_biz_id": 5, "name": "noon", "pipeline_tree": tree()})).await;
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let plan = at.strftime("%Y-%m-%d %H:%M:%S+0000").to_string();
    let params = json!({"constants": {"${who}": "noon"}, "template_schemes_id": []});
    let made = s
        .bk_ok(
            "create_clocked_task",
            json!({"bk_biz_id": 5, "template_id": template["template_id"], "task_name": "at noon",
                   "plan_start_time": plan, "task_parameters": params}),
        )
        .await;
    assert_eq!(
        (&made["state"], &made["task_id"], &made["plan_start_time"], &made["task_parameters"]),
        (&json!("not_started"), &Value::Null, &json!(plan), &params),
        "{made}"
    );
    assert_eq!((&made["template_name"], &made["template_source"]), (&json!("noon"), &json!("project")), "{made}");
    assert!(made.get("clocked_task_id").is_none(), "create leaves it out, as bk-sops does: {made}");
    let id = made["id"].as_i64().unwrap_or_default();

    let (status, listed) = s.bk_call("get_clocked_task_list", json!({"bk_biz_id": 5, "task_name": "NOON"})).await;
    assert_eq!((status, &listed["count"]), (StatusCode::OK, &json!(1)), "{listed}");
    let item = &listed["data"][0];
    assert_eq!((&item["clocked_task_id"], item["auth_actions"].as_array().map(Vec::len)), (&json!(id), Some(4)));
    assert!(item["plan_start_time"].as_str().is_some_and(|t| t.ends_with(" +0000")), "{item}");

    come_due(&s, &format!("clocked:{id}")).await;
    let mut started = Value::Null;
    for _ in 0..400 {
        let (_, listed) = s.bk_call("get_clocked_task_list", json!({"bk_biz_id": 5, "state": "started"})).await;
        started = listed["data"][0].clone();
        if started["task_id"].is_i64() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let task = started["task_id"].as_i64().unwrap_or_else(|| panic!("no task was made: {started}"));
    assert_eq!(finished_node(&s, task, "a").await["inputs"]["who"], "noon");
    assert!(store(&s).timer(&format!("clocked:{id}")).await.unwrap_or_else(|e| panic!("{e}")).is_none(), "once");
    let counts = s.bk_ok("query_task_count", json!({"bk_biz_id": 5, "group_by": "create_method"})).await;
    assert!(counts.to_string().contains("clocked"), "{counts}");
    let (_, listed) = s.bk_call("get_clocked_task_list", json!({"bk_biz_id": 5, "state": "not_started"})).await;
    assert_eq!(listed["count"], 0, "{listed}");
}

/// A clocked task whose template's model is gone when it comes due is marked `start_failed`
/// and makes no task, as bk-sops marks one it cannot start; a periodic task then misses its run
/// and waits for its next time.
async fn a_plan_that_cannot_make_its_task_is_marked_start_failed_or_missed(s: TestServer) {
    let template = s.bk_ok("create_template", json!({"bk_biz_id": 5, "name": "gone", "pipeline_tree": tree()})).await;
    let plan = json!({"bk_biz_id": 5, "template_id": template["template_id"], "task_name": "doomed",
                      "plan_start_time": "2999-01-01 00:00:00+0000"});
    let id = s.bk_ok("create_clocked_task", plan).await["id"].as_i64().unwrap_or_default();
    let periodic =
        json!({"bk_biz_id": 5, "template_id": template["template_id"], "name": "p", "cron": {"minute": "0"}});
    let periodic = s.bk_ok("create_periodic_task", periodic).await["id"].as_i64().unwrap_or_default();
    s.bk_ok("set_periodic_task_enabled", json!({"bk_biz_id": 5, "task_id": periodic, "enabled": true})).await;
    let key = template["pipeline_template_id"].as_str().unwrap_or_default();
    let (_, found) = s.get(&format!("/flowable-rest/service/repository/process-definitions?key={key}")).await;
    let deployment = found["data"][0]["deploymentId"].as_str().unwrap_or_default().to_owned();
    let (status, body) = s
        .call(reqwest::Method::DELETE, &format!("/flowable-rest/service/repository/deployments/{deployment}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    come_due(&s, &format!("clocked:{id}")).await;
    let mut state = Value::Null;
    for _ in 0..400 {
        let (_, listed) = s.bk_call("get_clocked_task_list", json!({"bk_biz_id": 5, "id": id})).await;
        state = listed["data"][0].clone();
        if state["state"] != "not_started" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!((&state["state"], &state["task_id"]), (&json!("start_failed"), &Value::Null), "{state}");
    come_due(&s, &format!("periodic:{periodic}")).await;
    let timer = format!("periodic:{periodic}");
    let mut ahead = 0;
    for _ in 0..400 {
        let due = store(&s).timer(&timer).await.unwrap_or_else(|e| panic!("{e}")).map_or(0, |t| t.due);
        ahead = due - jiff::Timestamp::now().as_millisecond();
        if ahead > 1_000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(ahead > 1_000, "the periodic task's timer moved on to its next hour ({ahead} ms ahead)");
    let listed = s.bk_ok("get_periodic_task_list", json!({"bk_biz_id": 5})).await;
    assert_eq!(listed[0]["total_run_count"], 0, "a missed run is not counted");
    let tasks = s.bk_ok("get_task_list", json!({"bk_biz_id": 5})).await;
    assert_eq!(tasks, json!([]), "no task was made");
}

/// Constants past the bound of a variable are refused when a plan is made, not when it runs.
async fn plans_with_constants_past_the_bound_are_refused_when_made(s: TestServer) {
    let template = s.bk_ok("create_template", json!({"bk_biz_id": 5, "name": "big", "pipeline_tree": tree()})).await;
    let big = "x".repeat(5 * 1024 * 1024);
    let clocked = json!({"bk_biz_id": 5, "template_id": template["template_id"], "task_name": "big",
                         "plan_start_time": "2999-01-01 00:00:00+0000", "task_parameters": {"constants": {"${who}": big}}});
    let (status, body) = s.bk_call("create_clocked_task", clocked).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", body["message"]);
    let periodic = json!({"bk_biz_id": 5, "template_id": template["template_id"], "name": "big", "cron": {},
                          "constants": {"${who}": big}});
    let (status, body) = s.bk_call("create_periodic_task", periodic).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", body["message"]);
    assert!(body["message"].as_str().is_some_and(|m| m.contains("bytes")), "{}", body["message"]);
}

async fn clocked_task_calls_name_what_is_wrong(s: TestServer) {
    let template = s.bk_ok("create_template", json!({"bk_biz_id": 5, "name": "t", "pipeline_tree": tree()})).await;
    let plan = |time: &str, params: Value| {
        json!({"bk_biz_id": 5, "template_id": template["template_id"], "task_name": "p", "plan_start_time": time,
               "task_parameters": params})
    };
    let later = "2999-01-01 00:00:00+0800";
    for (call, status, says) in [
        (plan("2020-01-01 00:00:00+0000", json!({})), StatusCode::BAD_REQUEST, "later than"),
        (plan("tomorrow", json!({})), StatusCode::BAD_REQUEST, "tomorrow"),
        (plan(later, json!({"constants": [1]})), StatusCode::BAD_REQUEST, "constants"),
        (plan(later, json!({"template_schemes_id": [1]})), StatusCode::NOT_IMPLEMENTED, "template_schemes_id"),
        (
            plan(later, json!({"template_schemes_id": [1], "exclude_task_nodes_id": ["a"]})),
            StatusCode::BAD_REQUEST,
            "multiple",
        ),
    ] {
        let (got, body) = s.bk_call("create_clocked_task", call.clone()).await;
        assert_eq!(got, status, "{call}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains(says)), "{call}: {body}");
    }
    let mut unknown = plan(later, json!({}));
    unknown["template_id"] = json!(999);
    assert_eq!(s.bk_call("create_clocked_task", unknown).await.0, StatusCode::NOT_FOUND);
    let made = s.bk_ok("create_clocked_task", plan("2999-01-01T00:00:00+08:00", json!({}))).await;
    assert_eq!(made["plan_start_time"], "2998-12-31 16:00:00+0000", "an ISO time with an offset: {made}");
    let (status, body) = s.bk_call("get_clocked_task_list", json!({"bk_biz_id": 5, "state": "done"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// A `sleep_timer` node's wait counts from when its job was queued: run again after a restart
/// of the server, it waits what is left instead of starting over.
async fn a_sleep_timer_waits_what_is_left_after_a_restart(s: TestServer) {
    let mut sleeping = tree();
    sleeping["activities"]["a"]["component"] =
        json!({"code": "sleep_timer", "data": {"bk_timing": {"hook": false, "value": "6"}}});
    let template = s.bk_ok("create_template", json!({"bk_biz_id": 5, "name": "nap", "pipeline_tree": sleeping})).await;
    let made = s
        .bk_ok("create_and_start_task", json!({"bk_biz_id": 5, "template_id": template["template_id"], "name": "n"}))
        .await;
    let task = made["task_id"].as_i64().unwrap_or_default();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let s = s.restart().await;
    let data = finished_node(&s, task, "a").await;
    let detail = s.bk_ok("get_task_node_detail", json!({"bk_biz_id": 5, "task_id": task, "node_id": "a"})).await;
    let elapsed = detail["elapsed_time"].as_i64().unwrap_or_default();
    assert!((6..9).contains(&elapsed), "waited 6 s in all, not 3 s and then 6 s more: {elapsed} s, {data}");
}

async fn periodic_task_calls_name_what_is_wrong(s: TestServer) {
    let template = s.bk_ok("create_template", json!({"bk_biz_id": 5, "name": "t", "pipeline_tree": tree()})).await;
    let create =
        |cron: Value| json!({"bk_biz_id": 5, "template_id": template["template_id"], "name": "p", "cron": cron});
    for (cron, says) in [
        (json!({"minute": "61"}), "61"),
        (json!({"hour": [1]}), "cron.hour"),
        (json!({"seconds": "1"}), "`seconds`"),
        (json!("every day"), "not JSON"),
        (json!(5), "must be an object"),
    ] {
        let (status, body) = s.bk_call("create_periodic_task", create(cron.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{cron}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains(says)), "{cron}: {body}");
    }
    let (status, body) =
        s.bk_call("create_periodic_task", json!({"bk_biz_id": 5, "template_id": 999, "name": "p", "cron": {}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    for api in ["get_periodic_task_info", "set_periodic_task_enabled", "modify_constants_for_periodic_task"] {
        let (status, body) = s.bk_call(api, json!({"bk_biz_id": 5, "task_id": 999})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{api}: {body}");
        assert_eq!(body["message"], "task(999) does not exist", "{api}");
    }
    let made = s.bk_ok("create_periodic_task", create(json!({}))).await;
    let (status, _) = s.bk_call("get_periodic_task_info", json!({"bk_biz_id": 6, "task_id": made["id"]})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another business's periodic task is not found");
    // A business has at most 50 periodic tasks, as bk-sops' default allows.
    for _ in 1..50 {
        s.bk_ok("create_periodic_task", create(json!({}))).await;
    }
    let (status, body) = s.bk_call("create_periodic_task", create(json!({}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("50")), "{body}");
}

backend_tests!(server = TestServer::start;
    a_periodic_task_makes_and_starts_a_task_each_time_its_crontab_comes_due,
    periodic_task_calls_name_what_is_wrong,
    a_clocked_task_makes_and_starts_its_task_once_at_its_time,
    clocked_task_calls_name_what_is_wrong,
    a_sleep_timer_waits_what_is_left_after_a_restart,
    a_plan_that_cannot_make_its_task_is_marked_start_failed_or_missed,
    plans_with_constants_past_the_bound_are_refused_when_made,
);
