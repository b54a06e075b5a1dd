//! Spans exported over OTLP/HTTP to a collector (a small one here that decodes what it is
//! sent): one trace per process holds the server's lifecycle and command spans and the
//! worker's span of each job, across the transactions and the processes in between; a
//! request's span is in the trace its `traceparent` header names.
#![cfg(feature = "otlp")]

mod common;

use common::{Serve, Worker, free_port, must};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One exported span: the service that sent it, its name, trace and string attributes.
#[derive(Debug)]
struct Span {
    service: String,
    name: String,
    trace: String,
    attributes: Vec<(String, String)>,
}

impl Span {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Listens on a free port and keeps every span POSTed to `/v1/traces`.
fn collector() -> (u16, Arc<Mutex<Vec<Span>>>) {
    let listener = must(std::net::TcpListener::bind("127.0.0.1:0"));
    let port = must(listener.local_addr()).port();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kept = spans.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let kept = kept.clone();
            std::thread::spawn(move || serve(stream, &kept));
        }
    });
    (port, spans)
}

/// Answers the requests of one connection, decoding each body.
fn serve(stream: std::net::TcpStream, kept: &Mutex<Vec<Span>>) {
    let mut reader = BufReader::new(must(stream.try_clone()));
    let mut writer = stream;
    loop {
        let (mut line, mut length, mut path) = (String::new(), 0usize, String::new());
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if path.is_empty() {
                path = line.split(' ').nth(1).unwrap_or_default().to_owned();
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        assert_eq!(path, "/v1/traces", "spans go to the OTLP traces path");
        let request = must(ExportTraceServiceRequest::decode(&body[..]));
        let mut spans = kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for resource in request.resource_spans {
            let attributes = resource.resource.map(|r| r.attributes).unwrap_or_default();
            let service = attributes.iter().find(|a| a.key == "service.name").map(|a| text(a.value.as_ref()));
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                let trace = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                let attributes = span.attributes.iter().map(|a| (a.key.clone(), text(a.value.as_ref()))).collect();
                spans.push(Span { service: service.clone().unwrap_or_default(), name: span.name, trace, attributes });
            }
        }
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_is_one_trace_from_its_start_through_a_workers_job_to_its_end() {
    let (collector_port, spans) = collector();
    let endpoint = format!("http://127.0.0.1:{collector_port}");
    let dir = must(tempfile::tempdir());
    let (port, data) = (free_port(), dir.path().join("server").to_string_lossy().into_owned());
    let serve = Serve::start_args(&["--data-dir", &data, "--stones", "none", "--otlp-endpoint", &endpoint], port);
    let base = format!("http://127.0.0.1:{port}");
    let machines = dir.path().join("machines").to_string_lossy().into_owned();
    let worker = Worker::worker(
        &base,
        &["--stones", "MachineStone,BillingStone", "--machines-dir", &machines, "--otlp-endpoint", &endpoint],
    );

    let client = common::client();
    let caller = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = json!({"key": "cluster", "processName": "traced", "variables": {
        "slaveNum": "1", "buyNum": "1", "Bingo::RS::FRONT::RSBILLING": {}, "SipRS::Mock": true,
        "master-1a": {"instanceType": "m2.large"}, "slave-": {"instanceType": "m2.large"}
    }});
    let started = must(
        client
            .post(format!("{base}/process"))
            .header("traceparent", format!("00-{caller}-00f067aa0ba902b7-01"))
            .json(&body)
            .send()
            .await,
    );
    let started: Value = must(started.json().await);
    let id = started["processInstanceId"].as_str().unwrap_or_default().to_owned();
    assert!(!id.is_empty(), "{started}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p: Value = must(must(client.get(format!("{base}/process/{id}")).send().await).json().await);
        if p["processStatus"] == "success" {
            break;
        }
        assert!(Instant::now() < deadline, "the process did not succeed: {p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Both flush what they hold when they stop.
    worker.terminate();
    serve.terminate();

    let trace = flowstone_worker::protocol::trace_id(&id);
    let spans = spans.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let of_process: Vec<&Span> = spans.iter().filter(|s| s.trace == trace).collect();
    let find = |service: &str, name: &str, attribute: (&str, &str)| {
        of_process
            .iter()
            .any(|s| s.service == service && s.name == name && s.attribute(attribute.0) == Some(attribute.1))
    };
    assert!(find("flowstone", "lifecycle", ("status", "running")), "its start: {of_process:#?}");
    assert!(find("flowstone-worker", "job", ("process", &id)), "a worker's job: {of_process:#?}");
    assert!(find("flowstone", "command", ("command", "stone")), "a job's outcome applied: {of_process:#?}");
    assert!(find("flowstone", "lifecycle", ("status", "completed")), "its end: {of_process:#?}");
    assert!(
        spans.iter().any(|s| s.trace == caller && s.name == "request" && s.attribute("route") == Some("/process")),
        "the request is in its caller's trace"
    );
}
