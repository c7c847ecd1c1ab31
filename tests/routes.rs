//! In-process tests of the routes whose logic lives in the catalog, the storage layer and auth:
//! the router over a server's state, called with `oneshot`, no socket and no worker running, so
//! every state a track passes through can be looked at. A job worker is then driven alone,
//! without a router.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;
use veza_stream::{layout, App, Config, Server};

struct Node {
    app: Arc<App>,
    router: Router,
    key: String,
    _dir: tempfile::TempDir,
}

async fn node(extra: &[(&str, &str)]) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("VEZA_SERVER__LISTEN".to_string(), "127.0.0.1:0".to_string()),
        (
            "VEZA_SERVER__DATA_DIR".into(),
            dir.path().join("data").display().to_string(),
        ),
        (
            "VEZA_STORAGE__PATH".into(),
            dir.path().join("media").display().to_string(),
        ),
        (
            "VEZA_DATABASE__URL".into(),
            format!("sqlite://{}", dir.path().join("data/veza.db").display()),
        ),
    ];
    for (k, v) in extra {
        env.push((k.to_string(), v.to_string()));
    }
    let server = Server::load(Config::load(None, env).unwrap())
        .await
        .unwrap();
    let app = server.app().clone();
    Node {
        router: veza_stream::http::router(app.clone()),
        key: app.config.auth.api_keys[0].clone(),
        app,
        _dir: dir,
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/audio/synth")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

impl Node {
    async fn call(&self, method: &str, path: &str, ct: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", ct)
            .body(Body::from(body))
            .unwrap();
        let r = self.router.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn upload(&self, name: &str) -> String {
        let (status, t) = self
            .call(
                "POST",
                &format!("/v1/tracks?filename={name}"),
                "audio/flac",
                fixture(name),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{t}");
        t["id"].as_str().unwrap().to_string()
    }
}

const FLAC: &str = "silence_head_tail_44k.flac";

#[tokio::test]
async fn an_upload_is_stored_and_queued_with_its_title_from_the_file_name() {
    let n = node(&[]).await;
    let id = n.upload(FLAC).await;
    let track = n
        .app
        .store
        .track(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(track.title, "silence_head_tail_44k");
    assert_eq!(track.status, veza_stream::store::Status::Queued);
    assert_eq!(track.original_key, layout::original(track.id));
    assert!(n.app.storage.exists(&track.original_key).await.unwrap());
    // Not ready: no playback yet.
    let (status, p) = n
        .call(
            "POST",
            &format!("/v1/tracks/{id}/playback"),
            "application/json",
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(p["type"], "https://veza.stream/problems/track-not-ready");
    // Only a failed track is retried.
    let (status, p) = n
        .call(
            "POST",
            &format!("/v1/tracks/{id}/retry"),
            "application/json",
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(p["type"], "https://veza.stream/problems/not-failed");
}

#[tokio::test]
async fn refused_uploads_leave_no_object() {
    let n = node(&[("VEZA_SERVER__MAX_UPLOAD_BYTES", "1000")]).await;
    let (status, p) = n.call("POST", "/v1/tracks", "audio/flac", vec![]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{p}");
    // Over the limit, without a Content-Length to refuse it early: streamed, then aborted.
    let req = Request::builder()
        .method("POST")
        .uri("/v1/tracks?filename=a.flac")
        .header("authorization", format!("Bearer {}", n.key))
        .header("content-type", "audio/flac")
        .body(Body::from_stream(futures::stream::iter(
            fixture(FLAC)
                .chunks(512)
                .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                .collect::<Vec<_>>(),
        )))
        .unwrap();
    let r = n.router.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(n
        .app
        .storage
        .list(layout::ORIGINALS)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn deleting_removes_objects_and_rows_and_writes_one_typed_event() {
    let n = node(&[]).await;
    let id = n.upload(FLAC).await;
    let (status, _) = n
        .call(
            "DELETE",
            &format!("/v1/tracks/{id}"),
            "application/json",
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(n
        .app
        .storage
        .list(layout::ORIGINALS)
        .await
        .unwrap()
        .is_empty());
    assert!(n
        .app
        .store
        .track(id.parse().unwrap())
        .await
        .unwrap()
        .is_none());
    let (status, _) = n
        .call(
            "GET",
            &format!("/v1/tracks/{id}"),
            "application/json",
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, events) = n
        .call(
            "GET",
            "/v1/events?state=pending",
            "application/json",
            vec![],
        )
        .await;
    let deleted: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "track.deleted")
        .collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["data"]["track_id"], id.as_str());
    // Deleting again: nothing there.
    let (status, _) = n
        .call(
            "DELETE",
            &format!("/v1/tracks/{id}"),
            "application/json",
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_playlist_of_nothing_playable_has_no_playback() {
    let n = node(&[]).await;
    let id = n.upload(FLAC).await;
    let body = serde_json::json!({"title": "mix", "track_ids": [id]}).to_string();
    let (status, p) = n
        .call(
            "POST",
            "/v1/playlists",
            "application/json",
            body.into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let pid = p["id"].as_str().unwrap();
    let (status, p) = n
        .call(
            "POST",
            &format!("/v1/playlists/{pid}/playback"),
            "application/json",
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{p}");
    assert_eq!(
        p["type"],
        "https://veza.stream/problems/playlist-not-playable"
    );
}

#[tokio::test]
async fn a_worker_runs_alone_and_the_catalog_sees_its_publication() {
    let n = node(&[]).await;
    let id = n.upload(FLAC).await;
    let track: veza_stream::store::TrackId = id.parse().unwrap();
    assert!(n.app.catalog.published(track).await.unwrap().is_none());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = Arc::new(veza_stream::jobs::Worker {
        store: n.app.store.clone(),
        storage: n.app.storage.clone(),
        queue: n.app.queue.clone(),
        catalog: n.app.catalog.clone(),
        metrics: n.app.metrics.clone(),
        config: n.app.config.jobs.clone(),
        options: veza_stream::Options::default(),
        shutdown: shutdown.clone(),
    });
    let running = tokio::spawn(veza_stream::jobs::worker(worker, 0));
    let t = loop {
        let t = n.app.store.track(track).await.unwrap().unwrap();
        if t.status.is_final() {
            break t;
        }
        n.app.queue.notify();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(t.status, veza_stream::store::Status::Ready, "{:?}", t.error);
    // Published: the catalog was told, so delivery sees it at once.
    let p = n
        .app
        .catalog
        .published(track)
        .await
        .unwrap()
        .expect("published");
    assert_eq!(Some(p.prefix.clone()), t.media_prefix);
    let (status, play) = n
        .call(
            "POST",
            &format!("/v1/tracks/{id}/playback"),
            "application/json",
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(play["master_url"]
        .as_str()
        .unwrap()
        .contains(&format!("/hls/tracks/{id}/master.m3u8?token=")));
    assert!(play["masters"]["opus"]
        .as_str()
        .unwrap()
        .contains("/master_opus.m3u8?token="));
}
