//! Who works on a user task, and the rules of claiming, delegating, resolving and completing it
//! (Flowable's), the same whichever dialect asks.
//!
//! The runtime applies a [`TaskChange`] to a task's [`Assignment`] as it stands when the change
//! is committed, so two changes of one task never both pass a rule that only one of them may.

use crate::instance::EngineError;

/// `pending` while a delegate works on the task, `resolved` once they gave it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delegation {
    /// The delegate has it; the owner gets it back when they resolve it.
    Pending,
    /// The delegate gave it back.
    Resolved,
}

impl Delegation {
    /// Its name in Flowable's API and in the store.
    pub fn text(self) -> &'static str {
        match self {
            Delegation::Pending => "pending",
            Delegation::Resolved => "resolved",
        }
    }

    /// The delegation state a name stands for.
    pub fn parse(text: &str) -> Option<Delegation> {
        match text {
            "pending" => Some(Delegation::Pending),
            "resolved" => Some(Delegation::Resolved),
            _ => None,
        }
    }
}

/// The people of a user task that the rules read and change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// The task's id, for messages.
    pub task: String,
    /// Who works on it.
    pub assignee: Option<String>,
    /// Who is responsible for it.
    pub owner: Option<String>,
    /// Whether it is delegated.
    pub delegation: Option<Delegation>,
    /// When its assignee took it.
    pub claim_time: Option<i64>,
    /// The users and groups its `candidate` links name.
    pub candidates: Candidates,
}

/// The users and groups that may claim a task nobody is assigned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidates {
    /// Candidate users.
    pub users: Vec<String>,
    /// Candidate groups.
    pub groups: Vec<String>,
}

/// Who acts on a task.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The signed-in user.
    pub user: &'a str,
    /// The groups they are a member of.
    pub groups: &'a [String],
    /// An administrator may act on any task.
    pub admin: bool,
}

/// A change to who works on a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskChange {
    /// Takes the task for a user, or (none) gives it back.
    Claim(Option<String>),
    /// Hands the task to a delegate; the owner gets it back when they resolve it.
    Delegate(String),
    /// The delegate gives the task back to its owner.
    Resolve,
    /// Ends the task (what completing it does to its process is the instance's command).
    Complete,
}

impl TaskChange {
    /// The audit event Flowable records for it, with its details.
    pub fn event(&self) -> Option<(&'static str, Vec<String>)> {
        match self {
            TaskChange::Claim(who) => Some(("Claim", vec![who.clone().unwrap_or_default()])),
            TaskChange::Delegate(to) => Some(("Delegate", vec![to.clone()])),
            TaskChange::Resolve => Some(("Resolve", Vec::new())),
            TaskChange::Complete => None,
        }
    }
}

impl Assignment {
    /// Applies `change` made by `actor` at `now`, or refuses it without a change.
    ///
    /// # Errors
    /// [`EngineError::NotYours`] when the actor may not complete or claim the task,
    /// [`EngineError::AlreadyClaimed`] for a claim of a task someone else has,
    /// [`EngineError::Delegated`] for a completion before the delegate resolved the task.
    pub fn apply(&mut self, change: &TaskChange, actor: Actor<'_>, now: i64) -> Result<(), EngineError> {
        match change {
            TaskChange::Claim(who) => {
                self.may_work(actor)?;
                if let (Some(current), Some(claimer)) = (&self.assignee, who)
                    && current != claimer
                {
                    return Err(EngineError::AlreadyClaimed(self.task.clone()));
                }
                self.claim_time = who.as_ref().map(|_| now);
                self.assignee.clone_from(who);
            }
            TaskChange::Delegate(to) => {
                if self.owner.is_none() {
                    self.owner.clone_from(&self.assignee);
                }
                self.assignee = Some(to.clone());
                self.delegation = Some(Delegation::Pending);
            }
            TaskChange::Resolve => {
                self.delegation = Some(Delegation::Resolved);
                self.assignee.clone_from(&self.owner);
            }
            TaskChange::Complete => {
                self.may_work(actor)?;
                if self.delegation == Some(Delegation::Pending) {
                    return Err(EngineError::Delegated(self.task.clone()));
                }
            }
        }
        Ok(())
    }

