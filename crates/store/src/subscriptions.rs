//! Waits for messages, signals and triggers. A commit writes and removes an instance's with
//! the step that opened or ended them ([`crate::WriteBatch::subscriptions`]); a deployment
//! writes the start events' of its models, replacing those of the key's earlier version.

use crate::Result;

/// A wait as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRow {
    /// The waiting record; for a start event's, `start:`, the key it starts (see `starts`)
    /// and the element. An instance's wait is kept on one of its task records, written in the
    /// same or an earlier batch.
    pub record_id: String,
    /// The instance that waits (empty for a start event's).
    pub instance_id: String,
    /// The model the instance runs (an instance's wait reads it from the instance), or the one
    /// a start event starts.
    pub model_id: String,
    /// For a start event's: the model key (after its tenant and `:`, when it has one) whose
    /// latest version it starts.
    pub starts: Option<String>,
    /// The tenant of its model's deployment (an instance's wait reads it from there).
    pub tenant_id: Option<String>,
    /// The waiting element (an instance's wait reads its record's).
    pub element: String,
    /// `message`, `signal` or `trigger`.
    pub kind: String,
    /// The message's or signal's name (empty for a trigger).
    pub name: String,
    /// The value of the message's correlation key when the wait began.
    pub correlation_key: Option<String>,
    /// When the wait began (milliseconds since the epoch).
    pub created_at: i64,
}

/// The waits one message or signal reaches.
#[derive(Debug, Clone, Copy)]
pub struct EventQuery<'a> {
    /// `message` or `signal`.
    pub kind: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Only waits with this correlation key; none: whatever their key.
    pub key: Option<&'a str>,
    /// Start events (true) or instances' waits (false).
    pub starts: bool,
    /// Only those of this tenant's models; none: of every tenant.
    pub tenant: Option<&'a str>,
    /// Only those after this one (created, record id), for the next page of a signal's.
    pub after: Option<(i64, &'a str)>,
    /// At most this many, oldest first.
    pub limit: u64,
}

/// Filters of the subscription list; every one given must hold.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionQuery {
    /// Only this wait.
    pub id: Option<String>,
    /// Only of this kind.
    pub kind: Option<String>,
    /// Only for this name.
    pub name: Option<String>,
    /// Only of this element.
    pub element: Option<String>,
    /// Only of this instance.
    pub instance_id: Option<String>,
    /// Only of this model.
    pub model_id: Option<String>,
    /// Only of this tenant's models.
    pub tenant_id: Option<String>,
    /// Only those begun before this time.
    pub created_before: Option<i64>,
    /// Only those begun after this time.
    pub created_after: Option<i64>,
    /// Sorted by this column: `record_id`, `created_at`, `instance_id`, `model_id` or
    /// `tenant_id`.
    pub order: &'static str,
    /// Latest first.
    pub descending: bool,
}

/// A message nothing waited for when it came, kept for its time to live.
#[derive(Debug, Clone, PartialEq)]
pub struct BufferedMessage {
    /// Its id.
    pub id: String,
    /// The message's name.
    pub name: String,
    /// Its correlation key: only a wait with this key takes it (none: any wait for the name).
    pub correlation_key: Option<String>,
    /// Only a wait of this tenant's models takes it (none: of any tenant).
    pub tenant_id: Option<String>,
    /// The variables it sets where it is caught, as JSON.
    pub variables: String,
    /// When it came (milliseconds since the epoch).
    pub created_at: i64,
    /// When it is dropped, taken or not.
    pub expires_at: i64,
}

/// A message or signal a process threw, kept from the commit of its step until it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// Its id.
    pub id: String,
    /// The server that sends it.
    pub node: String,
    /// `message` or `signal`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// A message's correlation key, as the thrower read it.
    pub correlation_key: Option<String>,
    /// The tenant of the thrower's model: it reaches that tenant's waits only.
    pub tenant_id: Option<String>,
    /// When it was thrown (milliseconds since the epoch).
    pub created_at: i64,
}

