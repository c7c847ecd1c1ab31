//! Live channels end to end, on loopback with real clients: ffmpeg and Liquidsoap as Icecast
//! sources, the kit's `llhls_check` and ffmpeg as LL-HLS listeners, two servers on one
//! PostgreSQL for the lease.

mod common;

use common::live::*;
use common::server::{Db, Server};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn an_icecast_source_goes_live_over_ll_hls() {
    let s = Server::start(Db::Sqlite, &[("VEZA_LIVE__SOURCE_TIMEOUT_SECONDS", "2")]).await;
    // Listeners may not create channels; artists may, and get the key once.
    let listener = s.token("fan", "listener");
    let (st, _, v) = s
        .call(
            "POST",
            "/v1/channels",
            &listener,
            Some(json!({"title": "x"})),
            &[],
        )
        .await;
    assert_eq!(st, 403, "{v}");
    let (st, _, v) = s
        .call(
            "POST",
            "/v1/channels",
            &s.key,
            Some(json!({"title": "x", "renditions": ["flac"]})),
            &[],
        )
        .await;
    assert_eq!(st, 422, "{v}");
    let c = create(&s, json!({"title": "Night radio", "visibility": "public"})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    assert_eq!(c["state"], "offline");
    assert_eq!(c["renditions"], json!(["aac-128", "opus-128"]));
    assert!(c["ingest_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/ingest/{id}")));
    assert!(
        channel(&s, &id).await.get("stream_key").is_none(),
        "the key is shown once"
    );
    // A public channel is readable by a listener, and listed as public.
    let (st, _, _) = s
        .call("GET", &format!("/v1/channels/{id}"), &listener, None, &[])
        .await;
    assert_eq!(st, 200);
    let (_, _, page) = s
        .call("GET", "/v1/channels?scope=public", &listener, None, &[])
        .await;
    assert_eq!(page["items"][0]["id"], id.as_str());

    // Refusals, as Icecast 2.4 answers them.
    let (line, text) = raw_source(
        &s,
        &format!("PUT /ingest/{id} HTTP/1.1\r\nContent-Type: audio/mpeg\r\n\r\n"),
        b"",
    )
    .await;
    assert!(line.starts_with("HTTP/1.1 401"), "{text}");
    assert!(
        text.contains("WWW-Authenticate: Basic realm=\"Icecast2 Server\""),
        "{text}"
    );
    let (line, _) = raw_source(&s, &put_head(&id, "wrong", Some("audio/mpeg")), b"").await;
    assert!(line.starts_with("HTTP/1.1 401"), "{line}");
    let (line, text) = raw_source(&s, &put_head(&id, &key, Some("video/mp4")), b"").await;
    assert!(
        line.starts_with("HTTP/1.1 403") && text.contains("Content-type not supported"),
        "{text}"
    );
    let (line, text) = raw_source(&s, &put_head(&id, &key, None), b"").await;
    assert!(
        line.starts_with("HTTP/1.1 403") && text.contains("No Content-type given"),
        "{text}"
    );
    assert!(text.contains("application/problem+json"), "{text}");
    let ghost = "0190a0a0-0000-7000-8000-00000000dead";
    let (line, _) = raw_source(&s, &put_head(ghost, &key, Some("audio/mpeg")), b"").await;
    assert!(line.starts_with("HTTP/1.1 404"), "{line}");

    // ffmpeg goes live.
    let mut ff = ffmpeg_source(&s, &id, &key, &track_mp3(), "mp3");
    let live = wait_for(&s, &id, "/state", "live").await;
    assert_eq!(live["source"]["codec"], "audio/mpeg");
    assert_eq!(live["source"]["name"], "Test show");
    assert_eq!(live["source"]["genre"], "Jazz");
    assert!(
        live["source"]["client"]
            .as_str()
            .unwrap()
            .starts_with("Lavf"),
        "{live}"
    );
    assert!(live["started_at"].is_string());

    // A second source on the live mount is refused as Icecast refuses it.
    let (line, text) = raw_source(&s, &format!("SOURCE /ingest/{id} HTTP/1.0\r\nAuthorization: Basic {}\r\nContent-Type: audio/mpeg\r\n\r\n", base64(&format!("source:{key}"))), b"").await;
    assert!(
        line.starts_with("HTTP/1.1 403") && text.contains("Mountpoint in use"),
        "{text}"
    );

    // Now playing through Icecast's admin/metadata, with the source's credentials.
    let meta = format!(
        "{}/admin/metadata?mount=/ingest/{id}&mode=updinfo&song=Artist%20-%20Song%20One",
        s.url
    );
    let r = s
        .client()
        .get(&meta)
        .header("authorization", format!("Basic {}", base64("source:wrong")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .client()
        .get(&meta)
        .header(
            "authorization",
            format!("Basic {}", base64(&format!("source:{key}"))),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<return>1</return>"));
    wait_for(&s, &id, "/now_playing/title", "Artist - Song One").await;

    // LL-HLS, every rendition, checked by the kit: tags, blocking reload, preload hints, parts.
    let (token, master) = playback(&s, &id).await;
    let (st, h, body) = get(&master).await;
    assert_eq!(st, 200);
    assert_eq!(h["content-type"], "application/vnd.apple.mpegurl");
    let text = String::from_utf8_lossy(&body).to_string();
    assert!(
        text.contains("CODECS=\"mp4a.40.2\"") && text.contains("CODECS=\"Opus\""),
        "{text}"
    );
    for r in ["aac-128", "opus-128"] {
        let url = format!("{}/hls/live/{id}/{r}/index.m3u8?token={token}", s.url);
        let report = llhls_check(&url, 6);
        assert_eq!(report["summary"]["failed"], 0);
    }
    let media = format!("{}/hls/live/{id}/opus-128/index.m3u8?token={token}", s.url);
    let (st, h, body) = get(&media).await;
    assert_eq!(st, 200);
    assert_eq!(h["cache-control"], "public, max-age=1");
    let text = String::from_utf8_lossy(&body).to_string();
    for tag in [
        "#EXT-X-PART-INF:PART-TARGET=0.32",
        "CAN-BLOCK-RELOAD=YES",
        "PART-HOLD-BACK=0.7",
        "#EXT-X-PRELOAD-HINT:TYPE=PART",
        "#EXT-X-RENDITION-REPORT:URI=\"../aac-128/index.m3u8?token=",
        "#EXT-X-PROGRAM-DATE-TIME:",
        "X-TITLE=\"Artist - Song One\"",
    ] {
        assert!(text.contains(tag), "{tag} missing:\n{text}");
    }
    assert!(!text.contains("#EXT-X-DISCONTINUITY") && !text.contains("#EXT-X-ENDLIST"));
    // The title is also an ID3 emsg in a part after the update.
    let parts: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("URI=\"").nth(1))
        .filter(|u| u.starts_with("part_"))
        .map(|u| u.split('"').next().unwrap())
        .collect();
    let mut emsg = false;
    for p in &parts {
        let (_, _, data) = get(&format!("{}/hls/live/{id}/opus-128/{p}", s.url)).await;
        emsg |= data.windows(4).any(|w| w == b"emsg") && data.windows(8).any(|w| w == b"Song One");
    }
    let (_, _, seg_text) = get(&media).await;
    let seg_text = String::from_utf8_lossy(&seg_text).to_string();
    for line in seg_text.lines().filter(|l| l.starts_with("seg_")) {
        let (_, _, data) = get(&format!("{}/hls/live/{id}/opus-128/{line}", s.url)).await;
        emsg |= data.windows(4).any(|w| w == b"emsg") && data.windows(8).any(|w| w == b"Song One");
    }
    assert!(emsg, "no emsg with the title in the window");
    // Delta updates leave out old segments once there are enough.
    let (_, _, body) = get(&format!("{media}&_HLS_skip=YES")).await;
    let delta = String::from_utf8_lossy(&body).to_string();
    assert!(delta.starts_with("#EXTM3U"), "{delta}");

    // ffmpeg's HLS client plays the live master: sound, not silence.
    let rms = ffmpeg_listen(&master, 4);
    assert!(rms > 0.01, "rms {rms}");

    // The spec's 400 for a request too far ahead; 404 for a part far in the future or long gone.
    let (st, _, _) = get(&format!("{media}&_HLS_msn=99999999999")).await;
    assert_eq!(st, 400);
    let (st, _, _) = get(&format!("{media}&_HLS_part=1")).await;
    assert_eq!(st, 400);
    let (st, _, _) = get(&format!("{media}&_HLS_msn=abc")).await;
    assert_eq!(st, 400);
    let (st, _, _) = get(&format!(
        "{}/hls/live/{id}/opus-128/part_99999999999_0.m4s?token={token}",
        s.url
    ))
    .await;
    assert_eq!(st, 404);
    let (st, _, _) = get(&format!(
        "{}/hls/live/{id}/opus-128/part_1_0.m4s?token={token}",
        s.url
    ))
    .await;
    assert_eq!(st, 404);
    // No token, or a token for another channel: 403 before anything is looked up.
    let (st, _, _) = get(&format!("{}/hls/live/{id}/master.m3u8", s.url)).await;
    assert_eq!(st, 403);
    let (st, _, _) = get(&format!(
        "{}/hls/live/{ghost}/master.m3u8?token={token}",
        s.url
    ))
    .await;
    assert_eq!(st, 403);

    // Listener counts: the sessions above are one HLS listener (one token).
    let c = channel(&s, &id).await;
    assert!(c["listeners"]["hls"].as_u64().unwrap() >= 1, "{c}");
    let metrics = s
        .client()
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "veza_channel_listeners{{channel=\"{id}\",protocol=\"hls\"}}"
        )),
        "{metrics}"
    );

    // Rotating the key drops the source at once; the old key no longer opens the mount.
    let (st, _, rotated) = s
        .call(
            "POST",
            &format!("/v1/channels/{id}/stream-key"),
            &s.key,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 200, "{rotated}");
    assert_ne!(rotated["stream_key"], key.as_str());
    let start = Instant::now();
    while ff.0.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "ffmpeg was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (line, _) = raw_source(&s, &put_head(&id, &key, Some("audio/mpeg")), b"").await;
    assert!(line.starts_with("HTTP/1.1 401"), "{line}");
    wait_for(&s, &id, "/state", "offline").await;

    // The outbox recorded the channel's life.
    for kind in [
        "channel.created",
        "channel.live",
        "channel.now_playing",
        "channel.updated",
        "channel.offline",
    ] {
        let n = s
            .scalar(&format!(
                "SELECT COUNT(*) FROM outbox WHERE kind = '{kind}'"
            ))
            .await;
        assert!(n >= 1, "no {kind}");
    }
    let (st, _, _) = s
        .call("DELETE", &format!("/v1/channels/{id}"), &s.key, None, &[])
        .await;
    assert_eq!(st, 204);
    let (st, _, _) = s
        .call("GET", &format!("/v1/channels/{id}"), &s.key, None, &[])
        .await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_sources_are_dropped_and_other_channels_play_on() {
    let s = Server::start(Db::Sqlite, &[("VEZA_LIVE__SOURCE_TIMEOUT_SECONDS", "1")]).await;
    let good = create(&s, json!({"title": "Steady", "renditions": ["opus-96"]})).await;
    let gid = good["id"].as_str().unwrap().to_string();
    let mut ff = ffmpeg_source(
        &s,
        &gid,
        good["stream_key"].as_str().unwrap(),
        &track_mp3(),
        "adts",
    );
    wait_for(&s, &gid, "/state", "live").await;
    let bad = create(&s, json!({"title": "Flaky"})).await;
    let bid = bad["id"].as_str().unwrap().to_string();
    let bkey = bad["stream_key"].as_str().unwrap().to_string();

    // Garbage: bytes that never decode. The server answers 200, then drops the source.
    let mut noise = vec![0u8; 256 << 10];
    let mut x = 12345u32;
    for b in noise.iter_mut() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        *b = (x >> 16) as u8;
    }
    let mut tcp = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    tcp.write_all(put_head(&bid, &bkey, Some("audio/mpeg")).as_bytes())
        .await
        .unwrap();
    let mut sent = 0;
    let closed = loop {
        if tcp.write_all(&noise[..16 << 10]).await.is_err() {
            break true;
        }
        sent += 1;
        if sent > 2000 {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(closed, "garbage was never dropped");

    // A stall: a head, a little audio, then nothing.
    let mp3 = std::fs::read(track_mp3()).unwrap();
    let mut tcp = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
    tcp.write_all(put_head(&bid, &bkey, Some("audio/mpeg")).as_bytes())
        .await
        .unwrap();
    tcp.write_all(&mp3[..64 << 10]).await.unwrap();
    let mut answer = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut answer)).await;
    assert!(ended.is_ok(), "a stalled source was never dropped");
    assert!(
        answer.starts_with(b"HTTP/1.0 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // 200 sources connecting and dropping.
    for _ in 0..200 {
        let mut tcp = tokio::net::TcpStream::connect(addr(&s)).await.unwrap();
        let _ = tcp
            .write_all(put_head(&bid, &bkey, Some("audio/mpeg")).as_bytes())
            .await;
        let _ = tcp.write_all(&mp3[..2048]).await;
        drop(tcp);
    }
    let metrics = s
        .client()
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for outcome in ["garbage", "stalled"] {
        assert!(
            metrics.contains(&format!("veza_live_sources_total{{outcome=\"{outcome}\"}}")),
            "{outcome}:\n{metrics}"
        );
    }
    // The flaky channel takes a good source again, and the steady one never stopped.
    assert_eq!(channel(&s, &gid).await["state"], "live");
    let mut ff2 = ffmpeg_source(&s, &bid, &bkey, &track_mp3(), "ogg");
    wait_for(&s, &bid, "/state", "live").await;
    let (token, _) = playback(&s, &gid).await;
    llhls_check(
        &format!("{}/hls/live/{gid}/opus-96/index.m3u8?token={token}", s.url),
        4,
    );
    ff.stop();
    ff2.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auto_dj_plays_a_playlist_and_a_source_takes_over_and_hands_back() {
    let s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_LIVE__LEASE_SECONDS", "3"),
            ("VEZA_LIVE__SOURCE_TIMEOUT_SECONDS", "2"),
        ],
    )
    .await;
    let a = ready_track(
        &s,
        &common::fixtures().join("formats/flac_16bit_44k_stereo.flac"),
    )
    .await;
    let b = ready_track(
        &s,
        &common::fixtures().join("formats/ogg_vorbis_q5_stereo_44k.ogg"),
    )
    .await;
    let (st, _, p) = s
        .call(
            "POST",
            "/v1/playlists",
            &s.key,
            Some(json!({"title": "Rotation", "track_ids": [a, b]})),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{p}");
    let c = create(
        &s,
        json!({"title": "Auto", "playlist_id": p["id"], "renditions": ["opus-128"]}),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let on = wait_for(&s, &id, "/state", "autodj").await;
    assert_eq!(
        on["now_playing"]["track_id"].as_str(),
        Some(a.as_str()),
        "{on}"
    );
    let (token, _) = playback(&s, &id).await;
    let media = format!("{}/hls/live/{id}/opus-128/index.m3u8?token={token}", s.url);
    llhls_check(&media, 4);
    let before = String::from_utf8_lossy(&get(&media).await.2).to_string();
    let first_msn: u64 = before
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .unwrap()
        .parse()
        .unwrap();

    // A live source takes over, then drops, and the auto-DJ resumes: one continuous stream.
    // ffmpeg sends no title: the source shows as its `ice-name` (the helper's "Test show"),
    // with no track, from the instant it is on air; auto-DJ track changes meanwhile do not show.
    let mut ff = ffmpeg_source(&s, &id, &key, &track_mp3(), "mp3");
    wait_for(&s, &id, "/state", "live").await;
    let np = now_playing_agrees(&s, &id, "Test show").await;
    assert!(np["now_playing"]["track_id"].is_null(), "{np}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(channel(&s, &id).await["now_playing"]["title"], "Test show");
    ff.stop();
    // It leaves: the auto-DJ's item is announced again at the switch, and the source is gone.
    let back = wait_for(&s, &id, "/state", "autodj").await;
    assert!(back["source"].is_null(), "{back}");
    let title = back["now_playing"]["title"].as_str().unwrap().to_string();
    let back = now_playing_agrees(&s, &id, &title).await;
    assert!(back["now_playing"]["track_id"].is_string(), "{back}");
    assert_ne!(back["now_playing"]["since"], np["now_playing"]["since"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = String::from_utf8_lossy(&get(&media).await.2).to_string();
    assert!(
        !after.contains("#EXT-X-DISCONTINUITY") && !after.contains("#EXT-X-ENDLIST"),
        "{after}"
    );
    let msn: Vec<u64> = after
        .lines()
        .filter_map(|l| l.strip_prefix("seg_"))
        .map(|l| l.split('.').next().unwrap().parse().unwrap())
        .collect();
    assert!(msn.first().copied().unwrap_or(u64::MAX) <= first_msn + 1 || msn.len() > 5);
    assert!(
        msn.windows(2).all(|w| w[1] == w[0] + 1),
        "segments are consecutive: {msn:?}"
    );
    llhls_check(&media, 4);
    let states: Vec<String> = sqlx_kinds(&s).await;
    assert!(
        states.iter().filter(|k| *k == "channel.live").count() >= 3,
        "{states:?}"
    );
}

async fn sqlx_kinds(s: &Server) -> Vec<String> {
    let n = s.scalar("SELECT COUNT(*) FROM outbox").await;
    let mut out = Vec::new();
    for i in 0..n {
        if let Some(k) = s
            .text(&format!(
                "SELECT kind FROM outbox ORDER BY created_at, id LIMIT 1 OFFSET {i}"
            ))
            .await
        {
            out.push(k);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channel_lives_on_one_node_of_two() {
    let a = Server::start(Db::Postgres, &[]).await;
    let data = a.dir.join("data").display().to_string();
    let media = a.dir.join("media").display().to_string();
    let b = Server::start(
        Db::Postgres,
        &[
            ("VEZA_DATABASE__URL", &a.db_url()),
            ("VEZA_SERVER__DATA_DIR", &data),
            ("VEZA_STORAGE__PATH", &media),
        ],
    )
    .await;
    assert_eq!(a.key, b.key, "both nodes share the development secrets");
    let c = create(&a, json!({"title": "Shared"})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let mut ff = ffmpeg_source(&a, &id, &key, &track_mp3(), "mp3");
    wait_for(&a, &id, "/state", "live").await;
    // The other node refuses a source with 409 and names the owner.
    let (line, text) = raw_source(&b, &put_head(&id, &key, Some("audio/mpeg")), b"").await;
    assert!(line.starts_with("HTTP/1.1 409"), "{text}");
    assert!(text.contains(&a.url), "{text}");
    // It redirects listeners to the owner, which serves them.
    let (token, _) = playback(&b, &id).await;
    let path = format!("/hls/live/{id}/master.m3u8?token={token}");
    let (st, h, _) = get(&format!("{}{path}", b.url)).await;
    assert_eq!(st, 307);
    assert_eq!(h["location"], format!("{}{path}", a.url).as_str());
    let (st, _, _) = get(&format!("{}{path}", a.url)).await;
    assert_eq!(st, 200);
    // The record on the other node names where the channel runs and shows its live status, as
    // the owner wrote it with its last lease renewal.
    let seen = wait_for(&b, &id, "/state", "live").await;
    assert_eq!(seen["node_url"], a.url.as_str(), "{seen}");
    assert_eq!(seen["source"]["codec"], "audio/mpeg", "{seen}");
    assert!(seen["started_at"].is_string(), "{seen}");
    ff.stop();
}

/// Debian's Liquidsoap sending `encoder` to a new channel, with a title inserted after a second.
fn liquidsoap(s: &Server, id: &str, key: &str, encoder: &str, title: &str) -> Proc {
    let (host, port) = addr(s)
        .split_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .unwrap();
    let script = s.dir.join(format!("radio-{id}.liq"));
    std::fs::write(
        &script,
        format!(
            "settings.init.allow_root.set(true)\n\
             settings.log.stdout.set(true)\n\
             s = mksafe(add([sine(440.), amplify(0.05, noise())]))\n\
             s = insert_metadata(s)\n\
             thread.run(delay=1., fun () -> s.insert_metadata([(\"artist\", \"Liq\"), (\"title\", \"{title}\")]))\n\
             output.icecast({encoder}, host=\"{host}\", port={port}, password=\"{key}\", mount=\"ingest/{id}\", s)\n"
        ),
    )
    .unwrap();
    Proc(
        Command::new("liquidsoap")
            .arg(&script)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("liquidsoap"),
    )
}

/// MP3 titles arrive through `/admin/metadata`; Ogg titles in-band, as a new link of a chained
/// stream whose comment header carries them.
#[tokio::test(flavor = "multi_thread")]
async fn liquidsoap_streams_and_updates_the_title() {
    let s = Server::start(Db::Sqlite, &[]).await;
    for (encoder, title) in [
        ("%mp3(bitrate=128)", "Sine Song"),
        ("%ogg(%vorbis)", "Ogg Song"),
    ] {
        let c = create(&s, json!({"title": "Liq"})).await;
        let id = c["id"].as_str().unwrap().to_string();
        let key = c["stream_key"].as_str().unwrap().to_string();
        let mut liq = liquidsoap(&s, &id, &key, encoder, title);
        let live = wait_for(&s, &id, "/state", "live").await;
        assert!(
            live["source"]["client"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .contains("liquidsoap"),
            "{live}"
        );
        now_playing_agrees(&s, &id, &format!("Liq - {title}")).await;
        let (token, _) = playback(&s, &id).await;
        llhls_check(
            &format!("{}/hls/live/{id}/aac-128/index.m3u8?token={token}", s.url),
            4,
        );
        liq.stop();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hls_js_plays_live_across_a_takeover_and_back_with_now_playing_cues() {
    let s = Server::start(Db::Sqlite, &[("VEZA_LIVE__LEASE_SECONDS", "3")]).await;
    let a = ready_track(
        &s,
        &common::fixtures().join("formats/flac_16bit_44k_stereo.flac"),
    )
    .await;
    let (st, _, p) = s
        .call(
            "POST",
            "/v1/playlists",
            &s.key,
            Some(json!({"title": "Loop", "track_ids": [a]})),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{p}");
    let c = create(&s, json!({"title": "Browser", "playlist_id": p["id"]})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let on = wait_for(&s, &id, "/state", "autodj").await;
    let track_title = on["now_playing"]["title"].as_str().unwrap().to_string();
    let (_, master) = playback(&s, &id).await;
    let browser = hls_js_live(&master, 30);
    // Takeover after 8 s with a title, hand back after 10 s of live.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut ff = ffmpeg_source(&s, &id, &key, &track_mp3(), "mp3");
    wait_for(&s, &id, "/state", "live").await;
    set_song(&s, &id, &key, "On Air").await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    ff.stop();
    wait_for(&s, &id, "/state", "autodj").await;
    let report = hls_js_report(browser).await;
    // hls.js joins within a second of the channel starting, before its first segment is whole:
    // one stall while it fills its buffer is allowed there, none across the takeover (at 8 s)
    // or the hand-back.
    let stalls = report["stall_at_s"].as_array().unwrap();
    assert!(stalls.len() <= 1, "{report}");
    assert!(stalls.iter().all(|t| t.as_f64().unwrap() < 5.0), "{report}");
    assert!(report["advanced"].as_f64().unwrap() > 20.0, "{report}");
    let titles: Vec<&str> = report["titles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(titles.contains(&"On Air"), "{report}");
    assert!(titles.contains(&track_title.as_str()), "{report}");
}
