//! The web app served by the binary: its page and files (content types, ETags, 304, 404), the
//! development sign-in (loopback, embedded defaults only), the public pages' API (short-lived
//! playback for public items only, cover art, Open Graph tags), and a person's journeys in
//! Debian's headless Chromium, each checked with axe-core:
//! - `tests/browser/app.mjs`: sign in, upload two files (one resumed after a reload), follow
//!   their packaging, play one in every codec family, seek by clicking its waveform and with the
//!   keys, open its page, share it, and play the share link signed out;
//! - `tests/browser/app_playlist.mjs`: build a playlist, reorder it by dragging through someone
//!   else's change, play it across the join, duplicate it, open its share link signed out;
//! - `tests/browser/app_live.mjs`: an artist going live from the browser while two pages listen.

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
    // The page of an item that is not public (or does not exist) is the same app, with 404.
    let r = c
        .get(format!("{}/play/track/0190", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
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
    let files: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    journey_args(s, script, &files)
}

/// As [`journey`], with any arguments between the page and the screenshot folder.
fn journey_args(s: &Server, script: &str, args: &[&str]) -> Value {
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("webapp");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/browser")
                .join(script),
        )
        .arg(format!("{}/", s.url))
        .args(args)
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

/// No serious or critical axe-core violation on any page a journey looked at.
fn accessible(r: &Value) {
    for (page, violations) in r["axe"].as_object().unwrap() {
        assert_eq!(violations, &serde_json::json!([]), "{page}: {r}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_uploads_two_files_one_resumed_after_a_reload_plays_one_and_shares_it() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let formats = common::fixtures().join("formats");
    let r = journey(
        &s,
        "app.mjs",
        &[
            formats.join("flac_16bit_44k_stereo.flac"),
            common::fixtures().join("track/full_track_3min_stereo_44k.flac"),
        ],
    );
    assert_eq!(r["signedIn"], "admin", "{r}");
    // The network dropped after the first chunk; after the reload the page lists the upload
    // with what reached the server, and choosing the file again resumes it: two uploads were
    // created in all, for two files.
    let pending = r["pending"].as_str().unwrap();
    assert!(
        pending.contains("full_track_3min_stereo_44k.flac") && !pending.contains(": 0 %"),
        "{r}"
    );
    assert_eq!(r["uploadCreations"], 2, "{r}");
    assert!(r["uploads"].as_str().unwrap().contains("(resumed)"), "{r}");
    // Progress seen live on the way to ready.
    let statuses: Vec<&str> = r["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("processing") || s.starts_with("queued")),
        "{r}"
    );
    assert_eq!(r["rows"].as_array().unwrap().len(), 2, "{r}");
    for row in r["rows"].as_array().unwrap() {
        // Title, duration, status and loudness as a person reads them.
        let row = row.as_str().unwrap();
        assert!(row.contains("ready") && row.contains("LUFS"), "{row}");
    }
    assert_eq!(r["miniWaves"], 2, "{r}");
    for family in ["aac", "opus", "flac"] {
        let p = &r["played"][family];
        assert!(p["advanced"].as_f64().unwrap() > 1.0, "{family}: {r}");
        assert!(p["peak"].as_f64().unwrap() > 0.01, "{family}: {r}");
        assert!(p["bitrate"].as_str().unwrap().ends_with("kb/s"), "{r}");
    }
    // The keys step and pause; a click at the middle of the waveform seeks to the middle.
    assert!(r["keys"]["stepped"].as_f64().unwrap() > 4.0, "{r}");
    assert_eq!(r["keys"]["paused"], true, "{r}");
    let (duration, after) = (
        r["seek"]["duration"].as_f64().unwrap(),
        r["seek"]["after"].as_f64().unwrap(),
    );
    assert!((after - duration / 2.0).abs() < duration / 10.0, "{r}");
    // The track's page: its analysis and its three renditions.
    let analysis = r["analysis"].as_str().unwrap();
    assert!(
        analysis.contains("flac in flac") && analysis.contains("LUFS"),
        "{r}"
    );
    assert_eq!(r["renditions"].as_array().unwrap().len(), 3, "{r}");
    // Shared: the link plays signed out, and carries its Open Graph tags.
    let share = r["share"].as_str().unwrap();
    assert!(share.starts_with(&format!("{}/play/track/", s.url)), "{r}");
    let og: Vec<(String, String)> = serde_json::from_value(r["openGraph"].clone()).unwrap();
    // Titled from its tags, not its file name.
    assert_eq!(r["title"], "Fixture Track One", "{r}");
    assert!(
        og.contains(&("og:title".into(), "Fixture Track One".into())),
        "{r}"
    );
    assert!(og.contains(&("og:type".into(), "music.song".into())), "{r}");
    assert!(og.contains(&("og:url".into(), share.into())), "{r}");
    assert_eq!(r["publicSignedIn"], false, "{r}");
    assert!(r["publicPlayed"]["peak"].as_f64().unwrap() > 0.01, "{r}");
    assert!(r["phoneOverflow"].as_f64().unwrap() <= 0.0, "{r}");
    accessible(&r);
    assert_eq!(r["consoleErrors"], serde_json::json!([]), "{r}");
    for shot in r["screenshots"].as_array().unwrap() {
        assert!(std::fs::metadata(shot.as_str().unwrap()).unwrap().len() > 1000);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_builds_a_playlist_reorders_it_through_a_conflict_and_plays_it_across_the_join() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let synth = common::fixtures().join("synth");
    for f in [
        "chords_pluck_progression_stereo_44k.flac",
        "arpeggio_pan_left_to_right_44k.flac",
    ] {
        let t = s.upload(&synth.join(f)).await;
        let t = s.wait_final(t["id"].as_str().unwrap()).await;
        assert_eq!(t["status"], "ready", "{t}");
    }
    let (first, second) = (
        "chords_pluck_progression_stereo_44k",
        "arpeggio_pan_left_to_right_44k",
    );
    let listener = s.token("lena", "listener");
    let r = journey_args(&s, "app_playlist.mjs", &[first, second, &listener]);
    assert_eq!(r["added"], serde_json::json!([first, second]), "{r}");
    assert_eq!(r["dragged"], serde_json::json!([second, first]), "{r}");
    // Someone else's change first: the page says so, with the server's problem, and shows it.
    assert!(
        r["conflict"]
            .as_str()
            .unwrap()
            .contains("Someone else changed"),
        "{r}"
    );
    // In plain words, not the status's name.
    assert_eq!(r["problem"], "Someone changed this meanwhile", "{r}");
    assert_eq!(r["movedAgain"], serde_json::json!([first, second]), "{r}");
    assert_eq!(r["afterRemove"], serde_json::json!([first, second]), "{r}");
    // One stream across the join: the title changes, and it plays on, audible, past it.
    assert_eq!(r["join"]["titleAfter"], second, "{r}");
    assert!(r["join"]["from"].as_f64().unwrap() < 8.0, "{r}");
    assert!(r["join"]["to"].as_f64().unwrap() > 9.0, "{r}");
    assert!(r["join"]["peakAfter"].as_f64().unwrap() > 0.01, "{r}");
    assert_eq!(
        r["duplicate"]["entries"],
        serde_json::json!([first, second]),
        "{r}"
    );
    assert!(r["publicPlayed"]["peak"].as_f64().unwrap() > 0.01, "{r}");
    assert_eq!(r["publicPlayed"]["chapters"], 2, "{r}");
    // A listener: music to discover, public playlists to play, nothing to upload or edit.
    let l = &r["listener"];
    assert_eq!(l["role"], "listener", "{r}");
    assert_eq!(
        l["sections"],
        serde_json::json!(["Discover", "Playlists", "Channels"]),
        "{r}"
    );
    assert_eq!(l["playlists"], serde_json::json!(["Road trip"]), "{r}");
    assert_eq!(
        (
            l["canCreate"].as_u64(),
            l["canEdit"].as_u64(),
            l["canDuplicate"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{r}"
    );
    accessible(&r);
    assert_eq!(r["consoleErrors"], serde_json::json!([]), "{r}");
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
    // Its share link, signed out: live, audible, with its Open Graph type.
    assert!(r["public"]["peak"].as_f64().unwrap() > 0.01, "{r}");
    assert_eq!(r["public"]["signedIn"], false, "{r}");
    assert_eq!(r["public"]["og"], "music.radio_station", "{r}");
    // Live, its page says so plainly.
    assert_eq!(r["liveBadge"], "LIVE", "{r}");
    accessible(&r);
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

#[tokio::test(flavor = "multi_thread")]
async fn public_items_play_without_sign_in_and_private_ones_are_not_found() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let c = s.client();
    // A track with cover art, private at first.
    let t = s
        .upload(&common::fixtures().join("formats/flac_tags_picture_16bit_44k.flac"))
        .await;
    let id = t["id"].as_str().unwrap().to_string();
    let t = s.wait_final(&id).await;
    assert_eq!(
        (t["status"].as_str(), t["visibility"].as_str()),
        (Some("ready"), Some("private")),
        "{t}"
    );
    let page = format!("{}/play/track/{id}", s.url);
    assert_eq!(t["links"]["page"], page.as_str());
    let public = |path: String| c.post(format!("{}/v1/public/{path}", s.url)).send();
    let r = public(format!("tracks/{id}/playback")).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = c.get(&page).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.text().await.unwrap().contains("og:title"));

    // Only its owner (or an admin) shares it.
    let other = s.token("someone-else", "artist");
    let track = format!("/v1/tracks/{id}");
    let (st, _, _) = s
        .call(
            "PATCH",
            &track,
            &other,
            Some(serde_json::json!({"visibility": "public"})),
            &[],
        )
        .await;
    assert_eq!(st, 403);
    let (st, _, v) = s
        .call(
            "PATCH",
            &track,
            &s.key,
            Some(serde_json::json!({"visibility": "loud"})),
            &[],
        )
        .await;
    assert!(st == 400 || st == 422, "{st} {v}");
    let change = serde_json::json!({"visibility": "public", "title": "Cover <Song> & Co"});
    let (st, _, v) = s.call("PATCH", &track, &s.key, Some(change), &[]).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["visibility"].as_str(), v["title"].as_str()),
        (Some("public"), Some("Cover <Song> & Co"))
    );

    // Now anyone gets a playback token, short-lived: the public TTL past the track's end.
    let r = public(format!("tracks/{id}/playback")).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["title"], "Cover <Song> & Co");
    let expires = humantime::parse_rfc3339(v["playback"]["expires_at"].as_str().unwrap()).unwrap();
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((590..=700).contains(&left), "{left} s: {v}");
    let master = v["playback"]["master_url"].as_str().unwrap();
    let r = c.get(master).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().starts_with("#EXTM3U"));
    // Its cover art, for link previews, and the Open Graph tags of its page, escaped.
    let cover = v["cover_url"].as_str().unwrap();
    let r = c.get(cover).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("image/"));
    assert_eq!(r.headers()["cache-control"], "public, max-age=3600");
    assert!(r.bytes().await.unwrap().len() > 100);
    let r = c.get(&page).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<meta property=\"og:title\" content=\"Cover &lt;Song&gt; &amp; Co\">"),
        "{html}"
    );
    assert!(
        html.contains(&format!("<meta property=\"og:image\" content=\"{cover}\">")),
        "{html}"
    );
    assert!(
        html.contains("<title>Cover &lt;Song&gt; &amp; Co · Veza Stream</title>"),
        "{html}"
    );
    assert_eq!(html.matches("<title>").count(), 1, "{html}");

    // A public playlist of it plays too; a private one does not, nor does its cover.
    let mix = serde_json::json!({"title": "Mix", "visibility": "public", "track_ids": [id]});
    let (st, _, p) = s
        .call("POST", "/v1/playlists", &s.key, Some(mix), &[])
        .await;
    assert_eq!(st, 201, "{p}");
    let pid = p["id"].as_str().unwrap();
    let r = public(format!("playlists/{pid}/playback")).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["playback"]["chapters"][0]["title"], "Cover <Song> & Co",
        "{v}"
    );
    let private = serde_json::json!({"visibility": "private"});
    let (st, _, _) = s
        .call(
            "PATCH",
            &format!("/v1/playlists/{pid}"),
            &s.key,
            Some(private),
            &[],
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        public(format!("playlists/{pid}/playback"))
            .await
            .unwrap()
            .status(),
        404
    );
    let r = c
        .get(format!("{}/v1/public/playlists/{pid}/cover", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A public channel: playback and its live state, signed out.
    let ch = common::live::create(
        &s,
        serde_json::json!({"title": "Radio", "visibility": "public"}),
    )
    .await;
    let cid = ch["id"].as_str().unwrap();
    let r = public(format!("channels/{cid}/playback")).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["playback"]["master_url"].as_str().unwrap().contains(cid),
        "{v}"
    );
    let mut r = c
        .get(format!("{}/v1/public/channels/{cid}/events", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let first = r.chunk().await.unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&first).contains("event: state"),
        "{first:?}"
    );
    let r = c
        .get(format!("{}/play/channel/{cid}", s.url))
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("music.radio_station"));
    // Bad kinds and ids are plain 404s.
    assert_eq!(
        public("tracks/nope/playback".into())
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        c.get(format!("{}/play/album/{id}", s.url))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Who the credential is, for the app's views.
    let r = c
        .get(format!("{}/v1/me", s.url))
        .bearer_auth(s.token("lena", "listener"))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["subject"].as_str(), v["role"].as_str()),
        (Some("lena"), Some("listener"))
    );
    assert_eq!(
        c.get(format!("{}/v1/me", s.url))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

/// The listener's paths that broke (issue 23), through `tests/browser/app_listen.mjs`: LL-HLS
/// chosen on an offline channel waits and starts when ffmpeg goes live; WebRTC then LL-HLS
/// again both play; space on a track's focused native control toggles once; a rejected
/// upload's page says why with no retry; at 375 px nothing overflows sideways.
#[tokio::test(flavor = "multi_thread")]
async fn a_listener_waits_for_a_channel_switches_protocols_and_reads_a_failure_on_a_phone() {
    use common::live::{create, ffmpeg_source, track_mp3};
    let s = Server::start(Db::Sqlite, &[]).await;
    let ready = s
        .upload(&common::fixtures().join("formats/flac_16bit_44k_stereo.flac"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rejected = s
        .upload(&common::fixtures().join("edge/png_renamed.wav"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.wait_final(&ready).await["status"], "ready");
    let failed = s.wait_final(&rejected).await;
    assert_eq!(failed["status"], "failed");
    s.wait_objects_gone(&rejected).await;
    assert_eq!(s.track(&rejected).await["retryable"], false);
    let c = create(&s, serde_json::json!({"title": "Later"})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("webapp");
    std::fs::create_dir_all(&shots).unwrap();
    let marker = shots.join(format!("waiting-{id}"));
    let _ = std::fs::remove_file(&marker);
    let node = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/app_listen.mjs"))
        .arg(format!("{}/", s.url))
        .args([&id, &rejected, &ready])
        .arg(&shots)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node");
    // The page waits on the offline channel; then the source goes live.
    let start = std::time::Instant::now();
    while !marker.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the page never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let _ff = ffmpeg_source(&s, &id, &key, &track_mp3(), "mp3");
    let out = tokio::task::spawn_blocking(move || node.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    assert!(out.status.success(), "{r}\n{}", s.log());
    assert!(r["waiting"].as_str().unwrap().contains("offline"), "{r}");
    for heard in ["hlsAfterWaiting", "webrtc", "hlsAfterWebrtc"] {
        assert!(r[heard]["peak"].as_f64().unwrap() > 0.01, "{heard}: {r}");
    }
    assert_ne!(r["space"]["before"], r["space"]["after"], "{r}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains(failed["error"].as_str().unwrap()),
        "{r}"
    );
    assert_eq!(
        (r["trackRetry"].as_u64(), r["libraryRetry"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    for (page, px) in r["narrow"].as_object().unwrap() {
        assert!(
            px.as_i64().unwrap() <= 0,
            "{page} overflows by {px} px: {r}"
        );
    }
    assert_eq!(r["consoleErrors"], serde_json::json!([]), "{r}");
}

/// The web app as a music product (`tests/browser/app_music.mjs`), on the embedded defaults:
/// accounts, titles and covers from tags, the queue across sections, search-as-you-type by a
/// listener, the embeds framed by another origin through oEmbed, and password guessing refused.
#[tokio::test(flavor = "multi_thread")]
async fn accounts_tags_a_queue_search_and_embeds_in_the_browser() {
    let s = Server::start(Db::Sqlite, &[]).await;
    let f = common::fixtures();
    let r = journey(
        &s,
        "app_music.mjs",
        &[
            f.join("formats/mp3_id3v2_apic_stereo_44k.mp3"),
            f.join("formats/flac_tags_picture_16bit_44k.flac"),
            f.join("track/full_track_3min_stereo_44k.mp3"),
        ],
    );
    assert_eq!(r["consoleErrors"], serde_json::json!([]), "{r}");
    accessible(&r);
    // Sign-up made the first account, on the embedded defaults, an admin named by the account.
    assert_eq!(r["signedUp"], "Zoë Keating", "{r}");
    assert_eq!(r["signedInAgain"], "Zoë Keating", "{r}");
    assert!(
        r["storedCredential"].is_null(),
        "the cookie is the session: {r}"
    );
    assert!(
        r["wrongPassword"]
            .as_str()
            .unwrap()
            .contains("Wrong email or password"),
        "{r}"
    );
    // Tags: every row has its artist and its cover; the 3-minute track's album and year.
    for row in r["rows"].as_array().unwrap() {
        assert!(
            row["artist"]
                .as_str()
                .unwrap()
                .starts_with("Fixture Generator"),
            "{r}"
        );
        assert_eq!(row["cover"], true, "{r}");
    }
    assert_eq!(r["detailsBefore"]["album"], "Audio Fixtures", "{r}");
    assert_eq!(r["detailsBefore"]["year"], "2024", "{r}");
    assert_eq!(r["genreSaved"], "Ambient", "{r}");
    // The queue plays on through every section, in the order asked for.
    for q in r["queue"].as_array().unwrap() {
        assert!(
            q["after"].as_f64().unwrap() > q["before"].as_f64().unwrap(),
            "{r}"
        );
        assert_eq!(q["title"], "Fixture Track One", "{r}");
    }
    let order = r["queueOrder"].as_array().unwrap();
    assert_eq!(order.len(), 3, "{r}");
    assert_eq!(order[0], "Fixture Track One", "{r}");
    assert_ne!(r["afterNext"], r["afterPrevious"], "{r}");
    assert_eq!(r["afterPrevious"], "Fixture Track One", "{r}");
    assert!(
        r["documentTitle"]
            .as_str()
            .unwrap()
            .contains("Fixture Track One"),
        "{r}"
    );
    assert_eq!(r["mediaSession"]["title"], "Fixture Track One", "{r}");
    assert_eq!(r["mediaSession"]["artwork"], 1, "{r}");
    assert_ne!(
        r["space"]["before"], r["space"]["after"],
        "space toggles once: {r}"
    );
    // The listener found it by a word of its title and by its artist, and heard it.
    assert!(
        r["search"]["title"]
            .as_str()
            .unwrap()
            .contains("Fixture Track One"),
        "{r}"
    );
    assert!(
        r["search"]["artist"]
            .as_str()
            .unwrap()
            .contains("Zoë Keating"),
        "{r}"
    );
    assert!(
        !r["search"]["title"]
            .as_str()
            .unwrap()
            .contains("Fixture Clip"),
        "private: {r}"
    );
    assert!(r["listenerPlayed"]["peak"].as_f64().unwrap() > 0.01, "{r}");
    // oEmbed for each kind, framed by another origin; the track plays in its frame.
    for o in r["oembed"].as_array().unwrap() {
        assert_eq!(
            (o["status"].as_u64(), o["type"].as_str()),
            (Some(200), Some("rich")),
            "{r}"
        );
    }
    assert_eq!(r["frames"].as_array().unwrap().len(), 3, "{r}");
    assert!(r["embedPlayed"]["advanced"].as_f64().unwrap() > 1.0, "{r}");
    // The channel plays in the bar from one Play (WebRTC here, where it connects), live.
    assert!(r["channel"]["peak"].as_f64().unwrap() > 0.01, "{r}");
    assert_eq!(r["channel"]["over"], "webrtc", "{r}");
    assert_eq!(r["barTitle"], "Night Radio", "{r}");
    // Its station page: now playing, what played, the week's programme, links for players.
    assert_eq!(r["programme"], 200, "{r}");
    assert!(
        !r["station"]["history"].as_array().unwrap().is_empty(),
        "{r}"
    );
    assert!(
        !r["station"]["schedule"].as_array().unwrap().is_empty(),
        "{r}"
    );
    let links = r["station"]["links"].as_array().unwrap();
    assert!(
        links.iter().any(|l| l.as_str().unwrap().ends_with(".m3u")),
        "{r}"
    );
    assert!(
        links.iter().any(|l| l.as_str().unwrap().ends_with(".pls")),
        "{r}"
    );
    // The owner's statistics count that listening.
    assert!(r["stats"].as_str().unwrap().starts_with("Peak "), "{r}");
    // Five wrong passwords for one account (the journey's own mistake earlier is one of them,
    // unless a minute refilled it), then refused, the right one included, in plain words.
    let guesses = r["guesses"].as_array().unwrap();
    for g in &guesses[..4] {
        assert_eq!(g["status"], 401, "{r}");
    }
    assert_eq!(guesses[5]["status"], 429, "{r}");
    assert!(
        guesses[5]["shown"]
            .as_str()
            .unwrap()
            .contains("Too many attempts"),
        "{r}"
    );
    assert_eq!(r["rightAfterGuessing"]["status"], 429, "{r}");
    for (screen, px) in r["overflow"].as_object().unwrap() {
        assert!(
            px.as_i64().unwrap() <= 0,
            "{screen} is wider than a phone: {r}"
        );
    }
}
