//! The stored form of an instance: one document while it is small, a core and one part per
//! item once it is large.
//!
//! A parallel multi-instance of N items holds N open records, N tokens, N item scopes and N
//! process variables (each item's outputs). Written as one document, every commit group that
//! completes a few items would write all N again, and N completions would write N² bytes.
//! Past [`PARTS_FROM`] items an instance is stored as a core (what is left) and one part per
//! open record, token, scope, multi-instance collection, stone task run, compensation step
//! and process variable; a commit writes the core and only the parts that changed since the
//! last one. Parts change only through the methods
//! here and in [`crate::index`], which note the change.

use crate::compensation::Ran;
use crate::effect::TaskRecord;
use crate::instance::{Instance, Token};
use crate::recorded::StoredOpen;
use crate::scope::{Scope, ScopeId, ScopeKind};
use flowstone_model::Definition;
use serde::Serialize;
use serde::de::{DeserializeOwned, Error as _};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// How many items (open records, tokens, scopes, runs and steps) an instance holds before it
/// is stored in parts. Below it one document costs one row and is as cheap to write as a part.
pub const PARTS_FROM: usize = 64;

/// One separately stored item of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Part {
    Open(String),
    Token(u32),
    Scope(ScopeId),
    /// The collection a multi-instance body iterates: written once, when the body starts.
    Items(ScopeId),
    Ran(u32),
    Step(u32),
    /// A process variable (each item of a multi-instance may write its own).
    Var(String),
}

impl Part {
    fn key(&self) -> String {
        match self {
            Part::Open(id) => format!("o:{id}"),
            Part::Token(n) => format!("t:{n}"),
            Part::Scope(n) => format!("s:{n}"),
            Part::Items(n) => format!("i:{n}"),
            Part::Ran(n) => format!("r:{n}"),
            Part::Step(n) => format!("p:{n}"),
            Part::Var(name) => format!("v:{name}"),
        }
    }
}

/// How an instance was last stored, and what changed since; derived, like [`crate::index`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Changes {
    core_bytes: usize,
    /// Set once the instance is stored in parts: only then are changes noted (a small
    /// instance pays nothing for them).
    parted: Option<Box<Parted>>,
}

#[derive(Debug, Clone, Default)]
struct Parted {
    changed: HashSet<Part, foldhash::fast::RandomState>,
    /// The stored size of each part, and of all of them.
    sizes: HashMap<Part, usize, foldhash::fast::RandomState>,
    bytes: usize,
}

/// Derived data: two instances in the same state are equal whatever they changed.
impl PartialEq for Changes {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Changes {
    fn note(&mut self, part: impl FnOnce() -> Part) {
        if let Some(parted) = &mut self.parted {
            parted.changed.insert(part());
        }
    }
}

/// An instance as stored, or what is to be written of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stored {
    /// The instance's document (in parts, all but its parts); empty when nothing is kept.
    pub core: String,
    /// Whether every part stored before is removed first.
    pub clear: bool,
    /// Parts by key: written, or removed where there is no body.
    pub parts: Vec<(String, Option<String>)>,
}

fn corrupt(message: String) -> serde_json::Error {
    serde_json::Error::custom(message)
}

fn read_part<T: DeserializeOwned>(key: &str, body: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(body).map_err(|e| corrupt(format!("part {key}: {e}")))
}

impl Instance {
    /// What is to be written of the instance since it was last stored, and from now on only
    /// the changes. An instance holding at least `parts_from` items goes to parts (and stays
    /// there while it lives); an ended instance with nothing to undo keeps nothing, and one
    /// stored as one document leaves its variables to the caller, who writes them as the
    /// instance's final ones.
    ///
    /// # Errors
    /// When a value cannot be serialized.
    pub fn store(&mut self, parts_from: usize) -> Result<Stored, serde_json::Error> {
        if !self.active() && !self.keeps_state() {
            let clear = self.changes.parted.is_some();
            self.changes = Changes::default();
            return Ok(Stored { core: String::new(), clear, parts: Vec::new() });
        }
        if self.changes.parted.is_none() && self.items() < parts_from {
            // An ended instance's variables are its row's final ones, which the same commit
            // writes: written here too, they made its row half as large again.
            let kept = (!self.active()).then(|| std::mem::take(&mut self.variables));
            let core = serde_json::to_string(self);
            if let Some(variables) = kept {
                self.variables = variables;
            }
            let core = core?;
            self.changes.core_bytes = core.len();
            return Ok(Stored { core, clear: false, parts: Vec::new() });
        }
        let mut parted = match self.changes.parted.take() {
            Some(parted) => parted,
            None => Box::new(Parted { changed: self.all_parts().collect(), ..Parted::default() }),
        };
        let mut parts = Vec::with_capacity(parted.changed.len());
        for part in std::mem::take(&mut parted.changed) {
            let body = self.part_body(&part)?;
            let old = match &body {
                Some(b) => parted.sizes.insert(part.clone(), b.len()),
                None => parted.sizes.remove(&part),
            };
            parted.bytes = parted.bytes + body.as_ref().map_or(0, String::len) - old.unwrap_or(0);
            parts.push((part.key(), body));
        }
        let core = self.core()?;
        self.changes = Changes { core_bytes: core.len(), parted: Some(parted) };
        Ok(Stored { core, clear: false, parts })
    }

