//! bk-sops' planned tasks, kept beside its templates and tasks: periodic tasks (a task made
//! each time a crontab comes due) and clocked tasks (a task made once, at a planned time).
//! Their timers are rows of `timers` like every other; a commit that fires one writes the task
//! it makes with it.

use crate::{Page, Result};

/// A periodic task: a task of its template made and started each time its crontab comes due
/// while it is enabled.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodicRow {
    /// bk-sops' numeric id (reserved with [`BkSopsStore::reserve_id`](crate::BkSopsStore::reserve_id)).
    pub id: i64,
    /// The business it belongs to.
    pub biz_id: i64,
    /// The template its tasks are made from.
    pub template_id: i64,
    /// Its name (its tasks are named after it and the time they were made).
    pub name: String,
    /// Who made it; its tasks are made and started in their name.
    pub creator: String,
    /// The model its tasks run (the template's, or one without the nodes left out).
    pub model_id: String,
    /// The constants its tasks are made with, as JSON (`{"${KEY}": value}`).
    pub constants: String,
    /// Its crontab, as JSON of bk-sops' fields (`minute`, `hour`, `day_of_week`, …).
    pub cron: String,
    /// Whether its crontab makes tasks.
    pub enabled: bool,
    /// How many tasks it made.
    pub total_run_count: i64,
    /// When it last made one.
    pub last_run_at: Option<i64>,
    /// Who changed it last.
    pub editor: Option<String>,
    /// When.
    pub edited_at: Option<i64>,
    /// When it was made.
    pub created_at: i64,
}

/// A change of a periodic task, written by a commit: the fields given replace the stored ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PeriodicChange {
    /// The periodic task.
    pub id: i64,
    /// Enabled or not.
    pub enabled: Option<bool>,
    /// A new crontab (JSON).
    pub cron: Option<String>,
    /// New constants (JSON).
    pub constants: Option<String>,
    /// Who changes it.
    pub editor: String,
    /// When.
    pub at: i64,
}

/// A task a periodic task made, counted by a commit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeriodicRun {
    /// The periodic task.
    pub id: i64,
    /// When it made the task.
    pub at: i64,
}

/// A clocked task: a task of its template made and started once, at its planned time.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockedRow {
    /// bk-sops' numeric id (reserved with [`BkSopsStore::reserve_id`](crate::BkSopsStore::reserve_id)).
    pub id: i64,
    /// The business it belongs to.
    pub biz_id: i64,
    /// The template its task is made from.
    pub template_id: i64,
    /// The template's name when it was planned.
    pub template_name: String,
    /// The name its task is named after.
    pub task_name: String,
    /// Who planned it; its task is made and started in their name.
    pub creator: String,
    /// Who changed it last (empty: nobody).
    pub editor: String,
    /// The model its task runs (the template's, or one without the nodes left out).
    pub model_id: String,
    /// What its task is made with, as JSON (`{"constants": {…}, "template_schemes_id": […]}`).
    pub task_params: String,
    /// When its task is made (milliseconds since the epoch).
    pub plan_start_time: i64,
    /// `not_started`, `started` or `start_failed`.
    pub state: String,
    /// The task made, once it is.
    pub task_id: Option<i64>,
    /// When it was planned.
    pub created_at: i64,
    /// When it changed last.
    pub edited_at: i64,
}

/// A clocked task came due, written by a commit: it made its task (or failed to).
#[derive(Debug, Clone, PartialEq)]
pub struct ClockedRun {
    /// The clocked task.
    pub id: i64,
    /// `started` or `start_failed`.
    pub state: String,
    /// The task it made.
    pub task_id: Option<i64>,
}

/// Filters of a business's clocked tasks (bk-sops' `get_clocked_task_list`); every one given
/// must hold.
#[derive(Debug, Clone, Default)]
pub struct ClockedQuery {
    /// The business.
    pub biz_id: i64,
    /// This one only.
    pub id: Option<i64>,
    /// Whose task name contains this.
    pub task_name: Option<String>,
    /// Whose creator contains this.
    pub creator: Option<String>,
    /// Whose editor contains this.
    pub editor: Option<String>,
    /// In this state.
    pub state: Option<String>,
}

