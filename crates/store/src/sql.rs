//! The one SQL implementation of [`Store`](crate::Store), instantiated for each backend.
//!
//! SQLite and PostgreSQL accept the same statements here (`$n` placeholders, `CAST`,
//! `ON CONFLICT … DO UPDATE`), so the implementation is written once as a macro over the
//! store type and its sqlx database; each backend module adds only how it connects.

use crate::StoreError;

pub(crate) fn json<T: serde::de::DeserializeOwned>(text: Option<String>) -> Result<Option<T>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(e.to_string()))).transpose()
}

/// Models with the tenant of their deployment.
pub(crate) const MODELS: &str = "SELECT m.*, d.tenant_id FROM models m JOIN deployments d ON d.id = m.deployment_id";

pub(crate) const INSERT_INSTANCES: &str = "INSERT INTO instances
    (id, model_id, model_key, name, status, variables, start_time, end_time, outputs, final_vars, failure, end_element, state, version,
     kind, parent_id, rollback_id, cancel_id, delete_id, business_key, start_user, end_pass, end_pass_name, end_pass_kind) ";
/// Applies only when the stored version is the one the write was based on; the affected-row
/// count tells whether every row applied.
pub(crate) const ON_INSTANCE_CONFLICT: &str =
    " ON CONFLICT (id) DO UPDATE SET model_id = EXCLUDED.model_id, status = EXCLUDED.status,
    end_time = EXCLUDED.end_time, outputs = EXCLUDED.outputs, final_vars = EXCLUDED.final_vars,
    failure = EXCLUDED.failure, end_element = EXCLUDED.end_element, state = EXCLUDED.state, version = EXCLUDED.version,
    rollback_id = EXCLUDED.rollback_id, cancel_id = EXCLUDED.cancel_id, delete_id = EXCLUDED.delete_id,
    end_pass = COALESCE(EXCLUDED.end_pass, instances.end_pass),
    end_pass_name = COALESCE(EXCLUDED.end_pass_name, instances.end_pass_name),
    end_pass_kind = COALESCE(EXCLUDED.end_pass_kind, instances.end_pass_kind)
    WHERE instances.version = EXCLUDED.version - 1";
pub(crate) const INSERT_TASKS: &str = "INSERT INTO tasks
    (id, task_id, instance_id, element, name, kind, namespace, stone, create_time, end_time, status, reason, params, outputs, progress) ";
/// A record written again is the record as it stands, whole: a run again (`reRun`) changes
/// its params and start, a move to another version its element, and an instance keeps its
/// open records by id alone, to be filled from here.
macro_rules! ON_TASK_CONFLICT {
    () => {
        " ON CONFLICT (id) DO UPDATE SET end_time = EXCLUDED.end_time,
    status = EXCLUDED.status, reason = EXCLUDED.reason, outputs = EXCLUDED.outputs, progress = EXCLUDED.progress,
    params = EXCLUDED.params, create_time = EXCLUDED.create_time, task_id = EXCLUDED.task_id,
    element = EXCLUDED.element, name = EXCLUDED.name, kind = EXCLUDED.kind, namespace = EXCLUDED.namespace,
    stone = EXCLUDED.stone"
    };
}
pub(crate) use ON_TASK_CONFLICT;

/// The wait a record kept, gone.
macro_rules! CLEARED_WAIT {
    () => {
        "wait_kind = NULL, wait_name = NULL, wait_key = NULL, wait_since = NULL"
    };
}
pub(crate) use CLEARED_WAIT;
/// Every activity: task records (with the user task each opened) and passes, the one that
/// completed an instance on the instance's row (see [`kept_ends`]).
pub(crate) const ACTIVITIES: &str =
    "SELECT t.id, t.instance_id, t.element, t.name, t.kind, t.create_time AS start_time,
    t.end_time, u.id AS user_task_id, u.assignee FROM tasks t LEFT JOIN user_tasks u ON u.id = t.id
    UNION ALL SELECT p.id, p.instance_id, p.element, p.name, p.kind, p.time, p.time, NULL, NULL FROM passages p
    UNION ALL SELECT e.end_pass, e.id, e.end_element, e.end_pass_name, e.end_pass_kind, e.end_time, e.end_time, NULL, NULL
    FROM instances e WHERE e.end_pass IS NOT NULL";

/// An instance row of a batch, with the pass that completed it when the batch holds it.
pub(crate) type InstanceWrite<'a> =
    (&'a crate::InstanceRow, &'a flowstone_engine::Stored, Option<&'a flowstone_engine::Passage>);

/// Splits off the passes that completed an instance of the batch, kept on its row instead of
/// in `passages`: a completed instance's last pass at its end element and end time. The
/// instance's row is written in the same commit anyway, where the pass's own row went to a
/// page the instance's first pass had filled. Completed is final, so what its row keeps
/// stays (a later write of the row leaves the columns as they are).
pub(crate) fn kept_ends<'a>(
    instances: &[&'a (crate::InstanceRow, flowstone_engine::Stored)],
    passages: &'a [crate::PassageRow],
) -> (Vec<InstanceWrite<'a>>, Vec<&'a crate::PassageRow>) {
    let mut ends: std::collections::HashMap<&str, (usize, Option<usize>), foldhash::fast::RandomState> =
        std::collections::HashMap::default();
    for (at, (row, _)) in instances.iter().enumerate() {
        if row.status == "completed" && row.end_element.is_some() {
            ends.insert(row.id.as_str(), (at, None));
        }
    }
    if !ends.is_empty() {
        for (n, p) in passages.iter().enumerate().rev() {
            if let Some((at, kept @ None)) = ends.get_mut(p.instance_id.as_str()) {
                let row = &instances[*at].0;
                if row.end_element.as_deref() == Some(p.passage.element.as_str())
                    && row.end_time == Some(p.passage.time)
                {
                    *kept = Some(n);
                }
            }
        }
    }
    let mut kept = vec![None; instances.len()];
    let mut taken = vec![false; passages.len()];
    for (at, n) in ends.into_values() {
        if let Some(n) = n {
            kept[at] = Some(&passages[n].passage);
            taken[n] = true;
        }
    }
    let rows = instances.iter().zip(kept).map(|((row, state), end)| (row, state, end)).collect();
    let rest = passages.iter().zip(taken).filter(|(_, taken)| !taken).map(|(p, _)| p).collect();
    (rows, rest)
}

/// Puts the rows of instances never written before first and answers how many there are: a
/// row's first write is at version 1, and every write after it above (stored rows from before
/// versions were counted are lifted from 0 to 1 by migration `20261207000032`). They go as a
/// plain `INSERT`, as new records do (see [`WriteBatch::new_records`](crate::WriteBatch::new_records)
/// for why); should one be stored all the same, the insert fails and so does the commit.
pub(crate) fn new_first(writes: &mut [InstanceWrite<'_>]) -> usize {
    writes.sort_by_key(|(row, _, _)| row.version != 1);
    writes.iter().take_while(|(row, _, _)| row.version == 1).count()
}

/// Every execution of running process instances: each instance's own, and one per open task record.
pub(crate) const EXECUTIONS: &str = "SELECT i.id, NULL AS parent_id, NULL AS activity, i.id AS instance_id, i.model_id,
    i.model_key FROM instances i WHERE i.end_time IS NULL AND i.kind = 'process'
    UNION ALL SELECT t.id, t.instance_id, t.element, t.instance_id, i.model_id, i.model_key
    FROM tasks t JOIN instances i ON i.id = t.instance_id WHERE t.end_time IS NULL AND i.end_time IS NULL AND i.kind = 'process'";
pub(crate) const INSERT_JOBS: &str =
    "INSERT INTO jobs (record_id, instance_id, stone, params, created_at, owner, locked_until, action, outputs) ";
/// A task run again (`reRun`) queues a job under the same record id.
pub(crate) const ON_JOB_CONFLICT: &str = " ON CONFLICT (record_id) DO UPDATE SET params = EXCLUDED.params,
    created_at = EXCLUDED.created_at, owner = EXCLUDED.owner, locked_until = EXCLUDED.locked_until,
    action = EXCLUDED.action, outputs = EXCLUDED.outputs, retries = NULL";

/// Rows per multi-row statement, largest first. A batch is cut greedily into these few
/// sizes so that each table has a handful of distinct statements, which stay prepared in the
/// connection's cache instead of being parsed again for every batch. 256 rows of the widest
/// table (20 columns) bind 5,120 values: few enough that SQLite keeps them all in its
/// per-connection lookaside memory (see `.cargo/config.toml`) instead of calling `malloc` and
/// `free` for each, and well under both backends' limits on bound parameters.
const CHUNK_SIZES: [usize; 5] = [256, 64, 16, 4, 1];

/// `rows` cut into chunks of [`CHUNK_SIZES`].
pub(crate) fn chunks<T>(mut rows: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    while !rows.is_empty() {
        let size = CHUNK_SIZES.into_iter().find(|s| *s <= rows.len()).unwrap_or(1);
        let (head, tail) = rows.split_at(size);
        out.push(head);
        rows = tail;
    }
    out
}

/// The text of one multi-row `INSERT` for each of [`CHUNK_SIZES`], made the first time it is
/// asked for: a commit then only binds its values (building the text of a statement of 1,024
/// rows took as long as binding them).
pub(crate) struct Prebuilt([std::sync::OnceLock<String>; CHUNK_SIZES.len()]);

impl Prebuilt {
    pub(crate) const fn new() -> Self {
        Self([const { std::sync::OnceLock::new() }; CHUNK_SIZES.len()])
    }

    /// `head VALUES (…), … tail` with `rows` rows of `columns` placeholders each: `?` where the
    /// backend counts them itself, `$1`, `$2`, … where it wants them numbered.
    pub(crate) fn get(
        &'static self,
        head: &str,
        rows: usize,
        columns: usize,
        numbered: bool,
        tail: &str,
    ) -> sqlx::SqlStr {
        use sqlx::SqlSafeStr;
        let build = || {
            let mut sql = String::with_capacity(head.len() + tail.len() + rows * columns * 7 + 8);
            sql.push_str(head);
            sql.push_str(" VALUES ");
            for row in 0..rows {
                sql.push_str(if row == 0 { "(" } else { ", (" });
                for column in 0..columns {
                    if column > 0 {
                        sql.push_str(", ");
                    }
                    if numbered {
                        sql.push('$');
                        sql.push_str(&(row * columns + column + 1).to_string());
                    } else {
                        sql.push('?');
                    }
                }
                sql.push(')');
            }
            sql.push_str(tail);
            sql
        };
        match CHUNK_SIZES.iter().position(|s| *s == rows) {
            Some(i) => self.0[i].get_or_init(build).as_str().into_sql_str(),
            None => sqlx::AssertSqlSafe(build()).into_sql_str(),
        }
    }

    /// A statement whose text does not depend on its rows (one array per column), made once.
    /// It takes the slot of the largest chunk, which a backend that binds arrays never asks
    /// [`Prebuilt::get`] for.
    pub(crate) fn once(&'static self, build: impl FnOnce() -> String) -> sqlx::SqlStr {
        use sqlx::SqlSafeStr;
        self.0[0].get_or_init(build).as_str().into_sql_str()
    }
}

/// Rows one statement writes at most where each column goes as one array: enough for a group
/// of a few thousand requests in one round trip, few enough that a statement stays a few MB.
pub(crate) const ARRAY_ROWS: usize = 4096;

/// Bytes of text one array statement carries before the rows after it go in the next one.
/// PostgreSQL refuses a message or an array past 1 GB: a group of 64 instances at the 16 MB
/// state limit would pass it, and the whole group, other users' requests with it, would fail
/// to commit. A statement carries at most this plus one row (a row is bounded by the
/// instance and command limits, well under 1 GB).
pub(crate) const ARRAY_BYTES: usize = 64 * 1024 * 1024;

/// The values of a multi-row write by column, for a backend that takes each column as one
/// array (PostgreSQL's `UNNEST`). A `VALUES` list of 256 rows is thousands of parameters
/// that the server plans anew and evaluates one by one at every statement, and a group of
/// 2,048 instances needed a statement (a round trip) for each 256 rows of each table; with
/// arrays the text is one per table, whatever the number of rows.
pub(crate) struct Arrays {
    columns: Vec<ArrayColumn>,
    width: usize,
    rows: usize,
    at: usize,
    mixed: Option<usize>,
    /// Bytes of text a statement carries before the next row starts another ([`ARRAY_BYTES`]).
    bound: usize,
    /// Bytes of text bound since the last cut.
    bytes: usize,
    /// The rows that start another statement.
    cuts: Vec<usize>,
}

/// One column's values.
pub(crate) enum ArrayColumn {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
}

impl ArrayColumn {
    /// The values from row `at` on, left out of this one.
    fn split_off(&mut self, at: usize) -> ArrayColumn {
        match self {
            ArrayColumn::Text(values) => ArrayColumn::Text(values.split_off(at)),
            ArrayColumn::Int(values) => ArrayColumn::Int(values.split_off(at)),
        }
    }
}

impl Arrays {
    pub(crate) fn new(rows: usize, width: usize) -> Self {
        Self::bounded(rows, width, ARRAY_BYTES)
    }

    /// Values cut into statements of about `bound` bytes of text each.
    fn bounded(rows: usize, width: usize, bound: usize) -> Self {
        Self { columns: Vec::with_capacity(width), width, rows, at: 0, mixed: None, bound, bytes: 0, cuts: Vec::new() }
    }

    pub(crate) fn text(&mut self, value: Option<&str>) {
        let rows = self.rows;
        match self.column(|| ArrayColumn::Text(Vec::with_capacity(rows))) {
            ArrayColumn::Text(values) => values.push(value.map(str::to_owned)),
            ArrayColumn::Int(_) => self.mixed = self.mixed.or(Some(self.at % self.width)),
        }
        self.bytes += value.map_or(0, str::len);
        self.advance();
    }

    pub(crate) fn int(&mut self, value: Option<i64>) {
        let rows = self.rows;
        match self.column(|| ArrayColumn::Int(Vec::with_capacity(rows))) {
            ArrayColumn::Int(values) => values.push(value),
            ArrayColumn::Text(_) => self.mixed = self.mixed.or(Some(self.at % self.width)),
        }
        self.advance();
    }

    /// Past one value; a row that ends past the byte bound ends its statement.
    fn advance(&mut self) {
        self.at += 1;
        if self.at.is_multiple_of(self.width) && self.bytes >= self.bound {
            self.cuts.push(self.at / self.width);
            self.bytes = 0;
        }
    }

    /// The column the next value belongs to, made by the first row.
    fn column(&mut self, make: impl FnOnce() -> ArrayColumn) -> &mut ArrayColumn {
        let index = self.at % self.width;
        if index == self.columns.len() {
            self.columns.push(make());
        }
        &mut self.columns[index]
    }

    /// `head SELECT * FROM UNNEST($1::text[], $2::int8[], …) AS r(column1, column2, …) tail`,
    /// each column cast to the array type its values were bound as and named as a `VALUES`
    /// list names its columns, so that a statement reads its rows the same from either.
    pub(crate) fn sql(&self, head: &str, tail: &str) -> String {
        let casts: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!("${}::{}", i + 1, if matches!(c, ArrayColumn::Text(_)) { "text[]" } else { "int8[]" })
            })
            .collect();
        let names: Vec<String> = (1..=self.columns.len()).map(|i| format!("column{i}")).collect();
        format!("{head} SELECT * FROM UNNEST({}) AS r({}){tail}", casts.join(", "), names.join(", "))
    }

    /// The columns to bind, in order, of each statement the rows go in (one unless their text
    /// passed the byte bound); refused when some column was bound as both text and a number,
    /// or some row was left short.
    pub(crate) fn into_statements(self) -> Result<Vec<Vec<ArrayColumn>>, String> {
        if let Some(column) = self.mixed {
            return Err(format!("column {} bound as both text and a number", column + 1));
        }
        if self.columns.len() != self.width || !self.at.is_multiple_of(self.width) {
            return Err(format!("{} values do not make rows of {} columns", self.at, self.width));
        }
        let rows = self.at / self.width;
        let mut columns = self.columns;
        let mut statements = Vec::with_capacity(self.cuts.len() + 1);
        for &cut in self.cuts.iter().rev().filter(|&&cut| cut < rows) {
            statements.push(columns.iter_mut().map(|c| c.split_off(cut)).collect());
        }
        statements.push(columns);
        statements.reverse();
        Ok(statements)
    }
}

