//! The graph IR: nodes and flows in arenas, addressed by index.

use crate::diagram::Diagram;
use crate::event::Trigger;
use crate::template::Template;
use crate::timer::TimerDef;
use flowstone_expr::Expression;

/// How deep subprocesses may nest, in BPMN and pipeline trees alike: the engine walks a
/// nesting level by level, and a template that includes itself would never end.
pub const MAX_SUBPROCESS_DEPTH: usize = 16;

/// Index of a node in [`Definition::nodes`].
pub type NodeId = u32;
/// Index of a flow in [`Definition::flows`].
pub type FlowId = u32;

/// One executable process, ready to run.
#[derive(Debug, Clone)]
pub struct Definition {
    /// The process id (`<process id=…>`), which is the model key.
    pub key: String,
    /// The process name, if given.
    pub name: Option<String>,
    /// All nodes, of the process and of every embedded subprocess.
    pub nodes: Vec<Node>,
    /// All sequence flows.
    pub flows: Vec<Flow>,
    /// The none start event of the top-level process (its timer start event when it has no
    /// none start event).
    pub start: NodeId,
    /// The timer start event of the top-level process: each firing of its timer starts an
    /// instance there.
    pub timer_start: Option<NodeId>,
    /// The variable the start event's `initiator` attribute names: it holds who started the
    /// instance (null when nobody signed in).
    pub initiator: Option<String>,
    /// The form properties of its start event: what a start form asks for.
    pub start_form: Vec<crate::form::FormProperty>,
    /// Output-parameter template: evaluated over the final variables into the process outputs.
    pub outputs: Vec<OutputParam>,
    /// Variables every instance starts with unless started with a value of its own: the
    /// constants of a pipeline tree. Their values may refer to each other; they are evaluated
    /// when an instance starts, each once the ones it refers to are known.
    pub constants: Vec<(String, Template)>,
    /// Diagram geometry.
    pub diagram: Diagram,
    /// The expressions run when an instance starts and ends (the process's execution
    /// listeners).
    pub listeners: Vec<Listener>,
    /// The event subprocesses, of the process and of every embedded subprocess: each scope
    /// that starts looks for its own.
    pub event_subprocesses: Vec<NodeId>,
    /// The message and signal start events of the top-level process: their events start
    /// instances.
    pub event_starts: Vec<NodeId>,
}

impl Definition {
    /// The event subprocesses directly in `container` (a subprocess node; none: the process).
    pub fn event_subprocesses_in(&self, container: Option<NodeId>) -> impl Iterator<Item = NodeId> + '_ {
        self.event_subprocesses.iter().copied().filter(move |n| self.node(*n).scope == container)
    }

    /// The node at `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    /// The flow at `id`.
    pub fn flow(&self, id: FlowId) -> &Flow {
        &self.flows[id as usize]
    }

    /// The error (with `escalation`: escalation) boundary events attached to an activity.
    pub fn error_boundaries(&self, activity: NodeId, escalation: bool) -> impl Iterator<Item = (NodeId, Option<&str>)> {
        self.nodes.iter().enumerate().filter_map(move |(i, n)| match &n.kind {
            NodeKind::ErrorBoundary { attached_to, code, escalation: e, .. }
                if *attached_to == activity && *e == escalation =>
            {
                Some((i as NodeId, code.as_deref()))
            }
            _ => None,
        })
    }

    /// The handler of `activity`'s compensation boundary event, if it has one.
    pub fn compensation_handler(&self, activity: NodeId) -> Option<NodeId> {
        self.node(activity).boundaries.iter().find_map(|b| match self.node(*b).kind {
            NodeKind::CompensationBoundary { handler, .. } => Some(handler),
            _ => None,
        })
    }

    /// Finds a node by its element id.
    pub fn node_by_element(&self, element: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.id == element).map(|i| i as NodeId)
    }
}

