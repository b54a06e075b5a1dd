//! Process instances: tokens moving through a definition.

use crate::Ctx;
use crate::compensation::{Plan, Ran};
use crate::effect::{Action, Effect, Job, Passage, Phase, TaskRecord, TaskStatus};
use crate::errors::Thrower;
use crate::event::Wait;
use crate::index::Index;
use crate::parts::Changes;
use crate::scope::{Scope, ScopeId, ScopeKind, ScopeVars};
use crate::timer::Timer;
use flowstone_expr::Expression;
use flowstone_model::{Definition, EndKind, FlowId, ListenerEvent, NodeId, NodeKind, StoneSpec, Template};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceStatus {
    /// Tokens are moving or waiting.
    Running,
    /// Started in debug mode, a stone task failed: it waits for `reRun` or `resume` while
    /// the rest of the instance goes on.
    Debug,
    /// Reached its end.
    Completed,
    /// Stopped by a run-time failure: an expression error, no matching flow, a failed task or
    /// an error end event.
    Failed,
    /// Stopped by a cancel.
    Canceled,
}

/// A command from outside that moves an instance on.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A person completed a user task, setting these variables.
    CompleteUserTask {
        /// The record id or the activity-instance id of the task.
        task: String,
        /// Variables to set before the token moves on.
        variables: Map<String, Value>,
        /// Variables that only the step after the task sees: they are not kept.
        transient: Map<String, Value>,
    },
    /// Set or remove variables where the task's scope sees them (a name set nowhere goes to
    /// the process), or on the process when no task is given.
    SetVariables {
        /// The record id or activity-instance id of an open task.
        task: Option<String>,
        /// Values to set.
        variables: Map<String, Value>,
        /// Names to remove.
        removed: Vec<String>,
    },
    /// A stone reports on its job.
    Stone {
        /// The record id of the job's task.
        record: String,
        /// What happened.
        event: StoneEvent,
    },
    /// Stop the instance: open tasks are canceled and queued jobs dropped; stone tasks that
    /// were running get `cancel` from a cancel instance.
    Cancel,
    /// Run a failed stone task again (debug mode): a new attempt of `action` (by default the
    /// one that failed) with `parameters` merged over its params (a null removes a key) and,
    /// for `monitor`, `outputs` merged over what the start put out.
    ReRun {
        /// The record id or activity-instance id of the failed task.
        task: String,
        /// What to run again.
        action: Option<Action>,
        /// Params to change.
        parameters: Map<String, Value>,
        /// Outputs to change.
        outputs: Map<String, Value>,
    },
    /// Leave debug mode at a failed task: the instance fails and its rollback starts.
    Resume {
        /// The record id or activity-instance id of the failed task.
        task: String,
    },
    /// Someone other than the stone finishes the action a stone task's job is under way with
    /// (bk-sops' node callback: the outside system a component waits on answers), with
    /// these outputs.
    Callback {
        /// The record id of the task.
        task: String,
        /// What the action put out.
        outputs: Map<String, Value>,
    },
    /// An operator fails the action a stone task's job is under way with (bk-sops'
    /// `forced_fail`), whatever its phase.
    ForceFail {
        /// The record id of the task.
        task: String,
        /// Why, for the task record.
        reason: String,
    },
    /// Go on past a failed task (debug mode): it closes as skipped and the flow moves on.
    Skip {
        /// The record id or activity-instance id of the failed task.
        task: String,
    },
    /// Take this flow out of an exclusive gateway that could not choose (debug mode).
    ChooseFlow {
        /// The record id of the gateway's failed record.
        task: String,
        /// The id of one of the gateway's outgoing flows.
        flow: String,
    },
    /// Start no new node of the instance, or of the subprocess of this element; what runs
    /// goes on.
    Pause {
        /// The subprocess's element id; none for the whole instance.
        subprocess: Option<String>,
    },
    /// Undo a [`Command::Pause`]: held tokens move on.
    Unpause {
        /// The subprocess's element id; none for the whole instance.
        subprocess: Option<String>,
    },
    /// After the instance ended, send `delete` to every stone task that ran, newest first,
    /// from a delete instance.
    Delete,
    /// A timer came due.
    FireTimer {
        /// The timer's task record.
        timer: String,
        /// The due time it fired for (a cycle's timer is due again later).
        due: i64,
    },
    /// The message, signal or trigger an open record waits for came, with these variables.
    Deliver {
        /// The waiting record.
        record: String,
        /// Variables to set where the event is caught.
        variables: Map<String, Value>,
    },
    /// The child instance a call activity's record waits for ended.
    Return {
        /// The call activity's record.
        record: String,
        /// How the child ended.
        end: crate::call::CallEnd,
    },
    /// Remove a timer without firing it (an operator deleted it): a boundary timer's record
    /// closes as canceled; a catch event's token goes on waiting, for a cancel of its instance.
    DropTimer {
        /// The timer's task record.
        timer: String,
    },
}

impl Command {
    /// Its name in logs and spans (`stone`, `cancel`, `fire_timer`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Command::CompleteUserTask { .. } => "complete_user_task",
            Command::SetVariables { .. } => "set_variables",
            Command::Stone { .. } => "stone",
            Command::Cancel => "cancel",
            Command::ReRun { .. } => "rerun",
            Command::Resume { .. } => "resume",
            Command::Callback { .. } => "callback",
            Command::ForceFail { .. } => "force_fail",
            Command::Skip { .. } => "skip",
            Command::ChooseFlow { .. } => "choose_flow",
            Command::Pause { .. } => "pause",
            Command::Unpause { .. } => "unpause",
            Command::Delete => "delete",
            Command::FireTimer { .. } => "fire_timer",
            Command::Deliver { .. } => "deliver",
            Command::Return { .. } => "return",
            Command::DropTimer { .. } => "drop_timer",
        }
    }
}

/// How an instance is started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartOptions {
    /// A failed stone task waits for an operator instead of starting the rollback.
    pub debug: bool,
    /// Every stone gets `mock` instead of `start`.
    pub mock: bool,
    /// Who started it: the value of the start event's initiator variable.
    pub initiator: Option<String>,
    /// The start event it begins at (a timer start event's firing); the definition's start
    /// when none.
    pub from: Option<NodeId>,
    /// The call activity it was started by, when it was.
    pub caller: Option<crate::call::Caller>,
}

/// What an instance is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceKind {
    /// A run of a model.
    #[default]
    Process,
    /// Rolls back the stone tasks of a failed instance.
    Rollback,
    /// Cancels the stone tasks still running in a canceled instance.
    Cancel,
    /// Deletes what the stone tasks of an ended instance made.
    Delete,
}

impl InstanceKind {
    /// Its stored name.
    pub fn name(self) -> &'static str {
        match self {
            InstanceKind::Process => "process",
            InstanceKind::Rollback => "rollback",
            InstanceKind::Cancel => "cancel",
            InstanceKind::Delete => "delete",
        }
    }
}

/// A stone's report on its job.
#[derive(Debug, Clone, PartialEq)]
pub enum StoneEvent {
    /// The stone began this action.
    Begin(Action),
    /// How far the work is, 0–100.
    Progress(u8),
    /// The action succeeded with these outputs (written under the task's namespace); with
    /// `monitor`, a successful start is followed by monitoring and the task stays open.
    Success {
        /// The action that succeeded.
        action: Action,
        /// What it put out.
        outputs: Map<String, Value>,
        /// Whether the stone now monitors the work.
        monitor: bool,
    },
    /// The start is done and the work will report its end through a callback (bk-sops
    /// components such as `pause_node`): the job leaves the queue and the task stays under
    /// way until a `Success` or `Failed` of its start arrives.
    AwaitCallback,
    /// A mock found nothing to do.
    Passed,
    /// The action failed for this reason.
    Failed {
        /// The action that failed.
        action: Action,
        /// Why.
        reason: String,
    },
    /// The work is done, setting these process variables (a Flowable external worker's
    /// completion; `Success` keeps outputs under the task's namespace instead).
    Completed {
        /// Variables to set.
        variables: Map<String, Value>,
    },
    /// The action under way failed, for this reason (a worker failing a job names no step:
    /// a start that went on to monitor fails in its monitor step).
    Fault(String),
    /// The broker confirmed the publish of the job (brokered stones).
    Produced,
    /// Publishing the job to the broker failed; it will be published again.
    ProduceFailed(String),
    /// The work ended in a business error: an error boundary event catching `code` on the
    /// task or a subprocess around it takes the flow on; uncaught, the task fails.
    BpmnError {
        /// The error code.
        code: String,
        /// Variables to set first.
        variables: Map<String, Value>,
    },
}

