//! What a pipeline-tree activity allows and what guards its runs: the operator's flags
//! (`error_ignorable`, `skippable`, `retryable`), the timeout (`timeout_config`) and the
//! automatic retries (`auto_retry`) of a component node.
//!
//! bk-sops' limits hold: at most [`MAX_RETRY_TIMES`] automatic retries, at most
//! [`MAX_RETRY_INTERVAL`] seconds between them (larger values are cut to them, as bk-sops
//! does), and a timeout goes with neither ignorable errors nor automatic retries.

use super::err;
use crate::error::ModelError;
use crate::ir::{ActivityOptions, AutoRetry, NodeTimeout};
use serde_json::Value;

/// The most automatic retries a node may ask for.
const MAX_RETRY_TIMES: u32 = 10;
/// The longest wait in seconds before an automatic retry.
const MAX_RETRY_INTERVAL: u64 = 60;

/// The options of the activity `v` of id `id`; `component` for a ServiceActivity (a
/// subprocess node has no timeout or automatic retry of its own).
pub(super) fn activity_options(id: &str, v: &Value, component: bool) -> Result<ActivityOptions, ModelError> {
    // Left out, a flag has bamboo-engine's default: skippable and retryable, errors not ignored.
    let flag = |names: &[&str], default: bool| {
        names.iter().find_map(|n| v.get(*n).and_then(Value::as_bool)).unwrap_or(default)
    };
    let mut options = ActivityOptions {
        error_ignorable: flag(&["error_ignorable"], false),
        skippable: flag(&["skippable", "isSkipped"], true),
        retryable: flag(&["retryable", "can_retry"], true),
        timeout: None,
        auto_retry: None,
    };
    if !component {
        return Ok(options);
    }
    options.auto_retry = enabled(v, "auto_retry").map(auto_retry);
    options.timeout = enabled(v, "timeout_config").map(|c| timeout(id, c)).transpose()?;
    if options.timeout.is_some() && (options.error_ignorable || options.auto_retry.is_some()) {
        return Err(err(
            "ServiceActivity",
            id,
            "`timeout_config` cannot be enabled together with `error_ignorable` or `auto_retry`",
        ));
    }
    Ok(options)
}

/// The object `field` of `v` when its `enable` is true.
fn enabled<'a>(v: &'a Value, field: &str) -> Option<&'a Value> {
    v.get(field).filter(|c| c.get("enable").and_then(Value::as_bool) == Some(true))
}

/// A whole number, given as a number or as text (bk-sops reads both with `int()`); its
/// magnitude, as bk-sops takes it.
fn whole(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_i64().map(i64::unsigned_abs).or_else(|| n.as_f64().map(|f| f.abs() as u64)),
        Value::String(s) => s.trim().parse::<i64>().ok().map(i64::unsigned_abs),
        _ => None,
    }
}

/// `auto_retry`: `times` (left out or unreadable: the most) and `interval` in seconds (left
/// out: none; unreadable: the longest), each cut to bk-sops' limit.
fn auto_retry(c: &Value) -> AutoRetry {
    let times = c.get("times").map_or(Some(u64::from(MAX_RETRY_TIMES)), |t| whole(Some(t)));
    let interval = c.get("interval").map_or(Some(0), |i| whole(Some(i)));
    AutoRetry {
        times: times.map_or(MAX_RETRY_TIMES, |t| t.min(u64::from(MAX_RETRY_TIMES)) as u32),
        interval: interval.map_or(MAX_RETRY_INTERVAL, |i| i.min(MAX_RETRY_INTERVAL)),
    }
}

