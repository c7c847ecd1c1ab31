//! Resumable uploads (tus 1.0.0) against the real binary, on SQLite and on PostgreSQL: the official
//! tus-js-client cut off mid-chunk and resumed by another process, and the protocol's corners
//! (versions, offsets, checksums, termination, expiration, creation-with-upload).

mod common;

use base64::Engine;
use common::fixtures;
use common::server::{Db, Server};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

const TUS: (&str, &str) = ("tus-resumable", "1.0.0");

fn node(args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/tus_upload.mjs");
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tus-js-client {args:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().expect("a JSON line")).unwrap()
}

async fn resume_after_cut(db: Db) {
    let s = Server::start(db, &[]).await;
    let alice = s.token("alice", "artist");
    let file = fixtures().join("track/full_track_3min_stereo_44k.mp3");
    let bytes = std::fs::read(&file).unwrap();
    let endpoint = format!("{}/v1/uploads", s.url);
    let chunk = 1 << 20;
    // The connection drops 600 kB into the second PATCH.
    let cut_at = chunk + 600_000;
    let first = node(&[
        "cut",
        &endpoint,
        &alice,
        file.to_str().unwrap(),
        &chunk.to_string(),
        &cut_at.to_string(),
    ]);
    let url = first["url"].as_str().unwrap().to_string();
    let path = url.trim_start_matches(&s.url).to_string();

    // What arrived before the cut is kept: more than the first chunk, less than the whole. The
    // server stores the cut PATCH's bytes when it sees the connection drop, which may be just
    // after the client gave up: HEAD is asked again until that PATCH has ended (bounded, so a
    // server that never keeps them fails below).
    let started = std::time::Instant::now();
    let (st, h) = loop {
        let (st, h, _) = s.call("HEAD", &path, &alice, None, &[TUS]).await;
        let offset: usize = h["upload-offset"].to_str().unwrap().parse().unwrap();
        if st != 200 || offset > chunk || started.elapsed() > std::time::Duration::from_secs(10) {
            break (st, h);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(st, 200);
    let offset: usize = h["upload-offset"].to_str().unwrap().parse().unwrap();
    assert_eq!(
        h["upload-length"].to_str().unwrap(),
        bytes.len().to_string()
    );
    assert!(
        offset > chunk && offset < bytes.len(),
        "offset {offset} after the cut"
    );
    assert_eq!(h["cache-control"], "no-store");

    // Another process resumes from there and finishes.
    let second = node(&[
        "resume",
        &endpoint,
        &alice,
        file.to_str().unwrap(),
        &chunk.to_string(),
        &url,
    ]);
    assert_eq!(second["url"].as_str(), Some(url.as_str()));
    let first_progress = second["firstProgress"].as_u64().unwrap_or(0) as usize;
    assert!(first_progress >= offset || first_progress == 0, "{second}");
    let track = second["track"]
        .as_str()
        .expect("Veza-Track header")
        .to_string();
    let id = track.trim_start_matches("/v1/tracks/").to_string();
    let t = s.wait_final(&id).await;
    assert_eq!(t["status"], "ready", "{t}");
    assert_eq!(t["owner"], "alice");
    assert_eq!(t["title"], "tus upload");
    assert_eq!(t["size_bytes"].as_u64(), Some(bytes.len() as u64));
    assert!((t["analysis"]["duration_seconds"].as_f64().unwrap() - 180.0).abs() < 0.1);
    // The joined original is the file, byte for byte, and the pieces are gone.
    if !s.is_s3() {
        let original = std::fs::read(s.dir.join(format!("media/originals/{id}"))).unwrap();
        assert!(
            original == bytes,
            "the joined original differs from the file"
        );
    }
    let objects = s.objects().await;
    assert!(
        objects.iter().all(|k| !k.starts_with("uploads/")),
        "{objects:?}"
    );
    // HEAD on a finished upload names its track.
    let (st, h, _) = s.call("HEAD", &path, &alice, None, &[TUS]).await;
    assert_eq!(st, 200);
    assert_eq!(h["veza-track"], track.as_str());
}

#[tokio::test]
async fn tus_js_client_resumes_after_a_cut_sqlite() {
    resume_after_cut(Db::Sqlite).await;
}

#[tokio::test]
async fn tus_js_client_resumes_after_a_cut_postgres() {
    resume_after_cut(Db::Postgres).await;
}

fn call<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    h.iter().map(|(a, b)| (*a, b.as_str())).collect()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn raw(
    s: &Server,
    method: &str,
    path: &str,
    who: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut r = s
        .client()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", s.url),
        )
        .header("authorization", format!("Bearer {who}"));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(body).send().await.unwrap()
}

async fn protocol(db: Db) {
    let s = Server::start(db, &[]).await;
    let alice = s.token("alice", "artist");
    let wav = std::fs::read(fixtures().join("formats/wav_pcm16_mono_16k.wav")).unwrap();
    let len = wav.len().to_string();

    // Discovery.
    let r = raw(&s, "OPTIONS", "/v1/uploads", &alice, &[], vec![]).await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["tus-version"], "1.0.0");
    assert_eq!(r.headers()["tus-checksum-algorithm"], "sha256");
    let ext = r.headers()["tus-extension"].to_str().unwrap().to_string();
    for e in [
        "creation",
        "creation-with-upload",
        "termination",
        "expiration",
        "checksum",
    ] {
        assert!(ext.split(',').any(|x| x == e), "{e} in {ext}");
    }

    // Version, length and metadata checks.
    let r = raw(
        &s,
        "POST",
        "/v1/uploads",
        &alice,
        &[("upload-length", &len)],
        vec![],
    )
    .await;
    assert_eq!(r.status(), 412);
    assert_eq!(r.headers()["tus-version"], "1.0.0");
    let r = raw(&s, "POST", "/v1/uploads", &alice, &[TUS], vec![]).await;
    assert_eq!(r.status(), 400);
    let r = raw(
        &s,
        "POST",
        "/v1/uploads",
        &alice,
        &[TUS, ("upload-length", "99999999999999")],
        vec![],
    )
    .await;
    assert_eq!(r.status(), 413);
    let r = raw(
        &s,
        "POST",
        "/v1/uploads",
        &alice,
        &[
            TUS,
            ("upload-length", &len),
            ("upload-metadata", "filename !!!"),
        ],
        vec![],
    )
    .await;
    assert_eq!(r.status(), 400);

    // Creation with upload: the first 1000 bytes come with the POST.
    let meta = format!("filename {},title {}", b64("tone.wav"), b64("Tone"));
    let r = raw(
        &s,
        "POST",
        "/v1/uploads",
        &alice,
        &[
            TUS,
            ("upload-length", &len),
            ("upload-metadata", &meta),
            ("content-type", "application/offset+octet-stream"),
        ],
        wav[..1000].to_vec(),
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["tus-resumable"], "1.0.0");
    assert_eq!(r.headers()["upload-offset"], "1000");
    assert!(httpdate::parse_http_date(r.headers()["upload-expires"].to_str().unwrap()).is_ok());
    let path = r.headers()["location"].to_str().unwrap().to_string();

    let patch = |offset: &str| {
        vec![
            TUS,
            ("content-type", "application/offset+octet-stream"),
            ("upload-offset", offset),
        ]
        .into_iter()
        .map(|(a, b)| (a, b.to_string()))
        .collect::<Vec<_>>()
    };

    // Wrong offset: 409. Wrong content type: 415.
    let r = raw(
        &s,
        "PATCH",
        &path,
        &alice,
        &call(&patch("0")),
        wav[..10].to_vec(),
    )
    .await;
    assert_eq!(r.status(), 409);
    let r = raw(
        &s,
        "PATCH",
        &path,
        &alice,
        &[
            TUS,
            ("upload-offset", "1000"),
            ("content-type", "text/plain"),
        ],
        wav[1000..1010].to_vec(),
    )
    .await;
    assert_eq!(r.status(), 415);

    // A checksum that does not match: 460, and nothing is kept.
    let mut h = patch("1000");
    h.push((
        "upload-checksum",
        format!(
            "sha256 {}",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"other"))
        ),
    ));
    let r = raw(
        &s,
        "PATCH",
        &path,
        &alice,
        &call(&h),
        wav[1000..5000].to_vec(),
    )
    .await;
    assert_eq!(r.status(), 460);
    let mut h = patch("1000");
    h.push(("upload-checksum", "md5 AAAA".into()));
    let r = raw(
        &s,
        "PATCH",
        &path,
        &alice,
        &call(&h),
        wav[1000..5000].to_vec(),
    )
    .await;
    assert_eq!(r.status(), 400);
    let (_, head, _) = s.call("HEAD", &path, &alice, None, &[TUS]).await;
    assert_eq!(head["upload-offset"], "1000");

    // A matching checksum: stored.
    let mut h = patch("1000");
    h.push((
        "upload-checksum",
        format!(
            "sha256 {}",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&wav[1000..5000]))
        ),
    ));
    let r = raw(
        &s,
        "PATCH",
        &path,
        &alice,
        &call(&h),
        wav[1000..5000].to_vec(),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["upload-offset"], "5000");

    // Past the declared length: 413, offset unchanged.
    let mut too_long = wav[5000..].to_vec();
    too_long.extend_from_slice(b"extra");
    let r = raw(&s, "PATCH", &path, &alice, &call(&patch("5000")), too_long).await;
    assert_eq!(r.status(), 413);

    // The rest: the track is queued and named.
    let r = raw(
        &s,
        "PATCH",
        &path,
        &alice,
        &call(&patch("5000")),
        wav[5000..].to_vec(),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["upload-offset"], len.as_str());
    let track = r.headers()["veza-track"].to_str().unwrap().to_string();
    let t = s.wait_final(track.trim_start_matches("/v1/tracks/")).await;
    assert_eq!(t["status"], "ready");
    assert_eq!(
        (t["title"].as_str(), t["filename"].as_str()),
        (Some("Tone"), Some("tone.wav"))
    );

    // Termination removes the upload and its pieces.
    let r = raw(
        &s,
        "POST",
        "/v1/uploads",
        &alice,
        &[
            TUS,
            ("upload-length", &len),
            ("content-type", "application/offset+octet-stream"),
        ],
        wav[..2000].to_vec(),
    )
    .await;
    assert_eq!(r.status(), 201);
    let doomed = r.headers()["location"].to_str().unwrap().to_string();
    let id = doomed.trim_start_matches("/v1/uploads/").to_string();
    assert!(s.objects().await.iter().any(|k| k.contains(&id)));
    let r = raw(&s, "DELETE", &doomed, &alice, &[TUS], vec![]).await;
    assert_eq!(r.status(), 204);
    let (st, _, _) = s.call("HEAD", &doomed, &alice, None, &[TUS]).await;
    assert_eq!(st, 404);
    assert!(!s.objects().await.iter().any(|k| k.contains(&id)));

    // Idempotency-Key on creation: the same request gets the same upload.
    let k = [TUS, ("upload-length", "10"), ("idempotency-key", "u-1")];
    let (_, h1, _) = s.call("POST", "/v1/uploads", &alice, None, &k).await;
    let (st, h2, _) = s.call("POST", "/v1/uploads", &alice, None, &k).await;
    assert_eq!(st, 201);
    assert_eq!(h1["location"], h2["location"]);
    let other = [TUS, ("upload-length", "11"), ("idempotency-key", "u-1")];
    let (st, _, _) = s.call("POST", "/v1/uploads", &alice, None, &other).await;
    assert_eq!(st, 422);
}

