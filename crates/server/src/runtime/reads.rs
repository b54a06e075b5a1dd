//! One-instance reads in batches. A poll of `GET /process/{id}`, a request waiting for the
//! end, an access check: each reads one instance row (and a poll its open task records), and
//! each read is a round trip to a database connection's thread. Under load most of a read's
//! cost is that hand-over, not the query: thousands of reads a second are thousands of thread
//! wake-ups. Reads asked for while [`READERS`] batches run are answered together by the next,
//! one statement for each kind of read.

use super::Runtime;
use flowstone_store::{InstanceRow, Store, StoreError, TaskRow};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// The most reads one batch answers.
const BATCH: usize = 256;

/// How many batches run at once: a read asked for while fewer run goes at once, alone, so a
/// request on a quiet server waits for nothing but its own read.
const READERS: usize = 2;

/// How long reads wait for a running batch to end before a batch of them goes anyway: while
/// the database is out, a batch waits seconds for a connection, and the reads behind it must
/// not wait that long on top of their own.
const STUCK: Duration = Duration::from_millis(50);

/// What a read answers: a failed batch tells each of its reads why.
type Answer<T> = oneshot::Sender<Result<T, StoreError>>;

/// One read and where its answer goes.
pub(super) enum Read {
    /// An instance, or `None` when there is none.
    Instance(String, Answer<Option<InstanceRow>>),
    /// The open task records of an instance, oldest first.
    OpenTasks(String, Answer<Vec<TaskRow>>),
    /// Every task record of an instance, oldest first.
    Tasks(String, Answer<Vec<TaskRow>>),
    /// A task record by its id, or `None` when there is none.
    Task(String, Answer<Option<TaskRow>>),
}

/// Starts the reading task; it ends when the last sender is gone.
pub(super) fn start(store: Arc<dyn Store>) -> mpsc::UnboundedSender<Read> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Read>();
    tokio::spawn(async move {
        let readers = Arc::new(Semaphore::new(READERS));
        loop {
            let reader = tokio::time::timeout(STUCK, readers.clone().acquire_owned()).await.ok().and_then(Result::ok);
            let mut asked = Vec::with_capacity(BATCH);
            if rx.recv_many(&mut asked, BATCH).await == 0 {
                return;
            }
            let store = store.clone();
            tokio::spawn(async move {
                answer(store.as_ref(), asked).await;
                drop(reader);
            });
        }
    });
    tx
}

/// Reads what `asked` asks for in one statement per kind, and answers each.
async fn answer(store: &dyn Store, asked: Vec<Read>) {
    let (mut instances, mut open, mut all, mut records) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for read in asked {
        match read {
            Read::Instance(id, reply) => instances.push((id, reply)),
            Read::OpenTasks(id, reply) => open.push((id, reply)),
            Read::Tasks(id, reply) => all.push((id, reply)),
            Read::Task(id, reply) => records.push((id, reply)),
        }
    }
    // The kinds are read side by side: a poll asks for two at once, and while the database
    // is out each waits its own time for a connection, not the other's too.
    let by_instance = async {
        if !instances.is_empty() {
            let found = store.instances(&distinct(&instances)).await;
            answer_by_id(instances, found, |r| r.id.as_str());
        }
    };
    let by_record = async {
        if !records.is_empty() {
            let found = store.tasks(&distinct(&records)).await;
            answer_by_id(records, found, |t| t.record.id.as_str());
        }
    };
    tokio::join!(
        by_instance,
        by_record,
        answer_of_instances(store, open, true),
        answer_of_instances(store, all, false)
    );
}

/// Answers each read of an instance's records (its open ones alone, with `open`).
async fn answer_of_instances(store: &dyn Store, reads: Vec<(String, Answer<Vec<TaskRow>>)>, open: bool) {
    if !reads.is_empty() {
        match store.tasks_of_instances(&distinct(&reads), open).await {
            Ok(found) => {
                let mut by_instance: HashMap<&str, Vec<&TaskRow>> = HashMap::new();
                for row in &found {
                    by_instance.entry(row.instance_id.as_str()).or_default().push(row);
                }
                for (id, reply) in reads {
                    let rows = by_instance.get(id.as_str()).map(|rows| rows.iter().map(|r| (*r).clone()).collect());
                    let _ = reply.send(Ok(rows.unwrap_or_default()));
                }
            }
            Err(e) => fail(reads, &e),
        }
    }
}

/// Answers each read of one row by its id with the row `found` holds of that id.
fn answer_by_id<T: Clone>(
    reads: Vec<(String, Answer<Option<T>>)>,
    found: Result<Vec<T>, StoreError>,
    id: fn(&T) -> &str,
) {
    match found {
        Ok(found) => {
            let by_id: HashMap<&str, &T> = found.iter().map(|r| (id(r), r)).collect();
            for (wanted, reply) in reads {
                let _ = reply.send(Ok(by_id.get(wanted.as_str()).map(|r| (*r).clone())));
            }
        }
        Err(e) => fail(reads, &e),
    }
}

