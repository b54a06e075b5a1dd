//! What a command looks up at every step, kept beside the tokens, scopes and variables it
//! derives from.
//!
//! A parallel multi-instance of N items holds N tokens, N item scopes and N process variables
//! (each item's outputs, under its namespace). Were each item's completion to scan them all
//! (which token waits on this record, is this scope still busy, how large are all variables
//! together), N completions would cost N² and a large `loopCardinality` would stall the
//! server. The index answers each in time independent of N. Tokens and scopes change only
//! through the methods here, variables only through methods that note the change; the index
//! is not stored, and is rebuilt after an instance is read back and after the rare bulk
//! removals.

use crate::instance::{Instance, Token};
use crate::limits::{json_size, vars_size};
use crate::scope::{Scope, ScopeId};
use flowstone_model::NodeId;
use serde_json::Value;
use std::collections::HashMap;
use std::hash::Hash;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Derived from the state of an instance; see the module documentation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    /// Whether it reflects the state (false after the state was read back).
    built: bool,
    /// How many tokens and child scopes each scope holds: a scope with none is done.
    members: Map<ScopeId, u32>,
    /// The token waiting on each open record.
    waiting: Map<String, u32>,
    /// The JSON size of each process variable (its name included).
    variables: Sizes<String>,
    /// The JSON size of each scope's variables.
    scopes: Sizes<ScopeId>,
}

/// Derived data: two instances in the same state are equal whatever their indexes hold.
impl PartialEq for Index {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// JSON sizes of the parts of a whole, and their sum; a part is counted again only after it
/// changed.
#[derive(Debug, Clone)]
struct Sizes<K> {
    of: Map<K, usize>,
    total: usize,
    /// Parts changed (or never counted) since the last count.
    stale: Vec<K>,
}

impl<K> Default for Sizes<K> {
    fn default() -> Self {
        Sizes { of: Map::default(), total: 0, stale: Vec::new() }
    }
}

impl<K: Hash + Eq> Sizes<K> {
    fn changed(&mut self, key: K) {
        if self.stale.last() != Some(&key) {
            self.stale.push(key);
        }
    }

    fn forget(&mut self, key: &K) {
        self.total -= self.of.remove(key).unwrap_or(0);
    }

    /// The sum, after counting the stale parts again (`size`: a part's size now, none when
    /// it is gone).
    fn recount(&mut self, mut size: impl FnMut(&K) -> Option<usize>) -> usize {
        for key in std::mem::take(&mut self.stale) {
            self.forget(&key);
            if let Some(n) = size(&key) {
                self.total += n;
                self.of.insert(key, n);
            }
        }
        self.total
    }
}

impl Index {
    /// Notes that a scope's variables changed: they are counted again at the next check.
    pub(crate) fn scope_vars_changed(&mut self, scope: ScopeId) {
        self.scopes.changed(scope);
    }

    /// Notes that a process variable changed (or went).
    pub(crate) fn variable_changed(&mut self, name: &str) {
        if self.variables.stale.last().is_none_or(|last| last != name) {
            self.variables.stale.push(name.to_owned());
        }
    }

    fn enter(&mut self, scope: Option<ScopeId>) {
        if let Some(id) = scope {
            *self.members.entry(id).or_default() += 1;
        }
    }

    fn leave(&mut self, scope: Option<ScopeId>) {
        if let Some(count) = scope.and_then(|id| self.members.get_mut(&id)) {
            *count = count.saturating_sub(1);
        }
    }
}

impl Instance {
    /// Builds the index from the state when it does not reflect it.
    pub(crate) fn ensure_index(&mut self) {
        if !self.index.built {
            self.reindex();
        }
    }

    /// Builds the index anew from the state (sizes are counted at the next check).
    pub(crate) fn reindex(&mut self) {
        let mut index = Index { built: true, ..Index::default() };
        for (id, token) in &self.tokens {
            index.enter(token.scope);
            if let Some(record) = &token.wait {
                index.waiting.insert(record.clone(), *id);
            }
        }
        for (id, scope) in &self.scopes {
            index.enter(scope.parent);
            index.scopes.stale.push(*id);
        }
        index.variables.stale.extend(self.variables.keys().cloned());
        self.index = index;
    }