/// One named output of a process, computed when it ends.
#[derive(Debug, Clone)]
pub struct OutputParam {
    /// The output's name.
    pub name: String,
    /// Its value, over the final variables.
    pub value: Expression,
}

/// One flow node.
#[derive(Debug, Clone)]
pub struct Node {
    /// The element id from the model.
    pub id: String,
    /// The element name, if any.
    pub name: Option<String>,
    /// What the node does.
    pub kind: NodeKind,
    /// The subprocess that contains it; `None` at the top level.
    pub scope: Option<NodeId>,
    /// Flows arriving here.
    pub incoming: Vec<FlowId>,
    /// Flows leaving here, in document order.
    pub outgoing: Vec<FlowId>,
    /// Multi-instance settings, when the activity runs once per item or count.
    pub multi: Option<MultiInstance>,
    /// Line of the element in the source, for run-time messages (0 for JSON sources).
    pub line: u32,
    /// What a pipeline-tree activity allows when it fails or is operated on.
    pub options: Option<Box<ActivityOptions>>,
    /// The boundary events attached to it that wait for an event (timers, messages,
    /// signals, conditions) or compensate it: kept here because every run of an activity
    /// sets or records them.
    pub boundaries: Vec<NodeId>,
    /// The expressions run as a token reaches and leaves it (execution listeners), and as its
    /// user task is created and completed (task listeners).
    pub listeners: Vec<Listener>,
}

/// An execution or task listener whose work is an expression (`expression="${…}"`): it may
/// read variables and set them with `execution.setVariable(…)`.
#[derive(Debug, Clone)]
pub struct Listener {
    /// When it runs.
    pub event: ListenerEvent,
    /// What it runs.
    pub expression: Expression,
}

/// When a listener runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerEvent {
    /// A token reached the element, or the instance started.
    Start,
    /// A token left the element, or the instance completed.
    End,
    /// The user task was created.
    Create,
    /// The user task was completed.
    Complete,
}

/// The flags of a pipeline-tree activity (bk-sops' ServiceActivity and SubProcess).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivityOptions {
    /// A failure does not stop the process: the activity fails forward.
    pub error_ignorable: bool,
    /// An operator may skip it once failed.
    pub skippable: bool,
    /// An operator may retry it once failed.
    pub retryable: bool,
    /// A run that takes longer is failed by the engine (bk-sops' `timeout_config`).
    pub timeout: Option<NodeTimeout>,
    /// A failed run is retried by the engine (bk-sops' `auto_retry`).
    pub auto_retry: Option<AutoRetry>,
}

/// How long a component node may run before the engine fails it, and whether it then goes
/// on past it (bk-sops' `forced_fail_and_skip`) or waits for an operator (`forced_fail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeTimeout {
    /// Seconds from the start of a run.
    pub seconds: u64,
    /// Skip the node once failed, so that the process goes on.
    pub then_skip: bool,
}

/// How often and how soon the engine runs a failed component node again before it waits
/// for an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoRetry {
    /// Seconds between the failure and the next run.
    pub interval: u64,
    /// How many runs at most the engine starts again.
    pub times: u32,
}

impl Node {
    /// Whether a run of this node is a task record of the platform API (not events, gateways
    /// or subprocess containers).
    pub fn is_task_like(&self) -> bool {
        matches!(
            self.kind,
            NodeKind::Task
                | NodeKind::ExpressionTask { .. }
                | NodeKind::JavaScriptTask { .. }
                | NodeKind::StoneTask(_)
                | NodeKind::UserTask(_)
        )
    }

