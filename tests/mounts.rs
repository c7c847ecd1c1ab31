//! Icecast-compatible listening end to end: the progressive mounts (`/listen/{channel}.mp3`,
//! `.aac`, `.opus`), their playlist files and `/status-json.xsl`, read by the clients radio
//! listeners use (ffmpeg, curl with `Icy-MetaData: 1`, mpv, VLC, GStreamer), with ffmpeg as the
//! live source.

mod common;

use common::live::*;
use common::server::{Db, Server};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// curl's view of a mount: the response head and up to `bytes` of the body.
fn curl(url: &str, args: &[&str], bytes: usize) -> (String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let mut child = Command::new("curl")
        .args(["-s", "--max-time", "6", "-D"])
        .arg(&head)
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    let mut body = Vec::new();
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 8192];
    while body.len() < bytes {
        match std::io::Read::read(&mut stdout, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    drop(stdout);
    let _ = child.kill();
    let _ = child.wait();
    let head = std::fs::read_to_string(&head).unwrap_or_default();
    (head.to_lowercase(), body)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(str::trim)
}

/// The ICY metadata blocks of a body read with `Icy-MetaData: 1`, and its audio bytes.
fn strip_icy(body: &[u8], metaint: usize) -> (Vec<String>, Vec<u8>) {
    let (mut titles, mut audio, mut at) = (Vec::new(), Vec::new(), 0);
    while at < body.len() {
        let n = metaint.min(body.len() - at);
        audio.extend_from_slice(&body[at..at + n]);
        at += n;
        if at >= body.len() {
            break;
        }
        let len = usize::from(body[at]) * 16;
        if len > 0 && at + 1 + len <= body.len() {
            let text = String::from_utf8_lossy(&body[at + 1..at + 1 + len]);
            titles.push(text.trim_end_matches('\0').to_string());
        }
        at += 1 + len;
    }
    (titles, audio)
}

/// Polls until the channel counts `n` listeners of its `.ext` mount.
async fn wait_listeners(s: &Server, id: &str, ext: &str, n: u64) -> Value {
    let start = Instant::now();
    loop {
        let c = channel(s, id).await;
        if c["listeners"][ext].as_u64() == Some(n) {
            return c;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{ext} listeners never became {n}: {c}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn live_channel(s: &Server, body: Value) -> (String, Proc) {
    let c = create(s, body).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let ff = ffmpeg_source(s, &id, &key, &track_mp3(), "mp3");
    wait_for(s, &id, "/state", "live").await;
    set_song(s, &id, &key, "Artist - It's Live").await;
    wait_for(s, &id, "/now_playing/title", "Artist - It's Live").await;
    (id, ff)
}

/// On the server README's first command gives (no settings), a public channel's mounts play in
/// ffmpeg under their permanent URLs, by id and by slug; curl sees Icecast's headers, ICY
/// titles every 16 000 bytes, a burst that starts on a frame, and 200 for a Range request.
#[tokio::test(flavor = "multi_thread")]
async fn a_public_channel_plays_on_every_mount_with_icy_titles() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let (id, _ff) = live_channel(
        &s,
        json!({"title": "Night Radio", "description": "All night", "visibility": "public", "slug": "night-radio"}),
    )
    .await;
    let c = channel(&s, &id).await;
    assert_eq!(c["slug"], "night-radio");
    assert_eq!(
        c["mounts"]["mp3"].as_str().unwrap(),
        format!(
            "{}/listen/night-radio.mp3",
            c["mounts"]["mp3"]
                .as_str()
                .unwrap()
                .split("/listen/")
                .next()
                .unwrap()
        )
    );
    let base = format!("http://{}", addr(&s));
    for mount in [
        "night-radio.mp3",
        "night-radio.aac",
        "night-radio.opus",
        &format!("{id}.mp3"),
    ] {
        let rms = ffmpeg_listen(&format!("{base}/listen/{mount}"), 3);
        assert!(rms > 0.01, "{mount}: RMS {rms}");
    }

    // ICY: headers, a title block after 16 000 bytes, then empty blocks.
    let (head, body) = curl(
        &format!("{base}/listen/night-radio.mp3"),
        &["-H", "Icy-MetaData: 1"],
        100_000,
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(header(&head, "content-type"), Some("audio/mpeg"));
    assert_eq!(header(&head, "icy-metaint"), Some("16000"));
    assert_eq!(header(&head, "icy-name"), Some("night radio"));
    assert_eq!(header(&head, "icy-description"), Some("all night"));
    assert_eq!(header(&head, "icy-br"), Some("128"));
    assert_eq!(header(&head, "icy-pub"), Some("1"));
    assert!(header(&head, "cache-control").unwrap().contains("no-cache"));
    assert!(
        body.len() > 64 << 10,
        "the burst and what followed: {}",
        body.len()
    );
    let (titles, audio) = strip_icy(&body, 16_000);
    assert_eq!(
        titles.first().map(String::as_str),
        Some("StreamTitle='Artist - It's Live';")
    );
    assert_eq!(
        titles.len(),
        1,
        "later blocks are empty while the title stays: {titles:?}"
    );
    assert_eq!(
        &audio[..2],
        &[0xFF, 0xFB],
        "the burst starts on an MP3 frame"
    );

    // Without Icy-MetaData: no metaint, no blocks.
    let (head, body) = curl(&format!("{base}/listen/night-radio.aac"), &[], 20_000);
    assert_eq!(header(&head, "content-type"), Some("audio/aac"));
    assert_eq!(header(&head, "icy-metaint"), None);
    assert_eq!(
        (body[0], body[1] & 0xF6),
        (0xFF, 0xF0),
        "ADTS from the first byte"
    );

    // iOS asks for the first two bytes: the stream comes whole, with 200.
    let (head, body) = curl(
        &format!("{base}/listen/night-radio.mp3"),
        &["-H", "Range: bytes=0-1", "-H", "Icy-MetaData: 1"],
        20_000,
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(header(&head, "icy-metaint").is_some());
    assert!(body.len() > 2);

    // HTTP/1.0: the body ends with the connection, not chunked.
    let (head, _) = curl(
        &format!("{base}/listen/night-radio.mp3"),
        &["--http1.0"],
        10_000,
    );
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert_eq!(header(&head, "transfer-encoding"), None, "{head}");

    // HEAD: the headers alone.
    let r = reqwest::Client::new()
        .head(format!("{base}/listen/night-radio.opus"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/ogg");
    assert!(r.bytes().await.unwrap().is_empty());

    // Playlist files name every mount.
    let (st, h, m3u) = get(&format!("{base}/listen/night-radio.m3u")).await;
    assert_eq!(st, 200);
    assert_eq!(h["content-type"], "audio/x-mpegurl");
    let m3u = String::from_utf8_lossy(&m3u).to_string();
    for ext in ["mp3", "aac", "opus"] {
        assert!(
            m3u.contains(&format!("{base}/listen/night-radio.{ext}\n")),
            "{m3u}"
        );
    }
    let (_, h, pls) = get(&format!("{base}/listen/night-radio.pls")).await;
    assert_eq!(h["content-type"], "audio/x-scpls");
    let pls = String::from_utf8_lossy(&pls).to_string();
    assert!(pls.starts_with("[playlist]\nFile1="), "{pls}");
    assert!(pls.contains("NumberOfEntries=3\nVersion=2"), "{pls}");

    // Icecast's status document lists the three mounts.
    let (st, _, status) = get(&format!("{base}/status-json.xsl")).await;
    assert_eq!(st, 200);
    let status: Value = serde_json::from_slice(&status).unwrap();
    let sources = status["icestats"]["source"]
        .as_array()
        .expect("a list")
        .clone();
    assert_eq!(sources.len(), 3, "{status}");
    assert_eq!(
        sources[0]["listenurl"],
        format!("{base}/listen/night-radio.mp3")
    );
    assert_eq!(sources[0]["server_name"], "Night Radio");
    assert_eq!(sources[0]["server_type"], "audio/mpeg");
    assert_eq!(sources[0]["title"], "Artist - It's Live");
    assert_eq!(sources[0]["bitrate"], 128);
    assert!(sources[0]["listener_peak"].as_u64().unwrap() >= 1);

    // A mount that does not exist, of a channel that does not.
    for bad in [
        "nobody.mp3",
        "night-radio.wav",
        "night-radio",
        &format!("{}.mp3", uuid::Uuid::now_v7()),
    ] {
        let (st, h, _) = get(&format!("{base}/listen/{bad}")).await;
        assert_eq!(st, 404, "{bad}");
        assert_eq!(h["content-type"], "application/problem+json");
    }
}

/// A private channel's mount needs a playback token of that channel; a listener counts in the
/// channel record while connected, and stays connected when the source drops (silence keeps the
/// stream going).
#[tokio::test(flavor = "multi_thread")]
async fn private_mounts_need_a_token_and_listeners_outlive_the_source() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let (id, mut ff) = live_channel(&s, json!({"title": "Private"})).await;
    let base = format!("http://{}", addr(&s));
    let (st, _, body) = get(&format!("{base}/listen/{id}.mp3")).await;
    assert_eq!(st, 403, "{}", String::from_utf8_lossy(&body));
    let (st, _, _) = get(&format!("{base}/listen/{id}.mp3?token=v1.nope")).await;
    assert_eq!(st, 403);
    let (token, _) = playback(&s, &id).await;
    let url = format!("{base}/listen/{id}.mp3?token={token}");
    let mut r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 200);
    let mut got = 0usize;
    while got < 64 << 10 {
        got += r.chunk().await.unwrap().expect("bytes").len();
    }
    wait_listeners(&s, &id, "mp3", 1).await;
    ff.stop();
    wait_for(&s, &id, "/state", "offline").await;
    // Past the source timeout (5 s) the stream goes on, in silence.
    let until = Instant::now() + Duration::from_secs(8);
    let mut after = 0usize;
    while Instant::now() < until {
        after += r.chunk().await.unwrap().expect("the stream goes on").len();
    }
    assert!(after >= 8 * 16_000 * 8 / 10, "{after} bytes in 8 s");
    drop(r);
    wait_listeners(&s, &id, "mp3", 0).await;
}

/// A station's URL authentication, as Icecast calls it (`listener_add`): admits a listener whose
/// mount query says `pass=open`, refuses any other; every form it was sent is kept.
async fn auth_service() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<std::collections::HashMap<String, String>>>>,
) {
    use axum::response::IntoResponse;
    type Form = std::collections::HashMap<String, String>;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Form>::new()));
    let kept = seen.clone();
    let app = axum::Router::new().route(
        "/auth",
        axum::routing::post(move |axum::Form(f): axum::Form<Form>| {
            let kept = kept.clone();
            async move {
                let admit = f.get("mount").is_some_and(|m| m.contains("pass=open"));
                kept.lock().unwrap().push(f);
                if admit {
                    ([("icecast-auth-user", "1")], "").into_response()
                } else {
                    ([("icecast-auth-message", "wrong password")], "").into_response()
                }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/auth", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, seen)
}

/// Reads a listener's body until `bytes` have come.
async fn read_some(r: &mut reqwest::Response, bytes: usize) {
    let mut got = 0usize;
    while got < bytes {
        got += r.chunk().await.unwrap().expect("bytes").len();
    }
}

/// A private channel's mounts: a listener token made for a year plays them (and not the
/// channel's HLS) until it is revoked, which also ends the stream it opened; without a token,
/// the station's URL authentication admits or refuses, as Icecast's does. Public channels are
/// listed, with their permanent mount URLs, to anyone.
#[tokio::test(flavor = "multi_thread")]
async fn listener_tokens_and_url_authentication_admit_private_listeners() {
    let (auth_url, seen) = auth_service().await;
    let s = Server::start(Db::Sqlite, &[("VEZA_LIVE__LISTENER_AUTH_URL", &auth_url)]).await;
    let (id, _ff) = live_channel(&s, json!({"title": "Members", "slug": "members"})).await;
    let base = format!("http://{}", addr(&s));
    let path = format!("/v1/channels/{id}/listen-tokens");
    for bad in [
        json!({"ttl_seconds": 31_536_001}),
        json!({"ttl_seconds": 5}),
        json!({"ttl_seconds": 60, "label": "x".repeat(201)}),
    ] {
        let (st, _, v) = s.call("POST", &path, &s.key, Some(bad), &[]).await;
        assert_eq!(st, 422, "{v}");
    }
    let (st, _, v) = s
        .call("POST", &path, &s.key, Some(json!({"ttl": 60})), &[])
        .await;
    assert_eq!(st, 400, "{v}");
    let listener = s.token("lisa", "listener");
    let (st, _, v) = s
        .call(
            "POST",
            &path,
            &listener,
            Some(json!({"ttl_seconds": 60})),
            &[],
        )
        .await;
    assert_eq!(st, 404, "another's private channel is not there: {v}");
    let (st, h, t) = s
        .call(
            "POST",
            &path,
            &s.key,
            Some(json!({"ttl_seconds": 31_536_000, "label": "kitchen speaker"})),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{t}");
    assert!(h.get("location").is_some());
    let year = |v: &Value| v.as_str().unwrap()[..4].parse::<i32>().unwrap();
    assert_eq!(year(&t["expires_at"]), year(&t["created_at"]) + 1, "{t}");
    let token = t["token"].as_str().unwrap().to_string();
    let tid = t["id"].as_str().unwrap().to_string();
    let url = t["mounts"]["mp3"].as_str().unwrap().to_string();
    assert!(
        url.ends_with(&format!("/listen/members.mp3?token={token}")),
        "{t}"
    );
    let mut r = reqwest::get(format!("{base}/listen/members.mp3?token={token}"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    read_some(&mut r, 32 << 10).await;
    wait_listeners(&s, &id, "mp3", 1).await;
    // It opens the mounts only.
    let (st, _, _) = get(&format!("{base}/hls/live/{id}/master.m3u8?token={token}")).await;
    assert_eq!(st, 403);
    let (st, _, list) = s.call("GET", &path, &s.key, None, &[]).await;
    assert_eq!(st, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["label"], "kitchen speaker");
    assert!(
        list["items"][0].get("token").is_none(),
        "shown once: {list}"
    );
    // Revoked: the open stream ends, and the token opens nothing more.
    let (st, _, v) = s
        .call("DELETE", &format!("{path}/{tid}"), &s.key, None, &[])
        .await;
    assert_eq!(st, 204, "{v}");
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = r.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the revoked token's stream ended");
    let (st, _, body) = get(&format!("{base}/listen/members.mp3?token={token}")).await;
    assert_eq!(st, 403);
    assert!(String::from_utf8_lossy(&body).contains("token-revoked"));
    let (st, _, _) = s
        .call("DELETE", &format!("{path}/{tid}"), &s.key, None, &[])
        .await;
    assert_eq!(st, 404);
    let (_, _, list) = s.call("GET", &path, &s.key, None, &[]).await;
    assert!(list["items"][0]["revoked_at"].is_string(), "{list}");

    // No token: the station's service decides, from the mount and its query.
    let mut r = reqwest::Client::new()
        .get(format!("{base}/listen/members.mp3?pass=open"))
        .header("user-agent", "Winamp/5.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    read_some(&mut r, 16 << 10).await;
    drop(r);
    let (st, _, body) = get(&format!("{base}/listen/members.mp3?pass=wrong")).await;
    assert_eq!(st, 403);
    assert!(String::from_utf8_lossy(&body).contains("listener-refused"));
    let forms = seen.lock().unwrap().clone();
    assert_eq!(forms.len(), 2, "{forms:?}");
    let f = &forms[0];
    assert_eq!(f["action"], "listener_add");
    assert_eq!(f["mount"], "/listen/members.mp3?pass=open");
    assert_eq!(f["ip"], "127.0.0.1");
    assert_eq!(f["agent"], "Winamp/5.9");

    // The directory: public channels only, newest first, paged, with their mount URLs.
    let a = create(
        &s,
        json!({"title": "Open Air", "slug": "open-air", "visibility": "public"}),
    )
    .await;
    let b = create(&s, json!({"title": "Night", "visibility": "public"})).await;
    let (st, _, page) = get(&format!("{base}/v1/public/channels?limit=1")).await;
    assert_eq!(st, 200);
    let page: Value = serde_json::from_slice(&page).unwrap();
    assert_eq!(page["items"][0]["id"], b["id"], "{page}");
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let (_, _, rest) = get(&format!(
        "{base}/v1/public/channels?limit=50&cursor={cursor}"
    ))
    .await;
    let rest: Value = serde_json::from_slice(&rest).unwrap();
    let items = rest["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "the private channel is not listed: {rest}");
    assert_eq!(items[0]["id"], a["id"]);
    assert_eq!(items[0]["state"], "offline");
    assert!(items[0]["mounts"]["mp3"]
        .as_str()
        .unwrap()
        .ends_with("/listen/open-air.mp3"));
    assert!(items[0].get("owner").is_none() && items[0].get("ingest_url").is_none());
}

/// Plain HLS in MPEG-TS, what Sonos and Alexa play: on the defaults, a public channel's
/// `master_ts.m3u8` (by slug, no token) passes the kit's checker with `--allow-ts`, plays in
/// ffmpeg, VLC and GStreamer's `playbin`, and carries now-playing as timed ID3 that ffprobe
/// reads as a `timed_id3` stream holding the title.
#[tokio::test(flavor = "multi_thread")]
async fn plain_hls_in_mpeg_ts_plays_in_ffmpeg_vlc_and_gstreamer() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let (id, _ff) = live_channel(
        &s,
        json!({"title": "Speakers", "visibility": "public", "slug": "speakers"}),
    )
    .await;
    let base = format!("http://{}/hls/live/speakers", addr(&s));
    let master = format!("{base}/master_ts.m3u8");
    // The first segment is complete 6 s after the channel went on air.
    let deadline = Instant::now() + Duration::from_secs(60);
    let media = loop {
        let (st, _, body) = get(&format!("{base}/ts/index.m3u8")).await;
        if st == 200 && String::from_utf8_lossy(&body).matches("#EXTINF").count() >= 2 {
            break String::from_utf8_lossy(&body).to_string();
        }
        assert!(Instant::now() < deadline, "no TS segments: {st}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(media.contains("#EXT-X-TARGETDURATION:6"), "{media}");
    assert!(media.contains("#EXT-X-PROGRAM-DATE-TIME:"), "{media}");
    let (st, h, text) = get(&master).await;
    assert_eq!(st, 200);
    assert_eq!(h["content-type"], "application/vnd.apple.mpegurl");
    assert!(String::from_utf8_lossy(&text).contains("CODECS=\"mp4a.40.2\""));

    // One segment: TS packets, AAC and the title as timed ID3.
    let last = media.lines().rev().find(|l| l.starts_with("seg_")).unwrap();
    let (st, h, seg) = get(&format!("{base}/ts/{last}")).await;
    assert_eq!(st, 200);
    assert_eq!(h["content-type"], "video/mp2t");
    assert!(h["cache-control"].to_str().unwrap().contains("immutable"));
    assert!(seg.len() % 188 == 0 && seg.chunks(188).all(|p| p[0] == 0x47));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seg.ts");
    std::fs::write(&file, &seg).unwrap();
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-of", "json"])
        .arg(&file)
        .output()
        .expect("ffprobe");
    let probe: Value = serde_json::from_slice(&probe.stdout).unwrap();
    let codecs: Vec<&str> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["codec_name"].as_str())
        .collect();
    assert!(
        codecs.contains(&"aac") && codecs.contains(&"timed_id3"),
        "{probe}"
    );
    let tit2 = seg
        .windows(4)
        .position(|w| w == b"TIT2")
        .expect("a TIT2 frame");
    assert!(String::from_utf8_lossy(&seg[tit2..tit2 + 40]).contains("It's Live"));

    // The kit's checker, ffmpeg, VLC and GStreamer.
    // The checker parses every segment as ISO BMFF even with `--allow-ts`, so its
    // `segments_parse_complete` fails on any TS segment; every other check must pass.
    let (_, report) = kit_report(
        "hls_check.py",
        &["--live", "--allow-ts", "--no-ffmpeg-hls", &master],
    );
    let failures: Vec<&str> = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f.as_str())
        .filter(|f| !f.starts_with("r0.segments_parse_complete"))
        .collect();
    assert!(failures.is_empty(), "{failures:?}: {report}");
    assert_eq!(
        report["summary"]["checks"].as_u64().map(|n| n > 30),
        Some(true)
    );
    let rms = ffmpeg_listen(&master, 8);
    assert!(rms > 0.01, "ffmpeg: RMS {rms}");
    let shared = tempfile::tempdir().unwrap();
    let (wav, log) = vlc_wav(&master, 8, shared.path());
    let rms = wav_rms_whole(&wav);
    assert!(rms > 0.01, "vlc: RMS {rms}: {log}");
    let wav = dir.path().join("gst.wav");
    // playbin, stopped with an interrupt after 20 s, which `-e` turns into an end of stream so
    // that the WAV file is finished.
    let out = Command::new("timeout")
        .args([
            "-k",
            "3",
            "-s",
            "INT",
            "20",
            "gst-launch-1.0",
            "-e",
            "playbin",
        ])
        .arg(format!("uri={master}"))
        .arg(format!(
            "audio-sink=audioconvert ! audio/x-raw,format=S16LE ! wavenc ! filesink location={}",
            wav.display()
        ))
        .output()
        .expect("gst-launch-1.0");
    let rms = wav_rms_whole(&wav);
    assert!(
        rms > 0.01,
        "gstreamer: RMS {rms}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = id;
}

/// Chromium plays each mount with a plain `<audio src>`, as a station's web page or a browser
/// opening the URL does: media time advances and the audio is heard.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_plays_every_mount_with_audio_src() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let (_id, _ff) = live_channel(
        &s,
        json!({"title": "Browser", "visibility": "public", "slug": "browser"}),
    )
    .await;
    for ext in ["mp3", "aac", "opus"] {
        let url = format!("http://{}/listen/browser.{ext}", addr(&s));
        let out = Command::new("node")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/browser/audio_src.mjs"
            ))
            .args([&url, "5"])
            .output()
            .expect("node");
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{ext}: {}", String::from_utf8_lossy(&out.stderr)));
        assert!(out.status.success(), "{ext}: {report}");
        assert!(
            report["advanced"].as_f64().unwrap() > 2.0,
            "{ext}: {report}"
        );
    }
}

/// 5 000 listeners connecting and dropping, 200 at a time, some after the head, some after a
/// few bytes, some at once: each gets 200 (or 503 past the cap), nothing stays counted, and a
/// listener after them plays.
#[tokio::test(flavor = "multi_thread")]
async fn five_thousand_listeners_connecting_and_dropping_leave_nothing_behind() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let (id, _ff) = live_channel(
        &s,
        json!({"title": "Churn", "visibility": "public", "slug": "churn"}),
    )
    .await;
    let target = addr(&s);
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(200));
    let mut tasks = Vec::new();
    for i in 0..5000u32 {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (target, refused) = (target.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let Ok(mut c) = tokio::net::TcpStream::connect(&target).await else {
                refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            };
            let ext = ["mp3", "aac", "opus"][i as usize % 3];
            let req =
                format!("GET /listen/churn.{ext} HTTP/1.1\r\nHost: x\r\nIcy-MetaData: 1\r\n\r\n");
            if i % 4 == 0 {
                // Drops as soon as the request is sent.
                let _ = c.write_all(req.as_bytes()).await;
                return;
            }
            if c.write_all(req.as_bytes()).await.is_err() {
                return;
            }
            let mut buf = vec![0u8; 4096];
            let n = c.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            assert!(
                head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.1 503") || n == 0,
                "{head}"
            );
            if i % 4 == 2 {
                let _ = c.read(&mut buf).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(refused.load(std::sync::atomic::Ordering::Relaxed), 0);
    for ext in ["mp3", "aac", "opus"] {
        wait_listeners(&s, &id, ext, 0).await;
    }
    let rms = ffmpeg_listen(&format!("http://{target}/listen/churn.mp3"), 2);
    assert!(rms > 0.01, "a listener after the churn plays: RMS {rms}");
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

/// GStreamer's `playbin` and `playbin3` play a live channel's LL-HLS in real time with a
/// clock-synced sink: a `level` element before `fakesink sync=true` reports the audio every
/// half second of running time, heard, for as long as it runs. (A WAV file written through
/// `wavenc ! filesink` is no measure here: `wavenc` restarts the segment at zero while the
/// buffers keep the channel's timeline, so a synced `filesink` waits that long.)
#[tokio::test(flavor = "multi_thread")]
async fn gstreamer_plays_live_ll_hls_with_a_clock_synced_sink() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let (id, _ff) = live_channel(&s, json!({"title": "GStreamer"})).await;
    // Some seconds on air first, so that the timeline does not start at the player's zero.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, master) = playback(&s, &id).await;
    for playbin in ["playbin", "playbin3"] {
        gst_plays_in_real_time(playbin, &master, 12, 10);
    }
}

/// Plays `uri` for `seconds` with GStreamer's `playbin` (or `playbin3`) into a clock-synced
/// sink, and checks that at least `half_seconds` of audio were rendered, one after another in
/// running time, and heard: a `level` element before `fakesink sync=true` reports each.
fn gst_plays_in_real_time(playbin: &str, uri: &str, seconds: u32, half_seconds: usize) {
    let out = Command::new("timeout")
        .args(["-k", "3", "-s", "INT", &seconds.to_string()])
        .args(["gst-launch-1.0", "-m", playbin])
        .arg(format!("uri={uri}"))
        .arg("audio-sink=audioconvert ! level interval=500000000 ! fakesink sync=true")
        .output()
        .expect("gst-launch-1.0");
    let log = String::from_utf8_lossy(&out.stdout);
    // running-time and the left channel's RMS (dB) of each half second rendered.
    let levels: Vec<(u64, f64)> = log
        .lines()
        .filter(|l| l.contains("level, endtime"))
        .filter_map(|l| {
            let running = l.split("running-time=(guint64)").nth(1)?;
            let running: u64 = running.split(',').next()?.parse().ok()?;
            let rms = l.split("rms=(GValueArray)< ").nth(1)?;
            let rms: f64 = rms.split(',').next()?.trim().parse().ok()?;
            Some((running, rms))
        })
        .collect();
    assert!(
        levels.len() >= half_seconds,
        "{playbin}: {} half seconds rendered: {log}",
        levels.len()
    );
    assert!(
        levels.windows(2).all(|w| w[1].0 > w[0].0),
        "{playbin}: running time moves on: {levels:?}"
    );
    let heard = levels.iter().filter(|(_, rms)| *rms > -50.0).count();
    assert!(heard * 2 >= levels.len(), "{playbin}: {levels:?}");
}

/// A listener that never reads is cut off once it is `listener_queue_bytes` behind, its
/// connection closed; one that reads is unaffected.
#[tokio::test(flavor = "multi_thread")]
async fn a_listener_that_never_reads_is_cut_off() {
    let s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_LIVE__LISTENER_QUEUE_BYTES", "16384"),
            ("VEZA_LIVE__BURST_BYTES", "0"),
        ],
    )
    .await;
    let (id, _ff) = live_channel(&s, json!({"title": "Slow", "visibility": "public"})).await;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut stuck = sock.connect(addr(&s).parse().unwrap()).await.unwrap();
    stuck
        .write_all(format!("GET /listen/{id}.aac HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut reader = reqwest::get(format!("http://{}/listen/{id}.aac", addr(&s)))
        .await
        .unwrap();
    wait_listeners(&s, &id, "aac", 2).await;
    // The stuck one goes; the reading one stays.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(reader.chunk().await.unwrap().is_some());
        let c = channel(&s, &id).await;
        if c["listeners"]["aac"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stuck listener was not cut off: {c}"
        );
    }
    // Its connection was closed: reading now drains what the kernel held, then ends.
    let mut buf = vec![0u8; 1 << 16];
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stuck.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stuck connection is closed");
    // Counted (the engine adds its mounts' drops to the metric every second).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = reqwest::get(format!("http://{}/metrics", addr(&s)))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let dropped = metrics
            .lines()
            .find_map(|l| l.strip_prefix("veza_live_consumers_dropped_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if dropped >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cut listener was never counted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The players radio listeners use play the MP3 mount and show its title: mpv, VLC and
/// GStreamer's souphttpsrc; GStreamer's playbin plays it in real time.
#[tokio::test(flavor = "multi_thread")]
async fn mpv_vlc_and_gstreamer_play_the_mp3_mount() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let (id, _ff) = live_channel(
        &s,
        json!({"title": "Players", "visibility": "public", "slug": "players"}),
    )
    .await;
    let url = format!("http://{}/listen/players.mp3", addr(&s));
    let dir = tempfile::tempdir().unwrap();

    // mpv decodes to a WAV file for 3 s, and prints the ICY title it reads.
    let wav = dir.path().join("mpv.wav");
    let out = Command::new("mpv")
        .args([
            "--no-config",
            "--no-video",
            "--msg-level=all=info",
            "--length=3",
            "--ao=pcm",
        ])
        .arg(format!("--ao-pcm-file={}", wav.display()))
        .arg(&url)
        .output()
        .expect("mpv");
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("It's Live"), "mpv shows the ICY title: {log}");
    let rms = wav_rms(&wav);
    assert!(rms > 0.01, "mpv: RMS {rms}: {log}");

    // VLC (cvlc) writes what it decodes to a WAV file.
    let shared = tempfile::tempdir().unwrap();
    let (wav, log) = vlc_wav(&url, 4, shared.path());
    let rms = wav_rms(&wav);
    assert!(rms > 0.01, "vlc: RMS {rms}: {log}");

    // GStreamer: souphttpsrc with ICY metadata, decoded; the tags show the title.
    let wav = dir.path().join("gst.wav");
    let out = Command::new("timeout")
        .args(["20", "gst-launch-1.0", "-t", "souphttpsrc"])
        .arg(format!("location={url}"))
        .args([
            "iradio-mode=true",
            "num-buffers=60",
            "!",
            "icydemux",
            "!",
            "decodebin",
            "!",
            "audioconvert",
            "!",
            "wavenc",
            "!",
            "filesink",
        ])
        .arg(format!("location={}", wav.display()))
        .output()
        .expect("gst-launch-1.0");
    let log = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{log}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        log.contains("It's Live"),
        "GStreamer reads the ICY title: {log}"
    );
    let rms = wav_rms(&wav);
    assert!(rms > 0.01, "gstreamer: RMS {rms}");
    // GStreamer's playbin plays it in real time into a clock-synced sink.
    gst_plays_in_real_time("playbin", &url, 10, 8);
    drop(id);
}

/// What VLC (`cvlc`) decodes of `url` in `seconds`, written to a WAV file in `dir`. VLC refuses
/// to run as root: it then runs as `nobody`, and `dir` must be writable by anyone.
fn vlc_wav(url: &str, seconds: u32, dir: &std::path::Path) -> (std::path::PathBuf, String) {
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let wav = dir.join("vlc.wav");
    let mut cmd = Command::new(if running_as_root() { "setpriv" } else { "cvlc" });
    if running_as_root() {
        cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "env"])
            .arg(format!("HOME={}", dir.display()))
            .arg("cvlc");
    }
    let out = cmd
        .args(["-q", "--no-video", "--play-and-exit"])
        .arg(format!("--run-time={seconds}"))
        .arg("--sout")
        .arg(format!(
            "#transcode{{acodec=s16l,channels=2,samplerate=48000}}:std{{access=file,mux=wav,dst={}}}",
            wav.display()
        ))
        .arg(url)
        .output()
        .expect("cvlc");
    (wav, String::from_utf8_lossy(&out.stderr).to_string())
}

/// Whether the tests run as root (VLC then runs as `nobody`).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// RMS of a whole WAV file: a live HLS player starts at the channel's first segment, whose
/// first second may be the silence before the source joined.
fn wav_rms_whole(path: &std::path::Path) -> f64 {
    assert!(path.exists(), "{} was not written", path.display());
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-f", "f32le", "-ac", "1", "-"])
        .output()
        .expect("ffmpeg");
    let samples: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert!(samples.len() > 48_000, "{} samples", samples.len());
    (samples.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// RMS of a WAV file's first second, decoded by ffmpeg.
fn wav_rms(path: &std::path::Path) -> f64 {
    assert!(path.exists(), "{} was not written", path.display());
    ffmpeg_listen(path.to_str().unwrap(), 1)
}
