//! `flowstone`: run the server, or talk to one.

/// Requests are allocated on the HTTP workers and freed on the committer's threads (and the
/// other way round); mimalloc handles that hand-off far better than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod client;
mod console_bench;
mod jobs_bench;
mod messages_bench;
mod multi_bench;
mod pipeline_bench;
mod prune_bench;
mod sign_in_bench;
mod tasks_bench;
mod telemetry;
mod timers_bench;

use clap::{Parser, Subcommand};
use flowstone_engine::Limits;
use flowstone_server::HttpLimits;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flowstone: a process-orchestration engine in one binary.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// How log lines are written to standard error: `text` (coloured only on a terminal) or
    /// `json` (one object per line). Which lines: `RUST_LOG` (default `info` for `serve` and
    /// `worker`, `warn` otherwise).
    #[arg(long, global = true, env = "FLOWSTONE_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    /// An OpenTelemetry collector to export spans to over OTLP/HTTP (its base URL, e.g.
    /// `http://127.0.0.1:4318`): requests, commands and lifecycle events of `serve`, jobs of
    /// `worker`, each in the trace of its process.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server (SQLite under ./flowstone-data by default; example models deployed on first start).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "FLOWSTONE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Directory of the embedded database.
        #[arg(long, env = "FLOWSTONE_DATA_DIR", default_value = "flowstone-data")]
        data_dir: PathBuf,
        /// Database URL (sqlite://PATH); overrides --data-dir.
        #[arg(long, env = "FLOWSTONE_DATABASE_URL")]
        database: Option<String>,
        /// Do not deploy the bundled example models on first start.
        #[arg(long)]
        no_examples: bool,
        /// This server's name among servers sharing one database (default: HOST:PORT).
        #[arg(long, env = "FLOWSTONE_NODE_ID")]
        node_id: Option<String>,
        /// Seconds a stone job stays with the server running it without a heartbeat before
        /// another server sharing the database takes it over.
        #[arg(long, env = "FLOWSTONE_JOB_LEASE", default_value_t = 30.0)]
        job_lease: f64,
        /// Built-in stones run in-process (comma-separated, `all` or `none`); jobs of the
        /// others wait for `flowstone worker` processes.
        #[arg(long, env = "FLOWSTONE_STONES", default_value = "all")]
        stones: String,
        #[command(flatten)]
        amqp: AmqpArgs,
        /// Stones whose jobs are published to RabbitMQ (comma-separated; needs --amqp).
        #[arg(long, env = "FLOWSTONE_AMQP_STONES", value_delimiter = ',')]
        amqp_stones: Vec<String>,
        /// The password of the user `admin` made at first start (default: generated and
        /// printed once). Ignored once the database has users.
        #[arg(long, env = "FLOWSTONE_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
        /// Applications of the bk-sops API, `code:secret` or `code:secret:biz;biz` (limited to
        /// those businesses), comma-separated; registered at start or given this secret.
        #[arg(long = "bk-app", env = "FLOWSTONE_BK_APPS", value_delimiter = ',', hide_env_values = true)]
        bk_apps: Vec<String>,
        /// Requests without credentials act as this existing user instead of being refused
        /// (for clients that send none, such as the seed platform's own); from the loopback
        /// interface only, unless --anonymous-anywhere. Logged loudly at start.
        #[arg(long, env = "FLOWSTONE_ANONYMOUS_USER")]
        anonymous_user: Option<String>,
        /// With --anonymous-user: from any address (a trusted network), not only loopback.
        #[arg(long, env = "FLOWSTONE_ANONYMOUS_ANYWHERE", requires = "anonymous_user")]
        anonymous_anywhere: bool,
        /// Delete instances that ended longer ago than this, with everything they own, in the
        /// background (`30d`, `12h`, `P30D`); without it, history is kept.
        #[arg(long, env = "FLOWSTONE_HISTORY_TTL", value_parser = parse_age)]
        history_ttl: Option<std::time::Duration>,
        /// Work that has not moved for this long (a job no worker takes, a callback awaited, an
        /// instance without a step) is counted in `flowstone_stuck` and logged once.
        #[arg(long, env = "FLOWSTONE_STUCK_AFTER", value_parser = parse_age, default_value = "10m")]
        stuck_after: std::time::Duration,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Manage the applications allowed to call the bk-sops API.
    App {
        #[command(subcommand)]
        command: AppCmd,
    },
    /// Run stones as a worker of a server: fetch their jobs over HTTP and report back.
    Worker(WorkerArgs),
    /// Deploy a BPMN file to a running server.
    Deploy {
        /// The .bpmn / .bpmn20.xml file.
        file: PathBuf,
        #[command(flatten)]
        server: client::ServerArg,
    },
    /// Start a process instance of the latest version of a model key.
    Start {
        /// The model key (the BPMN process id).
        key: String,
        /// A start variable, `name=value`; the value is read as JSON when it parses, else as text.
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Name of the process instance (defaults to the key).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        server: client::ServerArg,
    },
    /// List the task records of a process instance, oldest first.
    Tasks {
        /// The process instance id.
        process: String,
        #[command(flatten)]
        server: client::ServerArg,
    },
    /// Cancel a running process instance (stone tasks that began get `cancel`).
    Cancel {
        /// The process instance id.
        process: String,
        #[command(flatten)]
        server: client::ServerArg,
    },
    /// Delete an ended process instance (stone tasks that ran get `delete`, newest first).
    Delete {
        /// The process instance id.
        process: String,
        #[command(flatten)]
        server: client::ServerArg,
    },
    /// Complete a user task, setting variables.
    Complete {
        /// The task's record id or task id.
        task: String,
        /// A variable, `name=value`; the value is read as JSON when it parses, else as text.
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        #[command(flatten)]
        server: client::ServerArg,
    },
    /// Debug mode: run a failed stone task again.
    Rerun {
        /// The task's record id or task id.
        task: String,
        /// `start`, `monitor` or `mock` (default: the action that failed).
        #[arg(long)]
        queue_type: Option<String>,
        /// A parameter merged over the task's params, `name=value` (JSON when it parses; `null` removes it).
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        #[command(flatten)]
        server: client::ServerArg,
    },
    /// Debug mode: give up on a failed task (the process fails and its rollback starts).
    Resume {
        /// The task's record id or task id.
        task: String,
        #[command(flatten)]
        server: client::ServerArg,
    },
    /// Move a running process to another version of its model (the latest unless
    /// --to-version); its elements go to those of the same id, or as --map says.
    Migrate {
        /// The process instance id.
        process: String,
        /// The version to move to (default: the latest of its key).
        #[arg(long)]
        to_version: Option<u32>,
        /// An element that is renamed in the new version, `OLD=NEW`.
        #[arg(long = "map", value_name = "OLD=NEW")]
        mappings: Vec<String>,
        /// Check and show what would move; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        server: client::ServerArg,
    },
    /// Show a process's variables (its final ones once it ended).
    Vars {
        /// The process instance id.
        process: String,
        #[command(flatten)]
        server: client::ServerArg,
    },
    /// Follow a process live: its tasks with progress bars until it ends (fails unless it
    /// ends in success).
    Watch {
        /// The process instance id.
        process: String,
        /// Seconds between looks.
        #[arg(long, default_value_t = 0.5)]
        every: f64,
        #[command(flatten)]
        server: client::ServerArg,
    },
    /// Work that has not moved for a while: stone jobs no worker took, callbacks awaited,
    /// processes without a step.
    Stuck {
        /// Not moved for this long (`10m`, `2h`, `P1D`).
        #[arg(long, default_value = "10m")]
        after: String,
        #[command(flatten)]
        server: client::ServerArg,
    },
    /// The history of ended processes.
    History {
        #[command(subcommand)]
        command: HistoryCmd,
    },
    /// Run the benchmark workloads and print instances per second, latency and peak memory.
    Bench(bench::BenchArgs),
    /// List process instances, newest first.
    Ps {
        /// Only this status (running, success, failed, canceled, …).
        #[arg(long)]
        status: Option<String>,
        /// Only instances of this model key.
        #[arg(long)]
        key: Option<String>,
        /// How many to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        server: client::ServerArg,
    },
}

