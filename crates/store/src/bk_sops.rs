//! What the bk-sops dialect keeps beside models and instances: its templates and tasks,
//! under bk-sops' numeric ids.

use crate::Result;

/// A template: a pipeline tree deployed as a model.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRow {
    /// bk-sops' numeric id (reserved with [`BkSopsStore::reserve_id`]).
    pub id: i64,
    /// The business it belongs to (`bk_biz_id`).
    pub biz_id: i64,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Who made it.
    pub creator: String,
    /// The model that holds its tree.
    pub model_id: String,
    /// The tree's own id (`pipeline_template_id`).
    pub pipeline_template_id: String,
    /// When it was made (milliseconds since the epoch).
    pub created_at: i64,
    /// When it last changed.
    pub edited_at: i64,
}

/// A task: a run of a template with its constants, a process instance once started.
#[derive(Debug, Clone, PartialEq)]
pub struct BkTaskRow {
    /// bk-sops' numeric id (reserved with [`BkSopsStore::reserve_id`]).
    pub id: i64,
    /// The business it belongs to.
    pub biz_id: i64,
    /// The template it was made from; none for a task made from a raw tree.
    pub template_id: Option<i64>,
    /// Its name.
    pub name: String,
    /// Who made it.
    pub creator: String,
    /// Who started it.
    pub executor: Option<String>,
    /// The model it runs.
    pub model_id: String,
    /// Its process instance, once started.
    pub instance_id: Option<String>,
    /// The constants it was made with, as JSON (`{"${KEY}": value}`).
    pub constants: String,
    /// How it was made (`api`, `app`, …).
    pub create_method: String,
    /// `common` or `common_func`.
    pub flow_type: String,
    /// When it was made.
    pub created_at: i64,
    /// When it was started.
    pub started_at: Option<i64>,
}

/// A bk-sops task started as a process instance, written by a commit; a task started
/// already fails the commit with [`StoreError::Conflict`](crate::StoreError::Conflict).
#[derive(Debug, Clone, PartialEq)]
pub struct BkTaskStart {
    /// The task.
    pub id: i64,
    /// Its instance.
    pub instance_id: String,
    /// Who started it.
    pub executor: String,
    /// When.
    pub at: i64,
}

/// A new name and constants of a bk-sops task that has not started, written by a commit; a
/// task started already fails the commit with [`StoreError::Conflict`](crate::StoreError::Conflict).
#[derive(Debug, Clone, PartialEq)]
pub struct BkTaskEdit {
    /// The task.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its constants, as JSON (`{"${KEY}": value}`).
    pub constants: String,
}

/// The kinds of bk-sops rows that take numeric ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BkIds {
    /// Templates.
    Templates,
    /// Tasks.
    Tasks,
    /// Periodic tasks.
    Periodic,
    /// Clocked tasks.
    Clocked,
}

impl BkIds {
    /// The table of the rows.
    pub(crate) fn table(self) -> &'static str {
        match self {
            BkIds::Templates => "bk_templates",
            BkIds::Tasks => "bk_tasks",
            BkIds::Periodic => "bk_periodic_tasks",
            BkIds::Clocked => "bk_clocked_tasks",
        }
    }
}

/// Filters of a business's task list (bk-sops' `get_task_list`); every one given must hold.
#[derive(Debug, Clone, Default)]
pub struct BkTaskQuery {
    /// The business.
    pub biz_id: i64,
    /// Whose name contains this.
    pub keyword: Option<String>,
    /// Started (true) or not yet (false).
    pub started: Option<bool>,
    /// Whose instance ended (true) or not (false).
    pub finished: Option<bool>,
    /// Of this name exactly.
    pub name: Option<String>,
    /// Made from this template.
    pub template_id: Option<i64>,
    /// Made by this user.
    pub creator: Option<String>,
    /// Started by this user.
    pub executor: Option<String>,
    /// Made this way (`api`, `app`, …).
    pub create_method: Option<String>,
    /// Of this flow type (`common`, `common_func`).
    pub flow_type: Option<String>,
    /// Made in this span (milliseconds since the epoch, both ends included).
    pub created: TimeSpan,
    /// Started in this span.
    pub started_span: TimeSpan,
}

