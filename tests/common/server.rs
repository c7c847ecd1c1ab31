//! Starts the real `veza-stream serve` binary on a free loopback port with its own data directory,
//! and talks to it over HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// PostgreSQL on these machines and in CI.
pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh schema in the `test` database, so tests running at once never see each other's rows.
pub async fn pg_schema() -> String {
    use sqlx::Executor;
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(POSTGRES)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (database test)");
    pool.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
        .await
        .expect("create schema");
    pool.close().await;
    format!("{POSTGRES}?options=-c%20search_path%3D{name}")
}

/// Which metadata store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A free loopback port (for a server that must keep its address across a restart, or a peer
/// whose address the server must know before it starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running server.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    /// `https://host:port` when the server has an HTTPS listener.
    pub https: Option<String>,
    /// The start-up banner's lines.
    pub banner: Vec<String>,
    pub key: String,
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    /// A command the server runs under (`prlimit --nofile=…`), if any.
    launcher: Vec<String>,
    http: reqwest::Client,
    bucket: Option<Moto>,
    _tmp: Option<tempfile::TempDir>,
}

/// moto's S3-compatible server on a free port, with one bucket.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub bucket: String,
}

impl Moto {
    pub async fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]')");
        let endpoint = format!("http://127.0.0.1:{port}");
        let c = reqwest::Client::new();
        let start = Instant::now();
        while c.get(format!("{endpoint}/")).send().await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let bucket = "veza-test".to_string();
        let r = c.put(format!("{endpoint}/{bucket}")).send().await.unwrap();
        assert!(r.status().is_success(), "create bucket: {}", r.status());
        Moto {
            child,
            endpoint,
            bucket,
        }
    }

    /// Every key in the bucket (ListObjectsV2; moto accepts unsigned requests).
    pub async fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}/{}?list-type=2", self.endpoint, self.bucket);
            if let Some(t) = &token {
                url += &format!(
                    "&continuation-token={}",
                    t.replace('+', "%2B")
                        .replace('/', "%2F")
                        .replace('=', "%3D")
                );
            }
            let xml = reqwest::get(url).await.unwrap().text().await.unwrap();
            for part in xml.split("<Key>").skip(1) {
                keys.push(part.split("</Key>").next().unwrap().to_string());
            }
            token = xml.split("<NextContinuationToken>").nth(1).map(|p| {
                p.split("</NextContinuationToken>")
                    .next()
                    .unwrap()
                    .to_string()
            });
            if token.is_none() {
                break;
            }
        }
        keys.sort();
        keys
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_veza-stream"))
}

impl Server {
    /// Starts a server on `db` with its media in a fresh S3 bucket on moto.
    pub async fn start_s3(db: Db) -> Server {
        let moto = Moto::start().await;
        let mut s = Server::start_with(
            db,
            &[
                ("VEZA_STORAGE__BACKEND", "s3"),
                ("VEZA_STORAGE__S3_ENDPOINT", &moto.endpoint),
                ("VEZA_STORAGE__S3_BUCKET", &moto.bucket),
                ("VEZA_STORAGE__S3_ALLOW_HTTP", "true"),
                ("VEZA_STORAGE__S3_ACCESS_KEY_ID", "test"),
                ("VEZA_STORAGE__S3_SECRET_ACCESS_KEY", "test"),
            ],
            false,
        )
        .await;
        s.bucket = Some(moto);
        s.spawn();
        s
    }

    /// Starts a server on `db` with extra `VEZA_*` settings.
    pub async fn start(db: Db, extra: &[(&str, &str)]) -> Server {
        Server::start_with(db, extra, true).await
    }

    /// A server on SQLite with the development certificate on an HTTPS port of its own (TCP
    /// and, with the `http3` feature, UDP); `extra` may name the port.
    pub async fn start_dev_tls(extra: &[(&str, &str)]) -> Server {
        let mut env = vec![
            ("VEZA_SERVER__TLS", "dev"),
            ("VEZA_SERVER__TLS_LISTEN", "127.0.0.1:0"),
        ];
        env.extend_from_slice(extra);
        Server::start(Db::Sqlite, &env).await
    }

