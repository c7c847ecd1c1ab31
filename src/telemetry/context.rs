//! Trace context: the span of a request, continued from the caller's W3C `traceparent`, and the
//! `traceparent` of a span, stored with work that outlives it. It takes nothing from the rest
//! of the server, so that the store and the HTTP layer can both use it.

use axum::http::{HeaderMap, HeaderValue, Request, Version};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The name OpenTelemetry's semantic conventions give a request's protocol version.
pub fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "other",
    }
}

/// The span of one HTTP request, continuing the caller's trace when it sent a valid
/// `traceparent` (and `tracestate`).
pub fn server_span<B>(req: &Request<B>, route: &str) -> Span {
    let method = req.method().as_str();
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.route = route,
        url.path = req.uri().path(),
        network.protocol.version = protocol(req.version()),
        http.response.status_code = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&Headers(req.headers()));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    span
}

/// Records a response's status on its request span; 5xx marks the span as an error.
pub fn record_status(span: &Span, status: u16) {
    span.record("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
}

/// The W3C `traceresponse` header naming `span`'s trace: `00-{trace}-{span}-{flags}`.
pub fn traceresponse(span: &Span) -> Option<HeaderValue> {
    traceparent(span).and_then(|v| HeaderValue::from_str(&v).ok())
}

/// `span`'s context as a W3C `traceparent` value, to be stored with work that outlives it (a job
/// queued by an upload) and linked from that work's own trace.
pub fn traceparent(span: &Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// Links `span` to the trace a stored `traceparent` names (a job to its upload's request).
pub fn link(span: &Span, traceparent: Option<&str>) {
    let Some(value) = traceparent else { return };
    let mut headers = HeaderMap::new();
    let Ok(value) = HeaderValue::from_str(value) else {
        return;
    };
    headers.insert("traceparent", value);
    let cx = TraceContextPropagator::new().extract(&Headers(&headers));
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.add_link(sc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_versions_are_named_as_the_conventions_say() {
        assert_eq!(protocol(Version::HTTP_11), "1.1");
        assert_eq!(protocol(Version::HTTP_2), "2");
        assert_eq!(protocol(Version::HTTP_3), "3");
    }

    #[test]
    fn no_span_has_no_traceparent_and_a_bad_one_links_nothing() {
        // Outside any subscriber a span is disabled: nothing to store, nothing to answer.
        let span = Span::none();
        assert_eq!(traceparent(&span), None);
        assert!(traceresponse(&span).is_none());
        link(&span, Some("not a traceparent"));
        link(&span, None);
    }
}
