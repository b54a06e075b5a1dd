//! Call activities: a token at one asks for a child instance of the called process
//! ([`Effect::Call`]) and waits on an open record until the child ends; the runtime then hands
//! the caller a [`crate::Command::Return`] with how it ended. A completed child's variables
//! come back through the out mappings; a BPMN error it did not catch is thrown at the call
//! activity (where an error boundary event may catch it); a failed or canceled child fails the
//! call. A call record closed any other way (a boundary event, a cancel, the caller's end)
//! ends the child with [`Effect::EndCall`].

use crate::compensation::Ran;
use crate::effect::{Action, Effect, Phase, TaskRecord, TaskStatus};
use crate::errors::Thrower;
use crate::instance::{EngineError, Fail, Instance, InstanceStatus, Step, Token};
use crate::scope::{ScopeId, ScopeVars};
use flowstone_model::{Binding, CallSpec, NodeId, NodeKind, Source};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How deep calls may nest: a process that calls itself without a wait in between would
/// otherwise start children without end.
pub const MAX_CALL_DEPTH: u32 = 32;

/// A child instance to start in the same commit as the call that asks for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The caller's record waiting for the child (it names the call in [`crate::Command::Return`]).
    pub record_id: String,
    /// The call activity's element.
    pub element: String,
    /// The child's id.
    pub child: String,
    /// The called process's key.
    pub key: String,
    /// Which version of it.
    pub binding: Binding,
    /// The child's start variables.
    pub variables: Map<String, Value>,
    /// The child's business key; with none and `inherit_business_key`, the caller's.
    pub business_key: Option<String>,
    /// Whether the child carries the caller's business key.
    pub inherit_business_key: bool,
}

/// The instance and record a child was called by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The calling instance.
    pub instance: String,
    /// Its record waiting for this child.
    pub record: String,
    /// How many calls lead here (a child of a top-level instance: 1).
    pub depth: u32,
}

/// How a called instance ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEnd {
    /// It completed.
    Completed {
        /// Its variables.
        variables: Map<String, Value>,
        /// The stone tasks it ran (and its own children ran), for the caller's rollback.
        ran: Vec<Ran>,
    },
    /// A BPMN error with this code ended it (caught nowhere inside).
    Error(Option<String>),
    /// It failed or was canceled, for this reason.
    Failed(String),
}

impl Instance {
    /// A token reached a call activity: the child is asked for and the token waits for it.
    pub(crate) fn call(
        &mut self,
        step: &mut Step<'_, '_>,
        token: u32,
        node: NodeId,
        spec: &CallSpec,
        scope: Option<ScopeId>,
    ) -> Result<(), Fail> {
        self.call_on(step, token, (node, spec, scope), None)
    }

    /// Asks for the child of a call, on the record given (a call run again keeps its record's
    /// ids, as a stone task run again does) or on a new one.
    fn call_on(
        &mut self,
        step: &mut Step<'_, '_>,
        token: u32,
        (node, spec, scope): (NodeId, &CallSpec, Option<ScopeId>),
        record: Option<TaskRecord>,
    ) -> Result<(), Fail> {
        let depth = self.caller.as_ref().map_or(0, |c| c.depth) + 1;
        if depth > MAX_CALL_DEPTH {
            return Err(Fail(format!(
                "calls nest deeper than {MAX_CALL_DEPTH} levels (does a process call itself without end?)"
            )));
        }
        let key = match self.eval(&spec.called, scope)? {
            Value::String(key) if !key.trim().is_empty() => key.trim().to_owned(),
            other => {
                return Err(Fail(format!("calledElement `{}` is {other}, not a process key", spec.called.source())));
            }
        };
        let mut variables =
            if spec.all_in { flowstone_expr::Variables::all(&ScopeVars { instance: self, scope }) } else { Map::new() };
        for mapping in &spec.inputs {
            if let Some(value) = self.source_value(&mapping.source, scope)? {
                variables.insert(mapping.target.clone(), value);
            }
        }
        step.ctx.limits.check_variables(&variables).map_err(Fail)?;
        let business_key = match &spec.business_key {
            Some(expr) => match self.eval(expr, scope)? {
                Value::Null => None,
                Value::String(text) => Some(text),
                other => Some(other.to_string()),
            },
            None => None,
        };
        let child = (step.ctx.ids)();
        let mut rec = record.unwrap_or_else(|| self.new_record(step, node, None));
        rec.status = TaskStatus::Active;
        rec.params = Some(serde_json::json!({"calledElement": key, "calledInstance": child}));
        self.calls.insert(rec.id.clone(), child.clone());
        self.children.push(child.clone());
        step.effects.push(Effect::Call(Box::new(Call {
            record_id: rec.id.clone(),
            element: rec.element.clone(),
            child,
            key,
            binding: spec.binding.clone(),
            variables,
            business_key,
            inherit_business_key: spec.inherit_business_key,
        })));
        self.wait(step, token, rec);
        Ok(())
    }

    /// The value a mapping reads in this instance; none for a variable that is not set.
    fn source_value(&self, source: &Source, scope: Option<ScopeId>) -> Result<Option<Value>, Fail> {
        Ok(match source {
            Source::Variable(name) => {
                flowstone_expr::Variables::get(&ScopeVars { instance: self, scope }, name).cloned()
            }
            Source::Expression(expr) => Some(self.eval(expr, scope)?),
        })
    }

