//! Formats the fixture corpus lacks, made here by ffmpeg from a fixture: A-law, µ-law and ADPCM
//! WAV, CAF, 32-bit and 64-bit float WAV, MP2, Opus in WebM, Matroska and MP4 (what browsers'
//! MediaRecorder and muxers write), chained Ogg streams that change rate and channels, and tags.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use veza_stream::{package, Options, Rendition};

const CLIP: &str = "formats/wav_pcm16_stereo_44k.wav";

fn ffmpeg(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(fixture(CLIP).path)
        .args(args)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg could not make {name}");
    out
}

fn seconds_of(input: &Path, out: &Path, renditions: Vec<Rendition>) -> f64 {
    let opts = Options {
        renditions,
        ..Options::default()
    };
    package(input, out, &opts, &|_, _| {})
        .unwrap_or_else(|e| panic!("{}: {e}", input.display()))
        .analysis
        .duration_seconds
}

#[test]
fn pcm_variants_adpcm_caf_and_mp2_package() {
    let dir = tempfile::tempdir().unwrap();
    // (file, ffmpeg options, tolerance in seconds: block codecs pad their last block)
    let cases: [(&str, &[&str], f64); 8] = [
        ("alaw.wav", &["-c:a", "pcm_alaw"], 0.0),
        ("mulaw.wav", &["-c:a", "pcm_mulaw"], 0.0),
        ("s32.wav", &["-c:a", "pcm_s32le"], 0.0),
        ("f64.wav", &["-c:a", "pcm_f64le"], 0.0),
        ("s24.caf", &["-c:a", "pcm_s24le"], 0.0),
        ("ima.wav", &["-c:a", "adpcm_ima_wav"], 0.03),
        ("msadpcm.wav", &["-c:a", "adpcm_ms"], 0.03),
        ("layer2.mp2", &["-c:a", "mp2"], 0.03),
    ];
    for (name, args, tolerance) in cases {
        let input = ffmpeg(dir.path(), name, args);
        let seconds = seconds_of(
            &input,
            &dir.path().join(format!("{name}.out")),
            vec![Rendition::Aac(128), Rendition::Flac],
        );
        assert!(
            (seconds - 4.0).abs() <= tolerance + 1e-9,
            "{name}: {seconds} s"
        );
    }
}

#[test]
fn opus_in_webm_matroska_and_mp4_keeps_timing() {
    let dir = tempfile::tempdir().unwrap();
    let (reference, _) = ffmpeg_decode(&fixture(CLIP).path, Some(48_000), 1);
    for name in ["clip.webm", "clip.mka", "clip.mp4", "clip.opus"] {
        let input = ffmpeg(dir.path(), name, &["-c:a", "libopus", "-b:a", "128k"]);
        let out = dir.path().join(format!("{name}.out"));
        let seconds = seconds_of(&input, &out, vec![Rendition::Opus(96)]);
        // Matroska's Opus end padding sits in DiscardPadding, which the demuxer does not report:
        // at most one 20 ms frame may remain.
        let tolerance = if name.ends_with(".webm") || name.ends_with(".mka") {
            0.02
        } else {
            0.001
        };
        assert!((seconds - 4.0).abs() <= tolerance, "{name}: {seconds} s");
        // The pre-skip is applied once, not twice or never: the rendition lines up with the source.
        let (ours, _) = ffmpeg_decode(&out.join("opus-96/index.m3u8"), None, 1);
        let lag = best_lag(&reference, &ours, 48_000, 48_000, 960);
        assert!(lag.abs() <= 48, "{name}: lag {lag} samples");
    }
}

#[test]
fn chained_ogg_streams_are_resampled_and_remapped() {
    let dir = tempfile::tempdir().unwrap();
    let a = ffmpeg(dir.path(), "a.ogg", &["-c:a", "libvorbis"]);
    let b = ffmpeg(
        dir.path(),
        "b.ogg",
        &["-ar", "22050", "-ac", "1", "-c:a", "libvorbis"],
    );
    let chained = dir.path().join("chained.ogg");
    let mut bytes = std::fs::read(&a).unwrap();
    bytes.extend(std::fs::read(&b).unwrap());
    std::fs::write(&chained, bytes).unwrap();
    let out = dir.path().join("out");
    let seconds = seconds_of(&chained, &out, vec![Rendition::Aac(128), Rendition::Flac]);
    assert!((seconds - 8.0).abs() < 0.001, "{seconds} s");
    let analysis: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("analysis.json")).unwrap()).unwrap();
    assert_eq!(analysis["source"]["sample_rate"], 44_100);
    assert_eq!(analysis["source"]["channels"], 2);
    // The second link is not silence: the last second of the rendition carries the clip.
    let (pcm, _) = ffmpeg_decode(&out.join("aac-128/index.m3u8"), None, 1);
    let tail = &pcm[pcm.len() - 48_000..];
    let rms = (tail.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
    assert!(rms > 0.01, "second link silent (rms {rms})");
}

#[test]
fn tags_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let input = ffmpeg(
        dir.path(),
        "tagged.flac",
        &[
            "-metadata",
            "title=Night Drive",
            "-metadata",
            "artist=Ana",
            "-metadata",
            "album=Roads",
            "-metadata",
            "track=7",
            "-metadata",
            "ISRC=GBAYE0601498",
        ],
    );
    let out = dir.path().join("out");
    seconds_of(&input, &out, vec![Rendition::Flac]);
    let analysis: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("analysis.json")).unwrap()).unwrap();
    let tags = &analysis["source"]["tags"];
    assert_eq!(tags["title"], "Night Drive");
    assert_eq!(tags["artist"], "Ana");
    assert_eq!(tags["album"], "Roads");
    assert_eq!(tags["track_number"], 7);
    assert_eq!(tags["isrc"], "GBAYE0601498");
}
