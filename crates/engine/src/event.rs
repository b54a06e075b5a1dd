//! Message and signal events: a catching event or receive task holds its token until its
//! message or signal comes; a boundary event takes the flow on from its activity when it comes
//! while the activity runs (canceling it when interrupting); an event subprocess's message or
//! signal start starts it while its scope runs; a throw event or send task sends one.
//!
//! Every wait is an open task record (its message's name and correlation key in its params)
//! and a [`Wait`] of the instance. Opening one emits [`Effect::Subscribe`] with the key's
//! value as it is then; the runtime finds the records a message or signal reaches through
//! those subscriptions and hands each a [`crate::Command::Deliver`]. A wait whose activity,
//! scope or instance ended is dropped in the same step, like a timer.

use crate::effect::{Effect, Subscription, TaskStatus, Thrown};
use crate::instance::{EngineError, Fail, Instance, Step};
use crate::scope::ScopeId;
use crate::timer::Owner;
use flowstone_model::{EventKind, NodeId, NodeKind, Trigger};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A record waiting for a message, a signal or a trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Wait {
    /// The waiting event's node.
    pub(crate) node: NodeId,
    /// For a boundary event or an event subprocess's start, the run it lives as long as; a
    /// catch event's wait has a token waiting on its record instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) owner: Option<Owner>,
    /// For a condition that does not interrupt: it held when last read, so it comes again
    /// only once it has stopped holding and holds anew.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) held: bool,
}

impl Instance {
    /// A token reached a catch event or a receive task: it waits there for its event.
    pub(crate) fn catch_event(
        &mut self,
        step: &mut Step<'_, '_>,
        token: u32,
        trigger: Option<&Trigger>,
    ) -> Result<(), Fail> {
        let (node, scope) = (self.tokens[&token].node, self.tokens[&token].scope);
        let rec = self.subscribe(step, node, trigger, None, scope)?;
        self.wait(step, token, rec);
        Ok(())
    }

    /// Opens the wait of boundary or start event `node` that lives as long as `owner`.
    pub(crate) fn open_wait(
        &mut self,
        step: &mut Step<'_, '_>,
        node: NodeId,
        trigger: &Trigger,
        owner: Owner,
        scope: Option<ScopeId>,
    ) -> Result<(), Fail> {
        let rec = self.subscribe(step, node, Some(trigger), Some(owner), scope)?;
        self.open_record(rec.clone());
        step.effects.push(Effect::Task(Box::new(rec)));
        Ok(())
    }

    /// A waiting record for `node`, its subscription emitted; its key read as `scope` sees it.
    fn subscribe(
        &mut self,
        step: &mut Step<'_, '_>,
        node: NodeId,
        trigger: Option<&Trigger>,
        owner: Option<Owner>,
        scope: Option<ScopeId>,
    ) -> Result<crate::TaskRecord, Fail> {
        let key = match trigger {
            Some(Trigger::Message { correlation: Some(expr), name }) => {
                Some(key_text(self.eval(expr, scope)?).ok_or_else(|| {
                    Fail(format!("the correlation key `{}` of message `{name}` is null", expr.source()))
                })?)
            }
            _ => None,
        };
        let kind = trigger.map_or(EventKind::Trigger, Trigger::kind);
        let name = trigger.map(Trigger::name).unwrap_or_default().to_owned();
        let mut rec = self.new_record(step, node, None);
        rec.status = TaskStatus::Active;
        let mut params = Map::new();
        params.insert("eventType".into(), kind.name().into());
        if !name.is_empty() {
            params.insert("eventName".into(), name.clone().into());
        }
        if let Some(key) = &key {
            params.insert("correlationKey".into(), key.clone().into());
        }
        if let Some(Trigger::Condition { condition }) = trigger {
            params.insert("condition".into(), condition.source().into());
        }
        rec.params = Some(Value::Object(params));
        self.waits.insert(rec.id.clone(), Wait { node, owner, held: false });
        // A condition is read in the instance itself (see `fire_conditions`): nothing outside
        // looks for it.
        if kind == EventKind::Conditional {
            return Ok(rec);
        }
        step.effects.push(Effect::Subscribe(Subscription {
            record_id: rec.id.clone(),
            element: rec.element.clone(),
            kind,
            name,
            key,
        }));
        Ok(rec)
    }

