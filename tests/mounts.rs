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
/// GStreamer's souphttpsrc.
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

    // VLC (cvlc) writes what it decodes to a WAV file. VLC refuses to run as root: it runs as
    // `nobody`, into a folder it may write.
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        shared.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let wav = shared.path().join("vlc.wav");
    let vlc = |cmd: &mut Command| {
        if running_as_root() {
            cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "env"])
                .arg(format!("HOME={}", shared.path().display()))
                .arg("cvlc");
        }
    };
    let mut cmd = Command::new(if running_as_root() { "setpriv" } else { "cvlc" });
    vlc(&mut cmd);
    let out = cmd
        .args(["-q", "--no-video", "--run-time=4", "--play-and-exit", "--sout"])
        .arg(format!(
            "#transcode{{acodec=s16l,channels=2,samplerate=48000}}:std{{access=file,mux=wav,dst={}}}",
            wav.display()
        ))
        .arg(&url)
        .output()
        .expect("cvlc");
    let rms = wav_rms(&wav);
    assert!(
        rms > 0.01,
        "vlc: RMS {rms}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

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
    drop(id);
}

/// Whether the tests run as root (VLC then runs as `nobody`).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// RMS of a WAV file, decoded by ffmpeg.
fn wav_rms(path: &std::path::Path) -> f64 {
    assert!(path.exists(), "{} was not written", path.display());
    ffmpeg_listen(path.to_str().unwrap(), 1)
}
