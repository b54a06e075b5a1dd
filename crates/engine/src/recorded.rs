//! How an instance stores its open task records: by id, with the little the store's task
//! record lacks.
//!
//! Every change to an open record goes out as an [`Effect::Task`] in the same step, and the
//! store writes it as the task record in the same commit as the instance. Written again in
//! the instance, an open stone task's params (every visible variable) were more than half of
//! an in-flight `w1_stones` instance's row, and that row is rewritten at every step. So the
//! instance keeps only the record's element (which readers of a stored state count retries
//! by) and the action its stone job asks for (the store keeps no column for it); the
//! committer [fills](Instance::fill_records) the rest from the task records when it reads
//! the instance back. States written before hold their records in full and read back as
//! they were.
//!
//! [`Effect::Task`]: crate::Effect::Task

use crate::effect::{Action, Phase, TaskRecord, TaskStatus};
use crate::instance::Instance;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// An open record as stored.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum StoredOpen<'a> {
    /// As states written before stored it.
    Full(Box<TaskRecord>),
    /// What the task record of the same id lacks.
    Recorded {
        element: Cow<'a, str>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        action: Option<Action>,
    },
}

impl<'a> StoredOpen<'a> {
    pub(crate) fn of(rec: &'a TaskRecord) -> Self {
        StoredOpen::Recorded { element: Cow::Borrowed(&rec.element), action: rec.action }
    }

    /// The record under `id`: a placeholder until it is filled, for one stored by id.
    pub(crate) fn into_record(self, id: &str) -> TaskRecord {
        match self {
            StoredOpen::Full(rec) => *rec,
            StoredOpen::Recorded { element, action } => TaskRecord {
                id: id.to_owned(),
                task_id: id.to_owned(),
                element: element.into_owned(),
                name: String::new(),
                // No record the engine opens is of no kind: this one waits to be filled.
                kind: String::new(),
                namespace: None,
                stone: None,
                create_time: 0,
                end_time: None,
                status: TaskStatus::Produce(Phase::Begin),
                reason: None,
                params: None,
                outputs: None,
                progress: None,
                action,
                user: None,
            },
        }
    }
}

/// Whether an open record was read back by id and not filled yet.
fn unfilled(rec: &TaskRecord) -> bool {
    rec.kind.is_empty()
}

/// Serializes [`Instance::open`] in its stored form.
pub(crate) fn serialize<S: Serializer>(open: &BTreeMap<String, TaskRecord>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(open.iter().map(|(id, rec)| (id, StoredOpen::of(rec))))
}

/// Reads [`Instance::open`] back from its stored form.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, TaskRecord>, D::Error> {
    let stored = BTreeMap::<String, StoredOpen<'static>>::deserialize(d)?;
    Ok(stored.into_iter().map(|(id, s)| (id.clone(), s.into_record(&id))).collect())
}

impl Instance {
    /// The open records it holds by id alone, as read back from the store.
    pub(crate) fn open_to_fill(&self) -> impl Iterator<Item = &str> {
        self.open.values().filter(|r| unfilled(r)).map(|r| r.id.as_str())
    }

    /// Fills the open records read back by id from their task records.
    pub(crate) fn fill_open<'r>(&mut self, find: &impl Fn(&str) -> Option<&'r TaskRecord>) -> Result<(), String> {
        for rec in self.open.values_mut().filter(|r| unfilled(r)) {
            let action = rec.action;
            *rec = find(&rec.id).ok_or_else(|| rec.id.clone())?.clone();
            rec.action = action;
            // A user task's record goes out once with who may work on it, which the instance
            // never keeps (the store keeps it with the user task).
            rec.user = None;
        }
        Ok(())
    }
}
