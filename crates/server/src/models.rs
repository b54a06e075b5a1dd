//! Deployed models in memory: a model version never changes once stored, so its row and its
//! parsed definition are kept for good; which version is the latest of a key can change
//! (another server may deploy), so that answer is kept only briefly.

use flowstone_model::Definition;
use flowstone_store::ModelRow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long "the latest version of a key" is believed without asking the store again.
const LATEST_FOR: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(crate) struct ModelCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    rows: HashMap<String, Arc<ModelRow>>,
    defs: HashMap<String, Arc<Definition>>,
    latest: HashMap<String, (Arc<ModelRow>, Instant)>,
}

impl ModelCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a model version; `latest` when it is known to be its key's newest.
    pub(crate) fn remember(&self, row: Arc<ModelRow>, def: Option<Arc<Definition>>, latest: bool) {
        let mut inner = self.lock();
        if let Some(def) = def {
            inner.defs.insert(row.id.clone(), def);
        }
        if latest {
            inner.latest.insert(row.key.clone(), (row.clone(), Instant::now()));
        }
        inner.rows.insert(row.id.clone(), row);
    }

    pub(crate) fn row(&self, id: &str) -> Option<Arc<ModelRow>> {
        self.lock().rows.get(id).cloned()
    }

    pub(crate) fn definition(&self, id: &str) -> Option<Arc<Definition>> {
        self.lock().defs.get(id).cloned()
    }

    /// Forgets the models of a deployment that was removed.
    pub(crate) fn forget_deployment(&self, deployment_id: &str) {
        let mut inner = self.lock();
        let gone: Vec<String> =
            inner.rows.values().filter(|r| r.deployment_id == deployment_id).map(|r| r.id.clone()).collect();
        for id in &gone {
            inner.rows.remove(id);
            inner.defs.remove(id);
        }
        inner.latest.retain(|_, (row, _)| row.deployment_id != deployment_id);
    }

    /// The newest version of `key`, if learnt less than [`LATEST_FOR`] ago.
    pub(crate) fn latest(&self, key: &str) -> Option<Arc<ModelRow>> {
        self.lock().latest.get(key).filter(|(_, at)| at.elapsed() < LATEST_FOR).map(|(row, _)| row.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, key: &str, version: i64) -> Arc<ModelRow> {
        Arc::new(ModelRow {
            id: id.into(),
            deployment_id: "d".into(),
            key: key.into(),
            name: None,
            version,
            source: String::new(),
            created_at: 0,
            resource: String::new(),
            tenant_id: None,
        })
    }

    #[test]
    fn remembers_rows_and_the_latest_of_a_key() {
        let cache = ModelCache::default();
        cache.remember(row("m1", "k", 1), None, true);
        cache.remember(row("m2", "k", 2), None, true);
        cache.remember(row("old", "k", 0), None, false);
        assert_eq!(cache.latest("k").map(|r| r.id.clone()), Some("m2".into()));
        assert!(cache.row("old").is_some() && cache.row("m1").is_some());
        assert!(cache.latest("other").is_none() && cache.definition("m1").is_none());
    }

    #[test]
    fn a_removed_deployment_is_forgotten_whole() {
        let cache = ModelCache::default();
        cache.remember(row("m1", "k", 1), None, true);
        cache.forget_deployment("d");
        assert!(cache.row("m1").is_none() && cache.latest("k").is_none());
    }
}