    /// About how many bytes the instance took when last stored (what a cache counts).
    pub fn stored_bytes(&self) -> usize {
        self.changes.core_bytes + self.changes.parted.as_ref().map_or(0, |p| p.bytes)
    }

    /// Reads an instance back from its stored form. An ended instance stored as one document
    /// comes back without its variables: they are its row's final ones (see
    /// [`Instance::store`]), which the reader puts back.
    ///
    /// # Errors
    /// When the core or a part is not what [`Instance::store`] writes.
    pub fn from_stored(stored: &Stored) -> Result<Instance, serde_json::Error> {
        let mut inst: Instance = serde_json::from_str(&stored.core)?;
        let mut items = BTreeMap::new();
        let mut ran = BTreeMap::new();
        let mut steps = BTreeMap::new();
        let mut sizes = HashMap::default();
        for (key, body) in &stored.parts {
            let Some(body) = body else { continue };
            let (kind, id) = key.split_once(':').ok_or_else(|| corrupt(format!("part {key}: no kind")))?;
            let number = || id.parse::<u32>().map_err(|e| corrupt(format!("part {key}: {e}")));
            let part = match kind {
                "o" => {
                    inst.open.insert(id.to_owned(), read_part::<StoredOpen>(key, body)?.into_record(id));
                    Part::Open(id.to_owned())
                }
                "v" => {
                    inst.variables.insert(id.to_owned(), read_part::<Value>(key, body)?);
                    Part::Var(id.to_owned())
                }
                "t" => Part::Token(number()?),
                "s" => Part::Scope(number()?),
                "i" => Part::Items(number()?),
                "r" => Part::Ran(number()?),
                "p" => Part::Step(number()?),
                _ => return Err(corrupt(format!("part {key}: unknown kind"))),
            };
            match &part {
                Part::Token(n) => {
                    inst.tokens.insert(*n, read_part::<Token>(key, body)?);
                }
                Part::Scope(n) => {
                    inst.scopes.insert(*n, read_part::<Scope>(key, body)?);
                }
                Part::Items(n) => {
                    items.insert(*n, read_part::<Vec<Value>>(key, body)?);
                }
                Part::Ran(n) => {
                    ran.insert(*n, read_part::<Ran>(key, body)?);
                }
                Part::Step(n) => {
                    steps.insert(*n, read_part::<Ran>(key, body)?);
                }
                Part::Open(_) | Part::Var(_) => {}
            }
            sizes.insert(part, body.len());
        }
        for (id, list) in items {
            match inst.scopes.get_mut(&id).map(|s| &mut s.kind) {
                Some(ScopeKind::MiBody { items, .. }) => *items = Some(list),
                _ => return Err(corrupt(format!("part i:{id}: no multi-instance body {id}"))),
            }
        }
        inst.ran.extend(ran.into_values());
        if !steps.is_empty() {
            let plan = inst.plan.as_mut().ok_or_else(|| corrupt("compensation steps without a plan".into()))?;
            plan.steps.extend(steps.into_values());
        }
        let parted = (!sizes.is_empty()).then(|| {
            let bytes = sizes.values().sum();
            Box::new(Parted { changed: HashSet::default(), sizes, bytes })
        });
        inst.changes = Changes { core_bytes: stored.core.len(), parted };
        Ok(inst)
    }

    /// How many items the instance holds.
    fn items(&self) -> usize {
        self.open.len()
            + self.tokens.len()
            + self.scopes.len()
            + self.ran.len()
            + self.plan.as_ref().map_or(0, |p| p.steps.len())
            + self.variables.len()
    }

    /// Notes every part changed: the next store writes the whole instance again (after a
    /// change that reaches every part, such as a move to another version).
    pub(crate) fn rewrite_all(&mut self) {
        let all: Vec<Part> = self.all_parts().collect();
        if let Some(parted) = &mut self.changes.parted {
            parted.changed.extend(all);
        }
    }

