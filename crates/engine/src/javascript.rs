//! Script tasks and expression service tasks: work the engine computes itself, in one step.
//! A JavaScript script runs in `flowstone-script`'s sandbox within the instance's script
//! bounds, over the variables its scope sees; what it sets is held to the variable bounds
//! like any other write. A failure fails the task's record and the instance, naming why.

use crate::effect::{TaskRecord, TaskStatus};
use crate::instance::{Fail, Instance, Step};
use crate::scope::{ScopeId, ScopeVars};
use flowstone_expr::Variables;
use serde_json::{Map, Value};

impl Instance {
    /// Runs a JavaScript script where `scope` sees the variables, setting what it sets, and
    /// answers the value of its last statement.
    pub(crate) fn run_javascript(
        &mut self,
        step: &Step<'_, '_>,
        source: &str,
        scope: Option<ScopeId>,
    ) -> Result<Value, Fail> {
        let variables = ScopeVars { instance: self, scope }.all();
        let outcome = flowstone_script::run(source, &variables, &step.ctx.limits.script).map_err(Fail)?;
        for (name, value) in outcome.set {
            step.ctx.limits.check_value(&format!("variable `{name}`"), &value).map_err(Fail)?;
            self.set_var(scope, name, value);
        }
        Ok(outcome.value)
    }

    /// Closes the record of a computed task: its value set as `result_variable` and the token
    /// on, or the record failed with the reason and the instance with it.
    pub(crate) fn complete_computed(
        &mut self,
        step: &mut Step<'_, '_>,
        token: u32,
        rec: TaskRecord,
        result_variable: &Option<String>,
        value: Result<Value, Fail>,
    ) -> Result<(), Fail> {
        let value = value.and_then(|value| {
            step.ctx.limits.check_value("the value of the task", &value).map_err(Fail)?;
            Ok(value)
        });
        match value {
            Ok(value) => {
                let scope = self.tokens[&token].scope;
                let outputs = result_variable.as_ref().map(|name| {
                    self.set_var(scope, name.clone(), value.clone());
                    Value::Object(Map::from_iter([(name.clone(), value)]))
                });
                self.emit_closed(step, rec, TaskStatus::Completed, None, outputs);
                self.leave(step, token)
            }
            Err(Fail(reason)) => {
                self.emit_closed(step, rec, TaskStatus::Failed, Some(reason.clone()), None);
                Err(Fail(reason))
            }
        }
    }
}
