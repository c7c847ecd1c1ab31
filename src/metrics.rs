//! `metrics`: the Prometheus registry, rendered at `/metrics`.

use prometheus::{
    Counter, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    /// `veza_http_requests_total{route,status,protocol}`; `protocol` is the HTTP version, as
    /// OpenTelemetry names it (`1.1`, `2`, `3`).
    pub requests: IntCounterVec,
    /// `veza_http_request_duration_seconds{route,protocol}`.
    pub latency: HistogramVec,
    /// `veza_http_response_bytes_total`: body bytes sent by delivery routes.
    pub bytes_out: IntCounter,
    /// `veza_cache_hits_total` / `veza_cache_misses_total`: the hot-object cache.
    pub cache_hits: IntCounter,
    /// See `cache_hits`.
    pub cache_misses: IntCounter,
    /// `veza_upload_bytes_total`.
    pub upload_bytes: IntCounter,
    /// `veza_stitch_renders_total`: stitched media playlists rendered (once per state of a
    /// playlist and rendition; requests only substitute their token).
    pub stitch_renders: IntCounter,
    /// `veza_events_delivered_total`.
    pub events_delivered: IntCounter,
    /// `veza_events_retried_total`.
    pub events_retried: IntCounter,
    /// `veza_events_dead_total`.
    pub events_dead: IntCounter,
    /// `veza_jobs{state}`: queued, running and failed jobs in the store.
    pub jobs_queued: IntGauge,
    /// See `jobs_queued`.
    pub jobs_running: IntGauge,
    /// See `jobs_queued`.
    pub jobs_failed: IntGauge,
    /// `veza_job_attempts_failed_total`: attempts that ended in an error.
    pub job_attempts_failed: IntCounter,
    /// `veza_job_duration_seconds`: claim to publish.
    pub job_duration: Histogram,
    /// `veza_job_realtime_factor`: seconds of audio packaged per second of work.
    pub job_realtime: Histogram,
    /// `veza_active_listeners`: listener sessions seen within the idle window.
    pub listeners: IntGauge,
    /// `veza_channel_listeners{channel,protocol}`: live listeners by channel and protocol.
    pub channel_listeners: IntGaugeVec,
    /// `veza_live_parts_total`: LL-HLS parts published (every rendition).
    pub live_parts: IntCounter,
    /// `veza_live_drift_corrections{channel}`: times a channel's media clock was moved up to the
    /// wall clock (a source that stalled or runs slow).
    pub live_drift_corrections: IntGaugeVec,
    /// `veza_live_consumers_dropped_total`: push consumers dropped for falling behind.
    pub live_consumers_dropped: IntCounter,
    /// `veza_live_sources_total{outcome}`: source connections by how they ended.
    pub live_sources: IntCounterVec,
    /// `veza_live_source_damage_total`: decode errors a live source's decoder resynced past.
    pub live_source_damage: IntCounter,
    /// `veza_live_encode_seconds_total`: time the channel engines spent encoding and cutting.
    pub live_encode: Counter,
    /// `veza_live_release_seconds`: from a part's publication to the answer of a playlist request
    /// that was blocked waiting for it.
    pub live_release: Histogram,
    /// `veza_webrtc_sessions_total{kind,outcome}`: WebRTC sessions by kind (`whep`, `whip`) and
    /// how they ended.
    pub webrtc_sessions: IntCounterVec,
    /// `veza_webrtc_stray_datagrams_total`: datagrams on the WebRTC port that no session claims.
    pub webrtc_stray: IntCounter,
    /// `veza_webrtc_frame_send_seconds`: from an Opus frame leaving the channel's encoder to its
    /// RTP packet being handed to the socket, per session.
    pub webrtc_send_delay: Histogram,
    /// `veza_ready`: 1 while the store and storage answer (as `/readyz`), set at each scrape.
    pub ready: IntGauge,
    /// `veza_job_queue_lag_seconds`: how long the oldest job due has waited for a worker.
    pub job_queue_lag: prometheus::Gauge,
    /// `veza_open_connections`: TCP connections open on the HTTP and HTTPS listeners.
    pub open_connections: IntGauge,
    /// `veza_tls_certificate_expiry_timestamp_seconds`: when the served certificate expires
    /// (Unix seconds); absent without TLS.
    pub tls_expiry: IntGauge,
    /// `veza_redis_up`: 1 while Redis answers; 0 while it does not, and without `redis.url`.
    pub redis_up: IntGauge,
    /// `veza_redis_fallbacks_total`: rate-limit decisions this node made alone because Redis
    /// did not answer.
    pub redis_fallbacks: IntCounter,
    /// `veza_webrtc_entries{map}`: entries of the WebRTC front's maps (`sessions`, `ufrags`,
    /// `addresses`), which return to zero when every session has ended.
    pub webrtc_entries: IntGaugeVec,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "veza_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status", "protocol"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "veza_http_request_duration_seconds",
                "Time to response headers",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route", "protocol"],
        )
        .expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let jobs = |state: &str| {
            IntGauge::with_opts(
                Opts::new("veza_jobs", "Jobs in the store by state").const_label("state", state),
            )
            .expect("valid metric")
        };
        let m = Metrics {
            requests,
            latency,
            bytes_out: counter(
                "veza_http_response_bytes_total",
                "Body bytes sent by delivery routes",
            ),
            cache_hits: counter("veza_cache_hits_total", "Hot-object cache hits"),
            cache_misses: counter("veza_cache_misses_total", "Hot-object cache misses"),
            upload_bytes: counter("veza_upload_bytes_total", "Upload bytes received"),
            stitch_renders: counter(
                "veza_stitch_renders_total",
                "Stitched media playlists rendered",
            ),
            events_delivered: counter(
                "veza_events_delivered_total",
                "Outbox events delivered to every destination",
            ),
            events_retried: counter(
                "veza_events_retried_total",
                "Outbox event deliveries that failed and will be retried",
            ),
            events_dead: counter(
                "veza_events_dead_total",
                "Outbox events dead-lettered after their last attempt",
            ),
            jobs_queued: jobs("queued"),
            jobs_running: jobs("running"),
            jobs_failed: jobs("failed"),
            job_attempts_failed: counter(
                "veza_job_attempts_failed_total",
                "Job attempts that failed",
            ),
            job_duration: Histogram::with_opts(
                HistogramOpts::new("veza_job_duration_seconds", "Claim to publish").buckets(vec![
                    0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0,
                ]),
            )
            .expect("valid metric"),
            job_realtime: Histogram::with_opts(
                HistogramOpts::new(
                    "veza_job_realtime_factor",
                    "Seconds of audio per second of job",
                )
                .buckets(vec![1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0]),
            )
            .expect("valid metric"),
            listeners: gauge("veza_active_listeners", "Listener sessions seen recently"),
            channel_listeners: IntGaugeVec::new(
                Opts::new(
                    "veza_channel_listeners",
                    "Live listeners by channel and protocol",
                ),
                &["channel", "protocol"],
            )
            .expect("valid metric"),
            live_parts: counter("veza_live_parts_total", "LL-HLS parts published"),
            live_drift_corrections: IntGaugeVec::new(
                Opts::new(
                    "veza_live_drift_corrections",
                    "Times a channel's media clock was moved up to the wall clock",
                ),
                &["channel"],
            )
            .expect("valid metric"),
            live_consumers_dropped: counter(
                "veza_live_consumers_dropped_total",
                "Listeners cut off for falling behind: WebRTC sessions and progressive (Icecast-style) listeners",
            ),
            webrtc_sessions: IntCounterVec::new(
                Opts::new(
                    "veza_webrtc_sessions_total",
                    "WebRTC sessions by kind and by how they ended",
                ),
                &["kind", "outcome"],
            )
            .expect("valid metric"),
            webrtc_stray: counter(
                "veza_webrtc_stray_datagrams_total",
                "Datagrams on the WebRTC port that no session claims",
            ),
            webrtc_send_delay: Histogram::with_opts(
                HistogramOpts::new(
                    "veza_webrtc_frame_send_seconds",
                    "From an Opus frame leaving the channel encoder to its RTP packet reaching the socket",
                )
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1,
                    0.25,
                ]),
            )
            .expect("valid metric"),
            webrtc_entries: IntGaugeVec::new(
                Opts::new(
                    "veza_webrtc_entries",
                    "Entries of the WebRTC session maps",
                ),
                &["map"],
            )
            .expect("valid metric"),
            live_sources: IntCounterVec::new(
                Opts::new(
                    "veza_live_sources_total",
                    "Live source connections by outcome",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            live_source_damage: counter(
                "veza_live_source_damage_total",
                "Decode errors live sources' decoders resynced past",
            ),
            live_encode: Counter::new(
                "veza_live_encode_seconds_total",
                "Time channel engines spent encoding and cutting parts",
            )
            .expect("valid metric"),
            live_release: Histogram::with_opts(
                HistogramOpts::new(
                    "veza_live_release_seconds",
                    "Part publication to the answer of a playlist request blocked on it",
                )
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                ]),
            )
            .expect("valid metric"),
            ready: gauge("veza_ready", "1 while the store and storage answer"),
            redis_up: gauge("veza_redis_up", "1 while Redis answers"),
            redis_fallbacks: counter(
                "veza_redis_fallbacks_total",
                "Rate-limit decisions made by this node alone because Redis did not answer",
            ),
            job_queue_lag: prometheus::Gauge::new(
                "veza_job_queue_lag_seconds",
                "How long the oldest job due has waited for a worker",
            )
            .expect("valid metric"),
            open_connections: gauge(
                "veza_open_connections",
                "TCP connections open on the HTTP and HTTPS listeners",
            ),
            tls_expiry: gauge(
                "veza_tls_certificate_expiry_timestamp_seconds",
                "When the served certificate expires, in Unix seconds",
            ),
            registry,
        };
        let r = &m.registry;
        for c in [
            Box::new(m.requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.latency.clone()),
            Box::new(m.bytes_out.clone()),
            Box::new(m.cache_hits.clone()),
            Box::new(m.cache_misses.clone()),
            Box::new(m.upload_bytes.clone()),
            Box::new(m.stitch_renders.clone()),
            Box::new(m.events_delivered.clone()),
            Box::new(m.events_retried.clone()),
            Box::new(m.events_dead.clone()),
            Box::new(m.jobs_queued.clone()),
            Box::new(m.jobs_running.clone()),
            Box::new(m.jobs_failed.clone()),
            Box::new(m.job_attempts_failed.clone()),
            Box::new(m.job_duration.clone()),
            Box::new(m.job_realtime.clone()),
            Box::new(m.listeners.clone()),
            Box::new(m.channel_listeners.clone()),
            Box::new(m.live_parts.clone()),
            Box::new(m.live_drift_corrections.clone()),
            Box::new(m.live_consumers_dropped.clone()),
            Box::new(m.live_sources.clone()),
            Box::new(m.live_source_damage.clone()),
            Box::new(m.live_encode.clone()),
            Box::new(m.live_release.clone()),
            Box::new(m.webrtc_sessions.clone()),
            Box::new(m.webrtc_stray.clone()),
            Box::new(m.webrtc_send_delay.clone()),
            Box::new(m.webrtc_entries.clone()),
            Box::new(m.ready.clone()),
            Box::new(m.job_queue_lag.clone()),
            Box::new(m.open_connections.clone()),
            Box::new(m.redis_up.clone()),
            Box::new(m.redis_fallbacks.clone()),
        ] {
            r.register(c).expect("metric names are unique");
        }
        // Resident memory, descriptors and CPU of this process (`process_*`), read from /proc.
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("metric names are unique");
        m
    }

    /// Exports the served certificate's expiry from now on (registered on first call).
    pub fn set_tls_expiry(&self, unix_seconds: i64) {
        if self.tls_expiry.get() == 0 {
            let _ = self.registry.register(Box::new(self.tls_expiry.clone()));
        }
        self.tls_expiry.set(unix_seconds);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for metrics we registered ourselves.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
