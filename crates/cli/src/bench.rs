//! `flowstone bench`: the three benchmark workloads, engine only, durable through the
//! runtime on SQLite and PostgreSQL, and through HTTP with concurrent clients. Every
//! instance's result is checked; the figures are completed instances per second, latency
//! percentiles and peak memory.

use flowstone_engine::{Command, Ctx, Instance, InstanceStatus, StartOptions};
use flowstone_model::{Definition, parse_bpmn};
use flowstone_server::{Config, Runtime, RuntimeOptions, Server};
use flowstone_store::{PgStore, SqliteStore, Store};
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The admin password of the benchmarks' own servers.
pub(crate) const BENCH_PASSWORD: &str = "bench";

/// What to run.
#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Workloads: w1, w2, w3, w1_stones (W1 with three `noop` stone jobs; comma separated).
    #[arg(long, default_value = "w1,w2,w3", value_delimiter = ',')]
    workloads: Vec<String>,
    /// Modes: engine, sqlite, postgres, http; dispatch and workers measure stone jobs through
    /// the worker protocol; tasks and tasks-postgres query a large task list; pipeline and
    /// pipeline-engine run a bk-sops tree of --nodes components; multi-instance and
    /// multi-instance-engine run one parallel multi-instance task of each of --items; sign-in-flood
    /// times requests beside a flood of wrong passwords; timers, timers-postgres and
    /// timers-postgres-kill fire --timers timers beside W1; messages correlates a message by
    /// key to each of --waiting instances; prune deletes --ended ended W1 instances while W1
    /// runs; console times the console's pages over --ended instances and a 500-node model
    /// (comma separated).
    #[arg(long, default_value = "engine,sqlite,http", value_delimiter = ',')]
    modes: Vec<String>,
    /// Seconds per run.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) seconds: f64,
    /// Instances in flight at once in the durable and HTTP modes (1 measures one after another).
    #[arg(long, default_value_t = 256)]
    pub(crate) concurrency: usize,
    /// PostgreSQL server on which a fresh database is created for the postgres mode.
    #[arg(long, env = "FLOWSTONE_BENCH_POSTGRES", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub(crate) postgres: String,
    /// Components in the tree of the `pipeline` modes.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Item counts of the `multi-instance` modes (comma separated).
    #[arg(long, default_value = "1000,2000,4000,8000", value_delimiter = ',')]
    items: Vec<u32>,
    /// Open tasks the `tasks` modes build before they query Flowable's task list.
    #[arg(long, default_value_t = 100_000)]
    tasks: u64,
    /// Pending timers the `timers` modes set, due over a minute.
    #[arg(long, default_value_t = 100_000)]
    timers: u64,
    /// Instances the `messages` mode sets waiting for a message of their own.
    #[arg(long, default_value_t = 100_000)]
    waiting: u64,
    /// Ended W1 instances the `prune` mode makes, then deletes while W1 runs (and the `console`
    /// mode lists).
    #[arg(long, default_value_t = 1_000_000)]
    ended: u64,
    /// Directory holding w1_straight.bpmn, w2_usertask.bpmn, w3_gateways.bpmn (default: the bundled examples).
    #[arg(long)]
    models: Option<PathBuf>,
}

/// One workload's model and how to drive and check one instance of it.
#[derive(Clone, Copy)]
enum Workload {
    W1,
    W2,
    W3,
    /// W1 with every step a durable stone job.
    W1Stones,
}

impl Workload {
    fn parse(name: &str) -> Result<Self, String> {
        match name {
            "w1" => Ok(Self::W1),
            "w2" => Ok(Self::W2),
            "w3" => Ok(Self::W3),
            "w1_stones" => Ok(Self::W1Stones),
            other => Err(format!("unknown workload `{other}`; use w1, w2, w3 or w1_stones")),
        }
    }

