//! HTTPS and HTTP/3 against real clients: curl over HTTP/1.1 and HTTP/2 (ALPN), reqwest keeping
//! its HTTP/2 connection across a certificate reload (SIGHUP), h2load, the kit's `hls_check` and
//! `llhls_check` trusting the development certificate, and an HTTP/3 client of our own (quinn +
//! h3) asking for the same bytes as TCP: playlists, Range, 304, the API and a blocking reload.

mod common;

use common::live::{create, kit_tool, llhls_check, playback, wait_for};
use common::server::{Db, Server};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

async fn dev_tls(extra: &[(&str, &str)]) -> Server {
    Server::start_dev_tls(extra).await
}

fn dev_cert(s: &Server) -> PathBuf {
    s.dev_cert()
}

fn https(s: &Server) -> String {
    s.https.clone().expect("an HTTPS listener in the banner")
}

fn udp(s: &Server) -> SocketAddr {
    s.tls_addr()
}

/// curl's status line protocol, exit code, and headers, for `url` trusting `ca`.
fn curl(args: &[&str], ca: &Path, url: &str) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "-w", "%{http_version}"])
        .args(args)
        .arg("--cacert")
        .arg(ca)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let version = text.lines().last().unwrap_or_default().to_string();
    (out.status.code().unwrap_or(-1), version, text)
}

/// A self-signed certificate for localhost and 127.0.0.1, made by openssl.
fn openssl_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl")
        .status
        .success();
    assert!(ok);
    (cert, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn https_speaks_http1_and_http2_and_keeps_connections_across_a_certificate_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (a_cert, a_key) = openssl_cert(dir.path(), "a");
    let (b_cert, b_key) = openssl_cert(dir.path(), "b");
    let (cert, key) = (dir.path().join("live.pem"), dir.path().join("live.key"));
    std::fs::copy(&a_cert, &cert).unwrap();
    std::fs::copy(&a_key, &key).unwrap();
    let s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_SERVER__TLS_CERT_FILE", cert.to_str().unwrap()),
            ("VEZA_SERVER__TLS_KEY_FILE", key.to_str().unwrap()),
            ("VEZA_SERVER__TLS_LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    let base = https(&s);
    let port = udp(&s).port();
    let health = format!("{base}/healthz");
    // curl over HTTP/1.1 and HTTP/2, chosen by ALPN; both told where HTTP/3 is.
    for (flag, want) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let (code, version, head) = curl(&[flag], &a_cert, &health);
        assert_eq!((code, version.as_str()), (0, want), "{head}");
        assert!(
            head.to_lowercase()
                .contains(&format!("alt-svc: h3=\":{port}\"; ma=86400")),
            "{head}"
        );
    }
    // The plain listener stays, for a TLS-terminating proxy in front.
    let (_, version, _) = curl(&[], &a_cert, &format!("{}/healthz", s.url));
    assert_eq!(version, "1.1");

    // An HTTP/2 connection that trusts only the first certificate.
    let a = reqwest::Certificate::from_pem(&std::fs::read(&a_cert).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([a])
        .build()
        .unwrap();
    let r = client.get(&health).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.version()),
        (200, reqwest::Version::HTTP_2)
    );

    // New files and SIGHUP: new handshakes get the new certificate.
    std::fs::copy(&b_cert, &cert).unwrap();
    std::fs::copy(&b_key, &key).unwrap();
    hangup(&s);
    s.wait_log("TLS certificate reloaded").await;
    assert_eq!(curl(&[], &b_cert, &health).0, 0);
    assert_eq!(
        curl(&[], &a_cert, &health).0,
        60,
        "the old certificate is gone"
    );
    // The connection opened before goes on: a new one would not trust the new certificate.
    let r = client.get(&health).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // A broken file on reload: the certificate in force stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    hangup(&s);
    s.wait_log("TLS certificate not reloaded").await;
    assert_eq!(curl(&[], &b_cert, &health).0, 0);
}

