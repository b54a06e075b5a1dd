//! Messages kept for a time to live: one that nothing waits for (and no model starts with),
//! sent with a `ttl`, is stored; the first wait for it that begins before it runs out takes
//! it, once the step that began the wait is committed. Each kept message is taken once.

use super::events::{EventIn, Reached};
use super::{Runtime, RuntimeError, new_id, now_ms};
use flowstone_store::{BufferedMessage, SubscriptionRow, json_text};
use std::sync::atomic::Ordering;

/// The longest a message is kept: what a sender asks beyond it is refused.
pub const MAX_TTL_MS: i64 = 30 * 24 * 3_600_000;
/// The most messages kept at once: past it, a message nothing takes is refused until some
/// are taken or run out, so that senders cannot fill the database.
const MAX_KEPT: u64 = 100_000;

/// Where a message sent with a time to live went.
#[derive(Debug)]
pub enum Sent {
    /// It reached a wait, or started an instance, at once.
    Reached(Reached),
    /// It is kept, until `expires_at`, for the first wait that begins.
    Kept(BufferedMessage),
}

impl Runtime {
    /// Sends `message` as [`Runtime::correlate`] does; when nothing takes it, keeps it until
    /// `expires_at` (milliseconds since the epoch).
    ///
    /// # Errors
    /// As [`Runtime::correlate`] (other than finding nothing), or a store failure.
    pub async fn correlate_or_keep(&self, message: &EventIn, expires_at: i64) -> Result<Sent, RuntimeError> {
        match self.correlate(message, true).await {
            Err(RuntimeError::NotFound(_)) => {}
            other => return other.map(Sent::Reached),
        }
        let kept = BufferedMessage {
            id: new_id(),
            name: message.name.clone(),
            correlation_key: message.key.clone(),
            tenant_id: message.tenant.clone(),
            variables: json_text(&message.variables),
            created_at: now_ms(),
            expires_at,
        };
        if !self.store().buffer_message(&kept, MAX_KEPT).await? {
            return Err(RuntimeError::NotCommitted(format!(
                "message `{}` was not kept: {MAX_KEPT} messages are kept already, until some are taken or run out",
                message.name
            )));
        }
        self.kept_until.fetch_max(expires_at, Ordering::Relaxed);
        // A wait committed while the message was being kept looked for it before it was
        // there: look once more. Whoever takes the stored message back delivers it.
        if !self.waits_for(message).await? || !self.store().unbuffer(&kept.id).await? {
            return Ok(Sent::Kept(kept));
        }
        match self.correlate(message, false).await {
            Ok(reached) => Ok(Sent::Reached(reached)),
            Err(RuntimeError::NotFound(_)) => {
                self.store().buffer_message(&kept, u64::MAX).await?;
                Ok(Sent::Kept(kept))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether a message may be kept now: new waits look for one only then (on a shared
    /// database, another server may have kept one).
    pub(super) fn keeps_messages(&self) -> bool {
        self.store().shared() || self.kept_until.load(Ordering::Relaxed) > now_ms()
    }

    /// After a commit: each new wait for a message takes the oldest kept message it fits.
    pub(super) fn hand_kept_messages(&self, waits: Vec<SubscriptionRow>) {
        if waits.is_empty() {
            return;
        }
        let runtime = self.clone();
        tokio::spawn(async move {
            for wait in waits {
                if let Err(e) = runtime.hand_kept(&wait).await {
                    tracing::warn!(target: "flowstone::events", record = %wait.record_id, "a kept message was not handed over: {e}");
                }
            }
        });
    }

    /// Hands `wait` the oldest kept message it fits, if one is kept; one its instance no
    /// longer waits for is kept again.
    async fn hand_kept(&self, wait: &SubscriptionRow) -> Result<(), RuntimeError> {
        let Some(message) = self.store().take_buffered(wait, now_ms()).await? else { return Ok(()) };
        let variables = serde_json::from_str(&message.variables).unwrap_or_default();
        match self.deliver(wait, variables).await {
            Ok(true) => Ok(()),
            // Taken back, it is kept again whatever the count: it was kept before.
            Ok(false) => self.store().buffer_message(&message, u64::MAX).await.map(drop).map_err(Into::into),
            Err(e) => {
                self.store().buffer_message(&message, u64::MAX).await?;
                Err(e)
            }
        }
    }
}