/// A command that does not fit the instance's state; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No open task of this instance has that id.
    #[error("task {0} is not open in this process instance")]
    TaskNotOpen(String),
    /// The task exists but is of another kind than the command needs.
    #[error("task {task} is a {kind}, not a {expected}")]
    WrongTaskKind {
        /// The task addressed.
        task: String,
        /// What it is.
        kind: String,
        /// What the command needs.
        expected: &'static str,
    },
    /// The instance has ended.
    #[error("the process instance is {}, not running", status_text(*.0))]
    NotRunning(InstanceStatus),
    /// A stone reported an event its job does not expect now.
    #[error("task {task} is `{status}`: a `{event}` report does not fit")]
    UnexpectedEvent {
        /// The task addressed.
        task: String,
        /// Its status.
        status: String,
        /// What was reported.
        event: String,
    },
    /// A debug operation on an instance that is not in debug mode.
    #[error("the process instance is {}, not in debug mode", status_text(*.0))]
    NotDebugging(InstanceStatus),
    /// A debug operation on a task that did not fail.
    #[error("task {task} is `{status}`, not failed")]
    NotFailed {
        /// The task addressed.
        task: String,
        /// Its status.
        status: String,
    },
    /// A `reRun` of an action that does not fit the task.
    #[error("task {task} cannot run `{action}` again; it runs {allowed}")]
    WrongAction {
        /// The task addressed.
        task: String,
        /// What was asked.
        action: &'static str,
        /// What fits.
        allowed: String,
    },
    /// A delete of an instance that still runs.
    #[error("the process instance is {}: cancel it before deleting it", status_text(*.0))]
    StillRunning(InstanceStatus),
    /// A second delete.
    #[error("the process instance was already deleted by {0}")]
    AlreadyDeleted(String),
    /// A pause of an element that is no subprocess.
    #[error("`{0}` is no subprocess of this process")]
    NotASubprocess(String),
    /// A resume of what is not paused.
    #[error("{0} is not paused")]
    NotPaused(String),
    /// A flow that does not leave the gateway.
    #[error("no flow `{flow}` leaves gateway {gateway}")]
    NoSuchFlow {
        /// The gateway's element.
        gateway: String,
        /// The flow asked for.
        flow: String,
    },
    /// An operator's skip or retry of a pipeline-tree node whose tree says it may not be.
    #[error("task {task} cannot be {what}: its node is not {flag}")]
    NotOperable {
        /// The task addressed.
        task: String,
        /// `skipped` or `run again`.
        what: &'static str,
        /// The flag the tree leaves false.
        flag: &'static str,
    },
    /// Variables given with a command past a bound of [`crate::Limits`].
    #[error("{0}")]
    TooLarge(String),
    /// A delete of a rollback, cancel or delete instance.
    #[error("a {} instance cannot be deleted; delete the process it belongs to", .0.name())]
    NotAProcess(InstanceKind),
    /// A claim of a user task someone else has.
    #[error("Task '{0}' is already claimed by someone else.")]
    AlreadyClaimed(String),
    /// A completion of a user task its delegate has not resolved.
    #[error("Task '{0}' is delegated: the delegate resolves it before it can be completed")]
    Delegated(String),
    /// A claim or completion by someone the task is not for.
    #[error("user '{user}' may not complete or claim task '{task}': it is for its assignee, owner or candidates")]
    NotYours {
        /// Who tried.
        user: String,
        /// The task.
        task: String,
    },
    /// A message, signal or trigger for a record that does not wait for one (any more).
    #[error("nothing in this process instance waits on {0} for a message, signal or trigger")]
    NotWaiting(String),
    /// A firing of a timer that no longer waits for that time: it fired already (on another
    /// server), or its activity or instance ended.
    #[error("timer {0} is not set for that time in this process instance")]
    TimerNotSet(String),
}

/// The stored name of a status.
pub fn status_text(status: InstanceStatus) -> &'static str {
    match status {
        InstanceStatus::Running => "running",
        InstanceStatus::Debug => "debug",
        InstanceStatus::Completed => "completed",
        InstanceStatus::Failed => "failed",
        InstanceStatus::Canceled => "canceled",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Token {
    pub(crate) node: NodeId,
    pub(crate) scope: Option<ScopeId>,
    /// The open task record this token waits on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) wait: Option<String>,
    /// The event-based gateway race it runs in (named by the token that reached the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) race: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Join {
    pub(crate) scope: Option<ScopeId>,
    pub(crate) node: NodeId,
    pub(crate) arrived: u32,
    /// How many tokens a pipeline-tree fork sent to this converge gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expected: Option<u32>,
}

/// The whole state of one process instance; serialized as one value by the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Where it is in its life.
    pub status: InstanceStatus,
    /// Process-level variables.
    pub variables: Map<String, Value>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The element it ended at: the end event that completed it, or the element that failed
    /// it (what Flowable's history calls its end activity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_element: Option<String>,
    /// The output template's values, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Map<String, Value>>,
    /// Open task records (user tasks waiting, stone jobs queued or running), by record id;
    /// stored by id (see [`crate::recorded`]).
    #[serde(default, with = "crate::recorded")]
    pub open: BTreeMap<String, TaskRecord>,
    #[serde(default)]
    pub(crate) tokens: BTreeMap<u32, Token>,
    #[serde(default)]
    pub(crate) scopes: BTreeMap<ScopeId, Scope>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) joins: Vec<Join>,
    #[serde(default)]
    pub(crate) next_id: u32,
    /// What the instance is for.
    #[serde(default, skip_serializing_if = "is_default")]
    pub kind: InstanceKind,
    /// Started in debug mode.
    #[serde(default, skip_serializing_if = "is_default")]
    pub debug: bool,
    /// Started as a mock run.
    #[serde(default, skip_serializing_if = "is_default")]
    pub mock: bool,
    /// The rollback instance started when this one failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<String>,
    /// The cancel instance started when this one was canceled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<String>,
    /// The delete instance started for this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<String>,
    /// Stone tasks that started, in order of completion: what a rollback or delete undoes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) ran: Vec<Ran>,
    /// For a rollback, cancel or delete instance: its steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) plan: Option<Plan>,
    /// What is paused: the whole instance (none) or subprocess nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) paused: Vec<Option<NodeId>>,
    /// Tokens that reached a node while what holds them was paused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) parked: Vec<u32>,
    /// How many times each pipeline-tree component node has run (its `_loop` output).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) runs: BTreeMap<NodeId, u32>,
    /// Timers set and not yet fired for the last time, by their task record's id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) timers: BTreeMap<String, Timer>,
    /// How many times the engine retried each open failed run on its own (`auto_retry`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) auto_retries: BTreeMap<String, u32>,
    /// Records waiting for a message, a signal or a trigger, by their id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) waits: BTreeMap<String, Wait>,
    /// Open call activities' records, with the child instance each waits for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) calls: BTreeMap<String, String>,
    /// Every instance its call activities started: deleted with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) children: Vec<String>,
    /// Activities with compensation handlers that completed, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) compensable: Vec<crate::compensate::Compensable>,
    /// Compensations under way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) compensating: Vec<crate::compensate::Compensating>,
    /// The call activity that started it, when one did: told how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<crate::call::Caller>,
    /// For a called instance, the code of the BPMN error that ended it uncaught (empty for
    /// an error without a code): thrown at its call activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncaught_error: Option<String>,
    #[serde(skip)]
    pub(crate) index: Index,
    #[serde(skip)]
    pub(crate) changes: Changes,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// One command's working set: the definition, the context, and the effects so far.
