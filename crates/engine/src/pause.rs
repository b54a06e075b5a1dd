//! Pausing, as bk-sops pauses a task or one of its subprocesses: nothing that runs is
//! stopped, but no token moves on to a next node of what is paused; the tokens that would
//! wait where they are until it is resumed.

use crate::instance::{EngineError, Instance, Step};
use flowstone_model::{NodeId, NodeKind};

impl Instance {
    /// Whether `token` may not move now: the instance, or a subprocess around it, is paused.
    pub(crate) fn held(&self, token: u32) -> bool {
        if self.paused.is_empty() {
            return false;
        }
        if self.paused.contains(&None) {
            return true;
        }
        let mut scope = self.tokens.get(&token).and_then(|t| t.scope);
        while let Some(s) = scope {
            let Some(sc) = self.scopes.get(&s) else { return false };
            if self.paused.contains(&Some(sc.node)) {
                return true;
            }
            scope = sc.parent;
        }
        false
    }

    /// The subprocess nodes paused on their own.
    pub fn paused_subprocesses(&self) -> Vec<NodeId> {
        self.paused.iter().flatten().copied().collect()
    }

    /// Whether the whole instance is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.contains(&None)
    }

    /// The node of the subprocess `element`, or none for the whole instance.
    fn pause_target(step: &Step<'_, '_>, subprocess: Option<&str>) -> Result<Option<NodeId>, EngineError> {
        let Some(element) = subprocess else { return Ok(None) };
        step.def
            .node_by_element(element)
            .filter(|n| matches!(step.def.node(*n).kind, NodeKind::SubProcess { .. }))
            .map(Some)
            .ok_or_else(|| EngineError::NotASubprocess(element.to_owned()))
    }

    /// Pauses the instance, or the subprocess `element`.
    pub(crate) fn pause(&mut self, step: &Step<'_, '_>, subprocess: Option<&str>) -> Result<(), EngineError> {
        let target = Self::pause_target(step, subprocess)?;
        if !self.paused.contains(&target) {
            self.paused.push(target);
        }
        Ok(())
    }

    /// Resumes what [`Instance::pause`] paused; the tokens it held move on.
    pub(crate) fn unpause(&mut self, step: &mut Step<'_, '_>, subprocess: Option<&str>) -> Result<(), EngineError> {
        let target = Self::pause_target(step, subprocess)?;
        let before = self.paused.len();
        self.paused.retain(|p| *p != target);
        if self.paused.len() == before {
            return Err(EngineError::NotPaused(subprocess.unwrap_or("the process instance").to_owned()));
        }
        for token in std::mem::take(&mut self.parked) {
            if self.held(token) {
                self.parked.push(token);
            } else {
                step.ready.push_back(token);
            }
        }
        Ok(())
    }
}