    fn file(self) -> &'static str {
        match self {
            Self::W1 => "w1_straight.bpmn",
            Self::W2 => "w2_usertask.bpmn",
            Self::W3 => "w3_gateways.bpmn",
            Self::W1Stones => "w1_stones.bpmn",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::W1 => "W1",
            Self::W2 => "W2",
            Self::W3 => "W3",
            Self::W1Stones => "W1 stones",
        }
    }

    /// Start variables of the `n`th instance (W3 alternates its route).
    fn variables(self, n: u64) -> Map<String, Value> {
        match self {
            Self::W3 => Map::from_iter([("route".to_owned(), json!(Self::route(n)))]),
            Self::W1Stones => (1..=3).map(|i| (format!("s{i}"), json!({"t": i}))).collect(),
            _ => Map::new(),
        }
    }

    /// W3's route for the `n`th instance: half take each.
    fn route(n: u64) -> &'static str {
        if n.is_multiple_of(2) { "a" } else { "b" }
    }

    /// Whether the final variables are what the workload promises.
    fn check(self, n: u64, vars: &Map<String, Value>) -> bool {
        match self {
            Self::W1 => vars.get("t3") == Some(&json!(3)),
            Self::W2 => vars.get("approved") == Some(&json!(true)),
            Self::W3 => vars.get("taken") == Some(&json!(Self::route(n))),
            Self::W1Stones => vars.get("s3").and_then(|s3| s3.get("t")) == Some(&json!(3)),
        }
    }
}

pub(crate) struct Figures {
    pub(crate) completed: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Vec<u32>,
}

impl Figures {
    fn print(&self, workload: Workload, mode: &str) {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        let pct = |p: f64| -> f64 {
            if l.is_empty() {
                return 0.0;
            }
            let i = ((l.len() as f64 * p) as usize).min(l.len() - 1);
            f64::from(l[i]) / 1000.0
        };
        let rate = self.completed as f64 / self.elapsed.as_secs_f64();
        println!(
            "{:<9} {:<18} {:>11.0}/s  {:>8} done  p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms  peak RSS {:>6} MiB",
            workload.name(),
            mode,
            rate,
            self.completed,
            pct(0.5),
            pct(0.99),
            l.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
            peak_rss_mib()
        );
    }
}

impl Figures {
    pub(crate) fn print_latency(&self, what: &str) {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        let pct = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .map_or(0.0, |v| f64::from(*v) / 1000.0)
        };
        println!(
            "{what}: {} samples  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            self.completed,
            pct(0.5),
            pct(0.99),
            l.last().map_or(0.0, |m| f64::from(*m) / 1000.0)
        );
    }
}

/// Peak resident memory of this process so far (`VmHWM`), in MiB.
pub(crate) fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// W1's model, for the modes that run it beside their own work.
pub(crate) fn w1_source(args: &BenchArgs) -> Result<String, String> {
    source(args, Workload::W1)
}

fn source(args: &BenchArgs, w: Workload) -> Result<String, String> {
    match &args.models {
        Some(dir) => {
            std::fs::read_to_string(dir.join(w.file())).map_err(|e| format!("{}: {e}", dir.join(w.file()).display()))
        }
        None => flowstone_server::EXAMPLES
            .iter()
            .find(|(f, _)| *f == w.file())
            .map(|(_, s)| (*s).to_owned())
            .ok_or_else(|| format!("no bundled {}", w.file())),
    }
}

