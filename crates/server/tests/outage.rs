//! PostgreSQL unreachable for a few seconds under load: the server reaches the database
//! through a TCP proxy that this test cuts (every connection dropped, new ones refused)
//! and then restores. Meanwhile the API answers 503 promptly instead of hanging; once the
//! database is back everything continues: new requests succeed, every acknowledged
//! instance is there, and the stone jobs that finished during the outage are committed.

mod common;

use common::{TestServer, must, postgres_database};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards `port` to `target` while `up` is true; when it turns false, drops every
/// connection and stops listening until it turns true again.
async fn proxy(port: u16, target: String, mut up: watch::Receiver<bool>) {
    loop {
        if up.wait_for(|u| *u).await.is_err() {
            return;
        }
        let listener = must(TcpListener::bind(("127.0.0.1", port)).await);
        let mut cut = up.clone();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((mut client, _)) = accepted else { continue };
                    let (target, mut down) = (target.clone(), up.clone());
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(&target).await else { return };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = down.wait_for(|u| !*u) => {}
                        }
                    });
                }
                _ = cut.wait_for(|u| !*u) => break,
            }
        }
    }
}

#[derive(Default)]
struct Log {
    acknowledged: Vec<String>,
    unavailable: usize,
    other_errors: Vec<String>,
}

async fn traffic(s: Arc<TestServer>, log: Arc<Mutex<Log>>, stop: Arc<AtomicBool>) {
    let body = json!({"key": "cluster", "processName": "outage", "variables": {"slaveNum": 2}});
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let outcome = match s.client.post(format!("{}/process", s.base)).json(&body).send().await {
            Ok(r) if r.status() == StatusCode::OK => r
                .json::<Value>()
                .await
                .map(|p| p["processInstanceId"].as_str().map(str::to_owned))
                .map_err(|e| e.to_string()),
            Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => Ok(None),
            Ok(r) => Err(format!("{} after {:?}", r.status(), started.elapsed())),
            Err(e) => Err(e.to_string()),
        };
        let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(Some(id)) => log.acknowledged.push(id),
            Ok(None) => log.unavailable += 1,
            Err(e) => log.other_errors.push(e),
        }
        if started.elapsed() > Duration::from_secs(10) {
            log.other_errors.push(format!("a request took {:?}", started.elapsed()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_503_then_everything_continues() {
    let Some(url) = postgres_database().await else { return };
    let port = must(must(std::net::TcpListener::bind("127.0.0.1:0")).local_addr()).port();
    let target = url.split('@').nth(1).and_then(|h| h.split('/').next()).unwrap_or("127.0.0.1:5432").to_owned();
    let proxied = url.replacen(&target, &format!("127.0.0.1:{port}"), 1);
    let (up, watch_up) = watch::channel(true);
    tokio::spawn(proxy(port, target, watch_up));
    let s = Arc::new(TestServer::start_on(must(tempfile::tempdir()), Some(proxied)).await);

    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4).map(|_| tokio::spawn(traffic(s.clone(), log.clone(), stop.clone()))).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = log.lock().unwrap_or_else(|p| p.into_inner()).acknowledged.len();
    assert!(before > 0, "nothing was started before the outage");

    up.send_replace(false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = Instant::now();
    let first = log.lock().unwrap_or_else(|p| p.into_inner()).acknowledged[0].clone();
    let (status, body) = s.get(&format!("/process/{first}")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(asked.elapsed() < Duration::from_secs(6), "the answer took {:?}", asked.elapsed());
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    up.send_replace(true);

    // Back: new starts succeed again within a few seconds.
    let back = Instant::now();
    loop {
        let after = log.lock().unwrap_or_else(|p| p.into_inner()).acknowledged.len();
        if after > before + 20 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(20), "nothing started after the database came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        must(c.await);
    }
    let log = std::mem::take(&mut *log.lock().unwrap_or_else(|p| p.into_inner()));
    assert!(log.other_errors.is_empty(), "answers other than 200 and 503: {:?}", log.other_errors);
    assert!(log.unavailable > 0, "no request met the outage");

    // Every acknowledged instance is there and runs to its end, stone results included.
    for id in &log.acknowledged {
        let p = s.settle(id).await;
        assert_eq!(p["processStatus"], "success", "{p}");
    }
    println!("{} acknowledged, {} answered 503 during the outage", log.acknowledged.len(), log.unavailable);
}