    fn all_parts(&self) -> impl Iterator<Item = Part> + '_ {
        let with_items = self.scopes.iter().filter(|(_, s)| has_items(s)).map(|(id, _)| Part::Items(*id));
        let steps = self.plan.as_ref().map_or(0, |p| p.steps.len());
        self.open
            .keys()
            .map(|id| Part::Open(id.clone()))
            .chain(self.tokens.keys().map(|n| Part::Token(*n)))
            .chain(self.scopes.keys().map(|n| Part::Scope(*n)))
            .chain(with_items)
            .chain((0..self.ran.len() as u32).map(Part::Ran))
            .chain((0..steps as u32).map(Part::Step))
            .chain(self.variables.keys().map(|name| Part::Var(name.clone())))
    }

    /// A part as stored, or none when it is gone.
    fn part_body(&mut self, part: &Part) -> Result<Option<String>, serde_json::Error> {
        fn text<T: Serialize>(value: Option<&T>) -> Result<Option<String>, serde_json::Error> {
            value.map(serde_json::to_string).transpose()
        }
        match part {
            Part::Open(id) => text(self.open.get(id).map(StoredOpen::of).as_ref()),
            Part::Token(n) => text(self.tokens.get(n)),
            Part::Scope(n) => match self.scopes.get_mut(n) {
                // Its collection is a part of its own: the body's counts change at every item.
                Some(scope) => {
                    let items = take_items(scope);
                    let body = serde_json::to_string(scope);
                    put_items(scope, items);
                    body.map(Some)
                }
                None => Ok(None),
            },
            Part::Items(n) => match self.scopes.get(n).map(|s| &s.kind) {
                Some(ScopeKind::MiBody { items: Some(items), .. }) => text(Some(items)),
                _ => Ok(None),
            },
            Part::Ran(n) => text(self.ran.get(*n as usize)),
            Part::Step(n) => text(self.plan.as_ref().and_then(|p| p.steps.get(*n as usize))),
            Part::Var(name) => text(self.variables.get(name)),
        }
    }

    /// The document without its parts.
    fn core(&mut self) -> Result<String, serde_json::Error> {
        let variables = std::mem::take(&mut self.variables);
        let open = std::mem::take(&mut self.open);
        let tokens = std::mem::take(&mut self.tokens);
        let scopes = std::mem::take(&mut self.scopes);
        let ran = std::mem::take(&mut self.ran);
        let steps = self.plan.as_mut().map(|p| std::mem::take(&mut p.steps));
        let core = serde_json::to_string(self);
        self.variables = variables;
        self.open = open;
        self.tokens = tokens;
        self.scopes = scopes;
        self.ran = ran;
        if let (Some(plan), Some(steps)) = (self.plan.as_mut(), steps) {
            plan.steps = steps;
        }
        core
    }

    /// Adds an open record.
    pub(crate) fn open_record(&mut self, rec: TaskRecord) {
        self.changes.note(|| Part::Open(rec.id.clone()));
        self.open.insert(rec.id.clone(), rec);
    }

    /// Removes an open record.
    pub(crate) fn take_record(&mut self, id: &str) -> Option<TaskRecord> {
        self.changes.note(|| Part::Open(id.to_owned()));
        self.open.remove(id)
    }

    /// An open record, to change.
    pub(crate) fn record_mut(&mut self, id: &str) -> Option<&mut TaskRecord> {
        self.changes.note(|| Part::Open(id.to_owned()));
        self.open.get_mut(id)
    }

    /// A scope, to change.
    pub(crate) fn scope_mut(&mut self, id: ScopeId) -> Option<&mut Scope> {
        self.changes.note(|| Part::Scope(id));
        self.scopes.get_mut(&id)
    }

    /// Remembers a stone task that ran, if a rollback, cancel or delete would undo it.
    pub(crate) fn push_ran(&mut self, def: &Definition, ran: Ran) {
        if ran.compensated(def) {
            self.adopt_ran(ran);
        }
    }

    /// Remembers a stone task that ran, already known to be one its rollback undoes (a
    /// called instance's, checked against the child's model).
    pub(crate) fn adopt_ran(&mut self, ran: Ran) {
        self.changes.note(|| Part::Ran(self.ran.len() as u32));
        self.ran.push(ran);
    }

    /// Notes that a process variable changed (or went).
    pub(crate) fn process_var_changed(&mut self, name: &str) {
        self.index.variable_changed(name);
        self.changes.note(|| Part::Var(name.to_owned()));
    }

    /// Notes that a token changed (or went).
    pub(crate) fn token_changed(&mut self, id: u32) {
        self.changes.note(|| Part::Token(id));
    }

    /// Notes that a scope changed (or went), its collection with it.
    pub(crate) fn scope_changed(&mut self, id: ScopeId, scope: &Scope) {
        self.changes.note(|| Part::Scope(id));
        if has_items(scope) {
            self.changes.note(|| Part::Items(id));
        }
    }
}

fn has_items(scope: &Scope) -> bool {
    matches!(scope.kind, ScopeKind::MiBody { items: Some(_), .. })
}

fn take_items(scope: &mut Scope) -> Option<Vec<Value>> {
    match &mut scope.kind {
        ScopeKind::MiBody { items, .. } => items.take(),
        _ => None,
    }
}

fn put_items(scope: &mut Scope, list: Option<Vec<Value>>) {
    if let ScopeKind::MiBody { items, .. } = &mut scope.kind {
        *items = list;
    }
}
