//! `telemetry`: logs and OpenTelemetry traces.
//!
//! [`init`] installs one `tracing` subscriber: the log filter, OpenTelemetry's layer and the log
//! formatter. Every `tracing` span becomes an OpenTelemetry span, so a trace id exists even when
//! nothing is exported, and JSON log lines carry `trace_id` and `span_id`. With
//! `telemetry.otlp_endpoint` set, spans are batched to that OTLP receiver over HTTP/protobuf or
//! gRPC. Incoming W3C `traceparent` headers are continued ([`server_span`]) and every response says
//! which trace it belongs to ([`traceresponse`]).

pub mod context;

pub use context::{link, protocol, record_status, server_span, traceparent, traceresponse};

use crate::config;
use anyhow::Context as _;
use opentelemetry::trace::{SpanContext, TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The installed tracer provider; [`Telemetry::shutdown`] sends what is still batched.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Flushes and stops the exporter (bounded by the exporter's own timeout).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "stopping the trace exporter");
        }
    }
}

/// The OTLP/HTTP URL of `endpoint`: a base URL (as `OTEL_EXPORTER_OTLP_ENDPOINT`) gains the
/// signal's path, `/v1/traces`.
pub fn http_traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// Installs the global subscriber. Call it inside the Tokio runtime: the span batcher is a task.
pub fn init(log: &config::Log, t: &config::Telemetry) -> anyhow::Result<Telemetry> {
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(t.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            t.sample_ratio,
        ))))
        .with_resource(resource);
    if !t.otlp_endpoint.is_empty() {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = if t.otlp_protocol == "grpc" {
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(t.otlp_endpoint.clone())
                .build()
        } else {
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(http_traces_url(&t.otlp_endpoint))
                .build()
        }
        .context("telemetry.otlp_endpoint: building the OTLP exporter")?;
        let batcher =
            opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
                exporter,
                opentelemetry_sdk::runtime::Tokio,
            )
            .build();
        builder = builder.with_span_processor(batcher);
    }
    let provider = builder.build();
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("veza-stream"))
        .with_tracked_inactivity(false)
        .with_threads(false);
    let filter = tracing_subscriber::EnvFilter::new(&log.level);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    if log.format == "json" {
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .event_format(WithTraceIds(
                tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(false),
            ))
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new());
        registry.with(fmt).try_init()
    } else {
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi);
        registry.with(fmt).try_init()
    }
    .context("installing the log subscriber")?;
    Ok(Telemetry { provider })
}

/// A JSON event formatter that opens each line with the trace and span ids of the event's span.
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    F: FormatEvent<S, N>,
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let id = event
            .parent()
            .cloned()
            .or_else(|| ctx.lookup_current().map(|s| s.id()));
        let ids = id.and_then(|id| {
            tracing::dispatcher::get_default(|d| tracing_opentelemetry::get_otel_context(&id, d))
                .map(|cx| cx.span().span_context().clone())
                .filter(SpanContext::is_valid)
        });
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match (ids, line.strip_prefix('{')) {
            (Some(sc), Some(rest)) => write!(
                writer,
                "{{\"trace_id\":\"{}\",\"span_id\":\"{}\",{rest}",
                sc.trace_id(),
                sc.span_id()
            ),
            _ => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_url_gains_the_signal_path_once() {
        assert_eq!(http_traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(http_traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            http_traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
