//! `flowstone bench --modes prune`: history retention beside live traffic.
//!
//! `--ended` W1 instances run to their end on SQLite; then W1 runs alone for `--seconds`, and
//! again while every instance that ended before it is pruned ([`Runtime::prune_history`]).
//! The figures are the prune's rate and W1's throughput and latency without and with it;
//! afterwards only the instances W1 started meanwhile may be left.

use crate::bench::{BenchArgs, Figures, peak_rss_mib};
use flowstone_engine::StartOptions;
use flowstone_server::{Runtime, RuntimeOptions};
use flowstone_store::{InstanceFilter, ModelRow, Page, PruneQuery, SqliteStore, Store};
use serde_json::Map;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Starts W1 instances from `lanes` loops until `stop`; each must have completed when answered.
fn w1_until(
    runtime: &Runtime,
    model: &Arc<ModelRow>,
    lanes: usize,
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinSet<Result<Vec<u32>, String>> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..lanes {
        let (runtime, model, stop) = (runtime.clone(), model.clone(), stop.clone());
        set.spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let row = runtime
                    .start_instance(model.clone(), "w1".into(), None, Map::new(), StartOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
                if row.status != "completed" {
                    return Err(format!("W1 instance {} is {}", row.id, row.status));
                }
                latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
            Ok(latencies)
        });
    }
    set
}

/// Stops the loops and gathers their figures over `elapsed`.
async fn gather(
    mut set: tokio::task::JoinSet<Result<Vec<u32>, String>>,
    stop: &AtomicBool,
    started: Instant,
) -> Result<Figures, String> {
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut latencies = Vec::new();
    while let Some(lane) = set.join_next().await {
        latencies.extend(lane.map_err(|e| e.to_string())??);
    }
    Ok(Figures { completed: latencies.len() as u64, elapsed, latencies })
}

async fn total(store: &dyn Store) -> Result<u64, String> {
    let page = Page { offset: 0, limit: 1 };
    Ok(store.list_instances(&InstanceFilter::default(), page).await.map_err(|e| e.to_string())?.1)
}

/// Runs `count` W1 instances of `model` to their end, 256 at a time, and says how fast.
pub(crate) async fn fill_ended(runtime: &Runtime, model: &Arc<ModelRow>, count: u64) -> Result<(), String> {
    let made = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for lane in 0..256u64 {
        let (runtime, model) = (runtime.clone(), model.clone());
        set.spawn(async move {
            for _ in (lane..count).step_by(256) {
                runtime
                    .start_instance(model.clone(), "ended".into(), None, Map::new(), StartOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(())
        });
    }
    while let Some(lane) = set.join_next().await {
        lane.map_err(|e| e.to_string())??;
    }
    let filled = made.elapsed();
    println!(
        "{count} ended W1 instances made in {:.1} s ({:.0}/s)",
        filled.as_secs_f64(),
        count as f64 / filled.as_secs_f64()
    );
    Ok(())
}

/// Runs the prune mode over `count` ended W1 instances.
pub(crate) async fn run(count: u64, args: &BenchArgs) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("p.db")).await.map_err(|e| e.to_string())?);
    let runtime = Runtime::start(store.clone(), RuntimeOptions::default()).await.map_err(|e| e.to_string())?;
    let w1 = runtime.deploy(crate::bench::w1_source(args)?.as_str()).await.map_err(|e| e.to_string())?.remove(0);
    let model = Arc::new(w1);

    fill_ended(&runtime, &model, count).await?;
    let cutoff = flowstone_server::now_ms() + 1;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let lanes = args.concurrency.max(1);

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let alone = w1_until(&runtime, &model, lanes, &stop);
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    let alone = gather(alone, &stop, started).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let beside = w1_until(&runtime, &model, lanes, &stop);
    let query = PruneQuery { ended_before: cutoff, ..PruneQuery::default() };
    let pruned = runtime.prune_history(&query, None, false, |_| {}).await.map_err(|e| e.to_string())?;
    let pruning = started.elapsed();
    let beside = gather(beside, &stop, started).await?;

    let left = total(store.as_ref()).await?;
    runtime.shutdown();
    println!(
        "pruned {} ended W1 instances in {:.1} s: {:.0} instances/s, beside W1 x{lanes}",
        pruned.instances,
        pruning.as_secs_f64(),
        pruned.instances as f64 / pruning.as_secs_f64()
    );
    for (label, figures) in [("alone", &alone), ("while pruning", &beside)] {
        figures.print_latency(&format!(
            "W1 sqlite x{lanes} {label}: {:.0}/s, peak RSS {} MiB; time per instance",
            figures.completed as f64 / figures.elapsed.as_secs_f64(),
            peak_rss_mib()
        ));
    }
    if pruned.instances != count {
        return Err(format!("{} of {count} ended instances were pruned", pruned.instances));
    }
    let expected = alone.completed + beside.completed;
    if left != expected {
        return Err(format!("{left} instances are left; W1 started {expected} after the ended ones"));
    }
    Ok(())
}
