#!/usr/bin/env python3
"""Writes dashboards/veza-stream.json, the Grafana dashboard, from the panel list below.

Run it after editing a panel: `python3 deploy/grafana/make_dashboard.py`. tests/deploy.rs checks
that the JSON is what this script writes and runs every query against a real Prometheus.
"""
import json
import pathlib

DS = {"type": "prometheus", "uid": "prometheus"}

# (row, title, unit, [(legend, query)])
PANELS = [
    ("Requests", "Requests by route", "reqps", [
        ("{{route}} {{status}}", 'sum by (route, status) (rate(veza_http_requests_total[5m]))'),
    ]),
    ("Requests", "Requests by protocol", "reqps", [
        ("HTTP/{{protocol}}", 'sum by (protocol) (rate(veza_http_requests_total[5m]))'),
    ]),
    ("Requests", "API latency p95 and p99 (SLO: p95 < 150 ms)", "s", [
        ("p95", 'histogram_quantile(0.95, sum by (le) (rate(veza_http_request_duration_seconds_bucket{route=~"/v1/.*"}[5m])))'),
        ("p99", 'histogram_quantile(0.99, sum by (le) (rate(veza_http_request_duration_seconds_bucket{route=~"/v1/.*"}[5m])))'),
    ]),
    ("Requests", "Latency p95 by route and protocol", "s", [
        ("{{route}} HTTP/{{protocol}}", 'histogram_quantile(0.95, sum by (le, route, protocol) (rate(veza_http_request_duration_seconds_bucket[5m])))'),
    ]),
    ("Requests", "5xx ratio (budget: 0.1 %)", "percentunit", [
        ("5xx", '(sum(rate(veza_http_requests_total{status=~"5.."}[5m])) or vector(0)) / sum(rate(veza_http_requests_total[5m]))'),
    ]),
    ("Requests", "Delivery bytes out", "Bps", [
        ("bytes", 'sum(rate(veza_http_response_bytes_total[5m]))'),
    ]),
    ("Jobs", "Jobs by state", "short", [
        ("{{state}}", 'sum by (state) (veza_jobs)'),
    ]),
    ("Jobs", "Queue lag (oldest job due)", "s", [
        ("lag", 'max(veza_job_queue_lag_seconds)'),
    ]),
    ("Jobs", "Job duration p50 and p95", "s", [
        ("p50", 'histogram_quantile(0.5, sum by (le) (rate(veza_job_duration_seconds_bucket[30m])))'),
        ("p95", 'histogram_quantile(0.95, sum by (le) (rate(veza_job_duration_seconds_bucket[30m])))'),
    ]),
    ("Jobs", "Failed attempts and events", "short", [
        ("failed attempts", 'sum(increase(veza_job_attempts_failed_total[1h]))'),
        ("events retried", 'sum(increase(veza_events_retried_total[1h]))'),
        ("events dead", 'sum(increase(veza_events_dead_total[1h]))'),
    ]),
    ("Live", "Listeners by channel and protocol", "short", [
        ("{{channel}} {{protocol}}", 'sum by (channel, protocol) (veza_channel_listeners)'),
    ]),
    ("Live", "Live sources connected and ended", "short", [
        ("{{outcome}}", 'sum by (outcome) (increase(veza_live_sources_total[1h]))'),
    ]),
    ("Live", "LL-HLS parts published", "ops", [
        ("parts", 'sum(rate(veza_live_parts_total[5m]))'),
    ]),
    ("Live", "Late release p99 (part to blocked playlist answer)", "s", [
        ("p99", 'histogram_quantile(0.99, sum by (le) (rate(veza_live_release_seconds_bucket[5m])))'),
    ]),
    ("Live", "Channels behind real time (clock corrections)", "short", [
        ("{{channel}}", 'max by (channel) (veza_live_drift_corrections)'),
    ]),
    ("Live", "Listeners dropped for falling behind", "short", [
        ("dropped", 'sum(increase(veza_live_consumers_dropped_total[1h]))'),
    ]),
    ("WebRTC", "WebRTC sessions open", "short", [
        ("sessions", 'sum(veza_webrtc_entries{map="sessions"})'),
    ]),
    ("WebRTC", "WebRTC sessions ended", "short", [
        ("{{kind}} {{outcome}}", 'sum by (kind, outcome) (increase(veza_webrtc_sessions_total[1h]))'),
    ]),
    ("WebRTC", "WebRTC frame send delay p99", "s", [
        ("p99", 'histogram_quantile(0.99, sum by (le) (rate(veza_webrtc_frame_send_seconds_bucket[5m])))'),
    ]),
    ("Process", "Resident memory", "bytes", [
        ("{{instance}}", 'process_resident_memory_bytes{job="veza-stream"}'),
    ]),
    ("Process", "Descriptors", "short", [
        ("open {{instance}}", 'process_open_fds{job="veza-stream"}'),
        ("limit {{instance}}", 'process_max_fds{job="veza-stream"}'),
    ]),
    ("Process", "Connections and readiness", "short", [
        ("connections {{instance}}", 'veza_open_connections'),
        ("ready {{instance}}", 'veza_ready'),
    ]),
    ("Process", "CPU", "percentunit", [
        ("{{instance}}", 'rate(process_cpu_seconds_total{job="veza-stream"}[5m])'),
    ]),
    ("Process", "Certificate expires in", "s", [
        ("{{instance}}", 'min(veza_tls_certificate_expiry_timestamp_seconds) - time()'),
    ]),
]


def dashboard():
    panels, y, pid = [], 0, 1
    row = None
    x = 0
    for name, title, unit, queries in PANELS:
        if name != row:
            row = name
            if x:
                y += 8
            x = 0
            panels.append({"type": "row", "title": name, "id": pid, "collapsed": False,
                           "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
            pid += 1
            y += 1
        panels.append({
            "type": "timeseries",
            "title": title,
            "id": pid,
            "datasource": DS,
            "gridPos": {"h": 8, "w": 8, "x": x, "y": y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi"}},
            "targets": [{"refId": chr(65 + i), "datasource": DS, "expr": q, "legendFormat": legend}
                        for i, (legend, q) in enumerate(queries)],
        })
        pid += 1
        x += 8
        if x >= 24:
            x = 0
            y += 8
    return {
        "uid": "veza-stream",
        "title": "Veza Stream",
        "tags": ["veza-stream"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "editable": True,
        "panels": panels,
        "templating": {"list": []},
        "annotations": {"list": []},
    }


if __name__ == "__main__":
    out = pathlib.Path(__file__).parent / "dashboards" / "veza-stream.json"
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