    /// The name to show for it: the element name, else its id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// What a node does when a token reaches it.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// A none start event.
    StartEvent,
    /// An end event.
    EndEvent(EndKind),
    /// Takes the first outgoing flow whose condition holds, else the default flow.
    ExclusiveGateway {
        /// The flow taken when no condition holds.
        default: Option<FlowId>,
    },
    /// An inclusive gateway: splits to every flow whose condition holds (the default when
    /// none does); joins once no token can reach it any more.
    InclusiveGateway {
        /// The flow taken when no condition holds.
        default: Option<FlowId>,
    },
    /// An event-based gateway: every catch event after it waits at once, and the first whose
    /// event comes takes the flow on.
    EventGateway,
    /// Forks to every outgoing flow; joins by waiting for every incoming flow.
    ParallelGateway,
    /// `task` / `manualTask`: passes through.
    Task,
    /// A service task whose work is an expression, its value stored in a variable.
    ExpressionTask {
        /// The expression evaluated.
        expression: Expression,
        /// The variable that receives its value.
        result_variable: Option<String>,
        /// A `<scriptTask>` in an expression language (its record's kind), not a service task.
        script: bool,
    },
    /// A `<scriptTask>` in JavaScript, run in a sandboxed interpreter within the instance's
    /// script bounds.
    JavaScriptTask {
        /// The script, parsed at deploy.
        source: String,
        /// The variable that receives the value of its last statement.
        result_variable: Option<String>,
    },
    /// A service task run by a stone.
    StoneTask(StoneSpec),
    /// A wait state completed by a person.
    UserTask(Box<UserTaskSpec>),
    /// An embedded subprocess; its own nodes have `scope` set to this node.
    SubProcess {
        /// Its none start event.
        start: NodeId,
        /// Variables of its own scope, evaluated in the enclosing scope when it starts (a
        /// pipeline-tree subprocess's constants).
        locals: Vec<(String, Template)>,
    },
    /// A pipeline-tree parallel gateway (every outgoing flow) or conditional parallel gateway
    /// (every flow whose condition holds, else the default): its converge gateway waits for
    /// as many tokens as it sent.
    Fork {
        /// Only the flows whose condition holds.
        conditional: bool,
        /// The flow taken when no condition holds.
        default: Option<FlowId>,
        /// The converge gateway its branches meet at.
        converge: NodeId,
    },
    /// A pipeline-tree converge gateway: after a fork, waits for every token it sent; reached
    /// from exclusive branches only, lets each token through.
    Converge,
    /// An error (or escalation) boundary event: when the activity it is attached to (or
    /// anything inside it) throws a matching BPMN error, the activity is canceled and the flow
    /// goes on from here; a non-interrupting escalation one leaves the activity running.
    ErrorBoundary {
        /// The activity it is attached to.
        attached_to: NodeId,
        /// The error (escalation) code it catches; `None` catches every one.
        code: Option<String>,
        /// It catches escalations, not errors.
        escalation: bool,
        /// Whether it cancels the activity (always for an error).
        interrupting: bool,
    },
    /// A timer boundary event: when its timer fires while the activity it is attached to
    /// runs, the flow goes on from here; an interrupting one cancels the activity first.
    TimerBoundary {
        /// The activity it is attached to.
        attached_to: NodeId,
        /// When it fires.
        timer: Box<TimerDef>,
        /// Whether it cancels the activity (`cancelActivity`, true unless the model says).
        interrupting: bool,
    },
    /// An intermediate timer catch event: the token waits here until the timer fires.
    TimerCatch(Box<TimerDef>),
    /// A timer start event: an instance started by its timer begins here (one started by a
    /// request begins at the none start event, if there is one); in an event subprocess, its
    /// timer starts the event subprocess while the scope around it runs.
    TimerStart(Box<TimerDef>),
    /// The error (or escalation) start event of an event subprocess: a BPMN error thrown in
    /// the scope around the event subprocess (and caught nowhere closer) starts it there.
    ErrorStart {
        /// The error (escalation) code it catches; `None` catches every one.
        code: Option<String>,
        /// It catches escalations, not errors.
        escalation: bool,
    },
    /// An intermediate escalation throw event: the escalation reaches the closest boundary
    /// event or event subprocess around that catches it (uncaught, nothing happens), and the
    /// token goes on unless what caught it interrupts.
    EscalationThrow {
        /// Its escalation code.
        code: Option<String>,
    },
    /// An intermediate message or signal catch event, or a receive task: the token waits
    /// until its message or signal comes (a receive task without a message: until someone
    /// triggers it).
    EventCatch {
        /// What it waits for; none for a receive task that waits for a trigger.
        trigger: Option<Box<Trigger>>,
        /// A `<receiveTask>` (its record's kind), not an intermediate catch event.
        receive_task: bool,
    },
    /// A message or signal boundary event: when its event comes while the activity it is
    /// attached to runs, the flow goes on from here; an interrupting one cancels the
    /// activity first, a non-interrupting one goes on waiting.
    EventBoundary {
        /// The activity it is attached to.
        attached_to: NodeId,
        /// What it waits for.
        trigger: Box<Trigger>,
        /// Whether it cancels the activity (`cancelActivity`, true unless the model says).
        interrupting: bool,
    },
    /// A message or signal start event: at the top level, its event starts an instance
    /// there; in an event subprocess, starts the event subprocess while the scope around it
    /// runs.
    EventStart(Box<Trigger>),
    /// An intermediate throw event or a send task: sends its message or signal and goes on
    /// (a none intermediate event sends nothing).
    Throw {
        /// What it sends.
        trigger: Option<Box<Trigger>>,
        /// A `<sendTask>` (its record's kind), not an intermediate throw event.
        send_task: bool,
    },
    /// A compensation boundary event: once the activity it is attached to has completed, a
    /// compensation thrown in the activity's scope runs `handler` (the activity marked
    /// `isForCompensation` that an association links it to).
    CompensationBoundary {
        /// The activity it is attached to.
        attached_to: NodeId,
        /// The activity that undoes it.
        handler: NodeId,
    },
    /// An intermediate compensation throw event: runs the handlers of the activities of its
    /// scope that completed (or of `activity` only), newest first, one after another.
    CompensationThrow {
        /// The one activity to compensate (`activityRef`); none: every one.
        activity: Option<NodeId>,
        /// The token goes on once the handlers are done (`waitForCompletion`, true unless
        /// the model says), else at once.
        wait: bool,
    },
    /// A link catch event: where the flow of the link throw events naming it goes on (the
    /// model gives each throw a flow to it).
    LinkCatch,
    /// A call activity: starts the process it names as an instance of its own and waits for
    /// it to end.
    Call(Box<crate::call::CallSpec>),
    /// An event subprocess (`triggeredByEvent`): no flow leads in or out; the event of its
    /// start event starts it in the scope around it, which it ends first when interrupting.
    EventSubProcess {
        /// Its start event (a timer or error start event).
        start: NodeId,
        /// Whether it ends everything else in its scope when it starts (`isInterrupting` of
        /// its start event, true unless the model says; an error start always interrupts).
        interrupting: bool,
    },
}