    /// Whether the index holds what one built afresh would: what tests check after every
    /// command.
    pub(crate) fn index_is_current(&self) -> bool {
        let mut fresh = self.clone();
        fresh.reindex();
        let busy = |index: &Index| -> Map<ScopeId, u32> {
            index.members.iter().filter(|(_, n)| **n > 0).map(|(id, n)| (*id, *n)).collect()
        };
        let same_sizes = {
            // Sizes past the cap fail the instance; below it they are exact.
            let mut kept = self.clone();
            !self.active() || kept.variables_size(usize::MAX) == fresh.variables_size(usize::MAX)
        };
        busy(&fresh.index) == busy(&self.index) && fresh.index.waiting == self.index.waiting && same_sizes
    }

    pub(crate) fn spawn(&mut self, node: NodeId, scope: Option<ScopeId>) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.tokens.insert(id, Token { node, scope, wait: None, race: None });
        self.index.enter(scope);
        self.token_changed(id);
        id
    }

    /// Removes a token (what it waited on is no longer its).
    pub(crate) fn drop_token(&mut self, id: u32) -> Option<Token> {
        let token = self.tokens.remove(&id)?;
        self.token_changed(id);
        self.index.leave(token.scope);
        if let Some(record) = &token.wait {
            self.index.waiting.remove(record);
        }
        Some(token)
    }

    /// Marks a token as waiting on an open record, or on nothing any more.
    pub(crate) fn set_wait(&mut self, token: u32, record: Option<String>) {
        if !self.tokens.contains_key(&token) {
            return;
        }
        self.token_changed(token);
        let Some(t) = self.tokens.get_mut(&token) else { return };
        if let Some(old) = t.wait.take() {
            self.index.waiting.remove(&old);
        }
        if let Some(record) = &record {
            self.index.waiting.insert(record.clone(), token);
        }
        t.wait = record;
    }

    pub(crate) fn token_waiting_on(&self, record_id: &str) -> Option<u32> {
        self.index.waiting.get(record_id).copied()
    }

    pub(crate) fn new_scope(&mut self, scope: Scope) -> ScopeId {
        let id = self.next_id;
        self.next_id += 1;
        self.index.enter(scope.parent);
        self.index.scopes.changed(id);
        self.scope_changed(id, &scope);
        self.scopes.insert(id, scope);
        id
    }

    /// Removes a scope (what is in it must be gone or removed too).
    pub(crate) fn drop_scope(&mut self, id: ScopeId) -> Option<Scope> {
        let scope = self.scopes.remove(&id)?;
        self.scope_changed(id, &scope);
        self.index.leave(scope.parent);
        self.index.members.remove(&id);
        self.index.scopes.forget(&id);
        Some(scope)
    }

    /// Removes the tokens and scopes that match, with no regard for what they hold (the
    /// caller removes that too); one pass however many go.
    pub(crate) fn remove_flow(&mut self, token: impl Fn(&Token) -> bool, scope: impl Fn(ScopeId) -> bool) {
        let tokens: Vec<u32> = self.tokens.iter().filter(|(_, t)| token(t)).map(|(id, _)| *id).collect();
        for id in tokens {
            self.tokens.remove(&id);
            self.token_changed(id);
        }
        let scopes: Vec<ScopeId> = self.scopes.keys().copied().filter(|id| scope(*id)).collect();
        for id in scopes {
            if let Some(gone) = self.scopes.remove(&id) {
                self.scope_changed(id, &gone);
            }
        }
        self.reindex();
    }

    /// Whether tokens or scopes are still in a scope.
    pub(crate) fn scope_busy(&self, id: ScopeId) -> bool {
        self.index.members.get(&id).is_some_and(|n| *n > 0)
    }

    /// Sets a process variable.
    pub(crate) fn set_process_var(&mut self, name: String, value: Value) {
        self.process_var_changed(&name);
        self.variables.insert(name, value);
    }

    /// Removes a process variable.
    pub(crate) fn remove_process_var(&mut self, name: &str) -> Option<Value> {
        self.process_var_changed(name);
        self.variables.remove(name)
    }

    /// The JSON size of all variables, the process's and every scope's, each value counted
    /// to just past `cap`; what did not change since the last count is not counted again.
    pub(crate) fn variables_size(&mut self, cap: usize) -> usize {
        let Instance { variables, scopes, index, .. } = self;
        let process = index.variables.recount(|name| variables.get(name).map(|v| name.len() + json_size(v, cap)));
        let scoped = index.scopes.recount(|id| scopes.get(id).map(|s| vars_size(&s.vars, cap)));
        process.saturating_add(scoped)
    }
}
