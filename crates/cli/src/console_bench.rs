//! `flowstone bench --modes console`: the console's pages on big data, through the real HTTP
//! server on SQLite — the instance list (first page with its counts per status, and a status
//! filter) over `--ended` W1 instances, and the page of a 500-node model (its diagram drawn
//! by the layered layout) and of an instance that ran through all of it. Each page is fetched
//! 20 times after one warm-up; the figures are the time to the whole answer on the loopback.

use crate::bench::{BenchArgs, Figures};
use flowstone_engine::StartOptions;
use flowstone_server::{Config, RuntimeOptions, Server};
use serde_json::Map;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tasks in the big model's chain (with its start and end: 500 nodes).
const CHAIN: usize = 498;
/// Fetches of each page.
const SAMPLES: usize = 20;

/// A model of `CHAIN` tasks one after another, without diagram geometry.
fn chain_model() -> String {
    let mut xml = String::from(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="bench"><process id="chain500" isExecutable="true"><startEvent id="s"/>"#,
    );
    let mut previous = "s".to_owned();
    for i in 0..CHAIN {
        let _ = write!(
            xml,
            r#"<sequenceFlow id="f{i}" sourceRef="{previous}" targetRef="t{i}"/><task id="t{i}" name="Step {i}"/>"#
        );
        previous = format!("t{i}");
    }
    let _ = write!(
        xml,
        r#"<sequenceFlow id="f-end" sourceRef="{previous}" targetRef="e"/><endEvent id="e"/></process></definitions>"#
    );
    xml
}

/// Fetches `path` [`SAMPLES`] times (after one warm-up) with the header `credentials` (the
/// session cookie, or HTTP Basic for an API).
async fn time_page(
    client: &reqwest::Client,
    base: &str,
    credentials: (&str, &str),
    path: &str,
) -> Result<Figures, String> {
    let fetch = || async {
        let resp = client
            .get(format!("{base}{path}"))
            .header(credentials.0, credentials.1)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        let body = String::from_utf8_lossy(&body);
        if !status.is_success() {
            return Err(format!("{path} answered {status}: {body}"));
        }
        Ok(body.len())
    };
    fetch().await?;
    let (started, mut latencies) = (Instant::now(), Vec::with_capacity(SAMPLES));
    for _ in 0..SAMPLES {
        let t = Instant::now();
        fetch().await?;
        latencies.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
    }
    Ok(Figures { completed: SAMPLES as u64, elapsed: started.elapsed(), latencies })
}

/// Runs the console mode over `count` ended W1 instances.
pub(crate) async fn run(count: u64, args: &BenchArgs) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = Config {
        listen: "127.0.0.1:0".parse().map_err(|e: std::net::AddrParseError| e.to_string())?,
        data_dir: dir.path().to_path_buf(),
        database: None,
        load_examples: false,
        runtime: RuntimeOptions::default(),
        admin_password: Some("bench".into()),
        bk_apps: Vec::new(),
        http: flowstone_server::HttpLimits::default(),
        anonymous: None,
    };
    let server = Server::start(&config).await.map_err(|e| e.to_string())?;
    let runtime = server.runtime().clone();
    let w1 = runtime.deploy(crate::bench::w1_source(args)?.as_str()).await.map_err(|e| e.to_string())?.remove(0);
    crate::prune_bench::fill_ended(&runtime, &Arc::new(w1), count).await?;
    let big = Arc::new(runtime.deploy(&chain_model()).await.map_err(|e| e.to_string())?.remove(0));
    let ran = runtime
        .start_instance(big.clone(), "chain".into(), None, Map::new(), StartOptions::default())
        .await
        .map_err(|e| e.to_string())?;

    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let signed = client
        .post(format!("{base}/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=admin&password=bench")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let cookie = signed
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("signing in gave no session cookie")?
        .to_owned();
    let today = jiff::Zoned::now().date();
    let pages = [
        (format!("instance list over {} instances, first page with counts", count + 1), "/console".to_owned()),
        ("instance list filtered by status".to_owned(), "/console?status=completed".to_owned()),
        ("instance list started from today (all)".to_owned(), format!("/console?from={today}")),
        ("instance list started before 2000 (none)".to_owned(), "/console?to=2000-01-01".to_owned()),
        ("instance list waiting for a timer (none)".to_owned(), "/console?waiting=timer".to_owned()),
        (format!("model of {} nodes, diagram and source", CHAIN + 2), format!("/console/models/{}", big.id)),
        (format!("instance of that model, {CHAIN} task records"), format!("/console/instances/{}", ran.id)),
    ];
    for (what, path) in &pages {
        time_page(&client, &base, ("cookie", &cookie), path).await?.print_latency(&format!("console: {what}"));
    }
    let basic = format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "admin:bench"));
    let image = format!("/flowable-rest/service/repository/process-definitions/{}/image", big.id);
    let what = format!("model of {} nodes as PNG (Flowable's definition image)", CHAIN + 2);
    time_page(&client, &base, ("authorization", &basic), &image).await?.print_latency(&what);
    server.stop().await;
    Ok(())
}
