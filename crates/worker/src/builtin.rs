//! The stones every server runs in-process.

use crate::{Stone, StoneResult};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Every built-in stone.
pub fn builtin() -> Vec<Arc<dyn Stone>> {
    vec![Arc::new(NoopStone), Arc::new(SleepStone), Arc::new(MachineStone), Arc::new(BillingStone)]
}

/// The params a model gave, without the two the engine adds.
fn own_params(params: &Value) -> Map<String, Value> {
    let mut map = params.as_object().cloned().unwrap_or_default();
    map.remove("namespace");
    map.remove("queue");
    map
}

/// Fails when the params ask for it (`"fail": true` or `"fail": "reason"`), so that failure
/// paths of models can be exercised without a real executor.
fn injected_failure(params: &Value) -> Result<(), String> {
    match params.get("fail") {
        Some(Value::Bool(true)) => Err("failure injected by the `fail` param".into()),
        Some(Value::String(reason)) if !reason.is_empty() => Err(reason.clone()),
        _ => Ok(()),
    }
}

/// `noop`: echoes its params as outputs.
pub struct NoopStone;

#[async_trait::async_trait]
impl Stone for NoopStone {
    fn name(&self) -> &str {
        "noop"
    }

    async fn start(&self, params: &Value) -> StoneResult {
        injected_failure(params)?;
        Ok(own_params(params))
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

    fn reports_begin(&self) -> bool {
        true
    }

    async fn start(&self, params: &Value) -> StoneResult {
        let d = Self::duration(params)?;
        tokio::time::sleep(d).await;
        injected_failure(params)?;
        Ok(Map::from_iter([("slept".to_owned(), json!(d.as_millis() as u64))]))
    }
}

/// `MachineStone`: a simulated cloud machine for the cluster example; answers with a
/// machine id, an address and the instance type it was asked for.
pub struct MachineStone;

#[async_trait::async_trait]
impl Stone for MachineStone {
    fn name(&self) -> &str {
        "MachineStone"
    }

    async fn start(&self, params: &Value) -> StoneResult {
        injected_failure(params)?;
        let id = uuid::Uuid::new_v4();
        let bytes = id.as_bytes();
        Ok(Map::from_iter([
            ("machineId".to_owned(), json!(id.to_string())),
            ("ip".to_owned(), json!(format!("10.{}.{}.{}", bytes[0], bytes[1], bytes[2].max(1)))),
            ("instanceType".to_owned(), params.get("instanceType").cloned().unwrap_or(json!("m2.medium"))),
            ("state".to_owned(), json!("running")),
        ]))
    }
}

/// `BillingStone`: a simulated billing order for the cluster example.
pub struct BillingStone;

#[async_trait::async_trait]
impl Stone for BillingStone {
    fn name(&self) -> &str {
        "BillingStone"
    }

    async fn start(&self, params: &Value) -> StoneResult {
        injected_failure(params)?;
        Ok(Map::from_iter([
            ("orderId".to_owned(), json!(uuid::Uuid::new_v4().to_string())),
            ("buyNum".to_owned(), params.get("buyNum").cloned().unwrap_or(json!(1))),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn noop_echoes_params_without_engine_fields() {
        let out = NoopStone.start(&json!({"a": 1, "namespace": "n", "queue": "noop"})).await;
        assert_eq!(out, Ok(Map::from_iter([("a".to_owned(), json!(1))])));
    }

    #[tokio::test]
    async fn injected_failure_fails_with_its_reason() {
        assert_eq!(NoopStone.start(&json!({"fail": "disk full"})).await, Err("disk full".into()));
        assert!(MachineStone.start(&json!({"fail": true})).await.is_err());
    }

    #[test]
    fn sleep_durations_parse() {
        assert_eq!(SleepStone::duration(&json!({"duration": 0.5})), Ok(Duration::from_millis(500)));
        assert_eq!(SleepStone::duration(&json!({"duration": "PT2S"})), Ok(Duration::from_secs(2)));
        assert_eq!(SleepStone::duration(&json!({"duration": "250ms"})), Ok(Duration::from_millis(250)));
        assert!(SleepStone::duration(&json!({"duration": "soon"})).is_err());
        assert!(SleepStone::duration(&json!({"duration": -1})).is_err());
    }

    #[tokio::test]
    async fn machine_stone_reports_the_requested_type() {
        let out = MachineStone.start(&json!({"instanceType": "m2.large"})).await.unwrap_or_default();
        assert_eq!(out["instanceType"], json!("m2.large"));
        assert!(out["machineId"].is_string());
    }
}