/// How an end event ends its scope.
#[derive(Debug, Clone, PartialEq)]
pub enum EndKind {
    /// Consumes the token.
    None,
    /// Ends the whole instance at once.
    Terminate,
    /// Throws a BPMN error with this code: caught by an error boundary event of an enclosing
    /// subprocess, else the instance fails.
    Error {
        /// The `errorCode` of the referenced `<error>`, if any.
        code: Option<String>,
    },
    /// Sends a message or signal, then consumes the token.
    Throw(Box<Trigger>),
    /// Compensates as [`NodeKind::CompensationThrow`] does (waiting for its handlers), then
    /// consumes the token.
    Compensation {
        /// The one activity to compensate (`activityRef`); none: every one.
        activity: Option<NodeId>,
    },
    /// Throws an escalation with this code (as [`NodeKind::EscalationThrow`]), then
    /// consumes the token.
    Escalation {
        /// Its escalation code.
        code: Option<String>,
    },
}

/// Which stone runs a service task, and under which namespace its outputs are kept.
#[derive(Debug, Clone)]
pub struct StoneSpec {
    /// The stone (executor type, topic).
    pub stone: String,
    /// The namespace of its params and outputs among the process variables.
    pub namespace: String,
    /// A pipeline-tree component's inputs (its `data`), rendered when it starts: they are its
    /// params. None for a BPMN service task, whose params are the variables it sees.
    pub inputs: Option<Vec<(String, Template)>>,
    /// Outputs copied to variables when it succeeds: (output key, variable).
    pub outputs: Vec<(String, String)>,
    /// Whether a rollback, cancel or delete of its process sends it that action. A stone
    /// (`flowstone:stone`, a pipeline-tree component) always undoes its work; a Flowable
    /// external-worker task only when its model says an executor of the compensating actions
    /// exists (`flowstone:compensate="true"`), since Flowable's workers know only "do this".
    pub compensated: bool,
}

