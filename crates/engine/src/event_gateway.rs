//! Event-based gateways: the token that reaches one races down every outgoing flow at once,
//! one token waiting at each catch event after it (a message, a signal, a timer or a receive
//! task); the first whose event comes wins and goes on, and the others' waits are gone.

use crate::effect::TaskStatus;
use crate::instance::{Instance, Step};
use flowstone_model::NodeId;

impl Instance {
    /// A token reached event-based gateway `node`: a token for each event after it, racing.
    pub(crate) fn race(&mut self, step: &mut Step<'_, '_>, token: u32, node: NodeId) {
        self.passed(step, node);
        let scope = self.tokens[&token].scope;
        self.drop_token(token);
        let def = step.def;
        for flow in &def.node(node).outgoing {
            let racer = self.spawn(def.flow(*flow).target, scope);
            // Token ids are never reused: the gateway's token names the race.
            if let Some(t) = self.tokens.get_mut(&racer) {
                t.race = Some(token);
            }
            step.ready.push_back(racer);
        }
    }

    /// `token`'s event came: if it races, it wins, and every other token of its race stops
    /// waiting and is gone.
    pub(crate) fn win_race(&mut self, step: &mut Step<'_, '_>, token: u32) {
        let Some(race) = self.tokens.get(&token).and_then(|t| t.race) else { return };
        let losers: Vec<u32> =
            self.tokens.iter().filter(|(id, t)| **id != token && t.race == Some(race)).map(|(id, _)| *id).collect();
        for loser in losers {
            if let Some(record) = self.tokens.get(&loser).and_then(|t| t.wait.clone()) {
                self.close_record(step, &record, TaskStatus::Canceled, None, None);
            }
            self.drop_token(loser);
        }
        if let Some(t) = self.tokens.get_mut(&token) {
            t.race = None;
        }
        self.token_changed(token);
    }
}
