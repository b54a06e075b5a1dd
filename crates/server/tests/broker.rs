//! Stone jobs through RabbitMQ: the server publishes the jobs of brokered stones to a queue
//! per stone, a worker consumes them and sends its events back on the events queue. Needs
//! RabbitMQ at `$FLOWSTONE_TEST_AMQP` (default the local one); without it the tests say
//! SKIPPED, and in CI they fail.
#![cfg(feature = "amqp")]

mod common;

use common::{Backend, TestServer, must};
use flowstone_server::{BrokerOptions, RuntimeOptions};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn amqp_url() -> String {
    std::env::var("FLOWSTONE_TEST_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Whether RabbitMQ answers; says so loudly when not (and fails in CI).
async fn broker_up() -> bool {
    let url = amqp_url();
    match probe(&url).await {
        Ok(()) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("RabbitMQ is required in CI: {e}"),
        Err(e) => {
            eprintln!("SKIPPED: no RabbitMQ at {url} ({e}); the broker tests did not run");
            false
        }
    }
}

async fn probe(url: &str) -> Result<(), String> {
    let host = url.split('@').next_back().and_then(|h| h.split('/').next()).unwrap_or("127.0.0.1:5672").to_owned();
    tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(&host))
        .await
        .map_err(|_| format!("{host} did not answer"))?
        .map(|_| ())
        .map_err(|e| format!("{host}: {e}"))
}

/// A server publishing the example stones' jobs to RabbitMQ under a prefix of its own, and a
/// worker consuming them; the worker's machines are kept in `machines`.
async fn setup(backend: Backend) -> Option<(TestServer, tokio::sync::oneshot::Sender<()>)> {
    if !broker_up().await {
        return None;
    }
    let prefix = format!("test-{}.", uuid_like());
    let stones = vec!["MachineStone".to_owned(), "BillingStone".to_owned()];
    let broker = BrokerOptions { url: amqp_url(), stones, prefix: prefix.clone() };
    let s = TestServer::start_configured(backend, |_| RuntimeOptions {
        stones: Vec::new(),
        broker: Some(broker),
        ..RuntimeOptions::default()
    })
    .await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let machines = s.dir.path().join("machines");
    tokio::spawn(async move {
        let stones: Vec<Arc<dyn flowstone_worker::Stone>> = vec![
            Arc::new(flowstone_worker::MachineStone::new(Path::new(&machines))),
            Arc::new(flowstone_worker::BillingStone),
        ];
        let options = flowstone_worker::amqp::AmqpOptions {
            url: amqp_url(),
            prefix,
            concurrency: 16,
            grace: Duration::from_secs(1),
        };
        flowstone_worker::amqp::run(options, stones, async {
            let _ = stopped.await;
        })
        .await;
    });
    Some((s, stop))
}

fn uuid_like() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()))
}

fn cluster(extra: serde_json::Value) -> serde_json::Value {
    let mut vars = json!({
        "slaveNum": "2", "buyNum": "1", "Bingo::RS::FRONT::RSBILLING": {},
        "master-1a": {"instanceType": "m2.large", "bootMillis": 40},
        "slave-": {"instanceType": "m2.large", "bootMillis": 40}
    });
    if let (Some(v), serde_json::Value::Object(extra)) = (vars.as_object_mut(), extra) {
        v.extend(extra);
    }
    vars
}

async fn the_cluster_runs_on_a_worker_fed_by_rabbitmq(backend: Backend) {
    let Some((s, _stop)) = setup(backend).await else { return };
    let p = s.start_process("cluster", cluster(json!({}))).await;
    let id = p["processInstanceId"].as_str().unwrap_or_default();
    s.wait_for(id, "success").await;
    let tasks = s.tasks(id).await;
    for t in &tasks {
        let done = if t["stone"] == "MachineStone" { "monitor.success" } else { "start.success" };
        assert_eq!(t["status"], done, "{t}");
    }
    assert_eq!(tasks[0]["progress"], 100, "progress comes back through the events queue too");
    assert_eq!(s.machines(), 3);
}

async fn a_failure_rolls_back_through_rabbitmq(backend: Backend) {
    let Some((s, _stop)) = setup(backend).await else { return };
    let vars = cluster(json!({"Bingo::RS::FRONT::RSBILLING": {"fail": "no credit"}}));
    let p = s.start_process("cluster", vars).await;
    let id = p["processInstanceId"].as_str().unwrap_or_default();
    s.wait_for(id, "rolledBack").await;
    assert_eq!(s.machines(), 0);
}

async fn a_job_waits_in_the_queue_produced_until_a_worker_comes(backend: Backend) {
    if !broker_up().await {
        return;
    }
    let prefix = format!("test-{}.", uuid_like());
    let broker = BrokerOptions { url: amqp_url(), stones: vec!["BillingStone".into()], prefix: prefix.clone() };
    let Some(s) = TestServer::start_configured(backend, |_| RuntimeOptions {
        stones: Vec::new(),
        broker: Some(broker),
        ..RuntimeOptions::default()
    })
    .await
    else {
        return;
    };
    s.deploy(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowstone="http://flowstone.dev/bpmn">
        <process id="bill"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="b"/>
        <serviceTask id="b" flowstone:stone="BillingStone"/><sequenceFlow sourceRef="b" targetRef="e"/><endEvent id="e"/>
        </process></definitions>"#,
    )
    .await;
    let p = s.start_process("bill", json!({})).await;
    let id = p["processInstanceId"].as_str().unwrap_or_default().to_owned();
    let mut status = String::new();
    for _ in 0..100 {
        status = s.tasks(&id).await[0]["status"].as_str().unwrap_or_default().to_owned();
        if status == "produce.success" {
            break;
        }
        assert_eq!(status, "produce.begin", "before the broker confirms");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "produce.success", "the broker confirmed the publish");
    let stones: Vec<Arc<dyn flowstone_worker::Stone>> = vec![Arc::new(flowstone_worker::BillingStone)];
    let options =
        flowstone_worker::amqp::AmqpOptions { url: amqp_url(), prefix, concurrency: 4, grace: Duration::from_secs(1) };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(flowstone_worker::amqp::run(options, stones, async {
        let _ = stopped.await;
    }));
    s.wait_for(&id, "success").await;
    let _ = stop.send(());
    must(tokio::time::timeout(Duration::from_secs(10), worker).await.map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
}

backend_tests!(backend;
    the_cluster_runs_on_a_worker_fed_by_rabbitmq,
    a_failure_rolls_back_through_rabbitmq,
    a_job_waits_in_the_queue_produced_until_a_worker_comes
);
