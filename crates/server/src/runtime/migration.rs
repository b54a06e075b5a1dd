//! Moving running instances to another version of their model (see
//! [`Instance::plan_migration`](flowstone_engine::Instance::plan_migration)): one instance, or
//! every running instance of a version. Each move is one command through the committer.

use super::committer::{MigrateRequest, Request};
use super::{Runtime, RuntimeError};
use flowstone_engine::MigrationPlan;
use flowstone_store::{InstanceFilter, ModelRow, Page};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Instances read per page when a whole version moves.
const PAGE: u64 = 500;

impl Runtime {
    /// Moves running instance `instance` to version `model` of its key, its elements mapped
    /// by id or by `mappings`; `dry` only checks, and answers what would move.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] for an unknown instance, [`RuntimeError::NotValid`] with
    /// every reason it cannot move, or a store failure.
    pub async fn migrate(
        &self,
        instance: &str,
        model: Arc<ModelRow>,
        mappings: BTreeMap<String, String>,
        dry: bool,
    ) -> Result<MigrationPlan, RuntimeError> {
        let def = self.definition(&model)?;
        let instance = instance.to_owned();
        self.ask(|reply| Request::Migrate(Box::new(MigrateRequest { instance, model, def, mappings, dry, reply })))
            .await
    }

    /// Moves every running instance of version `from` to `model`: all are checked first, and
    /// none moves unless each can; answers the instances moved (or, dry, that would move).
    ///
    /// # Errors
    /// [`RuntimeError::NotValid`] naming each instance that cannot move and why, or as
    /// [`Runtime::migrate`].
    pub async fn migrate_version(
        &self,
        from: &str,
        model: Arc<ModelRow>,
        mappings: &BTreeMap<String, String>,
        dry: bool,
    ) -> Result<Vec<String>, RuntimeError> {
        let mut ids = Vec::new();
        let filter = InstanceFilter {
            model_id: Some(from.to_owned()),
            ended: Some(false),
            kind: Some("process".into()),
            ascending: true,
            ..InstanceFilter::default()
        };
        loop {
            let page = Page { offset: ids.len() as u64, limit: PAGE };
            let (rows, _) = self.store.list_instances(&filter, page).await?;
            let last = rows.len() < PAGE as usize;
            ids.extend(rows.into_iter().map(|r| r.id));
            if last {
                break;
            }
        }
        let mut refused = Vec::new();
        for id in &ids {
            if let Err(e) = self.migrate(id, model.clone(), mappings.clone(), true).await {
                refused.push(e.to_string());
            }
        }
        if !refused.is_empty() {
            return Err(RuntimeError::NotValid(format!(
                "{} of {} instances cannot move, so none did: {}",
                refused.len(),
                ids.len(),
                refused.join(" | ")
            )));
        }
        if !dry {
            for id in &ids {
                self.migrate(id, model.clone(), mappings.clone(), false).await?;
            }
        }
        Ok(ids)
    }
}
