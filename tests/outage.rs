//! Outages survived, each with the service stopped and started again under a running server.
//!
//! - **PostgreSQL** (a private cluster of the machine's PostgreSQL 15, made here with `initdb`, so
//!   that stopping it touches no other test): `/readyz` answers 503, uploads and writes get 503
//!   with `Retry-After`, published media and a live channel keep playing, and the job that was
//!   packaging when it stopped is retried. When it is back, everything recovers without a
//!   restart and nothing is lost.
//! - **Object storage** (moto behind a switchable proxy: moto keeps its objects in memory, so it
//!   is cut off rather than killed): `/readyz` 503, uploads refused with 503 and `Retry-After`,
//!   media already in the hot cache keeps serving, and everything recovers.

mod common;

use common::until;

use common::fixtures;
use common::live::{create, ffmpeg_source, playback_answer, track_mp3, wait_for};
use common::server::{free_port, Db, Moto, Server};
use common::switch::Switch;
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;

const SMALL: &str = "formats/wav_pcm16_mono_16k.wav";
const LONG: &str = "track/full_track_3min_stereo_44k.flac";

/// A PostgreSQL cluster of its own, on a free port, owned by the `postgres` user when the tests
/// run as root (initdb refuses root).
struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
}

fn pg_bin(name: &str) -> PathBuf {
    let root = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Debian's PostgreSQL server")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .max()
        .unwrap();
    root.join("bin").join(name)
}

