//! Timers waiting for their due time. A commit writes and removes them with the step that set
//! or ended them ([`crate::WriteBatch::timers`]); a server leases the due ones to fire them,
//! so that among servers sharing a database each fires on one only (another takes it over
//! once the lease has ended).

use crate::Result;

/// A timer as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerRow {
    /// The timer's task record; for a timer start event's, `start:` and the model key.
    pub record_id: String,
    /// The instance it belongs to (empty for a timer start event's).
    pub instance_id: String,
    /// The timer event's element.
    pub element: String,
    /// When it fires (milliseconds since the epoch).
    pub due: i64,
    /// The server firing it, while its lease holds.
    pub owner: Option<String>,
    /// When that lease ends.
    pub locked_until: Option<i64>,
    /// For a timer start event's timer: the model it starts instances of.
    pub model_id: Option<String>,
    /// For a timer start event's timer: how many times it fired.
    pub fired: i64,
}

/// A timer start event's timer fired: it moves from the due time it fired for to its next
/// (or goes), in the commit that starts the instance, and only if no other server moved it
/// first.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerMove {
    /// The timer.
    pub record_id: String,
    /// The due time it fired for.
    pub from: i64,
    /// Its next due time and firing count; none when that was its last firing.
    pub to: Option<(i64, i64)>,
}

/// A timer as the management lists show it: with its instance's model and its record.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerJobRow {
    /// The timer.
    pub timer: TimerRow,
    /// The model its instance runs (a timer start event's: the model it starts).
    pub model_id: String,
    /// Its element's name (its id when it has none).
    pub name: String,
    /// When it was set.
    pub created_at: i64,
}

/// Filters, order and time of the timer lists.
#[derive(Debug, Clone, Default)]
pub struct TimerQuery {
    /// Only the timer of this record.
    pub id: Option<String>,
    /// Only timers of this instance.
    pub instance_id: Option<String>,
    /// Only timers of instances of this model.
    pub model_id: Option<String>,
    /// Only timers due before this time.
    pub due_before: Option<i64>,
    /// Only timers due after this time.
    pub due_after: Option<i64>,
    /// Only timers a server holds (true) or none holds (false) at `now`.
    pub locked: Option<bool>,
    /// The time `locked` is judged at.
    pub now: i64,
    /// The order.
    pub order: TimerOrder,
    /// Latest first.
    pub descending: bool,
}

/// What the timer lists are sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimerOrder {
    /// The record id.
    #[default]
    Id,
    /// The due time.
    Due,
    /// The instance.
    Instance,
}

/// Which timers to lease.
#[derive(Debug, Clone, Copy)]
pub struct TimerLease<'a> {
    /// The server that fires them.
    pub owner: &'a str,
    /// The time: timers due by then, not leased to a server whose lease still holds.
    pub now: i64,
    /// When the lease ends.
    pub until: i64,
    /// At most this many, earliest due first.
    pub limit: u64,
}

