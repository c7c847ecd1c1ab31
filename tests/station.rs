//! Running a station, end to end with the real clock (kept short): the programme API, an event
//! starting on its instant as hls.js hears it, a recorded ffmpeg show becoming a ready track the
//! kit's `hls_check` accepts against its source, a show a kill -9 interrupted, and the history,
//! now-playing and statistics that show what happened. The programme's rules themselves are
//! tested on synthetic time in `src/live/station/tests.rs`.

mod common;

use common::live::*;
use common::server::{Db, Server};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn playlist(s: &Server, title: &str, tracks: &[&str]) -> String {
    let (st, _, p) = s
        .call(
            "POST",
            "/v1/playlists",
            &s.key,
            Some(json!({"title": title, "track_ids": tracks, "visibility": "public"})),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{p}");
    p["id"].as_str().unwrap().to_string()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn the_programme_api(db: Db) {
    let s = Server::start(db, &[]).await;
    let a = ready_track(
        &s,
        &common::fixtures().join("formats/flac_16bit_44k_stereo.flac"),
    )
    .await;
    let (morning, night) = (
        playlist(&s, "Morning", &[&a]).await,
        playlist(&s, "Night", &[&a]).await,
    );
    let c = create(&s, json!({"title": "Station", "visibility": "public"})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let path = format!("/v1/channels/{id}/schedule");
    // None yet: an empty programme at version 0.
    let (st, h, v) = s.call("GET", &path, &s.key, None, &[]).await;
    assert_eq!((st.as_u16(), v["version"].as_i64()), (200, Some(0)), "{v}");
    assert_eq!(h["etag"], "\"s0\"");
    let doc = json!({
        "timezone": "Europe/Paris",
        "default_playlist_id": night,
        "slots": [{"playlist_id": morning, "days": ["mon","tue","wed","thu","fri"], "start": "06:00", "end": "10:00", "order": "shuffle"}],
        "events": [{"track_id": a, "at": "2026-12-24T20:00:00+01:00"}]
    });
    let (st, h, v) = s
        .call(
            "PUT",
            &path,
            &s.key,
            Some(doc.clone()),
            &[("if-match", "\"s0\"")],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (h["etag"].to_str().unwrap(), v["version"].as_i64()),
        ("\"s1\"", Some(1))
    );
    assert_eq!(v["slots"][0]["order"], "shuffle");
    // A stale If-Match is refused; the programme stays.
    let (st, _, v) = s
        .call(
            "PUT",
            &path,
            &s.key,
            Some(doc.clone()),
            &[("if-match", "\"s0\"")],
        )
        .await;
    assert_eq!(st, 412, "{v}");
    // Overlapping slots are refused with a problem naming them.
    let mut bad = doc.clone();
    bad["slots"]
        .as_array_mut()
        .unwrap()
        .push(json!({"playlist_id": night, "days": ["tue"], "start": "09:00", "end": "11:00"}));
    let (st, h, v) = s.call("PUT", &path, &s.key, Some(bad), &[]).await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(h["content-type"], "application/problem+json");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("slots[1]: overlaps slots[0] from tue 09:00 to tue 10:00"),
        "{v}"
    );
    // Bad fields and unknown playlists name what is wrong.
    for (patch, word) in [
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (
            json!({"default_playlist_id": "7b0a3c3e-0000-4000-8000-000000000000"}),
            "playlist",
        ),
        (
            json!({"events": [{"at": "tomorrow", "track_id": a}]}),
            "events[0].at",
        ),
    ] {
        let mut d = doc.clone();
        for (k, v) in patch.as_object().unwrap() {
            d[k] = v.clone();
        }
        let (st, _, v) = s.call("PUT", &path, &s.key, Some(d), &[]).await;
        assert_eq!(st, 422, "{v}");
        assert!(v["detail"].as_str().unwrap().contains(word), "{v}");
    }
    let (st, _, v) = s.call("GET", &path, &s.key, None, &[]).await;
    assert_eq!((st.as_u16(), v["version"].as_i64()), (200, Some(1)));
    assert_eq!(v["timezone"], "Europe/Paris");
    // The timeline: a week ahead holds five morning slots, the default between them.
    let (st, _, v) = s
        .call(
            "GET",
            &format!("{path}/upcoming?hours=168"),
            &s.key,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let items = v["items"].as_array().unwrap();
    let slots = items.iter().filter(|i| i["kind"] == "slot").count();
    assert!((4..=6).contains(&slots), "{v}");
    assert!(items
        .iter()
        .any(|i| i["kind"] == "default" && i["playlist_id"] == night.as_str()));
    for w in items.windows(2) {
        assert!(ms(w[0]["start"].as_str().unwrap()) < ms(w[1]["start"].as_str().unwrap()));
    }
    let (st, _, _) = s
        .call(
            "GET",
            &format!("{path}/upcoming?hours=0"),
            &s.key,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 400);
    // A public channel's timeline and history are readable without credentials; its
    // programme is changed by its owner only.
    let (st, _, _) = s
        .call("GET", &format!("{path}/upcoming"), "", None, &[])
        .await;
    assert_eq!(st, 200);
    let (st, _, _) = s.call("PUT", &path, "", Some(doc.clone()), &[]).await;
    assert_eq!(st, 401);
    let other = s.token("someone-else", "artist");
    let (st, _, _) = s.call("PUT", &path, &other, Some(doc), &[]).await;
    assert_eq!(st, 403);
    // Station settings are fields of the channel.
    let (st, _, v) = s
        .call(
            "PATCH",
            &format!("/v1/channels/{id}"),
            &s.key,
            Some(
                json!({"crossfade_seconds": 4, "record_live": true, "silence_threshold_dbfs": null,
                        "interstitial": {"playlist_id": morning, "every_tracks": 3}}),
            ),
            &[],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["crossfade_seconds"].as_f64(), v["record_live"].as_bool()),
        (Some(4.0), Some(true))
    );
    assert!(v["silence_threshold_dbfs"].is_null(), "{v}");
    let (st, _, v) = s
        .call(
            "PATCH",
            &format!("/v1/channels/{id}"),
            &s.key,
            Some(json!({"crossfade_seconds": 30})),
            &[],
        )
        .await;
    assert_eq!(st, 422, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_programme_is_put_with_if_match_and_overlaps_are_refused_sqlite() {
    the_programme_api(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_programme_is_put_with_if_match_and_overlaps_are_refused_postgres() {
    the_programme_api(Db::Postgres).await;
}

/// The media playlist's now-playing date ranges: (title, start in Unix ms).
fn dateranges(playlist: &str) -> Vec<(String, i64)> {
    playlist
        .lines()
        .filter(|l| l.starts_with("#EXT-X-DATERANGE:"))
        .filter_map(|l| {
            let attr = |name: &str| {
                let at = l.find(&format!("{name}=\""))? + name.len() + 2;
                Some(l[at..at + l[at..].find('"')?].to_string())
            };
            Some((
                attr("X-COM-VEZA-TITLE").or_else(|| attr("X-TITLE"))?,
                ms(&attr("START-DATE")?),
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_starts_on_its_instant_as_hls_js_hears_it_and_the_history_shows_it() {
    // README's first command's defaults: no special configuration.
    let s = Server::start(Db::Sqlite, &[]).await;
    let rotation = ready_track(
        &s,
        &common::fixtures().join("formats/flac_16bit_44k_stereo.flac"),
    )
    .await;
    let premiere = ready_track(
        &s,
        &common::fixtures().join("formats/ogg_vorbis_q5_stereo_44k.ogg"),
    )
    .await;
    let p = playlist(&s, "Rotation", &[&rotation]).await;
    let c = create(
        &s,
        json!({"title": "Events", "playlist_id": p, "visibility": "public", "renditions": ["aac-128"]}),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    wait_for(&s, &id, "/state", "autodj").await;
    let at = now_ms() + 20_000;
    let (st, _, v) = s
        .call(
            "PUT",
            &format!("/v1/channels/{id}/schedule"),
            &s.key,
            Some(json!({"timezone": "UTC", "events": [{"track_id": premiere, "at": rfc3339(at)}]})),
            &[],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = (0, s.track(&premiere).await);
    let premiere_title = v["title"].as_str().unwrap().to_string();
    let (token, master) = playback(&s, &id).await;
    let browser = hls_js_live(&master, 32);
    // The upcoming timeline names the event while it is ahead.
    let (_, _, up) = s
        .call(
            "GET",
            &format!("/v1/channels/{id}/schedule/upcoming?hours=1"),
            "",
            None,
            &[],
        )
        .await;
    let ev = up["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "event")
        .cloned();
    assert_eq!(
        ev.as_ref().map(|e| e["track_id"].clone()),
        Some(json!(premiere)),
        "{up}"
    );
    let np: Value = s
        .call(
            "GET",
            &format!("/v1/public/channels/{id}/nowplaying"),
            "",
            None,
            &[],
        )
        .await
        .2;
    assert_eq!(np["playing_next"]["kind"], "event", "{np}");
    // Wait past the instant, then read the playlist's date ranges.
    let media = format!("{}/hls/live/{id}/aac-128/index.m3u8?token={token}", s.url);
    let start = Instant::now();
    let started = loop {
        let text = String::from_utf8_lossy(&get(&media).await.2).to_string();
        if let Some(d) = dateranges(&text)
            .into_iter()
            .find(|d| d.0 == premiere_title)
        {
            break d.1;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "the event never started:\n{text}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!("the event started {} ms after its instant", started - at);
    // Within one part (320 ms) of its instant.
    assert!(
        (started - at).abs() <= 320,
        "the event started {} ms off its instant",
        started - at
    );
    let report = hls_js_report(browser).await;
    let titles: Vec<&str> = report["titles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // Where hls.js placed the cue on the wall clock (its fragment's program date-time plus the
    // cue's offset): reported, not asserted, as it rests on hls.js's own timeline arithmetic.
    if let Some(c) = report["cues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["title"] == premiere_title.as_str())
    {
        eprintln!(
            "hls.js placed the event's cue {} ms after its instant",
            c["pdt_ms"].as_i64().unwrap_or(at) - at
        );
    }
    assert!(
        titles.contains(&premiere_title.as_str()),
        "hls.js never heard the event: {report}"
    );
    // The history records the event, and the now-playing document is whole.
    let (st, _, h) = s
        .call("GET", &format!("/v1/channels/{id}/history"), "", None, &[])
        .await;
    assert_eq!(st, 200, "{h}");
    let items = h["items"].as_array().unwrap();
    let event = items
        .iter()
        .find(|i| i["kind"] == "event")
        .unwrap_or_else(|| panic!("{h}"));
    assert_eq!(event["track_id"], json!(premiere));
    assert!(
        (ms(event["started_at"].as_str().unwrap()) - at).abs() <= 320,
        "{event}"
    );
    assert!(
        items
            .iter()
            .any(|i| i["kind"] == "track" && i["ended_at"].is_string()),
        "{h}"
    );
}

/// ffmpeg sends `seconds` of `file` in real time as MP3 and stops.
fn ffmpeg_show(s: &Server, id: &str, key: &str, file: &Path, seconds: u32, title: &str) -> Proc {
    Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re", "-t"])
            .arg(seconds.to_string())
            .arg("-i")
            .arg(file)
            .args([
                "-vn",
                "-c:a",
                "libmp3lame",
                "-b:a",
                "192k",
                "-content_type",
                "audio/mpeg",
            ])
            .args(["-ice_name", title, "-f", "mp3"])
            .arg(format!("icecast://source:{key}@{}/ingest/{id}", addr(s)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    )
}

async fn recordings(s: &Server, id: &str) -> Value {
    let (st, _, v) = s
        .call(
            "GET",
            &format!("/v1/channels/{id}/recordings"),
            &s.key,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v
}

/// Polls until the channel's newest recording is no longer recording.
async fn recorded(s: &Server, id: &str) -> Value {
    let v = poll(s, &format!("/v1/channels/{id}/recordings"), &s.key, |v| {
        v["items"][0]["state"]
            .as_str()
            .is_some_and(|st| st != "recording")
    })
    .await;
    v["items"][0].clone()
}

async fn a_recorded_show(db: Db) {
    let s = Server::start(db, &[]).await;
    let c = create(
        &s,
        json!({"title": "Shows", "record_live": true, "visibility": "public"}),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let source = track_mp3();
    let mut ff = ffmpeg_show(&s, &id, &key, &source, 12, "Night Shift");
    wait_for(&s, &id, "/state", "live").await;
    set_song(&s, &id, &key, "Artist One - First Song").await;
    // A listener on the MP3 mount, counted in the statistics by its player family.
    let listener = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-user_agent",
            "VLC/3.0.21 LibVLC/3.0.21",
            "-t",
            "6",
            "-i",
        ])
        .arg(format!("{}/listen/{id}.mp3", s.url))
        .args(["-f", "null", "-"])
        .status();
    assert!(listener.expect("ffmpeg").success());
    let _ = tokio::task::spawn_blocking(move || ff.0.wait()).await;
    let r = recorded(&s, &id).await;
    assert_eq!(r["state"], "published", "{r}\n{}", s.log());
    assert!(
        r["title"].as_str().unwrap().starts_with("Night Shift — "),
        "{r}"
    );
    let secs = r["seconds"].as_f64().unwrap();
    assert!((10.0..=13.5).contains(&secs), "{r}");
    // It becomes a ready track of the channel's owner, replayable on demand.
    let track = r["track_id"].as_str().unwrap().to_string();
    let t = s.wait_final(&track).await;
    assert_eq!(t["status"], "ready", "{t}");
    assert_eq!(t["title"], r["title"]);
    // The kit's hls_check accepts it against the first 12 s of the source file.
    let reference = s.dir.join("reference.wav");
    let cut = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-t",
            &format!("{secs:.3}"),
            "-i",
        ])
        .arg(&source)
        .arg(&reference)
        .status()
        .expect("ffmpeg");
    assert!(cut.success());
    let pb = s.playback(&track).await;
    let master = pb["master_url"].as_str().unwrap().to_string();
    let report = kit_tool(
        "hls_check.py",
        &["--reference", reference.to_str().unwrap(), &master],
    );
    eprintln!("hls_check: {}", report["summary"]);
    // Its original is FLAC with the source's titles as chapters.
    let (_, _, a) = s
        .call("GET", &format!("/v1/tracks/{track}"), &s.key, None, &[])
        .await;
    assert_eq!(a["content_type"], "audio/flac", "{a}");
    // History: the live show with its title split into artist and title.
    let (_, _, h) = s
        .call(
            "GET",
            &format!("/v1/channels/{id}/history"),
            &s.key,
            None,
            &[],
        )
        .await;
    let song = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == "First Song")
        .unwrap_or_else(|| panic!("{h}"));
    assert_eq!(
        (song["kind"].as_str(), song["artist"].as_str()),
        (Some("live"), Some("Artist One"))
    );
    // Statistics: the progressive listener, by protocol and player family, this hour.
    poll(
        &s,
        &format!("/v1/channels/{id}/stats?step=3600"),
        &s.key,
        |v| {
            v["steps"].as_array().unwrap().iter().any(|step| {
                step["protocols"]["progressive"]["peak"].as_i64() >= Some(1)
                    && step["protocols"]["progressive"]["sessions"].as_i64() >= Some(1)
                    && step["families"]["VLC"]["peak"].as_i64() >= Some(1)
            })
        },
    )
    .await;
    // On-demand plays: a session that fetched 30 s of the track counts once.
    let long = ready_track(&s, &track_mp3()).await;
    let pb = s.playback(&long).await;
    let ok = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-t", "40", "-i"])
        .arg(pb["master_url"].as_str().unwrap())
        .args(["-f", "null", "-"])
        .status()
        .expect("ffmpeg");
    assert!(ok.success());
    poll(&s, &format!("/v1/tracks/{long}/stats"), &s.key, |v| {
        v["plays"].as_i64() == Some(1)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_show_becomes_a_ready_track_and_stats_count_its_listener_sqlite() {
    a_recorded_show(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_show_becomes_a_ready_track_and_stats_count_its_listener_postgres() {
    a_recorded_show(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_show_killed_mid_way_is_published_once_after_restart() {
    let mut s = Server::start(Db::Sqlite, &[]).await;
    let c = create(&s, json!({"title": "Crash", "record_live": true})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let mut ff = ffmpeg_source(&s, &id, &key, &track_mp3(), "mp3");
    wait_for(&s, &id, "/state", "live").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    s.kill();
    ff.stop();
    s.spawn();
    let r = recorded(&s, &id).await;
    assert_eq!(r["state"], "published", "{r}\n{}", s.log());
    assert!(r["seconds"].as_f64().unwrap() >= 3.0, "{r}");
    let t = s.wait_final(r["track_id"].as_str().unwrap()).await;
    assert_eq!(t["status"], "ready", "{t}");
    // Once: a second restart publishes nothing more.
    s.kill();
    s.spawn();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        recordings(&s, &id).await["items"].as_array().unwrap().len(),
        1
    );
}

/// A WAV of `seconds` of a sine at `hz`, with `lead` and `tail` seconds of digital silence.
fn tone(dir: &Path, name: &str, hz: u32, lead: f64, seconds: f64, tail: f64) -> std::path::PathBuf {
    let out = dir.join(name);
    let ok = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!(
            "sine=frequency={hz}:sample_rate=48000:duration={seconds}"
        ))
        .arg("-af")
        .arg(format!(
            "adelay={ms}|{ms},apad=pad_dur={tail},aformat=channel_layouts=stereo",
            ms = (lead * 1000.0) as u64
        ))
        .arg(&out)
        .status()
        .expect("ffmpeg");
    assert!(ok.success());
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auto_dj_trims_silence_crossfades_and_plays_a_jingle_after_every_track() {
    let s = Server::start(Db::Sqlite, &[]).await;
    // 1.5 s of silence, 3 s of tone, 2 s of silence: 6.5 s as stored, 3 s on air.
    let song = tone(&s.dir, "song.wav", 440, 1.5, 3.0, 2.0);
    let jingle = tone(&s.dir, "jingle.wav", 880, 0.0, 1.5, 0.0);
    let (song, jingle) = (ready_track(&s, &song).await, ready_track(&s, &jingle).await);
    let (rotation, ids) = (
        playlist(&s, "Rotation", &[&song]).await,
        playlist(&s, "IDs", &[&jingle]).await,
    );
    let c = create(
        &s,
        json!({"title": "Trim", "playlist_id": rotation, "crossfade_seconds": 0.5,
               "interstitial": {"playlist_id": ids, "every_tracks": 1}, "renditions": ["opus-96"]}),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let h = poll(
        &s,
        &format!("/v1/channels/{id}/history?limit=100"),
        &s.key,
        |h| h["items"].as_array().unwrap().len() >= 7,
    )
    .await;
    let mut items: Vec<&Value> = h["items"].as_array().unwrap().iter().collect();
    items.reverse();
    let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(
        &kinds[..6],
        [
            "track",
            "interstitial",
            "track",
            "interstitial",
            "track",
            "interstitial"
        ],
        "{h}"
    );
    // Each item lasts what it holds above the threshold, less the 0.5 s crossfade into the
    // next: 2.5 s for the song (6.5 s untrimmed), 1 s for the jingle.
    for w in items.windows(2).take(5) {
        let len =
            ms(w[1]["started_at"].as_str().unwrap()) - ms(w[0]["started_at"].as_str().unwrap());
        let want = if w[0]["kind"] == "track" {
            2_500
        } else {
            1_000
        };
        assert!(
            (len - want).abs() <= 120,
            "{} lasted {len} ms, not {want}: {h}",
            w[0]["kind"]
        );
        assert_eq!(w[0]["ended_at"], w[1]["started_at"], "{h}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_store_failure_fails_the_recording_with_its_reason_not_the_channel() {
    let mut s = Server::start_s3(Db::Sqlite).await;
    let c = create(
        &s,
        json!({"title": "Fragile", "record_live": true, "visibility": "public"}),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let mut ff = ffmpeg_source(&s, &id, &key, &track_mp3(), "mp3");
    wait_for(&s, &id, "/state", "live").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.stop_storage();
    // The channel plays on while the store is gone.
    let rms = ffmpeg_listen(&format!("{}/listen/{id}.mp3", s.url), 3);
    assert!(rms > 0.01, "the mount went quiet: {rms}");
    ff.stop();
    let r = recorded(&s, &id).await;
    assert_eq!(r["state"], "failed", "{r}");
    assert!(r["reason"].as_str().unwrap().contains("storing"), "{r}");
    assert!(r["track_id"].is_null(), "{r}");
    // A new show goes live and records again as the channel's source, whatever the last one did.
    let mut ff = ffmpeg_source(&s, &id, &key, &track_mp3(), "mp3");
    wait_for(&s, &id, "/state", "live").await;
    ff.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_show_longer_than_the_maximum_goes_on_in_a_new_recording() {
    let s = Server::start(Db::Sqlite, &[("VEZA_LIVE__RECORD_MAX_SECONDS", "5")]).await;
    let c = create(&s, json!({"title": "Marathon", "record_live": true})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let mut ff = ffmpeg_show(&s, &id, &key, &track_mp3(), 12, "Marathon");
    wait_for(&s, &id, "/state", "live").await;
    let _ = tokio::task::spawn_blocking(move || ff.0.wait()).await;
    // 12 s in recordings of at most 5 s: 5, 5 and the rest, each its own track.
    let v = poll(&s, &format!("/v1/channels/{id}/recordings"), &s.key, |v| {
        let items = v["items"].as_array().unwrap();
        items.len() == 3 && items.iter().all(|r| r["state"] == "published")
    })
    .await;
    let secs: Vec<f64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seconds"].as_f64().unwrap())
        .collect();
    assert!(
        (secs[1] - 5.0).abs() < 0.05 && (secs[2] - 5.0).abs() < 0.05,
        "{v}"
    );
    assert!((1.0..=3.5).contains(&secs[0]), "{v}");
    let tracks: std::collections::HashSet<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["track_id"].as_str().unwrap())
        .collect();
    assert_eq!(tracks.len(), 3, "{v}");
}