    /// Whether `actor` may complete or claim the task: its assignee, its owner, a candidate
    /// while nobody is assigned, anyone when it names nobody, or an administrator.
    fn may_work(&self, actor: Actor<'_>) -> Result<(), EngineError> {
        let me = Some(actor.user);
        let c = &self.candidates;
        let candidate = c.users.iter().any(|u| u == actor.user) || c.groups.iter().any(|g| actor.groups.contains(g));
        let nobodys = self.assignee.is_none() && self.owner.is_none() && c.users.is_empty() && c.groups.is_empty();
        let allowed = actor.admin
            || self.assignee.as_deref() == me
            || self.owner.as_deref() == me
            || (self.assignee.is_none() && candidate)
            || nobodys;
        if allowed {
            Ok(())
        } else {
            Err(EngineError::NotYours { user: actor.user.to_owned(), task: self.task.clone() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(assignee: Option<&str>, owner: Option<&str>) -> Assignment {
        Assignment {
            task: "t".into(),
            assignee: assignee.map(str::to_owned),
            owner: owner.map(str::to_owned),
            ..Assignment::default()
        }
    }

    fn user(name: &str) -> Actor<'_> {
        Actor { user: name, groups: &[], admin: false }
    }

    #[test]
    fn a_claim_of_a_task_someone_else_has_is_refused_and_the_same_claim_again_is_not() {
        let mut t = task(None, None);
        assert_eq!(t.apply(&TaskChange::Claim(Some("ann".into())), user("ann"), 5), Ok(()));
        assert_eq!((t.assignee.as_deref(), t.claim_time), (Some("ann"), Some(5)));
        assert_eq!(t.apply(&TaskChange::Claim(Some("ann".into())), user("ann"), 6), Ok(()));
        let admin = Actor { user: "root", groups: &[], admin: true };
        assert_eq!(
            t.apply(&TaskChange::Claim(Some("bob".into())), admin, 7),
            Err(EngineError::AlreadyClaimed("t".into())),
            "even an administrator unclaims first"
        );
        assert_eq!(t.apply(&TaskChange::Claim(None), user("ann"), 8), Ok(()));
        assert_eq!((t.assignee, t.claim_time), (None, None));
    }

    #[test]
    fn only_assignee_owner_candidates_or_an_administrator_may_claim_or_complete() {
        let mut t = task(Some("ann"), Some("olga"));
        let refused = Err(EngineError::NotYours { user: "bob".into(), task: "t".into() });
        assert_eq!(t.clone().apply(&TaskChange::Complete, user("bob"), 1), refused);
        assert_eq!(t.clone().apply(&TaskChange::Complete, user("olga"), 1), Ok(()));
        assert_eq!(t.clone().apply(&TaskChange::Complete, Actor { user: "bob", groups: &[], admin: true }, 1), Ok(()));
        t.assignee = None;
        t.owner = None;
        t.candidates.groups = vec!["ops".into()];
        let ops = ["ops".to_owned()];
        assert_eq!(
            t.clone().apply(&TaskChange::Complete, Actor { user: "bob", groups: &ops, admin: false }, 1),
            Ok(())
        );
        assert_eq!(t.clone().apply(&TaskChange::Complete, user("bob"), 1), refused);
    }

    #[test]
    fn a_delegated_task_is_resolved_by_its_delegate_before_it_is_completed() {
        let mut t = task(Some("ann"), None);
        assert_eq!(t.apply(&TaskChange::Delegate("bob".into()), user("ann"), 1), Ok(()));
        assert_eq!((t.owner.as_deref(), t.assignee.as_deref()), (Some("ann"), Some("bob")));
        assert_eq!(t.delegation, Some(Delegation::Pending));
        assert_eq!(t.clone().apply(&TaskChange::Complete, user("bob"), 2), Err(EngineError::Delegated("t".into())));
        assert_eq!(t.apply(&TaskChange::Resolve, user("bob"), 3), Ok(()));
        assert_eq!((t.assignee.as_deref(), t.delegation), (Some("ann"), Some(Delegation::Resolved)));
        assert_eq!(t.apply(&TaskChange::Complete, user("ann"), 4), Ok(()));
    }
}
