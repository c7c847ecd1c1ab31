//! The durable queue seen from outside: crash recovery, graceful shutdown, progress events,
//! concurrent uploads and the upload memory bound.

mod common;

use common::fixtures;
use common::server::{Db, Server};
use futures::StreamExt;
use serde_json::Value;
use std::time::{Duration, Instant};

const LONG: &str = "track/full_track_3min_stereo_44k.flac";

/// Uploads the 3-minute track and returns its id once packaging has reached `at_least`.
async fn upload_and_wait_processing(s: &Server, at_least: f64) -> String {
    let id = s.upload(&fixtures().join(LONG)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_processing(s, &id, at_least).await;
    id
}

/// Waits until the track is being packaged.
async fn wait_processing(s: &Server, id: &str, at_least: f64) {
    let start = Instant::now();
    loop {
        let t = s.track(id).await;
        if t["status"] == "processing" && t["progress"].as_f64().unwrap() >= at_least {
            return;
        }
        assert_ne!(
            t["status"], "ready",
            "finished before the test could interrupt it"
        );
        assert!(start.elapsed() < Duration::from_secs(300), "{t}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// After a SIGKILL mid-job the job is picked up again once its lease expires, and the track is
/// published exactly once: one row set, and objects under one attempt's prefix only.
async fn crash_then_recover(db: Db) {
    let mut s = Server::start(
        db,
        &[
            ("VEZA_JOBS__LEASE_SECONDS", "2"),
            ("VEZA_JOBS__WORKERS", "1"),
        ],
    )
    .await;
    let id = upload_and_wait_processing(&s, 0.2).await;
    let staging = s
        .text(&format!(
            "SELECT staging_prefix FROM jobs WHERE track_id = '{id}'"
        ))
        .await;
    assert!(
        staging.is_some(),
        "the attempt records its staging prefix before writing"
    );
    s.kill();
    s.spawn();
    let t = s.wait_final(&id).await;
    assert_eq!(t["status"], "ready", "{}", s.log());
    assert!(s.log().contains("attempt=2"), "the job was claimed again");
    assert_eq!(
        s.scalar(&format!("SELECT COUNT(*) FROM tracks WHERE id = '{id}'"))
            .await,
        1
    );
    assert_eq!(
        s.scalar(&format!(
            "SELECT COUNT(*) FROM renditions WHERE track_id = '{id}'"
        ))
        .await,
        3
    );
    assert_eq!(s.scalar("SELECT COUNT(*) FROM jobs").await, 0);
    let prefix = s
        .text(&format!(
            "SELECT media_prefix FROM tracks WHERE id = '{id}'"
        ))
        .await
        .unwrap();
    assert_ne!(
        Some(&prefix),
        staging.as_ref(),
        "a fresh prefix for the new attempt"
    );
    let objects = s.objects().await;
    // The track's cover (its embedded art) is its own, outside any attempt's prefix.
    let cover = s
        .text(&format!("SELECT cover FROM tracks WHERE id = '{id}'"))
        .await
        .map(|d| format!("tracks/{id}/covers/{d}.jpg"));
    let stray: Vec<&String> = objects
        .iter()
        .filter(|k| {
            !k.starts_with(&format!("{prefix}/"))
                && **k != format!("originals/{id}")
                && Some(*k) != cover.as_ref()
        })
        .collect();
    assert!(stray.is_empty(), "orphaned objects: {stray:?}");
    assert!(objects.iter().filter(|k| k.ends_with(".m4s")).count() >= 90);
    let play = s.playback(&id).await;
    let r = s
        .client()
        .get(play["master_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_job_publishes_once_on_sqlite() {
    crash_then_recover(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_job_publishes_once_on_postgres() {
    crash_then_recover(Db::Postgres).await;
}

/// SIGTERM: in-flight requests finish, the process exits cleanly, and the running job is given
/// back at once (not left to lease expiry) without counting as an attempt.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_and_releases_the_job() {
    let mut s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_JOBS__LEASE_SECONDS", "600"),
            ("VEZA_JOBS__WORKERS", "1"),
        ],
    )
    .await;
    let id = upload_and_wait_processing(&s, 0.1).await;
    // A request in flight when the signal arrives: a slow upload still sending its body.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let upload = tokio::spawn(
        s.client()
            .post(format!("{}/v1/tracks?filename=late.mp3", s.url))
            .header("authorization", s.auth())
            .header("content-type", "audio/mpeg")
            .body(body)
            .send(),
    );
    let first = std::fs::read(fixtures().join("formats/mp3_cbr128_stereo_44k.mp3")).unwrap();
    let (a, b) = first.split_at(first.len() / 2);
    tx.send(Ok(a.to_vec())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = s.pid();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(Ok(b.to_vec())).await.unwrap();
    drop(tx);
    let r = upload
        .await
        .unwrap()
        .expect("the in-flight upload is answered");
    assert_eq!(r.status(), 202);
    let status = s.wait_exit();
    assert!(status.success(), "{status:?}\n{}", s.log());
    assert_eq!(
        s.text(&format!("SELECT state FROM jobs WHERE track_id = '{id}'"))
            .await
            .as_deref(),
        Some("queued")
    );
    assert_eq!(
        s.scalar(&format!(
            "SELECT attempts FROM jobs WHERE track_id = '{id}'"
        ))
        .await,
        0
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM jobs WHERE lease_id IS NOT NULL")
            .await,
        0
    );
    let staged = s
        .objects()
        .await
        .iter()
        .filter(|k| k.starts_with(&format!("tracks/{id}/")))
        .count();
    assert_eq!(staged, 0, "the released attempt removed its staging prefix");
    // Both jobs finish after a restart; the lease was not waited out (it is 10 minutes).
    s.spawn();
    assert_eq!(s.wait_final(&id).await["status"], "ready");
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Server-sent events report progress and end with the final state.
#[tokio::test(flavor = "multi_thread")]
async fn progress_arrives_as_server_sent_events() {
    let s = Server::start(Db::Sqlite, &[("VEZA_LOG__FORMAT", "json")]).await;
    let id = s.upload(&fixtures().join(LONG)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .client()
        .get(format!("{}/v1/tracks/{id}/events", s.url))
        .header("authorization", s.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let mut body = r.bytes_stream();
    while let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(events.len() >= 3, "{text}");
    let progress: Vec<f64> = events
        .iter()
        .map(|e| e["progress"].as_f64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert!(events.iter().any(|e| e["status"] == "processing"));
    assert_eq!(events.last().unwrap()["status"], "ready");
    // With log.format = "json", every log line is a JSON object with the event's fields.
    let log = s.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["fields"]["message"] == "track ready" && l["fields"]["track"] == id.as_str()), "{log}");
}

/// Twenty uploads at once all finish, each exactly once (PostgreSQL, SKIP LOCKED claims).
#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_uploads_all_finish() {
    let s = Server::start(Db::Postgres, &[]).await;
    let files = [
        "formats/mp3_cbr128_stereo_44k.mp3",
        "formats/wav_pcm16_mono_16k.wav",
        "formats/ogg_vorbis_q5_stereo_44k.ogg",
        "formats/opus_96k_stereo_48k.opus",
        "formats/aiff_pcm16_stereo_44k.aiff",
    ];
    let uploads = (0..20).map(|i| {
        let path = fixtures().join(files[i % files.len()]);
        let s = &s;
        async move { s.upload(&path).await["id"].as_str().unwrap().to_string() }
    });
    let ids: Vec<String> = futures::future::join_all(uploads).await;
    for id in &ids {
        assert_eq!(s.wait_final(id).await["status"], "ready", "{}", s.log());
    }
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM tracks WHERE status = 'ready'")
            .await,
        20
    );
    // Three renditions for each of the 8 lossless sources (WAV, AIFF); the 12 lossy ones (MP3,
    // Vorbis, Opus) get no FLAC: a lossless copy of a decoded lossy stream is not lossless.
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM renditions").await,
        8 * 3 + 12 * 2
    );
    assert_eq!(s.scalar("SELECT COUNT(*) FROM jobs").await, 0);
    assert_eq!(
        s.scalar("SELECT COUNT(DISTINCT media_prefix) FROM tracks")
            .await,
        20
    );
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A 500 MB upload streams to storage: the server's peak RSS stays under 100 MB.
#[tokio::test(flavor = "multi_thread")]
async fn a_500_mb_upload_keeps_rss_under_100_mb() {
    let s = Server::start(Db::Sqlite, &[("VEZA_JOBS__WORKERS", "1")]).await;
    const TOTAL: usize = 500 * 1000 * 1000;
    const CHUNK: usize = 1 << 20;
    let mut block = vec![0u8; CHUNK];
    let mut x: u32 = 0x9E37_79B9;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let block = bytes::Bytes::from(block);
    let chunks = futures::stream::iter((0..TOTAL.div_ceil(CHUNK)).map(move |i| {
        let n = CHUNK.min(TOTAL - i * CHUNK);
        Ok::<_, std::io::Error>(block.slice(..n))
    }));
    let before = vm_hwm_kib(s.pid());
    let r = s
        .client()
        .post(format!("{}/v1/tracks?filename=big.wav", s.url))
        .header("authorization", s.auth())
        .header("content-type", "audio/wav")
        .header("content-length", TOTAL.to_string())
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["size_bytes"].as_u64(), Some(TOTAL as u64));
    let peak = vm_hwm_kib(s.pid());
    println!("server peak RSS: {before} KiB at start, {peak} KiB after a {TOTAL}-byte upload");
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB");
    // Not audio: the track fails with a reason and leaves nothing behind.
    let id = t["id"].as_str().unwrap();
    let done = s.wait_final(id).await;
    assert_eq!(done["status"], "failed");
    assert!(done["error"].as_str().unwrap().len() > 10);
    assert!(s.objects().await.is_empty(), "{:?}", s.objects().await);
}

/// DELETE during a transcode cancels it: the track, its job and every object go, including what
/// the cancelled attempt had staged, and the worker moves on to the next job.
#[tokio::test(flavor = "multi_thread")]
async fn delete_cancels_a_running_job_and_leaves_nothing() {
    let s = Server::start(Db::Sqlite, &[("VEZA_JOBS__WORKERS", "1")]).await;
    let id = upload_and_wait_processing(&s, 0.1).await;
    assert_eq!(s.delete(&id).await, 204);
    assert_eq!(
        s.client()
            .get(format!("{}/v1/tracks/{id}", s.url))
            .header("authorization", s.auth())
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // The single worker is free again: the next upload finishes.
    let next = s
        .upload(&fixtures().join("formats/mp3_cbr128_stereo_44k.mp3"))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.wait_final(&next).await["status"], "ready");
    assert!(
        s.log().contains(&format!("track deleted track={id}")),
        "{}",
        s.log()
    );
    let left: Vec<String> = s
        .objects()
        .await
        .into_iter()
        .filter(|k| k.contains(id.as_str()))
        .collect();
    assert!(left.is_empty(), "objects of the deleted track: {left:?}");
    assert_eq!(
        s.scalar(&format!(
            "SELECT COUNT(*) FROM jobs WHERE track_id = '{id}'"
        ))
        .await,
        0
    );
    assert_eq!(
        s.scalar(&format!(
            "SELECT COUNT(*) FROM renditions WHERE track_id = '{id}'"
        ))
        .await,
        0
    );
}