/// The bounds every instance runs within (see the README's "Limits").
#[derive(clap::Args)]
struct LimitArgs {
    /// The most items one multi-instance activity may run.
    #[arg(long, env = "FLOWSTONE_MAX_ITEMS", default_value_t = Limits::default().max_items)]
    max_items: u32,
    /// How many steps one command may take before its instance is failed as looping.
    #[arg(long, env = "FLOWSTONE_MAX_STEPS", default_value_t = Limits::default().max_steps)]
    max_steps: u32,
    /// The largest value, as JSON bytes, one variable may hold.
    #[arg(long, env = "FLOWSTONE_MAX_VARIABLE_BYTES", default_value_t = Limits::default().max_variable_bytes)]
    max_variable_bytes: usize,
    /// The most JSON bytes all variables of one instance may hold.
    #[arg(long, env = "FLOWSTONE_MAX_INSTANCE_BYTES", default_value_t = Limits::default().max_instance_bytes)]
    max_instance_bytes: usize,
    /// The most JSON bytes of stone parameters one command may write.
    #[arg(long, env = "FLOWSTONE_MAX_COMMAND_BYTES", default_value_t = Limits::default().max_command_bytes)]
    max_command_bytes: usize,
    /// Milliseconds one JavaScript script task may run before it is stopped (and its instance failed).
    #[arg(long, env = "FLOWSTONE_SCRIPT_MILLIS", default_value_t = u64::try_from(Limits::default().script.time.as_millis()).unwrap_or(u64::MAX))]
    script_millis: u64,
    /// The most heap, in bytes, one JavaScript script task may allocate.
    #[arg(long, env = "FLOWSTONE_SCRIPT_MEMORY", default_value_t = Limits::default().script.memory)]
    script_memory: usize,
    /// HTTP connections open at once; more wait until one closes.
    #[arg(long, env = "FLOWSTONE_MAX_CONNECTIONS", default_value_t = HttpLimits::default().max_connections)]
    max_connections: usize,
    /// Seconds a client may take to send a request's headers (and an idle connection stays open).
    #[arg(long, env = "FLOWSTONE_HEADER_TIMEOUT", default_value_t = HttpLimits::default().header_timeout.as_secs_f64())]
    header_timeout: f64,
    /// Seconds a client may take to send a request's body.
    #[arg(long, env = "FLOWSTONE_BODY_TIMEOUT", default_value_t = HttpLimits::default().body_timeout.as_secs_f64())]
    body_timeout: f64,
}

