//! `flowstone bench --modes timers,timers-postgres,timers-postgres-kill`: pending timers, due
//! spread over a minute, fired while W1 instances run beside them.
//!
//! Each instance of a one-timer model waits on a `timeDate` of its own; the figures are how
//! late each fired (the time its firing was applied minus its due time, from its task record)
//! and whether each fired exactly once: every instance completed with one timer record,
//! completed, and no timer is left. On PostgreSQL two runtimes (two servers' worth: each its
//! own pool, committer and timer service) share the database; the `kill` mode stops one
//! without handing its leases back halfway through, as a `kill -9` would leave them.

use crate::bench::{BenchArgs, peak_rss_mib};
use flowstone_engine::StartOptions;
use flowstone_server::{Runtime, RuntimeOptions};
use flowstone_store::{Page, PgStore, SqliteStore, Store, TimerQuery};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const TIMED: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL">
  <process id="timed"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="wait"/>
    <intermediateCatchEvent id="wait"><timerEventDefinition><timeDate>${due}</timeDate></timerEventDefinition></intermediateCatchEvent>
    <sequenceFlow sourceRef="wait" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

/// How long the due times are spread over.
const SPREAD_MS: i64 = 60_000;

/// Runs one timers mode with `count` timers.
pub(crate) async fn run(mode: &str, count: u64, args: &BenchArgs) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (stores, servers): (Vec<Arc<dyn Store>>, &str) = match mode {
        "timers" => {
            (vec![Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.map_err(|e| e.to_string())?)], "1 server")
        }
        _ => {
            let url = PgStore::create_database(&args.postgres, "flowstone_timers").await.map_err(|e| e.to_string())?;
            let mut stores: Vec<Arc<dyn Store>> = Vec::new();
            for _ in 0..2 {
                stores.push(Arc::new(PgStore::open(&url).await.map_err(|e| e.to_string())?));
            }
            (stores, "2 servers")
        }
    };
    let lease = Duration::from_secs(5);
    let mut runtimes = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let options = RuntimeOptions { node: format!("bench-{i}"), lease, ..RuntimeOptions::default() };
        runtimes.push(Runtime::start(store.clone(), options).await.map_err(|e| e.to_string())?);
    }
    let timed = Arc::new(runtimes[0].deploy(TIMED).await.map_err(|e| e.to_string())?.remove(0));
    let w1 = Arc::new(
        runtimes[0].deploy(crate::bench::w1_source(args)?.as_str()).await.map_err(|e| e.to_string())?.remove(0),
    );

    // Every timer is set before the first is due: at least 2,000 starts a second.
    let lead = 5_000 + (count as i64) / 2;
    let base = flowstone_server::now_ms() + lead;
    let due_of = move |n: u64| base + (n as i64 * SPREAD_MS) / count.max(1) as i64;
    let made = std::time::Instant::now();
    let mut dues: HashMap<String, i64> = HashMap::with_capacity(count as usize);
    let mut set = tokio::task::JoinSet::new();
    let per = count.div_ceil(256);
    for lane in 0..256u64 {
        let (runtime, model) = (runtimes[lane as usize % runtimes.len()].clone(), timed.clone());
        set.spawn(async move {
            let mut ids = Vec::new();
            for n in (lane * per)..((lane + 1) * per).min(count) {
                let due = jiff::Timestamp::from_millisecond(due_of(n)).map_err(|e| e.to_string())?.to_string();
                let vars = Map::from_iter([("due".to_owned(), Value::String(due))]);
                let row = runtime
                    .start_instance(model.clone(), "timer".into(), None, vars, StartOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
                ids.push((row.id, due_of(n)));
            }
            Ok::<_, String>(ids)
        });
    }
    while let Some(lane) = set.join_next().await {
        dues.extend(lane.map_err(|e| e.to_string())??);
    }
    let setting = made.elapsed();
    let slack = base - flowstone_server::now_ms();
    println!(
        "{count} timers set in {:.1} s ({:.0}/s), {} before the first is due",
        setting.as_secs_f64(),
        count as f64 / setting.as_secs_f64(),
        if slack >= 0 { format!("{:.1} s", slack as f64 / 1000.0) } else { format!("LATE by {} ms", -slack) }
    );

    // W1 beside the firings, until the last is due.
    let stop = Arc::new(AtomicBool::new(false));
    let beside = Arc::new(AtomicU64::new(0));
    let mut load = tokio::task::JoinSet::new();
    for lane in 0..32usize {
        let (runtime, model, stop, beside) =
            (runtimes[lane % runtimes.len()].clone(), w1.clone(), stop.clone(), beside.clone());
        load.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let row = runtime
                    .start_instance(model.clone(), "w1".into(), None, Map::new(), StartOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
                if row.status != "completed" {
                    return Err(format!("W1 instance {} is {}", row.id, row.status));
                }
                beside.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>(())
        });
    }
    let wait_until = |at: i64| {
        tokio::time::sleep(Duration::from_millis(at.saturating_sub(flowstone_server::now_ms()).max(0) as u64))
    };
    let w1_from = flowstone_server::now_ms().max(base);
    if mode == "timers-postgres-kill" {
        wait_until(base + SPREAD_MS / 2).await;
        // Gone without a word: its leases stay until they end, as after a kill -9.
        runtimes[1].shutdown();
        println!("server bench-1 stopped without handing back its timers, halfway through");
    }
    wait_until(base + SPREAD_MS).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(lane) = load.join_next().await {
        if let Ok(Err(e)) = lane
            && !e.contains("shutting down")
        {
            return Err(e);
        }
    }
    let w1_done = beside.load(Ordering::Relaxed);
    let w1_rate = w1_done as f64 / ((flowstone_server::now_ms() - w1_from).max(1) as f64 / 1000.0);

    // Every timer fires (a killed server's after their lease ends).
    let store = stores[0].clone();
    let deadline = flowstone_server::now_ms() + 60_000 + lease.as_millis() as i64;
    loop {
        let left =
            store.list_timers(&TimerQuery::default(), Page { offset: 0, limit: 1 }).await.map_err(|e| e.to_string())?.1;
        if left == 0 {
            break;
        }
        if flowstone_server::now_ms() > deadline {
            return Err(format!("{left} timers never fired"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // How late each fired, and that each fired once: every instance ended, with one timer
    // record, closed when its timer fired.
    let ids: Vec<(String, i64)> = dues.iter().map(|(id, due)| (id.clone(), *due)).collect();
    let ids = Arc::new(ids);
    let mut readers = tokio::task::JoinSet::new();
    for lane in 0..8usize {
        let (store, ids) = (store.clone(), ids.clone());
        readers.spawn(async move {
            let mut found = Vec::new();
            for (id, due) in ids.iter().skip(lane).step_by(8) {
                let tasks = store.tasks_of_instance(id).await.map_err(|e| e.to_string())?;
                let timers: Vec<_> = tasks.iter().filter(|t| t.record.element == "wait").collect();
                let ended = store.instance(id).await.map_err(|e| e.to_string())?.map(|r| r.status).unwrap_or_default();
                if ended != "completed" {
                    return Err(format!("instance {id} is {ended}, not completed"));
                }
                let fired = timers.first().and_then(|t| t.record.end_time).map(|end| end - due);
                found.push((id.clone(), timers.len(), fired));
            }
            Ok::<_, String>(found)
        });
    }
    let mut lateness = Vec::with_capacity(count as usize);
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(count as usize);
    while let Some(lane) = readers.join_next().await {
        for (id, records, fired) in lane.map_err(|e| e.to_string())?? {
            if let Some(late) = fired {
                lateness.push(late);
            }
            seen.insert(id, records);
        }
    }
    let lost = (count as usize).saturating_sub(lateness.len());
    let twice = seen.values().filter(|n| **n > 1).count();
    lateness.sort_unstable();
    let pct = |p: f64| {
        lateness.get(((lateness.len() as f64 * p) as usize).min(lateness.len().saturating_sub(1))).copied().unwrap_or(0)
    };
    println!(
        "{mode} ({servers}): {} fired, {lost} lost, {twice} fired twice; late by p50 {} ms, p99 {} ms, max {} ms; \
         W1 beside {w1_rate:.0}/s; peak RSS {} MiB",
        lateness.len(),
        pct(0.5),
        pct(0.99),
        lateness.last().copied().unwrap_or(0),
        peak_rss_mib()
    );
    for runtime in &runtimes {
        runtime.shutdown();
    }
    if lost > 0 || twice > 0 {
        return Err(format!("{lost} timers lost, {twice} fired twice"));
    }
    Ok(())
}
