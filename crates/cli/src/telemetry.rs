//! Where the binary's logs and spans go: log lines to standard error (text, coloured only on
//! a terminal, or JSON), and — with `--otlp-endpoint` in a build with the `otlp` feature —
//! spans of requests, commands, lifecycle events and workers' jobs to an OpenTelemetry
//! collector over OTLP/HTTP, each in the trace of the process it belongs to.

use crate::{Cmd, LogFormat};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Flushes the spans not yet exported when the command ends.
pub(crate) struct Telemetry {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: spans not exported: {e}");
        }
    }
}

/// Sets up logging to standard error, and span export when `otlp` names a collector. A
/// server says what it does at `info` (requests, lifecycle events); the other commands print
/// their own results and log only trouble.
///
/// # Errors
/// When the exporter cannot be made (a malformed endpoint), or this build has no export.
pub(crate) fn init(format: LogFormat, otlp: Option<&str>, command: &Cmd) -> Result<Telemetry, String> {
    use std::io::IsTerminal;
    let default = if matches!(command, Cmd::Serve { .. } | Cmd::Worker { .. }) { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let (logs, json) = match format {
        LogFormat::Text => (Some(logs.with_ansi(std::io::stderr().is_terminal())), None),
        LogFormat::Json => (None, Some(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).json())),
    };
    let registry = tracing_subscriber::registry().with(filter).with(logs).with(json);
    let Some(endpoint) = otlp.filter(|e| !e.is_empty()) else {
        registry.init();
        #[cfg(feature = "otlp")]
        return Ok(Telemetry { provider: None });
        #[cfg(not(feature = "otlp"))]
        return Ok(Telemetry {});
    };
    #[cfg(feature = "otlp")]
    {
        let service = if matches!(command, Cmd::Worker { .. }) { "flowstone-worker" } else { "flowstone" };
        let provider = otlp::provider(endpoint, service)?;
        let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "flowstone");
        registry.with(tracing_opentelemetry::layer().with_tracer(tracer)).init();
        Ok(Telemetry { provider: Some(provider) })
    }
    #[cfg(not(feature = "otlp"))]
    {
        registry.init();
        Err(format!(
            "--otlp-endpoint {endpoint}: this build exports no spans; build it with `--features otlp` (on by default)"
        ))
    }
}

#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    /// A provider exporting spans in batches to the collector at `endpoint` (its base URL, as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` names it: `/v1/traces` is added), as `service` unless
    /// `OTEL_SERVICE_NAME` says otherwise.
    pub(super) fn provider(endpoint: &str, service: &'static str) -> Result<SdkTracerProvider, String> {
        let base = endpoint.trim_end_matches('/');
        let url = if base.ends_with("/v1/traces") { base.to_owned() } else { format!("{base}/v1/traces") };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url)
            .build()
            .map_err(|e| format!("--otlp-endpoint {endpoint}: {e}"))?;
        let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_owned());
        let resource = opentelemetry_sdk::Resource::builder().with_service_name(service).build();
        Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
    }
}
