//! Live sources as careless and hostile clients send them, on the server's defaults: ffmpeg
//! without `-re` (a file pushed as fast as the socket takes it), ten minutes of 8 kb/s MP3 in
//! one write, the owner reconnecting while the old connection still holds its backlog, and a
//! rotated key. Memory must stay bounded, dates must follow the media, and the key's owner
//! must get the channel back at once.

mod common;

use common::live::*;
use common::server::{Db, Server};
use serde_json::json;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// The server's resident memory, in MiB.
fn rss_mib(s: &Server) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

/// ffmpeg sending `file` as MP3 (copied, not encoded) to the channel without `-re`.
fn ffmpeg_fast(s: &Server, id: &str, key: &str, file: &std::path::Path, name: &str) -> Proc {
    Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(file)
            .args(["-vn", "-c:a", "copy", "-content_type", "audio/mpeg"])
            .args(["-ice_name", name, "-f", "mp3"])
            .arg(format!("icecast://source:{key}@{}/ingest/{id}", addr(s)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    )
}

/// Every segment's `EXT-X-PROGRAM-DATE-TIME` (Unix ms) and `EXTINF` (ms) of a media playlist,
/// by media sequence number.
fn dated_segments(playlist: &str) -> Vec<(u64, i64, i64)> {
    let mut out = Vec::new();
    let (mut date, mut extinf) = (None, None);
    for line in playlist.lines() {
        if let Some(d) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            let t = humantime::parse_rfc3339(d).expect("an RFC 3339 date");
            let ms = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
            date = Some(ms);
        } else if let Some(x) = line.strip_prefix("#EXTINF:") {
            let secs: f64 = x.trim_end_matches(',').parse().unwrap();
            extinf = Some((secs * 1000.0).round() as i64);
        } else if let Some(n) = line
            .strip_prefix("seg_")
            .and_then(|r| r.split('.').next())
            .and_then(|n| n.parse::<u64>().ok())
        {
            if let (Some(d), Some(x)) = (date.take(), extinf.take()) {
                out.push((n, d, x));
            }
        }
    }
    out
}

/// Follows a channel's media playlist for `seconds`: every segment keeps the date it was first
/// given, and each is dated exactly its predecessor's date plus its predecessor's EXTINF
/// (RFC 8216bis 4.4.4.6: dates consistent with durations). Returns the server's peak memory.
async fn follow_dates(s: &Server, id: &str, seconds: u64) -> f64 {
    let (token, _) = playback(s, id).await;
    let media = format!("{}/hls/live/{id}/aac-128/index.m3u8?token={token}", s.url);
    let mut dates: BTreeMap<u64, (i64, i64)> = BTreeMap::new();
    let mut peak = rss_mib(s);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) {
        let text = s
            .client()
            .get(&media)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for (msn, date, extinf) in dated_segments(&text) {
            if let Some((old, _)) = dates.insert(msn, (date, extinf)) {
                assert_eq!(old, date, "segment {msn} was re-dated");
            }
        }
        peak = peak.max(rss_mib(s));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let v: Vec<_> = dates.iter().collect();
    assert!(v.len() >= 4, "too few segments seen: {v:?}");
    for w in v.windows(2) {
        let ((m0, (d0, x0)), (m1, (d1, _))) = (w[0], w[1]);
        assert_eq!(m0 + 1, *m1, "a gap in the sequence: {v:?}");
        assert!(
            (d1 - d0 - x0).abs() <= 1,
            "segment {m1} dated {} ms after {m0}, whose EXTINF is {x0} ms: {v:?}",
            d1 - d0
        );
    }
    peak
}

