//! What a killed process leaves in storage is swept: a partial multipart original (`#n` files),
//! tus pieces without an upload, an original without a track.

mod common;

use common::server::{Db, Server};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn partials(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn kill_9_mid_upload_leaves_nothing_once_swept() {
    // Leftovers older than the upload expiry (1 s here) go at start-up.
    let mut s = Server::start(
        Db::Sqlite,
        &[("VEZA_LIMITS__UPLOAD_EXPIRATION_SECONDS", "1")],
    )
    .await;
    let media = s.dir.join("media");
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/tracks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: audio/flac\r\nContent-Length: 50000000\r\n\r\n",
        s.key
    );
    c.write_all(head.as_bytes()).await.unwrap();
    // More than one 5 MiB part, so object_store has a staging file open.
    let chunk = vec![0x5Au8; 1 << 20];
    for _ in 0..12 {
        c.write_all(&chunk).await.unwrap();
    }
    let start = Instant::now();
    while !partials(&media).iter().any(|p| p.contains('#')) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no partial object appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.kill();
    drop(c);
    // Pieces of a resumable upload whose row never made it, and an original with no track.
    let orphan = uuid::Uuid::now_v7();
    std::fs::create_dir_all(media.join(format!("uploads/{orphan}"))).unwrap();
    std::fs::write(
        media.join(format!("uploads/{orphan}/00000000000000000000")),
        b"piece",
    )
    .unwrap();
    std::fs::create_dir_all(media.join("originals")).unwrap();
    std::fs::write(media.join(format!("originals/{orphan}")), b"original").unwrap();
    let left = partials(&media);
    assert!(left.iter().any(|p| p.contains('#')), "{left:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.spawn();
    let start = Instant::now();
    loop {
        let left = partials(&media);
        if left.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "still there: {left:?}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(s.log().contains("removed what interrupted uploads left"));
    assert_eq!(s.scalar("SELECT COUNT(*) FROM tracks").await, 0);
}
