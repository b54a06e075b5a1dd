//! `flowstone bench --modes tasks[,tasks-postgres]`: Flowable's task list with a large
//! backlog of open tasks.
//!
//! The backlog is made the way users make it: instances of a review process are started
//! through the runtime until `--tasks` user tasks are open, half assigned to one of 1,000
//! users, half offered to one of 50 candidate groups, with priorities and a number
//! variable. Then each query shape is asked through HTTP, one request after another with
//! varying parameters, and its latency percentiles are printed; every answer's `total` is
//! checked against the count the backlog was built with, so a query that answers fast by
//! answering wrong fails the run.

use crate::bench::{BENCH_PASSWORD, Figures};
use flowstone_engine::StartOptions;
use flowstone_server::{RuntimeOptions, Server};
use flowstone_store::{GroupRow, PgStore, UserRow};
use serde_json::{Value, json};
use std::time::Instant;

const MODEL: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:flowable="http://flowable.org/bpmn">
  <process id="review" name="Review"><startEvent id="s"/><sequenceFlow sourceRef="s" targetRef="t"/>
  <userTask id="t" name="Review ${item}" flowable:assignee="${assignee}" flowable:candidateGroups="${group}" flowable:priority="${priority}"/>
  <sequenceFlow sourceRef="t" targetRef="e"/><endEvent id="e"/></process></definitions>"#;

const USERS: u64 = 1_000;
const GROUPS: u64 = 50;
/// Requests per query shape, after `WARM_UP` that are not counted.
const ROUNDS: u64 = 200;
const WARM_UP: u64 = 20;

/// Instance `n`: even ones assigned to user `n/2 % USERS`, odd ones offered to group
/// `n/2 % GROUPS`; priority `n % 100`.
fn variables(n: u64) -> serde_json::Map<String, Value> {
    let (assignee, group) = if n.is_multiple_of(2) {
        (json!(format!("user{}", n / 2 % USERS)), Value::Null)
    } else {
        (Value::Null, json!(format!("group{}", n / 2 % GROUPS)))
    };
    let vars = json!({"item": n, "assignee": assignee, "group": group, "priority": n % 100, "amount": n % 1000});
    vars.as_object().cloned().unwrap_or_default()
}

/// How many of `tasks` instances satisfy `keep`.
fn count(tasks: u64, keep: impl Fn(u64) -> bool) -> u64 {
    (0..tasks).filter(|&n| keep(n)).count() as u64
}

/// Groups of user `u`: `u % GROUPS` and `(u + 7) % GROUPS`.
fn groups_of(u: u64) -> [u64; 2] {
    [u % GROUPS, (u + 7) % GROUPS]
}

/// Round `k` of a query shape: the path under the service root, a body for a POST, and the
/// `total` the answer must give.
type Shape<'a> = dyn Fn(u64) -> (String, Option<Value>, u64) + 'a;

/// Builds the backlog, then measures every query shape.
pub(crate) async fn run(tasks: u64, postgres: Option<&str>) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let database = match postgres {
        Some(url) => Some(PgStore::create_database(url, "flowstone_bench_tasks").await.map_err(|e| e.to_string())?),
        None => None,
    };
    let server = crate::bench::bench_server(&dir, database.clone(), RuntimeOptions::default()).await?;
    let result = fill_and_measure(&server, tasks, database.as_deref()).await;
    server.stop().await;
    result
}

