//! Runs stones on jobs from RabbitMQ: consumes the queue of each stone, drives every job
//! through its stone, and publishes each event to the events queue with publisher confirms.
//! A job's message is acknowledged when the job is done; a worker that dies leaves it
//! unacknowledged, and the broker hands it to another.

use crate::protocol::{EventReport, JobEvent, LockedJob};
use crate::{Progress, Refused, Reporter, Stone, Work, drive};
use flowstone_engine::StoneEvent;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How an AMQP worker runs.
#[derive(Debug, Clone)]
pub struct AmqpOptions {
    /// `amqp://user:password@host:5672/%2f`.
    pub url: String,
    /// Put before every queue name, as on the server.
    pub prefix: String,
    /// How many jobs run at once (the consumer's prefetch).
    pub concurrency: u16,
    /// How long jobs in hand may run on after a stop; the rest go back to the broker.
    pub grace: Duration,
}

/// Runs `stones` on their queues until `stop` resolves, reconnecting while the broker is
/// away. On stop it takes no more jobs, lets those in hand finish for the grace period, and
/// closes the connection: the broker hands the unfinished ones to other workers.
pub async fn run(options: AmqpOptions, stones: Vec<Arc<dyn Stone>>, stop: impl std::future::Future<Output = ()>) {
    let stones: Arc<HashMap<String, Arc<dyn Stone>>> =
        Arc::new(stones.into_iter().map(|s| (s.name().to_owned(), s)).collect());
    let (stopping, stopped) = watch::channel(false);
    let sessions = async {
        let mut pause = Duration::from_millis(200);
        while !*stopped.borrow() {
            if let Err(e) = session(&options, &stones, stopped.clone()).await {
                tracing::warn!(error = %e, retry_in = ?pause, "RabbitMQ session ended");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    };
    tokio::pin!(sessions);
    tokio::select! {
        () = &mut sessions => {}
        () = stop => {
            stopping.send_replace(true);
            sessions.await;
        }
    }
}

async fn session(
    options: &AmqpOptions,
    stones: &Arc<HashMap<String, Arc<dyn Stone>>>,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), lapin::Error> {
    let connection = Connection::connect(&options.url, ConnectionProperties::default()).await?;
    let events = connection.create_channel().await?;
    events.confirm_select(ConfirmSelectOptions::default()).await?;
    let events_queue = crate::protocol::events_queue(&options.prefix);
    events.queue_declare(events_queue.as_str().into(), QueueDeclareOptions::durable(), FieldTable::default()).await?;
    let jobs = connection.create_channel().await?;
    jobs.basic_qos(options.concurrency.max(1), BasicQosOptions::default()).await?;
    let mut consumers = Vec::new();
    for name in stones.keys() {
        let queue = crate::protocol::stone_queue(&options.prefix, name);
        jobs.queue_declare(queue.as_str().into(), QueueDeclareOptions::durable(), FieldTable::default()).await?;
        consumers.push(
            jobs.basic_consume(queue.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
                .await?,
        );
    }
    tracing::info!(url = %options.url, stones = ?stones.keys().collect::<Vec<_>>(), "consuming stone jobs from RabbitMQ");
    let mut deliveries = futures_util::stream::select_all(consumers);
    let mut in_hand = tokio::task::JoinSet::new();
    loop {
        let delivery = tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            delivery = deliveries.next() => match delivery {
                Some(delivery) => delivery?,
                None => break,
            },
        };
        while in_hand.try_join_next().is_some() {}
        let (events, events_queue, stones) = (events.clone(), events_queue.clone(), stones.clone());
        in_hand.spawn(async move {
            match serde_json::from_slice::<LockedJob>(&delivery.data) {
                Ok(job) => match stones.get(&job.stone) {
                    Some(stone) => {
                        let reporter = AmqpReporter { channel: events, queue: events_queue, job: job.id.clone() };
                        let work = Work { params: job.params, outputs: job.outputs, queued_at: job.queued_at };
                        if let Err(Refused(message)) = drive(stone.as_ref(), job.action, work, false, &reporter).await {
                            tracing::info!(job = %job.id, %message, "job given up");
                        }
                    }
                    None => tracing::warn!(stone = %job.stone, "a job for a stone this worker does not run; dropped"),
                },
                Err(e) => tracing::warn!(error = %e, "a message on a stone queue is not a job; dropped"),
            }
            if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
                tracing::warn!(error = %e, "cannot acknowledge a job; the broker will hand it out again");
            }
        });
    }
    drop(deliveries);
    let _ = tokio::time::timeout(options.grace, async { while in_hand.join_next().await.is_some() {} }).await;
    in_hand.abort_all();
    connection.close(200, "stopping".into()).await
}

/// Publishes one job's events to the events queue, each confirmed by the broker.
struct AmqpReporter {
    channel: Channel,
    queue: String,
    job: String,
}

#[async_trait::async_trait]
impl Progress for AmqpReporter {
    async fn progress(&self, percent: u8) {
        if let Err(Refused(message)) = self.publish(StoneEvent::Progress(percent)).await {
            tracing::debug!(job = %self.job, %message, "progress not delivered");
        }
    }
}

#[async_trait::async_trait]
impl Reporter for AmqpReporter {
    async fn report(&self, event: StoneEvent) -> Result<(), Refused> {
        self.publish(event).await
    }
}

impl AmqpReporter {
    async fn publish(&self, event: StoneEvent) -> Result<(), Refused> {
        let body = JobEvent::of(&self.job, EventReport::new("amqp", event));
        let payload = serde_json::to_vec(&body).map_err(|e| Refused(e.to_string()))?;
        let properties = BasicProperties::default().with_delivery_mode(2).with_content_type("application/json".into());
        let lost =
            |e: lapin::Error| Refused(format!("the broker connection failed ({e}); the job goes back to the broker"));
        let confirm = self
            .channel
            .basic_publish("".into(), self.queue.as_str().into(), BasicPublishOptions::default(), &payload, properties)
            .await
            .map_err(lost)?
            .await
            .map_err(lost)?;
        if confirm.is_ack() { Ok(()) } else { Err(Refused("the broker refused an event".into())) }
    }
}
