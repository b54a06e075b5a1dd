//! The guards of a pipeline-tree component node's runs, kept as timers: its timeout (bk-sops'
//! `timeout_config`) fails a run that takes too long and, if asked, skips it; its automatic
//! retry (`auto_retry`) runs a failed node again after a wait, a bounded number of times.
//!
//! A guard's timer has an id of its own (the task record is the node's), so that a guard
//! dropped and another set for the same run in one commit stay two rows. It goes when its
//! run's record closes or its token leaves; a run's timeout goes when the run fails.

use crate::effect::TimerSet;
use crate::instance::{Instance, InstanceStatus, Step, StoneEvent};
use crate::timer::{Owner, Timer};
use serde::{Deserialize, Serialize};
use serde_json::Map;

/// What a guard timer does when it fires, to the task record it guards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Guard {
    /// Timeout or retry.
    pub(crate) kind: GuardKind,
    /// The run's task record.
    pub(crate) record: String,
}

/// The two guards of a component node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum GuardKind {
    /// Fail the run (and skip it, when `skip`).
    Timeout {
        /// Skip the node once failed.
        skip: bool,
    },
    /// Run the failed node again.
    Retry,
}

impl Instance {
    /// How many times the engine retried the failed run now open at `element` on its own.
    pub fn automatic_retries(&self, element: &str) -> u32 {
        self.open.values().filter(|r| r.element == element).filter_map(|r| self.auto_retries.get(&r.id)).sum()
    }

    /// Sets the timeout of the run whose record `record` its token `token` just started
    /// waiting on, if its node has one.
    pub(crate) fn arm_timeout(&mut self, step: &mut Step<'_, '_>, token: u32, record: &str) {
        let node = self.tokens[&token].node;
        let Some(timeout) = step.def.node(node).options.as_ref().and_then(|o| o.timeout) else { return };
        let kind = GuardKind::Timeout { skip: timeout.then_skip };
        self.set_guard(step, token, record, kind, timeout.seconds);
    }

    /// After the run of `record` failed and waits for an operator: its timeout goes, and its
    /// next automatic retry is set while it has retries left.
    pub(crate) fn arm_retry(&mut self, step: &mut Step<'_, '_>, record: &str) {
        self.disarm(step, record);
        let Some(token) = self.token_waiting_on(record) else { return };
        let node = self.tokens[&token].node;
        let Some(retry) = step.def.node(node).options.as_ref().and_then(|o| o.auto_retry) else { return };
        if self.auto_retries.get(record).copied().unwrap_or(0) < retry.times {
            self.set_guard(step, token, record, GuardKind::Retry, retry.interval);
        }
    }

    /// Drops the guard timers of `record`: an operator acts on it, or its run failed. Only a
    /// run of a node with guards looks for them (every failure and retry passes here).
    pub(crate) fn disarm(&mut self, step: &mut Step<'_, '_>, record: &str) {
        let node = self.token_waiting_on(record).map(|t| self.tokens[&t].node);
        let options = node.and_then(|n| step.def.node(n).options.as_deref());
        let guarded = node.is_none() || options.is_some_and(|o| o.timeout.is_some() || o.auto_retry.is_some());
        if self.timers.is_empty() || !guarded {
            return;
        }
        let ids: Vec<String> = self
            .timers
            .iter()
            .filter(|(_, t)| t.guard.as_ref().is_some_and(|g| g.record == record))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.timers.remove(&id);
            step.effects.push(crate::effect::Effect::DropTimer { record_id: id });
        }
    }

    fn set_guard(&mut self, step: &mut Step<'_, '_>, token: u32, record: &str, kind: GuardKind, seconds: u64) {
        let id = (step.ctx.ids)();
        let due = step.ctx.now.saturating_add(i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX));
        let element = self.open[record].element.clone();
        let guard = Guard { kind, record: record.to_owned() };
        let timer = Timer::guarding(self.tokens[&token].node, Owner::Token(token), due, seconds, guard);
        self.timers.insert(id.clone(), timer);
        step.effects.push(crate::effect::Effect::SetTimer(TimerSet { record_id: id, element, due }));
    }

    /// A guard timer fired. A timeout fails a run still under way; a retry runs again a run
    /// still failed. What an operator did first (a retry, a skip) wins: the guard then does
    /// nothing, and it never fails the command that fired it.
    pub(crate) fn fire_guard(&mut self, step: &mut Step<'_, '_>, id: &str, timer: &Timer) {
        let Some(guard) = &timer.guard else { return };
        self.timers.remove(id);
        step.effects.push(crate::effect::Effect::DropTimer { record_id: id.to_owned() });
        let Some(rec) = self.open.get(&guard.record) else { return };
        let failed = rec.status.step_failed();
        match guard.kind {
            GuardKind::Timeout { skip } => {
                if failed {
                    return;
                }
                let reason = format!("it ran longer than its timeout ({}) and the engine failed it", timer.text);
                // A run with no job under way (its stone answered meanwhile) has nothing to fail.
                if self.stone_event(step, &guard.record, StoneEvent::Fault(reason)).is_err() {
                    return;
                }
                if skip && self.status == InstanceStatus::Debug {
                    // A node that may not be skipped stays failed for an operator.
                    let _ = self.skip(step, &guard.record);
                }
            }
            GuardKind::Retry => {
                if !failed || self.status != InstanceStatus::Debug {
                    return;
                }
                *self.auto_retries.entry(guard.record.clone()).or_default() += 1;
                // A node that may not be retried stays failed for an operator.
                let _ = self.rerun(step, &guard.record, None, Map::new(), Map::new());
            }
        }
    }
}
