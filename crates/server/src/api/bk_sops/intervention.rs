//! `get_tasks_manual_intervention_state`: which tasks wait for an operator.

use super::status::{State, StateTree, status_of};
use super::{Call, task_in, tree_of};
use crate::error::ApiError;
use flowstone_store::BkTaskRow;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// How many tasks one call may ask about, as bk-sops bounds it (it refuses ten or more).
const MOST_TASKS: usize = 9;

/// The components that wait for an operator while they run.
const WAITING_COMPONENTS: [&str; 1] = ["pause_node"];

/// Whether a task waits for an operator.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Intervention {
    pub(super) id: i64,
    pub(super) manual_intervention_required: bool,
}

/// `task_id_list` (at most nine) → `[{id, manual_intervention_required}]` for those of the
/// business (others are left out, as bk-sops leaves them out). A task needs an operator when it
/// failed (a failed node waits for retry or skip), it or a subprocess of it is paused, or a
/// `pause_node` runs in it; a task not started, finished or revoked never does.
pub(super) async fn manual_intervention_state(c: &Call<'_>) -> Result<Value, ApiError> {
    let ids = c.task_ids(MOST_TASKS)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(task) = task_in(c, id).await? else { continue };
        out.push(Intervention { id: task.id, manual_intervention_required: needs_operator(c, &task).await? });
    }
    Ok(json!(out))
}

async fn needs_operator(c: &Call<'_>, task: &BkTaskRow) -> Result<bool, ApiError> {
    let status = status_of(c, task).await?;
    Ok(match status.state {
        State::Failed | State::Suspended => true,
        State::Running => {
            let mut waiting = Vec::new();
            waiting_nodes(&tree_of(c, &task.model_id).await?, &mut waiting);
            any_waits(&status, &waiting)
        }
        _ => false,
    })
}

/// The ids of the tree's nodes (in subprocesses too) whose component waits for an operator.
fn waiting_nodes(tree: &Value, into: &mut Vec<String>) {
    for (id, activity) in tree["activities"].as_object().into_iter().flatten() {
        if activity["pipeline"].is_object() {
            waiting_nodes(&activity["pipeline"], into);
        } else if activity["component"]["code"].as_str().is_some_and(|code| WAITING_COMPONENTS.contains(&code)) {
            into.push(id.clone());
        }
    }
}

/// Whether a node under the tree is a paused subprocess or a running node of `waiting`.
fn any_waits(tree: &StateTree, waiting: &[String]) -> bool {
    tree.any(&|id, node| match node.state {
        State::Suspended => true,
        State::Running => waiting.iter().any(|w| w == id),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_subprocess_or_a_running_waiting_node_wants_an_operator() {
        let tree = json!({"activities": {
            "p": {"component": {"code": "pause_node"}},
            "sub": {"pipeline": {"activities": {"q": {"component": {"code": "pause_node"}}, "r": {"component": {"code": "noop"}}}}}
        }});
        let mut waiting = Vec::new();
        waiting_nodes(&tree, &mut waiting);
        waiting.sort();
        assert_eq!(waiting, ["p", "q"]);
        let node = |state: State, children: &[(&str, StateTree)]| StateTree {
            state,
            children: children.iter().cloned().map(|(id, c)| (id.to_owned(), c)).collect(),
            ..StateTree::default()
        };
        let root = |children: &[(&str, StateTree)]| node(State::Running, children);
        assert!(any_waits(&root(&[("p", node(State::Running, &[]))]), &waiting));
        assert!(!any_waits(&root(&[("r", node(State::Running, &[]))]), &waiting));
        assert!(any_waits(&root(&[("sub", node(State::Running, &[("q", node(State::Running, &[]))]))]), &waiting));
        assert!(any_waits(&root(&[("sub", node(State::Suspended, &[]))]), &waiting));
        assert!(!any_waits(&root(&[("p", node(State::Finished, &[]))]), &waiting));
    }
}
