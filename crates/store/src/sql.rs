//! The one SQL implementation of [`Store`](crate::Store), instantiated for each backend.
//!
//! SQLite and PostgreSQL accept the same statements here (`$n` placeholders, `CAST`,
//! `ON CONFLICT … DO UPDATE`), so the implementation is written once as a macro over the
//! store type and its sqlx database; each backend module adds only how it connects.

use crate::StoreError;

pub(crate) fn json<T: serde::de::DeserializeOwned>(text: Option<String>) -> Result<Option<T>, StoreError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(e.to_string()))).transpose()
}

pub(crate) const INSERT_MODEL: &str = "INSERT INTO models (id, deployment_id, key, name, version, source, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub(crate) const NEXT_VERSION: &str = "SELECT COALESCE(MAX(version), 0) + 1 FROM models WHERE key = $1";
pub(crate) const UPSERT_INSTANCE: &str = "INSERT INTO instances
    (id, record_id, model_id, model_key, name, status, variables, start_time, end_time, outputs, final_vars, failure, state)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, end_time = EXCLUDED.end_time, outputs = EXCLUDED.outputs,
      final_vars = EXCLUDED.final_vars, failure = EXCLUDED.failure, state = EXCLUDED.state";
pub(crate) const UPSERT_TASK: &str = "INSERT INTO tasks
    (id, task_id, instance_id, element, name, kind, namespace, stone, create_time, end_time, status, reason, params, outputs, progress)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
    ON CONFLICT (id) DO UPDATE SET end_time = EXCLUDED.end_time, status = EXCLUDED.status, reason = EXCLUDED.reason,
      outputs = EXCLUDED.outputs, progress = EXCLUDED.progress";
pub(crate) const INSERT_JOB: &str =
    "INSERT INTO jobs (record_id, instance_id, stone, params, created_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const INSTANCE_COLUMNS: &str =
    "id, record_id, model_id, model_key, name, status, variables, start_time, end_time, outputs, final_vars, failure";

