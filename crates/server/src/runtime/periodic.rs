//! bk-sops periodic tasks: each time its crontab comes due while it is enabled, a periodic
//! task makes a task of its template (named after it and the time, `create_method`
//! `periodic`) and starts it in its creator's name.
//!
//! An enabled periodic task has a timer (`periodic:<id>`, of no instance) in the store; it
//! fires like every timer, and the commit that makes and starts the task also moves the timer
//! on to the crontab's next time and counts the run, so that a firing makes one task however
//! many servers lease the timer. Disabling drops the timer; enabling or a new crontab sets it
//! from now. A firing reads the periodic task as it is then: a change of constants applies to
//! the next task made.

use super::bk_sops::{PlannedTask, Tree};
use super::records::{PlanRan, Planned, Records, add_model, plan_timer};
use super::{Runtime, RuntimeError};
use flowstone_model::Schedule;
use flowstone_store::{BkIds, PeriodicChange, PeriodicRow, PeriodicRun, TimerMove, TimerRow};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The id of a periodic task's timer.
pub(super) fn timer_id(id: i64) -> String {
    format!("periodic:{id}")
}

/// The periodic task a timer id names, if it names one.
pub(super) fn periodic_of(timer: &str) -> Option<i64> {
    timer.strip_prefix("periodic:")?.parse().ok()
}

/// A periodic task's crontab as bk-sops takes it: each field defaults to `*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crontab {
    /// Minutes (0-59).
    pub minute: String,
    /// Hours (0-23).
    pub hour: String,
    /// Days of the week (0-6, Sunday first, or names).
    pub day_of_week: String,
    /// Days of the month (1-31).
    pub day_of_month: String,
    /// Months (1-12).
    pub month_of_year: String,
}

impl Crontab {
    /// The crontab of bk-sops' `cron` object (fields as text or numbers; left out, `*`);
    /// the error names what is wrong.
    ///
    /// # Errors
    /// A message naming the field that is not text or a number, or the crontab that does
    /// not parse.
    pub fn from_fields(fields: &Map<String, Value>) -> Result<Crontab, String> {
        let field = |name: &str| match fields.get(name) {
            None | Some(Value::Null) => Ok("*".to_owned()),
            Some(Value::String(s)) => Ok(s.trim().to_owned()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(other) => Err(format!("`cron.{name}` must be text such as \"*/5\", not {other}")),
        };
        if let Some(unknown) = fields.keys().find(|k| !Self::FIELDS.contains(&k.as_str())) {
            return Err(format!("`cron` has no field `{unknown}`; its fields are {}", Self::FIELDS.join(", ")));
        }
        let cron = Crontab {
            minute: field("minute")?,
            hour: field("hour")?,
            day_of_week: field("day_of_week")?,
            day_of_month: field("day_of_month")?,
            month_of_year: field("month_of_year")?,
        };
        cron.schedule()?;
        Ok(cron)
    }

    const FIELDS: [&str; 5] = ["minute", "hour", "day_of_week", "day_of_month", "month_of_year"];

    /// When it makes tasks.
    fn schedule(&self) -> Result<Schedule, String> {
        Schedule::crontab([&self.minute, &self.hour, &self.day_of_week, &self.day_of_month, &self.month_of_year])
    }

    /// As bk-sops shows it: `*/5 * * * * (m/h/d/dM/MY)`.
    pub fn text(&self) -> String {
        format!(
            "{} {} {} {} {} (m/h/d/dM/MY)",
            self.minute, self.hour, self.day_of_week, self.day_of_month, self.month_of_year
        )
    }

    /// The crontab stored with a periodic task.
    pub fn of(row: &PeriodicRow) -> Result<Crontab, RuntimeError> {
        serde_json::from_str(&row.cron)
            .map_err(|e| RuntimeError::NotValid(format!("periodic task {} keeps a crontab unread: {e}", row.id)))
    }

    /// The timer of periodic task `id` from `now`: none when the crontab never comes due.
    fn timer(&self, id: i64, now: i64) -> Option<TimerRow> {
        let due = self.schedule().ok()?.first(now)?;
        Some(plan_timer(timer_id(id), due))
    }
}

impl Runtime {
    /// Stores a periodic task, disabled (as bk-sops makes it), with a model of its own when
    /// `tree` is given (its template's tree without the nodes left out); answers it with its id.
    ///
    /// # Errors
    /// [`RuntimeError::Model`] for a tree at fault, [`RuntimeError::NotValid`] for constants
    /// past the bounds of [`flowstone_engine::Limits`], or a store failure.
    pub async fn create_periodic(
        &self,
        tree: Option<Tree<'_>>,
        mut row: PeriodicRow,
    ) -> Result<PeriodicRow, RuntimeError> {
        self.limits.check_variables(&super::bk_sops::task_variables(&row.constants)).map_err(RuntimeError::NotValid)?;
        let mut write = Records::default();
        let own = add_model(tree.as_ref(), &mut write)?;
        if let Some((model, _)) = &own {
            row.model_id.clone_from(model);
        }
        row.id = self.store.reserve_id(BkIds::Periodic).await?;
        row.enabled = false;
        write.planned = Some(Planned::Periodic(row.clone()));
        self.write_records(write).await?;
        self.keep_model(own).await?;
        Ok(row)
    }

