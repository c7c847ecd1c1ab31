//! The control API against the real binary, on SQLite and on PostgreSQL: who may do what (every
//! rule allowed and denied), playlists (order, duplication, If-Match, Idempotency-Key, missing
//! tracks), JWT issuers (HS256, RS256 key file, ES256 JWKS URL, Keycloak-style roles) and rate
//! limits.

mod common;

use common::fixtures;
use common::server::{Db, Server};
use serde_json::{json, Value};

const SMALL: &str = "formats/wav_pcm16_mono_16k.wav";

struct Cast {
    admin_key: String,
    admin_jwt: String,
    alice: String,
    bob: String,
    lisa: String,
}

fn cast(s: &Server) -> Cast {
    Cast {
        admin_key: s.key.clone(),
        admin_jwt: s.token("root", "admin"),
        alice: s.token("alice", "artist"),
        bob: s.token("bob", "artist"),
        lisa: s.token("lisa", "listener"),
    }
}

/// Asserts the status of one request and returns its body.
async fn expect(
    s: &Server,
    who: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    want: u16,
) -> Value {
    let (status, headers, json) = s.call(method, path, who, body.clone(), &[]).await;
    assert_eq!(
        status.as_u16(),
        want,
        "{method} {path} {body:?}: {json}\nlog:\n{}",
        s.log()
    );
    if status.as_u16() >= 400 {
        assert_eq!(
            headers["content-type"], "application/problem+json",
            "{method} {path}"
        );
        assert!(
            json["type"]
                .as_str()
                .unwrap()
                .starts_with("https://veza.stream/problems/"),
            "{json}"
        );
        assert_eq!(json["status"], want);
    }
    json
}

async fn ready_track(s: &Server, who: &str) -> String {
    let t = s.upload_as(&fixtures().join(SMALL), who).await;
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(s.wait_final(&id).await["status"], "ready");
    id
}

