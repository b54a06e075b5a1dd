//! History retention: ended instances deleted with everything they own, in batches that
//! queue with live traffic instead of stopping it.
//!
//! Each batch reads up to [`BATCH`] ended top-level instances with their families (see
//! [`RetentionStore`](flowstone_store::RetentionStore)) without the writer's turn, then
//! deletes them in one group of the committer, which leaves out any instance a request
//! changed meanwhile and keeps requests from reading one again. A batch is one transaction:
//! a server killed in the middle of a prune leaves each family whole or gone.

use super::committer::{PRUNE_STALE, Request};
use super::{Runtime, RuntimeError, now_ms};
use flowstone_store::PruneQuery;
use serde::Serialize;
use std::time::Duration;

/// Top-level instances per batch: a batch's commit deletes a few thousand rows, a few
/// milliseconds that the requests of its group wait.
const BATCH: u64 = 256;

/// How many times a batch is read again when instances in it changed before it committed.
const STALE_RETRIES: u32 = 3;

/// How often the background prune of `--history-ttl` runs at most: every minute, or as often
/// as the time to live itself when that is shorter (but not more than once a second).
const TTL_EVERY: Duration = Duration::from_secs(60);

/// What a prune did (or, dry, would do).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pruned {
    /// Top-level instances removed, each with its family.
    pub processes: u64,
    /// Instances removed in all: the top-level ones with the processes they called and their
    /// rollback, cancel and delete instances.
    pub instances: u64,
    /// Whether there is more to remove: the prune stopped at its `limit`.
    pub more: bool,
}

impl Runtime {
    /// Deletes the ended instances `query` names with everything they own, at most `limit`
    /// top-level ones (all when none), batch by batch; `dry` only counts what would go.
    /// `progress` hears the running total after each batch.
    ///
    /// # Errors
    /// A store failure, or the runtime stopping; the batches before it stay deleted.
    pub async fn prune_history(
        &self,
        query: &PruneQuery,
        limit: Option<u64>,
        dry: bool,
        mut progress: impl FnMut(Pruned),
    ) -> Result<Pruned, RuntimeError> {
        let mut done = Pruned::default();
        let mut after: Option<String> = None;
        let mut stale = 0;
        loop {
            let left = limit.map_or(BATCH, |l| l.saturating_sub(done.processes).min(BATCH));
            if left == 0 {
                done.more = !self.store.prunable(query, after.as_deref(), 1).await?.0.is_empty();
                break;
            }
            let (families, last) = self.store.prunable(query, after.as_deref(), left).await?;
            let Some(last) = last else { break };
            if !families.is_empty() {
                if dry {
                    done.processes += families.len() as u64;
                    done.instances += families.iter().map(|f| f.members.len() as u64).sum::<u64>();
                } else {
                    match self.ask(|reply| Request::Prune { families, reply }).await {
                        Ok((processes, instances)) => {
                            // Families changed meanwhile stay; they are counted when a later
                            // prune takes them.
                            done.processes += processes;
                            done.instances += instances;
                            stale = 0;
                        }
                        Err(RuntimeError::NotCommitted(why)) if why == PRUNE_STALE && stale < STALE_RETRIES => {
                            stale += 1;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                progress(done);
            }
            after = Some(last);
        }
        if !dry && done.instances > 0 {
            self.metrics().instances_pruned(done.instances);
            tracing::info!(
                target: "flowstone::lifecycle",
                processes = done.processes,
                instances = done.instances,
                ended_before = query.ended_before,
                "history pruned"
            );
        }
        Ok(done)
    }

    /// Deletes one ended top-level instance with its family: Flowable's delete of a historic
    /// process instance.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] for an unknown instance, [`RuntimeError::InUse`] for one
    /// still running, one that belongs to another (its history goes with that one's), or one
    /// with a member of its family still running; or a store failure.
    pub async fn delete_history(&self, id: &str) -> Result<(), RuntimeError> {
        let Some(row) = self.store.instance(id).await? else {
            return Err(RuntimeError::NotFound(format!("Could not find a process instance with id '{id}'.")));
        };
        if row.end_time.is_none() {
            return Err(RuntimeError::InUse(format!(
                "Process instance '{id}' is still running: its history is deleted once it has ended"
            )));
        }
        if let Some(parent) = &row.parent_id {
            return Err(RuntimeError::InUse(format!(
                "Process instance '{id}' belongs to process instance '{parent}': its history goes with that one's"
            )));
        }
        let query = PruneQuery { id: Some(id.to_owned()), ended_before: i64::MAX, ..PruneQuery::default() };
        if self.prune_history(&query, Some(1), false, |_| {}).await?.processes == 0 {
            return Err(RuntimeError::InUse(format!(
                "Process instance '{id}' has a called process or a rollback, cancel or delete instance still running"
            )));
        }
        Ok(())
    }

    /// Prunes, every minute (see [`TTL_EVERY`]) until the runtime stops, the instances that
    /// ended more than `ttl` ago (`--history-ttl`).
    pub fn keep_history_for(&self, ttl: Duration) {
        let (rt, mut stopped) = (self.clone(), self.stop.subscribe());
        tokio::spawn(async move {
            let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
            let every = ttl.clamp(Duration::from_secs(1), TTL_EVERY);
            loop {
                let query = PruneQuery { ended_before: now_ms().saturating_sub(ttl_ms), ..PruneQuery::default() };
                if let Err(e) = rt.prune_history(&query, None, false, |_| {}).await {
                    tracing::warn!(error = %e, "the history prune failed; trying again later");
                }
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => return,
                    () = tokio::time::sleep(every) => {}
                }
            }
        });
    }
}