/// A small FLAC packaged and ready: its id and its playback answer.
async fn ready_track(s: &Server) -> (String, serde_json::Value) {
    let t = s
        .upload(&common::fixtures().join("formats/flac_16bit_44k_stereo.flac"))
        .await;
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(s.wait_final(&id).await["status"], "ready");
    let playback = format!("/v1/tracks/{id}/playback");
    let (_, _, pb) = s.call("POST", &playback, &s.key, None, &[]).await;
    (id, pb)
}

fn hangup(s: &Server) {
    let ok = Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_development_certificate_is_printed_and_kept_across_restarts() {
    let mut s = dev_tls(&[]).await;
    let printed = |s: &Server| {
        s.banner_line("TLS certificate SHA-256: ")
            .expect("a fingerprint in the banner")
    };
    let first = printed(&s);
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(dev_cert(&s))
        .output()
        .unwrap();
    let openssl = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(openssl.trim(), format!("sha256 Fingerprint={first}"));
    s.kill();
    s.spawn();
    assert_eq!(printed(&s), first, "the same certificate after a restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn h2load_and_the_kits_checkers_play_over_https() {
    let s = dev_tls(&[]).await;
    let cert = dev_cert(&s);
    let base = https(&s);
    let (_, pb) = ready_track(&s).await;
    let master = pb["master_url"].as_str().unwrap().replace(&s.url, &base);
    // The kit's checker, trusting the development certificate: playlists, segments, HTTP
    // semantics and decoding, all over TLS.
    let cert_env = cert.to_str().unwrap();
    std::env::set_var("SSL_CERT_FILE", cert_env);
    kit_tool("hls_check.py", &[&master]);
    // h2load: every request answered over HTTP/2.
    let out = Command::new("h2load")
        .args(["-n", "400", "-c", "4", "-m", "10"])
        .arg(&master)
        .output()
        .expect("h2load (Debian's nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Application protocol: h2"), "{text}");
    assert!(
        text.contains("400 succeeded, 0 failed, 0 errored"),
        "{text}"
    );
    assert!(text.contains("status codes: 400 2xx"), "{text}");

    // A live channel's LL-HLS over TLS, blocking reloads and all.
    let c = create(&s, json!({"title": "Secure"})).await;
    let cid = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let mut ff = common::live::ffmpeg_source(&s, &cid, &key, &common::live::track_mp3(), "mp3");
    wait_for(&s, &cid, "/state", "live").await;
    let (token, _) = playback(&s, &cid).await;
    llhls_check(
        &format!("{base}/hls/live/{cid}/opus-128/index.m3u8?token={token}"),
        4,
    );
    ff.stop();
}

#[cfg(feature = "http3")]
#[tokio::test(flavor = "multi_thread")]
async fn http3_serves_the_same_bytes_as_tcp() {
    use veza_stream::http3::client::H3;
    let s = dev_tls(&[]).await;
    let mut h3 = H3::connect(udp(&s), &dev_cert(&s)).await.unwrap();
    let tcp = s.client();
    let health = h3.get("/healthz", &[]).await.unwrap();
    assert_eq!(health.status, 200);

    // The control API, with its credential.
    let auth = format!("Bearer {}", s.key);
    let tracks = h3
        .get("/v1/tracks", &[("authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(tracks.status, 200);
    assert_eq!(
        h3.get("/v1/tracks", &[]).await.unwrap().headers["content-type"],
        "application/problem+json"
    );

    // A track's playlists and segments: the bytes TCP serves, Range and 304 alike.
    let (id, pb) = ready_track(&s).await;
    let id = id.as_str();
    let master = pb["master_url"].as_str().unwrap();
    let path = master.trim_start_matches(&s.url).to_string();
    let over_tcp = tcp.get(master).send().await.unwrap().bytes().await.unwrap();
    let over_h3 = h3.get(&path, &[]).await.unwrap();
    assert_eq!((over_h3.status, &over_h3.body), (200, &over_tcp));
    let media = String::from_utf8_lossy(&over_h3.body)
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap()
        .to_string();
    let media_path = format!("/hls/tracks/{id}/{media}");
    let playlist = h3.get(&media_path, &[]).await.unwrap();
    assert_eq!(playlist.status, 200);
    let segment = String::from_utf8_lossy(&playlist.body)
        .lines()
        .find(|l| l.contains(".m4s"))
        .unwrap()
        .to_string();
    let rendition = media.split('/').next().unwrap();
    let seg_path = format!("/hls/tracks/{id}/{rendition}/{segment}");
    let whole = h3.get(&seg_path, &[]).await.unwrap();
    assert_eq!(whole.status, 200);
    assert_eq!(whole.headers["content-type"], "audio/mp4");
    let part = h3
        .get(&seg_path, &[("range", "bytes=100-199")])
        .await
        .unwrap();
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole.body.slice(100..200));
    assert_eq!(
        part.headers["content-range"],
        format!("bytes 100-199/{}", whole.body.len()).as_str()
    );
    let tcp_part = tcp
        .get(format!("{}{seg_path}", s.url))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(part.body, tcp_part);
    let etag = whole.headers["etag"].to_str().unwrap().to_string();
    let again = h3
        .get(&seg_path, &[("if-none-match", &etag)])
        .await
        .unwrap();
    assert_eq!((again.status, again.body.len()), (304, 0));

    // A live channel: a blocking reload for the next part answers once it exists.
    let c = create(&s, json!({"title": "Quic"})).await;
    let cid = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let mut ff = common::live::ffmpeg_source(&s, &cid, &key, &common::live::track_mp3(), "mp3");
    wait_for(&s, &cid, "/state", "live").await;
    let (token, _) = playback(&s, &cid).await;
    let live = format!("/hls/live/{cid}/opus-128/index.m3u8?token={token}");
    let now = h3.get(&live, &[]).await.unwrap();
    assert_eq!(now.status, 200);
    let text = String::from_utf8_lossy(&now.body).to_string();
    let hint = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))
        .expect("a preload hint")
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let (msn, part) = next_part(&text);
    let blocked = h3
        .get(&format!("{live}&_HLS_msn={msn}&_HLS_part={part}"), &[])
        .await
        .unwrap();
    assert_eq!(blocked.status, 200);
    let blocked = String::from_utf8_lossy(&blocked.body).to_string();
    assert!(
        blocked.contains(hint.split('?').next().unwrap()),
        "the hinted part is in the answer:\n{blocked}"
    );
    let part_path = format!("/hls/live/{cid}/opus-128/{hint}");
    let p = h3.get(&part_path, &[]).await.unwrap();
    assert_eq!(p.status, 200);
    let tcp_part = tcp
        .get(format!("{}{part_path}", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        p.headers["content-type"],
        tcp_part.headers()["content-type"]
    );
    assert_eq!(p.body, tcp_part.bytes().await.unwrap());
    ff.stop();
}

/// The media sequence number and part index of the part after the last one listed.
fn next_part(playlist: &str) -> (u64, u64) {
    let mut msn: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut parts = 0;
    for l in playlist.lines() {
        if l.starts_with("#EXT-X-PART:") {
            parts += 1;
        } else if !l.starts_with('#') && !l.is_empty() {
            msn += 1;
            parts = 0;
        }
    }
    (msn, parts)
}

/// base64 SHA-256 of a certificate's public key (SPKI), as Chromium pins it.
fn spki_pin(cert: &Path) -> String {
    let script = format!(
        "openssl x509 -pubkey -noout -in '{}' | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
        cert.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A port free on both TCP and UDP of 127.0.0.1, for a server whose public URL names it.
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn icecast_sources_connect_over_tls() {
    let port = free_port();
    let origin = format!("https://127.0.0.1:{port}");
    let s = dev_tls(&[
        ("VEZA_SERVER__TLS_LISTEN", &format!("127.0.0.1:{port}")),
        ("VEZA_LIVE__INGEST_URL", &origin),
    ])
    .await;
    let c = create(&s, json!({"title": "Over TLS"})).await;
    let cid = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let ingest = c["ingest_url"].as_str().unwrap().to_string();
    assert_eq!(ingest, format!("{origin}/ingest/{cid}"));
    // A wrong key over TLS gets Icecast's 401, as on the plain listener.
    let out = Command::new("curl")
        .args(["-s", "--http1.1", "-D", "-", "-o", "/dev/null", "-X", "PUT"])
        .args([
            "-H",
            "Content-Type: audio/mpeg",
            "-u",
            "source:wrong",
            "--cacert",
        ])
        .arg(dev_cert(&s))
        .arg(&ingest)
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(head.contains("www-authenticate: basic"), "{head}");
    // ffmpeg's Icecast output with -tls 1, to the ingest URL the channel shows.
    let mut ff = common::live::ffmpeg_source_at(&ingest, &key, &common::live::track_mp3(), "mp3");
    let live = wait_for(&s, &cid, "/state", "live").await;
    assert!(
        live["source"]["client"]
            .as_str()
            .unwrap_or_default()
            .contains("Lavf"),
        "{live}"
    );
    let (token, _) = playback(&s, &cid).await;
    std::env::set_var("SSL_CERT_FILE", dev_cert(&s));
    llhls_check(
        &format!("{origin}/hls/live/{cid}/aac-128/index.m3u8?token={token}"),
        3,
    );
    // Browsers and HTTP/2 clients on the same port are not taken for sources.
    for (args, want) in [(&[][..], "2"), (&["--http1.1"][..], "1.1")] {
        let (code, version, head) = curl(args, &dev_cert(&s), &format!("{origin}/healthz"));
        assert_eq!((code, version.as_str()), (0, want), "{head}");
        assert!(head.contains(" 200"), "{head}");
    }
    ff.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_plays_a_track_and_a_live_channel_over_http3() {
    let port = free_port();
    let origin = format!("https://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let s = dev_tls(&[
        ("VEZA_SERVER__TLS_LISTEN", &listen),
        ("VEZA_SERVER__PUBLIC_URL", &origin),
    ])
    .await;
    assert_eq!(s.url, origin);
    // A public track, and a public channel playing it on its auto-DJ.
    let t = s
        .upload(&common::fixtures().join("track/full_track_3min_stereo_44k.mp3"))
        .await;
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(s.wait_final(&id).await["status"], "ready");
    let share = json!({"visibility": "public"});
    let (st, _, _) = s
        .call(
            "PATCH",
            &format!("/v1/tracks/{id}"),
            &s.key,
            Some(share),
            &[],
        )
        .await;
    assert_eq!(st, 200);
    let mix = json!({"title": "Rotation", "track_ids": [id]});
    let (_, _, p) = s
        .call("POST", "/v1/playlists", &s.key, Some(mix), &[])
        .await;
    let c = create(
        &s,
        json!({"title": "Quic radio", "visibility": "public", "playlist_id": p["id"]}),
    )
    .await;
    let cid = c["id"].as_str().unwrap().to_string();
    wait_for(&s, &cid, "/state", "autodj").await;

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("webapp");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/h3.mjs"))
        .arg(&origin)
        .arg(spki_pin(&dev_cert(&s)))
        .arg(format!("{origin}/play/track/{id}"))
        .arg(format!("{origin}/play/channel/{cid}"))
        .arg(&shots)
        .output()
        .expect("node");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{r}\n{}", s.log());
    for page in ["track", "channel"] {
        assert_eq!(r[page]["protocols"]["page"], "h3", "{r}");
        assert_eq!(r[page]["protocols"]["media"], json!(["h3"]), "{r}");
        assert!(r[page]["peak"].as_f64().unwrap() > 0.01, "{r}");
    }
    assert_eq!(r["consoleErrors"], json!([]), "{r}");
}
