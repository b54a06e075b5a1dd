//! `flowstone bench --modes multi-instance[,multi-instance-engine] --items 1000,4000`: one
//! instance of a parallel multi-instance stone task of N items (the shape of the `cluster`
//! example with `slaveNum` N), timed from its start to its end.
//!
//! `multi-instance-engine` runs it in the engine alone, reporting every item's job done in
//! turn; `multi-instance` runs it through the runtime on SQLite with the stone in process
//! (each item: a job queued, leased, run, reported and committed). The time per item should
//! not grow with N: an engine whose steps scan every item grows quadratically.

use crate::bench::Figures;
use flowstone_engine::{Action, Command, Ctx, Effect, Instance, InstanceStatus, StartOptions, StoneEvent};
use flowstone_server::RuntimeOptions;
use flowstone_worker::{Stone, StoneResult, Work};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MODEL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowstone="http://flowstone.dev/bpmn"
             targetNamespace="http://flowstone.dev/bench">
  <process id="items" isExecutable="true">
    <startEvent id="start"/>
    <sequenceFlow id="f1" sourceRef="start" targetRef="item"/>
    <serviceTask id="item" flowstone:stone="ItemStone" flowstone:namespace="item-">
      <multiInstanceLoopCharacteristics isSequential="false">
        <loopCardinality>${items}</loopCardinality>
      </multiInstanceLoopCharacteristics>
    </serviceTask>
    <sequenceFlow id="f2" sourceRef="item" targetRef="end"/>
    <endEvent id="end"/>
  </process>
</definitions>"#;

/// What other clients run beside the big instance: one step, committed.
const BESIDE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="http://flowstone.dev/bench">
  <process id="beside" isExecutable="true">
    <startEvent id="start"/><sequenceFlow id="f1" sourceRef="start" targetRef="end"/><endEvent id="end"/>
  </process>
</definitions>"#;

/// The stone of every item: done at once.
struct ItemStone;

#[async_trait::async_trait]
impl Stone for ItemStone {
    fn name(&self) -> &str {
        "ItemStone"
    }

    async fn start(&self, _: &Work) -> StoneResult {
        Ok(Map::new())
    }
}

fn start_variables(items: u32) -> Map<String, Value> {
    Map::from_iter([("items".to_owned(), json!(items))])
}

/// One instance of `items` items through the engine alone: the time from its start to its end.
pub(crate) fn engine(items: u32) -> Result<Duration, String> {
    let defs = flowstone_model::parse_bpmn(MODEL).map_err(|e| e.to_string())?;
    let def = defs.first().ok_or("no process in the model")?;
    let mut counter = 0u64;
    let mut ids = || {
        counter += 1;
        counter.to_string()
    };
    let limits = flowstone_engine::Limits::default();
    let mut ctx = Ctx { now: 0, ids: &mut ids, brokered: &flowstone_engine::no_broker, limits: &limits };
    let started = Instant::now();
    let (mut inst, effects) = Instance::start(def, start_variables(items), StartOptions::default(), &mut ctx);
    let jobs: Vec<String> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::QueueJob(job) => Some(job.record_id.clone()),
            _ => None,
        })
        .collect();
    for record in jobs {
        let event = StoneEvent::Success { action: Action::Start, outputs: Map::new(), monitor: false };
        inst.apply(def, Command::Stone { record, event }, &mut ctx).map_err(|e| e.to_string())?;
    }
    if inst.status != InstanceStatus::Completed {
        return Err(format!("the instance ended {:?}: {:?}", inst.status, inst.failure));
    }
    Ok(started.elapsed())
}

/// One instance of `items` items through the runtime on SQLite: the time from its start to its
/// end, and the latencies of one-step instances another client starts meanwhile (one at a time,
/// every 10 ms), which share the commits of the big one.
pub(crate) async fn durable(items: u32) -> Result<(Duration, Figures), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let stones: Vec<Arc<dyn Stone>> = vec![Arc::new(ItemStone)];
    let server = crate::bench::bench_server(&dir, None, RuntimeOptions { stones, ..RuntimeOptions::default() }).await?;
    let runtime = server.runtime().clone();
    let deploy = |xml: &'static str| {
        let runtime = runtime.clone();
        async move { runtime.deploy(xml).await.map_err(|e| e.to_string())?.pop().ok_or("nothing deployed".to_owned()) }
    };
    let model = deploy(MODEL).await?;
    let beside = Arc::new(deploy(BESIDE).await?);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let other = tokio::spawn({
        let (runtime, stop) = (runtime.clone(), stop.clone());
        async move {
            let mut latencies = Vec::new();
            let started = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                let vars = Map::new();
                runtime
                    .start_instance(beside.clone(), "beside".into(), None, vars, StartOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
                latencies.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok::<_, String>(Figures { completed: latencies.len() as u64, elapsed: started.elapsed(), latencies })
        }
    });
    let started = Instant::now();
    let row = runtime
        .start_instance(Arc::new(model), "bench".into(), None, start_variables(items), StartOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let store = runtime.store().clone();
    loop {
        let now = store.instance(&row.id).await.map_err(|e| e.to_string())?.ok_or("the instance vanished")?;
        match now.status.as_str() {
            "completed" => break,
            "running" => {}
            other => return Err(format!("the instance ended {other}: {:?}", now.failure)),
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("{items} items did not complete in 10 minutes"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let beside = other.await.map_err(|e| e.to_string())??;
    server.stop().await;
    Ok((elapsed, beside))
}

/// Prints one line per size: the time of the instance and per item.
pub(crate) async fn run(mode: &str, sizes: &[u32]) -> Result<(), String> {
    for &items in sizes {
        let (elapsed, beside) = if mode == "multi-instance" {
            let (elapsed, beside) = durable(items).await?;
            (elapsed, Some(beside))
        } else {
            (engine(items)?, None)
        };
        let label = if mode == "multi-instance" { "SQLite, in-process stone" } else { "engine" };
        println!(
            "multi-instance of {items:>6} items ({label}): {:>9.1} ms, {:>7.1} µs per item, peak RSS {} MiB",
            elapsed.as_secs_f64() * 1000.0,
            elapsed.as_secs_f64() * 1e6 / f64::from(items.max(1)),
            crate::bench::peak_rss_mib()
        );
        if let Some(beside) = beside {
            beside.print_latency("  a one-step instance started beside it");
        }
    }
    Ok(())
}
