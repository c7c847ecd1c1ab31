//! `deploy/`: the alert rules, the Grafana dashboard, Compose and the Kubernetes manifests.
//!
//! - `promtool check rules` and `promtool test rules` (the rules' unit tests) pass.
//! - Debian's Prometheus scrapes a real server (with TLS, a track packaged, a live channel with a
//!   source, mount, HLS and WebRTC listeners), and every query of the dashboard and every alert's
//!   query (the expression before its threshold) returns series: no panel or alert reads a metric
//!   the server does not export.
//! - The Kubernetes manifests pass `kubernetes-validate --strict`; Compose passes
//!   `docker-compose config`.

mod common;

use common::live::{create, ffmpeg_source, kit_tool, playback_answer, track_mp3, wait_for};
use common::server::{free_port, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn alert_rules_check_and_pass_their_unit_tests() {
    let dir = deploy().join("prometheus");
    let text = run(Command::new("promtool")
        .args(["check", "rules", "alerts.yaml"])
        .current_dir(&dir));
    assert!(text.contains("SUCCESS"), "{text}");
    let text = run(Command::new("promtool")
        .args(["test", "rules", "alerts.test.yaml"])
        .current_dir(&dir));
    assert!(text.contains("SUCCESS"), "{text}");
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    let dir = deploy().join("kubernetes");
    let core = [
        "configmap.yaml",
        "secret.yaml",
        "deployment.yaml",
        "service.yaml",
        "policy.yaml",
    ];
    let text = run(Command::new("kubernetes-validate")
        .arg("--strict")
        .args(core)
        .current_dir(&dir));
    for kind in [
        "configmap/veza-stream",
        "secret/veza-stream",
        "deployment/veza-stream",
        "service/veza-stream",
        "service/veza-stream-webrtc",
        "poddisruptionbudget/veza-stream",
        "horizontalpodautoscaler/veza-stream",
    ] {
        assert!(
            text.contains(&format!("passed for resource {kind} ")),
            "{kind}:\n{text}"
        );
    }
    // The ServiceMonitor is the Prometheus Operator's CRD, which the Kubernetes schemas do not
    // hold: its shape is checked here against the Service it scrapes.
    let check = r#"
import sys, yaml
m = yaml.safe_load(open("servicemonitor.yaml"))
svc = list(yaml.safe_load_all(open("service.yaml")))[0]
assert m["apiVersion"] == "monitoring.coreos.com/v1" and m["kind"] == "ServiceMonitor"
assert m["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
ports = {p["name"] for p in svc["spec"]["ports"]}
assert all(e["port"] in ports and e["path"] == "/metrics" for e in m["spec"]["endpoints"])
d = yaml.safe_load(open("deployment.yaml"))
grace = d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
c = d["spec"]["template"]["spec"]["containers"][0]
cm = yaml.safe_load(open("configmap.yaml"))
drain = int(cm["data"]["VEZA_SERVER__SHUTDOWN_GRACE_SECONDS"])
assert grace >= c["lifecycle"]["preStop"]["sleep"]["seconds"] + drain + 1, (grace, drain)
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
print("ok")
"#;
    let text = run(Command::new("python3")
        .args(["-c", check])
        .current_dir(&dir));
    assert_eq!(text.trim(), "ok");
}

#[test]
fn compose_file_is_valid() {
    let text = run(Command::new("docker-compose")
        .args(["-f", "compose.yaml", "config"])
        .current_dir(deploy()));
    for service in [
        "veza-stream:",
        "postgres:",
        "minio:",
        "rabbitmq:",
        "prometheus:",
        "grafana:",
    ] {
        assert!(text.contains(service), "{service}");
    }
    assert!(text.contains("healthcheck"));
}

/// Every query of the dashboard, and the query part of every alert (before its comparison).
fn queries() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy().join("grafana/dashboards/veza-stream.json")).unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            out.push((
                format!("panel {:?}", panel["title"].as_str().unwrap()),
                t["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    let rules = std::fs::read_to_string(deploy().join("prometheus/alerts.yaml")).unwrap();
    let mut alert = String::new();
    for line in rules.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("- alert: ") {
            alert = name.to_string();
        } else if let Some(expr) = line.strip_prefix("expr: ") {
            let query = [" > ", " < ", " == "]
                .iter()
                .filter_map(|op| expr.find(op))
                .min()
                .map_or(expr, |at| &expr[..at]);
            out.push((format!("alert {alert}"), query.to_string()));
        }
    }
    assert!(out.len() > 30, "{out:?}");
    out
}

/// Debian's Prometheus, scraping `target` every second into a temporary directory.
struct Prometheus {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yaml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files: [{:?}]\n\
                 scrape_configs:\n  - job_name: veza-stream\n    static_configs:\n      - targets: [{target:?}]\n",
                deploy().join("prometheus/alerts.yaml").display().to_string()
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Debian's prometheus (scripts/test installs it)");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    async fn query(&self, q: &str) -> Value {
        let r = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", q)])
            .send()
            .await;
        match r {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_and_alert_query_returns_series_from_a_real_server() {
    let s = Server::start_dev_tls(&[]).await;
    // Something of everything: a packaged track, a live channel with a source, a mount listener,
    // an LL-HLS listener and a WebRTC session.
    let track = s
        .upload(&common::fixtures().join("formats/wav_pcm16_mono_16k.wav"))
        .await;
    let id = track["id"].as_str().unwrap();
    assert_eq!(s.wait_final(id).await["status"], "ready");
    let c = create(&s, json!({"title": "Observed", "visibility": "public"})).await;
    let channel = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let mut source = ffmpeg_source(&s, &channel, &key, &track_mp3(), "mp3");
    wait_for(&s, &channel, "/state", "live").await;
    let pb = playback_answer(&s, &channel).await;
    let token = pb["token"].as_str().unwrap().to_string();
    let whep = pb["whep_url"].as_str().unwrap().to_string();
    let master = pb["master_url"].as_str().unwrap().to_string();
    let webrtc = std::thread::spawn(move || {
        kit_tool(
            "whep_client.py",
            &[&whep, "--token", &token, "--seconds", "4"],
        )
    });
    let hls = std::thread::spawn(move || common::live::llhls_check(&master, 4));
    let mount = common::live::channel(&s, &channel).await["mounts"]["mp3"]
        .as_str()
        .expect("the channel's MP3 mount")
        .to_string();
    let mut listener = s.client().get(&mount).send().await.unwrap();
    assert_eq!(listener.status(), 200);
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while listener.chunk().await.ok().flatten().is_some() {}
    })
    .await;
    drop(listener);
    let webrtc = tokio::task::spawn_blocking(move || webrtc.join().unwrap())
        .await
        .unwrap();
    assert!(webrtc.is_object(), "{webrtc}");
    let _ = tokio::task::spawn_blocking(move || hls.join())
        .await
        .unwrap();
    // The source goes (its end is counted by outcome) and another comes: the channel is on
    // air while Prometheus scrapes.
    source.stop();
    wait_for(&s, &channel, "/state", "offline").await;
    let _source = ffmpeg_source(&s, &channel, &key, &track_mp3(), "mp3");
    wait_for(&s, &channel, "/state", "live").await;

    let prometheus = Prometheus::start(s.url.trim_start_matches("http://"));
    // Scrapes for long enough that every range query has two samples. The limit only keeps a
    // broken setup from hanging CI.
    let start = Instant::now();
    loop {
        let v = prometheus.query("count_over_time(veza_ready[1m])").await;
        let n = v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        if n >= 5 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "Prometheus never scraped the server: {v}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut empty = Vec::new();
    for (what, q) in queries() {
        let v = prometheus.query(&q).await;
        assert_eq!(v["status"], "success", "{what}: {q}: {v}");
        if v["data"]["result"].as_array().is_none_or(|r| r.is_empty()) {
            empty.push(format!("{what}: {q}"));
        }
    }
    assert!(
        empty.is_empty(),
        "queries without series:\n{}",
        empty.join("\n")
    );
    // The values the server's state implies.
    let one = |q: &'static str| {
        let p = &prometheus;
        async move {
            p.query(q).await["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        }
    };
    assert_eq!(one("veza_ready").await, 1.0);
    assert_eq!(one(r#"up{job="veza-stream"}"#).await, 1.0);
    let expiry = one("min(veza_tls_certificate_expiry_timestamp_seconds) - time()").await;
    assert!(
        expiry > 86_400.0,
        "the development certificate expires in {expiry} s"
    );
    assert!(one("process_resident_memory_bytes").await > 1e6);
    assert!(one(r#"sum(veza_webrtc_sessions_total{kind="whep"})"#).await >= 1.0);
    assert!(one(r#"sum(veza_http_requests_total{protocol="1.1"})"#).await >= 1.0);
    // Nothing fires on a healthy server.
    let firing = prometheus.query("ALERTS").await;
    let firing: Vec<&str> = firing["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["metric"]["alertstate"] == "firing")
        .filter_map(|a| a["metric"]["alertname"].as_str())
        .collect();
    assert!(firing.is_empty(), "{firing:?}");
}
