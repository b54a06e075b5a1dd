//! `flowstone bench --modes pipeline[,pipeline-engine] --nodes 100`: a bk-sops pipeline tree
//! of `--nodes` components in a row (start → component × N → end, the shape of
//! bamboo-engine's published 17- and 1000-node runs), every component a stone that answers at
//! once with `_result`.
//!
//! `pipeline-engine` runs trees in the engine alone, answering each job in the loop;
//! `pipeline` runs `--concurrency` trees at once through the runtime on SQLite with the
//! component as an in-process stone (each node: a job queued, leased, run, reported and
//! committed), and reports trees and nodes per second and each tree's time from start to end.

use crate::bench::Figures;
use flowstone_engine::{Action, Command, Ctx, Effect, Instance, InstanceStatus, StartOptions, StoneEvent};
use flowstone_model::parse_pipeline;
use flowstone_server::RuntimeOptions;
use flowstone_store::{InstanceFilter, Page};
use flowstone_worker::{Stone, StoneResult, Work};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The component every node runs.
const COMPONENT: &str = "bench_component";

/// A tree of `nodes` components in a row, each with an input rendered from a constant.
pub(crate) fn tree(nodes: usize) -> Value {
    let id = |i: usize| format!("node{i}");
    let mut activities = Map::new();
    let mut flows = Map::new();
    let mut flow = |i: usize, source: String, target: String| {
        let fid = format!("flow{i}");
        flows.insert(fid.clone(), json!({"id": fid, "source": source, "target": target, "is_default": false}));
        fid
    };
    let mut incoming = flow(0, "start".into(), id(1));
    for i in 1..=nodes {
        let next = if i == nodes { "end".to_owned() } else { id(i + 1) };
        let outgoing = flow(i, id(i), next);
        activities.insert(
            id(i),
            json!({"id": id(i), "type": "ServiceActivity", "name": format!("step {i}"), "incoming": [incoming],
                   "outgoing": outgoing, "component": {"code": COMPONENT, "data": {"step": {"hook": true, "value": "${run}-"}}}}),
        );
        incoming = outgoing;
    }
    json!({
        "start_event": {"id": "start", "type": "EmptyStartEvent", "incoming": "", "outgoing": "flow0"},
        "end_event": {"id": "end", "type": "EmptyEndEvent", "incoming": [incoming], "outgoing": ""},
        "activities": activities,
        "gateways": {},
        "flows": flows,
        "constants": {"${run}": {"key": "${run}", "source_type": "custom", "value": "bench"}},
    })
}

/// The component: done at once.
struct Component;

#[async_trait::async_trait]
impl Stone for Component {
    fn name(&self) -> &str {
        COMPONENT
    }

    async fn start(&self, _: &Work) -> StoneResult {
        Ok(Map::from_iter([("_result".to_owned(), json!(true))]))
    }
}

/// Trees through the engine alone for `seconds`; latencies in microseconds per tree.
pub(crate) fn engine(nodes: usize, seconds: f64) -> Result<Figures, String> {
    let def = parse_pipeline(&tree(nodes), "bench", None, &|_| None).map_err(|e| e.to_string())?;
    let mut counter = 0u64;
    let mut ids = || {
        counter += 1;
        counter.to_string()
    };
    let started = Instant::now();
    let mut latencies = Vec::new();
    while started.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        let mut ctx = Ctx {
            now: 0,
            ids: &mut ids,
            brokered: &flowstone_engine::no_broker,
            limits: &flowstone_engine::Limits::default(),
        };
        let (mut inst, mut effects) = Instance::start(&def, Map::new(), StartOptions::default(), &mut ctx);
        while let Some(record) = effects.iter().rev().find_map(|e| match e {
            Effect::QueueJob(job) => Some(job.record_id.clone()),
            _ => None,
        }) {
            let outputs = Map::from_iter([("_result".to_owned(), json!(true))]);
            let event = StoneEvent::Success { action: Action::Start, outputs, monitor: false };
            effects = inst.apply(&def, Command::Stone { record, event }, &mut ctx).map_err(|e| e.to_string())?;
        }
        if inst.status != InstanceStatus::Completed {
            return Err(format!("a tree ended {:?}: {:?}", inst.status, inst.failure));
        }
        latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
    }
    Ok(Figures { completed: latencies.len() as u64, elapsed: started.elapsed(), latencies })
}

/// `trees` trees at once through the runtime on SQLite; latencies in microseconds per tree.
pub(crate) async fn durable(nodes: usize, trees: usize) -> Result<Figures, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let stones: Vec<Arc<dyn Stone>> = vec![Arc::new(Component)];
    let server = crate::bench::bench_server(&dir, None, RuntimeOptions { stones, ..RuntimeOptions::default() }).await?;
    let runtime = server.runtime().clone();
    let model = Arc::new(runtime.deploy_pipeline(&tree(nodes), "bench", "bench").await.map_err(|e| e.to_string())?);
    let started = Instant::now();
    let mut ids = Vec::with_capacity(trees);
    for _ in 0..trees {
        let row = runtime
            .start_instance(model.clone(), "bench".into(), None, Map::new(), StartOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        ids.push(row.id);
    }
    let store = runtime.store().clone();
    let done = InstanceFilter { status: Some("completed".into()), ..InstanceFilter::default() };
    let mut completed = 0;
    while completed < trees as u64 {
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("only {completed} of {trees} trees completed in 10 minutes"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        completed = store.list_instances(&done, Page { offset: 0, limit: 1 }).await.map_err(|e| e.to_string())?.1;
    }
    let elapsed = started.elapsed();
    let mut latencies = Vec::with_capacity(trees);
    for id in &ids {
        let row = store.instance(id).await.map_err(|e| e.to_string())?.ok_or("a tree vanished")?;
        let ms = row.end_time.unwrap_or(row.start_time) - row.start_time;
        latencies.push((ms.max(0) as u64 * 1000).min(u64::from(u32::MAX)) as u32);
    }
    server.stop().await;
    Ok(Figures { completed: trees as u64, elapsed, latencies })
}
