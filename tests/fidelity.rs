//! Fidelity against a reference decoder (ffmpeg): bit-exact lossless, aligned and exactly as long
//! lossy renditions, gapless track boundaries, and loudness on target.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use veza_stream::{package, Options, Rendition};

fn run(input: &Path, out: &Path, renditions: Vec<Rendition>, normalize: bool) {
    let mut opts = Options {
        renditions,
        ..Options::default()
    };
    if !normalize {
        opts.normalize = None;
    }
    package(input, out, &opts, &|_, _| {}).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
}

#[test]
fn flac_rendition_is_sample_identical_to_the_source() {
    let work = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (i, f) in manifest().into_iter().enumerate() {
        let eligible = f.decodable
            && f.lossless()
            && f.channels.is_some_and(|c| c <= 2)
            && f.bits.is_some_and(|b| b <= 24)
            && f.codec.as_deref() != Some("pcm_f32le")
            && !f.rel.starts_with("track/")
            && !f.rel.contains("truncated");
        if !eligible {
            continue;
        }
        let out = work.path().join(format!("f{i}"));
        run(&f.path, &out, vec![Rendition::Flac], false);
        let ours = ffmpeg_decode_s32(&out.join("flac/index.m3u8"));
        let reference = ffmpeg_decode_s32(&f.path);
        assert_eq!(ours.len(), reference.len(), "{}: length", f.rel);
        assert!(ours == reference, "{}: samples differ", f.rel);
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} lossless fixtures checked");
}

const LINE_UP: [&str; 5] = [
    "synth/chords_pluck_progression_stereo_44k.flac",
    "synth/speech_over_tones_mono_22k.wav",
    "synth/drums_120bpm_stereo_44k.wav",
    "formats/mp3_cbr128_stereo_44k.mp3",
    "formats/opus_96k_stereo_48k.opus",
];

#[test]
fn lossy_renditions_line_up_with_the_source() {
    let work = tempfile::tempdir().unwrap();
    for (i, rel) in LINE_UP.iter().enumerate() {
        let f = fixture(rel);
        let out = work.path().join(format!("l{i}"));
        run(
            &f.path,
            &out,
            vec![Rendition::Opus(96), Rendition::Aac(128)],
            false,
        );
        let (reference, _) = ffmpeg_decode(&f.path, Some(48_000), 1);
        for r in ["opus-96", "aac-128"] {
            let (ours, _) = ffmpeg_decode(&out.join(r).join("index.m3u8"), None, 1);
            // Duration within 1 ms of the source.
            let diff = (ours.len() as f64 - reference.len() as f64).abs() / 48_000.0;
            assert!(
                diff <= 0.001,
                "{rel} {r}: {} vs {} samples",
                ours.len(),
                reference.len()
            );
            // Cross-correlation peak within 1 ms (48 samples), over a 1 s window with signal.
            let from = reference.len().min(96_000) / 4;
            let len = (reference.len() - from).min(48_000) - 480;
            let lag = best_lag(&reference, &ours, from, len, 480);
            assert!(lag.abs() <= 48, "{rel} {r}: lag {lag} samples");
        }
    }
}

fn ffmpeg_cut(input: &Path, out: &Path, from: usize, to: Option<usize>) {
    let filter = match to {
        Some(t) => format!("atrim=start_sample={from}:end_sample={t}"),
        None => format!("atrim=start_sample={from}"),
    };
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(input)
        .args(["-af", &filter, "-c:a", "pcm_s16le"])
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn two_tracks_cut_from_one_file_play_back_gaplessly() {
    let work = tempfile::tempdir().unwrap();
    let source = fixture("synth/chords_pluck_progression_stereo_44k.flac").path;
    // Cut at a sample that is on no codec frame boundary at 44.1 or 48 kHz.
    let cut = 150_001;
    let (a, b): (PathBuf, PathBuf) = (work.path().join("a.wav"), work.path().join("b.wav"));
    ffmpeg_cut(&source, &a, 0, Some(cut));
    ffmpeg_cut(&source, &b, cut, None);
    run(
        &a,
        &work.path().join("pa"),
        vec![Rendition::Opus(96), Rendition::Aac(128), Rendition::Flac],
        false,
    );
    run(
        &b,
        &work.path().join("pb"),
        vec![Rendition::Opus(96), Rendition::Aac(128), Rendition::Flac],
        false,
    );
    let (whole48, _) = ffmpeg_decode(&source, Some(48_000), 1);
    let (whole, _) = ffmpeg_decode(&source, None, 1);
    for r in ["opus-96", "aac-128", "flac"] {
        let (mut joined, _) =
            ffmpeg_decode(&work.path().join("pa").join(r).join("index.m3u8"), None, 1);
        let (second, _) =
            ffmpeg_decode(&work.path().join("pb").join(r).join("index.m3u8"), None, 1);
        let junction = joined.len();
        joined.extend(second);
        let reference = if r == "flac" { &whole } else { &whole48 };
        let slack = if r == "flac" { 0 } else { 2 };
        assert!(
            joined.len().abs_diff(reference.len()) <= slack,
            "{r}: {} vs {}",
            joined.len(),
            reference.len()
        );
        // Around the junction the joined signal follows the source: no gap, no shift.
        let lag = best_lag(reference, &joined, junction - 2_400, 4_800, 240);
        assert!(lag.abs() <= 1, "{r}: lag {lag} at the junction");
        let err: f64 = (junction - 2_400..junction + 2_400)
            .map(|i| f64::from(reference[i] - joined[i]).powi(2))
            .sum();
        let sig: f64 = (junction - 2_400..junction + 2_400)
            .map(|i| f64::from(reference[i]).powi(2))
            .sum();
        let snr = 10.0 * (sig / err.max(1e-20)).log10();
        let floor = if r == "flac" { 60.0 } else { 10.0 };
        assert!(snr > floor, "{r}: SNR {snr:.1} dB around the junction");
    }
}

#[test]
fn normalised_renditions_measure_on_target() {
    let work = tempfile::tempdir().unwrap();
    for (i, rel) in [
        "synth/chords_pluck_progression_stereo_44k.flac",
        "synth/arpeggio_pan_left_to_right_44k.flac",
        "synth/music_speech_mix_stereo_44k.mp3",
        "synth/speech_over_tones_mono_22k.wav",
    ]
    .iter()
    .enumerate()
    {
        let out = work.path().join(format!("n{i}"));
        run(
            &fixture(rel).path,
            &out,
            vec![Rendition::Opus(96), Rendition::Aac(128)],
            true,
        );
        for r in ["opus-96", "aac-128"] {
            let lufs = ffmpeg_loudness(&out.join(r).join("index.m3u8"));
            assert!((lufs + 14.0).abs() <= 0.5, "{rel} {r}: {lufs} LUFS");
        }
    }
}
