//! Messages, signals and triggers: where one sent to the server, or thrown by a process,
//! goes.
//!
//! A message reaches one wait: the oldest open record of a running instance waiting for its
//! name (and key, when it carries one), else a message start event of the latest version of
//! a model, which starts an instance. A signal reaches every wait for its name, and starts an
//! instance of every model whose latest version has a signal start event for it. A wait found
//! in the store whose instance moved on meanwhile is passed over (and forgotten, once its
//! instance has ended).

use super::{Runtime, RuntimeError};
use flowstone_engine::{Command, EngineError, StartOptions};
use flowstone_model::{Definition, EventKind, NodeKind};
use flowstone_store::{EventQuery, InstanceRow, NewModel, OutboxRow, SubscriptionRow};
use serde_json::{Map, Value};

/// How many waits a message looks at per read of the store (more than one raced away is
/// rare; a signal pages through all in pages of [`SIGNAL_PAGE`]).
const MESSAGE_PAGE: u64 = 8;
/// How many waits of a signal are read, and reached, at a time.
const SIGNAL_PAGE: u64 = 256;

/// A message or signal sent to the server.
#[derive(Debug, Clone, Default)]
pub struct EventIn {
    /// Its name.
    pub name: String,
    /// A message's correlation key: only waits with this key get it.
    pub key: Option<String>,
    /// Variables it sets where it is caught, or that an instance it starts starts with.
    pub variables: Map<String, Value>,
    /// Only waits and start events of this tenant's models.
    pub tenant: Option<String>,
    /// The business key of an instance it starts.
    pub business_key: Option<String>,
    /// Who sent it: the initiator of an instance it starts.
    pub sender: Option<String>,
}

/// Where a message went.
#[derive(Debug)]
pub enum Reached {
    /// An open record of a running instance got it.
    Waiting {
        /// The instance.
        instance_id: String,
        /// The record that waited.
        record_id: String,
    },
    /// A message start event started this instance.
    Started(Box<InstanceRow>),
}

/// What a signal reached.
#[derive(Debug, Default)]
pub struct Broadcast {
    /// Waits of running instances it reached.
    pub waits: u64,
    /// Instances its start events started.
    pub started: Vec<InstanceRow>,
}

/// The waits of the message and signal start events of models being deployed, under the key
/// (and tenant) whose latest version they start, and the keys whose earlier waits they replace.
pub(super) fn start_subscriptions(
    models: &[NewModel],
    defs: &[Definition],
    tenant: Option<&str>,
    now: i64,
) -> (Vec<SubscriptionRow>, Vec<String>) {
    let (mut rows, mut replaced) = (Vec::new(), Vec::new());
    for (model, def) in models.iter().zip(defs) {
        let starts = match tenant {
            Some(tenant) => format!("{tenant}:{}", model.key),
            None => model.key.clone(),
        };
        for &node in &def.event_starts {
            let NodeKind::EventStart(trigger) = &def.node(node).kind else { continue };
            let element = def.node(node).id.clone();
            rows.push(SubscriptionRow {
                record_id: format!("start:{starts}:{element}"),
                instance_id: String::new(),
                model_id: model.id.clone(),
                starts: Some(starts.clone()),
                tenant_id: tenant.map(str::to_owned),
                element,
                kind: trigger.kind().name().to_owned(),
                name: trigger.name().to_owned(),
                correlation_key: None,
                created_at: now,
            });
        }
        replaced.push(starts);
    }
    (rows, replaced)
}

/// The query of the instances' waits `message` may reach, `limit` at a time.
fn waits_of(message: &EventIn, limit: u64) -> EventQuery<'_> {
    EventQuery {
        kind: EventKind::Message.name(),
        name: &message.name,
        key: message.key.as_deref(),
        starts: false,
        tenant: message.tenant.as_deref(),
        after: None,
        limit,
    }
}