pub(crate) struct Step<'a, 'c> {
    pub(crate) def: &'a Definition,
    pub(crate) ctx: &'a mut Ctx<'c>,
    pub(crate) effects: Vec<Effect>,
    pub(crate) ready: VecDeque<u32>,
    steps: u32,
    /// JSON bytes of stone parameters written so far (see [`crate::Limits::max_command_bytes`]).
    written: usize,
}

impl<'a, 'c> Step<'a, 'c> {
    pub(crate) fn new(def: &'a Definition, ctx: &'a mut Ctx<'c>) -> Self {
        Step { def, ctx, effects: Vec::new(), ready: VecDeque::new(), steps: 0, written: 0 }
    }
}

/// A run-time failure: the instance fails with this message.
pub(crate) struct Fail(pub(crate) String);

impl Instance {
    /// Starts an instance at the definition's start event and runs it to its first wait states.
    pub fn start(
        def: &Definition,
        variables: Map<String, Value>,
        options: StartOptions,
        ctx: &mut Ctx<'_>,
    ) -> (Instance, Vec<Effect>) {
        let mut inst = Instance::new(InstanceKind::Process, variables);
        inst.start_constants(def);
        if let Some(name) = &def.initiator {
            let initiator = options.initiator.clone().map_or(Value::Null, Value::String);
            if !inst.variables.contains_key(name) {
                inst.set_process_var(name.clone(), initiator);
            }
        }
        inst.debug = options.debug;
        inst.mock = options.mock;
        inst.caller = options.caller;
        let mut step = Step::new(def, ctx);
        let token = inst.spawn(options.from.unwrap_or(def.start), None);
        step.ready.push_back(token);
        if let Err(Fail(reason)) = inst.notify(&step, &def.listeners, ListenerEvent::Start, None) {
            inst.fail(reason);
        }
        if let Err(Fail(reason)) = inst.arm_event_subprocesses(&mut step, None, None) {
            inst.fail(reason);
        }
        inst.run(&mut step);
        inst.settle(&mut step, InstanceStatus::Running);
        (inst, step.effects)
    }