    /// Changes a periodic task as it is stored (`row`): enabling it or giving an enabled one a
    /// new crontab sets its timer from now, disabling it drops the timer, in the same commit.
    ///
    /// # Errors
    /// [`RuntimeError::NotValid`] for constants past the bounds of
    /// [`flowstone_engine::Limits`] or a stored crontab that cannot be read, or a store failure.
    pub async fn change_periodic(&self, row: &PeriodicRow, change: PeriodicChange) -> Result<(), RuntimeError> {
        if let Some(constants) = &change.constants {
            self.limits.check_variables(&super::bk_sops::task_variables(constants)).map_err(RuntimeError::NotValid)?;
        }
        let enabled = change.enabled.unwrap_or(row.enabled);
        let cron = match &change.cron {
            Some(cron) => serde_json::from_str(cron).map_err(|e| RuntimeError::NotValid(e.to_string()))?,
            None => Crontab::of(row)?,
        };
        let mut write = Records::default();
        if enabled && (!row.enabled || change.cron.is_some()) {
            match cron.timer(row.id, change.at) {
                Some(timer) => write.timers.push(timer),
                None => write.dropped_timers.push(timer_id(row.id)),
            }
        } else if !enabled && row.enabled {
            write.dropped_timers.push(timer_id(row.id));
        }
        write.planned = Some(Planned::PeriodicChange(change));
        self.write_records(write).await
    }
}

/// Makes and starts the task periodic task `id` is due to make, moving its timer on.
pub(super) async fn fire(runtime: &Runtime, id: i64, timer: &TimerRow) -> Result<(), RuntimeError> {
    let gone = || RuntimeError::NotFound(format!("periodic task {id} is gone or disabled"));
    let row = runtime.store.periodic_task(id).await?.filter(|p| p.enabled).ok_or_else(gone)?;
    let fired = timer.fired + 1;
    let next = Crontab::of(&row)?
        .schedule()
        .ok()
        .and_then(|s| s.next(timer.due, u32::try_from(fired).unwrap_or(u32::MAX)))
        .map(|due| (due, fired));
    let moved = TimerMove { record_id: timer.record_id.clone(), from: timer.due, to: next };
    let planned = PlannedTask {
        biz_id: row.biz_id,
        template_id: row.template_id,
        name: &row.name,
        creator: &row.creator,
        model_id: &row.model_id,
        constants: row.constants.clone(),
        create_method: "periodic",
    };
    let write = match runtime.planned_task(planned).await {
        Ok((task, start)) => {
            let ran = PlanRan::Periodic(PeriodicRun { id, at: task.created_at });
            let planned = Some(Planned::Fired { moved, ran });
            Records { task: Some(task), start: Some(start), planned, ..Records::default() }
        }
        Err(RuntimeError::NotValid(why)) => {
            tracing::warn!(periodic = id, %why, "a periodic task could not make its task");
            Records { planned: Some(Planned::Fired { moved, ran: PlanRan::Missed }), ..Records::default() }
        }
        Err(e) => return Err(e),
    };
    runtime.write_records(write).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_crontab_takes_bk_sops_fields_with_defaults_and_names_what_is_wrong() {
        let fields = |v: Value| v.as_object().cloned().unwrap_or_default();
        let cron =
            Crontab::from_fields(&fields(json!({"minute": "*/1", "hour": 15}))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cron.text(), "*/1 15 * * * (m/h/d/dM/MY)");
        let e = Crontab::from_fields(&fields(json!({"minute": "70"}))).unwrap_err();
        assert!(e.contains("70"), "{e}");
        let e = Crontab::from_fields(&fields(json!({"hour": ["1"]}))).unwrap_err();
        assert!(e.contains("cron.hour"), "{e}");
        let e = Crontab::from_fields(&fields(json!({"second": "1"}))).unwrap_err();
        assert!(e.contains("`second`"), "{e}");
        assert_eq!(periodic_of(&timer_id(42)), Some(42));
        assert_eq!(periodic_of("start:key"), None);
    }
}
