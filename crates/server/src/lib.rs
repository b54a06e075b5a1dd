//! The Flowstone server: the runtime that drives the engine with a store, and the HTTP API.

mod access_log;
mod api;
mod auth;
mod console;
mod error;
mod examples;
mod forms;
mod listen;
mod metrics;
mod models;
mod roster;
pub mod runtime;
mod throughput;

pub use api::{MAX_BODY_BYTES, router};
pub use auth::{BkApp, add_app};
pub use examples::EXAMPLES;
pub use listen::HttpLimits;
pub use runtime::{BrokerOptions, EventIn, MAX_WAIT, Reached, Runtime, RuntimeError, RuntimeOptions, now_ms};

use flowstone_store::{PgStore, SqliteStore, Store, StoreError};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory of the embedded database when no URL is given.
    pub data_dir: PathBuf,
    /// A database URL (`sqlite://…`, `postgres://…`); overrides `data_dir`.
    pub database: Option<String>,
    /// Deploy the bundled example models when the store has no model yet.
    pub load_examples: bool,
    /// This server's part in a shared database.
    pub runtime: RuntimeOptions,
    /// The password of the user `admin` made at first start; generated and shown once when
    /// none is given.
    pub admin_password: Option<String>,
    /// Applications of the bk-sops API, registered (or given this secret and businesses) at start.
    pub bk_apps: Vec<BkApp>,
    /// The bounds of the HTTP server.
    pub http: HttpLimits,
    /// Who a request without credentials acts as; none (the default) refuses it with 401.
    pub anonymous: Option<Anonymous>,
}

/// Requests without credentials act as an existing user: for clients that cannot send any
/// (the seed platform's own, on a trusted network), by an operator's explicit choice.
#[derive(Debug, Clone)]
pub struct Anonymous {
    /// The user they act as, with that user's roles and tenant.
    pub user: String,
    /// From any address; else only from the loopback interface.
    pub anywhere: bool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    /// The database URL names a backend this build does not have.
    #[error("{0}")]
    Unsupported(String),
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The runtime failed to start.
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
    /// The user requests without credentials are to act as does not exist.
    #[error("requests without credentials cannot act as `{0}`: no such user")]
    NoAnonymousUser(String),
    /// The first user could not be made.
    #[error("cannot make the admin user: {0}")]
    Admin(String),
}

/// Opens the configured store: a database URL, or `flowstone.db` in the data directory.
///
/// # Errors
/// When the directory cannot be created, the URL is not supported, or the database cannot be
/// opened and migrated.
pub async fn open_store(database: Option<&str>, data_dir: &Path) -> Result<Arc<dyn Store>, StartError> {
    match database {
        Some(url) if url.starts_with("sqlite:") => Ok(Arc::new(SqliteStore::open_url(url).await?)),
        Some(url) if url.starts_with("postgres:") || url.starts_with("postgresql:") => {
            Ok(Arc::new(PgStore::open(url).await?))
        }
        Some(url) => {
            Err(StartError::Unsupported(format!("unsupported database URL `{url}`; use sqlite://PATH or postgres://…")))
        }
        None => {
            std::fs::create_dir_all(data_dir)
                .map_err(|source| StartError::DataDir { path: data_dir.to_owned(), source })?;
            Ok(Arc::new(SqliteStore::open(&data_dir.join("flowstone.db")).await?))
        }
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    runtime: Runtime,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    /// Stops the runtime when the server goes, stopped or not.
    _stopper: Stopper,
}

/// Stops a runtime when dropped: a server dropped without [`Server::stop`] (a test's, or one
/// whose start failed further on) must not leave its committer's threads, its timer service
/// and its database connections behind.
struct Stopper(Runtime);

impl Drop for Stopper {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

impl Server {
    /// Opens the store, starts the runtime, deploys the examples on first start, and listens.
    ///
    /// # Errors
    /// A [`StartError`] saying which part failed.
    pub async fn start(config: &Config) -> Result<Self, StartError> {
        let store = open_store(config.database.as_deref(), &config.data_dir).await?;
        if let Some(password) = auth::ensure_admin(&*store, config.admin_password.as_deref()).await? {
            // Shown once, on the console only (never logged): it is stored hashed.
            println!("Flowstone: created the user `admin` with the password {password}");
        }
        for app in &config.bk_apps {
            auth::register_app(&*store, app, true).await?;
        }
        let runtime = Runtime::start(store.clone(), config.runtime.clone()).await?;
        if config.load_examples
            && store.list_models(None, None, flowstone_store::Page { offset: 0, limit: 1 }).await?.1 == 0
        {
            for (file, source) in EXAMPLES {
                let models = runtime.deploy(source).await?;
                tracing::info!(file, key = %models[0].key, "deployed example model");
            }
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        if let Some(anonymous) = &config.anonymous {
            if store.user(&anonymous.user).await?.is_none() {
                return Err(StartError::NoAnonymousUser(anonymous.user.clone()));
            }
            let from = if anonymous.anywhere { "any address" } else { "the loopback interface only" };
            tracing::warn!(
                user = %anonymous.user,
                from,
                "AUTHENTICATION IS OFF for requests without credentials: they act as this user"
            );
        }
        let app = router(runtime.clone(), &config.http, config.anonymous.clone());
        let limits = config.http.clone();
        let task = tokio::spawn(async move {
            listen::serve(listener, app, &limits, async {
                let _ = stopped.await;
            })
            .await;
        });
        tracing::info!(%addr, "listening");
        Ok(Self { addr, runtime: runtime.clone(), shutdown, task, _stopper: Stopper(runtime) })
    }

    /// The runtime behind it (benchmarks start instances through it directly).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The address it listens on (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests, finishes those in flight, then stops the runtime.
    pub async fn stop(self) {
        // Workers waiting for jobs are answered now, so that the stop does not wait for them.
        self.runtime.board().close();
        let _ = self.shutdown.send(());
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "server task failed");
        }
        match self.runtime.stop_and_hand_back().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "handed running stone jobs back"),
            Err(e) => tracing::warn!(error = %e, "could not hand jobs back; they pass on when their leases end"),
        }
    }

    /// Runs until the server task ends (it ends on [`Server::stop`]).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        (&mut self.task).await.map_err(std::io::Error::other)
    }
}
