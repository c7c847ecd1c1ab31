//! Opening each backend's pool: SQLite's file, journal and busy timeout; PostgreSQL's options.

use super::super::error::{Error, Result};
use super::{PgStore, SqliteStore};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

impl SqliteStore {
    /// Opens (creating if needed) a SQLite database in WAL mode.
    pub async fn open(url: &str, max_connections: u32) -> Result<SqliteStore> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        if let Some(dir) = opts.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| Error::Database(sqlx::Error::Io(e)))?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            // A write that failed inside a transaction (disk full, an I/O error) can leave its
            // connection mid-transaction, and every later BEGIN on it fails ("non-zero
            // transaction depth"). A connection that cannot start a transaction when it comes
            // back is closed instead of pooled, so the next write gets a fresh one and succeeds
            // as soon as the disk does.
            .after_release(|conn, _| {
                Box::pin(async move {
                    use sqlx::Connection;
                    // A plain BEGIN (not sqlx's nested SAVEPOINT) fails both when sqlx still
                    // counts a transaction and when SQLite itself is still in one.
                    match conn.begin_with("BEGIN").await {
                        Ok(tx) => Ok(tx.rollback().await.is_ok()),
                        Err(e) => {
                            tracing::warn!(error = %e, "dropping a metadata store connection left mid-transaction");
                            Ok(false)
                        }
                    }
                })
            })
            .connect_with(opts)
            .await?;
        Ok(SqliteStore { pool })
    }
}

impl PgStore {
    /// Connects to PostgreSQL.
    pub async fn open(url: &str, max_connections: u32) -> Result<PgStore> {
        let opts = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            // A store that is down answers 503 within seconds, not after a long wait per request.
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(opts)
            .await?;
        Ok(PgStore { pool })
    }
}
