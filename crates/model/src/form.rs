//! Form properties (`flowable:formProperty`, Activiti's and Camunda's): the fields a person
//! fills in to complete a user task, each bound to a process variable with a type. Flowable
//! applies them through its form service only (completing through the task API ignores them),
//! so the engine keeps them for the clients that draw forms, the console among them.

/// One field of a task's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormProperty {
    /// Its id: the variable it reads and writes unless `variable` names another.
    pub id: String,
    /// What a person sees as its label.
    pub name: Option<String>,
    /// Its type.
    pub kind: FormKind,
    /// A value must be given.
    pub required: bool,
    /// Its variable's value is shown.
    pub readable: bool,
    /// A person may set it.
    pub writable: bool,
    /// The variable behind it, when not its id.
    pub variable: Option<String>,
    /// The value shown when its variable has none.
    pub default: Option<String>,
}

impl FormProperty {
    /// A readable, writable, optional property of this id and type, with nothing else set: a
    /// field of a form made from a process's variables.
    #[must_use]
    pub fn plain(id: &str, kind: FormKind) -> FormProperty {
        FormProperty {
            id: id.to_owned(),
            name: None,
            kind,
            required: false,
            readable: true,
            writable: true,
            variable: None,
            default: None,
        }
    }

    /// The variable it reads and writes.
    #[must_use]
    pub fn variable(&self) -> &str {
        self.variable.as_deref().unwrap_or(&self.id)
    }

    /// Its label: its name, else its id.
    #[must_use]
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// The type of a form property, as Flowable names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormKind {
    /// `string`.
    Text,
    /// `long`: a whole number.
    Long,
    /// `double`: a number.
    Double,
    /// `boolean`.
    Boolean,
    /// `date`, in its `datePattern` (Flowable's default `dd/MM/yyyy` when none).
    Date(Option<String>),
    /// `enum`: one of these values (id, name).
    Enum(Vec<(String, String)>),
    /// A type a client of Flowable registered (Activiti Explorer's `user`, `month`, …): text.
    Other(String),
}

impl FormKind {
    /// Flowable's name of the type.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            FormKind::Text => "string",
            FormKind::Long => "long",
            FormKind::Double => "double",
            FormKind::Boolean => "boolean",
            FormKind::Date(_) => "date",
            FormKind::Enum(_) => "enum",
            FormKind::Other(name) => name,
        }
    }
}