pub(crate) async fn run(args: BenchArgs) -> Result<(), String> {
    let workloads: Vec<Workload> = args.workloads.iter().map(|w| Workload::parse(w)).collect::<Result<_, _>>()?;
    println!(
        "flowstone bench: {} s per run, {} in flight (durable and HTTP modes), {} cores",
        args.seconds,
        args.concurrency,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for mode in &args.modes {
        match mode.as_str() {
            "dispatch" => {
                let latencies = crate::jobs_bench::dispatch(2_000).await?;
                let figures = Figures { completed: latencies.len() as u64, elapsed: Duration::ZERO, latencies };
                figures.print_latency("dispatch: job committed -> waiting worker has it");
                continue;
            }
            "workers" => {
                // A backlog that fits the committer's cache of live instances.
                let count = 40_000;
                let (done, elapsed) = crate::jobs_bench::workers(count, 4, args.concurrency.max(1)).await?;
                println!(
                    "jobs through HTTP, 4 workers x{}: {:>9.0} jobs/s ({done} jobs in {:.2} s, peak RSS {} MiB)",
                    args.concurrency,
                    done as f64 / elapsed.as_secs_f64(),
                    elapsed.as_secs_f64(),
                    peak_rss_mib()
                );
                continue;
            }
            "pipeline-engine" | "pipeline" => {
                let figures = if mode == "pipeline" {
                    crate::pipeline_bench::durable(args.nodes, args.concurrency.max(1)).await?
                } else {
                    crate::pipeline_bench::engine(args.nodes, args.seconds)?
                };
                let trees = figures.completed as f64 / figures.elapsed.as_secs_f64();
                let label = if mode == "pipeline" {
                    format!("SQLite, {} trees at once", args.concurrency.max(1))
                } else {
                    "engine".into()
                };
                figures.print_latency(&format!(
                    "pipeline tree of {} nodes ({label}): {trees:.1} trees/s, {:.0} nodes/s; time per tree",
                    args.nodes,
                    trees * args.nodes as f64
                ));
                continue;
            }
            "multi-instance" | "multi-instance-engine" => {
                crate::multi_bench::run(mode, &args.items).await?;
                continue;
            }
            "sign-in-flood" => {
                crate::sign_in_bench::flood(args.seconds, args.concurrency).await?;
                continue;
            }
            "timers" | "timers-postgres" | "timers-postgres-kill" => {
                crate::timers_bench::run(mode, args.timers, &args).await?;
                continue;
            }
            "messages" => {
                crate::messages_bench::run(args.waiting).await?;
                continue;
            }
            "prune" => {
                crate::prune_bench::run(args.ended, &args).await?;
                continue;
            }
            "console" => {
                crate::console_bench::run(args.ended, &args).await?;
                continue;
            }
            "tasks" | "tasks-postgres" => {
                let postgres = (mode == "tasks-postgres").then_some(args.postgres.as_str());
                crate::tasks_bench::run(args.tasks, postgres).await?;
                continue;
            }
            _ => {}
        }
        for &w in &workloads {
            let xml = source(&args, w)?;
            let figures = match mode.as_str() {
                "engine" => engine(w, &xml, args.seconds)?,
                "sqlite" | "postgres" => durable(w, &xml, &args, mode).await?,
                "http" => http(w, &xml, &args).await?,
                other => {
                    return Err(format!(
                        "unknown mode `{other}`; use engine, sqlite, postgres, http, dispatch, workers, tasks, tasks-postgres, timers, timers-postgres, timers-postgres-kill, messages, prune, pipeline, pipeline-engine, multi-instance, multi-instance-engine or sign-in-flood"
                    ));
                }
            };
            let label = if mode == "engine" { mode.clone() } else { format!("{mode} x{}", args.concurrency) };
            figures.print(w, &label);
        }
    }
    Ok(())
}

/// The engine alone: no store, no runtime, one instance after another.
fn engine(w: Workload, xml: &str, seconds: f64) -> Result<Figures, String> {
    let def = parse_bpmn(xml).map_err(|e| e.to_string())?.remove(0);
    let mut counter = 0u64;
    let mut ids = || {
        counter += 1;
        counter.to_string()
    };
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        for _ in 0..256 {
            let t = Instant::now();
            let (inst, _effects) = run_engine_instance(w, &def, n, &mut ids)?;
            if inst.status != InstanceStatus::Completed || !w.check(n, &inst.variables) {
                return Err(format!("{} instance {n} ended wrong: {:?}", w.name(), inst.status));
            }
            latencies.push(t.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32 / 1000);
            n += 1;
        }
    }
    let mut figures = Figures { completed: n, elapsed: started.elapsed(), latencies };
    // Engine steps take well under a microsecond of latency each: keep nanoseconds visible.
    figures.latencies.iter_mut().for_each(|l| *l = (*l).max(1));
    Ok(figures)
}

