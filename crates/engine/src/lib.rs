//! Execution semantics as a pure, deterministic state machine.
//!
//! [`Instance::start`] and [`Instance::apply`] take a definition, a command and a [`Ctx`]
//! (the time and a source of ids) and return the effects to carry out after the new state is
//! committed: task records to write, stone jobs to queue or drop. Nothing here touches a
//! database, a socket or the clock, so every rule is tested with plain unit tests.

mod assignment;
mod call;
mod choice;
mod compensate;
mod compensation;
mod conditional;
mod effect;
mod errors;
mod event;
mod event_gateway;
mod event_subprocess;
mod guard;
mod inclusive;
mod index;
mod instance;
mod javascript;
mod limits;
mod listeners;
mod mi_output;
mod migration;
mod parts;
mod pause;
mod recorded;
mod scope;
mod stone;
mod timer;
mod user_task;

pub use assignment::{Actor, Assignment, Candidates, Delegation, TaskChange};
pub use call::{Call, CallEnd, Caller, MAX_CALL_DEPTH};
pub use compensation::Ran;
pub use effect::{
    Action, DEFAULT_PRIORITY, Effect, Job, Passage, Phase, Spawned, Subscription, TaskRecord, TaskStatus, Thrown,
    TimerSet, UserTaskInfo,
};
pub use flowstone_model::parse_instant;
pub use instance::{
    Command, EngineError, Instance, InstanceKind, InstanceStatus, StartOptions, StoneEvent, status_text,
};
pub use limits::Limits;
pub use migration::MigrationPlan;
pub use parts::{PARTS_FROM, Stored};

/// What the engine needs from the outside world for one command: the time, and fresh ids.
pub struct Ctx<'a> {
    /// Milliseconds since the Unix epoch.
    pub now: i64,
    /// Returns a new globally unique id for task records.
    pub ids: &'a mut dyn FnMut() -> String,
    /// Whether jobs of a stone go through a message broker: their tasks wait in
    /// `produce.begin` until the broker confirms the publish (`produce.success`).
    pub brokered: &'a dyn Fn(&str) -> bool,
    /// The bounds this command works within.
    pub limits: &'a Limits,
}

/// No stone goes through a broker: a committed job is produced.
pub fn no_broker(_: &str) -> bool {
    false
}

#[cfg(test)]
mod tests;
