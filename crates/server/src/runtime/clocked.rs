//! bk-sops clocked tasks: at its planned time a clocked task makes a task of its template
//! (named after it and the time, `create_method` `clocked`) with its constants and starts it
//! in its creator's name, once.
//!
//! A clocked task has a timer (`clocked:<id>`, of no instance) set in the commit that plans it;
//! the commit that makes and starts its task also removes the timer and marks it `started`, so
//! that it makes one task however many servers lease the timer. A task it cannot make (its
//! model is gone, its constants are past the bounds) marks it `start_failed`, as bk-sops does.

use super::bk_sops::{PlannedTask, Tree};
use super::records::{PlanRan, Planned, Records, add_model, plan_timer};
use super::{Runtime, RuntimeError};
use flowstone_store::{BkIds, ClockedRow, ClockedRun, TimerMove, TimerRow};
use serde_json::Value;

/// The id of a clocked task's timer.
fn timer_id(id: i64) -> String {
    format!("clocked:{id}")
}

/// The clocked task a timer id names, if it names one.
pub(super) fn clocked_of(timer: &str) -> Option<i64> {
    timer.strip_prefix("clocked:")?.parse().ok()
}

impl Runtime {
    /// Stores a clocked task with its timer, and a model of its own when `tree` is given (its
    /// template's tree without the nodes left out); answers it with its id.
    ///
    /// # Errors
    /// [`RuntimeError::Model`] for a tree at fault, [`RuntimeError::NotValid`] for constants
    /// past the bounds of [`flowstone_engine::Limits`], or a store failure.
    pub async fn create_clocked(
        &self,
        tree: Option<Tree<'_>>,
        mut row: ClockedRow,
    ) -> Result<ClockedRow, RuntimeError> {
        let constants = serde_json::from_str::<Value>(&row.task_params).ok().and_then(|p| p.get("constants").cloned());
        let constants = constants.map(|c| c.to_string()).unwrap_or_default();
        self.limits.check_variables(&super::bk_sops::task_variables(&constants)).map_err(RuntimeError::NotValid)?;
        let mut write = Records::default();
        let own = add_model(tree.as_ref(), &mut write)?;
        if let Some((model, _)) = &own {
            row.model_id.clone_from(model);
        }
        row.id = self.store.reserve_id(BkIds::Clocked).await?;
        write.timers.push(plan_timer(timer_id(row.id), row.plan_start_time));
        write.planned = Some(Planned::Clocked(row.clone()));
        self.write_records(write).await?;
        self.keep_model(own).await?;
        Ok(row)
    }
}

/// Makes and starts the task clocked task `id` is due to make, removing its timer.
pub(super) async fn fire(runtime: &Runtime, id: i64, timer: &TimerRow) -> Result<(), RuntimeError> {
    let gone = || RuntimeError::NotFound(format!("clocked task {id} is gone or started"));
    let row = runtime.store.clocked_task(id).await?.filter(|c| c.state == "not_started").ok_or_else(gone)?;
    let moved = TimerMove { record_id: timer.record_id.clone(), from: timer.due, to: None };
    let params: Value = serde_json::from_str(&row.task_params).unwrap_or_default();
    let constants =
        params.get("constants").filter(|c| c.is_object()).cloned().unwrap_or_else(|| Value::Object(Default::default()));
    let planned = PlannedTask {
        biz_id: row.biz_id,
        template_id: row.template_id,
        name: &row.task_name,
        creator: &row.creator,
        model_id: &row.model_id,
        constants: constants.to_string(),
        create_method: "clocked",
    };
    let write = match runtime.planned_task(planned).await {
        Ok((task, start)) => {
            let ran = PlanRan::Clocked(ClockedRun { id, state: "started".into(), task_id: Some(task.id) });
            Records {
                task: Some(task),
                start: Some(start),
                planned: Some(Planned::Fired { moved, ran }),
                ..Records::default()
            }
        }
        Err(RuntimeError::NotValid(why)) => {
            tracing::warn!(clocked = id, %why, "a clocked task could not make its task");
            let ran = PlanRan::Clocked(ClockedRun { id, state: "start_failed".into(), task_id: None });
            Records { planned: Some(Planned::Fired { moved, ran }), ..Records::default() }
        }
        Err(e) => return Err(e),
    };
    runtime.write_records(write).await
}
