//! Moving a running instance to another version of its model, as Flowable's process-instance
//! migration does: every element the instance stands at (its tokens, joins, timers and
//! waits) goes to the element of the same id in the new version, or to the one an activity
//! mapping names for it. The whole move is checked first and refused with every reason,
//! so that an instance is never left half in one version.
//!
//! What does not move yet is refused by name: an instance inside a subprocess or a
//! multi-instance activity, a paused one, a bk-sops tree's, one compensating, and a
//! rollback, cancel or delete instance.

use crate::effect::{Effect, TaskRecord};
use crate::instance::{Instance, InstanceKind};
use flowstone_model::{Definition, NodeId};
use std::collections::BTreeMap;

/// A move checked against an instance: where each element it stands at goes.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationPlan {
    nodes: BTreeMap<NodeId, NodeId>,
    /// Each element the instance stands at, and the element it goes to.
    pub moves: Vec<(String, String)>,
}

impl Instance {
    /// How this instance, running `from`, would move to `to` with `mappings` (element id in
    /// `from` → element id in `to`), or every reason it cannot. Nothing changes.
    ///
    /// # Errors
    /// The reasons, each naming the element or what stands in the way.
    pub fn plan_migration(
        &self,
        from: &Definition,
        to: &Definition,
        mappings: &BTreeMap<String, String>,
    ) -> Result<MigrationPlan, Vec<String>> {
        let mut problems = Vec::new();
        if !self.active() {
            problems.push("it has ended: only a running instance moves to another version".to_owned());
        }
        if self.kind != InstanceKind::Process {
            problems.push("a rollback, cancel or delete instance runs the version of its process".to_owned());
        }
        let unsupported = [
            (!self.scopes.is_empty(), "it stands inside a subprocess or a multi-instance activity"),
            (!self.paused.is_empty() || !self.parked.is_empty(), "it is paused"),
            (!self.runs.is_empty(), "it runs a bk-sops tree"),
            (!self.compensating.is_empty(), "a compensation is under way"),
        ];
        for (_, why) in unsupported.iter().filter(|(holds, _)| *holds) {
            problems.push(format!("{why}, which does not move to another version yet"));
        }
        let mut used: Vec<NodeId> = self.tokens.values().map(|t| t.node).collect();
        used.extend(self.joins.iter().map(|j| j.node));
        used.extend(self.timers.values().map(|t| t.node));
        used.extend(self.waits.values().map(|w| w.node));
        used.extend(self.compensable.iter().map(|c| c.node));
        used.sort_unstable();
        used.dedup();
        let mut plan = MigrationPlan { nodes: BTreeMap::new(), moves: Vec::new() };
        for node in used {
            let Some(old) = from.nodes.get(node as usize) else {
                problems.push(format!("its state names node {node}, which its model does not hold"));
                continue;
            };
            let target = mappings.get(&old.id).unwrap_or(&old.id);
            let Some(new) = to.node_by_element(target) else {
                problems.push(format!(
                    "`{}` has no element `{target}` in the new version: map it in `activityMappings`",
                    old.id
                ));
                continue;
            };
            let moved = &to.nodes[new as usize];
            if std::mem::discriminant(&moved.kind) != std::mem::discriminant(&old.kind) {
                problems.push(format!("`{}` cannot become `{target}`: they are different kinds of element", old.id));
            } else if moved.scope.is_some() {
                problems.push(format!("`{}` cannot move into a subprocess (`{target}`)", old.id));
            } else if moved.boundaries.len() != old.boundaries.len() {
                problems
                    .push(format!("`{}` and `{target}` have different boundary events, which do not move yet", old.id));
            } else {
                plan.nodes.insert(node, new);
                plan.moves.push((old.id.clone(), target.clone()));
            }
        }
        for mapped in mappings.keys() {
            if !plan.moves.iter().any(|(from, _)| from == mapped) && from.node_by_element(mapped).is_none() {
                problems.push(format!("`activityMappings` names `{mapped}`, which the old version does not hold"));
            }
        }
        if problems.is_empty() { Ok(plan) } else { Err(problems) }
    }

    /// Moves this instance as `plan` (made by [`Instance::plan_migration`] on this state)
    /// says; its open records take the new elements' ids, and the effects write them out.
    /// Every part is written again at its next store.
    #[must_use = "the renamed records are to be written"]
    pub fn migrate(&mut self, plan: &MigrationPlan) -> Vec<Effect> {
        let to = |node: &mut NodeId| {
            if let Some(new) = plan.nodes.get(node) {
                *node = *new;
            }
        };
        self.tokens.values_mut().for_each(|t| to(&mut t.node));
        self.joins.iter_mut().for_each(|j| to(&mut j.node));
        self.timers.values_mut().for_each(|t| to(&mut t.node));
        self.waits.values_mut().for_each(|w| to(&mut w.node));
        self.compensable.iter_mut().for_each(|c| to(&mut c.node));
        let renamed: BTreeMap<&str, &str> =
            plan.moves.iter().filter(|(a, b)| a != b).map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let mut effects = Vec::new();
        for record in self.open.values_mut() {
            if let Some(new) = renamed.get(record.element.as_str()) {
                record.element = (*new).to_owned();
                // The record moves; its user task is not created again.
                effects.push(Effect::Task(Box::new(TaskRecord { user: None, ..record.clone() })));
            }
        }
        self.rewrite_all();
        effects
    }
}
