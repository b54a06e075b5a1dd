//! Several `flowstone serve` processes sharing one PostgreSQL database: any of them answers
//! for any instance; commands for one instance sent to different servers at once are each
//! applied exactly once (one wins a doubled completion, the other is refused); and when the
//! server running stone jobs is killed with SIGKILL, the others take the jobs over once
//! their lease ends, and every instance finishes with no task completed twice. A server
//! stopped cleanly hands its jobs back, and the others take them at once (LISTEN/NOTIFY).
//! Timers set through any server fire once each, also when a server is killed holding them.

mod common;

use common::{Serve, free_port, must};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowstone="http://flowstone.dev/bpmn">
  <process id="shared"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="fork"/><parallelGateway id="fork"/>
    <sequenceFlow sourceRef="fork" targetRef="u1"/><userTask id="u1"/><sequenceFlow sourceRef="fork" targetRef="u2"/><userTask id="u2"/>
    <sequenceFlow sourceRef="u1" targetRef="join"/><sequenceFlow sourceRef="u2" targetRef="join"/><parallelGateway id="join"/>
    <sequenceFlow sourceRef="join" targetRef="work"/><serviceTask id="work" flowstone:stone="sleep"/>
    <sequenceFlow sourceRef="work" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

async fn call(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = must(req.send().await);
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The task record of `element` in an instance, through `base`.
async fn task(client: &Client, base: &str, instance: &str, element: &str) -> Value {
    let (status, tasks) = call(client.get(format!("{base}/task")).query(&[("processInstanceId", instance)])).await;
    assert_eq!(status, StatusCode::OK, "{tasks}");
    tasks.as_array().into_iter().flatten().find(|t| t["name"] == element).cloned().unwrap_or(Value::Null)
}

async fn complete(client: &Client, base: &str, task_id: &str) -> StatusCode {
    call(client.put(format!("{base}/task/{task_id}/complete")).json(&json!({}))).await.0
}

/// Server `node-I` on the shared database, with a job lease of `lease` seconds.
fn node(url: &str, port: u16, i: usize, lease: &str) -> Serve {
    let name = format!("node-{i}");
    Serve::start_args(&["--database", url, "--node-id", &name, "--job-lease", lease, "--no-examples"], port)
}

/// Waits until every instance succeeded (asked through `base`), at most until `deadline`.
async fn all_succeed(client: &Client, base: &str, ids: &[String], deadline: Instant, why: &str) {
    for id in ids {
        loop {
            let (_, p) = call(client.get(format!("{base}/process/{id}"))).await;
            if p["processStatus"] == "success" {
                break;
            }
            assert_eq!(p["processStatus"], "running", "{p}");
            assert!(Instant::now() < deadline, "instance {id} did not finish: {why}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanly_stopped_servers_jobs_are_taken_over_at_once() {
    let Some(url) = flowstone_store::PgStore::test_database("flowstone_multi").await else { return };
    let ports = [free_port(), free_port()];
    let (survivor, leaving) = (node(&url, ports[0], 0, "60"), node(&url, ports[1], 1, "60"));
    let bases: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    let client = common::client();
    let (status, _) = call(client.post(format!("{}/model", bases[0])).body(MODEL)).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut ids = Vec::new();
    for n in 0..10 {
        let body = json!({"key": "shared", "processName": format!("p{n}"), "variables": {"duration": 2}});
        let (_, p) = call(client.post(format!("{}/process", bases[0])).json(&body)).await;
        let id = p["processInstanceId"].as_str().unwrap_or_default().to_owned();
        for element in ["u1", "u2"] {
            let t = task(&client, &bases[1], &id, element).await["id"].as_str().unwrap_or_default().to_owned();
            assert_eq!(complete(&client, &bases[1], &t).await, StatusCode::OK);
        }
        ids.push(id);
    }
    // Its jobs sleep for 2 s; the lease would hold them for 60 s, the sweep run every 20 s.
    leaving.terminate();
    let why = "a cleanly stopped server's jobs must be taken over at once, not after the lease";
    all_succeed(&client, &bases[0], &ids, Instant::now() + Duration::from_secs(12), why).await;
    survivor.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_share_instances_and_take_over_a_killed_servers_jobs() {
    let Some(url) = flowstone_store::PgStore::test_database("flowstone_multi").await else { return };
    // The database is migrated by the first server before the others start.
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut servers: Vec<Option<Serve>> = vec![Some(node(&url, ports[0], 0, "1"))];
    servers.push(Some(node(&url, ports[1], 1, "1")));
    servers.push(Some(node(&url, ports[2], 2, "1")));
    let bases: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    let client = common::client();
    let (status, _) = call(client.post(format!("{}/model", bases[0])).body(MODEL)).await;
    assert_eq!(status, StatusCode::CREATED);

    // Any server starts and answers for any instance.
    let mut ids = Vec::new();
    for n in 0..30 {
        let body = json!({"key": "shared", "processName": format!("p{n}"), "variables": {"duration": 3}});
        let (status, p) = call(client.post(format!("{}/process", bases[n % 3])).json(&body)).await;
        assert_eq!(status, StatusCode::OK, "{p}");
        ids.push(p["processInstanceId"].as_str().unwrap_or_default().to_owned());
    }
    for (n, id) in ids.iter().enumerate() {
        let (status, p) = call(client.get(format!("{}/process/{id}", bases[(n + 1) % 3]))).await;
        assert_eq!((status, p["processStatus"].as_str()), (StatusCode::OK, Some("running")), "{p}");
    }

    // The same user task completed through two servers at once: exactly one wins.
    for id in &ids {
        let u1 = task(&client, &bases[0], id, "u1").await["id"].as_str().unwrap_or_default().to_owned();
        let (a, b) = tokio::join!(complete(&client, &bases[0], &u1), complete(&client, &bases[2], &u1));
        let mut got = [a, b];
        got.sort();
        assert_eq!(got, [StatusCode::OK, StatusCode::CONFLICT], "instance {id}: u1 completed through two servers");
    }

    // The join's stone jobs all start on server 1, which is then killed while they sleep.
    for id in &ids {
        let u2 = task(&client, &bases[1], id, "u2").await["id"].as_str().unwrap_or_default().to_owned();
        assert_eq!(complete(&client, &bases[1], &u2).await, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some(killed) = servers[1].take() {
        killed.kill9();
    }

    // The survivors take the jobs over once the lease ends, and everything finishes once.
    let deadline = Instant::now() + Duration::from_secs(60);
    all_succeed(&client, &bases[0], &ids, deadline, "its server was killed").await;
    for id in &ids {
        let (_, tasks) = call(client.get(format!("{}/task", bases[2])).query(&[("processInstanceId", id)])).await;
        let tasks = tasks.as_array().cloned().unwrap_or_default();
        let mut names: Vec<&str> = tasks.iter().filter_map(|t| t["name"].as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["u1", "u2", "work"], "instance {id}: one record per task: {tasks:?}");
        let work = tasks.iter().find(|t| t["name"] == "work").cloned().unwrap_or_default();
        assert_eq!(work["status"], "start.success", "{work}");
    }
    for server in servers.into_iter().flatten() {
        server.terminate();
    }
}

/// A user task with a non-interrupting boundary cycle firing three times, a second apart;
/// each firing makes a `tick` user task.
const TICKING: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">
  <process id="ticking"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="work"/><userTask id="work"/>
    <boundaryEvent id="clock" attachedToRef="work" cancelActivity="false">
      <timerEventDefinition><timeCycle>R3/PT1S</timeCycle></timerEventDefinition></boundaryEvent>
    <sequenceFlow sourceRef="clock" targetRef="tick"/><userTask id="tick"/></process></definitions>"#;

/// A timer start event firing four times, half a second apart.
const SCHEDULED: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">
  <process id="scheduled"><startEvent id="tick"><timerEventDefinition><timeCycle>R4/PT0.5S</timeCycle></timerEventDefinition></startEvent>
    <sequenceFlow sourceRef="tick" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_fire_each_timer_once_and_take_over_a_killed_servers_timers() {
    let Some(url) = flowstone_store::PgStore::test_database("flowstone_multi").await else { return };
    let ports = [free_port(), free_port()];
    let survivor = node(&url, ports[0], 0, "1");
    let doomed = node(&url, ports[1], 1, "1");
    let bases: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    let client = common::client();
    let (status, _) = call(client.post(format!("{}/model", bases[0])).body(TICKING)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(client.post(format!("{}/model", bases[1])).body(SCHEDULED)).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut ids = Vec::new();
    for n in 0..40 {
        let body = json!({"key": "ticking", "processName": format!("t{n}"), "variables": {}});
        let (status, p) = call(client.post(format!("{}/process", bases[n % 2])).json(&body)).await;
        assert_eq!(status, StatusCode::OK, "{p}");
        ids.push(p["processInstanceId"].as_str().unwrap_or_default().to_owned());
    }
    // Both servers fire the first ticks; one is killed before the last.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    doomed.kill9();
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in &ids {
        loop {
            let (_, tasks) = call(client.get(format!("{}/task", bases[0])).query(&[("processInstanceId", id)])).await;
            let tasks = tasks.as_array().cloned().unwrap_or_default();
            let ticks = tasks.iter().filter(|t| t["name"] == "tick").count();
            let clock = tasks.iter().find(|t| t["name"] == "clock").cloned().unwrap_or_default();
            assert!(ticks <= 3, "instance {id}: a firing came twice: {tasks:?}");
            if ticks == 3 && clock["status"] == "completed" {
                break;
            }
            assert!(Instant::now() < deadline, "instance {id}: {ticks} ticks of 3: {tasks:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Both servers raced for each firing of the timer start event: each started one instance.
    let (_, listed) =
        call(client.get(format!("{}/process", bases[0])).query(&[("key", "scheduled"), ("size", "50")])).await;
    assert_eq!(listed["total"], 4, "one instance per firing: {listed}");
    survivor.terminate();
}