    /// The development certificate (`server.tls = "dev"`).
    pub fn dev_cert(&self) -> PathBuf {
        self.dir.join("data/dev-tls-cert.pem")
    }

    /// The HTTPS listener's address, TCP and UDP.
    pub fn tls_addr(&self) -> std::net::SocketAddr {
        let https = self.https.clone().expect("an HTTPS listener in the banner");
        https.trim_start_matches("https://").parse().unwrap()
    }

    async fn start_with(db: Db, extra: &[(&str, &str)], spawn: bool) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut env: Vec<(String, String)> = vec![
            ("VEZA_SERVER__LISTEN".into(), "127.0.0.1:0".into()),
            (
                "VEZA_SERVER__DATA_DIR".into(),
                dir.join("data").display().to_string(),
            ),
            (
                "VEZA_STORAGE__PATH".into(),
                dir.join("media").display().to_string(),
            ),
            ("VEZA_JOBS__WORKERS".into(), "2".into()),
            // Tests run in parallel: each server takes its own WebRTC port, on the default's
            // unspecified address (every interface), as README's first command binds it.
            ("VEZA_LIVE__WEBRTC_UDP".into(), "0.0.0.0:0".into()),
        ];
        let url = match db {
            Db::Sqlite => format!("sqlite://{}", dir.join("data/veza.db").display()),
            Db::Postgres => pg_schema().await,
        };
        env.push(("VEZA_DATABASE__URL".into(), url));
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k.to_string(), v.to_string()));
        }
        let mut s = Server {
            child: None,
            url: String::new(),
            https: None,
            banner: Vec::new(),
            key: String::new(),
            dir,
            env,
            launcher: Vec::new(),
            http: reqwest::Client::new(),
            bucket: None,
            _tmp: Some(tmp),
        };
        if spawn {
            s.spawn();
        }
        s
    }

    /// (Re)starts the process with the same settings and data.
    pub fn spawn(&mut self) {
        // A restart keeps the port only if it was fixed; tests that restart read `url` again.
        let mut cmd = match self.launcher.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary());
                c
            }
            None => Command::new(binary()),
        };
        cmd.arg("serve")
            .envs(self.env.iter().cloned())
            .env("VEZA_LOG__LEVEL", "veza_stream=debug,info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("server.log"))
                    .expect("log file"),
            ));
        let mut child = cmd.spawn().expect("start veza-stream serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        let mut key = None;
        self.banner.clear();
        for line in lines.by_ref() {
            let line = line.expect("banner");
            self.banner.push(line.clone());
            if let Some(u) = line.strip_prefix("Veza Stream listening on ") {
                url = Some(u.trim().to_string());
            }
            if let Some(h) = line.trim().strip_prefix("HTTPS: ") {
                self.https = h.split_whitespace().next().map(str::to_string);
            }
            if let Some(k) = line.trim().strip_prefix("development API key: ") {
                key = Some(k.trim().to_string());
            }
            if line.trim_start().starts_with("metrics:") {
                break;
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.url = url.unwrap_or_else(|| panic!("no banner; log:\n{}", self.log()));
        // Behind an HTTPS public URL, the tests' client trusts the development certificate.
        let dev_cert = self.dir.join("data/dev-tls-cert.pem");
        if self.url.starts_with("https://") && dev_cert.exists() {
            let cert = reqwest::Certificate::from_pem(&std::fs::read(dev_cert).unwrap()).unwrap();
            self.http = reqwest::Client::builder()
                .add_root_certificate(cert)
                .build()
                .unwrap();
        }
        if let Some(k) = key {
            self.key = k;
        }
        if let Some((_, k)) = self.env.iter().find(|(k, _)| k == "VEZA_AUTH__API_KEYS") {
            self.key = k
                .trim_matches(|c| c == '[' || c == ']' || c == '"')
                .to_string();
        }
        self.child = Some(child);
    }

    /// Starts a server that is not running yet (see [`Server::configure`]) under `launcher`.
    pub fn spawn_under(&mut self, launcher: &[&str]) {
        self.launcher = launcher.iter().map(|s| s.to_string()).collect();
        self.spawn();
    }

    /// A server's settings and data directory, not started yet.
    pub async fn configure(db: Db, extra: &[(&str, &str)]) -> Server {
        Server::start_with(db, extra, false).await
    }

    /// Changes one setting for the next [`Server::spawn`].
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    /// Whether media lives in S3 (moto).
    pub fn is_s3(&self) -> bool {
        self.bucket.is_some()
    }

    /// Stops the S3 server under a running veza-stream (storage outage).
    pub fn stop_storage(&mut self) {
        self.bucket.take().expect("an S3-backed server");
    }

    /// The metadata store URL the server uses.
    pub fn db_url(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "VEZA_DATABASE__URL")
            .map(|(_, v)| v.clone())
            .expect("database url")
    }

    /// Runs `sql` (one row, one column) against the server's store.
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.one::<i64>(sql)
            .await
            .unwrap_or_else(|| panic!("no row: {sql}"))
    }

    /// Runs `sql` returning one text value, or None.
    pub async fn text(&self, sql: &str) -> Option<String> {
        self.one::<Option<String>>(sql).await.flatten()
    }

    /// At most one row of one column, from whichever backend the server uses.
    async fn one<T>(&self, sql: &str) -> Option<T>
    where
        T: Send
            + Unpin
            + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>
            + for<'r> sqlx::Decode<'r, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>,
    {
        let url = self.db_url();
        let query = sqlx::AssertSqlSafe(sql.to_string());
        if url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&url).await.expect("sqlite");
            let v = sqlx::query_scalar(query)
                .fetch_optional(&pool)
                .await
                .expect(sql);
            pool.close().await;
            v
        } else {
            let pool = sqlx::PgPool::connect(&url).await.expect("postgres");
            let v = sqlx::query_scalar(query)
                .fetch_optional(&pool)
                .await
                .expect(sql);
            pool.close().await;
            v
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// What follows `prefix` on a line of the banner.
    pub fn banner_line(&self, prefix: &str) -> Option<String> {
        self.banner
            .iter()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_string))
    }

    /// Waits until the log says `text`. The limit only keeps a broken build from hanging CI.
    pub async fn wait_log(&self, text: &str) {
        let start = Instant::now();
        while !self.log().contains(text) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the log never said {text:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, and wait for the process to go.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        self.child.take().expect("running").wait().expect("wait")
    }

    /// One client (and connection pool) per server under test.
    pub fn client(&self) -> reqwest::Client {
        self.http.clone()
    }

    /// A metric's value from `/metrics`, summed over the series whose labels contain `labels`
    /// (`""`: every series); 0 when the server exports none.
    pub async fn metric(&self, name: &str, labels: &str) -> f64 {
        let text = self
            .client()
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with([' ', '{']))
                    && l.contains(labels)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn auth(&self) -> String {
        format!("Bearer {}", self.key)
    }

    /// A development JWT for `sub` in `role`, minted by `veza-stream token create` with this
    /// server's settings.
    pub fn token(&self, sub: &str, role: &str) -> String {
        self.token_ttl(sub, role, "1h")
    }

    /// Like [`Server::token`], with a lifetime.
    pub fn token_ttl(&self, sub: &str, role: &str, ttl: &str) -> String {
        let out = Command::new(binary())
            .args([
                "token", "create", "--sub", sub, "--role", role, "--ttl", ttl,
            ])
            .envs(self.env.iter().cloned())
            .output()
            .expect("token create");
        assert!(
            out.status.success(),
            "token create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A JWT as `token create` makes it, but issued at `now` (Unix seconds): the test's own clock,
    /// so that expiry is tested without waiting for it.
    pub fn token_at(&self, sub: &str, role: &str, ttl_seconds: u64, now: u64) -> String {
        let config = veza_stream::Config::load(None, self.env.iter().cloned()).expect("config");
        let secret = match config.auth.jwt_hs256_secret.as_str() {
            "" => {
                veza_stream::auth::DevSecrets::load_existing(&config.server.data_dir)
                    .expect("development secrets")
                    .jwt_secret
            }
            s => s.to_string(),
        };
        let role = veza_stream::auth::Role::parse(role).expect("a role");
        veza_stream::auth::jwt::mint(&secret, sub, role, ttl_seconds, &config.auth, now)
            .expect("mint")
    }

    /// One control request with `bearer` (an API key or a JWT; empty: none) and an optional JSON
    /// body. Returns the status, headers and JSON body (Null when there is none).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> (
        reqwest::StatusCode,
        reqwest::header::HeaderMap,
        serde_json::Value,
    ) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client().request(method, format!("{}{path}", self.url));
        if !bearer.is_empty() {
            req = req.header("authorization", format!("Bearer {bearer}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        let h = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        (status, h, json)
    }

    /// Uploads a file as a raw body with `bearer`; returns the 202 body.
    pub async fn upload_as(&self, path: &Path, bearer: &str) -> serde_json::Value {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let r = self
            .client()
            .post(format!("{}/v1/tracks", self.url))
            .query(&[("filename", name.as_str())])
            .header("authorization", format!("Bearer {bearer}"))
            .header("content-type", "application/octet-stream")
            .body(tokio::fs::read(path).await.expect("fixture"))
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status(), 202, "upload of {name}");
        r.json().await.expect("json")
    }

    /// Uploads a file as a raw body; returns the 202 body.
    pub async fn upload(&self, path: &Path) -> serde_json::Value {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let body = tokio::fs::read(path).await.expect("fixture");
        let r = self
            .client()
            .post(format!("{}/v1/tracks", self.url))
            .query(&[("filename", name.as_str())])
            .header("authorization", self.auth())
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status(), 202, "upload of {name}");
        r.json().await.expect("json")
    }

    /// DELETE /v1/tracks/{id}; the status.
    pub async fn delete(&self, id: &str) -> reqwest::StatusCode {
        self.client()
            .delete(format!("{}/v1/tracks/{id}", self.url))
            .header("authorization", self.auth())
            .send()
            .await
            .expect("delete")
            .status()
    }

    pub async fn track(&self, id: &str) -> serde_json::Value {
        let r = self
            .client()
            .get(format!("{}/v1/tracks/{id}", self.url))
            .header("authorization", self.auth())
            .send()
            .await
            .expect("get track");
        assert_eq!(r.status(), 200);
        r.json().await.expect("json")
    }

    /// Polls until the track is `ready` or `failed`. The limit only keeps a broken build from
    /// hanging CI; nothing asserts on time.
    pub async fn wait_final(&self, id: &str) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let t = self.track(id).await;
            if t["status"] == "ready" || t["status"] == "failed" {
                return t;
            }
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "track {id} stuck: {t}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn playback(&self, id: &str) -> serde_json::Value {
        let r = self
            .client()
            .post(format!("{}/v1/tracks/{id}/playback", self.url))
            .header("authorization", self.auth())
            .send()
            .await
            .expect("playback");
        assert_eq!(r.status(), 200);
        r.json().await.expect("json")
    }

    /// Waits until no object key contains `id`: a rejected track is marked failed first and its
    /// original removed just after. The limit only keeps a broken build from hanging CI.
    pub async fn wait_objects_gone(&self, id: &str) {
        let start = Instant::now();
        while self.objects().await.iter().any(|k| k.contains(id)) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "objects of {id} stay: {:?}",
                self.objects().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every object key in the media store (local directory or S3 bucket).
    pub async fn objects(&self) -> Vec<String> {
        if let Some(bucket) = &self.bucket {
            return bucket.keys().await;
        }
        let root = self.dir.join("media");
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(e.path());
                } else {
                    out.push(e.path().strip_prefix(&root).unwrap().display().to_string());
                }
            }
        }
        out.sort();
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
