//! The activity history of instances: every task record and every pass through an event or
//! a gateway, as Flowable's historic activity instances show them.

/// One run of one element of an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    /// The task record's id, or the passage's.
    pub id: String,
    /// The instance.
    pub instance_id: String,
    /// The instance's model.
    pub model_id: String,
    /// The model element.
    pub element: String,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// `userTask`, `serviceTask`, `startEvent`, `exclusiveGateway`, …
    pub kind: String,
    /// When it began (milliseconds since the epoch).
    pub start_time: i64,
    /// When it ended; a pass ends when it begins.
    pub end_time: Option<i64>,
    /// The user task it opened, if any.
    pub user_task_id: Option<String>,
    /// Who works on that user task.
    pub assignee: Option<String>,
}

/// Filters of the activity history; every one given must hold.
#[derive(Debug, Clone, Default)]
pub struct ActivityQuery {
    /// Only this activity.
    pub id: Option<String>,
    /// Of this element.
    pub element: Option<String>,
    /// With this name.
    pub name: Option<String>,
    /// Of this kind.
    pub kind: Option<String>,
    /// Of this instance.
    pub instance_id: Option<String>,
    /// Of instances of this model.
    pub model_id: Option<String>,
    /// Ended (`Some(true)`) or still running (`Some(false)`).
    pub finished: Option<bool>,
    /// Whose user task is assigned to.
    pub assignee: Option<String>,
    /// Of models deployed for this tenant.
    pub tenant_id: Option<String>,
    /// Of models deployed for a tenant like.
    pub tenant_id_like: Option<String>,
    /// Of models deployed for no tenant.
    pub without_tenant: bool,
    /// The order.
    pub order: ActivityOrder,
    /// Largest first.
    pub descending: bool,
}

/// What the activity history sorts on; ties go by id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ActivityOrder {
    /// By id.
    Id,
    /// By element.
    Element,
    /// By name.
    Name,
    /// By kind.
    Kind,
    /// By start time.
    #[default]
    StartTime,
    /// By end time.
    EndTime,
    /// By how long it took.
    Duration,
    /// By instance.
    Instance,
    /// By model.
    Model,
}

impl ActivityOrder {
    /// The expression it sorts on.
    pub fn column(self) -> &'static str {
        match self {
            ActivityOrder::Id => "a.id",
            ActivityOrder::Element => "a.element",
            ActivityOrder::Name => "a.name",
            ActivityOrder::Kind => "a.kind",
            ActivityOrder::StartTime => "a.start_time",
            ActivityOrder::EndTime => "a.end_time",
            ActivityOrder::Duration => "(a.end_time - a.start_time)",
            ActivityOrder::Instance => "a.instance_id",
            ActivityOrder::Model => "i.model_id",
        }
    }
}

/// A path of execution in a running instance, as Flowable's executions show it: the
/// instance itself, and under it one per open activity.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRow {
    /// The instance's id for the instance's own execution, else the open task record's.
    pub id: String,
    /// The instance, for an open activity's execution.
    pub parent_id: Option<String>,
    /// The element an open activity's execution waits in.
    pub activity: Option<String>,
    /// The instance.
    pub instance_id: String,
    /// The instance's model.
    pub model_id: String,
}

/// Filters of the executions; every one given must hold.
#[derive(Debug, Clone, Default)]
pub struct ExecutionQuery {
    /// Only this execution.
    pub id: Option<String>,
    /// Waiting in this element.
    pub activity: Option<String>,
    /// Of this instance.
    pub instance_id: Option<String>,
    /// Children of this execution.
    pub parent_id: Option<String>,
    /// Of instances of this model.
    pub model_id: Option<String>,
    /// Of instances of models with this key.
    pub model_key: Option<String>,
    /// Waiting for the event of this kind (`message`, `signal`) and name.
    pub event: Option<(String, String)>,
    /// Sort by model (`true`) instead of by instance.
    pub by_model: bool,
    /// Largest first.
    pub descending: bool,
}
