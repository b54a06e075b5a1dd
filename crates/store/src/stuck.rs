//! Work that has not moved for a while, as an operator looks for it: stone jobs no one took,
//! stone tasks waiting for a callback, running instances without a step, and timers that did
//! not fire.

use crate::{InstanceRow, JobRow, Result, TaskRow, TimerRow};

/// What has not moved since a time, oldest first, each list at most a limit long.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stuck {
    /// Stone jobs queued before the time that no one holds now (a worker's lock that ended
    /// counts as none).
    pub jobs: Vec<JobRow>,
    /// Open stone task records, begun before the time, whose job left the queue: the stone
    /// waits for the outside system to call back (bk-sops' callback components). Failed ones
    /// wait for an operator instead and are not listed.
    pub callbacks: Vec<TaskRow>,
    /// Running instances (in debug mode too) started before the time whose last task record
    /// began or ended before it, with that time.
    pub instances: Vec<(InstanceRow, i64)>,
    /// Timers due before the time, not fired yet: no server fires timers, or one holds them
    /// and does not.
    pub timers: Vec<TimerRow>,
    /// How many timers are set now, due or not.
    pub pending_timers: u64,
}

/// The stuck-work reads of the store.
#[async_trait::async_trait]
pub trait StuckStore {
    /// What has not moved since `before` (see [`Stuck`]), judged at `now` for job locks; each
    /// list holds at most `limit`.
    async fn stuck(&self, before: i64, now: i64, limit: u64) -> Result<Stuck>;
}

/// `$store` is the store type, `$db` its sqlx database.
macro_rules! stuck_store {
    ($store:ty, $db:ty) => {
        mod stuck_impl {
            use super::*;
            use $crate::sql::INSTANCE_COLUMNS;
            use $crate::{Result, Stuck, StuckStore};

            #[async_trait::async_trait]
            impl StuckStore for $store {
                async fn stuck(&self, before: i64, now: i64, limit: u64) -> Result<Stuck> {
                    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                    let jobs = sqlx::query(
                        "SELECT * FROM jobs WHERE (owner IS NULL OR locked_until < $2) AND created_at < $1 \
                         ORDER BY created_at, record_id LIMIT $3",
                    )
                    .bind(before)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    // Both instance queries name the status index's condition, so that SQLite uses it.
                    let callbacks = sqlx::query(concat!(
                        "SELECT * FROM tasks WHERE instance_id IN (SELECT id FROM instances \
                         WHERE status IN ('running', 'debug') AND ",
                        $crate::sql::INDEXED_STATUS!(),
                        ") AND end_time IS NULL AND stone IS NOT NULL \
                         AND create_time < $1 AND status NOT LIKE '%.failed' \
                         AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.record_id = tasks.id) \
                         ORDER BY create_time, id LIMIT $2",
                    ))
                    .bind(before)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    let columns: Vec<String> = INSTANCE_COLUMNS.split(',').map(|c| format!("i.{}", c.trim())).collect();
                    let instances = sqlx::query(sqlx::AssertSqlSafe(format!(
                        concat!(
                            "SELECT * FROM (SELECT {}, COALESCE((SELECT MAX(COALESCE(t.end_time, t.create_time)) \
                             FROM tasks t WHERE t.instance_id = i.id), i.start_time) AS last_step \
                             FROM instances i WHERE i.status IN ('running', 'debug') AND i.",
                            $crate::sql::INDEXED_STATUS!(),
                            " AND i.start_time < $1) s WHERE s.last_step < $1 ORDER BY s.last_step, s.id LIMIT $2"
                        ),
                        columns.join(", ")
                    )))
                    .bind(before)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    let timers = sqlx::query("SELECT * FROM timers WHERE due < $1 ORDER BY due, record_id LIMIT $2")
                        .bind(before)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM timers").fetch_one(&self.pool).await?;
                    Ok(Stuck {
                        timers: timers.iter().map(super::timer_impl::timer_row).collect::<Result<_>>()?,
                        pending_timers: u64::try_from(pending).unwrap_or(0),
                        jobs: jobs.iter().map(job_row).collect::<Result<_>>()?,
                        callbacks: callbacks.iter().map(task_row).collect::<Result<_>>()?,
                        instances: instances
                            .iter()
                            .map(|r| Ok((instance_row(r)?, sqlx::Row::try_get(r, "last_step")?)))
                            .collect::<Result<_>>()?,
                    })
                }
            }
        }
    };
}
pub(crate) use stuck_store;
