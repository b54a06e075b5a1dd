//! Crash safety of the embedded store: a real `flowstone serve` is killed with SIGKILL at
//! random moments while clients start instances and complete user tasks, and stone jobs
//! (`sleep`) are queued and running. After every restart each acknowledged start and
//! completion is still there; at the end every instance runs to success, and every task
//! has exactly one record that completed once. The random seed is printed, and
//! `FLOWSTONE_CRASH_SEED` replays a run.

mod common;

use common::{Serve, free_port, must};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowstone="http://flowstone.dev/bpmn">
  <process id="crash"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="fork"/><parallelGateway id="fork"/>
    <sequenceFlow sourceRef="fork" targetRef="approve"/><userTask id="approve"/>
    <sequenceFlow sourceRef="fork" targetRef="work"/><serviceTask id="work" flowstone:stone="sleep"/>
    <sequenceFlow sourceRef="approve" targetRef="join"/><sequenceFlow sourceRef="work" targetRef="join"/>
    <parallelGateway id="join"/><sequenceFlow sourceRef="join" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

/// A small deterministic generator, so that a failing run can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below.max(1)
    }
}

#[derive(Default)]
struct Acknowledged {
    instances: Vec<String>,
    completions: HashSet<String>,
}

/// Starts instances and completes user tasks until the server stops answering.
async fn traffic(client: Client, base: String, acked: Arc<Mutex<Acknowledged>>, mut rng: Rng) {
    loop {
        let body =
            json!({"key": "crash", "processName": "crash", "variables": {"duration": 0.05 * rng.next(8) as f64}});
        let Ok(resp) = client.post(format!("{base}/process")).json(&body).send().await else { return };
        if resp.status() != StatusCode::OK {
            return;
        }
        let Ok(p) = resp.json::<Value>().await else { return };
        let id = p["processInstanceId"].as_str().unwrap_or_default().to_owned();
        let pick = {
            let mut a = acked.lock().unwrap_or_else(|p| p.into_inner());
            a.instances.push(id);
            let n = a.instances.len() as u64;
            a.instances[rng.next(n) as usize].clone()
        };
        if rng.next(2) == 0 {
            continue;
        }
        let Ok(resp) = client.get(format!("{base}/task")).query(&[("processInstanceId", &pick)]).send().await else {
            return;
        };
        let Ok(tasks) = resp.json::<Value>().await else { return };
        let open = tasks.as_array().into_iter().flatten().find(|t| t["status"] == "active");
        if let Some(task) = open.and_then(|t| t["id"].as_str()) {
            let Ok(resp) = client.put(format!("{base}/task/{task}/complete")).json(&json!({"ok": true})).send().await
            else {
                return;
            };
            if resp.status() == StatusCode::OK {
                acked.lock().unwrap_or_else(|p| p.into_inner()).completions.insert(task.to_owned());
            }
        }
    }
}

async fn get(client: &Client, url: String) -> (StatusCode, Value) {
    let resp = must(client.get(url).send().await);
    let status = resp.status();
    (status, must(resp.json().await))
}

