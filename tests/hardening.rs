//! What a hostile user or a crash tried and must not get (issue 23): another owner's private
//! track through a public playlist or a listener's token, the development key from another web
//! origin, stream keys guessed without end, pages without browser security headers, and a node
//! that redirects to itself after kill -9.

mod common;

use common::fixtures;
use common::live::*;
use common::server::{free_port, Db, Server};
use serde_json::{json, Value};
use std::process::Command;

async fn ready_track(s: &Server, bearer: &str, rel: &str) -> String {
    let id = s.upload_as(&fixtures().join(rel), bearer).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.wait_final(&id).await["status"], "ready");
    id
}

/// Private means the owner, an admin, or a token the owner or the platform minted: Bob cannot
/// publish Alice's private track through his public playlist, an anonymous listener of Alice's
/// public playlist hears only what she may share, and a listener's JWT gets no playback for a
/// private track.
#[tokio::test(flavor = "multi_thread")]
async fn a_private_track_stays_private_whatever_playlist_holds_it() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let alice = s.token("alice", "artist");
    let bob = s.token("bob", "artist");
    let lisa = s.token("lisa", "listener");
    let private = ready_track(&s, &alice, "formats/flac_16bit_44k_stereo.flac").await;
    let shared = ready_track(&s, &alice, "formats/wav_pcm16_mono_16k.wav").await;
    let (st, _, v) = s
        .call(
            "PATCH",
            &format!("/v1/tracks/{shared}"),
            &alice,
            Some(json!({"visibility": "public"})),
            &[],
        )
        .await;
    assert_eq!(st, 200, "{v}");

    // Bob cannot add Alice's private track, by id, to his playlist: as if it did not exist.
    let (st, _, v) = s
        .call(
            "POST",
            "/v1/playlists",
            &bob,
            Some(json!({"title": "Bob's", "visibility": "public", "track_ids": [private]})),
            &[],
        )
        .await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(
        v["type"], "https://veza.stream/problems/unknown-track",
        "{v}"
    );
    // Her public track, he can.
    let (st, _, v) = s
        .call(
            "POST",
            "/v1/playlists",
            &bob,
            Some(json!({"title": "Bob's", "visibility": "public", "track_ids": [shared]})),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let bobs = v["id"].as_str().unwrap().to_string();

    // A listener gets playback for the public track only.
    let (st, _, _) = s
        .call(
            "POST",
            &format!("/v1/tracks/{private}/playback"),
            &lisa,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 404);
    let (st, _, _) = s
        .call(
            "POST",
            &format!("/v1/tracks/{private}/playback"),
            &bob,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 404);
    let (st, _, _) = s
        .call(
            "POST",
            &format!("/v1/tracks/{shared}/playback"),
            &lisa,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 200);
    let (st, _, _) = s
        .call(
            "POST",
            &format!("/v1/tracks/{private}/playback"),
            &alice,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 200);

    // Alice makes the shared track private again: Bob's public playlist no longer plays it,
    // signed in or not, and says why it is skipped.
    let (st, _, _) = s
        .call(
            "PATCH",
            &format!("/v1/tracks/{shared}"),
            &alice,
            Some(json!({"visibility": "private"})),
            &[],
        )
        .await;
    assert_eq!(st, 200);
    let (st, _, v) = s
        .call(
            "POST",
            &format!("/v1/playlists/{bobs}/playback"),
            &lisa,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 409, "{v}");
    let r = s
        .client()
        .post(format!("{}/v1/public/playlists/{bobs}/playback", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    // Alice's own public playlist plays her private track to anyone: hers to share.
    let (st, _, v) = s
        .call(
            "POST",
            "/v1/playlists",
            &alice,
            Some(json!({"title": "Mine", "visibility": "public", "track_ids": [private, shared]})),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let mine = v["id"].as_str().unwrap().to_string();
    let r = s
        .client()
        .post(format!("{}/v1/public/playlists/{mine}/playback", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["playback"]["chapters"].as_array().unwrap().len(),
        2,
        "{v}"
    );

    // An admin's playlist holding Bob's private track does not publish it either.
    let bobs_own = ready_track(&s, &bob, "formats/wav_pcm16_mono_16k.wav").await;
    let (st, _, v) = s
        .call(
            "POST",
            "/v1/playlists",
            &s.key,
            Some(
                json!({"title": "Staff", "visibility": "public", "track_ids": [bobs_own, private]}),
            ),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let staff = v["id"].as_str().unwrap().to_string();
    let (st, _, v) = s
        .call(
            "POST",
            &format!("/v1/playlists/{staff}/playback"),
            &lisa,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 409, "{v}");
    let (_, _, v) = s
        .call(
            "POST",
            &format!("/v1/playlists/{mine}/playback"),
            &lisa,
            None,
            &[],
        )
        .await;
    assert!(v["skipped"].as_array().unwrap().is_empty(), "{v}");
}

/// The development sign-in hands out the admin key: never to another web origin. No CORS on it
/// (nor on its preflight), a same-origin `Origin` or none, and a loopback `Host`. Chromium on
/// another loopback origin cannot read it; the app's own page still can.
#[tokio::test(flavor = "multi_thread")]
async fn the_development_key_goes_to_the_app_s_own_origin_only() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let sign_in = format!("{}/app/dev-sign-in", s.url);
    let host = s.url.trim_start_matches("http://").to_string();
    let c = s.client();
    let r = c.post(&sign_in).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = c
        .post(&sign_in)
        .header("origin", &s.url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for (origin, host) in [
        ("http://127.0.0.1:1", host.as_str()),
        ("https://evil.example", host.as_str()),
        ("null", host.as_str()),
    ] {
        let r = c
            .post(&sign_in)
            .header("origin", origin)
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{origin}");
        assert!(r.headers().get("access-control-allow-origin").is_none());
    }
    // A DNS-rebinding name for 127.0.0.1.
    let r = c
        .post(&sign_in)
        .header("host", "rebind.evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .request(reqwest::Method::OPTIONS, &sign_in)
        .header("origin", "http://localhost:1")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // Chromium: a page on another origin (the same server as `localhost`) fails to read it; a
    // page of the app's own origin reads it.
    let port = host.rsplit(':').next().unwrap();
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/cross_origin.mjs"
        ))
        .arg(format!("http://localhost:{port}/healthz"))
        .arg(&sign_in)
        .arg(format!("{}/healthz", s.url))
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["foreign"]["read"], false, "{v}");
    assert_eq!(v["own"]["read"], true, "{v}");
    assert_eq!(v["own"]["role"], "admin", "{v}");
}

/// Every response tells browsers not to sniff types and to keep signed URLs to this site; the
/// app's pages carry a content security policy that forbids framing.
#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_the_browser_security_headers() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let c = s.client();
    for path in [
        "/",
        "/healthz",
        "/v1/me",
        "/openapi.json",
        "/nowhere",
        "/play/track/x",
    ] {
        let r = c.get(format!("{}{path}", s.url)).send().await.unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(
            h["referrer-policy"], "strict-origin-when-cross-origin",
            "{path}"
        );
        let html = h["content-type"].to_str().unwrap().starts_with("text/html");
        assert_eq!(h.get("content-security-policy").is_some(), html, "{path}");
        if html {
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
            assert!(csp.contains("script-src 'self'"), "{csp}");
        }
    }
    // Icecast refusals, written outside the router, too.
    let c2 = create(&s, json!({"title": "Headers"})).await;
    let id = c2["id"].as_str().unwrap();
    let (line, text) = raw_source(&s, &put_head(id, "wrong", Some("audio/mpeg")), b"").await;
    assert!(line.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("X-Content-Type-Options: nosniff"), "{text}");
}

/// Wrong stream keys are counted per client address: after
/// `limits.stream_key_failures_per_minute` (10) the address gets 429 on every source door
/// (Icecast, WHIP, `/admin/metadata`), even with the right key, and each refusal is logged with
/// the address, the channel and the reason. Another address is not affected.
#[tokio::test(flavor = "multi_thread")]
async fn guessing_stream_keys_is_limited_and_logged() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let c = create(&s, json!({"title": "Guarded"})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    for i in 0..10 {
        let (line, text) = raw_source(
            &s,
            &put_head(&id, &format!("guess{i}"), Some("audio/mpeg")),
            b"",
        )
        .await;
        assert!(line.starts_with("HTTP/1.1 401"), "{i}: {text}");
    }
    let (line, text) = raw_source(&s, &put_head(&id, "guess10", Some("audio/mpeg")), b"").await;
    assert!(line.starts_with("HTTP/1.1 429"), "{text}");
    assert!(text.contains("Retry-After:"), "{text}");
    // Blocked: the right key too, on every door.
    let (line, _) = raw_source(&s, &put_head(&id, &key, Some("audio/mpeg")), b"").await;
    assert!(line.starts_with("HTTP/1.1 429"), "{line}");
    let r = s
        .client()
        .post(format!("{}/whip/{id}", s.url))
        .bearer_auth(&key)
        .header("content-type", "application/sdp")
        .body("v=0\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let r = s
        .client()
        .get(format!(
            "{}/admin/metadata?mount=/ingest/{id}&mode=updinfo&song=x",
            s.url
        ))
        .header(
            "authorization",
            format!("Basic {}", base64(&format!("source:{key}"))),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // The log names the address, the channel and the reason, for fail2ban-style tools.
    let log = s.log();
    let line = log
        .lines()
        .find(|l| l.contains("stream key refused") && l.contains("wrong key"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    assert!(line.contains("client=127.0.0.1"), "{line}");
    assert!(line.contains(&format!("channel={id}")), "{line}");
    assert!(line.contains("via=\"icecast\""), "{line}");
    assert!(log.contains("too many wrong keys"), "{log}");
    // Another address with the right key goes live.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut tcp = sock.connect(addr(&s).parse().unwrap()).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(put_head(&id, &key, Some("audio/mpeg")).as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.0 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

/// kill -9 leaves the channel's lease in the store. The node that comes back on the same
/// address is the same node: it takes the lease at once. It used to answer its own listeners
/// 307 to itself and its sources 409 naming itself until the lease expired.
#[tokio::test(flavor = "multi_thread")]
async fn after_kill_9_the_node_takes_its_channel_back_at_once() {
    let port = free_port();
    let mut s = Server::start(
        Db::Sqlite,
        &[("VEZA_SERVER__LISTEN", &format!("127.0.0.1:{port}"))],
    )
    .await;
    let c = create(&s, json!({"title": "Crash"})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let mut ff = ffmpeg_source(&s, &id, &key, &track_mp3(), "mp3");
    wait_for(&s, &id, "/state", "live").await;
    let (token, master) = playback(&s, &id).await;
    ff.stop();
    s.kill();
    s.spawn();
    assert_eq!(s.url, format!("http://127.0.0.1:{port}"));
    // Within the dead process's lease: no redirect to itself, and a source is taken.
    let (st, h, _) = get(&master).await;
    assert_ne!(st, 307, "{h:?}");
    let whep = format!("{}/whep/{id}", s.url);
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(&whep)
        .bearer_auth(&token)
        .header("content-type", "application/sdp")
        .body("v=0\r\n")
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 307);
    // ffmpeg gives up on a 409: it goes live only if the node takes it.
    let _ff = ffmpeg_source(&s, &id, &key, &track_mp3(), "mp3");
    wait_for(&s, &id, "/state", "live").await;
    let (st, _, _) = get(&master).await;
    assert_eq!(st, 200);
}
