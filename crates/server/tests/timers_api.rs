//! Timer events through the platform API on both databases: timers that are due fire through
//! the server's timer service, waiting ones show as task records with their due date, and a
//! timer outlives a restart of the server.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::Value;

fn model(key: &str, body: &str) -> String {
    format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">
        <process id="{key}" isExecutable="true">{body}</process></definitions>"#
    )
}

/// start → a timer catch event with `time` → end.
fn waiting(key: &str, time: &str) -> String {
    model(
        key,
        &format!(
            r#"<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>
            <intermediateCatchEvent id="wait" name="Wait"><timerEventDefinition>{time}</timerEventDefinition></intermediateCatchEvent>
            <sequenceFlow id="f2" sourceRef="wait" targetRef="e"/><endEvent id="e"/>"#
        ),
    )
}

async fn start(s: &TestServer, key: &str, variables: Value) -> String {
    s.start_process(key, variables).await["id"].as_str().unwrap_or_default().to_owned()
}

fn record<'a>(tasks: &'a [Value], element: &str) -> &'a Value {
    tasks.iter().find(|t| t["name"] == element).unwrap_or_else(|| panic!("no task record of {element} in {tasks:?}"))
}

async fn a_due_timer_fires_and_its_process_goes_on_to_the_end(s: TestServer) {
    s.deploy(&waiting("due", "<timeDuration>PT0S</timeDuration>")).await;
    let id = start(&s, "due", serde_json::json!({})).await;
    s.wait_for(&id, "success").await;
    let tasks = s.tasks(&id).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!((&tasks[0]["name"], &tasks[0]["status"]), (&Value::from("Wait"), &Value::from("completed")));
}

