//! Helpers of the live tests (channels, sources, listeners), shared by `tests/live.rs`,
//! `tests/webrtc.rs` and `tests/mounts.rs`.

use super::server::Server;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn track_mp3() -> PathBuf {
    super::fixtures().join("track/full_track_3min_stereo_44k.mp3")
}

pub fn kit(tool: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/tools/kit")
        .join(tool)
}

/// `host:port` of a server URL.
pub fn addr(s: &Server) -> String {
    s.url.trim_start_matches("http://").to_string()
}

pub async fn create(s: &Server, body: Value) -> Value {
    let (st, h, v) = s
        .call("POST", "/v1/channels", &s.key, Some(body), &[])
        .await;
    assert_eq!(st, 201, "{v}");
    assert!(h.get("location").is_some() && h.get("etag").is_some());
    v
}

pub async fn channel(s: &Server, id: &str) -> Value {
    let (st, _, v) = s
        .call("GET", &format!("/v1/channels/{id}"), &s.key, None, &[])
        .await;
    assert_eq!(st, 200, "{v}");
    v
}

/// Polls until the channel's `field` is `want`. The limit only keeps a broken build from hanging.
pub async fn wait_for(s: &Server, id: &str, field: &str, want: &str) -> Value {
    let start = Instant::now();
    loop {
        let c = channel(s, id).await;
        if c.pointer(field).and_then(Value::as_str) == Some(want) {
            return c;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{field} never became {want}: {c}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST /v1/channels/{id}/playback`: the whole answer.
pub async fn playback_answer(s: &Server, id: &str) -> Value {
    let (st, _, v) = s
        .call(
            "POST",
            &format!("/v1/channels/{id}/playback"),
            &s.key,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v
}

/// The playback token and master URL of a channel.
pub async fn playback(s: &Server, id: &str) -> (String, String) {
    let v = playback_answer(s, id).await;
    (
        v["token"].as_str().unwrap().to_string(),
        v["master_url"].as_str().unwrap().to_string(),
    )
}

/// Icecast's title update, `/admin/metadata?mode=updinfo`, with the source's credentials.
pub async fn set_song(s: &Server, id: &str, key: &str, song: &str) {
    let url = format!(
        "{}/admin/metadata?mount=/ingest/{id}&mode=updinfo&song={}",
        s.url,
        song.replace(' ', "%20")
    );
    let r = s
        .client()
        .get(&url)
        .header(
            "authorization",
            format!("Basic {}", base64(&format!("source:{key}"))),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A child process killed and reaped when dropped.
pub struct Proc(pub Child);

impl Proc {
    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// ffmpeg as an Icecast source: `file` in real time, encoded as `format` (`mp3`, `adts`, `ogg`
/// for Vorbis, `oggflac`).
pub fn ffmpeg_source(s: &Server, id: &str, key: &str, file: &Path, format: &str) -> Proc {
    let ingest = format!("http://{}/ingest/{id}", addr(s));
    ffmpeg_source_at(&ingest, key, file, format)
}

/// ffmpeg as an Icecast source to a channel's `ingest_url` (`https://` is Icecast over TLS).
pub fn ffmpeg_source_at(ingest_url: &str, key: &str, file: &Path, format: &str) -> Proc {
    let (tls, rest) = match ingest_url.strip_prefix("https://") {
        Some(rest) => ("1", rest),
        None => ("0", ingest_url.trim_start_matches("http://")),
    };
    let (codec, ct) = match format {
        "mp3" => (vec!["-c:a", "libmp3lame", "-b:a", "128k"], "audio/mpeg"),
        "adts" => (vec!["-c:a", "aac", "-b:a", "128k"], "audio/aac"),
        // FLAC in Ogg with ffmpeg's own page length: a second of audio per page.
        "oggflac" => (vec!["-c:a", "flac"], "application/ogg"),
        // Ogg pages every 200 ms rather than ffmpeg's default second.
        _ => (
            vec!["-c:a", "libvorbis", "-q:a", "4", "-page_duration", "200000"],
            "application/ogg",
        ),
    };
    Proc(
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-stream_loop",
                "-1",
                "-i",
            ])
            .arg(file)
            .arg("-vn")
            .args(codec)
            .args([
                "-content_type",
                ct,
                "-ice_name",
                "Test show",
                "-ice_genre",
                "Jazz",
                "-tls",
                tls,
                "-f",
                if format == "oggflac" { "ogg" } else { format },
            ])
            .arg(format!("icecast://source:{key}@{rest}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    )
}

/// A hand-written source head; returns the server's first response line and the rest of what
/// it sent before closing (or up to 4 KiB).
pub async fn raw_source(s: &Server, head: &str, body: &[u8]) -> (String, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr(s)).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let _ = tcp.write_all(body).await;
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.windows(4).any(|w| w == b"\r\n\r\n") && !got.starts_with(b"HTTP/1.1 100") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&got).to_string();
    let first = text.lines().next().unwrap_or_default().to_string();
    (first, text)
}

pub fn put_head(id: &str, key: &str, content_type: Option<&str>) -> String {
    let auth = base64(&format!("source:{key}"));
    let ct = content_type
        .map(|c| format!("Content-Type: {c}\r\n"))
        .unwrap_or_default();
    format!("PUT /ingest/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n{ct}\r\n")
}

pub fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Runs one of the kit's Python tools and returns its JSON report; it must pass.
pub fn kit_tool(tool: &str, args: &[&str]) -> Value {
    let (passed, report) = kit_report(tool, args);
    assert!(passed, "{tool} {args:?} failed: {report}");
    report
}

/// Runs one of the kit's Python tools; whether it passed, and its JSON report (which must be
/// there). For runs the server is meant to cut short, where the tool's own checks fail.
pub fn kit_report(tool: &str, args: &[&str]) -> (bool, Value) {
    let out = Command::new("python3")
        .arg(kit(tool))
        .args(args)
        .output()
        .expect(tool);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{tool} {args:?} printed no report: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

pub fn llhls_check(url: &str, seconds: u32) -> Value {
    kit_tool("llhls_check.py", &["--seconds", &seconds.to_string(), url])
}

/// RMS of `seconds` of a live playlist, as ffmpeg's HLS client decodes it.
pub fn ffmpeg_listen(url: &str, seconds: u32) -> f64 {
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            url,
            "-t",
            &seconds.to_string(),
        ])
        .args(["-f", "f32le", "-ac", "1", "-ar", "48000", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert!(
        samples.len() >= 48_000 * seconds as usize * 9 / 10,
        "{} samples",
        samples.len()
    );
    (samples.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

pub async fn get(
    url: &str,
) -> (
    reqwest::StatusCode,
    reqwest::header::HeaderMap,
    bytes::Bytes,
) {
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    let (st, h) = (r.status(), r.headers().clone());
    (st, h, r.bytes().await.unwrap())
}

/// Waits until the channel's now-playing title is `title` through the API, then checks that the
/// media playlist's latest now-playing `EXT-X-DATERANGE` names the same item from the same
/// instant: one truth for both. Returns the channel record.
pub async fn now_playing_agrees(s: &Server, id: &str, title: &str) -> Value {
    let c = wait_for(s, id, "/now_playing/title", title).await;
    let rendition = c["renditions"][0].as_str().unwrap().to_string();
    let (token, _) = playback(s, id).await;
    let url = format!(
        "{}/hls/live/{id}/{rendition}/index.m3u8?token={token}",
        s.url
    );
    let text = String::from_utf8_lossy(&get(&url).await.2).to_string();
    let last = text
        .lines()
        .rfind(|l| l.starts_with("#EXT-X-DATERANGE:") && l.contains("com.veza.now-playing"))
        .unwrap_or_else(|| panic!("no now-playing date range:\n{text}"));
    let attr = |name: &str| {
        last.split(&format!("{name}=\"")[..])
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(attr("X-TITLE"), title, "{last}\n{c}");
    assert_eq!(
        attr("START-DATE"),
        c["now_playing"]["since"].as_str().unwrap_or_default(),
        "{last}\n{c}"
    );
    c
}

/// hls.js in Chromium playing a live master for `seconds` (`tests/browser/live.mjs`).
pub fn hls_js_live(master: &str, seconds: u32) -> Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/live.mjs");
    Command::new("node")
        .arg(&script)
        .arg(master)
        .arg(seconds.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node")
}

/// Waits for [`hls_js_live`] and returns its report, which it must have printed, after checking
/// it played with no fatal error.
pub async fn hls_js_report(browser: Child) -> Value {
    let out = tokio::task::spawn_blocking(move || browser.wait_with_output())
        .await
        .unwrap()
        .expect("node");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    eprintln!("hls.js live report: {report}");
    assert!(out.status.success(), "{report}");
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    report
}

/// Polls a GET of the control API (with `bearer`) until `done` holds of its 200 body. The limit
/// only keeps a broken build from hanging.
pub async fn poll(s: &Server, path: &str, bearer: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (st, _, v) = s.call("GET", path, bearer, None, &[]).await;
        assert_eq!(st, 200, "{path}: {v}");
        if done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{path} never got there: {v}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Uploads `file` and waits until its track is ready; its id.
pub async fn ready_track(s: &Server, file: &Path) -> String {
    let t = s.upload(file).await;
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(s.wait_final(&id).await["status"], "ready", "{}", s.log());
    id
}
