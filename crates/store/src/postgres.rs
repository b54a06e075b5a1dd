//! PostgreSQL: the store for several servers sharing one database.

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host/db`) and migrates the schema.
    ///
    /// # Errors
    /// When the URL is malformed, the server cannot be reached, or migration fails.
    pub async fn open(url: &str) -> crate::Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            // While the database is unreachable, requests fail fast (503) instead of queueing.
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// A connection of the pool, which commits share with everything else.
    async fn committing(&self) -> crate::Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    /// PostgreSQL takes concurrent writers: no turn to wait for.
    #[allow(clippy::unused_async)]
    async fn writing(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        None
    }

    /// Creates a new empty database beside the one `url` names, and returns its URL: every
    /// test run and benchmark gets a database of its own.
    ///
    /// Nothing drops these when a test or benchmark ends (a test cannot run async code as it
    /// unwinds), so their names carry their creation time and each call first drops those
    /// made more than [`LEFT_OVER`] ago that nobody is connected to: repeated runs on one
    /// machine cannot fill its disk with databases nobody reads.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses to create the database.
    pub async fn create_database(url: &str, prefix: &str) -> crate::Result<String> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new().max_connections(1).connect_with(options).await?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        drop_left_over(&pool, now).await;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("{prefix}{MADE_AT}{now}_{}", &id[..16]);
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&pool).await?;
        pool.close().await;
        let base = url.split('?').next().unwrap_or(url);
        let root = base.rsplit_once('/').map_or(base, |(root, _)| root);
        Ok(format!("{root}/{name}"))
    }

    /// Refreshes the planner's statistics of every table, as autovacuum does after enough
    /// rows changed: a bulk load on a server whose autovacuum is off would otherwise be
    /// planned as if its tables were empty.
    ///
    /// # Errors
    /// When the database cannot be reached.
    pub async fn analyze(&self) -> crate::Result<()> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    /// For tests: a new database on the PostgreSQL at `FLOWSTONE_TEST_POSTGRES` (default: the
    /// local server). Where none answers it says so loudly and gives `None`, so a user's
    /// machine without PostgreSQL skips those tests; in CI (`CI=true`) that absence panics.
    pub async fn test_database(prefix: &str) -> Option<String> {
        let base = std::env::var("FLOWSTONE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        match Self::create_database(&base, prefix).await {
            Ok(url) => Some(url),
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("PostgreSQL is required in CI: {e}"),
            Err(e) => {
                eprintln!("SKIPPED: no PostgreSQL at {base} ({e}); tests on PostgreSQL did not run");
                None
            }
        }
    }
}

/// How long a database made by [`PgStore::create_database`] is kept before a later call drops it.
const LEFT_OVER: u64 = 3600;

/// What separates a made database's prefix from the second it was made at.
const MADE_AT: &str = "_t";

/// The second a database made by [`PgStore::create_database`] was made at, read from its name.
fn made_at(name: &str) -> Option<u64> {
    let (_, rest) = name.rsplit_once(MADE_AT)?;
    let (second, id) = rest.split_once('_')?;
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(())?;
    second.parse().ok()
}

/// Drops the made databases older than [`LEFT_OVER`]; one still in use, or dropped meanwhile
/// by a concurrent call, is left (its error ignored): this is tidying, never a failure.
async fn drop_left_over(pool: &PgPool, now: u64) {
    let Ok(names) = sqlx::query_scalar::<_, String>("SELECT datname FROM pg_database").fetch_all(pool).await else {
        return;
    };
    for name in names {
        if made_at(&name).is_some_and(|at| now.saturating_sub(at) > LEFT_OVER) {
            let drop = format!("DROP DATABASE IF EXISTS \"{name}\"");
            if sqlx::query(sqlx::AssertSqlSafe(drop)).execute(pool).await.is_ok() {
                tracing::info!(database = %name, "dropped a database left over by a test or benchmark");
            }
        }
    }
}

/// The channel on which servers announce jobs handed back.
const JOBS_CHANNEL: &str = "flowstone_jobs";

/// Binds each column of a multi-row write as one array (`text[]` or `int8[]`).
fn bind_arrays(
    args: &mut sqlx::postgres::PgArguments,
    columns: Vec<crate::sql::ArrayColumn>,
) -> std::result::Result<(), sqlx::error::BoxDynError> {
    use sqlx::Arguments;
    for column in columns {
        match column {
            crate::sql::ArrayColumn::Text(values) => args.add(values)?,
            crate::sql::ArrayColumn::Int(values) => args.add(values)?,
        }
    }
    Ok(())
}

crate::sql::sql_store!(
    PgStore,
    sqlx::Postgres,
    begin = "BEGIN",
    lock = "FOR UPDATE SKIP LOCKED",
    shared = true,
    notify = "SELECT pg_notify('flowstone_jobs', '')",
    soft = "SET synchronous_commit = off",
    firm = "SET synchronous_commit = on",
    numbered = true,
    scripts = false,
    text = &str,
    arrays = Some(bind_arrays),
    {
        fn commits_side_by_side(&self) -> bool {
            true
        }

        async fn job_signal(&self) -> Result<Option<std::sync::Arc<tokio::sync::Notify>>> {
            let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
            listener.listen(JOBS_CHANNEL).await?;
            let signal = std::sync::Arc::new(tokio::sync::Notify::new());
            let notify = signal.clone();
            tokio::spawn(async move {
                loop {
                    // The listener reconnects by itself after a lost connection; a failure here
                    // is one missed wake-up, which the lease sweep covers.
                    match listener.recv().await {
                        Ok(_) => notify.notify_one(),
                        Err(e) => {
                            tracing::warn!(error = %e, "job notifications interrupted");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                    if std::sync::Arc::strong_count(&notify) == 1 {
                        return;
                    }
                }
            });
            Ok(Some(signal))
        }
    }
);

crate::user_tasks_sql::user_task_store!(PgStore, sqlx::Postgres, variables = crate::variable_filter::postgres::push);
crate::identity::identity_store!(PgStore, sqlx::Postgres);
crate::bk_sops::bk_sops_store!(PgStore, sqlx::Postgres);
crate::bk_plans::bk_plans_store!(PgStore, sqlx::Postgres);
crate::timers::timer_store!(PgStore, sqlx::Postgres, lock = "FOR UPDATE SKIP LOCKED");
crate::subscriptions::subscription_store!(PgStore, sqlx::Postgres);
crate::retention::retention_store!(PgStore, sqlx::Postgres);
crate::stuck::stuck_store!(PgStore, sqlx::Postgres);

#[cfg(test)]
mod tests {
    use super::made_at;

    #[test]
    fn a_made_database_name_tells_when_it_was_made_and_no_other_name_does() {
        assert_eq!(made_at("flowstone_http_t1764960000_0123456789abcdef"), Some(1_764_960_000));
        assert_eq!(made_at("flowstone_http_0123456789abcdef0123456789abcdef"), None);
        assert_eq!(made_at("my_t1764960000_data"), None);
        assert_eq!(made_at("postgres"), None);
    }
}
