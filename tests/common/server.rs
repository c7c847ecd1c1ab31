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
    let pool = sqlx::PgPool::connect(POSTGRES).await.expect("PostgreSQL at 127.0.0.1:5432 (database test)");
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

/// A running server.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub key: String,
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_veza-stream"))
}

impl Server {
    /// Starts a server on `db` with extra `VEZA_*` settings.
    pub async fn start(db: Db, extra: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut env: Vec<(String, String)> = vec![
            ("VEZA_SERVER__LISTEN".into(), "127.0.0.1:0".into()),
            ("VEZA_SERVER__DATA_DIR".into(), dir.join("data").display().to_string()),
            ("VEZA_STORAGE__PATH".into(), dir.join("media").display().to_string()),
            ("VEZA_JOBS__WORKERS".into(), "2".into()),
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
            key: String::new(),
            dir,
            env,
            _tmp: Some(tmp),
        };
        s.spawn();
        s
    }

    /// (Re)starts the process with the same settings and data.
    pub fn spawn(&mut self) {
        // A restart keeps the port only if it was fixed; tests that restart read `url` again.
        let mut cmd = Command::new(binary());
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
        for line in lines.by_ref() {
            let line = line.expect("banner");
            if let Some(u) = line.strip_prefix("Veza Stream listening on ") {
                url = Some(u.trim().to_string());
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
        if let Some(k) = key {
            self.key = k;
        }
        if let Some((_, k)) = self.env.iter().find(|(k, _)| k == "VEZA_AUTH__API_KEYS") {
            self.key = k.trim_matches(|c| c == '[' || c == ']' || c == '"').to_string();
        }
        self.child = Some(child);
    }

    /// Changes one setting for the next [`Server::spawn`].
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
    }

    /// The metadata store URL the server uses.
    pub fn db_url(&self) -> String {
        self.env.iter().find(|(k, _)| k == "VEZA_DATABASE__URL").map(|(_, v)| v.clone()).expect("database url")
    }

    /// Runs `sql` (one row, one column) against the server's store.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let url = self.db_url();
        if url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&url).await.expect("sqlite");
            let v: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&pool).await.expect(sql);
            pool.close().await;
            v
        } else {
            let pool = sqlx::PgPool::connect(&url).await.expect("postgres");
            let v: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_one(&pool).await.expect(sql);
            pool.close().await;
            v
        }
    }

    /// Runs `sql` returning one text value, or None.
    pub async fn text(&self, sql: &str) -> Option<String> {
        let url = self.db_url();
        if url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&url).await.expect("sqlite");
            let v: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_optional(&pool).await.expect(sql).flatten();
            pool.close().await;
            v
        } else {
            let pool = sqlx::PgPool::connect(&url).await.expect("postgres");
            let v: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_optional(&pool).await.expect(sql).flatten();
            pool.close().await;
            v
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
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

    /// SIGTERM; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill");
        c.wait().expect("wait")
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub fn auth(&self) -> String {
        format!("Bearer {}", self.key)
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
            assert!(start.elapsed() < Duration::from_secs(600), "track {id} stuck: {t}\n{}", self.log());
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

    /// Every object key in the local media directory.
    pub fn objects(&self) -> Vec<String> {
        let root = self.dir.join("media");
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
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