macro_rules! sql_store {
    ($store:ty, $db:ty) => {
        use flowstone_engine::{Job, TaskRecord};
        use sqlx::{QueryBuilder, Row};
        use $crate::sql::{
            INSERT_JOB, INSERT_MODEL, INSTANCE_COLUMNS, NEXT_VERSION, UPSERT_INSTANCE, UPSERT_TASK, json,
        };
        use $crate::{
            InstanceFilter, InstanceRow, JobRow, ModelRow, NewModel, Page, Result, Store, StoreError, TaskRow,
            WriteBatch,
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
            })
        }

        fn instance_row(r: &DbRow) -> Result<InstanceRow> {
            Ok(InstanceRow {
                id: r.try_get("id")?,
                record_id: r.try_get("record_id")?,
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
                    status: r.try_get("status")?,
                    reason: r.try_get("reason")?,
                    params: json(r.try_get("params")?)?,
                    outputs: json(r.try_get("outputs")?)?,
                    progress: r.try_get::<Option<i64>, _>("progress")?.map(|p| p.clamp(0, 100) as u8),
                },
            })
        }

        fn job_row(r: &DbRow) -> Result<JobRow> {
            let params: String = r.try_get("params")?;
            Ok(JobRow {
                instance_id: r.try_get("instance_id")?,
                job: Job {
                    record_id: r.try_get("record_id")?,
                    stone: r.try_get("stone")?,
                    params: serde_json::from_str(&params).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                },
                created_at: r.try_get("created_at")?,
            })
        }

        #[async_trait::async_trait]
        impl Store for $store {
            async fn deploy(&self, deployment_id: &str, models: Vec<NewModel>, now: i64) -> Result<Vec<ModelRow>> {
                let mut tx = self.pool.begin().await?;
                let mut rows = Vec::with_capacity(models.len());
                for m in models {
                    let version: i64 = sqlx::query_scalar(NEXT_VERSION).bind(&m.key).fetch_one(&mut *tx).await?;
                    sqlx::query(INSERT_MODEL)
                        .bind(&m.id)
                        .bind(deployment_id)
                        .bind(&m.key)
                        .bind(&m.name)
                        .bind(version)
                        .bind(&m.source)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    rows.push(ModelRow {
                        id: m.id,
                        deployment_id: deployment_id.to_owned(),
                        key: m.key,
                        name: m.name,
                        version,
                        source: m.source,
                        created_at: now,
                    });
                }
                tx.commit().await?;
                Ok(rows)
            }

            async fn model(&self, id: &str) -> Result<Option<ModelRow>> {
                let row = sqlx::query("SELECT * FROM models WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                row.as_ref().map(model_row).transpose()
            }

            async fn models_of_deployment(&self, deployment_id: &str) -> Result<Vec<ModelRow>> {
                let rows = sqlx::query("SELECT * FROM models WHERE deployment_id = $1 ORDER BY key")
                    .bind(deployment_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(model_row).collect()
            }

            async fn latest_model(&self, key: &str) -> Result<Option<ModelRow>> {
                let row = sqlx::query("SELECT * FROM models WHERE key = $1 ORDER BY version DESC LIMIT 1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(model_row).transpose()
            }

            async fn list_models(&self, key: Option<&str>, page: Page) -> Result<(Vec<ModelRow>, u64)> {
                let total: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM models WHERE (CAST($1 AS TEXT) IS NULL OR key = $1)")
                        .bind(key)
                        .fetch_one(&self.pool)
                        .await?;
                let rows = sqlx::query(
                    "SELECT * FROM models WHERE (CAST($1 AS TEXT) IS NULL OR key = $1)
                     ORDER BY created_at DESC, key, version DESC LIMIT $2 OFFSET $3",
                )
                .bind(key)
                .bind(page.limit as i64)
                .bind(page.offset as i64)
                .fetch_all(&self.pool)
                .await?;
                Ok((rows.iter().map(model_row).collect::<Result<_>>()?, total as u64))
            }

            async fn commit(&self, batch: &WriteBatch) -> Result<()> {
                if batch.is_empty() {
                    return Ok(());
                }
                let mut tx = self.pool.begin().await?;
                for (row, state) in &batch.instances {
                    sqlx::query(UPSERT_INSTANCE)
                        .bind(&row.id)
                        .bind(&row.record_id)
                        .bind(&row.model_id)
                        .bind(&row.model_key)
                        .bind(&row.name)
                        .bind(&row.status)
                        .bind(&row.variables)
                        .bind(row.start_time)
                        .bind(row.end_time)
                        .bind(&row.outputs)
                        .bind(&row.final_vars)
                        .bind(&row.failure)
                        .bind(state)
                        .execute(&mut *tx)
                        .await?;
                }
                for TaskRow { instance_id, record: r } in &batch.tasks {
                    sqlx::query(UPSERT_TASK)
                        .bind(&r.id)
                        .bind(&r.task_id)
                        .bind(instance_id)
                        .bind(&r.element)
                        .bind(&r.name)
                        .bind(&r.kind)
                        .bind(&r.namespace)
                        .bind(&r.stone)
                        .bind(r.create_time)
                        .bind(r.end_time)
                        .bind(&r.status)
                        .bind(&r.reason)
                        .bind(r.params.as_ref().map(ToString::to_string))
                        .bind(r.outputs.as_ref().map(ToString::to_string))
                        .bind(r.progress.map(i64::from))
                        .execute(&mut *tx)
                        .await?;
                }
                for j in &batch.jobs {
                    sqlx::query(INSERT_JOB)
                        .bind(&j.job.record_id)
                        .bind(&j.instance_id)
                        .bind(&j.job.stone)
                        .bind(j.job.params.to_string())
                        .bind(j.created_at)
                        .execute(&mut *tx)
                        .await?;
                }
                for id in &batch.dropped_jobs {
                    sqlx::query("DELETE FROM jobs WHERE record_id = $1").bind(id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn instance(&self, id: &str) -> Result<Option<InstanceRow>> {
                let mut q = QueryBuilder::<$db>::new(format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = "));
                q.push_bind(id.to_owned()).push(" OR record_id = ").push_bind(id.to_owned());
                let row = q.build().fetch_optional(&self.pool).await?;
                row.as_ref().map(instance_row).transpose()
            }

            async fn instance_state(&self, id: &str) -> Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT state FROM instances WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn list_instances(&self, filter: &InstanceFilter, page: Page) -> Result<(Vec<InstanceRow>, u64)> {
                let push_filter = |q: &mut QueryBuilder<$db>| {
                    q.push(" WHERE 1 = 1");
                    if let Some(s) = &filter.status {
                        q.push(" AND status = ").push_bind(s.clone());
                    }
                    if let Some(k) = &filter.model_key {
                        q.push(" AND model_key = ").push_bind(k.clone());
                    }
                };
                let mut count = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM instances");
                push_filter(&mut count);
                let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
                let mut q = QueryBuilder::<$db>::new(format!("SELECT {INSTANCE_COLUMNS} FROM instances"));
                push_filter(&mut q);
                q.push(" ORDER BY start_time DESC, id DESC LIMIT ").push_bind(page.limit as i64);
                q.push(" OFFSET ").push_bind(page.offset as i64);
                let rows = q.build().fetch_all(&self.pool).await?;
                Ok((rows.iter().map(instance_row).collect::<Result<_>>()?, total as u64))
            }

            async fn tasks_of_instance(&self, instance_id: &str) -> Result<Vec<TaskRow>> {
                let rows = sqlx::query("SELECT * FROM tasks WHERE instance_id = $1 ORDER BY create_time, id")
                    .bind(instance_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(task_row).collect()
            }

            async fn task(&self, id: &str) -> Result<Option<TaskRow>> {
                let row = sqlx::query(
                    "SELECT * FROM tasks WHERE id = $1 OR task_id = $1 ORDER BY create_time DESC, id DESC LIMIT 1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(task_row).transpose()
            }

            async fn jobs_for(&self, stones: &[&str]) -> Result<Vec<JobRow>> {
                if stones.is_empty() {
                    return Ok(Vec::new());
                }
                let mut q = QueryBuilder::<$db>::new("SELECT * FROM jobs WHERE stone IN (");
                let mut list = q.separated(", ");
                for s in stones {
                    list.push_bind(s.to_string());
                }
                q.push(") ORDER BY created_at, record_id");
                let rows = q.build().fetch_all(&self.pool).await?;
                rows.iter().map(job_row).collect()
            }
        }
    };
}

pub(crate) use sql_store;