impl StoneSpec {
    /// A stone task with no inputs or outputs of its own (a BPMN service task).
    pub fn named(stone: &str, namespace: &str) -> StoneSpec {
        StoneSpec {
            stone: stone.to_owned(),
            namespace: namespace.to_owned(),
            inputs: None,
            outputs: Vec::new(),
            compensated: true,
        }
    }
}

/// The user-task attributes kept from the model.
#[derive(Debug, Clone, Default)]
pub struct UserTaskSpec {
    /// The element's `name` when it holds `${…}`: evaluated when the task is created.
    pub name: Option<Expression>,
    /// The element's `documentation`, evaluated as the task's description.
    pub description: Option<Expression>,
    /// `assignee`.
    pub assignee: Option<Expression>,
    /// `owner`.
    pub owner: Option<Expression>,
    /// `candidateUsers`, comma separated.
    pub candidate_users: Option<Expression>,
    /// `candidateGroups`, comma separated.
    pub candidate_groups: Option<Expression>,
    /// `formKey`.
    pub form_key: Option<String>,
    /// Its form properties.
    pub form: Vec<crate::form::FormProperty>,
    /// `priority`.
    pub priority: Option<Expression>,
    /// `dueDate`.
    pub due_date: Option<Expression>,
    /// `category`.
    pub category: Option<String>,
}

/// Multi-instance loop characteristics, or a standard loop's (one run after another while a
/// condition holds).
#[derive(Debug, Clone)]
pub struct MultiInstance {
    /// One instance after another, or all at once.
    pub sequential: bool,
    /// How many instances (`loopCardinality`).
    pub cardinality: Option<Expression>,
    /// The items to run over (`collection` / `loopDataInputRef`).
    pub collection: Option<Expression>,
    /// The variable each instance sees its item in.
    pub element_variable: Option<String>,
    /// Ends the loop early when it holds after an instance completes.
    pub completion_condition: Option<Expression>,
    /// Where each instance's result goes (`loopDataOutputRef` with `outputDataItem`).
    pub output: Option<MiOutput>,
    /// A standard loop's `loopCondition`: the activity runs again, one run after another,
    /// while this holds after a run (at most `cardinality` times, its `loopMaximum`).
    pub loop_while: Option<Expression>,
    /// A standard loop that tests before (`testBefore`): the condition is read before the
    /// first run too, and the activity does not run when it does not hold.
    pub test_before: bool,
}

/// A multi-instance activity's output collection: the list variable that gathers, in item
/// order, each instance's value of its output item variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiOutput {
    /// The list variable, set in the scope around the activity.
    pub collection: String,
    /// The variable each instance sets its result in (its own, unset when it starts).
    pub item: String,
}

/// A sequence flow.
#[derive(Debug, Clone)]
pub struct Flow {
    /// The element id (generated as `flow-N` when the model has none).
    pub id: String,
    /// Where it starts.
    pub source: NodeId,
    /// Where it leads.
    pub target: NodeId,
    /// Taken only when this holds.
    pub condition: Option<Expression>,
}
