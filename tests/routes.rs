//! In-process tests of the routes whose logic lives in the catalog, the storage layer and auth,
//! and of the drivers (job worker, outbox dispatcher, JWKS refresher) run alone:
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
            "VEZA_LIVE__WEBRTC_UDP".to_string(),
            "127.0.0.1:0".to_string(),
        ),
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

    /// A POST with no body.
    async fn post(&self, path: &str) -> (StatusCode, Value) {
        self.call("POST", path, "application/json", vec![]).await
    }

    async fn delete(&self, id: &str) -> StatusCode {
        self.call(
            "DELETE",
            &format!("/v1/tracks/{id}"),
            "application/json",
            vec![],
        )
        .await
        .0
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

/// Serves `router` on a free loopback port for the rest of the test; returns its base URL.
async fn serve_loopback(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
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
    assert_eq!(track.status, veza_stream::store::TrackStatus::Queued);
    assert_eq!(track.original_key, layout::original(track.id));
    assert!(n.app.storage.exists(&track.original_key).await.unwrap());
    // Not ready: no playback yet.
    let (status, p) = n.post(&format!("/v1/tracks/{id}/playback")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(p["type"], "https://veza.stream/problems/track-not-ready");
    // Only a failed track is retried.
    let (status, p) = n.post(&format!("/v1/tracks/{id}/retry")).await;
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
    assert_eq!(n.delete(&id).await, StatusCode::NO_CONTENT);
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
    assert_eq!(n.delete(&id).await, StatusCode::NOT_FOUND);
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
    let (status, p) = n.post(&format!("/v1/playlists/{pid}/playback")).await;
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
    assert_eq!(
        t.status,
        veza_stream::store::TrackStatus::Ready,
        "{:?}",
        t.error
    );
    // Published: the catalog was told, so delivery sees it at once.
    let p = n
        .app
        .catalog
        .published(track)
        .await
        .unwrap()
        .expect("published");
    assert_eq!(Some(p.prefix.clone()), t.media_prefix);
    let (status, play) = n.post(&format!("/v1/tracks/{id}/playback")).await;
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

#[tokio::test]
async fn the_dispatcher_runs_alone_and_signs_what_it_sends() {
    let n = node(&[]).await;
    let id = n.upload(FLAC).await;
    assert_eq!(n.delete(&id).await, StatusCode::NO_CONTENT);

    // A receiver on loopback that hands each request over.
    let (tx, mut rx) =
        tokio::sync::mpsc::unbounded_channel::<(axum::http::HeaderMap, bytes::Bytes)>();
    let receiver = Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let url = format!("{}/hook", serve_loopback(receiver).await);

    let secret = "a-secret-of-sixteen-bytes";
    let shutdown = tokio_util::sync::CancellationToken::new();
    let dispatcher = veza_stream::dispatch::Dispatcher {
        store: n.app.store.clone(),
        outbox: n.app.outbox.clone(),
        config: veza_stream::config::Events {
            webhooks: vec![veza_stream::config::Webhook {
                url,
                secret: secret.into(),
            }],
            ..Default::default()
        },
        metrics: n.app.metrics.clone(),
        shutdown: shutdown.clone(),
    };
    let running = tokio::spawn(veza_stream::dispatch::dispatcher(dispatcher));
    let (headers, body) = rx.recv().await.expect("one delivery");
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "track.deleted");
    assert_eq!(event["data"]["track_id"], id.as_str());
    assert_eq!(headers["veza-event-type"], "track.deleted");
    let sig = headers["veza-signature"].to_str().unwrap();
    let t: u64 = sig
        .strip_prefix("t=")
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert_eq!(sig, veza_stream::dispatch::signature(secret, t, &body));
    // Recorded as delivered once the receiver said so.
    let delivered = loop {
        let d = n.app.store.events(Some("delivered"), 10).await.unwrap();
        if !d.is_empty() {
            break d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(delivered[0].kind, "track.deleted");
    shutdown.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn the_jwks_refresher_runs_alone_and_loads_the_issuers_keys() {
    let keys = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/keys");
    let jwks = std::fs::read(keys.join("jwks.json")).unwrap();
    let issuer = Router::new().route(
        "/certs",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { ([("content-type", "application/json")], jwks) }
        }),
    );
    let url = format!("{}/certs", serve_loopback(issuer).await);

    let auth = veza_stream::config::Auth {
        jwt_jwks_url: url.clone(),
        ..Default::default()
    };
    let jwt = Arc::new(veza_stream::auth::Jwt::new(&auth, None).unwrap());
    let now = veza_stream::util::now_secs();
    let claims = serde_json::json!({"sub": "kc-user", "role": "artist", "exp": now + 300});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("ec-1".into());
    let pem = std::fs::read(keys.join("es256.key")).unwrap();
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap(),
    )
    .unwrap();
    // No key yet: refused.
    assert!(jwt.verify(&token).is_err());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(veza_stream::auth::jwks_refresher(
        jwt.clone(),
        url,
        std::time::Duration::from_secs(600),
        shutdown.clone(),
    ));
    let who = loop {
        if let Ok(who) = jwt.verify(&token) {
            break who;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(who.subject, "kc-user");
    assert_eq!(who.role, veza_stream::auth::Role::Artist);
    shutdown.cancel();
    running.await.unwrap();
}
