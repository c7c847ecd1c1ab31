//! The SQLite and PostgreSQL backends. One macro writes both from the same SQL; they differ in the
//! pool set-up, the migrations directory, how a write transaction starts and how a job is claimed.

use super::{
    Error, Failure, Job, JobCounts, MetadataStore, Rendition, Result, Status, Track, TrackId,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

#[derive(sqlx::FromRow)]
struct TrackRow {
    id: String,
    title: String,
    filename: String,
    content_type: String,
    size_bytes: i64,
    original_key: String,
    status: String,
    progress: f64,
    error: Option<String>,
    analysis: Option<String>,
    media_prefix: Option<String>,
    created_at: i64,
    updated_at: i64,
}

const TRACK_COLUMNS: &str = "id, title, filename, content_type, size_bytes, original_key, status, \
     progress, error, analysis, media_prefix, created_at, updated_at";

impl TryFrom<TrackRow> for Track {
    type Error = Error;
    fn try_from(r: TrackRow) -> Result<Track> {
        Ok(Track {
            id: r
                .id
                .parse()
                .map_err(|_| Error::Corrupt(format!("track id {}", r.id)))?,
            title: r.title,
            filename: r.filename,
            content_type: r.content_type,
            size_bytes: r.size_bytes,
            original_key: r.original_key,
            status: Status::parse(&r.status)
                .ok_or_else(|| Error::Corrupt(format!("track status {}", r.status)))?,
            progress: r.progress,
            error: r.error,
            analysis: r.analysis,
            media_prefix: r.media_prefix,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RenditionRow {
    name: String,
    codecs: String,
    sample_rate: i64,
    channels: i64,
    bandwidth: i64,
    average_bandwidth: i64,
    segments: i64,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    track_id: String,
    attempts: i64,
    staging_prefix: Option<String>,
}

/// Claims one job in one statement. SQLite runs one writer at a time, so the sub-select and the
/// update cannot interleave with another claim; the `lease_id` written is what every later write of
/// this attempt is conditional on.
const CLAIM_SQLITE: &str = "UPDATE jobs SET state = 'running', lease_id = $1, lease_until = $2, \
     attempts = attempts + 1 \
     WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' AND run_at <= $3) \
                 OR (state = 'running' AND lease_until < $3) ORDER BY run_at, id LIMIT 1) \
     RETURNING id, track_id, attempts, staging_prefix";

/// PostgreSQL: concurrent workers skip rows another transaction has locked, so each claims a
/// different job without waiting.
const CLAIM_POSTGRES: &str = "UPDATE jobs SET state = 'running', lease_id = $1, lease_until = $2, \
     attempts = attempts + 1 \
     WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' AND run_at <= $3) \
                 OR (state = 'running' AND lease_until < $3) ORDER BY run_at, id LIMIT 1 \
                 FOR UPDATE SKIP LOCKED) \
     RETURNING id, track_id, attempts, staging_prefix";

macro_rules! sql_store {
    ($name:ident, $db:ty, $migrations:literal, $begin:literal, $claim:expr) => {
        /// A metadata store backend.
        pub struct $name {
            pool: sqlx::Pool<$db>,
        }

        #[async_trait::async_trait]
        impl MetadataStore for $name {
            async fn migrate(&self) -> Result<()> {
                sqlx::migrate!($migrations).run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn create_track(&self, t: &Track, job_id: &str, now: i64) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                sqlx::query(
                    "INSERT INTO tracks (id, title, filename, content_type, size_bytes, \
                     original_key, status, progress, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8)",
                )
                .bind(t.id.to_string())
                .bind(&t.title)
                .bind(&t.filename)
                .bind(&t.content_type)
                .bind(t.size_bytes)
                .bind(&t.original_key)
                .bind(t.status.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO jobs (id, track_id, state, attempts, run_at, created_at) \
                     VALUES ($1, $2, 'queued', 0, $3, $3)",
                )
                .bind(job_id)
                .bind(t.id.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn track(&self, id: TrackId) -> Result<Option<Track>> {
                let sql = sqlx::AssertSqlSafe(format!("SELECT {TRACK_COLUMNS} FROM tracks WHERE id = $1"));
                let row: Option<TrackRow> = sqlx::query_as(sql)
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(Track::try_from).transpose()
            }

            async fn tracks(&self, before: Option<TrackId>, limit: i64) -> Result<Vec<Track>> {
                let rows: Vec<TrackRow> = match before {
                    Some(b) => {
                        let sql = sqlx::AssertSqlSafe(format!(
                            "SELECT {TRACK_COLUMNS} FROM tracks WHERE id < $1 ORDER BY id DESC LIMIT $2"
                        ));
                        sqlx::query_as(sql)
                            .bind(b.to_string())
                            .bind(limit)
                            .fetch_all(&self.pool)
                            .await?
                    }
                    None => {
                        let sql = sqlx::AssertSqlSafe(format!(
                            "SELECT {TRACK_COLUMNS} FROM tracks ORDER BY id DESC LIMIT $1"
                        ));
                        sqlx::query_as(sql).bind(limit).fetch_all(&self.pool).await?
                    }
                };
                rows.into_iter().map(Track::try_from).collect()
            }

            async fn renditions(&self, id: TrackId) -> Result<Vec<Rendition>> {
                let rows: Vec<RenditionRow> = sqlx::query_as(
                    "SELECT name, codecs, sample_rate, channels, bandwidth, average_bandwidth, \
                     segments FROM renditions WHERE track_id = $1 ORDER BY name",
                )
                .bind(id.to_string())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| Rendition {
                        name: r.name,
                        codecs: r.codecs,
                        sample_rate: r.sample_rate,
                        channels: r.channels,
                        bandwidth: r.bandwidth,
                        average_bandwidth: r.average_bandwidth,
                        segments: r.segments,
                    })
                    .collect())
            }

            async fn delete_track(&self, id: TrackId) -> Result<Option<Track>> {
                let mut tx = self.pool.begin_with($begin).await?;
                let sql = sqlx::AssertSqlSafe(format!(
                    "DELETE FROM tracks WHERE id = $1 RETURNING {TRACK_COLUMNS}"
                ));
                let row: Option<TrackRow> = sqlx::query_as(sql)
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                // Cascades would do this too; saying it keeps both backends identical even where
                // foreign keys are off.
                sqlx::query("DELETE FROM renditions WHERE track_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM jobs WHERE track_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                row.map(Track::try_from).transpose()
            }

            async fn claim(&self, lease_id: &str, lease_until: i64, now: i64) -> Result<Option<Job>> {
                let row: Option<JobRow> = sqlx::query_as($claim)
                    .bind(lease_id)
                    .bind(lease_until)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some(Job {
                    track_id: row
                        .track_id
                        .parse()
                        .map_err(|_| Error::Corrupt(format!("job track id {}", row.track_id)))?,
                    id: row.id,
                    attempts: row.attempts,
                    lease_id: lease_id.to_string(),
                    stale_staging: row.staging_prefix,
                }))
            }

            async fn heartbeat(&self, job: &Job, lease_until: i64) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_id = $3 AND state = 'running'",
                )
                .bind(lease_until)
                .bind(&job.id)
                .bind(&job.lease_id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn set_staging(&self, job: &Job, prefix: &str) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE jobs SET staging_prefix = $1 WHERE id = $2 AND lease_id = $3 AND state = 'running'",
                )
                .bind(prefix)
                .bind(&job.id)
                .bind(&job.lease_id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn set_progress(&self, job: &Job, progress: f64, now: i64) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE tracks SET status = 'processing', progress = $1, updated_at = $2 \
                     WHERE id = $3 AND EXISTS (SELECT 1 FROM jobs WHERE id = $4 AND lease_id = $5)",
                )
                .bind(progress)
                .bind(now)
                .bind(job.track_id.to_string())
                .bind(&job.id)
                .bind(&job.lease_id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn publish(
                &self,
                job: &Job,
                prefix: &str,
                analysis: &str,
                renditions: &[Rendition],
                now: i64,
            ) -> Result<bool> {
                let mut tx = self.pool.begin_with($begin).await?;
                // Removing the job under its lease is the claim check: if another worker took it
                // over, or the track was deleted, nothing is published.
                let gone = sqlx::query("DELETE FROM jobs WHERE id = $1 AND lease_id = $2 AND state = 'running'")
                    .bind(&job.id)
                    .bind(&job.lease_id)
                    .execute(&mut *tx)
                    .await?;
                if gone.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                let updated = sqlx::query(
                    "UPDATE tracks SET status = 'ready', progress = 1, error = NULL, analysis = $1, \
                     media_prefix = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(analysis)
                .bind(prefix)
                .bind(now)
                .bind(job.track_id.to_string())
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                for r in renditions {
                    sqlx::query(
                        "INSERT INTO renditions (track_id, name, codecs, sample_rate, channels, \
                         bandwidth, average_bandwidth, segments) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(job.track_id.to_string())
                    .bind(&r.name)
                    .bind(&r.codecs)
                    .bind(r.sample_rate)
                    .bind(r.channels)
                    .bind(r.bandwidth)
                    .bind(r.average_bandwidth)
                    .bind(r.segments)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn fail(&self, job: &Job, failure: &Failure, now: i64) -> Result<bool> {
                let mut tx = self.pool.begin_with($begin).await?;
                let r = match failure {
                    Failure::Retry { at, error } => {
                        sqlx::query(
                            "UPDATE jobs SET state = 'queued', run_at = $1, lease_id = NULL, \
                             lease_until = NULL, staging_prefix = NULL, last_error = $2 \
                             WHERE id = $3 AND lease_id = $4",
                        )
                        .bind(at)
                        .bind(error)
                        .bind(&job.id)
                        .bind(&job.lease_id)
                        .execute(&mut *tx)
                        .await?
                    }
                    Failure::Final(error) => {
                        let r = sqlx::query(
                            "UPDATE jobs SET state = 'failed', lease_id = NULL, lease_until = NULL, \
                             staging_prefix = NULL, last_error = $1 WHERE id = $2 AND lease_id = $3",
                        )
                        .bind(error)
                        .bind(&job.id)
                        .bind(&job.lease_id)
                        .execute(&mut *tx)
                        .await?;
                        if r.rows_affected() == 1 {
                            sqlx::query(
                                "UPDATE tracks SET status = 'failed', error = $1, updated_at = $2 WHERE id = $3",
                            )
                            .bind(error)
                            .bind(now)
                            .bind(job.track_id.to_string())
                            .execute(&mut *tx)
                            .await?;
                        }
                        r
                    }
                };
                tx.commit().await?;
                Ok(r.rows_affected() == 1)
            }

            async fn release(&self, job: &Job, now: i64) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE jobs SET state = 'queued', run_at = $1, lease_id = NULL, lease_until = NULL, \
                     staging_prefix = NULL, attempts = attempts - 1 WHERE id = $2 AND lease_id = $3",
                )
                .bind(now)
                .bind(&job.id)
                .bind(&job.lease_id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn job_counts(&self) -> Result<JobCounts> {
                let rows: Vec<(String, i64)> =
                    sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state")
                        .fetch_all(&self.pool)
                        .await?;
                let mut c = JobCounts::default();
                for (state, n) in rows {
                    match state.as_str() {
                        "queued" => c.queued = n,
                        "running" => c.running = n,
                        "failed" => c.failed = n,
                        _ => {}
                    }
                }
                Ok(c)
            }
        }
    };
}

sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    "./migrations/sqlite",
    "BEGIN IMMEDIATE",
    CLAIM_SQLITE
);
sql_store!(
    PgStore,
    sqlx::Postgres,
    "./migrations/postgres",
    "BEGIN",
    CLAIM_POSTGRES
);

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
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        Ok(PgStore { pool })
    }
}