fn run_engine_instance(
    w: Workload,
    def: &Definition,
    n: u64,
    ids: &mut dyn FnMut() -> String,
) -> Result<(Instance, usize), String> {
    let limits = flowstone_engine::Limits::default();
    let ctx = &mut Ctx { now: 0, ids, brokered: &flowstone_engine::no_broker, limits: &limits };
    let (mut inst, effects) = Instance::start(def, w.variables(n), StartOptions::default(), ctx);
    let mut count = effects.len();
    if let Workload::W1Stones = w {
        // Each job as the `noop` stone ends it: its params as its outputs.
        while let Some(rec) = inst.open.values().find(|r| r.stone.is_some()) {
            let outputs = flowstone_worker::own_params(rec.params.as_ref().unwrap_or(&Value::Null));
            let event = flowstone_engine::StoneEvent::Success {
                action: flowstone_engine::Action::Start,
                outputs,
                monitor: false,
            };
            let command = Command::Stone { record: rec.id.clone(), event };
            count += inst.apply(def, command, ctx).map_err(|e| e.to_string())?.len();
        }
    }
    if let Workload::W2 = w {
        let task = inst.open.keys().next().cloned().ok_or("W2 opened no user task")?;
        let vars = Map::from_iter([("approved".to_owned(), json!(true))]);
        let command = Command::CompleteUserTask { task, variables: vars, transient: Map::new() };
        count += inst.apply(def, command, ctx).map_err(|e| e.to_string())?.len();
    }
    Ok((inst, count))
}

async fn open_store(mode: &str, args: &BenchArgs, dir: &tempfile::TempDir) -> Result<Arc<dyn Store>, String> {
    Ok(match mode {
        "postgres" => {
            let url = PgStore::create_database(&args.postgres, "flowstone_bench").await.map_err(|e| e.to_string())?;
            Arc::new(PgStore::open(&url).await.map_err(|e| e.to_string())?)
        }
        _ => Arc::new(SqliteStore::open(&dir.path().join("bench.db")).await.map_err(|e| e.to_string())?),
    })
}

/// Runs `concurrency` loops of `one` until the time is up; collects their figures.
async fn drive<F, Fut>(args: &BenchArgs, one: F) -> Result<Figures, String>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let one = Arc::new(one);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut loops = Vec::new();
    for worker in 0..args.concurrency as u64 {
        let (one, stop) = (one.clone(), stop.clone());
        let stride = args.concurrency as u64;
        loops.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = worker;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                one(n).await?;
                latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                n += stride;
            }
            Ok::<_, String>(latencies)
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for l in loops {
        latencies.extend(l.await.map_err(|e| e.to_string())??);
    }
    Ok(Figures { completed: latencies.len() as u64, elapsed: started.elapsed(), latencies })
}

