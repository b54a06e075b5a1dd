//! Spans in the traces they belong to. A process is one trace (see
//! [`crate::protocol::trace_id`]); the server's spans of its commands and the workers' spans
//! of its jobs name it as their parent, so that an exporter (feature `otlp`) shows the start,
//! the work done in a worker and the step after it as one trace, across the transactions in
//! between and without storing any context.

/// Makes `span` a child of a W3C `traceparent` (`00-TRACE-SPAN-FLAGS`) for exported spans.
/// Something else than a `traceparent`, a span already entered, or a build without the `otlp`
/// feature leaves the span where it is.
pub fn follow(span: &tracing::Span, traceparent: &str) {
    #[cfg(feature = "otlp")]
    if let Some(parent) = remote(traceparent) {
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        // Refused only without an exporting layer, or once started: the span stays a root.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
    #[cfg(not(feature = "otlp"))]
    let _ = (span, traceparent);
}

/// Makes `span` a part of the trace of the process `instance` (see
/// [`crate::protocol::trace_id`]); the context is only made for a span that is recorded in a
/// build that exports.
pub fn follow_process(span: &tracing::Span, instance: &str) {
    if cfg!(feature = "otlp") && !span.is_disabled() {
        follow(span, &crate::protocol::traceparent(instance, instance));
    }
}

/// The span context a `traceparent` names, when it names a valid one.
#[cfg(feature = "otlp")]
fn remote(traceparent: &str) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let mut parts = traceparent.split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2 || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    let (trace, span) = (TraceId::from_hex(trace).ok()?, SpanId::from_hex(span).ok()?);
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()?);
    (trace != TraceId::INVALID && span != SpanId::INVALID)
        .then(|| SpanContext::new(trace, span, flags, true, TraceState::default()))
}

#[cfg(all(test, feature = "otlp"))]
mod tests {
    use super::remote;

    #[test]
    fn a_traceparent_names_its_remote_parent_and_anything_else_none() {
        let parent = remote("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").expect("a valid traceparent");
        assert_eq!(parent.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(parent.span_id().to_string(), "b7ad6b7169203331");
        assert!(parent.is_sampled() && parent.is_remote());
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-xyz7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-zz",
        ] {
            assert!(remote(bad).is_none(), "{bad}");
        }
    }
}
