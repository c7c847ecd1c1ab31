//! Relays end to end: a channel whose `relay_url` names a mount of Debian's icecast2 (fed by
//! ffmpeg) goes live from it, plays on its own mounts, shows the remote's ICY titles as
//! now-playing, and comes back after the remote mount goes away and returns; origins that send
//! garbage, stall or redirect in a loop are retried with a backoff and never put a channel on
//! the air or hurt the server.

mod common;

use common::live::*;
use common::server::{Db, Server};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ICECAST_PASSWORD: &str = "relaytest";

/// Debian's icecast2 on a free loopback port, as `nobody` when the tests run as root (it refuses
/// to run as root). Killed when dropped.
struct Icecast {
    port: u16,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Icecast {
    async fn start() -> Icecast {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let log = dir.path().join("log");
        std::fs::create_dir(&log).unwrap();
        std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let config = dir.path().join("icecast.xml");
        std::fs::write(
            &config,
            format!(
                "<icecast><limits><clients>100</clients><sources>4</sources>\
                 <source-timeout>10</source-timeout><burst-size>65536</burst-size></limits>\
                 <authentication><source-password>{ICECAST_PASSWORD}</source-password>\
                 <admin-user>admin</admin-user><admin-password>{ICECAST_PASSWORD}</admin-password>\
                 </authentication><hostname>127.0.0.1</hostname>\
                 <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>\
                 <paths><basedir>/usr/share/icecast2</basedir><logdir>{}</logdir>\
                 <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot>\
                 </paths><logging><loglevel>2</loglevel></logging></icecast>",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let mut cmd = if running_as_root() {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "icecast2",
            ]);
            c
        } else {
            Command::new("icecast2")
        };
        let proc = Proc(
            cmd.arg("-c")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("icecast2"),
        );
        let start = Instant::now();
        while reqwest::get(format!("http://127.0.0.1:{port}/status-json.xsl"))
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "icecast2 did not start"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Icecast {
            port,
            _proc: proc,
            _dir: dir,
        }
    }

    fn mount(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    /// ffmpeg as the remote mount's source (MP3, in real time).
    fn source(&self, name: &str) -> Proc {
        ffmpeg_source_at(&self.mount(name), ICECAST_PASSWORD, &track_mp3(), "mp3")
    }

    /// Sets the remote mount's title, as BUTT and Liquidsoap do.
    async fn set_title(&self, name: &str, title: &str) {
        let r = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/admin/metadata", self.port))
            .basic_auth("admin", Some(ICECAST_PASSWORD))
            .query(&[
                ("mount", format!("/{name}").as_str()),
                ("mode", "updinfo"),
                ("song", title),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// Waits until the remote mount is listed with a source.
    async fn wait_mount(&self, name: &str) {
        let start = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(self.mount(name)).await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "mount {name} never came"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Polls the channel until `check` holds (the limit only keeps a broken build from hanging).
async fn until(s: &Server, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let c = channel(s, id).await;
        if check(&c) {
            return c;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "{what}: {c}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// On the defaults, a channel relays an icecast2 mount: it goes live from it, its mounts play
/// the audio, the remote ICY title is its now-playing, and after the remote source leaves and
/// comes back the relay connects again by itself.
#[tokio::test(flavor = "multi_thread")]
async fn a_channel_relays_an_icecast2_mount_with_its_titles_and_comes_back() {
    let ice = Icecast::start().await;
    let mut remote = ice.source("remote.mp3");
    ice.wait_mount("remote.mp3").await;
    let s = Server::start(Db::Sqlite, &[]).await;
    let c = create(
        &s,
        json!({"title": "Relayed", "visibility": "public", "slug": "relayed",
               "relay_url": ice.mount("remote.mp3")}),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["relay_url"], ice.mount("remote.mp3"));
    let live = until(&s, &id, "the relay went live", |c| c["state"] == "live").await;
    assert_eq!(live["source"]["client"], "relay", "{live}");
    let rms = ffmpeg_listen(&format!("http://{}/listen/relayed.mp3", addr(&s)), 4);
    assert!(rms > 0.01, "the relayed audio plays: RMS {rms}");

    ice.set_title("remote.mp3", "Remote Artist - Remote Song")
        .await;
    until(&s, &id, "the remote title is now-playing", |c| {
        c["now_playing"]["title"] == "Remote Artist - Remote Song"
    })
    .await;

    // The remote source leaves: the relay ends, and the channel (no auto-DJ) goes off the air.
    remote.stop();
    until(&s, &id, "the channel went offline", |c| {
        c["state"] != "live"
    })
    .await;
    // It comes back: the relay, retrying with its backoff, goes live again.
    let _remote = ice.source("remote.mp3");
    ice.wait_mount("remote.mp3").await;
    until(&s, &id, "the relay came back", |c| {
        c["state"] == "live" && c["source"]["client"] == "relay"
    })
    .await;

    // Removing the relay_url stops the relay.
    let (st, _, v) = s
        .call(
            "PATCH",
            &format!("/v1/channels/{id}"),
            &s.key,
            Some(json!({"relay_url": null})),
            &[],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    until(&s, &id, "the relay stopped", |c| c["state"] != "live").await;
}

/// Origins that answer garbage, stall after their head, or redirect in a loop: each is fetched
/// again and again with a backoff, never goes on the air, and the server stays well.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_relay_origins_are_retried_and_never_go_on_air() {
    use axum::response::IntoResponse;
    let hits: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
    let (h0, h1, h2) = (hits.clone(), hits.clone(), hits.clone());
    let app = axum::Router::new()
        .route(
            "/garbage",
            axum::routing::get(move || {
                h0[0].fetch_add(1, Ordering::Relaxed);
                async {
                    let noise: Vec<u8> = (0..400_000u32).map(|i| (i * 7919 % 251) as u8).collect();
                    ([("content-type", "audio/mpeg")], noise).into_response()
                }
            }),
        )
        .route(
            "/stall",
            axum::routing::get(move || {
                h1[1].fetch_add(1, Ordering::Relaxed);
                async {
                    let body = futures::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
                    (
                        [("content-type", "audio/mpeg")],
                        axum::body::Body::from_stream(body),
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/loop",
            axum::routing::get(move || {
                h2[2].fetch_add(1, Ordering::Relaxed);
                async { axum::response::Redirect::temporary("/loop").into_response() }
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });

    let s = Server::start(Db::Sqlite, &[("VEZA_LIVE__SOURCE_TIMEOUT_SECONDS", "2")]).await;
    let mut ids = Vec::new();
    for path in ["garbage", "stall", "loop"] {
        let c = create(
            &s,
            json!({"title": path, "relay_url": format!("{origin}/{path}")}),
        )
        .await;
        ids.push(c["id"].as_str().unwrap().to_string());
    }
    // Each origin is fetched more than once: the relay retries after a failure.
    let start = Instant::now();
    while hits[0].load(Ordering::Relaxed) < 2
        || hits[1].load(Ordering::Relaxed) < 2
        // A redirect loop is followed five times per fetch, not forever: two fetches.
        || hits[2].load(Ordering::Relaxed) < 12
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "retries: garbage {}, stall {}, loop {}",
            hits[0].load(Ordering::Relaxed),
            hits[1].load(Ordering::Relaxed),
            hits[2].load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // An origin that never answers 200, or stalls after its head, never takes the channel.
    for id in &ids[1..] {
        let c = channel(&s, id).await;
        assert_eq!(c["state"], "offline", "{c}");
        assert!(c["source"].is_null(), "{c}");
    }
    let (st, _, _) = get(&format!("http://{}/healthz", addr(&s))).await;
    assert_eq!(st, 200);
    // Garbage goes on the air only until the decoder gives up on it, as from a source client;
    // with its relay_url removed, the channel is off the air for good.
    let (st, _, v) = s
        .call(
            "PATCH",
            &format!("/v1/channels/{}", ids[0]),
            &s.key,
            Some(json!({"relay_url": null})),
            &[],
        )
        .await;
    assert_eq!(st, 200, "{v}");
    until(&s, &ids[0], "the garbage relay stopped", |c| {
        c["state"] == "offline"
    })
    .await;
}
