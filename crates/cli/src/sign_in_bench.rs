//! `flowstone bench --modes sign-in-flood`: the latency of legitimate requests while a flood
//! of wrong passwords arrives.
//!
//! Attackers send HTTP Basic with made-up user names and wrong passwords from the loopback
//! addresses 127.0.0.2 … 127.0.0.9, `concurrency` requests at a time; beside them, from
//! 127.0.0.1, a signed-in client (its credentials remembered) and first sign-ins of fresh users
//! (each a full password check) are timed. Figures: attack requests per second and how they
//! were answered, the two legitimate latencies, and the process's peak memory.

use crate::bench::{BENCH_PASSWORD, Figures, peak_rss_mib};
use crate::client::basic;
use flowstone_server::RuntimeOptions;
use reqwest::StatusCode;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Users made for first sign-ins.
const FRESH_USERS: usize = 100;

/// How long (µs) 15 refusals of a wrong password take, one after another from `address`, for
/// the user names `name(0..15)` (under the address's allowance of free failures).
async fn refusal_times(base: &str, address: [u8; 4], name: impl Fn(usize) -> String) -> Result<Vec<u32>, String> {
    let client = reqwest::Client::builder().local_address(IpAddr::from(address)).build().map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    for i in 0..15 {
        let t = Instant::now();
        let answer =
            client.get(format!("{base}/process")).header("authorization", basic(&name(i), "wrong")).send().await;
        if answer.is_ok_and(|r| r.status() == StatusCode::UNAUTHORIZED) {
            times.push(t.elapsed().as_micros() as u32);
        }
    }
    Ok(times)
}

pub(crate) async fn flood(seconds: f64, concurrency: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let server =
        crate::bench::bench_server(&dir, None, RuntimeOptions { stones: Vec::new(), ..RuntimeOptions::default() })
            .await?;
    let base = format!("http://{}", server.addr());
    let admin = reqwest::Client::new();
    for i in 0..FRESH_USERS {
        let created = admin
            .post(format!("{base}/flowable-rest/service/identity/users"))
            .header("authorization", basic("admin", BENCH_PASSWORD))
            .json(&serde_json::json!({"id": format!("fresh{i}"), "password": "fresh-password"}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if created.status() != StatusCode::CREATED {
            return Err(format!("cannot make user fresh{i}: {}", created.status()));
        }
    }
    // Before the flood: refusals of known and unknown user names take the same time.
    let known = refusal_times(&base, [127, 0, 0, 10], |i| format!("fresh{}", FRESH_USERS - 1 - i)).await?;
    let unknown = refusal_times(&base, [127, 0, 0, 11], |i| format!("nobody{i}")).await?;
    let figures =
        |latencies: Vec<u32>| Figures { completed: latencies.len() as u64, elapsed: Duration::ZERO, latencies };
    figures(known).print_latency("a wrong password for a known user is refused in");
    figures(unknown).print_latency("a password for an unknown user is refused in");
    let stop = Arc::new(AtomicBool::new(false));
    let (refused, held, other) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut attackers = Vec::new();
    for n in 0..concurrency.max(1) {
        let address: IpAddr = [127, 0, 0, 2 + (n % 8) as u8].into();
        let client = reqwest::Client::builder().local_address(address).build().map_err(|e| e.to_string())?;
        let (stop, refused, held, other, url) =
            (stop.clone(), refused.clone(), held.clone(), other.clone(), format!("{base}/process"));
        attackers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let answer =
                    client.get(&url).header("authorization", basic(&format!("mallory{n}x{i}"), "guess")).send().await;
                let counter = match answer.map(|r| r.status()) {
                    Ok(StatusCode::UNAUTHORIZED) => &refused,
                    Ok(StatusCode::TOO_MANY_REQUESTS) => &held,
                    _ => &other,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    let run = Duration::from_secs_f64(seconds);
    let (mut signed_in, mut fresh, mut fresh_refused) = (Vec::new(), Vec::new(), 0);
    let mut next_fresh = 0;
    while started.elapsed() < run {
        let t = Instant::now();
        let answer =
            admin.get(format!("{base}/process")).header("authorization", basic("admin", BENCH_PASSWORD)).send().await;
        if answer.is_ok_and(|r| r.status() == StatusCode::OK) {
            signed_in.push(t.elapsed().as_micros() as u32);
        }
        if next_fresh < FRESH_USERS {
            let t = Instant::now();
            let first = reqwest::Client::new()
                .get(format!("{base}/process"))
                .header("authorization", basic(&format!("fresh{next_fresh}"), "fresh-password"))
                .send()
                .await;
            if first.as_ref().is_ok_and(|r| r.status() == StatusCode::OK) {
                fresh.push(t.elapsed().as_micros() as u32);
            } else {
                fresh_refused += 1;
            }
            next_fresh += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        let _ = a.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (refused, held, other) =
        (refused.load(Ordering::Relaxed), held.load(Ordering::Relaxed), other.load(Ordering::Relaxed));
    println!(
        "sign-in flood x{concurrency} from 8 addresses: {:.0} attempts/s ({refused} refused 401 after a check, {held} held 429, {other} other), peak RSS {} MiB",
        (refused + held + other) as f64 / elapsed,
        peak_rss_mib()
    );
    figures(signed_in).print_latency("  beside it, a signed-in client's request");
    figures(fresh).print_latency(&format!(
        "  beside it, a first sign-in (a full password check; {fresh_refused} of them refused as the checks were busy)"
    ));
    server.stop().await;
    Ok(())
}