/// The waits of the store.
#[async_trait::async_trait]
pub trait SubscriptionStore {
    /// The waits a message or signal reaches (see [`EventQuery`]), oldest first.
    async fn waiting(&self, event: &EventQuery<'_>) -> Result<Vec<SubscriptionRow>>;
    /// The oldest instance wait for message `name` with each of `keys` (of `tenant`'s models
    /// only, when given): at most one per key, in no order. One read answers many messages
    /// sent at once, where [`SubscriptionStore::waiting`] reads once per message.
    async fn oldest_waits(&self, name: &str, tenant: Option<&str>, keys: &[String]) -> Result<Vec<SubscriptionRow>>;
    /// The wait of a record.
    async fn subscription(&self, record_id: &str) -> Result<Option<SubscriptionRow>>;
    /// Removes a wait its instance no longer has (the instance is gone); returns whether one
    /// went.
    async fn forget_subscription(&self, record_id: &str) -> Result<bool>;
    /// The waits `query` leaves, one page, and how many there are.
    async fn list_subscriptions(
        &self,
        query: &SubscriptionQuery,
        page: crate::Page,
    ) -> Result<(Vec<SubscriptionRow>, u64)>;
    /// Keeps a message nothing waits for, unless `max` are kept already (and drops those
    /// whose time ran out); whether it is kept.
    async fn buffer_message(&self, message: &BufferedMessage, max: u64) -> Result<bool>;
    /// Takes (removes and returns) the oldest live message `wait` may take: of its name, with
    /// its key or none, of its tenant or none. Each message is taken once.
    async fn take_buffered(&self, wait: &SubscriptionRow, now: i64) -> Result<Option<BufferedMessage>>;
    /// Takes back message `id`; whether it was still there.
    async fn unbuffer(&self, id: &str) -> Result<bool>;
    /// When the last of the messages kept runs out; none when none is kept.
    async fn buffered_until(&self) -> Result<Option<i64>>;
    /// What `node`'s processes threw and it did not send yet, oldest first.
    async fn unsent(&self, node: &str) -> Result<Vec<OutboxRow>>;
    /// Removes what was sent.
    async fn sent(&self, ids: &[String]) -> Result<()>;
}

/// The start of a statement that ends the waits of the task records its `WHERE` names.
macro_rules! clear_wait {
    () => {
        concat!("UPDATE tasks SET ", $crate::sql::CLEARED_WAIT!(), " WHERE ")
    };
}
pub(crate) use clear_wait;

/// `$store` is the store type, `$db` its sqlx database.
macro_rules! subscription_store {
    ($store:ty, $db:ty) => {
        mod subscription_impl {
            use super::*;
            use sqlx::{QueryBuilder, Row};
            use $crate::{
                BufferedMessage, EventQuery, OutboxRow, Page, Result, SubscriptionQuery, SubscriptionRow,
                SubscriptionStore,
            };

            type DbRow = <$db as sqlx::Database>::Row;

            /// Writes what processes threw, with the commit of their step.
            pub(crate) fn add_outbox(rows: &[OutboxRow]) -> QueryBuilder<$db> {
                let mut q = QueryBuilder::<$db>::new(
                    "INSERT INTO event_outbox (id, node, kind, name, correlation_key, tenant_id, created_at) ",
                );
                q.push_values(rows, |mut b, o| {
                    b.push_bind(o.id.as_str())
                        .push_bind(o.node.as_str())
                        .push_bind(o.kind.as_str())
                        .push_bind(o.name.as_str())
                        .push_bind(o.correlation_key.as_deref())
                        .push_bind(o.tenant_id.as_deref())
                        .push_bind(o.created_at);
                });
                q
            }

            fn buffered_row(r: &DbRow) -> Result<BufferedMessage> {
                Ok(BufferedMessage {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    correlation_key: r.try_get("correlation_key")?,
                    tenant_id: r.try_get("tenant_id")?,
                    variables: r.try_get("variables")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            }

            fn subscription_row(r: &DbRow) -> Result<SubscriptionRow> {
                Ok(SubscriptionRow {
                    record_id: r.try_get("record_id")?,
                    instance_id: r.try_get("instance_id")?,
                    model_id: r.try_get("model_id")?,
                    starts: r.try_get("starts")?,
                    tenant_id: r.try_get("tenant_id")?,
                    element: r.try_get("element")?,
                    kind: r.try_get("kind")?,
                    name: r.try_get("name")?,
                    correlation_key: r.try_get("correlation_key")?,
                    created_at: r.try_get("created_at")?,
                })
            }

            /// Writes start events' waits (each replaces the one of the same id).
            pub(crate) fn set_start_subscriptions(rows: &[&SubscriptionRow]) -> QueryBuilder<$db> {
                let mut q = QueryBuilder::<$db>::new(
                    "INSERT INTO start_subscriptions (record_id, model_id, starts, tenant_id, element, kind, name, \
                     correlation_key, created_at) ",
                );
                q.push_values(rows, |mut b, s| {
                    b.push_bind(s.record_id.as_str())
                        .push_bind(s.model_id.as_str())
                        .push_bind(s.starts.as_deref())
                        .push_bind(s.tenant_id.as_deref())
                        .push_bind(s.element.as_str())
                        .push_bind(s.kind.as_str())
                        .push_bind(s.name.as_str())
                        .push_bind(s.correlation_key.as_deref())
                        .push_bind(s.created_at);
                });
                q.push(
                    " ON CONFLICT (record_id) DO UPDATE SET model_id = EXCLUDED.model_id, element = EXCLUDED.element, \
                     kind = EXCLUDED.kind, name = EXCLUDED.name, created_at = EXCLUDED.created_at",
                );
                q
            }

            /// Sets instances' waits on the records that wait, written earlier in the batch
            /// or before it.
            pub(crate) fn set_waits(rows: &[&SubscriptionRow]) -> QueryBuilder<$db> {
                let mut q = QueryBuilder::<$db>::new("WITH w (id, kind, name, ckey, since) AS (");
                q.push_values(rows, |mut b, s| {
                    b.push_bind(s.record_id.as_str())
                        .push_bind(s.kind.as_str())
                        .push_bind(s.name.as_str())
                        .push_bind(s.correlation_key.as_deref())
                        .push_bind(s.created_at);
                });
                q.push(
                    ") UPDATE tasks SET wait_kind = w.kind, wait_name = w.name, wait_key = w.ckey, wait_since = w.since \
                     FROM w WHERE tasks.id = w.id",
                );
                q
            }

            /// Removes instances' waits by their record id (`starts` false), or the start
            /// events' of model keys (`starts` true).
            pub(crate) fn drop_subscriptions(starts: bool, ids: &[&str]) -> QueryBuilder<$db> {
                let mut q = QueryBuilder::<$db>::new(if starts {
                    "DELETE FROM start_subscriptions WHERE starts IN ("
                } else {
                    concat!($crate::subscriptions::clear_wait!(), "id IN (")
                });
                let mut list = q.separated(", ");
                for id in ids {
                    list.push_bind(*id);
                }
                q.push(")");
                q
            }

            #[async_trait::async_trait]
            impl SubscriptionStore for $store {
                async fn waiting(&self, event: &EventQuery<'_>) -> Result<Vec<SubscriptionRow>> {
                    let mut q = QueryBuilder::<$db>::new("SELECT * FROM event_subscriptions WHERE kind = ");
                    q.push_bind(event.kind.to_owned()).push(" AND name = ").push_bind(event.name.to_owned());
                    if let Some(key) = event.key {
                        q.push(" AND correlation_key = ").push_bind(key.to_owned());
                    }
                    q.push(if event.starts { " AND instance_id = ''" } else { " AND instance_id <> ''" });
                    if let Some(tenant) = event.tenant {
                        q.push(" AND tenant_id = ").push_bind(tenant.to_owned());
                    }
                    if let Some((created, id)) = event.after {
                        q.push(" AND (created_at > ").push_bind(created);
                        q.push(" OR (created_at = ").push_bind(created);
                        q.push(" AND record_id > ").push_bind(id.to_owned()).push("))");
                    }
                    q.push(" ORDER BY created_at, record_id LIMIT ");
                    q.push_bind(event.limit.min(i64::MAX as u64) as i64);
                    let rows = q.build().fetch_all(&self.pool).await?;
                    rows.iter().map(subscription_row).collect()
                }

                async fn oldest_waits(
                    &self,
                    name: &str,
                    tenant: Option<&str>,
                    keys: &[String],
                ) -> Result<Vec<SubscriptionRow>> {
                    let mut found = Vec::with_capacity(keys.len());
                    // In lists of a few lengths, so that a few prepared statements serve.
                    for chunk in $crate::sql::chunks(keys) {
                        let mut q = QueryBuilder::<$db>::new(
                            "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY correlation_key \
                             ORDER BY created_at, record_id) AS nth FROM event_subscriptions \
                             WHERE kind = 'message' AND name = ",
                        );
                        q.push_bind(name.to_owned()).push(" AND instance_id <> ''");
                        if let Some(tenant) = tenant {
                            q.push(" AND tenant_id = ").push_bind(tenant.to_owned());
                        }
                        q.push(" AND correlation_key IN (");
                        let mut list = q.separated(", ");
                        for key in chunk {
                            list.push_bind(key.clone());
                        }
                        q.push(")) oldest WHERE nth = 1");
                        for row in q.build().fetch_all(&self.pool).await? {
                            found.push(subscription_row(&row)?);
                        }
                    }
                    Ok(found)
                }

                async fn subscription(&self, record_id: &str) -> Result<Option<SubscriptionRow>> {
                    let row = sqlx::query("SELECT * FROM event_subscriptions WHERE record_id = $1")
                        .bind(record_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(subscription_row).transpose()
                }

                async fn forget_subscription(&self, record_id: &str) -> Result<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query(concat!(
                        $crate::subscriptions::clear_wait!(),
                        "id = $1 AND wait_kind IS NOT NULL AND NOT EXISTS (SELECT 1 FROM instances i \
                         WHERE i.id = tasks.instance_id AND i.end_time IS NULL)"
                    ))
                    .bind(record_id)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn list_subscriptions(
                    &self,
                    query: &SubscriptionQuery,
                    page: Page,
                ) -> Result<(Vec<SubscriptionRow>, u64)> {
                    let select = |what: &str| {
                        let mut q = QueryBuilder::<$db>::new(format!("SELECT {what} FROM event_subscriptions WHERE 1 = 1"));
                        let exact = [
                            ("record_id", &query.id),
                            ("kind", &query.kind),
                            ("name", &query.name),
                            ("element", &query.element),
                            ("instance_id", &query.instance_id),
                            ("model_id", &query.model_id),
                            ("tenant_id", &query.tenant_id),
                        ];
                        for (column, value) in exact {
                            if let Some(v) = value {
                                q.push(format!(" AND {column} = ")).push_bind(v.clone());
                            }
                        }
                        if let Some(t) = query.created_before {
                            q.push(" AND created_at < ").push_bind(t);
                        }
                        if let Some(t) = query.created_after {
                            q.push(" AND created_at > ").push_bind(t);
                        }
                        q
                    };
                    let total: i64 = select("COUNT(*)").build_query_scalar().fetch_one(&self.pool).await?;
                    let mut q = select("*");
                    let column = match query.order {
                        c @ ("created_at" | "instance_id" | "model_id" | "tenant_id") => c,
                        _ => "record_id",
                    };
                    let direction = if query.descending { "DESC" } else { "ASC" };
                    q.push(format!(" ORDER BY {column} {direction}, record_id {direction} LIMIT "));
                    q.push_bind(page.limit.min(i64::MAX as u64) as i64);
                    q.push(" OFFSET ").push_bind(page.offset.min(i64::MAX as u64) as i64);
                    let rows = q.build().fetch_all(&self.pool).await?;
                    Ok((rows.iter().map(subscription_row).collect::<Result<_>>()?, total as u64))
                }

                async fn buffer_message(&self, m: &BufferedMessage, max: u64) -> Result<bool> {
                    let _writing = self.writing().await;
                    sqlx::query("DELETE FROM buffered_messages WHERE expires_at <= $1")
                        .bind(m.created_at)
                        .execute(&self.pool)
                        .await?;
                    let done = sqlx::query(
                        "INSERT INTO buffered_messages (id, name, correlation_key, tenant_id, variables, created_at, \
                         expires_at) SELECT $1, $2, $3, $4, $5, $6, $7 \
                         WHERE (SELECT COUNT(*) FROM buffered_messages) < $8",
                    )
                    .bind(&m.id)
                    .bind(&m.name)
                    .bind(&m.correlation_key)
                    .bind(&m.tenant_id)
                    .bind(&m.variables)
                    .bind(m.created_at)
                    .bind(m.expires_at)
                    .bind(max.min(i64::MAX as u64) as i64)
                    .execute(&self.pool)
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn take_buffered(&self, wait: &SubscriptionRow, now: i64) -> Result<Option<BufferedMessage>> {
                    // Another taker may win the oldest between the read and the delete: then
                    // the next oldest is tried, a few times.
                    for _ in 0..4 {
                        let mut q = QueryBuilder::<$db>::new("SELECT * FROM buffered_messages WHERE name = ");
                        q.push_bind(wait.name.clone()).push(" AND expires_at > ").push_bind(now);
                        match &wait.correlation_key {
                            Some(key) => q.push(" AND (correlation_key IS NULL OR correlation_key = ").push_bind(key.clone()).push(")"),
                            None => q.push(" AND correlation_key IS NULL"),
                        };
                        match &wait.tenant_id {
                            Some(tenant) => q.push(" AND (tenant_id IS NULL OR tenant_id = ").push_bind(tenant.clone()).push(")"),
                            None => q.push(" AND tenant_id IS NULL"),
                        };
                        q.push(" ORDER BY created_at, id LIMIT 1");
                        let Some(row) = q.build().fetch_optional(&self.pool).await? else { return Ok(None) };
                        let message = buffered_row(&row)?;
                        if self.unbuffer(&message.id).await? {
                            return Ok(Some(message));
                        }
                    }
                    Ok(None)
                }

                async fn unbuffer(&self, id: &str) -> Result<bool> {
                    let _writing = self.writing().await;
                    let done = sqlx::query("DELETE FROM buffered_messages WHERE id = $1").bind(id).execute(&self.pool).await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn unsent(&self, node: &str) -> Result<Vec<OutboxRow>> {
                    let rows = sqlx::query("SELECT * FROM event_outbox WHERE node = $1 ORDER BY created_at, id")
                        .bind(node)
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter()
                        .map(|r| {
                            Ok(OutboxRow {
                                id: r.try_get("id")?,
                                node: r.try_get("node")?,
                                kind: r.try_get("kind")?,
                                name: r.try_get("name")?,
                                correlation_key: r.try_get("correlation_key")?,
                                tenant_id: r.try_get("tenant_id")?,
                                created_at: r.try_get("created_at")?,
                            })
                        })
                        .collect()
                }

                async fn sent(&self, ids: &[String]) -> Result<()> {
                    let _writing = self.writing().await;
                    for chunk in $crate::sql::chunks(ids) {
                        let mut q = QueryBuilder::<$db>::new("DELETE FROM event_outbox WHERE id IN (");
                        let mut list = q.separated(", ");
                        for id in chunk {
                            list.push_bind(id.as_str());
                        }
                        q.push(")");
                        q.build().execute(&self.pool).await?;
                    }
                    Ok(())
                }

                async fn buffered_until(&self) -> Result<Option<i64>> {
                    Ok(sqlx::query_scalar("SELECT MAX(expires_at) FROM buffered_messages").fetch_one(&self.pool).await?)
                }
            }
        }
    };
}

pub(crate) use subscription_store;
