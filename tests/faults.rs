//! Failures that are not the input's fault keep the original: an unusable temporary directory,
//! a storage outage while the package is published, a panicking encoder. The job is retried,
//! fails after its last attempt with the original still stored, and `POST /v1/tracks/{id}/retry`
//! queues it again once the cause is gone. Only a verdict on the bytes removes the original.

mod common;

use common::fixtures;
use common::server::{Db, Moto, Server};
use common::switch::Switch;
use serde_json::Value;
use std::time::{Duration, Instant};

const SHORT: &str = "formats/flac_16bit_44k_stereo.flac";
const LONG: &str = "track/full_track_3min_stereo_44k.flac";

/// Two attempts, one second apart: the tests see the last one fail quickly.
const QUICK_RETRIES: [(&str, &str); 2] = [
    ("VEZA_JOBS__MAX_ATTEMPTS", "2"),
    ("VEZA_JOBS__RETRY_BACKOFF_SECONDS", "1"),
];

fn settings<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = QUICK_RETRIES.to_vec();
    v.extend_from_slice(extra);
    v
}

async fn upload(s: &Server, rel: &str) -> String {
    s.upload(&fixtures().join(rel)).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn original_of(objects: &[String], id: &str) -> bool {
    objects
        .iter()
        .any(|k| k.starts_with(&format!("originals/{id}")))
}

async fn retry(s: &Server, id: &str, bearer: &str) -> (reqwest::StatusCode, Value) {
    let (status, _, body) = s
        .call("POST", &format!("/v1/tracks/{id}/retry"), bearer, None, &[])
        .await;
    (status, body)
}

/// Failed after its last attempt, with `why` in the error, and the original kept.
async fn assert_failed_keeping_original(s: &Server, id: &str, objects: Vec<String>, why: &str) {
    let t = s.wait_final(id).await;
    assert_eq!(t["status"], "failed", "{t}");
    let error = t["error"].as_str().unwrap();
    assert!(error.contains("gave up after 2 attempts"), "{error}");
    assert!(error.contains(why), "{error}");
    assert!(original_of(&objects, id), "original gone: {objects:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_temporary_directory_keeps_the_original_and_retry_recovers() {
    let scratch = tempfile::tempdir().unwrap();
    let missing = scratch.path().join("not-there");
    let missing = missing.to_str().unwrap();
    let mut s = Server::start(Db::Sqlite, &settings(&[("TMPDIR", missing)])).await;
    let id = upload(&s, SHORT).await;
    let objects = s.objects().await;
    assert_failed_keeping_original(&s, &id, objects, "temporary directory").await;

    // Another artist may not retry it; a ready track is not retried.
    let other = s.token("mallory", "artist");
    assert_eq!(retry(&s, &id, &other).await.0, 403);

    // The cause goes away (a restart with a working TMPDIR): retry queues it and it publishes.
    s.kill();
    s.set_env("TMPDIR", scratch.path().to_str().unwrap());
    s.spawn();
    let (status, body) = retry(&s, &id, &s.key.clone()).await;
    assert_eq!(status, 202, "{body}");
    // Queued, or already taken by a worker by the time the answer is written.
    assert!(
        body["status"] == "queued" || body["status"] == "processing",
        "{body}"
    );
    assert_eq!(body["error"], Value::Null);
    let t = s.wait_final(&id).await;
    assert_eq!(t["status"], "ready", "{t}");
    let (status, body) = retry(&s, &id, &s.key.clone()).await;
    assert_eq!(status, 409);
    assert_eq!(body["type"], "https://veza.stream/problems/not-failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_encoder_is_retried_and_keeps_the_original() {
    let mut s = Server::start(
        Db::Postgres,
        &settings(&[("VEZA_JOBS__FAULT", "encoder-panic")]),
    )
    .await;
    let id = upload(&s, SHORT).await;
    let objects = s.objects().await;
    assert_failed_keeping_original(&s, &id, objects, "panicked").await;
    assert!(s.log().contains("injected encoder panic"));
    s.kill();
    s.set_env("VEZA_JOBS__FAULT", "");
    s.spawn();
    assert_eq!(retry(&s, &id, &s.key.clone()).await.0, 202);
    assert_eq!(s.wait_final(&id).await["status"], "ready");
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_input_is_the_only_failure_that_removes_the_original() {
    let s = Server::start(Db::Sqlite, &settings(&[])).await;
    let id = upload(&s, "edge/random_bytes.mp3").await;
    let t = s.wait_final(&id).await;
    assert_eq!(t["status"], "failed");
    assert!(!t["error"].as_str().unwrap().contains("gave up"), "{t}");
    s.wait_objects_gone(&id).await;
    assert!(!original_of(&s.objects().await, &id));
    let (status, body) = retry(&s, &id, &s.key.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["type"], "https://veza.stream/problems/original-gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_storage_outage_while_publishing_keeps_the_original_and_retry_recovers() {
    let moto = Moto::start().await;
    let switch = Switch::start(&moto.endpoint).await;
    let s = Server::start(
        Db::Sqlite,
        &settings(&[
            ("VEZA_STORAGE__BACKEND", "s3"),
            ("VEZA_STORAGE__S3_ENDPOINT", &switch.url),
            ("VEZA_STORAGE__S3_BUCKET", &moto.bucket),
            ("VEZA_STORAGE__S3_ALLOW_HTTP", "true"),
            ("VEZA_STORAGE__S3_ACCESS_KEY_ID", "test"),
            ("VEZA_STORAGE__S3_SECRET_ACCESS_KEY", "test"),
            ("VEZA_STORAGE__S3_MAX_RETRIES", "1"),
            ("VEZA_STORAGE__S3_RETRY_TIMEOUT_SECONDS", "5"),
        ]),
    )
    .await;
    let id = upload(&s, LONG).await;
    // Storage goes away while the track is being encoded: the package cannot be uploaded, and
    // the second attempt cannot even read the original.
    let start = Instant::now();
    loop {
        let t = s.track(&id).await;
        if t["status"] == "processing" && t["progress"].as_f64().unwrap() >= 0.3 {
            break;
        }
        assert_ne!(t["status"], "ready", "finished before the outage");
        assert!(start.elapsed() < Duration::from_secs(300), "{t}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    switch.down();
    let t = s.wait_final(&id).await;
    assert_eq!(t["status"], "failed", "{t}");
    let error = t["error"].as_str().unwrap();
    assert!(error.contains("gave up after 2 attempts"), "{error}");
    // The bucket itself never went away: the original is there, and no package was published.
    let keys = moto.keys().await;
    assert!(original_of(&keys, &id), "{keys:?}");
    assert!(
        !keys.iter().any(|k| k.starts_with(&format!("tracks/{id}"))),
        "{keys:?}"
    );
    switch.up();
    assert_eq!(retry(&s, &id, &s.key.clone()).await.0, 202);
    let t = s.wait_final(&id).await;
    assert_eq!(t["status"], "ready", "{t}");
}