impl LimitArgs {
    fn http(&self) -> Result<HttpLimits, String> {
        Ok(HttpLimits {
            max_connections: self.max_connections,
            header_timeout: seconds("--header-timeout", self.header_timeout)?,
            body_timeout: seconds("--body-timeout", self.body_timeout)?,
        })
    }

    fn limits(&self) -> Limits {
        let mut script = Limits::default().script;
        script.time = std::time::Duration::from_millis(self.script_millis);
        script.memory = self.script_memory;
        Limits {
            max_items: self.max_items,
            max_steps: self.max_steps,
            max_variable_bytes: self.max_variable_bytes,
            max_instance_bytes: self.max_instance_bytes,
            max_command_bytes: self.max_command_bytes,
            script,
        }
    }
}

#[derive(Subcommand)]
enum AppCmd {
    /// Register an application and print its generated secret once.
    Add {
        /// Its `bk_app_code`.
        code: String,
        /// A business (`bk_biz_id`) it may reach; give it again for more; none: every business.
        #[arg(long)]
        business: Vec<String>,
        /// Directory of the embedded database.
        #[arg(long, env = "FLOWSTONE_DATA_DIR", default_value = "flowstone-data")]
        data_dir: PathBuf,
        /// Database URL (sqlite://PATH or postgres://…); overrides --data-dir.
        #[arg(long, env = "FLOWSTONE_DATABASE_URL")]
        database: Option<String>,
    },
}

