//! End-to-end tests of `veza-stream serve`: the real binary on loopback, real fixtures, real
//! SQLite and PostgreSQL, real clients (ffmpeg, hls.js in Chromium).

mod common;

use common::server::{Db, Server};
use common::{fixture, fixtures};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const GOOD: &[&str] = &[
    "formats/mp3_cbr128_stereo_44k.mp3",
    "formats/flac_24bit_96k_stereo.flac",
    "formats/wav_pcm16_mono_16k.wav",
    "formats/m4a_aac_lc_itunes_stereo_44k.m4a",
];
const BAD: &[&str] = &["edge/random_bytes.mp3", "edge/png_renamed.wav", "edge/polyglot_riff_text.wav"];

/// Decodes an HLS URL with ffmpeg to mono f32 at 48 kHz and returns the decoded seconds.
fn ffmpeg_seconds(url: &str) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", url, "-map", "0:a:0", "-ac", "1", "-ar", "48000", "-f", "f32le", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg {url}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "ffmpeg {url}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout.len() as f64 / 4.0 / 48000.0
}

/// hls.js in headless Chromium plays `url` for a few seconds from a page on another origin.
fn browser_plays(url: &str, seconds: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/play.mjs");
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new("node")
        .arg(script)
        .arg(empty.path())
        .arg(seconds)
        .arg(url)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "hls.js failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"pass\":true"), "{stdout}");
}

async fn upload_multipart(s: &Server, path: &Path, title: &str) -> Value {
    let data = std::fs::read(path).unwrap();
    let part = reqwest::multipart::Part::bytes(data)
        .file_name(path.file_name().unwrap().to_string_lossy().to_string())
        .mime_str("audio/mp4")
        .unwrap();
    let form = reqwest::multipart::Form::new().text("title", title.to_string()).part("file", part);
    let r = s
        .client()
        .post(format!("{}/v1/tracks", s.url))
        .header("authorization", s.auth())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.json().await.unwrap()
}

async fn end_to_end(db: Db) {
    let s = Server::start(db, &[]).await;
    let mut good = Vec::new();
    for (i, rel) in GOOD.iter().enumerate() {
        let path = fixtures().join(rel);
        let t = if i == GOOD.len() - 1 {
            upload_multipart(&s, &path, "From a form").await
        } else {
            s.upload(&path).await
        };
        assert_eq!(t["status"], "queued");
        good.push((rel, t["id"].as_str().unwrap().to_string()));
    }
    let mut bad = Vec::new();
    for rel in BAD {
        let t = s.upload(&fixtures().join(rel)).await;
        bad.push((rel, t["id"].as_str().unwrap().to_string()));
    }

    for (rel, id) in &bad {
        let t = s.wait_final(id).await;
        assert_eq!(t["status"], "failed", "{rel}: {t}");
        let reason = t["error"].as_str().unwrap_or_default();
        assert!(reason.len() > 10, "{rel}: a precise reason, got {reason:?}");
        assert!(
            !s.objects().iter().any(|k| k.contains(id.as_str())),
            "{rel} left objects: {:?}",
            s.objects()
        );
    }

    for (rel, id) in &good {
        let t = s.wait_final(id).await;
        assert_eq!(t["status"], "ready", "{rel}: {t}\n{}", s.log());
        assert_eq!(t["progress"], 1.0);
        let names: Vec<&str> = t["renditions"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["aac-128", "flac", "opus-96"], "{rel}");
        let duration = t["analysis"]["duration_seconds"].as_f64().unwrap();
        let expected = fixture(rel).decoded_seconds.unwrap();
        assert!((duration - expected).abs() < 0.03, "{rel}: {duration} vs {expected}");

        let play = s.playback(id).await;
        let master = play["master_url"].as_str().unwrap();
        assert!(master.starts_with(&s.url) && master.contains("?token=v1."));
        // Every rendition decodes over HTTP to the track's exact length.
        for codec in ["aac", "opus", "flac"] {
            let url = play["masters"][codec].as_str().unwrap();
            let seconds = ffmpeg_seconds(url);
            assert!((seconds - duration).abs() < 0.005, "{rel} {codec}: decoded {seconds} s of {duration} s");
        }
        let wf: Value = s.client().get(play["waveform_url"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
        assert_eq!(wf["version"], 2);
        // ffmpeg just listened with this token's session.
        assert!(s.track(id).await["listeners"].as_u64().unwrap() >= 1);
    }
    assert_eq!(s.track(&good[1].1).await["title"], "flac_24bit_96k_stereo");
    assert_eq!(s.track(&good[3].1).await["title"], "From a form");

    // hls.js in Chromium plays the master straight from the server.
    let play = s.playback(&good[0].1).await;
    browser_plays(play["master_url"].as_str().unwrap(), "2");

    // Pagination walks every track once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = s.client().get(format!("{}/v1/tracks", s.url)).header("authorization", s.auth()).query(&[("limit", "3")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c.as_str())]);
        }
        let page: Value = req.send().await.unwrap().json().await.unwrap();
        for t in page["items"].as_array().unwrap() {
            seen.push(t["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut all: Vec<String> = good.iter().chain(bad.iter()).map(|(_, id)| id.clone()).collect();
    all.reverse();
    assert_eq!(seen, all);

    // Delete removes the rows and every object; the URLs stop working.
    let (_, gone) = &good[0];
    let r = s.client().delete(format!("{}/v1/tracks/{gone}", s.url)).header("authorization", s.auth()).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(!s.objects().iter().any(|k| k.contains(gone.as_str())));
    let r = s.client().get(format!("{}/v1/tracks/{gone}", s.url)).header("authorization", s.auth()).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    tokio::time::sleep(std::time::Duration::from_secs(6)).await; // the published cache's lifetime
    let r = s.client().get(play["master_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // Metrics.
    let m = s.client().get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    for needle in [
        "veza_http_requests_total{route=\"/hls/tracks/{id}/{rendition}/{file}\",status=\"200\"}",
        "veza_http_request_duration_seconds_bucket",
        "veza_http_response_bytes_total",
        "veza_cache_hits_total",
        "veza_upload_bytes_total",
        "veza_jobs{state=\"failed\"} 3",
        "veza_job_duration_seconds_count 4",
        "veza_job_realtime_factor_count 4",
        "veza_active_listeners",
    ] {
        assert!(m.contains(needle), "metrics lack {needle}:\n{m}");
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(s.client().get(format!("{}{path}", s.url)).send().await.unwrap().status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn end_to_end_on_sqlite() {
    end_to_end(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn end_to_end_on_postgres() {
    end_to_end(Db::Postgres).await;
}
