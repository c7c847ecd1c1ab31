//! Every fixture of the corpus: decodable files package, and ffmpeg decodes every rendition to
//! exactly the source's length; undecodable ones fail cleanly, leaving nothing behind. Files with
//! malformed tags or a cut-off end package with warnings, `truncated` and the tags that still read.

mod common;

use common::*;
use std::path::Path;
use veza_stream::{package, Options};

fn leftovers(parent: &Path) -> Vec<String> {
    std::fs::read_dir(parent)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-") || n.contains(".old-"))
        .collect()
}

#[test]
fn every_fixture_packages_or_fails_cleanly() {
    let work = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let opts = Options::default();
    for (i, f) in manifest().into_iter().enumerate() {
        if f.rel.starts_with("track/") {
            continue; // the 3-minute track has its own tests
        }
        let out = work.path().join(format!("pkg{i}"));
        let result = package(&f.path, &out, &opts, &|_, _| {});
        match (f.decodable, result) {
            (true, Ok(summary)) => {
                let a = &summary.analysis;
                let seconds = a.duration_seconds;
                if f.expect_truncated {
                    if !a.truncated || a.warnings.is_empty() {
                        failures.push(format!(
                            "{}: truncated {}, warnings {:?}",
                            f.rel, a.truncated, a.warnings
                        ));
                    }
                    if let Some(declared) = a.declared_duration_seconds {
                        // An MP3 without a Xing header only estimates its length from its size.
                        if declared < seconds {
                            failures.push(format!(
                                "{}: declares {declared} s, keeps {seconds} s",
                                f.rel
                            ));
                        }
                    }
                } else if a.truncated
                    && !f.rel.starts_with("edge/")
                    && f.decoded_seconds.is_none_or(|ffmpeg| ffmpeg <= seconds)
                {
                    // Only damaged files are cut off (the shared corpus keeps them under edge/,
                    // and a conformance stream ends inside a frame that ffmpeg decodes half of).
                    failures.push(format!("{}: reported truncated: {:?}", f.rel, a.warnings));
                }
                if f.expect_warnings && a.warnings.is_empty() {
                    failures.push(format!("{}: no warning", f.rel));
                }
                if let Some(title) = &f.expect_title {
                    if a.source.tags.title.as_ref() != Some(title) {
                        failures.push(format!(
                            "{}: title {:?}, want {title}",
                            f.rel, a.source.tags.title
                        ));
                    }
                }
                // ffmpeg's own decode is the reference length; it keeps AAC/MP3 padding in some
                // containers, so allow one codec frame of difference.
                if let Some(want) = f.decoded_seconds {
                    // ffmpeg keeps AAC end padding that the file's iTunSMPB/edit list trims, so its
                    // length may exceed ours by up to two frames for AAC.
                    let aac_slack = if f.codec.as_deref() == Some("aac") {
                        2048.0 / f.sample_rate.unwrap_or(44_100) as f64
                    } else {
                        0.0
                    };
                    let ok = seconds <= want + 0.03 && seconds >= want - 0.03 - aac_slack;
                    if !ok && !f.rel.contains("corrupt") {
                        failures.push(format!(
                            "{}: decoded {seconds:.4} s, ffmpeg {want:.4} s",
                            f.rel
                        ));
                    }
                }
                for dir in rendition_dirs(&out) {
                    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
                    let playlist = dir.join("index.m3u8");
                    let (pcm, stderr) = ffmpeg_decode(&playlist, None, 1);
                    if !stderr.trim().is_empty() {
                        failures.push(format!("{} {name}: ffmpeg said {stderr}", f.rel));
                    }
                    let rate = if name == "flac" {
                        summary.analysis.source.sample_rate.hz()
                    } else {
                        48_000
                    };
                    let got = pcm.len() as f64 / f64::from(rate);
                    // No leading or trailing padding: within 1 ms of the source.
                    if (got - seconds).abs() > 0.001 {
                        failures.push(format!(
                            "{} {name}: {got:.5} s decoded, source {seconds:.5} s",
                            f.rel
                        ));
                    }
                }
                for required in ["master.m3u8", "analysis.json", "waveform.json"] {
                    if !out.join(required).exists() {
                        failures.push(format!("{}: no {required}", f.rel));
                    }
                }
            }
            (true, Err(e)) => failures.push(format!("{}: should package, failed: {e}", f.rel)),
            (false, Ok(_)) => failures.push(format!("{}: should be rejected, packaged", f.rel)),
            (false, Err(e)) => {
                if out.exists() {
                    failures.push(format!(
                        "{}: rejected ({e}) but left {}",
                        f.rel,
                        out.display()
                    ));
                }
                if e.to_string().len() < 10 {
                    failures.push(format!("{}: unclear message '{e}'", f.rel));
                }
            }
        }
        let left = leftovers(work.path());
        if !left.is_empty() {
            failures.push(format!("{}: temporary directories left: {left:?}", f.rel));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