async fn authorization_matrix(db: Db) {
    // No clock-skew allowance, so that a token one second past its expiry is refused.
    let s = Server::start(db, &[("VEZA_AUTH__JWT_LEEWAY_SECONDS", "0")]).await;
    let c = cast(&s);
    let wav = std::fs::read(fixtures().join(SMALL)).unwrap();

    // Credentials.
    expect(&s, "", "GET", "/v1/tracks", None, 401).await;
    expect(&s, "not-a-key", "GET", "/v1/tracks", None, 401).await;
    // Issued two seconds ago for one second: expired by the server's clock, with no wait.
    let now = veza_stream::util::now_secs();
    let expired = s.token_at("alice", "artist", 1, now - 2);
    let fresh = s.token_at("alice", "artist", 60, now);
    let forged = {
        let mut parts: Vec<String> = c.alice.split('.').map(str::to_string).collect();
        parts[2] = parts[2].chars().rev().collect();
        parts.join(".")
    };
    expect(&s, &forged, "GET", "/v1/tracks", None, 401).await;
    expect(&s, &fresh, "GET", "/v1/tracks", None, 200).await;
    expect(&s, &expired, "GET", "/v1/tracks", None, 401).await;

    // Tracks: upload.
    for (who, want) in [(&c.admin_key, 202), (&c.alice, 202), (&c.lisa, 403)] {
        let r = s
            .client()
            .post(format!("{}/v1/tracks?filename=a.wav", s.url))
            .header("authorization", format!("Bearer {who}"))
            .header("content-type", "audio/wav")
            .body(wav.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "upload by {who}");
    }
    let a = ready_track(&s, &c.alice).await;
    let a_path = format!("/v1/tracks/{a}");

    // Tracks: list. Artists see their own only; listeners may not list.
    let all = expect(&s, &c.admin_key, "GET", "/v1/tracks", None, 200).await;
    assert!(all["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == a));
    let mine = expect(&s, &c.alice, "GET", "/v1/tracks", None, 200).await;
    assert!(mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["owner"] == "alice"));
    assert!(mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == a));
    let bobs = expect(&s, &c.bob, "GET", "/v1/tracks", None, 200).await;
    assert!(bobs["items"].as_array().unwrap().is_empty());
    expect(&s, &c.lisa, "GET", "/v1/tracks", None, 403).await;

    // Tracks: rename and share: the owner or an admin.
    let share = || Some(serde_json::json!({"visibility": "public"}));
    for (who, want) in [
        (&c.bob, 403),
        (&c.lisa, 403),
        (&c.alice, 200),
        (&c.admin_jwt, 200),
    ] {
        expect(&s, who, "PATCH", &a_path, share(), want).await;
    }
    expect(&s, "", "PATCH", &a_path, share(), 401).await;

    // Tracks: read, events, playback.
    for (who, want) in [
        (&c.admin_key, 200),
        (&c.admin_jwt, 200),
        (&c.alice, 200),
        (&c.bob, 403),
        (&c.lisa, 403),
    ] {
        expect(&s, who, "GET", &a_path, None, want).await;
        expect(&s, who, "GET", &format!("{a_path}/events"), None, want).await;
    }
    for who in [&c.admin_key, &c.alice, &c.bob, &c.lisa] {
        expect(&s, who, "POST", &format!("{a_path}/playback"), None, 200).await;
    }

    // Tracks: delete.
    expect(&s, &c.bob, "DELETE", &a_path, None, 403).await;
    expect(&s, &c.lisa, "DELETE", &a_path, None, 403).await;
    let a2 = s.upload_as(&fixtures().join(SMALL), &c.alice).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a3 = s.upload_as(&fixtures().join(SMALL), &c.alice).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    expect(
        &s,
        &c.alice,
        "DELETE",
        &format!("/v1/tracks/{a2}"),
        None,
        204,
    )
    .await;
    expect(
        &s,
        &c.admin_jwt,
        "DELETE",
        &format!("/v1/tracks/{a3}"),
        None,
        204,
    )
    .await;

    // Playlists: create.
    let new = |title: &str, vis: &str| json!({"title": title, "visibility": vis, "track_ids": [a]});
    expect(
        &s,
        &c.lisa,
        "POST",
        "/v1/playlists",
        Some(new("L", "public")),
        403,
    )
    .await;
    let pa = expect(
        &s,
        &c.alice,
        "POST",
        "/v1/playlists",
        Some(new("PA", "private")),
        201,
    )
    .await;
    let pp = expect(
        &s,
        &c.alice,
        "POST",
        "/v1/playlists",
        Some(new("PP", "public")),
        201,
    )
    .await;
    expect(
        &s,
        &c.bob,
        "POST",
        "/v1/playlists",
        Some(new("PB", "private")),
        201,
    )
    .await;
    expect(
        &s,
        &c.admin_key,
        "POST",
        "/v1/playlists",
        Some(new("PX", "private")),
        201,
    )
    .await;
    let pa = format!("/v1/playlists/{}", pa["id"].as_str().unwrap());
    let entry = pp["entries"][0]["entry_id"].as_str().unwrap().to_string();
    let pp = format!("/v1/playlists/{}", pp["id"].as_str().unwrap());

    // An artist adds its own tracks, and others' only once they are ready.
    let queued = s.upload_as(&fixtures().join(SMALL), &c.alice).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let with_queued = json!({"title": "B", "track_ids": [queued]});
    let (status, _, _) = s
        .call(
            "POST",
            "/v1/playlists",
            &c.bob,
            Some(with_queued.clone()),
            &[],
        )
        .await;
    // The upload may already be ready on a fast machine; then it is allowed.
    let ready_now = s.track(&queued).await["status"] == "ready";
    assert_eq!(status.as_u16(), if ready_now { 201 } else { 422 });
    expect(
        &s,
        &c.alice,
        "POST",
        "/v1/playlists",
        Some(with_queued),
        201,
    )
    .await;
    expect(
        &s,
        &c.bob,
        "POST",
        "/v1/playlists",
        Some(json!({"title": "B", "track_ids": ["not-an-id"]})),
        422,
    )
    .await;

    // Playlists: read. Private ones are invisible to others (404).
    for (who, want) in [
        (&c.alice, 200),
        (&c.admin_key, 200),
        (&c.bob, 404),
        (&c.lisa, 404),
    ] {
        expect(&s, who, "GET", &pa, None, want).await;
        expect(&s, who, "POST", &format!("{pa}/playback"), None, want).await;
    }
    for who in [&c.alice, &c.bob, &c.lisa, &c.admin_key] {
        expect(&s, who, "GET", &pp, None, 200).await;
        expect(&s, who, "POST", &format!("{pp}/playback"), None, 200).await;
    }
    let public = expect(&s, &c.lisa, "GET", "/v1/playlists?scope=public", None, 200).await;
    let titles: Vec<&str> = public["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["PP"]);
    let bobs = expect(&s, &c.bob, "GET", "/v1/playlists", None, 200).await;
    assert!(bobs["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["owner"] == "bob"));
    expect(&s, &c.lisa, "GET", "/v1/playlists?scope=all", None, 403).await;
    expect(&s, &c.bob, "GET", "/v1/playlists?scope=all", None, 403).await;
    let all = expect(
        &s,
        &c.admin_key,
        "GET",
        "/v1/playlists?scope=all",
        None,
        200,
    )
    .await;
    assert!(all["items"].as_array().unwrap().len() >= 5);

    // Playlists: every change, denied to other artists and listeners, allowed to the owner and
    // admins.
    let changes: Vec<(&str, String, Option<Value>, u16)> = vec![
        ("PATCH", pp.clone(), Some(json!({"title": "PP2"})), 200),
        (
            "PUT",
            format!("{pp}/tracks"),
            Some(json!({"track_ids": [a, a]})),
            200,
        ),
        (
            "POST",
            format!("{pp}/tracks"),
            Some(json!({"track_id": a})),
            201,
        ),
        (
            "PATCH",
            format!("{pp}/tracks/{entry}"),
            Some(json!({"position": 2})),
            200,
        ),
        ("DELETE", format!("{pp}/tracks/{entry}"), None, 200),
    ];
    for (method, path, body, ok) in changes {
        expect(&s, &c.bob, method, &path, body.clone(), 403).await;
        expect(&s, &c.lisa, method, &path, body.clone(), 403).await;
        expect(&s, &c.alice, method, &path, body.clone(), ok).await;
    }
    expect(
        &s,
        &c.admin_key,
        "PATCH",
        &pp,
        Some(json!({"description": "by admin"})),
        200,
    )
    .await;
    // Private: not even visible to others.
    expect(&s, &c.bob, "PATCH", &pa, Some(json!({"title": "x"})), 404).await;
    expect(&s, &c.lisa, "PATCH", &pa, Some(json!({"title": "x"})), 404).await;

    // Duplicate: any artist may copy what it can see.
    expect(&s, &c.bob, "POST", &format!("{pp}/duplicate"), None, 201).await;
    expect(&s, &c.lisa, "POST", &format!("{pp}/duplicate"), None, 403).await;
    expect(&s, &c.bob, "POST", &format!("{pa}/duplicate"), None, 404).await;
    expect(&s, &c.alice, "POST", &format!("{pa}/duplicate"), None, 201).await;

    // Delete.
    expect(&s, &c.bob, "DELETE", &pp, None, 403).await;
    expect(&s, &c.lisa, "DELETE", &pp, None, 403).await;
    expect(&s, &c.bob, "DELETE", &pa, None, 404).await;
    expect(&s, &c.alice, "DELETE", &pa, None, 204).await;
    expect(&s, &c.admin_key, "DELETE", &pp, None, 204).await;

    // Resumable uploads belong to their creator.
    let tus = [("tus-resumable", "1.0.0"), ("upload-length", "10")];
    let (st, _, _) = s.call("POST", "/v1/uploads", &c.lisa, None, &tus).await;
    assert_eq!(st, 403);
    let (st, h, _) = s.call("POST", "/v1/uploads", &c.alice, None, &tus).await;
    assert_eq!(st, 201);
    let upload = h["location"].to_str().unwrap().to_string();
    let v = [("tus-resumable", "1.0.0")];
    for (who, want) in [
        (&c.bob, 404),
        (&c.lisa, 404),
        (&c.alice, 200),
        (&c.admin_key, 200),
    ] {
        let (st, _, _) = s.call("HEAD", &upload, who, None, &v).await;
        assert_eq!(st.as_u16(), want, "HEAD upload");
    }
    let (st, _, _) = s.call("DELETE", &upload, &c.bob, None, &v).await;
    assert_eq!(st, 404);
    let (st, _, _) = s.call("DELETE", &upload, &c.alice, None, &v).await;
    assert_eq!(st, 204);

    // Events are for admins.
    let events = expect(&s, &c.admin_jwt, "GET", "/v1/events", None, 200).await;
    let first = events["items"][0]["id"].as_str().unwrap().to_string();
    for who in [&c.alice, &c.lisa] {
        expect(&s, who, "GET", "/v1/events", None, 403).await;
        expect(
            &s,
            who,
            "POST",
            &format!("/v1/events/{first}/replay"),
            None,
            403,
        )
        .await;
    }
    expect(
        &s,
        &c.admin_key,
        "POST",
        &format!("/v1/events/{first}/replay"),
        None,
        202,
    )
    .await;

    // A valid token without a known role.
    let dev_secret = {
        let text = std::fs::read_to_string(s.dir.join("data/dev-secrets.toml")).unwrap();
        let t: toml::Table = text.parse().unwrap();
        t["jwt_secret"].as_str().unwrap().to_string()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let superuser = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "eve", "role": "superuser", "exp": now + 60}),
        &jsonwebtoken::EncodingKey::from_secret(dev_secret.as_bytes()),
    )
    .unwrap();
    expect(&s, &superuser, "GET", "/v1/playlists", None, 403).await;
}

#[tokio::test]
async fn authorization_matrix_sqlite() {
    authorization_matrix(Db::Sqlite).await;
}

#[tokio::test]
async fn authorization_matrix_postgres() {
    authorization_matrix(Db::Postgres).await;
}

fn keys() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(alg: jsonwebtoken::Algorithm, kid: Option<&str>, pem: &str, claims: &Value) -> String {
    let pem = std::fs::read(keys().join(pem)).unwrap();
    let key = match alg {
        jsonwebtoken::Algorithm::RS256 => jsonwebtoken::EncodingKey::from_rsa_pem(&pem),
        _ => jsonwebtoken::EncodingKey::from_ec_pem(&pem),
    }
    .unwrap();
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

const ISS: &str = "https://id.example/realms/veza";

/// An OIDC provider's tokens: RS256 against a PEM public key; ES256 and RS256 against a JWKS
/// fetched from a URL, with Keycloak's `realm_access.roles`. Issuer and audience are enforced,
/// and the development HS256 secret is not accepted once an external issuer is configured.
#[tokio::test]
async fn external_issuers_rs256_key_file_and_jwks_url() {
    let claims = |role: Value, iss: &str, aud: &str| {
        json!({"sub": "kc-user", "iss": iss, "aud": aud, "exp": now() + 300, "role": role,
               "realm_access": {"roles": role}})
    };
    let pubkey = keys().join("rs256.pub").display().to_string();
    let s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_AUTH__JWT_PUBLIC_KEY_FILE", pubkey.as_str()),
            ("VEZA_AUTH__JWT_ISSUER", ISS),
            ("VEZA_AUTH__JWT_AUDIENCE", "veza-stream"),
        ],
    )
    .await;
    let rs = jsonwebtoken::Algorithm::RS256;
    let ok = sign(
        rs,
        None,
        "rs256.key",
        &claims(json!("artist"), ISS, "veza-stream"),
    );
    expect(&s, &ok, "GET", "/v1/tracks", None, 200).await;
    let listener = sign(
        rs,
        None,
        "rs256.key",
        &claims(json!("listener"), ISS, "veza-stream"),
    );
    expect(&s, &listener, "GET", "/v1/tracks", None, 403).await;
    let wrong_iss = sign(
        rs,
        None,
        "rs256.key",
        &claims(json!("artist"), "https://evil", "veza-stream"),
    );
    expect(&s, &wrong_iss, "GET", "/v1/tracks", None, 401).await;
    let wrong_aud = sign(
        rs,
        None,
        "rs256.key",
        &claims(json!("artist"), ISS, "other"),
    );
    expect(&s, &wrong_aud, "GET", "/v1/tracks", None, 401).await;
    let es = jsonwebtoken::Algorithm::ES256;
    let other_alg = sign(
        es,
        None,
        "es256.key",
        &claims(json!("artist"), ISS, "veza-stream"),
    );
    expect(&s, &other_alg, "GET", "/v1/tracks", None, 401).await;
    // No HS256 secret here: `token create` refuses, and HS256 tokens are refused.
    let out = std::process::Command::new(common::server::binary())
        .args(["token", "create", "--sub", "a", "--role", "admin"])
        .env("VEZA_AUTH__JWT_PUBLIC_KEY_FILE", &pubkey)
        .env("VEZA_SERVER__DATA_DIR", s.dir.join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("jwt_hs256_secret"));
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims(json!("admin"), ISS, "veza-stream"),
        &jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
    )
    .unwrap();
    expect(&s, &hs, "GET", "/v1/tracks", None, 401).await;
    drop(s);

    // A JWKS file: keys chosen by kid.
    let jwks_file = keys().join("jwks.json").display().to_string();
    let s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_AUTH__JWT_JWKS_FILE", jwks_file.as_str()),
            ("VEZA_AUTH__JWT_ISSUER", ISS),
        ],
    )
    .await;
    let by_kid = sign(
        es,
        Some("ec-1"),
        "es256.key",
        &claims(json!("artist"), ISS, "x"),
    );
    expect(&s, &by_kid, "GET", "/v1/tracks", None, 200).await;
    let wrong_kid = sign(
        es,
        Some("rsa-1"),
        "es256.key",
        &claims(json!("artist"), ISS, "x"),
    );
    expect(&s, &wrong_kid, "GET", "/v1/tracks", None, 401).await;
    drop(s);

    // A JWKS served over HTTP, as Keycloak's certs endpoint.
    let jwks = std::fs::read(keys().join("jwks.json")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/certs", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                jwks.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(&jwks).await;
        }
    });
    let s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_AUTH__JWT_JWKS_URL", jwks_url.as_str()),
            ("VEZA_AUTH__JWT_ISSUER", ISS),
            ("VEZA_AUTH__JWT_ROLE_CLAIM", "realm_access.roles"),
        ],
    )
    .await;
    let admin = sign(
        es,
        Some("ec-1"),
        "es256.key",
        &claims(json!(["offline_access", "admin"]), ISS, "any"),
    );
    // The JWKS is fetched in the background at start: wait for the first answer that is not 401.
    let start = std::time::Instant::now();
    loop {
        let (st, _, _) = s.call("GET", "/v1/events", &admin, None, &[]).await;
        if st != 401 {
            assert_eq!(st, 200);
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "JWKS never loaded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let rsa = sign(
        rs,
        Some("rsa-1"),
        "rs256.key",
        &claims(json!(["artist"]), ISS, "any"),
    );
    expect(&s, &rsa, "GET", "/v1/tracks", None, 200).await;
    expect(&s, &rsa, "GET", "/v1/events", None, 403).await;
    let no_role = sign(
        es,
        Some("ec-1"),
        "es256.key",
        &claims(json!(["offline_access"]), ISS, "any"),
    );
    expect(&s, &no_role, "GET", "/v1/tracks", None, 403).await;
    let unknown_kid = sign(
        es,
        Some("ec-9"),
        "es256.key",
        &claims(json!(["admin"]), ISS, "any"),
    );
    expect(&s, &unknown_kid, "GET", "/v1/tracks", None, 401).await;
}

