//! The embedded default: one SQLite file in WAL mode.

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite store. Writes come from the runtime's single committer, reads from a small pool.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// SQLite has one writer: writes queue here, in order, instead of meeting in SQLite's
    /// busy handler, which sleeps in steps of milliseconds. Behind it, the connection the
    /// commits run on (none for an in-memory database, the pool's one connection's own).
    /// SQLite drops a connection's whole page cache when another connection wrote since it
    /// last read: commits taking turns on the pool's connections read the pages they change
    /// from the file again, where one connection that writes them all keeps them in memory.
    /// It is held, not pooled: a pool tests each connection handed back with a round trip
    /// to its thread, which the next commit would wait for.
    writer: Arc<tokio::sync::Mutex<Option<SqliteConnection>>>,
    _checkpointer: Option<Arc<Checkpointer>>,
}

/// Copies the write-ahead log back into the database file in the background, on a
/// connection of its own, so that commits never stop to do it; stops with the store.
struct Checkpointer(tokio::task::JoinHandle<()>);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often the background checkpoint runs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// How many frames the write-ahead log may hold before a checkpoint makes it start over. A
/// passive checkpoint copies back only what no reader still sees; under steady reads some
/// reader always does, and the log would grow without end (gigabytes in minutes), every new
/// block of it zeroed by the file system on the commit path.
const RESTART_FRAMES: i64 = 8192;

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    ///
    /// # Errors
    /// When the file cannot be opened or the schema cannot be migrated.
    pub async fn open(path: &Path) -> crate::Result<Self> {
        let options = SqliteConnectOptions::new().filename(path).create_if_missing(true);
        Self::connect(options).await
    }

    /// Opens a `sqlite:` URL (`sqlite://flowstone.db`, `sqlite::memory:`).
    ///
    /// # Errors
    /// When the URL is malformed, or as [`SqliteStore::open`].
    pub async fn open_url(url: &str) -> crate::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?.create_if_missing(true);
        Self::connect(options).await
    }

    async fn connect(options: SqliteConnectOptions) -> crate::Result<Self> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the runtime answers; group commit pays for it.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Checkpoints run in the background (see Checkpointer), not inside commits.
            .pragma("wal_autocheckpoint", "0")
            .pragma("cache_size", "-65536")
            // A multi-row upsert inside a transaction keeps a statement journal to undo itself
            // alone; past 64 KiB SQLite spills it to a temporary file, which a commit group
            // did at every step (19 KB written per `w1_stones` instance at 256 in flight, and
            // a fifth of the server's CPU). In memory, it is never written.
            .pragma("temp_store", "memory");
        let in_memory = options.get_filename().to_string_lossy().contains(":memory:");
        let pool = SqlitePoolOptions::new()
            // An in-memory database exists once per connection: keep to one.
            .max_connections(if in_memory { 1 } else { 4 })
            // A connection is a thread of this process over a file, not a socket that can
            // drop: asking it whether it lives before each query was a round trip to that
            // thread per read.
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        let committing = if in_memory { None } else { Some(SqliteConnection::connect_with(&options).await?) };
        let writer = Arc::new(tokio::sync::Mutex::new(committing));
        let checkpointer = (!in_memory).then(|| {
            let (pool, writer) = (pool.clone(), writer.clone());
            Arc::new(Checkpointer(tokio::spawn(async move {
                let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
                loop {
                    tick.tick().await;
                    if let Err(e) = checkpoint(&pool, &writer).await {
                        tracing::warn!(error = %e, "background checkpoint failed");
                    }
                }
            })))
        });
        Ok(Self { pool, writer, _checkpointer: checkpointer })
    }

    /// The connection a commit runs on, with the writer's turn.
    async fn committing(&self) -> crate::Result<Committing<'_>> {
        match tokio::sync::MutexGuard::try_map(self.writer.lock().await, Option::as_mut) {
            Ok(held) => Ok(Committing::Held(held)),
            Err(turn) => Ok(Committing::Pooled { _turn: turn, connection: self.pool.acquire().await? }),
        }
    }

    /// Waits for the turn to write.
    async fn writing(&self) -> Option<tokio::sync::MutexGuard<'_, Option<SqliteConnection>>> {
        Some(self.writer.lock().await)
    }
}

/// The connection a commit runs on, with the writer's turn.
enum Committing<'a> {
    /// The store's own.
    Held(tokio::sync::MappedMutexGuard<'a, SqliteConnection>),
    /// The pool's one connection of an in-memory database.
    Pooled {
        _turn: tokio::sync::MutexGuard<'a, Option<SqliteConnection>>,
        connection: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    },
}

impl std::ops::Deref for Committing<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            Committing::Held(c) => c,
            Committing::Pooled { connection, .. } => connection,
        }
    }
}

impl std::ops::DerefMut for Committing<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            Committing::Held(c) => c,
            Committing::Pooled { connection, .. } => connection,
        }
    }
}

