//! Real players: ffprobe reads every rendition, hls.js in Debian's headless Chromium plays every
//! multivariant playlist and every variant, and Chromium's native HLS plays `master.m3u8`.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use veza_stream::{package, Options};

fn packaged(rel: &str, segment_seconds: f64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        segment_seconds,
        ..Options::default()
    };
    package(
        &fixture(rel).path,
        &dir.path().join("out"),
        &opts,
        &|_, _| {},
    )
    .unwrap();
    dir
}

#[test]
fn ffprobe_reads_every_rendition_with_the_declared_codec() {
    let dir = packaged("synth/chords_pluck_progression_stereo_44k.flac", 2.0);
    let out = dir.path().join("out");
    for (rendition, codec, rate) in [
        ("aac-128", "aac", "48000"),
        ("opus-96", "opus", "48000"),
        ("flac", "flac", "44100"),
    ] {
        let probe = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,sample_rate,channels",
                "-of",
                "csv=p=0",
            ])
            .arg(out.join(rendition).join("index.m3u8"))
            .output()
            .unwrap();
        assert!(probe.status.success());
        // ffprobe lists the stream once per HLS program and once on its own: every line agrees.
        let text = String::from_utf8_lossy(&probe.stdout);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!lines.is_empty(), "{rendition}: no stream");
        for line in lines {
            assert_eq!(line.trim(), format!("{codec},{rate},2"), "{rendition}");
        }
        assert!(
            probe.stderr.is_empty(),
            "{rendition}: {}",
            String::from_utf8_lossy(&probe.stderr)
        );
    }
}

fn play(dir: &Path, args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/play.mjs");
    let out = Command::new("node")
        .arg(script)
        .arg(dir)
        .args(args)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser playback failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One passing report per playlist.
    let playlists = args.iter().filter(|a| a.ends_with(".m3u8")).count();
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("\"pass\":true"))
            .count(),
        playlists
    );
}

#[test]
fn hls_js_plays_every_master_and_variant_across_segments() {
    // 1-second segments, so 4 seconds of playback crosses segment boundaries.
    let dir = packaged("synth/chords_pluck_progression_stereo_44k.flac", 1.0);
    let out = dir.path().join("out");
    play(
        &out,
        &[
            "4",
            "master.m3u8",
            "master_aac.m3u8",
            "master_opus.m3u8",
            "master_flac.m3u8",
            "aac-128/index.m3u8",
            "opus-96/index.m3u8",
            "flac/index.m3u8",
        ],
    );
}

#[test]
fn chromium_native_hls_plays_master() {
    let dir = packaged("synth/drums_120bpm_stereo_44k.wav", 1.0);
    play(&dir.path().join("out"), &["3", "--native", "master.m3u8"]);
}

#[test]
fn three_minute_tracks_package_end_to_end() {
    for rel in [
        "track/full_track_3min_stereo_44k.flac",
        "track/full_track_3min_stereo_44k.mp3",
    ] {
        let dir = packaged(rel, 6.0);
        let out = dir.path().join("out");
        assert!(
            out.join("cover.jpg").exists() || out.join("cover.png").exists(),
            "{rel}: cover"
        );
        // The MP3 gets no FLAC rendition: it would only copy the decoded lossy stream.
        let lossless = rel.ends_with(".flac");
        assert_eq!(out.join("flac").exists(), lossless, "{rel}");
        assert_eq!(out.join("master_flac.m3u8").exists(), lossless, "{rel}");
        for (rendition, rate) in [("aac-128", 48_000), ("opus-96", 48_000), ("flac", 44_100)] {
            if rendition == "flac" && !lossless {
                continue;
            }
            let playlist = out.join(rendition).join("index.m3u8");
            let text = std::fs::read_to_string(&playlist).unwrap();
            assert_eq!(
                text.matches("#EXTINF").count(),
                30,
                "{rel} {rendition}: 180 s in 6.08 s segments"
            );
            let (pcm, stderr) = ffmpeg_decode(&playlist, None, 1);
            assert!(stderr.trim().is_empty(), "{rel} {rendition}: {stderr}");
            assert_eq!(pcm.len(), 180 * rate, "{rel} {rendition}: exact length");
        }
        let lufs = ffmpeg_loudness(&out.join("aac-128/index.m3u8"));
        assert!((lufs + 14.0).abs() <= 0.5, "{rel}: {lufs} LUFS");
    }
}

#[test]
fn hls_js_plays_hi_res_flac_in_chromium() {
    // Chromium refuses a FLAC init whose AudioSampleEntry disagrees with its STREAMINFO (sample
    // size, channel count): every 24-bit source used to fail. 16 and 24 bits at 44.1, 48, 96 and
    // 192 kHz, each packaged and played with hls.js (ffmpeg does not check those fields).
    let dir = tempfile::tempdir().unwrap();
    let mut playlists = Vec::new();
    for f in manifest()
        .into_iter()
        .filter(|f| f.rel.starts_with("hires/"))
    {
        let name = f.path.file_stem().unwrap().to_string_lossy().into_owned();
        let opts = Options {
            renditions: vec![veza_stream::Rendition::Flac],
            segment_seconds: 1.0,
            ..Options::default()
        };
        let summary = package(&f.path, &dir.path().join(&name), &opts, &|_, _| {}).unwrap();
        let flac = &summary.analysis.renditions[0];
        assert_eq!(
            u64::from(flac.sample_rate),
            f.sample_rate.unwrap(),
            "{name}"
        );
        assert_eq!(flac.bits_per_sample.map(u64::from), f.bits, "{name}");
        playlists.push(format!("{name}/flac/index.m3u8"));
    }
    assert_eq!(playlists.len(), 8);
    let mut args = vec!["1"];
    args.extend(playlists.iter().map(String::as_str));
    play(dir.path(), &args);
}