/// `timeout_config`: `seconds` (a whole number above zero) and `action` (`forced_fail`, the
/// default, or `forced_fail_and_skip`).
fn timeout(id: &str, c: &Value) -> Result<NodeTimeout, ModelError> {
    let seconds = match c.get("seconds") {
        Some(Value::Number(n)) => n.as_u64().filter(|s| *s > 0),
        _ => None,
    };
    let Some(seconds) = seconds else {
        let given = c.get("seconds").map_or_else(|| "nothing".to_owned(), Value::to_string);
        return Err(err(
            "ServiceActivity",
            id,
            format!("`timeout_config.seconds` must be a whole number of seconds above 0, not {given}"),
        ));
    };
    let then_skip = match c.get("action").and_then(Value::as_str) {
        None | Some("forced_fail") => false,
        Some("forced_fail_and_skip") => true,
        Some(other) => {
            return Err(err(
                "ServiceActivity",
                id,
                format!("`timeout_config.action` is `{other}`; it is `forced_fail` or `forced_fail_and_skip`"),
            ));
        }
    };
    Ok(NodeTimeout { seconds, then_skip })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options(v: &Value) -> Result<ActivityOptions, ModelError> {
        activity_options("n", v, true)
    }

    #[test]
    fn auto_retry_is_cut_to_bk_sops_limits_and_read_leniently() {
        let o = options(&json!({"auto_retry": {"enable": true, "interval": 5, "times": 3}})).unwrap();
        assert_eq!(o.auto_retry, Some(AutoRetry { interval: 5, times: 3 }));
        let o = options(&json!({"auto_retry": {"enable": true, "interval": "600", "times": -40}})).unwrap();
        assert_eq!(o.auto_retry, Some(AutoRetry { interval: MAX_RETRY_INTERVAL, times: MAX_RETRY_TIMES }));
        let o = options(&json!({"auto_retry": {"enable": true, "interval": "soon"}})).unwrap();
        assert_eq!(o.auto_retry, Some(AutoRetry { interval: MAX_RETRY_INTERVAL, times: MAX_RETRY_TIMES }));
        let o = options(&json!({"auto_retry": {"enable": false, "interval": 1, "times": 1}})).unwrap();
        assert_eq!(o.auto_retry, None, "a disabled retry is no retry");
    }

    #[test]
    fn a_timeout_reads_its_seconds_and_action() {
        let o = options(&json!({"timeout_config": {"enable": true, "seconds": 30, "action": "forced_fail_and_skip"}}))
            .unwrap();
        assert_eq!(o.timeout, Some(NodeTimeout { seconds: 30, then_skip: true }));
        let o = options(&json!({"timeout_config": {"enable": true, "seconds": 30}})).unwrap();
        assert_eq!(o.timeout, Some(NodeTimeout { seconds: 30, then_skip: false }));
        let o = options(&json!({"timeout_config": {"enable": false, "seconds": "x", "action": "?"}})).unwrap();
        assert_eq!(o.timeout, None);
        assert_eq!(
            activity_options("n", &json!({"timeout_config": {"enable": true, "seconds": 5}}), false).unwrap().timeout,
            None,
            "a subprocess node has no timeout of its own"
        );
    }

    #[test]
    fn a_bad_timeout_is_refused_naming_the_node_and_the_value() {
        for (config, says) in [
            (json!({"enable": true, "seconds": 0}), "not 0"),
            (json!({"enable": true, "seconds": "10"}), "not \"10\""),
            (json!({"enable": true, "seconds": 2.5}), "not 2.5"),
            (json!({"enable": true, "seconds": 9, "action": "explode"}), "`explode`"),
        ] {
            let e = options(&json!({"timeout_config": config})).unwrap_err();
            assert_eq!(e.id.as_deref(), Some("n"));
            assert!(e.message.contains(says), "{e}");
        }
    }

    #[test]
    fn a_timeout_goes_with_neither_ignored_errors_nor_automatic_retries() {
        let timeout = json!({"enable": true, "seconds": 9});
        for v in [
            json!({"timeout_config": timeout, "error_ignorable": true}),
            json!({"timeout_config": timeout, "auto_retry": {"enable": true}}),
        ] {
            let e = options(&v).unwrap_err();
            assert!(e.message.contains("cannot be enabled together"), "{e}");
        }
    }
}
