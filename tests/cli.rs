//! The command line: exit status, messages, `--json`, and atomic output.

mod common;

use common::*;
use std::process::Command;

fn veza() -> Command {
    Command::new(env!("CARGO_BIN_EXE_veza-stream"))
}

#[test]
fn json_summary_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = veza()
        .arg("package")
        .arg(fixture("formats/flac_tags_picture_16bit_44k.flac").path)
        .arg(&out)
        .args([
            "--renditions",
            "opus-64,aac-96,aac-192,flac",
            "--segment-seconds",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    let line: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(line["status"], "ok");
    assert_eq!(line["renditions"].as_array().unwrap().len(), 4);
    // Two AAC bitrates share master.m3u8; the other families have their own.
    let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 2);
    assert!(!master.contains("Opus") && !master.contains("fLaC"));
    assert!(std::fs::read_to_string(out.join("master_opus.m3u8"))
        .unwrap()
        .contains("CODECS=\"Opus\""));
    assert!(std::fs::read_to_string(out.join("master_flac.m3u8"))
        .unwrap()
        .contains("CODECS=\"fLaC\""));
    // Tags and cover art.
    let analysis: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("analysis.json")).unwrap()).unwrap();
    assert!(
        analysis["source"]["tags"]["title"].is_string(),
        "{analysis}"
    );
    assert!(out.join(analysis["cover"].as_str().unwrap()).exists());
    let waveform: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("waveform.json")).unwrap()).unwrap();
    assert_eq!(waveform["version"], 2);
    assert_eq!(
        waveform["data"].as_array().unwrap().len(),
        2 * waveform["length"].as_u64().unwrap() as usize
    );
}

/// `package SRC a/b/out` makes `a/b` as `mkdir -p` would (it used to fail when `a/b` did not
/// exist); a lossy source gets no FLAC rendition even when the ladder names one.
#[test]
fn the_output_s_parents_are_made_and_a_lossy_source_gets_no_flac() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a/b/out");
    let run = veza()
        .arg("package")
        .arg(fixture("formats/mp3_cbr128_stereo_44k.mp3").path)
        .arg(&out)
        .args(["--renditions", "opus-96,aac-128,flac", "--json"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let names: Vec<&str> = line["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["opus-96", "aac-128"], "{line}");
    assert!(out.join("master.m3u8").exists() && !out.join("flac").exists());
    // Nothing else was left beside it.
    let siblings: Vec<_> = std::fs::read_dir(dir.path().join("a/b")).unwrap().collect();
    assert_eq!(siblings.len(), 1);
}

#[test]
fn bad_inputs_exit_non_zero_with_a_reason_and_no_outdir() {
    let dir = tempfile::tempdir().unwrap();
    for (rel, words) in [
        ("edge/empty_zero_bytes.mp3", "empty"),
        ("edge/png_renamed.wav", "unsupported"),
        ("edge/polyglot_riff_text.wav", ""),
        ("edge/random_bytes.mp3", ""),
    ] {
        let out = dir.path().join("out");
        let run = veza()
            .arg("package")
            .arg(fixture(rel).path)
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr).to_lowercase();
        assert_eq!(run.status.code(), Some(1), "{rel}: {stderr}");
        assert!(stderr.starts_with("error: packaging"), "{rel}: {stderr}");
        assert!(stderr.contains(words), "{rel}: {stderr}");
        assert!(!out.exists(), "{rel}: left an output directory");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{rel}: left temporary files"
        );
    }
}

#[test]
fn unwritable_output_is_reported_and_an_existing_package_survives_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let good = fixture("formats/wav_pcm16_mono_16k.wav").path;
    let out = dir.path().join("out");
    assert!(veza()
        .arg("package")
        .arg(&good)
        .arg(&out)
        .output()
        .unwrap()
        .status
        .success());
    let before = std::fs::read(out.join("analysis.json")).unwrap();
    // A failing run leaves the previous package as it was.
    let run = veza()
        .arg("package")
        .arg(fixture("edge/random_bytes.mp3").path)
        .arg(&out)
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert_eq!(std::fs::read(out.join("analysis.json")).unwrap(), before);
    // A destination under a file cannot be written.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let run = veza()
        .arg("package")
        .arg(&good)
        .arg(blocker.join("out"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("cannot write"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // Unknown renditions are refused before any work.
    let run = veza()
        .arg("package")
        .arg(&good)
        .arg(&out)
        .args(["--renditions", "mp3-128"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("unknown codec"));
}

#[test]
fn a_terminal_gets_a_progress_bar() {
    // `script` runs the command on a pseudo-terminal, as a person at a shell would.
    let dir = tempfile::tempdir().unwrap();
    let cmd = format!(
        "{} package {} {}",
        env!("CARGO_BIN_EXE_veza-stream"),
        fixture("synth/drums_120bpm_stereo_44k.wav").path.display(),
        dir.path().join("out").display()
    );
    let run = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    assert!(run.status.success());
    let screen = String::from_utf8_lossy(&run.stdout);
    assert!(
        screen.contains("encode [") || screen.contains("decode ["),
        "{screen}"
    );
    assert!(screen.contains('%'));
    assert!(screen.contains("segments each"), "{screen}");
}

#[test]
fn serve_refuses_bad_configuration_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    // (environment, configuration file, the key the message must name)
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);
    let cases: [Case; 4] = [
        (&[("VEZA_SERVER__LISTEN", "nowhere")], None, "server.listen"),
        (&[("VEZA_STORAGE__BACKEND", "ftp")], None, "storage.backend"),
        (&[], Some("[jobs]\nworkerz = 2\n"), "workerz"),
        (&[("VEZA_DATABASE__URL", "mysql://x")], None, "database.url"),
    ];
    for (env, file, key) in cases {
        let mut cmd = veza();
        cmd.arg("serve")
            .current_dir(dir.path())
            .envs(env.iter().copied());
        if let Some(text) = file {
            let path = dir.path().join("bad.toml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(path);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{key}: {stderr}");
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created for a bad configuration"
    );
}

#[test]
fn migrate_creates_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state/veza.db");
    let out = veza()
        .arg("migrate")
        .env("VEZA_DATABASE__URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied"));
    assert!(db.exists());
}

#[test]
fn token_create_outside_the_data_directory_refuses_and_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let out = veza()
        .args(["token", "create", "--sub", "alice", "--role", "artist"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let looked = std::fs::canonicalize(dir.path())
        .unwrap()
        .join("data/dev-secrets.toml");
    assert!(err.contains(&looked.display().to_string()), "{err}");
    assert!(err.contains("veza-stream serve"), "{err}");
    assert!(out.stdout.is_empty());
    // No development secret was minted on the way.
    assert!(!dir.path().join("data").exists());
    // Where `serve` keeps its secrets, the same command signs.
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/dev-secrets.toml"),
        "api_key = \"dev_0123456789abcdef\"\nplayback_secret = \"p\"\njwt_secret = \"0123456789abcdef0123456789abcdef\"\n",
    )
    .unwrap();
    let out = veza()
        .args(["token", "create", "--sub", "alice", "--role", "artist"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).matches('.').count(), 2);
}
