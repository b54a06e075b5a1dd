//! Stones run by separate `flowstone worker` processes against a server that runs none
//! in-process: the cluster example with seed 002's body, an injected failure and its
//! rollback, debug mode (`reRun`, `resume`), cancel and delete, a mock run, and a worker
//! killed with SIGKILL while it holds a job. `MachineStone` keeps its machines as files, so
//! each test checks what is left behind.

mod common;

use common::{Serve, Worker, free_port, must};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const BILLING: &str = "Bingo::RS::FRONT::RSBILLING";

struct Setup {
    dir: tempfile::TempDir,
    base: String,
    client: Client,
    _serve: Serve,
}

impl Setup {
    /// A server with no stone in-process.
    fn new() -> Self {
        let dir = must(tempfile::tempdir());
        let port = free_port();
        let data = dir.path().join("server").to_string_lossy().into_owned();
        let serve = Serve::start_args(&["--data-dir", &data, "--stones", "none"], port);
        Self { dir, base: format!("http://127.0.0.1:{port}"), client: common::client(), _serve: serve }
    }

    /// A worker running the example stones, with locks of two seconds.
    fn worker(&self, id: &str) -> Worker {
        self.worker_locking(id, "2")
    }

    fn worker_locking(&self, id: &str, lock_seconds: &str) -> Worker {
        let machines = self.dir.path().join("machines").to_string_lossy().into_owned();
        let args = ["--stones", "MachineStone,BillingStone", "--machines-dir", &machines, "--worker-id", id];
        let timing = ["--lock-duration", lock_seconds, "--wait", "5", "--grace", "1"];
        Worker::worker(&self.base, &[&args[..], &timing[..]].concat())
    }

