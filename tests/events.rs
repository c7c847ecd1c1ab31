//! Events against the real binary, on SQLite and on PostgreSQL, with a real webhook receiver and
//! the real RabbitMQ at 127.0.0.1:5672: the receiver goes down while things change, comes back,
//! and gets every event, signed and verifiable, once per id; the broker's queue holds every event
//! for a consumer that connects late. Also dead letters and replay by id.

mod common;

use common::fixtures;
use common::server::{Db, Server};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET: &str = "whsec-0123456789abcdef";
const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// One POST as the receiver saw it.
#[derive(Debug, Clone)]
struct Delivery {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A minimal HTTP/1.1 webhook receiver: reads one request per connection and answers 200 with
/// `Connection: close`. Aborting its task closes its socket, so the server sees it down.
struct Receiver {
    port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    async fn start(port: u16, got: Arc<Mutex<Vec<Delivery>>>) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = got;
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let sink = sink.clone();
                conns.spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let headers: HashMap<String, String> = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                        .collect();
                    let len: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body = buf[head_end..head_end + len].to_vec();
                    sink.lock().unwrap().push(Delivery { headers, body });
                    let _ = sock
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        Receiver {
            port,
            task: Some(task),
        }
    }

    fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Checks a delivery's signature as a receiver would, per README: HMAC-SHA256 over
/// `<t>.<body>`, compared in constant time.
fn verify(d: &Delivery) -> bool {
    let Some(sig) = d.headers.get("veza-signature") else {
        return false;
    };
    let mut t = None;
    let mut v1 = None;
    for part in sig.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_string()),
            Some(("v1", x)) => v1 = Some(x.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let Ok(expected) = (0..v1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&v1[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&d.body);
    mac.verify_slice(&expected).is_ok()
}

async fn wait_until<F, Fut>(what: &str, mut ok: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    // The limit only keeps a broken build from hanging CI; nothing asserts on time.
    let start = Instant::now();
    while !ok().await {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn all_events(s: &Server) -> Vec<Value> {
    let (st, _, list) = s
        .call("GET", "/v1/events?limit=500", &s.key, None, &[])
        .await;
    assert_eq!(st, 200);
    list["items"].as_array().unwrap().clone()
}

/// Every message in a queue, as (message id, body), consumed and acknowledged.
async fn drain_queue(queue: &str) -> Vec<(String, Value)> {
    use lapin::options::{BasicAckOptions, BasicGetOptions};
    let conn = lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default())
        .await
        .expect("RabbitMQ at 127.0.0.1:5672");
    let ch = conn.create_channel().await.unwrap();
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions::default())
        .await
        .unwrap()
    {
        let id = m
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default();
        out.push((id, serde_json::from_slice(&m.data).unwrap()));
        m.ack(BasicAckOptions::default()).await.unwrap();
    }
    let _ = ch
        .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
        .await;
    let _ = ch
        .exchange_delete(
            queue.into(),
            lapin::options::ExchangeDeleteOptions::default(),
        )
        .await;
    out
}

async fn outage(db: Db) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut receiver = Receiver::start(0, got.clone()).await;
    let port = receiver.port;
    let queue = format!("veza-test-{}", uuid::Uuid::new_v4().simple());
    let hooks = format!("[{{url = \"http://127.0.0.1:{port}/hook\", secret = \"{SECRET}\"}}]");
    let s = Server::start(
        db,
        &[
            ("VEZA_EVENTS__WEBHOOKS", &hooks),
            ("VEZA_EVENTS__AMQP_URL", AMQP),
            ("VEZA_EVENTS__AMQP_QUEUE", &queue),
            // Its own exchange, so that tests running at once do not feed each other's queues.
            ("VEZA_EVENTS__AMQP_EXCHANGE", &queue),
            ("VEZA_EVENTS__RETRY_BACKOFF_MS", "100"),
            ("VEZA_EVENTS__RETRY_BACKOFF_MAX_MS", "500"),
            ("VEZA_EVENTS__MAX_ATTEMPTS", "1000"),
        ],
    )
    .await;
    let alice = s.token("alice", "artist");

    // Before the outage: a track becomes ready, a playlist is made.
    let t = s
        .upload_as(&fixtures().join("formats/wav_pcm16_mono_16k.wav"), &alice)
        .await;
    let track = t["id"].as_str().unwrap().to_string();
    assert_eq!(s.wait_final(&track).await["status"], "ready");
    let (_, _, p) = s
        .call(
            "POST",
            "/v1/playlists",
            &alice,
            Some(json!({"title": "Before", "track_ids": [track]})),
            &[],
        )
        .await;
    let playlist = format!("/v1/playlists/{}", p["id"].as_str().unwrap());
    wait_until("two events delivered", || {
        let got = got.clone();
        async move { got.lock().unwrap().len() >= 2 }
    })
    .await;

    // The receiver goes down; things keep changing.
    receiver.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before_outage = got.lock().unwrap().len();
    for title in ["During 1", "During 2"] {
        let (st, _, _) = s
            .call(
                "PATCH",
                &playlist,
                &alice,
                Some(json!({"title": title})),
                &[],
            )
            .await;
        assert_eq!(st, 200);
    }
    let bad = s
        .upload_as(&fixtures().join("edge/random_bytes.mp3"), &alice)
        .await;
    assert_eq!(
        s.wait_final(bad["id"].as_str().unwrap()).await["status"],
        "failed"
    );
    assert_eq!(s.delete(&track).await, 204);
    let (st, _, _) = s.call("DELETE", &playlist, &alice, None, &[]).await;
    assert_eq!(st, 204);
    // The server retries and keeps them pending while the receiver is away.
    wait_until("retries recorded", || {
        let s = &s;
        async move {
            all_events(s)
                .await
                .iter()
                .any(|e| e["state"] == "pending" && e["attempts"].as_i64().unwrap() >= 2)
        }
    })
    .await;
    assert_eq!(got.lock().unwrap().len(), before_outage);

    // Back on the same port: everything arrives.
    let mut receiver = Receiver::start(port, got.clone()).await;
    wait_until("every event delivered", || {
        let s = &s;
        async move {
            let all = all_events(s).await;
            all.len() >= 7 && all.iter().all(|e| e["state"] == "delivered")
        }
    })
    .await;
    receiver.stop();

    let events = all_events(&s).await;
    let ids: Vec<String> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for k in [
        "track.ready",
        "track.failed",
        "track.deleted",
        "playlist.created",
        "playlist.updated",
        "playlist.deleted",
    ] {
        assert!(kinds.contains(&k), "{k} not in {kinds:?}");
    }
    let deliveries = got.lock().unwrap().clone();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for d in &deliveries {
        assert!(verify(d), "a delivery fails verification: {:?}", d.headers);
        let body: Value = serde_json::from_slice(&d.body).unwrap();
        let id = body["id"].as_str().unwrap().to_string();
        assert_eq!(d.headers["veza-event-id"], id);
        assert_eq!(d.headers["veza-event-type"], body["type"].as_str().unwrap());
        *seen.entry(id).or_default() += 1;
    }
    let mut got_ids: Vec<&String> = seen.keys().collect();
    got_ids.sort();
    let mut want: Vec<&String> = ids.iter().collect();
    want.sort();
    assert_eq!(
        got_ids, want,
        "the receiver got exactly the outbox's events"
    );
    assert!(seen.values().all(|n| *n == 1), "duplicates: {seen:?}");
    for e in &events {
        let mut to: Vec<&str> = e["delivered_to"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        to.sort();
        let hook = format!("webhook:http://127.0.0.1:{port}/hook");
        assert_eq!(to, ["amqp", hook.as_str()], "{e}");
    }

    // The broker's queue held every event for a consumer that connects only now.
    let messages = drain_queue(&queue).await;
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (id, body) in &messages {
        assert_eq!(body["id"].as_str(), Some(id.as_str()));
        *by_id.entry(id.clone()).or_default() += 1;
    }
    let mut broker_ids: Vec<&String> = by_id.keys().collect();
    broker_ids.sort();
    assert_eq!(
        broker_ids, want,
        "the queue got exactly the outbox's events"
    );
    assert!(by_id.values().all(|n| *n == 1), "duplicates: {by_id:?}");
}

#[tokio::test]
async fn events_survive_a_receiver_outage_sqlite() {
    outage(Db::Sqlite).await;
}

#[tokio::test]
async fn events_survive_a_receiver_outage_postgres() {
    outage(Db::Postgres).await;
}

/// An event that cannot be delivered is dead-lettered after its attempts, and replaying it by id
/// delivers it once the receiver is there.
#[tokio::test]
async fn dead_letters_are_replayed_by_id() {
    let got = Arc::new(Mutex::new(Vec::new()));
    // A port with nothing listening (yet).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hooks = format!("[{{url = \"http://127.0.0.1:{port}/hook\", secret = \"{SECRET}\"}}]");
    let s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_EVENTS__WEBHOOKS", &hooks),
            ("VEZA_EVENTS__RETRY_BACKOFF_MS", "50"),
            ("VEZA_EVENTS__MAX_ATTEMPTS", "3"),
        ],
    )
    .await;
    let alice = s.token("alice", "artist");
    let (st, _, _) = s
        .call(
            "POST",
            "/v1/playlists",
            &alice,
            Some(json!({"title": "x"})),
            &[],
        )
        .await;
    assert_eq!(st, 201);
    wait_until("dead-lettered", || {
        let s = &s;
        async move { all_events(s).await.iter().all(|e| e["state"] == "dead") }
    })
    .await;
    let dead = all_events(&s).await;
    assert_eq!(dead[0]["attempts"], 3);
    assert!(dead[0]["last_error"].as_str().unwrap().contains("webhook"));
    let (st, _, listed) = s
        .call("GET", "/v1/events?state=dead", &s.key, None, &[])
        .await;
    assert_eq!(st, 200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    let mut receiver = Receiver::start(port, got.clone()).await;
    let id = dead[0]["id"].as_str().unwrap();
    let (st, _, _) = s
        .call(
            "POST",
            &format!("/v1/events/{id}/replay"),
            &s.key,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 202);
    let (st, _, _) = s
        .call("POST", "/v1/events/no-such-event/replay", &s.key, None, &[])
        .await;
    assert_eq!(st, 404);
    wait_until("replayed", || {
        let got = got.clone();
        async move { !got.lock().unwrap().is_empty() }
    })
    .await;
    receiver.stop();
    let d = got.lock().unwrap()[0].clone();
    assert!(verify(&d));
    let body: Value = serde_json::from_slice(&d.body).unwrap();
    assert_eq!(body["id"], id);
    assert_eq!(body["type"], "playlist.created");
    // The dispatcher records the delivery once it has read the receiver's answer, which may be
    // just after the receiver saw the request.
    wait_until("recorded as delivered", || {
        let s = &s;
        async move { all_events(s).await[0]["state"] == "delivered" }
    })
    .await;
}
