//! Timer events: an intermediate timer catch event holds its token until the timer fires; a
//! timer boundary event fires while its activity runs, canceling it (interrupting) or sending
//! a token on beside it (non-interrupting, once per firing of a cycle).
//!
//! Every timer is an open task record (kind `intermediateCatchEvent` or `boundaryEvent`,
//! its time and due date in its params) and a [`Timer`] of the instance. Setting one emits
//! [`Effect::SetTimer`]; the runtime fires it with [`crate::Command::FireTimer`] naming the
//! due time it fired for, so a firing that comes twice (from two servers) or late (after the
//! timer moved on to its next due time) changes nothing. A timer whose activity ended, or
//! whose instance ended, is dropped in the same step ([`Instance::sweep_timers`]).

use crate::effect::{Effect, TaskRecord, TaskStatus, TimerSet};
use crate::guard::Guard;
use crate::instance::{EngineError, Fail, Instance, Step};
use crate::scope::{ScopeId, ScopeKind};
use flowstone_model::{NodeId, NodeKind, TimerDef, TimerKind, TimerTime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A timer set and not yet fired for the last time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Timer {
    /// The timer event's node.
    pub(crate) node: NodeId,
    /// For a boundary timer, the run of the activity it is attached to: it lives as long as
    /// that runs. A catch event's timer has a token waiting on its record instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<Owner>,
    /// When it fires next, in milliseconds since the epoch.
    due: i64,
    /// How many times it fired.
    #[serde(default)]
    fired: u32,
    /// Its time as read when it was set (an expression's value).
    pub(crate) text: String,
    /// For a guard of a component node's run: what it does to the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) guard: Option<Guard>,
}

impl Timer {
    /// A guard's timer, due once after `seconds`.
    pub(crate) fn guarding(node: NodeId, owner: Owner, due: i64, seconds: u64, guard: Guard) -> Self {
        Self { node, owner: Some(owner), due, fired: 0, text: format!("PT{seconds}S"), guard: Some(guard) }
    }

    /// The task record whose life bounds its own: its own, or the run it guards.
    fn record<'a>(&'a self, id: &'a str) -> &'a str {
        self.guard.as_ref().map_or(id, |g| g.record.as_str())
    }
}

/// A run of an activity that a boundary event is attached to, or of a scope whose event
/// subprocesses wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Owner {
    /// The token at a task.
    Token(u32),
    /// The scope of a subprocess or of a multi-instance body.
    Scope(ScopeId),
    /// The process: the timer of an event subprocess at its top level.
    Process,
}

impl Owner {
    /// The scope an event subprocess waiting on this run starts in.
    pub(crate) fn scope(self) -> Option<ScopeId> {
        match self {
            Owner::Scope(s) => Some(s),
            Owner::Token(_) | Owner::Process => None,
        }
    }
}

impl Instance {
    /// Sets the timer of an intermediate timer catch event; its token waits on it.
    pub(crate) fn catch_timer(&mut self, step: &mut Step<'_, '_>, token: u32, def: &TimerDef) -> Result<(), Fail> {
        let (node, scope) = (self.tokens[&token].node, self.tokens[&token].scope);
        let rec = self.new_timer(step, node, def, None, scope)?;
        self.wait(step, token, rec);
        Ok(())
    }

