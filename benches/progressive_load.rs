//! Progressive listener load: N Icecast-style listeners on one mount, each one long HTTP/1.0 GET
//! read to the end and discarded, as car radios, Winamp and smart speakers do. The same generator
//! runs against Debian's icecast2 and this server (`benches/icecast.sh`), so the two costs per
//! listener compare. Bounded in time and connections, loopback only.
//!
//!   cargo bench --bench progressive_load -- URL LISTENERS SECONDS SERVER_PID [RAMP_SECONDS]
//!
//! Listeners join evenly over the ramp (5 s by default). The server's CPU is measured from /proc
//! over the window that starts 2 s after the ramp and ends at the deadline; its RSS at the end.
//! Prints one JSON line: listeners connected, refused (not 200), failed, ended early or starved
//! (fewer bytes in the window than 90 % of the stream's rate), kb/s per listener, time to the
//! first body byte, the server's CPU and RSS, and this generator's own CPU, since on two cores the
//! two compete.

mod common;

use common::{cpu_seconds, percentile, rss_mb};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Default)]
struct Counts {
    connected: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    ended_early: AtomicU64,
    starved: AtomicU64,
    /// Body bytes read inside the measuring window, by every listener.
    window_bytes: AtomicU64,
}

/// One listener: connects, asks, then reads until the deadline. Returns the time to its first
/// body byte.
async fn listen(
    addr: &str,
    request: &[u8],
    window: (Instant, Instant),
    counts: &Counts,
    min_window_bytes: u64,
) -> Option<f64> {
    let t = Instant::now();
    let fail = |c: &AtomicU64| {
        c.fetch_add(1, Ordering::Relaxed);
        None
    };
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await
    else {
        return fail(&counts.failed);
    };
    if s.write_all(request).await.is_err() {
        return fail(&counts.failed);
    }
    let mut buf = vec![0u8; 16 << 10];
    let mut head = Vec::new();
    // The head, and whatever body came with it.
    let body_start = loop {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return fail(&counts.failed),
        }
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > 16 << 10 {
            return fail(&counts.failed);
        }
    };
    let status_ok = head
        .split(|&b| b == b'\n')
        .next()
        .is_some_and(|l| l.windows(5).any(|w| w == b" 200 "));
    if !status_ok {
        return fail(&counts.refused);
    }
    counts.connected.fetch_add(1, Ordering::Relaxed);
    let mut first = (head.len() > body_start).then(|| t.elapsed().as_secs_f64());
    let mut in_window = 0u64;
    loop {
        let now = Instant::now();
        if now >= window.1 {
            break;
        }
        match tokio::time::timeout(window.1 - now, s.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0)) | Ok(Err(_)) => {
                counts.ended_early.fetch_add(1, Ordering::Relaxed);
                break;
            }
            Ok(Ok(n)) => {
                first.get_or_insert_with(|| t.elapsed().as_secs_f64());
                if Instant::now() >= window.0 {
                    in_window += n as u64;
                }
            }
        }
    }
    counts.window_bytes.fetch_add(in_window, Ordering::Relaxed);
    if in_window < min_window_bytes {
        counts.starved.fetch_add(1, Ordering::Relaxed);
    }
    first
}

#[tokio::main]
async fn main() {
    let args = common::args(
        4,
        "progressive_load URL LISTENERS SECONDS SERVER_PID [RAMP_SECONDS]",
    );
    let url = args[0].clone();
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .expect("loopback http URLs only");
    let (port, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr = format!("127.0.0.1:{port}");
    let listeners: usize = args[1].parse().expect("listeners");
    let seconds: f64 = args[2].parse().expect("seconds");
    let pid: u32 = args[3].parse().expect("pid");
    let ramp: f64 = args
        .get(4)
        .map_or(5.0, |r| r.parse().expect("ramp seconds"));
    let kbps: f64 = std::env::var("KBPS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(128.0);
    assert!(seconds > 4.0, "at least 5 s after the ramp");
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let request = Arc::new(
        format!(
            "GET {} HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: progressive_load\r\n\r\n",
            if path.is_empty() { "/" } else { path }
        )
        .into_bytes(),
    );
    let t0 = Instant::now();
    let window = (
        t0 + Duration::from_secs_f64(ramp + 2.0),
        t0 + Duration::from_secs_f64(ramp + seconds),
    );
    let window_s = (window.1 - window.0).as_secs_f64();
    // A listener that got less than 90 % of the stream's bytes in the window fell behind.
    let min_window_bytes = (kbps * 1000.0 / 8.0 * window_s * 0.9) as u64;
    let counts = Arc::new(Counts::default());
    let mut tasks = Vec::with_capacity(listeners);
    for n in 0..listeners {
        let (addr, request, counts) = (addr.clone(), request.clone(), counts.clone());
        let join = t0 + Duration::from_secs_f64(ramp * n as f64 / listeners as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(join.into()).await;
            listen(&addr, &request, window, &counts, min_window_bytes).await
        }));
    }
    tokio::time::sleep_until(window.0.into()).await;
    let (cpu0, own0) = (cpu_seconds(pid), cpu_seconds(std::process::id()));
    tokio::time::sleep_until(window.1.into()).await;
    let (cpu, own) = (
        cpu_seconds(pid) - cpu0,
        cpu_seconds(std::process::id()) - own0,
    );
    let rss = rss_mb(pid);
    let mut first_ms = Vec::new();
    for t in tasks {
        if let Ok(Some(s)) = t.await {
            first_ms.push(s * 1000.0);
        }
    }
    let c = &counts;
    let connected = c.connected.load(Ordering::Relaxed);
    let server_pct = cpu / window_s * 100.0;
    let round = |x: f64, d: i32| (x * 10f64.powi(d)).round() / 10f64.powi(d);
    println!(
        "{}",
        serde_json::json!({
            "url": url,
            "listeners": listeners,
            "window_s": round(window_s, 1),
            "connected": connected,
            "refused": c.refused.load(Ordering::Relaxed),
            "failed": c.failed.load(Ordering::Relaxed),
            "ended_early": c.ended_early.load(Ordering::Relaxed),
            "starved": c.starved.load(Ordering::Relaxed),
            "kbit_per_listener": round(c.window_bytes.load(Ordering::Relaxed) as f64 * 8.0 / 1000.0 / window_s / connected.max(1) as f64, 1),
            "first_byte_ms_p50": round(percentile(&mut first_ms, 0.5), 1),
            "first_byte_ms_p99": round(percentile(&mut first_ms, 0.99), 1),
            "server_cpu_percent": round(server_pct, 2),
            "server_cpu_percent_per_listener": round(server_pct / listeners.max(1) as f64, 5),
            "server_rss_mb": round(rss, 1),
            "generator_cpu_percent": round(own / window_s * 100.0, 1),
        })
    );
}
