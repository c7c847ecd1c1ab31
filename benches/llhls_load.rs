//! LL-HLS listener load: K concurrent listeners on one channel, each doing what hls.js does in
//! low-latency mode: a blocking playlist reload for the next part (`_HLS_msn`/`_HLS_part`), then
//! that part, again and again. Bounded in time and connections, loopback only.
//!
//!   cargo bench --bench llhls_load -- MEDIA_PLAYLIST_URL LISTENERS SECONDS SERVER_PID
//!
//! Prints one JSON line: parts published during the run, parts each listener fetched and missed
//! (published in its window but never fetched), request errors, blocking-reload and part
//! latencies, the server's CPU and RSS (from /proc) and this generator's own CPU, since on two
//! cores the two compete.

mod common;

use common::{cpu_seconds, percentile, rss_mb};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PARTS_PER_SEGMENT: u32 = 6;

/// The last part in a playlist: (msn, index).
fn last_part(text: &str) -> Option<(u64, u32)> {
    text.lines()
        .rev()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .filter_map(|l| l.split("URI=\"part_").nth(1))
        .filter_map(|u| {
            let name = u.split(".m4s").next()?;
            let (m, i) = name.split_once('_')?;
            Some((m.parse().ok()?, i.parse().ok()?))
        })
        .next()
}

fn next(p: (u64, u32)) -> (u64, u32) {
    if p.1 + 1 >= PARTS_PER_SEGMENT {
        (p.0 + 1, 0)
    } else {
        (p.0, p.1 + 1)
    }
}

#[tokio::main]
async fn main() {
    let args = common::args(
        4,
        "llhls_load MEDIA_PLAYLIST_URL LISTENERS SECONDS SERVER_PID",
    );
    let url = args[0].clone();
    assert!(url.starts_with("http://127.0.0.1"), "loopback only");
    let listeners: usize = args[1].parse().expect("listeners");
    let seconds: f64 = args[2].parse().expect("seconds");
    let pid: u32 = args[3].parse().expect("pid");
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (base, query) = url.split_once('?').expect("a token query");
    let dir = base.rsplit_once('/').expect("a path").0.to_string();
    let token_query = query.to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");
    let first = client
        .get(&url)
        .send()
        .await
        .expect("playlist")
        .text()
        .await
        .expect("text");
    let start_edge = last_part(&first).expect("a live playlist with parts");
    let fetched = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let missed = Arc::new(AtomicU64::new(0));
    let reload_ms = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let part_ms = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let cpu0 = cpu_seconds(pid);
    let own0 = cpu_seconds(std::process::id());
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for n in 0..listeners {
        let client = client.clone();
        let (url, dir, token_query) = (url.clone(), dir.clone(), token_query.clone());
        let (fetched, errors, missed) = (fetched.clone(), errors.clone(), missed.clone());
        let (reload_ms, part_ms) = (reload_ms.clone(), part_ms.clone());
        tasks.push(tokio::spawn(async move {
            // Spread the joins over the first second.
            tokio::time::sleep(Duration::from_millis(
                (n as u64 * 1000) / listeners.max(1) as u64,
            ))
            .await;
            let mut want = next(start_edge);
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = client
                    .get(format!("{url}&_HLS_msn={}&_HLS_part={}", want.0, want.1))
                    .send()
                    .await;
                let text = match r {
                    Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
                    Ok(r) if r.status() == 400 => {
                        // Fell out of the window or too far ahead: resync on the edge.
                        errors.fetch_add(1, Ordering::Relaxed);
                        let text = r.text().await.unwrap_or_default();
                        let _ = text;
                        if let Ok(p) = client.get(&url).send().await {
                            if let Some(e) = last_part(&p.text().await.unwrap_or_default()) {
                                want = next(e);
                            }
                        }
                        continue;
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                reload_ms.lock().push(t.elapsed().as_secs_f64() * 1000.0);
                let edge = last_part(&text).unwrap_or(want);
                let t = Instant::now();
                let part = client
                    .get(format!(
                        "{dir}/part_{}_{}.m4s?{token_query}",
                        want.0, want.1
                    ))
                    .send()
                    .await;
                let ok = match part {
                    Ok(p) if p.status().is_success() => p.bytes().await.is_ok(),
                    _ => false,
                };
                match ok {
                    true => {
                        fetched.fetch_add(1, Ordering::Relaxed);
                        part_ms.lock().push(t.elapsed().as_secs_f64() * 1000.0);
                        want = next(want);
                    }
                    false => {
                        // Gone: the listener fell behind the window; count it and jump ahead.
                        missed.fetch_add(1, Ordering::Relaxed);
                        want = next(edge);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let end = client
        .get(&url)
        .send()
        .await
        .expect("playlist")
        .text()
        .await
        .expect("text");
    let end_edge = last_part(&end).unwrap_or(start_edge);
    let published = (end_edge.0 * u64::from(PARTS_PER_SEGMENT) + u64::from(end_edge.1))
        .saturating_sub(start_edge.0 * u64::from(PARTS_PER_SEGMENT) + u64::from(start_edge.1));
    let fetched = fetched.load(Ordering::Relaxed);
    // Each listener joined up to a second late and stops at the deadline: expect the parts
    // published while it ran, less the one in flight.
    let per_listener = published.saturating_sub(4);
    let short = (per_listener * listeners as u64).saturating_sub(fetched);
    let mut reload = reload_ms.lock().clone();
    let mut part = part_ms.lock().clone();
    let cpu = cpu_seconds(pid) - cpu0;
    let own = cpu_seconds(std::process::id()) - own0;
    println!(
        "{}",
        serde_json::json!({
            "listeners": listeners,
            "seconds": (elapsed * 10.0).round() / 10.0,
            "parts_published": published,
            "parts_fetched": fetched,
            "parts_short": short,
            "parts_gone": missed.load(Ordering::Relaxed),
            "request_errors": errors.load(Ordering::Relaxed),
            "reload_ms_p50": (percentile(&mut reload, 0.5) * 10.0).round() / 10.0,
            "reload_ms_p99": (percentile(&mut reload, 0.99) * 10.0).round() / 10.0,
            "part_ms_p50": (percentile(&mut part, 0.5) * 10.0).round() / 10.0,
            "part_ms_p99": (percentile(&mut part, 0.99) * 10.0).round() / 10.0,
            "server_cpu_percent": (cpu / elapsed * 1000.0).round() / 10.0,
            "server_rss_mb": (rss_mb(pid) * 10.0).round() / 10.0,
            "server_rss_kb_per_listener": ((rss_mb(pid) * 1024.0) / listeners.max(1) as f64 * 10.0).round() / 10.0,
            "generator_cpu_percent": (own / elapsed * 1000.0).round() / 10.0,
        })
    );
}
