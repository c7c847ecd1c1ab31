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

/// Decodes `path` with our decoder, before any downmix.
fn decode_ours(path: &Path) -> veza_codecs::Decoded {
    let file = std::fs::File::open(path).unwrap();
    let ext = path.extension().and_then(|e| e.to_str());
    veza_codecs::decode(
        Box::new(file),
        ext,
        &veza_codecs::Limits::default(),
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// ffmpeg's decode of every channel, in its own order (the WAVE order: FL FR FC LFE BL BR SL SR).
fn ffmpeg_planes(path: &Path, channels: usize) -> Vec<Vec<f32>> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-c:a", "libopus", "-i"])
        .arg(path)
        .args(["-f", "f32le", "-"])
        .output()
        .unwrap();
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
    (0..channels)
        .map(|c| samples.iter().skip(c).step_by(channels).copied().collect())
        .collect()
}

#[test]
fn multichannel_opus_decodes_every_channel_in_place() {
    // Channel mapping family 1 (RFC 7845 5.1.1.2): 5.1 and 7.1, from Ogg, WebM and MP4. Channel i
    // of each fixture is a sine of 220·(i+1) Hz in the Vorbis order; ffmpeg (libopus) is the
    // reference for every channel, which must sit at its WAVE position for the downmix.
    let mut checked = 0;
    for f in manifest()
        .into_iter()
        .filter(|f| f.rel.starts_with("multichannel/"))
    {
        let channels = f.channels.unwrap() as usize;
        let ours = decode_ours(&f.path);
        assert_eq!(ours.pcm.channels(), channels, "{}", f.rel);
        assert_eq!(ours.info.codec, "opus");
        let reference = ffmpeg_planes(&f.path, channels);
        for (c, (mine, theirs)) in ours.pcm.planes.iter().zip(&reference).enumerate() {
            // ffmpeg keeps MP4's end padding; compare what both have.
            let n = mine.len().min(theirs.len());
            assert!(n >= 48_000 * 19 / 10, "{} channel {c}: {n} samples", f.rel);
            let worst = mine[..n]
                .iter()
                .zip(&theirs[..n])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-3, "{} channel {c}: differs by {worst}", f.rel);
        }
        // And it packages, downmixed, to the source's 2 s (within Matroska's 8 ms of stated
        // padding, which its duration keeps).
        let out = tempfile::tempdir().unwrap();
        let seconds = seconds_of(&f.path, &out.path().join("o"), vec![Rendition::Flac]);
        assert!((seconds - 2.0).abs() < 0.01, "{}: {seconds} s", f.rel);
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn multichannel_opus_downmixes_by_position() {
    // 5.1 in the Vorbis order FL C FR RL RR LFE: the stereo downmix carries FL, -3 dB of C and RL
    // on the left (ITU-R BS.775), and nothing of FR, RR or LFE.
    let f = fixture("multichannel/opus_5.1_48k.opus");
    let d = decode_ours(&f.path);
    let planes = d.pcm.planes.clone();
    let stereo = veza_codecs::downmix(d.pcm, d.layout.as_ref());
    // WAVE order: FL FR FC LFE BL BR.
    let (fl, fr, fc, lfe, bl, br) = (0, 1, 2, 3, 4, 5);
    let g = std::f32::consts::FRAC_1_SQRT_2;
    let peak = planes
        .iter()
        .map(|p| p.iter().fold(0.0f32, |m, s| m.max(s.abs())))
        .fold(0.0f32, f32::max);
    let mix_peak = (0..planes[0].len())
        .map(|i| {
            (planes[fl][i] + g * planes[fc][i] + g * planes[bl][i])
                .abs()
                .max((planes[fr][i] + g * planes[fc][i] + g * planes[br][i]).abs())
        })
        .fold(0.0f32, f32::max);
    let scale = if mix_peak > 1.0 { 1.0 / mix_peak } else { 1.0 };
    for i in (0..planes[0].len()).step_by(97) {
        let left = (planes[fl][i] + g * planes[fc][i] + g * planes[bl][i]) * scale;
        let right = (planes[fr][i] + g * planes[fc][i] + g * planes[br][i]) * scale;
        assert!((stereo.planes[0][i] - left).abs() < 1e-5, "left at {i}");
        assert!((stereo.planes[1][i] - right).abs() < 1e-5, "right at {i}");
    }
    // Every full-band channel carries its tone (libopus low-passes the LFE channel).
    for c in [fl, fr, fc, bl, br] {
        assert!(
            planes[c].iter().any(|s| s.abs() > 0.1),
            "channel {c} silent"
        );
    }
    assert!(peak <= 1.0 && lfe == 3);
}