/// The last write of each id, in first-write order: one statement may not touch a row twice.
pub(crate) fn last_per_id<T>(rows: &[T], id: impl Fn(&T) -> &str) -> Vec<&T> {
    let mut out = first_of_each(rows.iter().rev(), rows.len(), id);
    out.reverse();
    out
}

/// The first write of each id, in order: where a later write of a row is one its statement
/// would skip (a user task closed twice keeps its first close).
pub(crate) fn first_per_id<T>(rows: &[T], id: impl Fn(&T) -> &str) -> Vec<&T> {
    first_of_each(rows.iter(), rows.len(), id)
}

/// The rows of `rows` whose id has not come before.
fn first_of_each<'r, T>(rows: impl Iterator<Item = &'r T>, count: usize, id: impl Fn(&T) -> &str) -> Vec<&'r T> {
    // foldhash, not SipHash: hashing every id of a group with SipHash took a fifth of the
    // time spent encoding its commit, before the first statement could start.
    let mut seen = std::collections::HashSet::with_capacity_and_hasher(count, foldhash::fast::RandomState::default());
    rows.filter(|r| seen.insert(id(r))).collect()
}

/// The statement that leases the oldest jobs `a` asks for that nobody holds: those never held
/// or let go, through the `jobs_free` index, and those whose lease has ended, through
/// `jobs_held` (migration `20261207000031`); each side to the limit, the oldest of both taken.
/// `lock` follows each side's select (PostgreSQL's `FOR UPDATE SKIP LOCKED`: concurrent
/// fetches pass over each other's jobs instead of waiting for them).
pub(crate) fn acquire_statement<'a, DB: sqlx::Database>(a: &crate::Acquire<'a>, lock: &str) -> sqlx::QueryBuilder<DB>
where
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let limit = i64::try_from(a.limit).unwrap_or(i64::MAX);
    // What both sides ask after their own condition: the stones and action, the oldest first.
    let rest = |q: &mut sqlx::QueryBuilder<DB>| {
        q.push(") AND stone IN (");
        let mut list = q.separated(", ");
        for s in a.stones {
            list.push_bind(*s);
        }
        q.push(")");
        if let Some(action) = a.action {
            q.push(" AND action = ").push_bind(action);
        }
        q.push(" ORDER BY created_at, record_id LIMIT ").push_bind(limit);
        if !lock.is_empty() {
            q.push(" ").push(lock);
        }
        q.push(")");
    };
    // A job let go for a retry waits for its back-off in `locked_until`.
    let mut q = sqlx::QueryBuilder::<DB>::new(
        "WITH free AS (SELECT record_id, created_at FROM jobs WHERE owner IS NULL AND (locked_until IS NULL OR locked_until <= ",
    );
    q.push_bind(a.now);
    rest(&mut q);
    // A held job's lease ends at `locked_until`; its holder takes it back at once after a restart.
    q.push(", ended AS (SELECT record_id, created_at FROM jobs WHERE owner IS NOT NULL AND (locked_until <= ");
    q.push_bind(a.now);
    if a.include_own {
        q.push(" OR owner = ").push_bind(a.owner);
    }
    rest(&mut q);
    q.push(" UPDATE jobs SET owner = ").push_bind(a.owner).push(", locked_until = ").push_bind(a.until);
    q.push(
        " WHERE record_id IN (SELECT record_id FROM (SELECT * FROM free UNION ALL SELECT * FROM ended) AS f \
         ORDER BY created_at, record_id LIMIT ",
    );
    q.push_bind(limit).push(") RETURNING *");
    q
}

/// The status index's condition: completed instances are left out of it (migration
/// `20261206000030`). SQLite uses a partial index only for a query that names its condition,
/// so a query of any other status names it beside its own test.
macro_rules! INDEXED_STATUS {
    () => {
        "status <> 'completed'"
    };
}
pub(crate) use INDEXED_STATUS;

/// ` AND {alias}.status = status`, naming [`INDEXED_STATUS`] for any status but completed;
/// completed ones, most of the instances, are found by walking the ids.
pub(crate) fn push_status<DB: sqlx::Database>(q: &mut sqlx::QueryBuilder<DB>, alias: &str, status: &str)
where
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    q.push(format!(" AND {alias}.status = ")).push_bind(status.to_owned());
    if status != "completed" {
        q.push(format!(" AND {alias}.{}", INDEXED_STATUS!()));
    }
}

/// Splits a batch's task records into those written as they were and those whose wait the
/// batch drops (`closing`): a delivered message closes the record that waited, and its wait
/// goes in the same write instead of a second update of the same row. A record whose wait the
/// batch also sets keeps the order of the statements (set, then dropped) and stays apart. The
/// drops no record of the batch carries are left for their own statement.
pub(crate) fn closing_tasks<'a>(
    tasks: Vec<&'a crate::TaskRow>,
    set: &[&crate::SubscriptionRow],
    dropped: &'a [String],
) -> (Vec<&'a crate::TaskRow>, Vec<&'a crate::TaskRow>, Vec<&'a str>) {
    if dropped.is_empty() {
        return (tasks, Vec::new(), Vec::new());
    }
    let set: std::collections::HashSet<&str, foldhash::fast::RandomState> =
        set.iter().map(|s| s.record_id.as_str()).collect();
    let ending: std::collections::HashSet<&str, foldhash::fast::RandomState> =
        dropped.iter().map(String::as_str).filter(|id| !set.contains(id)).collect();
    let (closing, tasks): (Vec<&crate::TaskRow>, Vec<&crate::TaskRow>) =
        tasks.into_iter().partition(|t| ending.contains(t.record.id.as_str()));
    let closed: std::collections::HashSet<&str, foldhash::fast::RandomState> =
        closing.iter().map(|t| t.record.id.as_str()).collect();
    let left = dropped.iter().map(String::as_str).filter(|id| !closed.contains(id)).collect();
    (tasks, closing, left)
}

/// The rollback (`r`), cancel (`c`) and delete (`d`) instances of an instance `p`.
pub(crate) const OUTCOME_JOINS: &str = " LEFT JOIN instances d ON d.id = p.delete_id
    LEFT JOIN instances c ON c.id = p.cancel_id LEFT JOIN instances r ON r.id = p.rollback_id";

/// Where `p` stands with them counted (see [`Outcome`](crate::Outcome)).
macro_rules! outcome_expression {
    () => {
        "(CASE WHEN d.status IN ('running', 'debug') THEN 'deleting' WHEN d.status = 'completed' THEN 'deleted'
         WHEN c.status IN ('running', 'debug') THEN 'canceling' WHEN r.status IN ('running', 'debug') THEN 'rollingBack'
         WHEN r.status = 'completed' THEN 'rolledBack' ELSE 'own' END)"
    };
}
pub(crate) use outcome_expression as OUTCOME;

pub(crate) const INSTANCE_COLUMNS: &str = "id, model_id, model_key, name, status, variables, start_time, end_time,
    outputs, final_vars, failure, end_element, version, kind, parent_id, rollback_id, cancel_id, delete_id, business_key, start_user";

