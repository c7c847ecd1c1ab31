//! Playlists against the real binary, on SQLite and on PostgreSQL: ordering, duplication,
//! If-Match, Idempotency-Key, entries whose track went away, their events, and playback of a whole
//! playlist as one HLS stream (ffmpeg and hls.js in Chromium).

mod common;

use common::fixtures;
use common::server::{Db, Server};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const TRACKS: [&str; 3] = [
    "formats/flac_16bit_44k_stereo.flac",
    "formats/wav_pcm16_stereo_44k.wav",
    "formats/mp3_cbr128_stereo_44k.mp3",
];

async fn ready(s: &Server, who: &str, rel: &str) -> (String, f64) {
    let t = s.upload_as(&fixtures().join(rel), who).await;
    let id = t["id"].as_str().unwrap().to_string();
    let t = s.wait_final(&id).await;
    assert_eq!(t["status"], "ready", "{t}");
    (id, t["analysis"]["duration_seconds"].as_f64().unwrap())
}

fn entry_tracks(p: &Value) -> Vec<String> {
    p["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["track_id"].as_str().unwrap().to_string())
        .collect()
}

fn entry_ids(p: &Value) -> Vec<String> {
    p["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry_id"].as_str().unwrap().to_string())
        .collect()
}

async fn editing(db: Db) {
    let s = Server::start(db, &[]).await;
    let alice = s.token("alice", "artist");
    let (a, _) = ready(&s, &alice, "formats/wav_pcm16_mono_16k.wav").await;
    let (b, _) = ready(&s, &alice, "formats/mp3_mono_22k.mp3").await;
    let (c, _) = ready(&s, &alice, "formats/wav_pcm8_unsigned_mono_22k.wav").await;

    // Create, with an Idempotency-Key: the same request again replays the first answer and
    // creates nothing; another body under the same key is refused.
    let body = json!({"title": "Road trip", "track_ids": [a, b]});
    let key = [("idempotency-key", "create-1")];
    let (st, h1, p) = s
        .call("POST", "/v1/playlists", &alice, Some(body.clone()), &key)
        .await;
    assert_eq!(st, 201);
    let (st, h2, again) = s
        .call("POST", "/v1/playlists", &alice, Some(body.clone()), &key)
        .await;
    assert_eq!(st, 201);
    assert_eq!(again, p);
    assert_eq!(h1["location"], h2["location"]);
    assert_eq!(h2["idempotent-replayed"], "true");
    let (st, _, problem) = s
        .call(
            "POST",
            "/v1/playlists",
            &alice,
            Some(json!({"title": "Other"})),
            &key,
        )
        .await;
    assert_eq!(st, 422);
    assert_eq!(
        problem["type"],
        "https://veza.stream/problems/idempotency-key-reused"
    );
    // Keys belong to their subject: bob may use the same key for his own request.
    let bob = s.token("bob", "artist");
    let (st, _, _) = s
        .call(
            "POST",
            "/v1/playlists",
            &bob,
            Some(json!({"title": "B"})),
            &key,
        )
        .await;
    assert_eq!(st, 201);
    let mine = s.call("GET", "/v1/playlists", &alice, None, &[]).await.2;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);

    let id = p["id"].as_str().unwrap().to_string();
    let path = format!("/v1/playlists/{id}");
    assert_eq!(h1["etag"], "\"v1\"");
    assert_eq!(entry_tracks(&p), [a.clone(), b.clone()]);

    // Append, insert at a position, move, remove: each bumps the version.
    let (st, h, p) = s
        .call(
            "POST",
            &format!("{path}/tracks"),
            &alice,
            Some(json!({"track_id": c})),
            &[("if-match", "\"v1\"")],
        )
        .await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(h["etag"], "\"v2\"");
    assert_eq!(entry_tracks(&p), [a.clone(), b.clone(), c.clone()]);
    let (_, _, p) = s
        .call(
            "POST",
            &format!("{path}/tracks"),
            &alice,
            Some(json!({"track_id": a, "position": 1})),
            &[],
        )
        .await;
    assert_eq!(
        entry_tracks(&p),
        [a.clone(), a.clone(), b.clone(), c.clone()]
    );
    let ids = entry_ids(&p);
    let (st, _, p) = s
        .call(
            "PATCH",
            &format!("{path}/tracks/{}", ids[3]),
            &alice,
            Some(json!({"position": 0})),
            &[],
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        entry_tracks(&p),
        [c.clone(), a.clone(), a.clone(), b.clone()]
    );
    assert_eq!(entry_ids(&p)[0], ids[3], "a moved entry keeps its id");
    let (st, _, p) = s
        .call(
            "DELETE",
            &format!("{path}/tracks/{}", ids[1]),
            &alice,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(entry_tracks(&p), [c.clone(), a.clone(), b.clone()]);
    let (st, _, _) = s
        .call(
            "DELETE",
            &format!("{path}/tracks/{}", ids[1]),
            &alice,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 404);
    // Replace the whole order; entries of tracks that stay keep their ids.
    let before = entry_ids(&p);
    let (st, h, p) = s
        .call(
            "PUT",
            &format!("{path}/tracks"),
            &alice,
            Some(json!({"track_ids": [b, c]})),
            &[],
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(entry_tracks(&p), [b.clone(), c.clone()]);
    assert_eq!(entry_ids(&p), [before[2].clone(), before[0].clone()]);
    let version = p["version"].as_i64().unwrap();
    assert_eq!(h["etag"], format!("\"v{version}\"").as_str());

    // A lost update: a change made against an old ETag is refused with 412 and changes nothing.
    let stale = "\"v1\"";
    for (method, p2, body) in [
        ("PATCH", path.clone(), Some(json!({"title": "lost"}))),
        (
            "PUT",
            format!("{path}/tracks"),
            Some(json!({"track_ids": []})),
        ),
        ("DELETE", path.clone(), None),
    ] {
        let (st, _, problem) = s
            .call(method, &p2, &alice, body, &[("if-match", stale)])
            .await;
        assert_eq!(st, 412, "{method} {p2}");
        assert_eq!(
            problem["type"],
            "https://veza.stream/problems/precondition-failed"
        );
    }
    let current = format!("\"v{version}\"");
    let (st, h, p) = s
        .call(
            "PATCH",
            &path,
            &alice,
            Some(json!({"title": "Road trip 2", "visibility": "public", "description": "d"})),
            &[("if-match", &current)],
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        (p["title"].as_str(), p["visibility"].as_str()),
        (Some("Road trip 2"), Some("public"))
    );
    assert_eq!(entry_tracks(&p), [b.clone(), c.clone()]);
    let etag = h["etag"].to_str().unwrap().to_string();

    // Bad input: clear 400 and 422 answers.
    for (method, p2, body, want) in [
        ("PATCH", path.clone(), json!({"title": ""}), 422),
        ("PATCH", path.clone(), json!({"colour": "red"}), 400),
        (
            "PUT",
            format!("{path}/tracks"),
            json!({"track_ids": "x"}),
            400,
        ),
        (
            "POST",
            format!("{path}/tracks"),
            json!({"track_id": "nope"}),
            422,
        ),
    ] {
        let (st, h, _) = s.call(method, &p2, &alice, Some(body), &[]).await;
        assert_eq!(st, want, "{method} {p2}");
        assert_eq!(h["content-type"], "application/problem+json");
    }

    // Duplicate: a private copy owned by the caller, with new entry ids.
    let (st, _, copy) = s
        .call(
            "POST",
            &format!("{path}/duplicate"),
            &bob,
            Some(json!({"title": "Bob's trip"})),
            &[],
        )
        .await;
    assert_eq!(st, 201);
    assert_eq!(copy["owner"], "bob");
    assert_eq!(copy["visibility"], "private");
    assert_eq!(entry_tracks(&copy), [b.clone(), c.clone()]);
    assert!(entry_ids(&copy).iter().all(|e| !entry_ids(&p).contains(e)));

    // An entry whose track is deleted stays, shown as deleted, and playback leaves it out.
    assert_eq!(s.delete(&c).await, 204);
    let (st, h, p) = s.call("GET", &path, &alice, None, &[]).await;
    assert_eq!(st, 200);
    assert_eq!(h["etag"], etag.as_str());
    assert_eq!(p["entries"][1]["status"], "deleted");
    assert_eq!(p["entries"][1]["playable"], false);
    assert_eq!(p["entries"][1]["title"], Value::Null);
    assert_eq!(p["playable_count"], 1);
    let (st, _, play) = s
        .call("POST", &format!("{path}/playback"), &alice, None, &[])
        .await;
    assert_eq!(st, 200, "{play}");
    assert_eq!(play["chapters"].as_array().unwrap().len(), 1);
    assert_eq!(play["skipped"][0]["status"], "deleted");
    // A failed track likewise.
    let bad = s
        .upload_as(&fixtures().join("edge/random_bytes.mp3"), &alice)
        .await;
    let bad = bad["id"].as_str().unwrap().to_string();
    assert_eq!(s.wait_final(&bad).await["status"], "failed");
    let (st, _, only_bad) = s
        .call(
            "POST",
            "/v1/playlists",
            &alice,
            Some(json!({"title": "Broken", "track_ids": [bad]})),
            &[],
        )
        .await;
    assert_eq!(st, 201, "{only_bad}");
    assert_eq!(only_bad["entries"][0]["status"], "failed");
    let (st, _, problem) = s
        .call(
            "POST",
            &format!(
                "/v1/playlists/{}/playback",
                only_bad["id"].as_str().unwrap()
            ),
            &alice,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 409);
    assert_eq!(
        problem["type"],
        "https://veza.stream/problems/playlist-not-playable"
    );

    // Every change left its event in the outbox.
    let events = s
        .call("GET", "/v1/events?limit=500", &s.key, None, &[])
        .await
        .2;
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for k in [
        "playlist.created",
        "playlist.updated",
        "track.ready",
        "track.failed",
        "track.deleted",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let updates = kinds.iter().filter(|k| **k == "playlist.updated").count();
    assert_eq!(updates, 6, "{kinds:?}");

    // Delete with the current ETag.
    let (st, _, _) = s
        .call("DELETE", &path, &alice, None, &[("if-match", &etag)])
        .await;
    assert_eq!(st, 204);
    let (st, _, _) = s.call("GET", &path, &alice, None, &[]).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn playlist_editing_sqlite() {
    editing(Db::Sqlite).await;
}

#[tokio::test]
async fn playlist_editing_postgres() {
    editing(Db::Postgres).await;
}

/// Reads an HLS playlist over HTTP.
async fn get_text(url: &str) -> String {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.text().await.unwrap()
}

/// Samples (per channel) ffmpeg decodes from an HLS playlist URL in one pass.
fn ffmpeg_samples(url: &str) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i", url])
        .args(["-f", "s16le", "-ac", "1", "-"])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.len() as f64 / 2.0
}

/// The `tfdt` of a media segment and the sum of its `trun` sample durations (ISO/IEC 14496-12
/// 8.8.12, 8.8.8; the segments this server writes: version 1 `tfdt`, per-sample durations).
fn fragment_timing(seg: &[u8]) -> (u64, u64) {
    let at = seg.windows(4).position(|w| w == b"tfdt").expect("tfdt");
    assert_eq!(seg[at + 4], 1, "version 1 tfdt");
    let tfdt = u64::from_be_bytes(seg[at + 8..at + 16].try_into().unwrap());
    let trun = seg.windows(4).position(|w| w == b"trun").expect("trun");
    let flags = u32::from_be_bytes(seg[trun + 4..trun + 8].try_into().unwrap()) & 0xFF_FFFF;
    assert_eq!(flags, 0x301);
    let count = u32::from_be_bytes(seg[trun + 8..trun + 12].try_into().unwrap()) as usize;
    let ticks = (0..count)
        .map(|i| {
            let d = trun + 16 + i * 8;
            u64::from(u32::from_be_bytes(seg[d..d + 4].try_into().unwrap()))
        })
        .sum();
    (tfdt, ticks)
}

/// The playlist plays as one stream: every rendition's media playlist stitches the tracks with a
/// discontinuity and a map per track, its durations add up exactly, its segments form one decode
/// timeline, ffmpeg decodes it in one pass, and hls.js in Chromium plays across the joins.
async fn plays_as_one_stream(db: Db, browser: bool) {
    let s = Server::start(db, &[]).await;
    let alice = s.token("alice", "artist");
    let mut ids = Vec::new();
    let mut total = 0.0;
    for rel in TRACKS {
        let (id, secs) = ready(&s, &alice, rel).await;
        ids.push(id);
        total += secs;
    }
    let (st, _, p) = s
        .call(
            "POST",
            "/v1/playlists",
            &alice,
            Some(json!({"title": "Gapless", "track_ids": ids})),
            &[],
        )
        .await;
    assert_eq!(st, 201);
    let id = p["id"].as_str().unwrap();
    assert!((p["duration_seconds"].as_f64().unwrap() - total).abs() < 1e-6);
    let lis = s.token("lisa", "listener");
    let (st, _, _) = s
        .call(
            "POST",
            &format!("/v1/playlists/{id}/playback"),
            &lis,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 404, "private: not for listeners");
    let (st, _, play) = s
        .call(
            "POST",
            &format!("/v1/playlists/{id}/playback"),
            &alice,
            None,
            &[],
        )
        .await;
    assert_eq!(st, 200, "{play}");
    assert!((play["duration_seconds"].as_f64().unwrap() - total).abs() < 1e-6);
    let chapters = play["chapters"].as_array().unwrap();
    assert_eq!(chapters.len(), 3);
    let master_url = play["master_url"].as_str().unwrap();

    // Wrong, missing or track-scoped tokens are refused.
    let bare = master_url.split('?').next().unwrap();
    assert_eq!(reqwest::get(bare).await.unwrap().status(), 403);
    let track_token = s.playback(&ids[0]).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let wrong = format!("{bare}?token={track_token}");
    assert_eq!(reqwest::get(&wrong).await.unwrap().status(), 403);

    let mut extras = Vec::new();
    for (family, url) in play["masters"].as_object().unwrap() {
        let url = url.as_str().unwrap();
        let master = get_text(url).await;
        let base = url.rsplit_once('/').unwrap().0;
        let media_uri = master
            .lines()
            .find(|l| !l.starts_with('#') && !l.is_empty())
            .unwrap();
        let media_url = format!("{base}/{media_uri}");
        let media = get_text(&media_url).await;
        assert_eq!(
            media.matches("#EXT-X-DISCONTINUITY\n").count(),
            2,
            "{media}"
        );
        assert_eq!(media.matches("#EXT-X-MAP:").count(), 3, "{media}");
        // Durations are exact: the EXTINFs add up to the tracks' lengths.
        let extinf: f64 = media
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
            .sum();
        assert!(
            (extinf - total).abs() < 0.001,
            "{family}: EXTINF sum {extinf} vs {total}"
        );
        // One decode timeline: every segment's tfdt follows on from the previous one's end,
        // across the joins too (each track after the first is served retimed).
        let media_base = media_url.rsplit_once('/').unwrap().0.to_string();
        let mut next_tfdt = None;
        for line in media
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let seg = reqwest::get(format!("{media_base}/{line}")).await.unwrap();
            assert_eq!(seg.status(), 200, "{line}");
            assert_eq!(
                seg.headers()["cache-control"],
                "public, max-age=31536000, immutable"
            );
            let (tfdt, ticks) = fragment_timing(&seg.bytes().await.unwrap());
            if let Some(want) = next_tfdt {
                assert_eq!(tfdt, want, "{family}: {line} does not follow on");
            }
            next_tfdt = Some(tfdt + ticks);
        }
        // ffmpeg reads the whole stitched playlist in one pass, over HTTP. FLAC (tracks of one
        // rate) comes out as exactly the sum of the tracks. AAC and Opus come out longer by the
        // later tracks' priming, which ffmpeg does not trim after a join: it applies only the
        // first init's edit list. At most two frames per join.
        let rate = if family == "flac" { 44_100.0 } else { 48_000.0 };
        let samples = ffmpeg_samples(&media_url);
        let want: f64 = chapters
            .iter()
            .map(|c| (c["duration_seconds"].as_f64().unwrap() * rate).round())
            .sum();
        let extra = samples - want;
        if family == "flac" {
            assert_eq!(
                extra, 0.0,
                "flac: {samples} samples, the tracks hold {want}"
            );
        } else {
            let frame = if family == "aac" { 1024.0 } else { 960.0 };
            assert!(
                (0.0..=2.0 * 2.0 * frame).contains(&extra),
                "{family}: {samples} samples, the tracks hold {want} ({extra} more)"
            );
        }
        extras.push(format!("{family} +{extra}"));
    }
    eprintln!("ffmpeg one-pass decode, samples beyond the tracks' sum: {extras:?}");

    if browser {
        // Play for 9 s from the start: past the first boundary (about 4 s) and the second
        // (about 8 s).
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/play.mjs");
        let empty = tempfile::tempdir().unwrap();
        let out = Command::new("node")
            .arg(script)
            .arg(empty.path())
            .arg("9")
            .arg(master_url)
            .output()
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "hls.js failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        let boundary = chapters[1]["start_seconds"].as_f64().unwrap();
        let reached = result["currentTime"].as_f64().unwrap();
        assert!(
            reached > boundary + 1.0,
            "hls.js stopped at {reached} s, before the first boundary at {boundary} s: {stdout}"
        );
        assert_eq!(result["errors"], json!([]));
    }
    // An edit shows at once in the stitched playlists served by this node (the same URL, token
    // and all).
    let (st, _, _) = s
        .call(
            "PUT",
            &format!("/v1/playlists/{id}/tracks"),
            &alice,
            Some(json!({"track_ids": [ids[2], ids[0]]})),
            &[],
        )
        .await;
    assert_eq!(st, 200);
    let aac = play["masters"]["aac"].as_str().unwrap();
    let base = aac.rsplit_once('/').unwrap().0;
    let token = aac.split_once("token=").unwrap().1;
    let media = get_text(&format!("{base}/aac-128/index.m3u8?token={token}")).await;
    assert_eq!(
        media.matches("#EXT-X-DISCONTINUITY\n").count(),
        1,
        "{media}"
    );
    let first_map = media.lines().find(|l| l.starts_with("#EXT-X-MAP")).unwrap();
    assert!(first_map.contains(&ids[2]), "{first_map}");
    // Rendered once for this state of the playlist: more requests only put their token in, and
    // every URI carries the playlist's own token.
    let renders = || async { s.metric("veza_stitch_renders_total", "").await };
    let before = renders().await;
    for _ in 0..5 {
        let again = get_text(&format!("{base}/aac-128/index.m3u8?token={token}")).await;
        assert_eq!(again, media);
    }
    assert_eq!(renders().await, before, "no render for a warm playlist");
    let uris: Vec<&str> = media.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(!uris.is_empty());
    assert!(uris.iter().all(|u| u.ends_with(&format!("?token={token}"))));
    // The playlist token opens its tracks' files, and a track's own token still works.
    let seg = format!("{base}/aac-128/{}", uris[0]);
    assert_eq!(reqwest::get(&seg).await.unwrap().status(), 200, "{seg}");
    // …and no track outside the playlist (ids[1] was taken out above).
    let outside = format!(
        "{}/hls/tracks/{}/aac-128/index.m3u8?token={token}",
        s.url, ids[1]
    );
    assert_eq!(reqwest::get(&outside).await.unwrap().status(), 403);
}

#[tokio::test]
async fn playlist_plays_as_one_stream_sqlite() {
    plays_as_one_stream(Db::Sqlite, true).await;
}

#[tokio::test]
async fn playlist_plays_as_one_stream_postgres() {
    plays_as_one_stream(Db::Postgres, false).await;
}