impl Runtime {
    /// Sends a message to the oldest wait for it, else to a message start event (when
    /// `start_events` allows).
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] when nothing waits for it and no model starts with it,
    /// [`RuntimeError::NotValid`] for variables past the bounds, or a store failure.
    pub async fn correlate(&self, message: &EventIn, start_events: bool) -> Result<Reached, RuntimeError> {
        self.limits.check_variables(&message.variables).map_err(RuntimeError::NotValid)?;
        let reached = match self.oldest_wait(message).await {
            Some(None) => None,
            Some(Some(wait)) if self.deliver(&wait, message.variables.clone()).await? => Some(wait),
            // No key, no answer, or the wait was taken meanwhile (by a message of the same key
            // sent at the same time): the waits are read for this message alone.
            _ => self.reach(waits_of(message, MESSAGE_PAGE), &message.variables, i64::MAX, true).await?.pop(),
        };
        if let Some(wait) = reached {
            return Ok(Reached::Waiting { instance_id: wait.instance_id, record_id: wait.record_id });
        }
        if start_events && let Some(start) = self.message_start(message).await? {
            return self.start_from(&start, message).await.map(|row| Reached::Started(Box::new(row)));
        }
        let key = message.key.as_deref().map(|k| format!(" with correlation key `{k}`")).unwrap_or_default();
        Err(RuntimeError::NotFound(format!(
            "no process instance waits for message `{}`{key}{}",
            message.name,
            if start_events { ", and no process starts with it" } else { "" }
        )))
    }

    /// The oldest wait for a message sent by key, read with others sent at the same time:
    /// `Some(None)` when nothing waits with its key, `None` without a key or an answer.
    async fn oldest_wait(&self, message: &EventIn) -> Option<Option<SubscriptionRow>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let lookup = super::lookups::Lookup {
            name: message.name.clone(),
            tenant: message.tenant.clone(),
            key: message.key.clone()?,
            reply,
        };
        self.lookups.send(lookup).ok()?;
        answer.await.ok()
    }

    /// Whether a running instance waits for `message` now.
    ///
    /// # Errors
    /// A store failure.
    pub(super) async fn waits_for(&self, message: &EventIn) -> Result<bool, RuntimeError> {
        Ok(!self.store().waiting(&waits_of(message, 1)).await?.is_empty())
    }

    /// Starts an instance of the latest version of a model whose message start event is
    /// named `message` (Flowable's start by message).
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] when no model starts with it, or as a start fails.
    pub async fn start_by_message(&self, message: &EventIn) -> Result<InstanceRow, RuntimeError> {
        let start = self.message_start(message).await?.ok_or_else(|| {
            RuntimeError::NotFound(format!(
                "Cannot start process instance by message: no subscription to message with name '{}' found.",
                message.name
            ))
        })?;
        self.start_from(&start, message).await
    }

    /// The message start event of the latest version of a key (of the message's tenant) that
    /// the message starts; any key's, whatever the message's correlation key.
    async fn message_start(&self, message: &EventIn) -> Result<Option<SubscriptionRow>, RuntimeError> {
        let query = EventQuery { key: None, starts: true, ..waits_of(message, 1) };
        Ok(self.store().waiting(&query).await?.pop())
    }

    /// Hands `variables` to the waits `query` finds, page after page, those begun by `until`
    /// only; with `one`, stops at the first that took it. The waits that took it.
    async fn reach(
        &self,
        query: EventQuery<'_>,
        variables: &Map<String, Value>,
        until: i64,
        one: bool,
    ) -> Result<Vec<SubscriptionRow>, RuntimeError> {
        let mut reached = Vec::new();
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = EventQuery { after: after.as_ref().map(|(t, id)| (*t, id.as_str())), ..query };
            let waits = self.store().waiting(&page).await?;
            for wait in waits.iter().filter(|w| w.created_at <= until) {
                if self.deliver(wait, variables.clone()).await? {
                    reached.push(wait.clone());
                    if one {
                        return Ok(reached);
                    }
                }
            }
            match waits.last() {
                Some(last) if waits.len() as u64 == query.limit && last.created_at <= until => {
                    after = Some((last.created_at, last.record_id.clone()));
                }
                _ => return Ok(reached),
            }
        }
    }

    /// Sends a signal to every wait for it, and starts an instance of every model whose
    /// latest version has a signal start event for it.
    ///
    /// # Errors
    /// [`RuntimeError::NotValid`] for variables past the bounds, or a store failure; the
    /// waits reached before it stay reached.
    pub async fn broadcast(&self, signal: &EventIn) -> Result<Broadcast, RuntimeError> {
        self.limits.check_variables(&signal.variables).map_err(RuntimeError::NotValid)?;
        let mut done = Broadcast::default();
        let query = EventQuery {
            kind: EventKind::Signal.name(),
            name: &signal.name,
            key: None,
            starts: false,
            tenant: signal.tenant.as_deref(),
            after: None,
            limit: SIGNAL_PAGE,
        };
        // The waits open when it was sent: those opened by what it set off wait for the next.
        done.waits = self.reach(query, &signal.variables, super::now_ms(), false).await?.len() as u64;
        let starts = self.store().waiting(&EventQuery { starts: true, limit: u64::MAX, ..query }).await?;
        for start in &starts {
            done.started.push(self.start_from(start, signal).await?);
        }
        Ok(done)
    }

    /// Hands a record's wait its event (Flowable's `trigger`, `messageEventReceived` and
    /// `signalEventReceived` naming an execution): `kind` and `name`, when given, must be
    /// what it waits for.
    ///
    /// # Errors
    /// [`RuntimeError::NotFound`] when the record waits for nothing,
    /// [`RuntimeError::NotValid`] when it waits for something else, or as the delivery fails.
    pub async fn trigger(
        &self,
        record: &str,
        expected: Option<(EventKind, &str)>,
        variables: Map<String, Value>,
    ) -> Result<(), RuntimeError> {
        self.limits.check_variables(&variables).map_err(RuntimeError::NotValid)?;
        let wait = self
            .store()
            .subscription(record)
            .await?
            .filter(|w| !w.instance_id.is_empty())
            .ok_or_else(|| RuntimeError::NotFound(format!("execution {record} waits for no event")))?;
        if let Some((kind, name)) = expected
            && (wait.kind != kind.name() || wait.name != name)
        {
            return Err(RuntimeError::NotValid(format!(
                "Execution with id '{record}' does not have a subscription to a {} with name '{name}'",
                kind.name()
            )));
        }
        if self.deliver(&wait, variables).await? {
            Ok(())
        } else {
            Err(RuntimeError::NotFound(format!("execution {record} no longer waits")))
        }
    }

    /// Sends what processes threw, once committed: each message to its wait, each signal
    /// to all of its (a message nothing waits for is dropped, as a throw does not wait); each
    /// leaves the outbox once sent. One the store failed to take stays there, and is sent
    /// again when the server starts.
    pub(super) fn send_thrown(&self, thrown: Vec<OutboxRow>) {
        let runtime = self.clone();
        tokio::spawn(async move {
            let mut sent = Vec::with_capacity(thrown.len());
            for event in thrown {
                let out = EventIn {
                    name: event.name.clone(),
                    key: event.correlation_key.clone(),
                    tenant: event.tenant_id.clone(),
                    ..EventIn::default()
                };
                let result = match event.kind.as_str() {
                    "signal" => runtime.broadcast(&out).await.map(drop),
                    _ => runtime.correlate(&out, true).await.map(drop),
                };
                match result {
                    Ok(()) => sent.push(event.id),
                    Err(RuntimeError::NotFound(why)) => {
                        tracing::info!(target: "flowstone::events", name = %event.name, "thrown message dropped: {why}");
                        sent.push(event.id);
                    }
                    Err(e) => {
                        tracing::warn!(target: "flowstone::events", name = %event.name, "thrown {} not sent: {e}", event.kind);
                    }
                }
            }
            if let Err(e) = runtime.store().sent(&sent).await {
                tracing::warn!(target: "flowstone::events", "sent events stay in the outbox, to be sent again: {e}");
            }
        });
    }

    /// Hands one wait its event; false when its instance no longer waits there (it moved
    /// on, or ended: then the wait is forgotten).
    pub(super) async fn deliver(
        &self,
        wait: &SubscriptionRow,
        variables: Map<String, Value>,
    ) -> Result<bool, RuntimeError> {
        let command = Command::Deliver { record: wait.record_id.clone(), variables };
        match self.apply(&wait.instance_id, command).await {
            Ok(()) => Ok(true),
            Err(RuntimeError::Conflict(EngineError::NotWaiting(_) | EngineError::NotRunning(_)))
            | Err(RuntimeError::NotFound(_)) => {
                self.store().forget_subscription(&wait.record_id).await?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Starts an instance at the start event of a start event's wait, as `event` says.
    async fn start_from(&self, start: &SubscriptionRow, event: &EventIn) -> Result<InstanceRow, RuntimeError> {
        let gone = || RuntimeError::NotFound(format!("the model of start event {} is gone", start.element));
        let model = self.model(&start.model_id).await?.ok_or_else(gone)?;
        let def = self.definition(&model)?;
        let node = def.node_by_element(&start.element).ok_or_else(gone)?;
        let name = model.name.clone().unwrap_or_else(|| model.key.clone());
        let options = StartOptions { from: Some(node), initiator: event.sender.clone(), ..StartOptions::default() };
        self.start_instance(model, name, event.business_key.clone(), event.variables.clone(), options).await
    }
}