    fn machines(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("machines")).map(|d| d.count()).unwrap_or(0)
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = must(req.send().await);
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn start(&self, extra: Value, variables: Value) -> String {
        let mut body = json!({"key": "cluster", "processName": "e2e", "variables": variables});
        if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
            b.extend(extra);
        }
        let (status, p) = self.call(self.client.post(format!("{}/process", self.base)).json(&body)).await;
        assert_eq!(status, StatusCode::OK, "{p}");
        p["processInstanceId"].as_str().unwrap_or_default().to_owned()
    }

    async fn process(&self, id: &str) -> Value {
        self.call(self.client.get(format!("{}/process/{id}", self.base))).await.1
    }

    async fn tasks(&self, id: &str) -> Vec<Value> {
        let (_, tasks) = self.call(self.client.get(format!("{}/task?processInstanceId={id}", self.base))).await;
        tasks.as_array().cloned().unwrap_or_default()
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(self.client.put(format!("{}{path}", self.base)).json(&body)).await
    }

    /// Polls until the process shows `status`, at most 30 s.
    async fn wait_for(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let p = self.process(id).await;
            if p["processStatus"] == status {
                return p;
            }
            assert!(Instant::now() < deadline, "process {id} is not {status}: {p}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until `count` tasks of the process satisfy `pred`, at most 30 s.
    async fn wait_tasks(&self, id: &str, count: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found: Vec<Value> = self.tasks(id).await.into_iter().filter(|t| pred(t)).collect();
            if found.len() >= count {
                return found;
            }
            assert!(Instant::now() < deadline, "process {id} has {} of {count} such tasks", found.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Seed 002's variables, with `change` merged in.
fn seed_002(change: Value) -> Value {
    let mut vars = json!({
        "projectId": "11111", "regionId": "bcc", "vpcId": "vpc-509A87BA", "storageId": "storage-320AA6D8",
        "imageId": "ami-2F051345", "securityGroupName": "default", "expireTime": "-1", "keypairName": "tt6666",
        "disableApiTermination": "false", "slaveNum": "6", "buyNum": "1", BILLING: {},
        "master-1a": {"instanceType": "m2.large"}, "slave-": {"instanceType": "m2.large"}, "SipRS::Mock": true,
        "subnetId": "subnet-439A34CC"
    });
    if let (Some(vars), Value::Object(change)) = (vars.as_object_mut(), change) {
        vars.extend(change);
    }
    vars
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_cluster_runs_on_workers_to_monitor_success() {
    let s = Setup::new();
    let _workers = (s.worker("w1"), s.worker("w2"));
    let id = s.start(json!({}), seed_002(json!({}))).await;
    s.wait_for(&id, "success").await;
    let tasks = s.tasks(&id).await;
    assert_eq!(tasks.len(), 8);
    for t in &tasks {
        let done = if t["stone"] == "MachineStone" { "monitor.success" } else { "start.success" };
        assert_eq!(t["status"], done, "{t}");
    }
    assert_eq!(s.machines(), 7, "a master and six slaves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_failure_rolls_back_and_leaves_no_machine() {
    let s = Setup::new();
    let _workers = (s.worker("w1"), s.worker("w2"));
    let id = s.start(json!({}), seed_002(json!({"slaveNum": "3", BILLING: {"fail": "no credit"}}))).await;
    let p = s.wait_for(&id, "rolledBack").await;
    let rollback = p["rollbackProcessInstanceId"].as_str().unwrap_or_default();
    let steps = s.tasks(rollback).await;
    assert_eq!(steps.len(), 5, "billing, three slaves, the master");
    assert!(steps.iter().all(|t| t["status"] == "rollback.success"), "{steps:?}");
    assert_eq!(s.machines(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_mode_stops_and_rerun_after_the_fix_completes_while_resume_rolls_back() {
    let s = Setup::new();
    let _workers = (s.worker("w1"), s.worker("w2"));
    let broken = json!({"slaveNum": "2", "slave-": {"instanceType": "m2.large", "fail": {"monitor": "disk lost"}}});
    let fixed = s.start(json!({"debug": true}), seed_002(broken)).await;
    let failed = s.wait_tasks(&fixed, 2, |t| t["status"] == "monitor.failed").await;
    assert_eq!(s.process(&fixed).await["processStatus"], "debug");
    for t in &failed {
        let task = t["taskId"].as_str().unwrap_or_default();
        let body = json!({"queueType": "monitor", "parameters": {"fail": false}, "outputs": {}});
        let (status, answer) = s.put(&format!("/task/{task}/reRun"), body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    s.wait_for(&fixed, "success").await;
    assert_eq!(s.machines(), 3, "the slaves' machines were monitored again, not made again");

    let given_up = s.start(json!({"debug": true}), seed_002(json!({"slaveNum": "1", BILLING: {"fail": true}}))).await;
    let failed = s.wait_tasks(&given_up, 1, |t| t["status"] == "start.failed").await;
    let task = failed[0]["taskId"].as_str().unwrap_or_default();
    let (status, answer) = s.put(&format!("/task/{task}/resume"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    s.wait_for(&given_up, "rolledBack").await;
    assert_eq!(s.machines(), 3, "the second process's machines were rolled back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_the_run_and_delete_after_it_leave_no_machine() {
    let s = Setup::new();
    let _workers = (s.worker("w1"), s.worker("w2"));
    let slow = json!({"slaveNum": "2", "slave-": {"instanceType": "m2.large", "bootMillis": 60_000}});
    let canceled = s.start(json!({}), seed_002(slow)).await;
    s.wait_tasks(&canceled, 2, |t| {
        t["namespace"].as_str().is_some_and(|n| n.starts_with("slave-")) && t["progress"].is_number()
    })
    .await;
    let (status, p) = s.put(&format!("/process/{canceled}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    let p = s.wait_for(&canceled, "canceled").await;
    let cancel = p["cancelProcessInstanceId"].as_str().unwrap_or_default();
    assert!(s.tasks(cancel).await.iter().all(|t| t["status"] == "cancel.success"));
    let (status, _) = s.put(&format!("/process/{canceled}/delete"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    s.wait_for(&canceled, "deleted").await;
    assert_eq!(s.machines(), 0, "cancel aborted the slaves, delete removed the master");

    let done = s.start(json!({}), seed_002(json!({"slaveNum": "2"}))).await;
    s.wait_for(&done, "success").await;
    assert_eq!(s.machines(), 3);
    let (status, _) = s.put(&format!("/process/{done}/delete"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    s.wait_for(&done, "deleted").await;
    assert_eq!(s.machines(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mock_run_creates_no_machine() {
    let s = Setup::new();
    let _worker = s.worker("w1");
    let id = s.start(json!({"mock": true}), seed_002(json!({"slaveNum": "2"}))).await;
    s.wait_for(&id, "success").await;
    let statuses: Vec<_> = s.tasks(&id).await.iter().map(|t| t["status"].clone()).collect();
    assert_eq!(statuses, ["mock.success", "mock.success", "mock.success", "mock.passed"]);
    assert_eq!(s.machines(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_holding_a_job_hands_it_on_once_its_lock_ends() {
    let s = Setup::new();
    let first = s.worker("doomed");
    let slow =
        json!({"slaveNum": "1", "master-1a": {"instanceType": "m2.large", "bootMillis": 3_000, "bootSteps": 30}});
    let id = s.start(json!({}), seed_002(slow)).await;
    s.wait_tasks(&id, 1, |t| t["namespace"] == "master-1a" && t["progress"].is_number()).await;
    first.kill9();
    let _second = s.worker("heir");
    s.wait_for(&id, "success").await;
    let tasks = s.tasks(&id).await;
    assert_eq!(tasks.len(), 3, "each task ran once: {tasks:?}");
    assert!(tasks.iter().all(|t| t["status"] == "monitor.success" || t["status"] == "start.success"));
    assert_eq!(s.machines(), 2, "the heir monitored the master's machine instead of making another");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_with_sigterm_hands_its_job_back_at_once() {
    let s = Setup::new();
    // Locks of a minute: only a hand-back lets the heir finish within the test's 30 s.
    let leaving = s.worker_locking("leaving", "60");
    let slow =
        json!({"slaveNum": "1", "master-1a": {"instanceType": "m2.large", "bootMillis": 4_000, "bootSteps": 40}});
    let id = s.start(json!({}), seed_002(slow)).await;
    s.wait_tasks(&id, 1, |t| t["namespace"] == "master-1a" && t["progress"].is_number()).await;
    leaving.terminate();
    let _heir = s.worker_locking("heir", "60");
    s.wait_for(&id, "success").await;
    assert_eq!(s.tasks(&id).await.len(), 3);
    assert_eq!(s.machines(), 2);
}

/// RabbitMQ at `$FLOWSTONE_TEST_AMQP` (default the local one), or `None` after saying so
/// loudly (in CI its absence fails).
fn rabbitmq() -> Option<String> {
    let url = std::env::var("FLOWSTONE_TEST_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let host = url.split('@').next_back().and_then(|h| h.split('/').next()).unwrap_or("127.0.0.1:5672").to_owned();
    match std::net::TcpStream::connect(&host) {
        Ok(_) => Some(url),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("RabbitMQ is required in CI: {e}"),
        Err(e) => {
            eprintln!("SKIPPED: no RabbitMQ at {host} ({e}); the RabbitMQ end-to-end test did not run");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_runs_through_rabbitmq_between_serve_and_worker_processes() {
    let Some(url) = rabbitmq() else { return };
    let dir = must(tempfile::tempdir());
    let port = free_port();
    let prefix = format!("e2e-{port}-{}.", std::process::id());
    let data = dir.path().join("server").to_string_lossy().into_owned();
    let stones = "MachineStone,BillingStone";
    let serve =
        ["--data-dir", &data, "--stones", "none", "--amqp", &url, "--amqp-stones", stones, "--amqp-prefix", &prefix];
    let s = Setup {
        base: format!("http://127.0.0.1:{port}"),
        client: common::client(),
        _serve: Serve::start_args(&serve, port),
        dir,
    };
    let machines = s.dir.path().join("machines").to_string_lossy().into_owned();
    let worker = ["--stones", stones, "--machines-dir", &machines, "--amqp", &url, "--amqp-prefix", &prefix];
    let _worker = Worker::worker(&s.base, &worker);
    let id = s.start(json!({}), seed_002(json!({"slaveNum": "2"}))).await;
    s.wait_for(&id, "success").await;
    assert!(s.tasks(&id).await.iter().all(|t| t["status"] == "monitor.success" || t["status"] == "start.success"));
    assert_eq!(s.machines(), 3);
}