fn as_owner(program: PathBuf) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn ok(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    fn start() -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("veza-pg-")
            .tempdir()
            .unwrap();
        if is_root() {
            ok(Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(dir.path()));
        }
        let data = dir.path().join("data");
        ok(as_owner(pg_bin("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data));
        let pg = Postgres {
            dir,
            port: free_port(),
        };
        pg.up();
        pg
    }

    fn up(&self) {
        let data = self.dir.path().join("data");
        let options = format!(
            "-p {} -h 127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        ok(as_owner(pg_bin("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-w", "-l"])
            .arg(self.dir.path().join("log"))
            .arg("start"));
    }

    /// Stops at once, as a crash or a lost network would: connections are cut.
    fn down(&self) {
        ok(as_owner(pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"]));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_owner(pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

async fn get(s: &Server, url: &str) -> reqwest::Response {
    s.client().get(url).send().await.unwrap()
}

/// A 503 with `Retry-After` and a problem document.
async fn assert_unavailable(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 503, "{what}");
    assert!(r.headers().contains_key("retry-after"), "{what}");
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
}

/// An upload made during an outage, answered whatever the answer.
async fn upload_during(s: &Server) -> reqwest::Response {
    s.client()
        .post(format!("{}/v1/tracks", s.url))
        .query(&[("filename", "during.wav")])
        .header("authorization", s.auth())
        .header("content-type", "application/octet-stream")
        .body(std::fs::read(fixtures().join(SMALL)).unwrap())
        .send()
        .await
        .unwrap()
}

/// The URL of a media segment and of the master playlist of a ready track.
async fn media(s: &Server, id: &str) -> (String, String) {
    let pb = s.playback(id).await;
    let master = pb["master_url"].as_str().unwrap().to_string();
    let text = get(s, &master).await.text().await.unwrap();
    let media = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    let media = reqwest::Url::parse(&master).unwrap().join(media).unwrap();
    let text = get(s, media.as_str()).await.text().await.unwrap();
    let segment = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    let segment = media.join(segment).unwrap().to_string();
    (master, segment)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgresql_outage_is_survived_without_a_restart_and_loses_nothing() {
    let pg = Postgres::start();
    let s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_DATABASE__URL", &pg.url()),
            ("VEZA_JOBS__WORKERS", "1"),
            ("VEZA_JOBS__RETRY_BACKOFF_SECONDS", "1"),
        ],
    )
    .await;
    // Before: a published track (its media fetched once), a live channel on air, and a long
    // track packaging.
    let ready = s.upload(&fixtures().join(SMALL)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.wait_final(&ready).await["status"], "ready");
    let (master, segment) = media(&s, &ready).await;
    assert_eq!(get(&s, &segment).await.status(), 200);
    let c = create(&s, json!({"title": "Through the outage"})).await;
    let channel = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let _source = ffmpeg_source(&s, &channel, &key, &track_mp3(), "mp3");
    wait_for(&s, &channel, "/state", "live").await;
    let live = playback_answer(&s, &channel).await["master_url"]
        .as_str()
        .unwrap()
        .to_string();
    let packaging = s.upload(&fixtures().join(LONG)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    until("the long track packaging", || async {
        s.track(&packaging).await["status"] == "processing"
    })
    .await;

    pg.down();
    until("/readyz 503", || async {
        get(&s, &format!("{}/readyz", s.url)).await.status() == 503
    })
    .await;
    assert_unavailable(get(&s, &format!("{}/readyz", s.url)).await, "readyz").await;
    // Writes are refused, plainly and with when to come back.
    let r = upload_during(&s).await;
    assert_unavailable(r, "an upload").await;
    let r = s
        .client()
        .post(format!("{}/v1/playlists", s.url))
        .header("authorization", s.auth())
        .json(&json!({"title": "During"}))
        .send()
        .await
        .unwrap();
    assert_unavailable(r, "a playlist").await;
    // What is published keeps playing: the track's media and the live channel.
    assert_eq!(get(&s, &segment).await.status(), 200);
    assert_eq!(get(&s, &master).await.status(), 200);
    let r = get(&s, &live).await;
    assert_eq!(r.status(), 200, "the live master playlist");
    let heard = tokio::task::spawn_blocking({
        let live = live.clone();
        move || common::live::ffmpeg_listen(&live, 3)
    })
    .await
    .unwrap();
    assert!(heard > 0.01, "the live channel went quiet: rms {heard}");

    pg.up();
    until("/readyz 200 again", || async {
        get(&s, &format!("{}/readyz", s.url)).await.status() == 200
    })
    .await;
    // Everything recovers without a restart: the interrupted job, new uploads, writes.
    assert_eq!(s.wait_final(&packaging).await["status"], "ready");
    let after = s.upload(&fixtures().join(SMALL)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.wait_final(&after).await["status"], "ready");
    let (st, _, _) = s
        .call(
            "POST",
            "/v1/playlists",
            &s.key,
            Some(json!({"title": "After"})),
            &[],
        )
        .await;
    assert_eq!(st, 201);
    // Nothing was lost: every track the server accepted is there, ready, and the events of
    // their publication are in the outbox.
    let (_, _, list) = s.call("GET", "/v1/tracks", &s.key, None, &[]).await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    for id in [&ready, &packaging, &after] {
        assert!(ids.contains(&id.as_str()), "{id} missing from {ids:?}");
    }
    assert!(s.log().contains("metadata store"), "the outage was logged");
    assert!(!s.log().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_storage_outage_keeps_cached_media_serving_and_recovers() {
    let moto = Moto::start().await;
    let switch = Switch::start(&moto.endpoint).await;
    let s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_STORAGE__BACKEND", "s3"),
            ("VEZA_STORAGE__S3_ENDPOINT", &switch.url),
            ("VEZA_STORAGE__S3_BUCKET", &moto.bucket),
            ("VEZA_STORAGE__S3_ALLOW_HTTP", "true"),
            ("VEZA_STORAGE__S3_ACCESS_KEY_ID", "test"),
            ("VEZA_STORAGE__S3_SECRET_ACCESS_KEY", "test"),
            ("VEZA_STORAGE__S3_MAX_RETRIES", "1"),
            ("VEZA_STORAGE__S3_RETRY_TIMEOUT_SECONDS", "3"),
        ],
    )
    .await;
    let id = s.upload(&fixtures().join(SMALL)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.wait_final(&id).await["status"], "ready");
    let (master, segment) = media(&s, &id).await;
    // Fetched once: now in the hot cache.
    let before = get(&s, &segment).await.bytes().await.unwrap();

    switch.down();
    until("/readyz 503", || async {
        get(&s, &format!("{}/readyz", s.url)).await.status() == 503
    })
    .await;
    let r = upload_during(&s).await;
    assert_unavailable(r, "an upload while storage is away").await;
    let r = get(&s, &segment).await;
    assert_eq!(r.status(), 200, "a cached segment");
    assert_eq!(r.bytes().await.unwrap(), before);
    assert_eq!(get(&s, &master).await.status(), 200);

    switch.up();
    until("/readyz 200 again", || async {
        get(&s, &format!("{}/readyz", s.url)).await.status() == 200
    })
    .await;
    let after = s.upload(&fixtures().join(SMALL)).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.wait_final(&after).await["status"], "ready");
    // Nothing half-written was left: no object of the refused upload.
    let keys = moto.keys().await;
    assert!(keys.iter().all(|k| !k.contains("during")), "{keys:?}");
}