async fn fill_and_measure(server: &Server, tasks: u64, postgres: Option<&str>) -> Result<(), String> {
    let runtime = server.runtime().clone();
    let store = runtime.store().clone();
    for g in 0..GROUPS {
        let group = GroupRow { id: format!("group{g}"), ..GroupRow::default() };
        store.create_group(&group).await.map_err(|e| e.to_string())?;
    }
    for u in 0..USERS {
        let user = UserRow { id: format!("user{u}"), ..UserRow::default() };
        store.create_user(&user).await.map_err(|e| e.to_string())?;
        for g in groups_of(u) {
            store.add_member(&format!("group{g}"), &user.id).await.map_err(|e| e.to_string())?;
        }
    }
    let model = std::sync::Arc::new(runtime.deploy(MODEL).await.map_err(|e| e.to_string())?.remove(0));
    let filling = Instant::now();
    let mut starts = tokio::task::JoinSet::new();
    const LANES: u64 = 256;
    for lane in 0..LANES {
        let (runtime, model) = (runtime.clone(), model.clone());
        starts.spawn(async move {
            for n in (lane..tasks).step_by(LANES as usize) {
                runtime
                    .start_instance(model.clone(), "review".into(), None, variables(n), StartOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(())
        });
    }
    while let Some(done) = starts.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    println!("{tasks} open tasks made in {:.1} s", filling.elapsed().as_secs_f64());
    if let Some(url) = postgres {
        // What autovacuum does on a server where it is on (the default).
        PgStore::open(url).await.map_err(|e| e.to_string())?.analyze().await.map_err(|e| e.to_string())?;
    }

    let base = format!("http://{}/flowable-rest/service", server.addr());
    let client =
        crate::client::signed_in(reqwest::Client::builder(), Some(&crate::client::basic("admin", BENCH_PASSWORD)))?;
    let assigned = |u: u64| count(tasks, |n| n.is_multiple_of(2) && n / 2 % USERS == u);
    let offered = |g: u64| count(tasks, |n| n % 2 == 1 && n / 2 % GROUPS == g);
    let shapes: Vec<(&str, Box<Shape<'_>>)> = vec![
        (
            "assignee=U, size=10",
            Box::new(|k| {
                let u = k * 37 % USERS;
                (format!("runtime/tasks?assignee=user{u}&size=10"), None, assigned(u))
            }),
        ),
        (
            "candidateUser=U (groups), sort=priority desc, start=100",
            Box::new(|k| {
                let u = k * 37 % USERS;
                let expected = groups_of(u).iter().map(|&g| offered(g)).sum();
                (
                    format!("runtime/tasks?candidateUser=user{u}&sort=priority&order=desc&start=100&size=10"),
                    None,
                    expected,
                )
            }),
        ),
        (
            "candidateGroup=G, sort=createTime, start=500",
            Box::new(|k| {
                let g = k % GROUPS;
                (format!("runtime/tasks?candidateGroup=group{g}&sort=createTime&start=500&size=10"), None, offered(g))
            }),
        ),
        (
            "nameLike=Review 1%, minimumPriority=90, size=25",
            Box::new(|_| {
                let expected = count(tasks, |n| n.to_string().starts_with('1') && n % 100 >= 90);
                ("runtime/tasks?nameLike=Review%201%25&minimumPriority=90&size=25".into(), None, expected)
            }),
        ),
        (
            "POST query/tasks assignee=U, processInstanceVariables amount > 500",
            Box::new(|k| {
                let u = k * 37 % USERS;
                let body = json!({"assignee": format!("user{u}"), "size": 10,
                    "processInstanceVariables": [{"name": "amount", "value": 500, "operation": "greaterThan", "type": "long"}]});
                let expected = count(tasks, |n| n.is_multiple_of(2) && n / 2 % USERS == u && n % 1000 > 500);
                ("query/tasks".into(), Some(body), expected)
            }),
        ),
        (
            "POST query/tasks processInstanceVariables amount = V alone, size=10",
            Box::new(|k| {
                let v = k * 7 % 1000;
                let body = json!({"size": 10,
                    "processInstanceVariables": [{"name": "amount", "value": v, "operation": "equals"}]});
                ("query/tasks".into(), Some(body), count(tasks, |n| n % 1000 == v))
            }),
        ),
    ];
    for (label, shape) in &shapes {
        let mut latencies = Vec::with_capacity(ROUNDS as usize);
        let mut began = Instant::now();
        // The first rounds warm the caches and are not counted.
        for k in 0..WARM_UP + ROUNDS {
            if k == WARM_UP {
                latencies.clear();
                began = Instant::now();
            }
            let (path, body, expected) = shape(k);
            let t = Instant::now();
            let req = match &body {
                Some(body) => client.post(format!("{base}/{path}")).json(body),
                None => client.get(format!("{base}/{path}")),
            };
            let answer: Value = crate::bench::post_json(req).await?;
            latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            if answer["total"].as_u64() != Some(expected) {
                return Err(format!("{path}: total {} where {expected} tasks match", answer["total"]));
            }
        }
        let figures = Figures { completed: ROUNDS, elapsed: began.elapsed(), latencies };
        figures.print_latency(&format!("runtime/tasks over {tasks} open: {label}"));
    }
    Ok(())
}