/// Frames the commits of one passive copy may add before the writer's turn is taken: what
/// is left then is copied while no commit can run.
const LEFT_FOR_RESTART: i64 = 1024;
/// Passive copies at most before the writer's turn is taken anyway: under commits that add
/// frames as fast as a copy takes them, the turn still comes.
const PASSIVE_ROUNDS: usize = 4;

/// Copies the log back without stopping anyone; once the log is long, copies again what
/// commits added meanwhile (a few rounds, each shorter) and then the rest in the writer's
/// turn, waiting for the readers of older snapshots to finish (queries of milliseconds), so
/// that the next commit writes the log from its start again. Taken at once after one copy,
/// the turn held commits back for the copy of all that came in during it: 70–80 ms of
/// every 500 ms under a stream of messages.
async fn checkpoint<T>(pool: &SqlitePool, writer: &tokio::sync::Mutex<T>) -> Result<(), sqlx::Error> {
    let passive = || async {
        let (_busy, frames, _copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(pool).await?;
        Ok::<_, sqlx::Error>(frames)
    };
    let mut frames = passive().await?;
    if frames > RESTART_FRAMES {
        for _ in 0..PASSIVE_ROUNDS {
            let now = passive().await?;
            let added = now - frames;
            frames = now;
            if added < LEFT_FOR_RESTART {
                break;
            }
        }
        let _writing = writer.lock().await;
        sqlx::query("PRAGMA wal_checkpoint(RESTART)").execute(pool).await?;
    }
    Ok(())
}

crate::sql::sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    begin = "BEGIN IMMEDIATE",
    lock = "",
    shared = false,
    notify = "",
    soft = "PRAGMA synchronous = NORMAL",
    firm = "PRAGMA synchronous = FULL",
    numbered = false,
    scripts = true,
    text = std::sync::Arc<str>,
    arrays = None,
    {
        async fn job_signal(&self) -> Result<Option<std::sync::Arc<tokio::sync::Notify>>> {
            // One server per SQLite file: nobody else hands jobs back.
            Ok(None)
        }
    }
);