/// `$begin` opens a write transaction (SQLite's `BEGIN IMMEDIATE` takes the write lock at
/// once, waiting for it, instead of failing when a read turns into a write); `$lock` is how
/// a backend keeps concurrent job acquisitions apart (`FOR UPDATE SKIP LOCKED` on
/// PostgreSQL; nothing on SQLite, whose writer is single); `$shared` whether other servers
/// may write the same database; `$notify` tells the others that jobs were handed back
/// (empty where no other server listens); `$soft` and `$firm` switch a connection to writes
/// that need not reach the disk at once and back (empty where every write is the same);
/// `$numbered` whether the backend wants its placeholders numbered (`$1`) rather than
/// counted (`?`); `$scripts` whether the driver runs several statements, their values one
/// after the other, as one (SQLite's does; their placeholders must then be counted); `$text`
/// the type text is bound as, the one the backend copies least (`Arc<str>` where sqlx hands
/// values to another thread, `&str` where it encodes them at once); `$extra` holds
/// backend-specific trait items.
macro_rules! sql_store {
    (
        $store:ty, $db:ty, begin = $begin:literal, lock = $lock:literal, shared = $shared:literal,
        notify = $notify:literal, soft = $soft:literal, firm = $firm:literal, numbered = $numbered:literal,
        scripts = $scripts:literal, text = $text:ty, arrays = $arrays:expr, { $($extra:item)* }
    ) => {
        use flowstone_engine::{Action, Job, TaskRecord, TaskStatus};
        use sqlx::{QueryBuilder, Row};
        use $crate::sql::{
            INSERT_INSTANCES, INSERT_JOBS, INSERT_TASKS, INSTANCE_COLUMNS, MODELS,
            ON_INSTANCE_CONFLICT, ON_JOB_CONFLICT, ON_TASK_CONFLICT, CLEARED_WAIT, closing_tasks, OUTCOME, OUTCOME_JOINS, chunks, json, first_per_id, last_per_id, kept_ends, InstanceWrite, ACTIVITIES, EXECUTIONS,
        };
        use $crate::{
            json_text, Acquire, DeploymentRow, InstanceFilter, InstanceRow, JobFilter, JobLease, JobRow, ModelRow, Outcome, Page, Result, Store, StoreError,
            TaskRow, WriteBatch, ActivityQuery, ActivityRow, ExecutionQuery, ExecutionRow, DeploymentQuery, ModelQuery,
            TextFilter, TenantFilter,
        };

        type DbRow = <$db as sqlx::Database>::Row;

        fn model_row(r: &DbRow) -> Result<ModelRow> {
            Ok(ModelRow {
                id: r.try_get("id")?,
                deployment_id: r.try_get("deployment_id")?,
                key: r.try_get("key")?,
                name: r.try_get("name")?,
                version: r.try_get("version")?,
                source: r.try_get("source")?,
                created_at: r.try_get("created_at")?,
                resource: r.try_get::<Option<String>, _>("resource")?.unwrap_or_default(),
                tenant_id: r.try_get("tenant_id")?,
            })
        }

        fn deployment_row(r: &DbRow) -> Result<DeploymentRow> {
            Ok(DeploymentRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                category: r.try_get("category")?,
                tenant_id: r.try_get("tenant_id")?,
                deployed_at: r.try_get("deployed_at")?,
            })
        }

        fn instance_row(r: &DbRow) -> Result<InstanceRow> {
            Ok(InstanceRow {
                id: r.try_get("id")?,
                model_id: r.try_get("model_id")?,
                model_key: r.try_get("model_key")?,
                name: r.try_get("name")?,
                status: r.try_get("status")?,
                variables: r.try_get("variables")?,
                start_time: r.try_get("start_time")?,
                end_time: r.try_get("end_time")?,
                outputs: r.try_get("outputs")?,
                final_vars: r.try_get("final_vars")?,
                failure: r.try_get("failure")?,
                end_element: r.try_get("end_element")?,
                version: r.try_get("version")?,
                kind: r.try_get("kind")?,
                parent_id: r.try_get("parent_id")?,
                rollback_id: r.try_get("rollback_id")?,
                cancel_id: r.try_get("cancel_id")?,
                delete_id: r.try_get("delete_id")?,
                business_key: r.try_get("business_key")?,
                start_user: r.try_get("start_user")?,
            })
        }

        fn task_row(r: &DbRow) -> Result<TaskRow> {
            Ok(TaskRow {
                instance_id: r.try_get("instance_id")?,
                record: TaskRecord {
                    id: r.try_get("id")?,
                    task_id: r.try_get("task_id")?,
                    element: r.try_get("element")?,
                    name: r.try_get("name")?,
                    kind: r.try_get("kind")?,
                    namespace: r.try_get("namespace")?,
                    stone: r.try_get("stone")?,
                    create_time: r.try_get("create_time")?,
                    end_time: r.try_get("end_time")?,
                    status: {
                        let text: String = r.try_get("status")?;
                        TaskStatus::parse(&text)
                            .ok_or_else(|| StoreError::Corrupt(format!("task status `{text}`")))?
                    },
                    reason: r.try_get("reason")?,
                    params: json(r.try_get("params")?)?,
                    outputs: json(r.try_get("outputs")?)?,
                    progress: r.try_get::<Option<i64>, _>("progress")?.map(|p| p.clamp(0, 100) as u8),
                    action: None,
                    user: None,
                },
            })
        }

        /// The rows `select` reads, ending in `WHERE … <column>`, where that column is one of
        /// `ids`: in a few statements, each row mapped by `row`.
        async fn rows_in<T>(pool: &sqlx::Pool<$db>, select: &str, ids: &[&str], row: fn(&DbRow) -> Result<T>) -> Result<Vec<T>> {
            let mut out = Vec::with_capacity(ids.len());
            for chunk in chunks(ids) {
                let mut q = QueryBuilder::<$db>::new(format!("{select} IN ("));
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(")");
                for r in q.build().fetch_all(pool).await? {
                    out.push(row(&r)?);
                }
            }
            Ok(out)
        }

        fn job_action(r: &DbRow) -> Result<Action> {
            let action: String = r.try_get("action")?;
            Action::parse(&action).ok_or_else(|| StoreError::Corrupt(format!("job action {action}")))
        }

        fn job_row(r: &DbRow) -> Result<JobRow> {
            let params: String = r.try_get("params")?;
            Ok(JobRow {
                instance_id: r.try_get("instance_id")?,
                job: Job {
                    record_id: r.try_get("record_id")?,
                    stone: r.try_get("stone")?,
                    action: job_action(r)?,
                    params: serde_json::from_str(&params).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    outputs: json(r.try_get("outputs")?)?.unwrap_or_default(),
                },
                created_at: r.try_get("created_at")?,
                owner: r.try_get("owner")?,
                locked_until: r.try_get("locked_until")?,
                retries: r.try_get("retries")?,
            })
        }

        /// The joins and `WHERE` of an instance list (`p` is the instances table).
        fn push_instance_filter(q: &mut QueryBuilder<$db>, filter: &InstanceFilter) {
            if filter.outcome.is_some() {
                q.push(OUTCOME_JOINS);
            }
            q.push(" WHERE 1 = 1");
            if let Some(id) = &filter.id {
                q.push(" AND p.id = ").push_bind(id.clone());
            }
            if let Some(s) = &filter.status {
                $crate::sql::push_status(q, "p", s);
            }
            if let Some(k) = &filter.model_key {
                q.push(" AND p.model_key = ").push_bind(k.clone());
            }
            if let Some(m) = &filter.model_id {
                q.push(" AND p.model_id = ").push_bind(m.clone());
            }
            if let Some(b) = &filter.business_key {
                q.push(" AND p.business_key = ").push_bind(b.clone());
            }
            if let Some(k) = &filter.kind {
                q.push(" AND p.kind = ").push_bind(k.clone());
            }
            if let Some(ended) = filter.ended {
                q.push(if ended { " AND p.end_time IS NOT NULL" } else { " AND p.end_time IS NULL" });
            }
            if let Some(t) = &filter.tenant_id {
                q.push(" AND p.model_id IN (SELECT m.id FROM models m JOIN deployments d ON d.id = m.deployment_id WHERE d.tenant_id = ")
                    .push_bind(t.clone())
                    .push(")");
            }
            if let Some(u) = &filter.start_user {
                q.push(" AND p.start_user = ").push_bind(u.clone());
            }
            if let Some(parent) = &filter.parent_id {
                q.push(" AND p.parent_id = ").push_bind(parent.clone());
            }
            if let Some(outcome) = filter.outcome {
                q.push(concat!(" AND ", OUTCOME!(), " = ")).push_bind(outcome.name());
            }
            // Ids are UUIDv7 made as the instance starts: a bound on the id as well lets a
            // page walk only the key's stretch of that time, not every instance newer.
            if let Some(from) = filter.started_from {
                q.push(" AND p.start_time >= ").push_bind(from);
                q.push(" AND p.id >= ").push_bind(crate::rows::id_at(from.saturating_sub(crate::rows::ID_SKEW_MS)));
            }
            if let Some(before) = filter.started_before {
                q.push(" AND p.start_time < ").push_bind(before);
                q.push(" AND p.id < ").push_bind(crate::rows::id_at(before.saturating_add(crate::rows::ID_SKEW_MS)));
            }
            if let Some(waiting) = filter.waiting_for {
                q.push(format!(" AND p.id IN ({})", waiting.instances()));
            }
        }

        /// Orders by `column` (rows without a value last either way, on both backends), ties
        /// by `id`, and cuts out the page, if one is asked for.
        fn push_order_and_page(q: &mut QueryBuilder<$db>, column: &str, id: &str, descending: bool, page: Option<Page>) {
            let direction = if descending { "DESC" } else { "ASC" };
            q.push(format!(" ORDER BY ({column} IS NULL), {column} {direction}, {id} {direction}"));
            if let Some(page) = page {
                let (limit, offset) = page.sql();
                q.push(" LIMIT ").push_bind(limit);
                q.push(" OFFSET ").push_bind(offset);
            }
        }

        /// `column` equal to, and `LIKE`, what `filter` asks.
        fn push_text_filter(q: &mut QueryBuilder<$db>, column: &str, filter: &TextFilter) {
            if let Some(value) = &filter.equals {
                q.push(format!(" AND {column} = ")).push_bind(value.clone());
            }
            if let Some(pattern) = &filter.like {
                q.push(format!(" AND {column} LIKE ")).push_bind(crate::like_pattern(pattern)).push(crate::LIKE_ESCAPE);
            }
        }

        /// The deployment `d`'s tenant as `filter` asks.
        fn push_tenant_filter(q: &mut QueryBuilder<$db>, filter: &TenantFilter) {
            push_text_filter(q, "d.tenant_id", &filter.tenant);
            if filter.without {
                q.push(" AND (d.tenant_id IS NULL OR d.tenant_id = '')");
            }
        }

        /// A page's rows and the total count, read at once on two connections: a query the
        /// indexes cannot narrow scans the table twice side by side instead of one after the other.
        async fn rows_and_total(
            pool: &sqlx::Pool<$db>,
            mut rows: QueryBuilder<$db>,
            mut count: QueryBuilder<$db>,
        ) -> Result<(Vec<DbRow>, u64)> {
            let (rows, total) =
                tokio::try_join!(rows.build().fetch_all(pool), count.build_query_scalar::<i64>().fetch_one(pool))?;
            Ok((rows, total as u64))
        }

        fn activity_row(r: &DbRow) -> Result<ActivityRow> {
            Ok(ActivityRow {
                id: r.try_get("id")?,
                instance_id: r.try_get("instance_id")?,
                model_id: r.try_get("model_id")?,
                element: r.try_get("element")?,
                name: r.try_get("name")?,
                kind: r.try_get("kind")?,
                start_time: r.try_get("start_time")?,
                end_time: r.try_get("end_time")?,
                user_task_id: r.try_get("user_task_id")?,
                assignee: r.try_get("assignee")?,
            })
        }

        fn push_activity_filter(q: &mut QueryBuilder<$db>, f: &ActivityQuery) {
            q.push(" WHERE 1 = 1");
            let mut text = |column: &str, op: &str, value: &Option<String>| {
                if let Some(v) = value {
                    q.push(format!(" AND {column} {op} ")).push_bind(v.clone());
                }
            };
            text("a.id", "=", &f.id);
            text("a.element", "=", &f.element);
            text("a.name", "=", &f.name);
            text("a.kind", "=", &f.kind);
            text("a.instance_id", "=", &f.instance_id);
            text("i.model_id", "=", &f.model_id);
            text("a.assignee", "=", &f.assignee);
            let of_tenant = "i.model_id IN (SELECT m.id FROM models m JOIN deployments d ON d.id = m.deployment_id WHERE d.tenant_id";
            if let Some(tenant) = &f.tenant_id {
                q.push(format!(" AND {of_tenant} = ")).push_bind(tenant.clone()).push(")");
            }
            if let Some(like) = &f.tenant_id_like {
                q.push(format!(" AND {of_tenant} LIKE "))
                    .push_bind(crate::like_pattern(like))
                    .push(crate::LIKE_ESCAPE)
                    .push(")");
            }
            if f.without_tenant {
                q.push(format!(" AND NOT {of_tenant} <> '')"));
            }
            match f.finished {
                Some(true) => {
                    q.push(" AND a.end_time IS NOT NULL");
                }
                Some(false) => {
                    q.push(" AND a.end_time IS NULL");
                }
                None => {}
            }
        }

        /// One statement of a commit, before it is encoded.
        enum Work<'a> {
            /// Instance rows, and whether they are new ones (see [`crate::sql::new_first`]).
            Instances(&'a [InstanceWrite<'a>], bool),
            /// Instances whose parts all go.
            PartsCleared(&'a [&'a str]),
            /// Parts that went, by instance and key.
            PartsRemoved(&'a [(&'a str, &'a str)]),
            /// Parts written, by instance and key, with their bodies.
            PartsWritten(&'a [(&'a str, &'a str, &'a str)]),
            /// Task records; with `true`, records whose wait ends as they are written (see
            /// [`crate::sql::closing_tasks`]).
            Tasks(&'a [&'a TaskRow], bool),
            /// Records the batch made (see [`WriteBatch::new_records`](crate::WriteBatch::new_records)).
            NewTasks(&'a [&'a TaskRow]),
            Passages(&'a [&'a crate::PassageRow]),
            /// Jobs, and whether their records are ones the batch made (no job of theirs can
            /// be stored yet).
            Jobs(&'a [&'a JobRow], bool),
            Drops(&'a [String]),
            Timers(&'a [&'a crate::TimerRow]),
            TimerDrops(&'a [String]),
            TimerMoved(&'a crate::TimerMove),
            StartSubscriptions(&'a [&'a crate::SubscriptionRow]),
            Waits(&'a [&'a crate::SubscriptionRow]),
            /// Waits that went: start events' by model key (true), instances' by record id.
            SubscriptionDrops(bool, &'a [&'a str]),
            Outbox(&'a [crate::OutboxRow]),
            Monitoring(&'a (String, serde_json::Map<String, serde_json::Value>)),
            UserTasks(&'a [crate::NewUserTask]),
            Links(&'a [&'a crate::TaskLink]),
            /// User tasks their instance closed, each once.
            ClosedUserTasks(&'a [&'a crate::ClosedUserTask]),
            ChangedUserTask(&'a crate::UserTaskRow),
            Comments(&'a [&'a crate::CommentRow]),
            /// Statement `usize` of a write of what hangs on the task.
            TaskPart(&'a str, &'a crate::TaskPartWrite, usize),
            Deployment(&'a crate::DeploymentWrite),
            /// A model of a deployment (its id), deployed at the time given.
            Model(&'a crate::NewModel, &'a crate::DeploymentWrite),
            BkTemplate(&'a crate::TemplateRow),
            BkTask(&'a crate::BkTaskRow),
            BkStart(&'a crate::BkTaskStart),
            BkEdit(&'a crate::BkTaskEdit),
            Periodic(&'a crate::PeriodicRow),
            PeriodicChange(&'a crate::PeriodicChange),
            PeriodicRun(&'a crate::PeriodicRun),
            Clocked(&'a crate::ClockedRow),
            ClockedRun(&'a crate::ClockedRun),
            /// Jobs that must still be locked by these workers (distinct pairs).
            Held(&'a [(&'a str, &'a str)]),
            Lease(&'a crate::LeaseChange),
            /// Statement `usize` of deleting ended instances with what they own.
            Pruned(&'a [&'a (String, i64)], usize),
        }

        impl Work<'_> {
            /// Whether the statement may run in a script, after others in one round trip: its
            /// values follow theirs ([`encode`] carries them on) and its placeholders are counted.
            /// These are the statements of a step of stones, W1 and W2.
            fn scripted(&self) -> bool {
                matches!(
                    self,
                    Work::Instances(..)
                        | Work::PartsCleared(_)
                        | Work::PartsRemoved(_)
                        | Work::PartsWritten(_)
                        | Work::Tasks(..)
                        | Work::NewTasks(_)
                        | Work::Passages(_)
                        | Work::Jobs(..)
                        | Work::Drops(_)
                        | Work::Monitoring(_)
                        | Work::ClosedUserTasks(_)
                        | Work::Held(_)
                        | Work::Lease(_)
                )
            }

            /// Refuses the commit when the statement changed fewer rows than it must: what it
            /// wrote over was changed since it was read.
            fn applied(&self, applied: u64) -> Result<()> {
                match self {
                    Work::Instances(chunk, _) if applied < chunk.len() as u64 => {
                        // Some row of the chunk was written elsewhere since it was read (a losing
                        // write may carry the same version number as the winning one, so the
                        // chunk is named whole: its instances are reloaded, nothing is written).
                        Err(StoreError::Conflict(chunk.iter().map(|(row, _, _)| row.id.clone()).collect()))
                    }
                    Work::ChangedUserTask(row) if applied == 0 => {
                        // Changed since it was read (on another server): read again, applied again.
                        Err(StoreError::Conflict(vec![row.id.clone()]))
                    }
                    Work::Held(chunk) if applied < chunk.len() as u64 => {
                        // A lock passed to another worker after the report was checked: the
                        // reports are checked again, against the locks as they are now.
                        Err(StoreError::Conflict(chunk.iter().map(|(id, _)| format!("job {id}")).collect()))
                    }
                    Work::TimerMoved(moved) if applied == 0 => {
                        // Another server fired it first: the start is applied again and refused.
                        Err(StoreError::Conflict(vec![format!("timer {}", moved.record_id)]))
                    }
                    Work::Lease(c) if applied == 0 => Err(StoreError::Conflict(vec![format!("job {}", c.record_id)])),
                    Work::Pruned(chunk, at) if *at == crate::retention::OWNED.len() && applied < chunk.len() as u64 => {
                        // Acted on (or started again) since they were read: nothing goes.
                        Err(StoreError::Conflict(chunk.iter().map(|(id, _)| id.clone()).collect()))
                    }
                    Work::Waits(chunk) if applied < chunk.len() as u64 => {
                        // A wait is kept on its record: without one it would be lost unseen.
                        let ids: Vec<&str> = chunk.iter().map(|w| w.record_id.as_str()).collect();
                        Err(StoreError::Corrupt(format!("a wait without its task record among {ids:?}")))
                    }
                    Work::BkStart(crate::BkTaskStart { id, .. }) | Work::BkEdit(crate::BkTaskEdit { id, .. }) if applied == 0 => {
                        // Started meanwhile (by another server): the start or edit is applied
                        // again and refused.
                        Err(StoreError::Conflict(vec![format!("bk-sops task {id}")]))
                    }
                    _ => Ok(()),
                }
            }
        }

        type Args = <$db as sqlx::Database>::Arguments;

        /// How the backend binds the columns of a multi-row write as arrays, when it does (see
        /// [`crate::sql::Arrays`]); without, rows go as `VALUES` lists.
        const BIND_ARRAYS: Option<fn(&mut Args, Vec<$crate::sql::ArrayColumn>) -> std::result::Result<(), sqlx::error::BoxDynError>> = $arrays;

        /// The rows of one multi-row write per statement.
        fn write_chunks<T>(rows: &[T]) -> Vec<&[T]> {
            match BIND_ARRAYS {
                Some(_) => rows.chunks($crate::sql::ARRAY_ROWS).collect(),
                None => chunks(rows),
            }
        }

        /// The values of one statement. Encoding a plain value cannot fail; should one ever, the
        /// statement reports it instead of running.
        struct Binds {
            args: Args,
            /// The values by column, where the backend binds arrays.
            arrays: Option<$crate::sql::Arrays>,
            failed: Option<sqlx::error::BoxDynError>,
            rows: usize,
            columns: usize,
        }

        impl Binds {
            /// `args` holds the values of the statements before this one in a script (see
            /// [`Work::scripted`]), and is empty otherwise.
            fn new(mut args: Args, rows: usize, columns: usize) -> Self {
                let arrays = BIND_ARRAYS.map(|_| $crate::sql::Arrays::new(rows, columns));
                if arrays.is_none() {
                    sqlx::Arguments::reserve(&mut args, rows * columns, rows * columns * 16);
                }
                Self { args, arrays, failed: None, rows, columns }
            }

            fn int(&mut self, value: i64) -> &mut Self {
                self.opt_int(Some(value))
            }

            fn opt_int(&mut self, value: Option<i64>) -> &mut Self {
                match &mut self.arrays {
                    Some(arrays) => {
                        arrays.int(value);
                        self
                    }
                    None => self.add(value),
                }
            }

            fn add<'t, T: sqlx::Encode<'t, $db> + sqlx::Type<$db>>(&mut self, value: T) -> &mut Self {
                if let Err(e) = sqlx::Arguments::add(&mut self.args, value) {
                    self.failed.get_or_insert(e);
                }
                self
            }

            /// Text in the form the backend binds with the fewest copies.
            fn text(&mut self, value: &str) -> &mut Self {
                self.opt_text(Some(value))
            }

            fn opt_text(&mut self, value: Option<&str>) -> &mut Self {
                match &mut self.arrays {
                    Some(arrays) => {
                        arrays.text(value);
                        self
                    }
                    None => self.add(value.map(<$text>::from)),
                }
            }

            /// The statement `head VALUES (…), … tail` for the rows bound, or where the backend
            /// binds arrays, `head SELECT * FROM UNNEST(…) AS r(column1, …) tail` (one more for
            /// each [`ARRAY_BYTES`]($crate::sql::ARRAY_BYTES) of text).
            /// `head` as a plain insert for rows that cannot be stored yet (`new`, the first of
            /// `texts`), else with `upsert` (the second).
            fn insert(self, new: bool, texts: [&'static $crate::sql::Prebuilt; 2], head: &str, upsert: &str) -> Encoded {
                match new {
                    true => self.query(texts[0], head, ""),
                    false => self.query(texts[1], head, upsert),
                }
            }

            fn query(mut self, text: &'static $crate::sql::Prebuilt, head: &str, tail: &str) -> Encoded {
                let statements = match (BIND_ARRAYS, self.arrays.take()) {
                    (Some(bind), Some(arrays)) => {
                        let sql = text.once(|| arrays.sql(head, tail));
                        let mut statements = Vec::new();
                        match arrays.into_statements() {
                            Ok(parts) => {
                                for columns in parts {
                                    let mut args = Args::default();
                                    if let Err(e) = bind(&mut args, columns) {
                                        self.failed.get_or_insert(e);
                                    }
                                    statements.push(sqlx::query_with(sql.clone(), args));
                                }
                            }
                            Err(e) => {
                                self.failed.get_or_insert(e.into());
                            }
                        }
                        statements
                    }
                    _ => {
                        let sql = text.get(head, self.rows, self.columns, $numbered, tail);
                        vec![sqlx::query_with(sql, self.args)]
                    }
                };
                match self.failed {
                    Some(e) => Encoded::Failed(e.to_string()),
                    None => Encoded::Ready(statements),
                }
            }
        }

        /// A value the backend could not take: the commit writes nothing.
        fn unencodable(message: impl std::fmt::Display) -> StoreError {
            StoreError::Corrupt(format!("a value could not be encoded: {message}"))
        }

        /// A statement of a commit, ready to run.
        enum Encoded {
            /// Statements run in turn, their rows counted together.
            Ready(Vec<sqlx::query::Query<'static, $db, Args>>),
            Built(QueryBuilder<$db>),
            Failed(String),
        }

        impl Encoded {
            async fn execute(self, tx: &mut <$db as sqlx::Database>::Connection) -> Result<u64> {
                Ok(match self {
                    Encoded::Ready(statements) => {
                        let mut rows = 0;
                        for q in statements {
                            rows += q.execute(&mut *tx).await?.rows_affected();
                        }
                        rows
                    }
                    Encoded::Built(mut q) => q.build().execute(&mut *tx).await?.rows_affected(),
                    Encoded::Failed(message) => return Err(unencodable(message)),
                })
            }
        }

        /// Groups of at most this many instances commit as one script where the backend runs
        /// scripts. A script's text is a prepared statement of its own, one for each mix of
        /// statements and their row counts, so larger groups (hundreds of instances at 2,048 in
        /// flight) keep a statement each; measured, 16 ran W1 at 16 in flight 65% faster than 2
        /// and left 64 and more as they were.
        const SCRIPT_INSTANCES: usize = 16;

        /// The longest script text kept prepared between commits (a step of 16 `w1_stones`
        /// instances is a few KB).
        const SCRIPT_KEPT: usize = 32 * 1024;

        /// The statements as one script, each after the other, their values in order (every
        /// one is [`Work::scripted`]).
        fn script(work: &[Work<'_>]) -> Result<(String, Args)> {
            let (mut text, mut args) = (String::new(), Args::default());
            for w in work {
                let mut built;
                let mut statement = match encode(w, args) {
                    Encoded::Ready(mut statements) if statements.len() == 1 => statements.pop().expect("one statement"),
                    Encoded::Ready(_) => return Err(StoreError::Corrupt("a write of several statements in a script".into())),
                    Encoded::Built(q) => {
                        built = q;
                        built.build()
                    }
                    Encoded::Failed(message) => return Err(unencodable(message)),
                };
                // The next statement's values follow this one's.
                args = sqlx::Execute::take_arguments(&mut statement)
                    .map_err(unencodable)?
                    .unwrap_or_default();
                text.push_str(sqlx::Execute::sql(statement).as_str());
                text.push_str(";\n");
            }
            Ok((text, args))
        }

        /// `args`: the values of the statements before this one in a script, which the
        /// statements a script may hold carry on (see [`Work::scripted`]); empty outside one.
        fn encode(work: &Work<'_>, args: Args) -> Encoded {
            static INSTANCES: $crate::sql::Prebuilt = $crate::sql::Prebuilt::new();
            static NEW_INSTANCES: $crate::sql::Prebuilt = $crate::sql::Prebuilt::new();
            static TASKS: $crate::sql::Prebuilt = $crate::sql::Prebuilt::new();
            static CLOSING_TASKS: $crate::sql::Prebuilt = $crate::sql::Prebuilt::new();
            static NEW_TASKS: $crate::sql::Prebuilt = $crate::sql::Prebuilt::new();
            static PASSAGES: $crate::sql::Prebuilt = $crate::sql::Prebuilt::new();
            static JOBS: $crate::sql::Prebuilt = $crate::sql::Prebuilt::new();
            static NEW_JOBS: $crate::sql::Prebuilt = $crate::sql::Prebuilt::new();
            static PARTS: $crate::sql::Prebuilt = $crate::sql::Prebuilt::new();
            static CLOSED_USER_TASKS: $crate::sql::Prebuilt = $crate::sql::Prebuilt::new();
            match work {
                Work::Instances(chunk, new) => {
                    let mut b = Binds::new(args, chunk.len(), 24);
                    for (row, state, end) in chunk.iter() {
                        b.text(&row.id)
                            .text(&row.model_id)
                            .text(&row.model_key)
                            .text(&row.name)
                            .text(&row.status)
                            .text(&row.variables)
                            .int(row.start_time)
                            .opt_int(row.end_time)
                            .opt_text(row.outputs.as_deref())
                            .opt_text(row.final_vars.as_deref())
                            .opt_text(row.failure.as_deref())
                            .opt_text(row.end_element.as_deref())
                            .text(&state.core)
                            .int(row.version)
                            .text(&row.kind)
                            .opt_text(row.parent_id.as_deref())
                            .opt_text(row.rollback_id.as_deref())
                            .opt_text(row.cancel_id.as_deref())
                            .opt_text(row.delete_id.as_deref())
                            .opt_text(row.business_key.as_deref())
                            .opt_text(row.start_user.as_deref())
                            .opt_text(end.map(|p| p.id.as_str()))
                            .opt_text(end.and_then(|p| p.name.as_deref()))
                            .opt_text(end.map(|p| p.kind));
                    }
                    b.insert(*new, [&NEW_INSTANCES, &INSTANCES], INSERT_INSTANCES, ON_INSTANCE_CONFLICT)
                }
                Work::Tasks(chunk, _) | Work::NewTasks(chunk) => {
                    let mut b = Binds::new(args, chunk.len(), 15);
                    for TaskRow { instance_id, record: r } in chunk.iter() {
                        b.text(&r.id)
                            .text(&r.task_id)
                            .text(instance_id)
                            .text(&r.element)
                            .text(&r.name)
                            .text(&r.kind)
                            .opt_text(r.namespace.as_deref())
                            .opt_text(r.stone.as_deref())
                            .int(r.create_time)
                            .opt_int(r.end_time)
                            .text(&r.status.text())
                            .opt_text(r.reason.as_deref())
                            .opt_text(r.params.as_ref().map(json_text).as_deref())
                            .opt_text(r.outputs.as_ref().map(json_text).as_deref())
                            .opt_int(r.progress.map(i64::from));
                    }
                    match work {
                        Work::Tasks(_, true) => {
                            b.query(&CLOSING_TASKS, INSERT_TASKS, concat!(ON_TASK_CONFLICT!(), ", ", CLEARED_WAIT!()))
                        }
                        _ => b.insert(matches!(work, Work::NewTasks(_)), [&NEW_TASKS, &TASKS], INSERT_TASKS, ON_TASK_CONFLICT!()),
                    }
                }
                Work::Passages(chunk) => {
                    let mut b = Binds::new(args, chunk.len(), 6);
                    for crate::PassageRow { instance_id, passage: p } in chunk.iter() {
                        b.text(instance_id).text(&p.id).text(&p.element).opt_text(p.name.as_deref()).text(p.kind).int(p.time);
                    }
                    b.query(&PASSAGES, "INSERT INTO passages (instance_id, id, element, name, kind, time)", "")
                }
                Work::Jobs(chunk, new) => {
                    let mut b = Binds::new(args, chunk.len(), 9);
                    for j in chunk.iter() {
                        b.text(&j.job.record_id)
                            .text(&j.instance_id)
                            .text(&j.job.stone)
                            .text(&json_text(&j.job.params))
                            .int(j.created_at)
                            .opt_text(j.owner.as_deref())
                            .opt_int(j.locked_until)
                            .text(j.job.action.name())
                            .opt_text((!j.job.outputs.is_empty()).then(|| json_text(&j.job.outputs)).as_deref());
                    }
                    b.insert(*new, [&NEW_JOBS, &JOBS], INSERT_JOBS, ON_JOB_CONFLICT)
                }
                Work::Monitoring((record_id, outputs)) => {
                    let mut q = QueryBuilder::<$db>::with_arguments("UPDATE jobs SET action = 'monitor', outputs = ", args);
                    q.push_bind(json_text(outputs));
                    q.push(" WHERE record_id = ").push_bind(record_id.as_str());
                    Encoded::Built(q)
                }
                Work::UserTasks(tasks) => {
                    let mut q = QueryBuilder::<$db>::new(format!(
                        "INSERT INTO user_tasks ({}) ",
                        $crate::user_tasks_sql::USER_TASK_COLUMNS
                    ));
                    q.push_values(tasks.iter(), |b, t| user_task_impl::bind_user_task(b, &t.row));
                    q.push(" ON CONFLICT (id) DO NOTHING");
                    Encoded::Built(q)
                }
                Work::Links(links) => Encoded::Built(user_task_impl::insert_links(links.iter().copied())),
                Work::ClosedUserTasks(chunk) => {
                    // One statement for a group's closed tasks: W2 closes one per instance, and
                    // a statement each was a round trip each.
                    let mut b = Binds::new(args, chunk.len(), 3);
                    for closed in chunk.iter() {
                        b.text(&closed.id).int(closed.end_time).opt_text(closed.reason.as_deref());
                    }
                    b.query(
                        &CLOSED_USER_TASKS,
                        "UPDATE user_tasks SET end_time = c.column2, delete_reason = c.column3,
                        version = user_tasks.version + 1 FROM (",
                        ") AS c WHERE user_tasks.id = c.column1 AND user_tasks.end_time IS NULL",
                    )
                }
                Work::ChangedUserTask(row) => Encoded::Built(user_task_impl::update_user_task(row)),
                Work::Comments(chunk) => Encoded::Built(user_task_impl::insert_comments(chunk.iter().copied())),
                Work::TaskPart(task, write, at) => Encoded::Built(user_task_impl::part_statement(task, write, *at)),
                Work::Deployment(d) => {
                    let mut q = QueryBuilder::<$db>::new(
                        "INSERT INTO deployments (id, name, category, tenant_id, deployed_at) ",
                    );
                    q.push_values(std::iter::once(d), |mut b, d| {
                        b.push_bind(d.deployment.id.as_str())
                            .push_bind(d.deployment.name.as_deref())
                            .push_bind(d.deployment.category.as_deref())
                            .push_bind(d.deployment.tenant_id.as_deref())
                            .push_bind(d.at);
                    });
                    Encoded::Built(q)
                }
                Work::Model(m, d) => {
                    // The version is the next of its key, read in the statement that writes it.
                    let mut q = QueryBuilder::<$db>::new(
                        "INSERT INTO models (id, deployment_id, key, name, version, source, created_at, resource) SELECT ",
                    );
                    q.push_bind(m.id.as_str())
                        .push(", ")
                        .push_bind(d.deployment.id.as_str())
                        .push(", ")
                        .push_bind(m.key.as_str())
                        .push(", ")
                        .push_bind(m.name.as_deref())
                        .push(", COALESCE(MAX(version), 0) + 1, ")
                        .push_bind(m.source.as_str())
                        .push(", ")
                        .push_bind(d.at)
                        .push(", ")
                        .push_bind(m.resource.as_str())
                        .push(" FROM models WHERE key = ")
                        .push_bind(m.key.as_str());
                    Encoded::Built(q)
                }
                Work::BkTemplate(t) => Encoded::Built(bk_sops_impl::insert_template(t)),
                Work::BkTask(t) => Encoded::Built(bk_sops_impl::insert_task(t)),
                Work::BkStart(start) => Encoded::Built(bk_sops_impl::start_task(start)),
                Work::BkEdit(edit) => Encoded::Built(bk_sops_impl::edit_task(edit)),
                Work::Periodic(p) => Encoded::Built(bk_plans_impl::insert_periodic(p)),
                Work::PeriodicChange(c) => Encoded::Built(bk_plans_impl::change_periodic(c)),
                Work::PeriodicRun(r) => Encoded::Built(bk_plans_impl::count_periodic_run(r)),
                Work::Clocked(c) => Encoded::Built(bk_plans_impl::insert_clocked(c)),
                Work::ClockedRun(r) => Encoded::Built(bk_plans_impl::clocked_ran(r)),
                Work::Pruned(chunk, at) => Encoded::Built(retention_impl::prune(chunk, *at)),
                Work::Lease(c) => {
                    let mut q = QueryBuilder::<$db>::with_arguments("UPDATE jobs SET ", args);
                    match c.update {
                        crate::LeaseUpdate::Extend { until } => {
                            q.push("locked_until = ").push_bind(until);
                        }
                        crate::LeaseUpdate::Free { retries, available_at } => {
                            q.push("owner = NULL, locked_until = ").push_bind(available_at);
                            q.push(", retries = COALESCE(").push_bind(retries).push(", retries)");
                        }
                    }
                    q.push(" WHERE record_id = ").push_bind(c.record_id.as_str()).push(" AND owner = ").push_bind(c.owner.as_str());
                    Encoded::Built(q)
                }
                Work::Held(chunk) => {
                    // Touching the rows locks them until the commit (PostgreSQL's fetches skip
                    // them meanwhile); the count tells whether every lock is still held.
                    let mut q = QueryBuilder::<$db>::with_arguments("UPDATE jobs SET owner = owner WHERE (record_id, owner) IN (VALUES ", args);
                    let mut list = q.separated(", ");
                    for (id, owner) in chunk.iter() {
                        list.push("(").push_bind_unseparated(*id).push_unseparated(", ").push_bind_unseparated(*owner).push_unseparated(")");
                    }
                    q.push(")");
                    Encoded::Built(q)
                }
                Work::PartsCleared(chunk) => {
                    let mut q = QueryBuilder::<$db>::with_arguments("DELETE FROM instance_parts WHERE instance_id IN (", args);
                    let mut list = q.separated(", ");
                    for id in chunk.iter() {
                        list.push_bind(*id);
                    }
                    q.push(")");
                    Encoded::Built(q)
                }
                Work::PartsRemoved(chunk) => {
                    let mut q = QueryBuilder::<$db>::with_arguments("DELETE FROM instance_parts WHERE (instance_id, part) IN (VALUES ", args);
                    let mut list = q.separated(", ");
                    for (id, key) in chunk.iter() {
                        list.push("(").push_bind_unseparated(*id).push_unseparated(", ").push_bind_unseparated(*key).push_unseparated(")");
                    }
                    q.push(")");
                    Encoded::Built(q)
                }
                Work::PartsWritten(chunk) => {
                    let mut b = Binds::new(args, chunk.len(), 3);
                    for (id, key, body) in chunk.iter() {
                        b.text(id).text(key).text(body);
                    }
                    b.query(
                        &PARTS,
                        "INSERT INTO instance_parts (instance_id, part, body)",
                        " ON CONFLICT (instance_id, part) DO UPDATE SET body = EXCLUDED.body",
                    )
                }
                Work::Timers(chunk) => Encoded::Built(timer_impl::set_timers(chunk)),
                Work::TimerDrops(chunk) => Encoded::Built(timer_impl::drop_timers(chunk)),
                Work::TimerMoved(moved) => Encoded::Built(timer_impl::move_timer(moved)),
                Work::StartSubscriptions(chunk) => Encoded::Built(subscription_impl::set_start_subscriptions(chunk)),
                Work::Waits(chunk) => Encoded::Built(subscription_impl::set_waits(chunk)),
                Work::SubscriptionDrops(starts, chunk) => {
                    Encoded::Built(subscription_impl::drop_subscriptions(*starts, chunk))
                }
                Work::Outbox(chunk) => Encoded::Built(subscription_impl::add_outbox(chunk)),
                Work::Drops(chunk) => {
                    let mut q = QueryBuilder::<$db>::with_arguments("DELETE FROM jobs WHERE record_id IN (", args);
                    let mut list = q.separated(", ");
                    for id in chunk.iter() {
                        list.push_bind(id.as_str());
                    }
                    q.push(")");
                    Encoded::Built(q)
                }
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            async fn deployment(&self, id: &str) -> Result<Option<DeploymentRow>> {
                let row = sqlx::query("SELECT * FROM deployments WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                row.as_ref().map(deployment_row).transpose()
            }

            async fn query_deployments(&self, query: &DeploymentQuery, page: Page) -> Result<(Vec<DeploymentRow>, u64)> {
                let filter = |q: &mut QueryBuilder<$db>| {
                    q.push(" WHERE 1 = 1");
                    push_text_filter(q, "d.name", &query.name);
                    if let Some(category) = &query.category {
                        q.push(" AND d.category = ").push_bind(category.clone());
                    }
                    if let Some(category) = &query.category_not {
                        q.push(" AND (d.category IS NULL OR d.category <> ").push_bind(category.clone()).push(")");
                    }
                    push_tenant_filter(q, &query.tenant);
                };
                let mut rows = QueryBuilder::<$db>::new("SELECT d.* FROM deployments d");
                filter(&mut rows);
                push_order_and_page(&mut rows, query.order.column(), "d.id", query.descending, Some(page));
                let mut count = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM deployments d");
                filter(&mut count);
                let (rows, total) = rows_and_total(&self.pool, rows, count).await?;
                Ok((rows.iter().map(deployment_row).collect::<Result<_>>()?, total))
            }

            async fn query_models(&self, query: &ModelQuery, page: Page) -> Result<(Vec<ModelRow>, u64)> {
                let filter = |q: &mut QueryBuilder<$db>| {
                    q.push(" WHERE 1 = 1");
                    if let Some(version) = query.version {
                        q.push(" AND m.version = ").push_bind(version);
                    }
                    push_text_filter(q, "m.name", &query.name);
                    push_text_filter(q, "m.key", &query.key);
                    push_text_filter(q, "m.resource", &query.resource_name);
                    if let Some(deployment) = &query.deployment_id {
                        q.push(" AND m.deployment_id = ").push_bind(deployment.clone());
                    }
                    push_tenant_filter(q, &query.tenant);
                    if query.latest {
                        q.push(" AND m.version = (SELECT MAX(n.version) FROM models n WHERE n.key = m.key)");
                    }
                };
                let mut rows = QueryBuilder::<$db>::new(MODELS);
                filter(&mut rows);
                push_order_and_page(&mut rows, query.order.column(), "m.id", query.descending, Some(page));
                let mut count = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM models m JOIN deployments d ON d.id = m.deployment_id");
                filter(&mut count);
                let (rows, total) = rows_and_total(&self.pool, rows, count).await?;
                Ok((rows.iter().map(model_row).collect::<Result<_>>()?, total))
            }

            async fn delete_deployment(&self, id: &str, cascade: bool) -> Result<u64> {
                let _writing = self.writing().await;
                let mut tx = self.pool.begin_with($begin).await?;
                let of_models = "SELECT id FROM instances WHERE model_id IN (SELECT id FROM models WHERE deployment_id = $1)";
                let blocking = if cascade { format!("{of_models} AND end_time IS NULL") } else { of_models.to_owned() };
                let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM ({blocking}) b")))
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                if count > 0 {
                    return Ok(count as u64);
                }
                let of_tasks = format!("SELECT id FROM user_tasks WHERE instance_id IN ({of_models})");
                let statements = [
                    format!("DELETE FROM task_links WHERE task_id IN ({of_tasks})"),
                    format!("DELETE FROM task_variables WHERE task_id IN ({of_tasks})"),
                    format!("DELETE FROM task_comments WHERE task_id IN ({of_tasks}) OR instance_id IN ({of_models})"),
                    format!("DELETE FROM task_attachments WHERE task_id IN ({of_tasks}) OR instance_id IN ({of_models})"),
                    format!("DELETE FROM user_tasks WHERE instance_id IN ({of_models})"),
                    format!("DELETE FROM tasks WHERE instance_id IN ({of_models})"),
                    format!("DELETE FROM passages WHERE instance_id IN ({of_models})"),
                    format!("DELETE FROM jobs WHERE instance_id IN ({of_models})"),
                    "DELETE FROM start_subscriptions WHERE model_id IN (SELECT id FROM models WHERE deployment_id = $1)".to_owned(),
                    // Rollback, cancel and delete instances run the same model: they go too.
                    format!("DELETE FROM instance_parts WHERE instance_id IN ({of_models})"),
                    format!("DELETE FROM instances WHERE id IN ({of_models})"),
                    "DELETE FROM models WHERE deployment_id = $1".to_owned(),
                    "DELETE FROM deployments WHERE id = $1".to_owned(),
                ];
                for statement in statements {
                    sqlx::query(sqlx::AssertSqlSafe(statement)).bind(id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(0)
            }

            async fn model(&self, id: &str) -> Result<Option<ModelRow>> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("{MODELS} WHERE m.id = $1"))).bind(id).fetch_optional(&self.pool).await?;
                row.as_ref().map(model_row).transpose()
            }

            async fn models_of_deployment(&self, deployment_id: &str) -> Result<Vec<ModelRow>> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{MODELS} WHERE m.deployment_id = $1 ORDER BY m.key")))
                    .bind(deployment_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(model_row).collect()
            }

            async fn latest_model(&self, key: &str) -> Result<Option<ModelRow>> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("{MODELS} WHERE m.key = $1 ORDER BY m.version DESC LIMIT 1")))
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(model_row).transpose()
            }

            async fn list_models(&self, key: Option<&str>, tenant: Option<&str>, page: Page) -> Result<(Vec<ModelRow>, u64)> {
                const WHERE: &str = " WHERE (CAST($1 AS TEXT) IS NULL OR m.key = $1) AND (CAST($2 AS TEXT) IS NULL OR d.tenant_id = $2)";
                let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM models m JOIN deployments d ON d.id = m.deployment_id{WHERE}"
                )))
                .bind(key)
                .bind(tenant)
                .fetch_one(&self.pool)
                .await?;
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{MODELS}{WHERE} ORDER BY m.created_at DESC, m.key, m.version DESC LIMIT $3 OFFSET $4"
                )))
                .bind(key)
                .bind(tenant)
                .bind(page.sql().0)
                .bind(page.sql().1)
                .fetch_all(&self.pool)
                .await?;
                Ok((rows.iter().map(model_row).collect::<Result<_>>()?, total as u64))
            }

            async fn commit(&self, batch: &WriteBatch) -> Result<()> {
                if batch.is_empty() {
                    return Ok(());
                }
                let instances = last_per_id(&batch.instances, |(row, _)| row.id.as_str());
                let (mut writes, passages) = kept_ends(&instances, &batch.passages);
                let new = $crate::sql::new_first(&mut writes);
                // An instance's waits are kept on their records; start events' apart.
                let (starts, waits): (Vec<_>, Vec<_>) = last_per_id(&batch.subscriptions, |s| s.record_id.as_str())
                    .into_iter()
                    .partition(|s| s.instance_id.is_empty());
                // Records made by this batch are inserted; the others are written again.
                let (new_tasks, tasks): (Vec<&TaskRow>, Vec<&TaskRow>) = last_per_id(&batch.tasks, |t| t.record.id.as_str())
                    .into_iter()
                    .partition(|t| batch.new_records.contains(t.record.id.as_str()));
                let (tasks, closing, dropped) = closing_tasks(tasks, &waits, &batch.dropped_subscriptions);
                let (new_jobs, jobs): (Vec<&JobRow>, Vec<&JobRow>) = batch
                    .jobs
                    .iter()
                    .filter(|j| !batch.dropped_jobs.contains(&j.job.record_id))
                    .partition(|j| batch.new_records.contains(j.job.record_id.as_str()));
                // A timer set and dropped in one batch is dropped; one set twice (a cycle
                // that fired twice) keeps its last due time.
                let timers = last_per_id(&batch.timers, |t| t.record_id.as_str());
                let (mut cleared, mut removed, mut written) = (Vec::new(), Vec::new(), Vec::new());
                for (row, state) in &instances {
                    if state.clear {
                        cleared.push(row.id.as_str());
                    }
                    for (key, body) in &state.parts {
                        match body {
                            Some(body) => written.push((row.id.as_str(), key.as_str(), body.as_str())),
                            None => removed.push((row.id.as_str(), key.as_str())),
                        }
                    }
                }
                let mut work: std::collections::VecDeque<Work<'_>> = std::collections::VecDeque::new();
                let mut held: Vec<(&str, &str)> = batch.held_jobs.iter().map(|(j, w)| (j.as_str(), w.as_str())).collect();
                held.sort_unstable();
                held.dedup();
                // Locks first, before the jobs they guard are dropped.
                work.extend(chunks(&held).into_iter().map(Work::Held));
                work.extend(batch.lease_changes.iter().map(Work::Lease));
                // Models first: the instances of the group may run them.
                for d in &batch.deployments {
                    work.push_back(Work::Deployment(d));
                    work.extend(d.models.iter().map(|m| Work::Model(m, d)));
                }
                work.extend(write_chunks(&writes[..new]).into_iter().map(|c| Work::Instances(c, true)));
                work.extend(write_chunks(&writes[new..]).into_iter().map(|c| Work::Instances(c, false)));
                work.extend(chunks(&cleared).into_iter().map(Work::PartsCleared));
                work.extend(chunks(&removed).into_iter().map(Work::PartsRemoved));
                work.extend(write_chunks(&written).into_iter().map(Work::PartsWritten));
                work.extend(write_chunks(&new_tasks).into_iter().map(Work::NewTasks));
                work.extend(write_chunks(&tasks).into_iter().map(|c| Work::Tasks(c, false)));
                work.extend(write_chunks(&closing).into_iter().map(|c| Work::Tasks(c, true)));
                work.extend(write_chunks(&passages).into_iter().map(Work::Passages));
                work.extend(write_chunks(&new_jobs).into_iter().map(|c| Work::Jobs(c, true)));
                work.extend(write_chunks(&jobs).into_iter().map(|c| Work::Jobs(c, false)));
                work.extend(batch.monitoring_jobs.iter().map(Work::Monitoring));
                work.extend(chunks(&batch.dropped_jobs).into_iter().map(Work::Drops));
                work.extend(chunks(&timers).into_iter().map(Work::Timers));
                work.extend(chunks(&batch.dropped_timers).into_iter().map(Work::TimerDrops));
                work.extend(batch.moved_timers.iter().map(Work::TimerMoved));
                let replaced: Vec<&str> = batch.replaced_starts.iter().map(String::as_str).collect();
                work.extend(chunks(&replaced).into_iter().map(|c| Work::SubscriptionDrops(true, c)));
                work.extend(chunks(&starts).into_iter().map(Work::StartSubscriptions));
                work.extend(chunks(&waits).into_iter().map(Work::Waits));
                work.extend(chunks(&dropped).into_iter().map(|c| Work::SubscriptionDrops(false, c)));
                work.extend(chunks(&batch.outbox).into_iter().map(Work::Outbox));
                work.extend(chunks(&batch.user_tasks).into_iter().map(Work::UserTasks));
                let links: Vec<&crate::TaskLink> = batch.user_tasks.iter().flat_map(|t| &t.links).collect();
                work.extend(chunks(&links).into_iter().map(Work::Links));
                // People's changes first: a task claimed and then completed in one group is
                // closed after the claim that read its version.
                work.extend(batch.changed_user_tasks.iter().map(|c| Work::ChangedUserTask(&c.row)));
                // A task closes once: the first close of it stands, as it would row by row.
                let closed_user_tasks = first_per_id(&batch.closed_user_tasks, |c| c.id.as_str());
                work.extend(write_chunks(&closed_user_tasks).into_iter().map(Work::ClosedUserTasks));
                let events: Vec<&crate::CommentRow> = batch.changed_user_tasks.iter().flat_map(|c| &c.comments).collect();
                work.extend(chunks(&events).into_iter().map(Work::Comments));
                // Then what hangs on the tasks, in the order of the changes (a deleted task's
                // comments go with it).
                for change in &batch.changed_user_tasks {
                    for write in &change.parts {
                        work.extend((0..write.statements()).map(|at| Work::TaskPart(&change.row.id, write, at)));
                    }
                }
                work.extend(batch.bk_templates.iter().map(Work::BkTemplate));
                work.extend(batch.bk_tasks.iter().map(Work::BkTask));
                work.extend(batch.edited_bk_tasks.iter().map(Work::BkEdit));
                work.extend(batch.started_bk_tasks.iter().map(Work::BkStart));
                work.extend(batch.periodic_tasks.iter().map(Work::Periodic));
                work.extend(batch.periodic_changes.iter().map(Work::PeriodicChange));
                work.extend(batch.periodic_runs.iter().map(Work::PeriodicRun));
                work.extend(batch.clocked_tasks.iter().map(Work::Clocked));
                work.extend(batch.clocked_runs.iter().map(Work::ClockedRun));
                let pruned: Vec<&(String, i64)> = batch.pruned.iter().collect();
                for chunk in chunks(&pruned) {
                    work.extend((0..=crate::retention::OWNED.len()).map(|at| Work::Pruned(chunk, at)));
                }
                let mut connection = self.committing().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *connection, $begin).await?;
                let freed = batch.lease_changes.iter().any(|c| matches!(c.update, crate::LeaseUpdate::Free { .. }));
                if !$notify.is_empty() && (freed || new_jobs.iter().chain(&jobs).any(|j| j.owner.is_none())) {
                    // Jobs for workers: servers with a worker waiting hear of them at the commit.
                    sqlx::query($notify).execute(&mut *tx).await?;
                }
                if $scripts && work.len() > 1 && instances.len() <= SCRIPT_INSTANCES && work.iter().all(Work::scripted) {
                    // A small group's statements go to the connection as one script: one
                    // hand-over to its thread instead of one per statement (20–40 µs each,
                    // half of a step's time between commits with one instance in flight).
                    // Larger groups take the pipeline below, whose statement texts are few.
                    let work = Vec::from(work);
                    let (text, args) = script(&work)?;
                    // Kept prepared while short: the shapes of small groups recur. A long one
                    // (an instance that wrote hundreds of rows) is prepared for this commit
                    // alone, so that such groups cannot fill the connection's cache.
                    let kept = text.len() <= SCRIPT_KEPT;
                    let script = sqlx::query_with(sqlx::AssertSqlSafe(text), args).persistent(kept);
                    let applied: Vec<u64> = futures_util::TryStreamExt::try_collect(futures_util::TryStreamExt::map_ok(
                        sqlx::Executor::execute_many(&mut *tx, script),
                        |done| done.rows_affected(),
                    ))
                    .await?;
                    if applied.len() != work.len() {
                        return Err(StoreError::Corrupt(format!("a script of {} statements ran {}", work.len(), applied.len())));
                    }
                    for (done, applied) in work.iter().zip(applied) {
                        done.applied(applied)?;
                    }
                } else {
                    // Statement k+1 is encoded while statement k executes.
                    let mut current = work.pop_front().map(|w| (encode(&w, Args::default()), w));
                    while let Some((q, done)) = current.take() {
                        let following = work.pop_front();
                        let (result, next) = tokio::join!(q.execute(&mut tx), async move {
                            following.map(|w| (encode(&w, Args::default()), w))
                        });
                        done.applied(result?)?;
                        current = next;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn instance(&self, id: &str) -> Result<Option<InstanceRow>> {
                let mut q = QueryBuilder::<$db>::new(format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = "));
                q.push_bind(id);
                let row = q.build().fetch_optional(&self.pool).await?;
                row.as_ref().map(instance_row).transpose()
            }

            async fn instances(&self, ids: &[&str]) -> Result<Vec<InstanceRow>> {
                rows_in(&self.pool, &format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id"), ids, instance_row).await
            }

            async fn instance_state(&self, id: &str) -> Result<Option<flowstone_engine::Stored>> {
                // One statement, so the core and the parts are those of one commit (the core
                // comes as the part without a key).
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT '' AS part, state AS body FROM instances WHERE id = $1
                    UNION ALL SELECT part, body FROM instance_parts WHERE instance_id = $1",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
                let mut core = None;
                let mut parts = Vec::with_capacity(rows.len().saturating_sub(1));
                for (key, body) in rows {
                    if key.is_empty() {
                        core = Some(body);
                    } else {
                        parts.push((key, Some(body)));
                    }
                }
                Ok(core.map(|core| flowstone_engine::Stored { core, clear: false, parts }))
            }

            async fn instances_with_state(
                &self,
                ids: &[String],
            ) -> Result<Vec<(InstanceRow, flowstone_engine::Stored)>> {
                let mut found = Vec::with_capacity(ids.len());
                for chunk in chunks(ids) {
                    let mut q = QueryBuilder::<$db>::new(format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id IN ("));
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    q.push(")");
                    let rows = q.build().fetch_all(&self.pool).await?;
                    // The cores come as the parts without a key, in the same statement as the parts.
                    let mut q = QueryBuilder::<$db>::new(
                        "SELECT id AS instance_id, '' AS part, state AS body FROM instances WHERE id IN (",
                    );
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    q.push(") UNION ALL SELECT instance_id, part, body FROM instance_parts WHERE instance_id IN (");
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    q.push(")");
                    let stored: Vec<(String, String, String)> = q.build_query_as().fetch_all(&self.pool).await?;
                    let mut states: std::collections::HashMap<String, flowstone_engine::Stored> =
                        std::collections::HashMap::with_capacity(chunk.len());
                    for (id, key, body) in stored {
                        let state = states.entry(id).or_default();
                        if key.is_empty() {
                            state.core = body;
                        } else {
                            state.parts.push((key, Some(body)));
                        }
                    }
                    for r in &rows {
                        let row = instance_row(r)?;
                        if let Some(state) = states.remove(&row.id) {
                            found.push((row, state));
                        }
                    }
                }
                Ok(found)
            }

            async fn list_instances(&self, filter: &InstanceFilter, page: Page) -> Result<(Vec<InstanceRow>, u64)> {
                let mut count = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM instances p");
                push_instance_filter(&mut count, filter);
                let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
                Ok((self.instances_page(filter, page).await?, total as u64))
            }

            async fn instances_page(&self, filter: &InstanceFilter, page: Page) -> Result<Vec<InstanceRow>> {
                let columns: Vec<String> = INSTANCE_COLUMNS.split(',').map(|c| format!("p.{}", c.trim())).collect();
                let mut q = QueryBuilder::<$db>::new(format!("SELECT {} FROM instances p", columns.join(", ")));
                push_instance_filter(&mut q, filter);
                if filter.order == $crate::InstanceOrder::Id {
                    // The key itself, so that a page of the newest walks the index.
                    q.push(if filter.ascending { " ORDER BY p.id ASC LIMIT " } else { " ORDER BY p.id DESC LIMIT " })
                        .push_bind(page.sql().0);
                    q.push(" OFFSET ").push_bind(page.sql().1);
                } else {
                    push_order_and_page(&mut q, filter.order.column(), "p.id", !filter.ascending, Some(page));
                }
                let rows = q.build().fetch_all(&self.pool).await?;
                rows.iter().map(instance_row).collect()
            }

            async fn count_instances(&self, filter: &InstanceFilter, cap: u64) -> Result<u64> {
                let mut q = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM (SELECT 1 FROM instances p");
                push_instance_filter(&mut q, filter);
                q.push(" LIMIT ").push_bind(i64::try_from(cap).unwrap_or(i64::MAX)).push(") capped");
                let counted: i64 = q.build_query_scalar().fetch_one(&self.pool).await?;
                Ok(counted as u64)
            }

            async fn outcomes(&self, ids: &[&str]) -> Result<Vec<(String, Outcome)>> {
                let mut out = Vec::with_capacity(ids.len());
                for chunk in chunks(ids) {
                    let mut q = QueryBuilder::<$db>::new(concat!("SELECT p.id, ", OUTCOME!(), " AS outcome FROM instances p"));
                    q.push(OUTCOME_JOINS).push(" WHERE p.id IN (");
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    q.push(")");
                    for r in q.build().fetch_all(&self.pool).await? {
                        let name: String = r.try_get("outcome")?;
                        let outcome = Outcome::parse(&name).ok_or_else(|| StoreError::Corrupt(format!("outcome {name}")))?;
                        out.push((r.try_get("id")?, outcome));
                    }
                }
                Ok(out)
            }

            async fn tasks_of_instances(&self, instance_ids: &[&str], open: bool) -> Result<Vec<TaskRow>> {
                let select =
                    if open { "SELECT * FROM tasks WHERE end_time IS NULL AND instance_id" } else { "SELECT * FROM tasks WHERE instance_id" };
                let mut rows = rows_in(&self.pool, select, instance_ids, task_row).await?;
                rows.sort_unstable_by(|a, b| (a.record.create_time, &a.record.id).cmp(&(b.record.create_time, &b.record.id)));
                Ok(rows)
            }

            async fn tasks(&self, ids: &[&str]) -> Result<Vec<TaskRow>> {
                rows_in(&self.pool, "SELECT * FROM tasks WHERE id", ids, task_row).await
            }

            async fn task(&self, id: &str) -> Result<Option<TaskRow>> {
                let row = sqlx::query("SELECT * FROM tasks WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                row.as_ref().map(task_row).transpose()
            }

            async fn list_activities(&self, query: &ActivityQuery, page: Page) -> Result<(Vec<ActivityRow>, u64)> {
                let select = |what: &str| {
                    let mut q = QueryBuilder::<$db>::new(format!("SELECT {what} FROM ({ACTIVITIES}) a JOIN instances i ON i.id = a.instance_id"));
                    push_activity_filter(&mut q, query);
                    q
                };
                let mut rows = select("a.*, i.model_id");
                push_order_and_page(&mut rows, query.order.column(), "a.id", query.descending, Some(page));
                let (rows, total) = rows_and_total(&self.pool, rows, select("COUNT(*)")).await?;
                Ok((rows.iter().map(activity_row).collect::<Result<_>>()?, total))
            }

            async fn list_executions(&self, query: &ExecutionQuery, page: Page) -> Result<(Vec<ExecutionRow>, u64)> {
                let select = |what: &str| {
                    let mut q = QueryBuilder::<$db>::new(format!("SELECT {what} FROM ({EXECUTIONS}) e WHERE 1 = 1"));
                    let mut text = |column: &str, value: &Option<String>| {
                        if let Some(v) = value {
                            q.push(format!(" AND {column} = ")).push_bind(v.clone());
                        }
                    };
                    text("e.id", &query.id);
                    text("e.activity", &query.activity);
                    text("e.instance_id", &query.instance_id);
                    text("e.parent_id", &query.parent_id);
                    text("e.model_id", &query.model_id);
                    text("e.model_key", &query.model_key);
                    if let Some((kind, name)) = &query.event {
                        q.push(" AND e.id IN (SELECT record_id FROM event_subscriptions WHERE kind = ").push_bind(kind.clone());
                        q.push(" AND name = ").push_bind(name.clone()).push(")");
                    }
                    q
                };
                let mut rows = select("e.*");
                let column = if query.by_model { "e.model_id" } else { "e.instance_id" };
                // An instance's own execution (its id is the instance's) comes before those of its activities.
                let tie = "(CASE WHEN e.parent_id IS NULL THEN '' ELSE e.id END)";
                push_order_and_page(&mut rows, column, tie, query.descending, Some(page));
                let (rows, total) = rows_and_total(&self.pool, rows, select("COUNT(*)")).await?;
                let rows = rows
                    .iter()
                    .map(|r| {
                        Ok(ExecutionRow {
                            id: r.try_get("id")?,
                            parent_id: r.try_get("parent_id")?,
                            activity: r.try_get("activity")?,
                            instance_id: r.try_get("instance_id")?,
                            model_id: r.try_get("model_id")?,
                        })
                    })
                    .collect::<Result<_>>()?;
                Ok((rows, total))
            }

            async fn instance_versions(&self, ids: &[&str]) -> Result<Vec<(String, i64)>> {
                let version = |r: &DbRow| Ok((r.try_get("id")?, r.try_get("version")?));
                rows_in(&self.pool, "SELECT id, version FROM instances WHERE id", ids, version).await
            }

            fn shared(&self) -> bool {
                $shared
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn waiting_jobs(&self, now: i64) -> Result<Vec<(String, String, i64, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT stone, action, COUNT(*), MIN(created_at) FROM jobs
                     WHERE owner IS NULL OR locked_until IS NULL OR locked_until <= $1
                     GROUP BY stone, action ORDER BY stone, action",
                )
                .bind(now)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn held_jobs(&self, now: i64) -> Result<Vec<(String, String, i64, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT owner, stone, COUNT(*), MAX(locked_until) FROM jobs
                     WHERE owner IS NOT NULL AND locked_until > $1
                     GROUP BY owner, stone ORDER BY owner, stone",
                )
                .bind(now)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn release_jobs(&self, owner: &str) -> Result<u64> {
                let _writing = self.writing().await;
                let mut tx = self.pool.begin_with($begin).await?;
                let released = sqlx::query("UPDATE jobs SET owner = NULL, locked_until = NULL WHERE owner = $1")
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if released > 0 && !$notify.is_empty() {
                    sqlx::query($notify).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(released)
            }

            $($extra)*

            async fn acquire_jobs(&self, a: Acquire<'_>) -> Result<Vec<JobRow>> {
                if a.stones.is_empty() || a.limit == 0 {
                    return Ok(Vec::new());
                }
                let _writing = self.writing().await;
                let mut q = $crate::sql::acquire_statement::<$db>(&a, $lock);
                // A lease is soft state: one lost in a crash only means the job is handed out
                // again. It reaches the disk with the next commit instead of waiting for a sync.
                let mut conn = self.pool.acquire().await?;
                if !$soft.is_empty() {
                    sqlx::query($soft).execute(&mut *conn).await?;
                }
                let rows = q.build().fetch_all(&mut *conn).await;
                if !$firm.is_empty() && sqlx::query($firm).execute(&mut *conn).await.is_err() {
                    // Never hand a connection that skips syncs back to the pool.
                    conn.close_on_drop();
                }
                let rows = rows?;
                let mut jobs = rows.iter().map(job_row).collect::<Result<Vec<_>>>()?;
                jobs.sort_by(|x, y| (x.created_at, &x.job.record_id).cmp(&(y.created_at, &y.job.record_id)));
                Ok(jobs)
            }

            async fn job(&self, record_id: &str) -> Result<Option<JobRow>> {
                let row =
                    sqlx::query("SELECT * FROM jobs WHERE record_id = $1").bind(record_id).fetch_optional(&self.pool).await?;
                row.as_ref().map(job_row).transpose()
            }

            async fn list_jobs(&self, filter: &JobFilter, page: Page) -> Result<(Vec<JobRow>, u64)> {
                let push_filter = |q: &mut QueryBuilder<$db>| {
                    q.push(" WHERE 1 = 1");
                    let exact = [
                        ("record_id", &filter.record_id),
                        ("instance_id", &filter.instance_id),
                        ("stone", &filter.stone),
                        ("owner", &filter.owner),
                    ];
                    for (column, value) in exact {
                        if let Some(v) = value {
                            q.push(format!(" AND {column} = ")).push_bind(v.clone());
                        }
                    }
                    match filter.locked {
                        Some(true) => {
                            q.push(" AND owner IS NOT NULL AND locked_until > ").push_bind(filter.now);
                        }
                        Some(false) => {
                            q.push(" AND (owner IS NULL OR locked_until IS NULL OR locked_until <= ")
                                .push_bind(filter.now)
                                .push(")");
                        }
                        None => {}
                    }
                };
                let mut count = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM jobs");
                push_filter(&mut count);
                let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
                let mut q = QueryBuilder::<$db>::new("SELECT * FROM jobs");
                push_filter(&mut q);
                let (limit, offset) = page.sql();
                q.push(" ORDER BY created_at, record_id LIMIT ").push_bind(limit);
                q.push(" OFFSET ").push_bind(offset);
                let rows = q.build().fetch_all(&self.pool).await?;
                Ok((rows.iter().map(job_row).collect::<Result<_>>()?, total as u64))
            }

            async fn leases(&self, record_ids: &[&str]) -> Result<Vec<JobLease>> {
                let mut out = Vec::with_capacity(record_ids.len());
                for chunk in chunks(record_ids) {
                    let mut q = QueryBuilder::<$db>::new(
                        "SELECT record_id, instance_id, action, owner, retries FROM jobs WHERE record_id IN (",
                    );
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    q.push(")");
                    for r in q.build().fetch_all(&self.pool).await? {
                                    out.push(JobLease {
                            record_id: r.try_get("record_id")?,
                            instance_id: r.try_get("instance_id")?,
                            action: job_action(&r)?,
                            owner: r.try_get("owner")?,
                            retries: r.try_get("retries")?,
                        });
                    }
                }
                Ok(out)
            }

            async fn retry_job(&self, record_id: &str, owner: &str, retries: Option<i64>, available_at: i64) -> Result<bool> {
                let _writing = self.writing().await;
                let mut tx = self.pool.begin_with($begin).await?;
                let updated = sqlx::query(
                    "UPDATE jobs SET owner = NULL, locked_until = $1, retries = COALESCE($2, retries)
                     WHERE record_id = $3 AND owner = $4",
                )
                .bind(available_at)
                .bind(retries)
                .bind(record_id)
                .bind(owner)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated > 0 && !$notify.is_empty() {
                    sqlx::query($notify).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(updated > 0)
            }

            async fn extend_jobs(&self, owner: &str, record_ids: &[&str], until: i64, skip_busy: bool) -> Result<u64> {
                let _writing = self.writing().await;
                let mut extended = 0;
                for chunk in chunks(record_ids) {
                    let mut q = QueryBuilder::<$db>::new("UPDATE jobs SET locked_until = ");
                    q.push_bind(until).push(" WHERE owner = ").push_bind(owner).push(" AND record_id IN (");
                    if skip_busy {
                        // The rows locked first, those a commit holds left out.
                        q.push("SELECT record_id FROM jobs WHERE owner = ").push_bind(owner).push(" AND record_id IN (");
                    }
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    q.push(")");
                    if skip_busy {
                        q.push(concat!(" ", $lock, ")"));
                    }
                    extended += q.build().execute(&self.pool).await?.rows_affected();
                }
                Ok(extended)
            }
        }
    };
}

pub(crate) use sql_store;

#[cfg(test)]
mod tests {
    use crate::{InstanceRow, PassageRow, SubscriptionRow, TaskRow};
    use flowstone_engine::{Passage, Stored, TaskRecord, TaskStatus};

    #[test]
    fn records_whose_wait_the_batch_drops_clear_it_as_they_are_written_unless_it_was_set_in_the_batch() {
        let task = |id: &str| TaskRow {
            instance_id: "i".into(),
            record: TaskRecord {
                id: id.into(),
                task_id: id.into(),
                element: "catch".into(),
                name: "catch".into(),
                kind: "intermediateCatchEvent".into(),
                namespace: None,
                stone: None,
                create_time: 1,
                end_time: Some(2),
                status: TaskStatus::Completed,
                reason: None,
                params: None,
                outputs: None,
                progress: None,
                action: None,
                user: None,
            },
        };
        let tasks = [task("closed"), task("plain"), task("set-and-dropped")];
        let set = SubscriptionRow {
            record_id: "set-and-dropped".into(),
            instance_id: "i".into(),
            model_id: "m".into(),
            starts: None,
            tenant_id: None,
            element: "catch".into(),
            kind: "message".into(),
            name: "pay".into(),
            correlation_key: None,
            created_at: 1,
        };
        let dropped = ["closed".to_owned(), "set-and-dropped".to_owned(), "elsewhere".to_owned()];
        let (plain, closing, left) = super::closing_tasks(tasks.iter().collect(), &[&set], &dropped);
        let ids = |rows: Vec<&TaskRow>| rows.into_iter().map(|t| t.record.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(plain), ["plain", "set-and-dropped"]);
        assert_eq!(ids(closing), ["closed"]);
        assert_eq!(left, ["set-and-dropped", "elsewhere"], "dropped by a statement of their own");
        let (plain, closing, left) = super::closing_tasks(tasks.iter().collect(), &[], &[]);
        assert_eq!((plain.len(), closing.len(), left.len()), (3, 0, 0));
    }

    #[test]
    fn kept_ends_take_a_completed_instances_last_pass_at_its_end_and_no_other() {
        let ended = |id: &str, status: &str| InstanceRow {
            id: id.into(),
            status: status.into(),
            end_element: Some("end".into()),
            end_time: Some(9),
            ..InstanceRow::default()
        };
        let pass = |instance: &str, id: &str, element: &str, time: i64| PassageRow {
            instance_id: instance.into(),
            passage: Passage { id: id.into(), element: element.into(), name: None, kind: "endEvent", time },
        };
        let rows = [
            (ended("done", "completed"), Stored::default()),
            (ended("failed", "failed"), Stored::default()),
            (InstanceRow { end_element: None, ..ended("plain", "completed") }, Stored::default()),
        ];
        let instances: Vec<_> = rows.iter().collect();
        let passages = [
            pass("done", "early", "end", 9),
            pass("done", "branch", "other", 9),
            pass("done", "last", "end", 9),
            pass("done", "before", "end", 8),
            pass("failed", "error", "end", 9),
            pass("plain", "p", "end", 9),
        ];
        let (writes, rest) = super::kept_ends(&instances, &passages);
        let kept: Vec<_> = writes.iter().map(|(row, _, end)| (row.id.as_str(), end.map(|p| p.id.as_str()))).collect();
        assert_eq!(kept, [("done", Some("last")), ("failed", None), ("plain", None)]);
        let left: Vec<_> = rest.iter().map(|p| p.passage.id.as_str()).collect();
        assert_eq!(left, ["early", "branch", "before", "error", "p"]);
    }

    #[test]
    fn arrays_make_one_unnest_statement_with_a_cast_per_column_and_one_array_each() {
        let mut arrays = super::Arrays::new(2, 3);
        for (id, at, note) in [("a", 1, Some("x")), ("b", 2, None)] {
            arrays.text(Some(id));
            arrays.int(Some(at));
            arrays.text(note);
        }
        assert_eq!(
            arrays.sql("INSERT INTO t (id, at, note)", " ON CONFLICT DO NOTHING"),
            "INSERT INTO t (id, at, note) SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[]) \
             AS r(column1, column2, column3) ON CONFLICT DO NOTHING"
        );
        let statements = arrays.into_statements().unwrap_or_else(|e| panic!("{e}"));
        let shown: Vec<Vec<String>> = statements.iter().map(|columns| show(columns)).collect();
        assert_eq!(shown, [[r#"[Some("a"), Some("b")]"#, "[Some(1), Some(2)]", r#"[Some("x"), None]"#]]);
    }

    fn show(columns: &[super::ArrayColumn]) -> Vec<String> {
        columns
            .iter()
            .map(|c| match c {
                super::ArrayColumn::Text(v) => format!("{v:?}"),
                super::ArrayColumn::Int(v) => format!("{v:?}"),
            })
            .collect()
    }

    #[test]
    fn arrays_start_another_statement_after_the_row_that_passes_the_byte_bound() {
        let mut arrays = super::Arrays::bounded(6, 2, 10);
        // 6 + 6 bytes pass the bound at the second row; the third passes it alone; the last
        // passes it too, and no empty statement follows it.
        for (at, text) in
            [(1, "aaaaaa"), (2, "bbbbbb"), (3, "a row of twenty byte"), (4, "c"), (5, "d"), (6, "0123456789")]
        {
            arrays.int(Some(at));
            arrays.text(Some(text));
        }
        let statements = arrays.into_statements().unwrap_or_else(|e| panic!("{e}"));
        let shown: Vec<Vec<String>> = statements.iter().map(|columns| show(columns)).collect();
        assert_eq!(
            shown,
            [
                vec!["[Some(1), Some(2)]".to_owned(), r#"[Some("aaaaaa"), Some("bbbbbb")]"#.to_owned()],
                vec!["[Some(3)]".to_owned(), r#"[Some("a row of twenty byte")]"#.to_owned()],
                vec![
                    "[Some(4), Some(5), Some(6)]".to_owned(),
                    r#"[Some("c"), Some("d"), Some("0123456789")]"#.to_owned()
                ],
            ]
        );
        // Under the bound, one statement.
        let mut small = super::Arrays::new(2, 1);
        small.text(Some("a"));
        small.text(None);
        assert_eq!(small.into_statements().map(|s| s.len()), Ok(1));
    }

    #[test]
    fn arrays_refuse_a_column_bound_two_ways_or_a_row_left_short() {
        let mut mixed = super::Arrays::new(2, 2);
        mixed.text(Some("a"));
        mixed.int(Some(1));
        mixed.int(Some(2));
        mixed.int(Some(3));
        assert_eq!(mixed.into_statements().err().as_deref(), Some("column 1 bound as both text and a number"));
        let mut short = super::Arrays::new(2, 2);
        short.text(Some("a"));
        short.int(Some(1));
        short.text(Some("b"));
        assert_eq!(short.into_statements().err().as_deref(), Some("3 values do not make rows of 2 columns"));
    }

    #[test]
    fn chunks_use_few_sizes_and_keep_every_row() {
        let rows: Vec<u32> = (0..347).collect();
        let parts = super::chunks(&rows);
        let sizes: Vec<usize> = parts.iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [256, 64, 16, 4, 4, 1, 1, 1]);
        assert_eq!(parts.concat(), rows);
        assert!(super::chunks::<u32>(&[]).is_empty());
    }

    #[test]
    fn prebuilt_statements_place_one_placeholder_per_value_and_are_made_once() {
        static STATEMENT: super::Prebuilt = super::Prebuilt::new();
        static NUMBERED: super::Prebuilt = super::Prebuilt::new();
        let plain = STATEMENT.get("INSERT INTO t (a, b)", 4, 2, false, " ON CONFLICT DO NOTHING");
        assert_eq!(plain.as_str(), "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?), (?, ?) ON CONFLICT DO NOTHING");
        let again = STATEMENT.get("ignored: the text is made once", 4, 2, false, "");
        assert_eq!(again.as_str(), plain.as_str());
        let numbered = NUMBERED.get("INSERT INTO t (a, b)", 4, 2, true, "");
        assert_eq!(numbered.as_str(), "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6), ($7, $8)");
        // A size outside the chunk sizes is made afresh rather than refused.
        assert_eq!(
            NUMBERED.get("INSERT INTO t (a)", 3, 1, true, "").as_str(),
            "INSERT INTO t (a) VALUES ($1), ($2), ($3)"
        );
    }

    #[test]
    fn last_write_per_id_wins_in_first_write_order() {
        let rows = [("a", 1), ("b", 2), ("a", 3)];
        let kept: Vec<_> = super::last_per_id(&rows, |r| r.0).into_iter().copied().collect();
        assert_eq!(kept, [("b", 2), ("a", 3)]);
    }
}
