//! `flowstone bench --modes messages`: messages correlated by key to waiting instances.
//!
//! `--waiting` instances of a one-catch-event model wait for the message `payment` with a
//! correlation key of their own (`orderId`); then one message per instance, in shuffled key
//! order from many senders at once, is correlated through [`Runtime::correlate`] (the store's
//! lookup by name and key, the instance's delivery, its commit). The figures are messages per
//! second and each correlation's time; every instance must have completed, once.

use crate::bench::{Figures, peak_rss_mib};
use flowstone_engine::StartOptions;
use flowstone_server::{EventIn, Reached, Runtime, RuntimeOptions};
use flowstone_store::{SqliteStore, Store};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;

const WAITING: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowstone="http://flowstone.dev/bpmn">
  <message id="pay" name="payment" flowstone:correlationKey="${orderId}"/>
  <process id="waiting"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><messageEventDefinition messageRef="pay"/></intermediateCatchEvent>
    <sequenceFlow sourceRef="wait" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

/// Senders at once.
const LANES: usize = 256;

/// Runs the messages mode with `count` waiting instances on SQLite.
pub(crate) async fn run(count: u64) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("m.db")).await.map_err(|e| e.to_string())?);
    let runtime = Runtime::start(store.clone(), RuntimeOptions::default()).await.map_err(|e| e.to_string())?;
    let model = Arc::new(runtime.deploy(WAITING).await.map_err(|e| e.to_string())?.remove(0));

    let made = Instant::now();
    let mut ids = Vec::with_capacity(count as usize);
    let mut set = tokio::task::JoinSet::new();
    for lane in 0..LANES as u64 {
        let (runtime, model) = (runtime.clone(), model.clone());
        set.spawn(async move {
            let mut ids = Vec::new();
            for n in (lane..count).step_by(LANES) {
                let vars = Map::from_iter([("orderId".to_owned(), Value::from(n))]);
                let row = runtime
                    .start_instance(model.clone(), "waiting".into(), None, vars, StartOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
                ids.push((n, row.id));
            }
            Ok::<_, String>(ids)
        });
    }
    while let Some(lane) = set.join_next().await {
        ids.extend(lane.map_err(|e| e.to_string())??);
    }
    println!(
        "{count} instances waiting for a message in {:.1} s ({:.0}/s)",
        made.elapsed().as_secs_f64(),
        count as f64 / made.elapsed().as_secs_f64()
    );

    // Keys in an order unlike the waits' (a multiplicative permutation of 0..count).
    ids.sort_unstable();
    let step = (0..).map(|k| 7_919 + k).find(|s| gcd(*s, count) == 1).unwrap_or(1);
    let order: Arc<Vec<(u64, String)>> =
        Arc::new((0..count).map(|i| ids[((i * step) % count) as usize].clone()).collect());
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for lane in 0..LANES {
        let (runtime, order) = (runtime.clone(), order.clone());
        senders.spawn(async move {
            let mut latencies = Vec::new();
            for (key, id) in order.iter().skip(lane).step_by(LANES) {
                let message = EventIn { name: "payment".into(), key: Some(key.to_string()), ..EventIn::default() };
                let t = Instant::now();
                match runtime.correlate(&message, false).await.map_err(|e| e.to_string())? {
                    Reached::Waiting { instance_id, .. } if instance_id == *id => {}
                    other => return Err(format!("message {key} reached {other:?}, not instance {id}")),
                }
                latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
            Ok::<_, String>(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(count as usize);
    while let Some(lane) = senders.join_next().await {
        latencies.extend(lane.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed();
    let mut unfinished = 0;
    for (_, id) in order.iter() {
        let status = store.instance(id).await.map_err(|e| e.to_string())?.map(|r| r.status).unwrap_or_default();
        unfinished += usize::from(status != "completed");
    }
    runtime.shutdown();
    let figures = Figures { completed: latencies.len() as u64, elapsed, latencies };
    figures.print_latency(&format!(
        "messages by key to {count} waiting instances (SQLite, {LANES} senders): {:.0} messages/s, peak RSS {} MiB; time per message",
        count as f64 / elapsed.as_secs_f64(),
        peak_rss_mib()
    ));
    if unfinished > 0 {
        return Err(format!("{unfinished} instances did not complete"));
    }
    Ok(())
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}
