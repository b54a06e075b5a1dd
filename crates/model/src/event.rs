//! Messages, signals and conditions: what a catching event waits for and what a throwing
//! event sends.

use flowstone_expr::Expression;

/// A message or a signal, as an event of a model names it.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A message: it reaches one waiting event, found by its name and correlation key.
    Message {
        /// The message's name (the `name` of the `<message>` the event refers to).
        name: String,
        /// Over the variables the event sees: a message reaches a waiting event only when it
        /// carries the key's value, and a thrown message carries it.
        correlation: Option<Expression>,
    },
    /// A signal: it reaches every event waiting for its name.
    Signal {
        /// The signal's name.
        name: String,
        /// Thrown, it reaches only the instance that throws it (`flowable:scope="processInstance"`).
        instance_only: bool,
    },
    /// A condition over the instance's variables: the event comes when it holds, checked
    /// whenever the instance has moved (and so whenever its variables may have changed).
    Condition {
        /// Comes when this holds.
        condition: Expression,
    },
}

impl Trigger {
    /// The event kind's name: `message` or `signal`.
    pub fn kind(&self) -> EventKind {
        match self {
            Trigger::Message { .. } => EventKind::Message,
            Trigger::Signal { .. } => EventKind::Signal,
            Trigger::Condition { .. } => EventKind::Conditional,
        }
    }

    /// The message's or signal's name (a condition has none).
    pub fn name(&self) -> &str {
        match self {
            Trigger::Message { name, .. } | Trigger::Signal { name, .. } => name,
            Trigger::Condition { .. } => "",
        }
    }
}

/// Whether an event waits for a message, a signal or a condition (or, a receive task without
/// a message, a trigger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// One waiting event gets it.
    Message,
    /// Every waiting event gets it.
    Signal,
    /// A receive task without a message: someone names its execution.
    Trigger,
    /// A condition over the instance's own variables: nothing from outside delivers it.
    Conditional,
}

impl EventKind {
    /// Every kind, for parsing.
    pub const ALL: [EventKind; 4] = [EventKind::Message, EventKind::Signal, EventKind::Trigger, EventKind::Conditional];

    /// Its stored name (Flowable's `eventType`).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Message => "message",
            EventKind::Signal => "signal",
            EventKind::Trigger => "trigger",
            EventKind::Conditional => "conditional",
        }
    }

    /// The kind of this name.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_read_back_from_their_names() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.name()), Some(kind));
        }
        assert_eq!(EventKind::parse("timer"), None);
    }
}
