//! The RabbitMQ transport: jobs of brokered stones are published to a durable queue named
//! after the stone, and workers send their events back on `<prefix>flowstone.events`.
//!
//! The jobs table is the outbox: the publisher leases each new job of a brokered stone,
//! publishes it, and once the broker confirms, the task turns from `produce.begin` to
//! `produce.success` and the lease is kept for good (the broker redelivers the message if
//! a worker dies). A publish that fails sets `produce.failed`, and the job is published again
//! a second later. Jobs leased but never confirmed (the server died meanwhile) are published
//! again once their lease ends; confirmed ones never are.

use crate::runtime::{BrokerOptions, Runtime, RuntimeError};
use std::time::Duration;
use tokio::sync::watch;

#[cfg(not(feature = "amqp"))]
pub(crate) fn start(
    _: Runtime,
    _: BrokerOptions,
    _: &str,
    _: Duration,
    _: watch::Receiver<bool>,
) -> Result<(), RuntimeError> {
    Err(RuntimeError::Start("this build has no RabbitMQ support; build with the `amqp` feature".into()))
}

#[cfg(feature = "amqp")]
pub(crate) use amqp::start;

#[cfg(feature = "amqp")]
mod amqp {
    use super::*;
    use crate::runtime::now_ms;
    use flowstone_engine::{Command, StoneEvent};
    use flowstone_store::{Acquire, JobRow};
    use flowstone_worker::protocol::{JobEvent, LockedJob, events_queue, stone_queue};
    use futures_util::StreamExt;
    use lapin::options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, QueueDeclareOptions,
    };
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

    /// A lease that never ends: the broker holds the job now.
    const HANDED_TO_BROKER: i64 = i64::MAX / 4;
    /// Jobs published per round.
    const BATCH: u64 = 256;

    /// Starts publishing jobs and consuming events, reconnecting while the broker is away.
    pub(crate) fn start(
        runtime: Runtime,
        options: BrokerOptions,
        node: &str,
        lease: Duration,
        mut stopped: watch::Receiver<bool>,
    ) -> Result<(), RuntimeError> {
        let owner = format!("amqp:{node}");
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(200);
            loop {
                let session =
                    Session { runtime: runtime.clone(), options: options.clone(), owner: owner.clone(), lease };
                tokio::select! {
                    _ = stopped.changed() => return,
                    result = session.run() => {
                        if let Err(e) = result {
                            tracing::warn!(error = %e, retry_in = ?pause, "RabbitMQ session ended");
                        }
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        });
        Ok(())
    }

    struct Session {
        runtime: Runtime,
        options: BrokerOptions,
        owner: String,
        lease: Duration,
    }

    impl Session {
        async fn run(&self) -> Result<(), lapin::Error> {
            let connection = Connection::connect(&self.options.url, ConnectionProperties::default()).await?;
            let publish = connection.create_channel().await?;
            publish.confirm_select(ConfirmSelectOptions::default()).await?;
            let events = events_queue(&self.options.prefix);
            for queue in
                self.options.stones.iter().map(|s| stone_queue(&self.options.prefix, s)).chain([events.clone()])
            {
                publish.queue_declare(queue.into(), QueueDeclareOptions::durable(), FieldTable::default()).await?;
            }
            let consume = connection.create_channel().await?;
            consume.basic_qos(256, BasicQosOptions::default()).await?;
            let mut consumer = consume
                .basic_consume(events.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
                .await?;
            tracing::info!(url = %self.options.url, stones = ?self.options.stones, "publishing stone jobs to RabbitMQ");
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                let woken = self.runtime.board().woken();
                self.publish_pending(&publish).await?;
                tokio::select! {
                    () = woken => {}
                    _ = tick.tick() => {}
                    delivery = consumer.next() => match delivery {
                        Some(delivery) => self.apply_event(delivery?).await,
                        None => return Ok(()),
                    },
                }
            }
        }

        /// Publishes every job of the brokered stones not yet handed to the broker. A job once
        /// confirmed keeps a lease that never ends, so it is never published again; one leased
        /// but never confirmed (the server died meanwhile) is published again once its lease ends.
        async fn publish_pending(&self, channel: &Channel) -> Result<(), lapin::Error> {
            let stones: Vec<&str> = self.options.stones.iter().map(String::as_str).collect();
            loop {
                let now = now_ms();
                let acquire = Acquire {
                    stones: &stones,
                    owner: &self.owner,
                    now,
                    until: now + self.lease.as_millis() as i64,
                    include_own: false,
                    limit: BATCH,
                    action: None,
                };
                let jobs = match self.runtime.store().acquire_jobs(acquire).await {
                    Ok(jobs) => jobs,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot lease jobs to publish");
                        return Ok(());
                    }
                };
                let count = jobs.len() as u64;
                for job in jobs {
                    self.publish(channel, job).await?;
                }
                if count < BATCH {
                    return Ok(());
                }
            }
        }

        async fn publish(&self, channel: &Channel, job: JobRow) -> Result<(), lapin::Error> {
            let store = self.runtime.store();
            let id = job.job.record_id.clone();
            let instance = job.instance_id.clone();
            let queue = stone_queue(&self.options.prefix, &job.job.stone);
            let message = LockedJob { locked_until: HANDED_TO_BROKER, ..crate::runtime::jobs::locked_job(job) };
            let payload = serde_json::to_vec(&message).unwrap_or_default();
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(id.clone().into());
            let confirm = channel
                .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), &payload, properties)
                .await?
                .await?;
            let event = if confirm.is_ack() {
                if let Err(e) = store.extend_jobs(&self.owner, &[id.as_str()], HANDED_TO_BROKER, false).await {
                    tracing::warn!(job = %id, error = %e, "published, but the hand-over was not recorded");
                }
                StoneEvent::Produced
            } else {
                let _ = store.retry_job(&id, &self.owner, None, now_ms() + 1000).await;
                StoneEvent::ProduceFailed("the broker refused the message; publishing it again".into())
            };
            if let Err(e) = self.runtime.apply(&instance, Command::Stone { record: id.clone(), event }).await {
                tracing::debug!(job = %id, error = %e, "publish outcome not recorded");
            }
            Ok(())
        }

        /// Applies a worker's event; the message is acknowledged once the event is
        /// committed or refused for good, and requeued when the database failed.
        async fn apply_event(&self, delivery: lapin::message::Delivery) {
            let applied = match serde_json::from_slice::<JobEvent>(&delivery.data) {
                Err(e) => {
                    tracing::warn!(error = %e, "an event on the events queue is not JSON of a job event; dropped");
                    Ok(())
                }
                Ok(event) => self.apply_job_event(event).await,
            };
            let done = match applied {
                Ok(()) => delivery.ack(BasicAckOptions::default()).await,
                Err(()) => delivery.nack(BasicNackOptions { requeue: true, ..BasicNackOptions::default() }).await,
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, "cannot settle an event message");
            }
        }

        /// `Err` only for failures worth another try.
        async fn apply_job_event(&self, event: JobEvent) -> Result<(), ()> {
            let id = event.job_id.clone();
            let store = self.runtime.store();
            let lease = match store.leases(&[id.as_str()]).await {
                Ok(mut leases) => leases.pop(),
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "cannot check a brokered job's event");
                    return Err(());
                }
            };
            let Some(lease) = lease.filter(|l| l.owner.as_deref().is_some_and(|o| o.starts_with("amqp:"))) else {
                tracing::debug!(job = %id, "event for a job not with the broker (closed or repeated); dropped");
                return Ok(());
            };
            // Whoever consumed the message holds the job: the broker leases, not workers.
            let engine_event = match event.report("amqp").event() {
                Ok(e) => e,
                Err(message) => {
                    tracing::warn!(job = %id, %message, "malformed event dropped");
                    return Ok(());
                }
            };
            match self
                .runtime
                .apply(&lease.instance_id, Command::Stone { record: id.clone(), event: engine_event })
                .await
            {
                Err(RuntimeError::Store(_) | RuntimeError::NotCommitted(_) | RuntimeError::Stopped) => Err(()),
                Err(e) => {
                    tracing::debug!(job = %id, error = %e, "event refused");
                    Ok(())
                }
                Ok(()) => Ok(()),
            }
        }
    }
}