    /// Sets the timers of the boundary events of the activity `token` just started at `node`
    /// (in `scope`): bound to its token while it waits on a task, or to the scope of its
    /// subprocess or multi-instance body (one of those numbered from `opened` on: the start
    /// opened them). An activity that is already over sets none.
    pub(crate) fn arm_boundaries(
        &mut self,
        step: &mut Step<'_, '_>,
        token: u32,
        node: NodeId,
        scope: Option<ScopeId>,
        opened: ScopeId,
    ) -> Result<(), Fail> {
        let def = step.def;
        let waits = self.tokens.get(&token).is_some_and(|t| t.node == node && t.wait.is_some());
        let owner = if waits {
            Owner::Token(token)
        } else {
            let started = self
                .scopes
                .range(opened..)
                .filter(|(_, s)| s.node == node && s.parent == scope)
                .filter(|(_, s)| matches!(s.kind, ScopeKind::SubProcess | ScopeKind::MiBody { .. }))
                .map(|(id, _)| *id)
                .max();
            match started {
                Some(id) => Owner::Scope(id),
                None => return Ok(()),
            }
        };
        for &boundary in &def.node(node).boundaries {
            match &def.node(boundary).kind {
                NodeKind::TimerBoundary { timer, .. } => self.open_timer(step, boundary, timer, owner, scope)?,
                NodeKind::EventBoundary { trigger, .. } => self.open_wait(step, boundary, trigger, owner, scope)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Sets the timer of the event `node` that lives as long as `owner`, as an open record.
    pub(crate) fn open_timer(
        &mut self,
        step: &mut Step<'_, '_>,
        node: NodeId,
        def: &TimerDef,
        owner: Owner,
        scope: Option<ScopeId>,
    ) -> Result<(), Fail> {
        let rec = self.new_timer(step, node, def, Some(owner), scope)?;
        self.open_record(rec.clone());
        step.effects.push(Effect::Task(Box::new(rec)));
        Ok(())
    }

    /// A timer's record, its first due time worked out from its time as `scope` sees it.
    fn new_timer(
        &mut self,
        step: &mut Step<'_, '_>,
        node: NodeId,
        def: &TimerDef,
        owner: Option<Owner>,
        scope: Option<ScopeId>,
    ) -> Result<TaskRecord, Fail> {
        let element = def.kind.element();
        let text = match &def.time {
            TimerTime::Fixed(text) => text.clone(),
            TimerTime::Expr(expr) => match self.eval(expr, scope)? {
                Value::String(text) => text,
                // A date given as milliseconds since the epoch (a Java `Date` in Flowable).
                Value::Number(n) if def.kind == TimerKind::Date && n.as_i64().is_some() => {
                    n.as_i64().and_then(iso).unwrap_or_default()
                }
                other => return Err(Fail(format!("{element} `{}` is {other}, not a time", expr.source()))),
            },
        };
        let now = step.ctx.now;
        let due = def
            .schedule(&text)
            .map_err(|e| Fail(format!("{element}: {e}")))?
            .first(now)
            .ok_or_else(|| Fail(format!("{element} `{text}` never fires")))?;
        let mut rec = self.new_record(step, node, None);
        rec.status = TaskStatus::Active;
        rec.params = Some(timer_params(element, &text, due));
        self.timers.insert(rec.id.clone(), Timer { node, owner, due, fired: 0, text, guard: None });
        step.effects.push(Effect::SetTimer(TimerSet { record_id: rec.id.clone(), element: rec.element.clone(), due }));
        Ok(rec)
    }

    /// A timer fired for its due time `due`.
    ///
    /// # Errors
    /// [`EngineError::TimerNotSet`] when no timer of that record waits for that time.
    pub(crate) fn fire_timer(&mut self, step: &mut Step<'_, '_>, id: &str, due: i64) -> Result<(), EngineError> {
        let timer = match self.timers.get(id) {
            Some(t) if t.due == due => t.clone(),
            _ => return Err(EngineError::TimerNotSet(id.to_owned())),
        };
        if timer.guard.is_some() {
            self.fire_guard(step, id, &timer);
            return Ok(());
        }
        let def = step.def;
        match (&def.node(timer.node).kind, timer.owner) {
            (NodeKind::TimerStart(time), Some(owner)) => self.fire_event_start(step, id, &timer, time, owner),
            (NodeKind::TimerBoundary { timer: time, interrupting, .. }, Some(owner)) => {
                // Its activity is over: the sweep at the end of the step drops it.
                let Some(parent) = self.owner_parent(owner) else { return Ok(()) };
                if *interrupting {
                    self.close_record(step, id, TaskStatus::Completed, None, None);
                    self.interrupt(step, owner);
                } else {
                    self.fired_again(step, id, &timer, time);
                }
                let token = self.spawn(timer.node, parent);
                step.ready.push_back(token);
            }
            _ => {
                let token = self.token_waiting_on(id);
                self.close_record(step, id, TaskStatus::Completed, None, None);
                if let Some(token) = token {
                    self.resume(step, token);
                }
            }
        }
        Ok(())
    }

    /// Removes a timer unfired (see [`crate::Command::DropTimer`]).
    ///
    /// # Errors
    /// [`EngineError::TimerNotSet`] when no timer of that record is set.
    pub(crate) fn drop_timer(&mut self, step: &mut Step<'_, '_>, id: &str) -> Result<(), EngineError> {
        let timer = self.timers.remove(id).ok_or_else(|| EngineError::TimerNotSet(id.to_owned()))?;
        step.effects.push(Effect::DropTimer { record_id: id.to_owned() });
        if timer.owner.is_some() && timer.guard.is_none() {
            self.close_record(step, id, TaskStatus::Canceled, Some("the timer was deleted".into()), None);
        }
        Ok(())
    }

    /// The scope around the run `owner` while it runs: where its boundary events go on.
    pub(crate) fn owner_parent(&self, owner: Owner) -> Option<Option<ScopeId>> {
        match owner {
            Owner::Token(t) => self.tokens.get(&t).map(|t| t.scope),
            Owner::Scope(s) => self.scopes.get(&s).map(|s| s.parent),
            Owner::Process => Some(None),
        }
    }

    /// Whether what record `id` lives as long as still runs: its run `owner`, else the token
    /// waiting on it.
    pub(crate) fn lives(&self, id: &str, owner: Option<Owner>) -> bool {
        match owner {
            None => self.token_waiting_on(id).is_some(),
            Some(owner) => self.owner_parent(owner).is_some(),
        }
    }

    /// Ends the activity an interrupting boundary event fired on, with all that runs in it.
    pub(crate) fn interrupt(&mut self, step: &mut Step<'_, '_>, owner: Owner) {
        match owner {
            Owner::Token(token) => {
                if let Some(task) = self.tokens.get(&token).and_then(|t| t.wait.clone()) {
                    self.close_record(step, &task, TaskStatus::Canceled, None, None);
                }
                self.drop_token(token);
            }
            Owner::Scope(scope) => self.remove_scope_trees(step, vec![scope]),
            Owner::Process => self.clear_scope(step, None),
        }
    }

    /// A non-interrupting timer fired: it is set for its cycle's next time, or closes.
    pub(crate) fn fired_again(&mut self, step: &mut Step<'_, '_>, id: &str, timer: &Timer, def: &TimerDef) {
        let fired = timer.fired + 1;
        let next = def.schedule(&timer.text).ok().and_then(|s| s.next(timer.due, fired));
        let Some(due) = next else {
            self.close_record(step, id, TaskStatus::Completed, None, None);
            return;
        };
        if let Some(t) = self.timers.get_mut(id) {
            t.due = due;
            t.fired = fired;
        }
        let element = def.kind.element();
        if let Some(rec) = self.record_mut(id) {
            rec.params = Some(timer_params(element, &timer.text, due));
            let rec = rec.clone();
            step.effects.push(Effect::SetTimer(TimerSet {
                record_id: rec.id.clone(),
                element: rec.element.clone(),
                due,
            }));
            step.effects.push(Effect::Task(Box::new(rec)));
        }
    }

    /// Drops the timers that can no longer fire: every one once the instance ended, else
    /// those whose activity ended or whose record closed.
    pub(crate) fn sweep_timers(&mut self, step: &mut Step<'_, '_>) {
        if !self.auto_retries.is_empty() {
            let open = &self.open;
            self.auto_retries.retain(|record, _| open.contains_key(record));
        }
        if self.timers.is_empty() {
            return;
        }
        let active = self.active();
        let doomed: Vec<String> = self
            .timers
            .iter()
            .filter(|(id, timer)| !active || !self.open.contains_key(timer.record(id)) || !self.lives(id, timer.owner))
            .map(|(id, _)| id.clone())
            .collect();
        for id in doomed {
            if self.open.contains_key(&id) {
                self.close_record(step, &id, TaskStatus::Canceled, None, None);
            } else if self.timers.remove(&id).is_some() {
                step.effects.push(Effect::DropTimer { record_id: id });
            }
        }
    }
}

/// What a timer's record shows: its time and when it fires next.
fn timer_params(element: &str, text: &str, due: i64) -> Value {
    let mut params = Map::new();
    params.insert(element.to_owned(), Value::String(text.to_owned()));
    params.insert("dueDate".to_owned(), iso(due).map_or(Value::Null, Value::String));
    Value::Object(params)
}

/// An instant as ISO-8601 text in UTC.
fn iso(millis: i64) -> Option<String> {
    jiff::Timestamp::from_millisecond(millis).ok().map(|t| t.to_string())
}
