//! A full disk, on a small tmpfs holding the store, the media and the job's temporary files:
//! clean 503s, `/readyz` says so, a job attempt fails and is retried, `DELETE` frees space, and
//! once space is back every write succeeds without a restart, with the SQLite file intact.

mod common;

use common::server::{Db, Server};
use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs mounted for the test, unmounted when dropped (before its mount point goes).
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs")
            .success();
        assert!(ok, "mounting a tmpfs (the tests run as root)");
        Tmpfs(dir.path().to_path_buf(), dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` to the last byte; returns the filler's path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join(format!("filler-{}", uuid::Uuid::now_v7()));
    let mut f = std::fs::File::create(&path).unwrap();
    for size in [1 << 20, 4096, 1] {
        let chunk = vec![0u8; size];
        while f.write_all(&chunk).is_ok() {}
    }
    let _ = f.sync_all();
    path
}

async fn status(s: &Server, path: &str) -> (u16, String) {
    let r = s
        .client()
        .get(format!("{}{path}", s.url))
        .send()
        .await
        .unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status().as_u16(), ct)
}

async fn create_playlist(s: &Server, n: usize) -> reqwest::Response {
    s.client()
        .post(format!("{}/v1/playlists", s.url))
        .header("authorization", s.auth())
        .json(&serde_json::json!({"title": format!("P{n}")}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_full_disk_gives_clean_503s_and_recovers_without_a_restart() {
    let fs = Tmpfs::mount("64m");
    let root = fs.0.clone();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    let db = format!("sqlite://{}", root.join("data/veza.db").display());
    let data = root.join("data").display().to_string();
    let media = root.join("media").display().to_string();
    let tmp = root.join("tmp").display().to_string();
    let s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_DATABASE__URL", &db),
            ("VEZA_SERVER__DATA_DIR", &data),
            ("VEZA_STORAGE__PATH", &media),
            ("TMPDIR", &tmp),
            ("VEZA_JOBS__WORKERS", "1"),
            ("VEZA_JOBS__RETRY_BACKOFF_SECONDS", "5"),
            ("VEZA_JOBS__MAX_ATTEMPTS", "50"),
            ("VEZA_JOBS__LEASE_SECONDS", "3"),
            ("VEZA_LIMITS__PER_SUBJECT_PER_MINUTE", "0"),
            ("VEZA_LIMITS__PER_IP_PER_MINUTE", "0"),
        ],
    )
    .await;
    let track = fixtures().join("track/full_track_3min_stereo_44k.flac");
    let a = s.upload(&track).await["id"].as_str().unwrap().to_string();
    assert_eq!(s.wait_final(&a).await["status"], "ready");

    // A job running when the disk fills: its attempt fails, and it is retried, not lost.
    let b = s.upload(&track).await["id"].as_str().unwrap().to_string();
    let filler = fill(&root);
    let start = Instant::now();
    while !s.log().contains("job attempt failed; will retry")
        && !s.log().contains("recording a job's end failed")
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the running job did not fail on the full disk:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The failed attempt removed its temporary files; fill what they freed too.
    let filler2 = fill(&root);
    assert_eq!(status(&s, "/healthz").await.0, 200);
    let (code, ct) = status(&s, "/readyz").await;
    assert_eq!(code, 503, "readyz on a full disk");
    assert_eq!(ct, "application/problem+json");
    // An upload is refused cleanly.
    let r = s
        .client()
        .post(format!("{}/v1/tracks", s.url))
        .header("authorization", s.auth())
        .header("content-type", "audio/flac")
        .body(std::fs::read(&track).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503, "upload on a full disk");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // Store writes fail once the write-ahead log cannot grow: clean 503s too.
    let mut refused = None;
    for n in 0..20_000 {
        let r = create_playlist(&s, n).await;
        if r.status() != 201 {
            refused = Some((r.status().as_u16(), r.headers()["content-type"].clone()));
            break;
        }
    }
    let (code, ct) = refused.expect("a store write fails on a full disk");
    assert_eq!(code, 503);
    assert_eq!(ct, "application/problem+json");

    // At 100 %, DELETE still frees space: objects first, then rows.
    let free_before = free_bytes(&root);
    assert_eq!(s.delete(&a).await, 204, "{}", s.log());
    assert!(free_bytes(&root) > free_before + 5_000_000);
    let gone = s
        .client()
        .get(format!("{}/v1/tracks/{a}", s.url))
        .header("authorization", s.auth())
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);

    // Space back: every write succeeds without a restart.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&filler2).unwrap();
    let start = Instant::now();
    while status(&s, "/readyz").await.0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(30), "readyz recovers");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = create_playlist(&s, 0).await;
    assert_eq!(r.status(), 201, "{}\n{}", r.text().await.unwrap(), s.log());
    assert_eq!(s.wait_final(&b).await["status"], "ready", "{}", s.log());
    let c = s.upload(&track).await["id"].as_str().unwrap().to_string();
    assert_eq!(s.wait_final(&c).await["status"], "ready");
    assert_eq!(
        s.text("PRAGMA integrity_check").await.as_deref(),
        Some("ok")
    );
    drop(s);
    drop(fs);
}

/// Bytes available on the file system holding `dir`, as `df` reports them.
fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}
