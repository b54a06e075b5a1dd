//! The stones every server runs in-process.

use crate::{MachineStone, Mocked, Stone, StoneResult, Work, injected_failure, own_params};
use flowstone_engine::Action;
use serde_json::{Map, Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Every built-in stone; `MachineStone` keeps its machines under `machines`.
pub fn builtin(machines: &Path) -> Vec<Arc<dyn Stone>> {
    vec![
        Arc::new(NoopStone),
        Arc::new(SleepStone),
        Arc::new(SleepTimerStone),
        Arc::new(PauseNodeStone),
        Arc::new(MachineStone::new(machines)),
        Arc::new(BillingStone),
    ]
}

/// The built-in stones named in a comma-separated list (`all` for every one, `none` for
/// none).
///
/// # Errors
/// A message naming an unknown stone and the known ones.
pub fn select(names: &str, machines: &Path) -> Result<Vec<Arc<dyn Stone>>, String> {
    let all = builtin(machines);
    match names.trim() {
        "all" => return Ok(all),
        "none" | "" => return Ok(Vec::new()),
        _ => {}
    }
    let known: Vec<String> = all.iter().map(|s| s.name().to_owned()).collect();
    let wanted: Vec<&str> = names.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    if let Some(unknown) = wanted.iter().find(|n| !known.iter().any(|k| k == *n)) {
        return Err(format!("no built-in stone `{unknown}`; the stones are {} (or all, none)", known.join(", ")));
    }
    Ok(all.into_iter().filter(|s| wanted.contains(&s.name())).collect())
}

/// `pause_node`: bk-sops' pause, a node that waits for an operator's callback (`operate_node`
/// resume or callback, `node_callback`), whose data become its outputs.
pub struct PauseNodeStone;

#[async_trait::async_trait]
impl Stone for PauseNodeStone {
    fn name(&self) -> &str {
        "pause_node"
    }

    fn summary(&self) -> &str {
        "Waits for an operator's callback; its data become the node's outputs."
    }

    fn awaits_callback(&self) -> bool {
        true
    }

    async fn start(&self, work: &Work) -> StoneResult {
        injected_failure(&work.params, Action::Start)?;
        Ok(Map::new())
    }
}

/// `noop`: echoes its params as outputs.
pub struct NoopStone;

#[async_trait::async_trait]
impl Stone for NoopStone {
    fn name(&self) -> &str {
        "noop"
    }

    fn summary(&self) -> &str {
        "Does nothing and answers its inputs as outputs."
    }

    async fn start(&self, work: &Work) -> StoneResult {
        injected_failure(&work.params, Action::Start)?;
        Ok(own_params(&work.params))
    }
}

/// `sleep`: waits `duration` (seconds as a number, or ISO-8601 / friendly text such as
/// `PT2S` or `500ms`), then outputs `slept` in milliseconds.
pub struct SleepStone;

impl SleepStone {
    fn duration(params: &Value) -> Result<Duration, String> {
        let bad = |v: &Value| format!("`duration` must be seconds or a duration such as PT2S, not {v}");
        match params.get("duration") {
            None => Ok(Duration::from_secs(1)),
            Some(Value::Number(n)) => {
                let secs =
                    n.as_f64().filter(|s| s.is_finite() && *s >= 0.0).ok_or_else(|| bad(&Value::Number(n.clone())))?;
                Ok(Duration::from_secs_f64(secs))
            }
            Some(Value::String(text)) => {
                let d: jiff::SignedDuration = text.parse().map_err(|_| bad(&Value::String(text.clone())))?;
                d.try_into().map_err(|_| bad(&Value::String(text.clone())))
            }
            Some(other) => Err(bad(other)),
        }
    }
}

#[async_trait::async_trait]
impl Stone for SleepStone {
    fn name(&self) -> &str {
        "sleep"
    }

    fn summary(&self) -> &str {
        "Waits `duration` (seconds, or a duration such as PT2S) and outputs `slept` in milliseconds."
    }

    async fn start(&self, work: &Work) -> StoneResult {
        let d = Self::duration(&work.params)?;
        tokio::time::sleep(d).await;
        injected_failure(&work.params, Action::Start)?;
        Ok(Map::from_iter([("slept".to_owned(), json!(d.as_millis() as u64))]))
    }
}

/// `sleep_timer`: bk-sops' timer component. `bk_timing` is seconds (a number or numeric
/// text) or a date-time `YYYY-MM-DD HH:MM:SS` (UTC) to wait until; outputs `_result`.
/// Seconds count from when the job was queued (when the server says): after a crash the job
/// runs again and waits what is left, as it does until a date-time.
pub struct SleepTimerStone;

impl SleepTimerStone {
    /// How long a job queued at `queued` (milliseconds since the epoch) still waits at `now`.
    fn wait(params: &Value, queued: Option<i64>, now: jiff::Timestamp) -> Result<Duration, String> {
        let timing = params.get("bk_timing").ok_or("`bk_timing` is required: seconds or a date-time")?;
        let text = match timing {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.trim().to_owned(),
            other => return Err(format!("`bk_timing` must be seconds or a date-time, not {other}")),
        };
        if let Ok(secs) = text.parse::<f64>() {
            if !(secs.is_finite() && secs >= 0.0) {
                return Err(format!("`bk_timing` must not be negative, got {text}"));
            }
            let wait = Duration::try_from_secs_f64(secs).map_err(|_| format!("`bk_timing` {text} is too long"))?;
            let passed = queued.map_or(0, |at| (now.as_millisecond() - at).max(0)).unsigned_abs();
            return Ok(wait.saturating_sub(Duration::from_millis(passed)));
        }
        let at: jiff::civil::DateTime =
            text.parse().map_err(|_| format!("`bk_timing` must be seconds or `YYYY-MM-DD HH:MM:SS`, not `{text}`"))?;
        let at = at.to_zoned(jiff::tz::TimeZone::UTC).map_err(|e| e.to_string())?.timestamp();
        Ok(now.duration_until(at).try_into().unwrap_or(Duration::ZERO))
    }
}

#[async_trait::async_trait]
impl Stone for SleepTimerStone {
    fn name(&self) -> &str {
        "sleep_timer"
    }

    fn summary(&self) -> &str {
        "Waits `bk_timing` seconds or until a date-time `YYYY-MM-DD HH:MM:SS` (UTC); outputs `_result`."
    }

    async fn start(&self, work: &Work) -> StoneResult {
        tokio::time::sleep(Self::wait(&work.params, work.queued_at, jiff::Timestamp::now())?).await;
        Ok(Map::from_iter([("_result".to_owned(), json!(true))]))
    }
}

/// `BillingStone`: a simulated billing order for the cluster example.
pub struct BillingStone;

#[async_trait::async_trait]
impl Stone for BillingStone {
    fn name(&self) -> &str {
        "BillingStone"
    }

    fn summary(&self) -> &str {
        "Places a simulated billing order for the cluster example."
    }

    async fn start(&self, work: &Work) -> StoneResult {
        injected_failure(&work.params, Action::Start)?;
        Ok(Map::from_iter([
            ("orderId".to_owned(), json!(uuid::Uuid::new_v4().to_string())),
            ("buyNum".to_owned(), work.params.get("buyNum").cloned().unwrap_or(json!(1))),
        ]))
    }

    /// Refunds the order: nothing stays billed.
    async fn rollback(&self, work: &Work) -> StoneResult {
        injected_failure(&work.params, Action::Rollback)?;
        Ok(Map::from_iter([("refunded".to_owned(), work.outputs.get("orderId").cloned().unwrap_or(Value::Null))]))
    }

    async fn delete(&self, work: &Work) -> StoneResult {
        injected_failure(&work.params, Action::Delete)?;
        Ok(Map::from_iter([("closed".to_owned(), work.outputs.get("orderId").cloned().unwrap_or(Value::Null))]))
    }

    async fn mock(&self, work: &Work) -> Result<Mocked, String> {
        injected_failure(&work.params, Action::Mock)?;
        Ok(Mocked::Passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(params: Value) -> Work {
        Work { params, outputs: Map::new(), queued_at: None }
    }

    #[tokio::test]
    async fn noop_echoes_params_without_engine_fields() {
        let out = NoopStone.start(&work(json!({"a": 1, "namespace": "n", "queue": "noop"}))).await;
        assert_eq!(out, Ok(Map::from_iter([("a".to_owned(), json!(1))])));
    }

    #[tokio::test]
    async fn injected_failure_fails_with_its_reason() {
        assert_eq!(NoopStone.start(&work(json!({"fail": "disk full"}))).await, Err("disk full".into()));
        assert!(BillingStone.rollback(&work(json!({"fail": {"rollback": true}}))).await.is_err());
    }

    #[test]
    fn stones_are_selected_by_name() {
        let names = |list: &str| {
            select(list, Path::new("m")).map(|s| s.iter().map(|s| s.name().to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(names("MachineStone, noop"), Ok(vec!["noop".to_owned(), "MachineStone".to_owned()]));
        assert_eq!(names("none"), Ok(vec![]));
        assert_eq!(names("all").map(|n| n.len()), Ok(6));
        assert!(names("Nope").is_err_and(|e| e.contains("`Nope`") && e.contains("BillingStone")));
    }

    #[test]
    fn sleep_timer_waits_seconds_or_until_a_date_time() {
        let now: jiff::Timestamp = "2026-01-01T10:00:00Z".parse().unwrap_or_else(|e| panic!("{e}"));
        let wait = |timing: Value| SleepTimerStone::wait(&json!({"bk_timing": timing}), None, now);
        assert_eq!(wait(json!("2")), Ok(Duration::from_secs(2)));
        assert_eq!(wait(json!(0.5)), Ok(Duration::from_millis(500)));
        assert_eq!(wait(json!("2026-01-01 10:01:00")), Ok(Duration::from_secs(60)));
        assert_eq!(wait(json!("2025-12-31 10:00:00")), Ok(Duration::ZERO), "a time passed waits no more");
        assert!(wait(json!("soon")).is_err_and(|e| e.contains("YYYY-MM-DD")));
        assert!(wait(json!(-3)).is_err());
        assert!(SleepTimerStone::wait(&json!({}), None, now).is_err());
        assert!(wait(json!(1e300)).is_err_and(|e| e.contains("too long")));
    }

    #[test]
    fn sleep_timer_run_again_after_a_crash_waits_what_is_left() {
        let now: jiff::Timestamp = "2026-01-01T10:00:00Z".parse().unwrap_or_else(|e| panic!("{e}"));
        let queued = |ago: i64| Some(now.as_millisecond() - ago);
        let wait = |ago| SleepTimerStone::wait(&json!({"bk_timing": "60"}), queued(ago), now);
        assert_eq!(wait(0), Ok(Duration::from_secs(60)));
        assert_eq!(wait(45_000), Ok(Duration::from_secs(15)), "queued 45 s before, 15 s are left");
        assert_eq!(wait(90_000), Ok(Duration::ZERO), "past its end, it ends at once");
        assert_eq!(wait(-5_000), Ok(Duration::from_secs(60)), "a clock behind the queue's waits it all");
    }

    #[tokio::test]
    async fn sleep_timer_reports_a_result() {
        let out = SleepTimerStone.start(&work(json!({"bk_timing": "0"}))).await;
        assert_eq!(out, Ok(Map::from_iter([("_result".to_owned(), json!(true))])));
    }

    #[test]
    fn sleep_durations_parse() {
        assert_eq!(SleepStone::duration(&json!({"duration": 0.5})), Ok(Duration::from_millis(500)));
        assert_eq!(SleepStone::duration(&json!({"duration": "PT2S"})), Ok(Duration::from_secs(2)));
        assert_eq!(SleepStone::duration(&json!({"duration": "250ms"})), Ok(Duration::from_millis(250)));
        assert!(SleepStone::duration(&json!({"duration": "soon"})).is_err());
        assert!(SleepStone::duration(&json!({"duration": -1})).is_err());
    }
}