/// A span of time (milliseconds since the epoch, both ends included; an end not given is open).
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeSpan {
    /// Its first moment.
    pub from: Option<i64>,
    /// Its last moment.
    pub to: Option<i64>,
}

/// What bk-sops' task counts (`query_task_count`) are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BkTaskGroup {
    /// `CREATED` (not started), `EXECUTING` (its instance runs) or `FINISHED` (it ended).
    Status,
    /// How the task was made.
    CreateMethod,
    /// Its flow type.
    FlowType,
}

/// Durable bk-sops templates and tasks; they are written by commits
/// ([`WriteBatch`](crate::WriteBatch)), with the model of their own they may bring.
#[async_trait::async_trait]
pub trait BkSopsStore: Send + Sync {
    /// Reserves the next id of a kind of row (ids are never handed out twice, also across
    /// servers; one reserved and not written leaves a gap).
    async fn reserve_id(&self, kind: BkIds) -> Result<i64>;
    /// A template by id.
    async fn template(&self, id: i64) -> Result<Option<TemplateRow>>;
    /// The templates of a business, by id.
    async fn templates_of(&self, biz_id: i64) -> Result<Vec<TemplateRow>>;
    /// A task by id.
    async fn bk_task(&self, id: i64) -> Result<Option<BkTaskRow>>;
    /// A page of the tasks `query` asks for, newest first, with the count of all it asks for.
    async fn bk_tasks(&self, query: &BkTaskQuery, page: crate::Page) -> Result<(Vec<BkTaskRow>, u64)>;
    /// The businesses that have a template or a task, by id.
    async fn bk_businesses(&self) -> Result<Vec<i64>>;
    /// How many of the tasks `query` asks for fall in each group that has any, by group.
    async fn bk_task_counts(&self, query: &BkTaskQuery, group: BkTaskGroup) -> Result<Vec<(String, u64)>>;
}