/// Tells each read of a failed batch why it failed.
fn fail<T>(reads: Vec<(String, Answer<T>)>, e: &StoreError) {
    for (_, reply) in reads {
        let _ = reply.send(Err(StoreError::Shared(e.to_string())));
    }
}

/// The ids asked for, each once.
fn distinct<T>(asked: &[(String, T)]) -> Vec<&str> {
    let mut ids: Vec<&str> = asked.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

impl Runtime {
    /// An instance by its id, as committed: [`Store::instance`], read together with the other
    /// reads of one instance asked for at the same time.
    ///
    /// # Errors
    /// A store failure.
    pub async fn instance(&self, id: &str) -> flowstone_store::Result<Option<InstanceRow>> {
        match self.batched(|reply| Read::Instance(id.to_owned(), reply)).await {
            Some(answer) => answer,
            None => self.store.instance(id).await,
        }
    }

    /// The open task records of an instance, oldest first, as committed: what it waits for,
    /// read together with the other such reads asked for at the same time.
    ///
    /// # Errors
    /// A store failure.
    pub async fn open_tasks(&self, instance_id: &str) -> flowstone_store::Result<Vec<TaskRow>> {
        match self.batched(|reply| Read::OpenTasks(instance_id.to_owned(), reply)).await {
            Some(answer) => answer,
            None => self.store.tasks_of_instances(&[instance_id], true).await,
        }
    }

    /// Every task record of an instance, oldest first, as committed: [`Store::tasks_of_instance`],
    /// read together with the other such reads asked for at the same time.
    ///
    /// # Errors
    /// A store failure.
    pub async fn tasks_of_instance(&self, instance_id: &str) -> flowstone_store::Result<Vec<TaskRow>> {
        match self.batched(|reply| Read::Tasks(instance_id.to_owned(), reply)).await {
            Some(answer) => answer,
            None => self.store.tasks_of_instance(instance_id).await,
        }
    }

    /// A task record by its id, as committed: [`Store::task`], read together with the other
    /// reads of one record asked for at the same time.
    ///
    /// # Errors
    /// A store failure.
    pub async fn task(&self, id: &str) -> flowstone_store::Result<Option<TaskRow>> {
        match self.batched(|reply| Read::Task(id.to_owned(), reply)).await {
            Some(answer) => answer,
            None => self.store.task(id).await,
        }
    }

    /// The answer of a read sent to the batches; none when they are gone (the runtime stops),
    /// and the read is made alone.
    async fn batched<T>(&self, read: impl FnOnce(Answer<T>) -> Read) -> Option<Result<T, StoreError>> {
        let (reply, answer) = oneshot::channel();
        self.reads.send(read(reply)).ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RuntimeOptions;
    use flowstone_engine::StartOptions;
    use serde_json::Map;

    const WAITS: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">
  <process id="waits" isExecutable="true">
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="u"/>
    <userTask id="u"/><sequenceFlow id="f2" sourceRef="u" targetRef="e"/><endEvent id="e"/>
  </process>
</definitions>"#;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_asked_at_once_each_get_their_own_instance_records_and_record() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(flowstone_store::SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
        let rt = Runtime::start(store.clone(), RuntimeOptions::default()).await.unwrap();
        let model = Arc::new(rt.deploy(WAITS).await.unwrap().remove(0));
        let mut ids = vec!["unknown".to_owned()];
        for _ in 0..40 {
            let started = rt.start_instance(model.clone(), "r".into(), None, Map::new(), StartOptions::default());
            ids.push(started.await.unwrap().id);
        }
        // Each id asked for twice at once: the batches hold many ids, some of them twice.
        let asked: Vec<_> = ids
            .iter()
            .chain(&ids)
            .map(|id| {
                let (rt, id) = (rt.clone(), id.clone());
                tokio::spawn(async move {
                    let (row, open) = (rt.instance(&id).await.unwrap(), rt.open_tasks(&id).await.unwrap());
                    let record = match open.first() {
                        Some(t) => rt.task(&t.record.id).await.unwrap(),
                        None => rt.task(&id).await.unwrap(),
                    };
                    let all = rt.tasks_of_instance(&id).await.unwrap();
                    (row, open, record, all, id)
                })
            })
            .collect();
        for handle in asked {
            let (row, open, record, all, id) = handle.await.unwrap();
            assert_eq!(record.as_ref(), open.first(), "{id}");
            assert_eq!(row, store.instance(&id).await.unwrap(), "{id}");
            assert_eq!(open, store.tasks_of_instances(&[&id], true).await.unwrap(), "{id}");
            assert_eq!(all, store.tasks_of_instance(&id).await.unwrap(), "{id}");
            assert_eq!((row.is_some(), open.len()), (id != "unknown", usize::from(id != "unknown")), "{id}");
        }
        rt.shutdown();
    }
}
