//! The web app served by the binary: its page and files (content types, ETags, 304, 404), the
//! development sign-in (loopback, embedded defaults only), and a person's first journeys in
//! Debian's headless Chromium (`tests/browser/app.mjs`): sign in, upload two files, see them
//! packaged, play one in every codec family, seek by clicking its waveform; and an artist going
//! live from the browser (`tests/browser/app_live.mjs`) while two pages listen.

mod common;

use common::server::{Db, Server};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_its_files_are_served_with_validators() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let c = s.client();
    let r = c.get(format!("{}/", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains("/app/app.js"), "{page}");
    // A public page is the same app.
    let r = c
        .get(format!("{}/play/track/0190", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), page);

    let r = c.get(format!("{}/app/app.js", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(r.bytes().await.unwrap().len() > 10_000);
    let r = c
        .get(format!("{}/app/app.js", s.url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = c
        .get(format!("{}/app/app.css", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    let r = c
        .get(format!("{}/app/nothing.js", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_development_sign_in_works_only_on_embedded_defaults() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let c = s.client();
    let r = c
        .post(format!("{}/app/dev-sign-in", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let key = v["credential"].as_str().unwrap();
    assert_eq!(key, s.key);
    let r = c
        .get(format!("{}/v1/tracks", s.url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // With API keys configured there is no development key to hand out.
    let s = Server::start(
        Db::Sqlite,
        &[(
            "VEZA_AUTH__API_KEYS",
            "[\"k-configured-0123456789abcdef0123\"]",
        )],
    )
    .await;
    let r = s
        .client()
        .post(format!("{}/app/dev-sign-in", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

/// Runs a journey script of `tests/browser` against the server's page with `files`, then the
/// screenshot folder (`target/tmp/webapp`); its report, once it passed.
fn journey(s: &Server, script: &str, files: &[PathBuf]) -> Value {
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("webapp");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/browser")
                .join(script),
        )
        .arg(format!("{}/", s.url))
        .args(files)
        .arg(&shots)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .expect("node");
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    assert!(out.status.success(), "{r}\n{}", s.log());
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_signs_in_uploads_two_files_and_plays_one() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let formats = common::fixtures().join("formats");
    let r = journey(
        &s,
        "app.mjs",
        &[
            formats.join("flac_16bit_44k_stereo.flac"),
            common::fixtures().join("track/full_track_3min_stereo_44k.mp3"),
        ],
    );
    assert_eq!(r["uploadBars"], 2, "{r}");
    assert_eq!(r["rows"].as_array().unwrap().len(), 2, "{r}");
    for row in r["rows"].as_array().unwrap() {
        // Title, duration, status and loudness as a person reads them.
        let row = row.as_str().unwrap();
        assert!(row.contains("ready") && row.contains("LUFS"), "{row}");
    }
    for family in ["aac", "opus", "flac"] {
        let p = &r["played"][family];
        assert!(p["advanced"].as_f64().unwrap() > 1.0, "{family}: {r}");
        assert!(p["peak"].as_f64().unwrap() > 0.01, "{family}: {r}");
    }
    // A click at the middle of the waveform seeks to the middle.
    let (duration, after) = (
        r["seek"]["duration"].as_f64().unwrap(),
        r["seek"]["after"].as_f64().unwrap(),
    );
    assert!((after - duration / 2.0).abs() < duration / 10.0, "{r}");
    assert_eq!(r["consoleErrors"], serde_json::json!([]), "{r}");
    for shot in r["screenshots"].as_array().unwrap() {
        assert!(std::fs::metadata(shot.as_str().unwrap()).unwrap().len() > 1000);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_artist_goes_live_from_the_browser_while_two_pages_listen() {
    let s = Server::start(Db::Sqlite, &[]).await;
    // Chromium ignores a capture file whose path has `..` in it: give it the canonical one.
    let wav = common::fixtures()
        .join("formats/wav_float32_stereo_48k.wav")
        .canonicalize()
        .unwrap();
    let r = journey(&s, "app_live.mjs", &[wav]);
    // The stream key shown once, and the settings for each source program carry it.
    let key = r["streamKey"].as_str().unwrap();
    assert!(key.len() >= 16, "{r}");
    assert!(r["settings"].as_str().unwrap().contains(key), "{r}");
    assert!(r["meter"].as_f64().unwrap() > 0.01, "{r}");
    for how in ["webrtc", "hls"] {
        assert!(r[how]["peak"].as_f64().unwrap() > 0.01, "{how}: {r}");
        assert!(
            r[how]["latency"].as_str().unwrap().starts_with("Latency: "),
            "{r}"
        );
    }
    assert!(r["hls"]["advanced"].as_f64().unwrap() > 2.0, "{r}");
    // The artist's page counts both listeners.
    assert!(
        r["artistSees"]
            .as_str()
            .unwrap()
            .contains("1 LL-HLS, 1 WebRTC"),
        "{r}"
    );
    assert_eq!(r["consoleErrors"], serde_json::json!([]), "{r}");
}
