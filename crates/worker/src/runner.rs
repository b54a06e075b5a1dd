//! Runs stones as a separate program: long-polls a server for jobs over HTTP, drives each
//! through its stone, keeps its lock alive, and reports every event back.
//!
//! Connection losses are retried with a growing pause, so a worker rides out a server
//! restart. On stop it fetches nothing more, lets the jobs in hand finish for a grace period,
//! and hands the rest back so that another worker takes them at once.

use crate::protocol::{
    EVENTS_PATH, EventBatch, EventOutcome, EventReport, FETCH_PATH, FetchRequest, JobEvent, LockReport, LockedJob,
    ProgressReport, job_path,
};
use crate::{Progress, Refused, Reporter, Stone, Work, drive};
use flowstone_engine::StoneEvent;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The server's base URL.
    pub server: String,
    /// The `Authorization` header value sent with every call (`Basic …` or `Bearer …`).
    pub authorization: Option<String>,
    /// This worker's id: the jobs it fetches are locked to it.
    pub worker_id: String,
    /// How many jobs run at once.
    pub concurrency: usize,
    /// How long a fetched job stays locked without a heartbeat.
    pub lock: Duration,
    /// How long one fetch waits for a job.
    pub wait: Duration,
    /// How long jobs in hand may run on after a stop before they are handed back.
    pub grace: Duration,
}

/// A worker: stones by name, and a client for the server.
pub struct Worker {
    client: reqwest::Client,
    options: WorkerOptions,
    stones: HashMap<String, Arc<dyn Stone>>,
}

/// Why a call to the server did not go through.
enum CallError {
    /// The server refused it (a 4xx): retrying will not help.
    Refused(String),
    /// The server was unreachable or failed (a 5xx): worth retrying.
    Transient(String),
}

impl Worker {
    /// A worker running `stones`.
    pub fn new(options: WorkerOptions, stones: Vec<Arc<dyn Stone>>) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(value) =
            options.authorization.as_deref().and_then(|v| reqwest::header::HeaderValue::from_str(v).ok())
        {
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .default_headers(headers)
            .build()
            .unwrap_or_default();
        let stones = stones.into_iter().map(|s| (s.name().to_owned(), s)).collect();
        Self { client, options, stones }
    }