crate::user_tasks_sql::user_task_store!(SqliteStore, sqlx::Sqlite, variables = crate::variable_filter::sqlite::push);
crate::identity::identity_store!(SqliteStore, sqlx::Sqlite);
crate::bk_sops::bk_sops_store!(SqliteStore, sqlx::Sqlite);
crate::bk_plans::bk_plans_store!(SqliteStore, sqlx::Sqlite);
crate::timers::timer_store!(SqliteStore, sqlx::Sqlite, lock = "");
crate::subscriptions::subscription_store!(SqliteStore, sqlx::Sqlite);
crate::retention::retention_store!(SqliteStore, sqlx::Sqlite);
crate::stuck::stuck_store!(SqliteStore, sqlx::Sqlite);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_connection_keeps_statement_journals_in_memory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap_or_else(|e| panic!("{e}"));
        // Hold every connection of the pool at once, so each is asked.
        let mut held = Vec::new();
        for _ in 0..store.pool.options().get_max_connections() {
            let mut conn = store.pool.acquire().await.unwrap_or_else(|e| panic!("{e}"));
            let (mode,): (i64,) =
                sqlx::query_as("PRAGMA temp_store").fetch_one(&mut *conn).await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(mode, 2, "temp_store is MEMORY (2)");
            held.push(conn);
        }
    }

    #[tokio::test]
    async fn a_log_a_reader_held_back_starts_over_after_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap_or_else(|e| panic!("{e}"));
        // The checkpoints of this test are its own.
        store._checkpointer = None;
        let run = |sql: &'static str| {
            let pool = store.pool.clone();
            async move { sqlx::query(sql).execute(&pool).await.unwrap_or_else(|e| panic!("{sql}: {e}")) }
        };
        run("CREATE TABLE filler (b BLOB)").await;
        // A reader of the snapshot before the log grows: no passive copy gets past it.
        let mut reader = store.pool.begin().await.unwrap_or_else(|e| panic!("{e}"));
        sqlx::query("SELECT COUNT(*) FROM filler").execute(&mut *reader).await.unwrap_or_else(|e| panic!("{e}"));
        // A page of its own for each row: the log passes the restart length in one commit.
        run("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 9000) \
             INSERT INTO filler SELECT randomblob(3000) FROM n")
        .await;
        let done = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            reader.commit().await.unwrap_or_else(|e| panic!("{e}"));
        });
        checkpoint(&store.pool, &store.writer).await.unwrap_or_else(|e| panic!("{e}"));
        done.await.unwrap_or_else(|e| panic!("{e}"));
        run("INSERT INTO filler VALUES (x'00')").await;
        let (_, after, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&store.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(after < RESTART_FRAMES, "the commit after the checkpoint wrote the log from its start: {after} frames");
    }

    #[tokio::test]
    async fn statuses_but_completed_are_found_through_the_status_index_and_completed_by_the_ids() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap_or_else(|e| panic!("{e}"));
        let plan = async |status: &str| {
            let mut q =
                sqlx::QueryBuilder::<sqlx::Sqlite>::new("EXPLAIN QUERY PLAN SELECT p.id FROM instances p WHERE 1 = 1");
            crate::sql::push_status(&mut q, "p", status);
            q.push(" ORDER BY p.id DESC LIMIT 50");
            let rows: Vec<(i64, i64, i64, String)> =
                q.build_query_as().fetch_all(&store.pool).await.unwrap_or_else(|e| panic!("{e}"));
            rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
        };
        for status in ["running", "failed", "debug"] {
            let detail = plan(status).await;
            assert!(detail.contains("INDEX instances_status"), "{status}: {detail}");
        }
        let detail = plan("completed").await;
        assert!(detail.contains("sqlite_autoindex_instances_1") && !detail.contains("TEMP B-TREE"), "{detail}");
    }

    #[tokio::test]
    async fn a_fetch_reads_free_jobs_and_ended_leases_through_their_own_indexes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap_or_else(|e| panic!("{e}"));
        let acquire = crate::Acquire {
            stones: &["a", "b"],
            owner: "w",
            now: 1,
            until: 2,
            include_own: false,
            limit: 64,
            action: Some("start"),
        };
        let statement = crate::sql::acquire_statement::<sqlx::Sqlite>(&acquire, "");
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", statement.sql().as_str())))
                .fetch_all(&store.pool)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        let detail = rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ");
        // Held jobs are reached only by the end of their lease, never stepped over one by one.
        assert!(detail.contains("SEARCH jobs USING INDEX jobs_free (stone=?)"), "{detail}");
        assert!(detail.contains("SEARCH jobs USING INDEX jobs_held (locked_until<?)"), "{detail}");
        assert!(!detail.contains("SCAN jobs"), "{detail}");
    }

    /// A deployment, its model and a running instance of it, as the first schema stored them.
    const INSTANCE_OF_OLD: &str = "INSERT INTO deployments (id, deployed_at) VALUES ('d1', 1); \
        INSERT INTO models (id, deployment_id, key, version, source, created_at) VALUES ('m1', 'd1', 'k', 1, '', 1); \
        INSERT INTO instances (id, model_id, model_key, name, status, variables, start_time, state) \
        VALUES ('i1', 'm1', 'k', 'n', 'running', '{}', 1, '{}')";

    /// Makes a database at `path` with the migrations before `version`, then runs `statements`.
    async fn database_before(path: &Path, version: i64, statements: &[&str]) {
        let earlier = sqlx::migrate::Migrator {
            migrations: MIGRATOR.migrations.iter().filter(|m| m.version < version).cloned().collect(),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        let options = SqliteConnectOptions::new().filename(path).create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap_or_else(|e| panic!("{e}"));
        earlier.run(&pool).await.unwrap_or_else(|e| panic!("{e}"));
        for statement in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*statement)).execute(&pool).await.unwrap_or_else(|e| panic!("{e}"));
        }
        pool.close().await;
    }

    #[tokio::test]
    async fn instances_stored_before_versions_were_counted_are_lifted_to_version_one() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("old.db");
        database_before(&path, 20261207000032, &[INSTANCE_OF_OLD]).await;
        let store = SqliteStore::open(&path).await.unwrap_or_else(|e| panic!("{e}"));
        let versions = crate::Store::instance_versions(&store, &["i1"]).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(versions, [("i1".to_owned(), 1)], "its next write, at 2, is not taken for a first");
    }

    #[tokio::test]
    async fn waits_written_before_they_were_kept_on_their_records_survive_the_migrations() {
        use crate::SubscriptionStore;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("old.db");
        // The schema as it was before waits were clustered on their record id, then kept on their records.
        database_before(
            &path,
            20261206000022,
            &[
                INSTANCE_OF_OLD,
                "INSERT INTO tasks (id, task_id, instance_id, element, name, kind, create_time, status) \
                 VALUES ('r1', 'r1', 'i1', 'wait', 'Wait', 'intermediateCatchEvent', 7, 'active')",
                "INSERT INTO event_subscriptions (record_id, instance_id, model_id, starts, tenant_id, element, kind, \
                 name, correlation_key, created_at) VALUES ('r1', 'i1', 'm1', NULL, NULL, 'wait', 'message', 'pay', 'k', 7), \
                 ('start:k', '', 'm1', 'k', NULL, 's', 'message', 'order', NULL, 8)",
            ],
        )
        .await;
        let store = SqliteStore::open(&path).await.unwrap_or_else(|e| panic!("{e}"));
        let wait = store.subscription("r1").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            wait.map(|w| (w.instance_id, w.correlation_key, w.created_at)),
            Some(("i1".into(), Some("k".into()), 7))
        );
        let start = store.subscription("start:k").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(start.and_then(|s| s.starts), Some("k".into()));
        let (key,): (Option<String>,) = sqlx::query_as("SELECT wait_key FROM tasks WHERE id = 'r1'")
            .fetch_one(&store.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key.as_deref(), Some("k"), "the wait is kept on its record");
    }
}
