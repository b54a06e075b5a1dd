//! Call activities: a process that starts another deployed process as an instance of its own,
//! waits for it to end, and takes variables back from it.

use flowstone_expr::Expression;

/// What a `<callActivity>` starts and what passes between the two instances.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSpec {
    /// The called process's key (`calledElement`), an expression when it holds `${…}`.
    pub called: Expression,
    /// Which version of the key.
    pub binding: Binding,
    /// Variables set in the child when it starts.
    pub inputs: Vec<Mapping>,
    /// Variables set in the caller when the child ends.
    pub outputs: Vec<Mapping>,
    /// The child starts with every variable the call activity sees
    /// (`flowable:inheritVariables`, `<camunda:in variables="all"/>`).
    pub all_in: bool,
    /// The caller takes every variable of the child (`<camunda:out variables="all"/>`).
    pub all_out: bool,
    /// The child's business key, evaluated in the caller.
    pub business_key: Option<Expression>,
    /// The child carries the caller's business key (`flowable:inheritBusinessKey`,
    /// `<camunda:in businessKey="#{execution.processBusinessKey}"/>`).
    pub inherit_business_key: bool,
}

/// Which version of the called key a call activity starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// The newest version when the call starts (the default of every engine).
    Latest,
    /// The version deployed with the caller, else the newest (`camunda:calledElementBinding=
    /// "deployment"`, `flowable:sameDeployment="true"`).
    Deployment,
    /// This version (`camunda:calledElementBinding="version"` with `calledElementVersion`).
    Version(i64),
}

/// One variable passed between caller and child.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// Where the value comes from, read in the instance it leaves.
    pub source: Source,
    /// The variable it is set as in the instance it reaches.
    pub target: String,
}

/// The value of a [`Mapping`].
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A variable of this name (absent: the target is not set).
    Variable(String),
    /// An expression (`sourceExpression`).
    Expression(Expression),
}