    /// The child that call record `id` waits for ended.
    ///
    /// # Errors
    /// [`EngineError::NotWaiting`] when no call of that record is open.
    pub(crate) fn returned(&mut self, step: &mut Step<'_, '_>, id: &str, end: CallEnd) -> Result<(), EngineError> {
        let child = self.calls.remove(id).ok_or_else(|| EngineError::NotWaiting(id.to_owned()))?;
        let token = self.token_waiting_on(id);
        let scope = token.and_then(|t| self.tokens[&t].scope);
        let node = token.map(|t| self.tokens[&t].node);
        let fail = |this: &mut Instance, step: &mut Step<'_, '_>, reason: String| {
            if this.debug && token.is_some() {
                // In debug mode the call waits for an operator, as a failed stone task does:
                // reRun calls a new child, skip goes on, resume fails the instance.
                return this.hold_for_operator(step, id, TaskStatus::Stone(Action::Start, Phase::Failed), reason);
            }
            this.close_record(step, id, TaskStatus::Failed, Some(reason.clone()), None);
            if let Some(node) = node {
                this.fail_at(step, node, Fail(reason));
            }
        };
        match end {
            CallEnd::Completed { variables: child_vars, ran } => {
                let spec = match node.map(|n| &step.def.node(n).kind) {
                    Some(NodeKind::Call(spec)) => spec.clone(),
                    _ => return Ok(()),
                };
                match outputs(&spec, &child_vars).and_then(|out| {
                    step.ctx.limits.check_variables(&out).map_err(Fail)?;
                    Ok(out)
                }) {
                    Ok(out) => {
                        let shown = (!out.is_empty()).then(|| Value::Object(out.clone()));
                        for (name, value) in out {
                            self.set_var(scope, name, value);
                        }
                        self.close_record(step, id, TaskStatus::Completed, None, shown);
                        for mut r in ran {
                            r.called.get_or_insert_with(|| child.clone());
                            self.adopt_ran(r);
                        }
                        if let Some(token) = token {
                            self.resume(step, token);
                        }
                    }
                    Err(Fail(reason)) => fail(self, step, format!("the out mappings of {child}: {reason}")),
                }
            }
            CallEnd::Error(code) => {
                let shown = code.as_deref().map(|c| format!(" `{c}`")).unwrap_or_default();
                let reason = format!("the called process instance {child} ended with BPMN error{shown}");
                match token.and_then(|t| self.catcher(step.def, Thrower::Token(t), code.as_deref())) {
                    Some(catcher) => {
                        self.close_record(step, id, TaskStatus::Failed, Some(reason), None);
                        self.caught(step, catcher);
                    }
                    None => fail(self, step, format!("{reason}, which no error boundary event catches")),
                }
            }
            CallEnd::Failed(reason) => {
                fail(self, step, format!("the called process instance {child} {}", shortened(&reason)));
            }
        }
        Ok(())
    }
}

impl Instance {
    /// `reRun` of a call activity that failed in debug mode: the failed attempt stays in the
    /// history, and a new child is called as the token first reached it.
    pub(crate) fn call_again(&mut self, step: &mut Step<'_, '_>, id: &str) -> Result<(), EngineError> {
        let token = self.token_waiting_on(id).ok_or_else(|| EngineError::TaskNotOpen(id.to_owned()))?;
        let Token { node, scope, .. } = self.tokens[&token].clone();
        let def = step.def;
        let NodeKind::Call(spec) = &def.node(node).kind else {
            return Err(EngineError::TaskNotOpen(id.to_owned()));
        };
        let Some(mut rec) = self.take_record(id) else { return Err(EngineError::TaskNotOpen(id.to_owned())) };
        let mut attempt = rec.clone();
        attempt.id = (step.ctx.ids)();
        step.effects.push(Effect::Task(Box::new(attempt)));
        (rec.create_time, rec.end_time, rec.reason) = (step.ctx.now, None, None);
        self.set_wait(token, None);
        self.settle_debug();
        if let Err(fail) = self.call_on(step, token, (node, spec, scope), Some(rec)) {
            self.fail_at(step, node, fail);
        }
        Ok(())
    }
}

/// A child's reason as its caller's names it: bounded, so that a failure deep in a chain of
/// calls does not grow with every level.
fn shortened(reason: &str) -> String {
    const MAX_CHARS: usize = 300;
    match reason.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => format!("{}…", &reason[..at]),
        None => reason.to_owned(),
    }
}

impl Instance {
    /// How this called instance ended, as its caller is told (once it has ended).
    pub fn call_end(&self) -> CallEnd {
        match (self.status, &self.uncaught_error) {
            (InstanceStatus::Completed, _) => {
                CallEnd::Completed { variables: self.variables.clone(), ran: self.ran.clone() }
            }
            (InstanceStatus::Failed, Some(code)) => CallEnd::Error(Some(code.clone()).filter(|c| !c.is_empty())),
            (InstanceStatus::Failed, None) => {
                CallEnd::Failed(format!("failed: {}", self.failure.as_deref().unwrap_or("no reason given")))
            }
            _ => CallEnd::Failed("was canceled".into()),
        }
    }
}

/// What a completed child gives back: all its variables (`variables="all"`), then each mapping.
fn outputs(spec: &CallSpec, child: &Map<String, Value>) -> Result<Map<String, Value>, Fail> {
    let mut out = if spec.all_out { child.clone() } else { Map::new() };
    for mapping in &spec.outputs {
        let value = match &mapping.source {
            Source::Variable(name) => child.get(name).cloned(),
            Source::Expression(expr) => Some(expr.eval(child).map_err(|e| Fail(e.to_string()))?),
        };
        if let Some(value) = value {
            out.insert(mapping.target.clone(), value);
        }
    }
    Ok(out)
}
