//! Packaging in bounded memory: a long source packages in the memory of a short one, a header
//! that lies about its rate is refused before it costs anything, and a cancelled run stops and
//! leaves nothing behind.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use veza_stream::{package::package_cancellable, Error, Options, Stage};

/// Peak resident memory of `veza-stream package INPUT OUT`, in KiB, read by GNU time.
fn packaging_peak_kib(input: &Path, out: &Path) -> u64 {
    let report = out.with_extension("time");
    let status = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_veza-stream"))
        .args(["package", "--json"])
        .arg(input)
        .arg(out)
        .output()
        .expect("GNU time runs (Debian package `time`)");
    assert!(
        status.status.success(),
        "package failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::read_to_string(&report)
        .expect("time's report")
        .trim()
        .parse()
        .expect("peak RSS in KiB")
}

/// A FLAC file of `seconds` of stereo 44.1 kHz silence with a little noise, made by ffmpeg (a
/// few hundred kilobytes however long).
fn long_flac(dir: &Path, seconds: u32) -> std::path::PathBuf {
    let path = dir.join(format!("long_{seconds}.flac"));
    let ok = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!(
            "anoisesrc=r=44100:a=0.001:d={seconds},aformat=channel_layouts=stereo"
        ))
        .args(["-c:a", "flac", "-sample_fmt", "s16", "-y"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs")
        .success();
    assert!(ok, "ffmpeg made the long source");
    path
}

#[test]
fn peak_memory_does_not_grow_with_duration() {
    let dir = tempfile::tempdir().unwrap();
    let short = long_flac(dir.path(), 60);
    let long = long_flac(dir.path(), 1200);
    let short_kib = packaging_peak_kib(&short, &dir.path().join("short"));
    let long_kib = packaging_peak_kib(&long, &dir.path().join("long"));
    println!("peak RSS: 1 min {short_kib} KiB, 20 min {long_kib} KiB");
    // Whole-track PCM alone would be 20 × 60 × 44 100 × 2 × 4 B = 423 MB for the long source
    // (and as much again at 48 kHz); streamed, both stay near the size of the encoders.
    assert!(long_kib < 150 * 1024, "20 minutes peaked at {long_kib} KiB");
    assert!(
        long_kib < short_kib + 48 * 1024,
        "20 minutes peaked at {long_kib} KiB, 1 minute at {short_kib} KiB"
    );
    let analysis: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("long/analysis.json")).unwrap())
            .unwrap();
    assert_eq!(analysis["duration_seconds"].as_f64(), Some(1200.0));
}

#[test]
fn a_hostile_sample_rate_is_refused_at_once() {
    // A 4 KB WAV whose header claims 4 294 967 295 Hz.
    let dir = tempfile::tempdir().unwrap();
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&4036u32.to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&u32::MAX.to_le_bytes());
    wav.extend_from_slice(&u32::MAX.to_le_bytes());
    wav.extend_from_slice(&4u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&4000u32.to_le_bytes());
    wav.resize(wav.len() + 4000, 0x55);
    let input = dir.path().join("hostile.wav");
    std::fs::write(&input, wav).unwrap();
    let out = dir.path().join("out");
    let err = veza_stream::package(&input, &out, &Options::default(), &|_, _| {}).unwrap_err();
    match &err {
        Error::Input(e) => {
            assert!(e.is_input_fault());
            assert!(err.to_string().contains("4294967295 Hz"), "{err}");
        }
        other => panic!("expected a verdict on the input, got {other}"),
    }
    assert!(!out.exists());
}

#[test]
fn a_cancelled_run_stops_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = common::fixtures().join("track/full_track_3min_stereo_44k.flac");
    let out = dir.path().join("out");
    let cancel = AtomicBool::new(false);
    let encoding_seen = AtomicBool::new(false);
    // Cancel from inside the encode pass, as a DELETE or a SIGTERM would from another thread.
    let progress = |stage: Stage, fraction: f32| {
        if stage == Stage::Encode && fraction > 0.1 {
            encoding_seen.store(true, Ordering::Relaxed);
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let r = package_cancellable(&input, &out, &Options::default(), &progress, &cancel);
    assert!(matches!(r, Err(Error::Cancelled)), "{:?}", r.err());
    assert!(encoding_seen.load(Ordering::Relaxed));
    assert!(!out.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Whether process `pid` has ended (gone, or a zombie waiting to be reaped).
fn ended(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_a_long_job_and_the_process_exits() {
    use common::server::{Db, Server};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // An hour of audio: minutes of packaging in this build, far longer than the shutdown grace.
    let long = long_flac(dir.path(), 3600);
    let mut s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_JOBS__WORKERS", "1"),
            ("VEZA_SERVER__SHUTDOWN_GRACE_SECONDS", "5"),
            ("TMPDIR", tmp.to_str().unwrap()),
        ],
    )
    .await;
    let id = s.upload(&long).await["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    loop {
        let t = s.track(&id).await;
        // Past the survey: the encode pass is running.
        if t["status"] == "processing" && t["progress"].as_f64().unwrap_or(0.0) > 0.25 {
            break;
        }
        assert_ne!(
            t["status"], "ready",
            "finished before the test could stop it"
        );
        assert!(start.elapsed() < Duration::from_secs(300), "{t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = s.pid();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    // The process ends within its grace (5 s) and a margin, not when the hour is packaged.
    let start = Instant::now();
    while !ended(pid) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "still running after SIGTERM:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(s.wait_exit().success(), "{}", s.log());
    assert_eq!(
        s.text(&format!("SELECT state FROM jobs WHERE track_id = '{id}'"))
            .await
            .as_deref(),
        Some("queued"),
        "the job was given back"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}