    /// The event record `id` waits for came with `variables`.
    ///
    /// # Errors
    /// [`EngineError::NotWaiting`] when no wait of that record is open.
    pub(crate) fn deliver(
        &mut self,
        step: &mut Step<'_, '_>,
        id: &str,
        variables: Map<String, Value>,
    ) -> Result<(), EngineError> {
        let wait = self.waits.get(id).cloned().ok_or_else(|| EngineError::NotWaiting(id.to_owned()))?;
        let def = step.def;
        match (&def.node(wait.node).kind, wait.owner) {
            (NodeKind::EventBoundary { interrupting, .. }, Some(owner)) => {
                let Some(parent) = self.owner_parent(owner) else { return Ok(()) };
                self.set_vars(parent, variables);
                if *interrupting {
                    self.close_record(step, id, TaskStatus::Completed, None, None);
                    self.interrupt(step, owner);
                }
                let token = self.spawn(wait.node, parent);
                step.ready.push_back(token);
            }
            (NodeKind::EventStart(_), Some(owner)) => {
                if !self.lives(id, Some(owner)) {
                    return Ok(());
                }
                let scope = owner.scope();
                let Some(esp) = def.node(wait.node).scope else { return Ok(()) };
                let NodeKind::EventSubProcess { interrupting, .. } = def.node(esp).kind else { return Ok(()) };
                if interrupting {
                    self.close_record(step, id, TaskStatus::Completed, None, None);
                    self.clear_scope(step, scope);
                }
                self.set_vars(scope, variables);
                self.start_event_subprocess(step, esp, wait.node, scope);
            }
            _ => {
                let token = self.token_waiting_on(id);
                let scope = token.and_then(|t| self.tokens[&t].scope);
                let outputs = (!variables.is_empty()).then(|| Value::Object(variables.clone()));
                self.set_vars(scope, variables);
                self.close_record(step, id, TaskStatus::Completed, None, outputs);
                if let Some(token) = token {
                    self.resume(step, token);
                }
            }
        }
        Ok(())
    }

    /// Sets variables where `scope` sees them (a name set nowhere goes to the process).
    fn set_vars(&mut self, scope: Option<ScopeId>, variables: Map<String, Value>) {
        for (name, value) in variables {
            self.set_var(scope, name, value);
        }
    }

    /// Sends the message or signal of a throw event, its key read as `scope` sees it. A signal
    /// that stays in its instance reaches its waits at once; others go out once committed.
    pub(crate) fn throw_event(
        &mut self,
        step: &mut Step<'_, '_>,
        trigger: &Trigger,
        scope: Option<ScopeId>,
    ) -> Result<(), Fail> {
        let key = match trigger {
            Trigger::Message { correlation: Some(expr), .. } => key_text(self.eval(expr, scope)?),
            Trigger::Signal { name, instance_only: true } => {
                self.signal_within(step, name);
                return Ok(());
            }
            _ => None,
        };
        step.effects.push(Effect::Throw(Thrown { kind: trigger.kind(), name: trigger.name().to_owned(), key }));
        Ok(())
    }

    /// A signal thrown to this instance only reaches each of its waits for it.
    fn signal_within(&mut self, step: &mut Step<'_, '_>, name: &str) {
        let def = step.def;
        let reached: Vec<String> = self
            .waits
            .iter()
            .filter(|(_, w)| {
                matches!(node_trigger(&def.node(w.node).kind), Some(Trigger::Signal { name: n, .. }) if n == name)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in reached {
            // Each wait was open when the signal came; one it ended is gone.
            let _ = self.deliver(step, &id, Map::new());
        }
    }

    /// Drops the waits whose activity or scope ended, and all once the instance ended.
    pub(crate) fn sweep_waits(&mut self, step: &mut Step<'_, '_>) {
        if self.waits.is_empty() {
            return;
        }
        let active = self.active();
        let doomed: Vec<String> = self
            .waits
            .iter()
            .filter(|(id, w)| !active || !self.open.contains_key(*id) || !self.lives(id, w.owner))
            .map(|(id, _)| id.clone())
            .collect();
        for id in doomed {
            if self.open.contains_key(&id) {
                self.close_record(step, &id, TaskStatus::Canceled, None, None);
            } else if let Some(wait) = self.waits.remove(&id)
                && !crate::conditional::is_condition(step.def, &wait)
            {
                step.effects.push(Effect::Unsubscribe { record_id: id });
            }
        }
    }
}

/// A correlation key's value as the text waits and messages are matched by (text as it
/// is, other values as JSON); none for null.
fn key_text(value: Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// What a waiting event's node waits for.
pub(crate) fn node_trigger(kind: &NodeKind) -> Option<&Trigger> {
    match kind {
        NodeKind::EventCatch { trigger, .. } => trigger.as_deref(),
        NodeKind::EventBoundary { trigger, .. } | NodeKind::EventStart(trigger) => Some(trigger),
        _ => None,
    }
}