#[derive(Subcommand)]
enum HistoryCmd {
    /// Delete ended processes with everything they own (task records, user tasks, the
    /// processes they called, their rollback, cancel and delete instances), in batches that
    /// running processes hardly notice.
    Prune {
        /// Only processes that ended longer ago than this (`30d`, `12h`, `P30D`; `0s`: all).
        #[arg(long)]
        older_than: String,
        /// Only processes of this model key.
        #[arg(long)]
        key: Option<String>,
        /// Only processes that ended so: success, failed or canceled.
        #[arg(long)]
        status: Option<String>,
        /// Only processes of models deployed for this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Count what would go; delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        server: client::ServerArg,
    },
}

/// An age such as `30d`, `12h` or `P30D` (days of 24 hours).
fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let refused = |e: &dyn std::fmt::Display| format!("`{text}` is not an age such as 30d, 12h or P30D: {e}");
    let span: jiff::Span = text.trim().parse().map_err(|e| refused(&e))?;
    let duration = span.to_duration(jiff::SpanRelativeTo::days_are_24_hours()).map_err(|e| refused(&e))?;
    std::time::Duration::try_from(duration).map_err(|e| refused(&e))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = match telemetry::init(cli.log_format, cli.otlp_endpoint.as_deref(), &cli.command) {
        Ok(telemetry) => telemetry,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ended = runtime.block_on(run(cli.command));
    drop(telemetry);
    match ended {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cmd: Cmd) -> Result<(), String> {
    match cmd {
        Cmd::Serve {
            listen,
            data_dir,
            database,
            no_examples,
            node_id,
            job_lease,
            stones,
            amqp,
            amqp_stones,
            admin_password,
            bk_apps,
            anonymous_user,
            anonymous_anywhere,
            history_ttl,
            stuck_after,
            limits,
        } => {
            let bk_apps = bk_apps.iter().map(|app| bk_app(app)).collect::<Result<Vec<_>, String>>()?;
            let lease = seconds("--job-lease", job_lease)?;
            let node = node_id.unwrap_or_else(|| format!("{}:{}", host_name(), listen.port()));
            let stones = flowstone_worker::select(&stones, &data_dir.join("machines"))?;
            let broker = match (amqp.amqp_url, amqp_stones.is_empty()) {
                (Some(url), false) => {
                    Some(flowstone_server::BrokerOptions { url, stones: amqp_stones, prefix: amqp.prefix })
                }
                (None, true) => None,
                (Some(_), true) => return Err("--amqp needs --amqp-stones: which stones' jobs go to RabbitMQ".into()),
                (None, false) => return Err("--amqp-stones needs --amqp URL".into()),
            };
            let runtime = flowstone_server::RuntimeOptions {
                node,
                lease,
                stones,
                broker,
                limits: limits.limits(),
                history_ttl,
                stuck_after: Some(stuck_after),
                ..flowstone_server::RuntimeOptions::default()
            };
            let config = flowstone_server::Config {
                listen,
                data_dir,
                database,
                load_examples: !no_examples,
                runtime,
                admin_password,
                bk_apps,
                http: limits.http()?,
                anonymous: anonymous_user
                    .map(|user| flowstone_server::Anonymous { user, anywhere: anonymous_anywhere }),
            };
            let shutdown = shutdown_signal();
            let mut server = flowstone_server::Server::start(&config).await.map_err(|e| e.to_string())?;
            tokio::select! {
                _ = shutdown => {
                    tracing::info!("shutting down");
                    server.stop().await;
                    Ok(())
                }
                result = server.wait() => result.map_err(|e| e.to_string()),
            }
        }
        Cmd::App { command: AppCmd::Add { code, business, data_dir, database } } => {
            let store =
                flowstone_server::open_store(database.as_deref(), &data_dir).await.map_err(|e| e.to_string())?;
            let businesses = (!business.is_empty()).then_some(business);
            let secret = flowstone_server::add_app(&*store, &code, businesses).await.map_err(|e| e.to_string())?;
            println!("bk_app_code: {code}\nbk_app_secret: {secret}\n(shown once: only its hash is stored)");
            Ok(())
        }
        Cmd::Deploy { file, server } => client::deploy(&server, &file).await,
        Cmd::Start { key, vars, name, server } => client::start(&server, &key, &vars, name).await,
        Cmd::Ps { status, key, limit, server } => client::ps(&server, status, key, limit).await,
        Cmd::Tasks { process, server } => client::tasks(&server, &process).await,
        Cmd::Cancel { process, server } => client::put(&server, &format!("/process/{process}/cancel"), None).await,
        Cmd::Delete { process, server } => client::put(&server, &format!("/process/{process}/delete"), None).await,
        Cmd::Complete { task, vars, server } => {
            let variables = client::parse_vars(&vars)?;
            client::put(&server, &format!("/task/{task}/complete"), Some(Value::Object(variables))).await
        }
        Cmd::Rerun { task, queue_type, params, server } => {
            let mut body = serde_json::json!({"parameters": client::parse_vars(&params)?});
            if let Some(queue_type) = queue_type {
                body["queueType"] = Value::String(queue_type);
            }
            client::put(&server, &format!("/task/{task}/reRun"), Some(body)).await
        }
        Cmd::Resume { task, server } => client::put(&server, &format!("/task/{task}/resume"), None).await,
        Cmd::History { command: HistoryCmd::Prune { older_than, key, status, tenant, dry_run, server } } => {
            let query = client::Prune { older_than, key, status, tenant, dry_run };
            client::prune(&server, &query).await
        }
        Cmd::Stuck { after, server } => client::stuck(&server, &after).await,
        Cmd::Vars { process, server } => client::vars(&server, &process).await,
        Cmd::Migrate { process, to_version, mappings, dry_run, server } => {
            client::migrate(&server, &process, to_version, &mappings, dry_run).await
        }
        Cmd::Watch { process, every, server } => client::watch(&server, &process, seconds("--every", every)?).await,
        Cmd::Bench(args) => bench::run(args).await,
        Cmd::Worker(args) => worker(args).await,
    }
}

/// RabbitMQ, for stone jobs.
#[derive(clap::Args)]
struct AmqpArgs {
    /// RabbitMQ URL, e.g. amqp://guest:guest@127.0.0.1:5672/%2f.
    #[arg(long = "amqp", env = "FLOWSTONE_AMQP_URL")]
    amqp_url: Option<String>,
    /// Put before every queue name.
    #[arg(long = "amqp-prefix", env = "FLOWSTONE_AMQP_PREFIX", default_value = "")]
    prefix: String,
}

#[derive(clap::Args)]
struct WorkerArgs {
    /// The built-in stones to run (comma-separated, or `all`).
    #[arg(long, env = "FLOWSTONE_STONES", default_value = "all")]
    stones: String,
    #[command(flatten)]
    server: client::ServerArg,
    /// This worker's id (default: HOST-PID).
    #[arg(long, env = "FLOWSTONE_WORKER_ID")]
    worker_id: Option<String>,
    /// Where `MachineStone` keeps its machines.
    #[arg(long, env = "FLOWSTONE_MACHINES_DIR", default_value = "flowstone-data/machines")]
    machines_dir: PathBuf,
    /// How many jobs run at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds a fetched job stays locked to this worker without a heartbeat.
    #[arg(long, default_value_t = 30.0)]
    lock_duration: f64,
    /// Seconds one fetch waits for a job.
    #[arg(long, default_value_t = 20.0)]
    wait: f64,
    /// Seconds jobs in hand may run on after SIGTERM before they are handed back.
    #[arg(long, default_value_t = 10.0)]
    grace: f64,
    /// Take jobs from RabbitMQ instead of the server's HTTP protocol.
    #[command(flatten)]
    amqp: AmqpArgs,
}

async fn worker(args: WorkerArgs) -> Result<(), String> {
    let stones = flowstone_worker::select(&args.stones, &args.machines_dir)?;
    if stones.is_empty() {
        return Err("--stones names no stone to run".into());
    }
    let options = flowstone_worker::runner::WorkerOptions {
        server: args.server.base().to_owned(),
        authorization: args.server.authorization(),
        worker_id: args.worker_id.unwrap_or_else(|| format!("{}-{}", host_name(), std::process::id())),
        concurrency: args.concurrency.max(1),
        lock: seconds("--lock-duration", args.lock_duration)?,
        wait: std::time::Duration::from_secs_f64(args.wait.clamp(0.0, 60.0)),
        grace: std::time::Duration::from_secs_f64(args.grace.max(0.0)),
    };
    if let Some(url) = args.amqp.amqp_url {
        return amqp_worker(url, args.amqp.prefix, args.concurrency, args.grace, stones).await;
    }
    let names: Vec<&str> = stones.iter().map(|s| s.name()).collect();
    eprintln!("flowstone worker {} running {} against {}", options.worker_id, names.join(", "), options.server);
    flowstone_worker::runner::Worker::new(options, stones).run(shutdown_signal()).await;
    Ok(())
}

#[cfg(feature = "amqp")]
async fn amqp_worker(
    url: String,
    prefix: String,
    concurrency: usize,
    grace: f64,
    stones: Vec<std::sync::Arc<dyn flowstone_worker::Stone>>,
) -> Result<(), String> {
    let options = flowstone_worker::amqp::AmqpOptions {
        url,
        prefix,
        concurrency: concurrency.clamp(1, usize::from(u16::MAX)) as u16,
        grace: std::time::Duration::from_secs_f64(grace.max(0.0)),
    };
    eprintln!("flowstone worker taking jobs from RabbitMQ at {}", options.url);
    flowstone_worker::amqp::run(options, stones, shutdown_signal()).await;
    Ok(())
}

#[cfg(not(feature = "amqp"))]
async fn amqp_worker(
    _: String,
    _: String,
    _: usize,
    _: f64,
    _: Vec<std::sync::Arc<dyn flowstone_worker::Stone>>,
) -> Result<(), String> {
    Err("this build has no RabbitMQ support; build with the `amqp` feature".into())
}

/// A duration given in seconds, at least 0.1.
/// `CODE:SECRET`, or `CODE:SECRET:BIZ;BIZ` for an application limited to those businesses.
fn bk_app(text: &str) -> Result<flowstone_server::BkApp, String> {
    let mut parts = text.splitn(3, ':');
    let (Some(code), Some(secret)) = (parts.next(), parts.next()) else {
        return Err(format!("--bk-app `{text}` must be CODE:SECRET or CODE:SECRET:BIZ;BIZ"));
    };
    let businesses =
        parts.next().map(|list| list.split(';').map(|b| b.trim().to_owned()).filter(|b| !b.is_empty()).collect());
    Ok(flowstone_server::BkApp { code: code.trim().to_owned(), secret: secret.to_owned(), businesses })
}

fn seconds(flag: &str, value: f64) -> Result<std::time::Duration, String> {
    if value.is_finite() && value >= 0.1 {
        Ok(std::time::Duration::from_secs_f64(value))
    } else {
        Err(format!("{flag} must be at least 0.1 seconds, not {value}"))
    }
}

/// The machine's name, for the default node id.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "flowstone".into())
}

/// Resolves at SIGTERM or Ctrl-C. SIGTERM is taken over when this is called, not when the
/// future is first polled: a SIGTERM while the server is still starting is then a clean stop
/// once it runs, not the end of the process.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