async fn a_waiting_timer_shows_its_due_date_and_goes_with_a_cancel(s: TestServer) {
    s.deploy(&waiting("later", "<timeDuration>${delay}</timeDuration>")).await;
    let id = start(&s, "later", serde_json::json!({"delay": "PT1H"})).await;
    let p = s.settle_or_wait(&id).await;
    assert_eq!(p["processStatus"], "running", "{p}");
    let waiting = &p["waitingFor"][0];
    assert_eq!(
        (&waiting["type"], &waiting["name"]),
        (&Value::from("intermediateCatchEvent"), &Value::from("Wait")),
        "{p}"
    );
    assert!(waiting["dueDate"].as_str().is_some_and(|d| d.len() == 19), "a platform date: {p}");
    let tasks = s.tasks(&id).await;
    let wait = &tasks[0];
    assert_eq!(wait["status"], "active", "{wait}");
    let params: Value = serde_json::from_str(wait["params"].as_str().unwrap_or_default()).unwrap_or_default();
    assert_eq!(params["timeDuration"], "PT1H", "{wait}");
    let due = params["dueDate"].as_str().unwrap_or_default();
    let due: jiff::Timestamp = due.parse().unwrap_or_else(|e| panic!("{due}: {e}"));
    let ahead = due.as_millisecond() - jiff::Timestamp::now().as_millisecond();
    assert!((3_500_000..=3_600_000).contains(&ahead), "due in an hour, not {ahead} ms");
    let (status, body) = s.put(&format!("/process/{id}/cancel"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.wait_for(&id, "canceled").await;
    let tasks = s.tasks(&id).await;
    assert_eq!(tasks[0]["status"], "canceled", "{tasks:?}");
}

async fn an_interrupting_boundary_timer_takes_the_flow_past_its_task(s: TestServer) {
    s.deploy(&model(
        "escalate",
        r#"<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="approve"/>
        <userTask id="approve"/>
        <boundaryEvent id="late" attachedToRef="approve"><timerEventDefinition><timeDate>2020-01-01T00:00:00Z</timeDate></timerEventDefinition></boundaryEvent>
        <sequenceFlow id="f2" sourceRef="late" targetRef="escalated"/><userTask id="escalated"/>
        <sequenceFlow id="f3" sourceRef="approve" targetRef="e"/><endEvent id="e"/>"#,
    ))
    .await;
    let id = start(&s, "escalate", serde_json::json!({})).await;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        tasks = s.tasks(&id).await;
        if tasks.iter().any(|t| t["name"] == "escalated") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(record(&tasks, "approve")["status"], "canceled", "{tasks:?}");
    assert_eq!(record(&tasks, "late")["status"], "completed", "{tasks:?}");
    assert_eq!(record(&tasks, "escalated")["status"], "active", "{tasks:?}");
}

async fn a_timer_outlives_a_restart_of_the_server(s: TestServer) {
    s.deploy(&waiting("restart", "<timeDuration>PT1S</timeDuration>")).await;
    let id = start(&s, "restart", serde_json::json!({})).await;
    let s = s.restart().await;
    s.wait_for(&id, "success").await;
}

/// start → end, the start a timer start event with `time`.
fn scheduled(key: &str, time: &str) -> String {
    model(
        key,
        &format!(
            r#"<startEvent id="tick"><timerEventDefinition>{time}</timerEventDefinition></startEvent>
            <sequenceFlow id="f1" sourceRef="tick" targetRef="e"/><endEvent id="e"/>"#
        ),
    )
}

/// The instances of a model key.
async fn instances_of(s: &TestServer, key: &str) -> Vec<Value> {
    let (status, body) = s.get(&format!("/process?key={key}&size=100")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

async fn a_timer_start_event_starts_an_instance_at_each_firing_of_its_cycle(s: TestServer) {
    s.deploy(&scheduled("ticking", "<timeCycle>R2/PT0.2S</timeCycle>")).await;
    let mut started = Vec::new();
    for _ in 0..100 {
        started = instances_of(&s, "ticking").await;
        if started.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(started.len(), 2, "{started:?}");
    for p in &started {
        let p = s.wait_for(p["id"].as_str().unwrap_or_default(), "success").await;
        assert_eq!(p["processStatus"], "success", "{p}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(instances_of(&s, "ticking").await.len(), 2, "the cycle ended after two firings");
}

async fn a_new_version_without_a_timer_start_ends_the_old_schedule(s: TestServer) {
    let soon = jiff::Timestamp::from_millisecond(jiff::Timestamp::now().as_millisecond() + 800).unwrap_or_default();
    s.deploy(&scheduled("replaced", &format!("<timeDate>{soon}</timeDate>"))).await;
    s.deploy(&model(
        "replaced",
        r#"<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="e"/><endEvent id="e"/>"#,
    ))
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert!(instances_of(&s, "replaced").await.is_empty(), "the first version's timer was removed with it");
}

async fn a_cycle_faster_than_the_bound_is_refused_at_deploy_and_fails_its_instance_at_run_time(s: TestServer) {
    let fast = waiting("fast", "<timeCycle>R/PT0.001S</timeCycle>");
    let (status, body) = s.post_raw("/model", fast, "application/xml").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("timeCycle") && message.contains("at least 100 ms"), "{body}");
    s.deploy(&waiting("given", "<timeCycle>${cycle}</timeCycle>")).await;
    let id = start(&s, "given", serde_json::json!({"cycle": "R/PT0.001S"})).await;
    let p = s.wait_for(&id, "failed").await;
    let reason = p["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("`wait`") && reason.contains("R/PT0.001S"), "{p}");
}

/// An interrupting timer event subprocess through the platform API: its timer is an open
/// record the process waits for and a Flowable timer job; fired, it ends the work and runs.
async fn a_timer_event_subprocess_interrupts_the_work_when_it_fires(s: TestServer) {
    s.deploy(&model(
        "guarded",
        r#"<startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="work"/><userTask id="work" name="Work"/>
        <sequenceFlow id="f2" sourceRef="work" targetRef="e"/><endEvent id="e"/>
        <subProcess id="late" triggeredByEvent="true">
          <startEvent id="deadline" name="Deadline"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></startEvent>
          <sequenceFlow id="f3" sourceRef="deadline" targetRef="escalate"/><userTask id="escalate" name="Escalate"/>
          <sequenceFlow id="f4" sourceRef="escalate" targetRef="le"/><endEvent id="le"/>
        </subProcess>"#,
    ))
    .await;
    let id = start(&s, "guarded", serde_json::json!({})).await;
    let p = s.settle_or_wait(&id).await;
    let waiting: Vec<&Value> = p["waitingFor"].as_array().into_iter().flatten().collect();
    let timer = waiting.iter().find(|w| w["type"] == "startEvent").unwrap_or_else(|| panic!("no timer: {p}"));
    assert!(timer["dueDate"].is_string(), "{p}");
    let jobs = format!("/flowable-rest/service/management/timer-jobs?processInstanceId={id}");
    let (status, listed) = s.get(&jobs).await;
    assert_eq!((status, &listed["data"][0]["elementId"]), (StatusCode::OK, &Value::from("deadline")), "{listed}");
    for tenant in ["withoutTenantId=null", "withoutTenantId=true", "tenantId=acme"] {
        let (status, refused) = s.get(&format!("{jobs}&{tenant}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "jobs have no tenant filter, whatever its value: {refused}");
    }
    let job = listed["data"][0]["id"].as_str().unwrap_or_default();
    let (status, body) = s
        .post(&format!("/flowable-rest/service/management/timer-jobs/{job}"), serde_json::json!({"action": "move"}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for _ in 0..200 {
        let tasks = s.tasks(&id).await;
        if tasks.iter().any(|t| t["name"] == "Escalate" && t["status"] == "active") {
            assert_eq!(record(&tasks, "Work")["status"], "canceled", "{tasks:?}");
            let escalate = record(&tasks, "Escalate")["id"].as_str().unwrap_or_default().to_owned();
            let (status, body) = s.put(&format!("/task/{escalate}/complete"), None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            s.wait_for(&id, "success").await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the event subprocess never started");
}

backend_tests!(server = TestServer::start;
    a_timer_event_subprocess_interrupts_the_work_when_it_fires,
    a_cycle_faster_than_the_bound_is_refused_at_deploy_and_fails_its_instance_at_run_time,
    a_timer_start_event_starts_an_instance_at_each_firing_of_its_cycle,
    a_new_version_without_a_timer_start_ends_the_old_schedule,
    a_due_timer_fires_and_its_process_goes_on_to_the_end,
    a_waiting_timer_shows_its_due_date_and_goes_with_a_cancel,
    an_interrupting_boundary_timer_takes_the_flow_past_its_task,
    a_timer_outlives_a_restart_of_the_server,
);
