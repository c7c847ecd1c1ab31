//! A WHEP load generator: K concurrent WebRTC listeners on one channel that receive and count
//! RTP without decoding it (str0m as the client: ICE, DTLS-SRTP, depacketised Opus frames).
//!
//!   whep_load WHEP_URL TOKEN SESSIONS SECONDS
//!
//! Sessions open 25 every 100 ms (250 DTLS handshakes a second on each side), each listens
//! SECONDS after it connects (it gives up when not connected within 30 s), then DELETEs. Prints one
//! JSON object: sessions opened and connected, packets received and expected (from the RTP
//! timestamps' span, 20 ms per packet), loss, RFC 3550 interarrival jitter (mean and p99 over
//! sessions), time from POST to the first packet (p50, p99), and the generator's own CPU time.
//! Loopback only; bounded by SECONDS and SESSIONS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, RtcConfig};
use tokio::net::UdpSocket;

#[derive(Default, Debug)]
struct Stats {
    connected: bool,
    received: u64,
    expected: u64,
    jitter_ms: f64,
    first_audio_ms: Option<f64>,
    error: Option<String>,
}

async fn session(
    http: reqwest::Client,
    crypto: Arc<str0m::crypto::CryptoProvider>,
    url: String,
    token: String,
    seconds: f64,
) -> Stats {
    match run(http, crypto, &url, &token, seconds).await {
        Ok(s) => s,
        Err(e) => Stats {
            error: Some(e),
            ..Stats::default()
        },
    }
}

async fn run(
    http: reqwest::Client,
    crypto: Arc<str0m::crypto::CryptoProvider>,
    url: &str,
    token: &str,
    seconds: f64,
) -> Result<Stats, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let sock = UdpSocket::bind("127.0.0.1:0").await.map_err(|x| e(&x))?;
    let local = sock.local_addr().map_err(|x| e(&x))?;
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(crypto)
        .clear_codecs()
        .enable_opus(true, false)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|x| e(&x))?);
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().ok_or("no offer")?;
    let posted = Instant::now();
    let r = http
        .post(url)
        .header("content-type", "application/sdp")
        .bearer_auth(token)
        .body(offer.to_sdp_string())
        .send()
        .await
        .map_err(|x| e(&x))?;
    if r.status().as_u16() != 201 {
        return Err(format!("POST {}", r.status()));
    }
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or("no Location")?;
    let answer =
        SdpAnswer::from_sdp_string(&r.text().await.map_err(|x| e(&x))?).map_err(|x| e(&x))?;
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .map_err(|x| e(&x))?;

    let mut stats = Stats::default();
    let mut buf = vec![0u8; 2000];
    let mut until = Instant::now() + Duration::from_secs(30);
    let (mut first_rtp, mut last_rtp) = (None::<u64>, 0u64);
    let mut prev: Option<(Instant, u64)> = None;
    let mut jitter = 0f64;
    loop {
        let deadline = match rtc.poll_output().map_err(|x| e(&x))? {
            Output::Timeout(t) => t,
            Output::Transmit(t) => {
                let _ = sock.send_to(&t.contents, t.destination).await;
                continue;
            }
            Output::Event(ev) => {
                match ev {
                    Event::Connected => {
                        stats.connected = true;
                        until = Instant::now() + Duration::from_secs_f64(seconds);
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => break,
                    Event::MediaData(d) => {
                        let now = d.network_time;
                        let ts = d.time.numer();
                        stats.received += 1;
                        stats
                            .first_audio_ms
                            .get_or_insert(posted.elapsed().as_secs_f64() * 1000.0);
                        first_rtp.get_or_insert(ts);
                        last_rtp = last_rtp.max(ts);
                        if let Some((pt, pts)) = prev {
                            // RFC 3550 §6.4.1: D = (Rj - Ri) - (Sj - Si), in seconds.
                            let d = now.duration_since(pt).as_secs_f64()
                                - (ts as f64 - pts as f64) / 48_000.0;
                            jitter += (d.abs() - jitter) / 16.0;
                        }
                        prev = Some((now, ts));
                    }
                    _ => {}
                }
                continue;
            }
        };
        if Instant::now() >= until {
            break;
        }
        let wake = deadline.min(until);
        let input = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    let Ok(contents) = buf[..n].try_into() else { continue };
                    Input::Receive(Instant::now(), Receive {
                        proto: Protocol::Udp,
                        source: from,
                        destination: local,
                        contents,
                    })
                }
                Err(_) => continue,
            },
            _ = tokio::time::sleep_until(wake.into()) => Input::Timeout(Instant::now()),
        };
        rtc.handle_input(input).map_err(|x| e(&x))?;
    }
    if let Some(f) = first_rtp {
        stats.expected = (last_rtp - f) / 960 + 1;
    }
    stats.jitter_ms = jitter * 1000.0;
    let base: SocketAddr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .and_then(|h| h.parse().ok())
        .ok_or("bad URL")?;
    let _ = http.delete(format!("http://{base}{location}")).send().await;
    Ok(stats)
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of /proc/PID/stat: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 || args.iter().any(|a| a == "--bench") && args.len() < 6 {
        eprintln!("usage: whep_load WHEP_URL TOKEN SESSIONS SECONDS");
        return;
    }
    let (url, token) = (args[1].clone(), args[2].clone());
    let sessions: usize = args[3].parse().expect("SESSIONS");
    let seconds: f64 = args[4].parse().expect("SECONDS");
    assert!(url.starts_with("http://127.0.0.1"), "loopback only");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cpu0 = cpu_seconds();
    let wall = Instant::now();
    let all: Vec<Stats> = rt.block_on(async move {
        let http = reqwest::Client::new();
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let mut tasks = Vec::new();
        for i in 0..sessions {
            tasks.push(tokio::spawn(session(
                http.clone(),
                crypto.clone(),
                url.clone(),
                token.clone(),
                seconds,
            )));
            if i % 25 == 24 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap_or_default());
        }
        out
    });
    let connected = all.iter().filter(|s| s.connected).count();
    let received: u64 = all.iter().map(|s| s.received).sum();
    let expected: u64 = all.iter().map(|s| s.expected).sum();
    let mut jitter: Vec<f64> = all
        .iter()
        .filter(|s| s.connected)
        .map(|s| s.jitter_ms)
        .collect();
    let mut first: Vec<f64> = all.iter().filter_map(|s| s.first_audio_ms).collect();
    let errors: Vec<&String> = all
        .iter()
        .filter_map(|s| s.error.as_ref())
        .take(5)
        .collect();
    let jitter_mean = jitter.iter().sum::<f64>() / jitter.len().max(1) as f64;
    println!(
        "{{\"sessions\": {sessions}, \"connected\": {connected}, \"packets_received\": {received}, \
         \"packets_expected\": {expected}, \"loss_percent\": {:.3}, \"jitter_ms_mean\": {:.2}, \
         \"jitter_ms_p99\": {:.2}, \"first_audio_ms_p50\": {:.0}, \"first_audio_ms_p99\": {:.0}, \
         \"generator_cpu_percent\": {:.1}, \"wall_seconds\": {:.1}, \"errors\": {:?}}}",
        if expected > 0 {
            100.0 * (expected.saturating_sub(received)) as f64 / expected as f64
        } else {
            100.0
        },
        jitter_mean,
        percentile(&mut jitter, 0.99),
        percentile(&mut first, 0.5),
        percentile(&mut first, 0.99),
        100.0 * (cpu_seconds() - cpu0) / wall.elapsed().as_secs_f64(),
        wall.elapsed().as_secs_f64(),
        errors
    );
}