#[tokio::test]
async fn tus_protocol_sqlite() {
    protocol(Db::Sqlite).await;
}

#[tokio::test]
async fn tus_protocol_postgres() {
    protocol(Db::Postgres).await;
}

/// Unfinished uploads expire: 410 at once, and the sweeper removes them with their pieces.
#[tokio::test]
async fn tus_uploads_expire() {
    let s = Server::start(
        Db::Sqlite,
        &[("VEZA_LIMITS__UPLOAD_EXPIRATION_SECONDS", "1")],
    )
    .await;
    let alice = s.token("alice", "artist");
    let r = raw(
        &s,
        "POST",
        "/v1/uploads",
        &alice,
        &[
            TUS,
            ("upload-length", "100"),
            ("content-type", "application/offset+octet-stream"),
        ],
        vec![7; 40],
    )
    .await;
    assert_eq!(r.status(), 201);
    let path = r.headers()["location"].to_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (st, _, _) = s.call("HEAD", &path, &alice, None, &[TUS]).await;
    assert_eq!(st, 410);
    // The sweeper runs every 5 s; the limit only keeps a broken build from hanging.
    let start = std::time::Instant::now();
    while s.objects().await.iter().any(|k| k.starts_with("uploads/")) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "not swept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let (st, _, _) = s.call("HEAD", &path, &alice, None, &[TUS]).await;
    assert_eq!(st, 404);
}
