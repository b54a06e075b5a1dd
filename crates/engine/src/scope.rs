//! Scopes (subprocess runs and multi-instance bodies and items) and variable lookup through them.

use crate::instance::Instance;
use flowstone_expr::Variables;
use flowstone_model::NodeId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Index of a scope in [`Instance`]; `None` stands for the process itself.
pub(crate) type ScopeId = u32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum ScopeKind {
    /// A run of an embedded subprocess.
    SubProcess,
    /// The body of a multi-instance activity: counts its items.
    MiBody { total: u32, next: u32, completed: u32, items: Option<Vec<Value>> },
    /// One item of a multi-instance activity.
    MiItem { index: u32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Scope {
    pub(crate) parent: Option<ScopeId>,
    pub(crate) node: NodeId,
    pub(crate) kind: ScopeKind,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub(crate) vars: Map<String, Value>,
}

/// The variables visible from a scope: its own and its ancestors' locals, then the process's.
pub(crate) struct ScopeVars<'a> {
    pub(crate) instance: &'a Instance,
    pub(crate) scope: Option<ScopeId>,
}

impl Variables for ScopeVars<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        let mut cur = self.scope;
        while let Some(id) = cur {
            let scope = self.instance.scopes.get(&id)?;
            if let Some(v) = scope.vars.get(name) {
                return Some(v);
            }
            cur = scope.parent;
        }
        self.instance.variables.get(name)
    }

    fn all(&self) -> Map<String, Value> {
        let mut all = self.instance.variables.clone();
        let mut chain = Vec::new();
        let mut cur = self.scope;
        while let Some(id) = cur {
            let Some(scope) = self.instance.scopes.get(&id) else { break };
            chain.push(scope);
            cur = scope.parent;
        }
        for scope in chain.into_iter().rev() {
            all.extend(scope.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        all
    }
}
