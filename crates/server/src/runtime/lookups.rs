//! Message lookups in batches. Each message sent by key needs the oldest wait for its name and
//! key; read one by one, thousands of messages a second are thousands of reads, each a round
//! trip to a database connection's thread. One task reads them instead: what was asked while
//! its last read ran is answered by the next, one query per name and tenant.

use flowstone_store::{Store, SubscriptionRow};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The most keys one read looks up.
const BATCH: usize = 256;

/// One message's question: its oldest wait, or `None` when nothing waits with its key. No
/// answer (the read failed) sends the message the one-by-one way, which reports the failure.
pub(super) struct Lookup {
    pub(super) name: String,
    pub(super) tenant: Option<String>,
    pub(super) key: String,
    pub(super) reply: oneshot::Sender<Option<SubscriptionRow>>,
}

/// Starts the reading task; it ends when the last sender is gone.
pub(super) fn start(store: Arc<dyn Store>) -> mpsc::UnboundedSender<Lookup> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Lookup>();
    tokio::spawn(async move {
        let mut asked = Vec::with_capacity(BATCH);
        while rx.recv_many(&mut asked, BATCH).await > 0 {
            let mut groups: HashMap<(String, Option<String>), Vec<Lookup>> = HashMap::new();
            for lookup in asked.drain(..) {
                groups.entry((lookup.name.clone(), lookup.tenant.clone())).or_default().push(lookup);
            }
            for ((name, tenant), lookups) in groups {
                let mut keys: Vec<String> = lookups.iter().map(|l| l.key.clone()).collect();
                keys.sort_unstable();
                keys.dedup();
                let Ok(found) = store.oldest_waits(&name, tenant.as_deref(), &keys).await else {
                    continue; // Dropping the replies sends each message the one-by-one way.
                };
                let by_key: HashMap<&str, &SubscriptionRow> =
                    found.iter().filter_map(|w| Some((w.correlation_key.as_deref()?, w))).collect();
                for lookup in lookups {
                    let _ = lookup.reply.send(by_key.get(lookup.key.as_str()).map(|w| (*w).clone()));
                }
            }
        }
    });
    tx
}
