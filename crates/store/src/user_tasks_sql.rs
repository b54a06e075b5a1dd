//! The SQL implementation of [`UserTaskStore`](crate::UserTaskStore), written once for both
//! backends like [`sql_store`](crate::sql).

/// Columns of `user_tasks` in insert order.
pub(crate) const USER_TASK_COLUMNS: &str = "id, instance_id, model_id, element, name, description, assignee, owner,
    delegation, priority, due_date, category, form_key, parent_task_id, tenant_id, create_time, claim_time, end_time,
    delete_reason, version";

/// `$store` is the store type, `$db` its sqlx database, `$variables` writes a variable filter
/// in its SQL; the store has `pool` (see `sql_store`, whose commit writes what people change
/// of tasks).
macro_rules! user_task_store {
    ($store:ty, $db:ty, variables = $variables:path) => {
        mod user_task_impl {
            use super::*;
            use sqlx::{QueryBuilder, Row};
            use $crate::{
                AttachmentRow, CommentRow, Page, Result, TaskLink, TaskPartWrite, TaskVariable, UserTaskQuery,
                UserTaskRow, UserTaskStore,
            };

            type DbRow = <$db as sqlx::Database>::Row;

            pub(crate) fn user_task_row(r: &DbRow) -> Result<UserTaskRow> {
                Ok(UserTaskRow {
                    id: r.try_get("id")?,
                    instance_id: r.try_get("instance_id")?,
                    model_id: r.try_get("model_id")?,
                    element: r.try_get("element")?,
                    name: r.try_get("name")?,
                    description: r.try_get("description")?,
                    assignee: r.try_get("assignee")?,
                    owner: r.try_get("owner")?,
                    delegation: r.try_get("delegation")?,
                    priority: r.try_get("priority")?,
                    due_date: r.try_get("due_date")?,
                    category: r.try_get("category")?,
                    form_key: r.try_get("form_key")?,
                    parent_task_id: r.try_get("parent_task_id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    create_time: r.try_get("create_time")?,
                    claim_time: r.try_get("claim_time")?,
                    end_time: r.try_get("end_time")?,
                    delete_reason: r.try_get("delete_reason")?,
                    version: r.try_get("version")?,
                })
            }

            /// Binds a task's columns in [`USER_TASK_COLUMNS`](crate::user_tasks_sql::USER_TASK_COLUMNS) order.
            pub(crate) fn bind_user_task(
                mut b: sqlx::query_builder::Separated<'_, $db, &'static str>,
                t: &UserTaskRow,
            ) {
                b.push_bind(t.id.as_str())
                    .push_bind(t.instance_id.as_deref())
                    .push_bind(t.model_id.as_deref())
                    .push_bind(t.element.as_deref())
                    .push_bind(t.name.as_deref())
                    .push_bind(t.description.as_deref())
                    .push_bind(t.assignee.as_deref())
                    .push_bind(t.owner.as_deref())
                    .push_bind(t.delegation.as_deref())
                    .push_bind(t.priority)
                    .push_bind(t.due_date)
                    .push_bind(t.category.as_deref())
                    .push_bind(t.form_key.as_deref())
                    .push_bind(t.parent_task_id.as_deref())
                    .push_bind(t.tenant_id.as_deref())
                    .push_bind(t.create_time)
                    .push_bind(t.claim_time)
                    .push_bind(t.end_time)
                    .push_bind(t.delete_reason.as_deref())
                    .push_bind(t.version);
            }

            pub(crate) fn insert_links<'a>(links: impl Iterator<Item = &'a TaskLink>) -> QueryBuilder<$db> {
                let mut q = QueryBuilder::<$db>::new("INSERT INTO task_links (task_id, user_id, group_id, type) ");
                q.push_values(links, |mut b, l| {
                    b.push_bind(l.task_id.as_str())
                        .push_bind(l.user_id.as_deref())
                        .push_bind(l.group_id.as_deref())
                        .push_bind(l.kind.as_str());
                });
                q
            }

            fn comment_row(r: &DbRow) -> Result<CommentRow> {
                Ok(CommentRow {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    task_id: r.try_get("task_id")?,
                    instance_id: r.try_get("instance_id")?,
                    author: r.try_get("author")?,
                    time: r.try_get("time")?,
                    action: r.try_get("action")?,
                    message: r.try_get("message")?,
                })
            }

            /// Writes a change people made to a task (or a move of its process to another
            /// version), if the stored version is the one it read.
            pub(crate) fn update_user_task(row: &UserTaskRow) -> QueryBuilder<$db> {
                let mut q = QueryBuilder::<$db>::new("UPDATE user_tasks SET model_id = ");
                q.push_bind(row.model_id.as_deref())
                    .push(", element = ")
                    .push_bind(row.element.as_deref())
                    .push(", name = ")
                    .push_bind(row.name.as_deref())
                    .push(", description = ")
                    .push_bind(row.description.as_deref())
                    .push(", assignee = ")
                    .push_bind(row.assignee.as_deref())
                    .push(", owner = ")
                    .push_bind(row.owner.as_deref())
                    .push(", delegation = ")
                    .push_bind(row.delegation.as_deref())
                    .push(", priority = ")
                    .push_bind(row.priority)
                    .push(", due_date = ")
                    .push_bind(row.due_date)
                    .push(", category = ")
                    .push_bind(row.category.as_deref())
                    .push(", form_key = ")
                    .push_bind(row.form_key.as_deref())
                    .push(", parent_task_id = ")
                    .push_bind(row.parent_task_id.as_deref())
                    .push(", tenant_id = ")
                    .push_bind(row.tenant_id.as_deref())
                    .push(", claim_time = ")
                    .push_bind(row.claim_time)
                    .push(", end_time = ")
                    .push_bind(row.end_time)
                    .push(", delete_reason = ")
                    .push_bind(row.delete_reason.as_deref())
                    .push(", version = ")
                    .push_bind(row.version)
                    .push(" WHERE id = ")
                    .push_bind(row.id.as_str())
                    .push(" AND version = ")
                    .push_bind(row.version - 1);
                q
            }

            pub(crate) fn insert_comments<'a>(comments: impl IntoIterator<Item = &'a CommentRow>) -> QueryBuilder<$db> {
                let mut q = QueryBuilder::<$db>::new(
                    "INSERT INTO task_comments (id, kind, task_id, instance_id, author, time, action, message) ",
                );
                q.push_values(comments, |mut b, c| {
                    b.push_bind(c.id.as_str())
                        .push_bind(c.kind.as_str())
                        .push_bind(c.task_id.as_deref())
                        .push_bind(c.instance_id.as_deref())
                        .push_bind(c.author.as_deref())
                        .push_bind(c.time)
                        .push_bind(c.action.as_str())
                        .push_bind(c.message.as_str());
                });
                q
            }

            fn attachment_row(r: &DbRow, with_content: bool) -> Result<AttachmentRow> {
                Ok(AttachmentRow {
                    id: r.try_get("id")?,
                    task_id: r.try_get("task_id")?,
                    instance_id: r.try_get("instance_id")?,
                    name: r.try_get("name")?,
                    description: r.try_get("description")?,
                    kind: r.try_get("type")?,
                    url: r.try_get("url")?,
                    content: if with_content { r.try_get("content")? } else { None },
                    has_content: r.try_get("has_content")?,
                    author: r.try_get("author")?,
                    time: r.try_get("time")?,
                })
            }

            /// `sql` on the rows of exactly this link.
            /// Statement `at` (of [`TaskPartWrite::statements`]) of a write of task `task`'s parts.
            pub(crate) fn part_statement(task: &str, write: &TaskPartWrite, at: usize) -> QueryBuilder<$db> {
                match write {
                    TaskPartWrite::SetVariables(vars) => {
                        let v = &vars[at];
                        let mut q = QueryBuilder::<$db>::new(
                            "INSERT INTO task_variables (task_id, name, type, value, bytes) VALUES (",
                        );
                        let mut values = q.separated(", ");
                        values.push_bind(task).push_bind(v.name.as_str()).push_bind(v.kind.as_str());
                        values.push_bind(v.value.as_deref()).push_bind(v.bytes.as_deref());
                        q.push(
                            ") ON CONFLICT (task_id, name) DO UPDATE SET type = EXCLUDED.type, value = EXCLUDED.value,
                             bytes = EXCLUDED.bytes",
                        );
                        q
                    }
                    TaskPartWrite::DeleteVariables(names) => {
                        let mut q = QueryBuilder::<$db>::new("DELETE FROM task_variables WHERE task_id = ");
                        q.push_bind(task);
                        if let Some(names) = names {
                            q.push(" AND name IN (");
                            let mut list = q.separated(", ");
                            list.push_bind("");
                            for n in names {
                                list.push_bind(n.as_str());
                            }
                            q.push(")");
                        }
                        q
                    }
                    TaskPartWrite::AddLink(link) => insert_links(std::iter::once(link)),
                    TaskPartWrite::RemoveLink(link) => matching_link("DELETE FROM task_links", link),
                    TaskPartWrite::DeleteComment(id) => {
                        let mut q = QueryBuilder::<$db>::new("DELETE FROM task_comments WHERE kind = 'comment' AND id = ");
                        q.push_bind(id.as_str());
                        q
                    }
                    TaskPartWrite::AddAttachment(a) => {
                        let mut q = QueryBuilder::<$db>::new(
                            "INSERT INTO task_attachments (id, task_id, instance_id, name, description, type, url, content,
                             author, time) ",
                        );
                        q.push_values(std::iter::once(a), |mut b, a| {
                            b.push_bind(a.id.as_str())
                                .push_bind(task)
                                .push_bind(a.instance_id.as_deref())
                                .push_bind(a.name.as_str())
                                .push_bind(a.description.as_deref())
                                .push_bind(a.kind.as_deref())
                                .push_bind(a.url.as_deref())
                                .push_bind(a.content.as_deref())
                                .push_bind(a.author.as_deref())
                                .push_bind(a.time);
                        });
                        q
                    }
                    TaskPartWrite::DeleteAttachment(id) => {
                        let mut q = QueryBuilder::<$db>::new("DELETE FROM task_attachments WHERE id = ");
                        q.push_bind(id.as_str());
                        q
                    }
                    TaskPartWrite::Delete => {
                        let table = $crate::user_tasks::TASK_TABLES.get(at).map_or("user_tasks", |t| *t);
                        let column = if table == "user_tasks" { "id" } else { "task_id" };
                        let mut q = QueryBuilder::<$db>::new(format!("DELETE FROM {table} WHERE {column} = "));
                        q.push_bind(task);
                        q
                    }
                }
            }

            fn matching_link(sql: &str, link: &TaskLink) -> QueryBuilder<$db> {
                let mut q = QueryBuilder::<$db>::new(sql);
                q.push(" WHERE task_id = ")
                    .push_bind(link.task_id.clone())
                    .push(" AND COALESCE(user_id, '') = ")
                    .push_bind(link.user_id.clone().unwrap_or_default())
                    .push(" AND COALESCE(group_id, '') = ")
                    .push_bind(link.group_id.clone().unwrap_or_default())
                    .push(" AND type = ")
                    .push_bind(link.kind.clone());
                q
            }

            /// The task is among those offered to the user or to one of the user's groups. An
            /// `IN` over the links' indexes: the planner starts from the few linked tasks
            /// instead of probing every open task's links.
            fn push_candidate_of_user(q: &mut QueryBuilder<$db>, user: &str) {
                q.push(" t.id IN (SELECT task_id FROM task_links WHERE type = 'candidate' AND user_id = ")
                    .push_bind(user.to_owned())
                    .push(
                        " UNION SELECT l.task_id FROM task_links l JOIN memberships m ON m.group_id = l.group_id
                          WHERE l.type = 'candidate' AND m.user_id = ",
                    )
                    .push_bind(user.to_owned())
                    .push(")");
            }

            /// `user` is the assignee, the owner, or linked to the task (no parentheses around).
            fn push_involved(q: &mut QueryBuilder<$db>, user: &str) {
                q.push("t.assignee = ")
                    .push_bind(user.to_owned())
                    .push(" OR t.owner = ")
                    .push_bind(user.to_owned())
                    .push(" OR EXISTS (SELECT 1 FROM task_links l WHERE l.task_id = t.id AND l.user_id = ")
                    .push_bind(user.to_owned())
                    .push(")");
            }

            fn push_filter(q: &mut QueryBuilder<$db>, f: &UserTaskQuery) {
                let model_join = f.model_key.is_some()
                    || f.model_key_like.is_some()
                    || f.model_name.is_some()
                    || f.model_name_like.is_some();
                if model_join {
                    q.push(" JOIN models m ON m.id = t.model_id");
                }
                if f.business_key.is_some() || f.business_key_like.is_some() {
                    q.push(" JOIN instances i ON i.id = t.instance_id");
                }
                q.push(" WHERE 1 = 1");
                match f.finished {
                    Some(false) => {
                        q.push(" AND t.end_time IS NULL");
                    }
                    Some(true) => {
                        q.push(" AND t.end_time IS NOT NULL");
                    }
                    None => {}
                }
                let mut text = |column: &str, op: &str, value: &Option<String>| {
                    if let Some(v) = value {
                        if op == "LIKE" {
                            q.push(format!(" AND {column} LIKE ")).push_bind(crate::like_pattern(v)).push(crate::LIKE_ESCAPE);
                        } else {
                            q.push(format!(" AND {column} {op} ")).push_bind(v.clone());
                        }
                    }
                };
                text("t.id", "=", &f.id);
                text("t.name", "=", &f.name);
                text("t.name", "LIKE", &f.name_like);
                text("t.description", "=", &f.description);
                text("t.assignee", "=", &f.assignee);
                text("t.assignee", "LIKE", &f.assignee_like);
                text("t.owner", "=", &f.owner);
                text("t.owner", "LIKE", &f.owner_like);
                text("t.delegation", "=", &f.delegation);
                text("t.element", "=", &f.element);
                text("t.element", "LIKE", &f.element_like);
                text("t.instance_id", "=", &f.instance_id);
                text("t.model_id", "=", &f.model_id);
                text("m.key", "=", &f.model_key);
                text("m.key", "LIKE", &f.model_key_like);
                text("m.name", "=", &f.model_name);
                text("m.name", "LIKE", &f.model_name_like);
                text("i.business_key", "=", &f.business_key);
                text("i.business_key", "LIKE", &f.business_key_like);
                text("t.parent_task_id", "=", &f.parent_task_id);
                text("t.tenant_id", "=", &f.tenant_id);
                text("t.tenant_id", "LIKE", &f.tenant_id_like);
                text("t.category", "=", &f.category);
                let mut number = |column: &str, op: &str, value: Option<i64>| {
                    if let Some(v) = value {
                        q.push(format!(" AND {column} {op} ")).push_bind(v);
                    }
                };
                number("t.priority", "=", f.priority);
                number("t.priority", ">=", f.min_priority);
                number("t.priority", "<=", f.max_priority);
                number("t.create_time", "=", f.created_on);
                number("t.create_time", "<", f.created_before);
                number("t.create_time", ">", f.created_after);
                number("t.due_date", "=", f.due_on);
                number("t.due_date", "<", f.due_before);
                number("t.due_date", ">", f.due_after);
                number("t.end_time", "<", f.ended_before);
                number("t.end_time", ">", f.ended_after);
                if f.unassigned {
                    q.push(" AND t.assignee IS NULL");
                }
                if f.without_due_date {
                    q.push(" AND t.due_date IS NULL");
                }
                if f.exclude_subtasks {
                    q.push(" AND t.parent_task_id IS NULL");
                }
                if f.without_tenant {
                    q.push(" AND (t.tenant_id IS NULL OR t.tenant_id = '')");
                }
                if let Some(user) = &f.candidate_user {
                    q.push(" AND t.assignee IS NULL AND");
                    push_candidate_of_user(q, user);
                }
                if let Some(groups) = &f.candidate_groups {
                    q.push(
                        " AND t.assignee IS NULL AND t.id IN (SELECT task_id FROM task_links
                          WHERE type = 'candidate' AND group_id IN (",
                    );
                    let mut list = q.separated(", ");
                    list.push_bind(String::new());
                    for g in groups {
                        list.push_bind(g.clone());
                    }
                    q.push("))");
                }
                if let Some(user) = &f.involved_user {
                    q.push(" AND (");
                    push_involved(q, user);
                    q.push(")");
                }
                if let Some(user) = &f.visible_to {
                    q.push(" AND (");
                    push_involved(q, user);
                    q.push(" OR t.instance_id IN (SELECT id FROM instances WHERE start_user = ")
                        .push_bind(user.clone())
                        .push(") OR");
                    push_candidate_of_user(q, user);
                    q.push(")");
                }
                if let Some(user) = &f.candidate_or_assigned {
                    q.push(" AND (t.assignee = ").push_bind(user.clone()).push(" OR (t.assignee IS NULL AND");
                    push_candidate_of_user(q, user);
                    q.push("))");
                }
                for v in &f.variables {
                    $variables(q, v);
                }
            }

            #[async_trait::async_trait]
            impl UserTaskStore for $store {
                async fn user_task(&self, id: &str) -> Result<Option<UserTaskRow>> {
                    let row = sqlx::query("SELECT * FROM user_tasks WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(user_task_row).transpose()
                }

                async fn list_user_tasks(
                    &self,
                    query: &UserTaskQuery,
                    page: Option<Page>,
                ) -> Result<(Vec<UserTaskRow>, u64)> {
                    let mut q = QueryBuilder::<$db>::new("SELECT t.* FROM user_tasks t");
                    push_filter(&mut q, query);
                    push_order_and_page(&mut q, query.order.column(), "t.id", query.descending, page);
                    if page.is_none() {
                        let rows = q.build().fetch_all(&self.pool).await?;
                        let rows: Vec<UserTaskRow> = rows.iter().map(user_task_row).collect::<Result<_>>()?;
                        let total = rows.len() as u64;
                        return Ok((rows, total));
                    }
                    let mut count = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM user_tasks t");
                    push_filter(&mut count, query);
                    let (rows, total) = rows_and_total(&self.pool, q, count).await?;
                    let rows: Vec<UserTaskRow> = rows.iter().map(user_task_row).collect::<Result<_>>()?;
                    Ok((rows, total))
                }

                async fn task_links(&self, task_id: &str) -> Result<Vec<TaskLink>> {
                    let rows = sqlx::query(
                        "SELECT task_id, user_id, group_id, type FROM task_links WHERE task_id = $1
                         ORDER BY user_id IS NULL, user_id, group_id, type",
                    )
                    .bind(task_id)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|r| {
                            Ok(TaskLink {
                                task_id: r.try_get("task_id")?,
                                user_id: r.try_get("user_id")?,
                                group_id: r.try_get("group_id")?,
                                kind: r.try_get("type")?,
                            })
                        })
                        .collect()
                }

                async fn task_variables(&self, task_id: &str) -> Result<Vec<TaskVariable>> {
                    let rows = sqlx::query(
                        "SELECT name, type, value, bytes FROM task_variables WHERE task_id = $1 ORDER BY name",
                    )
                    .bind(task_id)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|r| {
                            Ok(TaskVariable {
                                name: r.try_get("name")?,
                                kind: r.try_get("type")?,
                                value: r.try_get("value")?,
                                bytes: r.try_get("bytes")?,
                            })
                        })
                        .collect()
                }

                async fn comments_of_task(&self, task_id: &str, kind: &str) -> Result<Vec<CommentRow>> {
                    let rows = sqlx::query("SELECT * FROM task_comments WHERE task_id = $1 AND kind = $2 ORDER BY time, id")
                        .bind(task_id)
                        .bind(kind)
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(comment_row).collect()
                }

                async fn comments_of_instance(&self, instance_id: &str) -> Result<Vec<CommentRow>> {
                    let rows = sqlx::query(
                        "SELECT * FROM task_comments WHERE instance_id = $1 AND kind = 'comment' ORDER BY time, id",
                    )
                    .bind(instance_id)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(comment_row).collect()
                }

                async fn comment(&self, id: &str) -> Result<Option<CommentRow>> {
                    let row = sqlx::query("SELECT * FROM task_comments WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(comment_row).transpose()
                }

                async fn attachments(&self, task_id: &str) -> Result<Vec<AttachmentRow>> {
                    let rows = sqlx::query(
                        "SELECT id, task_id, instance_id, name, description, type, url, author, time,
                         content IS NOT NULL AS has_content FROM task_attachments WHERE task_id = $1 ORDER BY time, id",
                    )
                    .bind(task_id)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(|r| attachment_row(r, false)).collect()
                }

                async fn attachment(&self, id: &str) -> Result<Option<AttachmentRow>> {
                    let row = sqlx::query("SELECT *, content IS NOT NULL AS has_content FROM task_attachments WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(|r| attachment_row(r, true)).transpose()
                }
            }
        }
    };
}
pub(crate) use user_task_store;
