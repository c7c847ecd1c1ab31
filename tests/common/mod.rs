//! Shared helpers for the integration tests: the fixture manifest and ffmpeg.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `../shared/fixtures/audio`, beside the project.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/audio")
}

/// `tests/fixtures/audio`: the project's own fixtures (made by its `make.py`), in the same schema.
pub fn own_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio")
}

/// One manifest entry (the fields the tests use).
#[derive(Debug, Clone)]
pub struct Fixture {
    pub path: PathBuf,
    pub rel: String,
    pub decodable: bool,
    pub codec: Option<String>,
    pub channels: Option<u64>,
    pub bits: Option<u64>,
    pub sample_rate: Option<u64>,
    pub decoded_seconds: Option<f64>,
    pub loudness: Option<f64>,
    /// What the product must report (own fixtures): a warning, `truncated: true`, a kept title.
    pub expect_warnings: bool,
    pub expect_truncated: bool,
    pub expect_title: Option<String>,
}

impl Fixture {
    pub fn lossless(&self) -> bool {
        matches!(self.codec.as_deref(), Some(c) if c.starts_with("pcm") || c == "flac" || c == "alac")
    }
}

/// Every file of both manifests: the shared corpus, then the project's own fixtures.
pub fn manifest() -> Vec<Fixture> {
    let mut all = read_manifest(&fixtures());
    all.extend(read_manifest(&own_fixtures()));
    all
}

fn read_manifest(dir: &Path) -> Vec<Fixture> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.json")).expect("fixture manifest");
    let json: serde_json::Value = serde_json::from_str(&text).expect("manifest is JSON");
    json["files"]
        .as_array()
        .expect("files[]")
        .iter()
        .map(|f| {
            let rel = f["path"].as_str().expect("path").to_string();
            let expect = &f["expect"];
            Fixture {
                path: dir.join(&rel),
                rel,
                decodable: f["expected_decodable"]
                    .as_bool()
                    .expect("expected_decodable"),
                codec: f["codec"].as_str().map(String::from),
                channels: f["channels"].as_u64(),
                bits: f["bits"].as_u64(),
                sample_rate: f["sample_rate"].as_u64(),
                decoded_seconds: f["decoded_duration_seconds"].as_f64(),
                loudness: f["integrated_loudness_lufs"].as_f64(),
                expect_warnings: expect["warnings"].as_bool().unwrap_or(false),
                expect_truncated: expect["truncated"].as_bool().unwrap_or(false),
                expect_title: expect["title"].as_str().map(String::from),
            }
        })
        .collect()
}

pub fn fixture(rel: &str) -> Fixture {
    manifest()
        .into_iter()
        .find(|f| f.rel == rel)
        .unwrap_or_else(|| panic!("{rel} not in manifest"))
}

/// Runs ffmpeg decoding `input` to raw samples on stdout, with `filters` (`-ac`, `-af`, ...) and
/// output `format`; returns (bytes, stderr). Fails the test if ffmpeg exits non-zero.
fn ffmpeg_raw(input: &Path, filters: &[String], format: &str) -> (Vec<u8>, String) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(input)
        .args(filters)
        .args(["-f", format, "-"])
        .output()
        .expect("ffmpeg runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "ffmpeg failed on {}: {stderr}",
        input.display()
    );
    (out.stdout, stderr)
}

/// Decodes `input` with ffmpeg to interleaved f32 with `channels` channels, at its own rate or
/// resampled (soxr) to `rate`; returns (samples, stderr).
pub fn ffmpeg_decode(input: &Path, rate: Option<u32>, channels: u32) -> (Vec<f32>, String) {
    let mut filters = vec!["-ac".to_string(), channels.to_string()];
    if let Some(r) = rate {
        filters.extend([
            "-af".to_string(),
            format!("aresample={r}:resampler=soxr:precision=28"),
        ]);
    }
    let (bytes, stderr) = ffmpeg_raw(input, &filters, "f32le");
    let samples = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (samples, stderr)
}

/// Decodes to signed 32-bit integers (left-aligned), for bit-exact comparisons.
pub fn ffmpeg_decode_s32(input: &Path) -> Vec<i32> {
    let (bytes, _) = ffmpeg_raw(input, &[], "s32le");
    bytes
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Integrated loudness as ffmpeg's ebur128 filter measures it.
pub fn ffmpeg_loudness(input: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "info", "-i"])
        .arg(input)
        .args(["-af", "ebur128", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = &text[text.rfind("Summary:").expect("ebur128 summary")..];
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("I:"))
        .expect("I: line");
    line.split_whitespace()
        .nth(1)
        .expect("value")
        .parse()
        .expect("number")
}

/// The lag (in samples) at which `b` best matches `a`, searched within ±`max_lag`, using a window
/// of `a` starting at `from`.
pub fn best_lag(a: &[f32], b: &[f32], from: usize, len: usize, max_lag: isize) -> isize {
    let mut best = (f64::MIN, 0isize);
    for lag in -max_lag..=max_lag {
        let mut acc = 0.0f64;
        for i in from..from + len {
            let j = i as isize + lag;
            if j >= 0 && (j as usize) < b.len() && i < a.len() {
                acc += f64::from(a[i]) * f64::from(b[j as usize]);
            }
        }
        if acc > best.0 {
            best = (acc, lag);
        }
    }
    best.1
}

/// The rendition directories of a package (those holding an `index.m3u8`), sorted.
pub fn rendition_dirs(out: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("outdir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("index.m3u8").exists())
        .collect();
    dirs.sort();
    dirs
}
pub mod live;
pub mod server;
pub mod switch;

/// Polls `done` until it holds. The limit only keeps a broken build from hanging CI; nothing
/// asserts on time.
pub async fn until<F, Fut>(what: &str, done: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "never: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