    /// Runs until `stop` resolves, then winds down (see the module docs).
    pub async fn run(&self, stop: impl std::future::Future<Output = ()>) {
        let (events, gathered) = mpsc::unbounded_channel();
        let sender = tokio::spawn(send_events(self.client.clone(), self.options.clone(), gathered));
        let permits = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let batch = (self.options.concurrency / 4).max(1);
        let in_hand: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut jobs = JoinSet::new();
        let mut pause = Duration::from_millis(100);
        tokio::pin!(stop);
        loop {
            while jobs.try_join_next().is_some() {}
            // A busy worker fetches once a quarter of its slots is free, not slot by slot.
            let free = permits.available_permits();
            let enough = free >= batch || jobs.is_empty();
            let fetched = tokio::select! {
                () = &mut stop => break,
                _ = permits.acquire_many(batch as u32), if !enough => continue,
                fetched = self.fetch(free), if enough => fetched,
            };
            match fetched {
                Ok(locked) => {
                    pause = Duration::from_millis(100);
                    for job in locked {
                        let Ok(permit) = permits.clone().try_acquire_owned() else { break };
                        let Some(stone) = self.stones.get(&job.stone).cloned() else { continue };
                        lock(&in_hand).insert(job.id.clone());
                        let (ctx, in_hand) = (self.job_context(&job, events.clone()), in_hand.clone());
                        jobs.spawn(async move {
                            ctx.run(stone, job.clone()).await;
                            lock(&in_hand).remove(&job.id);
                            drop(permit);
                        });
                    }
                }
                Err(CallError::Refused(message)) => {
                    tracing::error!(%message, "the server refused the fetch");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                Err(CallError::Transient(message)) => {
                    tracing::warn!(%message, retry_in = ?pause, "cannot fetch jobs");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
        tracing::info!(jobs = jobs.len(), "stopping: no more fetches; letting jobs in hand finish");
        let _ = tokio::time::timeout(self.options.grace, async { while jobs.join_next().await.is_some() {} }).await;
        jobs.abort_all();
        sender.abort();
        let left: Vec<String> = lock(&in_hand).drain().collect();
        for id in left {
            let body = LockReport { worker_id: self.options.worker_id.clone(), lock_duration: 0 };
            match self.post(&job_path(&id, "release"), &body).await {
                Ok(_) => tracing::info!(job = %id, "handed back"),
                Err(CallError::Refused(m) | CallError::Transient(m)) => {
                    tracing::warn!(job = %id, error = %m, "could not hand back; it passes on when its lock ends");
                }
            }
        }
    }

    async fn fetch(&self, max: usize) -> Result<Vec<LockedJob>, CallError> {
        let request = FetchRequest {
            worker_id: self.options.worker_id.clone(),
            topics: self.stones.keys().cloned().collect(),
            max_jobs: max.min(1000) as u32,
            lock_duration: self.options.lock.as_millis() as u64,
            wait_time: self.options.wait.as_millis() as u64,
        };
        let answer = self.post(FETCH_PATH, &request).await?;
        serde_json::from_value(answer).map_err(|e| CallError::Refused(format!("unexpected fetch answer: {e}")))
    }

    async fn post(&self, path: &str, body: &impl serde::Serialize) -> Result<serde_json::Value, CallError> {
        post(&self.client, &self.options.server, path, body, self.options.wait + Duration::from_secs(10)).await
    }

    fn job_context(&self, job: &LockedJob, events: mpsc::UnboundedSender<Pending>) -> JobContext {
        JobContext {
            client: self.client.clone(),
            server: self.options.server.clone(),
            worker_id: self.options.worker_id.clone(),
            job: job.id.clone(),
            lock: self.options.lock,
            events,
        }
    }
}

/// An event waiting to be sent, and who waits for its outcome.
type Pending = (JobEvent, oneshot::Sender<Result<(), Refused>>);

/// Sends the events of every job in hand in shared requests: while one request is under
/// way, the next events gather, so a busy worker sends few large requests (and they share
/// the server's commits) while an idle one sends each event at once.
async fn send_events(client: reqwest::Client, options: WorkerOptions, mut gathered: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = gathered.recv().await {
        let mut pending = vec![first];
        while pending.len() < 1000 {
            match gathered.try_recv() {
                Ok(more) => pending.push(more),
                Err(_) => break,
            }
        }
        let (events, waiting): (Vec<JobEvent>, Vec<_>) = pending.into_iter().unzip();
        let batch = EventBatch { worker_id: options.worker_id.clone(), events };
        let mut pause = Duration::from_millis(100);
        let outcomes = loop {
            match post(&client, &options.server, EVENTS_PATH, &batch, Duration::from_secs(30)).await {
                Ok(answer) => match serde_json::from_value::<Vec<EventOutcome>>(answer) {
                    Ok(outcomes) if outcomes.len() == waiting.len() => {
                        break outcomes
                            .into_iter()
                            .map(|o| match o.message {
                                Some(message) if !(200..300).contains(&o.status) => Err(Refused(message)),
                                _ => Ok(()),
                            })
                            .collect::<Vec<_>>();
                    }
                    _ => break vec![Err(Refused("unexpected answer to a batch of events".into())); waiting.len()],
                },
                Err(CallError::Refused(message)) => break vec![Err(Refused(message)); waiting.len()],
                Err(CallError::Transient(message)) => {
                    tracing::warn!(events = waiting.len(), %message, retry_in = ?pause, "events not delivered");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        };
        for (reply, outcome) in waiting.into_iter().zip(outcomes) {
            let _ = reply.send(outcome);
        }
    }
}

fn lock(set: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    set.lock().unwrap_or_else(|p| p.into_inner())
}

async fn post(
    client: &reqwest::Client,
    server: &str,
    path: &str,
    body: &impl serde::Serialize,
    timeout: Duration,
) -> Result<serde_json::Value, CallError> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let response =
        client.post(url).json(body).timeout(timeout).send().await.map_err(|e| CallError::Transient(e.to_string()))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| CallError::Transient(e.to_string()))?;
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    if status.is_success() {
        Ok(value)
    } else {
        let message = value.get("message").and_then(|m| m.as_str()).map_or_else(|| value.to_string(), str::to_owned);
        let message = format!("{status}: {message}");
        Err(if status.is_server_error() { CallError::Transient(message) } else { CallError::Refused(message) })
    }
}

/// One job in hand: reports its events and keeps its lock alive.
struct JobContext {
    client: reqwest::Client,
    server: String,
    worker_id: String,
    job: String,
    lock: Duration,
    /// Where events go to be sent with those of other jobs.
    events: mpsc::UnboundedSender<Pending>,
}

impl JobContext {
    async fn run(&self, stone: Arc<dyn Stone>, job: LockedJob) {
        use tracing::Instrument;
        // The job's lines carry its process's trace, as the server's lines of that process do.
        let trace = job.traceparent.as_deref().and_then(crate::protocol::trace_of).unwrap_or("-").to_owned();
        let span = tracing::info_span!("job", id = %self.job, process = %job.process_instance_id, trace_id = %trace);
        if let Some(traceparent) = &job.traceparent {
            crate::trace::follow(&span, traceparent);
        }
        let work = Work { params: job.params, outputs: job.outputs, queued_at: job.queued_at };
        let result = async {
            tokio::select! {
                result = drive(stone.as_ref(), job.action, work, true, self) => result,
                lost = self.heartbeats() => Err(lost),
            }
        }
        .instrument(span)
        .await;
        if let Err(Refused(message)) = result {
            tracing::info!(job = %self.job, %message, "job given up");
        }
    }

    /// Extends the lock every third of its duration; returns once the lock is lost.
    async fn heartbeats(&self) -> Refused {
        let mut tick = tokio::time::interval(self.lock / 3);
        tick.tick().await;
        loop {
            tick.tick().await;
            let body = LockReport { worker_id: self.worker_id.clone(), lock_duration: self.lock.as_millis() as u64 };
            match post(&self.client, &self.server, &job_path(&self.job, "heartbeat"), &body, self.lock / 3).await {
                Ok(_) => {}
                Err(CallError::Refused(message)) => return Refused(message),
                Err(CallError::Transient(message)) => tracing::warn!(job = %self.job, %message, "heartbeat failed"),
            }
        }
    }
}

#[async_trait::async_trait]
impl Progress for JobContext {
    async fn progress(&self, percent: u8) {
        let body = ProgressReport { worker_id: self.worker_id.clone(), progress: percent };
        if let Err(CallError::Refused(m) | CallError::Transient(m)) =
            post(&self.client, &self.server, &job_path(&self.job, "progress"), &body, Duration::from_secs(10)).await
        {
            tracing::debug!(job = %self.job, error = %m, "progress not delivered");
        }
    }
}

#[async_trait::async_trait]
impl Reporter for JobContext {
    async fn report(&self, event: StoneEvent) -> Result<(), Refused> {
        let (reply, outcome) = oneshot::channel();
        let event = JobEvent::of(&self.job, EventReport::new(&self.worker_id, event));
        self.events.send((event, reply)).map_err(|_| Refused("the worker is stopping".into()))?;
        outcome.await.map_err(|_| Refused("the worker is stopping".into()))?
    }
}
