//! History retention: ended instances go with everything they own, a family at a time.
//!
//! A family is an ended top-level instance with the instances that belong to it (the
//! processes its call activities called, its rollback, cancel and delete instances, theirs in
//! turn), found by their parent. It goes whole or not at all: [`RetentionStore::prunable`]
//! reads families whose members all ended, without the writer's lock; the runtime's commit
//! then deletes them ([`crate::WriteBatch::pruned`]) only if none of their rows changed
//! since, so an instance acted on meanwhile stays.

use crate::Result;

/// Which ended instances a prune removes. Only top-level instances are named; what belongs to
/// them goes with them.
#[derive(Debug, Clone, Default)]
pub struct PruneQuery {
    /// Only this instance.
    pub id: Option<String>,
    /// Ended before this time (milliseconds since the epoch).
    pub ended_before: i64,
    /// Only instances of this model key.
    pub model_key: Option<String>,
    /// Only instances that ended with this engine status (`completed`, `failed`, `canceled`).
    pub status: Option<String>,
    /// Only instances of models deployed for this tenant.
    pub tenant_id: Option<String>,
}

/// An ended top-level instance and the instances that belong to it, each with the version
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneFamily {
    /// The top-level instance.
    pub root: String,
    /// Every member, the root first, with its version.
    pub members: Vec<(String, i64)>,
}

/// How many levels of belonging a family is followed down: call activities nest at most 32
/// deep and each level may have its rollback, cancel or delete instance.
pub(crate) const MAX_DEPTH: usize = 100;

/// What instances own, deleted before them: statements over the ids of a chunk, each `{}`
/// standing for the list of ids. Jobs and a user task's parts are found through the rows that
/// name them, which go after them; waits are kept on the task records and go with them.
pub(crate) const OWNED: [&str; 11] = [
    "DELETE FROM task_links WHERE task_id IN (SELECT id FROM user_tasks WHERE instance_id IN ({}))",
    "DELETE FROM task_variables WHERE task_id IN (SELECT id FROM user_tasks WHERE instance_id IN ({}))",
    "DELETE FROM task_comments WHERE task_id IN (SELECT id FROM user_tasks WHERE instance_id IN ({})) OR instance_id IN ({})",
    "DELETE FROM task_attachments WHERE task_id IN (SELECT id FROM user_tasks WHERE instance_id IN ({})) OR instance_id IN ({})",
    "DELETE FROM user_tasks WHERE instance_id IN ({})",
    "DELETE FROM jobs WHERE record_id IN (SELECT id FROM tasks WHERE instance_id IN ({}))",
    "DELETE FROM tasks WHERE instance_id IN ({})",
    "DELETE FROM passages WHERE instance_id IN ({})",
    "DELETE FROM timers WHERE instance_id IN ({})",
    "DELETE FROM instance_parts WHERE instance_id IN ({})",
    "DELETE FROM bk_tasks WHERE instance_id IN ({})",
];

/// The retention reads of the store.
#[async_trait::async_trait]
pub trait RetentionStore {
    /// Up to `limit` top-level instances that `query` names, in id order after `after`, each
    /// with its family; a family with a member still running is passed over. Answers the
    /// families and the last id read (where the next read goes on), none when nothing was
    /// left to read.
    async fn prunable(
        &self,
        query: &PruneQuery,
        after: Option<&str>,
        limit: u64,
    ) -> Result<(Vec<PruneFamily>, Option<String>)>;
}