/// Every acknowledged instance and completion survived.
async fn check_nothing_lost(client: &Client, base: &str, acked: &Acknowledged) {
    for id in &acked.instances {
        let (status, p) = get(client, format!("{base}/process/{id}")).await;
        assert_eq!(status, StatusCode::OK, "acknowledged instance {id} is gone: {p}");
    }
    for task in &acked.completions {
        let (status, t) = get(client, format!("{base}/task/{task}")).await;
        assert_eq!(
            (status, t["status"].as_str()),
            (StatusCode::OK, Some("completed")),
            "acknowledged completion of {task} lost: {t}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_acknowledged_and_completes_nothing_twice() {
    let seed = std::env::var("FLOWSTONE_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    println!("FLOWSTONE_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = must(tempfile::tempdir());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = common::client();
    let acked = Arc::new(Mutex::new(Acknowledged::default()));

    let mut server = Serve::start(dir.path(), port);
    let resp = must(client.post(format!("{base}/model")).body(MODEL).send().await);
    assert_eq!(resp.status(), StatusCode::CREATED);

    for _round in 0..4 {
        let clients: Vec<_> = (0..8)
            .map(|i| {
                tokio::spawn(traffic(
                    client.clone(),
                    base.clone(),
                    acked.clone(),
                    Rng(seed ^ ((i + 1) * 7919 + rng.next(1000))),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200 + rng.next(800))).await;
        server.kill9();
        for c in clients {
            must(c.await);
        }
        server = Serve::start(dir.path(), port);
        let snapshot = {
            let a = acked.lock().unwrap_or_else(|p| p.into_inner());
            Acknowledged { instances: a.instances.clone(), completions: a.completions.clone() }
        };
        check_nothing_lost(&client, &base, &snapshot).await;
    }

    let acked = Arc::try_unwrap(acked)
        .map_or_else(|_| panic!("clients still hold the log"), |m| m.into_inner().unwrap_or_default());
    let unique: BTreeSet<&String> = acked.instances.iter().collect();
    assert_eq!(unique.len(), acked.instances.len(), "an instance id was handed out twice");
    assert!(
        acked.instances.len() >= 200,
        "only {} instances were started; the test needs a few hundred",
        acked.instances.len()
    );

    // Finish everything: complete every open user task, then wait for the stones.
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in &acked.instances {
        loop {
            let (_, p) = get(&client, format!("{base}/process/{id}")).await;
            if p["processStatus"] == "success" {
                break;
            }
            assert_eq!(p["processStatus"], "running", "instance {id} did not run on: {p}");
            let (_, tasks) = get(&client, format!("{base}/task?processInstanceId={id}")).await;
            for t in tasks.as_array().into_iter().flatten().filter(|t| t["status"] == "active") {
                let task = t["id"].as_str().unwrap_or_default();
                let _ = client.put(format!("{base}/task/{task}/complete")).json(&json!({})).send().await;
            }
            assert!(Instant::now() < deadline, "instance {id} still running after the deadline");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (_, tasks) = get(&client, format!("{base}/task?processInstanceId={id}")).await;
        let tasks = tasks.as_array().cloned().unwrap_or_default();
        let mut names: Vec<&str> = tasks.iter().filter_map(|t| t["name"].as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["approve", "work"], "instance {id}: one record per task, none twice: {tasks:?}");
        for t in &tasks {
            let want = if t["name"] == "work" { "start.success" } else { "completed" };
            assert_eq!(t["status"], want, "instance {id}: {t}");
        }
    }
    println!(
        "{} instances, {} completions acknowledged across 4 kills",
        acked.instances.len(),
        acked.completions.len()
    );
    server.terminate();
}

/// Each instance waits on a timer due 2 s after it started, then a user task.
const TIMED: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">
  <process id="timed"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>PT2S</timeDuration></timerEventDefinition></intermediateCatchEvent>
    <sequenceFlow sourceRef="wait" targetRef="after"/><userTask id="after"/></process></definitions>"#;

/// Timers set before a SIGKILL, that came due while the server was down, fire once at the
/// next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_due_while_the_server_was_killed_fire_once_at_the_next_start() {
    let dir = must(tempfile::tempdir());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = common::client();
    let server = Serve::start(dir.path(), port);
    let resp = must(client.post(format!("{base}/model")).body(TIMED).send().await);
    assert_eq!(resp.status(), StatusCode::CREATED);
    let mut ids = Vec::new();
    for n in 0..20 {
        let body = json!({"key": "timed", "processName": format!("t{n}"), "variables": {}});
        let (status, p) = post(&client, format!("{base}/process"), body).await;
        assert_eq!(status, StatusCode::OK, "{p}");
        ids.push(p["processInstanceId"].as_str().unwrap_or_default().to_owned());
    }
    server.kill9();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let server = Serve::start(dir.path(), port);
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in &ids {
        loop {
            let (_, tasks) = get(&client, format!("{base}/task?processInstanceId={id}")).await;
            let tasks = tasks.as_array().cloned().unwrap_or_default();
            if tasks.iter().any(|t| t["name"] == "after") {
                let mut names: Vec<&str> = tasks.iter().filter_map(|t| t["name"].as_str()).collect();
                names.sort_unstable();
                assert_eq!(names, ["after", "wait"], "instance {id}: the timer fired once: {tasks:?}");
                break;
            }
            assert!(Instant::now() < deadline, "instance {id}: its timer did not fire after the restart");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    server.terminate();
}

async fn post(client: &Client, url: String, body: Value) -> (StatusCode, Value) {
    let resp = must(client.post(url).json(&body).send().await);
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `order` calls `part`; both end at once.
const CALLING: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">
  <process id="part"><startEvent id="ps"/><sequenceFlow sourceRef="ps" targetRef="pe"/><endEvent id="pe"/></process>
  <process id="order"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="call"/>
    <callActivity id="call" calledElement="part"/><sequenceFlow sourceRef="call" targetRef="e"/><endEvent id="e"/></process>
</definitions>"#;

/// Whether a process (`GET /process/{id}`) is still there.
async fn present(client: &Client, base: &str, id: &str) -> bool {
    let (status, p) = get(client, format!("{base}/process/{id}")).await;
    assert!(matches!(status, StatusCode::OK | StatusCode::NOT_FOUND), "{id}: {status} {p}");
    status == StatusCode::OK
}

/// A prune killed with SIGKILL part way leaves every process whole (with the process it called
/// and its task records) or gone with all of it; the next prune takes the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_a_prune_leaves_each_process_whole_or_gone() {
    let dir = must(tempfile::tempdir());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = common::client();
    let mut server = Serve::start(dir.path(), port);
    let resp = must(client.post(format!("{base}/model")).body(CALLING).send().await);
    assert_eq!(resp.status(), StatusCode::CREATED);
    // Processes and the child each called, read from the call's task record.
    let mut families = Vec::new();
    for chunk in 0..20 {
        let starts = (0..50).map(|n| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                let body = json!({"key": "order", "processName": format!("o{chunk}-{n}"), "variables": {}});
                let (status, p) = post(&client, format!("{base}/process"), body).await;
                assert_eq!(status, StatusCode::OK, "{p}");
                p["processInstanceId"].as_str().unwrap_or_default().to_owned()
            })
        });
        for start in starts.collect::<Vec<_>>() {
            families.push((must(start.await), String::new()));
        }
    }
    for (parent, child) in &mut families {
        let (_, tasks) = get(&client, format!("{base}/task?processInstanceId={parent}")).await;
        let params = tasks[0]["params"].as_str().unwrap_or("{}");
        let params: Value = must(serde_json::from_str(params));
        *child = params["calledInstance"].as_str().unwrap_or_else(|| panic!("{tasks}")).to_owned();
        let (_, p) = get(&client, format!("{base}/process/{parent}")).await;
        assert_eq!(p["processStatus"], "success", "{p}");
    }
    let mut rng = Rng(families.len() as u64);
    let mut partial = 0;
    for round in 0..5 {
        let prune = tokio::spawn({
            let (client, base) = (client.clone(), base.clone());
            async move { client.post(format!("{base}/history/prune")).json(&json!({"olderThan": "0s"})).send().await }
        });
        tokio::time::sleep(Duration::from_millis(20 + rng.next(150))).await;
        server.kill9();
        let _ = prune.await;
        server = Serve::start(dir.path(), port);
        let mut gone = 0;
        for (parent, child) in &families {
            let whole = present(&client, &base, parent).await;
            assert_eq!(present(&client, &base, child).await, whole, "round {round}: {parent} and its child {child}");
            let (_, tasks) = get(&client, format!("{base}/task?processInstanceId={parent}")).await;
            let records = tasks.as_array().map_or(0, Vec::len);
            assert_eq!(records, usize::from(whole), "round {round}: {parent}'s records with it: {tasks}");
            gone += usize::from(!whole);
        }
        println!("round {round}: {gone} of {} processes pruned when the server was killed", families.len());
        partial += usize::from(gone > 0 && gone < families.len());
        if gone == families.len() {
            break;
        }
    }
    let (status, rest) = post(&client, format!("{base}/history/prune"), json!({"olderThan": "0s"})).await;
    assert_eq!(status, StatusCode::OK, "{rest}");
    for (parent, child) in &families {
        assert!(!present(&client, &base, parent).await && !present(&client, &base, child).await, "{parent} left");
    }
    println!("{partial} kill(s) landed in the middle of a prune");
    server.terminate();
}
