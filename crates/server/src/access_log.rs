//! One line per request at `info` (target `flowstone::access`): method, path, status, time and
//! the signed-in user — the first thing an operator reads when a client says "it failed".
//! The query is left out: it may carry search terms and names that are not the log's to keep.

use crate::runtime::Runtime;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tracing::Instrument;

/// Who made the request, once sign-in found out; set by the authentication layer within.
#[derive(Clone, Default)]
pub(crate) struct Who(Arc<OnceLock<String>>);

impl Who {
    pub(crate) fn set(&self, user: &str) {
        // Set once per request; a second sign-in layer cannot rename the caller.
        let _ = self.0.set(user.to_owned());
    }
}

/// Logs and counts the request once its answer is ready (counted by its route's template, so
/// that made-up paths add no series).
pub(crate) async fn log(State(rt): State<Runtime>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    // The trace the caller's request belongs to (W3C `traceparent`), if it says.
    let trace = trace_of(req.headers().get("traceparent")).unwrap_or("-").to_owned();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let who = Who::default();
    req.extensions_mut().insert(who.clone());
    let span = tracing::info_span!("request", %method, %route);
    if let Some(traceparent) = req.headers().get("traceparent").and_then(|h| h.to_str().ok()) {
        flowstone_worker::trace::follow(&span, traceparent);
    }
    let response = next.run(req).instrument(span).await;
    let ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    let user = who.0.get().map_or("-", String::as_str);
    let status = response.status().as_u16();
    rt.metrics().request(method.as_str(), &route, status, started.elapsed());
    tracing::info!(target: "flowstone::access", %method, %path, status, ms, %user, trace_id = %trace, "request");
    response
}

/// The trace id of a `traceparent` header (`00-TRACE-SPAN-FLAGS`), when it is one.
fn trace_of(header: Option<&axum::http::HeaderValue>) -> Option<&str> {
    flowstone_worker::protocol::trace_of(header?.to_str().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_gives_its_trace_id_and_anything_else_none() {
        let header = |v: &'static str| axum::http::HeaderValue::from_static(v);
        let good = header("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        assert_eq!(trace_of(Some(&good)), Some("0af7651916cd43dd8448eb211c80319c"));
        for bad in ["", "00", "00-xyz-b7ad6b7169203331-01", "garbage-with-dashes"] {
            assert_eq!(trace_of(Some(&header(bad))), None, "{bad}");
        }
        assert_eq!(trace_of(None), None);
    }
}