/// `$store` is the store type, `$db` its sqlx database.
macro_rules! retention_store {
    ($store:ty, $db:ty) => {
        mod retention_impl {
            use super::*;
            use sqlx::{QueryBuilder, Row};
            use $crate::retention::{MAX_DEPTH, OWNED};
            use $crate::{PruneFamily, PruneQuery, Result, RetentionStore};

            /// Statement `at` of deleting a chunk of instances with what they own: the last
            /// deletes the instances themselves, each only at the version read and ended, so
            /// that its count tells whether all of them went.
            pub(crate) fn prune(chunk: &[&(String, i64)], at: usize) -> QueryBuilder<$db> {
                if let Some(statement) = OWNED.get(at) {
                    let mut parts = statement.split("{}");
                    let mut q = QueryBuilder::<$db>::new(parts.next().unwrap_or_default());
                    for rest in parts {
                        let mut list = q.separated(", ");
                        for (id, _) in chunk {
                            list.push_bind(id.as_str());
                        }
                        q.push(rest);
                    }
                    return q;
                }
                let mut q = QueryBuilder::<$db>::new(
                    "DELETE FROM instances WHERE end_time IS NOT NULL AND (id, version) IN (VALUES ",
                );
                let mut list = q.separated(", ");
                for (id, version) in chunk {
                    list.push("(")
                        .push_bind_unseparated(id.as_str())
                        .push_unseparated(", ")
                        .push_bind_unseparated(*version)
                        .push_unseparated(")");
                }
                q.push(")");
                q
            }

            #[async_trait::async_trait]
            impl RetentionStore for $store {
                async fn prunable(
                    &self,
                    query: &PruneQuery,
                    after: Option<&str>,
                    limit: u64,
                ) -> Result<(Vec<PruneFamily>, Option<String>)> {
                    let mut q = QueryBuilder::<$db>::new(
                        "SELECT i.id, i.version FROM instances i WHERE i.parent_id IS NULL \
                         AND i.end_time IS NOT NULL AND i.end_time < ",
                    );
                    q.push_bind(query.ended_before);
                    if let Some(after) = after {
                        q.push(" AND i.id > ").push_bind(after.to_owned());
                    }
                    if let Some(id) = &query.id {
                        q.push(" AND i.id = ").push_bind(id.clone());
                    }
                    if let Some(key) = &query.model_key {
                        q.push(" AND i.model_key = ").push_bind(key.clone());
                    }
                    if let Some(status) = &query.status {
                        $crate::sql::push_status(&mut q, "i", status);
                    }
                    if let Some(tenant) = &query.tenant_id {
                        q.push(
                            " AND i.model_id IN (SELECT m.id FROM models m JOIN deployments d \
                             ON d.id = m.deployment_id WHERE d.tenant_id = ",
                        )
                        .push_bind(tenant.clone())
                        .push(")");
                    }
                    q.push(" ORDER BY i.id LIMIT ").push_bind(limit as i64);
                    let roots: Vec<(String, i64)> = q.build_query_as().fetch_all(&self.pool).await?;
                    let last = roots.last().map(|(id, _)| id.clone());
                    // Member index -> its family, breadth first, one read per level.
                    let mut families: Vec<PruneFamily> = roots
                        .iter()
                        .map(|(id, version)| PruneFamily { root: id.clone(), members: vec![(id.clone(), *version)] })
                        .collect();
                    let mut running = vec![false; families.len()];
                    let mut level: Vec<(String, usize)> =
                        roots.into_iter().enumerate().map(|(at, (id, _))| (id, at)).collect();
                    for _ in 0..MAX_DEPTH {
                        if level.is_empty() {
                            break;
                        }
                        let family_of: std::collections::HashMap<&str, usize> =
                            level.iter().map(|(id, at)| (id.as_str(), *at)).collect();
                        let mut next = Vec::new();
                        for chunk in $crate::sql::chunks(&level) {
                            let mut q = QueryBuilder::<$db>::new(
                                "SELECT id, version, end_time, parent_id FROM instances WHERE parent_id IN (",
                            );
                            let mut list = q.separated(", ");
                            for (id, _) in chunk {
                                list.push_bind(id.as_str());
                            }
                            q.push(")");
                            for row in q.build().fetch_all(&self.pool).await? {
                                let id: String = row.try_get("id")?;
                                let parent: String = row.try_get("parent_id")?;
                                let Some(&at) = family_of.get(parent.as_str()) else { continue };
                                let ended: Option<i64> = row.try_get("end_time")?;
                                running[at] |= ended.is_none();
                                families[at].members.push((id.clone(), row.try_get("version")?));
                                next.push((id, at));
                            }
                        }
                        level = next;
                    }
                    // Deeper than any model nests: left alone rather than half removed.
                    for (_, at) in &level {
                        running[*at] = true;
                    }
                    let families =
                        families.into_iter().zip(running).filter(|(_, running)| !running).map(|(f, _)| f).collect();
                    Ok((families, last))
                }
            }
        }
    };
}
pub(crate) use retention_store;
