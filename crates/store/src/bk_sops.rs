//! What the bk-sops dialect keeps beside models and instances: its templates and tasks,
//! under bk-sops' numeric ids.

use crate::Result;

/// A template: a pipeline tree deployed as a model.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRow {
    /// bk-sops' numeric id (0 in a new row: the store gives it).
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
    /// bk-sops' numeric id (0 in a new row: the store gives it).
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

/// Durable bk-sops templates and tasks.
#[async_trait::async_trait]
pub trait BkSopsStore: Send + Sync {
    /// Stores a template; answers its new id.
    async fn create_template(&self, template: &TemplateRow) -> Result<i64>;
    /// A template by id.
    async fn template(&self, id: i64) -> Result<Option<TemplateRow>>;
    /// The templates of a business, by id.
    async fn templates_of(&self, biz_id: i64) -> Result<Vec<TemplateRow>>;
    /// Stores a task; answers its new id.
    async fn create_bk_task(&self, task: &BkTaskRow) -> Result<i64>;
    /// A task by id.
    async fn bk_task(&self, id: i64) -> Result<Option<BkTaskRow>>;
    /// Records that a task started as `instance_id`; false when it had started already.
    async fn start_bk_task(&self, id: i64, instance_id: &str, executor: &str, now: i64) -> Result<bool>;
}

/// `$store` is the store type, `$db` its sqlx database (see `sql_store`).
macro_rules! bk_sops_store {
    ($store:ty, $db:ty) => {
        mod bk_sops_impl {
            use super::*;
            use sqlx::Row;
            use $crate::{BkSopsStore, BkTaskRow, Result, TemplateRow};

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

            #[async_trait::async_trait]
            impl BkSopsStore for $store {
                async fn create_template(&self, t: &TemplateRow) -> Result<i64> {
                    let _writing = self.writing().await;
                    Ok(sqlx::query_scalar(
                        "INSERT INTO bk_templates (biz_id, name, description, creator, model_id, pipeline_template_id,
                         created_at, edited_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    )
                    .bind(t.biz_id)
                    .bind(&t.name)
                    .bind(&t.description)
                    .bind(&t.creator)
                    .bind(&t.model_id)
                    .bind(&t.pipeline_template_id)
                    .bind(t.created_at)
                    .bind(t.edited_at)
                    .fetch_one(&self.pool)
                    .await?)
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

                async fn create_bk_task(&self, t: &BkTaskRow) -> Result<i64> {
                    let _writing = self.writing().await;
                    Ok(sqlx::query_scalar(
                        "INSERT INTO bk_tasks (biz_id, template_id, name, creator, executor, model_id, instance_id, constants,
                         create_method, flow_type, created_at, started_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
                    )
                    .bind(t.biz_id)
                    .bind(t.template_id)
                    .bind(&t.name)
                    .bind(&t.creator)
                    .bind(&t.executor)
                    .bind(&t.model_id)
                    .bind(&t.instance_id)
                    .bind(&t.constants)
                    .bind(&t.create_method)
                    .bind(&t.flow_type)
                    .bind(t.created_at)
                    .bind(t.started_at)
                    .fetch_one(&self.pool)
                    .await?)
                }

                async fn bk_task(&self, id: i64) -> Result<Option<BkTaskRow>> {
                    let row = sqlx::query("SELECT * FROM bk_tasks WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                    row.as_ref().map(task_row).transpose()
                }

                async fn start_bk_task(&self, id: i64, instance_id: &str, executor: &str, now: i64) -> Result<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query(
                        "UPDATE bk_tasks SET instance_id = $1, executor = $2, started_at = $3 WHERE id = $4 AND instance_id IS NULL",
                    )
                    .bind(instance_id)
                    .bind(executor)
                    .bind(now)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }
            }
        }
    };
}
pub(crate) use bk_sops_store;
