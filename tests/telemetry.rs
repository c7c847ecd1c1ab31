//! Traces against a real OTLP receiver: `tests/otlp/receiver.py` decodes what the server sends
//! with the official `opentelemetry-proto` package, over OTLP/HTTP (protobuf) and OTLP/gRPC.
//!
//! An upload sent with a W3C `traceparent` is traced as a child of the caller's span, and its
//! answer carries `traceresponse`; the packaging job is one trace of its own, linked to the
//! upload's, with a span for each step (fetch, decode, analysis, each encoder, write, store,
//! publish); JSON log lines carry the `trace_id` and `span_id` of the span they were logged in.

mod common;

use common::fixtures;
use common::server::{Db, Server};
use serde_json::Value;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SMALL: &str = "formats/wav_pcm16_mono_16k.wav";
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// The receiver process and the file its spans go to.
struct Receiver {
    child: Child,
    http: u16,
    grpc: u16,
    out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    fn start() -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("spans.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otlp/receiver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with opentelemetry-proto and grpcio (scripts/test installs them)");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut port = |name: &str| -> u16 {
            let line = lines.next().expect("the receiver's ports").unwrap();
            line.strip_prefix(name)
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or_else(|| panic!("expected `{name} <port>`, got {line:?}"))
        };
        let http = port("http");
        let grpc = port("grpc");
        Receiver {
            child,
            http,
            grpc,
            out,
            _dir: dir,
        }
    }

    fn spans(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// Waits until `found` picks something out of the spans received. The limit only keeps a
    /// broken build from hanging CI; nothing asserts on time.
    async fn wait<T>(&self, what: &str, found: impl Fn(&[Value]) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(t) = found(&self.spans()) {
                return t;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the receiver never got {what}; it has {:#?}",
                self.spans()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn server(receiver: &Receiver, protocol: &str) -> Server {
    let endpoint = match protocol {
        "grpc" => format!("http://127.0.0.1:{}", receiver.grpc),
        _ => format!("http://127.0.0.1:{}", receiver.http),
    };
    Server::start(
        Db::Sqlite,
        &[
            ("VEZA_TELEMETRY__OTLP_ENDPOINT", &endpoint),
            ("VEZA_TELEMETRY__OTLP_PROTOCOL", protocol),
            ("VEZA_TELEMETRY__SERVICE_NAME", "veza-test"),
            ("VEZA_LOG__FORMAT", "json"),
            // The batcher's delay (the standard variable): spans arrive sooner, nothing else.
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    )
    .await
}

/// `GET /healthz` with a `traceparent`; the answer's `traceresponse`.
async fn traced_health(s: &Server, traceparent: &str) -> String {
    let r = s
        .client()
        .get(format!("{}/healthz", s.url))
        .header("traceparent", traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["traceresponse"].to_str().unwrap().to_string()
}

fn named<'a>(spans: &'a [Value], trace: &str, name: &str) -> Option<&'a Value> {
    spans
        .iter()
        .find(|s| s["trace_id"] == trace && s["name"] == name)
}

#[tokio::test]
async fn an_upload_and_its_job_are_traced_over_otlp_http() {
    let receiver = Receiver::start();
    let s = server(&receiver, "http/protobuf").await;
    let body = tokio::fs::read(fixtures().join(SMALL)).await.unwrap();
    let r = s
        .client()
        .post(format!("{}/v1/tracks", s.url))
        .query(&[("filename", "traced.wav")])
        .header("authorization", s.auth())
        .header("content-type", "application/octet-stream")
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .header("tracestate", "vendor=1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // The answer names the same trace and the server's own span in it.
    let answer = r.headers()["traceresponse"].to_str().unwrap().to_string();
    let parts: Vec<&str> = answer.split('-').collect();
    assert_eq!(parts.len(), 4, "{answer}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", CALLER_TRACE, "01"));
    assert_ne!(parts[2], CALLER_SPAN);
    let upload_span = parts[2].to_string();
    let track: Value = r.json().await.unwrap();
    let id = track["id"].as_str().unwrap().to_string();
    assert_eq!(s.wait_final(&id).await["status"], "ready");

    // The request's span continues the caller's.
    let request = receiver
        .wait("the upload's request span", |spans| {
            named(spans, CALLER_TRACE, "POST /v1/tracks").cloned()
        })
        .await;
    assert_eq!(request["span_id"], upload_span.as_str());
    assert_eq!(request["parent_span_id"], CALLER_SPAN);
    assert_eq!(request["kind"], 2, "SPAN_KIND_SERVER");
    assert_eq!(request["service"], "veza-test");
    assert_eq!(request["transport"], "http");
    assert_eq!(request["attributes"]["http.response.status_code"], 202);
    assert_eq!(request["attributes"]["http.route"], "/v1/tracks");
    assert_eq!(request["attributes"]["network.protocol.version"], "1.1");

    // The job is a trace of its own, linked to the upload's span.
    let job = receiver
        .wait("the job's span", |spans| {
            spans
                .iter()
                .find(|s| {
                    s["name"] == "package track"
                        && s["links"]
                            .as_array()
                            .is_some_and(|l| l.iter().any(|l| l["span_id"] == upload_span.as_str()))
                })
                .cloned()
        })
        .await;
    let trace = job["trace_id"].as_str().unwrap().to_string();
    assert_ne!(trace, CALLER_TRACE);
    assert_eq!(job["links"][0]["trace_id"], CALLER_TRACE);
    assert_eq!(job["attributes"]["track.id"], id.as_str());
    // Each step of the pipeline is a span of that trace under the job.
    let steps = [
        "fetch original",
        "decode source",
        "measure loudness",
        "encode opus-96",
        "encode aac-128",
        "encode flac",
        "write package",
        "store package",
        "publish track",
    ];
    let spans = receiver
        .wait("every step of the job", |spans| {
            steps
                .iter()
                .all(|n| named(spans, &trace, n).is_some())
                .then(|| spans.to_vec())
        })
        .await;
    let by_id = |id: &Value| spans.iter().find(|s| s["span_id"] == *id);
    for step in steps {
        let mut span = named(&spans, &trace, step).unwrap();
        // Up the parents to the job.
        let mut hops = 0;
        while span["span_id"] != job["span_id"] {
            span = by_id(&span["parent_span_id"])
                .unwrap_or_else(|| panic!("{step}: a parent outside the trace"));
            hops += 1;
            assert!(hops < 5, "{step}: too deep");
        }
    }

    // JSON logs carry the ids of the span they were written in.
    s.wait_log("job claimed").await;
    let claimed = s
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "job claimed")
        .expect("a JSON log line");
    assert_eq!(claimed["trace_id"], trace.as_str());
    assert_eq!(claimed["span_id"], job["span_id"]);
}

#[tokio::test]
async fn requests_are_traced_over_otlp_grpc_and_bad_traceparents_start_new_traces() {
    let receiver = Receiver::start();
    let s = server(&receiver, "grpc").await;
    // A malformed traceparent (the careless caller) is ignored: a new trace starts.
    for bad in [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736",
        "\u{7f}",
    ] {
        let r = s
            .client()
            .get(format!("{}/healthz", s.url))
            .header("traceparent", bad)
            .send()
            .await;
        // A header reqwest refuses to send is not the server's concern.
        let Ok(r) = r else { continue };
        assert_eq!(r.status(), 200);
        let answer = r.headers()["traceresponse"].to_str().unwrap();
        assert!(!answer.contains(CALLER_TRACE), "{bad} -> {answer}");
        assert!(!answer.contains("-00000000000000000000000000000000-"));
    }
    let answer = traced_health(&s, &format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01")).await;
    assert!(
        answer.starts_with(&format!("00-{CALLER_TRACE}-")),
        "{answer}"
    );
    let span = receiver
        .wait("the request's span over gRPC", |spans| {
            named(spans, CALLER_TRACE, "GET /healthz").cloned()
        })
        .await;
    assert_eq!(span["transport"], "grpc");
    assert_eq!(span["parent_span_id"], CALLER_SPAN);
    // A caller that did not sample is followed: nothing of its trace is exported.
    let unsampled = "5bf92f3577b34da6a3ce929d0e0e4736";
    let answer = traced_health(&s, &format!("00-{unsampled}-{CALLER_SPAN}-00")).await;
    assert!(answer.ends_with("-00"), "{answer}");
    // Another sampled request after it shows the exporter has sent what came before.
    let marker = "6bf92f3577b34da6a3ce929d0e0e4736";
    traced_health(&s, &format!("00-{marker}-{CALLER_SPAN}-01")).await;
    receiver
        .wait("the marker request", |spans| {
            named(spans, marker, "GET /healthz").cloned()
        })
        .await;
    assert!(receiver.spans().iter().all(|s| s["trace_id"] != unsampled));
}