/// The timers of the store.
#[async_trait::async_trait]
pub trait TimerStore {
    /// Leases the timers due by `lease.now` that no server holds, earliest first.
    async fn lease_timers(&self, lease: TimerLease<'_>) -> Result<Vec<TimerRow>>;
    /// When the earliest timer no server holds at `now` is due (one whose lease ended by
    /// then is held by none): read without taking the writer's lock, so that an idle server
    /// leases only when something is due.
    async fn next_timer(&self, now: i64) -> Result<Option<i64>>;
    /// Removes a timer still set for `due` that its instance no longer waits for (it ended,
    /// or the timer fired elsewhere); returns whether one went.
    async fn forget_timer(&self, record_id: &str, due: i64) -> Result<bool>;
    /// Gives a server's leases back (it stops cleanly): other servers fire them at once.
    async fn release_timers(&self, owner: &str) -> Result<u64>;
    /// The timer of a record.
    async fn timer(&self, record_id: &str) -> Result<Option<TimerRow>>;
    /// The timers of instances and of timer start events (not those of bk-sops' plans) that
    /// `query` leaves, one page, and how many there are.
    async fn list_timers(&self, query: &TimerQuery, page: crate::Page) -> Result<(Vec<TimerJobRow>, u64)>;
}

/// `$store` is the store type, `$db` its sqlx database, `$lock` how a lease skips the rows
/// another server is leasing (see `sql_store`).
macro_rules! timer_store {
    ($store:ty, $db:ty, lock = $lock:literal) => {
        mod timer_impl {
            use super::*;
            use sqlx::{QueryBuilder, Row};
            use $crate::{Page, Result, TimerJobRow, TimerLease, TimerMove, TimerOrder, TimerQuery, TimerRow, TimerStore};

            type DbRow = <$db as sqlx::Database>::Row;

            pub(crate) fn timer_row(r: &DbRow) -> Result<TimerRow> {
                Ok(TimerRow {
                    record_id: r.try_get("record_id")?,
                    instance_id: r.try_get("instance_id")?,
                    element: r.try_get("element")?,
                    due: r.try_get("due")?,
                    owner: r.try_get("owner")?,
                    locked_until: r.try_get("locked_until")?,
                    model_id: r.try_get("model_id")?,
                    fired: r.try_get("fired")?,
                })
            }

            /// Writes timers set or moved on: a timer set again loses its lease.
            pub(crate) fn set_timers(timers: &[&TimerRow]) -> QueryBuilder<$db> {
                let mut q = QueryBuilder::<$db>::new(
                    "INSERT INTO timers (record_id, instance_id, element, due, model_id, fired) ",
                );
                q.push_values(timers, |mut b, t| {
                    b.push_bind(t.record_id.as_str())
                        .push_bind(t.instance_id.as_str())
                        .push_bind(t.element.as_str())
                        .push_bind(t.due)
                        .push_bind(t.model_id.as_deref())
                        .push_bind(t.fired);
                });
                q.push(
                    " ON CONFLICT (record_id) DO UPDATE SET due = EXCLUDED.due, owner = NULL, locked_until = NULL, \
                     model_id = EXCLUDED.model_id, fired = EXCLUDED.fired",
                );
                q
            }

            /// Moves a timer start event's timer on from the due time it fired for (see
            /// [`TimerMove`]); no row changes when another server moved it first.
            pub(crate) fn move_timer(moved: &TimerMove) -> QueryBuilder<$db> {
                let mut q = match moved.to {
                    Some((due, fired)) => {
                        let mut q = QueryBuilder::<$db>::new("UPDATE timers SET owner = NULL, locked_until = NULL, due = ");
                        q.push_bind(due).push(", fired = ").push_bind(fired);
                        q
                    }
                    None => QueryBuilder::<$db>::new("DELETE FROM timers"),
                };
                q.push(" WHERE record_id = ").push_bind(moved.record_id.clone());
                q.push(" AND due = ").push_bind(moved.from);
                q
            }

            /// Removes timers by their record id.
            pub(crate) fn drop_timers(ids: &[String]) -> QueryBuilder<$db> {
                let mut q = QueryBuilder::<$db>::new("DELETE FROM timers WHERE record_id IN (");
                let mut list = q.separated(", ");
                for id in ids {
                    list.push_bind(id.as_str());
                }
                q.push(")");
                q
            }

            #[async_trait::async_trait]
            impl TimerStore for $store {
                async fn lease_timers(&self, lease: TimerLease<'_>) -> Result<Vec<TimerRow>> {
                    if lease.limit == 0 {
                        return Ok(Vec::new());
                    }
                    let _writing = self.writing().await;
                    let mut q = QueryBuilder::<$db>::new("UPDATE timers SET owner = ");
                    q.push_bind(lease.owner).push(", locked_until = ").push_bind(lease.until);
                    q.push(" WHERE record_id IN (SELECT record_id FROM timers WHERE due <= ").push_bind(lease.now);
                    q.push(" AND (locked_until IS NULL OR locked_until <= ").push_bind(lease.now);
                    q.push(") ORDER BY due LIMIT ").push_bind(lease.limit.min(i64::MAX as u64) as i64);
                    q.push(concat!(" ", $lock, ") RETURNING *"));
                    let rows = q.build().fetch_all(&self.pool).await?;
                    let mut timers = rows.iter().map(timer_row).collect::<Result<Vec<_>>>()?;
                    timers.sort_by(|a, b| (a.due, &a.record_id).cmp(&(b.due, &b.record_id)));
                    Ok(timers)
                }

                async fn next_timer(&self, now: i64) -> Result<Option<i64>> {
                    let sql = "SELECT MIN(due) FROM timers WHERE locked_until IS NULL OR locked_until <= $1";
                    Ok(sqlx::query_scalar(sql).bind(now).fetch_one(&self.pool).await?)
                }

                async fn timer(&self, record_id: &str) -> Result<Option<TimerRow>> {
                    let row = sqlx::query("SELECT * FROM timers WHERE record_id = $1")
                        .bind(record_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(timer_row).transpose()
                }

                async fn forget_timer(&self, record_id: &str, due: i64) -> Result<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query("DELETE FROM timers WHERE record_id = $1 AND due = $2")
                        .bind(record_id)
                        .bind(due)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn release_timers(&self, owner: &str) -> Result<u64> {
                    let _writing = self.writing().await;
                    let done = sqlx::query("UPDATE timers SET owner = NULL, locked_until = NULL WHERE owner = $1")
                        .bind(owner)
                        .execute(&self.pool)
                        .await?;
                    Ok(done.rows_affected())
                }

                async fn list_timers(&self, query: &TimerQuery, page: Page) -> Result<(Vec<TimerJobRow>, u64)> {
                    let select = |what: &str| {
                        let mut q = QueryBuilder::<$db>::new(format!(
                            "SELECT {what} FROM timers t LEFT JOIN instances i ON i.id = t.instance_id \
                             LEFT JOIN tasks k ON k.id = t.record_id WHERE (i.id IS NOT NULL OR t.model_id IS NOT NULL)"
                        ));
                        let exact = [
                            ("t.record_id", &query.id),
                            ("t.instance_id", &query.instance_id),
                            ("COALESCE(i.model_id, t.model_id)", &query.model_id),
                        ];
                        for (column, value) in exact {
                            if let Some(v) = value {
                                q.push(format!(" AND {column} = ")).push_bind(v.clone());
                            }
                        }
                        if let Some(before) = query.due_before {
                            q.push(" AND t.due < ").push_bind(before);
                        }
                        if let Some(after) = query.due_after {
                            q.push(" AND t.due > ").push_bind(after);
                        }
                        match query.locked {
                            Some(true) => {
                                q.push(" AND t.owner IS NOT NULL AND t.locked_until > ").push_bind(query.now);
                            }
                            Some(false) => {
                                q.push(" AND (t.locked_until IS NULL OR t.locked_until <= ").push_bind(query.now).push(")");
                            }
                            None => {}
                        }
                        q
                    };
                    let total: i64 = select("COUNT(*)").build_query_scalar().fetch_one(&self.pool).await?;
                    let mut q = select(
                        "t.*, COALESCE(i.model_id, t.model_id) AS job_model, COALESCE(k.name, t.element) AS name, \
                         COALESCE(k.create_time, t.due) AS created_at",
                    );
                    let column = match query.order {
                        TimerOrder::Id => "t.record_id",
                        TimerOrder::Due => "t.due",
                        TimerOrder::Instance => "t.instance_id",
                    };
                    let direction = if query.descending { "DESC" } else { "ASC" };
                    q.push(format!(" ORDER BY {column} {direction}, t.record_id {direction} LIMIT "));
                    q.push_bind(page.limit.min(i64::MAX as u64) as i64);
                    q.push(" OFFSET ").push_bind(page.offset.min(i64::MAX as u64) as i64);
                    let rows = q.build().fetch_all(&self.pool).await?;
                    let rows = rows
                        .iter()
                        .map(|r| {
                            Ok(TimerJobRow {
                                timer: timer_row(r)?,
                                model_id: r.try_get("job_model")?,
                                name: r.try_get("name")?,
                                created_at: r.try_get("created_at")?,
                            })
                        })
                        .collect::<Result<_>>()?;
                    Ok((rows, total as u64))
                }
            }
        }
    };
}

pub(crate) use timer_store;
