//! The same load over HTTP/1.1 on TLS, HTTP/2 and HTTP/3, from one generator of our own
//! (reqwest for the TCP protocols, `veza_stream::http3::client` for HTTP/3), so that the three
//! are measured alike. Bounded in time and connections; loopback only.
//!
//!   cargo bench --bench protocols -- get    URL PROTOCOL CONNECTIONS STREAMS SECONDS SERVER_PID CERT
//!   cargo bench --bench protocols -- reload URL PROTOCOL LISTENERS   1       SECONDS SERVER_PID CERT
//!
//! PROTOCOL is `h1` (HTTP/1.1 over TLS), `h2` or `h3`. `get` fetches URL (a segment, say) again
//! and again on CONNECTIONS connections with STREAMS requests in flight on each. `reload` runs
//! LISTENERS LL-HLS listeners on URL (a live media playlist), each doing a blocking reload for the
//! next part, one connection each. Prints one JSON line: requests, errors, req/s, latency p50 and
//! p99 (for `reload`, also how late each answer came after its part's nominal end by the
//! playlist's PROGRAM-DATE-TIME), the server's CPU and this generator's own CPU.

mod common;

use common::{cpu_seconds, percentile};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use veza_stream::http3::client::H3;

/// One connection's way of asking.
#[derive(Clone)]
enum Conn {
    Tcp(reqwest::Client),
    H3(H3),
}

impl Conn {
    async fn open(protocol: &str, origin: &str, cert: &str) -> Conn {
        let pem = std::fs::read(cert).expect("certificate");
        let tcp = || {
            reqwest::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(15))
        };
        match protocol {
            "h1" => Conn::Tcp(tcp().http1_only().build().expect("client")),
            "h2" => Conn::Tcp(tcp().http2_prior_knowledge().build().expect("client")),
            "h3" => {
                let addr = origin
                    .trim_start_matches("https://")
                    .parse()
                    .expect("https://IP:PORT");
                Conn::H3(H3::connect(addr, cert.as_ref()).await.expect("HTTP/3"))
            }
            p => panic!("unknown protocol {p}: h1, h2 or h3"),
        }
    }

    /// Status and body of GET `origin` + `path`.
    async fn get(&mut self, origin: &str, path: &str) -> Result<(u16, bytes::Bytes), String> {
        match self {
            Conn::Tcp(c) => {
                let r = c
                    .get(format!("{origin}{path}"))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = r.status().as_u16();
                Ok((status, r.bytes().await.map_err(|e| e.to_string())?))
            }
            Conn::H3(h) => h.get(path, &[]).await.map(|a| (a.status, a.body)),
        }
    }
}

/// The next part after the last one listed, and when the last one listed ends by
/// PROGRAM-DATE-TIME (Unix seconds).
fn next_part(playlist: &str) -> Option<(u64, u64, f64)> {
    let mut msn: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))?
        .trim()
        .parse()
        .ok()?;
    let (mut parts, mut at, mut end) = (0, None::<f64>, 0.0);
    for l in playlist.lines() {
        if let Some(d) = l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            at = humantime::parse_rfc3339(d.trim()).ok().map(|t| {
                t.duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64()
            });
            end = at.unwrap_or(0.0);
        } else if let Some(p) = l.strip_prefix("#EXT-X-PART:DURATION=") {
            let d: f64 = p.split(',').next()?.parse().ok()?;
            parts += 1;
            end += d;
        } else if let Some(d) = l.strip_prefix("#EXTINF:") {
            let d: f64 = d.trim_end_matches(',').split(',').next()?.parse().ok()?;
            end = at.map_or(end, |a| a + d);
            at = Some(end);
        } else if !l.starts_with('#') && !l.is_empty() {
            msn += 1;
            parts = 0;
        }
    }
    Some((msn, parts, end))
}

#[tokio::main]
async fn main() {
    let args = common::args(
        8,
        "protocols get|reload URL h1|h2|h3 CONNECTIONS STREAMS SECONDS SERVER_PID CERT",
    );
    let (mode, url, protocol) = (args[0].clone(), args[1].clone(), args[2].clone());
    assert!(url.starts_with("https://127.0.0.1:"), "loopback only");
    let connections: usize = args[3].parse().expect("connections");
    let streams: usize = args[4].parse().expect("streams");
    let seconds: f64 = args[5].parse().expect("seconds");
    let pid: u32 = args[6].parse().expect("pid");
    let cert = args[7].clone();
    let after_scheme = url.trim_start_matches("https://");
    let slash = after_scheme.find('/').expect("a path");
    let origin = format!("https://{}", &after_scheme[..slash]);
    let path = after_scheme[slash..].to_string();

    let latencies = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let late = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut conns = Vec::new();
    for _ in 0..connections {
        conns.push(Conn::open(&protocol, &origin, &cert).await);
    }
    let cpu0 = cpu_seconds(pid);
    let own0 = cpu_seconds(std::process::id());
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for conn in conns {
        for _ in 0..streams {
            let (mut conn, origin, path) = (conn.clone(), origin.clone(), path.clone());
            let (latencies, late, errors) = (latencies.clone(), late.clone(), errors.clone());
            let reload = mode == "reload";
            tasks.push(tokio::spawn(async move {
                let mut ask = path.clone();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match conn.get(&origin, &ask).await {
                        Ok((status, body)) if status < 400 => {
                            latencies.lock().push(t.elapsed().as_secs_f64() * 1000.0);
                            if reload {
                                let text = String::from_utf8_lossy(&body);
                                let now = SystemTime::now()
                                    .duration_since(UNIX_EPOCH)
                                    .unwrap_or_default()
                                    .as_secs_f64();
                                if let Some((msn, part, end)) = next_part(&text) {
                                    if ask != path {
                                        // Answered: how long after the awaited part's nominal
                                        // end (the last part the answer lists).
                                        late.lock().push((now - end) * 1000.0);
                                    }
                                    ask = format!("{path}&_HLS_msn={msn}&_HLS_part={part}");
                                }
                            }
                        }
                        _ => {
                            errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            ask = path.clone();
                        }
                    }
                }
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu0;
    let own = cpu_seconds(std::process::id()) - own0;
    let mut lat = latencies.lock().clone();
    let mut late = late.lock().clone();
    let round = |x: f64| (x * 100.0).round() / 100.0;
    println!(
        "{}",
        serde_json::json!({
            "mode": mode,
            "protocol": protocol,
            "connections": connections,
            "streams": streams,
            "seconds": round(elapsed),
            "requests": lat.len(),
            "errors": errors.load(std::sync::atomic::Ordering::Relaxed),
            "req_per_s": round(lat.len() as f64 / elapsed),
            "latency_ms_p50": round(percentile(&mut lat, 0.5)),
            "latency_ms_p99": round(percentile(&mut lat, 0.99)),
            "release_late_ms_p50": round(percentile(&mut late, 0.5)),
            "release_late_ms_p99": round(percentile(&mut late, 0.99)),
            "server_cpu_percent": round(cpu / elapsed * 100.0),
            "generator_cpu_percent": round(own / elapsed * 100.0),
        })
    );
}