/// Durable periodic and clocked tasks; they are written by commits
/// ([`WriteBatch`](crate::WriteBatch)).
#[async_trait::async_trait]
pub trait BkPlanStore: Send + Sync {
    /// A periodic task by id.
    async fn periodic_task(&self, id: i64) -> Result<Option<PeriodicRow>>;
    /// The periodic tasks of a business, by id.
    async fn periodic_tasks_of(&self, biz_id: i64) -> Result<Vec<PeriodicRow>>;
    /// A clocked task by id.
    async fn clocked_task(&self, id: i64) -> Result<Option<ClockedRow>>;
    /// A page of the clocked tasks `query` asks for, newest first, with the count of all it
    /// asks for.
    async fn clocked_tasks(&self, query: &ClockedQuery, page: Page) -> Result<(Vec<ClockedRow>, u64)>;
}

/// `$store` is the store type, `$db` its sqlx database (see `sql_store`).
macro_rules! bk_plans_store {
    ($store:ty, $db:ty) => {
        mod bk_plans_impl {
            use super::*;
            use sqlx::Row;
            use $crate::{
                BkPlanStore, ClockedQuery, ClockedRow, ClockedRun, Page, PeriodicChange, PeriodicRow, PeriodicRun,
                Result,
            };

            type DbRow = <$db as sqlx::Database>::Row;

            fn periodic_row(r: &DbRow) -> Result<PeriodicRow> {
                Ok(PeriodicRow {
                    id: r.try_get("id")?,
                    biz_id: r.try_get("biz_id")?,
                    template_id: r.try_get("template_id")?,
                    name: r.try_get("name")?,
                    creator: r.try_get("creator")?,
                    model_id: r.try_get("model_id")?,
                    constants: r.try_get("constants")?,
                    cron: r.try_get("cron")?,
                    enabled: r.try_get("enabled")?,
                    total_run_count: r.try_get("total_run_count")?,
                    last_run_at: r.try_get("last_run_at")?,
                    editor: r.try_get("editor")?,
                    edited_at: r.try_get("edited_at")?,
                    created_at: r.try_get("created_at")?,
                })
            }

            /// Inserts a periodic task.
            pub(crate) fn insert_periodic(t: &PeriodicRow) -> sqlx::QueryBuilder<$db> {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO bk_periodic_tasks (id, biz_id, template_id, name, creator, model_id, constants, cron,
                     enabled, total_run_count, last_run_at, editor, edited_at, created_at) ",
                );
                q.push_values(std::iter::once(t), |mut b, t| {
                    b.push_bind(t.id)
                        .push_bind(t.biz_id)
                        .push_bind(t.template_id)
                        .push_bind(t.name.as_str())
                        .push_bind(t.creator.as_str())
                        .push_bind(t.model_id.as_str())
                        .push_bind(t.constants.as_str())
                        .push_bind(t.cron.as_str())
                        .push_bind(t.enabled)
                        .push_bind(t.total_run_count)
                        .push_bind(t.last_run_at)
                        .push_bind(t.editor.as_deref())
                        .push_bind(t.edited_at)
                        .push_bind(t.created_at);
                });
                q
            }

            /// Changes the fields of a periodic task a change gives.
            pub(crate) fn change_periodic(c: &PeriodicChange) -> sqlx::QueryBuilder<$db> {
                let mut q = sqlx::QueryBuilder::<$db>::new("UPDATE bk_periodic_tasks SET editor = ");
                q.push_bind(c.editor.as_str()).push(", edited_at = ").push_bind(c.at);
                if let Some(enabled) = c.enabled {
                    q.push(", enabled = ").push_bind(enabled);
                }
                if let Some(cron) = &c.cron {
                    q.push(", cron = ").push_bind(cron.as_str());
                }
                if let Some(constants) = &c.constants {
                    q.push(", constants = ").push_bind(constants.as_str());
                }
                q.push(" WHERE id = ").push_bind(c.id);
                q
            }

            /// Counts a task a periodic task made.
            pub(crate) fn count_periodic_run(r: &PeriodicRun) -> sqlx::QueryBuilder<$db> {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE bk_periodic_tasks SET total_run_count = total_run_count + 1, last_run_at = ",
                );
                q.push_bind(r.at).push(" WHERE id = ").push_bind(r.id);
                q
            }

            fn clocked_row(r: &DbRow) -> Result<ClockedRow> {
                Ok(ClockedRow {
                    id: r.try_get("id")?,
                    biz_id: r.try_get("biz_id")?,
                    template_id: r.try_get("template_id")?,
                    template_name: r.try_get("template_name")?,
                    task_name: r.try_get("task_name")?,
                    creator: r.try_get("creator")?,
                    editor: r.try_get("editor")?,
                    model_id: r.try_get("model_id")?,
                    task_params: r.try_get("task_params")?,
                    plan_start_time: r.try_get("plan_start_time")?,
                    state: r.try_get("state")?,
                    task_id: r.try_get("task_id")?,
                    created_at: r.try_get("created_at")?,
                    edited_at: r.try_get("edited_at")?,
                })
            }

            /// Inserts a clocked task.
            pub(crate) fn insert_clocked(t: &ClockedRow) -> sqlx::QueryBuilder<$db> {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO bk_clocked_tasks (id, biz_id, template_id, template_name, task_name, creator, editor,
                     model_id, task_params, plan_start_time, state, task_id, created_at, edited_at) ",
                );
                q.push_values(std::iter::once(t), |mut b, t| {
                    b.push_bind(t.id)
                        .push_bind(t.biz_id)
                        .push_bind(t.template_id)
                        .push_bind(t.template_name.as_str())
                        .push_bind(t.task_name.as_str())
                        .push_bind(t.creator.as_str())
                        .push_bind(t.editor.as_str())
                        .push_bind(t.model_id.as_str())
                        .push_bind(t.task_params.as_str())
                        .push_bind(t.plan_start_time)
                        .push_bind(t.state.as_str())
                        .push_bind(t.task_id)
                        .push_bind(t.created_at)
                        .push_bind(t.edited_at);
                });
                q
            }

            /// Writes what a clocked task's firing made of it.
            pub(crate) fn clocked_ran(r: &ClockedRun) -> sqlx::QueryBuilder<$db> {
                let mut q = sqlx::QueryBuilder::<$db>::new("UPDATE bk_clocked_tasks SET state = ");
                q.push_bind(r.state.as_str()).push(", task_id = ").push_bind(r.task_id);
                q.push(" WHERE id = ").push_bind(r.id);
                q
            }

            /// The `FROM … WHERE …` of the clocked tasks `query` asks for.
            fn clocked_filter(q: &mut sqlx::QueryBuilder<$db>, query: &ClockedQuery) {
                q.push(" FROM bk_clocked_tasks WHERE biz_id = ").push_bind(query.biz_id);
                if let Some(id) = query.id {
                    q.push(" AND id = ").push_bind(id);
                }
                for (column, value) in
                    [("task_name", &query.task_name), ("creator", &query.creator), ("editor", &query.editor)]
                {
                    if let Some(value) = value {
                        let pattern = crate::contains_pattern(&value.to_lowercase());
                        q.push(format!(" AND LOWER({column}) LIKE ")).push_bind(pattern).push(crate::LIKE_ESCAPE);
                    }
                }
                if let Some(state) = &query.state {
                    q.push(" AND state = ").push_bind(state.clone());
                }
            }

            #[async_trait::async_trait]
            impl BkPlanStore for $store {
                async fn periodic_task(&self, id: i64) -> Result<Option<PeriodicRow>> {
                    let row = sqlx::query("SELECT * FROM bk_periodic_tasks WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(periodic_row).transpose()
                }

                async fn periodic_tasks_of(&self, biz_id: i64) -> Result<Vec<PeriodicRow>> {
                    let rows = sqlx::query("SELECT * FROM bk_periodic_tasks WHERE biz_id = $1 ORDER BY id")
                        .bind(biz_id)
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(periodic_row).collect()
                }

                async fn clocked_task(&self, id: i64) -> Result<Option<ClockedRow>> {
                    let row = sqlx::query("SELECT * FROM bk_clocked_tasks WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(clocked_row).transpose()
                }

                async fn clocked_tasks(&self, query: &ClockedQuery, page: Page) -> Result<(Vec<ClockedRow>, u64)> {
                    let mut rows = sqlx::QueryBuilder::<$db>::new("SELECT *");
                    clocked_filter(&mut rows, query);
                    rows.push(" ORDER BY id DESC LIMIT ").push_bind(page.limit.min(i64::MAX as u64) as i64);
                    rows.push(" OFFSET ").push_bind(page.offset.min(i64::MAX as u64) as i64);
                    let mut count = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*)");
                    clocked_filter(&mut count, query);
                    let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
                    let rows = rows.build().fetch_all(&self.pool).await?;
                    Ok((rows.iter().map(clocked_row).collect::<Result<_>>()?, total as u64))
                }
            }
        }
    };
}
pub(crate) use bk_plans_store;
