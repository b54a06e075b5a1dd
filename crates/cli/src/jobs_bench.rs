//! `flowstone bench --modes dispatch,workers`: stone jobs through the worker protocol.
//!
//! `dispatch` measures how long a job waits between its commit and a waiting worker having
//! it: one worker long-polls, instances are started one after another through the runtime,
//! and each latency runs from the moment the start was committed (and answered) to the
//! moment the worker's fetch returned the job. `workers` queues jobs first, then lets four
//! `flowstone_worker` runners drain them over HTTP (each job's `start.begin` applied as it
//! is handed out and written with its `start.success`, which the worker reports), and counts
//! completed jobs per second. The stone counts its own runs, so
//! that the store is asked how many instances completed only once all of them ran: asked
//! every 20 ms throughout, the count walked every instance of the table each time and took
//! the CPU of the server it measured.

use crate::bench::BENCH_PASSWORD;
use flowstone_engine::StartOptions;
use flowstone_server::{RuntimeOptions, Server};
use flowstone_store::{InstanceFilter, Page};
use flowstone_worker::runner::{Worker, WorkerOptions};
use flowstone_worker::{Stone, StoneResult, Work};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The benchmark server's admin credentials.
fn admin() -> String {
    crate::client::basic("admin", BENCH_PASSWORD)
}

const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowstone="http://flowstone.dev/bpmn">
  <process id="jobs"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/>
  <serviceTask id="t" flowstone:stone="BenchStone"/><sequenceFlow sourceRef="t" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

/// A stone with nothing to do but count its runs.
struct BenchStone(Arc<AtomicU64>);

#[async_trait::async_trait]
impl Stone for BenchStone {
    fn name(&self) -> &str {
        "BenchStone"
    }

    async fn start(&self, _: &Work) -> StoneResult {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(Map::new())
    }
}

/// A server on a fresh SQLite file that runs no stone in-process.
async fn server(dir: &tempfile::TempDir) -> Result<Server, String> {
    let server =
        crate::bench::bench_server(dir, None, RuntimeOptions { stones: Vec::new(), ..RuntimeOptions::default() })
            .await?;
    server.runtime().deploy(MODEL).await.map_err(|e| e.to_string())?;
    Ok(server)
}

/// Latencies (µs) from commit to a waiting worker's fetch returning the job, for `count` jobs.
pub(crate) async fn dispatch(count: usize) -> Result<Vec<u32>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let server = server(&dir).await?;
    let runtime = server.runtime().clone();
    let model = runtime.latest_model("jobs").await.map_err(|e| e.to_string())?.ok_or("no model")?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let url = format!("http://{}/worker/fetch", server.addr());
    let fetcher = tokio::spawn(async move {
        let Ok(client) = crate::client::signed_in(reqwest::Client::builder(), Some(&admin())) else { return };
        let body = json!({"workerId": "bench", "topics": ["BenchStone"], "maxJobs": 1, "waitTime": 10_000});
        loop {
            let Ok(resp) = client.post(&url).json(&body).send().await else { return };
            let got = Instant::now();
            let Ok(jobs) = resp.json::<Value>().await else { return };
            for job in jobs.as_array().into_iter().flatten() {
                let id = job["processInstanceId"].as_str().unwrap_or_default().to_owned();
                if tx.send((id, got)).is_err() {
                    return;
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let row = runtime
            .start_instance(model.clone(), "bench".into(), None, Map::new(), StartOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let committed = Instant::now();
        let (id, got) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .map_err(|_| "the waiting worker did not get a job within 5 s")?
            .ok_or("the fetcher stopped")?;
        if id != row.id {
            return Err(format!("the worker got the job of {id}, expected {}", row.id));
        }
        // The fetch may return before the start's answer is read: that is no wait at all.
        latencies.push(got.saturating_duration_since(committed).as_micros().min(u128::from(u32::MAX)) as u32);
    }
    fetcher.abort();
    server.stop().await;
    Ok(latencies)
}

/// Queues `count` jobs, then drains them with `workers` runners of `concurrency` jobs each;
/// answers the jobs completed and the time it took.
pub(crate) async fn workers(count: u64, workers: usize, concurrency: usize) -> Result<(u64, Duration), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let server = server(&dir).await?;
    let runtime = server.runtime().clone();
    let model = runtime.latest_model("jobs").await.map_err(|e| e.to_string())?.ok_or("no model")?;
    let mut starts = tokio::task::JoinSet::new();
    for lane in 0..256 {
        let (runtime, model) = (runtime.clone(), model.clone());
        starts.spawn(async move {
            for _ in (lane..count).step_by(256) {
                runtime
                    .start_instance(model.clone(), "bench".into(), None, Map::new(), StartOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(())
        });
    }
    let queueing = Instant::now();
    while let Some(done) = starts.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    eprintln!("queued {count} jobs in {:.2} s", queueing.elapsed().as_secs_f64());
    let store = runtime.store().clone();
    let completed = || async {
        let filter = InstanceFilter { status: Some("completed".into()), ..InstanceFilter::default() };
        store.list_instances(&filter, Page { offset: 0, limit: 1 }).await.map(|(_, n)| n).map_err(|e| e.to_string())
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let ran = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for w in 0..workers {
        let options = WorkerOptions {
            server: format!("http://{}", server.addr()),
            authorization: Some(admin()),
            worker_id: format!("bench-{w}"),
            concurrency,
            lock: Duration::from_secs(60),
            wait: Duration::from_secs(1),
            grace: Duration::from_secs(5),
        };
        let mut stop = stop_rx.clone();
        let ran = ran.clone();
        running.spawn(async move {
            let stones: Vec<Arc<dyn Stone>> = vec![Arc::new(BenchStone(ran))];
            Worker::new(options, stones)
                .run(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
        });
    }
    let limit = Duration::from_secs(120);
    while ran.load(Ordering::Relaxed) < count && began.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut done = 0;
    while done < count && began.elapsed() < limit {
        done = completed().await?;
        if done < count {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let elapsed = began.elapsed();
    stop_tx.send_replace(true);
    while running.join_next().await.is_some() {}
    server.stop().await;
    Ok((done, elapsed))
}
