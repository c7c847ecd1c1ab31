//! Two servers on one PostgreSQL and one Redis (Debian's `redis-server`, started here on a port
//! of its own): a client meets the same rate limit whichever node it reaches; a JWT revoked on
//! one node is refused by the other; a channel running on one node is followed over SSE on the
//! other. Then Redis goes away: requests keep working under each node's own limits, with
//! `veza_redis_up 0`, a warning and fallbacks counted; revocations still reach every node
//! through the store; Redis comes back and limits are shared again.

mod common;

use common::until;

use common::live::{create, ffmpeg_source, track_mp3, wait_for};
use common::server::{free_port, Db, Server};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const API_KEY: &str = "cluster-test-api-key-0123456789";

/// Debian's redis-server on a port of its own, keeping nothing on disk.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Debian's redis-server");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "redis never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis { child, port }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn status(s: &Server, path: &str, bearer: &str) -> u16 {
    s.client()
        .get(format!("{}{path}", s.url))
        .header("authorization", format!("Bearer {bearer}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_share_limits_revocations_and_channel_events_and_survive_redis_going_away() {
    let mut redis = Redis::start(free_port());
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let keys = format!("[\"{API_KEY}\"]");
    // What every node of one deployment shares: Redis, the secrets, the store.
    let shared = vec![
        ("VEZA_REDIS__URL", url.as_str()),
        ("VEZA_AUTH__API_KEYS", keys.as_str()),
        (
            "VEZA_AUTH__JWT_HS256_SECRET",
            "cluster-test-jwt-secret-0123456789abcdef",
        ),
        (
            "VEZA_AUTH__PLAYBACK_KEYS",
            "[{ id = \"k1\", secret = \"cluster-test-playback-0123456789\" }]",
        ),
    ];
    let mut a = Server::start(Db::Postgres, &shared).await;
    let db = a.db_url();
    let mut env_b = shared.clone();
    env_b.push(("VEZA_DATABASE__URL", db.as_str()));
    let mut b = Server::start(Db::Sqlite, &env_b).await;
    for s in [&a, &b] {
        until("Redis up on both nodes", || async {
            s.metric("veza_redis_up", "").await == 1.0
        })
        .await;
    }

    // A channel running on A, followed over SSE on B.
    let c = create(&a, json!({"title": "Shared", "visibility": "public"})).await;
    let id = c["id"].as_str().unwrap().to_string();
    let key = c["stream_key"].as_str().unwrap().to_string();
    let mut follower = b
        .client()
        .get(format!("{}/v1/public/channels/{id}/events", b.url))
        .send()
        .await
        .unwrap();
    assert_eq!(follower.status(), 200);
    let mut source = ffmpeg_source(&a, &id, &key, &track_mp3(), "mp3");
    wait_for(&a, &id, "/state", "live").await;
    let mut seen = String::new();
    let start = Instant::now();
    while !(seen.contains("event: state") && seen.contains("\"live\"")) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "B's follower never heard the channel go live:\n{seen}"
        );
        if let Ok(Ok(Some(chunk))) =
            tokio::time::timeout(Duration::from_secs(1), follower.chunk()).await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains("event: nowplaying"), "{seen}");
    source.stop();
    drop(follower);

    // Password guessing is counted by both nodes together: five wrong guesses, alternating,
    // then the next is refused on either node.
    let guess = |s: &Server| {
        let r = s
            .client()
            .post(format!("{}/v1/sessions", s.url))
            .json(&json!({"email": "nobody@example.org", "password": "not-the-password"}))
            .send();
        async move { r.await.unwrap().status().as_u16() }
    };
    let mut answered = Vec::new();
    for i in 0..5 {
        answered.push(guess(if i % 2 == 0 { &a } else { &b }).await);
    }
    assert_eq!(answered, [401; 5]);
    assert_eq!(guess(&b).await, 429);
    assert_eq!(guess(&a).await, 429);

    // A token revoked on A is refused on B.
    let bob = a.token("bob", "listener");
    assert_eq!(status(&b, "/v1/me", &bob).await, 200);
    let (st, _, _) = a
        .call("POST", "/v1/tokens/revoke", &bob, Some(json!({})), &[])
        .await;
    assert_eq!(st, 204);
    let revoked = Instant::now();
    assert_eq!(status(&a, "/v1/me", &bob).await, 401);
    until("B refuses the revoked token", || async {
        status(&b, "/v1/me", &bob).await == 401
    })
    .await;
    eprintln!(
        "revocation reached the other node in {:?}",
        revoked.elapsed()
    );
    let (_, _, body) = b.call("GET", "/v1/me", &bob, None, &[]).await;
    assert!(
        body["type"]
            .as_str()
            .unwrap_or("")
            .ends_with("token-revoked"),
        "{body}"
    );
    // A listener may not revoke another's token; careless bodies are refused.
    let carol = a.token("carol", "listener");
    let (st, _, _) = a
        .call(
            "POST",
            "/v1/tokens/revoke",
            &carol,
            Some(json!({"jti": "someone-else"})),
            &[],
        )
        .await;
    assert_eq!(st, 403);
    let (st, _, _) = a
        .call(
            "POST",
            "/v1/tokens/revoke",
            API_KEY,
            Some(json!({"jti": ""})),
            &[],
        )
        .await;
    assert_eq!(st, 422);
    let (st, _, _) = a
        .call("POST", "/v1/tokens/revoke", API_KEY, Some(json!({})), &[])
        .await;
    assert_eq!(st, 422, "an API key has no jti of its own");
    let (st, _, _) = a
        .call(
            "POST",
            "/v1/tokens/revoke",
            API_KEY,
            Some(json!({"jti": 7})),
            &[],
        )
        .await;
    assert_eq!(st, 400);

    // Both nodes again, with a small limit: a subject gets ten requests at once, then one a
    // minute, which makes what is left easy to count across nodes.
    for s in [&mut a, &mut b] {
        s.kill();
        s.set_env("VEZA_LIMITS__PER_SUBJECT_PER_MINUTE", "1");
        s.set_env("VEZA_LIMITS__BURST", "10");
        s.spawn();
    }
    for s in [&a, &b] {
        until("Redis up after the restart", || async {
            s.metric("veza_redis_up", "").await == 1.0
        })
        .await;
    }
    let alice = a.token("alice", "artist");
    let mut answered = Vec::new();
    for i in 0..14 {
        let node = if i % 2 == 0 { &a } else { &b };
        answered.push(status(node, "/v1/me", &alice).await);
    }
    assert_eq!(
        answered.iter().filter(|s| **s == 200).count(),
        10,
        "{answered:?}"
    );
    assert!(answered[10..].iter().all(|s| *s == 429), "{answered:?}");

    // Redis goes away: both nodes keep answering, each under its own limit, and say so.
    redis.stop();
    for s in [&a, &b] {
        until("veza_redis_up 0", || async {
            s.metric("veza_redis_up", "").await == 0.0
        })
        .await;
    }
    let erin = a.token("erin", "artist");
    let mut ok = 0;
    for node in [&a, &b] {
        for _ in 0..10 {
            if status(node, "/v1/me", &erin).await == 200 {
                ok += 1;
            }
        }
    }
    assert_eq!(
        ok, 20,
        "each node applies its own limit while Redis is away"
    );
    for s in [&a, &b] {
        assert!(s.metric("veza_redis_fallbacks_total", "").await >= 10.0);
        s.wait_log("Redis does not answer").await;
    }
    // Revocations still reach the other node, through the store.
    let frank = a.token("frank", "listener");
    let (st, _, _) = a
        .call("POST", "/v1/tokens/revoke", &frank, Some(json!({})), &[])
        .await;
    assert_eq!(st, 204);
    until("B refuses a token revoked while Redis is away", || async {
        status(&b, "/v1/me", &frank).await == 401
    })
    .await;

    // Redis comes back on the same port: limits are shared again.
    let _redis = Redis::start(redis.port);
    for s in [&a, &b] {
        until("Redis up again", || async {
            s.metric("veza_redis_up", "").await == 1.0
        })
        .await;
    }
    let gina = a.token("gina", "artist");
    let mut answered = Vec::new();
    for i in 0..12 {
        let node = if i % 2 == 0 { &a } else { &b };
        answered.push(status(node, "/v1/me", &gina).await);
    }
    assert_eq!(
        answered.iter().filter(|s| **s == 200).count(),
        10,
        "{answered:?}"
    );
}