/// Rotates the channel's stream key and waits for it to go offline: its source ends at once,
/// with its backlog (minutes of audio in these tests, so "at once" is well under 10 s).
async fn rotate_and_wait_offline(s: &Server, id: &str) {
    let (st, _, v) = s
        .call(
            "POST",
            &format!("/v1/channels/{id}/stream-key"),
            &s.key,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let rotated = Instant::now();
    wait_for(s, id, "/state", "offline").await;
    assert!(rotated.elapsed() < Duration::from_secs(10));
}

/// ffmpeg without `-re` pushes a three-minute MP3 as fast as it can: the server holds it back
/// through TCP (memory stays flat; before, 27 MB grew to 234 MB in 25 s), the playlist's dates
/// advance with the media, never back. The owner's second ffmpeg takes the channel over at once
/// (it used to get 403 until the backlog was decoded), and a rotated key ends it at once.
#[tokio::test(flavor = "multi_thread")]
async fn ffmpeg_without_re_is_held_back_and_its_owner_takes_over() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let c = create(&s, json!({"title": "Careless"})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let before = rss_mib(&s);
    let _fast = ffmpeg_fast(&s, &id, &key, &track_mp3(), "Too fast");
    wait_for(&s, &id, "/source/name", "Too fast").await;
    let peak = follow_dates(&s, &id, 12).await;
    eprintln!("ffmpeg without -re: RSS {before:.1} MiB before, {peak:.1} MiB at most over 12 s");
    assert!(
        peak < before + 40.0,
        "memory grew from {before:.0} MiB to {peak:.0} MiB"
    );
    // Still live on the file: it was not read ahead and dropped.
    assert_eq!(channel(&s, &id).await["state"], "live");

    // The owner starts ffmpeg again, paced this time: it takes over at once.
    let _paced = ffmpeg_source(&s, &id, &key, &track_mp3(), "mp3");
    wait_for(&s, &id, "/source/name", "Test show").await;

    // A rotated key ends the source at once: the channel has no auto-DJ, so it goes offline.
    rotate_and_wait_offline(&s, &id).await;
    assert!(channel(&s, &id).await["source"].is_null());
}

/// Ten minutes of 8 kb/s MP3 (600 KB) in one write: decoded, it is 230 MB of PCM; held back
/// through TCP it costs a few MB. A rotated key ends it at once, backlog included.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_low_bitrate_mp3_costs_seconds_not_its_length() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mp3 = dir.path().join("burst.mp3");
    let made = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("sine=frequency=440:duration=600:sample_rate=8000")
        .args(["-c:a", "libmp3lame", "-b:a", "8k"])
        .arg(&mp3)
        .status()
        .unwrap();
    assert!(made.success());
    let body = std::fs::read(&mp3).unwrap();
    assert!(body.len() > 550_000, "{} bytes", body.len());
    let c = create(&s, json!({"title": "Burst"})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let before = rss_mib(&s);
    let mut tcp = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    let head = put_head(&id, &key, Some("audio/mpeg"));
    let sender = tokio::spawn(async move {
        tcp.write_all(head.as_bytes()).await.unwrap();
        // One write; it returns once the kernel has taken it all.
        let _ = tcp.write_all(&body).await;
        tcp
    });
    wait_for(&s, &id, "/state", "live").await;
    let mut peak = before;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(8) {
        peak = peak.max(rss_mib(&s));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("600 KB of 8 kb/s MP3 in one write: RSS {before:.1} MiB before, {peak:.1} MiB at most over 8 s");
    assert!(
        peak < before + 40.0,
        "memory grew from {before:.0} MiB to {peak:.0} MiB"
    );
    rotate_and_wait_offline(&s, &id).await;
    drop(sender);
}

/// Sources nobody had tried: ffmpeg's Ogg FLAC (a second of audio per page, past the decoder's
/// first probe; it was dropped as garbage after 3 s, three times out of three), the legacy
/// `SOURCE /mount ICE/1.0` request line of old libshout with 55 `ice-*` headers (it got 400, and
/// 431 "over 16 KiB" for a 2.6 KB head), and titles with bidirectional overrides and line
/// separators (kept as sent).
#[tokio::test(flavor = "multi_thread")]
async fn ogg_flac_the_ice_request_line_and_hostile_titles_are_taken() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let c = create(&s, json!({"title": "Sources"})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let flac = common::fixtures().join("track/full_track_3min_stereo_44k.flac");
    let mut ff = ffmpeg_source(&s, &id, &key, &flac, "oggflac");
    wait_for(&s, &id, "/state", "live").await;
    // Still live, decoding, after more than the 3 s it used to last.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let now = channel(&s, &id).await;
    assert_eq!(now["state"], "live", "{now}\n{}", s.log());
    assert_eq!(now["source"]["codec"], "application/ogg");
    let (token, _) = playback(&s, &id).await;
    let media = format!("{}/hls/live/{id}/aac-128/index.m3u8?token={token}", s.url);
    assert!(
        ffmpeg_listen(&media, 3) > 0.01,
        "the Ogg FLAC source is heard"
    );
    ff.stop();
    wait_for(&s, &id, "/state", "offline").await;

    // Old libshout: SOURCE … ICE/1.0, with 55 ice-* headers (2.6 KB).
    let mut head = format!(
        "SOURCE /ingest/{id} ICE/1.0\r\nAuthorization: Basic {}\r\nContent-Type: audio/mpeg\r\n\
         ice-name: Legacy\r\n",
        base64(&format!("source:{key}"))
    );
    for i in 0..55 {
        head.push_str(&format!("ice-x-field-{i}: {}\r\n", "v".repeat(30)));
    }
    head.push_str("\r\n");
    assert!(head.len() > 2_500);
    let mp3 = std::fs::read(track_mp3()).unwrap();
    let mut tcp = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = [0u8; 64];
    use tokio::io::AsyncReadExt;
    let n = tcp.read(&mut answer).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.0 200 OK"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    // Sent at about real time (128 kb/s), a second at a time.
    let sender = tokio::spawn(async move {
        for chunk in mp3.chunks(16_000).take(20) {
            if tcp.write_all(chunk).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(900)).await;
        }
    });
    wait_for(&s, &id, "/source/name", "Legacy").await;
    // A title that would reverse what follows it and break lines.
    set_song(
        &s,
        &id,
        &key,
        "Artist%20%E2%80%AEgnoS%E2%80%AC%20-%20Title%E2%80%A8Two",
    )
    .await;
    let np = wait_for(&s, &id, "/now_playing/title", "Artist gnoS - TitleTwo").await;
    assert!(
        np["now_playing"]["title"].as_str().unwrap().is_ascii(),
        "{np}"
    );
    sender.abort();
}

/// A LL-HLS listener that stops asking is no longer counted within a few part durations
/// (it used to count for `delivery.listener_idle_seconds`, 60 s, after leaving).
#[tokio::test(flavor = "multi_thread")]
async fn a_live_hls_listener_that_leaves_stops_counting_within_seconds() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let c = create(&s, json!({"title": "Count"})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let _ff = ffmpeg_source(&s, &id, &key, &track_mp3(), "mp3");
    wait_for(&s, &id, "/state", "live").await;
    let (token, _) = playback(&s, &id).await;
    let media = format!("{}/hls/live/{id}/aac-128/index.m3u8?token={token}", s.url);
    let start = Instant::now();
    loop {
        let r = s.client().get(&media).send().await.unwrap();
        assert_eq!(r.status(), 200);
        if channel(&s, &id).await["listeners"]["hls"] == 1 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never counted");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let left = Instant::now();
    loop {
        if channel(&s, &id).await["listeners"]["hls"] == 0 {
            break;
        }
        assert!(
            left.elapsed() < Duration::from_secs(15),
            "still counted {:?} after leaving",
            left.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
