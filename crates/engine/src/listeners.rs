//! Expression listeners: the expressions a model runs as a token reaches or leaves an element,
//! as the instance starts or completes, as a user task is created or completed. An expression
//! may set variables (`${execution.setVariable('checked', true)}`), as script tasks and
//! expression service tasks may; a failing one fails the instance naming the element.

use crate::instance::{Fail, Instance, Step};
use crate::scope::{ScopeId, ScopeVars};
use flowstone_expr::{Expression, Variables};
use flowstone_model::{Listener, ListenerEvent};
use serde_json::{Map, Value};
use std::cell::RefCell;

/// The variables a scope sees, taking what an expression sets: applied once it is evaluated.
struct Setting<'a> {
    view: ScopeVars<'a>,
    set: RefCell<Vec<(String, Value)>>,
}

impl Variables for Setting<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.view.get(name)
    }

    fn all(&self) -> Map<String, Value> {
        self.view.all()
    }

    fn set(&self, name: &str, value: Value) -> Result<(), String> {
        self.set.borrow_mut().push((name.to_owned(), value));
        Ok(())
    }
}

impl Instance {
    /// Evaluates an expression that may set variables (where `scope` sees them), setting them.
    pub(crate) fn eval_setting(
        &mut self,
        step: &Step<'_, '_>,
        expr: &Expression,
        scope: Option<ScopeId>,
    ) -> Result<Value, Fail> {
        let setting = Setting { view: ScopeVars { instance: self, scope }, set: RefCell::new(Vec::new()) };
        let value = expr.eval(&setting).map_err(|e| Fail(e.to_string()))?;
        for (name, value) in setting.set.into_inner() {
            step.ctx.limits.check_value(&format!("variable `{name}`"), &value).map_err(Fail)?;
            self.set_var(scope, name, value);
        }
        Ok(value)
    }

    /// Runs the listeners for `event` among `listeners`, in the order the model lists them.
    pub(crate) fn notify(
        &mut self,
        step: &Step<'_, '_>,
        listeners: &[Listener],
        event: ListenerEvent,
        scope: Option<ScopeId>,
    ) -> Result<(), Fail> {
        for listener in listeners.iter().filter(|l| l.event == event) {
            self.eval_setting(step, &listener.expression, scope)
                .map_err(|Fail(reason)| Fail(format!("listener `{}`: {reason}", listener.expression.source())))?;
        }
        Ok(())
    }
}
