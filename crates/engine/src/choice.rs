//! An exclusive gateway that cannot choose a flow (no condition holds and there is no
//! default, or a condition fails): in debug mode it waits, as a failed record of kind
//! `exclusiveGateway`, for an operator to choose its flow (bk-sops' `skip_exg`); otherwise
//! the instance fails.

use crate::effect::{TaskRecord, TaskStatus};
use crate::instance::{EngineError, Fail, Instance, InstanceStatus, Step};
use flowstone_model::NodeId;

/// The kind of the record a waiting gateway leaves.
pub(crate) const GATEWAY: &str = "exclusiveGateway";

impl Instance {
    /// The gateway at `node` could not choose: in debug mode its token waits on a failed
    /// record; otherwise the failure stands.
    pub(crate) fn gateway_failed(
        &mut self,
        step: &mut Step<'_, '_>,
        token: u32,
        node: NodeId,
        fail: Fail,
    ) -> Result<(), Fail> {
        if !self.debug {
            return Err(fail);
        }
        let element = step.def.node(node).id.clone();
        let id = (step.ctx.ids)();
        let rec = TaskRecord {
            task_id: id.clone(),
            id,
            element: element.clone(),
            name: step.def.node(node).display_name().to_owned(),
            kind: GATEWAY.into(),
            namespace: None,
            stone: None,
            create_time: step.ctx.now,
            end_time: Some(step.ctx.now),
            status: TaskStatus::GatewayFailed,
            reason: Some(fail.0.clone()),
            params: None,
            outputs: None,
            progress: None,
            action: None,
            user: None,
        };
        self.wait(step, token, rec);
        self.status = InstanceStatus::Debug;
        self.failure = Some(format!("gateway {element} failed: {}", fail.0));
        Ok(())
    }

    /// `skip_exg`: the waiting gateway `task` takes the flow `flow`.
    pub(crate) fn choose_flow(&mut self, step: &mut Step<'_, '_>, task: &str, flow: &str) -> Result<(), EngineError> {
        let id = self.failed_record(task)?;
        if self.open[&id].kind != GATEWAY {
            return Err(EngineError::WrongTaskKind {
                task: task.to_owned(),
                kind: self.open[&id].kind.clone(),
                expected: GATEWAY,
            });
        }
        let token = self.token_waiting_on(&id).ok_or_else(|| EngineError::TaskNotOpen(task.to_owned()))?;
        let (node, scope) = (self.tokens[&token].node, self.tokens[&token].scope);
        let chosen = step.def.node(node).outgoing.iter().map(|f| step.def.flow(*f)).find(|f| f.id == flow);
        let Some(target) = chosen.map(|f| f.target) else {
            return Err(EngineError::NoSuchFlow { gateway: step.def.node(node).id.clone(), flow: flow.to_owned() });
        };
        let reason = self.open[&id].reason.clone();
        self.close_record(step, &id, TaskStatus::Skipped, reason, None);
        self.settle_debug();
        self.drop_token(token);
        let t = self.spawn(target, scope);
        step.ready.push_back(t);
        Ok(())
    }

    /// Back to running once no failed record waits for an operator.
    pub(crate) fn settle_debug(&mut self) {
        if !self.open.values().any(|r| r.status.step_failed()) {
            self.status = InstanceStatus::Running;
            self.failure = None;
        }
    }
}
