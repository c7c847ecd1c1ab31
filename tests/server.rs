//! End-to-end tests of `veza-stream serve`: the real binary on loopback, real fixtures, real
//! SQLite and PostgreSQL, real clients (ffmpeg, hls.js in Chromium).

mod common;

use common::server::{Db, Server};
use common::{fixture, fixtures};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const GOOD: &[&str] = &[
    "formats/mp3_cbr128_stereo_44k.mp3",
    "formats/flac_24bit_96k_stereo.flac",
    "formats/wav_pcm16_mono_16k.wav",
    "formats/m4a_aac_lc_itunes_stereo_44k.m4a",
];
const BAD: &[&str] = &[
    "edge/random_bytes.mp3",
    "edge/png_renamed.wav",
    "edge/polyglot_riff_text.wav",
];

/// Decodes an HLS URL with ffmpeg to mono f32 at 48 kHz and returns the decoded seconds.
fn ffmpeg_seconds(url: &str) -> f64 {
    let out = Command::new("ffmpeg")
        .args([
            "-v", "error", "-i", url, "-map", "0:a:0", "-ac", "1", "-ar", "48000", "-f", "f32le",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "ffmpeg {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.len() as f64 / 4.0 / 48000.0
}

/// hls.js in headless Chromium plays `url` for a few seconds from a page on another origin.
fn browser_plays(url: &str, seconds: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/play.mjs");
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new("node")
        .arg(script)
        .arg(empty.path())
        .arg(seconds)
        .arg(url)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hls.js failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"pass\":true"), "{stdout}");
}

async fn upload_multipart(s: &Server, path: &Path, title: &str) -> Value {
    let data = std::fs::read(path).unwrap();
    let part = reqwest::multipart::Part::bytes(data)
        .file_name(path.file_name().unwrap().to_string_lossy().to_string())
        .mime_str("audio/mp4")
        .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("title", title.to_string())
        .part("file", part);
    let r = s
        .client()
        .post(format!("{}/v1/tracks", s.url))
        .header("authorization", s.auth())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.json().await.unwrap()
}

/// Whether a track's playback offers no FLAC master (a lossy source).
async fn play_flac_absent(s: &Server, id: &str) -> bool {
    s.playback(id).await["masters"].get("flac").is_none()
}