/// `$store` is the store type, `$db` its sqlx database (see `sql_store`).
macro_rules! bk_sops_store {
    ($store:ty, $db:ty) => {
        mod bk_sops_impl {
            use super::*;
            use sqlx::Row;
            use $crate::{BkIds, BkSopsStore, BkTaskGroup, BkTaskQuery, BkTaskRow, Page, Result, TemplateRow};

            type DbRow = <$db as sqlx::Database>::Row;

            fn template_row(r: &DbRow) -> Result<TemplateRow> {
                Ok(TemplateRow {
                    id: r.try_get("id")?,
                    biz_id: r.try_get("biz_id")?,
                    name: r.try_get("name")?,
                    description: r.try_get("description")?,
                    creator: r.try_get("creator")?,
                    model_id: r.try_get("model_id")?,
                    pipeline_template_id: r.try_get("pipeline_template_id")?,
                    created_at: r.try_get("created_at")?,
                    edited_at: r.try_get("edited_at")?,
                })
            }

            fn task_row(r: &DbRow) -> Result<BkTaskRow> {
                Ok(BkTaskRow {
                    id: r.try_get("id")?,
                    biz_id: r.try_get("biz_id")?,
                    template_id: r.try_get("template_id")?,
                    name: r.try_get("name")?,
                    creator: r.try_get("creator")?,
                    executor: r.try_get("executor")?,
                    model_id: r.try_get("model_id")?,
                    instance_id: r.try_get("instance_id")?,
                    constants: r.try_get("constants")?,
                    create_method: r.try_get("create_method")?,
                    flow_type: r.try_get("flow_type")?,
                    created_at: r.try_get("created_at")?,
                    started_at: r.try_get("started_at")?,
                })
            }

            /// The `FROM … WHERE …` of the tasks `query` asks for (`t` the tasks, `i` their
            /// instances).
            fn task_filter(q: &mut sqlx::QueryBuilder<$db>, query: &BkTaskQuery) {
                q.push(" FROM bk_tasks t LEFT JOIN instances i ON i.id = t.instance_id WHERE t.biz_id = ");
                q.push_bind(query.biz_id);
                if let Some(keyword) = &query.keyword {
                    let pattern = crate::contains_pattern(keyword);
                    q.push(" AND t.name LIKE ").push_bind(pattern).push(crate::LIKE_ESCAPE);
                }
                let texts = [
                    ("t.name", &query.name),
                    ("t.creator", &query.creator),
                    ("t.executor", &query.executor),
                    ("t.create_method", &query.create_method),
                    ("t.flow_type", &query.flow_type),
                ];
                for (column, value) in texts {
                    if let Some(value) = value {
                        q.push(format!(" AND {column} = ")).push_bind(value.clone());
                    }
                }
                if let Some(template) = query.template_id {
                    q.push(" AND t.template_id = ").push_bind(template);
                }
                for (column, span) in [("t.created_at", query.created), ("t.started_at", query.started_span)] {
                    if let Some(from) = span.from {
                        q.push(format!(" AND {column} >= ")).push_bind(from);
                    }
                    if let Some(to) = span.to {
                        q.push(format!(" AND {column} <= ")).push_bind(to);
                    }
                }
                match query.started {
                    Some(true) => q.push(" AND t.instance_id IS NOT NULL"),
                    Some(false) => q.push(" AND t.instance_id IS NULL"),
                    None => q,
                };
                match query.finished {
                    Some(true) => q.push(" AND i.end_time IS NOT NULL"),
                    Some(false) => q.push(" AND i.end_time IS NULL"),
                    None => q,
                };
            }

            /// Inserts a template.
            pub(crate) fn insert_template(t: &TemplateRow) -> sqlx::QueryBuilder<$db> {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO bk_templates (id, biz_id, name, description, creator, model_id, pipeline_template_id,
                     created_at, edited_at) ",
                );
                q.push_values(std::iter::once(t), |mut b, t| {
                    b.push_bind(t.id)
                        .push_bind(t.biz_id)
                        .push_bind(t.name.as_str())
                        .push_bind(t.description.as_deref())
                        .push_bind(t.creator.as_str())
                        .push_bind(t.model_id.as_str())
                        .push_bind(t.pipeline_template_id.as_str())
                        .push_bind(t.created_at)
                        .push_bind(t.edited_at);
                });
                q
            }

            /// Inserts a task.
            pub(crate) fn insert_task(t: &BkTaskRow) -> sqlx::QueryBuilder<$db> {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO bk_tasks (id, biz_id, template_id, name, creator, executor, model_id, instance_id,
                     constants, create_method, flow_type, created_at, started_at) ",
                );
                q.push_values(std::iter::once(t), |mut b, t| {
                    b.push_bind(t.id)
                        .push_bind(t.biz_id)
                        .push_bind(t.template_id)
                        .push_bind(t.name.as_str())
                        .push_bind(t.creator.as_str())
                        .push_bind(t.executor.as_deref())
                        .push_bind(t.model_id.as_str())
                        .push_bind(t.instance_id.as_deref())
                        .push_bind(t.constants.as_str())
                        .push_bind(t.create_method.as_str())
                        .push_bind(t.flow_type.as_str())
                        .push_bind(t.created_at)
                        .push_bind(t.started_at);
                });
                q
            }

            /// Starts a task that has not started (no row changes when it has).
            pub(crate) fn start_task(s: &$crate::BkTaskStart) -> sqlx::QueryBuilder<$db> {
                let mut q = sqlx::QueryBuilder::<$db>::new("UPDATE bk_tasks SET instance_id = ");
                q.push_bind(s.instance_id.as_str())
                    .push(", executor = ")
                    .push_bind(s.executor.as_str())
                    .push(", started_at = ")
                    .push_bind(s.at)
                    .push(" WHERE instance_id IS NULL AND id = ")
                    .push_bind(s.id);
                q
            }

            /// Renames a task that has not started and sets its constants (no row changes when
            /// it has started).
            pub(crate) fn edit_task(e: &$crate::BkTaskEdit) -> sqlx::QueryBuilder<$db> {
                let mut q = sqlx::QueryBuilder::<$db>::new("UPDATE bk_tasks SET name = ");
                q.push_bind(e.name.as_str())
                    .push(", constants = ")
                    .push_bind(e.constants.as_str())
                    .push(" WHERE instance_id IS NULL AND id = ")
                    .push_bind(e.id);
                q
            }

            #[async_trait::async_trait]
            impl BkSopsStore for $store {
                async fn reserve_id(&self, kind: BkIds) -> Result<i64> {
                    let _writing = self.writing().await;
                    let sql = format!(
                        "INSERT INTO bk_sequences (name, next_id) VALUES ($1, (SELECT COALESCE(MAX(id), 0) + 1 FROM {}))
                         ON CONFLICT (name) DO UPDATE SET next_id = bk_sequences.next_id + 1 RETURNING next_id",
                        kind.table()
                    );
                    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(kind.table()).fetch_one(&self.pool).await?)
                }

                async fn template(&self, id: i64) -> Result<Option<TemplateRow>> {
                    let row = sqlx::query("SELECT * FROM bk_templates WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                    row.as_ref().map(template_row).transpose()
                }

                async fn templates_of(&self, biz_id: i64) -> Result<Vec<TemplateRow>> {
                    let rows = sqlx::query("SELECT * FROM bk_templates WHERE biz_id = $1 ORDER BY id")
                        .bind(biz_id)
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(template_row).collect()
                }

                async fn bk_task(&self, id: i64) -> Result<Option<BkTaskRow>> {
                    let row = sqlx::query("SELECT * FROM bk_tasks WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                    row.as_ref().map(task_row).transpose()
                }

                async fn bk_tasks(&self, query: &BkTaskQuery, page: Page) -> Result<(Vec<BkTaskRow>, u64)> {
                    let mut rows = sqlx::QueryBuilder::<$db>::new("SELECT t.*");
                    task_filter(&mut rows, query);
                    rows.push(" ORDER BY t.id DESC LIMIT ").push_bind(page.limit.min(i64::MAX as u64) as i64);
                    rows.push(" OFFSET ").push_bind(page.offset.min(i64::MAX as u64) as i64);
                    let mut count = sqlx::QueryBuilder::<$db>::new("SELECT COUNT(*)");
                    task_filter(&mut count, query);
                    let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
                    let rows = rows.build().fetch_all(&self.pool).await?;
                    Ok((rows.iter().map(task_row).collect::<Result<_>>()?, total as u64))
                }

                async fn bk_businesses(&self) -> Result<Vec<i64>> {
                    let sql = "SELECT biz_id FROM bk_templates UNION SELECT biz_id FROM bk_tasks ORDER BY biz_id";
                    Ok(sqlx::query_scalar(sql).fetch_all(&self.pool).await?)
                }

                async fn bk_task_counts(&self, query: &BkTaskQuery, group: BkTaskGroup) -> Result<Vec<(String, u64)>> {
                    let column = match group {
                        BkTaskGroup::Status => {
                            "CASE WHEN t.instance_id IS NULL THEN 'CREATED' WHEN i.end_time IS NULL THEN 'EXECUTING' \
                             ELSE 'FINISHED' END"
                        }
                        BkTaskGroup::CreateMethod => "t.create_method",
                        BkTaskGroup::FlowType => "t.flow_type",
                    };
                    let mut q = sqlx::QueryBuilder::<$db>::new(format!("SELECT {column} AS grp, COUNT(*) AS n"));
                    task_filter(&mut q, query);
                    q.push(" GROUP BY grp ORDER BY grp");
                    let rows = q.build().fetch_all(&self.pool).await?;
                    rows.iter()
                        .map(|r| Ok((r.try_get::<String, _>("grp")?, r.try_get::<i64, _>("n")? as u64)))
                        .collect()
                }
            }
        }
    };
}
pub(crate) use bk_sops_store;