/// Per-subject and per-IP token buckets: past the burst, 429 with Retry-After, per key.
#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    // One request a minute after a burst of 5, so nothing refills while the test runs.
    let s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_LIMITS__PER_SUBJECT_PER_MINUTE", "1"),
            ("VEZA_LIMITS__PER_IP_PER_MINUTE", "0"),
            ("VEZA_LIMITS__BURST", "5"),
        ],
    )
    .await;
    let alice = s.token("alice", "artist");
    let bob = s.token("bob", "artist");
    for _ in 0..5 {
        expect(&s, &alice, "GET", "/v1/playlists", None, 200).await;
    }
    let (st, h, problem) = s.call("GET", "/v1/playlists", &alice, None, &[]).await;
    assert_eq!(st, 429);
    assert_eq!(problem["type"], "https://veza.stream/problems/rate-limited");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // Another subject has its own bucket.
    expect(&s, &bob, "GET", "/v1/playlists", None, 200).await;
    drop(s);

    let s = Server::start(
        Db::Sqlite,
        &[
            ("VEZA_LIMITS__PER_SUBJECT_PER_MINUTE", "0"),
            ("VEZA_LIMITS__PER_IP_PER_MINUTE", "1"),
            ("VEZA_LIMITS__BURST", "3"),
        ],
    )
    .await;
    let alice = s.token("alice", "artist");
    let bob = s.token("bob", "artist");
    for who in [&alice, &bob, &alice] {
        expect(&s, who, "GET", "/v1/playlists", None, 200).await;
    }
    // The address is over its limit, whoever asks, even without credentials.
    let (st, h, _) = s.call("GET", "/v1/playlists", &bob, None, &[]).await;
    assert_eq!(st, 429);
    assert!(h.contains_key("retry-after"));
    let (st, _, _) = s.call("GET", "/v1/tracks", "", None, &[]).await;
    assert_eq!(st, 429);
    // Operations and delivery are not the control API's limits' business.
    let (st, _, _) = s.call("GET", "/healthz", "", None, &[]).await;
    assert_eq!(st, 200);
}