async fn end_to_end(mut s: Server) {
    let mut good = Vec::new();
    for (i, rel) in GOOD.iter().enumerate() {
        let path = fixtures().join(rel);
        let t = if i == GOOD.len() - 1 {
            upload_multipart(&s, &path, "From a form").await
        } else {
            s.upload(&path).await
        };
        assert_eq!(t["status"], "queued");
        good.push((rel, t["id"].as_str().unwrap().to_string()));
    }
    let mut bad = Vec::new();
    for rel in BAD {
        let t = s.upload(&fixtures().join(rel)).await;
        bad.push((rel, t["id"].as_str().unwrap().to_string()));
    }

    for (rel, id) in &bad {
        let t = s.wait_final(id).await;
        assert_eq!(t["status"], "failed", "{rel}: {t}");
        let reason = t["error"].as_str().unwrap_or_default();
        assert!(reason.len() > 10, "{rel}: a precise reason, got {reason:?}");
        s.wait_objects_gone(id).await;
    }

    for (rel, id) in &good {
        let t = s.wait_final(id).await;
        assert_eq!(t["status"], "ready", "{rel}: {t}\n{}", s.log());
        assert_eq!(t["progress"], 1.0);
        let objects = s.objects().await;
        assert!(objects.contains(&format!("originals/{id}")), "{objects:?}");
        // The lossless rendition exists for lossless sources only.
        let lossless = fixture(rel).lossless();
        assert_eq!(
            objects
                .iter()
                .any(|k| k.starts_with(&format!("tracks/{id}/"))
                    && k.ends_with("/flac/seg_00000.m4s")),
            lossless,
            "{rel}"
        );
        let names: Vec<&str> = t["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        if lossless {
            assert_eq!(names, ["aac-128", "flac", "opus-96"], "{rel}");
        } else {
            assert_eq!(names, ["aac-128", "opus-96"], "{rel}");
            assert!(play_flac_absent(&s, id).await, "{rel}");
        }
        let duration = t["analysis"]["duration_seconds"].as_f64().unwrap();
        let expected = fixture(rel).decoded_seconds.unwrap();
        assert!(
            (duration - expected).abs() < 0.03,
            "{rel}: {duration} vs {expected}"
        );

        let play = s.playback(id).await;
        let master = play["master_url"].as_str().unwrap();
        assert!(master.starts_with(&s.url) && master.contains("?token=v1."));
        // Every rendition decodes over HTTP to the track's exact length.
        let codecs: &[&str] = if lossless {
            &["aac", "opus", "flac"]
        } else {
            &["aac", "opus"]
        };
        for codec in codecs {
            let url = play["masters"][codec].as_str().unwrap();
            let seconds = ffmpeg_seconds(url);
            assert!(
                (seconds - duration).abs() < 0.005,
                "{rel} {codec}: decoded {seconds} s of {duration} s"
            );
        }
        let wf: Value = s
            .client()
            .get(play["waveform_url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(wf["version"], 2);
        // ffmpeg just listened with this token's session.
        assert!(s.track(id).await["listeners"].as_u64().unwrap() >= 1);
    }
    assert_eq!(s.track(&good[1].1).await["title"], "flac_24bit_96k_stereo");
    assert_eq!(s.track(&good[3].1).await["title"], "From a form");

    // hls.js in Chromium plays the master straight from the server.
    let play = s.playback(&good[0].1).await;
    browser_plays(play["master_url"].as_str().unwrap(), "2");

    // Pagination walks every track once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = s
            .client()
            .get(format!("{}/v1/tracks", s.url))
            .header("authorization", s.auth())
            .query(&[("limit", "3")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c.as_str())]);
        }
        let page: Value = req.send().await.unwrap().json().await.unwrap();
        for t in page["items"].as_array().unwrap() {
            seen.push(t["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut all: Vec<String> = good
        .iter()
        .chain(bad.iter())
        .map(|(_, id)| id.clone())
        .collect();
    all.reverse();
    assert_eq!(seen, all);

    // Delete removes the rows and every object; the URLs stop working.
    let (_, gone) = &good[0];
    assert_eq!(s.delete(gone).await, 204);
    assert!(!s.objects().await.iter().any(|k| k.contains(gone.as_str())));
    let r = s
        .client()
        .get(format!("{}/v1/tracks/{gone}", s.url))
        .header("authorization", s.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // Deleting drops the track from this node's published cache at once: no wait for its
    // five-second lifetime.
    let r = s
        .client()
        .get(play["master_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Metrics.
    let m = s
        .client()
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "veza_http_requests_total{protocol=\"1.1\",route=\"/hls/tracks/{id}/{rendition}/{file}\",status=\"200\"}",
        "veza_ready 1",
        "veza_job_queue_lag_seconds 0",
        "process_resident_memory_bytes",
        "process_open_fds",
        "veza_http_request_duration_seconds_bucket",
        "veza_http_response_bytes_total",
        "veza_cache_hits_total",
        "veza_upload_bytes_total",
        "veza_jobs{state=\"failed\"} 3",
        "veza_job_duration_seconds_count 4",
        "veza_job_realtime_factor_count 4",
        "veza_active_listeners",
    ] {
        assert!(m.contains(needle), "metrics lack {needle}:\n{m}");
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            s.client()
                .get(format!("{}{path}", s.url))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    if s.is_s3() {
        // Storage outage: not ready, still alive.
        s.stop_storage();
        let r = s
            .client()
            .get(format!("{}/readyz", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert_eq!(
            s.client()
                .get(format!("{}/healthz", s.url))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn end_to_end_on_sqlite() {
    end_to_end(Server::start(Db::Sqlite, &[]).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn end_to_end_on_s3() {
    end_to_end(Server::start_s3(Db::Sqlite).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn end_to_end_on_postgres() {
    end_to_end(Server::start(Db::Postgres, &[]).await).await;
}

/// A playback key for tests that configure their own.
fn key(id: &str) -> veza_stream::config::PlaybackKey {
    veza_stream::config::PlaybackKey {
        id: id.into(),
        secret: format!("{id}-secret-for-tests-0123456789abcdef"),
    }
}

fn keys_env(ids: &[&str]) -> String {
    let items: Vec<String> = ids
        .iter()
        .map(|id| format!("{{ id = \"{id}\", secret = \"{}\" }}", key(id).secret))
        .collect();
    format!("[{}]", items.join(", "))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Every URI reachable from a playlist URL, with the query each carries, resolved.
async fn crawl(client: &reqwest::Client, master: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut queue = vec![master.to_string()];
    while let Some(url) = queue.pop() {
        let base = reqwest::Url::parse(&url).unwrap();
        let text = client.get(&url).send().await.unwrap().text().await.unwrap();
        for line in text.lines() {
            let uri = if let Some(p) = line.find("URI=\"") {
                let rest = &line[p + 5..];
                &rest[..rest.find('"').unwrap()]
            } else if !line.starts_with('#') && !line.is_empty() {
                line
            } else {
                continue;
            };
            let abs = base.join(uri).unwrap().to_string();
            if uri.contains(".m3u8") {
                queue.push(abs.clone());
            }
            out.push(abs);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn playback_tokens_are_enforced_and_rotate() {
    let api_key = "service-key-0123456789";
    let env_both = keys_env(&["k2", "k1"]);
    let mut s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_AUTH__API_KEYS", &format!("[\"{api_key}\"]")),
            ("VEZA_AUTH__PLAYBACK_KEYS", &keys_env(&["k1"])),
            ("VEZA_SERVER__LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    let a = s
        .upload(&fixtures().join("formats/flac_16bit_44k_stereo.flac"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = s
        .upload(&fixtures().join("formats/wav_pcm16_mono_16k.wav"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.wait_final(&a).await;
    s.wait_final(&b).await;
    let play = s.playback(&a).await;
    let token = play["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("v1.k1.track_"));
    let c = s.client();

    // The token is on every URI of every playlist, and opens each of them.
    for master in [
        play["master_url"].as_str().unwrap(),
        play["masters"]["opus"].as_str().unwrap(),
        play["masters"]["flac"].as_str().unwrap(),
    ] {
        let uris = crawl(&c, master).await;
        assert!(uris.len() >= 3, "{uris:?}");
        for u in uris {
            assert!(u.ends_with(&format!("?token={token}")), "{u}");
            assert_eq!(c.get(&u).send().await.unwrap().status(), 200, "{u}");
        }
    }

    let seg = |tok: &str| format!("{}/hls/tracks/{a}/aac-128/seg_00000.m4s?token={tok}", s.url);
    let status = |url: String| {
        let c = c.clone();
        async move {
            let r = c.get(url).send().await.unwrap();
            let st = r.status().as_u16();
            if st == 403 {
                assert_eq!(r.headers()["content-type"], "application/problem+json");
            }
            st
        }
    };
    let track_a: veza_stream::store::TrackId = a.parse().unwrap();
    let k1 = veza_stream::auth::Tokens::new(&[key("k1")], "k1");
    assert_eq!(status(seg(&token)).await, 200);
    assert_eq!(
        status(format!("{}/hls/tracks/{a}/aac-128/seg_00000.m4s", s.url)).await,
        403,
        "missing"
    );
    assert_eq!(
        status(seg(&k1.sign(track_a, 1, unix_now() - 1))).await,
        403,
        "expired"
    );
    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        status(seg(std::str::from_utf8(&tampered).unwrap())).await,
        403,
        "tampered"
    );
    let other = s.playback(&b).await["token"].as_str().unwrap().to_string();
    assert_eq!(status(seg(&other)).await, 403, "another track's token");
    let foreign = veza_stream::auth::Tokens::new(&[key("k9")], "k9");
    assert_eq!(
        status(seg(&foreign.sign(track_a, 1, unix_now() + 60))).await,
        403,
        "unknown key"
    );

    // Rotation: k2 signs, k1 still verifies; then k1 is retired.
    s.kill();
    s.set_env("VEZA_AUTH__PLAYBACK_KEYS", &env_both);
    s.spawn();
    let seg = |tok: &str| format!("{}/hls/tracks/{a}/aac-128/seg_00000.m4s?token={tok}", s.url);
    assert_eq!(status(seg(&token)).await, 200, "old key still verifies");
    let new_token = s.playback(&a).await["token"].as_str().unwrap().to_string();
    assert!(new_token.starts_with("v1.k2."));
    s.kill();
    s.set_env("VEZA_AUTH__PLAYBACK_KEYS", &keys_env(&["k2"]));
    s.spawn();
    let seg = |tok: &str| format!("{}/hls/tracks/{a}/aac-128/seg_00000.m4s?token={tok}", s.url);
    assert_eq!(status(seg(&token)).await, 403, "retired key");
    assert_eq!(status(seg(&new_token)).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn delivery_speaks_http_the_way_cdns_expect() {
    let s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_SERVER__CORS_ORIGINS", "[\"https://app.example\"]"),
            ("VEZA_SERVER__MAX_UPLOAD_BYTES", "1000000"),
        ],
    )
    .await;
    let id = s
        .upload(&fixtures().join("formats/mp3_cbr128_stereo_44k.mp3"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.wait_final(&id).await;
    let play = s.playback(&id).await;
    let token = play["token"].as_str().unwrap();
    let c = s.client();
    let seg = format!(
        "{}/hls/tracks/{id}/aac-128/seg_00000.m4s?token={token}",
        s.url
    );

    let full = c.get(&seg).send().await.unwrap();
    assert_eq!(full.status(), 200);
    let h = full.headers().clone();
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(h["content-type"], "audio/mp4");
    assert_eq!(h["accept-ranges"], "bytes");
    let etag = h["etag"].to_str().unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "strong: {etag}"
    );
    let body = full.bytes().await.unwrap();
    assert_eq!(
        h["content-length"].to_str().unwrap(),
        body.len().to_string()
    );
    let len = body.len();

    let r = c
        .get(&seg)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(
        c.get(&seg)
            .header("if-none-match", "\"other\"")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let r = c
        .get(&seg)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 100-199/{len}").as_str()
    );
    assert_eq!(r.bytes().await.unwrap(), body.slice(100..200));
    let r = c
        .get(&seg)
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), body.slice(len - 10..));
    let r = c
        .get(&seg)
        .header("range", format!("bytes={len}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{len}").as_str()
    );
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // If-Range with another validator: the whole object.
    let r = c
        .get(&seg)
        .header("range", "bytes=0-9")
        .header("if-range", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = c.head(&seg).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"].to_str().unwrap(),
        len.to_string()
    );
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert!(r.bytes().await.unwrap().is_empty());

    let init = c
        .get(format!(
            "{}/hls/tracks/{id}/opus-96/init.mp4?token={token}",
            s.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    assert_eq!(
        init.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );

    let master = c
        .get(play["master_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        master.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(master.headers()["cache-control"], "public, max-age=10");
    let tag = master.headers()["etag"].to_str().unwrap().to_string();
    let r = c
        .get(play["master_url"].as_str().unwrap())
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let other = s.playback(&id).await;
    let r = c
        .get(other["master_url"].as_str().unwrap())
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "another token rewrites the playlist differently"
    );

    // CORS: the configured origin only, preflight included.
    let r = c
        .get(&seg)
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert!(r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("content-range"));
    let r = c
        .get(&seg)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = c
        .request(reqwest::Method::OPTIONS, &seg)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "range")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert!(r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("range"));

    // Unknown ids and files: 404 problem documents.
    let dev = veza_stream::auth::DevSecrets::load_or_create(&s.dir.join("data")).unwrap();
    let dev_keys = veza_stream::auth::Tokens::new(
        &[veza_stream::config::PlaybackKey {
            id: "dev".into(),
            secret: dev.playback_secret,
        }],
        "dev",
    );
    let unknown = veza_stream::store::TrackId::new();
    let tok = dev_keys.sign(unknown, 1, unix_now() + 60);
    for url in [
        format!("{}/hls/tracks/{unknown}/master.m3u8?token={tok}", s.url),
        format!("{}/hls/tracks/not-a-uuid/master.m3u8", s.url),
        format!(
            "{}/hls/tracks/{id}/aac-128/seg_99999.m4s?token={token}",
            s.url
        ),
        format!("{}/hls/tracks/{id}/mp3-320/index.m3u8?token={token}", s.url),
        format!("{}/hls/tracks/{id}/analysis.json?token={token}", s.url),
    ] {
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 404, "{url}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["status"], 404);
    }

    // Control API errors.
    let r = c.get(format!("{}/v1/tracks", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = c
        .post(format!("{}/v1/tracks", s.url))
        .header("authorization", s.auth())
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = c
        .post(format!("{}/v1/tracks", s.url))
        .header("authorization", s.auth())
        .header("content-type", "audio/wav")
        .body(vec![0u8; 1_000_001])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["type"], "https://veza.stream/problems/upload-too-large");
    // A chunked body with no length is cut off at the limit too, and leaves nothing behind.
    let before = s.objects().await;
    let chunks = futures::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![1u8; 50_000])));
    let r = c
        .post(format!("{}/v1/tracks", s.url))
        .header("authorization", s.auth())
        .header("content-type", "audio/wav")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(s.objects().await, before);
    let r = c
        .post(format!("{}/v1/tracks", s.url))
        .header("authorization", s.auth())
        .header("content-type", "audio/wav")
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .post(format!(
            "{}/v1/tracks/{}/playback",
            s.url,
            veza_stream::store::TrackId::new()
        ))
        .header("authorization", s.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(format!("{}/", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("Veza Stream"));
    let r = c.get(format!("{}/nowhere", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

#[tokio::test(flavor = "multi_thread")]
async fn warnings_and_truncation_show_in_the_track_api() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio");
    let upload = |rel: &str| {
        let path = own.join(rel);
        let s = &s;
        async move { s.upload(&path).await["id"].as_str().unwrap().to_string() }
    };
    // Broken tags: the track plays, says why in `warnings`, and keeps the title that reads.
    let tags = upload("metadata/flac_vorbis_comment_count_overrun.flac").await;
    // Cut off mid-mdat: what decodes is packaged, and the analysis says so.
    let cut = upload("truncated/m4a_aac_faststart_cut_mid_mdat.m4a").await;
    // Cut off before any audio: rejected, saying nothing playable is left.
    let empty = upload("truncated/m4a_header_only.m4a").await;

    let t = s.wait_final(&tags).await;
    assert_eq!(t["status"], "ready", "{t}");
    let warnings = t["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("VORBIS_COMMENT")),
        "{t}"
    );
    assert_eq!(t["analysis"]["warnings"], t["warnings"]);
    assert_eq!(t["analysis"]["source"]["tags"]["title"], "Kept Title");
    assert_eq!(t["analysis"]["truncated"], false);

    let t = s.wait_final(&cut).await;
    assert_eq!(t["status"], "ready", "{t}");
    let a = &t["analysis"];
    assert_eq!(a["truncated"], true, "{a}");
    let kept = a["duration_seconds"].as_f64().unwrap();
    assert!((3.0..6.0).contains(&kept), "{kept} s of 6 kept");
    assert!(!t["warnings"].as_array().unwrap().is_empty());

    let t = s.wait_final(&empty).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert!(
        t["error"].as_str().unwrap().contains("nothing playable"),
        "{t}"
    );
    assert_eq!(t["warnings"], serde_json::json!([]));
}