    /// Sets the definition's constants the start did not give, each once the ones it refers
    /// to are known (passes over the rest until a pass sets none); what still cannot be
    /// resolved then is rendered as bk-sops does, left as written.
    fn start_constants(&mut self, def: &Definition) {
        let mut pending: Vec<&(String, Template)> =
            def.constants.iter().filter(|(name, _)| !self.variables.contains_key(name)).collect();
        loop {
            let before = pending.len();
            pending.retain(|(name, value)| match value.eval(&ScopeVars { instance: self, scope: None }) {
                Ok(v) => {
                    self.set_process_var(name.clone(), v);
                    false
                }
                Err(_) => true,
            });
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        for (name, value) in pending {
            let v = self.render(value, None);
            self.set_process_var(name.clone(), v);
        }
    }

    pub(crate) fn new(kind: InstanceKind, variables: Map<String, Value>) -> Instance {
        let mut inst = Instance {
            status: InstanceStatus::Running,
            variables,
            failure: None,
            end_element: None,
            outputs: None,
            open: BTreeMap::new(),
            tokens: BTreeMap::new(),
            scopes: BTreeMap::new(),
            joins: Vec::new(),
            next_id: 0,
            kind,
            debug: false,
            mock: false,
            rollback: None,
            cancel: None,
            delete: None,
            ran: Vec::new(),
            plan: None,
            paused: Vec::new(),
            parked: Vec::new(),
            runs: BTreeMap::new(),
            timers: BTreeMap::new(),
            auto_retries: BTreeMap::new(),
            waits: BTreeMap::new(),
            calls: BTreeMap::new(),
            compensable: Vec::new(),
            children: Vec::new(),
            compensating: Vec::new(),
            caller: None,
            uncaught_error: None,
            index: Index::default(),
            changes: Changes::default(),
        };
        inst.reindex();
        inst
    }

    /// An instance that ended before its state was kept (nothing of it can be undone): only
    /// its status and final variables remain.
    pub fn ended(status: InstanceStatus, variables: Map<String, Value>) -> Instance {
        let mut inst = Instance::new(InstanceKind::Process, variables);
        inst.status = status;
        inst
    }

    /// Whether tokens may still move: running, or waiting in debug mode.
    pub fn active(&self) -> bool {
        matches!(self.status, InstanceStatus::Running | InstanceStatus::Debug)
    }

    /// Whether the state must be kept after the instance ended: it has stone work that a
    /// delete would undo or called instances a delete deletes too, or it is itself a rollback, cancel or delete instance (which a
    /// delete must refuse).
    pub fn keeps_state(&self) -> bool {
        !self.ran.is_empty() || !self.children.is_empty() || self.kind != InstanceKind::Process
    }

    /// Applies a command and runs the instance to its next wait states.
    ///
    /// # Errors
    /// An [`EngineError`] when the command does not fit the state (the instance has ended,
    /// the task is not open or is of another kind); the instance is then unchanged.
    pub fn apply(&mut self, def: &Definition, cmd: Command, ctx: &mut Ctx<'_>) -> Result<Vec<Effect>, EngineError> {
        self.ensure_index();
        let before = self.status;
        let mut step = Step::new(def, ctx);
        match cmd {
            Command::Delete => {
                self.delete(&mut step)?;
                return Ok(step.effects);
            }
            _ if !self.active() => return Err(EngineError::NotRunning(self.status)),
            Command::CompleteUserTask { task, variables, transient } => {
                step.ctx.limits.check_variables(&variables).map_err(EngineError::TooLarge)?;
                step.ctx.limits.check_variables(&transient).map_err(EngineError::TooLarge)?;
                let record_id = self.find_open(&task)?;
                let record = &self.open[&record_id];
                if record.kind != "userTask" {
                    return Err(EngineError::WrongTaskKind { task, kind: record.kind.clone(), expected: "userTask" });
                }
                let token = self.token_waiting_on(&record_id);
                let scope = self.record_scope(&record_id);
                for (name, value) in variables {
                    self.set_var(scope, name, value);
                }
                let mut fleeting = Vec::new();
                for (name, value) in transient {
                    if !self.variables.contains_key(&name) {
                        self.set_process_var(name.clone(), value);
                        fleeting.push(name);
                    }
                }
                let listeners = token.map(|t| &def.node(self.tokens[&t].node).listeners);
                if let Some(Err(fail)) = listeners.map(|l| self.notify(&step, l, ListenerEvent::Complete, scope)) {
                    let node = token.map(|t| self.tokens[&t].node).unwrap_or(def.start);
                    self.close_record(&mut step, &record_id, TaskStatus::Failed, Some(fail.0.clone()), None);
                    self.fail_at(&step, node, fail);
                } else {
                    self.close_record(&mut step, &record_id, TaskStatus::Completed, None, None);
                    if let Some(t) = token {
                        self.resume(&mut step, t);
                    }
                }
                self.run(&mut step);
                for name in fleeting {
                    self.remove_process_var(&name);
                }
            }
            Command::SetVariables { task, variables, removed } => {
                step.ctx.limits.check_variables(&variables).map_err(EngineError::TooLarge)?;
                let scope = match task {
                    Some(task) => self.record_scope(&self.find_open(&task)?),
                    None => None,
                };
                for (name, value) in variables {
                    self.set_var(scope, name, value);
                }
                for name in removed {
                    self.remove_var(scope, &name);
                }
            }
            Command::Stone { record, event } => self.stone_event(&mut step, &record, event)?,
            Command::ReRun { task, action, parameters, outputs } => {
                self.rerun(&mut step, &task, action, parameters, outputs)?;
            }
            Command::Resume { task } => self.leave_debug(&task)?,
            Command::Skip { task } => self.skip(&mut step, &task)?,
            Command::Callback { task, outputs } => self.callback(&mut step, &task, outputs)?,
            Command::ForceFail { task, reason } => self.stone_event(&mut step, &task, StoneEvent::Fault(reason))?,
            Command::ChooseFlow { task, flow } => self.choose_flow(&mut step, &task, &flow)?,
            Command::Pause { subprocess } => self.pause(&step, subprocess.as_deref())?,
            Command::Unpause { subprocess } => self.unpause(&mut step, subprocess.as_deref())?,
            Command::Cancel => self.cancel(&mut step),
            Command::FireTimer { timer, due } => self.fire_timer(&mut step, &timer, due)?,
            Command::DropTimer { timer } => self.drop_timer(&mut step, &timer)?,
            Command::Deliver { record, variables } => {
                step.ctx.limits.check_variables(&variables).map_err(EngineError::TooLarge)?;
                self.deliver(&mut step, &record, variables)?;
            }
            Command::Return { record, end } => self.returned(&mut step, &record, end)?,
        }
        self.run(&mut step);
        self.settle(&mut step, before);
        Ok(step.effects)
    }

    /// The open record addressed by its record id or its activity-instance id.
    pub(crate) fn find_open(&self, id: &str) -> Result<String, EngineError> {
        if self.open.contains_key(id) {
            return Ok(id.to_owned());
        }
        self.open
            .values()
            .find(|r| r.task_id == id)
            .map(|r| r.id.clone())
            .ok_or_else(|| EngineError::TaskNotOpen(id.to_owned()))
    }

    /// The variables that hold `name` as the scope sees it: its nearest scope's that defines
    /// it, else the process's.
    pub(crate) fn holder(&mut self, scope: Option<ScopeId>, name: &str) -> &mut Map<String, Value> {
        let mut cur = scope;
        while let Some(s) = cur.and_then(|id| self.scopes.get(&id)) {
            if s.vars.contains_key(name) {
                break;
            }
            cur = s.parent;
        }
        match cur {
            Some(id) => {
                self.index.scope_vars_changed(id);
                &mut self.scope_mut(id).expect("found in the chain").vars
            }
            None => {
                self.process_var_changed(name);
                &mut self.variables
            }
        }
    }

    /// Sets a variable where it already lives in the scope chain, else on the process.
    pub(crate) fn set_var(&mut self, scope: Option<ScopeId>, name: String, value: Value) {
        self.holder(scope, &name).insert(name, value);
    }

    /// Removes the variable the scope sees under this name (its nearest definition).
    pub(crate) fn remove_var(&mut self, scope: Option<ScopeId>, name: &str) {
        self.holder(scope, name).remove(name);
    }

    /// The scope of the token waiting on an open record (none: the process).
    fn record_scope(&self, record_id: &str) -> Option<ScopeId> {
        self.token_waiting_on(record_id).and_then(|t| self.tokens[&t].scope)
    }

    pub(crate) fn eval(&self, expr: &Expression, scope: Option<ScopeId>) -> Result<Value, Fail> {
        expr.eval(&ScopeVars { instance: self, scope }).map_err(|e| Fail(e.to_string()))
    }

    /// A pipeline-tree value as bk-sops renders it (what cannot be resolved stays as written).
    fn render(&self, template: &Template, scope: Option<ScopeId>) -> Value {
        template.render(&ScopeVars { instance: self, scope })
    }

    pub(crate) fn eval_bool(&self, expr: &Expression, scope: Option<ScopeId>) -> Result<bool, Fail> {
        expr.eval_bool(&ScopeVars { instance: self, scope }).map_err(|e| Fail(e.to_string()))
    }

    pub(crate) fn fail(&mut self, reason: String) {
        if self.active() {
            self.status = InstanceStatus::Failed;
            self.failure = Some(reason);
            // An end event a finished branch passed is not where a failure ended it.
            self.end_element = None;
        }
    }

    /// Fails the instance at `element`, which it then ended at.
    pub(crate) fn fail_in(&mut self, element: &str, reason: String) {
        if self.active() {
            self.fail(reason);
            self.end_element = Some(element.to_owned());
        }
    }

    /// Fails the instance with a reason naming the element where `token` stood.
    pub(crate) fn fail_at(&mut self, step: &Step<'_, '_>, node: NodeId, Fail(reason): Fail) {
        let element = &step.def.node(node).id;
        self.fail_in(element, format!("at `{element}`: {reason}"));
    }

    /// Moves ready tokens until every token waits, the instance ends, or it fails.
    fn run(&mut self, step: &mut Step<'_, '_>) {
        if self.plan.is_some() {
            return self.advance_plan(step);
        }
        loop {
            while let Some(token) = step.ready.pop_front() {
                if !self.active() {
                    return;
                }
                if !self.tokens.contains_key(&token) {
                    continue; // removed meanwhile by a terminate or an early multi-instance completion
                }
                if self.held(token) {
                    self.parked.push(token);
                    continue;
                }
                step.steps += 1;
                let max = step.ctx.limits.max_steps;
                if step.steps > max {
                    self.fail(format!("more than {max} steps in one go: the model loops without a wait state"));
                    return;
                }
                // The node it stood at: a token that ends (at an error end event) is gone by then.
                let node = self.tokens[&token].node;
                if let Err(fail) = self.execute(step, token) {
                    self.fail_at(step, node, fail);
                    return;
                }
            }
            // Every token moved as far as it can: inclusive joins nothing can reach go on, and
            // conditions that hold now come.
            if !self.active() {
                break;
            }
            if !self.joins.is_empty() && self.fire_inclusive_joins(step) {
                continue;
            }
            if !self.fire_conditions(step) {
                break;
            }
        }
        if self.active() && self.tokens.is_empty() && self.scopes.is_empty() {
            self.complete(step);
        }
    }

    fn complete(&mut self, step: &mut Step<'_, '_>) {
        if let Err(Fail(reason)) = self.notify(step, &step.def.listeners, ListenerEvent::End, None) {
            self.fail(reason);
            return;
        }
        let mut outputs = Map::new();
        for param in &step.def.outputs {
            match self.eval(&param.value, None) {
                Ok(v) => {
                    outputs.insert(param.name.clone(), v);
                }
                Err(Fail(reason)) => {
                    self.fail(format!("output `{}`: {reason}", param.name));
                    return;
                }
            }
        }
        self.outputs = Some(outputs);
        self.status = InstanceStatus::Completed;
        // A failure waiting for an operator (debug mode) is over once the instance ends well,
        // as when a terminate end event ends it.
        self.failure = None;
    }

    /// A token arrives at its node; an activity with timer boundary events sets their timers
    /// once it runs (once for all items of a multi-instance activity).
    fn execute(&mut self, step: &mut Step<'_, '_>, token: u32) -> Result<(), Fail> {
        let Token { node: node_id, scope, .. } = self.tokens[&token].clone();
        let node = step.def.node(node_id);
        let inside_mi = scope.is_some_and(|s| {
            let sc = &self.scopes[&s];
            sc.node == node_id && matches!(sc.kind, ScopeKind::MiItem { .. })
        });
        if !inside_mi && !node.listeners.is_empty() {
            self.notify(step, &node.listeners, ListenerEvent::Start, scope)?;
        }
        // Scopes opened from here on are this activity's (its subprocess or multi-instance body).
        let opened = self.next_id;
        if let Some(mi) = node.multi.as_ref().filter(|_| !inside_mi) {
            self.start_multi_instance(step, token, mi)?;
        } else {
            self.execute_node(step, token, node_id, scope)?;
        }
        if node.boundaries.is_empty() || inside_mi {
            Ok(())
        } else {
            self.arm_boundaries(step, token, node_id, scope, opened)
        }
    }

    /// Runs the node a token arrived at.
    fn execute_node(
        &mut self,
        step: &mut Step<'_, '_>,
        token: u32,
        node_id: NodeId,
        scope: Option<ScopeId>,
    ) -> Result<(), Fail> {
        let node = step.def.node(node_id);
        match &node.kind {
            // An exclusive gateway is passed once it chose (see `leave`).
            NodeKind::ExclusiveGateway { .. } => self.leave(step, token),
            NodeKind::StartEvent
            | NodeKind::TimerStart(_)
            | NodeKind::ErrorStart { .. }
            | NodeKind::EventStart(_)
            | NodeKind::ParallelGateway
            | NodeKind::Fork { .. }
            | NodeKind::Converge
            | NodeKind::LinkCatch
            | NodeKind::ErrorBoundary { .. } => {
                self.passed(step, node_id);
                self.leave(step, token)
            }
            // Its timer's record is its history; an event subprocess is left once it ends.
            NodeKind::TimerBoundary { .. }
            | NodeKind::EventBoundary { .. }
            | NodeKind::CompensationBoundary { .. }
            | NodeKind::EventSubProcess { .. } => self.leave(step, token),
            NodeKind::CompensationThrow { activity, wait } => self.compensate(step, token, *activity, *wait),
            NodeKind::EndEvent(EndKind::Compensation { activity }) => self.compensate(step, token, *activity, true),
            NodeKind::TimerCatch(timer) => self.catch_timer(step, token, timer),
            NodeKind::EventCatch { trigger, .. } => self.catch_event(step, token, trigger.as_deref()),
            NodeKind::Throw { trigger, send_task } => {
                if let Some(trigger) = trigger {
                    self.throw_event(step, trigger, scope)?;
                }
                if *send_task {
                    let rec = self.new_record(step, node_id, None);
                    self.emit_closed(step, rec, TaskStatus::Completed, None, None);
                } else {
                    self.passed(step, node_id);
                }
                self.leave(step, token)
            }
            NodeKind::EndEvent(kind) => {
                self.passed(step, node_id);
                self.notify(step, &node.listeners, ListenerEvent::End, scope)?;
                if scope.is_none() {
                    self.end_element = Some(node.id.clone());
                }
                self.drop_token(token);
                match kind {
                    // Reached through `compensate` instead.
                    EndKind::None | EndKind::Compensation { .. } => self.check_scope_done(step, scope),
                    EndKind::Throw(trigger) => {
                        self.throw_event(step, trigger, scope)?;
                        self.check_scope_done(step, scope)
                    }
                    EndKind::Terminate => self.terminate(step, scope),
                    EndKind::Escalation { code } => {
                        self.escalate(step, scope, code.as_deref());
                        self.check_scope_done(step, scope)
                    }
                    EndKind::Error { code } => {
                        if self.catch_error(step, Thrower::Scope(scope), code.as_deref()) {
                            return Ok(());
                        }
                        if self.caller.is_some() {
                            self.uncaught_error = Some(code.clone().unwrap_or_default());
                        }
                        let code = code.as_deref().map(|c| format!(" with code `{c}`")).unwrap_or_default();
                        Err(Fail(format!("error end event reached{code}, and no error boundary event catches it")))
                    }
                }
            }
            NodeKind::Task => {
                let rec = self.new_record(step, node_id, None);
                self.emit_closed(step, rec, TaskStatus::Completed, None, None);
                self.leave(step, token)
            }
            NodeKind::ExpressionTask { expression, result_variable, .. } => {
                let rec = self.new_record(step, node_id, None);
                let value = self.eval_setting(step, expression, scope);
                self.complete_computed(step, token, rec, result_variable, value)
            }
            NodeKind::JavaScriptTask { source, result_variable } => {
                let rec = self.new_record(step, node_id, None);
                let value = self.run_javascript(step, source, scope);
                self.complete_computed(step, token, rec, result_variable, value)
            }
            NodeKind::StoneTask(spec) => {
                let namespace = self.instance_namespace(&spec.namespace, scope);
                let params = self.stone_params(spec, &namespace, scope);
                let budget = step.ctx.limits.max_command_bytes;
                step.written += crate::limits::json_size(&params, budget.saturating_sub(step.written));
                if step.written > budget {
                    return Err(Fail(format!(
                        "the stone tasks started in one step would take over {budget} bytes of parameters; at most {budget} are allowed"
                    )));
                }
                if spec.inputs.is_some() {
                    *self.runs.entry(node_id).or_default() += 1;
                }
                let mut rec = self.new_record(step, node_id, Some((namespace, spec.stone.clone())));
                let action = if self.mocks(&spec.stone) { Action::Mock } else { Action::Start };
                rec.params = Some(params);
                Self::queue(step, &mut rec, action, Map::new());
                let id = rec.id.clone();
                self.wait(step, token, rec);
                self.arm_timeout(step, token, &id);
                Ok(())
            }
            NodeKind::UserTask(spec) => {
                let info = self.user_task_info(spec, step.def.node(node_id), scope, step.ctx.now)?;
                let mut rec = self.new_record(step, node_id, None);
                rec.status = TaskStatus::Active;
                // The name as evaluated (`My Task 0`, not `My Task ${loopCounter}`), as
                // Flowable's task API shows it.
                if let Some(name) = &info.name {
                    rec.name.clone_from(name);
                }
                rec.user = Some(Box::new(info));
                self.wait(step, token, rec);
                self.notify(step, &node.listeners, ListenerEvent::Create, scope)
            }
            NodeKind::Call(spec) => self.call(step, token, node_id, spec, scope),
            NodeKind::EscalationThrow { code } => {
                self.passed(step, node_id);
                self.escalate(step, scope, code.as_deref());
                // What caught it may have ended the work the token stood in.
                if self.tokens.contains_key(&token) { self.leave(step, token) } else { Ok(()) }
            }
            NodeKind::EventGateway => {
                self.race(step, token, node_id);
                Ok(())
            }
            NodeKind::InclusiveGateway { .. } if node.incoming.len() > 1 => {
                self.arrive_inclusive(token, node_id);
                Ok(())
            }
            NodeKind::InclusiveGateway { .. } => self.leave(step, token),
            NodeKind::SubProcess { start, locals } => {
                let vars = locals.iter().map(|(name, value)| (name.clone(), self.render(value, scope))).collect();
                self.drop_token(token);
                let sub = self.new_scope(Scope { parent: scope, node: node_id, kind: ScopeKind::SubProcess, vars });
                let t = self.spawn(*start, Some(sub));
                step.ready.push_back(t);
                self.arm_event_subprocesses(step, Some(node_id), Some(sub))
            }
        }
    }

    /// Whether a stone gets `mock` instead of `start`: a mock run, or `"<stone>::Mock": true`.
    fn mocks(&self, stone: &str) -> bool {
        self.mock || self.variables.get(&format!("{stone}::Mock")) == Some(&Value::Bool(true))
    }

    /// Queues a job asking the record's stone for `action`; the record waits for it.
    pub(crate) fn queue(step: &mut Step<'_, '_>, rec: &mut TaskRecord, action: Action, outputs: Map<String, Value>) {
        let stone = rec.stone.as_deref().unwrap_or_default();
        let produced = TaskStatus::Produce(if (step.ctx.brokered)(stone) { Phase::Begin } else { Phase::Success });
        rec.status = produced;
        rec.action = Some(action);
        step.effects.push(Effect::QueueJob(Job {
            record_id: rec.id.clone(),
            stone: rec.stone.clone().unwrap_or_default(),
            action,
            params: rec.params.clone().unwrap_or(Value::Null),
            outputs,
        }));
    }

    pub(crate) fn wait(&mut self, step: &mut Step<'_, '_>, token: u32, mut rec: TaskRecord) {
        self.set_wait(token, Some(rec.id.clone()));
        let user = rec.user.take();
        self.open_record(rec.clone());
        rec.user = user;
        step.effects.push(Effect::Task(Box::new(rec)));
    }

    /// A waiting token's task is done: it leaves its node.
    pub(crate) fn resume(&mut self, step: &mut Step<'_, '_>, token: u32) {
        self.win_race(step, token);
        self.set_wait(token, None);
        let Some(node) = self.tokens.get(&token).map(|t| t.node) else { return };
        if let Err(fail) = self.leave(step, token) {
            self.fail_at(step, node, fail);
        }
    }

    /// A token passed an event or a gateway.
    pub(crate) fn passed(&self, step: &mut Step<'_, '_>, node_id: NodeId) {
        let node = step.def.node(node_id);
        let kind = match &node.kind {
            NodeKind::StartEvent | NodeKind::TimerStart(_) | NodeKind::ErrorStart { .. } | NodeKind::EventStart(_) => {
                "startEvent"
            }
            NodeKind::EndEvent(_) => "endEvent",
            NodeKind::Throw { .. } | NodeKind::EscalationThrow { .. } | NodeKind::CompensationThrow { .. } => {
                "intermediateThrowEvent"
            }
            NodeKind::LinkCatch => "intermediateCatchEvent",
            NodeKind::ExclusiveGateway { .. } => "exclusiveGateway",
            NodeKind::EventGateway => "eventBasedGateway",
            NodeKind::InclusiveGateway { .. } => "inclusiveGateway",
            NodeKind::ParallelGateway | NodeKind::Fork { conditional: false, .. } => "parallelGateway",
            NodeKind::Fork { .. } => "conditionalParallelGateway",
            NodeKind::Converge => "convergeGateway",
            _ => "boundaryEvent",
        };
        step.effects.push(Effect::Passed(Passage {
            id: (step.ctx.ids)(),
            element: node.id.clone(),
            name: node.name.clone(),
            kind,
            time: step.ctx.now,
        }));
    }

    pub(crate) fn new_record(
        &self,
        step: &mut Step<'_, '_>,
        node_id: NodeId,
        stone: Option<(String, String)>,
    ) -> TaskRecord {
        let node = step.def.node(node_id);
        let kind = match &node.kind {
            NodeKind::UserTask(_) => "userTask",
            NodeKind::Call(_) => "callActivity",
            NodeKind::ExpressionTask { script: true, .. } | NodeKind::JavaScriptTask { .. } => "scriptTask",
            NodeKind::StoneTask(_) | NodeKind::ExpressionTask { .. } => "serviceTask",
            NodeKind::TimerCatch(_) | NodeKind::EventCatch { receive_task: false, .. } => "intermediateCatchEvent",
            NodeKind::EventCatch { .. } => "receiveTask",
            NodeKind::Throw { send_task: true, .. } => "sendTask",
            NodeKind::TimerBoundary { .. } | NodeKind::EventBoundary { .. } => "boundaryEvent",
            NodeKind::TimerStart(_) | NodeKind::EventStart(_) => "startEvent",
            NodeKind::CompensationThrow { .. } => "intermediateThrowEvent",
            NodeKind::EndEvent(_) => "endEvent",
            _ => "task",
        };
        let (namespace, stone) = stone.unzip();
        let id = (step.ctx.ids)();
        TaskRecord {
            task_id: id.clone(),
            id,
            element: node.id.clone(),
            name: node.display_name().to_owned(),
            kind: kind.into(),
            namespace,
            stone,
            create_time: step.ctx.now,
            end_time: None,
            // Each kind of task sets its own before the record is written.
            status: TaskStatus::Active,
            reason: None,
            params: None,
            outputs: None,
            progress: None,
            action: None,
            user: None,
        }
    }

    pub(crate) fn emit_closed(
        &self,
        step: &mut Step<'_, '_>,
        mut rec: TaskRecord,
        status: TaskStatus,
        reason: Option<String>,
        outputs: Option<Value>,
    ) {
        rec.status = status;
        rec.reason = reason;
        rec.outputs = outputs;
        rec.end_time = Some(step.ctx.now);
        step.effects.push(Effect::Task(Box::new(rec)));
    }

    /// Closes an open record; a stone task's job or a timer leaves the queue with it.
    pub(crate) fn close_record(
        &mut self,
        step: &mut Step<'_, '_>,
        id: &str,
        status: TaskStatus,
        reason: Option<String>,
        outputs: Option<Value>,
    ) {
        if let Some(rec) = self.take_record(id) {
            if rec.stone.is_some() {
                step.effects.push(Effect::DropJob { record_id: rec.id.clone() });
            }
            if self.timers.remove(id).is_some() {
                step.effects.push(Effect::DropTimer { record_id: rec.id.clone() });
            }
            if let Some(wait) = self.waits.remove(id)
                && !crate::conditional::is_condition(step.def, &wait)
            {
                step.effects.push(Effect::Unsubscribe { record_id: rec.id.clone() });
            }
            if let Some(child) = self.calls.remove(id) {
                step.effects.push(Effect::EndCall { child });
            }
            self.emit_closed(step, rec, status, reason, outputs);
        }
    }

    /// Cancels the open records whose waiting tokens match `filter`, dropping queued jobs.
    fn cancel_open(&mut self, step: &mut Step<'_, '_>, filter: impl Fn(Option<ScopeId>) -> bool) {
        let doomed: Vec<String> =
            self.tokens.values().filter(|t| filter(t.scope)).filter_map(|t| t.wait.clone()).collect();
        for id in doomed {
            self.close_record(step, &id, TaskStatus::Canceled, None, None);
        }
    }

    /// The namespace of one run of a stone task: per item for multi-instance tasks
    /// (`slave-` → `slave-1`, `slave-2`, …; `db` → `db-1`, …), else the model's.
    fn instance_namespace(&self, base: &str, scope: Option<ScopeId>) -> String {
        let item = scope.and_then(|s| match self.scopes[&s].kind {
            ScopeKind::MiItem { index } => Some(index + 1),
            _ => None,
        });
        match item {
            Some(n) if base.ends_with(['-', '_', '.']) => format!("{base}{n}"),
            Some(n) => format!("{base}-{n}"),
            None => base.to_owned(),
        }
    }

    /// A stone's params, plus `namespace` and `queue`: a pipeline-tree component's rendered
    /// inputs; else the visible variables, overlaid with the object under its namespace (the
    /// model's, then the per-instance one).
    fn stone_params(&self, spec: &StoneSpec, namespace: &str, scope: Option<ScopeId>) -> Value {
        let mut params = match &spec.inputs {
            // A component sees its inputs only, as in bk-sops.
            Some(inputs) => inputs.iter().map(|(name, input)| (name.clone(), self.render(input, scope))).collect(),
            None => {
                let mut params = flowstone_expr::Variables::all(&ScopeVars { instance: self, scope });
                for ns in [spec.namespace.as_str(), namespace] {
                    if let Some(Value::Object(fields)) = self.variables.get(ns) {
                        params.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                }
                params
            }
        };
        params.insert("namespace".into(), Value::String(namespace.to_owned()));
        params.insert("queue".into(), Value::String(spec.stone.clone()));
        Value::Object(params)
    }

    /// The flow an exclusive gateway takes: the first whose condition holds, else the default.
    fn choose(
        &self,
        def: &Definition,
        node: NodeId,
        default: Option<FlowId>,
        scope: Option<ScopeId>,
    ) -> Result<FlowId, Fail> {
        for f in def.node(node).outgoing.iter().filter(|f| Some(**f) != default) {
            let flow = def.flow(*f);
            let holds = match &flow.condition {
                Some(c) => {
                    self.eval_bool(c, scope).map_err(|Fail(r)| Fail(format!("condition of flow `{}`: {r}", flow.id)))?
                }
                None => true,
            };
            if holds {
                return Ok(*f);
            }
        }
        default.ok_or_else(|| {
            Fail("no outgoing sequence flow of the exclusive gateway matched and it has no default".into())
        })
    }

    /// A token leaves its node: through the gateway's rule, or every outgoing flow that holds.
    pub(crate) fn leave(&mut self, step: &mut Step<'_, '_>, token: u32) -> Result<(), Fail> {
        let Token { node: node_id, scope, .. } = self.tokens[&token].clone();
        let def = step.def;
        let node = def.node(node_id);
        // A multi-instance item finishing its activity finishes the item.
        if let Some(s) = scope {
            let sc = &self.scopes[&s];
            if sc.node == node_id && matches!(sc.kind, ScopeKind::MiItem { .. }) {
                self.drop_token(token);
                return self.check_scope_done(step, scope);
            }
        }
        if !node.listeners.is_empty() {
            self.notify(step, &node.listeners, ListenerEvent::End, scope)?;
        }
        if self.activity_completed(step, node_id, scope) {
            self.drop_token(token);
            return self.check_scope_done(step, scope);
        }
        let targets: Vec<_> = match &node.kind {
            NodeKind::ExclusiveGateway { default } => match self.choose(def, node_id, *default, scope) {
                Ok(f) => {
                    self.passed(step, node_id);
                    vec![def.flow(f).target]
                }
                Err(fail) => return self.gateway_failed(step, token, node_id, fail),
            },
            NodeKind::ParallelGateway if node.incoming.len() > 1 => {
                self.drop_token(token);
                let needed = node.incoming.len() as u32;
                let pos = self.joins.iter().position(|j| j.scope == scope && j.node == node_id);
                let arrived = match pos {
                    Some(i) => {
                        self.joins[i].arrived += 1;
                        self.joins[i].arrived
                    }
                    None => {
                        self.joins.push(Join { scope, node: node_id, arrived: 1, expected: None });
                        1
                    }
                };
                if arrived < needed {
                    return Ok(());
                }
                self.joins.retain(|j| !(j.scope == scope && j.node == node_id));
                let targets: Vec<_> = node.outgoing.iter().map(|f| def.flow(*f).target).collect();
                for target in targets {
                    let t = self.spawn(target, scope);
                    step.ready.push_back(t);
                }
                return self.check_scope_done(step, scope);
            }
            NodeKind::ParallelGateway => node.outgoing.iter().map(|f| def.flow(*f).target).collect(),
            NodeKind::InclusiveGateway { default } => {
                let taken = self.conditional_targets(def, node_id, *default, true, scope, "inclusive gateway")?;
                self.passed(step, node_id);
                taken
            }
            NodeKind::Fork { conditional, default, converge } => {
                let what = "conditional parallel gateway";
                let taken = self.conditional_targets(def, node_id, *default, *conditional, scope, what)?;
                // Its converge gateway waits for as many tokens as leave here.
                self.joins.retain(|j| !(j.scope == scope && j.node == *converge));
                self.joins.push(Join { scope, node: *converge, arrived: 0, expected: Some(taken.len() as u32) });
                taken
            }
            NodeKind::Converge => {
                let pos = self.joins.iter().position(|j| j.scope == scope && j.node == node_id);
                if let Some(i) = pos {
                    self.joins[i].arrived += 1;
                    if self.joins[i].arrived < self.joins[i].expected.unwrap_or(1) {
                        self.drop_token(token);
                        return Ok(());
                    }
                    self.joins.remove(i);
                }
                node.outgoing.iter().map(|f| def.flow(*f).target).collect()
            }
            _ => {
                let mut targets = Vec::new();
                for f in &node.outgoing {
                    let flow = def.flow(*f);
                    let holds = match &flow.condition {
                        Some(c) => self.eval_bool(c, scope)?,
                        None => true,
                    };
                    if holds {
                        targets.push(flow.target);
                    }
                }
                targets
            }
        };
        self.drop_token(token);
        for target in &targets {
            let t = self.spawn(*target, scope);
            step.ready.push_back(t);
        }
        if targets.is_empty() { self.check_scope_done(step, scope) } else { Ok(()) }
    }

    /// The targets of the flows out of `node` whose condition holds (with `conditional`;
    /// otherwise every flow), a flow without a condition always; the default only when none
    /// other is taken.
    fn conditional_targets(
        &self,
        def: &Definition,
        node: NodeId,
        default: Option<FlowId>,
        conditional: bool,
        scope: Option<ScopeId>,
        what: &str,
    ) -> Result<Vec<NodeId>, Fail> {
        let mut taken = Vec::new();
        for f in def.node(node).outgoing.iter().filter(|f| Some(**f) != default) {
            let flow = def.flow(*f);
            let holds = match (&flow.condition, conditional) {
                (Some(c), true) => {
                    self.eval_bool(c, scope).map_err(|Fail(r)| Fail(format!("condition of flow `{}`: {r}", flow.id)))?
                }
                _ => true,
            };
            if holds {
                taken.push(flow.target);
            }
        }
        if taken.is_empty() {
            match default {
                Some(f) => taken.push(def.flow(f).target),
                None => return Err(Fail(format!("no condition of the {what} held and it has no default"))),
            }
        }
        Ok(taken)
    }

    fn start_multi_instance(
        &mut self,
        step: &mut Step<'_, '_>,
        token: u32,
        mi: &flowstone_model::MultiInstance,
    ) -> Result<(), Fail> {
        let Token { node: node_id, scope, .. } = self.tokens[&token].clone();
        let (total, items) = match (&mi.collection, &mi.cardinality) {
            (Some(collection), _) => match self.eval(collection, scope)? {
                Value::Array(items) => (items.len() as u64, Some(items)),
                Value::Null => {
                    return Err(Fail(format!("multi-instance collection `{}` is null", collection.source())));
                }
                other => {
                    return Err(Fail(format!(
                        "multi-instance collection `{}` is not a list but {other}",
                        collection.source()
                    )));
                }
            },
            (None, Some(cardinality)) => {
                let value = self.eval(cardinality, scope)?;
                let n = match &value {
                    Value::Number(n) => {
                        n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
                    }
                    Value::String(s) => s.trim().parse::<u64>().ok(),
                    _ => None,
                };
                let n = n.ok_or_else(|| {
                    Fail(format!("loopCardinality `{}` is {value}, not a whole number ≥ 0", cardinality.source()))
                })?;
                (n, None)
            }
            // A standard loop without a maximum runs while its condition holds, up to the limit.
            (None, None) if mi.loop_while.is_some() => (u64::from(step.ctx.limits.max_items), None),
            (None, None) => return Err(Fail("multi-instance has neither collection nor cardinality".into())),
        };
        let total = match &mi.loop_while {
            Some(condition) if mi.test_before && !self.eval_bool(condition, scope)? => 0,
            _ => total,
        };
        let max = step.ctx.limits.max_items;
        let total = u32::try_from(total)
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| Fail(format!("multi-instance of {total} items; at most {max} are allowed")))?;
        if total == 0 {
            // Nothing to run: the activity is passed at once.
            self.drop_token(token);
            let t = self.spawn(node_id, scope);
            return self.leave_after_multi_instance(step, t);
        }
        self.drop_token(token);
        self.open_output(mi, scope, total);
        let first_batch = if mi.sequential { 1 } else { total };
        let vars = Map::from_iter([
            ("nrOfInstances".to_owned(), Value::from(total)),
            ("nrOfCompletedInstances".to_owned(), Value::from(0)),
            ("nrOfActiveInstances".to_owned(), Value::from(first_batch)),
        ]);
        let body = self.new_scope(Scope {
            parent: scope,
            node: node_id,
            kind: ScopeKind::MiBody { total, next: 0, completed: 0, items },
            vars,
        });
        for _ in 0..first_batch {
            self.spawn_item(step, body);
        }
        Ok(())
    }

    fn spawn_item(&mut self, step: &mut Step<'_, '_>, body: ScopeId) {
        let Some(Scope { node, kind: ScopeKind::MiBody { next, items, .. }, .. }) = self.scope_mut(body) else {
            return;
        };
        let index = *next;
        *next += 1;
        let node = *node;
        let item = items.as_ref().and_then(|i| i.get(index as usize).cloned());
        let mut vars = Map::from_iter([("loopCounter".to_owned(), Value::from(index))]);
        let multi = step.def.node(node).multi.as_ref();
        if let (Some(var), Some(item)) = (multi.and_then(|m| m.element_variable.as_ref()), item) {
            vars.insert(var.clone(), item);
        }
        if let Some(mi) = multi {
            crate::mi_output::item_output(mi, &mut vars);
        }
        let scope = self.new_scope(Scope { parent: Some(body), node, kind: ScopeKind::MiItem { index }, vars });
        let t = self.spawn(node, Some(scope));
        step.ready.push_back(t);
    }

    /// The multi-instance activity is done: a token at it leaves through its outgoing flows.
    fn leave_after_multi_instance(&mut self, step: &mut Step<'_, '_>, token: u32) -> Result<(), Fail> {
        let Token { node: node_id, scope, .. } = self.tokens[&token].clone();
        let def = step.def;
        self.notify(step, &def.node(node_id).listeners, ListenerEvent::End, scope)?;
        if self.activity_completed(step, node_id, scope) {
            self.drop_token(token);
            return self.check_scope_done(step, scope);
        }
        let targets: Vec<_> = def.node(node_id).outgoing.iter().map(|f| def.flow(*f)).collect();
        self.drop_token(token);
        let mut any = false;
        for flow in targets {
            if match &flow.condition {
                Some(c) => self.eval_bool(c, scope)?,
                None => true,
            } {
                any = true;
                let t = self.spawn(flow.target, scope);
                step.ready.push_back(t);
            }
        }
        if any { Ok(()) } else { self.check_scope_done(step, scope) }
    }

    /// Completes `scope` when nothing runs in it any more, and so on upwards.
    pub(crate) fn check_scope_done(&mut self, step: &mut Step<'_, '_>, scope: Option<ScopeId>) -> Result<(), Fail> {
        let Some(id) = scope else { return Ok(()) };
        if self.scope_busy(id) || self.inclusive_waiting(step.def, scope) {
            return Ok(());
        }
        self.joins.retain(|j| j.scope != Some(id));
        let Some(done) = self.drop_scope(id) else { return Ok(()) };
        self.scope_completed(step, id, done.node, done.parent);
        match done.kind {
            ScopeKind::SubProcess | ScopeKind::MiBody { .. } => {
                // The subprocess (or the whole multi-instance activity) has finished.
                let t = self.spawn(done.node, done.parent);
                match done.kind {
                    ScopeKind::MiBody { .. } => self.leave_after_multi_instance(step, t),
                    _ => self.leave(step, t),
                }
            }
            ScopeKind::MiItem { index } => {
                let body = done.parent.and_then(|b| self.scopes.get(&b)).map(|b| (b.node, b.parent));
                if let Some(mi) = body.and_then(|(node, _)| step.def.node(node).multi.as_ref()) {
                    let outer = body.and_then(|(_, outer)| outer);
                    self.collect_output(mi, outer, index, &done.vars);
                }
                self.item_done(step, done.parent)
            }
        }
    }

    fn item_done(&mut self, step: &mut Step<'_, '_>, body: Option<ScopeId>) -> Result<(), Fail> {
        let Some(body_id) = body else { return Ok(()) };
        let node = self.scopes[&body_id].node;
        let mi = step.def.node(node).multi.clone();
        self.index.scope_vars_changed(body_id);
        let (total, next, completed) = match self.scope_mut(body_id) {
            Some(Scope { kind: ScopeKind::MiBody { total, next, completed, .. }, vars, .. }) => {
                *completed += 1;
                let active = *next - *completed;
                vars.insert("nrOfCompletedInstances".into(), Value::from(*completed));
                vars.insert("nrOfActiveInstances".into(), Value::from(active));
                (*total, *next, *completed)
            }
            _ => return Ok(()),
        };
        let early = match mi.as_ref().and_then(|m| m.completion_condition.as_ref()) {
            Some(cond) => self.eval_bool(cond, Some(body_id))?,
            None => false,
        } || match mi.as_ref().and_then(|m| m.loop_while.as_ref()) {
            Some(condition) => !self.eval_bool(condition, Some(body_id))?,
            None => false,
        };
        if early && completed < total {
            // Cancel the items still running; the body completes once they are gone.
            self.remove_scope_trees(step, self.child_scopes(body_id));
            if let Some(Scope { kind: ScopeKind::MiBody { next, .. }, .. }) = self.scope_mut(body_id) {
                *next = total;
            }
        } else if next < total && mi.is_some_and(|m| m.sequential) {
            self.spawn_item(step, body_id);
            return Ok(());
        }
        self.check_scope_done(step, Some(body_id))
    }

    /// The scopes directly in `parent`.
    fn child_scopes(&self, parent: ScopeId) -> Vec<ScopeId> {
        self.scopes.iter().filter(|(_, s)| s.parent == Some(parent)).map(|(id, _)| *id).collect()
    }

    /// Removes scopes with everything in them, canceling their open tasks: in one pass over
    /// the state however many there are (the items still running when a multi-instance
    /// completes early may be thousands).
    pub(crate) fn remove_scope_trees(&mut self, step: &mut Step<'_, '_>, roots: Vec<ScopeId>) {
        let mut children: BTreeMap<ScopeId, Vec<ScopeId>> = BTreeMap::new();
        for (id, scope) in &self.scopes {
            if let Some(parent) = scope.parent {
                children.entry(parent).or_default().push(*id);
            }
        }
        let mut doomed = BTreeSet::new();
        let mut todo = roots;
        while let Some(id) = todo.pop() {
            if doomed.insert(id) {
                todo.extend(children.get(&id).into_iter().flatten());
            }
        }
        let inside = |s: Option<ScopeId>| s.is_some_and(|s| doomed.contains(&s));
        self.cancel_open(step, inside);
        self.joins.retain(|j| !inside(j.scope));
        self.remove_flow(|t| inside(t.scope), |id| doomed.contains(&id));
    }

    /// A terminate end event: ends its subprocess at once, or at the top level the instance.
    fn terminate(&mut self, step: &mut Step<'_, '_>, scope: Option<ScopeId>) -> Result<(), Fail> {
        self.clear_scope(step, scope);
        self.check_scope_done(step, scope)
    }

    /// Ends everything that runs in `scope` (the whole instance for none), canceling its open
    /// tasks and timers; the scope itself stays.
    pub(crate) fn clear_scope(&mut self, step: &mut Step<'_, '_>, scope: Option<ScopeId>) {
        match scope {
            None => {
                self.cancel_open(step, |_| true);
                self.joins.clear();
                self.remove_flow(|_| true, |_| true);
                step.ready.clear();
            }
            Some(id) => {
                self.remove_scope_trees(step, self.child_scopes(id));
                self.cancel_open(step, |s| s == Some(id));
                self.joins.retain(|j| j.scope != Some(id));
                self.remove_flow(|t| t.scope == Some(id), |_| false);
            }
        }
    }
}