/// Durable through the runtime: every instance committed before it counts.
async fn durable(w: Workload, xml: &str, args: &BenchArgs, mode: &str) -> Result<Figures, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = open_store(mode, args, &dir).await?;
    let runtime = Runtime::start(store.clone(), RuntimeOptions::default()).await.map_err(|e| e.to_string())?;
    let model = Arc::new(runtime.deploy(xml).await.map_err(|e| e.to_string())?.remove(0));
    let driven = runtime.clone();
    let figures = drive(args, move |n| {
        let (runtime, model) = (driven.clone(), model.clone());
        async move {
            let row = runtime
                .start_instance(model, "bench".into(), None, w.variables(n), StartOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            let final_vars = match w {
                Workload::W2 => {
                    let task = runtime.open_tasks(&row.id).await.map_err(|e| e.to_string())?;
                    let task = task.first().ok_or("W2 opened no user task")?.record.id.clone();
                    let vars = Map::from_iter([("approved".to_owned(), json!(true))]);
                    runtime
                        .apply(&row.id, Command::CompleteUserTask { task, variables: vars, transient: Map::new() })
                        .await
                        .map_err(|e| e.to_string())?;
                    runtime.instance(&row.id).await.map_err(|e| e.to_string())?.and_then(|r| r.final_vars)
                }
                Workload::W1Stones => runtime
                    .wait_for(&row.id, flowstone_server::MAX_WAIT, |r| r.end_time.is_some())
                    .await
                    .map_err(|e| e.to_string())?
                    .and_then(|r| r.final_vars),
                _ => row.final_vars,
            };
            let vars: Map<String, Value> =
                serde_json::from_str(final_vars.as_deref().unwrap_or("null")).unwrap_or_default();
            if w.check(n, &vars) { Ok(()) } else { Err(format!("{} instance {} ended wrong", w.name(), row.id)) }
        }
    })
    .await;
    runtime.shutdown();
    figures
}

/// A benchmark server in `dir` (SQLite) or on `database`, signed in as `admin` with
/// [`BENCH_PASSWORD`], with no example models.
pub(crate) async fn bench_server(
    dir: &tempfile::TempDir,
    database: Option<String>,
    runtime: RuntimeOptions,
) -> Result<Server, String> {
    let config = Config {
        listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        data_dir: dir.path().to_owned(),
        database,
        load_examples: false,
        runtime,
        admin_password: Some(BENCH_PASSWORD.into()),
        bk_apps: Vec::new(),
        anonymous: None,
        http: flowstone_server::HttpLimits::default(),
    };
    Server::start(&config).await.map_err(|e| e.to_string())
}

/// Through HTTP: concurrent clients on the platform API of an in-process server on SQLite.
async fn http(w: Workload, xml: &str, args: &BenchArgs) -> Result<Figures, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let server = bench_server(&dir, None, RuntimeOptions::default()).await?;
    let base = format!("http://{}", server.addr());
    let client = crate::client::signed_in(
        reqwest::Client::builder().pool_max_idle_per_host(args.concurrency),
        Some(&crate::client::basic("admin", BENCH_PASSWORD)),
    )?;
    let deployed: Value = client
        .post(format!("{base}/model"))
        .body(xml.to_owned())
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let key = deployed["key"].as_str().ok_or("deploy failed")?.to_owned();
    let figures = drive(args, move |n| {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        async move {
            let mut body = json!({"key": key, "processName": "bench", "variables": w.variables(n)});
            if let Workload::W1Stones = w {
                // The answer comes once the process ended (an addition to seed 002).
                body["wait"] = json!(flowstone_server::MAX_WAIT.as_millis() as u64);
            }
            let mut p: Value = post_json(client.post(format!("{base}/process")).json(&body)).await?;
            if let Workload::W2 = w {
                let id = p["processInstanceId"].as_str().unwrap_or_default();
                let tasks: Value =
                    post_json(client.get(format!("{base}/task")).query(&[("processInstanceId", id)])).await?;
                let task = tasks[0]["id"].as_str().ok_or("W2 opened no user task")?;
                post_json(client.put(format!("{base}/task/{task}/complete")).json(&json!({"approved": true}))).await?;
                p = post_json(client.get(format!("{base}/process/{id}"))).await?;
            }
            let vars: Map<String, Value> =
                serde_json::from_str(p["nativeOutputs"].as_str().unwrap_or("null")).unwrap_or_default();
            if w.check(n, &vars) { Ok(()) } else { Err(format!("{} instance ended wrong: {p}", w.name())) }
        }
    })
    .await;
    server.stop().await;
    figures
}

pub(crate) async fn post_json(req: reqwest::RequestBuilder) -> Result<Value, String> {
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    if status.is_success() { Ok(body) } else { Err(format!("{status}: {body}")) }
}
